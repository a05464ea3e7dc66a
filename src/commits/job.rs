//! The commits job: for each selected repository, fetch its default branch into the git cache,
//! read the commits the lake lacks (oldest first, in batches), write the months they touch and
//! load those months into the warehouse, then record the repository's new place
//! (`github/_commits/state/{repo_id}.json`, and `repositories.last_commit_sha` on load). The
//! place moves after each batch, so a kill loses at most the batch in hand, and a rerun rewrites
//! the same months to the same files.
//!
//! API cost: the repositories' identity and heads cost 1 GraphQL point per 50 named
//! repositories (or per 100 of an organization); a repository whose head has not moved costs
//! nothing more — no git request at all. New commits cost about 1 point per 100 for their
//! authors' GitHub ids (`graphql/commit_history.graphql`). Files and lines come from git
//! objects: no REST request and no point per commit.

use super::git::{self, Depth, GitError, ParsedCommit};
use super::partition::{self, MonthRows, Rewrite};
use super::rows::{self, CommitRow, FileChangeRow, FileStateRow};
use super::{state_path, MonthPartition, RepositoryState};
use crate::config::Secret;
use crate::github::client::{ApiCost, GithubClient};
use crate::lake::Lake;
use crate::warehouse::Warehouse;
use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// The repository lookup query, one repository: the form [`repository_query`] repeats.
pub const GIT_REPOSITORY: &str = include_str!("../../graphql/git_repository.graphql");
/// An organization's repositories, 100 a page.
pub const ORG_GIT_REPOSITORIES: &str = include_str!("../../graphql/org_git_repositories.graphql");
/// The authors' accounts of a head's history, 100 a page.
pub const COMMIT_HISTORY: &str = include_str!("../../graphql/commit_history.graphql");

/// Whose token this is (tokens of one user share one budget).
pub const VIEWER: &str = include_str!("../../graphql/viewer.graphql");

/// Repositories named in one lookup query (no connection: 1 point whatever the number).
pub const LOOKUP_BATCH: usize = 50;

/// Which repositories a run covers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Selection {
    /// `owner/name` pairs.
    Repos(Vec<(String, String)>),
    /// An organization's repositories; forks and archived ones only when asked.
    Org {
        org: String,
        include_forks: bool,
        include_archived: bool,
    },
    /// The N most-starred repositories of `repo_stars`.
    TopStarred(u64),
}

/// Parses `owner/name` (GitHub's rules for both: letters, digits, `-`, `_`, `.`).
pub fn parse_repo(s: &str) -> Result<(String, String), String> {
    let s = s.trim();
    let (owner, name) = s
        .split_once('/')
        .ok_or_else(|| format!("{s:?} is not owner/name"))?;
    let ok = |p: &str| {
        !p.is_empty()
            && p.len() <= 100
            && p != "."
            && p != ".."
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    if !ok(owner) || !ok(name) {
        return Err(format!("{s:?} is not owner/name"));
    }
    Ok((owner.to_string(), name.to_string()))
}

/// What the job needs besides the clients.
pub struct Options {
    pub selection: Selection,
    /// The snapshot time: commits committed after it wait for the next run.
    pub until: Option<DateTime<Utc>>,
    /// The first fetch of a repository (an empty cache and nothing in the lake) brings only
    /// commits committed since then (a shallow fetch by date).
    pub since: Option<DateTime<Utc>>,
    /// Repositories worked on at once.
    pub workers: usize,
    /// git processes reading one repository's commits at once.
    pub readers: usize,
    /// Commits read, written and loaded as one step; the repository's place moves after each.
    pub batch_commits: usize,
    /// The bare repositories' folder (`GIT_CACHE_DIR`).
    pub cache_dir: PathBuf,
    /// Where repositories are fetched from: `{git_url}/{owner}/{name}.git`.
    pub git_url: url::Url,
    /// The token sent to git (the same as the API's).
    pub git_token: Option<Secret>,
    pub deadline: Instant,
    pub stop: Vec<Arc<AtomicBool>>,
    pub collection_id: String,
    pub progress: Arc<CommitsProgress>,
}

impl Options {
    fn stopped(&self) -> bool {
        Instant::now() >= self.deadline || self.stop.iter().any(|s| s.load(Ordering::Relaxed))
    }
}

/// Counters a progress bar or the logs show.
#[derive(Debug, Default)]
pub struct CommitsProgress {
    pub repositories: AtomicU64,
    pub repositories_done: AtomicU64,
    pub commits: AtomicU64,
    pub files: AtomicU64,
}

/// What happened to one repository.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoOutcome {
    /// `owner/name` as GitHub names it now.
    pub repository: String,
    pub repository_id: Option<i64>,
    /// `updated`, `unchanged` (head not moved: nothing fetched), `force_pushed` (the last
    /// processed commit left the branch: the months it touched were recomputed), `rebuilt`
    /// (the cache could not tell what changed: every month was recomputed), `empty` (no
    /// default branch), `partial` (the run stopped in it), `skipped` (a fork or archived), or
    /// `failed` (with `error`).
    pub status: String,
    pub previous_head: Option<String>,
    pub head: Option<String>,
    /// Commits read (new on the branch).
    pub commits: u64,
    pub file_changes: u64,
    pub file_states: u64,
    /// Commits of an earlier run no longer on the branch (force-push), removed.
    pub dropped_commits: u64,
    /// Months written and loaded.
    pub months: Vec<String>,
    /// New commits whose author GitHub's history did not list (authors left null).
    pub authors_unresolved: u64,
    pub fetched: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What a commits run did.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CommitsResult {
    pub collection_id: String,
    /// `completed`, `partial` (stopped by the run budget or SIGTERM, or some repositories failed:
    /// run again to continue) or `failed` (every repository failed).
    pub status: String,
    pub repositories: u64,
    pub repositories_updated: u64,
    pub repositories_unchanged: u64,
    pub repositories_failed: u64,
    pub commits: u64,
    pub file_changes: u64,
    pub file_states: u64,
    pub months_written: u64,
    pub force_pushed: Vec<String>,
    /// Distinct rate-limit budgets among the tokens (tokens of one user share one).
    pub distinct_budgets: u64,
    pub api_cost: ApiCost,
    /// git requests made (fetches and ref listings).
    pub git_fetches: u64,
    pub details: Vec<RepoOutcome>,
}

/// The lake's record of one repository: where the job stands, and months written but not yet
/// loaded into the warehouse (loaded first by the next run).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StoredState {
    pub repository: RepositoryState,
    #[serde(default)]
    pub unloaded_months: BTreeSet<String>,
}

