//! `ghstats serve` on port 0 against the simulator, a local lake and SQLite: every endpoint,
//! two concurrent collections (one gets 409 with the running collection id), a battery of bad
//! requests that all get a 4xx with a JSON message while the server keeps serving, and token
//! authentication.

mod common;

use clap::Parser;
use ghstats::jobs::runner::Runner;
use ghstats::serve::{AppState, Auth};
use github_sim::{FaultPlan, OrgSpec, SimOptions, Simulator};
use serde_json::{json, Value};
use std::sync::Arc;

use common::service::{start, GITHUB_TOKEN as TOKEN};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_endpoint_answers_with_its_job() {
    let sim = Simulator::start(&OrgSpec::new("acme", 2, 60, 71), SimOptions::default(), 0)
        .await
        .unwrap();
    let s = start(&sim, Auth::None, &[]).await;
    assert_eq!(s.get("/healthz").await.0, 200);
    let (code, ready) = s.get("/readyz").await;
    assert_eq!(code, 200, "{ready}");

    let (code, b) = s.post("/backfill", json!({"days": 400})).await;
    assert_eq!(code, 200, "{b}");
    assert_eq!(b["status"], "completed");
    assert_eq!(b["load"]["tables"]["pull_requests"]["inserted"], 60, "{b}");
    assert!(b["api_cost"]["graphql_queries"].as_u64().unwrap() > 0);
    assert_eq!(b["repos"].as_array().unwrap().len(), 2);
    let id = b["collection_id"].as_str().unwrap().to_string();

    let (code, cp) = s.get(&format!("/collections/{id}")).await;
    assert_eq!(code, 200);
    assert_eq!(cp["status"], "completed");
    assert_eq!(cp["collection_id"], id.as_str());

    let (code, sum) = s.get("/summary").await;
    assert_eq!(code, 200);
    assert_eq!(sum["warehouse"]["pull_requests"], 60, "{sum}");

    let (code, c) = s
        .post("/collect", json!({"hours": 2, "repos": ["repo-000"]}))
        .await;
    assert_eq!(code, 200, "{c}");
    assert_eq!(c["status"], "completed");
    assert_ne!(c["collection_id"], id.as_str());

    // Everything since GitHub's start, beyond the old ten-year cap.
    let (code, all) = s
        .post("/backfill", json!({"all": true, "repos": ["repo-000"]}))
        .await;
    assert_eq!(code, 200, "{all}");
    assert_eq!(all["status"], "completed", "{all}");
    assert_eq!(all["window"]["since"], "2008-01-01T00:00:00Z", "{all}");
    let (code, long) = s.post("/backfill", json!({"days": 5000})).await;
    assert_eq!(code, 200, "{long}");
    assert_eq!(long["status"], "completed", "{long}");

    let (code, r) = s.post("/resume", json!({"collection_id": id})).await;
    assert_eq!(code, 200, "{r}");
    assert!(r["note"].as_str().unwrap().contains("already completed"));

    let (code, l) = s.post("/load-gcs", json!({"collection_id": id})).await;
    assert_eq!(code, 200, "{l}");
    assert!(
        l["tables"]
            .as_object()
            .unwrap()
            .values()
            .all(|t| t["inserted"] == 0 && t["updated"] == 0 && t["deleted"] == 0),
        "reloading changes nothing: {l}"
    );

    let (code, w) = s.post("/wipe", json!({"repo": "repo-000"})).await;
    assert_eq!(code, 200);
    assert_eq!(w["confirmed"], false);
    assert!(w["message"].as_str().unwrap().contains("nothing deleted"));
    let (code, w) = s
        .post(
            "/wipe",
            json!({"repo": "repo-000", "confirm": true, "warehouse": true}),
        )
        .await;
    assert_eq!(code, 200, "{w}");
    assert!(w["chunks_deleted"].as_u64().unwrap() > 0);
    assert!(w["warehouse_rows_deleted"].as_u64().unwrap() > 0);
    let (_, sum) = s.get("/summary").await;
    assert!(
        sum["warehouse"]["pull_requests"].as_u64().unwrap() < 60,
        "{sum}"
    );

    let (code, e) = s.get("/collections/20990101T000000Z-abcdef").await;
    assert_eq!(code, 404, "{e}");
    // Nothing printed the token.
    assert!(!format!("{b}{cp}{sum}{c}{r}{l}{w}").contains(TOKEN));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_second_collection_while_one_runs_gets_409_with_the_running_id() {
    let sim = Simulator::start(&OrgSpec::new("acme", 2, 80, 72), SimOptions::default(), 0)
        .await
        .unwrap();
    sim.set_faults(FaultPlan::slow(100));
    let s = Arc::new(
        start(
            &sim,
            Auth::None,
            &["--page-size", "5", "--page-size-max", "5"],
        )
        .await,
    );
    let first = {
        let s = s.clone();
        tokio::spawn(async move { s.post("/backfill", json!({"days": 400})).await })
    };
    // The first run holds the lock once its checkpoint appears.
    let mut busy = None;
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let (code, b) = s.post("/collect", json!({"hours": 1})).await;
        if code == 409 {
            busy = Some(b);
            break;
        }
        assert_eq!(code, 200, "{b}");
    }
    let busy = busy.expect("a concurrent /collect got 409");
    let (code, done) = first.await.unwrap();
    assert_eq!(code, 200, "{done}");
    assert_eq!(
        busy["running_collection_id"], done["collection_id"],
        "{busy}"
    );
    // The refusal names the holder's process (this one: the service runs in-process) and the
    // time its lease has left.
    let error = busy["error"].as_str().unwrap();
    assert!(
        error.contains(&format!(
            "is locked by collection {} (pid {} on host ",
            done["collection_id"].as_str().unwrap(),
            std::process::id()
        )) && error.contains("the lease ends in"),
        "{error}"
    );
}

