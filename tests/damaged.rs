//! Damaged stored files never block the rest: a truncated checkpoint is named and set aside and
//! the next collection starts (its chunks still load), a garbage chunk is named and left out of
//! the load while the others load, a chunk deleted by `wipe` is skipped and named, and an
//! unreadable lock is held only until a lease after its last write.

mod common;

use ghstats::exit;
use ghstats::lake::lock::{LeaseLock, LockError};
use ghstats::lake::Lake;
use ghstats::serve::Auth;
use github_sim::{FaultPlan, OrgSpec, SimOptions, Simulator};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;

const TOKEN: &str = "ghp_damagedSECRETtoken9";

/// A directory with a `.env` for `sim`: a local lake, SQLite, JSON logs, and `extra` lines.
fn setup(sim: &Simulator, extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        format!("GITHUB_ORG=acme\nGITHUB_TOKEN={TOKEN}\nGITHUB_API_URL={}\nSTORAGE_URL=file://./lake\nWAREHOUSE_URL=sqlite://./wh.db\nLOG_FORMAT=json\n{extra}", sim.url()),
    )
    .unwrap();
    dir
}

/// Runs the binary in `dir` off the runtime (the simulator serves from it meanwhile).
async fn run(dir: &Path, args: &[&str]) -> Output {
    let dir = dir.to_path_buf();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || common::ghstats_bin(&dir).args(&args).output())
        .await
        .unwrap()
        .unwrap()
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn assert_status(out: &Output, want: u8) {
    assert_eq!(
        out.status.code(),
        Some(i32::from(want)),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        stderr(out)
    );
}

/// Pull requests the simulator serves to a collection of every repository (no archived or
/// fork).
fn truth(sim: &Simulator) -> u64 {
    sim.world()
        .repositories
        .iter()
        .filter(|r| !r.is_archived && !r.is_fork)
        .map(|r| r.pull_requests.len() as u64)
        .sum()
}

/// The warehouse's rows per table, by `ghstats summary`.
async fn warehouse_rows(dir: &Path, warehouse: &str) -> Value {
    let out = run(dir, &["--warehouse-url", warehouse, "summary", "--json"]).await;
    assert_status(&out, exit::COMPLETED);
    json(&out)["warehouse"].clone()
}

fn checkpoint_file(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("lake/acme/_checkpoints/{id}.json"))
}

/// Cuts a file to its first half, as a write interrupted mid-object would leave it.
fn truncate(path: &Path) {
    let whole = std::fs::read(path).unwrap();
    std::fs::write(path, &whole[..whole.len() / 2]).unwrap();
}

