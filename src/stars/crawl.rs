//! The stars crawl: a plan of `created:` ranges ([`super::plan`]), fetched by parallel workers
//! over GitHub's two search budgets, written as NDJSON chunks with a checkpoint, then loaded.
//!
//! - GraphQL workers fetch one page of several ranges in one aliased query (1 point for up to
//!   100 searches), as many results per query as finish within GitHub's 10-second limit: the
//!   budget starts at 1,000 results and halves on a timeout or 502, growing back after
//!   successes.
//! - REST workers (`GET /search/repositories`, 30 a minute, its own budget) take whole ranges
//!   from the other end of the plan when the GraphQL points left are too few for the pages
//!   left, or once they are spent: the crawl never waits an hour for GraphQL's reset.
//! - One committer owns the output: rows are deduplicated by `repo_id` and written in chunks;
//!   after each chunk the checkpoint records, per range, the cursor after the last page whose
//!   rows are in a chunk. A run killed anywhere resumes from there: a page is at worst asked
//!   for again, and its rows are deduplicated again.

use super::plan::{self, Counter, Planned};
use super::search::{self, PageAnswer, PageAsk, Range, SEARCH_CAP};
use super::{checkpoint_path, chunk_path, RepoStar};
use crate::github::client::{ApiCost, GithubClient};
use crate::github::error::GithubError;
use crate::lake::{ChunkInfo, Lake};
use crate::warehouse::StarsLoad;
use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tracing::{info, warn};

pub const SCHEMA_VERSION: u32 = 1;

/// What a crawl searches for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Params {
    /// The user's search qualifiers (`is:public` by default); ranges add `created:`.
    pub query: String,
    /// Repositories wanted.
    pub target: u64,
    /// The earliest creation time searched.
    pub created_from: DateTime<Utc>,
}

/// Whether REST search pages are used beside GraphQL.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum RestSearch {
    /// When the GraphQL points left are fewer than the pages left need, or once they are spent.
    #[default]
    Auto,
    /// From the start, beside GraphQL.
    Always,
    /// GraphQL only.
    Never,
}

/// Where a crawl stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CrawlStatus {
    /// Fetching (or not yet planned): `resume` continues it.
    Running,
    /// Every range fetched; not yet loaded.
    Fetched,
    /// Loaded into the warehouse: done.
    Loaded,
}

/// Where one range's fetching stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum Progress {
    Pending,
    /// GraphQL pages: the next one starts after this cursor.
    Graphql {
        after: String,
    },
    /// REST pages: the next one is this page (1-based).
    Rest {
        page: u32,
    },
    Done,
    /// Found to hold more than the cap when fetched and replaced by the ranges appended after
    /// it; the rows it gave are kept.
    Replaced,
}

/// One range of a crawl and where it stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeState {
    #[serde(flatten)]
    pub planned: Planned,
    pub progress: Progress,
    /// Repositories received for it so far (before deduplication).
    pub received: u64,
    /// Fetched once again from the start because the first pass came back short.
    #[serde(default)]
    pub retried: bool,
    /// Repositories the search still held beyond the cap when the range was done.
    #[serde(default)]
    pub beyond_cap: u64,
}

impl RangeState {
    /// A planned range not yet asked for.
    fn pending(planned: Planned) -> Self {
        RangeState {
            planned,
            progress: Progress::Pending,
            received: 0,
            retried: false,
            beyond_cap: 0,
        }
    }

    /// Repositories expected from the range: its limit or count, at most [`SEARCH_CAP`].
    fn wanted(&self) -> u64 {
        self.planned
            .limit
            .unwrap_or(self.planned.count)
            .min(SEARCH_CAP)
    }
}

/// The checkpoint of a crawl (`_stars/_checkpoints/{crawl_id}.json`), written after the
/// chunks it names.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StarsCheckpoint {
    pub schema_version: u32,
    pub crawl_id: String,
    pub status: CrawlStatus,
    pub params: Params,
    /// The latest creation time searched: when the crawl started.
    pub created_to: DateTime<Utc>,
    pub started_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Empty until the plan is made.
    pub ranges: Vec<RangeState>,
    pub chunks: Vec<ChunkInfo>,
    pub next_seq: u32,
    /// Distinct repositories in the chunks.
    pub repos: u64,
    /// Spent by every run of this crawl.
    pub api_cost: ApiCost,
    pub rest_search_requests: u64,
    #[serde(default)]
    pub errors: Vec<String>,
    #[serde(default)]
    pub load: Option<StarsLoad>,
}