impl StoredState {
    pub async fn read(lake: &Lake, repo_id: i64) -> anyhow::Result<Option<StoredState>> {
        let path = state_path(lake, repo_id);
        match lake.get(&path).await {
            Ok(b) => Ok(Some(
                serde_json::from_slice(&b).with_context(|| format!("reading {path}"))?,
            )),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {path}")),
        }
    }

    async fn write(&self, lake: &Lake) -> anyhow::Result<()> {
        let path = state_path(lake, self.repository.repo_id);
        let bytes = serde_json::to_vec_pretty(self)?;
        lake.put(&path, bytes.into())
            .await
            .with_context(|| format!("writing {path}"))
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GqlRepository {
    id: String,
    database_id: i64,
    name: String,
    owner: GqlOwner,
    is_archived: bool,
    is_fork: bool,
    is_private: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    pushed_at: Option<DateTime<Utc>>,
    default_branch_ref: Option<GqlRef>,
}

#[derive(Debug, Deserialize)]
struct GqlOwner {
    login: String,
}

#[derive(Debug, Deserialize)]
struct GqlRef {
    name: String,
    target: Option<GqlTarget>,
}

#[derive(Debug, Deserialize)]
struct GqlTarget {
    oid: String,
}

/// A repository to work on: GitHub's description and its head now.
#[derive(Debug)]
struct Target {
    meta: GqlRepository,
    head: Option<String>,
}

/// The lookup query for `n` repositories: the `r0` selection of `graphql/git_repository.graphql`
/// repeated as r0..r{n-1}, with variables `$ownerI`/`$nameI`.
pub fn repository_query(n: usize) -> String {
    let (head, rest) = GIT_REPOSITORY
        .split_once(
            "  r0: repository(owner: $owner0, name: $name0) {\n    ...GitRepositoryFields\n  }\n",
        )
        .unwrap_or((GIT_REPOSITORY, ""));
    let vars: Vec<String> = (0..n)
        .map(|i| format!("$owner{i}: String!, $name{i}: String!"))
        .collect();
    let head = head.replace("$owner0: String!, $name0: String!", &vars.join(", "));
    let mut q = head;
    for i in 0..n {
        q.push_str(&format!(
            "  r{i}: repository(owner: $owner{i}, name: $name{i}) {{\n    ...GitRepositoryFields\n  }}\n"
        ));
    }
    q.push_str(rest);
    q
}

async fn lookup(
    client: &GithubClient,
    names: &[(String, String)],
    outcomes: &mut Vec<RepoOutcome>,
) -> anyhow::Result<Vec<Target>> {
    let mut out = Vec::new();
    for batch in names.chunks(LOOKUP_BATCH) {
        let q = repository_query(batch.len());
        let mut vars = serde_json::Map::new();
        for (i, (o, n)) in batch.iter().enumerate() {
            vars.insert(format!("owner{i}"), json!(o));
            vars.insert(format!("name{i}"), json!(n));
        }
        let (data, missing): (serde_json::Value, Vec<usize>) = client
            .graphql_nodes(&q, serde_json::Value::Object(vars), false)
            .await
            .context("looking up the repositories")?;
        for (i, (o, n)) in batch.iter().enumerate() {
            let v = data
                .get(format!("r{i}"))
                .cloned()
                .unwrap_or(serde_json::Value::Null);
            if missing.contains(&i) || v.is_null() {
                outcomes.push(RepoOutcome {
                    repository: format!("{o}/{n}"),
                    status: "failed".into(),
                    error: Some(
                        "GitHub does not know this repository (or the token cannot see it)".into(),
                    ),
                    ..Default::default()
                });
                continue;
            }
            let meta: GqlRepository = serde_json::from_value(v)
                .with_context(|| format!("GitHub's answer for {o}/{n}"))?;
            let head = meta
                .default_branch_ref
                .as_ref()
                .and_then(|r| r.target.as_ref())
                .map(|t| t.oid.clone());
            out.push(Target { meta, head });
        }
    }
    Ok(out)
}

async fn org_repositories(
    client: &GithubClient,
    org: &str,
    include_forks: bool,
    include_archived: bool,
    outcomes: &mut Vec<RepoOutcome>,
) -> anyhow::Result<Vec<Target>> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Page {
        organization: Option<Org>,
    }
    #[derive(Deserialize)]
    struct Org {
        repositories: Conn,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Conn {
        page_info: PageInfo,
        nodes: Vec<GqlRepository>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct PageInfo {
        has_next_page: bool,
        end_cursor: Option<String>,
    }
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page: Page = client
            .graphql(
                ORG_GIT_REPOSITORIES,
                json!({"org": org, "cursor": cursor}),
                false,
            )
            .await
            .with_context(|| format!("listing the repositories of {org}"))?;
        let conn = page
            .organization
            .ok_or_else(|| anyhow::anyhow!("GitHub does not know the organization {org}"))?
            .repositories;
        for meta in conn.nodes {
            if (meta.is_fork && !include_forks) || (meta.is_archived && !include_archived) {
                outcomes.push(RepoOutcome {
                    repository: format!("{}/{}", meta.owner.login, meta.name),
                    repository_id: Some(meta.database_id),
                    status: "skipped".into(),
                    ..Default::default()
                });
                continue;
            }
            let head = meta
                .default_branch_ref
                .as_ref()
                .and_then(|r| r.target.as_ref())
                .map(|t| t.oid.clone());
            out.push(Target { meta, head });
        }
        if !conn.page_info.has_next_page {
            break;
        }
        cursor = conn.page_info.end_cursor;
    }
    Ok(out)
}

/// The `owner/name` of the `n` most-starred repositories in `repo_stars`.
async fn top_starred(wh: &dyn Warehouse, n: u64) -> anyhow::Result<Vec<(String, String)>> {
    let rows = wh
        .query(&format!(
            "SELECT name_with_owner FROM repo_stars ORDER BY stargazer_count DESC, repo_id LIMIT {n}"
        ))
        .await
        .context("reading repo_stars (run `ghstats stars` first)")?;
    let mut out = Vec::new();
    for r in rows {
        let name = r
            .get("name_with_owner")
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        if let Ok(p) = parse_repo(name) {
            out.push(p);
        }
    }
    Ok(out)
}

/// Runs the job over `opts.selection`.
pub async fn run(
    client: &GithubClient,
    lake: &Lake,
    wh: Arc<dyn Warehouse>,
    opts: Arc<Options>,
    distinct_budgets: u64,
) -> anyhow::Result<CommitsResult> {
    let mut outcomes: Vec<RepoOutcome> = Vec::new();
    let targets = match &opts.selection {
        Selection::Repos(names) => lookup(client, names, &mut outcomes).await?,
        Selection::Org {
            org,
            include_forks,
            include_archived,
        } => {
            org_repositories(
                client,
                org,
                *include_forks,
                *include_archived,
                &mut outcomes,
            )
            .await?
        }
        Selection::TopStarred(n) => {
            let names = top_starred(wh.as_ref(), *n).await?;
            if names.is_empty() {
                anyhow::bail!("repo_stars has no repositories: run `ghstats stars` first");
            }
            lookup(client, &names, &mut outcomes).await?
        }
    };
    opts.progress
        .repositories
        .store(targets.len() as u64, Ordering::Relaxed);
    std::fs::create_dir_all(&opts.cache_dir)
        .with_context(|| format!("creating the git cache {}", opts.cache_dir.display()))?;
    let git_fetches = Arc::new(AtomicU64::new(0));
    let sem = Arc::new(tokio::sync::Semaphore::new(opts.workers.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for t in targets {
        let permit = sem.clone().acquire_owned().await?;
        let (client, lake, wh, opts, fetches) = (
            client.clone(),
            lake.clone(),
            wh.clone(),
            opts.clone(),
            git_fetches.clone(),
        );
        tasks.spawn(async move {
            let _permit = permit;
            let name = format!("{}/{}", t.meta.owner.login, t.meta.name);
            let id = t.meta.database_id;
            let out = if opts.stopped() {
                RepoOutcome {
                    repository: name.clone(),
                    repository_id: Some(id),
                    status: "partial".into(),
                    ..Default::default()
                }
            } else {
                match repository(&client, &lake, wh.as_ref(), &opts, t, &fetches).await {
                    Ok(o) => o,
                    Err(e) => {
                        tracing::warn!(repository = name, error = %format!("{e:#}"), "Repository failed; the others go on.");
                        RepoOutcome {
                            repository: name.clone(),
                            repository_id: Some(id),
                            status: "failed".into(),
                            error: Some(format!("{e:#}")),
                            ..Default::default()
                        }
                    }
                }
            };
            opts.progress.repositories_done.fetch_add(1, Ordering::Relaxed);
            out
        });
    }
    while let Some(r) = tasks.join_next().await {
        outcomes.push(r.context("a repository's task panicked")?);
    }
    outcomes.sort_by(|a, b| a.repository.cmp(&b.repository));
    let count = |s: &str| outcomes.iter().filter(|o| o.status == s).count() as u64;
    let failed = count("failed");
    let partial = count("partial");
    let worked = outcomes.iter().filter(|o| o.status != "skipped").count() as u64;
    let status = if worked > 0 && failed == worked {
        "failed"
    } else if failed > 0 || partial > 0 {
        "partial"
    } else {
        "completed"
    };
    Ok(CommitsResult {
        collection_id: opts.collection_id.clone(),
        status: status.into(),
        repositories: outcomes.len() as u64,
        repositories_updated: outcomes
            .iter()
            .filter(|o| matches!(o.status.as_str(), "updated" | "force_pushed" | "rebuilt"))
            .count() as u64,
        repositories_unchanged: count("unchanged"),
        repositories_failed: failed,
        commits: outcomes.iter().map(|o| o.commits).sum(),
        file_changes: outcomes.iter().map(|o| o.file_changes).sum(),
        file_states: outcomes.iter().map(|o| o.file_states).sum(),
        months_written: outcomes.iter().map(|o| o.months.len() as u64).sum(),
        force_pushed: outcomes
            .iter()
            .filter(|o| o.status == "force_pushed")
            .map(|o| o.repository.clone())
            .collect(),
        distinct_budgets,
        api_cost: client.cost(),
        git_fetches: git_fetches.load(Ordering::Relaxed),
        details: outcomes,
    })
}

/// How the new commits relate to what the lake holds.
enum Mode {
    /// Commits on top of the last processed one (or the first run).
    Forward,
    /// The last processed commit left the branch: these commits (and their months) go.
    ForcePushed(HashMap<String, DateTime<Utc>>),
    /// What the lake holds cannot be told apart from the branch: every month is recomputed.
    Rebuild,
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, GitError> + Send + 'static,
) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .context("a git task panicked")?
        .map_err(anyhow::Error::from)
}

async fn repository(
    client: &GithubClient,
    lake: &Lake,
    wh: &dyn Warehouse,
    opts: &Options,
    t: Target,
    fetches: &AtomicU64,
) -> anyhow::Result<RepoOutcome> {
    let meta = t.meta;
    let full_name = format!("{}/{}", meta.owner.login, meta.name);
    let mut out = RepoOutcome {
        repository: full_name.clone(),
        repository_id: Some(meta.database_id),
        head: t.head.clone(),
        ..Default::default()
    };
    let stored = StoredState::read(lake, meta.database_id).await?;
    let last = stored
        .as_ref()
        .and_then(|s| s.repository.last_commit_sha.clone());
    out.previous_head = last.clone();
    let mut state = StoredState {
        repository: RepositoryState {
            repo_id: meta.database_id,
            node_id: meta.id.clone(),
            organization: meta.owner.login.clone(),
            repository: meta.name.clone(),
            is_archived: meta.is_archived,
            is_fork: meta.is_fork,
            is_private: meta.is_private,
            default_branch: meta.default_branch_ref.as_ref().map(|r| r.name.clone()),
            created_at: meta.created_at,
            updated_at: meta.updated_at,
            pushed_at: meta.pushed_at,
            last_commit_sha: last.clone(),
            last_commit_at: stored.as_ref().and_then(|s| s.repository.last_commit_at),
            collected_at: Utc::now(),
            collection_id: opts.collection_id.clone(),
        },
        unloaded_months: stored.map(|s| s.unloaded_months).unwrap_or_default(),
    };
    // Months an earlier run wrote but did not load go in first.
    if !state.unloaded_months.is_empty() {
        let months: Vec<String> = state.unloaded_months.iter().cloned().collect();
        let mut parts = Vec::new();
        for m in &months {
            parts.push(partition::stored_month(lake, meta.database_id, m).await?);
        }
        wh.load_commit_months(lake, &state.repository, &parts)
            .await
            .context("loading months an earlier run wrote")?;
        state.unloaded_months.clear();
        state.write(lake).await?;
    }
    let (Some(branch), Some(remote_head)) = (state.repository.default_branch.clone(), t.head)
    else {
        out.status = "empty".into();
        return Ok(out);
    };
    if opts.until.is_none() && last.as_deref() == Some(remote_head.as_str()) {
        out.status = "unchanged".into();
        return Ok(out);
    }

    // Fetch.
    let dir = opts.cache_dir.join(format!("{}.git", meta.database_id));
    let url = format!(
        "{}/{}/{}.git",
        opts.git_url.as_str().trim_end_matches('/'),
        meta.owner.login,
        meta.name
    );
    let created = {
        let dir = dir.clone();
        blocking(move || git::init_cache(&dir)).await?
    };
    let depth = if !created {
        Depth::Incremental
    } else if let Some(at) = state.repository.last_commit_at {
        // A new cache (Cloud Run's temporary one) for a repository the lake has: what the
        // branch gained since the last processed commit, a day of slack for clock skew.
        Depth::Since(at - chrono::Duration::days(1))
    } else if let Some(since) = opts.since {
        Depth::Since(since)
    } else {
        Depth::Full
    };
    let token = opts.git_token.clone();
    let mut head = {
        let (dir, url, branch, token) = (dir.clone(), url.clone(), branch.clone(), token.clone());
        blocking(move || git::fetch(&dir, &url, &branch, depth, token.as_ref())).await?
    };
    fetches.fetch_add(
        if matches!(depth, Depth::Since(_)) {
            2
        } else {
            1
        },
        Ordering::Relaxed,
    );
    out.fetched = true;
    if let Some(until) = opts.until {
        let (d, h) = (dir.clone(), head.clone());
        match blocking(move || git::head_at(&d, &h, until)).await? {
            Some(h) => head = h,
            None => {
                out.status = "unchanged".into();
                return Ok(out);
            }
        }
    }
    out.head = Some(head.clone());
    if last.as_deref() == Some(head.as_str()) {
        out.status = "unchanged".into();
        return Ok(out);
    }
    if let (Some(l), Some(_)) = (&last, opts.until) {
        // A snapshot older than what is stored: nothing to add, and nothing was dropped.
        let (d, h, l) = (dir.clone(), head.clone(), l.clone());
        if git::has_commit(&dir, &l) && blocking(move || git::is_ancestor(&d, &h, &l)).await? {
            out.status = "unchanged".into();
            return Ok(out);
        }
    }

    // What changed.
    let mode = match &last {
        None => {
            if partition::stored_months(lake, meta.database_id)
                .await?
                .is_empty()
            {
                Mode::Forward
            } else {
                Mode::Rebuild
            }
        }
        Some(l) => {
            let mut present = git::has_commit(&dir, l);
            if !present {
                let (d, u, l2, tk) = (dir.clone(), url.clone(), l.clone(), token.clone());
                present = blocking(move || git::fetch_commit(&d, &u, &l2, tk.as_ref())).await?;
                fetches.fetch_add(1, Ordering::Relaxed);
            }
            if !present {
                Mode::Rebuild
            } else {
                let (d, l2, h) = (dir.clone(), l.clone(), head.clone());
                if blocking(move || git::is_ancestor(&d, &l2, &h)).await? {
                    Mode::Forward
                } else {
                    let (d, l2, h) = (dir.clone(), l.clone(), head.clone());
                    let dropped = blocking(move || {
                        let shas = git::new_commits(&d, &l2, &[h.as_str()])?;
                        let parsed = commit_times(&d, &shas)?;
                        Ok(parsed)
                    })
                    .await?;
                    Mode::ForcePushed(dropped)
                }
            }
        }
    };
    // A rebuild recomputes every stored month, so it needs the whole history (a shallow
    // cache would make the months hold only its window); so does a first read of a repository
    // without --since from a cache another lake left shallow.
    let needs_whole = matches!(mode, Mode::Rebuild) || (last.is_none() && opts.since.is_none());
    if needs_whole && git::is_shallow(&dir) {
        let (d, u, b, tk) = (dir.clone(), url.clone(), branch.clone(), token.clone());
        let fetched = blocking(move || git::make_whole(&d, &u, &b, tk.as_ref())).await?;
        fetches.fetch_add(1, Ordering::Relaxed);
        if opts.until.is_none() {
            head = fetched;
            out.head = Some(head.clone());
        }
    }
    let exclude: Vec<String> = match (&mode, &last) {
        (Mode::Forward | Mode::ForcePushed(_), Some(l)) => vec![l.clone()],
        _ => Vec::new(),
    };
    let batch_size = opts.batch_commits.max(1);
    let (new, cuts) = {
        let (d, h) = (dir.clone(), head.clone());
        blocking(move || {
            let ex: Vec<&str> = exclude.iter().map(String::as_str).collect();
            let new = git::new_commits(&d, &h, &ex)?;
            let fp = git::first_parent_chain(&d, &h, &ex)?;
            // A cut is taken only where the commits before it are exactly the cut commit's
            // new ancestors, so the recorded place always stands for what is stored.
            // Grafted commits of a shallow cache are not read, so they are not counted either.
            let grafted: Vec<String> = git::shallow_commits(&d).into_iter().collect();
            let mut not: Vec<&str> = ex.clone();
            not.extend(grafted.iter().map(String::as_str));
            let cuts = exact_cuts(&new, &fp, batch_size, |sha| git::count_new(&d, sha, &not))?;
            Ok((new, cuts))
        })
        .await?
    };
    tracing::info!(
        repository = full_name,
        new = new.len(),
        "Reading new commits."
    );

    // Authors' GitHub accounts, from the history of the head (about 1 point per 100).
    let authors = authors(client, &meta.owner.login, &meta.name, &head, &new).await?;
    out.authors_unresolved = new.iter().filter(|s| !authors.contains_key(*s)).count() as u64;

    let dropped: HashSet<String> = match &mode {
        Mode::ForcePushed(d) => d.keys().cloned().collect(),
        _ => HashSet::new(),
    };
    out.dropped_commits = dropped.len() as u64;
    // Months to rewrite before any new commit lands: those of dropped commits, and on a
    // rebuild every stored month (emptied unless the new commits fill them again).
    let mut first_months: BTreeSet<String> = match &mode {
        Mode::ForcePushed(d) => d.values().map(|t| rows::month_of(*t)).collect(),
        Mode::Rebuild => partition::stored_months(lake, meta.database_id)
            .await?
            .into_iter()
            .collect(),
        Mode::Forward => BTreeSet::new(),
    };
    let mut replaced: HashSet<String> = HashSet::new();
    let mut stopped_early = false;
    let batches = batches(&new, &cuts);
    for batch in batches {
        if opts.stopped() {
            stopped_early = true;
            break;
        }
        let rows = read_batch(
            &dir,
            batch,
            opts.readers,
            meta.database_id,
            &full_name,
            &authors,
        )
        .await?;
        let mut months: BTreeMap<String, MonthRows> = BTreeMap::new();
        for m in std::mem::take(&mut first_months) {
            months.entry(m).or_default();
        }
        let last_read = rows.last.clone();
        for (commit, changes, states) in rows.commits {
            out.commits += 1;
            out.file_changes += changes.len() as u64;
            out.file_states += states.len() as u64;
            opts.progress.commits.fetch_add(1, Ordering::Relaxed);
            opts.progress
                .files
                .fetch_add(changes.len() as u64, Ordering::Relaxed);
            let m = months.entry(commit.commit_month.clone()).or_default();
            m.commits.push(commit);
            m.file_changes.extend(changes);
            m.file_states.extend(states);
        }
        let mut written: Vec<MonthPartition> = Vec::new();
        for (month, rows) in months {
            let rewrite = if matches!(mode, Mode::Rebuild) && replaced.insert(month.clone()) {
                Rewrite::Replace
            } else {
                Rewrite::Merge
            };
            written.push(
                partition::rewrite_month(lake, meta.database_id, &month, rows, &dropped, rewrite)
                    .await?,
            );
            if !out.months.contains(&month) {
                out.months.push(month);
            }
        }
        // The place moves to the batch's last commit: every commit it reaches is stored
        // (parents come before children in the list).
        if let Some((sha, at)) = last_read {
            state.repository.last_commit_sha = Some(sha);
            state.repository.last_commit_at = Some(at);
        } else if batch.is_empty() {
            // No new commit (a force-push back to an older commit): the head itself.
            let d = dir.clone();
            let h = head.clone();
            let t = blocking(move || commit_times(&d, std::slice::from_ref(&h))).await?;
            state.repository.last_commit_sha = Some(head.clone());
            state.repository.last_commit_at = t.get(&head).copied();
        }
        state.repository.collected_at = Utc::now();
        state
            .unloaded_months
            .extend(written.iter().map(|w| w.month.clone()));
        state.write(lake).await?;
        if let Some(sha) = state.repository.last_commit_sha.clone() {
            let d = dir.clone();
            blocking(move || git::mark_processed(&d, &sha)).await?;
        }
        wh.load_commit_months(lake, &state.repository, &written)
            .await
            .with_context(|| format!("loading {full_name}'s months into the warehouse"))?;
        state.unloaded_months.clear();
        state.write(lake).await?;
    }
    out.months.sort();
    out.status = if stopped_early {
        "partial"
    } else {
        match mode {
            Mode::Forward => "updated",
            Mode::ForcePushed(_) => "force_pushed",
            Mode::Rebuild => "rebuilt",
        }
    }
    .into();
    Ok(out)
}

/// The rows of a batch of commits, in the batch's order, and its last commit with its
/// committer date.
pub struct BatchRows {
    pub commits: Vec<(CommitRow, Vec<FileChangeRow>, Vec<FileStateRow>)>,
    pub last: Option<(String, DateTime<Utc>)>,
}

/// Reads `batch` (commits of the cache at `dir`) with up to `readers` git processes, sizes
/// their new blobs (`git cat-file --batch-check`), and makes their rows; `authors` maps a
/// commit to its author's GitHub account (`None`: not linked; absent: not known).
pub async fn read_batch(
    dir: &std::path::Path,
    batch: &[String],
    readers: usize,
    repository_id: i64,
    full_name: &str,
    authors: &HashMap<String, Option<(i64, String)>>,
) -> anyhow::Result<BatchRows> {
    let parsed = read_parallel(dir, batch, readers).await?;
    let sizes = {
        let blobs: Vec<String> = parsed
            .iter()
            .flat_map(|c| c.files.iter())
            .filter(|f| !f.is_gitlink())
            .filter_map(|f| f.new_sha.clone())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let d = dir.to_path_buf();
        blocking(move || git::blob_sizes(&d, &blobs)).await?
    };
    let last = parsed.last().map(|c| (c.sha.clone(), c.commit_at));
    let commits = parsed
        .iter()
        .map(|c| to_rows(repository_id, full_name, c, authors.get(&c.sha), &sizes))
        .collect();
    Ok(BatchRows { commits, last })
}

/// Where to cut `new` (parents first) into batches of about `size`: after index `i` when the
/// batch has `size` commits, `new[i]` is on the head's first-parent chain, and `count(new[i])`
/// (its ancestors among the new commits, itself included) is `i + 1`: the commits up to the cut
/// are exactly the cut commit's new ancestors, so recording it as processed stands for all of
/// them and for nothing else (git's topological order nearly always keeps a merged branch
/// just before its merge; where it does not, the next candidate is tried).
pub fn exact_cuts<E>(
    new: &[String],
    first_parent: &HashSet<String>,
    size: usize,
    mut count: impl FnMut(&str) -> Result<usize, E>,
) -> Result<Vec<usize>, E> {
    let mut cuts = Vec::new();
    let mut start = 0;
    for (i, sha) in new.iter().enumerate() {
        if i + 1 - start >= size && first_parent.contains(sha) && count(sha)? == i + 1 {
            cuts.push(i);
            start = i + 1;
        }
    }
    Ok(cuts)
}

/// `new` cut after each index of `cuts`; one empty batch when there is nothing new (a
/// force-push back to an older commit still rewrites months).
pub fn batches<'a>(new: &'a [String], cuts: &[usize]) -> Vec<&'a [String]> {
    if new.is_empty() {
        return vec![&[]];
    }
    let mut out = Vec::new();
    let mut start = 0;
    for &c in cuts {
        out.push(&new[start..=c]);
        start = c + 1;
    }
    if start < new.len() {
        out.push(&new[start..]);
    }
    out
}

/// Committer dates of `shas`.
fn commit_times(
    dir: &std::path::Path,
    shas: &[String],
) -> Result<HashMap<String, DateTime<Utc>>, GitError> {
    if shas.is_empty() {
        return Ok(HashMap::new());
    }
    let mut c = git::git(dir, None);
    c.args(["log", "--no-walk=unsorted", "--stdin", "--format=%H %ct"]);
    // Fed from a thread: thousands of dropped commits would fill both pipes otherwise.
    let out = git::run_fed(c, "log", shas)?;
    Ok(String::from_utf8_lossy(&out)
        .lines()
        .filter_map(|l| {
            let (sha, t) = l.split_once(' ')?;
            Some((
                sha.to_string(),
                DateTime::from_timestamp(t.trim().parse().ok()?, 0)?,
            ))
        })
        .collect())
}

/// Reads `batch` with up to `readers` git processes, each on a contiguous slice; the result is
/// in `batch`'s order.
async fn read_parallel(
    dir: &std::path::Path,
    batch: &[String],
    readers: usize,
) -> anyhow::Result<Vec<ParsedCommit>> {
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    let per = batch.len().div_ceil(readers.max(1)).max(1);
    let mut handles = Vec::new();
    for slice in batch.chunks(per) {
        let (d, s) = (dir.to_path_buf(), slice.to_vec());
        handles.push(tokio::task::spawn_blocking(move || {
            git::read_commits(&d, &s)
        }));
    }
    let mut out = Vec::with_capacity(batch.len());
    for h in handles {
        out.extend(h.await.context("a git reader panicked")??);
    }
    Ok(out)
}

/// The rows of one parsed commit.
fn to_rows(
    repository_id: i64,
    full_name: &str,
    c: &ParsedCommit,
    author: Option<&Option<(i64, String)>>,
    sizes: &HashMap<String, i64>,
) -> (CommitRow, Vec<FileChangeRow>, Vec<FileStateRow>) {
    let month = rows::month_of(c.commit_at);
    let mut changes = Vec::with_capacity(c.files.len());
    let mut states = Vec::new();
    let (mut added, mut deleted) = (0i64, 0i64);
    for f in &c.files {
        let (a, d) = f.lines.unwrap_or((0, 0));
        added += a;
        deleted += d;
        changes.push(FileChangeRow {
            repository_id,
            commit_sha: c.sha.clone(),
            file_path: f.path.clone(),
            previous_path: f.previous_path.clone(),
            file_sha: f.new_sha.clone(),
            commit_at: c.commit_at,
            file_type: rows::file_type(&f.path),
            status: f.status_name().to_string(),
            lines_added: a,
            lines_deleted: d,
            changes: a + d,
            is_binary: f.lines.is_none(),
            commit_month: month.clone(),
        });
        if let Some(sha) = &f.new_sha {
            states.push(FileStateRow {
                repository_id,
                commit_sha: c.sha.clone(),
                file_path: f.path.clone(),
                file_sha: sha.clone(),
                commit_at: c.commit_at,
                file_size: if f.is_gitlink() {
                    None
                } else {
                    sizes.get(sha).copied()
                },
                raw_url: rows::raw_url(full_name, &c.sha, &f.path),
                s3_file_location: None,
                commit_month: month.clone(),
            });
        }
    }
    let user = author.and_then(|a| a.clone());
    let commit = CommitRow {
        repository_id,
        repository: full_name.to_string(),
        commit_sha: c.sha.clone(),
        commit_author_id: user.as_ref().map(|u| u.0),
        author_login: user.map(|u| u.1),
        author_name: c.author_name.clone(),
        author_email: c.author_email.clone(),
        committer_name: c.committer_name.clone(),
        commit_at: c.commit_at,
        authored_at: c.authored_at,
        commit_message: c.message.clone(),
        num_files_changed: c.files.len() as i64,
        num_lines_added: added,
        num_lines_deleted: deleted,
        parent_commits: c.parents.clone(),
        is_merge: c.parents.len() > 1,
        commit_month: month,
    };
    (commit, changes, states)
}

/// The GitHub account of each new commit's author, from the head's history: pages of up to
/// 100 until every new commit has been seen (or a few pages past what they need). A commit
/// listed with no linked account maps to `None`; one not listed is absent.
async fn authors(
    client: &GithubClient,
    owner: &str,
    name: &str,
    head: &str,
    new: &[String],
) -> anyhow::Result<HashMap<String, Option<(i64, String)>>> {
    #[derive(Deserialize)]
    struct Data {
        repository: Option<Repo>,
    }
    #[derive(Deserialize)]
    struct Repo {
        object: Option<Obj>,
    }
    #[derive(Deserialize)]
    struct Obj {
        history: Option<History>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct History {
        page_info: PageInfo,
        nodes: Vec<Node>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct PageInfo {
        has_next_page: bool,
        end_cursor: Option<String>,
    }
    #[derive(Deserialize)]
    struct Node {
        oid: String,
        author: Option<Author>,
    }
    #[derive(Deserialize)]
    struct Author {
        user: Option<User>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct User {
        database_id: Option<i64>,
        login: String,
    }
    let mut out = HashMap::with_capacity(new.len());
    if new.is_empty() {
        return Ok(out);
    }
    let wanted: HashSet<&str> = new.iter().map(String::as_str).collect();
    let mut seen = 0usize;
    let mut cursor: Option<String> = None;
    // Commits the history lists before the last new one: old ones when a long-lived branch
    // was merged. A few pages of slack, then the rest stay unresolved.
    let max_pages = new.len().div_ceil(100) + 5;
    for _ in 0..max_pages {
        let first = (new.len() - seen).clamp(1, 100);
        let data: Data = client
            .graphql(
                COMMIT_HISTORY,
                json!({"owner": owner, "name": name, "head": head, "first": first, "cursor": cursor}),
                false,
            )
            .await
            .with_context(|| format!("reading the authors of {owner}/{name}'s history"))?;
        let Some(h) = data
            .repository
            .and_then(|r| r.object)
            .and_then(|o| o.history)
        else {
            break;
        };
        for n in h.nodes {
            if wanted.contains(n.oid.as_str()) {
                let user = n
                    .author
                    .and_then(|a| a.user)
                    .and_then(|u| Some((u.database_id?, u.login)));
                if out.insert(n.oid, user).is_none() {
                    seen += 1;
                }
            }
        }
        if seen >= new.len() || !h.page_info.has_next_page {
            break;
        }
        cursor = h.page_info.end_cursor;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lookup_query_repeats_the_files_selection() {
        let q = repository_query(3);
        assert!(q.contains("query GitRepository($owner0: String!, $name0: String!, $owner1: String!, $name1: String!, $owner2: String!, $name2: String!)"));
        assert!(q.contains("  r2: repository(owner: $owner2, name: $name2) {"));
        assert!(q.contains("fragment GitRepositoryFields on Repository"));
        assert_eq!(repository_query(1), GIT_REPOSITORY);
    }

    #[test]
    fn batches_end_where_the_commits_before_are_the_cut_commits_ancestors() {
        // a <- b <- m (merging s1 <- s2, based on a) <- c <- d, the side branch listed before
        // b as git's order may do: a cut after b would record b while s1 and s2, which b does
        // not reach, are stored.
        let new: Vec<String> = ["a", "s1", "s2", "b", "m", "c", "d"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let fp: HashSet<String> = ["a", "b", "m", "c", "d"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let ancestors = |sha: &str| -> Result<usize, ()> {
            Ok(match sha {
                "a" => 1,
                "s1" => 2,
                "s2" => 3,
                "b" => 2,
                "m" => 5,
                "c" => 6,
                _ => 7,
            })
        };
        let cuts = exact_cuts(&new, &fp, 3, ancestors).unwrap();
        assert_eq!(
            cuts,
            vec![4],
            "not after b (index 3): it reaches a and b only"
        );
        assert_eq!(batches(&new, &cuts), vec![&new[0..5], &new[5..7]]);
        assert_eq!(
            exact_cuts(&new, &fp, 1, ancestors).unwrap(),
            vec![0, 4, 5, 6]
        );
        assert_eq!(batches(&new, &[]), vec![&new[..]]);
        assert_eq!(batches(&[], &[]), vec![&[] as &[String]]);
    }

    #[test]
    fn repository_names_are_checked() {
        assert_eq!(parse_repo(" a/b.c ").unwrap(), ("a".into(), "b.c".into()));
        for bad in ["a", "a/", "/b", "a/b/c", "a/..", "a b/c", "a/b?x"] {
            assert!(parse_repo(bad).is_err(), "{bad}");
        }
    }
}
