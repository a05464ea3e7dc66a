//! The walk over one repository's pull requests inside a window: GraphQL pages newest update
//! first, each pull request completed (every truncated connection followed up, commits past
//! GitHub's 250 cap fetched through compare), the page's review comments in batches of up to
//! 100 reviews.
//!
//! A step either completes a whole page or changes nothing, so a checkpoint taken between
//! steps never names half a page. Pagination that does not advance fails after one retry; a
//! pull request GitHub cannot serve is recorded in [`WalkState::skipped`] and stepped past;
//! the run's budget and shutdown are checked before every call to GitHub.

use super::client::GithubClient;
use super::error::GithubError;
use super::types::*;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

pub const PULL_REQUEST_PAGE: &str = include_str!("../../graphql/pull_requests.graphql");
pub const PULL_REQUEST_CHILDREN: &str = include_str!("../../graphql/pull_request_children.graphql");
pub const REVIEW_COMMENTS: &str = include_str!("../../graphql/review_comments.graphql");
pub const COMMITS_BY_ID: &str = include_str!("../../graphql/commits.graphql");
pub const REPOSITORIES: &str = include_str!("../../graphql/repositories.graphql");

/// Most commits GitHub lists on a pull request.
const PR_COMMIT_CAP: u64 = 250;

/// The most ids GitHub takes in one `nodes(ids:)`.
const MAX_NODE_IDS: u32 = 100;

/// Overloaded answers a page or batch may get before the walk gives up on it.
const MAX_OVERLOADS: u32 = 8;

/// A half-open time window: `since <= updated_at < until`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

impl Window {
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.since <= t && t < self.until
    }
}

/// The page size of the pull-request walk: it halves when GitHub is overloaded by a page and
/// grows back by a quarter after every good page, up to `max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageSizer {
    pub current: u32,
    pub max: u32,
}

impl PageSizer {
    pub fn new(start: u32, max: u32) -> Self {
        let max = max.clamp(1, 100);
        PageSizer {
            current: start.clamp(1, max),
            max,
        }
    }
    pub fn success(&mut self) {
        self.current = (self.current + (self.current / 4).max(1)).min(self.max);
    }
    /// Halves the page; false when it is already one pull request.
    pub fn shrink(&mut self) -> bool {
        if self.current <= 1 {
            return false;
        }
        self.current = (self.current / 2).max(1);
        true
    }
    /// A page of `current` items was too large to receive: the page halves and never grows
    /// back past the new size.
    pub fn too_large(&mut self) -> bool {
        let shrunk = self.shrink();
        self.max = self.current;
        shrunk
    }
}

/// Page sizes learned during a run, shared by every repository's walk: a response found too
/// large at some size is not asked for again at that size, in any repository.
#[derive(Debug)]
pub struct LearnedSizes {
    pull_request_page: AtomicU32,
    review_batch: AtomicU32,
}

impl Default for LearnedSizes {
    fn default() -> Self {
        LearnedSizes {
            pull_request_page: AtomicU32::new(100),
            review_batch: AtomicU32::new(MAX_NODE_IDS),
        }
    }
}

impl LearnedSizes {
    /// The largest pull-request page known to fit.
    pub fn pull_request_page(&self) -> u32 {
        self.pull_request_page.load(Ordering::Relaxed)
    }
    /// The largest review batch known to fit.
    pub fn review_batch(&self) -> u32 {
        self.review_batch.load(Ordering::Relaxed)
    }
}

/// A review comment with the pull request and review it belongs to.
#[derive(Clone, Debug)]
pub struct ReviewCommentRecord {
    pub pr_number: u64,
    /// The `updatedAt` of the pull-request snapshot the review was seen in.
    pub pr_updated_at: DateTime<Utc>,
    pub review_id: u64,
    pub comment: ReviewComment,
}

/// What one step of the walk produced.
#[derive(Debug, Default)]
pub struct WalkPage {
    /// Pull requests, each with all its commits, reviews, comments, labels.
    pub pull_requests: Vec<PullRequest>,
    /// Review comments of those pull requests' reviews (and, after a resume from a checkpoint
    /// of an earlier version, of reviews it left pending).
    pub review_comments: Vec<ReviewCommentRecord>,
    /// Pull requests this step found GitHub cannot serve (also added to the state).
    pub skipped: Vec<SkippedPullRequest>,
}

/// A review whose comments an earlier version of the walk left to fetch after its page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingReview {
    pub pr_number: u64,
    pub pr_updated_at: DateTime<Utc>,
    pub review_node: String,
    pub review_id: u64,
}

/// A pull request GitHub could not serve (a page failing at every size, pagination of its
/// children that does not advance, a response too large even alone): recorded, stepped past,
/// and read again by number in the next run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedPullRequest {
    pub number: u64,
    #[serde(default)]
    pub updated_at: Option<DateTime<Utc>>,
    /// Why GitHub could not serve it, as last seen.
    pub error: String,
    /// Runs that tried it and failed.
    #[serde(default = "one")]
    pub attempts: u32,
}

fn one() -> u32 {
    1
}

/// Where a walk stands, for checkpoints.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalkState {
    pub cursor: Option<String>,
    pub pages_done: bool,
    /// Only in checkpoints of earlier versions; finished first on resume.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_reviews: Vec<PendingReview>,
    /// Pull requests of an earlier collection GitHub could not serve, read again first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retry: Vec<SkippedPullRequest>,
    /// Pull requests of this walk GitHub could not serve.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<SkippedPullRequest>,
}