impl StarsCheckpoint {
    pub fn new(crawl_id: String, params: Params, now: DateTime<Utc>) -> Self {
        StarsCheckpoint {
            schema_version: SCHEMA_VERSION,
            crawl_id,
            status: CrawlStatus::Running,
            params,
            created_to: now,
            started_at: now,
            updated_at: now,
            ranges: Vec::new(),
            chunks: Vec::new(),
            next_seq: 0,
            repos: 0,
            api_cost: ApiCost::default(),
            rest_search_requests: 0,
            errors: Vec::new(),
            load: None,
        }
    }

    pub async fn save(&mut self, lake: &Lake) -> anyhow::Result<()> {
        self.updated_at = Utc::now();
        let bytes = serde_json::to_vec_pretty(self)?;
        let path = checkpoint_path(lake, &self.crawl_id);
        lake.put(&path, Bytes::from(bytes))
            .await
            .map_err(|e| anyhow::anyhow!("writing the checkpoint {path}: {e}"))
    }

    pub async fn read(lake: &Lake, crawl_id: &str) -> anyhow::Result<Option<Self>> {
        let path = checkpoint_path(lake, crawl_id);
        match lake.get(&path).await {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| anyhow::anyhow!("the checkpoint {path} is damaged: {e}")),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(anyhow::anyhow!("reading the checkpoint {path}: {e}")),
        }
    }

    /// Every crawl's checkpoint, oldest crawl first. A damaged one is skipped with a warning.
    pub async fn all(lake: &Lake) -> anyhow::Result<Vec<Self>> {
        let dir = lake.path_of(&[super::DIR, "_checkpoints"]);
        let mut out = Vec::new();
        let mut listed = lake
            .list(&dir)
            .await
            .map_err(|e| anyhow::anyhow!("listing {dir}: {e}"))?;
        listed.sort();
        for (path, _) in listed {
            let Some(id) = path.filename().and_then(|f| f.strip_suffix(".json")) else {
                continue;
            };
            match Self::read(lake, id).await {
                Ok(Some(c)) => out.push(c),
                Ok(None) => {}
                Err(e) => warn!(error = %e, "Skipping a stars checkpoint."),
            }
        }
        Ok(out)
    }
}

/// What a crawl run answers.
#[derive(Clone, Debug, Serialize)]
pub struct StarsResult {
    /// `completed` (fetched and loaded), `partial` (stopped by the budget or a signal:
    /// `ghstats stars` or `resume` continues it) or `failed`.
    pub status: &'static str,
    pub crawl_id: String,
    /// This run continued an unfinished crawl.
    pub resumed: bool,
    pub target: u64,
    /// Distinct repositories stored by the crawl.
    pub repos: u64,
    pub ranges_planned: usize,
    pub ranges_done: usize,
    /// Repositories that ranges held beyond the 1,000 a search returns and that no finer range
    /// could reach (a single second holding more than 1,000 of one star count): reported, not
    /// hidden.
    pub repos_beyond_cap: u64,
    /// This run's GitHub spending.
    pub graphql_points: u64,
    pub graphql_queries: u64,
    pub rest_search_requests: u64,
    /// The whole crawl's spending, every run of it.
    pub crawl_api_cost: ApiCost,
    pub crawl_rest_search_requests: u64,
    pub seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load: Option<StarsLoad>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

/// How a run is told to crawl.
pub struct Options {
    pub rest_search: RestSearch,
    /// GraphQL workers at most.
    pub workers: usize,
    /// Rows per chunk.
    pub chunk_rows: usize,
    /// No new page is asked for after this.
    pub deadline: Instant,
    /// Any set: stop after the pages in hand (SIGTERM, a lost lock).
    pub stop: Vec<Arc<AtomicBool>>,
}

impl Options {
    fn stopping(&self) -> bool {
        Instant::now() >= self.deadline || self.stop.iter().any(|s| s.load(Ordering::Relaxed))
    }
}

/// The GraphQL count probe, in batches of at most 100 ranges (fewer after a timeout).
struct GraphqlCounter<'a> {
    client: &'a GithubClient,
    query: String,
    batch: usize,
    /// Count with REST search once GraphQL points are spent (unless REST search is off).
    rest_allowed: bool,
    graphql_out: bool,
    /// REST search requests sent.
    rest_requests: u64,
    /// Stop counting once this passes or is set (the run budget, SIGTERM).
    deadline: Option<Instant>,
    stop: Vec<Arc<AtomicBool>>,
}

/// Counting stopped at the run budget or a signal: the crawl is `partial` and plans again next
/// run.
#[derive(Debug, thiserror::Error)]
#[error("the run budget or a signal stopped the planning")]
struct PlanningStopped;

