//! The collect, backfill and resume jobs: plan the repositories, walk each one's pull requests
//! inside the window, write rows as chunks, and record each page in the checkpoint once its
//! chunks are written (chunks first). The checkpoint is written at most once per
//! [`CHECKPOINT_INTERVAL`] and always at the end, so a resumed collection refetches at most
//! about a second of pages per repository.

use super::progress::Progress;
use crate::config::RepoScope;
use crate::github::pulls::{
    list_repositories, pull_requests_commented_since, LearnedSizes, SkippedPullRequest, WalkPage,
    WalkState,
};
use crate::github::types::RepositoryNode;
use crate::github::{ApiCost, GithubClient, GithubError, PageSizer, PullRequestWalk, Window};
use crate::lake::checkpoint::{CollectionKind, RepoProgress, RepoState, Status};
use crate::lake::{
    new_collection_id, Checkpoint, CheckpointError, CheckpointStore, ChunkInfo, ChunkWriter,
    Damaged, Lake,
};
use crate::names::{OrgName, RepoName};
use crate::rows::{self, Provenance};
use crate::tables;
use anyhow::Context;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::Mutex;
use tracing::{info, warn};

/// What a collection covers and how it runs.
#[derive(Clone, Debug)]
pub struct CollectOptions {
    pub org: OrgName,
    pub kind: CollectionKind,
    pub window: Window,
    pub scope: RepoScope,
    pub chunk_size: u32,
    pub max_workers: u32,
    pub page_size: u32,
    pub page_size_max: u32,
    /// The run stops at a page boundary once this instant has passed.
    pub deadline: Instant,
    /// Any of these set stops the run at the next page boundary (SIGTERM, a lost lock).
    pub stop: Vec<Arc<AtomicBool>>,
}

