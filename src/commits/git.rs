//! Git access for the commits job, through the `git` command line: a bare cache per repository,
//! fetches over smart HTTP with the token in a header (never in a URL, an argument, a file or an
//! error), the list of new commits, and each commit's files and line counts from one
//! `git log --raw --numstat -M --diff-merges=first-parent -z` stream, so the counts are git's own
//! (the same as `git log --numstat`, the oracle of the tests). Why the CLI and not gitoxide: see
//! README.md, "Commits": it is the reference implementation of the diff and rename detection
//! the numbers are checked against, it costs no build time, and its throughput over two
//! processes was measured above `git log --numstat`'s own.
//!
//! Every function here blocks; the job calls them from blocking threads.

use crate::config::Secret;
use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A git command failed.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// `git` could not be started (not installed, not on PATH).
    #[error("cannot run git ({0}); the commits job needs git 2.30 or newer on PATH")]
    Missing(String),
    /// The server refused the credentials (HTTP 401/403).
    #[error("git {what}: the server refused the credentials")]
    Unauthorized { what: String },
    /// The server has no such repository (HTTP 404).
    #[error("git {what}: the repository was not found")]
    NotFound { what: String },
    /// Anything else, with git's own message (credentials never appear in it: they are passed
    /// in the environment, not in the URL).
    #[error("git {what} failed: {message}")]
    Failed { what: String, message: String },
    /// git's output did not parse.
    #[error("git {what}: unexpected output: {message}")]
    Parse { what: String, message: String },
}

impl GitError {
    /// Whether trying again later may succeed (a network or server failure), as opposed to
    /// credentials or a repository that is not there.
    pub fn is_transient(&self) -> bool {
        matches!(self, GitError::Failed { .. })
    }
}

