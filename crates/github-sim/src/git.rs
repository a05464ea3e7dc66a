//! Git repositories served as the organization's repositories: real histories given on the
//! command line (a bundle or a repository, cloned into the simulator's own directory as a
//! bare repository) and synthetic ones generated from a seed with `git fast-import`. The
//! simulator serves them over git's smart HTTP protocol (see [`crate::git_http`]) and answers
//! GraphQL about them (`defaultBranchRef`, `object(oid:) { ... on Commit { history } }`) from
//! the same objects. Pushes and force-pushes between runs come through `/_sim/change`.
//!
//! Everything here runs the `git` CLI (2.28 or newer) with the user's and the system's git
//! configuration ignored.

use anyhow::{bail, Context};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::sync::{Arc, Mutex};

/// One git repository of the organization: its name and where its history comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitRepoSpec {
    /// The repository's name in the organization (`{org}/{name}`, cloned at
    /// `{sim_url}/{org}/{name}.git`).
    pub name: String,
    pub source: GitSource,
}

/// Where a served repository's history comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GitSource {
    /// A git bundle or a repository (bare or not) on disk; it is cloned, never changed.
    Path(PathBuf),
    /// A synthetic history of this many commits (at least 1), generated from the
    /// organization's seed and the repository's name (see [`write_synthetic`]).
    Synthetic { commits: usize },
}

impl GitRepoSpec {
    /// `NAME=PATH`, as `github-sim --git-repo` takes it.
    pub fn parse_path(arg: &str) -> Result<GitRepoSpec, String> {
        let (name, path) = split_arg(arg, "--git-repo NAME=PATH")?;
        Ok(GitRepoSpec {
            name,
            source: GitSource::Path(PathBuf::from(path)),
        })
    }

    /// `NAME=COMMITS`, as `github-sim --git-synthetic` takes it.
    pub fn parse_synthetic(arg: &str) -> Result<GitRepoSpec, String> {
        let (name, n) = split_arg(arg, "--git-synthetic NAME=COMMITS")?;
        let commits = n
            .parse::<usize>()
            .ok()
            .filter(|c| *c >= 1)
            .ok_or_else(|| format!("`{n}` is no number of commits (1 or more) in `{arg}`"))?;
        Ok(GitRepoSpec {
            name,
            source: GitSource::Synthetic { commits },
        })
    }
}

fn split_arg(arg: &str, shape: &str) -> Result<(String, String), String> {
    let (name, rest) = arg
        .split_once('=')
        .ok_or_else(|| format!("expected {shape}, got `{arg}`"))?;
    if !valid_repo_name(name) || rest.is_empty() {
        return Err(format!(
            "expected {shape} with a repository name of letters, digits, `-`, `_` and `.`, got `{arg}`"
        ));
    }
    Ok((name.to_string(), rest.to_string()))
}

/// Whether GitHub would take `name` as a repository name.
pub fn valid_repo_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && name != "."
        && name != ".."
        && !name.ends_with(".git")
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

// ---------- identities ----------

/// FNV-1a, 64 bits: a hash that stays the same across builds and platforms.
pub fn stable_hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The GitHub account the simulator links a commit author's email to, as `(databaseId,
/// login)`, or `None` when the email belongs to no account. The email is compared
/// case-insensitively. `ID+login@users.noreply.github.com` links to that id and login, and
/// `login@users.noreply.github.com` to that login (its id derived from the login), as on
/// GitHub; any other email is linked for about two thirds of emails, decided by a stable hash,
/// with the id and login derived from the same hash.
pub fn linked_user(email: &str) -> Option<(i64, String)> {
    let email = email.trim().to_ascii_lowercase();
    let (local, domain) = email.rsplit_once('@')?;
    if local.is_empty() {
        return None;
    }
    if domain == "users.noreply.github.com" {
        if let Some((id, login)) = local.split_once('+') {
            if let Ok(id) = id.parse::<i64>() {
                if !login.is_empty() {
                    return Some((id, login.to_string()));
                }
            }
        }
        let id = 10_000_000 + (stable_hash(local.as_bytes()) % 80_000_000) as i64;
        return Some((id, local.to_string()));
    }
    let h = stable_hash(email.as_bytes());
    if h % 3 == 0 {
        return None;
    }
    let id = 100_000_000 + ((h >> 8) % 800_000_000) as i64;
    let mut login: String = local
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .trim_matches('-')
        .chars()
        .take(24)
        .collect();
    if login.is_empty() {
        login.push_str("user");
    }
    Some((id, format!("{login}-{:04x}", h & 0xffff)))
}

/// The stable database id of the organization's git repository `name` (case-insensitive).
pub fn repo_database_id(name: &str) -> u64 {
    5_000_000_000 + stable_hash(name.to_ascii_lowercase().as_bytes()) % 1_000_000_000
}

/// The fixed, fake head the generated pull-request repositories (which have no git content)
/// report as their default branch's target.
pub fn fake_head(repo_id: u64) -> String {
    let a = stable_hash(format!("head-a:{repo_id}").as_bytes());
    let b = stable_hash(format!("head-b:{repo_id}").as_bytes());
    let c = stable_hash(format!("head-c:{repo_id}").as_bytes());
    format!("{a:016x}{b:016x}{:08x}", c as u32)
}

// ---------- running git ----------

/// `git` with the user's and the system's configuration ignored, in `dir` when given.
pub(crate) fn git(dir: Option<&Path>) -> Command {
    let mut c = Command::new("git");
    if let Some(d) = dir {
        c.arg("-C").arg(d);
    }
    c.env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("LC_ALL", "C")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE");
    c
}

