//! The `ghstats` binary as a user runs it: configuration from a `.env` file, the collection id
//! announced and returned, chunks on disk, the token nowhere in the output, and bad input
//! refused with one readable line.

mod common;

use github_sim::{OrgSpec, SimOptions, Simulator};
use std::process::Command;

const TOKEN: &str = "ghp_cliSECRETtoken42";

fn ghstats(dir: &std::path::Path) -> Command {
    common::ghstats_bin(dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_reads_dotenv_and_writes_chunks_without_leaking_the_token() {
    let sim = Simulator::start(&OrgSpec::new("acme", 2, 60, 21), SimOptions::default(), 0)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        format!("GITHUB_ORG=acme\nGITHUB_TOKEN={TOKEN}\nGITHUB_API_URL={}\nSTORAGE_URL=file://./lake\nLOG_FORMAT=json\n", sim.url()),
    )
    .unwrap();
    let path = dir.path().to_path_buf();
    // The simulator serves from this runtime while the binary runs on a blocking thread.
    let out = tokio::task::spawn_blocking(move || {
        ghstats(&path).args(["backfill", "--days", "400"]).output()
    })
    .await
    .unwrap()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stderr: {stderr}");
    let result: serde_json::Value =
        serde_json::from_str(&stdout).expect("the result is JSON on stdout");
    let id = result["collection_id"].as_str().unwrap();
    assert!(
        stderr.contains(&format!("collection {id}")),
        "the id is announced at start: {stderr}"
    );
    assert_eq!(result["status"], "completed");
    assert_eq!(result["rows"]["pull_requests"], 60);
    let checkpoint = dir.path().join(format!("lake/acme/_checkpoints/{id}.json"));
    assert!(checkpoint.exists());
    let chunks = std::fs::read_dir(dir.path().join("lake/acme/repo-000/pull_requests"))
        .unwrap()
        .count();
    assert_eq!(chunks, 1, "one date folder");
    for text in [
        stdout.as_ref(),
        stderr.as_ref(),
        &std::fs::read_to_string(&checkpoint).unwrap(),
    ] {
        assert!(!text.contains(TOKEN), "the token leaked");
    }
    // Logs are JSON lines on stderr.
    assert!(stderr
        .lines()
        .filter(|l| l.starts_with('{'))
        .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()));
    // The collection was loaded into the default warehouse file beside the lake.
    assert_eq!(result["load"]["tables"]["pull_requests"]["inserted"], 60);
    assert!(dir.path().join("data/warehouse.db").exists());

    // summary: files, rows and bytes per repository, table and date, and the warehouse's rows.
    let path = dir.path().to_path_buf();
    let out = ghstats(&path).args(["summary", "--json"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let stored_prs: u64 = summary["stored"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["table"] == "pull_requests")
        .map(|s| s["rows"].as_u64().unwrap())
        .sum();
    assert_eq!(stored_prs, 60);
    assert_eq!(summary["warehouse"]["pull_requests"], 60);
    assert_eq!(summary["lake"]["pull_requests"], 60);
    assert_eq!(summary["collections"].as_array().map(Vec::len), Some(1));
    assert_eq!(summary["collections"][0]["collection_id"], id);
    assert_eq!(summary["collections"][0]["status"], "loaded");
    assert_eq!(summary["lock"], serde_json::Value::Null, "released");
    let text = ghstats(&path).arg("summary").output().unwrap();
    assert!(String::from_utf8_lossy(&text.stdout).contains("repo-000"));

    // load: the stored chunks again, filtered, with no GitHub calls; nothing changes.
    let ledger = sim.ledger();
    let date = chrono::Utc::now().format("%Y-%m-%d").to_string();
    for args in [
        vec!["load"],
        vec!["load", "--repo", "repo-000"],
        vec!["load", "--collection-id", id, "--date", &date],
    ] {
        let out = ghstats(&path).args(&args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(
            r["chunks"].as_u64().unwrap() > 0,
            "{args:?} selected no chunks"
        );
        for (t, l) in r["tables"].as_object().unwrap() {
            assert_eq!(
                (l["inserted"].as_u64(), l["updated"].as_u64()),
                (Some(0), Some(0)),
                "{args:?} {t}"
            );
        }
    }
    let none = ghstats(&path)
        .args(["load", "--date", "2001-01-01"])
        .output()
        .unwrap();
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&none.stdout).unwrap()["chunks"],
        0
    );
    assert_eq!(sim.ledger(), ledger, "load made GitHub calls");
}

#[test]
fn bad_input_fails_with_one_readable_line() {
    let dir = tempfile::tempdir().unwrap();
    for (args, expect) in [
        (vec!["collect", "--hours", "2"], "no organization"),
        (
            vec!["--org", "acme", "collect", "--hours", "2"],
            "no GitHub credentials",
        ),
        (
            vec![
                "--org",
                "acme",
                "--token",
                TOKEN,
                "collect",
                "--since",
                "2999-01-01",
            ],
            "starts in the future",
        ),
        (
            vec![
                "--org", "acme", "--token", TOKEN, "collect", "--repos", "a/b",
            ],
            "not a GitHub repository name",
        ),
        (
            vec![
                "--org",
                "acme",
                "--token",
                TOKEN,
                "--storage-url",
                "ftp://x",
                "collect",
            ],
            "unsupported STORAGE_URL",
        ),
        (
            vec!["--org", "acme", "--warehouse-url", "oracle://x", "summary"],
            "unsupported WAREHOUSE_URL",
        ),
        (
            vec!["--org", "acme", "load", "--collection-id", "nope"],
            "not a collection id",
        ),
        (
            vec!["--warehouse-url", "bigquery://my-project", "init"],
            "lacks a dataset",
        ),
        (
            vec![
                "--warehouse-url",
                "bigquery://my-project/ghstats?region=US",
                "init",
            ],
            "unknown BigQuery URL parameter",
        ),
        // Not GitHub's API: refused at start-up, not retried for 24 s.
        (
            vec![
                "--org",
                "acme",
                "--token",
                TOKEN,
                "--api-url",
                "ftp://ghe.example.com/api/v3",
                "collect",
            ],
            "must be http(s)",
        ),
        // Durations that once panicked (overflowing a deadline) or wrapped silently.
        (
            vec!["--run-budget", "18446744073709551615", "summary"],
            "at most 366 days",
        ),
        (
            vec!["--lock-lease", "100000000000h", "summary"],
            "at most 366 days",
        ),
        (
            vec!["--run-budget", "5124095576030432h", "summary"],
            "at most 366 days",
        ),
        (
            vec![
                "--org",
                "acme",
                "--token",
                TOKEN,
                "scheduled",
                "--interval",
                "100000000000h",
            ],
            "at most 366 days",
        ),
    ] {
        let out = ghstats(dir.path()).args(&args).output().unwrap();
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expect), "{args:?}: {stderr}");
        assert!(!stderr.contains(TOKEN), "{args:?} printed the token");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_persistence_chunks_live_only_until_loaded() {
    let sim = Simulator::start(&OrgSpec::new("acme", 2, 40, 22), SimOptions::default(), 0)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let url = sim.url();
    let out = tokio::task::spawn_blocking(move || {
        ghstats(&path)
            .args([
                "--org",
                "acme",
                "--token",
                TOKEN,
                "--api-url",
                &url,
                "--persist-to-gcs",
                "false",
                "backfill",
                "--days",
                "400",
            ])
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["load"]["tables"]["pull_requests"]["inserted"], 40);
    assert!(dir.path().join("data/warehouse.db").exists());
    assert!(
        !dir.path().join("data/lake").exists(),
        "nothing is kept in the storage URL"
    );
    let refused = ghstats(dir.path())
        .args(["--org", "acme", "--persist-to-gcs", "false", "load"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("PERSIST_TO_GCS=false"));
}

/// `ghstats init` creates the tables (on BigQuery the dataset too) and can run again: on the
/// embedded SQLite always, on the BigQuery emulator when scripts/services.sh runs it.
#[test]
fn init_creates_the_warehouse_and_is_safe_to_repeat() {
    let dir = tempfile::tempdir().unwrap();
    let mut urls = vec!["sqlite://./wh.db".to_string()];
    match (
        std::env::var("GHSTATS_TEST_BIGQUERY_ENDPOINT"),
        std::env::var("GHSTATS_TEST_BIGQUERY_PROJECT"),
    ) {
        (Ok(endpoint), Ok(project)) => urls.push(format!(
            "bigquery://{project}/cli_{:08x}?location=US&endpoint={endpoint}",
            rand::random::<u32>()
        )),
        _ => eprintln!("BigQuery part skipped: GHSTATS_TEST_BIGQUERY_ENDPOINT is not set"),
    }
    for url in urls {
        for _ in 0..2 {
            let out = ghstats(dir.path())
                .args(["--warehouse-url", &url, "init"])
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{url}: {stderr}");
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(v["row_counts"]["pull_requests"], 0, "{url}");
            // Every table the warehouse holds: pull requests, GH Archive, stars and commits.
            assert_eq!(
                v["tables"].as_array().map(Vec::len),
                Some(ghstats::tables::every().count()),
                "{url}"
            );
            assert!(
                v["tables"]
                    .as_array()
                    .unwrap()
                    .contains(&"repo_star_history".into()),
                "{url}"
            );
        }
    }
}

/// A backfill that runs out of its budget is continued by `ghstats resume` until it completes;
/// resuming it again says it is complete. `wipe` without `--confirm` deletes nothing and says so;
/// with it the repository's chunks and rows are gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_continues_a_partial_backfill_and_wipe_needs_confirm() {
    let sim = Simulator::start(&OrgSpec::new("acme", 2, 120, 23), SimOptions::default(), 0)
        .await
        .unwrap();
    // Every response takes 150 ms: a one-second budget covers a few pages.
    sim.set_faults(github_sim::FaultPlan::slow(150));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        format!("GITHUB_ORG=acme\nGITHUB_TOKEN={TOKEN}\nGITHUB_API_URL={}\nSTORAGE_URL=file://./lake\nWAREHOUSE_URL=sqlite://./wh.db\nRUN_BUDGET=1s\nPAGE_SIZE=5\nPAGE_SIZE_MAX=5\nLOG_FORMAT=json\n", sim.url()),
    )
    .unwrap();
    let run = |args: Vec<String>| {
        let path = dir.path().to_path_buf();
        async move {
            tokio::task::spawn_blocking(move || ghstats(&path).args(&args).output())
                .await
                .unwrap()
                .unwrap()
        }
    };
    let out = run(vec!["backfill".into(), "--days".into(), "400".into()]).await;
    // Partial has its own exit status, for cron wrappers.
    assert_eq!(
        out.status.code(),
        Some(i32::from(ghstats::exit::PARTIAL)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let first: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(first["status"], "partial", "{first}");
    let id = first["collection_id"].as_str().unwrap().to_string();
    let mut resumes = 0;
    let last = loop {
        resumes += 1;
        assert!(resumes < 60, "the backfill never completed");
        let out = run(vec!["resume".into(), "--collection-id".into(), id.clone()]).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains(TOKEN) && !String::from_utf8_lossy(&out.stdout).contains(TOKEN));
        let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let want = if r["status"] == "completed" {
            ghstats::exit::COMPLETED
        } else {
            ghstats::exit::PARTIAL
        };
        assert_eq!(out.status.code(), Some(i32::from(want)), "{r} {stderr}");
        assert_eq!(r["collection_id"], id.as_str());
        if r["status"] == "completed" {
            break r;
        }
    };
    assert!(resumes >= 2, "{resumes}");
    // Every pull request of both repositories is in the warehouse once.
    let out = run(vec!["summary".into(), "--json".into()]).await;
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        summary["warehouse"]["pull_requests"], 120,
        "{summary} {last}"
    );
    let again = run(vec!["resume".into(), "--collection-id".into(), id.clone()]).await;
    let again: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert!(
        again["note"]
            .as_str()
            .unwrap()
            .contains("already completed"),
        "{again}"
    );

    // Another run's live lock: refused with its own exit status, nothing done.
    let lock = dir.path().join("lake/acme/_locks/run.json");
    std::fs::create_dir_all(lock.parent().unwrap()).unwrap();
    let now = chrono::Utc::now();
    std::fs::write(
        &lock,
        serde_json::json!({"holder": "20990101T000000Z-aaaaaa", "acquired_at": now, "expires_at": now + chrono::Duration::minutes(5)}).to_string(),
    )
    .unwrap();
    let out = run(vec!["collect".into(), "--hours".into(), "1".into()]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(i32::from(ghstats::exit::LOCKED)),
        "{stderr}"
    );
    // A lock of an earlier build names no process: the refusal says what it can.
    assert!(
        stderr.contains("organization acme is locked by collection 20990101T000000Z-aaaaaa since")
            && stderr.contains("the lease ends in 4m")
            && stderr.contains("if that run is gone, rerun with --force")
            && !stderr.contains("dead"),
        "{stderr}"
    );
    std::fs::remove_file(&lock).unwrap();

    let out = run(vec!["wipe".into(), "--repo".into(), "repo-000".into()]).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs confirm"));
    assert!(dir.path().join("lake/acme/repo-000").exists());
    let out = run(vec![
        "wipe".into(),
        "--repo".into(),
        "repo-000".into(),
        "--confirm".into(),
        "--warehouse".into(),
    ])
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let wiped: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(wiped["chunks_deleted"].as_u64().unwrap() > 0, "{wiped}");
    assert!(
        wiped["warehouse_rows_deleted"].as_u64().unwrap() > 0,
        "{wiped}"
    );
    assert!(!dir.path().join("lake/acme/repo-000").exists());
}

/// `ghstats scheduled --interval 1s` starts a collection every second and prints each result;
/// SIGTERM ends it cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_collects_on_each_interval_until_sigterm() {
    use std::io::BufRead;
    let sim = Simulator::start(&OrgSpec::new("acme", 1, 10, 24), SimOptions::default(), 0)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut child = ghstats(dir.path())
        .args(["--org", "acme", "--token", TOKEN, "--api-url", &sim.url()])
        .args([
            "--storage-url",
            "file://./lake",
            "--warehouse-url",
            "sqlite://./wh.db",
        ])
        .args(["scheduled", "--interval", "1s"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let lines = tokio::task::spawn_blocking(move || {
        std::io::BufReader::new(stdout)
            .lines()
            .take(2)
            .map(|l| l.unwrap())
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    let ids: Vec<String> = lines
        .iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["status"], "completed", "{v}");
            v["collection_id"].as_str().unwrap().to_string()
        })
        .collect();
    assert_ne!(ids[0], ids[1]);
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "{status:?}");
}

