//! The commits job's reading of git against `git log --numstat`, the oracle, on real
//! histories: the fd repository (../shared/fixtures/git/fd.bundle: about 2,000 commits, over
//! 400 merges, renames and binary files) and this project's own history. Every commit's files
//! and line counts must equal the oracle's; any difference is listed.

use ghstats::commits::git;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

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

/// A bare clone of `source` (a bundle or a repository) in a fresh temporary directory.
fn bare_clone(source: &Path) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("repo.git");
    let out = Command::new("git")
        .args(["clone", "--quiet", "--bare"])
        .arg(source)
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (tmp, dir)
}

/// Per commit: (path, added, deleted), binary as (-1, -1), from `git log --numstat -M
/// --diff-merges=first-parent -z` of HEAD.
type Oracle = BTreeMap<String, Vec<(String, i64, i64)>>;

fn oracle(dir: &Path) -> Oracle {
    let out = Command::new("git")
        .arg("--git-dir")
        .arg(dir)
        .args([
            "log",
            "--numstat",
            "-M",
            "--diff-merges=first-parent",
            "-z",
            "--format=%x01%H",
            "HEAD",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut map: Oracle = BTreeMap::new();
    let mut current: Option<String> = None;
    let mut tokens = text.split('\0').peekable();
    while let Some(t) = tokens.next() {
        let t = t.trim_start_matches('\n');
        if let Some(sha) = t.strip_prefix('\u{1}') {
            current = Some(sha.to_string());
            map.entry(sha.to_string()).or_default();
            continue;
        }
        if t.is_empty() {
            continue;
        }
        let mut parts = t.splitn(3, '\t');
        let (a, d, p) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        let path = if p.is_empty() {
            let _old = tokens.next().unwrap();
            tokens.next().unwrap().to_string()
        } else {
            p.to_string()
        };
        let n = |s: &str| if s == "-" { -1 } else { s.parse().unwrap() };
        map.get_mut(current.as_ref().unwrap())
            .unwrap()
            .push((path, n(a), n(d)));
    }
    map
}

/// Reads every commit of HEAD as the job does (two readers) and lists each difference from
/// the oracle. Returns (commits, files, differences).
fn compare(dir: &Path) -> (usize, usize, Vec<String>) {
    let shas = git::new_commits(dir, "HEAD", &[]).unwrap();
    let half = shas.len() / 2;
    let mut parsed = git::read_commits(dir, &shas[..half]).unwrap();
    parsed.extend(git::read_commits(dir, &shas[half..]).unwrap());
    let truth = oracle(dir);
    assert_eq!(parsed.len(), truth.len(), "commit count");
    let mut diffs = Vec::new();
    let mut files = 0;
    for c in &parsed {
        let mut ours: Vec<(String, i64, i64)> = c
            .files
            .iter()
            .map(|f| match f.lines {
                Some((a, d)) => (f.path.clone(), a, d),
                None => (f.path.clone(), -1, -1),
            })
            .collect();
        files += ours.len();
        let mut theirs = truth.get(&c.sha).cloned().unwrap_or_default();
        ours.sort();
        theirs.sort();
        if ours != theirs {
            diffs.push(format!("{}: ours {ours:?} / git {theirs:?}", c.sha));
        }
    }
    (parsed.len(), files, diffs)
}

#[test]
fn every_fd_commit_has_the_files_and_line_counts_of_git_log_numstat() {
    let Some(bundle) = fd_bundle() else { return };
    let (_tmp, dir) = bare_clone(&bundle);
    let (commits, files, diffs) = compare(&dir);
    println!(
        "fd: {commits} commits, {files} file changes, {} differences",
        diffs.len()
    );
    for d in &diffs {
        println!("  {d}");
    }
    assert!(commits > 1900, "{commits}");
    assert!(
        diffs.is_empty(),
        "{} of {commits} commits differ",
        diffs.len()
    );
    // The history has what makes this a real test.
    let shas = git::new_commits(&dir, "HEAD", &[]).unwrap();
    let parsed = git::read_commits(&dir, &shas).unwrap();
    let merges = parsed.iter().filter(|c| c.parents.len() > 1).count();
    let renames = parsed
        .iter()
        .flat_map(|c| &c.files)
        .filter(|f| f.status == 'R')
        .count();
    let binaries = parsed
        .iter()
        .flat_map(|c| &c.files)
        .filter(|f| f.lines.is_none())
        .count();
    println!("fd: {merges} merges, {renames} renames, {binaries} binary changes");
    assert!(merges > 400 && renames > 0 && binaries > 0);
    // Parents come before children: any prefix can be recorded as processed.
    let mut seen = std::collections::HashSet::new();
    for c in &parsed {
        for p in &c.parents {
            assert!(seen.contains(p), "{} comes before its parent {p}", c.sha);
        }
        seen.insert(c.sha.clone());
    }
}

#[test]
fn this_projects_own_history_matches_git_log_numstat() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    if !root.join(".git").exists() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI runs from a git clone"
        );
        eprintln!("skipped: not a git checkout");
        return;
    }
    let (_tmp, dir) = bare_clone(root);
    let (commits, files, diffs) = compare(&dir);
    println!(
        "ghstats: {commits} commits, {files} file changes, {} differences",
        diffs.len()
    );
    assert!(commits > 10);
    assert!(diffs.is_empty(), "{diffs:#?}");
}