/// What [`PullRequestWalk::review_comments`] found.
struct ReviewComments {
    comments: Vec<ReviewCommentRecord>,
    /// Node ids of reviews GitHub no longer has.
    vanished: HashSet<String>,
    /// Pull requests (by number) whose review comments GitHub cannot serve, and why.
    unservable: HashMap<u64, String>,
}

/// Whether the run must stop now (budget spent, SIGTERM, lock lost).
pub type StopCheck = Arc<dyn Fn() -> bool + Send + Sync>;

pub struct PullRequestWalk {
    client: GithubClient,
    owner: String,
    name: String,
    window: Window,
    sizer: PageSizer,
    state: WalkState,
    learned: Arc<LearnedSizes>,
    stop: StopCheck,
    deadline: Option<std::time::Instant>,
    /// Whether a step completed since this walk was made (in this run).
    progressed: bool,
}

/// Why a pull request cannot be completed: GitHub cannot serve it (skip it), or the run
/// cannot go on (stop the walk).
enum PrFailure {
    Unservable(String),
    Stop(GithubError),
}

impl From<GithubError> for PrFailure {
    fn from(e: GithubError) -> Self {
        match e {
            // The item itself: GitHub fails on it, or it vanished, or it cannot be paged.
            GithubError::Overloaded(_)
            | GithubError::TooLarge { .. }
            | GithubError::Transient(_)
            | GithubError::NotFound { .. }
            | GithubError::Pagination(_) => PrFailure::Unservable(e.to_string()),
            GithubError::Fatal { status: 200, .. } => PrFailure::Unservable(e.to_string()),
            other => PrFailure::Stop(other),
        }
    }
}

/// The error of a connection whose next page did not advance.
fn stuck(what: &str, sent: Option<&str>, got: &PageInfo, items: usize) -> GithubError {
    let why = if got.end_cursor.is_none() {
        "a null endCursor".to_string()
    } else if items == 0 {
        "no items".to_string()
    } else {
        "the same endCursor as sent".to_string()
    };
    GithubError::Pagination(format!(
        "GitHub's pagination of {what} does not advance (hasNextPage with {why}, after {}); gave up after one retry",
        sent.unwrap_or("the first page")
    ))
}

/// Whether a page claims more items but gives no way forward.
fn not_advancing(sent: Option<&str>, got: &PageInfo, items: usize) -> bool {
    got.has_next_page
        && (got.end_cursor.is_none() || items == 0 || got.end_cursor.as_deref() == sent)
}

impl PullRequestWalk {
    pub fn new(
        client: GithubClient,
        owner: &str,
        name: &str,
        window: Window,
        sizer: PageSizer,
        state: WalkState,
    ) -> Self {
        PullRequestWalk {
            client,
            owner: owner.to_string(),
            name: name.to_string(),
            window,
            sizer,
            state,
            learned: Arc::new(LearnedSizes::default()),
            stop: Arc::new(|| false),
            deadline: None,
            progressed: false,
        }
    }

    /// Page sizes shared with the run's other walks.
    pub fn with_learned_sizes(mut self, learned: Arc<LearnedSizes>) -> Self {
        self.learned = learned;
        self
    }

    /// Checked before every request: when it answers true (SIGTERM, a lost lock) the step ends
    /// with [`GithubError::OutOfTime`] and the state stays where the last whole step left it.
    pub fn with_stop(mut self, stop: StopCheck) -> Self {
        self.stop = stop;
        self
    }

    /// The run's budget: past it, the step in hand ends before its next request, as for a stop,
    /// once the walk has completed a step in this run. The first step always finishes, so a
    /// budget shorter than one step (a page with long follow-ups) still moves every resume
    /// forward instead of discarding the same page each time.
    pub fn with_deadline(mut self, deadline: std::time::Instant) -> Self {
        self.deadline = Some(deadline);
        self
    }

    pub fn state(&self) -> &WalkState {
        &self.state
    }

    /// Records pull requests found not collectable outside the walk (the comment sweep), so
    /// the checkpoint names them and the next collection reads them again.
    pub fn record_skipped(&mut self, items: &[SkippedPullRequest]) {
        self.state.skipped.extend(items.iter().cloned());
    }

    pub fn page_size(&self) -> u32 {
        self.sizer.current
    }

    pub fn is_finished(&self) -> bool {
        self.state.pages_done
            && self.state.pending_reviews.is_empty()
            && self.state.retry.is_empty()
    }

    fn check_stop(&self) -> Result<(), GithubError> {
        if (self.stop)() {
            return Err(GithubError::OutOfTime(
                "stopping between two requests (shutdown)".into(),
            ));
        }
        if self.progressed
            && self
                .deadline
                .is_some_and(|d| std::time::Instant::now() >= d)
        {
            return Err(GithubError::OutOfTime(
                "stopping between two requests (run budget reached)".into(),
            ));
        }
        Ok(())
    }