/// `/readyz` and `/summary` only read: without a warehouse at WAREHOUSE_URL they answer 503
/// saying so and create nothing; once `ghstats init` made it, both answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_and_summary_create_no_warehouse() {
    let sim = Simulator::start(&OrgSpec::new("acme", 1, 5, 78), SimOptions::default(), 0)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cli = common::service::cli(dir.path(), Some(&sim.url()), &[], &["init"]);
    let url = cli.config.warehouse_url.clone();
    let db = dir.path().join("wh.db");
    let s = common::service::serve(cli.config, Auth::None, dir).await;
    let (code, ready) = s.get("/readyz").await;
    assert_eq!(code, 503, "{ready}");
    assert_eq!(ready["storage"], "ok", "{ready}");
    let why = ready["warehouse"].as_str().unwrap();
    assert!(
        why.contains(&format!("there is no SQLite file at {}", db.display()))
            && why.contains("ghstats init"),
        "{why}"
    );
    let (code, sum) = s.get("/summary").await;
    assert_eq!(code, 503, "{sum}");
    assert!(
        sum["error"].as_str().unwrap().contains("ghstats init"),
        "{sum}"
    );
    assert!(!db.exists(), "a read created the warehouse");

    ghstats::warehouse::open(&url)
        .await
        .unwrap()
        .init()
        .await
        .unwrap();
    let (code, ready) = s.get("/readyz").await;
    assert_eq!(code, 200, "{ready}");
    let (code, sum) = s.get("/summary").await;
    assert_eq!(code, 200, "{sum}");
    assert_eq!(sum["warehouse"]["pull_requests"], 0, "{sum}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_requests_get_4xx_with_a_message_and_the_server_keeps_serving() {
    let sim = Simulator::start(&OrgSpec::new("acme", 1, 5, 73), SimOptions::default(), 0)
        .await
        .unwrap();
    let s = start(&sim, Auth::None, &[]).await;
    let json_cases: Vec<(&str, Value)> = vec![
        ("/collect", json!({"hours": 0})),
        ("/collect", json!({"hours": -5})),
        ("/collect", json!({"hours": 1.5})),
        ("/collect", json!({"hours": "12"})),
        ("/collect", json!({"hours": 10_000_000})),
        ("/collect", json!({"hours": 2, "since": "2026-01-01"})),
        ("/collect", json!({"since": "yesterday"})),
        ("/collect", json!({"since": "2999-01-01T00:00:00Z"})),
        (
            "/collect",
            json!({"since": "2026-01-02", "until": "2026-01-01"}),
        ),
        ("/collect", json!({"until": "2026-01-01"})),
        (
            "/collect",
            json!({"since": "2026-01-01", "until": "2999-01-01"}),
        ),
        ("/collect", json!({"repos": ["a/b"]})),
        ("/collect", json!({"repos": [""]})),
        ("/collect", json!({"repos": []})),
        ("/collect", json!({"repos": "web"})),
        ("/collect", json!({"repos": [".."]})),
        ("/collect", json!({"hour": 2})),
        ("/collect", json!([1, 2])),
        ("/collect", json!("hours")),
        ("/backfill", json!({})),
        ("/backfill", json!({"days": 0})),
        ("/backfill", json!({"days": -1})),
        ("/backfill", json!({"days": 100_000})),
        ("/backfill", json!({"days": 7000})),
        ("/backfill", json!({"days": 10, "all": true})),
        ("/backfill", json!({"all": false})),
        ("/backfill", json!({"all": "yes"})),
        ("/backfill", json!({"days": "180"})),
        ("/backfill", json!({"days": 10, "repos": ["bad name"]})),
        ("/backfill", json!({"days": 10, "extra": true})),
        ("/stars", json!({"target": 0})),
        ("/stars", json!({"target": -3})),
        ("/stars", json!({"target": "100"})),
        ("/stars", json!({"target": 100_000_000})),
        ("/stars", json!({"query": "is:public created:>2020-01-01"})),
        ("/stars", json!({"query": "sort:stars"})),
        ("/stars", json!({"query": "x\u{0}y"})),
        ("/stars", json!({"created_from": "2001-01-01"})),
        ("/stars", json!({"created_from": "2999-01-01"})),
        ("/stars", json!({"created_from": "last year"})),
        ("/stars", json!({"rest_search": "sometimes"})),
        ("/stars", json!({"targets": 5})),
        ("/commits", json!({})),
        ("/commits", json!({"repos": []})),
        ("/commits", json!({"repos": ["a"]})),
        ("/commits", json!({"repos": ["a/b/c"]})),
        ("/commits", json!({"repos": ["../x"]})),
        ("/commits", json!({"repos": "a/b"})),
        ("/commits", json!({"repos": ["a/b"], "org": "acme"})),
        ("/commits", json!({"org": "bad org"})),
        ("/commits", json!({"top_starred": 0})),
        ("/commits", json!({"top_starred": -1})),
        ("/commits", json!({"repos": ["a/b"], "until": "tomorrow"})),
        ("/commits", json!({"repos": ["a/b"], "until": "2999-01-01"})),
        (
            "/commits",
            json!({"repos": ["a/b"], "since": "2026-02-01", "until": "2026-01-01"}),
        ),
        ("/commits", json!({"repos": ["a/b"], "branch": "main"})),
        ("/resume", json!({})),
        ("/resume", json!({"collection_id": "nope"})),
        ("/resume", json!({"collection_id": 42})),
        (
            "/resume",
            json!({"collection_id": "20990101T000000Z-abcdef"}),
        ),
        ("/load-gcs", json!({"date": "21-11-2026"})),
        ("/load-gcs", json!({"repo": "a/b"})),
        ("/load-gcs", json!({"collection_id": "x"})),
        ("/load-gcs", json!({"unknown": 1})),
        ("/wipe", json!({})),
        ("/wipe", json!({"repo": "../etc", "confirm": true})),
        ("/wipe", json!({"repo": "web", "confirm": "yes"})),
        ("/wipe", json!({"repo": "web", "force": true})),
    ];
    let mut n = 0;
    for (path, body) in &json_cases {
        let (code, b) = s.post(path, body.clone()).await;
        assert!((400..500).contains(&code), "{path} {body}: {code} {b}");
        assert!(
            b["error"].as_str().is_some_and(|m| !m.is_empty()),
            "{path} {body}: {b}"
        );
        n += 1;
    }
    // Raw bodies: malformed JSON, the wrong content type, a huge body, wrong methods and paths.
    let raw: Vec<(reqwest::Method, &str, Option<&str>, Vec<u8>)> = vec![
        (
            reqwest::Method::POST,
            "/collect",
            Some("application/json"),
            b"{\"hours\":".to_vec(),
        ),
        (
            reqwest::Method::POST,
            "/collect",
            Some("application/json"),
            b"not json".to_vec(),
        ),
        (
            reqwest::Method::POST,
            "/collect",
            Some("text/plain"),
            b"{\"hours\": 2}".to_vec(),
        ),
        (
            reqwest::Method::POST,
            "/collect",
            None,
            b"{\"hours\": 2}".to_vec(),
        ),
        (
            reqwest::Method::POST,
            "/collect",
            Some("application/json"),
            vec![b' '; 0]
                .into_iter()
                .chain(format!("{{\"hours\": 2, \"x\": \"{}\"}}", "a".repeat(100_000)).into_bytes())
                .collect(),
        ),
        (
            reqwest::Method::POST,
            "/backfill",
            Some("application/json"),
            vec![0xff, 0xfe],
        ),
        (reqwest::Method::GET, "/collect", None, vec![]),
        (reqwest::Method::DELETE, "/summary", None, vec![]),
        (reqwest::Method::GET, "/nope", None, vec![]),
        (reqwest::Method::GET, "/collections/not-an-id", None, vec![]),
        (
            reqwest::Method::PUT,
            "/wipe",
            Some("application/json"),
            b"{}".to_vec(),
        ),
    ];
    for (method, path, ctype, body) in raw {
        let mut req = s
            .http
            .request(method.clone(), format!("{}{path}", s.url))
            .body(body);
        if let Some(t) = ctype {
            req = req.header("content-type", t);
        }
        let r = req.send().await.unwrap();
        let code = r.status().as_u16();
        let b: Value = r.json().await.unwrap_or(Value::Null);
        assert!(
            (400..500).contains(&code),
            "{method} {path} {ctype:?}: {code} {b}"
        );
        assert!(b["error"].as_str().is_some(), "{method} {path}: {b}");
        n += 1;
    }
    assert!(n >= 40, "{n} kinds of bad request");
    assert_eq!(s.get("/healthz").await.0, 200);
    // Nothing was collected for any of them.
    let (_, sum) = s.get("/summary").await;
    assert_eq!(sum["warehouse"]["pull_requests"], 0, "{sum}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_auth_guards_the_jobs_but_not_health() {
    let sim = Simulator::start(&OrgSpec::new("acme", 1, 5, 74), SimOptions::default(), 0)
        .await
        .unwrap();
    let s = start(
        &sim,
        Auth::Token(ghstats::config::Secret::new("callers-secret")),
        &[],
    )
    .await;
    assert_eq!(s.get("/healthz").await.0, 200);
    let (code, b) = s.get("/summary").await;
    assert_eq!(code, 401, "{b}");
    let r = s
        .http
        .get(format!("{}/summary", s.url))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = s
        .http
        .get(format!("{}/summary", s.url))
        .bearer_auth("callers-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

#[tokio::test]
async fn no_auth_is_refused_off_loopback() {
    let sim = Simulator::start(&OrgSpec::new("acme", 1, 5, 75), SimOptions::default(), 0)
        .await
        .unwrap();
    let api = sim.url();
    let cli = ghstats::config::Cli::try_parse_from(["ghstats", "--api-url", &api, "init"]).unwrap();
    let state = Arc::new(AppState::new(Runner::new(cli.config, false), Auth::None));
    let err = ghstats::serve::serve(
        state,
        "0.0.0.0:0".parse().unwrap(),
        ghstats::serve::ConnectionLimits::default(),
        None,
        async {},
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("loopback"), "{err}");
}

/// A one-second run budget: a backfill answers `partial`, and `/resume` is called until it
/// answers `completed`; each call continues where the last stopped. The warehouse then equals
/// the ground truth exactly: nothing lost, nothing duplicated.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tiny_budget_backfill_completes_over_many_resume_calls() {
    use common::{assert_tables_eq, expected, warehouse_tables};
    let sim = Simulator::start(&OrgSpec::new("acme", 3, 120, 76), SimOptions::default(), 0)
        .await
        .unwrap();
    // Every response takes 120 ms, so one second covers a few pages.
    sim.set_faults(FaultPlan::slow(120));
    let s = start(
        &sim,
        Auth::None,
        &[
            "--run-budget",
            "1s",
            "--page-size",
            "5",
            "--page-size-max",
            "5",
            "--max-workers",
            "1",
        ],
    )
    .await;
    let (code, first) = s.post("/backfill", json!({"days": 400})).await;
    assert_eq!(code, 200, "{first}");
    assert_eq!(first["status"], "partial", "{first}");
    let id = first["collection_id"].as_str().unwrap().to_string();
    let mut calls = 0;
    let mut progress = Vec::new();
    loop {
        calls += 1;
        assert!(calls <= 80, "the backfill never completed");
        let (code, r) = s.post("/resume", json!({"collection_id": id})).await;
        assert_eq!(code, 200, "{r}");
        assert_eq!(r["collection_id"], id.as_str());
        let (_, cp) = s.get(&format!("/collections/{id}?full=true")).await;
        progress.push(cp["chunks"].as_array().map_or(0, |c| c.len()));
        if r["status"] == "completed" {
            break;
        }
        assert_eq!(r["status"], "partial", "{r}");
    }
    assert!(
        calls >= 3,
        "the budget should need several resumes, took {calls}"
    );
    assert!(
        progress.windows(2).all(|w| w[0] <= w[1]),
        "every resume keeps what the last wrote: {progress:?}"
    );
    sim.set_faults(FaultPlan::default());
    let window: ghstats::github::Window = serde_json::from_value(first["window"].clone()).unwrap();
    let wh = ghstats::warehouse::sqlite::SqliteWarehouse::open(&s.dir().join("wh.db"))
        .await
        .unwrap();
    assert_tables_eq(
        &warehouse_tables(&wh).await,
        &expected(&sim.world(), &window, &[]),
    );
}

/// A collection whose repository fails every time is resumed by the next `/collect` calls
/// (the new window waits), but only `FAILED_RESUMES` times: then the failure is reported and a
/// new window starts, so one broken repository cannot hold back every later window.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_collection_that_keeps_failing_stops_blocking_new_windows() {
    let sim = Simulator::start(&OrgSpec::new("acme", 2, 10, 77), SimOptions::default(), 0)
        .await
        .unwrap();
    let s = start(&sim, Auth::None, &[]).await;
    let (code, first) = s.post("/backfill", json!({"days": 400})).await;
    assert_eq!(code, 200, "{first}");
    let id = first["collection_id"].as_str().unwrap().to_string();
    // The collection failed on a repository that no longer exists.
    let path = s.dir().join(format!("lake/acme/_checkpoints/{id}.json"));
    let mut cp: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    cp["status"] = json!("failed");
    cp["repos"][0]["name"] = json!("ghost");
    cp["repos"][0]["state"] = json!("failed");
    cp["repos"][0].as_object_mut().unwrap().remove("walk");
    std::fs::write(&path, serde_json::to_vec(&cp).unwrap()).unwrap();

    let limit = ghstats::jobs::runner::FAILED_RESUMES;
    for attempt in 1..limit {
        let (code, r) = s.post("/collect", json!({"hours": 2})).await;
        assert_eq!(code, 200, "{r}");
        assert_eq!(
            r["collection_id"],
            id.as_str(),
            "attempt {attempt} resumes it"
        );
        assert_eq!(r["status"], "failed", "{r}");
        assert!(r.get("resumed").is_none());
    }
    let (code, r) = s.post("/collect", json!({"hours": 2})).await;
    assert_eq!(code, 200, "{r}");
    assert_ne!(r["collection_id"], id.as_str(), "a new window starts: {r}");
    assert_eq!(r["status"], "completed");
    assert_eq!(r["resumed"]["collection_id"], id.as_str());
    assert_eq!(r["resumed"]["status"], "failed");
    let (_, cp) = s.get(&format!("/collections/{id}")).await;
    assert_eq!(cp["resumes"], limit);
    // The next run starts from the new collection, not the given-up one.
    let (_, next) = s.post("/collect", json!({"hours": 2})).await;
    assert!(next.get("resumed").is_none(), "{next}");
    assert_eq!(next["status"], "completed");
}

/// Polls `GET /collections/{id}` until its status is not `running`; every answer is the compact
/// form. Returns the last answer and whether any poll saw the run in progress.
async fn poll_until_finished(s: &common::service::Service, id: &str) -> (Value, bool) {
    let mut saw_running = false;
    for _ in 0..1200 {
        let (code, p) = s.get(&format!("/collections/{id}")).await;
        assert_eq!(code, 200, "{p}");
        assert_eq!(p["collection_id"], id, "{p}");
        assert!(
            p.get("chunks").is_none() && p.get("repos").is_none(),
            "the compact form, not the checkpoint: {p}"
        );
        if p["status"] != "running" {
            return (p, saw_running);
        }
        saw_running = true;
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("collection {id} never finished");
}

/// `Prefer: respond-async` answers 202 at once with the collection id and where to poll; a
/// second run meanwhile gets 409 naming it (the lock is taken before the answer); polling
/// reaches `completed` and `loaded`, with repositories, rows, API cost and errors, and
/// `?full=true` still gives the whole checkpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn prefer_respond_async_answers_202_and_the_run_is_polled_to_completion() {
    let sim = Simulator::start(&OrgSpec::new("acme", 2, 80, 78), SimOptions::default(), 0)
        .await
        .unwrap();
    sim.set_faults(FaultPlan::slow(100));
    let s = start(
        &sim,
        Auth::None,
        &["--page-size", "5", "--page-size-max", "5"],
    )
    .await;
    let r = s
        .http
        .post(format!("{}/backfill", s.url))
        .header("prefer", "respond-async, wait=100")
        .json(&json!({"days": 400}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(r.headers()["preference-applied"], "respond-async");
    let accepted: Value = r.json().await.unwrap();
    let id = accepted["collection_id"].as_str().unwrap().to_string();
    assert_eq!(location, format!("/collections/{id}"));
    assert_eq!(accepted["location"], location.as_str());
    assert_eq!(accepted["status"], "running");

    // The run holds the lock: another one, waiting or not, is refused with its id.
    let (code, busy) = s.post("/collect", json!({"hours": 1})).await;
    assert_eq!(code, 409, "{busy}");
    assert_eq!(busy["running_collection_id"], id.as_str());
    let (code, busy) = s.post("/collect", json!({"hours": 1, "wait": false})).await;
    assert_eq!(code, 409, "{busy}");

    let (done, saw_running) = poll_until_finished(&s, &id).await;
    assert!(saw_running, "the answer came before the run ended");
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["loaded"], true, "{done}");
    assert_eq!(done["kind"], "backfill", "{done}");
    assert_eq!(
        done["repositories"],
        json!({"total": 2, "done": 2, "failed": 0})
    );
    let prs = done["pull_requests"].as_u64().unwrap();
    assert!(prs > 60, "{done}");
    assert_eq!(done["rows"]["pull_requests"], prs, "{done}");
    assert!(done["api_cost"]["graphql_queries"].as_u64().unwrap() > 0);
    assert_eq!(done["errors"], json!([]));
    // Loaded means in the warehouse.
    let (_, sum) = s.get("/summary").await;
    assert_eq!(sum["warehouse"]["pull_requests"], prs, "{sum}");

    let (code, full) = s.get(&format!("/collections/{id}?full=true")).await;
    assert_eq!(code, 200, "{full}");
    assert!(!full["chunks"].as_array().unwrap().is_empty(), "{full}");
    assert_eq!(full["repos"].as_array().unwrap().len(), 2);
    assert!(
        full.to_string().len() > 3 * done.to_string().len(),
        "the compact form is smaller"
    );
    let (code, e) = s.get(&format!("/collections/{id}?full=maybe")).await;
    assert_eq!(code, 400, "{e}");
    let (code, e) = s.get(&format!("/collections/{id}?fields=all")).await;
    assert_eq!(code, 400, "{e}");
    assert!(e["error"].as_str().unwrap().contains("full"), "{e}");
}

/// `"wait": false` in the body does the same for `/collect` and `/resume`; `"wait": true` wins
/// over the header and answers when done, as without either.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wait_false_answers_202_and_wait_true_answers_when_done() {
    let sim = Simulator::start(&OrgSpec::new("acme", 2, 20, 79), SimOptions::default(), 0)
        .await
        .unwrap();
    let s = start(&sim, Auth::None, &[]).await;
    let (code, accepted) = s.post("/collect", json!({"hours": 2, "wait": false})).await;
    assert_eq!(code, 202, "{accepted}");
    let id = accepted["collection_id"].as_str().unwrap().to_string();
    let (done, _) = poll_until_finished(&s, &id).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["loaded"], true, "{done}");

    let (code, accepted) = s
        .post("/resume", json!({"collection_id": id, "wait": false}))
        .await;
    assert_eq!(code, 202, "{accepted}");
    assert_eq!(accepted["collection_id"], id.as_str());
    let (done, _) = poll_until_finished(&s, &id).await;
    assert_eq!(done["status"], "completed", "{done}");

    let r = s
        .http
        .post(format!("{}/backfill", s.url))
        .header("prefer", "respond-async")
        .json(&json!({"days": 400, "wait": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.headers().get("preference-applied").is_none());
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["status"], "completed", "{b}");
    assert!(b["load"].is_object(), "{b}");
    // Other preferences are not asynchronous requests.
    let r = s
        .http
        .post(format!("{}/collect", s.url))
        .header("prefer", "return=minimal")
        .json(&json!({"hours": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

/// A background run that fails before its collection has a checkpoint still reports the
/// failure and its cause to whoever polls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_background_run_that_fails_reports_its_error_when_polled() {
    let sim = Simulator::start(&OrgSpec::new("acme", 1, 5, 80), SimOptions::default(), 0)
        .await
        .unwrap();
    let s = start(&sim, Auth::None, &[]).await;
    let (code, accepted) = s
        .post(
            "/collect",
            json!({"repos": ["no-such-repo"], "wait": false}),
        )
        .await;
    assert_eq!(code, 202, "{accepted}");
    let id = accepted["collection_id"].as_str().unwrap().to_string();
    let (done, _) = poll_until_finished(&s, &id).await;
    assert_eq!(done["status"], "failed", "{done}");
    assert!(
        done["errors"][0]
            .as_str()
            .unwrap()
            .contains("no-such-repo is not in the organization"),
        "{done}"
    );
    assert_eq!(done["loaded"], false);
    // The lock was released: the next run goes.
    let (code, c) = s.post("/collect", json!({"hours": 1})).await;
    assert_eq!(code, 200, "{c}");
}

/// A checkpoint left saying `running` by a run whose process ended (no run holds the lock) is
/// reported `partial`, so a poller stops waiting; `/resume` then completes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_checkpoint_that_no_run_holds_is_reported_partial() {
    let sim = Simulator::start(&OrgSpec::new("acme", 2, 10, 81), SimOptions::default(), 0)
        .await
        .unwrap();
    let s = start(&sim, Auth::None, &[]).await;
    let (code, first) = s.post("/backfill", json!({"days": 400})).await;
    assert_eq!(code, 200, "{first}");
    let id = first["collection_id"].as_str().unwrap().to_string();
    // As a killed run leaves it: running, a repository not done, the lock gone.
    let path = s.dir().join(format!("lake/acme/_checkpoints/{id}.json"));
    let mut cp: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    cp["status"] = json!("running");
    cp["repos"][1]["state"] = json!("in_progress");
    std::fs::write(&path, serde_json::to_vec(&cp).unwrap()).unwrap();
    assert!(!s.dir().join("lake/acme/_locks/run.json").exists());

    let (code, p) = s.get(&format!("/collections/{id}")).await;
    assert_eq!(code, 200, "{p}");
    assert_eq!(p["status"], "partial", "{p}");
    assert!(p["note"].as_str().unwrap().contains("/resume"), "{p}");
    assert_eq!(p["repositories"]["done"], 1, "{p}");

    let (code, r) = s.post("/resume", json!({"collection_id": id})).await;
    assert_eq!(code, 200, "{r}");
    assert_eq!(r["status"], "completed", "{r}");
    let (_, p) = s.get(&format!("/collections/{id}")).await;
    assert_eq!(p["status"], "completed", "{p}");
    assert!(p.get("note").is_none(), "{p}");
}

/// On shutdown a background run stops at a page boundary like a run inside a request: the
/// server returns only once it has written its checkpoint (`partial`) and released the lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shutdown_waits_for_background_runs_to_checkpoint_and_release_the_lock() {
    let sim = Simulator::start(&OrgSpec::new("acme", 2, 80, 82), SimOptions::default(), 0)
        .await
        .unwrap();
    sim.set_faults(FaultPlan::slow(100));
    let dir = tempfile::tempdir().unwrap();
    let cli = common::service::cli(
        dir.path(),
        Some(&sim.url()),
        &["--page-size", "5", "--page-size-max", "5"],
        &["init"],
    );
    let state = Arc::new(AppState::new(Runner::new(cli.config, false), Auth::None));
    let (url, stop_tx, server) = serve_until_stopped(state).await;
    let http = reqwest::Client::new();
    let accepted: Value = http
        .post(format!("{url}/backfill"))
        .json(&json!({"days": 400, "wait": false}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = accepted["collection_id"].as_str().unwrap().to_string();
    // Wait until the run has written a page.
    let checkpoint = dir.path().join(format!("lake/acme/_checkpoints/{id}.json"));
    let lock = dir.path().join("lake/acme/_locks/run.json");
    for _ in 0..600 {
        let r = http.get(format!("{url}/collections/{id}")).send().await;
        let p: Value = r.unwrap().json().await.unwrap();
        if p["pull_requests"].as_u64().unwrap_or(0) > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(lock.exists(), "the run holds the lock");
    drop(http);
    stop_tx.send(()).unwrap();
    server.await.unwrap().unwrap();
    assert!(
        !lock.exists(),
        "the run released the lock before the server returned"
    );
    let cp: Value = serde_json::from_str(&std::fs::read_to_string(&checkpoint).unwrap()).unwrap();
    assert_eq!(
        cp["status"], "partial",
        "stopped at a page boundary: {}",
        cp["status"]
    );
}

/// Rows of `gharchive_events` in the service's SQLite warehouse.
fn gharchive_rows(dir: &std::path::Path) -> i64 {
    rusqlite::Connection::open(dir.join("wh.db"))
        .unwrap()
        .query_row("SELECT COUNT(*) FROM gharchive_events", [], |r| r.get(0))
        .unwrap()
}

/// `ghstats serve` for `state` on a free loopback port: its URL, the sender that shuts it down,
/// and the server's task.
async fn serve_until_stopped(
    state: Arc<AppState>,
) -> (
    String,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(ghstats::serve::serve(
        state,
        "127.0.0.1:0".parse().unwrap(),
        ghstats::serve::ConnectionLimits::default(),
        Some(ready_tx),
        async move {
            let _ = stop_rx.await;
        },
    ));
    let url = format!("http://{}", ready_rx.await.unwrap());
    (url, stop_tx, server)
}

/// `2024-03-10T04`, as bodies give hours.
fn hour_arg(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H").to_string()
}

/// `POST /gharchive` with a range, again (skipped), with `force` (nothing changes), and with
/// no body, as the hourly Scheduler job sends it: every hour after the last one ingested, up
/// to the newest published. `Prefer: respond-async` is not applied: the answer is the result.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gharchive_over_http_ingests_a_range_then_every_hour_since_the_last() {
    use ghstats::gharchive::newest_published;
    let sim = Simulator::start(&OrgSpec::new("acme", 1, 1, 90), SimOptions::default(), 0)
        .await
        .unwrap();
    sim.set_gharchive(github_sim::GhArchiveSpec::new(5, 120))
        .unwrap();
    let archive = sim.gharchive_url();
    let s = start(&sim, Auth::None, &["--gharchive-url", &archive]).await;
    let newest = newest_published(chrono::Utc::now());
    let h = |back: i64| newest - chrono::Duration::hours(back);
    let range = json!({"from": hour_arg(h(5)), "to": hour_arg(h(3))});
    let events: usize = (3..=5)
        .map(|b| sim.gharchive_truth(h(b)).events.len())
        .sum();

    let (code, r) = s.post("/gharchive", range.clone()).await;
    assert_eq!(code, 200, "{r}");
    assert_eq!(
        (&r["status"], &r["hours_selected"], &r["hours_ingested"]),
        (&json!("completed"), &json!(3), &json!(3)),
        "{r}"
    );
    assert_eq!(r["events"], events, "{r}");
    assert_eq!(gharchive_rows(s.dir()), events as i64);

    let (code, again) = s.post("/gharchive", range.clone()).await;
    assert_eq!(code, 200, "{again}");
    assert_eq!(
        (&again["hours_skipped"], &again["hours_ingested"]),
        (&json!(3), &json!(0)),
        "{again}"
    );
    let mut forced = range.clone();
    forced["force"] = json!(true);
    let (code, forced) = s.post("/gharchive", forced).await;
    assert_eq!(code, 200, "{forced}");
    assert_eq!(forced["hours_ingested"], 3, "{forced}");
    assert_eq!(
        gharchive_rows(s.dir()),
        events as i64,
        "force changes nothing"
    );

    // No body: the hours after the last one ingested. A clock that passes an hour meanwhile
    // adds the newest one; none before h(2) is taken again.
    let r = s
        .http
        .post(format!("{}/gharchive", s.url))
        .header("prefer", "respond-async")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.headers().get("preference-applied").is_none());
    let since: Value = r.json().await.unwrap();
    assert_eq!(
        (&since["status"], &since["hours_skipped"]),
        (&json!("completed"), &json!(0)),
        "{since}"
    );
    let took: Vec<chrono::DateTime<chrono::Utc>> = since["hours"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["hour"].as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(took[..3], [h(2), h(1), h(0)], "{since}");
    assert!(took.len() <= 4, "{since}");
    let total: usize = took
        .iter()
        .map(|t| sim.gharchive_truth(*t).events.len())
        .sum::<usize>()
        + events;
    assert_eq!(gharchive_rows(s.dir()), total as i64);
}

/// Bodies that name no hours GH Archive can have get 400 saying what to fix, before any lock
/// is taken or any hour asked for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gharchive_bodies_that_name_no_valid_hours_get_400_saying_what_to_fix() {
    let sim = Simulator::start(&OrgSpec::new("acme", 1, 1, 91), SimOptions::default(), 0)
        .await
        .unwrap();
    let archive = sim.gharchive_url();
    let s = start(&sim, Auth::None, &["--gharchive-url", &archive]).await;
    // One hour more than GH Archive has published (within the 20-year cap until 2031).
    let published = (ghstats::gharchive::newest_published(chrono::Utc::now())
        - ghstats::gharchive::first_hour())
    .num_hours()
        + 1;
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"from": "2024-01-02T00", "to": "2024-01-01T00"}),
            "to 2024-01-01T00 is before from 2024-01-02T00",
        ),
        (
            json!({"from": "2024-01-01T25", "to": "2024-01-02T00"}),
            "from: \"2024-01-01T25\": the hour must be 0 to 23",
        ),
        (
            json!({"from": "2024-01-01T00", "to": "tomorrow"}),
            "to: \"tomorrow\" is not an hour: give YYYY-MM-DDTHH",
        ),
        (
            json!({"from": "2010-01-01T00", "to": "2011-03-01T00"}),
            "before GH Archive's first hour, 2011-02-12T00",
        ),
        (
            json!({"from": "2099-01-01T00", "to": "2099-01-01T01"}),
            "to 2099-01-01T01 is not published yet",
        ),
        (json!({"from": "2024-01-01T00"}), "give both from and to"),
        (json!({"to": "2024-01-01T00"}), "give both from and to"),
        (json!({"hours": 0}), "hours must be positive, not 0"),
        (json!({"hours": -3}), "hours must be positive, not -3"),
        (json!({"hours": 1.5}), "invalid type"),
        (json!({"hours": "6"}), "invalid type"),
        (
            json!({"hours": 10_000_000_000_i64}),
            "hours must be 1 to 175680, not 10000000000",
        ),
        (
            json!({"hours": 200_000}),
            "hours must be 1 to 175680, not 200000",
        ),
        (
            json!({"hours": (published + 1).min(175_680)}),
            "reaches back before GH Archive's first hour",
        ),
        (
            json!({"hours": 2, "from": "2024-01-01T00", "to": "2024-01-01T01"}),
            "either hours or from/to, not both",
        ),
        (json!({"force": "yes"}), "invalid type"),
        (json!({"wait": false}), "unknown field `wait`"),
        (json!({"shard": "0/2"}), "unknown field `shard`"),
        (json!([1, 2]), "the body is not valid"),
    ];
    for (body, want) in &cases {
        let (code, b) = s.post("/gharchive", body.clone()).await;
        assert_eq!(code, 400, "{body}: {b}");
        let error = b["error"].as_str().unwrap_or_default();
        assert!(error.contains(want), "{body}: {error:?} lacks {want:?}");
    }
    // Nothing was done for any of them: no lock, no object.
    assert!(!s.dir().join("lake/gharchive").exists());
}