#[test]
fn blob_sizes_are_the_objects_sizes() {
    let Some(bundle) = fd_bundle() else { return };
    let (_tmp, dir) = bare_clone(&bundle);
    let out = Command::new("git")
        .arg("--git-dir")
        .arg(&dir)
        .args(["ls-tree", "-r", "-l", "HEAD"])
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut want = std::collections::HashMap::new();
    for line in listing.lines() {
        // <mode> SP <type> SP <object> SP+ <size> TAB <path>
        let (meta, _path) = line.split_once('\t').unwrap();
        let f: Vec<&str> = meta.split_whitespace().collect();
        if f[1] == "blob" {
            want.insert(f[2].to_string(), f[3].parse::<i64>().unwrap());
        }
    }
    let shas: Vec<String> = want.keys().cloned().collect();
    let got = git::blob_sizes(&dir, &shas).unwrap();
    assert_eq!(got.len(), want.len());
    for (sha, size) in &want {
        assert_eq!(got.get(sha), Some(size), "{sha}");
    }
}

#[test]
fn a_cache_left_locked_by_a_killed_fetch_is_usable_again() {
    let Some(bundle) = fd_bundle() else { return };
    let (_src_tmp, src) = bare_clone(&bundle);
    let out = Command::new("git")
        .arg("--git-dir")
        .arg(&src)
        .args(["update-ref", "refs/heads/main", "HEAD"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("1.git");
    assert!(git::init_cache(&cache).unwrap());
    let url = format!("file://{}", src.display());
    git::fetch(&cache, &url, "main", git::Depth::Full, None).unwrap();
    // What a kill -9 during a fetch leaves behind.
    std::fs::write(cache.join("shallow.lock"), "").unwrap();
    std::fs::write(cache.join("packed-refs.lock"), "").unwrap();
    std::fs::create_dir_all(cache.join("refs/heads")).unwrap();
    std::fs::write(cache.join("refs/heads/main.lock"), "").unwrap();
    std::fs::write(cache.join("objects/pack/tmp_pack_ABC"), "partial").unwrap();
    // Without the clean-up git refuses to move the ref.
    let refused = Command::new("git")
        .arg("--git-dir")
        .arg(&cache)
        .args(["update-ref", "refs/heads/main", "HEAD~1"])
        .output()
        .unwrap();
    assert!(!refused.status.success(), "git takes a locked ref");
    assert!(
        !git::init_cache(&cache).unwrap(),
        "the cache is reused, not made again"
    );
    assert!(!cache.join("refs/heads/main.lock").exists());
    assert!(!cache.join("objects/pack/tmp_pack_ABC").exists());
    let head = git::fetch(&cache, &url, "main", git::Depth::Incremental, None).unwrap();
    assert_eq!(git::rev_parse(&src, "HEAD").unwrap(), Some(head));
    // A half-made cache (no objects folder) is made again.
    std::fs::remove_dir_all(cache.join("objects")).unwrap();
    assert!(git::init_cache(&cache).unwrap());
}
