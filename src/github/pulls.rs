//! The walk over one repository's pull requests inside a window: GraphQL pages newest update
//! first, each pull request completed (every truncated connection followed up, commits past
//! GitHub's 250 cap fetched through compare), review comments in batches of up to 100 reviews.

use super::client::GithubClient;
use super::error::GithubError;
use super::types::*;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::HashMap;

pub const PULL_REQUEST_PAGE: &str = include_str!("../../graphql/pull_requests.graphql");
pub const PULL_REQUEST_CHILDREN: &str = include_str!("../../graphql/pull_request_children.graphql");
pub const REVIEW_COMMENTS: &str = include_str!("../../graphql/review_comments.graphql");
pub const COMMITS_BY_ID: &str = include_str!("../../graphql/commits.graphql");
pub const REPOSITORIES: &str = include_str!("../../graphql/repositories.graphql");

/// One pull request by number, with the fields of a `PullRequestPage` node: the operation,
/// followed by the fragments of `pull_requests.graphql`, so both always ask the same.
const PULL_REQUEST_BY_NUMBER_OPERATION: &str =
    "# One pull request by number, for the comment sweep.
query PullRequestByNumber($owner: String!, $name: String!, $number: Int!) {
  rateLimit {
    cost
    remaining
    resetAt
    limit
  }
  repository(owner: $owner, name: $name) {
    pullRequest(number: $number) {
      ...PullRequestFields
    }
  }
}
";

/// The `PullRequestByNumber` document: its operation and the page query's fragments.
pub fn pull_request_by_number_query() -> String {
    let fragments = PULL_REQUEST_PAGE
        .find("\nfragment ")
        .map(|i| &PULL_REQUEST_PAGE[i..])
        .unwrap_or_default();
    format!("{PULL_REQUEST_BY_NUMBER_OPERATION}{fragments}")
}

/// Most commits GitHub lists on a pull request.
const PR_COMMIT_CAP: u64 = 250;

/// The reviews one `ReviewComments` query asks for.
const REVIEW_BATCH: usize = 100;

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
    /// Pull requests inside the window, each with all its commits, reviews, comments, labels.
    pub pull_requests: Vec<PullRequest>,
    /// Review comments of reviews seen on this or earlier pages.
    pub review_comments: Vec<ReviewCommentRecord>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingReview {
    pub pr_number: u64,
    pub pr_updated_at: DateTime<Utc>,
    pub review_node: String,
    pub review_id: u64,
}

/// Where a walk stands, for checkpoints.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalkState {
    pub cursor: Option<String>,
    pub pages_done: bool,
    pub pending_reviews: Vec<PendingReview>,
}