impl GraphqlCounter<'_> {
    fn new(client: &GithubClient, query: String, rest_allowed: bool) -> GraphqlCounter<'_> {
        GraphqlCounter {
            client,
            query,
            batch: 100,
            rest_allowed,
            graphql_out: false,
            rest_requests: 0,
            deadline: None,
            stop: Vec::new(),
        }
    }

    /// Stops at `opts`' deadline and signals too.
    fn within(mut self, opts: &Options) -> Self {
        self.deadline = Some(opts.deadline);
        self.stop = opts.stop.clone();
        self
    }

    fn stopping(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
            || self.stop.iter().any(|s| s.load(Ordering::Relaxed))
    }
}

#[async_trait]
impl Counter for GraphqlCounter<'_> {
    async fn count(&mut self, ranges: &[Range]) -> anyhow::Result<Vec<u64>> {
        let mut out = Vec::with_capacity(ranges.len());
        let mut i = 0;
        while i < ranges.len() {
            if self.stopping() {
                return Err(PlanningStopped.into());
            }
            if self.graphql_out {
                let search = ranges[i].search(&self.query);
                self.rest_requests += 1;
                let c = search::rest_count(self.client, &search)
                    .await
                    .map_err(|e| anyhow::Error::new(e).context("counting repositories"))?;
                out.push(c);
                i += 1;
                continue;
            }
            let n = self.batch.min(ranges.len() - i);
            let searches: Vec<String> = ranges[i..i + n]
                .iter()
                .map(|r| r.search(&self.query))
                .collect();
            match search::count(self.client, &searches).await {
                Ok(c) => {
                    out.extend(c);
                    i += n;
                }
                Err(GithubError::Overloaded(_)) if self.batch > 1 => {
                    self.batch = (self.batch / 2).max(1);
                    warn!(
                        batch = self.batch,
                        "A count query took too long; counting fewer ranges per query."
                    );
                }
                Err(GithubError::RateLimited { reset }) if self.rest_allowed => {
                    info!(%reset, "GraphQL points are spent; counting with REST search.");
                    self.graphql_out = true;
                }
                Err(e) => return Err(anyhow::Error::new(e).context("counting repositories")),
            }
        }
        Ok(out)
    }
}

/// What a worker tells the committer.
enum Msg {
    /// A page of range `idx` and the range's state after it.
    Page {
        idx: usize,
        rows: Vec<RepoStar>,
        state: RangeState,
    },
    /// Range `idx` was replaced by `new`, appended in this order.
    Replaced { idx: usize, new: Vec<RangeState> },
    /// A failure the crawl cannot step past.
    Failed(String),
}

/// The ranges as the workers see them: the committer's copy may lag behind.
struct Board {
    ranges: Vec<RangeState>,
    busy: Vec<bool>,
    /// GraphQL points are spent (or too few): REST only.
    graphql_out: bool,
    /// REST search may be used.
    rest_on: bool,
    failed: bool,
}

impl Board {
    fn open(&self, i: usize) -> bool {
        !self.busy[i] && !matches!(self.ranges[i].progress, Progress::Done | Progress::Replaced)
    }

    fn all_done(&self) -> bool {
        self.ranges
            .iter()
            .all(|r| matches!(r.progress, Progress::Done | Progress::Replaced))
    }

    /// Pages left, at most 10 a range.
    fn pages_left(&self) -> u64 {
        self.ranges
            .iter()
            .filter(|r| !matches!(r.progress, Progress::Done | Progress::Replaced))
            .map(|r| r.wanted().saturating_sub(r.received).div_ceil(100).max(1))
            .sum()
    }
}

/// How many results the next page of a range asks for: what it is expected to still hold
/// (at least 1, at most 100).
fn first_for(r: &RangeState) -> u32 {
    r.wanted().saturating_sub(r.received).clamp(1, 100) as u32
}

/// The state of a range after a page: the next page, a second pass, or done.
fn advance(r: &mut RangeState, page: &PageAnswer, via_rest: bool) -> bool {
    r.received += page.repos.len() as u64;
    let limit_reached = r.planned.limit.is_some_and(|l| r.received >= l);
    if page.has_next_page && !limit_reached && !page.repos.is_empty() {
        r.progress = if via_rest {
            let next = match &r.progress {
                Progress::Rest { page } => page + 1,
                _ => 2,
            };
            Progress::Rest { page: next }
        } else {
            match &page.end_cursor {
                Some(c) => Progress::Graphql { after: c.clone() },
                None => Progress::Done,
            }
        };
        return false;
    }
    // The last page: did the range give what the search says it holds?
    let expected = r
        .planned
        .limit
        .unwrap_or(page.repository_count.min(SEARCH_CAP));
    if r.received < expected && !r.retried {
        warn!(
            range = %r.planned.range.qualifiers(),
            received = r.received,
            expected,
            "A range came back short (results moved while it was paged); fetching it again."
        );
        r.retried = true;
        r.received = 0;
        r.progress = Progress::Pending;
        return false;
    }
    r.beyond_cap = page.repository_count.saturating_sub(SEARCH_CAP);
    r.progress = Progress::Done;
    true
}