impl CollectOptions {
    fn should_stop(&self) -> bool {
        Instant::now() >= self.deadline || self.stop.iter().any(|s| s.load(Ordering::Relaxed))
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct RepoSummary {
    pub name: String,
    pub state: RepoState,
    pub pull_requests: u64,
    pub rows: BTreeMap<String, u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Pull requests GitHub could not serve, stepped past; the next collection reads them
    /// again by number.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_collectable: Vec<SkippedPullRequest>,
}

#[derive(Clone, Debug, Serialize)]
pub struct BudgetLeft {
    pub rest: Option<u64>,
    pub graphql: Option<u64>,
}

/// What a collection did.
#[derive(Clone, Debug, Serialize)]
pub struct CollectionResult {
    pub collection_id: String,
    pub status: Status,
    pub window: Window,
    pub repos: Vec<RepoSummary>,
    /// Rows written per table.
    pub rows: BTreeMap<String, u64>,
    pub chunks: usize,
    pub api_cost: ApiCost,
    pub budget_left: BudgetLeft,
    /// What loading the collection into the warehouse did, when it was loaded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load: Option<super::load::LoadResult>,
    /// Something the caller should know, e.g. that a resumed collection was already complete.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The window `collect` covers: the last `hours`, or `since..until` (default now), or the
/// default lookback. Times are whole seconds; a window must be non-empty and not start in the
/// future.
pub fn resolve_window(
    now: DateTime<Utc>,
    hours: Option<u32>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    default_days: u32,
) -> anyhow::Result<Window> {
    use chrono::{Duration, DurationRound};
    let now = now.duration_trunc(Duration::seconds(1)).unwrap_or(now);
    let (since, until) = match (hours, since) {
        (Some(h), _) => (now - Duration::hours(h as i64), now),
        (None, Some(s)) => (s, until.unwrap_or(now)),
        (None, None) => (now - Duration::days(default_days as i64), now),
    };
    if since > now {
        anyhow::bail!("the window starts in the future ({since}); --since must be before now");
    }
    if until > now {
        anyhow::bail!("the window ends in the future ({until}); --until must not be after now");
    }
    if since >= until {
        anyhow::bail!("the window is empty: --since ({since}) must be before --until ({until})");
    }
    Ok(Window { since, until })
}

/// GitHub's start (its public launch was in April 2008): no pull request is older, so a
/// backfill reaches back at most to here.
pub fn github_start() -> DateTime<Utc> {
    DateTime::from_timestamp(1_199_145_600, 0).unwrap_or_default() // 2008-01-01T00:00:00Z
}

/// The window of `backfill`: the last `days` days, or everything since [`github_start`] with
/// `all`. Exactly one of them; `days` may reach back to GitHub's start and no further.
pub fn backfill_window(now: DateTime<Utc>, days: Option<u32>, all: bool) -> anyhow::Result<Window> {
    use chrono::{Duration, DurationRound};
    let now = now.duration_trunc(Duration::seconds(1)).unwrap_or(now);
    let start = github_start();
    let max_days = (now - start).num_days().max(1);
    let since = match (days, all) {
        (Some(_), true) => anyhow::bail!("give either days or all, not both"),
        (None, false) => anyhow::bail!(
            "give days (e.g. 180) or all (everything since 2008-01-01, GitHub's start)"
        ),
        (None, true) => start,
        (Some(0), false) => anyhow::bail!("days must be positive, not 0"),
        (Some(d), false) if i64::from(d) > max_days => anyhow::bail!(
            "days {d} reaches back before 2008-01-01, GitHub's start: give at most {max_days} days today, or all"
        ),
        (Some(d), false) => now - Duration::days(i64::from(d)),
    };
    Ok(Window { since, until: now })
}

/// Which of the organization's repositories the scope selects.
pub fn plan_repositories(
    all: Vec<RepositoryNode>,
    scope: &RepoScope,
) -> anyhow::Result<Vec<RepositoryNode>> {
    if !scope.repos.is_empty() {
        let mut picked = Vec::new();
        let mut all = all;
        for want in &scope.repos {
            let i = all
                .iter()
                .position(|r| r.name.eq_ignore_ascii_case(want.as_str()))
                .with_context(|| {
                    format!(
                        "repository {want} is not in the organization (or the token cannot see it)"
                    )
                })?;
            picked.push(all.swap_remove(i));
        }
        return Ok(picked);
    }
    Ok(all
        .into_iter()
        .filter(|r| {
            (scope.include_archived || !r.is_archived) && (scope.include_forks || !r.is_fork)
        })
        .collect())
}

/// How often at most the checkpoint is written while a collection runs: GCS takes about one
/// write per second to one object name. The newest state wins; the last one is always written
/// when the run ends (completed, failed, out of budget or stopped).
pub const CHECKPOINT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// The checkpoint in memory, and when it was last written.
struct Tracked {
    cp: Checkpoint,
    written_at: Instant,
    /// Changed since it was last written.
    dirty: bool,
}

impl Tracked {
    /// Writes the checkpoint when it changed and the last write is [`CHECKPOINT_INTERVAL`] old
    /// (or `now_anyway`). Every chunk it names was written before it was recorded, so whatever
    /// state is written names only chunks that exist.
    async fn write(&mut self, store: &CheckpointStore, now_anyway: bool) -> anyhow::Result<()> {
        if !now_anyway && (!self.dirty || self.written_at.elapsed() < CHECKPOINT_INTERVAL) {
            return Ok(());
        }
        store.save(&self.cp).await?;
        self.written_at = Instant::now();
        self.dirty = false;
        Ok(())
    }
}

struct Shared {
    checkpoint: Mutex<Tracked>,
    /// Page sizes found too large, for every repository of the run.
    learned: Arc<LearnedSizes>,
    store: CheckpointStore,
    /// The API cost of earlier runs of a resumed collection.
    cost_before: ApiCost,
}

impl Shared {
    fn cost(&self, client: &GithubClient) -> ApiCost {
        let now = client.cost();
        ApiCost {
            rest_requests: self.cost_before.rest_requests + now.rest_requests,
            graphql_queries: self.cost_before.graphql_queries + now.graphql_queries,
            graphql_points: self.cost_before.graphql_points + now.graphql_points,
        }
    }
}

/// Runs one collection from the first page, under a new collection id.
pub async fn collect(
    client: &GithubClient,
    lake: &Lake,
    opts: &CollectOptions,
    progress: &Progress,
) -> anyhow::Result<CollectionResult> {
    start(client, lake, opts, &new_collection_id(Utc::now()), progress).await
}

/// Runs one collection from the first page, under `collection_id` (made by
/// [`new_collection_id`], e.g. to take the lock in its name first).
pub async fn start(
    client: &GithubClient,
    lake: &Lake,
    opts: &CollectOptions,
    collection_id: &str,
    progress: &Progress,
) -> anyhow::Result<CollectionResult> {
    let started = Utc::now();
    info!(collection_id = %collection_id, org = %opts.org, since = %opts.window.since, until = %opts.window.until, "Collection started.");
    progress.announce(collection_id);
    let listed = list_repositories(client, opts.org.as_str())
        .await
        .with_context(|| format!("listing the repositories of {}", opts.org))?;
    let planned = plan_repositories(listed, &opts.scope)?;
    // Pull requests GitHub could not serve in the collection before this one are read again.
    let mut retry: BTreeMap<String, Vec<SkippedPullRequest>> = BTreeMap::new();
    // Keyed by repository id (by name for a repository GitHub gave no id), so a rename keeps
    // them; those of repositories this run does not plan are carried on.
    let key = |id: Option<u64>, name: &str| match id {
        Some(id) => id.to_string(),
        None => format!("name:{name}"),
    };
    // Damaged checkpoints met here are set aside and logged; the job runner meets them first.
    if let (Some(prev), _) = newest(lake, &opts.org).await? {
        for r in prev.repos {
            let items: Vec<SkippedPullRequest> =
                r.walk.skipped.into_iter().chain(r.walk.retry).collect();
            if !items.is_empty() {
                retry.entry(key(r.id, &r.name)).or_default().extend(items);
            }
        }
        for (k, items) in prev.not_collectable_elsewhere {
            retry.entry(k).or_default().extend(items);
        }
    }
    let checkpoint = Checkpoint {
        schema_version: crate::lake::checkpoint::SCHEMA_VERSION,
        collection_id: collection_id.to_string(),
        organization: opts.org.to_string(),
        kind: opts.kind,
        window: opts.window,
        started_at: started,
        updated_at: started,
        status: Status::Running,
        repos: planned
            .iter()
            .map(|r| RepoProgress {
                id: r.database_id,
                name: r.name.clone(),
                state: RepoState::Pending,
                walk: WalkState {
                    retry: retry
                        .remove(&key(r.database_id, &r.name))
                        .unwrap_or_default(),
                    ..WalkState::default()
                },
                pull_requests: 0,
                rows: BTreeMap::new(),
                next_seq: BTreeMap::new(),
                error: None,
                repository: Some(r.clone()),
            })
            .collect(),
        chunks: Vec::new(),
        api_cost: client.cost(),
        errors: Vec::new(),
        resumes: 0,
        loaded: false,
        not_collectable_elsewhere: retry,
    };
    let store = CheckpointStore::new(lake.clone(), opts.org.clone());
    store.save(&checkpoint).await?;
    run(client, lake, opts, progress, checkpoint, ApiCost::default()).await
}

/// Continues an unfinished collection from its checkpoint: each repository from the page after
/// the last one whose chunks were written, failed repositories again. A completed collection
/// is left as it is, and the result says so. The window, kind and repositories are the
/// checkpoint's; `opts` gives the rest (chunk size, workers, deadline).
pub async fn resume(
    client: &GithubClient,
    lake: &Lake,
    opts: &CollectOptions,
    collection_id: &str,
    progress: &Progress,
) -> anyhow::Result<CollectionResult> {
    let cp = CheckpointStore::new(lake.clone(), opts.org.clone())
        .load(collection_id)
        .await
        .with_context(|| format!("resuming collection {collection_id}"))?;
    resume_from(client, lake, opts, cp, progress).await
}

/// [`resume`] from a checkpoint already read.
pub async fn resume_from(
    client: &GithubClient,
    lake: &Lake,
    opts: &CollectOptions,
    mut cp: Checkpoint,
    progress: &Progress,
) -> anyhow::Result<CollectionResult> {
    let collection_id = cp.collection_id.clone();
    let store = CheckpointStore::new(lake.clone(), opts.org.clone());
    if cp.status == Status::Completed {
        let mut result = result_of(&cp, client);
        result.note = Some(format!(
            "collection {collection_id} was already completed; nothing to resume"
        ));
        return Ok(result);
    }
    info!(collection_id, org = %opts.org, "Collection resumed.");
    progress.announce(&collection_id);
    let opts = CollectOptions {
        kind: cp.kind,
        window: cp.window,
        ..opts.clone()
    };
    // The API cost carries over: the checkpoint's so far plus this run's.
    let before = cp.api_cost;
    cp.status = Status::Running;
    cp.resumes += 1;
    store.save(&cp).await?;
    run(client, lake, &opts, progress, cp, before).await
}

/// The newest collection of `org`, when it did not complete (running when its process died,
/// partial, or failed), and the damaged checkpoints set aside on the way (see [`newest`]). Only
/// the newest is read: a new collection starts only once the one before it completed, or failed
/// again after every resume the job runner gives it.
pub async fn unfinished(
    lake: &Lake,
    org: &OrgName,
) -> anyhow::Result<(Option<Checkpoint>, Vec<Damaged>)> {
    let (cp, damaged) = newest(lake, org).await?;
    Ok((cp.filter(|cp| cp.status != Status::Completed), damaged))
}

/// The newest collection of `org` when it completed but is not (known to be) in the warehouse
/// (its load was interrupted, or it ran with `--no-load`), and the damaged checkpoints set aside
/// on the way (see [`newest`]).
pub async fn unloaded(
    lake: &Lake,
    org: &OrgName,
) -> anyhow::Result<(Option<Checkpoint>, Vec<Damaged>)> {
    let (cp, damaged) = newest(lake, org).await?;
    Ok((
        cp.filter(|cp| cp.status == Status::Completed && !cp.loaded),
        damaged,
    ))
}

/// Records that `collection_id`'s chunks are all in the warehouse. Only a run holding the
/// organization's lock calls it, so no other writer changes the checkpoint meanwhile.
pub async fn mark_loaded(lake: &Lake, org: &OrgName, collection_id: &str) -> anyhow::Result<()> {
    let store = CheckpointStore::new(lake.clone(), org.clone());
    let mut cp = store.load(collection_id).await?;
    if !cp.loaded {
        cp.loaded = true;
        store.save(&cp).await?;
    }
    Ok(())
}

/// The newest readable collection of `org`, whatever its status, and the damaged checkpoints
/// met on the way. A damaged checkpoint (truncated, corrupted) is set aside
/// ([`CheckpointStore::set_aside`]) and the one before it is read instead, so a damaged file
/// never blocks later collections. Setting aside writes storage: callers hold the
/// organization's lock.
pub async fn newest(
    lake: &Lake,
    org: &OrgName,
) -> anyhow::Result<(Option<Checkpoint>, Vec<Damaged>)> {
    let store = CheckpointStore::new(lake.clone(), org.clone());
    let mut ids: Vec<String> = lake
        .list(&lake.checkpoints_dir(org))
        .await?
        .into_iter()
        .filter_map(|(p, _)| {
            p.filename()
                .and_then(|f| f.strip_suffix(".json"))
                .filter(|id| crate::lake::is_collection_id(id))
                .map(str::to_string)
        })
        .collect();
    let mut damaged = Vec::new();
    loop {
        // Collection ids start with their UTC start time, to the second: the newest is among
        // those of the greatest second, and their checkpoints' start times decide between them.
        let Some(second) = ids.iter().map(|id| id[..16].to_string()).max() else {
            return Ok((None, damaged));
        };
        let mut newest: Option<Checkpoint> = None;
        for id in ids.iter().filter(|id| id.starts_with(&second)) {
            let cp = match store.load(id).await {
                Ok(cp) => cp,
                Err(CheckpointError::Damaged { reason, .. }) => {
                    damaged.push(store.set_aside(id, reason).await?);
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            if newest.as_ref().is_none_or(|n| {
                (cp.started_at, &cp.collection_id) > (n.started_at, &n.collection_id)
            }) {
                newest = Some(cp);
            }
        }
        if newest.is_some() {
            return Ok((newest, damaged));
        }
        // Every checkpoint of that second was damaged: the second before it.
        ids.retain(|id| !id.starts_with(&second));
    }
}

fn result_of(cp: &Checkpoint, client: &GithubClient) -> CollectionResult {
    let mut rows: BTreeMap<String, u64> = BTreeMap::new();
    for r in &cp.repos {
        for (t, n) in &r.rows {
            *rows.entry(t.clone()).or_default() += n;
        }
    }
    let (rest, graphql) = client.budget_left();
    CollectionResult {
        collection_id: cp.collection_id.clone(),
        status: cp.status,
        window: cp.window,
        repos: cp
            .repos
            .iter()
            .map(|r| RepoSummary {
                name: r.name.clone(),
                state: r.state,
                pull_requests: r.pull_requests,
                rows: r.rows.clone(),
                error: r.error.clone(),
                not_collectable: r
                    .walk
                    .skipped
                    .iter()
                    .chain(r.walk.retry.iter())
                    .cloned()
                    .collect(),
            })
            .collect(),
        rows,
        chunks: cp.chunks.len(),
        api_cost: cp.api_cost,
        budget_left: BudgetLeft { rest, graphql },
        load: None,
        note: None,
    }
}

/// Works through the checkpoint's unfinished repositories.
async fn run(
    client: &GithubClient,
    lake: &Lake,
    opts: &CollectOptions,
    progress: &Progress,
    mut checkpoint: Checkpoint,
    cost_before: ApiCost,
) -> anyhow::Result<CollectionResult> {
    // Chunks written from here on are not in the warehouse yet.
    checkpoint.loaded = false;
    let collection_id = checkpoint.collection_id.clone();
    let started = checkpoint.started_at;
    let todo: Vec<RepoProgress> = checkpoint
        .repos
        .iter()
        .filter(|r| r.state != RepoState::Done)
        .cloned()
        .collect();
    progress.set_repos(todo.len() as u64);
    let shared = Arc::new(Shared {
        // The caller has just written it.
        checkpoint: Mutex::new(Tracked {
            cp: checkpoint,
            written_at: Instant::now(),
            dirty: false,
        }),
        learned: Arc::new(LearnedSizes::default()),
        store: CheckpointStore::new(lake.clone(), opts.org.clone()),
        cost_before,
    });
    let date = started.format("%Y-%m-%d").to_string();
    let tasks = todo.into_iter().map(|repo| {
        let shared = shared.clone();
        let date = date.clone();
        let collection_id = collection_id.clone();
        async move {
            let span = tracing::info_span!(
                "repository",
                otel.name = format!("repository {}", repo.name),
                repository = %repo.name,
                pull_requests = tracing::field::Empty,
                rows = tracing::field::Empty,
                state = tracing::field::Empty,
                otel.status_code = tracing::field::Empty,
            );
            tracing::Instrument::instrument(
                collect_repository(
                    client,
                    lake,
                    opts,
                    progress,
                    &shared,
                    repo,
                    &date,
                    &collection_id,
                    started,
                ),
                span,
            )
            .await
        }
    });
    let mut results =
        futures::stream::iter(tasks).buffer_unordered(opts.max_workers.max(1) as usize);
    let work = async {
        while let Some(r) = results.next().await {
            r?;
        }
        anyhow::Ok(())
    };
    // Progress a worker recorded between two writes reaches storage within about an
    // interval, even while every worker waits on GitHub.
    let flush = async {
        loop {
            tokio::time::sleep(CHECKPOINT_INTERVAL).await;
            if let Err(e) = shared
                .checkpoint
                .lock()
                .await
                .write(&shared.store, false)
                .await
            {
                warn!(error = %e, "Writing the checkpoint failed; trying again in a second.");
            }
        }
    };
    tokio::select! {
        r = work => r?,
        () = flush => {}
    }
    drop(results);
    let mut tracked = shared.checkpoint.lock().await;
    let cp = &mut tracked.cp;
    cp.status = if cp.repos.iter().any(|r| r.state == RepoState::Failed) {
        Status::Failed
    } else if cp.repos.iter().all(|r| r.state == RepoState::Done) {
        Status::Completed
    } else {
        Status::Partial
    };
    cp.api_cost = shared.cost(client);
    cp.updated_at = Utc::now();
    // The final state is always written, however recent the last write.
    tracked.write(&shared.store, true).await?;
    let result = result_of(&tracked.cp, client);
    info!(collection_id = %result.collection_id, status = ?result.status, rest_requests = result.api_cost.rest_requests, graphql_queries = result.api_cost.graphql_queries, graphql_points = result.api_cost.graphql_points, "Collection finished.");
    Ok(result)
}

#[expect(
    clippy::too_many_arguments,
    reason = "one repository's share of the run's context"
)]
async fn collect_repository(
    client: &GithubClient,
    lake: &Lake,
    opts: &CollectOptions,
    progress: &Progress,
    shared: &Shared,
    mut entry: RepoProgress,
    date: &str,
    collection_id: &str,
    collected_at: DateTime<Utc>,
) -> anyhow::Result<()> {
    let name: RepoName = match entry.name.parse() {
        Ok(n) => n,
        Err(e) => {
            warn!(repo = %entry.name, error = %e, "Skipping a repository whose name cannot be stored.");
            entry.state = RepoState::Failed;
            entry.error = Some(format!("{e}"));
            return save(shared, entry, Vec::new(), client).await;
        }
    };
    // Rows are keyed by the repository's id: without one they could not be told apart from
    // another repository's rows, nor followed through a rename.
    let Some(repository_id) = entry
        .id
        .or_else(|| entry.repository.as_ref().and_then(|r| r.database_id))
    else {
        warn!(repo = %entry.name, "Skipping a repository GitHub gave no databaseId for.");
        entry.state = RepoState::Failed;
        entry.error = Some(format!(
            "GitHub listed repository {} without its databaseId; it is collected again next run",
            entry.name
        ));
        return save(shared, entry, Vec::new(), client).await;
    };
    entry.id = Some(repository_id);
    let first_visit = entry.state == RepoState::Pending;
    entry.state = RepoState::InProgress;
    entry.error = None;
    let mut writer = ChunkWriter::new(
        lake.clone(),
        opts.org.clone(),
        name.clone(),
        date.to_string(),
        collection_id.to_string(),
        opts.chunk_size,
        entry.next_seq.clone(),
    );
    writer.rows = entry.rows.clone();
    let mut chunks: Vec<ChunkInfo> = Vec::new();
    let prov = Provenance {
        organization: opts.org.to_string(),
        repository: entry.name.clone(),
        repository_id,
        collected_at,
        collection_id: collection_id.to_string(),
    };
    if first_visit {
        if let Some(repo) = &entry.repository {
            chunks.extend(
                writer
                    .push(
                        tables::REPOSITORIES.name,
                        &rows::repository_row(opts.org.as_str(), collected_at, collection_id, repo),
                    )
                    .await?,
            );
        }
    }
    let stop = {
        let flags = opts.stop.clone();
        Arc::new(move || flags.iter().any(|s| s.load(Ordering::Relaxed)))
    };
    let mut walk = PullRequestWalk::new(
        client.clone(),
        opts.org.as_str(),
        &entry.name,
        opts.window,
        PageSizer::new(opts.page_size, opts.page_size_max),
        entry.walk.clone(),
    )
    .with_learned_sizes(shared.learned.clone())
    .with_stop(stop)
    .with_deadline(opts.deadline);
    // The pull requests this run's walk wrote; the comment sweep does not fetch them again.
    let mut walked = std::collections::HashSet::new();
    let state = loop {
        if opts.should_stop() {
            info!(repo = %entry.name, "Stopping at a page boundary (run budget or shutdown).");
            break RepoState::InProgress;
        }
        match walk.next_page().await {
            Ok(Some(page)) => {
                walked.extend(page.pull_requests.iter().map(|p| p.number));
                chunks.extend(write_page(&mut writer, &prov, &page).await?);
                entry.pull_requests += page.pull_requests.len() as u64;
                progress.add_prs(page.pull_requests.len() as u64);
                // The page's rows are written before the checkpoint names the walk past it.
                chunks.extend(writer.flush().await?);
                entry.walk = walk.state().clone();
                entry.rows = writer.rows.clone();
                entry.next_seq = writer.next_seq.clone();
                save(shared, entry.clone(), std::mem::take(&mut chunks), client).await?;
            }
            Ok(None) => break RepoState::Done,
            Err(GithubError::OutOfTime(why)) => {
                info!(repo = %entry.name, why, "Run budget reached while waiting on GitHub.");
                break RepoState::InProgress;
            }
            Err(e) => {
                warn!(repo = %entry.name, error = %e, "Repository failed.");
                entry.error = Some(e.to_string());
                break RepoState::Failed;
            }
        }
    };
    let state = if state == RepoState::Done && opts.kind == CollectionKind::Sweep {
        // The walk's last rows are recorded before the sweep's checkpoints.
        chunks.extend(writer.flush().await?);
        entry.walk = walk.state().clone();
        entry.rows = writer.rows.clone();
        entry.next_seq = writer.next_seq.clone();
        save(shared, entry.clone(), std::mem::take(&mut chunks), client).await?;
        let swept = sweep_comments(
            client,
            opts,
            progress,
            shared,
            &mut walk,
            &walked,
            &mut entry,
            &mut writer,
            &prov,
        )
        .await?;
        match swept {
            Ok(state) => state,
            Err(GithubError::OutOfTime(why)) => {
                info!(repo = %entry.name, why, "Run budget reached while waiting on GitHub.");
                RepoState::InProgress
            }
            Err(e) => {
                warn!(repo = %entry.name, error = %e, "Comment sweep failed.");
                entry.error = Some(format!("comment sweep: {e}"));
                RepoState::Failed
            }
        }
    } else {
        state
    };
    chunks.extend(writer.flush().await?);
    progress.repo_done();
    let span = tracing::Span::current();
    span.record("pull_requests", entry.pull_requests as i64);
    span.record("rows", writer.rows.values().sum::<u64>() as i64);
    span.record("state", format!("{state:?}").to_lowercase());
    if state == RepoState::Failed {
        span.record("otel.status_code", "ERROR");
    }
    entry.state = state;
    entry.walk = walk.state().clone();
    entry.rows = writer.rows.clone();
    entry.next_seq = writer.next_seq.clone();
    save(shared, entry, chunks, client).await
}

/// Writes the rows of one step of a walk; returns the chunks that filled up.
async fn write_page(
    writer: &mut ChunkWriter,
    prov: &Provenance,
    page: &WalkPage,
) -> anyhow::Result<Vec<ChunkInfo>> {
    let mut chunks = Vec::new();
    for pr in &page.pull_requests {
        let r = rows::pull_request_rows(prov, pr);
        chunks.extend(
            writer
                .push(tables::PULL_REQUESTS.name, &r.pull_request)
                .await?,
        );
        for c in &r.commits {
            chunks.extend(writer.push(tables::PR_COMMITS.name, c).await?);
        }
        for c in &r.reviews {
            chunks.extend(writer.push(tables::REVIEWS.name, c).await?);
        }
        for c in &r.issue_comments {
            chunks.extend(writer.push(tables::ISSUE_COMMENTS.name, c).await?);
        }
    }
    for rc in &page.review_comments {
        chunks.extend(
            writer
                .push(
                    tables::REVIEW_COMMENTS.name,
                    &rows::review_comment_row(prov, rc),
                )
                .await?,
        );
    }
    Ok(chunks)
}

/// Pull requests the comment sweep fetches per step (and checkpoint).
const SWEEP_STEP: usize = 25;

/// The comment sweep of a [`CollectionKind::Sweep`] collection, after the repository's walk:
/// every pull request outside the walk with an issue comment or review comment created or
/// edited since the window's start (GitHub does not bump a pull request's `updatedAt` for an
/// edit) is collected again whole, so the edit lands and any deletion on it is reconciled. The
/// outer `Result` is a storage failure; the inner one GitHub's answer.
#[expect(
    clippy::too_many_arguments,
    reason = "one repository's share of the run's context"
)]
async fn sweep_comments(
    client: &GithubClient,
    opts: &CollectOptions,
    progress: &Progress,
    shared: &Shared,
    walk: &mut PullRequestWalk,
    walked: &std::collections::HashSet<u64>,
    entry: &mut RepoProgress,
    writer: &mut ChunkWriter,
    prov: &Provenance,
) -> anyhow::Result<Result<RepoState, GithubError>> {
    let listed = match pull_requests_commented_since(
        client,
        opts.org.as_str(),
        &entry.name,
        opts.window.since,
    )
    .await
    {
        Ok(l) => l,
        Err(e) => return Ok(Err(e)),
    };
    let todo: Vec<u64> = listed.into_iter().filter(|n| !walked.contains(n)).collect();
    info!(repo = %entry.name, pull_requests = todo.len(), "Comment sweep: collecting pull requests with comments edited outside the window.");
    for step in todo.chunks(SWEEP_STEP) {
        if opts.should_stop() {
            return Ok(Ok(RepoState::InProgress));
        }
        let page = match walk.pull_requests_by_number(step).await {
            Ok(p) => p,
            Err(e) => return Ok(Err(e)),
        };
        let mut chunks = write_page(writer, prov, &page).await?;
        walk.record_skipped(&page.skipped);
        entry.walk = walk.state().clone();
        entry.pull_requests += page.pull_requests.len() as u64;
        progress.add_prs(page.pull_requests.len() as u64);
        chunks.extend(writer.flush().await?);
        entry.rows = writer.rows.clone();
        entry.next_seq = writer.next_seq.clone();
        save(shared, entry.clone(), chunks, client).await?;
    }
    Ok(Ok(RepoState::Done))
}

/// Records a repository's progress and the chunks it wrote since, and writes the checkpoint
/// when the last write is [`CHECKPOINT_INTERVAL`] old (the run's flush and its end write it
/// otherwise).
async fn save(
    shared: &Shared,
    entry: RepoProgress,
    chunks: Vec<ChunkInfo>,
    client: &GithubClient,
) -> anyhow::Result<()> {
    let mut tracked = shared.checkpoint.lock().await;
    let cp = &mut tracked.cp;
    if let Some(e) = &entry.error {
        if entry.state == RepoState::Failed {
            cp.errors.push(format!("{}: {e}", entry.name));
        }
    }
    if let Some(r) = cp.repos.iter_mut().find(|r| r.same_repository(&entry)) {
        *r = entry;
    }
    cp.chunks.extend(chunks);
    cp.api_cost = shared.cost(client);
    cp.updated_at = Utc::now();
    tracked.dirty = true;
    // The chunks above are already written: the checkpoint never names a chunk that is not.
    tracked.write(&shared.store, false).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    /// Two collections started in the same second: the one that started later is the newest,
    /// whichever id sorts higher.
    #[tokio::test]
    async fn the_newest_collection_of_a_second_is_the_one_started_last() {
        let lake = Lake::new(Arc::new(object_store::memory::InMemory::new()), None);
        let org: OrgName = "acme".parse().unwrap();
        let store = CheckpointStore::new(lake.clone(), org.clone());
        let cp = |id: &str, started: &str, status: Status| Checkpoint {
            schema_version: crate::lake::checkpoint::SCHEMA_VERSION,
            collection_id: id.into(),
            organization: "acme".into(),
            kind: CollectionKind::Collect,
            window: Window {
                since: t("2026-11-21T10:00:00Z"),
                until: t("2026-11-21T12:00:00Z"),
            },
            started_at: t(started),
            updated_at: t(started),
            status,
            repos: Vec::new(),
            chunks: Vec::new(),
            api_cost: ApiCost::default(),
            errors: Vec::new(),
            resumes: 0,
            loaded: false,
            not_collectable_elsewhere: Default::default(),
        };
        // An older second, unfinished: never the newest.
        store
            .save(&cp(
                "20261121T115959Z-ffffff",
                "2026-11-21T11:59:59.9Z",
                Status::Partial,
            ))
            .await
            .unwrap();
        store
            .save(&cp(
                "20261121T120000Z-ffffff",
                "2026-11-21T12:00:00.1Z",
                Status::Failed,
            ))
            .await
            .unwrap();
        store
            .save(&cp(
                "20261121T120000Z-000001",
                "2026-11-21T12:00:00.7Z",
                Status::Completed,
            ))
            .await
            .unwrap();
        assert!(unfinished(&lake, &org).await.unwrap().0.is_none());
        store
            .save(&cp(
                "20261121T120000Z-000002",
                "2026-11-21T12:00:00.9Z",
                Status::Partial,
            ))
            .await
            .unwrap();
        let found = unfinished(&lake, &org).await.unwrap().0.unwrap();
        assert_eq!(found.collection_id, "20261121T120000Z-000002");
        // The newest two, damaged: set aside, and the newest readable one is the newest.
        for id in ["20261121T120000Z-000002", "20261121T120000Z-000001"] {
            let path = lake.checkpoint_path(&org, id);
            lake.put(&path, bytes::Bytes::from_static(b"{\"schema_version\": 1,"))
                .await
                .unwrap();
        }
        let (found, damaged) = unfinished(&lake, &org).await.unwrap();
        assert_eq!(found.unwrap().collection_id, "20261121T120000Z-ffffff");
        let paths: Vec<&str> = damaged.iter().map(|d| d.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "acme/_checkpoints/20261121T120000Z-000001.json",
                "acme/_checkpoints/20261121T120000Z-000002.json"
            ]
        );
        assert!(
            damaged.iter().all(|d| d.reason.contains("EOF")),
            "{damaged:?}"
        );
        // Set aside: met once, not again.
        let (again, damaged) = unfinished(&lake, &org).await.unwrap();
        assert_eq!(again.unwrap().collection_id, "20261121T120000Z-ffffff");
        assert!(damaged.is_empty());
        // Every checkpoint damaged: no newest collection, nothing blocked.
        lake.put(
            &lake.checkpoint_path(&org, "20261121T120000Z-ffffff"),
            bytes::Bytes::from_static(b"garbage"),
        )
        .await
        .unwrap();
        lake.put(
            &lake.checkpoint_path(&org, "20261121T115959Z-ffffff"),
            bytes::Bytes::from_static(b""),
        )
        .await
        .unwrap();
        let (none, damaged) = unfinished(&lake, &org).await.unwrap();
        assert!(none.is_none());
        assert_eq!(damaged.len(), 2);
    }