/// A truncated newest checkpoint used to fail every later run with "EOF while parsing",
/// naming no file. Now the next `collect` names it, sets it aside and completes (exit status 5
/// says damaged files were met); the run after is clean; the set-aside collection's chunks
/// load with `ghstats load --collection-id`, `summary` lists it and `resume` says what
/// happened to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_newest_checkpoint_is_set_aside_and_the_next_collect_completes() {
    let sim = Simulator::start(&OrgSpec::new("acme", 2, 40, 71), SimOptions::default(), 0)
        .await
        .unwrap();
    let dir = setup(&sim, "");
    let d = dir.path();
    let out = run(d, &["backfill", "--days", "400", "--no-load"]).await;
    assert_status(&out, exit::COMPLETED);
    let id = json(&out)["collection_id"].as_str().unwrap().to_string();
    let file = checkpoint_file(d, &id);
    truncate(&file);

    let out = run(d, &["collect", "--hours", "1"]).await;
    assert_status(&out, exit::DAMAGED);
    let r = json(&out);
    assert_eq!(r["status"], "completed", "{r}");
    assert_ne!(r["collection_id"], id.as_str());
    let damaged = r["damaged"].as_array().unwrap();
    assert_eq!(damaged.len(), 1, "{r}");
    let path = format!("acme/_checkpoints/{id}.json");
    assert_eq!(damaged[0]["path"], path.as_str());
    assert!(
        damaged[0]["reason"]
            .as_str()
            .unwrap()
            .contains("EOF while parsing"),
        "{r}"
    );
    assert_eq!(
        damaged[0]["set_aside_as"],
        format!("acme/_checkpoints/{id}.json.damaged").as_str()
    );
    assert!(stderr(&out).contains(&path), "{}", stderr(&out));
    assert!(
        !file.exists(),
        "the damaged checkpoint is still where it was"
    );
    assert!(d
        .join(format!("lake/acme/_checkpoints/{id}.json.damaged"))
        .exists());

    // Set aside, it blocks nothing: the next run is clean.
    let out = run(d, &["collect", "--hours", "1"]).await;
    assert_status(&out, exit::COMPLETED);
    assert!(json(&out).get("damaged").is_none());

    // Its chunks load by collection id (chunks are found by path, not by the checkpoint).
    let out = run(d, &["load", "--collection-id", &id]).await;
    assert_status(&out, exit::COMPLETED);
    let loaded = json(&out);
    assert!(loaded["chunks"].as_u64().unwrap() > 0, "{loaded}");
    assert_eq!(loaded["bad_chunks"], serde_json::json!([]));
    assert_eq!(
        warehouse_rows(d, "sqlite://./wh.db").await["pull_requests"],
        truth(&sim)
    );

    // summary lists it with where it went and why; resume says it cannot be resumed.
    let out = run(d, &["summary", "--json"]).await;
    assert_status(&out, exit::COMPLETED);
    let s = json(&out);
    assert_eq!(s["damaged"][0]["path"], path.as_str(), "{s}");
    assert!(s["damaged"][0]["set_aside_as"].is_string(), "{s}");
    let out = run(d, &["resume", "--collection-id", &id]).await;
    assert_status(&out, exit::FAILED);
    assert!(stderr(&out).contains("set aside"), "{}", stderr(&out));
}

/// One garbage chunk (not gzip) and one whose row does not fit its table used to make `load`
/// load nothing. Now the other chunks load, both are named with why, and the exit status is 5.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_chunks_are_named_and_the_other_chunks_load() {
    let sim = Simulator::start(&OrgSpec::new("acme", 2, 40, 72), SimOptions::default(), 0)
        .await
        .unwrap();
    let dir = setup(&sim, "");
    let d = dir.path();
    let out = run(d, &["backfill", "--days", "400", "--no-load"]).await;
    assert_status(&out, exit::COMPLETED);
    let id = json(&out)["collection_id"].as_str().unwrap().to_string();
    // Every chunk loads into a reference warehouse before any is damaged.
    let out = run(d, &["--warehouse-url", "sqlite://./ref.db", "load"]).await;
    assert_status(&out, exit::COMPLETED);
    let all_chunks = json(&out)["chunks"].as_u64().unwrap();
    let reference = warehouse_rows(d, "sqlite://./ref.db").await;

    let cp: Value =
        serde_json::from_slice(&std::fs::read(checkpoint_file(d, &id)).unwrap()).unwrap();
    let chunk = |repo: &str, table: &str| -> (String, u64) {
        let c = cp["chunks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["repository"] == repo && c["table"] == table)
            .unwrap_or_else(|| panic!("no {table} chunk of {repo}"));
        (
            c["path"].as_str().unwrap().to_string(),
            c["rows"].as_u64().unwrap(),
        )
    };
    let (garbage, garbage_rows) = chunk("repo-001", "pr_commits");
    let (misfit, misfit_rows) = chunk("repo-000", "issue_comments");
    std::fs::write(d.join("lake").join(&garbage), b"this is not gzip").unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, b"{\"nope\": 1}\n").unwrap();
    std::fs::write(d.join("lake").join(&misfit), gz.finish().unwrap()).unwrap();

    let out = run(d, &["load"]).await;
    assert_status(&out, exit::DAMAGED);
    let r = json(&out);
    assert_eq!(r["chunks"].as_u64().unwrap(), all_chunks - 2, "{r}");
    let bad: Vec<(&str, &str)> = r["bad_chunks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["path"].as_str().unwrap(), b["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(bad.len(), 2, "{r}");
    let reason = |p: &str| bad.iter().find(|b| b.0 == p).map(|b| b.1).unwrap_or("");
    assert!(reason(&garbage).contains("not gzip"), "{r}");
    assert!(reason(&misfit).contains("line 1"), "{r}");
    let err = stderr(&out);
    assert!(err.contains(&garbage) && err.contains(&misfit), "{err}");

    // Everything else is in the warehouse.
    let rows = warehouse_rows(d, "sqlite://./wh.db").await;
    for (table, n) in reference.as_object().unwrap() {
        let n = n.as_u64().unwrap();
        let want = match table.as_str() {
            "pr_commits" => n - garbage_rows,
            "issue_comments" => n - misfit_rows,
            _ => n,
        };
        assert_eq!(
            rows[table].as_u64(),
            Some(want),
            "{table}: {rows} vs {reference}"
        );
    }
    assert!(garbage_rows > 0 && misfit_rows > 0);
}

