//! `ghstats check` as a new user runs it: against the simulator every check passes and the
//! backfill estimate is what the simulator's data implies (and close to what the backfill then
//! spends), nothing is collected; a bad token, an unreachable warehouse and an unwritable
//! storage each fail with a readable reason and exit status 1.

mod common;

use github_sim::{OrgSpec, SimOptions, Simulator};
use serde_json::Value;
use std::path::Path;

const TOKEN: &str = "ghp_checkSECRETtoken7";

/// `ghstats ARGS` in `dir` against `sim` with `env` on top of the defaults; (exit code,
/// stdout, stderr).
async fn run(
    sim: &Simulator,
    dir: &Path,
    env: &[(&str, String)],
    args: &[&str],
) -> (i32, String, String) {
    let mut cmd = common::ghstats_bin(dir);
    cmd.env("GITHUB_API_URL", sim.url())
        .env("GITHUB_ORG", "acme")
        .env("GITHUB_TOKEN", TOKEN)
        .env("STORAGE_URL", "file://./lake")
        .env("WAREHOUSE_URL", "sqlite://./warehouse.db")
        .env("LOG_FORMAT", "json")
        .args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    // The simulator serves from this runtime while the binary runs on a blocking thread.
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.display().to_string());
            }
        }
    }
    out
}

fn check_named<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name}: {report:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_passes_and_estimates_a_backfill_from_the_simulators_data_collecting_nothing() {
    let sim = Simulator::start(
        &OrgSpec::new("acme", 3, 900, 11),
        SimOptions {
            token_scopes: [(TOKEN.to_string(), "repo, read:org".to_string())].into(),
            ..SimOptions::default()
        },
        0,
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) =
        run(&sim, dir.path(), &[], &["check", "--days", "120", "--json"]).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let report: Value = serde_json::from_str(&stdout).expect("--json prints JSON");
    assert_eq!(report["ok"], true, "{report:#}");
    for c in report["checks"].as_array().unwrap() {
        assert_eq!(c["status"], "ok", "{c}");
    }
    let token = check_named(&report, "GitHub token")["detail"]
        .as_str()
        .unwrap();
    assert!(token.contains("5,000 of 5,000 points left"), "{token}");
    assert!(token.contains("scopes: repo, read:org"), "{token}");
    let org = check_named(&report, "organization")["detail"]
        .as_str()
        .unwrap();
    assert!(org.contains("5 repositories visible"), "{org}");
    assert!(org.contains("3 in scope"), "{org}");

    // The estimate is what the simulator's data implies: per repository in scope (archived
    // and forks left out), the pull requests updated since the window's start.
    let est = &report["estimate"];
    let since: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(est["since"].clone()).unwrap();
    let world = sim.world();
    let truth: Vec<(String, u64)> = world
        .repositories
        .iter()
        .filter(|r| !r.is_archived && !r.is_fork)
        .map(|r| {
            let n = r
                .pull_requests
                .iter()
                .filter(|p| p.updated_at >= since)
                .count() as u64;
            (r.name.clone(), n)
        })
        .collect();
    let want = ghstats::jobs::check::estimate(120, since, &truth, world.repositories.len(), 25, 37);
    assert!(want.pull_requests > 200, "the window holds pull requests");
    assert_eq!(
        serde_json::from_value::<Value>(est.clone()).unwrap(),
        serde_json::to_value(&want).unwrap()
    );

    // Nothing was collected: no chunk, checkpoint, lock or probe left, no warehouse file, no
    // pull request read; the check spent one listing and one counting query.
    assert_eq!(files_under(&dir.path().join("lake")), Vec::<String>::new());
    assert!(!dir.path().join("warehouse.db").exists());
    let ledger = sim.ledger();
    assert_eq!(
        ledger.by_route.keys().collect::<Vec<_>>(),
        [
            "POST /graphql OrganizationRepositories",
            "POST /graphql PullRequestCounts"
        ],
        "{ledger:?}"
    );
    assert_eq!(ledger.graphql_points, 2);
    assert_eq!(report["api_cost"]["graphql_points"], 2);

    // The backfill then spends about what was estimated (within 15%, plus two points for
    // the rounding of small counts).
    sim.reset_ledger();
    let (code, stdout, stderr) = run(&sim, dir.path(), &[], &["backfill", "--days", "120"]).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let spent = sim.ledger().graphql_points;
    let estimated = want.graphql_points;
    assert!(
        spent.abs_diff(estimated) <= 2 + estimated * 15 / 100,
        "estimated {estimated} points, the backfill spent {spent}"
    );

    // The text form: one line per check.
    let (code, text, _) = run(&sim, dir.path(), &[], &["check", "--days", "120"]).await;
    assert_eq!(code, 0, "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("ok") && l.contains("backfill estimate")),
        "{text}"
    );
    assert!(text.contains("every check passed"), "{text}");
    assert!(!text.contains(TOKEN) && !stdout.contains(TOKEN));
}

/// Runs `check` with `env` and returns the named check's detail after asserting it failed
/// and the command exited 1.
async fn failing(sim: &Simulator, env: &[(&str, String)], name: &str) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = run(sim, dir.path(), env, &["check", "--json"]).await;
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["ok"], false);
    let c = check_named(&report, name);
    assert_eq!(c["status"], "failed", "{report:#}");
    let detail = c["detail"].as_str().unwrap().to_string();
    // The text form names the failure on one line, and no secret shows.
    let (code, text, stderr) = run(sim, dir.path(), env, &["check"]).await;
    assert_eq!(code, 1);
    assert!(
        text.lines()
            .any(|l| l.starts_with("FAILED") && l.contains(name)),
        "{text}"
    );
    for out in [&stdout, &text, &stderr] {
        assert!(!out.contains(TOKEN), "the token leaked: {out}");
    }
    (detail, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_token_fails_with_a_readable_reason() {
    let sim = Simulator::start(
        &OrgSpec::new("acme", 1, 10, 12),
        SimOptions {
            tokens: vec!["the-right-one".into()],
            ..SimOptions::default()
        },
        0,
    )
    .await
    .unwrap();
    let (detail, text) = failing(&sim, &[], "GitHub token").await;
    assert!(
        detail.contains("GitHub does not accept the credentials"),
        "{detail}"
    );
    assert!(detail.contains("Bad credentials"), "{detail}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("skipped") && l.contains("organization")),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_warehouse_fails_with_a_readable_reason() {
    let sim = Simulator::start(&OrgSpec::new("acme", 1, 10, 13), SimOptions::default(), 0)
        .await
        .unwrap();
    // Nothing listens on a port just freed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://ghstats:pgSECRETpw@127.0.0.1:{port}/ghstats");
    let (detail, text) = failing(&sim, &[("WAREHOUSE_URL", url)], "warehouse").await;
    assert!(detail.contains(&format!("127.0.0.1:{port}")), "{detail}");
    assert!(!text.contains("pgSECRETpw") && !detail.contains("pgSECRETpw"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unwritable_storage_fails_with_a_readable_reason() {
    let sim = Simulator::start(&OrgSpec::new("acme", 1, 10, 14), SimOptions::default(), 0)
        .await
        .unwrap();
    // A path under a regular file cannot be a directory, whoever runs the test.
    let blocker = tempfile::NamedTempFile::new().unwrap();
    let url = format!("file://{}/lake", blocker.path().display());
    let (detail, _) = failing(&sim, &[("STORAGE_URL", url)], "storage").await;
    assert!(
        detail.contains("creating the storage directory"),
        "{detail}"
    );
}