struct Shared<'a> {
    client: &'a GithubClient,
    board: Mutex<Board>,
    tx: tokio::sync::mpsc::UnboundedSender<Msg>,
    opts: &'a Options,
    query: String,
    crawl_id: String,
    /// The most results one GraphQL query asks for (sum of `first`), adapted to timeouts.
    node_budget: AtomicU64,
    streak: AtomicU64,
    rest_requests: AtomicU64,
    notify: tokio::sync::Notify,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Most searches in one query.
const MAX_ALIASES: usize = 20;

impl Shared<'_> {
    /// Takes ranges for one GraphQL query, from the front of the plan: those already being
    /// paged first. `None` when there is nothing to take now.
    fn take_graphql(&self) -> Option<Vec<(usize, PageAsk)>> {
        let mut b = lock(&self.board);
        if b.graphql_out || b.failed {
            return None;
        }
        let budget = self.node_budget.load(Ordering::Relaxed).max(1);
        let mut picked = Vec::new();
        let mut nodes = 0u64;
        let order: Vec<usize> = (0..b.ranges.len())
            .filter(|&i| b.open(i) && matches!(b.ranges[i].progress, Progress::Graphql { .. }))
            .chain(
                (0..b.ranges.len())
                    .filter(|&i| b.open(i) && b.ranges[i].progress == Progress::Pending),
            )
            .collect();
        for i in order {
            let r = &b.ranges[i];
            let first = first_for(r);
            if !picked.is_empty() && nodes + u64::from(first) > budget {
                break;
            }
            nodes += u64::from(first);
            let after = match &r.progress {
                Progress::Graphql { after } => Some(after.clone()),
                _ => None,
            };
            picked.push((
                i,
                PageAsk {
                    search: r.planned.range.search(&self.query),
                    first,
                    after,
                },
            ));
            if picked.len() >= MAX_ALIASES {
                break;
            }
        }
        for (i, _) in &picked {
            b.busy[*i] = true;
        }
        (!picked.is_empty()).then_some(picked)
    }

    /// Takes one range for REST pages, from the back of the plan.
    fn take_rest(&self) -> Option<usize> {
        let mut b = lock(&self.board);
        if !b.rest_on || b.failed {
            return None;
        }
        let i = (0..b.ranges.len())
            .rev()
            .find(|&i| b.open(i) && matches!(b.ranges[i].progress, Progress::Rest { .. }))
            .or_else(|| {
                (0..b.ranges.len())
                    .rev()
                    .find(|&i| b.open(i) && b.ranges[i].progress == Progress::Pending)
            })
            .or_else(|| {
                // GraphQL is spent: its ranges half paged go on as REST pages.
                (0..b.ranges.len()).filter(|_| b.graphql_out).find(|&i| {
                    b.open(i) && matches!(b.ranges[i].progress, Progress::Graphql { .. })
                })
            })?;
        if let Progress::Graphql { .. } = b.ranges[i].progress {
            // GraphQL and REST search page the same results in the same order; pages of 100
            // carry on at the next page, anything else starts the range again (rows already
            // stored are deduplicated).
            let r = &mut b.ranges[i];
            r.progress = if r.received.is_multiple_of(100) {
                Progress::Rest {
                    page: u32::try_from(r.received / 100 + 1).unwrap_or(1),
                }
            } else {
                r.received = 0;
                Progress::Rest { page: 1 }
            };
        }
        b.busy[i] = true;
        Some(i)
    }

    fn release(&self, idx: &[usize]) {
        let mut b = lock(&self.board);
        for i in idx {
            b.busy[*i] = false;
        }
        drop(b);
        self.notify.notify_waiters();
    }

    fn fail(&self, why: String) {
        lock(&self.board).failed = true;
        let _ = self.tx.send(Msg::Failed(why));
        self.notify.notify_waiters();
    }

    /// Applies a page to range `idx` and tells the committer, under the board's lock so the
    /// committer sees every change in the board's order.
    fn apply(&self, idx: usize, page: PageAnswer, rest: bool) {
        let mut b = lock(&self.board);
        let mut state = b.ranges[idx].clone();
        advance(&mut state, &page, rest);
        b.ranges[idx] = state.clone();
        b.busy[idx] = false;
        let _ = self.tx.send(Msg::Page {
            idx,
            rows: page.repos,
            state,
        });
        drop(b);
        self.notify.notify_waiters();
    }

    /// Range `idx` holds more than the cap now (`page` says so): count it in pieces and
    /// replace it, keeping the page's rows. When it cannot be cut or counted, the page is
    /// taken as it is and the range paged on.
    async fn replan(&self, idx: usize, page: PageAnswer) {
        let count = page.repository_count;
        let range = lock(&self.board).ranges[idx].planned.range.clone();
        let Some(pieces) = range.split(count.div_ceil(250).clamp(2, 400)) else {
            self.apply(idx, page, false);
            return;
        };
        let mut counter =
            GraphqlCounter::new(self.client, self.query.clone(), self.opts_rest_allowed());
        let counted = counter.count(&pieces).await;
        self.rest_requests
            .fetch_add(counter.rest_requests, Ordering::Relaxed);
        let counts = match counted {
            Ok(c) => c,
            Err(e) => {
                warn!(error = %e, "Counting the pieces of a grown range failed; it is paged as it is.");
                self.apply(idx, page, false);
                return;
            }
        };
        let new: Vec<RangeState> = plan::merge(pieces.into_iter().zip(counts).collect())
            .into_iter()
            .map(RangeState::pending)
            .collect();
        let mut b = lock(&self.board);
        let state = b.ranges[idx].clone();
        let _ = self.tx.send(Msg::Page {
            idx,
            rows: page.repos,
            state,
        });
        b.ranges[idx].progress = Progress::Replaced;
        b.busy[idx] = false;
        b.ranges.extend(new.iter().cloned());
        b.busy.extend(new.iter().map(|_| false));
        info!(
            range = %range.qualifiers(),
            count,
            pieces = new.len(),
            "A range grew past the cap while the crawl ran; it is replaced by finer ranges."
        );
        let _ = self.tx.send(Msg::Replaced { idx, new });
        drop(b);
        self.notify.notify_waiters();
    }

    fn out_of_work(&self) -> bool {
        let b = lock(&self.board);
        b.failed || b.all_done()
    }

    async fn graphql_worker(&self) {
        loop {
            if self.opts.stopping() || self.out_of_work() {
                return;
            }
            let notified = self.notify.notified();
            let Some(picked) = self.take_graphql() else {
                if lock(&self.board).graphql_out {
                    return;
                }
                // Wait for a page in flight to free a range.
                let _ = tokio::time::timeout(std::time::Duration::from_secs(1), notified).await;
                continue;
            };
            let idx: Vec<usize> = picked.iter().map(|(i, _)| *i).collect();
            let asks: Vec<PageAsk> = picked.into_iter().map(|(_, a)| a).collect();
            let asked_nodes: u64 = asks.iter().map(|a| u64::from(a.first)).sum();
            match search::pages(self.client, &asks, &self.crawl_id).await {
                Ok(answers) => {
                    let streak = self.streak.fetch_add(1, Ordering::Relaxed) + 1;
                    if streak.is_multiple_of(4) {
                        let cur = self.node_budget.load(Ordering::Relaxed);
                        self.node_budget
                            .store((cur + 100).min(1000), Ordering::Relaxed);
                    }
                    for (i, page) in idx.into_iter().zip(answers) {
                        let grown = {
                            let b = lock(&self.board);
                            let p = &b.ranges[i].planned;
                            page.repository_count > SEARCH_CAP
                                && p.count <= SEARCH_CAP
                                && p.limit.is_none()
                        };
                        if grown {
                            self.replan(i, page).await;
                        } else {
                            self.apply(i, page, false);
                        }
                    }
                }
                Err(GithubError::Overloaded(_) | GithubError::TooLarge { .. }) => {
                    self.streak.store(0, Ordering::Relaxed);
                    let smaller = (asked_nodes / 2).max(1);
                    self.node_budget.store(smaller, Ordering::Relaxed);
                    warn!(
                        results = smaller,
                        "A search query took too long; asking for fewer results per query."
                    );
                    self.release(&idx);
                }
                Err(GithubError::RateLimited { reset }) => {
                    info!(%reset, "GraphQL points are spent; REST search pages take over.");
                    let mut b = lock(&self.board);
                    b.graphql_out = true;
                    if self.opts_rest_allowed() {
                        b.rest_on = true;
                    }
                    drop(b);
                    self.release(&idx);
                    return;
                }
                Err(GithubError::OutOfTime(_)) => {
                    self.release(&idx);
                    return;
                }
                Err(GithubError::SecondaryLimit { .. }) => {
                    // The client waited as told several times over and the limit held: the
                    // pacer still holds the token; the ranges go back for the next query.
                    self.release(&idx);
                }
                Err(e) => {
                    self.release(&idx);
                    self.fail(format!("a search page failed: {e}"));
                    return;
                }
            }
        }
    }

    fn opts_rest_allowed(&self) -> bool {
        self.opts.rest_search != RestSearch::Never
    }

    async fn rest_worker(&self) {
        loop {
            if self.opts.stopping() || self.out_of_work() {
                return;
            }
            let notified = self.notify.notified();
            let Some(i) = self.take_rest() else {
                let idle = {
                    let b = lock(&self.board);
                    b.graphql_out && !b.rest_on
                };
                if idle {
                    return;
                }
                let _ = tokio::time::timeout(std::time::Duration::from_secs(1), notified).await;
                continue;
            };
            let (search_text, page_no) = {
                let b = lock(&self.board);
                let r = &b.ranges[i];
                let page = match r.progress {
                    Progress::Rest { page } => page,
                    _ => 1,
                };
                (r.planned.range.search(&self.query), page)
            };
            self.rest_requests.fetch_add(1, Ordering::Relaxed);
            match search::rest_page(self.client, &search_text, page_no, &self.crawl_id).await {
                Ok(mut page) => {
                    // A limited range takes no more than its limit.
                    let (limit, received) = {
                        let b = lock(&self.board);
                        (b.ranges[i].planned.limit, b.ranges[i].received)
                    };
                    if let Some(l) = limit {
                        let room = l.saturating_sub(received) as usize;
                        page.repos.truncate(room);
                    }
                    self.apply(i, page, true);
                }
                Err(
                    GithubError::Overloaded(_)
                    | GithubError::Transient(_)
                    | GithubError::SecondaryLimit { .. },
                ) => {
                    self.release(&[i]);
                }
                Err(GithubError::OutOfTime(_)) => {
                    self.release(&[i]);
                    return;
                }
                Err(GithubError::RateLimited { .. }) => {
                    // The search budget resets within a minute; the client waited what it
                    // could. Leave the range for another worker.
                    self.release(&[i]);
                    return;
                }
                Err(e) => {
                    self.release(&[i]);
                    self.fail(format!("a REST search page failed: {e}"));
                    return;
                }
            }
        }
    }
}