/// The `Authorization` header GitHub accepts for git over HTTPS with a token (a personal
/// token or a GitHub App installation token): Basic, user `x-access-token`, the token as the
/// password ("Authenticating with GitHub Apps": `https://x-access-token:TOKEN@github.com/…`,
/// here as a header instead of in the URL).
pub fn basic_authorization(token: &Secret) -> String {
    use base64::Engine;
    let raw = format!("x-access-token:{}", token.expose());
    format!(
        "Authorization: Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// A `git` invocation on the bare repository at `dir`: no user or system configuration (a
/// developer's `url.insteadOf` or credential helper must not change what is fetched), no
/// prompts, no tracing of HTTP (which would print the header), and, with `token`, the
/// `Authorization` header given through `GIT_CONFIG_*` environment variables, which git
/// reads as `-c` options without putting them on a command line or on disk.
pub fn git(dir: &Path, token: Option<&Secret>) -> Command {
    let mut c = Command::new(git_binary());
    c.arg("--git-dir").arg(dir);
    for v in [
        "GIT_TRACE",
        "GIT_TRACE_CURL",
        "GIT_TRACE_PACKET",
        "GIT_CURL_VERBOSE",
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "GIT_OBJECT_DIRECTORY",
        "GIT_ALTERNATE_OBJECT_DIRECTORIES",
        "GIT_NAMESPACE",
        "GIT_CONFIG",
        "GIT_CONFIG_PARAMETERS",
    ] {
        c.env_remove(v);
    }
    c.env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "")
        .env("SSH_ASKPASS", "")
        .env("LC_ALL", "C");
    let mut cfg: Vec<(&str, String)> = vec![
        ("credential.helper", String::new()),
        ("protocol.version", "2".into()),
        ("core.quotePath", "false".into()),
        ("diff.renames", "true".into()),
        ("i18n.logOutputEncoding", "UTF-8".into()),
        ("gc.auto", "0".into()),
        ("log.showSignature", "false".into()),
    ];
    if let Some(t) = token {
        cfg.push(("http.extraHeader", basic_authorization(t)));
    }
    c.env("GIT_CONFIG_COUNT", cfg.len().to_string());
    for (i, (k, v)) in cfg.into_iter().enumerate() {
        c.env(format!("GIT_CONFIG_KEY_{i}"), k);
        c.env(format!("GIT_CONFIG_VALUE_{i}"), v);
    }
    c.stdin(Stdio::null());
    die_with_parent(&mut c);
    c
}

/// A git child gets SIGKILL when ghstats dies (Linux's `PR_SET_PDEATHSIG`), so a `kill -9` of
/// ghstats leaves no `git fetch` running on to hold the cache's ref locks.
fn die_with_parent(c: &mut Command) {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: the closure runs between fork and exec and only calls prctl(2), which is
        // async-signal-safe.
        unsafe {
            c.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = c;
}

/// The `git` program: `GHSTATS_GIT` when set (tests, odd installs), else `git` on PATH.
pub fn git_binary() -> PathBuf {
    std::env::var_os("GHSTATS_GIT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("git"))
}

/// Runs `c` to the end; its stdout, or the error its stderr describes (`what` names the step).
fn run(mut c: Command, what: &str) -> Result<Vec<u8>, GitError> {
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    let out = c.output().map_err(|e| GitError::Missing(e.to_string()))?;
    if out.status.success() {
        return Ok(out.stdout);
    }
    Err(classify(what, &String::from_utf8_lossy(&out.stderr)))
}

/// What git's error message says, as a [`GitError`]; the message is cut to its last lines.
fn classify(what: &str, stderr: &str) -> GitError {
    let message: String = {
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        let tail = &lines[lines.len().saturating_sub(3)..];
        tail.join("; ")
    };
    let lower = message.to_lowercase();
    let what = what.to_string();
    if lower.contains("401")
        || lower.contains("403")
        || lower.contains("authentication failed")
        || lower.contains("could not read username")
    {
        GitError::Unauthorized { what }
    } else if lower.contains("not found") || lower.contains("404") {
        GitError::NotFound { what }
    } else {
        GitError::Failed { what, message }
    }
}

fn text(out: Vec<u8>) -> String {
    String::from_utf8_lossy(&out).trim().to_string()
}

/// Makes `dir` a bare repository when it is not one yet (a cache left half made by a kill is
/// made again). Returns whether it was created.
pub fn init_cache(dir: &Path) -> Result<bool, GitError> {
    if dir.join("HEAD").is_file() && dir.join("objects").is_dir() {
        clear_leftovers(dir);
        return Ok(false);
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| GitError::Failed {
            what: "init".into(),
            message: format!("removing the damaged cache {}: {e}", dir.display()),
        })?;
    }
    std::fs::create_dir_all(dir).map_err(|e| GitError::Failed {
        what: "init".into(),
        message: format!("creating {}: {e}", dir.display()),
    })?;
    let mut c = Command::new(git_binary());
    c.arg("init").arg("--bare").arg("--quiet").arg(dir);
    c.env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .stdin(Stdio::null());
    run(c, "init")?;
    Ok(true)
}

/// Removes what a git process killed mid-way leaves in a cache: `*.lock` files (a ref, the
/// `shallow` file, `packed-refs`, `config`), which would make the next fetch fail with "File
/// exists", and `tmp_*` files of a pack being received, which git never reuses. The commits
/// job's lease lock means no other run is using the cache.
pub fn clear_leftovers(dir: &Path) {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            let Ok(kind) = e.file_type() else { continue };
            if kind.is_dir() {
                // Loose objects are many and never locked; refs and packs are where leftovers go.
                if d == dir && name == "objects" {
                    stack.push(p.join("pack"));
                } else {
                    stack.push(p);
                }
            } else if name.ends_with(".lock") || (name.starts_with("tmp_") && d.ends_with("pack")) {
                let _ = std::fs::remove_file(&p);
            }
        }
    }
}

/// How much of the branch a fetch brings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Depth {
    /// Everything the branch reaches (and, in a shallow cache, everything before its boundary:
    /// `--unshallow`).
    Full,
    /// Commits committed at or after this time, and one more generation so the oldest of them
    /// can be compared with its parent (`--shallow-since`, then `--deepen=1`).
    Since(DateTime<Utc>),
    /// What the cache lacks on top of what it has: a normal incremental fetch.
    Incremental,
}