    /// The next step, or `None` when the walk is complete. On error the state is unchanged.
    pub async fn next_page(&mut self) -> Result<Option<WalkPage>, GithubError> {
        if self.is_finished() {
            return Ok(None);
        }
        let step = if let Some(item) = self.state.retry.first().cloned() {
            self.retry_skipped(item).await
        } else if !self.state.pending_reviews.is_empty() {
            self.finish_pending_reviews().await
        } else {
            self.page_step().await
        };
        let page = step?;
        self.progressed = true;
        Ok(Some(page))
    }

    /// Reads one pull request an earlier run could not serve, by number.
    async fn retry_skipped(
        &mut self,
        mut item: SkippedPullRequest,
    ) -> Result<WalkPage, GithubError> {
        self.check_stop()?;
        let vars = json!({ "owner": self.owner, "name": self.name, "number": item.number });
        let got = self
            .client
            // Shrinkable: one attempt a run, not the client's six with backoff; the item
            // waits for the next run anyway.
            .graphql_operation::<PullRequestByNumberData>(
                PULL_REQUEST_PAGE,
                "PullRequestByNumber",
                vars,
                true,
            )
            .await;
        let mut page = WalkPage::default();
        let outcome = match got {
            Ok(data) => match data.repository.and_then(|r| r.pull_request) {
                Some(pr) => self.hydrate(vec![pr]).await,
                None => Ok((Vec::new(), Vec::new(), Vec::new())),
            },
            Err(e) => Err(PrFailure::from(e)),
        };
        match outcome {
            Ok((prs, comments, failed)) => {
                page.pull_requests = prs;
                page.review_comments = comments;
                for mut f in failed {
                    f.attempts = item.attempts + 1;
                    page.skipped.push(f);
                }
                if !page.pull_requests.is_empty() {
                    tracing::info!(repo = %self.name, number = item.number, attempts = item.attempts, "A pull request GitHub could not serve before was collected.");
                }
            }
            Err(PrFailure::Unservable(why)) => {
                item.attempts += 1;
                item.error = why;
                tracing::warn!(repo = %self.name, number = item.number, attempts = item.attempts, error = %item.error, "GitHub still cannot serve this pull request; it stays recorded for the next run.");
                page.skipped.push(item);
            }
            Err(PrFailure::Stop(e)) => return Err(e),
        }
        self.state.retry.remove(0);
        self.state.skipped.extend(page.skipped.iter().cloned());
        Ok(page)
    }

    /// Review comments of reviews a checkpoint of an earlier version left pending.
    async fn finish_pending_reviews(&mut self) -> Result<WalkPage, GithubError> {
        let n = self
            .state
            .pending_reviews
            .len()
            .min(self.learned.review_batch() as usize);
        let batch: Vec<PendingReview> = self.state.pending_reviews[..n].to_vec();
        let targets: Vec<(String, u64, DateTime<Utc>, u64)> = batch
            .iter()
            .map(|p| {
                (
                    p.review_node.clone(),
                    p.review_id,
                    p.pr_updated_at,
                    p.pr_number,
                )
            })
            .collect();
        let got = self.review_comments(&targets).await.map_err(|f| match f {
            PrFailure::Stop(e) => e,
            PrFailure::Unservable(why) => GithubError::Transient(why),
        })?;
        if let Some(why) = got.unservable.values().next() {
            return Err(GithubError::Transient(why.clone()));
        }
        let comments = got.comments;
        self.state.pending_reviews.drain(..n);
        Ok(WalkPage {
            review_comments: comments,
            ..WalkPage::default()
        })
    }

    /// One page of pull requests, completed, with its review comments.
    async fn page_step(&mut self) -> Result<WalkPage, GithubError> {
        let sent = self.state.cursor.clone();
        let page = match self.fetch_page(sent.as_deref()).await {
            Ok(p) => p,
            Err(e @ (GithubError::Overloaded(_) | GithubError::TooLarge { .. })) => {
                // Even one pull request a page fails: find which one and step past it.
                return self
                    .step_past_unservable(sent.as_deref(), e.to_string())
                    .await;
            }
            Err(e) => return Err(e),
        };
        let mut pages_done = !page.page_info.has_next_page;
        let mut in_window = Vec::new();
        for pr in page.nodes {
            if pr.updated_at < self.window.since {
                pages_done = true;
                break;
            }
            if self.window.contains(pr.updated_at) {
                in_window.push(pr);
            } // updated after the window: the next window has it
        }
        let (prs, comments, skipped) = self.hydrate(in_window).await.map_err(|f| match f {
            PrFailure::Stop(e) => e,
            PrFailure::Unservable(why) => GithubError::Transient(why),
        })?;
        self.state.pages_done = pages_done;
        self.state.cursor = page.page_info.end_cursor.or(sent);
        self.state.skipped.extend(skipped.iter().cloned());
        Ok(WalkPage {
            pull_requests: prs,
            review_comments: comments,
            skipped,
        })
    }