/// Reads the ids of the crawl's chunks, to keep deduplicating on resume.
async fn ids_in(lake: &Lake, chunks: &[ChunkInfo]) -> anyhow::Result<HashSet<i64>> {
    let mut ids = HashSet::new();
    for c in chunks {
        let path = object_store::path::Path::from(c.path.as_str());
        let bytes = lake
            .get(&path)
            .await
            .map_err(|e| anyhow::anyhow!("reading chunk {}: {e}", c.path))?;
        for v in crate::lake::chunk::decode_chunk(&bytes)? {
            if let Some(id) = v.get("repo_id").and_then(|v| v.as_i64()) {
                ids.insert(id);
            }
        }
    }
    Ok(ids)
}

/// The output: deduplicated rows buffered into chunks, and the checkpoint after each.
struct Committer<'a> {
    lake: &'a Lake,
    /// REST search requests this run, and the crawl's before it.
    rest_requests: &'a AtomicU64,
    rest_before: u64,
    cp: StarsCheckpoint,
    ids: HashSet<i64>,
    buf: Vec<u8>,
    rows: usize,
    chunk_rows: usize,
    last_flush: Instant,
}

impl Committer<'_> {
    fn take(&mut self, msg: Msg) -> anyhow::Result<()> {
        match msg {
            Msg::Page { idx, rows, state } => {
                for r in rows {
                    if self.ids.insert(r.repo_id) {
                        serde_json::to_writer(&mut self.buf, &r)?;
                        self.buf.push(b'\n');
                        self.rows += 1;
                    }
                }
                if let Some(slot) = self.cp.ranges.get_mut(idx) {
                    *slot = state;
                }
            }
            Msg::Replaced { idx, new } => {
                if let Some(slot) = self.cp.ranges.get_mut(idx) {
                    slot.progress = Progress::Replaced;
                }
                self.cp.ranges.extend(new);
            }
            Msg::Failed(why) => self.cp.errors.push(why),
        }
        Ok(())
    }

    fn due(&self) -> bool {
        self.rows >= self.chunk_rows
            || (self.rows > 0 && self.last_flush.elapsed() >= std::time::Duration::from_secs(10))
    }

    /// Writes the buffered rows as the next chunk, then the checkpoint.
    async fn flush(&mut self, cost: ApiCost) -> anyhow::Result<()> {
        if self.rows > 0 {
            let date = self.cp.started_at.format("%Y-%m-%d").to_string();
            let path = chunk_path(self.lake, &date, &self.cp.crawl_id, self.cp.next_seq);
            let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::default());
            gz.write_all(&self.buf)?;
            let bytes = gz.finish()?;
            let size = bytes.len() as u64;
            self.lake
                .put(&path, Bytes::from(bytes))
                .await
                .map_err(|e| anyhow::anyhow!("writing chunk {path}: {e}"))?;
            self.cp.chunks.push(ChunkInfo {
                path: path.to_string(),
                repository: String::new(),
                table: crate::tables::REPO_STARS.name.to_string(),
                rows: self.rows as u64,
                bytes: size,
            });
            self.cp.next_seq += 1;
            self.cp.repos += self.rows as u64;
            self.buf.clear();
            self.rows = 0;
        }
        self.cp.api_cost = cost;
        self.cp.rest_search_requests =
            self.rest_before + self.rest_requests.load(Ordering::Relaxed);
        self.cp.save(self.lake).await?;
        self.last_flush = Instant::now();
        Ok(())
    }
}