/// Runs `c` to its end: its stdout, or an error with its stderr.
fn run(mut c: Command, what: &str) -> anyhow::Result<Vec<u8>> {
    let out = c
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("{what}: running git (is it installed?)"))?;
    if !out.status.success() {
        bail!(
            "{what}: git failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out.stdout)
}

fn run_text(c: Command, what: &str) -> anyhow::Result<String> {
    Ok(String::from_utf8_lossy(&run(c, what)?).trim().to_string())
}

/// Sets what the simulator's served repositories need: fetching any reachable commit by sha
/// (as GitHub allows), partial clones, and no pushes over HTTP.
fn configure_served(dir: &Path) -> anyhow::Result<()> {
    for (k, v) in [
        ("uploadpack.allowReachableSHA1InWant", "true"),
        ("uploadpack.allowFilter", "true"),
        ("http.receivepack", "false"),
        ("gc.auto", "0"),
    ] {
        let mut c = git(Some(dir));
        c.args(["config", k, v]);
        run(c, "configuring a served repository")?;
    }
    Ok(())
}

/// Clones the bundle or repository at `source` into `dest` as a bare repository whose HEAD is
/// a branch (a bundle with a detached HEAD gets a `main` branch at it).
pub fn import(source: &Path, dest: &Path) -> anyhow::Result<()> {
    if !source.exists() {
        bail!("{} does not exist", source.display());
    }
    let mut c = git(None);
    c.args(["clone", "--bare", "--quiet"]).arg(source).arg(dest);
    run(c, &format!("cloning {}", source.display()))?;
    let mut c = git(Some(dest));
    c.args(["remote", "remove", "origin"]);
    let _ = run(c, "forgetting the clone's origin");
    let mut c = git(Some(dest));
    c.args(["rev-parse", "--verify", "-q", "HEAD^{commit}"]);
    let head = run_text(c, "reading HEAD")
        .ok()
        .filter(|h| !h.is_empty())
        .with_context(|| format!("{} has no commit at HEAD", source.display()))?;
    let mut c = git(Some(dest));
    c.args(["symbolic-ref", "-q", "HEAD"]);
    if run(c, "reading HEAD's branch").is_err() {
        let mut c = git(Some(dest));
        c.args(["update-ref", "refs/heads/main", &head]);
        run(c, "creating main")?;
        let mut c = git(Some(dest));
        c.args(["symbolic-ref", "HEAD", "refs/heads/main"]);
        run(c, "pointing HEAD at main")?;
    }
    configure_served(dest)
}

/// A served repository's state as GraphQL reports it.
#[derive(Clone, Debug)]
pub struct RepoFacts {
    pub default_branch: String,
    pub head: String,
    /// Committer date of the oldest root commit, seconds since the epoch.
    pub created_at: i64,
    /// Committer date of the head, seconds since the epoch.
    pub head_committed_at: i64,
}

/// Reads the default branch, head and dates of the bare repository at `dir`.
pub fn facts(dir: &Path) -> anyhow::Result<RepoFacts> {
    let mut c = git(Some(dir));
    c.args(["symbolic-ref", "--short", "HEAD"]);
    let default_branch = run_text(c, "reading the default branch")?;
    let mut c = git(Some(dir));
    c.args(["log", "-1", "--format=%H %ct", "HEAD"]);
    let line = run_text(c, "reading the head")?;
    let (head, t) = line
        .split_once(' ')
        .context("reading the head: unexpected git output")?;
    let mut c = git(Some(dir));
    c.args([
        "rev-list",
        "--max-parents=0",
        "--format=%ct",
        "--no-commit-header",
        "HEAD",
    ]);
    let roots = run_text(c, "reading the root commits")?;
    let head_committed_at: i64 = t.parse().context("reading the head's date")?;
    let created_at = roots
        .lines()
        .filter_map(|l| l.trim().parse::<i64>().ok())
        .min()
        .unwrap_or(head_committed_at);
    Ok(RepoFacts {
        default_branch,
        head: head.to_string(),
        created_at,
        head_committed_at,
    })
}

// ---------- history ----------

/// One commit of a history, as GraphQL's `Commit` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryCommit {
    pub oid: String,
    pub author_name: String,
    pub author_email: String,
    /// Seconds since the epoch.
    pub authored_at: i64,
    pub committer_name: String,
    pub committer_email: String,
    /// Seconds since the epoch.
    pub committed_at: i64,
    /// The message's first line.
    pub headline: String,
}

/// The commits reachable from `oid` in `git rev-list` default order (newest committer date
/// first), or `None` when `oid` is no commit of the repository at `dir`.
pub fn history(dir: &Path, oid: &str) -> anyhow::Result<Option<Vec<HistoryCommit>>> {
    if oid.len() != 40 || !oid.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let mut c = git(Some(dir));
    c.args(["cat-file", "-t", oid]);
    match run_text(c, "reading an object's type") {
        Ok(t) if t == "commit" => {}
        _ => return Ok(None),
    }
    let mut c = git(Some(dir));
    c.args([
        "log",
        "-z",
        "--format=%H%x1f%an%x1f%ae%x1f%at%x1f%cn%x1f%ce%x1f%ct%x1f%s",
        oid,
    ]);
    let out = run(c, "reading a history")?;
    let mut commits = Vec::new();
    for record in out.split(|b| *b == 0).filter(|r| !r.is_empty()) {
        let text = String::from_utf8_lossy(record);
        let f: Vec<&str> = text.split('\x1f').collect();
        if f.len() < 8 {
            bail!("reading a history: unexpected git output");
        }
        commits.push(HistoryCommit {
            oid: f[0].to_string(),
            author_name: f[1].to_string(),
            author_email: f[2].to_string(),
            authored_at: f[3].parse().unwrap_or(0),
            committer_name: f[4].to_string(),
            committer_email: f[5].to_string(),
            committed_at: f[6].parse().unwrap_or(0),
            headline: f[7..].join("\x1f"),
        });
    }
    Ok(Some(commits))
}

/// The simulator's git repositories: a directory it owns (removed when the store is
/// dropped) holding one bare repository per served repository, `r{database id}.git`, and a
/// cache of histories by head.
pub struct GitStore {
    dir: tempfile::TempDir,
    histories: Mutex<HashMap<(u64, String), Arc<Vec<HistoryCommit>>>>,
    /// Held while a push rewrites a repository.
    pub(crate) writing: Mutex<()>,
}

impl std::fmt::Debug for GitStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitStore")
            .field("dir", &self.dir.path())
            .finish()
    }
}

impl GitStore {
    pub fn new() -> anyhow::Result<GitStore> {
        Ok(GitStore {
            dir: tempfile::Builder::new()
                .prefix("github-sim-git-")
                .tempdir()
                .context("creating the simulator's git directory")?,
            histories: Mutex::new(HashMap::new()),
            writing: Mutex::new(()),
        })
    }

    /// The directory `git http-backend` serves (`GIT_PROJECT_ROOT`).
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// The directory's name of repository `id` under [`GitStore::root`].
    pub fn dir_name(id: u64) -> String {
        format!("r{id}.git")
    }

    /// The bare repository of repository `id`.
    pub fn repo_dir(&self, id: u64) -> PathBuf {
        self.root().join(Self::dir_name(id))
    }

