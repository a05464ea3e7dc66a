//! GitHub App authentication against the simulator, which checks the App's JWT with its public
//! key and refuses installation tokens once they expire: a collection that outlives several
//! short-lived tokens completes with the ground truth, never sends an expired token and mints
//! far fewer tokens than it sends requests; the binary finds the installation from the
//! organization and leaks neither the key nor a token; a wrong key is one clear error.

mod common;

use common::*;
use ghstats::config::Secret;
use ghstats::github::{AppInstallation, ClientOptions, Credential, GithubClient};
use github_sim::{generate_rsa_key, AppSpec, FaultPlan, OrgSpec, SimOptions, Simulator};
use std::sync::Arc;
use std::time::Duration;

const APP_ID: &str = "4242";
const INSTALLATION: u64 = 77;

fn app_options(public_pem: &str, ttl_secs: u64) -> SimOptions {
    SimOptions {
        // Only installation tokens get in: any other token is refused.
        tokens: vec!["no-static-token-is-accepted".into()],
        app: Some(AppSpec {
            app_id: APP_ID.into(),
            installation_id: INSTALLATION,
            public_key_pem: public_pem.into(),
            token_ttl_secs: ttl_secs,
        }),
        ..SimOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_collection_outlives_several_installation_tokens() {
    let key = generate_rsa_key().unwrap();
    let spec = OrgSpec::new(ORG, 3, 150, 31);
    let sim = Simulator::start(&spec, app_options(&key.public_pem, 1), 0)
        .await
        .unwrap();
    // Every request is slow, so the run lasts several token lifetimes.
    sim.set_faults(FaultPlan::slow(120));
    let app = Arc::new(
        AppInstallation::new(
            APP_ID,
            Some(INSTALLATION),
            ORG,
            &Secret::new(key.private_pem.clone()),
            sim.url().parse().unwrap(),
        )
        .unwrap(),
    );
    let client = GithubClient::with_credentials(
        sim.url().parse().unwrap(),
        vec![Credential::App(app.clone())],
        ClientOptions {
            base_backoff: Duration::from_millis(10),
            ..ClientOptions::default()
        },
    )
    .unwrap();
    let lake = memory_lake();
    let mut opts = options(everything(), &[]);
    opts.page_size = 5;
    opts.page_size_max = 5;
    let started = std::time::Instant::now();
    let result = collect(&client, &lake, &opts).await;
    let took = started.elapsed();
    assert_eq!(
        result.status,
        ghstats::lake::checkpoint::Status::Completed,
        "{:?}",
        result.repos
    );
    let ledger = sim.ledger();
    assert_eq!(
        ledger.expired_token_rejections, 0,
        "an expired token was sent"
    );
    assert_eq!(ledger.rejected_auth, 0);
    let requests = ledger.rest_requests + ledger.graphql_queries;
    assert!(
        took > Duration::from_secs(3),
        "the run must outlive several tokens; it took {took:?}"
    );
    assert!(
        ledger.installation_tokens_minted >= 3,
        "tokens were refreshed as they aged: {} minted in {took:?}",
        ledger.installation_tokens_minted
    );
    assert_eq!(app.minted(), ledger.installation_tokens_minted);
    assert!(
        ledger.installation_tokens_minted * 4 <= requests,
        "tokens are reused: {} minted for {requests} requests",
        ledger.installation_tokens_minted
    );
    let actual = read_collection(&lake, &result.collection_id).await;
    assert_tables_eq(&actual, &expected(&sim.world(), &opts.window, &[]));
}

/// Runs the binary in `dir` as the App's organization with a local lake, these settings and
/// these arguments, off the runtime's threads (the simulator serves from them).
async fn run_app(
    dir: &std::path::Path,
    env: Vec<(&'static str, String)>,
    args: &'static [&'static str],
) -> std::process::Output {
    let path = dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        common::ghstats_bin(&path)
            .env("GITHUB_ORG", ORG)
            .env("GITHUB_APP_ID", APP_ID)
            .env("STORAGE_URL", "file://./lake")
            .envs(env)
            .args(args)
            .output()
    })
    .await
    .unwrap()
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_collects_as_an_app_and_leaks_nothing() {
    let key = generate_rsa_key().unwrap();
    let sim = Simulator::start(
        &OrgSpec::new(ORG, 2, 40, 32),
        app_options(&key.public_pem, 3600),
        0,
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("app.pem"), &key.private_pem).unwrap();
    let out = run_app(
        dir.path(),
        vec![
            ("GITHUB_API_URL", sim.url()),
            ("GITHUB_APP_PRIVATE_KEY_FILE", "app.pem".into()),
            ("LOG_FORMAT", "json".into()),
        ],
        &["backfill", "--days", "400"],
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stderr: {stderr}");
    let result: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(result["status"], "completed");
    assert_eq!(result["rows"]["pull_requests"], 40);
    let ledger = sim.ledger();
    assert_eq!(
        ledger.by_route.get("GET /orgs/{org}/installation"),
        Some(&1),
        "the installation was looked up once from the organization"
    );
    assert_eq!(ledger.installation_tokens_minted, 1);
    let tokens = sim.minted_tokens();
    assert_eq!(tokens.len(), 1);
    // The key's body and the token appear nowhere: output, logs, checkpoints, chunks.
    let key_body: String = key
        .private_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .take(2)
        .collect();
    let mut texts = vec![stdout.to_string(), stderr.to_string()];
    for entry in walk(&dir.path().join("lake")) {
        let bytes = std::fs::read(&entry).unwrap();
        let text = if entry.extension().is_some_and(|e| e == "gz") {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut s)
                .unwrap();
            s
        } else {
            String::from_utf8_lossy(&bytes).into_owned()
        };
        texts.push(text);
    }
    assert!(texts.len() > 4, "chunks and checkpoints were read");
    for text in &texts {
        assert!(!text.contains(&tokens[0]), "the installation token leaked");
        assert!(!text.contains(&key_body), "the private key leaked");
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_or_missing_key_is_one_clear_error() {
    let key = generate_rsa_key().unwrap();
    let other = generate_rsa_key().unwrap();
    let sim = Simulator::start(
        &OrgSpec::new(ORG, 1, 5, 33),
        app_options(&key.public_pem, 3600),
        0,
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = run_app(
        dir.path(),
        vec![
            ("GITHUB_API_URL", sim.url()),
            ("GITHUB_APP_INSTALLATION_ID", INSTALLATION.to_string()),
            // As an environment variable often carries it: newlines escaped.
            (
                "GITHUB_APP_PRIVATE_KEY",
                other.private_pem.replace('\n', "\\n"),
            ),
        ],
        &["backfill", "--days", "30"],
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.contains("GitHub refused the App's JWT")
            || stderr.contains("GitHub refused the App's JWT"),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert!(sim.ledger().rejected_auth >= 1);
    assert_eq!(sim.ledger().installation_tokens_minted, 0);

    let out = run_app(dir.path(), vec![], &["backfill", "--days", "30"]).await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("GITHUB_APP_ID is set without the App's key"),
        "{stderr}"
    );
    assert_eq!(
        stderr.trim().lines().count(),
        1,
        "one readable line: {stderr}"
    );
}
