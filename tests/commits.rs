//! `ghstats commits` end to end, the way production fetches: the simulator serves git
//! repositories over smart HTTP (with token checks) beside GraphQL about the same objects, and
//! the binary writes Parquet partitions into the lake and loads the warehouse. The truth is
//! `git` itself, run on the simulator's repositories: `git log --numstat` and
//! `git log --name-status` (never ghstats' own parser), `git cat-file -s`, and the simulator's
//! mapping of author emails to accounts. The lake is also read by pyarrow and DuckDB.

mod common;

use chrono::{DateTime, Utc};
use common::ghstats_bin;
use ghstats::commits::{partition, rows::*};
use ghstats::lake::Lake;
use github_sim::git::{GitRepoSpec, GitSource};
use github_sim::{OrgSpec, SimOptions, Simulator};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

const TOKEN: &str = "commits-test-token-0123456789";

fn fd_bundle() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/git/fd.bundle");
    if p.is_file() {
        return Some(p);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI needs ../shared/fixtures/git/fd.bundle"
    );
    eprintln!("skipped: ../shared/fixtures/git/fd.bundle not found");
    None
}

async fn sim_with(repos: Vec<GitRepoSpec>, options: SimOptions) -> Simulator {
    let mut spec = OrgSpec::new("acme", 1, 3, 11);
    spec.git_repos = repos;
    Simulator::start(&spec, options, 0).await.unwrap()
}

fn synthetic(name: &str, commits: usize) -> GitRepoSpec {
    GitRepoSpec {
        name: name.into(),
        source: GitSource::Synthetic { commits },
    }
}

fn options() -> SimOptions {
    SimOptions {
        tokens: vec![TOKEN.into()],
        ..SimOptions::default()
    }
}

/// `ghstats commits ARGS` against `sim`, lake `dir/lake`, warehouse `dir/wh.db`, cache
/// `dir/git`. Returns the exit code, the result JSON (Null when none) and stderr.
fn commits_command(dir: &Path, sim: &Simulator, args: &[&str]) -> Command {
    let mut c = ghstats_bin(dir);
    c.arg("commits")
        .args(args)
        .env("GITHUB_API_URL", sim.url())
        .env("GITHUB_GIT_URL", sim.url())
        .env("GITHUB_TOKEN", TOKEN)
        .env("STORAGE_URL", format!("file://{}/lake", dir.display()))
        .env("WAREHOUSE_URL", format!("sqlite://{}/wh.db", dir.display()))
        .env("GIT_CACHE_DIR", dir.join("git"))
        .env("LOG_FORMAT", "json");
    c
}

fn run(dir: &Path, sim: &Simulator, args: &[&str]) -> (i32, Value, String) {
    let out = commits_command(dir, sim, args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let v = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), v, stderr)
}

fn git(dir: &Path) -> Command {
    let mut c = Command::new("git");
    c.arg("--git-dir").arg(dir);
    c.env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null");
    c
}