    /// Creates repository `id` from `spec` (a synthetic one seeded by `seed` and its name).
    pub fn create(&self, id: u64, spec: &GitRepoSpec, seed: u64) -> anyhow::Result<RepoFacts> {
        let dest = self.repo_dir(id);
        match &spec.source {
            GitSource::Path(p) => import(p, &dest)
                .with_context(|| format!("serving {} as {}", p.display(), spec.name))?,
            GitSource::Synthetic { commits } => {
                let seed = seed ^ stable_hash(spec.name.to_ascii_lowercase().as_bytes());
                write_synthetic(*commits, seed, &dest)
                    .with_context(|| format!("generating the repository {}", spec.name))?;
                configure_served(&dest)?;
            }
        }
        facts(&dest)
    }

    /// The history from `oid` of repository `id` (cached; a history never changes), or `None`
    /// when `oid` is no commit there.
    pub fn history(&self, id: u64, oid: &str) -> anyhow::Result<Option<Arc<Vec<HistoryCommit>>>> {
        let key = (id, oid.to_ascii_lowercase());
        if let Some(h) = lock(&self.histories).get(&key) {
            return Ok(Some(Arc::clone(h)));
        }
        let dir = self.repo_dir(id);
        if !dir.exists() {
            return Ok(None);
        }
        let Some(list) = history(&dir, &key.1)? else {
            return Ok(None);
        };
        let list = Arc::new(list);
        let mut cache = lock(&self.histories);
        if cache.len() >= 32 {
            cache.clear();
        }
        cache.insert(key, Arc::clone(&list));
        Ok(Some(list))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------- synthetic histories ----------

/// What [`write_synthetic`] made.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyntheticReport {
    /// The default branch (`main`) and its head.
    pub branch: String,
    pub head: String,
    pub commits: usize,
    pub merges: usize,
    /// Merges whose first parent is the topic branch (the mainline is the second parent).
    pub reversed_merges: usize,
}

const REG: u32 = 0o100644;
/// The empty blob's sha.
const EMPTY_BLOB: &str = "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391";
const EXE: u32 = 0o100755;
const LINK: u32 = 0o120000;

#[derive(Clone, Debug)]
enum Blob {
    Bytes(Rc<Vec<u8>>),
    /// An object already in the repository.
    Sha(Rc<str>),
}

#[derive(Clone, Debug)]
struct Entry {
    mode: u32,
    blob: Blob,
}

impl Entry {
    fn same(&self, other: &Entry) -> bool {
        self.mode == other.mode
            && match (&self.blob, &other.blob) {
                (Blob::Bytes(a), Blob::Bytes(b)) => Rc::ptr_eq(a, b) || a == b,
                (Blob::Sha(a), Blob::Sha(b)) => a == b,
                _ => false,
            }
    }
}

/// A path in a tree: shared, so that copying a tree is cheap.
type Key = Rc<[u8]>;
type Tree = BTreeMap<Key, Entry>;

/// A random path of `tree` that is no symlink (`None` when there is none).
fn pick_file(rng: &mut ChaCha8Rng, tree: &Tree) -> Option<Key> {
    if tree.is_empty() {
        return None;
    }
    for _ in 0..4 {
        let i = rng.gen_range(0..tree.len());
        if let Some((p, e)) = tree.iter().nth(i) {
            if e.mode != LINK {
                return Some(Rc::clone(p));
            }
        }
    }
    tree.iter()
        .find(|(_, e)| e.mode != LINK)
        .map(|(p, _)| Rc::clone(p))
}

/// A commit's parents in the fast-import stream: a mark or an existing sha.
#[derive(Clone, Debug)]
enum Rev {
    Mark(u64),
    Sha(String),
}

impl Rev {
    fn text(&self) -> String {
        match self {
            Rev::Mark(m) => format!(":{m}"),
            Rev::Sha(s) => s.clone(),
        }
    }
}

const AUTHORS: &[(&str, &str)] = &[
    ("Ada Lovelace", "ada@example.com"),
    ("Linus Example", "linus@kernel.example.org"),
    ("The Octocat", "583231+octocat@users.noreply.github.com"),
    ("Grace Hopper", "1234567+grace-h@users.noreply.github.com"),
    ("José Müller", "jose.mueller@example.de"),
    ("李雷", "lilei@example.cn"),
    (
        "dependabot[bot]",
        "49699333+dependabot[bot]@users.noreply.github.com",
    ),
    ("Ken Thompson", "Ken.Thompson@Example.COM"),
    ("Ken Thompson", "ken@bell-labs.example"),
    ("Margaret H.", "margaret@apollo.example"),
    ("anonymous", "anon@localhost"),
    ("Édith Piaf-Dev", "edith+git@example.fr"),
];

const COMMITTERS: &[(&str, &str)] = &[
    ("GitHub", "noreply@github.com"),
    ("Release Bot", "release-bot@example.com"),
    ("Ada Lovelace", "ada@example.com"),
];

const WORDS: &[&str] = &[
    "fn",
    "let",
    "mut",
    "return",
    "match",
    "struct",
    "impl",
    "self",
    "value",
    "error",
    "parse",
    "walk",
    "path",
    "file",
    "index",
    "tree",
    "commit",
    "branch",
    "merge",
    "diff",
    "line",
    "count",
    "größe",
    "naïve",
    "café",
    "データ",
    "✓",
    "=>",
    "{",
    "}",
    "(x)",
    "// note",
];

const TZS: &[&str] = &[
    "+0000", "+0100", "+0200", "-0500", "-0800", "+0530", "+0900", "-0330", "+1245",
];

const SUBJECTS: &[&str] = &[
    "Fix the walker on empty trees",
    "Add support for globs",
    "Refactor the index",
    "Update dependencies",
    "Speed up diffing",
    "Docs: explain the cache",
    "Handle ünïcödé paths ✨",
    "修复路径问题",
    "Bump version",
    "Remove dead code",
    "Tests for the parser",
    "WIP",
];

/// Writes a fast-import stream for a synthetic or pushed history.
struct Gen<W: Write> {
    rng: ChaCha8Rng,
    out: W,
    next_mark: u64,
    names: u64,
    /// Seconds between commits, on average.
    step: i64,
    branch: String,
}

/// A branch being built: its tree, tip and time.
#[derive(Clone)]
struct Line {
    tree: Tree,
    tip: Option<Rev>,
    time: i64,
}

impl<W: Write> Gen<W> {
    fn quoted(path: &[u8]) -> Vec<u8> {
        let mut q = vec![b'"'];
        for &b in path {
            match b {
                b'"' => q.extend_from_slice(b"\\\""),
                b'\\' => q.extend_from_slice(b"\\\\"),
                b'\n' => q.extend_from_slice(b"\\n"),
                b'\t' => q.extend_from_slice(b"\\t"),
                0..=31 | 127 => q.extend_from_slice(format!("\\{b:03o}").as_bytes()),
                _ => q.push(b),
            }
        }
        q.push(b'"');
        q
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.rng.gen_range(0..items.len())]
    }

