//! GH Archive end to end on the cloud stacks, against the simulator's hours and ground truth:
//! - gs:// (fake-gcs-server) + BigQuery (the emulator): load jobs read each hour's Parquet
//!   object from its `gs://` URI (the emulator maps it to fake-gcs-server's files). The lake
//!   writes through fake-gcs-server's JSON API (`common::gcs`), which object_store cannot.
//! - a local lake + BigQuery: the Parquet object goes up as a load job's media.
//! - s3:// (moto) + PostgreSQL.
//!
//! Each ingests a range with duplicate ids within an hour and across hours, lines that are
//! rejected, events without an id and a missing hour that is published later, and checks the
//! warehouse equals the truth: each hour's events, each id once, rejected lines and dropped
//! duplicates counted, the missing hour recorded and then picked up. Running again, forced
//! or not, and loading an hour again change nothing. Without the servers the tests say so and
//! skip.

mod common;

use chrono::{DateTime, Duration, Utc};
use common::gcs::GcsBucket;
use common::gharchive::{truth_lines, EventLine};
use common::{dataset_url, fresh_bigquery, fresh_database, fresh_s3_lake};
use ghstats::gharchive::job::{self, GharchiveResult, Options, Selection};
use ghstats::lake::Lake;
use ghstats::warehouse::bigquery::BigQueryWarehouse;
use ghstats::warehouse::postgres::PostgresWarehouse;
use ghstats::warehouse::{HourStatus, Warehouse};
use github_sim::{GhArchiveSpec, HourQuirks, OrgSpec, SimOptions, Simulator};
use serde_json::Value;
use std::collections::BTreeMap;

fn hour(s: &str) -> DateTime<Utc> {
    ghstats::gharchive::parse_hour(s).unwrap()
}

/// Runs the job as `ghstats gharchive` does, without the lock (the gs:// test store takes no
/// conditional writes).
async fn run(
    lake: &Lake,
    wh: &dyn Warehouse,
    url: &str,
    selection: Selection,
    force: bool,
    now: DateTime<Utc>,
) -> GharchiveResult {
    let opts = Options {
        base_url: url.parse().unwrap(),
        keep_payload: true,
        force,
        shard: None,
        deadline: std::time::Instant::now() + std::time::Duration::from_secs(600),
        stop: Vec::new(),
        progress: std::sync::Arc::new(ghstats::jobs::progress::HourProgress::hidden()),
    };
    job::run(&reqwest::Client::new(), lake, wh, &selection, &opts, now)
        .await
        .expect("the run reaches its end")
}

fn range(from: DateTime<Utc>, to: DateTime<Utc>) -> Selection {
    Selection::Range { from, to }
}

/// One stored row as the backends answer it, in a backend-neutral form.
struct Stored {
    event_id: i64,
    archive_hour: DateTime<Utc>,
    /// Every column but the payload, as [`truth`] writes it.
    line: String,
    payload: Option<String>,
}

fn when(v: &Value) -> DateTime<Utc> {
    let s = v.as_str().unwrap_or_else(|| panic!("a timestamp: {v}"));
    // PostgreSQL's JSON writes `+00:00`; BigQuery's `.000000Z`.
    DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("{s}: {e}"))
        .with_timezone(&Utc)
}