/// The load is part of the crash-safe path: a completed collection that is not in the warehouse
/// (a `--no-load` run here, a load killed with SIGKILL below) is loaded by the next job that
/// loads, whatever its own window holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completed_collection_left_unloaded_is_loaded_by_the_next_run() {
    let sim = Simulator::start(&OrgSpec::new("acme", 3, 3000, 31), SimOptions::default(), 0)
        .await
        .unwrap();
    let truth: u64 = sim
        .world()
        .repositories
        .iter()
        .filter(|r| !r.is_archived && !r.is_fork)
        .map(|r| r.pull_requests.len() as u64)
        .sum();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        format!("GITHUB_ORG=acme\nGITHUB_TOKEN={TOKEN}\nGITHUB_API_URL={}\nSTORAGE_URL=file://./lake\nWAREHOUSE_URL=sqlite://./wh.db\nLOG_FORMAT=json\nLOCK_LEASE=1s\n", sim.url()),
    )
    .unwrap();
    let path = dir.path().to_path_buf();
    let run = |args: Vec<&'static str>| {
        let path = path.clone();
        async move {
            tokio::task::spawn_blocking(move || ghstats(&path).args(&args).output())
                .await
                .unwrap()
                .unwrap()
        }
    };
    let stored = || async {
        let out = run(vec!["summary", "--json"]).await;
        let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        s["warehouse"]["pull_requests"].as_u64().unwrap_or(0)
    };
    let checkpoints = dir.path().join("lake/acme/_checkpoints");
    let read_checkpoint = |id: &str| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(checkpoints.join(format!("{id}.json"))).unwrap())
            .unwrap()
    };

    // 1. A backfill without its load, then an hourly collect: the backfill lands first.
    let out = run(vec!["backfill", "--days", "400", "--no-load"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let first: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = first["collection_id"].as_str().unwrap().to_string();
    assert_eq!(read_checkpoint(&id)["loaded"], false);
    let out = run(vec!["collect", "--hours", "1"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stored().await, truth);
    assert_eq!(read_checkpoint(&id)["loaded"], true);

    // 2. A backfill killed with SIGKILL as soon as its checkpoint says completed (its load
    //    under way): the next run finishes the load.
    std::fs::remove_file(dir.path().join("wh.db")).unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let before: Vec<std::path::PathBuf> = std::fs::read_dir(&checkpoints)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    let mut child = ghstats(dir.path())
        .args(["backfill", "--days", "400"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut phase = "collecting";
    let killed_at = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break format!("not killed: it ended first ({status})");
        }
        let newest = std::fs::read_dir(&checkpoints)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| !before.contains(p))
            .max();
        if let Some(p) = newest {
            if let Ok(cp) =
                serde_json::from_slice::<serde_json::Value>(&std::fs::read(&p).unwrap_or_default())
            {
                if cp["status"] == "completed" {
                    phase = if cp["loaded"] == true {
                        "loaded"
                    } else {
                        "loading"
                    };
                    child.kill().unwrap();
                    child.wait().unwrap();
                    break format!("killed while {phase}");
                }
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    eprintln!("backfill: {killed_at}");
    // The dead run's lease (1 s) runs out; the next run takes the lock over.
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let out = run(vec!["collect", "--hours", "1"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stored().await, truth, "after a backfill {killed_at}");
    let _ = phase;
}

/// A GITHUB_API_URL that points at a web page, not GitHub's API: one line that says so, with
/// the URL (no credentials) and the status, instead of an HTML dump or a JSON parse error.
#[test]
fn a_web_page_at_github_api_url_is_named_as_not_githubs_api() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Serves a login page to a bounded number of connections, then ends.
    let server = std::thread::spawn(move || {
        for _ in 0..4 {
            let Ok((mut conn, _)) = listener.accept() else {
                return;
            };
            let mut buf = [0u8; 8192];
            let _ = conn.read(&mut buf);
            let page =
                "<!doctype html>\n<html><body><h1>Sign in</h1>\n<p>to continue</p></body></html>\n";
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
                page.len()
            );
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://someone:hunter2@127.0.0.1:{port}/api/v3");
    let out = ghstats(dir.path())
        .args([
            "--org",
            "acme",
            "--token",
            TOKEN,
            "--api-url",
            &url,
            "--run-budget",
            "20s",
        ])
        .args([
            "--storage-url",
            "memory://",
            "collect",
            "--hours",
            "1",
            "--no-load",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("this is not GitHub's API at http://127.0.0.1:{port}/api/graphql (got HTML, status 200); check GITHUB_API_URL")),
        "{stderr}"
    );
    assert!(
        !stderr.contains("hunter2") && !stderr.contains("<html"),
        "{stderr}"
    );
    drop(server);
}

/// `LOG_FORMAT=text` with stderr sent to a file: readable lines, no terminal colour codes; the
/// result is JSON on stdout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_logs_written_to_a_file_carry_no_colour_codes() {
    let sim = Simulator::start(&OrgSpec::new("acme", 1, 5, 3), SimOptions::default(), 0)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("run.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let path = dir.path().to_path_buf();
    let url = sim.url();
    let out = tokio::task::spawn_blocking(move || {
        ghstats(&path)
            .env("GITHUB_API_URL", url)
            .env("GITHUB_TOKEN", TOKEN)
            .env("GITHUB_ORG", "acme")
            .env("STORAGE_URL", "file://./lake")
            .env("LOG_FORMAT", "text")
            .args(["backfill", "--days", "400", "--json"])
            .stderr(log)
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    let text = std::fs::read_to_string(&log_path).unwrap();
    assert!(out.status.success(), "{text}");
    let result: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("--json prints the result as JSON");
    assert_eq!(result["status"], "completed");
    assert!(text.contains("Collection started."), "{text}");
    assert!(
        text.contains("Loading the collection into the warehouse."),
        "the load phase is logged: {text}"
    );
    assert!(
        !text.contains('\u{1b}'),
        "escape codes in a log file: {text:?}"
    );
}

/// A PostgreSQL URL that does not parse and one that names a port nothing listens on fail with
/// different messages, each saying what to check, and neither shows the password.
#[test]
fn a_malformed_postgres_url_and_a_closed_port_say_different_things() {
    let dir = tempfile::tempdir().unwrap();
    // A port that was free a moment ago: nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    for (url, status, expect) in [
        (
            "postgres://ghstats:s3cretPW@127.0.0.1:54x2/ghstats".to_string(),
            ghstats::exit::USAGE,
            "WAREHOUSE_URL is malformed: invalid port number".to_string(),
        ),
        (
            format!("postgres://ghstats:s3cretPW@127.0.0.1:{closed}/ghstats"),
            ghstats::exit::FAILED,
            format!("nothing listens at 127.0.0.1:{closed} (connection refused)"),
        ),
    ] {
        for via_env in [false, true] {
            let mut cmd = ghstats(dir.path());
            cmd.args(["--org", "acme"]);
            if via_env {
                cmd.env("WAREHOUSE_URL", &url);
            } else {
                cmd.args(["--warehouse-url", &url]);
            }
            let out = cmd.arg("summary").output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(
                out.status.code(),
                Some(i32::from(status)),
                "{url}: {stderr}"
            );
            assert!(stderr.contains(&expect), "{url}: {stderr}");
            assert!(
                !stderr.contains("s3cretPW"),
                "the password leaked: {stderr}"
            );
        }
    }
}

/// `summary` only reads the warehouse: a URL naming no file fails with what to do and creates
/// nothing, and a load holding the write lock does not hold it up.
#[test]
fn summary_creates_no_warehouse_and_waits_for_no_write_lock() {
    let dir = tempfile::tempdir().unwrap();
    let summary = |url: &str| {
        ghstats(dir.path())
            .args(["--org", "acme", "--storage-url", "file://./lake"])
            .args(["--warehouse-url", url, "summary", "--json"])
            .output()
            .unwrap()
    };
    let out = summary("sqlite://./typo/warehouse.db");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("there is no SQLite file at ./typo/warehouse.db (nothing was created); run `ghstats init` to create the warehouse there, or check WAREHOUSE_URL"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        !dir.path().join("typo").exists(),
        "a read created the directory"
    );

    let init = ghstats(dir.path())
        .args(["--warehouse-url", "sqlite://./wh.db", "init"])
        .output()
        .unwrap();
    assert!(init.status.success());
    // A writer holds the write lock (as a load does for its whole transaction). Before reads
    // stopped ensuring tables, `summary` waited the 30 s busy timeout and failed here.
    let writer = rusqlite::Connection::open(dir.path().join("wh.db")).unwrap();
    writer
        .execute_batch("BEGIN IMMEDIATE; DELETE FROM pull_requests;")
        .unwrap();
    let out = summary("sqlite://./wh.db");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["warehouse"]["pull_requests"], 0, "{s}");
    writer.execute_batch("ROLLBACK").unwrap();
}

/// A run killed with SIGKILL leaves its lock for the lease's length (5 minutes). Resuming its
/// collection meanwhile is refused with exit status 4 and a message naming the dead run's pid,
/// host and the time left, and suggesting `--force`; `summary` shows the same. `--force` takes
/// the lock over (with a warning) and completes the collection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_left_by_a_killed_run_is_named_and_taken_over_with_force() {
    let sim = Simulator::start(&OrgSpec::new("acme", 2, 120, 25), SimOptions::default(), 0)
        .await
        .unwrap();
    sim.set_faults(github_sim::FaultPlan::slow(100));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        format!("GITHUB_ORG=acme\nGITHUB_TOKEN={TOKEN}\nGITHUB_API_URL={}\nSTORAGE_URL=file://./lake\nWAREHOUSE_URL=sqlite://./wh.db\nPAGE_SIZE=5\nPAGE_SIZE_MAX=5\nLOG_FORMAT=json\n", sim.url()),
    )
    .unwrap();
    let run = |args: Vec<String>| {
        let path = dir.path().to_path_buf();
        async move {
            tokio::task::spawn_blocking(move || ghstats(&path).args(&args).output())
                .await
                .unwrap()
                .unwrap()
        }
    };
    let lock = dir.path().join("lake/acme/_locks/run.json");
    let checkpoints = dir.path().join("lake/acme/_checkpoints");
    let mut child = ghstats(dir.path())
        .args(["backfill", "--days", "400"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let id = loop {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the backfill ended before it could be killed"
        );
        let id = std::fs::read_dir(&checkpoints)
            .ok()
            .and_then(|mut d| d.next())
            .and_then(|e| e.ok())
            .and_then(|e| {
                e.file_name()
                    .to_str()?
                    .strip_suffix(".json")
                    .map(str::to_string)
            });
        if let (Some(id), true) = (id, lock.exists()) {
            break id;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    child.kill().unwrap();
    child.wait().unwrap();

    let out = run(vec!["resume".into(), "--collection-id".into(), id.clone()]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(i32::from(ghstats::exit::LOCKED)),
        "{stderr}"
    );
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    for part in [
        format!("organization acme is locked by collection {id} (pid {pid} on host {host}) since "),
        "; the lease ends in 4m".to_string(),
        format!("no process {pid} runs on this host any more: that run is dead"),
        "rerun with --force".to_string(),
    ] {
        assert!(stderr.contains(&part), "{part:?} not in {stderr}");
    }
    let out = run(vec!["summary".into(), "--json".into()]).await;
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["lock"]["holder"], id.as_str(), "{s}");
    assert_eq!(s["lock"]["pid"], pid, "{s}");
    assert_eq!(s["lock"]["process"], "gone", "{s}");
    assert_eq!(s["collections"][0]["collection_id"], id.as_str(), "{s}");
    assert_eq!(s["collections"][0]["status"], "running", "{s}");
    assert_eq!(s["collections"][0]["holds_lock"], true, "{s}");

    sim.set_faults(github_sim::FaultPlan::default());
    let out = run(vec![
        "resume".into(),
        "--collection-id".into(),
        id.clone(),
        "--force".into(),
    ])
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("Taking over a run lock that has not expired (--force)"),
        "the takeover is not announced: {stderr}"
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["status"], "completed", "{r}");
    let out = run(vec!["summary".into(), "--json".into()]).await;
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["lock"], serde_json::Value::Null, "{s}");
    assert_eq!(s["collections"][0]["status"], "loaded", "{s}");
    assert_eq!(s["warehouse"]["pull_requests"], 120, "{s}");
    assert_eq!(s["lake"]["pull_requests"], 120, "{s}");
}

/// `summary` lists every collection with its status (loaded, completed but not loaded,
/// partial), and the lake's rows deduplicated by key: after two overlapping backfills with
/// changes between them (edits, deleted comments, force-pushes), they equal the warehouse's
/// counts table by table, while the chunks hold every pull request twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summary_shows_each_collection_and_lake_rows_equal_to_the_warehouse() {
    let sim = Simulator::start(&OrgSpec::new("acme", 2, 120, 26), SimOptions::default(), 0)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        format!("GITHUB_ORG=acme\nGITHUB_TOKEN={TOKEN}\nGITHUB_API_URL={}\nSTORAGE_URL=file://./lake\nWAREHOUSE_URL=sqlite://./wh.db\nLOG_FORMAT=json\n", sim.url()),
    )
    .unwrap();
    let run = |args: &[&str]| {
        let path = dir.path().to_path_buf();
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        async move {
            tokio::task::spawn_blocking(move || ghstats(&path).args(&args).output())
                .await
                .unwrap()
                .unwrap()
        }
    };
    let id_of = |out: &std::process::Output, status: u8| {
        assert_eq!(
            out.status.code(),
            Some(i32::from(status)),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        r["collection_id"].as_str().unwrap().to_string()
    };
    let summary = || async {
        let out = run(&["summary", "--json"]).await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };

    let first = id_of(
        &run(&["backfill", "--days", "400"]).await,
        ghstats::exit::COMPLETED,
    );
    let report = sim.change(40, 7, None);
    assert!(
        report.deleted_comments + report.force_pushes > 0,
        "{report:?}"
    );
    // The changes are stamped with the current second; a window ends at a whole second.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let second = id_of(
        &run(&["backfill", "--days", "400"]).await,
        ghstats::exit::COMPLETED,
    );
    let s = summary().await;
    for t in ghstats::tables::ALL {
        assert_eq!(s["lake"][t.name], s["warehouse"][t.name], "{}: {s}", t.name);
    }
    let prs = 120 + report.new_prs as u64;
    assert_eq!(s["warehouse"]["pull_requests"], prs, "{s}");
    let stored_prs: u64 = s["stored"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["table"] == "pull_requests")
        .map(|r| r["rows"].as_u64().unwrap())
        .sum();
    assert_eq!(
        stored_prs,
        120 + prs,
        "both backfills stored every pull request"
    );

    let unloaded = id_of(
        &run(&["collect", "--hours", "2", "--no-load"]).await,
        ghstats::exit::COMPLETED,
    );
    sim.set_faults(github_sim::FaultPlan::slow(150));
    let partial = id_of(
        &run(&[
            "--run-budget",
            "1s",
            "--page-size",
            "5",
            "--page-size-max",
            "5",
            "backfill",
            "--days",
            "400",
            "--no-load",
        ])
        .await,
        ghstats::exit::PARTIAL,
    );
    let s = summary().await;
    let listed: Vec<(String, String, bool)> = s["collections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["collection_id"].as_str().unwrap().to_string(),
                c["status"].as_str().unwrap().to_string(),
                c["loaded"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            (partial, "partial".to_string(), false),
            (unloaded, "completed".to_string(), false),
            (second, "loaded".to_string(), true),
            (first, "loaded".to_string(), true),
        ],
        "newest first"
    );
    let text = run(&["summary"]).await;
    let text = String::from_utf8_lossy(&text.stdout);
    for want in [
        "lock: free",
        "collections: 4",
        "partial",
        "completed",
        "loaded",
        "lake (distinct)",
    ] {
        assert!(text.contains(want), "{want:?} not in\n{text}");
    }
}

/// A backfill reaching back before GitHub's start is a usage error (exit status 2), refused in
/// one line that says how far back today's limit is, like every other bad setting.
#[test]
fn a_backfill_before_githubs_start_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    for days in ["30000", "0", "many"] {
        let out = ghstats(dir.path())
            .args([
                "--org", "acme", "--token", TOKEN, "backfill", "--days", days,
            ])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(i32::from(ghstats::exit::USAGE)),
            "{days}: {stderr}"
        );
        assert_eq!(
            stderr.lines().filter(|l| l.starts_with("error")).count(),
            1,
            "{stderr}"
        );
    }
    let out = ghstats(dir.path())
        .args(["--org", "acme", "backfill", "--days", "30000"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("reaches back before 2008-01-01"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