    fn line(&mut self) -> String {
        let n = self.rng.gen_range(1..7);
        let mut s = String::new();
        if self.rng.gen_bool(0.3) {
            s.push_str("    ");
        }
        for i in 0..n {
            if i > 0 {
                s.push(' ');
            }
            s.push_str(*self.pick(WORDS));
        }
        s.push('\n');
        s
    }

    fn text(&mut self, lines: usize) -> Vec<u8> {
        let mut v = Vec::new();
        for _ in 0..lines {
            v.extend_from_slice(self.line().as_bytes());
        }
        v
    }

    fn binary(&mut self) -> Vec<u8> {
        let n = self.rng.gen_range(32..1500);
        let mut v: Vec<u8> = (0..n).map(|_| self.rng.gen()).collect();
        v[0] = 0x89;
        v[1] = 0;
        v
    }

    /// A text edit: replace, insert or delete lines, now and then flipping the final newline.
    fn edit_text(&mut self, old: &[u8]) -> Vec<u8> {
        let mut lines: Vec<Vec<u8>> = old
            .split_inclusive(|b| *b == b'\n')
            .map(<[u8]>::to_vec)
            .collect();
        let ops = self.rng.gen_range(1..4);
        for _ in 0..ops {
            let n = lines.len();
            match self.rng.gen_range(0..4) {
                0 if n > 0 => {
                    let i = self.rng.gen_range(0..n);
                    let ends = lines[i].ends_with(b"\n");
                    let mut l = self.line().into_bytes();
                    if !ends {
                        l.pop();
                    }
                    lines[i] = l;
                }
                1 if n > 3 && n > 40 || (n > 3 && self.rng.gen_bool(0.3)) => {
                    let i = self.rng.gen_range(0..n - 1);
                    lines.remove(i);
                }
                _ => {
                    let i = self.rng.gen_range(0..n.saturating_sub(1).max(1));
                    let i = i.min(lines.len());
                    for _ in 0..self.rng.gen_range(1..4) {
                        let l = self.line().into_bytes();
                        lines.insert(i, l);
                    }
                }
            }
        }
        let mut v: Vec<u8> = lines.concat();
        if self.rng.gen_bool(0.04) {
            if v.ends_with(b"\n") {
                v.pop();
            } else {
                v.push(b'\n');
            }
        }
        v
    }

    fn edit_binary(&mut self, old: &[u8]) -> Vec<u8> {
        let mut v = old.to_vec();
        if v.is_empty() {
            return self.binary();
        }
        for _ in 0..self.rng.gen_range(1..8) {
            let i = self.rng.gen_range(0..v.len());
            v[i] = self.rng.gen();
        }
        if !v.contains(&0) {
            v.push(0);
        }
        v
    }

    fn new_path(&mut self, binary: bool) -> Key {
        self.names += 1;
        let dir = *self.pick(&[
            "src", "src/util", "docs", "tests", "lib/core", "", "examples",
        ]);
        let base = *self.pick(&[
            "walker", "index", "parse", "tree", "cache", "main", "util", "ä-mod",
        ]);
        let ext = if binary {
            *self.pick(&[".bin", ".png", ".dat"])
        } else {
            *self.pick(&[".rs", ".py", ".md", ".txt", ".json", ".c", ""])
        };
        let name = format!("{base}_{}{ext}", self.names);
        if dir.is_empty() {
            Rc::from(name.as_bytes())
        } else {
            Rc::from(format!("{dir}/{name}").as_bytes())
        }
    }

    fn author(&mut self) -> (&'static str, &'static str) {
        *self.pick(AUTHORS)
    }

    fn message(&mut self, subject: &str) -> Vec<u8> {
        let mut m = subject.to_string();
        match self.rng.gen_range(0..10) {
            0..=4 => m.push('\n'),
            5 => {}
            6 => m.push_str("\n\nCo-authored-by: Ada Lovelace <ada@example.com>\n"),
            _ => {
                m.push_str("\n\n");
                for _ in 0..self.rng.gen_range(1..4) {
                    m.push_str(self.line().trim_start());
                }
            }
        }
        m.into_bytes()
    }

    /// Reads a blob's bytes, from memory or from the repository through `load`.
    fn bytes(
        entry: &Entry,
        load: &mut dyn FnMut(&str) -> anyhow::Result<Vec<u8>>,
    ) -> anyhow::Result<Rc<Vec<u8>>> {
        match &entry.blob {
            Blob::Bytes(b) => Ok(Rc::clone(b)),
            Blob::Sha(s) => Ok(Rc::new(load(s)?)),
        }
    }

    /// Writes one commit whose tree is `to`, on top of `from` (the first parent, whose tree
    /// is `base`) and `merge`; returns its mark.
    #[allow(clippy::too_many_arguments)]
    fn commit(
        &mut self,
        from: Option<&Rev>,
        merge: Option<&Rev>,
        base: &Tree,
        to: &Tree,
        author: (&str, &str, i64),
        committer: (&str, &str, i64),
        message: &[u8],
    ) -> anyhow::Result<u64> {
        let mark = self.next_mark;
        self.next_mark += 1;
        let tz = *self.pick(TZS);
        let tz2 = if self.rng.gen_bool(0.7) {
            tz
        } else {
            *self.pick(TZS)
        };
        let o = &mut self.out;
        writeln!(o, "commit refs/heads/{}", self.branch)?;
        writeln!(o, "mark :{mark}")?;
        writeln!(o, "author {} <{}> {} {tz}", author.0, author.1, author.2)?;
        writeln!(
            o,
            "committer {} <{}> {} {tz2}",
            committer.0, committer.1, committer.2
        )?;
        writeln!(o, "data {}", message.len())?;
        o.write_all(message)?;
        writeln!(o)?;
        if let Some(f) = from {
            writeln!(o, "from {}", f.text())?;
        }
        if let Some(m) = merge {
            writeln!(o, "merge {}", m.text())?;
        }
        for path in base.keys() {
            if !to.contains_key(path) {
                o.write_all(b"D ")?;
                o.write_all(&Self::quoted(path))?;
                o.write_all(b"\n")?;
            }
        }
        for (path, e) in to {
            if base.get(path).is_some_and(|b| b.same(e)) {
                continue;
            }
            match &e.blob {
                Blob::Sha(s) => {
                    write!(o, "M {:o} {s} ", e.mode)?;
                    o.write_all(&Self::quoted(path))?;
                    o.write_all(b"\n")?;
                }
                Blob::Bytes(b) => {
                    write!(o, "M {:o} inline ", e.mode)?;
                    o.write_all(&Self::quoted(path))?;
                    writeln!(o, "\ndata {}", b.len())?;
                    o.write_all(b)?;
                    o.write_all(b"\n")?;
                }
            }
        }
        writeln!(o)?;
        Ok(mark)
    }