/// Fetches `branch` of the repository at `url` into the cache `dir` as `refs/heads/{branch}`
/// (force-updated: a force-push replaces it; the commits it dropped stay reachable from
/// `refs/ghstats/processed` until the job moves that ref). Returns the fetched head.
pub fn fetch(
    dir: &Path,
    url: &str,
    branch: &str,
    depth: Depth,
    token: Option<&Secret>,
) -> Result<String, GitError> {
    let refspec = format!("+refs/heads/{branch}:refs/heads/{branch}");
    let shallow = is_shallow(dir);
    let mut c = git(dir, token);
    c.args([
        "fetch",
        "--quiet",
        "--no-tags",
        "--no-write-fetch-head",
        "--no-auto-gc",
    ]);
    match depth {
        Depth::Full if shallow => {
            c.arg("--unshallow");
        }
        Depth::Since(t) => {
            c.arg(format!("--shallow-since={}", t.timestamp()));
        }
        _ => {}
    }
    c.arg(url).arg(&refspec);
    match run(c, "fetch") {
        Ok(_) => {}
        // A fetch by date into a cache that has history can fail in git's shallow
        // negotiation ("error processing shallow info"); the whole history is always right.
        Err(e) if matches!(depth, Depth::Since(_)) && e.is_transient() => {
            return refetch_whole(dir, url, branch, token, e);
        }
        Err(e) => return Err(e),
    }
    if let Depth::Since(_) = depth {
        // The oldest fetched commits are grafted (no parents); one generation more lets each
        // of them be compared with its first parent.
        let mut c = git(dir, token);
        c.args([
            "fetch",
            "--quiet",
            "--no-tags",
            "--no-write-fetch-head",
            "--no-auto-gc",
            "--deepen=1",
        ]);
        c.arg(url).arg(&refspec);
        if let Err(e) = run(c, "fetch --deepen") {
            // git's upload-pack cannot deepen some histories fetched by date (a merge whose
            // other parent is older than the date: "error in object: unshallow …", and
            // `--unshallow` fails the same way).
            return refetch_whole(dir, url, branch, token, e);
        }
    }
    let head =
        rev_parse(dir, &format!("refs/heads/{branch}"))?.ok_or_else(|| GitError::Failed {
            what: "fetch".into(),
            message: format!("the fetch did not bring refs/heads/{branch}"),
        })?;
    Ok(head)
}

/// Correct data first: when a fetch by date fails, the cache is made again and the whole
/// history fetched (`why` is logged).
fn refetch_whole(
    dir: &Path,
    url: &str,
    branch: &str,
    token: Option<&Secret>,
    why: GitError,
) -> Result<String, GitError> {
    tracing::warn!(error = %why, "A fetch by date failed; fetching the whole history instead.");
    std::fs::remove_dir_all(dir).map_err(|e| GitError::Failed {
        what: "fetch".into(),
        message: format!("removing the cache {}: {e}", dir.display()),
    })?;
    init_cache(dir)?;
    fetch(dir, url, branch, Depth::Full, token)
}

/// Makes the cache hold the branch's whole history: `--unshallow` when it is shallow, and
/// when git cannot (histories fetched by date, see [`fetch`]), the cache made again.
pub fn make_whole(
    dir: &Path,
    url: &str,
    branch: &str,
    token: Option<&Secret>,
) -> Result<String, GitError> {
    match fetch(dir, url, branch, Depth::Full, token) {
        Ok(h) if !is_shallow(dir) => Ok(h),
        Ok(_) => refetch_whole(
            dir,
            url,
            branch,
            token,
            GitError::Failed {
                what: "fetch --unshallow".into(),
                message: "the cache is still shallow".into(),
            },
        ),
        Err(e) if e.is_transient() => refetch_whole(dir, url, branch, token, e),
        Err(e) => Err(e),
    }
}

/// Fetches one commit by id (GitHub serves commits the branch reaches); `Ok(false)` when the
/// server does not give it.
pub fn fetch_commit(
    dir: &Path,
    url: &str,
    sha: &str,
    token: Option<&Secret>,
) -> Result<bool, GitError> {
    let mut c = git(dir, token);
    c.args([
        "fetch",
        "--quiet",
        "--no-tags",
        "--no-write-fetch-head",
        "--no-auto-gc",
    ]);
    c.arg(url).arg(sha);
    match run(c, "fetch commit") {
        Ok(_) => Ok(has_commit(dir, sha)),
        Err(GitError::Unauthorized { what }) => Err(GitError::Unauthorized { what }),
        Err(_) => Ok(false),
    }
}