fn git_text(dir: &Path, args: &[&str]) -> String {
    let out = git(dir).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One commit as git describes it.
#[derive(Debug, PartialEq, Eq)]
struct CommitTruth {
    parents: Vec<String>,
    author_name: String,
    author_email: String,
    authored_at: i64,
    committer_name: String,
    commit_at: i64,
    message: String,
}

/// One file change as git describes it: (status, previous path, added, deleted, binary).
type FileTruth = (String, Option<String>, i64, i64, bool);

struct Truth {
    commits: BTreeMap<String, CommitTruth>,
    files: BTreeMap<(String, String), FileTruth>,
}

/// The truth of the default branch of the bare repository `dir`, from git's own outputs.
fn truth(dir: &Path) -> Truth {
    let mut commits = BTreeMap::new();
    let log = git_text(
        dir,
        &[
            "log",
            "--format=%H%x1f%P%x1f%an%x1f%ae%x1f%at%x1f%cn%x1f%ct%x1f%B%x1e",
            "HEAD",
        ],
    );
    for rec in log.split('\u{1e}') {
        let rec = rec.trim_start_matches('\n');
        if rec.is_empty() {
            continue;
        }
        let f: Vec<&str> = rec.split('\u{1f}').collect();
        assert_eq!(f.len(), 8, "{rec:?}");
        // GitHub shows a message without its trailing newlines.
        let message = f[7].trim_end_matches('\n').to_string();
        commits.insert(
            f[0].to_string(),
            CommitTruth {
                parents: f[1].split_whitespace().map(str::to_string).collect(),
                author_name: f[2].into(),
                author_email: f[3].into(),
                authored_at: f[4].parse().unwrap(),
                committer_name: f[5].into(),
                commit_at: f[6].parse().unwrap(),
                message,
            },
        );
    }
    // Lines from numstat, statuses from name-status: two runs of git, neither ours.
    let mut lines: BTreeMap<(String, String), (i64, i64, bool)> = BTreeMap::new();
    let numstat = git_text(
        dir,
        &[
            "log",
            "--numstat",
            "-M",
            "--diff-merges=first-parent",
            "-z",
            "--format=%x01%H",
            "HEAD",
        ],
    );
    let mut current = String::new();
    let mut tokens = numstat.split('\0');
    while let Some(t) = tokens.next() {
        let t = t.trim_start_matches('\n');
        if let Some(sha) = t.strip_prefix('\u{1}') {
            current = sha.to_string();
            continue;
        }
        if t.is_empty() {
            continue;
        }
        let mut p = t.splitn(3, '\t');
        let (a, d, path) = (p.next().unwrap(), p.next().unwrap(), p.next().unwrap());
        let path = if path.is_empty() {
            tokens.next().unwrap();
            tokens.next().unwrap().to_string()
        } else {
            path.to_string()
        };
        let binary = a == "-";
        let n = |s: &str| s.parse::<i64>().unwrap_or(0);
        lines.insert((current.clone(), path), (n(a), n(d), binary));
    }
    let mut files = BTreeMap::new();
    let status = git_text(
        dir,
        &[
            "log",
            "--name-status",
            "-M",
            "--diff-merges=first-parent",
            "-z",
            "--format=%x01%H",
            "HEAD",
        ],
    );
    let mut tokens = status.split('\0');
    while let Some(t) = tokens.next() {
        let t = t.trim_start_matches('\n');
        if let Some(sha) = t.strip_prefix('\u{1}') {
            current = sha.to_string();
            continue;
        }
        if t.is_empty() {
            continue;
        }
        let letter = t.chars().next().unwrap();
        let (path, previous) = if matches!(letter, 'R' | 'C') {
            let old = tokens.next().unwrap().to_string();
            (tokens.next().unwrap().to_string(), Some(old))
        } else {
            (tokens.next().unwrap().to_string(), None)
        };
        let name = match letter {
            'A' => "added",
            'D' => "removed",
            'R' => "renamed",
            'C' => "copied",
            'T' => "type-changed",
            _ => "modified",
        };
        let (a, d, binary) = lines
            .get(&(current.clone(), path.clone()))
            .copied()
            .unwrap_or_else(|| panic!("{current} {path}: in name-status, not in numstat"));
        files.insert(
            (current.clone(), path),
            (name.to_string(), previous, a, d, binary),
        );
    }
    Truth { commits, files }
}

fn lake_of(dir: &Path) -> Lake {
    let url: ghstats::config::StorageUrl =
        format!("file://{}/lake", dir.display()).parse().unwrap();
    Lake::open(&url, None).unwrap()
}

/// Every row of the repository in the lake, read with ghstats' reader.
async fn lake_rows(
    lake: &Lake,
    repository_id: i64,
) -> (Vec<CommitRow>, Vec<FileChangeRow>, Vec<FileStateRow>) {
    let (mut c, mut f, mut s) = (Vec::new(), Vec::new(), Vec::new());
    for m in partition::stored_months(lake, repository_id).await.unwrap() {
        let part = partition::stored_month(lake, repository_id, &m)
            .await
            .unwrap();
        let (a, b, d) = partition::read_month(lake, &part).await.unwrap();
        for r in &a {
            assert_eq!(
                r.commit_month, m,
                "{} is in the month of its commit_at",
                r.commit_sha
            );
        }
        c.extend(a);
        f.extend(b);
        s.extend(d);
    }
    (c, f, s)
}

/// The lake holds exactly the truth: every commit once, with git's metadata, its files with
/// git's statuses and line counts, and a file state per file that was not removed.
fn assert_lake_is_the_truth(
    t: &Truth,
    (c, f, s): &(Vec<CommitRow>, Vec<FileChangeRow>, Vec<FileStateRow>),
    full_name: &str,
) {
    let shas: BTreeSet<&str> = c.iter().map(|r| r.commit_sha.as_str()).collect();
    assert_eq!(shas.len(), c.len(), "a commit is stored twice");
    let want: BTreeSet<&str> = t.commits.keys().map(String::as_str).collect();
    assert_eq!(shas, want, "the stored commits are the branch's");
    for r in c {
        let w = &t.commits[&r.commit_sha];
        assert_eq!(r.repository, full_name);
        assert_eq!(r.parent_commits, w.parents, "{}", r.commit_sha);
        assert_eq!(r.is_merge, w.parents.len() > 1);
        assert_eq!(r.author_name, w.author_name);
        assert_eq!(r.author_email, w.author_email);
        assert_eq!(r.committer_name, w.committer_name);
        assert_eq!(r.authored_at.timestamp(), w.authored_at);
        assert_eq!(r.commit_at.timestamp(), w.commit_at);
        assert_eq!(r.commit_message, w.message, "{}", r.commit_sha);
        assert_eq!(r.commit_month, month_of(r.commit_at));
        let linked = github_sim::git::linked_user(&r.author_email);
        assert_eq!(
            r.commit_author_id,
            linked.as_ref().map(|u| u.0),
            "{}",
            r.author_email
        );
        assert_eq!(r.author_login, linked.map(|u| u.1));
    }
    let mut per_commit: BTreeMap<&str, (i64, i64, i64)> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    let mut differences = Vec::new();
    for r in f {
        assert!(
            seen.insert((r.commit_sha.clone(), r.file_path.clone())),
            "{} {} twice",
            r.commit_sha,
            r.file_path
        );
        let got: FileTruth = (
            r.status.clone(),
            r.previous_path.clone(),
            r.lines_added,
            r.lines_deleted,
            r.is_binary,
        );
        match t.files.get(&(r.commit_sha.clone(), r.file_path.clone())) {
            Some(w) if *w == got => {}
            w => differences.push(format!(
                "{} {}: ours {got:?}, git {w:?}",
                r.commit_sha, r.file_path
            )),
        }
        assert_eq!(r.changes, r.lines_added + r.lines_deleted);
        assert_eq!(r.file_type, file_type(&r.file_path));
        assert_eq!(
            r.file_sha.is_none(),
            r.status == "removed",
            "{} {}",
            r.commit_sha,
            r.file_path
        );
        let e = per_commit.entry(r.commit_sha.as_str()).or_default();
        e.0 += 1;
        e.1 += r.lines_added;
        e.2 += r.lines_deleted;
    }
    assert!(
        differences.is_empty(),
        "{} differences:\n{}",
        differences.len(),
        differences.join("\n")
    );
    assert_eq!(seen.len(), t.files.len(), "file changes: stored vs git");
    for r in c {
        let (n, a, d) = per_commit
            .get(r.commit_sha.as_str())
            .copied()
            .unwrap_or_default();
        assert_eq!(
            (r.num_files_changed, r.num_lines_added, r.num_lines_deleted),
            (n, a, d),
            "{}",
            r.commit_sha
        );
    }
    let not_removed = f.iter().filter(|r| r.status != "removed").count();
    assert_eq!(s.len(), not_removed, "a file state per file written");
    for r in s {
        assert_eq!(r.raw_url, raw_url(full_name, &r.commit_sha, &r.file_path));
        assert!(r.s3_file_location.is_none());
    }
}

/// Sizes of a sample of file states, against `git cat-file -s` of `sha:path`.
fn assert_sizes_are_git_s(dir: &Path, s: &[FileStateRow]) {
    for r in s.iter().step_by((s.len() / 40).max(1)) {
        let blob = git_text(
            dir,
            &["rev-parse", &format!("{}:{}", r.commit_sha, r.file_path)],
        );
        assert_eq!(blob.trim(), r.file_sha, "{} {}", r.commit_sha, r.file_path);
        let mode = git_text(dir, &["ls-tree", &r.commit_sha, "--", &r.file_path]);
        if mode.starts_with("160000") {
            assert_eq!(r.file_size, None, "a submodule has no size");
            continue;
        }
        let size: i64 = git_text(dir, &["cat-file", "-s", &r.file_sha])
            .trim()
            .parse()
            .unwrap();
        assert_eq!(r.file_size, Some(size), "{} {}", r.commit_sha, r.file_path);
    }
}

async fn warehouse_counts(dir: &Path) -> BTreeMap<String, u64> {
    let url: ghstats::warehouse::WarehouseUrl =
        format!("sqlite://{}/wh.db", dir.display()).parse().unwrap();
    let wh = ghstats::warehouse::open_existing(&url).await.unwrap();
    let mut out = BTreeMap::new();
    for t in ["commits", "file_changes", "file_states"] {
        let rows = wh
            .query(&format!("SELECT COUNT(*) AS n FROM {t}"))
            .await
            .unwrap();
        out.insert(t.to_string(), rows[0]["n"].as_u64().unwrap());
    }
    let r = wh
        .query("SELECT last_commit_sha FROM repositories WHERE last_commit_sha IS NOT NULL")
        .await
        .unwrap();
    out.insert("repositories_with_last_commit".into(), r.len() as u64);
    out
}

fn repo_id(result: &Value, name: &str) -> i64 {
    result["details"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["repository"] == name)
        .unwrap_or_else(|| panic!("{name} in {result}"))["repository_id"]
        .as_i64()
        .unwrap()
}

/// Every file under `root`, as path → bytes.
fn files_under(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(b) = std::fs::read(&p) {
                out.insert(p, b);
            }
        }
    }
    out
}