    #[test]
    fn backfills_reach_back_to_githubs_start_and_no_further() {
        let now = t("2026-11-21T10:00:00.700Z");
        let w = backfill_window(now, Some(180), false).unwrap();
        assert_eq!(
            (w.since, w.until),
            (t("2026-05-25T10:00:00Z"), t("2026-11-21T10:00:00Z"))
        );
        // Beyond ten years (the old cap): an organization with pull requests from 2010.
        let w = backfill_window(now, Some(6500), false).unwrap();
        assert!(w.since < t("2010-01-01T00:00:00Z"), "{w:?}");
        let all = backfill_window(now, None, true).unwrap();
        assert_eq!(all.since, t("2008-01-01T00:00:00Z"));
        let max = (now - github_start()).num_days() as u32;
        assert!(backfill_window(now, Some(max), false).unwrap().since >= github_start());
        let err = backfill_window(now, Some(max + 1), false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("2008-01-01") && err.contains(&max.to_string()),
            "{err}"
        );
        assert!(backfill_window(now, Some(0), false).is_err());
        assert!(backfill_window(now, None, false).is_err());
        assert!(backfill_window(now, Some(10), true).is_err());
        assert!(backfill_window(now, Some(u32::MAX), false).is_err());
    }

    #[test]
    fn windows_resolve_and_refuse_nonsense() {
        let now = t("2026-11-21T10:00:00.700Z");
        let w = resolve_window(now, Some(12), None, None, 1).unwrap();
        assert_eq!(
            (w.since, w.until),
            (t("2026-11-20T22:00:00Z"), t("2026-11-21T10:00:00Z"))
        );
        let w = resolve_window(now, None, Some(t("2026-11-01T00:00:00Z")), None, 1).unwrap();
        assert_eq!(w.until, t("2026-11-21T10:00:00Z"));
        let w = resolve_window(now, None, None, None, 3).unwrap();
        assert_eq!(w.since, t("2026-11-18T10:00:00Z"));
        assert!(resolve_window(now, None, Some(t("2026-12-01T00:00:00Z")), None, 1).is_err());
        assert!(resolve_window(
            now,
            None,
            Some(t("2026-11-01T00:00:00Z")),
            Some(t("2026-12-01T00:00:00Z")),
            1
        )
        .is_err());
        assert!(resolve_window(
            now,
            None,
            Some(t("2026-11-02T00:00:00Z")),
            Some(t("2026-11-01T00:00:00Z")),
            1
        )
        .is_err());
    }
}