/// `wipe` between a partial run and its resume deletes chunks the checkpoint names. The resume's
/// load used to fail on them, and every later run with it. Now they are skipped and named
/// (`missing_chunks`), the collection is marked loaded and the new window runs; the same for a
/// completed collection left unloaded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wipe_during_a_partial_collection_leaves_later_collections_loaded() {
    let sim = Simulator::start(&OrgSpec::new("acme", 2, 120, 73), SimOptions::default(), 0)
        .await
        .unwrap();
    // Every response takes 150 ms: a one-second budget covers a few pages.
    sim.set_faults(FaultPlan::slow(150));
    let dir = setup(&sim, "RUN_BUDGET=1s\nPAGE_SIZE=5\nPAGE_SIZE_MAX=5\n");
    let d = dir.path();
    let out = run(d, &["backfill", "--days", "400"]).await;
    assert_status(&out, exit::PARTIAL);
    let id = json(&out)["collection_id"].as_str().unwrap().to_string();
    assert!(d.join("lake/acme/repo-000").exists());
    let out = run(d, &["wipe", "--repo", "repo-000", "--confirm"]).await;
    assert_status(&out, exit::COMPLETED);
    sim.set_faults(FaultPlan::default());

    let out = run(d, &["--run-budget", "5m", "collect", "--hours", "1"]).await;
    assert_status(&out, exit::COMPLETED);
    let r = json(&out);
    assert_eq!(r["status"], "completed", "{r}");
    let resumed = &r["resumed"];
    assert_eq!(resumed["collection_id"], id.as_str(), "{r}");
    assert_eq!(resumed["status"], "completed", "{r}");
    let missing = resumed["load"]["missing_chunks"].as_array().unwrap();
    assert!(!missing.is_empty(), "{r}");
    assert!(
        missing
            .iter()
            .all(|p| p.as_str().unwrap().starts_with("acme/repo-000/")),
        "{r}"
    );
    let cp: Value =
        serde_json::from_slice(&std::fs::read(checkpoint_file(d, &id)).unwrap()).unwrap();
    assert_eq!(cp["loaded"], true);
    // Nothing is left for the next run.
    let out = run(d, &["--run-budget", "5m", "collect", "--hours", "1"]).await;
    assert_status(&out, exit::COMPLETED);
    let r = json(&out);
    assert!(
        r.get("resumed").is_none() && r.get("loaded_first").is_none(),
        "{r}"
    );

    // A completed collection left unloaded, then a wipe: the next run loads the rest of it.
    let out = run(
        d,
        &[
            "--run-budget",
            "5m",
            "backfill",
            "--days",
            "400",
            "--no-load",
        ],
    )
    .await;
    assert_status(&out, exit::COMPLETED);
    let id = json(&out)["collection_id"].as_str().unwrap().to_string();
    let out = run(
        d,
        &["wipe", "--repo", "repo-001", "--confirm", "--warehouse"],
    )
    .await;
    assert_status(&out, exit::COMPLETED);
    let out = run(d, &["--run-budget", "5m", "collect", "--hours", "1"]).await;
    assert_status(&out, exit::COMPLETED);
    let r = json(&out);
    assert_eq!(r["loaded_first"]["collection_id"], id.as_str(), "{r}");
    let missing = r["loaded_first"]["missing_chunks"].as_array().unwrap();
    assert!(!missing.is_empty(), "{r}");
    assert!(missing
        .iter()
        .all(|p| p.as_str().unwrap().starts_with("acme/repo-001/")));
}

