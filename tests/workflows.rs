//! The GitHub Actions workflows (`.github/workflows/`), checked offline: actionlint finds
//! nothing in them (the binary scripts/services.sh installs, GHSTATS_TEST_ACTIONLINT, or one
//! on PATH; under CI=true a missing actionlint fails the test instead of skipping it), and
//! the stars workflow has the steps issue 14 asks for.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The actionlint to run, or `None` (the test is skipped, except in CI, where it fails).
fn actionlint() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("GHSTATS_TEST_ACTIONLINT") {
        return Some(PathBuf::from(p));
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("actionlint"))
            .find(|p| p.is_file())
    });
    if on_path.is_none() {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "actionlint is not installed: scripts/services.sh start installs it and sets GHSTATS_TEST_ACTIONLINT; CI must run this check"
        );
        eprintln!("skipped: no actionlint (scripts/services.sh start installs it and sets GHSTATS_TEST_ACTIONLINT)");
    }
    on_path
}

fn workflows() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join(".github/workflows"))
        .expect(".github/workflows exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml" || x == "yaml"))
        .collect();
    files.sort();
    files
}

/// actionlint's findings on `files`, one per line; empty when there are none.
fn lint(bin: &Path, files: &[PathBuf]) -> (bool, String) {
    let out = Command::new(bin)
        .current_dir(root())
        .args(["-no-color", "-oneline"])
        .args(files)
        .output()
        .expect("actionlint runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn every_workflow_passes_actionlint() {
    let Some(bin) = actionlint() else { return };
    let files = workflows();
    assert!(!files.is_empty(), "no workflow in .github/workflows");
    let (ok, findings) = lint(&bin, &files);
    assert!(ok && findings.trim().is_empty(), "actionlint:\n{findings}");
}

/// The check can fail: a workflow with an undefined action input and an untrusted value in a
/// script is refused, each finding named.
#[test]
fn actionlint_refuses_a_broken_workflow() {
    let Some(bin) = actionlint() else { return };
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yml");
    std::fs::write(
        &bad,
        "on: pull_request\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      \
         - uses: actions/checkout@v6\n        with:\n          no-such-input: 1\n      \
         - run: echo \"${{ github.event.pull_request.title }}\"\n",
    )
    .unwrap();
    let (ok, findings) = lint(&bin, &[bad]);
    assert!(!ok, "{findings}");
    assert!(findings.contains("no-such-input"), "{findings}");
    assert!(findings.contains("untrusted"), "{findings}");
}

/// What the stars workflow must do (issue 14): a PostgreSQL service container, a cached
/// build, `init`, `stars --target` with the job's read-only token, `export` to CSV and the
/// CSV uploaded; on a schedule and by hand with the target as an input.
#[test]
fn the_stars_workflow_crawls_into_postgres_and_uploads_the_csv() {
    let text = std::fs::read_to_string(root().join(".github/workflows/stars.yml")).unwrap();
    for want in [
        "schedule:",
        "workflow_dispatch:",
        "target:",
        "permissions:\n  contents: read",
        "services:\n      postgres:",
        "image: postgres:",
        "uses: actions/cache@",
        "cargo build --release --locked",
        "WAREHOUSE_URL: postgres://",
        "GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }}",
        "ghstats init",
        "ghstats stars --target \"$STARS_TARGET\"",
        "ghstats export --table repo_stars --format csv --out repo_stars.csv",
        "uses: actions/upload-artifact@",
        "path: |\n            repo_stars.csv",
    ] {
        assert!(text.contains(want), "stars.yml lacks {want:?}");
    }
    // Nothing writes with the job's token.
    assert!(
        !text.contains(": write"),
        "stars.yml asks for write permissions"
    );
    // The settings it sets are ones ghstats reads.
    use clap::CommandFactory;
    let help = ghstats::config::Cli::command()
        .render_long_help()
        .to_string();
    for env in ["WAREHOUSE_URL", "STORAGE_URL", "GITHUB_TOKEN", "LOG_FORMAT"] {
        assert!(help.contains(env), "ghstats reads no {env}");
    }
}
