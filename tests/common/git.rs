//! Git helpers for the commits job's end-to-end tests: the fd bundle, a simulator serving git
//! repositories, and `git` run with no user configuration.

use github_sim::{GitRepoSpec, GitSource, OrgSpec, SimOptions, Simulator};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The fd bundle (`shared/fixtures/git/fd.bundle`, ~2,000 commits): `GHSTATS_FD_BUNDLE` when
/// set, else the `shared/` folder beside the repository, else `/work/shared`.
pub fn fd_bundle() -> PathBuf {
    let mut candidates = Vec::new();
    if let Some(p) = std::env::var_os("GHSTATS_FD_BUNDLE") {
        candidates.push(PathBuf::from(p));
    }
    candidates.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/git/fd.bundle"));
    candidates.push(PathBuf::from("/work/shared/fixtures/git/fd.bundle"));
    candidates
        .iter()
        .find(|p| p.exists())
        .cloned()
        .unwrap_or_else(|| panic!("the fd bundle is missing: tried {candidates:?}"))
}

/// A git repository of the organization from a bundle or repository.
pub fn git_repo(name: &str, path: &Path) -> GitRepoSpec {
    GitRepoSpec {
        name: name.into(),
        source: GitSource::Path(path.to_path_buf()),
    }
}

/// A synthetic git repository of `commits` commits.
pub fn synthetic_repo(name: &str, commits: usize) -> GitRepoSpec {
    GitRepoSpec {
        name: name.into(),
        source: GitSource::Synthetic { commits },
    }
}

/// A simulator for `super::ORG` (one generated repository, a few pull requests) serving
/// `repos` as git repositories, on port 0.
pub async fn git_sim(repos: Vec<GitRepoSpec>, options: SimOptions) -> Simulator {
    let mut spec = OrgSpec::new(super::ORG, 1, 5, 1);
    spec.git_repos = repos;
    Simulator::start(&spec, options, 0)
        .await
        .expect("the simulator starts")
}

/// `git` with no user or system configuration and no prompts, in `dir` when given.
pub fn git(dir: Option<&Path>) -> Command {
    let mut c = Command::new("git");
    if let Some(d) = dir {
        c.arg("-C").arg(d);
    }
    c.env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("LC_ALL", "C");
    c
}

/// Runs `git ARGS` in `dir` and returns its stdout, trimmed; panics with its stderr when it
/// fails.
pub fn git_ok(dir: &Path, args: &[&str]) -> String {
    let out = git(Some(dir)).args(args).output().expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