/// While a `/gharchive` run holds GH Archive's lock, a second gets 409 naming the holder (a bad
/// body still gets 400: it is checked first). On shutdown (SIGTERM) the run finishes the hour
/// in hand, answers `partial` with the hours left, and releases the lock before the server
/// returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gharchive_gets_409_while_a_run_holds_its_lock_and_answers_partial_on_shutdown() {
    let spec = github_sim::GhArchiveSpec::new(3, 50);
    let hours: Vec<chrono::DateTime<chrono::Utc>> = (4..7)
        .map(|h| ghstats::gharchive::parse_hour(&format!("2024-03-10T{h:02}")).unwrap())
        .collect();
    let first_events = github_sim::gharchive::truth(&spec, hours[0]).events.len();
    let (archive, mut asked, release) = common::archive::gated(
        common::archive::hour_files(&spec, &hours),
        github_sim::gharchive::file_name(hours[0]),
    )
    .await;

    let dir = tempfile::tempdir().unwrap();
    let cli = common::service::cli(dir.path(), None, &["--gharchive-url", &archive], &["init"]);
    let state = Arc::new(AppState::new(Runner::new(cli.config, false), Auth::None));
    let stopping = state.runner.stop.clone();
    let (url, stop_tx, server) = serve_until_stopped(state).await;
    let http = reqwest::Client::new();
    let post = |body: Value| {
        let r = http.post(format!("{url}/gharchive")).json(&body).send();
        async move {
            let r = r.await.unwrap();
            let code = r.status().as_u16();
            (code, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let run = tokio::spawn(post(
        json!({"from": hour_arg(hours[0]), "to": hour_arg(hours[2])}),
    ));
    // The run holds the lock while it downloads its first hour.
    asked.recv().await.unwrap();
    let lock = dir.path().join("lake/gharchive/_locks/gharchive.json");
    assert!(lock.exists());
    let (code, busy) = post(json!({})).await;
    assert_eq!(code, 409, "{busy}");
    assert!(
        busy["running_collection_id"]
            .as_str()
            .is_some_and(|h| h.starts_with("gharchive-")),
        "{busy}"
    );
    assert!(
        busy["error"]
            .as_str()
            .unwrap()
            .contains("the lease ends in"),
        "{busy}"
    );
    let (code, bad) = post(json!({"hours": 0})).await;
    assert_eq!(code, 400, "{bad}");

    // Shutdown, then the first hour arrives: it is finished, the other two are left.
    stop_tx.send(()).unwrap();
    while !stopping.load(std::sync::atomic::Ordering::Relaxed) {
        tokio::task::yield_now().await;
    }
    release.add_permits(1);
    let (code, r) = run.await.unwrap();
    assert_eq!(code, 200, "{r}");
    assert_eq!(
        (
            &r["status"],
            &r["hours_ingested"],
            &r["hours_left"],
            &r["events"]
        ),
        (
            &json!("partial"),
            &json!(1),
            &json!(2),
            &json!(first_events)
        ),
        "{r}"
    );
    drop(http);
    server.await.unwrap().unwrap();
    assert!(!lock.exists(), "the run released the lock");
    assert_eq!(gharchive_rows(dir.path()), first_events as i64);
}

/// A client that hangs up on `POST /gharchive` mid-run (a Scheduler's attempt deadline, a
/// `curl --max-time`) does not stop the run: it ends, every hour is in the warehouse, and the
/// lock is released, so the next call is not refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_hanging_up_on_gharchive_does_not_stop_the_run() {
    let spec = github_sim::GhArchiveSpec::new(4, 40);
    let hours: Vec<chrono::DateTime<chrono::Utc>> = (4..6)
        .map(|h| ghstats::gharchive::parse_hour(&format!("2024-03-10T{h:02}")).unwrap())
        .collect();
    let want: usize = hours
        .iter()
        .map(|h| github_sim::gharchive::truth(&spec, *h).events.len())
        .sum();
    let (archive, mut asked, release) = common::archive::gated(
        common::archive::hour_files(&spec, &hours),
        github_sim::gharchive::file_name(hours[0]),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let cli = common::service::cli(dir.path(), None, &["--gharchive-url", &archive], &["init"]);
    let state = Arc::new(AppState::new(Runner::new(cli.config, false), Auth::None));
    let (url, stop_tx, server) = serve_until_stopped(state).await;
    let body = json!({"from": hour_arg(hours[0]), "to": hour_arg(hours[1])});
    let hung_up = {
        let (url, body) = (url.clone(), body.clone());
        tokio::spawn(async move {
            reqwest::Client::new()
                .post(format!("{url}/gharchive"))
                .json(&body)
                .send()
                .await
        })
    };
    // The run is downloading its first hour: the client goes away.
    asked.recv().await.unwrap();
    hung_up.abort();
    let _ = hung_up.await;
    release.add_permits(1);
    let lock = dir.path().join("lake/gharchive/_locks/gharchive.json");
    let http = reqwest::Client::new();
    // The run carries on to its end and releases the lock; then a call again finds every
    // hour ingested.
    let mut tries = 0;
    let answer = loop {
        tries += 1;
        assert!(
            tries < 400,
            "the lock is still held: the run stopped with its client"
        );
        let r = http
            .post(format!("{url}/gharchive"))
            .json(&body)
            .send()
            .await
            .unwrap();
        let code = r.status().as_u16();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        if code != 409 {
            break (code, v);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(answer.0, 200, "{}", answer.1);
    assert_eq!(answer.1["hours_skipped"], json!(2), "{}", answer.1);
    assert_eq!(gharchive_rows(dir.path()), want as i64);
    drop(http);
    stop_tx.send(()).unwrap();
    server.await.unwrap().unwrap();
    assert!(!lock.exists(), "the run released the lock");
}