fn text(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

fn int(v: &Value) -> Option<i64> {
    v.as_i64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

fn boolean(v: &Value) -> Option<bool> {
    v.as_bool().or_else(|| v.as_i64().map(|i| i != 0))
}

/// Every row of `gharchive_events`.
async fn stored(wh: &dyn Warehouse) -> Vec<Stored> {
    let rows = wh
        .query(
            "SELECT event_id, event_type, created_at, public, actor_id, actor_login, repo_id, \
             repo_name, org_id, org_login, action, number, ref, push_head, push_size, payload, \
             archive_hour FROM gharchive_events",
        )
        .await
        .unwrap();
    rows.iter()
        .map(|r| {
            let event_id = int(&r["event_id"]).unwrap();
            let line = EventLine {
                event_id: EventLine::id(event_id),
                event_type: text(&r["event_type"]),
                created_at: Some(when(&r["created_at"])),
                public: boolean(&r["public"]),
                actor_id: int(&r["actor_id"]),
                actor_login: text(&r["actor_login"]),
                repo_id: int(&r["repo_id"]),
                repo_name: text(&r["repo_name"]),
                org_id: int(&r["org_id"]),
                org_login: text(&r["org_login"]),
                action: text(&r["action"]),
                number: int(&r["number"]),
                git_ref: text(&r["ref"]),
                push_head: text(&r["push_head"]),
                push_size: int(&r["push_size"]),
            }
            .line();
            Stored {
                event_id,
                archive_hour: when(&r["archive_hour"]),
                line,
                payload: text(&r["payload"]),
            }
        })
        .collect()
}

/// The stored rows of each archive hour, sorted.
fn by_hour(rows: &[Stored]) -> BTreeMap<DateTime<Utc>, Vec<String>> {
    let mut out: BTreeMap<DateTime<Utc>, Vec<String>> = BTreeMap::new();
    for r in rows {
        out.entry(r.archive_hour).or_default().push(r.line.clone());
    }
    for lines in out.values_mut() {
        lines.sort();
    }
    out
}

/// Asserts an hour's stored rows are the truth's, naming the counts and the first rows that
/// differ rather than printing hundreds.
fn assert_hour_eq(h: DateTime<Utc>, got: Option<&Vec<String>>, want: &[String]) {
    let empty = Vec::new();
    let got = got.unwrap_or(&empty);
    let extra: Vec<&String> = got.iter().filter(|g| !want.contains(g)).take(3).collect();
    let lacking: Vec<&String> = want.iter().filter(|w| !got.contains(w)).take(3).collect();
    assert!(
        got.len() == want.len() && extra.is_empty() && lacking.is_empty(),
        "{h}: {} rows stored, {} in the truth; stored, not true: {extra:#?}; true, not stored: {lacking:#?}",
        got.len(),
        want.len()
    );
}

/// Everything the warehouse holds for GH Archive, to compare before and after a rerun: the
/// rows with their payloads, and each hour's status and figures.
async fn snapshot(wh: &dyn Warehouse) -> (Vec<String>, Vec<String>) {
    let mut rows: Vec<String> = stored(wh)
        .await
        .into_iter()
        .map(|r| {
            format!(
                "{}|{}|{}|{:?}",
                r.event_id, r.archive_hour, r.line, r.payload
            )
        })
        .collect();
    rows.sort();
    let hours = wh
        .gharchive_hours()
        .await
        .unwrap()
        .into_iter()
        .map(|s| format!("{}|{:?}|{:?}", s.hour, s.status, s.stats))
        .collect();
    (rows, hours)
}

/// The range and its checks, on any lake and warehouse.
async fn quirky_range_equals_the_truth(lake: &Lake, wh: &dyn Warehouse) {
    let sim = Simulator::start(&OrgSpec::new("acme", 1, 1, 1), SimOptions::default(), 0)
        .await
        .unwrap();
    let (h0, h1, h2) = (
        hour("2024-03-10T04"),
        hour("2024-03-10T05"),
        hour("2024-03-10T06"),
    );
    let q = |f: fn(&mut HourQuirks)| {
        let mut x = HourQuirks::default();
        f(&mut x);
        x
    };
    sim.set_gharchive(
        GhArchiveSpec::new(13, 250)
            .with_hour(
                h0,
                q(|x| {
                    x.duplicates_within = 6;
                    x.not_json = 2;
                    x.without_type = 1;
                }),
            )
            .with_hour(
                h1,
                q(|x| {
                    x.duplicates_from_previous = 5;
                    x.without_id = 2;
                    x.not_json = 1;
                }),
            )
            .with_hour(h2, q(|x| x.missing = true)),
    )
    .unwrap();
    let url = sim.gharchive_url();
    let (t0, t1) = (sim.gharchive_truth(h0), sim.gharchive_truth(h1));
    assert!(t0.counts.duplicates_within > 0 && t1.counts.duplicates_from_previous > 0);
    assert!(t0.counts.rejected >= 3 && t1.counts.rejected >= 1);

    let r = run(lake, wh, &url, range(h0, h2), false, Utc::now()).await;
    assert_eq!(r.status, "completed", "{r:?}");
    assert_eq!(
        (r.hours_ingested, r.hours_missing, r.hours_failed),
        (2, 1, 0),
        "{r:?}"
    );
    assert_eq!(r.lines_rejected, t0.counts.rejected + t1.counts.rejected);
    assert_eq!(r.duplicates_dropped, t0.counts.duplicates_within);

    // Each hour's own events, field by field; the copies of hour 0's events in hour 1 stay
    // hour 0's.
    let rows = stored(wh).await;
    let got = by_hour(&rows);
    assert_eq!(got.len(), 2, "{:?}", got.keys().collect::<Vec<_>>());
    for h in [h0, h1] {
        let want = truth_lines(&sim, h);
        assert!(want.len() > 200, "{h}: {} events", want.len());
        assert_hour_eq(h, got.get(&h), &want);
    }
    let mut ids: Vec<i64> = rows.iter().map(|r| r.event_id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), rows.len(), "each id once");
    assert_eq!(rows.len(), t0.events.len() + t1.events.len());

    // The hours' states: figures as the truth counts them, the missing hour recorded.
    let states: BTreeMap<_, _> = wh
        .gharchive_hours()
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.hour, s))
        .collect();
    for (h, t) in [(h0, &t0), (h1, &t1)] {
        let s = &states[&h];
        assert_eq!(s.status, HourStatus::Ingested, "{h}");
        let stats = s.stats.expect("an ingested hour's figures");
        assert_eq!(
            stats.events,
            t.events.len() as u64 + t.counts.duplicates_from_previous
        );
        assert_eq!(stats.lines_rejected, t.counts.rejected, "{h}");
        assert_eq!(stats.duplicates_dropped, t.counts.duplicates_within, "{h}");
    }
    let missing = &states[&h2];
    assert_eq!(missing.status, HourStatus::Missing);
    assert!(missing.first_missing_at.is_some() && missing.final_at.is_none());

    // The missing hour is published: the next run since the last hour asks for it again.
    assert!(sim.gharchive_publish(h2));
    let r = run(
        lake,
        wh,
        &url,
        Selection::SinceLast,
        false,
        h2 + Duration::minutes(80),
    )
    .await;
    assert_eq!((r.status, r.hours_ingested), ("completed", 1), "{r:?}");
    let got = by_hour(&stored(wh).await);
    for h in [h0, h1, h2] {
        assert_hour_eq(h, got.get(&h), &truth_lines(&sim, h));
    }
    let s = wh.gharchive_hours().await.unwrap();
    assert!(
        s.iter()
            .all(|s| s.status == HourStatus::Ingested && s.error.is_none()),
        "{s:?}"
    );

    // Running again changes nothing: skipped, then forced (downloaded, written and loaded
    // again), then one hour loaded again from its object.
    let before = snapshot(wh).await;
    assert_eq!(
        before.0.len(),
        t0.events.len() + t1.events.len() + truth_lines(&sim, h2).len()
    );
    let r = run(lake, wh, &url, range(h0, h2), false, Utc::now()).await;
    assert_eq!((r.hours_skipped, r.hours_ingested), (3, 0), "{r:?}");
    let r = run(lake, wh, &url, range(h0, h2), true, Utc::now()).await;
    assert_eq!((r.status, r.hours_ingested), ("completed", 3), "{r:?}");
    assert_eq!(snapshot(wh).await, before);
    let state = wh
        .gharchive_hours()
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.hour == h1)
        .unwrap();
    let parts = ghstats::gharchive::object_parts(h1);
    let path = lake.path_of(&parts.iter().map(String::as_str).collect::<Vec<_>>());
    let read = wh.load_gharchive_hour(lake, &path, &state).await.unwrap();
    assert_eq!(read, state.stats.unwrap().events);
    assert_eq!(snapshot(wh).await, before);

    // The lake holds the three hours' objects, nothing more.
    let objects = lake
        .list(&lake.path_of(&["gharchive", "events"]))
        .await
        .unwrap();
    assert_eq!(objects.len(), 3, "{objects:?}");
}