pub struct PullRequestWalk {
    client: GithubClient,
    owner: String,
    name: String,
    window: Window,
    sizer: PageSizer,
    state: WalkState,
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
        }
    }

    pub fn state(&self) -> &WalkState {
        &self.state
    }

    pub fn page_size(&self) -> u32 {
        self.sizer.current
    }

    pub fn is_finished(&self) -> bool {
        self.state.pages_done && self.state.pending_reviews.is_empty()
    }

    /// The next step, or `None` when the walk is complete.
    pub async fn next_page(&mut self) -> Result<Option<WalkPage>, GithubError> {
        if self.is_finished() {
            return Ok(None);
        }
        let mut out = WalkPage::default();
        if !self.state.pages_done {
            let page = self.fetch_page().await?;
            for mut pr in page.nodes {
                if pr.updated_at < self.window.since {
                    self.state.pages_done = true;
                    break;
                }
                if !self.window.contains(pr.updated_at) {
                    continue; // updated after the window: the next window has it
                }
                self.complete(&mut pr).await?;
                for r in &pr.reviews.nodes {
                    if r.comments.total_count > 0 {
                        self.state.pending_reviews.push(PendingReview {
                            pr_number: pr.number,
                            pr_updated_at: pr.updated_at,
                            review_node: r.id.clone(),
                            review_id: r.full_database_id,
                        });
                    }
                }
                out.pull_requests.push(pr);
            }
            if !page.page_info.has_next_page {
                self.state.pages_done = true;
            }
            self.state.cursor = page.page_info.end_cursor.or(self.state.cursor.take());
        }
        while self.state.pending_reviews.len() >= REVIEW_BATCH
            || (self.state.pages_done && !self.state.pending_reviews.is_empty())
        {
            let n = self.state.pending_reviews.len().min(REVIEW_BATCH);
            let batch: Vec<PendingReview> = self.state.pending_reviews[..n].to_vec();
            out.review_comments
                .extend(self.review_comments(&batch).await?);
            self.state.pending_reviews.drain(..n);
        }
        Ok(Some(out))
    }

    /// The pull requests numbered `numbers`, each complete as on a page of the walk, with the
    /// comments of their reviews. A number that is no pull request (any more) is skipped.
    pub async fn pull_requests_by_number(&self, numbers: &[u64]) -> Result<WalkPage, GithubError> {
        let query = pull_request_by_number_query();
        let mut out = WalkPage::default();
        let mut pending = Vec::new();
        for &number in numbers {
            let vars = json!({ "owner": self.owner, "name": self.name, "number": number });
            // GitHub answers a number that is no pull request with a NOT_FOUND error.
            let data: PullRequestByNumberData = match self.client.graphql(&query, vars, false).await
            {
                Ok(d) => d,
                Err(GithubError::NotFound { .. }) => continue,
                Err(e) => return Err(e),
            };
            let Some(mut pr) = data.repository.and_then(|r| r.pull_request) else {
                continue;
            };
            self.complete(&mut pr).await?;
            for r in &pr.reviews.nodes {
                if r.comments.total_count > 0 {
                    pending.push(PendingReview {
                        pr_number: pr.number,
                        pr_updated_at: pr.updated_at,
                        review_node: r.id.clone(),
                        review_id: r.full_database_id,
                    });
                }
            }
            out.pull_requests.push(pr);
        }
        for batch in pending.chunks(REVIEW_BATCH) {
            out.review_comments
                .extend(self.review_comments(batch).await?);
        }
        Ok(out)
    }

    async fn fetch_page(&mut self) -> Result<PullRequestConnectionPage, GithubError> {
        let mut overloads = 0u32;
        loop {
            let vars = json!({ "owner": self.owner, "name": self.name, "prs": self.sizer.current, "cursor": self.state.cursor });
            match self
                .client
                .graphql::<PullRequestPageData>(PULL_REQUEST_PAGE, vars, true)
                .await
            {
                Ok(data) => {
                    self.sizer.success();
                    return data.repository.map(|r| r.pull_requests).ok_or_else(|| {
                        GithubError::NotFound {
                            message: format!("repository {}/{}", self.owner, self.name),
                        }
                    });
                }
                Err(GithubError::Overloaded(why)) => {
                    overloads += 1;
                    if overloads > 8 {
                        return Err(GithubError::Overloaded(why));
                    }
                    let before = self.sizer.current;
                    if !self.sizer.shrink() {
                        // Already one pull request a page: only waiting can help.
                        self.client.pause(overloads).await?;
                    }
                    tracing::warn!(repo = %self.name, from = before, to = self.sizer.current, "GitHub overloaded by a page; shrinking it.");
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Follows every truncated connection of `pr` until it is complete.
    async fn complete(&self, pr: &mut PullRequest) -> Result<(), GithubError> {
        let mut commits = pr.commits.page_info.clone();
        let mut reviews = pr.reviews.page_info.clone();
        let mut comments = pr.comments.page_info.clone();
        let mut labels = pr.labels.page_info.clone();
        while commits.has_next_page
            || reviews.has_next_page
            || comments.has_next_page
            || labels.has_next_page
        {
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
                return Err(GithubError::Transient(format!(
                    "pull request {} vanished while its children were read",
                    pr.number
                )));
            };
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
    async fn commits_past_cap(&self, pr: &mut PullRequest) -> Result<(), GithubError> {
        let mut refs: Vec<RestCommitRef> = Vec::new();
        let mut next = Some(format!(
            "repos/{}/{}/compare/{}...{}?per_page=100",
            self.owner, self.name, pr.base_ref_oid, pr.head_ref_oid
        ));
        while let Some(url) = next {
            let (page, link): (RestCompare, _) = self.client.rest_get(&url).await?;
            refs.extend(page.commits);
            next = link.map(|u| u.to_string());
        }
        let have: std::collections::HashSet<String> = pr
            .commits
            .nodes
            .iter()
            .map(|c| c.commit.oid.clone())
            .collect();
        let missing: Vec<&RestCommitRef> = refs.iter().filter(|r| !have.contains(&r.sha)).collect();
        let mut fetched: HashMap<String, Commit> = HashMap::new();
        for batch in missing.chunks(100) {
            let ids: Vec<&str> = batch.iter().map(|r| r.node_id.as_str()).collect();
            let data: NodesData<CommitNode> = self
                .client
                .graphql(COMMITS_BY_ID, json!({ "ids": ids }), false)
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
            return Err(GithubError::Transient(format!(
                "pull request {} lists {} commits but {} could be read",
                pr.number,
                pr.commits.total_count,
                pr.commits.nodes.len()
            )));
        }
        Ok(())
    }

    /// The comments of up to 100 reviews in one query; reviews with more than 100 comments are
    /// followed up one at a time.
    async fn review_comments(
        &self,
        batch: &[PendingReview],
    ) -> Result<Vec<ReviewCommentRecord>, GithubError> {
        let ids: Vec<&str> = batch.iter().map(|p| p.review_node.as_str()).collect();
        let data: NodesData<ReviewWithComments> = self
            .client
            .graphql(
                REVIEW_COMMENTS,
                json!({ "ids": ids, "cursor": null }),
                false,
            )
            .await?;
        let by_node: HashMap<&str, &PendingReview> =
            batch.iter().map(|p| (p.review_node.as_str(), p)).collect();
        let mut out = Vec::new();
        for review in data.nodes {
            let Some(p) = by_node.get(review.id.as_str()) else {
                continue;
            };
            let mut conn = review.comments;
            loop {
                out.extend(conn.nodes.drain(..).map(|comment| ReviewCommentRecord {
                    pr_number: p.pr_number,
                    pr_updated_at: p.pr_updated_at,
                    review_id: p.review_id,
                    comment,
                }));
                if !conn.page_info.has_next_page {
                    break;
                }
                let vars = json!({ "ids": [review.id], "cursor": conn.page_info.end_cursor });
                let more: NodesData<ReviewWithComments> =
                    self.client.graphql(REVIEW_COMMENTS, vars, false).await?;
                match more.nodes.into_iter().next() {
                    Some(r) => conn = r.comments,
                    None => break, // the review was deleted meanwhile
                }
            }
        }
        Ok(out)
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
        while let Some(url) = next {
            let (page, link): (Vec<ListedComment>, _) = client.rest_get(&url).await?;
            let had_items = !page.is_empty();
            out.extend(page.iter().filter_map(commented_pull_request));
            // A page with no items cannot point further without looping.
            next = link.filter(|_| had_items).map(|u| u.to_string());
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
    loop {
        let data: OrganizationRepositories = client
            .graphql(REPOSITORIES, json!({ "org": org, "cursor": cursor }), false)
            .await?;
        let Some(o) = data.organization else {
            return Err(GithubError::NotFound {
                message: format!("organization {org}"),
            });
        };
        out.extend(o.repositories.nodes);
        if !o.repositories.page_info.has_next_page {
            return Ok(out);
        }
        cursor = o.repositories.page_info.end_cursor;
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
    fn the_by_number_query_carries_the_page_fragments() {
        let q = pull_request_by_number_query();
        assert!(q.contains("query PullRequestByNumber("));
        assert!(q.contains("fragment PullRequestFields on PullRequest"));
        assert!(!q.contains("query PullRequestPage"));
        assert_eq!(q.matches("\nquery ").count(), 1);
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