    /// Completes `prs` and reads their review comments. Pull requests GitHub cannot serve are
    /// returned apart, not half-collected.
    async fn hydrate(
        &self,
        prs: Vec<PullRequest>,
    ) -> Result<
        (
            Vec<PullRequest>,
            Vec<ReviewCommentRecord>,
            Vec<SkippedPullRequest>,
        ),
        PrFailure,
    > {
        let mut done = Vec::with_capacity(prs.len());
        let mut skipped = Vec::new();
        for mut pr in prs {
            match self.complete(&mut pr).await {
                Ok(()) => done.push(pr),
                Err(PrFailure::Unservable(why)) => {
                    tracing::warn!(repo = %self.name, number = pr.number, error = %why, "Pull request not collectable; recorded and stepped past.");
                    skipped.push(SkippedPullRequest {
                        number: pr.number,
                        updated_at: Some(pr.updated_at),
                        error: why,
                        attempts: 1,
                    });
                }
                Err(stop) => return Err(stop),
            }
        }
        let targets: Vec<(String, u64, DateTime<Utc>, u64)> = done
            .iter()
            .flat_map(|pr| {
                pr.reviews
                    .nodes
                    .iter()
                    .map(|r| (r.id.clone(), r.full_database_id, pr.updated_at, pr.number))
            })
            .collect();
        let ReviewComments {
            comments,
            vanished,
            unservable,
        } = self.review_comments(&targets).await?;
        // A pull request one of whose reviews' comments GitHub cannot page is not collectable:
        // stored without them, its reconciliation would delete them.
        done.retain(|pr| match unservable.get(&pr.number) {
            Some(why) => {
                tracing::warn!(repo = %self.name, number = pr.number, error = %why, "Pull request not collectable; recorded and stepped past.");
                skipped.push(SkippedPullRequest {
                    number: pr.number,
                    updated_at: Some(pr.updated_at),
                    error: why.clone(),
                    attempts: 1,
                });
                false
            }
            None => true,
        });
        let mut counts: HashMap<u64, u64> = HashMap::new();
        for c in &comments {
            *counts.entry(c.review_id).or_default() += 1;
        }
        for pr in &mut done {
            // A review deleted between the page and its comments is gone: it is not stored.
            pr.reviews.nodes.retain(|r| !vanished.contains(&r.id));
            for r in &mut pr.reviews.nodes {
                r.comment_count = counts.get(&r.full_database_id).copied().unwrap_or(0);
            }
        }
        Ok((done, comments, skipped))
    }

    /// The pull requests numbered `numbers`, each complete as on a page of the walk, with the
    /// comments of their reviews (the comment sweep). A number that is no pull request (any
    /// more) is left out; one GitHub cannot serve is returned in `skipped`.
    pub async fn pull_requests_by_number(&self, numbers: &[u64]) -> Result<WalkPage, GithubError> {
        let mut found = Vec::new();
        let mut unservable = Vec::new();
        for &number in numbers {
            self.check_stop()?;
            let vars = json!({ "owner": self.owner, "name": self.name, "number": number });
            // GitHub answers a number that is no pull request with a NOT_FOUND error.
            let data: PullRequestByNumberData = match self
                .client
                .graphql_operation(PULL_REQUEST_PAGE, "PullRequestByNumber", vars, false)
                .await
            {
                Ok(d) => d,
                Err(GithubError::NotFound { .. }) => continue,
                Err(e) => match PrFailure::from(e) {
                    // One pull request GitHub cannot serve does not stop the sweep.
                    PrFailure::Unservable(why) => {
                        tracing::warn!(repo = %self.name, number, error = %why, "Pull request not collectable; recorded and stepped past.");
                        unservable.push(SkippedPullRequest {
                            number,
                            updated_at: None,
                            error: why,
                            attempts: 1,
                        });
                        continue;
                    }
                    PrFailure::Stop(e) => return Err(e),
                },
            };
            if let Some(pr) = data.repository.and_then(|r| r.pull_request) {
                found.push(pr);
            }
        }
        let (pull_requests, review_comments, mut skipped) =
            self.hydrate(found).await.map_err(|f| match f {
                PrFailure::Stop(e) => e,
                PrFailure::Unservable(why) => GithubError::Transient(why),
            })?;
        skipped.extend(unservable);
        Ok(WalkPage {
            pull_requests,
            review_comments,
            skipped,
        })
    }