    fn next_time(&mut self, t: i64) -> i64 {
        let s = self.step.max(1);
        t + self.rng.gen_range((s / 5).max(1)..=(s * 9 / 5).max(2))
    }

    /// Random changes to `tree` for one ordinary commit, with `load` for blobs not in memory.
    fn change(
        &mut self,
        tree: &mut Tree,
        load: &mut dyn FnMut(&str) -> anyhow::Result<Vec<u8>>,
    ) -> anyhow::Result<String> {
        if self.rng.gen_bool(0.005) {
            return Ok("Empty commit to trigger CI".into());
        }
        let ops = 1 + usize::from(self.rng.gen_bool(0.4)) + usize::from(self.rng.gen_bool(0.15));
        let mut subject = self.pick(SUBJECTS).to_string();
        for _ in 0..ops {
            let roll = self.rng.gen_range(0..100);
            let crowded = tree.len() > 300;
            let pick = |g: &mut Self| pick_file(&mut g.rng, tree);
            if roll < 45 {
                if let Some(p) = pick(self) {
                    let e = tree[&p].clone();
                    let old = Self::bytes(&e, load)?;
                    let new = if old.contains(&0) {
                        self.edit_binary(&old)
                    } else {
                        self.edit_text(&old)
                    };
                    tree.insert(
                        p,
                        Entry {
                            mode: e.mode,
                            blob: Blob::Bytes(Rc::new(new)),
                        },
                    );
                    continue;
                }
            }
            if roll < 53 || crowded {
                if let Some(p) = pick(self) {
                    tree.remove(&p);
                    subject = "Remove an unused file".into();
                    continue;
                }
            }
            if roll < 58 {
                if let Some(p) = pick(self) {
                    let e = tree.remove(&p).unwrap_or(Entry {
                        mode: REG,
                        blob: Blob::Bytes(Rc::new(Vec::new())),
                    });
                    let bin = matches!(&e.blob, Blob::Bytes(b) if b.contains(&0));
                    let to = self.new_path(bin);
                    tree.insert(to, e);
                    subject = "Rename a module".into();
                    continue;
                }
            }
            if roll < 63 {
                if let Some(p) = pick(self) {
                    let e = tree[&p].clone();
                    let old = Self::bytes(&e, load)?;
                    if !old.contains(&0) && old.len() > 120 {
                        tree.remove(&p);
                        let new = self.edit_text(&old);
                        let to = self.new_path(false);
                        tree.insert(
                            to,
                            Entry {
                                mode: e.mode,
                                blob: Blob::Bytes(Rc::new(new)),
                            },
                        );
                        subject = "Move and tidy a module".into();
                        continue;
                    }
                }
            }
            if roll < 66 {
                if let Some(p) = pick(self) {
                    let e = tree[&p].clone();
                    let bin = matches!(&e.blob, Blob::Bytes(b) if b.contains(&0));
                    let to = self.new_path(bin);
                    tree.insert(to, e);
                    subject = "Copy a template".into();
                    continue;
                }
            }
            if roll < 68 {
                if let Some(p) = pick(self) {
                    if let Some(e) = tree.get_mut(&p) {
                        e.mode = if e.mode == EXE { REG } else { EXE };
                        subject = "Make a script executable".into();
                        continue;
                    }
                }
            }
            if roll < 71 {
                let p = self.new_path(true);
                let b = self.binary();
                tree.insert(
                    p,
                    Entry {
                        mode: REG,
                        blob: Blob::Bytes(Rc::new(b)),
                    },
                );
                continue;
            }
            let n = self.rng.gen_range(0..30);
            let mut content = self.text(n);
            if self.rng.gen_bool(0.08) {
                content.pop();
            }
            let p = self.new_path(false);
            tree.insert(
                p,
                Entry {
                    mode: REG,
                    blob: Blob::Bytes(Rc::new(content)),
                },
            );
        }
        Ok(subject)
    }
}

fn b(v: &[u8]) -> Blob {
    Blob::Bytes(Rc::new(v.to_vec()))
}

/// The first commit of every synthetic history: the odd files a diff has to get right.
fn initial_tree() -> Tree {
    let mut t = Tree::new();
    let mut add = |p: &str, mode: u32, data: &[u8]| {
        t.insert(
            Rc::from(p.as_bytes()),
            Entry {
                mode,
                blob: b(data),
            },
        );
    };
    add(
        "README.md",
        REG,
        b"# Synthetic\n\nA seeded history for tests.\n",
    );
    add(
        "docs/with space.md",
        REG,
        b"spaces in the name\nsecond line\n",
    );
    add("docs/ünïcödé-名前.txt", REG, "ünïcödé\n名前\n".as_bytes());
    add("docs/quote\"d 'name'.txt", REG, b"quotes\n");
    add(
        "-leading-dash.txt",
        REG,
        b"a name that looks like an option\n",
    );
    add("notes/tab\there.txt", REG, b"a tab in the name\n");
    add("empty.txt", REG, b"");
    add("no-newline.txt", REG, b"no newline at the end");
    add(
        "assets/logo.bin",
        REG,
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR\x00\x01\x02\x03",
    );
    add("link-to-readme", LINK, b"README.md");
    add("scripts/run.sh", EXE, b"#!/bin/sh\necho run\n");
    add("tools/build.py", REG, b"print('build')\n");
    add("tmp/delete-me.txt", REG, b"short-lived\n");
    let lib: String = (0..16)
        .map(|i| format!("pub fn item_{i}() -> u32 {{ {i} }}\n"))
        .collect();
    add("src/lib.rs", REG, lib.as_bytes());
    t
}