/// An unreadable lock names no holder and no expiry. It used to refuse every run forever
/// ("the lock object is unreadable"). Now it counts as held until a lease after it was last
/// written (a live holder's renewals rewrite it), then it is taken over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_lock_is_held_for_a_lease_after_its_last_write_then_taken_over() {
    let sim = Simulator::start(&OrgSpec::new("acme", 1, 10, 74), SimOptions::default(), 0)
        .await
        .unwrap();
    let dir = setup(&sim, "");
    let d = dir.path();
    let lock = d.join("lake/acme/_locks/run.json");
    std::fs::create_dir_all(lock.parent().unwrap()).unwrap();
    std::fs::write(&lock, b"{\"holder\": \"2026").unwrap();
    let out = run(d, &["collect", "--hours", "1"]).await;
    assert_status(&out, exit::LOCKED);
    let err = stderr(&out);
    assert!(
        err.contains("acme/_locks/run.json is unreadable") && err.contains("EOF"),
        "{err}"
    );
    // Last written more than a lease (5 minutes) ago: taken over.
    let ago = std::time::SystemTime::now() - std::time::Duration::from_secs(600);
    std::fs::File::options()
        .write(true)
        .open(&lock)
        .unwrap()
        .set_modified(ago)
        .unwrap();
    let out = run(d, &["collect", "--hours", "1"]).await;
    assert_status(&out, exit::COMPLETED);
    assert!(!lock.exists(), "the lock is released at the end");
}

/// The same on a store with compare-and-swap (memory here; GCS and S3 alike): an unreadable
/// lock is held while it is younger than the lease, and taken over once it is older.
#[tokio::test]
async fn an_unreadable_lock_is_taken_over_with_compare_and_swap() {
    let lake = Lake::new(
        std::sync::Arc::new(object_store::memory::InMemory::new()),
        None,
    );
    let org: ghstats::names::OrgName = "acme".parse().unwrap();
    lake.put(
        &lake.lock_path(&org),
        bytes::Bytes::from_static(b"\x00garbage"),
    )
    .await
    .unwrap();
    let hour = LeaseLock::new(lake.clone(), &org, std::time::Duration::from_secs(3600));
    match hour.acquire("20261121T090000Z-aaaaaa").await {
        Err(LockError::Held(by)) => {
            assert!(by.record.holder.contains("unreadable"), "{by}")
        }
        other => panic!("expected held, got {other:?}"),
    }
    let none = LeaseLock::new(lake.clone(), &org, std::time::Duration::ZERO);
    let lease = none.acquire("20261121T090000Z-bbbbbb").await.unwrap();
    assert_eq!(lease.record.holder, "20261121T090000Z-bbbbbb");
    let (now, _) = none.current().await.unwrap().unwrap();
    assert_eq!(now.holder, "20261121T090000Z-bbbbbb");
}

/// The service's `POST /collect` runs the same path: a truncated newest checkpoint is set aside
/// and named in the answer (200), `GET /summary` lists it, and `GET /collections/{id}` says it
/// was set aside.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_sets_a_damaged_checkpoint_aside_and_collects() {
    let sim = Simulator::start(&OrgSpec::new("acme", 2, 30, 75), SimOptions::default(), 0)
        .await
        .unwrap();
    let s = common::service::start(&sim, Auth::None, &[]).await;
    let (status, body) = s.post("/backfill", serde_json::json!({"days": 400})).await;
    assert_eq!(status, 200, "{body}");
    let id = body["collection_id"].as_str().unwrap().to_string();
    truncate(&checkpoint_file(s.dir(), &id));

    let (status, body) = s.post("/collect", serde_json::json!({"hours": 1})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "completed", "{body}");
    assert_eq!(
        body["damaged"][0]["path"],
        format!("acme/_checkpoints/{id}.json").as_str(),
        "{body}"
    );
    let (status, summary) = s.get("/summary").await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(
        summary["damaged"].as_array().map(Vec::len),
        Some(1),
        "{summary}"
    );
    let (status, body) = s.get(&format!("/collections/{id}")).await;
    assert_eq!(status, 404, "{body}");
    assert!(body.to_string().contains("set aside"), "{body}");
}