/// Runs (or continues) the crawl of `cp` and loads it; returns the result. The caller holds
/// the stars lock.
pub async fn run(
    client: &GithubClient,
    lake: &Lake,
    wh: &dyn crate::warehouse::Warehouse,
    mut cp: StarsCheckpoint,
    resumed: bool,
    opts: &Options,
) -> anyhow::Result<StarsResult> {
    let started = Instant::now();
    let cost_before = cp.api_cost;
    let rest_before = cp.rest_search_requests;
    // Spending is counted per client; the checkpoint adds this run's to what earlier runs spent.
    let spent = |c: &GithubClient| cost_before.plus(&c.cost());
    let mut graphql_spent = false;
    if cp.status == CrawlStatus::Running && cp.ranges.is_empty() {
        let mut counter = GraphqlCounter::new(
            client,
            cp.params.query.clone(),
            opts.rest_search != RestSearch::Never,
        )
        .within(opts);
        let planned = match plan::plan(
            &mut counter,
            cp.params.created_from,
            cp.created_to,
            cp.params.target,
        )
        .await
        {
            Ok(p) => Some(p),
            Err(e) if e.downcast_ref::<PlanningStopped>().is_some() => None,
            Err(e) => return Err(e),
        };
        let Some(planned) = planned else {
            // Stopped while counting: nothing is fetched; the next run plans again.
            cp.rest_search_requests += counter.rest_requests;
            cp.api_cost = spent(client);
            cp.save(lake).await?;
            return Ok(result(&cp, client, resumed, rest_before, started, None));
        };
        info!(
            ranges = planned.len(),
            repos = planned
                .iter()
                .map(|p| p.limit.unwrap_or(p.count))
                .sum::<u64>(),
            "Planned the crawl's ranges from counts."
        );
        cp.rest_search_requests += counter.rest_requests;
        graphql_spent = counter.graphql_out;
        cp.ranges = planned.into_iter().map(RangeState::pending).collect();
        cp.api_cost = spent(client);
        cp.save(lake).await?;
    }
    if cp.status == CrawlStatus::Running {
        let ids = ids_in(lake, &cp.chunks).await?;
        cp.repos = ids.len() as u64;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let board = Board {
            busy: vec![false; cp.ranges.len()],
            ranges: cp.ranges.clone(),
            graphql_out: graphql_spent,
            rest_on: opts.rest_search == RestSearch::Always
                || (graphql_spent && opts.rest_search != RestSearch::Never),
            failed: false,
        };
        let shared = Shared {
            client,
            board: Mutex::new(board),
            tx,
            opts,
            query: cp.params.query.clone(),
            crawl_id: cp.crawl_id.clone(),
            node_budget: AtomicU64::new(1000),
            streak: AtomicU64::new(0),
            rest_requests: AtomicU64::new(0),
            notify: tokio::sync::Notify::new(),
        };
        // Too few GraphQL points for the pages left (at ten pages a query): REST helps from
        // the start.
        if opts.rest_search == RestSearch::Auto {
            let (_, graphql_left) = client.budget_left();
            let needed = lock(&shared.board).pages_left().div_ceil(10) + 5;
            if graphql_left.is_some_and(|left| left < needed) {
                info!(
                    graphql_left,
                    needed, "Too few GraphQL points for the pages left; REST search helps."
                );
                lock(&shared.board).rest_on = true;
            }
        }
        let mut committer = Committer {
            lake,
            rest_requests: &shared.rest_requests,
            rest_before,
            cp,
            ids,
            buf: Vec::new(),
            rows: 0,
            chunk_rows: opts.chunk_rows.max(1),
            last_flush: Instant::now(),
        };
        let (done_tx, mut done_rx) = tokio::sync::oneshot::channel::<()>();
        // Workers sized from the budget left: no more queries in flight than points to pay
        // for them.
        let graphql_workers = match client.budget_left().1 {
            Some(left) => opts
                .workers
                .min(usize::try_from(left).unwrap_or(usize::MAX)),
            None => opts.workers,
        }
        .max(1);
        let workers = async {
            let mut tasks = Vec::new();
            for _ in 0..graphql_workers {
                tasks.push(futures::future::Either::Left(shared.graphql_worker()));
            }
            if opts.rest_search != RestSearch::Never {
                for _ in 0..2 {
                    tasks.push(futures::future::Either::Right(shared.rest_worker()));
                }
            }
            futures::future::join_all(tasks).await;
            let _ = done_tx.send(());
        };
        let commit = async {
            let r = async {
                let mut tick = tokio::time::interval(std::time::Duration::from_secs(2));
                loop {
                    tokio::select! {
                        msg = rx.recv() => {
                            let Some(m) = msg else { break };
                            committer.take(m)?;
                            if committer.due() {
                                committer.flush(spent(client)).await?;
                            }
                        }
                        _ = &mut done_rx => {
                            // Every worker is gone: what they sent is in the channel.
                            while let Ok(m) = rx.try_recv() {
                                committer.take(m)?;
                            }
                            break;
                        }
                        _ = tick.tick() => {
                            if committer.due() {
                                committer.flush(spent(client)).await?;
                            }
                        }
                    }
                }
                anyhow::Ok(())
            }
            .await;
            if r.is_err() {
                // The output failed: the workers stop after the pages in hand.
                lock(&shared.board).failed = true;
                shared.notify.notify_waiters();
            }
            r
        };
        let ((), outcome) = tokio::join!(workers, commit);
        // On an error the workers stopped with the committer; what is in the lake and the
        // last checkpoint is consistent.
        outcome?;
        let done = committer
            .cp
            .ranges
            .iter()
            .all(|r| matches!(r.progress, Progress::Done | Progress::Replaced));
        if done && committer.cp.errors.is_empty() {
            committer.cp.status = CrawlStatus::Fetched;
        }
        committer.flush(spent(client)).await?;
        cp = committer.cp;
    }
    let mut load = None;
    if cp.status == CrawlStatus::Fetched {
        let l = wh.load_stars(lake, &cp.chunks).await?;
        info!(
            inserted = l.inserted,
            updated = l.updated,
            history_added = l.history_added,
            "Loaded the crawl."
        );
        cp.load = Some(l);
        cp.status = CrawlStatus::Loaded;
        cp.api_cost = spent(client);
        cp.save(lake).await?;
        load = Some(l);
    }
    Ok(result(&cp, client, resumed, rest_before, started, load))
}

