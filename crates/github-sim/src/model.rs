//! The simulated organization: every entity the simulator serves, and the ground truth tests
//! compare against.

use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::HashMap;

/// What kind of account an actor is, as GitHub's `__typename` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum ActorKind {
    User,
    Bot,
    Organization,
    Mannequin,
}

impl ActorKind {
    pub fn typename(self) -> &'static str {
        match self {
            ActorKind::User => "User",
            ActorKind::Bot => "Bot",
            ActorKind::Organization => "Organization",
            ActorKind::Mannequin => "Mannequin",
        }
    }
}

/// An account. A deleted account is `None` wherever an actor is optional, as on GitHub.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Actor {
    pub id: u64,
    pub login: String,
    pub kind: ActorKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum PrState {
    Open,
    Closed,
    Merged,
}

impl PrState {
    pub fn graphql(self) -> &'static str {
        match self {
            PrState::Open => "OPEN",
            PrState::Closed => "CLOSED",
            PrState::Merged => "MERGED",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum ReviewState {
    Commented,
    Approved,
    ChangesRequested,
    Dismissed,
}

impl ReviewState {
    pub fn graphql(self) -> &'static str {
        match self {
            ReviewState::Commented => "COMMENTED",
            ReviewState::Approved => "APPROVED",
            ReviewState::ChangesRequested => "CHANGES_REQUESTED",
            ReviewState::Dismissed => "DISMISSED",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum ReviewDecision {
    Approved,
    ChangesRequested,
    ReviewRequired,
}

impl ReviewDecision {
    pub fn graphql(self) -> &'static str {
        match self {
            ReviewDecision::Approved => "APPROVED",
            ReviewDecision::ChangesRequested => "CHANGES_REQUESTED",
            ReviewDecision::ReviewRequired => "REVIEW_REQUIRED",
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Commit {
    pub sha: String,
    pub message_headline: String,
    pub authored_at: DateTime<Utc>,
    pub committed_at: DateTime<Utc>,
    pub additions: u64,
    pub deletions: u64,
    pub author_name: String,
    pub author_login: Option<String>,
    pub committer_name: String,
    pub committer_login: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ReviewComment {
    pub id: u64,
    pub path: String,
    pub author: Option<Actor>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub body: String,
    pub reply_to: Option<u64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Review {
    pub id: u64,
    pub author: Option<Actor>,
    pub state: ReviewState,
    pub submitted_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub body: String,
    pub comments: Vec<ReviewComment>,
}

#[derive(Clone, Debug, Serialize)]
pub struct IssueComment {
    pub id: u64,
    pub author: Option<Actor>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub body: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct PullRequest {
    pub id: u64,
    pub number: u64,
    pub title: String,
    pub state: PrState,
    pub is_draft: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    pub merged_at: Option<DateTime<Utc>>,
    pub author: Option<Actor>,
    pub merged_by: Option<Actor>,
    pub base_ref: String,
    pub head_ref: String,
    pub base_oid: String,
    pub head_oid: String,
    pub additions: u64,
    pub deletions: u64,
    pub changed_files: u64,
    pub labels: Vec<String>,
    pub review_decision: Option<ReviewDecision>,
    pub commits: Vec<Commit>,
    pub reviews: Vec<Review>,
    pub comments: Vec<IssueComment>,
}

impl PullRequest {
    /// Recomputes the fields GitHub derives from the children.
    pub fn refresh_derived(&mut self) {
        self.additions = self.commits.iter().map(|c| c.additions).sum();
        self.deletions = self.commits.iter().map(|c| c.deletions).sum();
        self.head_oid = self
            .commits
            .last()
            .map(|c| c.sha.clone())
            .unwrap_or_else(|| self.base_oid.clone());
        let last_verdict = self.reviews.iter().rev().find_map(|r| match r.state {
            ReviewState::Approved => Some(ReviewDecision::Approved),
            ReviewState::ChangesRequested => Some(ReviewDecision::ChangesRequested),
            _ => None,
        });
        self.review_decision = Some(last_verdict.unwrap_or(ReviewDecision::ReviewRequired));
    }
}

/// An issue (not a pull request): only its comments matter here, because the repository-level
/// REST listing of issue comments mixes them with pull requests' comments.
#[derive(Clone, Debug, Serialize)]
pub struct Issue {
    pub number: u64,
    pub comments: Vec<IssueComment>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Repository {
    pub id: u64,
    pub name: String,
    pub is_archived: bool,
    pub is_fork: bool,
    pub is_private: bool,
    pub default_branch: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub pushed_at: DateTime<Utc>,
    pub pull_requests: Vec<PullRequest>,
    /// Issues with comments; they share the number sequence with pull requests.
    pub issues: Vec<Issue>,
    /// Names the repository had before a rename, oldest first. GitHub keeps answering them
    /// with the renamed repository (its redirects); the id stays the same.
    #[serde(default)]
    pub former_names: Vec<String>,
    /// For a repository with git content (see [`crate::git`]): the default branch's head
    /// commit. `None` for the generated pull-request repositories, which have none (GraphQL
    /// reports [`crate::git::fake_head`] for them and git answers 404).
    #[serde(default)]
    pub git_head: Option<String>,
}

/// Where an entity with a database id lives, for `node(id:)` look-ups.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Location {
    Repository(usize),
    PullRequest(usize, usize),
    Review(usize, usize, usize),
    ReviewComment(usize, usize, usize, usize),
    IssueComment(usize, usize, usize),
}

/// The whole organization. Cloned on write: readers hold an `Arc<World>` snapshot.
#[derive(Clone, Debug, Serialize)]
pub struct World {
    pub org: Actor,
    pub repositories: Vec<Repository>,
    /// The next database id handed out (every entity kind shares one sequence, as GitHub's
    /// ids are unique enough for the collector not to care).
    pub next_id: u64,
    #[serde(skip)]
    index: HashMap<u64, Location>,
}

impl World {
    pub fn new(org: Actor, repositories: Vec<Repository>, next_id: u64) -> Self {
        let mut w = World {
            org,
            repositories,
            next_id,
            index: HashMap::new(),
        };
        w.reindex();
        w
    }

    /// Rebuilds the id index after a change.
    pub fn reindex(&mut self) {
        let mut index = HashMap::new();
        for (ri, repo) in self.repositories.iter().enumerate() {
            index.insert(repo.id, Location::Repository(ri));
            for (pi, pr) in repo.pull_requests.iter().enumerate() {
                index.insert(pr.id, Location::PullRequest(ri, pi));
                for (vi, review) in pr.reviews.iter().enumerate() {
                    index.insert(review.id, Location::Review(ri, pi, vi));
                    for (ci, c) in review.comments.iter().enumerate() {
                        index.insert(c.id, Location::ReviewComment(ri, pi, vi, ci));
                    }
                }
                for (ci, c) in pr.comments.iter().enumerate() {
                    index.insert(c.id, Location::IssueComment(ri, pi, ci));
                }
            }
        }
        self.index = index;
    }

    pub fn locate(&self, id: u64) -> Option<Location> {
        self.index.get(&id).copied()
    }

    /// The repository called `name` now, or else the one that was called `name` before a
    /// rename (as GitHub redirects an old name).
    pub fn repository(&self, name: &str) -> Option<(usize, &Repository)> {
        let mut all = self.repositories.iter().enumerate();
        all.clone()
            .find(|(_, r)| r.name.eq_ignore_ascii_case(name))
            .or_else(|| {
                all.find(|(_, r)| r.former_names.iter().any(|f| f.eq_ignore_ascii_case(name)))
            })
    }

    /// Renames the repository called `from` to `to`, as GitHub does: same id, new name, its
    /// `updated_at` now. `None` when there is no such repository or `to` is taken.
    pub fn rename(&mut self, from: &str, to: &str, now: DateTime<Utc>) -> Option<u64> {
        if self
            .repositories
            .iter()
            .any(|r| r.name.eq_ignore_ascii_case(to))
        {
            return None;
        }
        let ri = self
            .repositories
            .iter()
            .position(|r| r.name.eq_ignore_ascii_case(from))?;
        let r = &mut self.repositories[ri];
        let old = std::mem::replace(&mut r.name, to.to_string());
        r.former_names.push(old);
        r.updated_at = now;
        Some(r.id)
    }

    pub fn take_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Every pull request, with its repository.
    pub fn pull_requests(&self) -> impl Iterator<Item = (&Repository, &PullRequest)> {
        self.repositories
            .iter()
            .flat_map(|r| r.pull_requests.iter().map(move |p| (r, p)))
    }

    pub fn pull_request_count(&self) -> usize {
        self.repositories
            .iter()
            .map(|r| r.pull_requests.len())
            .sum()
    }
}

/// GitHub's global node id for an entity, in the shape `PREFIX_base64(id)`.
pub fn node_id(prefix: &str, id: u64) -> String {
    use base64::Engine;
    format!(
        "{prefix}_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("sim:{id}"))
    )
}

/// The database id inside a node id made by [`node_id`].
pub fn parse_node_id(node: &str) -> Option<u64> {
    use base64::Engine;
    let (_, encoded) = node.split_once('_')?;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(encoded)
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    text.strip_prefix("sim:")?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_round_trip() {
        for id in [0, 1, 42, u64::MAX] {
            assert_eq!(parse_node_id(&node_id("PR", id)), Some(id));
        }
        assert_eq!(parse_node_id("garbage"), None);
        assert_eq!(parse_node_id("PR_!!!"), None);
    }
}
