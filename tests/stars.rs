//! The stars crawl end to end, against the simulator's population of 2 million public
//! repositories and its truth: `ghstats stars` into PostgreSQL (SQLite when the test server is
//! not running), history after star counts change, kill -9 and resume, a small GraphQL budget
//! finished with REST search pages, and bad input refused before anything runs.

mod common;

use chrono::{DateTime, TimeZone, Utc};
use github_sim::{OrgSpec, PopulationSpec, SearchBurst, SimOptions, Simulator};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::str::FromStr;

const TOKEN: &str = "ghp_starsTESTtoken";

async fn sim(options: SimOptions) -> Simulator {
    Simulator::start(&OrgSpec::new("acme", 1, 1, 1), options, 0)
        .await
        .unwrap()
}

fn population(seed: u64) -> PopulationSpec {
    PopulationSpec {
        seed,
        size: 2_000_000,
    }
}

/// `ghstats stars ARGS` in `dir` against the simulator at `url`, the lake in `dir/lake`.
fn stars_command(dir: &Path, url: &str, warehouse: &str, args: &[&str]) -> std::process::Command {
    let mut c = common::ghstats_bin(dir);
    c.env("GITHUB_API_URL", url)
        .env("GITHUB_TOKEN", TOKEN)
        .env("STORAGE_URL", "file://./lake")
        .env("WAREHOUSE_URL", warehouse)
        .env("LOG_FORMAT", "json")
        // A killed crawl's lease runs out at once.
        .env("LOCK_LEASE", "1s")
        .args(args);
    c
}

fn run(dir: &Path, url: &str, warehouse: &str, args: &[&str]) -> (i32, Value, String) {
    let out = stars_command(dir, url, warehouse, args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !stderr.contains(TOKEN) && !String::from_utf8_lossy(&out.stdout).contains(TOKEN),
        "the token leaked"
    );
    (
        out.status.code().unwrap_or(-1),
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null),
        stderr,
    )
}

/// The warehouse of a test: a fresh PostgreSQL database, or SQLite in `dir`.
async fn warehouse_url(dir: &Path) -> String {
    match common::fresh_database().await {
        Some(url) => url,
        None => format!("sqlite://{}", dir.join("wh.db").display()),
    }
}

async fn query(url: &str, sql: &str) -> Vec<Value> {
    let wh = ghstats::warehouse::open(&ghstats::warehouse::WarehouseUrl::from_str(url).unwrap())
        .await
        .unwrap();
    wh.query(sql).await.unwrap()
}

fn int(v: &Value) -> i64 {
    v.as_i64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or_else(|| panic!("{v} is not an integer"))
}

/// `repo_id -> stargazer_count` of `repo_stars`.
async fn snapshot(url: &str) -> HashMap<i64, i64> {
    query(url, "SELECT repo_id, stargazer_count FROM repo_stars")
        .await
        .iter()
        .map(|r| (int(&r["repo_id"]), int(&r["stargazer_count"])))
        .collect()
}

/// The newest crawl's checkpoint in `dir/lake`.
fn checkpoint(dir: &Path) -> Value {
    let cps = dir.join("lake/_stars/_checkpoints");
    let mut files: Vec<_> = std::fs::read_dir(&cps)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    serde_json::from_slice(&std::fs::read(files.last().unwrap()).unwrap()).unwrap()
}

/// The truth: ids of the public non-fork repositories created from `from` up to (not
/// including) `before`, with their star counts now.
async fn truth(sim: &Simulator, from: DateTime<Utc>, before: DateTime<Utc>) -> HashMap<i64, i64> {
    let p = sim.population().await;
    let p = p.read().unwrap();
    let mut out = HashMap::new();
    for i in 0..p.len() {
        let at = p.created_at(i).unwrap();
        if at >= before {
            break;
        }
        if at < from {
            continue;
        }
        let r = p.repo(i).unwrap();
        if !r.is_fork {
            out.insert(r.database_id as i64, r.stargazer_count as i64);
        }
    }
    out
}

fn created_from() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2008, 1, 1, 0, 0, 0).unwrap()
}