/// The scripted changes of the first ordinary commits, so that even a short history has
/// each kind of change; `None` past the script.
fn scripted(k: usize, tree: &mut Tree) -> Option<&'static str> {
    let take = |t: &mut Tree, p: &str| t.remove(p.as_bytes());
    match k {
        1 => {
            let e = take(tree, "docs/with space.md")?;
            tree.insert(Rc::from(&b"docs/renamed with space.md"[..]), e);
            Some("Rename a doc (exact rename)")
        }
        2 => {
            let e = take(tree, "src/lib.rs")?;
            let Blob::Bytes(old) = &e.blob else {
                return None;
            };
            let mut new = old.to_vec();
            new.extend_from_slice(b"pub fn added() -> u32 { 99 }\n");
            tree.insert(
                Rc::from(&b"src/core.rs"[..]),
                Entry {
                    mode: REG,
                    blob: Blob::Bytes(Rc::new(new)),
                },
            );
            Some("Move lib.rs to core.rs and add a function (rename with edits)")
        }
        3 => {
            let e = tree.get("src/core.rs".as_bytes())?.clone();
            tree.insert(Rc::from(&b"src/core_copy.rs"[..]), e);
            Some("Copy core.rs")
        }
        4 => {
            take(tree, "tmp/delete-me.txt")?;
            Some("Delete a temporary file")
        }
        5 => {
            tree.get_mut("tools/build.py".as_bytes())?.mode = EXE;
            Some("Make build.py executable (mode change only)")
        }
        6 => Some("An empty commit"),
        7 => {
            let e = tree.get_mut("assets/logo.bin".as_bytes())?;
            e.blob = b(b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR\x00\x07\x08\x09\x00more");
            Some("Update the logo (binary edit)")
        }
        8 => {
            tree.insert(
                Rc::from("docs/ünïcödé-名前.txt".as_bytes()),
                Entry {
                    mode: REG,
                    blob: b("ünïcödé\n名前\nneue Zeile ✓\n".as_bytes()),
                },
            );
            tree.insert(
                Rc::from(&b"empty-too.txt"[..]),
                Entry {
                    mode: REG,
                    blob: b(b""),
                },
            );
            Some("Édit ünïcödé and add another empty file")
        }
        _ => None,
    }
}

/// Writes a synthetic history of `commits` commits (at least 1) on `main` into a new bare
/// repository at `out` (which must not exist or be empty), with `git fast-import`; the same
/// seed gives the same head. The history spans about four years from a seeded start in
/// 2016-2019 and holds merges (about one commit in six, a quarter of them with the topic
/// branch as first parent, some dated before their parents), renames exact and with edits,
/// copies, deletions, binary files with NUL bytes, files without a final newline, empty
/// files, odd names (spaces, unicode, quotes, a leading dash, a tab), a symlink, a mode-only
/// change, an empty commit, unicode messages and messages without a body, a dozen authors
/// (some with GitHub noreply emails) and committers other than the author.
pub fn write_synthetic(commits: usize, seed: u64, out: &Path) -> anyhow::Result<SyntheticReport> {
    if commits == 0 {
        bail!("a synthetic repository needs at least one commit");
    }
    if out.exists()
        && std::fs::read_dir(out)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        bail!("{} exists and is not empty", out.display());
    }
    let mut c = git(None);
    c.args(["init", "--bare", "--quiet", "-b", "main"]).arg(out);
    run(c, "creating the repository")?;
    let mut child = git(Some(out))
        .args(["fast-import", "--quiet", "--done"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("running git fast-import")?;
    let stdin = child.stdin.take().context("git fast-import's stdin")?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let start: i64 = 1_451_606_400 + rng.gen_range(0..3 * 365) * 86_400;
    let span: i64 = 4 * 365 * 86_400;
    let step = (span / commits as i64).clamp(30, 3 * 86_400);
    let mut g = Gen {
        rng,
        out: std::io::BufWriter::with_capacity(1 << 20, stdin),
        next_mark: 1,
        names: 0,
        step,
        branch: "main".into(),
    };
    let written = build(&mut g, commits, start);
    let finish = written.and_then(|r| {
        writeln!(g.out, "done")?;
        g.out.flush()?;
        Ok(r)
    });
    drop(g);
    let status = child.wait().context("waiting for git fast-import")?;
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut err);
    }
    if !status.success() {
        bail!("git fast-import failed: {}", err.trim());
    }
    let (merges, reversed) = finish?;
    let mut c = git(Some(out));
    c.args(["rev-parse", "refs/heads/main"]);
    let head = run_text(c, "reading the new head")?;
    Ok(SyntheticReport {
        branch: "main".into(),
        head,
        commits,
        merges,
        reversed_merges: reversed,
    })
}

fn no_load(_: &str) -> anyhow::Result<Vec<u8>> {
    bail!("no blob outside memory in a synthetic history")
}