fn assert_no_token_in(root: &Path, also: &[&str]) {
    for (p, bytes) in files_under(root) {
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(TOKEN), "the token is in {}", p.display());
        // The Basic form of the header, too.
        assert!(
            !text.contains("eC1hY2Nlc3MtdG9rZW46"),
            "an Authorization header is in {}",
            p.display()
        );
    }
    for s in also {
        assert!(!s.contains(TOKEN), "the token is in the output");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fd_history_fetched_over_smart_http_equals_git_log_and_costs_no_rest_call() {
    let Some(bundle) = fd_bundle() else { return };
    let sim = sim_with(
        vec![GitRepoSpec {
            name: "fd".into(),
            source: GitSource::Path(bundle),
        }],
        options(),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (code, r, stderr) = run(dir.path(), &sim, &["--repos", "acme/fd"]);
    assert_eq!(code, 0, "{r} {stderr}");
    assert_eq!(r["status"], "completed");
    let id = repo_id(&r, "acme/fd");
    let served = sim.git_dir("fd").unwrap();
    let t = truth(&served);
    assert!(t.commits.len() > 1900, "{}", t.commits.len());
    assert_eq!(r["commits"].as_u64().unwrap() as usize, t.commits.len());
    let lake = lake_of(dir.path());
    let rows = lake_rows(&lake, id).await;
    assert_lake_is_the_truth(&t, &rows, "acme/fd");
    assert_sizes_are_git_s(&served, &rows.2);
    println!(
        "fd over smart HTTP: {} commits, {} file changes, 0 differences from git log --numstat",
        rows.0.len(),
        rows.1.len()
    );
    // The warehouse holds what the lake holds.
    let counts = warehouse_counts(dir.path()).await;
    assert_eq!(counts["commits"] as usize, rows.0.len());
    assert_eq!(counts["file_changes"] as usize, rows.1.len());
    assert_eq!(counts["file_states"] as usize, rows.2.len());
    assert_eq!(counts["repositories_with_last_commit"], 1);
    // Cost: no REST request; GraphQL about 1 point per 100 commits plus the lookup.
    let ledger = serde_json::to_value(sim.ledger()).unwrap();
    assert_eq!(ledger["rest_requests"], 0, "{ledger}");
    let points = ledger["graphql_points"].as_u64().unwrap();
    assert!(
        points <= 2 + (t.commits.len() as u64).div_ceil(100) + 1,
        "{points} points"
    );
    assert_eq!(r["api_cost"]["graphql_points"].as_u64(), Some(points));
    assert_eq!(r["api_cost"]["rest_requests"], 0);
    // The token is nowhere on disk: not in the lake, the cache's config, the warehouse.
    assert_no_token_in(dir.path(), &[&stderr, &r.to_string()]);

    // Independent readers (pyarrow, DuckDB) see the same rows, partitions included.
    if let Ok(python) = std::env::var("GHSTATS_TEST_PARQUET_PYTHON") {
        let out = Command::new(&python)
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/scripts/read-commits-parquet.py"
            ))
            .arg(dir.path().join("lake"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let read: BTreeMap<String, BTreeMap<String, Vec<Value>>> =
            serde_json::from_slice(&out.stdout).unwrap();
        assert!(read.contains_key("pyarrow"), "{python} lacks pyarrow");
        for (reader, tables) in &read {
            let commits = &tables["commits"];
            assert_eq!(commits.len(), t.commits.len(), "{reader}");
            for row in commits {
                let sha = row[0].as_str().unwrap();
                let w = &t.commits[sha];
                assert_eq!(
                    row[1].as_i64(),
                    Some(id),
                    "{reader}: repository_id from the folder"
                );
                let month = DateTime::<Utc>::from_timestamp(w.commit_at, 0)
                    .unwrap()
                    .format("%Y-%m")
                    .to_string();
                assert_eq!(
                    row[2].as_str(),
                    Some(month.as_str()),
                    "{reader}: commit_month from the folder"
                );
                assert_eq!(row[3].as_str(), Some(w.author_name.as_str()), "{reader}");
                assert_eq!(row[6].as_i64(), Some(w.commit_at), "{reader}");
                assert_eq!(row[8].as_str(), Some(w.message.as_str()), "{reader}");
                let parents: Vec<&str> = row[9]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p.as_str().unwrap())
                    .collect();
                assert_eq!(parents, w.parents, "{reader}");
            }
            let changes = &tables["file_changes"];
            assert_eq!(changes.len(), t.files.len(), "{reader}");
            for row in changes {
                let key = (
                    row[0].as_str().unwrap().to_string(),
                    row[1].as_str().unwrap().to_string(),
                );
                let w = &t.files[&key];
                assert_eq!(row[3].as_str(), Some(w.0.as_str()), "{reader} {key:?}");
                assert_eq!(row[2].as_str().map(str::to_string), w.1, "{reader} {key:?}");
                assert_eq!(
                    (row[4].as_i64(), row[5].as_i64(), row[6].as_bool()),
                    (Some(w.2), Some(w.3), Some(w.4)),
                    "{reader} {key:?}"
                );
            }
            assert_eq!(tables["file_states"].len(), rows.2.len(), "{reader}");
        }
    } else {
        eprintln!("independent readers skipped: GHSTATS_TEST_PARQUET_PYTHON is not set (scripts/services.sh sets it)");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_adds_only_its_commits_and_rewrites_only_the_months_they_touch() {
    let sim = sim_with(vec![synthetic("app", 400)], options()).await;
    let dir = tempfile::tempdir().unwrap();
    let (code, r, stderr) = run(dir.path(), &sim, &["--repos", "acme/app"]);
    assert_eq!(code, 0, "{r} {stderr}");
    let id = repo_id(&r, "acme/app");
    let served = sim.git_dir("app").unwrap();
    let lake = lake_of(dir.path());
    assert_lake_is_the_truth(&truth(&served), &lake_rows(&lake, id).await, "acme/app");
    assert_sizes_are_git_s(&served, &lake_rows(&lake, id).await.2);

    // Nothing moved: no git request at all, nothing written.
    let before = files_under(&dir.path().join("lake/github"));
    let git_before = serde_json::to_value(sim.ledger()).unwrap();
    let (code, r2, stderr) = run(dir.path(), &sim, &["--repos", "acme/app"]);
    assert_eq!(code, 0, "{r2} {stderr}");
    assert_eq!(r2["details"][0]["status"], "unchanged", "{r2}");
    assert_eq!(r2["details"][0]["fetched"], false);
    assert_eq!(r2["commits"], 0);
    let git_after = serde_json::to_value(sim.ledger()).unwrap();
    assert_eq!(
        git_before["git_info_refs"], git_after["git_info_refs"],
        "an unchanged head costs no git request"
    );
    assert_eq!(
        git_before["git_upload_packs"],
        git_after["git_upload_packs"]
    );
    let unchanged: BTreeMap<_, _> = files_under(&dir.path().join("lake/github"))
        .into_iter()
        .filter(|(p, _)| !p.to_string_lossy().contains("/_commits/"))
        .collect();
    let before_parts: BTreeMap<_, _> = before
        .iter()
        .filter(|(p, _)| !p.to_string_lossy().contains("/_commits/"))
        .map(|(p, b)| (p.clone(), b.clone()))
        .collect();
    assert_eq!(unchanged, before_parts);

    // A push of 7 commits: only they are read; only their months are rewritten.
    let push = sim.git_push("app", 7, 5).await.unwrap();
    assert_eq!(push.added.len(), 7);
    let (code, r3, stderr) = run(dir.path(), &sim, &["--repos", "acme/app"]);
    assert_eq!(code, 0, "{r3} {stderr}");
    assert_eq!(r3["commits"], 7, "{r3}");
    assert_eq!(r3["details"][0]["status"], "updated");
    let t = truth(&served);
    let months: BTreeSet<String> = push
        .added
        .iter()
        .map(|s| month_of(DateTime::from_timestamp(t.commits[s].commit_at, 0).unwrap()))
        .collect();
    let written: BTreeSet<String> = r3["details"][0]["months"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap().to_string())
        .collect();
    assert_eq!(written, months);
    let after = files_under(&dir.path().join("lake/github"));
    for (p, b) in &before_parts {
        let in_touched = months
            .iter()
            .any(|m| p.to_string_lossy().contains(&format!("commit_month={m}/")));
        if !in_touched {
            assert_eq!(after.get(p), Some(b), "{} was rewritten", p.display());
        }
    }
    assert_lake_is_the_truth(&t, &lake_rows(&lake, id).await, "acme/app");
    let rows = lake_rows(&lake, id).await;
    let counts = warehouse_counts(dir.path()).await;
    assert_eq!(counts["commits"] as usize, rows.0.len());
    assert_eq!(counts["file_changes"] as usize, rows.1.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_force_push_removes_the_dropped_commits_and_recomputes_their_months() {
    let sim = sim_with(vec![synthetic("app", 300)], options()).await;
    let dir = tempfile::tempdir().unwrap();
    let (code, r, stderr) = run(dir.path(), &sim, &["--repos", "acme/app"]);
    assert_eq!(code, 0, "{r} {stderr}");
    let id = repo_id(&r, "acme/app");
    let push = sim.git_force_push("app", 4, 3, 9).await.unwrap();
    assert!(!push.dropped.is_empty());
    let (code, r2, stderr) = run(dir.path(), &sim, &["--repos", "acme/app"]);
    assert_eq!(code, 0, "{r2} {stderr}");
    assert_eq!(r2["details"][0]["status"], "force_pushed", "{r2}");
    assert_eq!(
        r2["details"][0]["dropped_commits"].as_u64().unwrap() as usize,
        push.dropped.len()
    );
    assert_eq!(r2["force_pushed"][0], "acme/app");
    let lake = lake_of(dir.path());
    let rows = lake_rows(&lake, id).await;
    let served = sim.git_dir("app").unwrap();
    assert_lake_is_the_truth(&truth(&served), &rows, "acme/app");
    for d in &push.dropped {
        assert!(
            !rows.0.iter().any(|c| &c.commit_sha == d),
            "dropped {d} is still stored"
        );
    }
    let counts = warehouse_counts(dir.path()).await;
    assert_eq!(
        counts["commits"] as usize,
        rows.0.len(),
        "the warehouse lost the dropped commits too"
    );
    assert_eq!(counts["file_changes"] as usize, rows.1.len());
    assert_eq!(counts["file_states"] as usize, rows.2.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_cache_continues_from_the_lake_with_a_shallow_fetch() {
    // Cloud Run's cache is empty at every start: the lake says where the branch was.
    let sim = sim_with(vec![synthetic("app", 300)], options()).await;
    let dir = tempfile::tempdir().unwrap();
    let (code, r, stderr) = run(dir.path(), &sim, &["--repos", "acme/app"]);
    assert_eq!(code, 0, "{r} {stderr}");
    let id = repo_id(&r, "acme/app");
    std::fs::remove_dir_all(dir.path().join("git")).unwrap();
    sim.git_push("app", 5, 3).await.unwrap();
    let (code, r2, stderr) = run(dir.path(), &sim, &["--repos", "acme/app"]);
    assert_eq!(code, 0, "{r2} {stderr}");
    assert_eq!(r2["commits"], 5, "{r2}");
    assert!(
        ghstats::commits::git::is_shallow(&dir.path().join(format!("git/{id}.git"))),
        "the fetch was shallow"
    );
    let served = sim.git_dir("app").unwrap();
    assert_lake_is_the_truth(
        &truth(&served),
        &lake_rows(&lake_of(dir.path()), id).await,
        "acme/app",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_anywhere_then_rerunning_loses_and_duplicates_nothing() {
    use rand::{Rng, SeedableRng};
    let seed: u64 = std::env::var("GHSTATS_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    println!("kill seed {seed} (GHSTATS_KILL_SEED={seed} repeats it)");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let sim = sim_with(
        vec![synthetic("app", 1500), synthetic("lib", 600)],
        options(),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--repos",
        "acme/app,acme/lib",
        "--batch-commits",
        "150",
        "--force",
    ];
    let mut kills = 0;
    // Up to 8 runs killed at random moments (most land mid-batch: fetching, reading, writing a
    // month, loading, recording the place), then one run to the end.
    for _ in 0..8 {
        let mut child = commits_command(dir.path(), &sim, &args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let wait_ms = rng.gen_range(20..900u64);
        let deadline = std::time::Instant::now() + std::time::Duration::from_millis(wait_ms);
        let mut finished = false;
        while std::time::Instant::now() < deadline {
            if child.try_wait().unwrap().is_some() {
                finished = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        if finished {
            break;
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
    }
    let out = commits_command(dir.path(), &sim, &args).output().unwrap();
    let last: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{last} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{kills} kills");
    assert_eq!(last["status"], "completed", "{last}");
    let lake = lake_of(dir.path());
    let mut total = (0, 0, 0);
    for name in ["app", "lib"] {
        let full = format!("acme/{name}");
        let id = repo_id(&last, &full);
        let rows = lake_rows(&lake, id).await;
        assert_lake_is_the_truth(&truth(&sim.git_dir(name).unwrap()), &rows, &full);
        total.0 += rows.0.len();
        total.1 += rows.1.len();
        total.2 += rows.2.len();
    }
    let counts = warehouse_counts(dir.path()).await;
    assert_eq!(
        (
            counts["commits"] as usize,
            counts["file_changes"] as usize,
            counts["file_states"] as usize
        ),
        total,
        "the warehouse equals the lake"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organization_skips_forks_and_archived_and_tokens_of_one_user_are_one_budget() {
    let mut options = options();
    options.tokens = vec!["t-alice-1".into(), "t-alice-2".into(), "t-bob".into()];
    options.token_users = [
        ("t-alice-1".to_string(), "alice".to_string()),
        ("t-alice-2".to_string(), "alice".to_string()),
        ("t-bob".to_string(), "bob".to_string()),
    ]
    .into_iter()
    .collect();
    let sim = sim_with(vec![synthetic("app", 40), synthetic("lib", 30)], options).await;
    let dir = tempfile::tempdir().unwrap();
    let out = commits_command(dir.path(), &sim, &["--org", "acme"])
        .env_remove("GITHUB_TOKEN")
        .env("GITHUB_TOKENS", "t-alice-1,t-alice-2,t-bob")
        .output()
        .unwrap();
    let r: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The simulator's own repository (no git content) fails alone; the rest go on.
    assert_eq!(r["distinct_budgets"], 2, "{r} {stderr}");
    let details = r["details"].as_array().unwrap();
    let status = |name: &str| {
        details
            .iter()
            .find(|d| d["repository"] == format!("acme/{name}"))
            .map(|d| d["status"].as_str().unwrap().to_string())
    };
    assert_eq!(status("app").as_deref(), Some("updated"), "{r}");
    assert_eq!(status("lib").as_deref(), Some("updated"), "{r}");
    let skipped = details.iter().filter(|d| d["status"] == "skipped").count();
    assert_eq!(skipped, 2, "the fork and the archived repository: {r}");
    assert_eq!(r["commits"], 70);
}

#[test]
fn bad_input_gets_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<Vec<&str>> = vec![
        vec![],
        vec!["--repos", "nope"],
        vec!["--repos", "a/b/c"],
        vec!["--repos", "../x"],
        vec!["--repos-file", "/nonexistent/file"],
        vec!["--repos", "a/b", "--until", "yesterday"],
        vec!["--repos", "a/b", "--until", "2999-01-01"],
        vec![
            "--repos",
            "a/b",
            "--since",
            "2026-02-01",
            "--until",
            "2026-01-01",
        ],
        vec!["--top-starred", "0"],
        vec!["--repos", "a/b", "--batch-commits", "0"],
        vec!["--repos", "a/b", "--top-starred", "3"],
    ];
    for args in cases {
        let out = ghstats_bin(dir.path())
            .arg("commits")
            .args(&args)
            .env("GITHUB_TOKEN", "x")
            .env(
                "STORAGE_URL",
                format!("file://{}/lake", dir.path().display()),
            )
            .env(
                "WAREHOUSE_URL",
                format!("sqlite://{}/wh.db", dir.path().display()),
            )
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        // One readable line first; clap may add its usage line and a pointer to --help.
        assert!(
            stderr.trim().lines().count() <= 5 && stderr.starts_with("error: "),
            "{args:?}: {stderr}"
        );
        assert!(
            !dir.path().join("wh.db").exists(),
            "{args:?} created the warehouse"
        );
    }
    // A repos file with a bad line names the line.
    let file = dir.path().join("repos.txt");
    std::fs::write(&file, "# mine\na/b\n\nnot a repo\n").unwrap();
    let out = ghstats_bin(dir.path())
        .arg("commits")
        .arg("--repos-file")
        .arg(&file)
        .env("GITHUB_TOKEN", "x")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("repos.txt:4"), "{stderr}");
    // One that names nothing is refused, not read as "all of GITHUB_ORG".
    std::fs::write(&file, "# nothing yet\n\n").unwrap();
    let out = ghstats_bin(dir.path())
        .arg("commits")
        .arg("--repos-file")
        .arg(&file)
        .env("GITHUB_TOKEN", "x")
        .env("GITHUB_ORG", "acme")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("names no repository"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_s3_lake_and_a_postgresql_warehouse_hold_the_same_truth() {
    let Some(endpoint) = common::test_server("GHSTATS_TEST_S3_ENDPOINT") else {
        eprintln!("skipped: GHSTATS_TEST_S3_ENDPOINT is not set (scripts/services.sh sets it)");
        return;
    };
    let Some(pg) = common::fresh_database().await else {
        return;
    };
    let bucket = format!("ghstats-{:08x}", rand::random::<u32>());
    let created = reqwest::Client::new()
        .put(format!("{endpoint}{bucket}"))
        .send()
        .await
        .unwrap();
    assert!(
        created.status().is_success(),
        "creating the bucket: {}",
        created.status()
    );
    std::env::set_var("AWS_ACCESS_KEY_ID", "test");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "test");
    let lake_url: ghstats::config::StorageUrl = format!("s3://{bucket}/commits").parse().unwrap();
    let lake = Lake::open(&lake_url, Some(&endpoint)).unwrap();
    let endpoint = endpoint.to_string();
    let sim = sim_with(
        vec![synthetic("app", 250), synthetic("lib", 120)],
        options(),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let s3 = |c: &mut Command| {
        c.env("STORAGE_URL", format!("s3://{bucket}/commits"))
            .env("STORAGE_ENDPOINT", &endpoint)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("WAREHOUSE_URL", &pg);
    };
    let mut c = commits_command(dir.path(), &sim, &["--repos", "acme/app,acme/lib"]);
    s3(&mut c);
    let out = c.output().unwrap();
    let r: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{r} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    sim.git_force_push("lib", 2, 3, 4).await.unwrap();
    sim.git_push("app", 4, 4).await.unwrap();
    let mut c = commits_command(dir.path(), &sim, &["--repos", "acme/app,acme/lib"]);
    s3(&mut c);
    let out = c.output().unwrap();
    let r: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{r} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(r["commits"], 7, "{r}");
    // Nothing of the run landed on the local disk but the git cache.
    assert!(!dir.path().join("lake").exists());
    let url: ghstats::warehouse::WarehouseUrl = pg.parse().unwrap();
    let wh = ghstats::warehouse::open_existing(&url).await.unwrap();
    for name in ["app", "lib"] {
        let full = format!("acme/{name}");
        let id = repo_id(&r, &full);
        let rows = lake_rows(&lake, id).await;
        assert_lake_is_the_truth(&truth(&sim.git_dir(name).unwrap()), &rows, &full);
        for (table, n) in [
            ("commits", rows.0.len()),
            ("file_changes", rows.1.len()),
            ("file_states", rows.2.len()),
        ] {
            let got = wh
                .query(&format!(
                    "SELECT COUNT(*) AS n FROM {table} WHERE repository_id = {id}"
                ))
                .await
                .unwrap();
            assert_eq!(got[0]["n"].as_u64(), Some(n as u64), "{full} {table}");
        }
        let last = wh
            .query(&format!(
                "SELECT last_commit_sha FROM repositories WHERE repo_id = {id}"
            ))
            .await
            .unwrap();
        let head = git_text(&sim.git_dir(name).unwrap(), &["rev-parse", "HEAD"]);
        assert_eq!(
            last[0]["last_commit_sha"].as_str(),
            Some(head.trim()),
            "{full}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_after_the_batch_in_hand_and_the_next_run_finishes() {
    let sim = sim_with(vec![synthetic("big", 3000)], options()).await;
    let dir = tempfile::tempdir().unwrap();
    let args = ["--repos", "acme/big", "--batch-commits", "50"];
    let child = commits_command(dir.path(), &sim, &args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Once the first batch's place is recorded, ask it to stop.
    let states = dir.path().join("lake/github/_commits/state");
    let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::fs::read_dir(&states).map(|d| d.count()).unwrap_or(0) == 0 {
        assert!(
            std::time::Instant::now() < until,
            "no batch was recorded in 60 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let out = child.wait_with_output().unwrap();
    let r: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert_eq!(
        out.status.code(),
        Some(3),
        "partial: {r} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(r["status"], "partial");
    assert_eq!(r["details"][0]["status"], "partial");
    let first = r["commits"].as_u64().unwrap();
    assert!(first > 0 && first < 3000, "{first} commits before the stop");
    // The next run reads only the rest.
    let (code, r2, stderr) = run(dir.path(), &sim, &args);
    assert_eq!(code, 0, "{r2} {stderr}");
    // Batches end on the first-parent chain, so nothing is read twice.
    assert_eq!(r2["commits"].as_u64().unwrap() + first, 3000, "{r2}");
    let id = repo_id(&r2, "acme/big");
    assert_lake_is_the_truth(
        &truth(&sim.git_dir("big").unwrap()),
        &lake_rows(&lake_of(dir.path()), id).await,
        "acme/big",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_caches_after_pushes_and_force_pushes_and_a_new_lake_still_give_the_truth() {
    // Cloud Run starts every run with an empty cache; git cannot deepen some histories fetched
    // by date (fd), nor negotiate some after a force-push: the whole history is fetched then.
    let Some(bundle) = fd_bundle() else { return };
    let sim = sim_with(
        vec![
            GitRepoSpec {
                name: "fd".into(),
                source: GitSource::Path(bundle),
            },
            synthetic("syn", 300),
        ],
        options(),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let args = ["--repos", "acme/fd,acme/syn"];
    let check = |r: &Value, code: i32, stderr: &str| {
        assert_eq!(code, 0, "{r} {stderr}");
        assert_eq!(r["status"], "completed", "{r}");
    };
    let (code, r, stderr) = run(dir.path(), &sim, &args);
    check(&r, code, &stderr);
    sim.git_push("fd", 3, 1).await.unwrap();
    sim.git_push("syn", 4, 1).await.unwrap();
    std::fs::remove_dir_all(dir.path().join("git")).unwrap();
    let (code, r, stderr) = run(dir.path(), &sim, &args);
    check(&r, code, &stderr);
    assert_eq!(r["commits"], 7, "{r}");
    sim.git_force_push("syn", 3, 2, 2).await.unwrap();
    sim.git_force_push("fd", 2, 2, 2).await.unwrap();
    std::fs::remove_dir_all(dir.path().join("git")).unwrap();
    let (code, r, stderr) = run(dir.path(), &sim, &args);
    check(&r, code, &stderr);
    let lake = lake_of(dir.path());
    for name in ["fd", "syn"] {
        let full = format!("acme/{name}");
        let rows = lake_rows(&lake, repo_id(&r, &full)).await;
        assert_lake_is_the_truth(&truth(&sim.git_dir(name).unwrap()), &rows, &full);
    }
    // The same cache (shallow by now) with a new, empty lake and the same warehouse: the
    // whole history again, not the cache's window.
    sim.git_push("syn", 2, 3).await.unwrap();
    let out = commits_command(dir.path(), &sim, &args)
        .env(
            "STORAGE_URL",
            format!("file://{}/lake2", dir.path().display()),
        )
        .output()
        .unwrap();
    let r: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{r} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lake2 = Lake::open(
        &format!("file://{}/lake2", dir.path().display())
            .parse()
            .unwrap(),
        None,
    )
    .unwrap();
    let mut total = 0;
    for name in ["fd", "syn"] {
        let full = format!("acme/{name}");
        let rows = lake_rows(&lake2, repo_id(&r, &full)).await;
        assert_lake_is_the_truth(&truth(&sim.git_dir(name).unwrap()), &rows, &full);
        total += rows.0.len();
    }
    assert_eq!(
        warehouse_counts(dir.path()).await["commits"] as usize,
        total
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_before_what_is_stored_changes_nothing() {
    let sim = sim_with(vec![synthetic("app", 200)], options()).await;
    let dir = tempfile::tempdir().unwrap();
    let (code, r, stderr) = run(dir.path(), &sim, &["--repos", "acme/app"]);
    assert_eq!(code, 0, "{r} {stderr}");
    let id = repo_id(&r, "acme/app");
    let before = lake_rows(&lake_of(dir.path()), id).await.0.len();
    // The oldest commit's time: the snapshot then holds one commit, older than the place.
    let t = truth(&sim.git_dir("app").unwrap());
    let oldest = t.commits.values().map(|c| c.commit_at).min().unwrap();
    let until = DateTime::<Utc>::from_timestamp(oldest + 1, 0)
        .unwrap()
        .to_rfc3339();
    for u in [until.as_str(), "1970-01-02"] {
        let (code, r, stderr) = run(dir.path(), &sim, &["--repos", "acme/app", "--until", u]);
        assert_eq!(code, 0, "{u}: {r} {stderr}");
        assert_eq!(r["details"][0]["status"], "unchanged", "{u}: {r}");
        assert_eq!(r["commits"], 0, "{u}");
        assert_eq!(r["details"][0]["dropped_commits"], 0, "{u}");
    }
    assert_eq!(lake_rows(&lake_of(dir.path()), id).await.0.len(), before);
    assert_eq!(
        warehouse_counts(dir.path()).await["commits"] as usize,
        before
    );
}

#[test]
fn a_git_url_holding_credentials_is_refused_without_printing_them() {
    let dir = tempfile::tempdir().unwrap();
    let out = ghstats_bin(dir.path())
        .args(["commits", "--repos", "a/b"])
        .env("GITHUB_TOKEN", "x")
        .env(
            "GITHUB_GIT_URL",
            format!("https://user:{TOKEN}@git.example"),
        )
        .env(
            "STORAGE_URL",
            format!("file://{}/lake", dir.path().display()),
        )
        .env(
            "WAREHOUSE_URL",
            format!("sqlite://{}/wh.db", dir.path().display()),
        )
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("GITHUB_GIT_URL must not hold credentials"),
        "{stderr}"
    );
    assert!(
        !stderr.contains(TOKEN) && !stdout.contains(TOKEN),
        "{stderr}"
    );
}