/// Checks a finished crawl of `target` against the truth: exactly `target` distinct rows,
/// every count as the simulator has it, and every repository before the plan's last range
/// present (that range is cut at the target).
async fn assert_snapshot_is_truth(sim: &Simulator, dir: &Path, url: &str, target: usize) {
    let stored = snapshot(url).await;
    assert_eq!(stored.len(), target, "distinct repositories stored");
    let cp = checkpoint(dir);
    let last_from = cp["ranges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["progress"]["state"] == "done")
        .map(|r| DateTime::parse_from_rfc3339(r["range"]["from"].as_str().unwrap()).unwrap())
        .max()
        .unwrap()
        .with_timezone(&Utc);
    let end = DateTime::parse_from_rfc3339(
        cp["ranges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["range"]["to"].as_str().unwrap())
            .max()
            .unwrap(),
    )
    .unwrap()
    .with_timezone(&Utc);
    let before_last = truth(sim, created_from(), last_from).await;
    for (id, stars) in &before_last {
        assert_eq!(stored.get(id), Some(stars), "repository {id}");
    }
    let whole = truth(sim, created_from(), end + chrono::Duration::seconds(1)).await;
    for (id, stars) in &stored {
        assert_eq!(
            whole.get(id),
            Some(stars),
            "stored repository {id} is in the truth"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100k_crawl_equals_the_truth_and_a_second_adds_history_only_for_changes() {
    let sim = sim(SimOptions {
        population: population(7),
        ..SimOptions::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let url = warehouse_url(dir.path()).await;
    let (code, first, err) = run(
        dir.path(),
        &sim.url(),
        &url,
        &["stars", "--target", "100000"],
    );
    assert_eq!(code, 0, "{first} {err}");
    assert_eq!(first["status"], "completed", "{first}");
    assert_eq!(first["repos"], 100_000, "{first}");
    assert_eq!(first["repos_beyond_cap"], 0, "{first}");
    assert_snapshot_is_truth(&sim, dir.path(), &url, 100_000).await;
    // The cost, as the simulator counts it with GitHub's formula: far under 1,100 points.
    let ledger = sim.ledger();
    assert_eq!(
        ledger.graphql_points,
        first["graphql_points"].as_u64().unwrap()
    );
    assert!(
        ledger.graphql_points <= 300,
        "{} points",
        ledger.graphql_points
    );
    // First seen: one history row each.
    let history = query(&url, "SELECT COUNT(*) AS n FROM repo_star_history").await;
    assert_eq!(int(&history[0]["n"]), 100_000);

    // Star counts change; a second crawl adds history rows for exactly the crawled ones that
    // changed, and the snapshot follows.
    let before = snapshot(&url).await;
    let report = sim.change_stars(40_000, 11).await;
    let changed: BTreeMap<i64, i64> = report
        .changed
        .iter()
        .filter(|(id, _, _)| before.contains_key(&(*id as i64)))
        .map(|(id, _, after)| (*id as i64, *after as i64))
        .collect();
    assert!(changed.len() > 100, "{} changed", changed.len());
    let (code, second, err) = run(
        dir.path(),
        &sim.url(),
        &url,
        &["stars", "--target", "100000"],
    );
    assert_eq!(code, 0, "{second} {err}");
    assert_ne!(second["crawl_id"], first["crawl_id"]);
    assert_eq!(
        second["load"]["history_added"].as_u64().unwrap() as usize,
        changed.len(),
        "{second}"
    );
    let after = snapshot(&url).await;
    for (id, stars) in &changed {
        assert_eq!(after.get(id), Some(stars), "repository {id}");
    }
    let history = query(&url, "SELECT COUNT(*) AS n FROM repo_star_history").await;
    assert_eq!(int(&history[0]["n"]) as usize, 100_000 + changed.len());

    // Loading every crawl again from the lake (no GitHub calls) changes nothing.
    let calls = sim.ledger().graphql_queries;
    let out = stars_command(dir.path(), &sim.url(), &url, &["load", "--stars"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(sim.ledger().graphql_queries, calls);
    assert_eq!(snapshot(&url).await, after);
    let history = query(&url, "SELECT COUNT(*) AS n FROM repo_star_history").await;
    assert_eq!(int(&history[0]["n"]) as usize, 100_000 + changed.len());

    // The CSV export: a header and 100,000 lines, read back by Python's csv module.
    let csv = dir.path().join("stars.csv");
    let out = stars_command(
        dir.path(),
        &sim.url(),
        &url,
        &[
            "export",
            "--table",
            "repo_stars",
            "--format",
            "csv",
            "--out",
            csv.to_str().unwrap(),
        ],
    )
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let python = std::env::var("GHSTATS_TEST_PARQUET_PYTHON").unwrap_or_else(|_| "python3".into());
    let read = std::process::Command::new(python)
        .args([
            "-c",
            "import csv,sys\nrows=list(csv.reader(open(sys.argv[1],newline='',encoding='utf-8')))\nh=rows[0]\ni=h.index('repo_id');s=h.index('stargazer_count')\nprint(len(rows)-1, len({r[i] for r in rows[1:]}), sum(int(r[s]) for r in rows[1:]))",
            csv.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        read.status.success(),
        "{}",
        String::from_utf8_lossy(&read.stderr)
    );
    let expected_sum: i64 = after.values().sum();
    assert_eq!(
        String::from_utf8_lossy(&read.stdout).trim(),
        format!("100000 100000 {expected_sum}")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_crawl_then_the_same_command_loses_and_duplicates_nothing() {
    let sim = sim(SimOptions {
        population: population(3),
        search_latency_ms: 300,
        ..SimOptions::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("wh.db").display());
    let target = "30000";
    let seed: u64 = std::env::var("GHSTATS_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("GHSTATS_KILL_SEED={seed}");
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed);
    let mut kills = 0;
    for _ in 0..8 {
        if kills == 4 {
            break;
        }
        let mut child = stars_command(dir.path(), &sim.url(), &url, &["stars", "--target", target])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let delay = std::time::Duration::from_millis(rand::Rng::gen_range(&mut rng, 500..3500));
        tokio::time::sleep(delay).await;
        if child.try_wait().unwrap().is_some() {
            break;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        kills += 1;
        // The killed run's lease ends.
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        // Whatever the kill left, the chunks the checkpoint names hold each repository once.
        if dir.path().join("lake/_stars/_checkpoints").exists() {
            let cp = checkpoint(dir.path());
            let rows: u64 = cp["chunks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["rows"].as_u64().unwrap())
                .sum();
            assert_eq!(rows, cp["repos"].as_u64().unwrap(), "kill {kills}");
        }
    }
    assert!(kills >= 2, "only {kills} kills landed in a running crawl");
    let (code, result, err) = run(dir.path(), &sim.url(), &url, &["stars", "--target", target]);
    assert_eq!(code, 0, "{result} {err}");
    assert_eq!(result["status"], "completed");
    assert_eq!(result["resumed"], true, "{result}");
    assert_snapshot_is_truth(&sim, dir.path(), &url, 30_000).await;
    // The crawl's chunks hold each repository once, across every run of it.
    let cp = checkpoint(dir.path());
    let mut ids = std::collections::HashSet::new();
    for c in cp["chunks"].as_array().unwrap() {
        let bytes =
            std::fs::read(dir.path().join("lake").join(c["path"].as_str().unwrap())).unwrap();
        for row in ghstats::lake::chunk::decode_chunk(&bytes).unwrap() {
            assert!(ids.insert(int(&row["repo_id"])), "{} twice", row["repo_id"]);
        }
    }
    assert_eq!(ids.len(), 30_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_with_few_graphql_points_finishes_with_rest_search_pages() {
    // 2 points an hour: spent while planning; REST search counts the rest and pages it all.
    let sim = sim(SimOptions {
        population: population(5),
        graphql_limit: 2,
        search_rest_limit: 1000,
        ..SimOptions::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("wh.db").display());
    let (code, result, err) = run(dir.path(), &sim.url(), &url, &["stars", "--target", "8000"]);
    assert_eq!(code, 0, "{result} {err}");
    assert_eq!(result["status"], "completed", "{result}");
    assert!(result["graphql_points"].as_u64().unwrap() <= 2, "{result}");
    let rest = result["rest_search_requests"].as_u64().unwrap();
    assert!(rest > 0, "{result}");
    assert_eq!(
        sim.ledger().rest_requests,
        rest,
        "every REST search counted"
    );
    assert_snapshot_is_truth(&sim, dir.path(), &url, 8_000).await;
}

#[test]
fn bad_input_is_refused_with_one_line_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    for (args, says) in [
        (
            &["stars", "--query", "is:public created:>2020-01-01"][..],
            "created:",
        ),
        (&["stars", "--query", "sort:stars"][..], "sort"),
        (&["stars", "--created-from", "2001-01-01"][..], "2007-10-01"),
        (&["stars", "--created-from", "yesterday"][..], "YYYY-MM-DD"),
        (&["stars", "--target", "0"][..], "target"),
    ] {
        let out = stars_command(dir.path(), "http://127.0.0.1:9", "sqlite://./wh.db", args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    // No token: a setting error, said in one line.
    let out = stars_command(
        dir.path(),
        "http://127.0.0.1:9",
        "sqlite://./wh.db",
        &["stars"],
    )
    .env_remove("GITHUB_TOKEN")
    .output()
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("GITHUB_TOKEN"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(!dir.path().join("lake/_stars/_checkpoints").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_github_refuses_is_a_usage_error_said_once() {
    let sim = sim(SimOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("wh.db").display());
    let (code, result, err) = run(
        dir.path(),
        &sim.url(),
        &url,
        &["stars", "--query", "nosuchqual:x", "--target", "5"],
    );
    assert_eq!(code, 2, "{result} {err}");
    let line = err
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(line.contains("GitHub refused the search"), "{line}");
    assert_eq!(line.matches("nosuchqual").count(), 1, "said once: {line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_that_time_out_ask_for_fewer_results_and_the_crawl_completes() {
    // 100 ms a search page and a 300 ms limit: a query of 10 pages times out (502), one of 3
    // does not. GitHub's limit is 10 s at 1-3 s a page.
    let sim = sim(SimOptions {
        population: population(9),
        search_latency_ms: 100,
        graphql_timeout_ms: 300,
        ..SimOptions::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("wh.db").display());
    let (code, result, err) = run(dir.path(), &sim.url(), &url, &["stars", "--target", "5000"]);
    assert_eq!(code, 0, "{result} {err}");
    assert_eq!(result["status"], "completed", "{result}");
    assert!(
        err.contains("asking for fewer results per query"),
        "the crawl adapted: {err}"
    );
    assert_snapshot_is_truth(&sim, dir.path(), &url, 5_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_run_budget_stops_the_planning_and_the_next_run_finishes() {
    // 1 s a count query and a 1 s budget: the first count ends past the budget.
    let sim = sim(SimOptions {
        population: population(4),
        search_latency_ms: 1000,
        ..SimOptions::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("wh.db").display());
    let out = stars_command(dir.path(), &sim.url(), &url, &["stars", "--target", "3000"])
        .env("RUN_BUDGET", "1s")
        .output()
        .unwrap();
    let first: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert_eq!(
        out.status.code(),
        Some(i32::from(ghstats::exit::PARTIAL)),
        "{first} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(first["status"], "partial", "{first}");
    assert_eq!(first["repos"], 0, "{first}");
    let (code, second, err) = run(dir.path(), &sim.url(), &url, &["stars", "--target", "3000"]);
    assert_eq!(code, 0, "{second} {err}");
    assert_eq!(
        (&second["crawl_id"], &second["resumed"]),
        (&first["crawl_id"], &json!(true)),
        "{second}"
    );
    assert_snapshot_is_truth(&sim, dir.path(), &url, 3_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn back_to_back_searches_hit_a_secondary_limit_and_the_crawl_waits_as_told() {
    // GitHub's abuse limit on back-to-back searches: more than 6 searches within a second get
    // a 403 with retry-after: 2.
    let sim = sim(SimOptions {
        population: population(6),
        search_burst: Some(SearchBurst {
            max_requests: 6,
            window_ms: 1000,
            retry_after: 2,
        }),
        ..SimOptions::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("wh.db").display());
    let (code, result, err) = run(
        dir.path(),
        &sim.url(),
        &url,
        &["stars", "--target", "20000"],
    );
    assert_eq!(code, 0, "{result} {err}");
    assert!(
        err.contains("Secondary rate limit"),
        "a limit was met: {err}"
    );
    // Requests already on their way when the limit came may arrive within a moment; none is
    // sent later while the token is held.
    let late: Vec<u64> = sim
        .ledger()
        .requests_during_secondary_limit
        .into_iter()
        .filter(|ms| *ms > 250)
        .collect();
    assert!(
        late.is_empty(),
        "sent while held (ms after the limit): {late:?}"
    );
    assert_snapshot_is_truth(&sim, dir.path(), &url, 20_000).await;
}