/// The commits of a synthetic history: `(merges, reversed merges)`.
fn build<W: Write>(g: &mut Gen<W>, commits: usize, start: i64) -> anyhow::Result<(usize, usize)> {
    let empty = Tree::new();
    let mut main = Line {
        tree: initial_tree(),
        tip: None,
        time: start,
    };
    let (name, email) = AUTHORS[0];
    let m = g.commit(
        None,
        None,
        &empty,
        &main.tree,
        (name, email, start),
        (name, email, start),
        "Initial commit\n".as_bytes(),
    )?;
    main.tip = Some(Rev::Mark(m));
    let mut written = 1;
    // The topic branch: its line, commits left, number and the tree it forked from.
    let mut topic: Option<(Line, usize, usize, Tree)> = None;
    let mut ordinary = 0usize;
    let (mut merges, mut reversed) = (0usize, 0usize);
    let mut topics = 0usize;
    let mut load = no_load;
    while written < commits {
        let last = written + 1 == commits;
        // Merge a topic whose commits are done (or at the very end).
        if let Some((side, left, number, fork)) = topic.take() {
            if left == 0 || last {
                merges += 1;
                let time = g.next_time(main.time.max(side.time));
                // Some merges are dated before their parents (a clock skew, a rebase).
                let time = if merges % 7 == 3 {
                    time - g.step * 3 - 3600
                } else {
                    time
                };
                let a = g.author();
                let merged = merge_trees(&fork, &main.tree, &side.tree);
                let reverse = merges % 4 == 2;
                let (first, second, base) = if reverse {
                    reversed += 1;
                    (side.tip.clone(), main.tip.clone(), &side.tree)
                } else {
                    (main.tip.clone(), side.tip.clone(), &main.tree)
                };
                let msg = if reverse {
                    format!("Merge branch 'main' into topic-{number}\n")
                } else if merges % 3 == 0 {
                    format!("Merge pull request #{number} from someone/topic-{number}\n\nTopic {number} ✓\n")
                } else {
                    format!("Merge branch 'topic-{number}'\n")
                };
                let (cn, ce) = if g.rng.gen_bool(0.5) {
                    COMMITTERS[0]
                } else {
                    (a.0, a.1)
                };
                let mark = g.commit(
                    first.as_ref(),
                    second.as_ref(),
                    base,
                    &merged,
                    (a.0, a.1, time - 60),
                    (cn, ce, time),
                    msg.as_bytes(),
                )?;
                main = Line {
                    tree: merged,
                    tip: Some(Rev::Mark(mark)),
                    time: main.time.max(time),
                };
                written += 1;
                continue;
            }
            topic = Some((side, left, number, fork));
        }
        if topic.is_none() && !last && written + 2 < commits && (topics == 0 || g.rng.gen_bool(0.3))
        {
            topics += 1;
            let left = g.rng.gen_range(1..=3usize);
            topic = Some((main.clone(), left, topics, main.tree.clone()));
        }
        // A commit on the topic branch, or on main.
        let on_topic = matches!(&topic, Some((_, left, _, _)) if *left > 0) && g.rng.gen_bool(0.75);
        let line = if on_topic {
            match topic.as_mut() {
                Some((side, left, _, _)) => {
                    *left -= 1;
                    side
                }
                None => &mut main,
            }
        } else {
            &mut main
        };
        let base = line.tree.clone();
        let subject = if on_topic {
            g.change(&mut line.tree, &mut load)?
        } else {
            ordinary += 1;
            match scripted(ordinary, &mut line.tree) {
                Some(s) => s.to_string(),
                None => g.change(&mut line.tree, &mut load)?,
            }
        };
        let time = g.next_time(line.time);
        line.time = time;
        let a = g.author();
        let authored = if g.rng.gen_bool(0.2) {
            time - g.rng.gen_range(0..g.step * 4 + 1)
        } else {
            time
        };
        let c = if g.rng.gen_bool(0.15) {
            *g.pick(COMMITTERS)
        } else {
            a
        };
        let msg = g.message(&subject);
        let tip = line.tip.clone();
        let mark = g.commit(
            tip.as_ref(),
            None,
            &base,
            &line.tree,
            (a.0, a.1, authored),
            (c.0, c.1, time),
            &msg,
        )?;
        line.tip = Some(Rev::Mark(mark));
        written += 1;
    }
    Ok((merges, reversed))
}

/// The three-way merge of `main` and `side` forked at `fork`: the topic's version of every
/// path it changed (a deletion included), main's elsewhere.
fn merge_trees(fork: &Tree, main: &Tree, side: &Tree) -> Tree {
    let mut merged = main.clone();
    for p in fork.keys().chain(side.keys()) {
        let changed = match (fork.get(p), side.get(p)) {
            (Some(a), Some(b)) => !a.same(b),
            (None, None) => false,
            _ => true,
        };
        if changed {
            match side.get(p) {
                Some(e) => merged.insert(p.clone(), e.clone()),
                None => merged.remove(p),
            };
        }
    }
    merged
}

// ---------- pushes ----------

/// What a push or force-push did to a repository.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushReport {
    pub repo: String,
    pub branch: String,
    pub old_head: String,
    pub new_head: String,
    /// Commits reachable from the new head and not from the old one, newest first.
    pub added: Vec<String>,
    /// Commits reachable from the old head and not from the new one, newest first.
    pub dropped: Vec<String>,
}

fn rev_list(dir: &Path, include: &str, exclude: &str) -> anyhow::Result<Vec<String>> {
    let mut c = git(Some(dir));
    c.args(["rev-list", include, &format!("^{exclude}")]);
    Ok(run_text(c, "listing commits")?
        .lines()
        .map(str::to_string)
        .collect())
}

/// Reads the tree of `rev` as entries that point at the repository's blobs.
fn read_tree(dir: &Path, rev: &str) -> anyhow::Result<Tree> {
    let mut c = git(Some(dir));
    c.args(["ls-tree", "-r", "-z", rev]);
    let out = run(c, "reading a tree")?;
    let mut tree = Tree::new();
    for rec in out.split(|b| *b == 0).filter(|r| !r.is_empty()) {
        // "<mode> SP <type> SP <sha> TAB <path>"
        let Some(tab) = rec.iter().position(|b| *b == b'\t') else {
            continue;
        };
        let head = String::from_utf8_lossy(&rec[..tab]);
        let f: Vec<&str> = head.split(' ').collect();
        if f.len() != 3 || f[1] != "blob" {
            continue; // submodules are left as they are
        }
        let mode = u32::from_str_radix(f[0], 8).unwrap_or(REG);
        tree.insert(
            Rc::from(&rec[tab + 1..]),
            Entry {
                mode,
                blob: Blob::Sha(Rc::from(f[2])),
            },
        );
    }
    Ok(tree)
}