    async fn fetch_page(
        &mut self,
        cursor: Option<&str>,
    ) -> Result<PullRequestConnectionPage, GithubError> {
        let mut overloads = 0u32;
        let mut stuck_once = false;
        loop {
            self.check_stop()?;
            self.sizer.max = self.sizer.max.min(self.learned.pull_request_page());
            self.sizer.current = self.sizer.current.min(self.sizer.max);
            let vars = json!({ "owner": self.owner, "name": self.name, "prs": self.sizer.current, "cursor": cursor });
            match self
                .client
                .graphql_operation::<PullRequestPageData>(
                    PULL_REQUEST_PAGE,
                    "PullRequestPage",
                    vars,
                    true,
                )
                .await
            {
                Ok(data) => {
                    let page = data.repository.map(|r| r.pull_requests).ok_or_else(|| {
                        GithubError::NotFound {
                            message: format!("repository {}/{}", self.owner, self.name),
                        }
                    })?;
                    if not_advancing(cursor, &page.page_info, page.nodes.len()) {
                        let e = stuck(
                            &format!("{}/{} pull requests", self.owner, self.name),
                            cursor,
                            &page.page_info,
                            page.nodes.len(),
                        );
                        if stuck_once {
                            return Err(e);
                        }
                        tracing::warn!(repo = %self.name, error = %e, "Pagination did not advance; asking once more.");
                        stuck_once = true;
                        continue;
                    }
                    self.sizer.success();
                    return Ok(page);
                }
                Err(e @ (GithubError::Overloaded(_) | GithubError::TooLarge { .. })) => {
                    overloads += 1;
                    let before = self.sizer.current;
                    let too_large = matches!(e, GithubError::TooLarge { .. });
                    let shrunk = if too_large {
                        let s = self.sizer.too_large();
                        self.learned
                            .pull_request_page
                            .fetch_min(self.sizer.max, Ordering::Relaxed);
                        s
                    } else {
                        self.sizer.shrink()
                    };
                    if !shrunk {
                        // One pull request a page and still failing: retry a little, then
                        // let the caller step past it.
                        if too_large || overloads > 2 {
                            return Err(e);
                        }
                        self.client.pause(overloads).await?;
                    } else if overloads > MAX_OVERLOADS {
                        return Err(e);
                    }
                    tracing::warn!(repo = %self.name, from = before, to = self.sizer.current, error = %e, "GitHub could not serve a page; shrinking it.");
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The page after `cursor` fails even with one pull request: read that pull request's
    /// number and update time alone, record it as not collectable, and move the cursor past
    /// it. When even that fails, the repository fails.
    async fn step_past_unservable(
        &mut self,
        cursor: Option<&str>,
        why: String,
    ) -> Result<WalkPage, GithubError> {
        self.check_stop()?;
        let vars = json!({ "owner": self.owner, "name": self.name, "cursor": cursor });
        let data: PullRequestSkeletonData = self
            .client
            .graphql_operation(PULL_REQUEST_PAGE, "PullRequestSkeleton", vars, false)
            .await?;
        let page =
            data.repository
                .map(|r| r.pull_requests)
                .ok_or_else(|| GithubError::NotFound {
                    message: format!("repository {}/{}", self.owner, self.name),
                })?;
        let Some(pr) = page.nodes.first() else {
            return Err(GithubError::Transient(format!(
                "a page of {}/{} fails at every size ({why}) and its pull request cannot be identified",
                self.owner, self.name
            )));
        };
        if not_advancing(cursor, &page.page_info, page.nodes.len()) {
            return Err(stuck(
                &format!("{}/{} pull requests", self.owner, self.name),
                cursor,
                &page.page_info,
                page.nodes.len(),
            ));
        }
        let mut out = WalkPage::default();
        if pr.updated_at < self.window.since {
            self.state.pages_done = true;
        } else {
            if self.window.contains(pr.updated_at) {
                tracing::warn!(repo = %self.name, number = pr.number, error = %why, "GitHub cannot serve this pull request at any page size; recorded and stepped past.");
                let item = SkippedPullRequest {
                    number: pr.number,
                    updated_at: Some(pr.updated_at),
                    error: why,
                    attempts: 1,
                };
                self.state.skipped.push(item.clone());
                out.skipped.push(item);
            }
            self.state.pages_done = !page.page_info.has_next_page;
            self.state.cursor = page.page_info.end_cursor.clone();
        }
        // The pull requests after the one that failed are likely as servable as those
        // before it: start again from half the largest page.
        self.sizer.current = (self.sizer.max / 2).max(1);
        Ok(out)
    }

    /// Follows every truncated connection of `pr` until it is complete.
    async fn complete(&self, pr: &mut PullRequest) -> Result<(), PrFailure> {
        let mut commits = pr.commits.page_info.clone();
        let mut reviews = pr.reviews.page_info.clone();
        let mut comments = pr.comments.page_info.clone();
        let mut labels = pr.labels.page_info.clone();
        let mut stuck_once = false;
        while commits.has_next_page
            || reviews.has_next_page
            || comments.has_next_page
            || labels.has_next_page
        {
            self.check_stop()?;
            let vars = json!({
                "id": pr.id,
                "commitsCursor": commits.end_cursor, "withCommits": commits.has_next_page,
                "reviewsCursor": reviews.end_cursor, "withReviews": reviews.has_next_page,
                "commentsCursor": comments.end_cursor, "withComments": comments.has_next_page,
                "labelsCursor": labels.end_cursor, "withLabels": labels.has_next_page,
            });
            let data: NodeData<PullRequestChildren> = self
                .client
                .graphql(PULL_REQUEST_CHILDREN, vars, false)
                .await?;
            let Some(children) = data.node else {
                return Err(PrFailure::Unservable(format!(
                    "pull request {} vanished while its children were read",
                    pr.number
                )));
            };
            // Every followed connection must move on; one retry, then the pull request is
            // not collectable.
            let mut problem = None;
            for (what, info, page) in [
                (
                    "commits",
                    &commits,
                    children
                        .commits
                        .as_ref()
                        .map(|c| (&c.page_info, c.nodes.len())),
                ),
                (
                    "reviews",
                    &reviews,
                    children
                        .reviews
                        .as_ref()
                        .map(|c| (&c.page_info, c.nodes.len())),
                ),
                (
                    "comments",
                    &comments,
                    children
                        .comments
                        .as_ref()
                        .map(|c| (&c.page_info, c.nodes.len())),
                ),
                (
                    "labels",
                    &labels,
                    children
                        .labels
                        .as_ref()
                        .map(|c| (&c.page_info, c.nodes.len())),
                ),
            ] {
                if let (true, Some((got, n))) = (info.has_next_page, page) {
                    if not_advancing(info.end_cursor.as_deref(), got, n) {
                        problem = Some(stuck(
                            &format!("the {what} of {}/{}#{}", self.owner, self.name, pr.number),
                            info.end_cursor.as_deref(),
                            got,
                            n,
                        ));
                    }
                }
            }
            if let Some(e) = problem {
                if stuck_once {
                    return Err(PrFailure::Unservable(e.to_string()));
                }
                tracing::warn!(repo = %self.name, number = pr.number, error = %e, "Pagination did not advance; asking once more.");
                stuck_once = true;
                continue;
            }
            fn take<T>(into: &mut Vec<T>, info: &mut PageInfo, page: Option<Connection<T>>) {
                match page {
                    Some(c) => {
                        into.extend(c.nodes);
                        *info = c.page_info;
                    }
                    None => info.has_next_page = false,
                }
            }
            if commits.has_next_page {
                take(&mut pr.commits.nodes, &mut commits, children.commits);
            }
            if reviews.has_next_page {
                take(&mut pr.reviews.nodes, &mut reviews, children.reviews);
            }
            if comments.has_next_page {
                take(&mut pr.comments.nodes, &mut comments, children.comments);
            }
            if labels.has_next_page {
                take(&mut pr.labels.nodes, &mut labels, children.labels);
            }
        }
        // GitHub lists at most 250 commits on a pull request, and its totalCount may stop
        // there too: reaching the cap is reason enough to ask compare for the full list.
        let listed = pr.commits.nodes.len() as u64;
        if pr.commits.total_count > listed || listed >= PR_COMMIT_CAP {
            self.commits_past_cap(pr).await?;
        }
        Ok(())
    }

    /// GitHub lists at most 250 commits on a pull request. The compare endpoint names all of
    /// them (paginated); the missing ones are hydrated by node id, 100 per query.
    async fn commits_past_cap(&self, pr: &mut PullRequest) -> Result<(), PrFailure> {
        let mut refs: Vec<RestCommitRef> = Vec::new();
        let mut next = Some(format!(
            "repos/{}/{}/compare/{}...{}?per_page=100",
            self.owner, self.name, pr.base_ref_oid, pr.head_ref_oid
        ));
        let mut seen: HashSet<String> = HashSet::new();
        while let Some(url) = next {
            self.check_stop()?;
            let (page, link): (RestCompare, _) = self.client.rest_get(&url).await?;
            let n = page.commits.len();
            refs.extend(page.commits);
            seen.insert(url.clone());
            next = link.map(|u| u.to_string());
            if let Some(u) = &next {
                if n == 0 || seen.contains(u) {
                    return Err(PrFailure::Unservable(GithubError::Pagination(format!(
                        "GitHub's pagination of the commits of {}/{}#{} does not advance (a next link to a page already read, or an empty page)",
                        self.owner, self.name, pr.number
                    )).to_string()));
                }
            }
        }
        let have: HashSet<String> = pr
            .commits
            .nodes
            .iter()
            .map(|c| c.commit.oid.clone())
            .collect();
        let missing: Vec<&RestCommitRef> = refs.iter().filter(|r| !have.contains(&r.sha)).collect();
        let mut fetched: HashMap<String, Commit> = HashMap::new();
        for batch in missing.chunks(MAX_NODE_IDS as usize) {
            self.check_stop()?;
            let ids: Vec<&str> = batch.iter().map(|r| r.node_id.as_str()).collect();
            let (data, _): (NodesData<CommitNode>, _) = self
                .client
                .graphql_nodes(COMMITS_BY_ID, json!({ "ids": ids }), false)
                .await?;
            for n in data.nodes {
                fetched.insert(n.commit.oid.clone(), n.commit);
            }
        }
        let mut by_sha: HashMap<String, PullRequestCommit> = pr
            .commits
            .nodes
            .drain(..)
            .map(|c| (c.commit.oid.clone(), c))
            .collect();
        for (sha, commit) in fetched {
            by_sha.insert(sha, PullRequestCommit { commit });
        }
        // Compare order (oldest first), as the pull request lists them.
        pr.commits.nodes = refs.iter().filter_map(|r| by_sha.remove(&r.sha)).collect();
        pr.commits.total_count = pr.commits.total_count.max(refs.len() as u64);
        if (pr.commits.nodes.len() as u64) < pr.commits.total_count {
            return Err(PrFailure::Unservable(format!(
                "pull request {} lists {} commits but {} could be read",
                pr.number,
                pr.commits.total_count,
                pr.commits.nodes.len()
            )));
        }
        Ok(())
    }

    /// The comments of `reviews` (node id, database id, the pull request's `updatedAt` and
    /// number), up to 100 reviews a query; reviews with more than 100 comments are followed up
    /// one at a time. Returns the comments and the node ids of reviews GitHub no longer has.
    async fn review_comments(
        &self,
        reviews: &[(String, u64, DateTime<Utc>, u64)],
    ) -> Result<ReviewComments, PrFailure> {
        let mut out = Vec::new();
        let mut vanished = HashSet::new();
        let mut unservable: HashMap<u64, String> = HashMap::new();
        let mut at = 0usize;
        let mut overloads = 0u32;
        while at < reviews.len() {
            self.check_stop()?;
            let size = (self.learned.review_batch().max(1) as usize).min(reviews.len() - at);
            let batch = &reviews[at..at + size];
            let ids: Vec<&str> = batch.iter().map(|r| r.0.as_str()).collect();
            let got: Result<(NodesData<ReviewWithComments>, Vec<usize>), GithubError> = self
                .client
                .graphql_nodes(REVIEW_COMMENTS, json!({ "ids": ids, "cursor": null }), true)
                .await;
            let data = match got {
                Ok((data, missing)) => {
                    for i in missing {
                        if let Some(r) = batch.get(i) {
                            tracing::info!(repo = %self.name, review = %r.0, "A review was deleted since its pull request was read; dropped.");
                            vanished.insert(r.0.clone());
                        }
                    }
                    data
                }
                Err(e @ (GithubError::Overloaded(_) | GithubError::TooLarge { .. })) => {
                    overloads += 1;
                    if size <= 1 || overloads > MAX_OVERLOADS {
                        return Err(PrFailure::Stop(e));
                    }
                    let smaller = (size / 2).max(1) as u32;
                    if matches!(e, GithubError::TooLarge { .. }) {
                        self.learned
                            .review_batch
                            .fetch_min(smaller, Ordering::Relaxed);
                    } else {
                        self.client.pause(overloads).await?;
                    }
                    tracing::warn!(repo = %self.name, from = size, to = smaller, error = %e, "GitHub could not serve a review batch; shrinking it.");
                    continue;
                }
                Err(e) => return Err(PrFailure::from(e)),
            };
            let by_node: HashMap<&str, &(String, u64, DateTime<Utc>, u64)> =
                batch.iter().map(|r| (r.0.as_str(), r)).collect();
            for review in data.nodes {
                let Some(&&(_, review_id, pr_updated_at, pr_number)) =
                    by_node.get(review.id.as_str())
                else {
                    continue;
                };
                let mut conn = review.comments;
                let mut stuck_once = false;
                loop {
                    out.extend(conn.nodes.drain(..).map(|comment| ReviewCommentRecord {
                        pr_number,
                        pr_updated_at,
                        review_id,
                        comment,
                    }));
                    if !conn.page_info.has_next_page {
                        break;
                    }
                    self.check_stop()?;
                    let sent = conn.page_info.end_cursor.clone();
                    let vars = json!({ "ids": [review.id], "cursor": sent });
                    let more: NodesData<ReviewWithComments> = match self
                        .client
                        .graphql_nodes(REVIEW_COMMENTS, vars, false)
                        .await
                    {
                        Ok((more, _)) => more,
                        Err(e) => match PrFailure::from(e) {
                            PrFailure::Unservable(why) => {
                                unservable.insert(pr_number, why);
                                break;
                            }
                            stop => return Err(stop),
                        },
                    };
                    match more.nodes.into_iter().next() {
                        Some(r) => {
                            if not_advancing(
                                sent.as_deref(),
                                &r.comments.page_info,
                                r.comments.nodes.len(),
                            ) {
                                let e = stuck(
                                    &format!(
                                        "the comments of review {review_id} in {}/{}#{pr_number}",
                                        self.owner, self.name
                                    ),
                                    sent.as_deref(),
                                    &r.comments.page_info,
                                    r.comments.nodes.len(),
                                );
                                if stuck_once {
                                    // That pull request is not collectable; the rest are.
                                    unservable.insert(pr_number, e.to_string());
                                    break;
                                }
                                stuck_once = true;
                                conn = Connection {
                                    total_count: conn.total_count,
                                    page_info: conn.page_info.clone(),
                                    nodes: Vec::new(),
                                };
                                continue;
                            }
                            conn = r.comments;
                        }
                        None => {
                            // Deleted between two of its pages: gone, like one deleted
                            // before the first, not kept with part of its comments.
                            out.retain(|c: &ReviewCommentRecord| c.review_id != review_id);
                            vanished.insert(review.id.clone());
                            break;
                        }
                    }
                }
            }
            at += size;
        }
        out.retain(|c| !unservable.contains_key(&c.pr_number));
        Ok(ReviewComments {
            comments: out,
            vanished,
            unservable,
        })
    }
}

/// One comment of the repository-level REST listings (`/issues/comments`, `/pulls/comments`):
/// only what tells which pull request it is on.
#[derive(Debug, Deserialize)]
struct ListedComment {
    /// Review comments: `…/repos/{owner}/{repo}/pulls/{number}`.
    #[serde(default)]
    pull_request_url: Option<String>,
    /// Issue comments: `https://github.com/{owner}/{repo}/pull/{number}#issuecomment-…` on a
    /// pull request, `…/issues/{number}#…` on an issue (whose `issue_url` looks the same).
    #[serde(default)]
    html_url: Option<String>,
}

/// The pull request a listed comment is on; `None` for a comment on an issue.
fn commented_pull_request(c: &ListedComment) -> Option<u64> {
    if let Some(url) = &c.pull_request_url {
        return url.rsplit('/').next()?.parse().ok();
    }
    let html = c.html_url.as_deref()?;
    let (_, rest) = html.split_once("/pull/")?;
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

/// The pull requests of `owner/name` with an issue comment or review comment created or edited
/// since `since`, from the repository-level REST listings (100 comments a request). Comments on
/// issues are left out. A deleted comment leaves no trace here.
pub async fn pull_requests_commented_since(
    client: &GithubClient,
    owner: &str,
    name: &str,
    since: DateTime<Utc>,
) -> Result<std::collections::BTreeSet<u64>, GithubError> {
    let since = since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut out = std::collections::BTreeSet::new();
    for listing in ["issues/comments", "pulls/comments"] {
        let mut next = Some(format!(
            "repos/{owner}/{name}/{listing}?since={since}&per_page=100"
        ));
        let mut seen: HashSet<String> = HashSet::new();
        while let Some(url) = next {
            seen.insert(url.clone());
            let (page, link): (Vec<ListedComment>, _) = client.rest_get(&url).await?;
            let had_items = !page.is_empty();
            out.extend(page.iter().filter_map(commented_pull_request));
            next = link.map(|u| u.to_string());
            if let Some(u) = &next {
                // A page with no items, or a link back to a page already read, cannot lead on.
                if !had_items || seen.contains(u) {
                    return Err(GithubError::Pagination(format!(
                        "GitHub's pagination of {owner}/{name}/{listing} does not advance (a next link after an empty page or to a page already read)"
                    )));
                }
            }
        }
    }
    Ok(out)
}

/// The organization's repositories, 100 per query.
pub async fn list_repositories(
    client: &GithubClient,
    org: &str,
) -> Result<Vec<RepositoryNode>, GithubError> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    let mut stuck_once = false;
    loop {
        let data: OrganizationRepositories = client
            .graphql(REPOSITORIES, json!({ "org": org, "cursor": cursor }), false)
            .await?;
        let Some(o) = data.organization else {
            return Err(GithubError::NotFound {
                message: format!("organization {org}"),
            });
        };
        let info = o.repositories.page_info;
        if not_advancing(cursor.as_deref(), &info, o.repositories.nodes.len()) {
            let e = stuck(
                &format!("the repositories of {org}"),
                cursor.as_deref(),
                &info,
                o.repositories.nodes.len(),
            );
            if stuck_once {
                return Err(e);
            }
            stuck_once = true;
            continue;
        }
        out.extend(o.repositories.nodes);
        if !info.has_next_page {
            return Ok(out);
        }
        cursor = info.end_cursor;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_size_halves_on_overload_and_grows_back_slowly() {
        let mut s = PageSizer::new(25, 50);
        assert!(s.shrink());
        assert_eq!(s.current, 12);
        assert!(s.shrink());
        assert_eq!(s.current, 6);
        s.success();
        assert_eq!(s.current, 7);
        s.success();
        assert_eq!(s.current, 8);
        for _ in 0..100 {
            s.success();
        }
        assert_eq!(s.current, 50);
        let mut one = PageSizer::new(1, 50);
        assert!(!one.shrink());
        assert_eq!(one.current, 1);
    }

    #[test]
    fn a_page_too_large_is_never_asked_for_again() {
        let mut s = PageSizer::new(36, 36);
        assert!(s.too_large());
        assert_eq!((s.current, s.max), (18, 18));
        for _ in 0..100 {
            s.success();
        }
        assert_eq!(s.current, 18);
    }

    #[test]
    fn pages_that_do_not_advance_are_recognised() {
        let info = |next: bool, cursor: Option<&str>| PageInfo {
            has_next_page: next,
            end_cursor: cursor.map(str::to_string),
        };
        assert!(not_advancing(Some("a"), &info(true, Some("a")), 5));
        assert!(not_advancing(Some("a"), &info(true, None), 5));
        assert!(not_advancing(Some("a"), &info(true, Some("b")), 0));
        assert!(not_advancing(None, &info(true, None), 5));
        assert!(!not_advancing(Some("a"), &info(true, Some("b")), 5));
        assert!(!not_advancing(Some("a"), &info(false, Some("a")), 0));
        assert!(!not_advancing(None, &info(false, None), 0));
    }

    #[test]
    fn listed_comments_name_their_pull_request_and_issues_are_left_out() {
        let c = |pr: Option<&str>, html: Option<&str>| ListedComment {
            pull_request_url: pr.map(str::to_string),
            html_url: html.map(str::to_string),
        };
        assert_eq!(
            commented_pull_request(&c(
                Some("https://api.github.com/repos/o/r/pulls/42"),
                Some("https://github.com/o/r/pull/42#discussion_r1")
            )),
            Some(42)
        );
        assert_eq!(
            commented_pull_request(&c(
                None,
                Some("https://github.com/o/r/pull/7#issuecomment-99")
            )),
            Some(7)
        );
        assert_eq!(
            commented_pull_request(&c(
                None,
                Some("https://github.com/o/r/issues/7#issuecomment-99")
            )),
            None
        );
        assert_eq!(commented_pull_request(&c(None, None)), None);
    }

    #[test]
    fn windows_are_half_open() {
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let w = Window {
            since: t("2026-01-01T00:00:00Z"),
            until: t("2026-01-02T00:00:00Z"),
        };
        assert!(w.contains(t("2026-01-01T00:00:00Z")));
        assert!(w.contains(t("2026-01-01T23:59:59Z")));
        assert!(!w.contains(t("2026-01-02T00:00:00Z")));
        assert!(!w.contains(t("2025-12-31T23:59:59Z")));
    }
}
