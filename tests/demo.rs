//! The README's first command, `scripts/demo.sh`, run as a new user runs it (with the binaries
//! this test build made): it must print its summary and exit 0, and exit non-zero when a step
//! fails.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The directory of the built `ghstats` and `github-sim` binaries (`cargo test --workspace`
/// builds both into the same target directory).
fn bin_dir() -> PathBuf {
    let ghstats = Path::new(env!("CARGO_BIN_EXE_ghstats"));
    let dir = ghstats.parent().expect("the binary has a directory");
    assert!(
        dir.join("github-sim").exists(),
        "{} has no github-sim binary: build it first with `cargo build -p github-sim` (cargo test --workspace does)",
        dir.display()
    );
    dir.to_path_buf()
}

fn demo(bin: &Path, data: &Path) -> std::process::Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/demo.sh");
    let mut c = Command::new("bash");
    c.arg(script).arg(data).env("GHSTATS_BIN_DIR", bin);
    for var in [
        "GITHUB_ORG",
        "GITHUB_TOKEN",
        "GITHUB_TOKENS",
        "STORAGE_URL",
        "WAREHOUSE_URL",
    ] {
        c.env_remove(var);
    }
    c.output().expect("bash runs scripts/demo.sh")
}

#[test]
fn the_demo_prints_its_summary_and_exits_zero() {
    let data = tempfile::tempdir().unwrap();
    let out = demo(&bin_dir(), data.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "the demo exits 0 after a successful run\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout.contains(": completed"),
        "the collection completed:\n{stdout}"
    );
    assert!(
        stdout.contains("velocity (last 180 days):")
            && stdout.contains("median hours to merge:")
            && stdout.contains("busiest reviewers:"),
        "the summary is printed:\n{stdout}"
    );
    assert!(data.path().join("warehouse.db").exists());
}

#[test]
fn the_demo_exits_non_zero_when_a_step_fails() {
    // The simulator is the real one; ghstats is a stand-in that fails.
    let bin = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(bin_dir().join("github-sim"), bin.path().join("github-sim"))
        .unwrap();
    let fake = bin.path().join("ghstats");
    std::fs::write(&fake, "#!/bin/sh\necho 'backfill failed' >&2\nexit 3\n").unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let data = tempfile::tempdir().unwrap();
    let out = demo(bin.path(), data.path());
    assert_eq!(
        out.status.code(),
        Some(3),
        "the failing step's status is the demo's: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