/// The result of a run of the crawl `cp`, this run's spending read from `client`.
fn result(
    cp: &StarsCheckpoint,
    client: &GithubClient,
    resumed: bool,
    rest_before: u64,
    started: Instant,
    load: Option<StarsLoad>,
) -> StarsResult {
    let run_cost = client.cost();
    let status = match cp.status {
        CrawlStatus::Loaded => "completed",
        _ if !cp.errors.is_empty() => "failed",
        _ => "partial",
    };
    StarsResult {
        status,
        crawl_id: cp.crawl_id.clone(),
        resumed,
        target: cp.params.target,
        repos: cp.repos,
        ranges_planned: cp
            .ranges
            .iter()
            .filter(|r| r.progress != Progress::Replaced)
            .count(),
        ranges_done: cp
            .ranges
            .iter()
            .filter(|r| r.progress == Progress::Done)
            .count(),
        repos_beyond_cap: cp.ranges.iter().map(|r| r.beyond_cap).sum(),
        graphql_points: run_cost.graphql_points,
        graphql_queries: run_cost.graphql_queries,
        rest_search_requests: cp.rest_search_requests.saturating_sub(rest_before),
        crawl_api_cost: cp.api_cost,
        crawl_rest_search_requests: cp.rest_search_requests,
        seconds: started.elapsed().as_secs_f64(),
        load: load.or(cp.load),
        errors: cp.errors.clone(),
    }
}
