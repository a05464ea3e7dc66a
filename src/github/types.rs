//! GitHub's GraphQL response shapes for the queries in `graphql/`, as serde types.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PageInfo {
    pub has_next_page: bool,
    pub end_cursor: Option<String>,
}

/// A connection page. GitHub may return `null` items (an entity deleted mid-query); they are
/// dropped on reading.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
#[serde(bound(deserialize = "T: Deserialize<'de>"))]
pub struct Connection<T> {
    #[serde(default)]
    pub total_count: u64,
    pub page_info: PageInfo,
    #[serde(deserialize_with = "non_null")]
    pub nodes: Vec<T>,
}

fn non_null<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    let items: Option<Vec<Option<T>>> = Option::deserialize(d)?;
    Ok(items.unwrap_or_default().into_iter().flatten().collect())
}

/// A `BigInt` (sent as a decimal string) or an `Int`.
fn big_int<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        S(String),
        N(u64),
    }
    match Either::deserialize(d)? {
        Either::N(n) => Ok(n),
        Either::S(s) => s.parse().map_err(serde::de::Error::custom),
    }
}

fn opt_big_int<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    struct W(#[serde(deserialize_with = "big_int")] u64);
    Ok(Option::<W>::deserialize(d)?.map(|w| w.0))
}

/// An actor: `__typename` is User, Bot, Organization, Mannequin or EnterpriseUserAccount.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct ActorRef {
    #[serde(rename = "__typename")]
    pub typename: String,
    pub login: String,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Label {
    pub name: String,
}

#[derive(Clone, Debug, Deserialize)]
pub struct GitUser {
    pub login: String,
}

#[derive(Clone, Debug, Deserialize)]
pub struct GitActor {
    pub name: Option<String>,
    pub user: Option<GitUser>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Commit {
    pub oid: String,
    pub message_headline: String,
    pub authored_date: DateTime<Utc>,
    pub committed_date: DateTime<Utc>,
    pub additions: u64,
    pub deletions: u64,
    pub author: Option<GitActor>,
    pub committer: Option<GitActor>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct PullRequestCommit {
    pub commit: Commit,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CountOnly {
    pub total_count: u64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Review {
    pub id: String,
    #[serde(deserialize_with = "big_int")]
    pub full_database_id: u64,
    pub author: Option<ActorRef>,
    pub state: String,
    pub submitted_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub body: String,
    pub comments: CountOnly,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IssueComment {
    pub id: String,
    #[serde(deserialize_with = "big_int")]
    pub full_database_id: u64,
    pub author: Option<ActorRef>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub body: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplyTo {
    #[serde(deserialize_with = "opt_big_int", default)]
    pub full_database_id: Option<u64>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviewComment {
    pub id: String,
    #[serde(deserialize_with = "big_int")]
    pub full_database_id: u64,
    pub path: String,
    pub author: Option<ActorRef>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub body: String,
    pub reply_to: Option<ReplyTo>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PullRequest {
    pub id: String,
    #[serde(deserialize_with = "big_int")]
    pub full_database_id: u64,
    pub number: u64,
    pub title: String,
    pub state: String,
    pub is_draft: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    pub merged_at: Option<DateTime<Utc>>,
    pub merged: bool,
    pub author: Option<ActorRef>,
    pub merged_by: Option<ActorRef>,
    pub base_ref_name: String,
    pub head_ref_name: String,
    pub base_ref_oid: String,
    pub head_ref_oid: String,
    pub additions: u64,
    pub deletions: u64,
    pub changed_files: u64,
    pub review_decision: Option<String>,
    pub labels: Connection<Label>,
    pub commits: Connection<PullRequestCommit>,
    pub reviews: Connection<Review>,
    pub comments: Connection<IssueComment>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PullRequestConnectionPage {
    pub page_info: PageInfo,
    #[serde(deserialize_with = "non_null")]
    pub nodes: Vec<PullRequest>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PullRequestPageData {
    pub repository: Option<RepositoryPullRequests>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryPullRequests {
    pub pull_requests: PullRequestConnectionPage,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PullRequestByNumberData {
    pub repository: Option<RepositoryPullRequest>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryPullRequest {
    pub pull_request: Option<PullRequest>,
}

#[derive(Debug, Deserialize)]
pub struct NodeData<T> {
    pub node: Option<T>,
}

#[derive(Debug, Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de>"))]
pub struct NodesData<T> {
    #[serde(deserialize_with = "non_null_lenient")]
    pub nodes: Vec<T>,
}

/// `nodes(ids:)` items that are null, or of another type (an empty object), are dropped.
fn non_null_lenient<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Vec<T>, D::Error> {
    let items: Vec<serde_json::Value> = Vec::deserialize(d)?;
    let mut out = Vec::with_capacity(items.len());
    for v in items {
        if v.is_null() || v.as_object().is_some_and(|o| o.is_empty()) {
            continue;
        }
        out.push(T::deserialize(v).map_err(serde::de::Error::custom)?);
    }
    Ok(out)
}

/// `PullRequestChildren`: the connections asked for; absent ones were not included.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PullRequestChildren {
    pub commits: Option<Connection<PullRequestCommit>>,
    pub reviews: Option<Connection<Review>>,
    pub comments: Option<Connection<IssueComment>>,
    pub labels: Option<Connection<Label>>,
}

#[derive(Debug, Deserialize)]
pub struct ReviewWithComments {
    pub id: String,
    pub comments: Connection<ReviewComment>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommitNode {
    #[serde(flatten)]
    pub commit: Commit,
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryNode {
    pub id: String,
    pub database_id: Option<u64>,
    pub name: String,
    pub name_with_owner: String,
    pub is_archived: bool,
    pub is_fork: bool,
    pub is_private: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub pushed_at: Option<DateTime<Utc>>,
    pub default_branch_ref: Option<RefName>,
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
pub struct RefName {
    pub name: String,
}

#[derive(Debug, Deserialize)]
pub struct OrganizationRepositories {
    pub organization: Option<OrgRepos>,
}

#[derive(Debug, Deserialize)]
pub struct OrgRepos {
    pub repositories: Connection<RepositoryNode>,
}

/// One commit as the REST compare endpoint lists it; only what is needed to fetch the rest.
#[derive(Debug, Deserialize)]
pub struct RestCommitRef {
    pub sha: String,
    pub node_id: String,
}

#[derive(Debug, Deserialize)]
pub struct RestCompare {
    pub total_commits: u64,
    pub commits: Vec<RestCommitRef>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_bigint_as_string_or_number_and_drops_null_nodes() {
        let c: Connection<IssueComment> = serde_json::from_value(serde_json::json!({
            "totalCount": 2,
            "pageInfo": {"hasNextPage": false, "endCursor": null},
            "nodes": [null, {"id": "IC_1", "fullDatabaseId": "12345678901", "author": null,
                       "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z", "body": "hi"}]
        }))
        .unwrap();
        assert_eq!(c.nodes.len(), 1);
        assert_eq!(c.nodes[0].full_database_id, 12_345_678_901);
        assert!(c.nodes[0].author.is_none());
    }
}
