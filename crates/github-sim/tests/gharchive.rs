//! GH Archive over HTTP: hours are served as GH Archive's storage serves them (gzip, 404 for
//! what it lacks), held-back hours appear once published, truncated and slow hours arrive as
//! asked, and the ledger counts requests per hour.

use chrono::{DateTime, Utc};
use github_sim::gharchive::{self, GhArchiveSpec, HourQuirks};
use github_sim::{OrgSpec, SimOptions, Simulator};
use std::io::Read;

async fn sim() -> Simulator {
    Simulator::start(&OrgSpec::new("acme", 1, 5, 1), SimOptions::default(), 0)
        .await
        .expect("simulator")
}

fn at(s: &str) -> DateTime<Utc> {
    gharchive::parse_hour(s).expect("a test hour")
}

async fn get(url: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(url)
        .send()
        .await
        .expect("request")
}

fn gunzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes).read_to_end(&mut out)?;
    Ok(out)
}

#[tokio::test]
async fn hours_are_served_as_gzip_with_their_length_and_match_the_truth() {
    let sim = sim().await;
    let h = at("2024-01-01T15");
    sim.set_gharchive(GhArchiveSpec::new(5, 120).with_hour(
        h,
        HourQuirks {
            duplicates_within: 2,
            not_json: 1,
            ..HourQuirks::default()
        },
    ))
    .expect("spec");
    let resp = get(&format!("{}/2024-01-01-15.json.gz", sim.gharchive_url())).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/gzip")
    );
    assert!(resp.headers().get("content-encoding").is_none());
    let length: Option<usize> = resp
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok()?.parse().ok());
    let body = resp.bytes().await.expect("body");
    assert_eq!(length, Some(body.len()));
    let ndjson = gunzip(&body).expect("a whole gzip");
    let truth = sim.gharchive_truth(h);
    assert_eq!(ndjson, gharchive::hour(&sim.gharchive_spec(), h).ndjson);
    assert_eq!(
        ndjson.iter().filter(|b| **b == b'\n').count() as u64,
        truth.counts.lines
    );
    assert_eq!(truth.counts.lines, 123);
    assert_eq!(truth.events.len(), 120);
    // The truth over HTTP is the same.
    let over_http: gharchive::HourTruth = get(&format!(
        "{}/_sim/gharchive/truth?hour=2024-01-01-15",
        sim.url()
    ))
    .await
    .json()
    .await
    .expect("truth JSON");
    assert_eq!(over_http, truth);
    let ledger = sim.ledger();
    assert_eq!(ledger.gharchive_requests.get("2024-01-01-15"), Some(&1));
    assert_eq!(ledger.gharchive_downloads.get("2024-01-01-15"), Some(&1));
    assert_eq!(ledger.rest_requests, 0);
}

#[tokio::test]
async fn a_missing_hour_answers_404_until_it_is_published() {
    let sim = sim().await;
    let (a, b) = (at("2020-05-05T05"), at("2020-05-05T06"));
    let missing = HourQuirks {
        missing: true,
        ..HourQuirks::default()
    };
    sim.set_gharchive(
        GhArchiveSpec::new(2, 30)
            .with_hour(a, missing.clone())
            .with_hour(b, missing),
    )
    .expect("spec");
    assert!(sim.gharchive_truth(a).missing);
    let url_a = format!("{}/2020-05-05-5.json.gz", sim.gharchive_url());
    let url_b = format!("{}/2020-05-05-6.json.gz", sim.gharchive_url());
    let first = get(&url_a).await;
    assert_eq!(first.status(), 404);
    assert!(first.text().await.expect("body").contains("NoSuchKey"));
    assert_eq!(get(&url_b).await.status(), 404);
    // Published through the Rust API and through the control endpoint.
    assert!(sim.gharchive_publish(a));
    assert!(!sim.gharchive_publish(a), "already published");
    let published: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/_sim/gharchive/publish", sim.url()))
        .json(&serde_json::json!({ "hour": "2020-05-05T06" }))
        .send()
        .await
        .expect("publish")
        .json()
        .await
        .expect("JSON");
    assert_eq!(published["published"], true);
    assert_eq!(published["file"], "2020-05-05-6.json.gz");
    for (url, hour) in [(&url_a, a), (&url_b, b)] {
        let resp = get(url).await;
        assert_eq!(resp.status(), 200);
        let ndjson = gunzip(&resp.bytes().await.expect("body")).expect("gzip");
        assert_eq!(ndjson, gharchive::hour(&sim.gharchive_spec(), hour).ndjson);
    }
    assert_eq!(sim.gharchive_published(), vec![a, b]);
    let ledger = sim.ledger();
    assert_eq!(ledger.gharchive_requests.get("2020-05-05-5"), Some(&2));
    assert_eq!(ledger.gharchive_downloads.get("2020-05-05-5"), Some(&1));
    // A new spec forgets what was published.
    sim.set_gharchive(sim.gharchive_spec()).expect("spec");
    assert_eq!(get(&url_a).await.status(), 404);
}