/// The heads of `url`'s branches (`git ls-remote --heads`): one request, no objects.
pub fn ls_remote(
    dir: &Path,
    url: &str,
    token: Option<&Secret>,
) -> Result<HashMap<String, String>, GitError> {
    let mut c = git(dir, token);
    c.args(["ls-remote", "--heads", url]);
    let out = text(run(c, "ls-remote")?);
    Ok(out
        .lines()
        .filter_map(|l| {
            let (sha, r) = l.split_once('\t')?;
            Some((r.strip_prefix("refs/heads/")?.to_string(), sha.to_string()))
        })
        .collect())
}

/// The commit `rev` names, or `None` when the cache does not have it.
pub fn rev_parse(dir: &Path, rev: &str) -> Result<Option<String>, GitError> {
    let mut c = git(dir, None);
    c.args(["rev-parse", "--verify", "--quiet", "--end-of-options"])
        .arg(format!("{rev}^{{commit}}"));
    c.stdout(Stdio::piped()).stderr(Stdio::null());
    let out = c.output().map_err(|e| GitError::Missing(e.to_string()))?;
    if out.status.success() {
        Ok(Some(text(out.stdout)))
    } else {
        Ok(None)
    }
}

/// Whether the cache holds commit `sha`.
pub fn has_commit(dir: &Path, sha: &str) -> bool {
    matches!(rev_parse(dir, sha), Ok(Some(_)))
}

/// Whether `ancestor` is reachable from `of` (or is it).
pub fn is_ancestor(dir: &Path, ancestor: &str, of: &str) -> Result<bool, GitError> {
    let mut c = git(dir, None);
    c.args(["merge-base", "--is-ancestor", ancestor, of]);
    c.stdout(Stdio::null()).stderr(Stdio::piped());
    let out = c.output().map_err(|e| GitError::Missing(e.to_string()))?;
    match out.status.code() {
        Some(0) => Ok(true),
        Some(1) => Ok(false),
        _ => Err(classify(
            "merge-base",
            &String::from_utf8_lossy(&out.stderr),
        )),
    }
}

/// Points `refs/ghstats/processed` at `sha`: the commits it reaches stay in the cache even
/// after a force-push drops them from the branch, so the next run can tell which were dropped.
pub fn mark_processed(dir: &Path, sha: &str) -> Result<(), GitError> {
    let mut c = git(dir, None);
    c.args(["update-ref", "refs/ghstats/processed", sha]);
    run(c, "update-ref").map(|_| ())
}

/// Whether the cache is shallow (made by a fetch by date).
pub fn is_shallow(dir: &Path) -> bool {
    dir.join("shallow").is_file()
}

/// The grafted commits of a shallow cache (their parents are not fetched): they are never
/// read, since they cannot be compared with their parent.
pub fn shallow_commits(dir: &Path) -> HashSet<String> {
    std::fs::read_to_string(dir.join("shallow"))
        .map(|s| s.lines().map(|l| l.trim().to_string()).collect())
        .unwrap_or_default()
}

/// The first commit along `head`'s first-parent chain committed at or before `until`: the
/// head of a snapshot at `until`. `None` when there is none.
pub fn head_at(dir: &Path, head: &str, until: DateTime<Utc>) -> Result<Option<String>, GitError> {
    // git reads a date before 1970 as something else; there are no commits then anyway.
    if until.timestamp() <= 0 {
        return Ok(None);
    }
    let mut c = git(dir, None);
    c.args(["rev-list", "-1", "--first-parent"])
        .arg(format!("--before={}", until.timestamp()))
        .arg(head);
    let out = text(run(c, "rev-list")?);
    Ok((!out.is_empty()).then_some(out))
}

/// The commits `head` reaches and none of `exclude` does, parents before children
/// (`git rev-list --reverse --topo-order`), without the grafted commits of a shallow cache.
/// Any prefix of the list is closed under parents: once its commits are stored, its last
/// commit can be recorded as processed.
pub fn new_commits(dir: &Path, head: &str, exclude: &[&str]) -> Result<Vec<String>, GitError> {
    let mut c = git(dir, None);
    c.args(["rev-list", "--reverse", "--topo-order", head]);
    for e in exclude {
        c.arg(format!("^{e}"));
    }
    c.arg("--");
    let grafted = shallow_commits(dir);
    let out = run(c, "rev-list")?;
    Ok(String::from_utf8_lossy(&out)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !grafted.contains(*l))
        .map(str::to_string)
        .collect())
}