/// Adds `commits` commits to the default branch of the bare repository at `dir`, on top of
/// the commit `back` first-parent steps behind the head (0: a plain push; more: a
/// force-push that drops what was above it). The new commits add, edit and rename files, and
/// hold a merge when there are 3 or more; a plain push dates them after the head (and no later
/// than now when there is room), a force-push between the new base and the old head.
pub fn push(
    dir: &Path,
    name: &str,
    back: usize,
    commits: usize,
    seed: u64,
    now: i64,
) -> anyhow::Result<PushReport> {
    let f = facts(dir)?;
    let branch = f.default_branch.clone();
    let old = f.head.clone();
    let base = if back == 0 {
        old.clone()
    } else {
        let mut c = git(Some(dir));
        c.args([
            "rev-parse",
            "--verify",
            "-q",
            &format!("{old}~{back}^{{commit}}"),
        ]);
        run_text(c, "finding the new base")
            .ok()
            .filter(|s| !s.is_empty())
            .with_context(|| {
                format!("{name} has fewer than {back} first-parent commits below its head")
            })?
    };
    let mut c = git(Some(dir));
    c.args(["log", "-1", "--format=%ct", &base]);
    let base_time: i64 = run_text(c, "reading the base's date")?
        .parse()
        .unwrap_or(now);
    let (start, step) = if back == 0 {
        let start = base_time + 60;
        (
            start,
            ((now - 60 - start) / (commits as i64 + 1)).clamp(1, 3600),
        )
    } else {
        (
            base_time + 1,
            ((f.head_committed_at - base_time) / (commits as i64 + 1)).clamp(1, 86_400),
        )
    };
    if commits == 0 {
        let mut c = git(Some(dir));
        c.args(["update-ref", &format!("refs/heads/{branch}"), &base]);
        run(c, "moving the branch")?;
    } else {
        let mut child = git(Some(dir))
            .args(["fast-import", "--quiet", "--done", "--force"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("running git fast-import")?;
        let stdin = child.stdin.take().context("git fast-import's stdin")?;
        let mut g = Gen {
            rng: ChaCha8Rng::seed_from_u64(seed ^ stable_hash(base.as_bytes())),
            out: std::io::BufWriter::new(stdin),
            next_mark: 1,
            names: stable_hash(format!("{seed}{base}").as_bytes()) % 100_000,
            step,
            branch: branch.clone(),
        };
        let written = push_commits(&mut g, dir, &base, commits, start);
        let finish = written.and_then(|()| {
            writeln!(g.out, "done")?;
            g.out.flush()?;
            Ok(())
        });
        drop(g);
        let status = child.wait().context("waiting for git fast-import")?;
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            use std::io::Read;
            let _ = e.read_to_string(&mut err);
        }
        if !status.success() {
            bail!("git fast-import failed: {}", err.trim());
        }
        finish?;
    }
    let new = facts(dir)?.head;
    Ok(PushReport {
        repo: name.to_string(),
        branch,
        added: rev_list(dir, &new, &old)?,
        dropped: rev_list(dir, &old, &new)?,
        old_head: old,
        new_head: new,
    })
}

fn push_commits<W: Write>(
    g: &mut Gen<W>,
    dir: &Path,
    base: &str,
    commits: usize,
    start: i64,
) -> anyhow::Result<()> {
    let tree = read_tree(dir, base)?;
    let dir = dir.to_path_buf();
    let mut load = move |sha: &str| -> anyhow::Result<Vec<u8>> {
        let mut c = git(Some(&dir));
        c.args(["cat-file", "blob", sha]);
        run(c, "reading a blob")
    };
    let fork = tree.clone();
    let mut main = Line {
        tree,
        tip: Some(Rev::Sha(base.to_string())),
        time: start,
    };
    // With 3 or more commits: one on a topic branch from the base, merged last.
    let mut side = (commits >= 3).then(|| main.clone());
    let ordinary = if side.is_some() { commits - 2 } else { commits };
    let topic_number = 1 + g.names % 9000;
    if let Some(s) = side.as_mut() {
        let before = s.tree.clone();
        let p = g.new_path(false);
        let t = g.text(6);
        s.tree.insert(
            p,
            Entry {
                mode: REG,
                blob: Blob::Bytes(Rc::new(t)),
            },
        );
        s.time = start;
        let a = g.author();
        let tip = s.tip.clone();
        let m = g.commit(
            tip.as_ref(),
            None,
            &before,
            &s.tree,
            (a.0, a.1, start),
            (a.0, a.1, start),
            format!("Topic {topic_number}: add a module\n").as_bytes(),
        )?;
        s.tip = Some(Rev::Mark(m));
    }
    for k in 0..ordinary {
        let before = main.tree.clone();
        let subject = match k {
            0 => {
                // An add and an edit.
                let p = g.new_path(false);
                let t = g.text(5);
                main.tree.insert(
                    p,
                    Entry {
                        mode: REG,
                        blob: Blob::Bytes(Rc::new(t)),
                    },
                );
                let p = pick_file(&mut g.rng, &main.tree).context("the tree has no file")?;
                let e = main.tree[&p].clone();
                let old = Gen::<W>::bytes(&e, &mut load)?;
                let new = if old.contains(&0) {
                    g.edit_binary(&old)
                } else {
                    g.edit_text(&old)
                };
                main.tree.insert(
                    p,
                    Entry {
                        mode: e.mode,
                        blob: Blob::Bytes(Rc::new(new)),
                    },
                );
                "Add a module and edit another".to_string()
            }
            1 => {
                // Git does not pair empty files as renames: pick one with content.
                let mut p = pick_file(&mut g.rng, &main.tree).context("the tree has no file")?;
                for _ in 0..16 {
                    let empty = match &main.tree[&p].blob {
                        Blob::Bytes(b) => b.is_empty(),
                        Blob::Sha(s) => &**s == EMPTY_BLOB,
                    };
                    if !empty {
                        break;
                    }
                    p = pick_file(&mut g.rng, &main.tree).context("the tree has no file")?;
                }
                if let Some(e) = main.tree.remove(&p) {
                    let bin = matches!(&e.blob, Blob::Bytes(b) if b.contains(&0));
                    let to = g.new_path(bin);
                    main.tree.insert(to, e);
                }
                "Rename a file".to_string()
            }
            _ => g.change(&mut main.tree, &mut load)?,
        };
        let time = start + step_after(g, k);
        main.time = time;
        let a = g.author();
        let msg = g.message(&subject);
        let tip = main.tip.clone();
        let m = g.commit(
            tip.as_ref(),
            None,
            &before,
            &main.tree,
            (a.0, a.1, time),
            (a.0, a.1, time),
            &msg,
        )?;
        main.tip = Some(Rev::Mark(m));
    }
    if let Some(s) = side {
        let merged = merge_trees(&fork, &main.tree, &s.tree);
        let time = start + step_after(g, ordinary);
        let a = g.author();
        let (c, ce) = COMMITTERS[0];
        let m = g.commit(
            main.tip.as_ref(),
            s.tip.as_ref(),
            &main.tree,
            &merged,
            (a.0, a.1, time),
            (c, ce, time),
            format!("Merge pull request #{topic_number} from someone/topic\n").as_bytes(),
        )?;
        let _ = m;
    }
    Ok(())
}

fn step_after<W: Write>(g: &Gen<W>, k: usize) -> i64 {
    g.step * (k as i64 + 1)
}