#[tokio::test]
async fn names_gh_archive_lacks_answer_404() {
    let sim = sim().await;
    let next_hour = gharchive::file_name(Utc::now() + chrono::Duration::hours(1));
    for name in [
        "2024-01-01-05.json.gz",
        "2024-01-01-24.json.gz",
        "2024-02-30-1.json.gz",
        "2024-01-01-1.json",
        "2011-02-11-23.json.gz",
        "latest.json.gz",
        // An hour that has not ended has no file yet.
        next_hour.as_str(),
    ] {
        let resp = get(&format!("{}/{name}", sim.gharchive_url())).await;
        assert_eq!(resp.status(), 404, "{name}");
    }
    assert_eq!(
        get(&format!("{}/2011-02-12-0.json.gz", sim.gharchive_url()))
            .await
            .status(),
        200
    );
    let ledger = sim.ledger();
    assert_eq!(ledger.gharchive_downloads.len(), 1);
    assert!(!ledger.gharchive_requests.contains_key("2024-01-01-05"));
}

#[tokio::test]
async fn a_truncated_hour_is_served_truncated() {
    let sim = sim().await;
    let h = at("2019-09-09T09");
    let spec = GhArchiveSpec::new(3, 200).with_hour(
        h,
        HourQuirks {
            truncated: true,
            ..HourQuirks::default()
        },
    );
    sim.set_gharchive(spec.clone()).expect("spec");
    let resp = get(&format!("{}/2019-09-09-9.json.gz", sim.gharchive_url())).await;
    assert_eq!(resp.status(), 200);
    let body = resp.bytes().await.expect("body");
    assert_eq!(body.as_ref(), gharchive::gzip(&spec, h).0.as_slice());
    let err = gunzip(&body).expect_err("truncated");
    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
    assert!(sim.gharchive_truth(h).truncated);
}

#[tokio::test]
async fn a_slow_hour_arrives_whole_in_pieces() {
    let sim = sim().await;
    let h = at("2022-02-22T22");
    let quick = GhArchiveSpec::new(8, 20);
    let slow = quick.clone().with_hour(
        h,
        HourQuirks {
            slow_bytes_per_sec: Some(40_000),
            ..HourQuirks::default()
        },
    );
    sim.set_gharchive(slow).expect("spec");
    let mut resp = get(&format!("{}/2022-02-22-22.json.gz", sim.gharchive_url())).await;
    assert_eq!(resp.status(), 200);
    let mut body = Vec::new();
    let mut pieces = 0;
    while let Some(chunk) = resp.chunk().await.expect("chunk") {
        assert!(chunk.len() <= 4_000);
        body.extend_from_slice(&chunk);
        pieces += 1;
    }
    assert!(pieces > 1, "{pieces} pieces");
    assert_eq!(body, gharchive::gzip(&quick, h).0);
}

#[tokio::test]
async fn control_endpoints_refuse_bad_input_with_a_message() {
    let sim = sim().await;
    let client = reqwest::Client::new();
    let too_big = client
        .post(format!("{}/_sim/gharchive", sim.url()))
        .json(&serde_json::json!({ "seed": 1, "events_per_hour": 5_000_000 }))
        .send()
        .await
        .expect("request");
    assert_eq!(too_big.status(), 400);
    let body: serde_json::Value = too_big.json().await.expect("JSON");
    assert!(body["message"]
        .as_str()
        .unwrap_or_default()
        .contains("events_per_hour"));
    let bad_hour = client
        .post(format!("{}/_sim/gharchive/publish", sim.url()))
        .json(&serde_json::json!({ "hour": "yesterday" }))
        .send()
        .await
        .expect("request");
    assert_eq!(bad_hour.status(), 400);
    let unknown_field = client
        .post(format!("{}/_sim/gharchive", sim.url()))
        .json(&serde_json::json!({ "seed": 1, "events_per_hour": 5, "quirks": { "trunkated": true } }))
        .send()
        .await
        .expect("request");
    assert!(unknown_field.status().is_client_error());
    let no_hour = get(&format!("{}/_sim/gharchive/truth", sim.url())).await;
    assert_eq!(no_hour.status(), 400);
    // A good spec over HTTP is what the simulator then serves.
    let spec = GhArchiveSpec::new(9, 7);
    let ok = client
        .post(format!("{}/_sim/gharchive", sim.url()))
        .json(&spec)
        .send()
        .await
        .expect("request");
    assert_eq!(ok.status(), 204);
    assert_eq!(sim.gharchive_spec(), spec);
    let back: GhArchiveSpec = get(&format!("{}/_sim/gharchive", sim.url()))
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(back, spec);
}
