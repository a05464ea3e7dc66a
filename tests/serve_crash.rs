//! The service killed with SIGKILL at random moments of a backfill, several times: each time it
//! is restarted and asked to `/resume` (after the dead run's lock expires). Once a resume
//! completes, the warehouse equals the simulator's ground truth exactly: nothing lost, nothing
//! duplicated.

mod common;

use common::service::{free_port, wait_up};
use common::*;
use ghstats::warehouse::sqlite::SqliteWarehouse;
use github_sim::{FaultPlan, OrgSpec, SimOptions, Simulator};
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn spawn(dir: &std::path::Path, api: &str, port: u16) -> Child {
    command(dir, api, port)
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn command(dir: &std::path::Path, api: &str, port: u16) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ghstats"));
    c.current_dir(dir)
        .env_clear()
        .env("GITHUB_ORG", ORG)
        .env("GITHUB_TOKEN", "ghp_crashSECRET")
        .env("GITHUB_API_URL", api)
        .env("STORAGE_URL", "file://./lake")
        .env("WAREHOUSE_URL", "sqlite://./wh.db")
        .env("PAGE_SIZE", "5")
        .env("PAGE_SIZE_MAX", "5")
        .env("LOCK_LEASE", "2s")
        .env("LOG_FORMAT", "json")
        .env("PORT", port.to_string())
        .args(["serve"])
        .stdout(Stdio::null());
    c
}

fn collection_id(dir: &std::path::Path) -> Option<String> {
    std::fs::read_dir(dir.join(format!("lake/{ORG}/_checkpoints")))
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_suffix(".json")
                .map(str::to_string)
        })
        .next()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_at_random_moments_and_resumed_the_warehouse_equals_the_ground_truth() {
    let sim = Simulator::start(&OrgSpec::new(ORG, 3, 150, 81), SimOptions::default(), 0)
        .await
        .unwrap();
    sim.set_faults(FaultPlan::slow(40));
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let mut kills = 0;
    let mut rng_state = 0x9e37_79b9_u64;
    let mut next_delay = || {
        rng_state = rng_state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        Duration::from_millis(300 + (rng_state >> 33) % 900)
    };
    let mut attempts = 0;
    let done: Value = loop {
        attempts += 1;
        assert!(attempts < 100, "never completed");
        let port = free_port();
        let url = format!("http://127.0.0.1:{port}");
        let mut child = spawn(dir.path(), &sim.url(), port);
        wait_up(&http, &url).await;
        let request = match collection_id(dir.path()) {
            None => http
                .post(format!("{url}/backfill"))
                .json(&json!({"days": 400})),
            Some(id) => http
                .post(format!("{url}/resume"))
                .json(&json!({"collection_id": id})),
        };
        let call = tokio::spawn(async move { request.send().await });
        if kills < 4 {
            tokio::time::sleep(next_delay()).await;
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            let _ = call.await;
            kills += 1;
            continue;
        }
        let response = call.await.unwrap().unwrap();
        let code = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        if code == 409 {
            // The dead run's lock has not expired yet.
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        }
        assert_eq!(code, 200, "{body}");
        if body["status"] == "completed" {
            break body;
        }
    };
    assert_eq!(kills, 4);
    assert!(
        done["note"].is_null(),
        "the last resume did the rest: {done}"
    );
    let wh = SqliteWarehouse::open(&dir.path().join("wh.db"))
        .await
        .unwrap();
    // The collection's window is half-open and ends when the backfill started: what changed
    // after that belongs to the next collection.
    let window: ghstats::github::Window = serde_json::from_value(done["window"].clone()).unwrap();
    assert_tables_eq(
        &warehouse_tables(&wh).await,
        &expected(&sim.world(), &window, &[]),
    );
}

/// The service's logs are JSON lines Cloud Logging reads natively (`severity`, `message`), the
/// lines of a request carry its trace, and no line holds the GitHub token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_are_cloud_logging_json_with_the_request_trace_and_no_token() {
    let sim = Simulator::start(&OrgSpec::new(ORG, 1, 10, 82), SimOptions::default(), 0)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let log = std::fs::File::create(dir.path().join("log")).unwrap();
    let mut child = command(dir.path(), &sim.url(), port)
        .env("GOOGLE_CLOUD_PROJECT", "my-proj")
        .stderr(log)
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    wait_up(&http, &url).await;
    let r = http
        .post(format!("{url}/backfill"))
        .header(
            "x-cloud-trace-context",
            "105445aa7843bc8bf206b12000100000/1;o=1",
        )
        .json(&json!({"days": 400}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    child.kill().unwrap();
    child.wait().unwrap();
    let text = std::fs::read_to_string(dir.path().join("log")).unwrap();
    assert!(
        !text.contains("ghp_crashSECRET"),
        "the token is in the logs"
    );
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect();
    assert!(lines
        .iter()
        .all(|l| l["severity"].is_string() && l["message"].is_string()));
    let started = lines
        .iter()
        .find(|l| l["message"] == "Collection started.")
        .expect("the collection logs its start");
    assert_eq!(
        started["logging.googleapis.com/trace"],
        "projects/my-proj/traces/105445aa7843bc8bf206b12000100000"
    );
    assert_eq!(started["severity"], "INFO");
    assert_eq!(started["path"], "/backfill");
}