/// The commits of `head`'s first-parent chain that none of `exclude` reaches.
pub fn first_parent_chain(
    dir: &Path,
    head: &str,
    exclude: &[&str],
) -> Result<HashSet<String>, GitError> {
    let mut c = git(dir, None);
    c.args(["rev-list", "--first-parent", head]);
    for e in exclude {
        c.arg(format!("^{e}"));
    }
    c.arg("--");
    let out = run(c, "rev-list --first-parent")?;
    Ok(String::from_utf8_lossy(&out)
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect())
}

/// How many commits `sha` reaches that none of `exclude` does (itself included).
pub fn count_new(dir: &Path, sha: &str, exclude: &[&str]) -> Result<usize, GitError> {
    let mut c = git(dir, None);
    c.args(["rev-list", "--count", sha]);
    for e in exclude {
        c.arg(format!("^{e}"));
    }
    c.arg("--");
    let out = text(run(c, "rev-list --count")?);
    out.parse().map_err(|_| GitError::Parse {
        what: "rev-list --count".into(),
        message: out,
    })
}

/// One file a commit changed, as git's raw and numstat output give it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangedFile {
    /// git's status letter: A, M, D, R, C, T (U and X never appear on a committed history).
    pub status: char,
    pub old_mode: String,
    pub new_mode: String,
    /// The object after the change; `None` when removed.
    pub new_sha: Option<String>,
    pub path: String,
    /// The path before a rename or copy.
    pub previous_path: Option<String>,
    /// Lines added and deleted; `None` for a binary file (`-` in numstat).
    pub lines: Option<(i64, i64)>,
}

impl ChangedFile {
    /// The status as the `file_changes` table names it.
    pub fn status_name(&self) -> &'static str {
        match self.status {
            'A' => "added",
            'D' => "removed",
            'R' => "renamed",
            'C' => "copied",
            'T' => "type-changed",
            'M' => "modified",
            'U' => "unmerged",
            _ => "unknown",
        }
    }

    /// Whether the new object is a submodule's commit (mode 160000), not a blob of this
    /// repository.
    pub fn is_gitlink(&self) -> bool {
        self.new_mode == "160000"
    }
}

/// One commit as `git log` prints it, with its files against its first parent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedCommit {
    pub sha: String,
    pub parents: Vec<String>,
    pub author_name: String,
    pub author_email: String,
    pub authored_at: DateTime<Utc>,
    pub committer_name: String,
    pub commit_at: DateTime<Utc>,
    pub message: String,
    pub files: Vec<ChangedFile>,
}

/// The header of each commit: a `\x01` marker no raw or numstat record starts with, then
/// NUL-separated fields. With `-z` every path and record is NUL-terminated and paths are
/// printed as they are (no quoting).
const FORMAT: &str = "--format=%x01%H%x00%P%x00%an%x00%ae%x00%at%x00%cn%x00%ct%x00%B";
const HEADER_FIELDS: usize = 8;

/// The `git log` that reads given commits (`--stdin`, in the order given) with their files:
/// `--raw` for statuses, modes and blob ids, `--numstat` for line counts, `-M` (git's default
/// rename detection) and `--diff-merges=first-parent` (a merge against its first parent, as
/// GitHub's commit page shows it).
pub fn log_command(dir: &Path) -> Command {
    let mut c = git(dir, None);
    c.args([
        "log",
        "--no-walk=unsorted",
        "--stdin",
        "-z",
        "--raw",
        "--numstat",
        "--no-abbrev",
        "-M",
        "--diff-merges=first-parent",
        "--no-color",
        "--no-ext-diff",
        "--no-textconv",
        "--encoding=UTF-8",
        FORMAT,
    ]);
    c
}