/// Asserts the emulator's `gharchive_events` is partitioned by day on `created_at` and
/// clustered by `event_type`, `repo_name`, and that no staging table is left.
async fn assert_bigquery_tables(target: &ghstats::warehouse::bigquery::BigQueryTarget) {
    let http = reqwest::Client::new();
    let base = dataset_url(target);
    let t: Value = http
        .get(format!("{base}/tables/gharchive_events"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(t["timePartitioning"]["type"], "DAY", "{t}");
    assert_eq!(t["timePartitioning"]["field"], "created_at", "{t}");
    assert_eq!(
        t["clustering"]["fields"],
        serde_json::json!(["event_type", "repo_name"]),
        "{t}"
    );
    let tables: Value = http
        .get(format!("{base}/tables"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = tables["tables"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["tableReference"]["tableId"].as_str())
        .collect();
    assert!(names.contains(&"gharchive_hours"), "{names:?}");
    assert!(
        names.iter().all(|n| !n.starts_with("_ghstats_stage_")),
        "{names:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gs_lake_and_bigquery_equal_the_simulators_truth() {
    let (Some(target), Some(gcs)) = (fresh_bigquery(), GcsBucket::from_env()) else {
        return;
    };
    let lake = gcs.writable_lake(&format!("gha-{:08x}", rand::random::<u32>()));
    assert!(lake.gcs_uri("x").is_some(), "load jobs read gs:// URIs");
    let wh = BigQueryWarehouse::connect(&target).await.unwrap();
    wh.ensure_tables().await.unwrap();
    quirky_range_equals_the_truth(&lake, &wh).await;
    assert_bigquery_tables(&target).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_lake_and_bigquery_by_media_upload_equal_the_simulators_truth() {
    let Some(target) = fresh_bigquery() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(
        &ghstats::config::StorageUrl::Local(dir.path().to_path_buf()),
        None,
    )
    .unwrap();
    assert!(
        lake.gcs_uri("x").is_none(),
        "load jobs take the file as media"
    );
    let wh = BigQueryWarehouse::connect(&target).await.unwrap();
    wh.ensure_tables().await.unwrap();
    quirky_range_equals_the_truth(&lake, &wh).await;
    assert_bigquery_tables(&target).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_lake_and_postgres_equal_the_simulators_truth() {
    let Some(db) = fresh_database().await else {
        return;
    };
    let Some(lake) = fresh_s3_lake(&format!("gha-{:08x}", rand::random::<u32>())).await else {
        return;
    };
    let wh = PostgresWarehouse::connect(&db).await.unwrap();
    wh.ensure_tables().await.unwrap();
    quirky_range_equals_the_truth(&lake, &wh).await;
}
