//! The collect and backfill jobs: plan the repositories, walk each one's pull requests inside
//! the window, write rows as chunks, and checkpoint after each repository (chunks first).

use super::progress::Progress;
use crate::config::RepoScope;
use crate::github::pulls::{list_repositories, WalkState};
use crate::github::types::RepositoryNode;
use crate::github::{ApiCost, GithubClient, GithubError, PageSizer, PullRequestWalk, Window};
use crate::lake::checkpoint::{CollectionKind, RepoProgress, RepoState, Status};
use crate::lake::{new_collection_id, Checkpoint, CheckpointStore, ChunkInfo, ChunkWriter, Lake};
use crate::names::{OrgName, RepoName};
use crate::rows::{self, Provenance};
use crate::tables;
use anyhow::Context;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::Serialize;
use std::collections::BTreeMap;
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
}

#[derive(Clone, Debug, Serialize)]
pub struct RepoSummary {
    pub name: String,
    pub state: RepoState,
    pub pull_requests: u64,
    pub rows: BTreeMap<String, u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
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

struct Shared {
    checkpoint: Mutex<Checkpoint>,
    store: CheckpointStore,
}

/// Runs one collection from the first page.
pub async fn collect(
    client: &GithubClient,
    lake: &Lake,
    opts: &CollectOptions,
    progress: &Progress,
) -> anyhow::Result<CollectionResult> {
    let started = Utc::now();
    let collection_id = new_collection_id(started);
    info!(collection_id = %collection_id, org = %opts.org, since = %opts.window.since, until = %opts.window.until, "Collection started.");
    progress.announce(&collection_id);
    let listed = list_repositories(client, opts.org.as_str())
        .await
        .with_context(|| format!("listing the repositories of {}", opts.org))?;
    let planned = plan_repositories(listed, &opts.scope)?;
    progress.set_repos(planned.len() as u64);
    let checkpoint = Checkpoint {
        schema_version: crate::lake::checkpoint::SCHEMA_VERSION,
        collection_id: collection_id.clone(),
        organization: opts.org.to_string(),
        kind: opts.kind,
        window: opts.window,
        started_at: started,
        updated_at: started,
        status: Status::Running,
        repos: planned
            .iter()
            .map(|r| RepoProgress {
                name: r.name.clone(),
                state: RepoState::Pending,
                walk: WalkState::default(),
                pull_requests: 0,
                rows: BTreeMap::new(),
                next_seq: BTreeMap::new(),
                error: None,
            })
            .collect(),
        chunks: Vec::new(),
        api_cost: client.cost(),
        errors: Vec::new(),
    };
    let store = CheckpointStore::new(lake.clone(), opts.org.clone());
    store.save(&checkpoint).await?;
    let shared = Arc::new(Shared {
        checkpoint: Mutex::new(checkpoint),
        store,
    });
    let date = started.format("%Y-%m-%d").to_string();
    let tasks = planned.into_iter().map(|repo| {
        let shared = shared.clone();
        let date = date.clone();
        let collection_id = collection_id.clone();
        async move {
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
            )
            .await
        }
    });
    let mut results =
        futures::stream::iter(tasks).buffer_unordered(opts.max_workers.max(1) as usize);
    while let Some(r) = results.next().await {
        r?;
    }
    drop(results);
    let mut cp = shared.checkpoint.lock().await;
    cp.status = if cp.repos.iter().any(|r| r.state == RepoState::Failed) {
        Status::Failed
    } else if cp.repos.iter().all(|r| r.state == RepoState::Done) {
        Status::Completed
    } else {
        Status::Partial
    };
    cp.api_cost = client.cost();
    cp.updated_at = Utc::now();
    shared.store.save(&cp).await?;
    let mut rows: BTreeMap<String, u64> = BTreeMap::new();
    for r in &cp.repos {
        for (t, n) in &r.rows {
            *rows.entry(t.clone()).or_default() += n;
        }
    }
    let (rest, graphql) = client.budget_left();
    let result = CollectionResult {
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
            })
            .collect(),
        rows,
        chunks: cp.chunks.len(),
        api_cost: cp.api_cost,
        budget_left: BudgetLeft { rest, graphql },
        load: None,
    };
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
    repo: RepositoryNode,
    date: &str,
    collection_id: &str,
    collected_at: DateTime<Utc>,
) -> anyhow::Result<()> {
    let name: RepoName = match repo.name.parse() {
        Ok(n) => n,
        Err(e) => {
            warn!(repo = %repo.name, error = %e, "Skipping a repository whose name cannot be stored.");
            return finish(
                shared,
                &repo.name,
                RepoState::Failed,
                WalkState::default(),
                0,
                BTreeMap::new(),
                BTreeMap::new(),
                Vec::new(),
                Some(e.to_string()),
                client,
            )
            .await;
        }
    };
    {
        let mut cp = shared.checkpoint.lock().await;
        if let Some(r) = cp.repos.iter_mut().find(|r| r.name == repo.name) {
            r.state = RepoState::InProgress;
        }
    }
    let mut writer = ChunkWriter::new(
        lake.clone(),
        opts.org.clone(),
        name.clone(),
        date.to_string(),
        collection_id.to_string(),
        opts.chunk_size,
        BTreeMap::new(),
    );
    let mut chunks: Vec<ChunkInfo> = Vec::new();
    let prov = Provenance {
        organization: opts.org.to_string(),
        repository: repo.name.clone(),
        collected_at,
        collection_id: collection_id.to_string(),
    };
    chunks.extend(
        writer
            .push(
                tables::REPOSITORIES.name,
                &rows::repository_row(opts.org.as_str(), collected_at, collection_id, &repo),
            )
            .await?,
    );
    let mut walk = PullRequestWalk::new(
        client.clone(),
        opts.org.as_str(),
        &repo.name,
        opts.window,
        PageSizer::new(opts.page_size, opts.page_size_max),
        WalkState::default(),
    );
    let mut prs = 0u64;
    let mut error = None;
    let state = loop {
        if Instant::now() >= opts.deadline {
            info!(repo = %repo.name, "Run budget reached; stopping at a page boundary.");
            break RepoState::InProgress;
        }
        match walk.next_page().await {
            Ok(Some(page)) => {
                for pr in &page.pull_requests {
                    let r = rows::pull_request_rows(&prov, pr);
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
                                &rows::review_comment_row(&prov, rc),
                            )
                            .await?,
                    );
                }
                prs += page.pull_requests.len() as u64;
                progress.add_prs(page.pull_requests.len() as u64);
            }
            Ok(None) => break RepoState::Done,
            Err(GithubError::OutOfTime(why)) => {
                info!(repo = %repo.name, why, "Run budget reached while waiting on GitHub.");
                break RepoState::InProgress;
            }
            Err(e) => {
                warn!(repo = %repo.name, error = %e, "Repository failed.");
                error = Some(e.to_string());
                break RepoState::Failed;
            }
        }
    };
    chunks.extend(writer.flush().await?);
    progress.repo_done();
    let rows = writer.rows.clone();
    finish(
        shared,
        &repo.name,
        state,
        walk.state().clone(),
        prs,
        rows,
        writer.next_seq.clone(),
        chunks,
        error,
        client,
    )
    .await
}

#[expect(
    clippy::too_many_arguments,
    reason = "everything a repository's checkpoint entry records"
)]
async fn finish(
    shared: &Shared,
    name: &str,
    state: RepoState,
    walk: WalkState,
    prs: u64,
    rows: BTreeMap<String, u64>,
    next_seq: BTreeMap<String, u32>,
    chunks: Vec<ChunkInfo>,
    error: Option<String>,
    client: &GithubClient,
) -> anyhow::Result<()> {
    let mut cp = shared.checkpoint.lock().await;
    if let Some(r) = cp.repos.iter_mut().find(|r| r.name == name) {
        r.state = state;
        r.walk = walk;
        r.pull_requests = prs;
        r.rows = rows;
        r.next_seq = next_seq;
        r.error = error.clone();
    }
    if let Some(e) = error {
        cp.errors.push(format!("{name}: {e}"));
    }
    cp.chunks.extend(chunks);
    cp.api_cost = client.cost();
    cp.updated_at = Utc::now();
    // The chunks above are already written: the checkpoint never names a chunk that is not.
    shared.store.save(&cp).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
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