/// Spawns `c` with stdout and stderr piped and `shas` written to its stdin, one a line, from
/// a thread of its own: a git that answers while it reads (`log --stdin`, `cat-file --batch`)
/// never waits on a full stdout pipe while ghstats waits on a full stdin one. Join the thread
/// after reading stdout.
fn spawn_fed(
    mut c: Command,
    what: &str,
    shas: &[String],
) -> Result<(std::process::Child, std::thread::JoinHandle<()>), GitError> {
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().map_err(|e| GitError::Missing(e.to_string()))?;
    let mut stdin = child.stdin.take().ok_or_else(|| GitError::Failed {
        what: what.into(),
        message: "no stdin".into(),
    })?;
    let input: Vec<u8> = shas
        .iter()
        .flat_map(|s| format!("{s}\n").into_bytes())
        .collect();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    Ok((child, writer))
}

/// Runs `c` fed `shas` ([`spawn_fed`]) to the end; its stdout, or the error its stderr
/// describes.
pub fn run_fed(c: Command, what: &str, shas: &[String]) -> Result<Vec<u8>, GitError> {
    let (child, writer) = spawn_fed(c, what, shas)?;
    let out = child
        .wait_with_output()
        .map_err(|e| GitError::Missing(e.to_string()))?;
    let _ = writer.join();
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(classify(what, &String::from_utf8_lossy(&out.stderr)))
    }
}

/// Reads `shas` (commits of the cache) with their files: one `git log` process, its output
/// parsed as it streams.
pub fn read_commits(dir: &Path, shas: &[String]) -> Result<Vec<ParsedCommit>, GitError> {
    let (mut child, writer) = spawn_fed(log_command(dir), "log", shas)?;
    let mut stderr = child.stderr.take();
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(e) = stderr.as_mut() {
            let _ = e.read_to_string(&mut s);
        }
        s
    });
    let stdout = child.stdout.take().ok_or_else(|| GitError::Failed {
        what: "log".into(),
        message: "no stdout".into(),
    })?;
    let parsed = parse_log(BufReader::with_capacity(1 << 20, stdout));
    let _ = writer.join();
    let status = child.wait().map_err(|e| GitError::Missing(e.to_string()))?;
    let err = err_reader.join().unwrap_or_default();
    if !status.success() {
        return Err(classify("log", &err));
    }
    let commits = parsed?;
    if commits.len() != shas.len() {
        return Err(GitError::Parse {
            what: "log".into(),
            message: format!("asked for {} commits, read {}", shas.len(), commits.len()),
        });
    }
    Ok(commits)
}

fn parse_err(message: impl Into<String>) -> GitError {
    GitError::Parse {
        what: "log".into(),
        message: message.into(),
    }
}

fn is_sha(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn unix_time(s: &str) -> Result<DateTime<Utc>, GitError> {
    let secs: i64 = s
        .trim()
        .parse()
        .map_err(|_| parse_err(format!("a date {s:?} is not a number of seconds")))?;
    DateTime::from_timestamp(secs, 0)
        .ok_or_else(|| parse_err(format!("date {secs} is out of range")))
}

/// Parses the output of [`log_command`]. Tokens are NUL-terminated: a commit is a header
/// (starting with `\x01`, [`HEADER_FIELDS`] tokens, the message last), then raw records
/// (`:old_mode new_mode old_sha new_sha STATUS`, then one path, or two for R and C), then
/// numstat records (`added\tdeleted\tpath`, or `added\tdeleted\t` then two paths for a
/// rename), matched to the raw records in order.
pub fn parse_log(mut r: impl BufRead) -> Result<Vec<ParsedCommit>, GitError> {
    let mut out: Vec<ParsedCommit> = Vec::new();
    let mut tok: Vec<u8> = Vec::new();
    let mut next = |tok: &mut Vec<u8>| -> Result<Option<String>, GitError> {
        tok.clear();
        let n = r
            .read_until(0, tok)
            .map_err(|e| parse_err(format!("reading: {e}")))?;
        if n == 0 {
            return Ok(None);
        }
        if tok.last() == Some(&0) {
            tok.pop();
        }
        Ok(Some(String::from_utf8_lossy(tok).into_owned()))
    };
    let mut pending: Option<String> = next(&mut tok)?;
    // Numstat records seen for the current commit (index into its files).
    let mut numstat_at = 0usize;
    while let Some(t) = pending.take() {
        let t = t.strip_prefix('\n').unwrap_or(&t).to_string();
        if let Some(first) = t.strip_prefix('\u{1}') {
            let mut fields = vec![first.to_string()];
            for _ in 1..HEADER_FIELDS {
                fields.push(next(&mut tok)?.ok_or_else(|| parse_err("a header is cut short"))?);
            }
            let sha = fields[0].clone();
            if !is_sha(&sha) {
                return Err(parse_err(format!("{sha:?} is not a commit id")));
            }
            let parents: Vec<String> = fields[1].split_whitespace().map(str::to_string).collect();
            // As GitHub shows a message: without its trailing newlines.
            let message = fields[7].trim_end_matches('\n').to_string();
            out.push(ParsedCommit {
                sha,
                parents,
                author_name: std::mem::take(&mut fields[2]),
                author_email: std::mem::take(&mut fields[3]),
                authored_at: unix_time(&fields[4])?,
                committer_name: std::mem::take(&mut fields[5]),
                commit_at: unix_time(&fields[6])?,
                message,
                files: Vec::new(),
            });
            numstat_at = 0;
            pending = next(&mut tok)?;
            continue;
        }
        let commit = out
            .last_mut()
            .ok_or_else(|| parse_err(format!("output starts with {t:?}, not a commit")))?;
        if let Some(raw) = t.strip_prefix(':') {
            let parts: Vec<&str> = raw.split(' ').collect();
            if parts.len() != 5 {
                return Err(parse_err(format!("raw record {t:?}")));
            }
            let status = parts[4]
                .chars()
                .next()
                .ok_or_else(|| parse_err("an empty status"))?;
            let first = next(&mut tok)?.ok_or_else(|| parse_err("a raw record without a path"))?;
            let (path, previous_path) = if matches!(status, 'R' | 'C') {
                let second =
                    next(&mut tok)?.ok_or_else(|| parse_err("a rename without its new path"))?;
                (second, Some(first))
            } else {
                (first, None)
            };
            let new_sha = parts[3];
            commit.files.push(ChangedFile {
                status,
                old_mode: parts[0].to_string(),
                new_mode: parts[1].to_string(),
                new_sha: (status != 'D' && new_sha.bytes().any(|b| b != b'0'))
                    .then(|| new_sha.to_string()),
                path,
                previous_path,
                lines: None,
            });
        } else if let Some((added, rest)) = t.split_once('\t') {
            let (deleted, path) = rest
                .split_once('\t')
                .ok_or_else(|| parse_err(format!("numstat record {t:?}")))?;
            let path = if path.is_empty() {
                // A rename: the old and the new path follow.
                let _old =
                    next(&mut tok)?.ok_or_else(|| parse_err("a numstat rename cut short"))?;
                next(&mut tok)?.ok_or_else(|| parse_err("a numstat rename cut short"))?
            } else {
                path.to_string()
            };
            let lines = match (added, deleted) {
                ("-", "-") => None,
                (a, d) => Some((
                    a.parse()
                        .map_err(|_| parse_err(format!("numstat count {a:?}")))?,
                    d.parse()
                        .map_err(|_| parse_err(format!("numstat count {d:?}")))?,
                )),
            };
            let f = commit.files.get_mut(numstat_at).ok_or_else(|| {
                parse_err(format!(
                    "commit {}: a numstat record for {path:?} has no raw record",
                    commit.sha
                ))
            })?;
            if f.path != path {
                return Err(parse_err(format!(
                    "commit {}: numstat names {path:?} where raw names {:?}",
                    commit.sha, f.path
                )));
            }
            f.lines = lines;
            numstat_at += 1;
        } else if t.is_empty() {
            // The separator between commits.
        } else {
            return Err(parse_err(format!(
                "commit {}: unexpected record {t:?}",
                commit.sha
            )));
        }
        pending = next(&mut tok)?;
    }
    Ok(out)
}

/// The sizes in bytes of the blobs `shas` (`git cat-file --batch-check`), read from the
/// objects themselves. An id the cache lacks is left out.
pub fn blob_sizes(dir: &Path, shas: &[String]) -> Result<HashMap<String, i64>, GitError> {
    let mut c = git(dir, None);
    c.args([
        "cat-file",
        "--batch-check=%(objectname) %(objecttype) %(objectsize)",
    ]);
    let (mut child, writer) = spawn_fed(c, "cat-file", shas)?;
    let stdout = child.stdout.take().ok_or_else(|| GitError::Failed {
        what: "cat-file".into(),
        message: "no stdout".into(),
    })?;
    let mut sizes = HashMap::with_capacity(shas.len());
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(|e| GitError::Failed {
            what: "cat-file".into(),
            message: e.to_string(),
        })?;
        let mut parts = line.split(' ');
        if let (Some(sha), Some("blob"), Some(size)) = (parts.next(), parts.next(), parts.next()) {
            if let Ok(n) = size.parse::<i64>() {
                sizes.insert(sha.to_string(), n);
            }
        }
    }
    let _ = writer.join();
    let out = child
        .wait_with_output()
        .map_err(|e| GitError::Missing(e.to_string()))?;
    if !out.status.success() {
        return Err(classify("cat-file", &String::from_utf8_lossy(&out.stderr)));
    }
    Ok(sizes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_authorization_header_is_basic_with_the_token_as_password() {
        let h = basic_authorization(&Secret::new("tok"));
        // base64("x-access-token:tok")
        assert_eq!(h, "Authorization: Basic eC1hY2Nlc3MtdG9rZW46dG9r");
    }

    #[test]
    fn log_output_parses_with_renames_binaries_merges_and_odd_names() {
        let a = "a".repeat(40);
        let b = "b".repeat(40);
        let c = "c".repeat(40);
        let z = "0".repeat(40);
        let mut s = String::new();
        // A commit with a modification, a rename with edits, a binary and a removal.
        s += &format!("\u{1}{a}\0{b} {c}\0Ann\0ann@example.com\01700000000\0Bob\01700000100\0Subject\n\nBody\twith tab\n\0\n");
        s += &format!(":100644 100644 {b} {c} M\0dir/x y.rs\0");
        s += &format!(":100644 100644 {b} {c} R087\0old name.txt\0new\tname.txt\0");
        s += &format!(":000000 100644 {z} {c} A\0img.png\0");
        s += &format!(":100644 000000 {b} {z} D\0gone.md\0");
        s += "3\t1\tdir/x y.rs\0";
        s += "2\t2\t\0old name.txt\0new\tname.txt\0";
        s += "-\t-\timg.png\0";
        s += "0\t7\tgone.md\0";
        // An empty commit right after.
        s += &format!("\u{1}{b}\0\0Ann\0ann@example.com\01600000000\0Ann\01600000000\0\n\0");
        let got = parse_log(s.as_bytes()).unwrap();
        assert_eq!(got.len(), 2);
        let first = &got[0];
        assert_eq!(first.parents, vec![b.clone(), c.clone()]);
        assert_eq!(first.message, "Subject\n\nBody\twith tab");
        assert_eq!(first.commit_at.timestamp(), 1_700_000_100);
        let names: Vec<_> = first
            .files
            .iter()
            .map(|f| (f.status, f.path.as_str(), f.lines))
            .collect();
        assert_eq!(
            names,
            vec![
                ('M', "dir/x y.rs", Some((3, 1))),
                ('R', "new\tname.txt", Some((2, 2))),
                ('A', "img.png", None),
                ('D', "gone.md", Some((0, 7))),
            ]
        );
        assert_eq!(
            first.files[1].previous_path.as_deref(),
            Some("old name.txt")
        );
        assert_eq!(first.files[3].new_sha, None);
        assert_eq!(first.files[2].new_sha.as_deref(), Some(c.as_str()));
        assert!(got[1].files.is_empty());
        assert!(got[1].parents.is_empty());
        assert_eq!(got[1].message, "");
    }

    #[test]
    fn a_numstat_record_that_does_not_match_its_raw_record_is_an_error() {
        let a = "a".repeat(40);
        let s = format!(
            "\u{1}{a}\0\0A\0a@x\01\0A\01\0m\0\n:000000 100644 {z} {a} A\0x\01\t0\ty\0",
            z = "0".repeat(40)
        );
        assert!(parse_log(s.as_bytes()).is_err());
    }
}
