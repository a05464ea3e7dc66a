//! Default-branch commits with per-file changes, read from git objects (DESIGN.md, "commits"):
//! the repository's identity and head from GraphQL, its objects over git's smart HTTP into a
//! bare cache, its new commits from `git log`, written as Hive-style Parquet partitions
//! `{prefix}/github/{commits|file_changes|file_states}/repository_id={id}/commit_month={YYYY-MM}/`
//! and loaded into the warehouse month by month.

pub mod git;
pub mod job;
pub mod partition;
pub mod rows;

use crate::lake::Lake;
use chrono::{DateTime, Utc};
use object_store::path::Path;
use serde::{Deserialize, Serialize};

/// The commits job's folder for its own state (beside the partitions under `github/`).
pub const DIR: &str = "_commits";

/// A repository as GitHub describes it (GraphQL `Repository`), with where the commits job
/// stands on its default branch. This is the `repositories` row the commits job writes: the
/// warehouse keeps it keyed by `repo_id` (GitHub's `databaseId`), and a pull-request load never
/// clears `last_commit_sha`/`last_commit_at`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepositoryState {
    /// GitHub's `databaseId`: the identity; names are attributes.
    pub repo_id: i64,
    /// GitHub's global node id (`id`).
    pub node_id: String,
    /// The owner's login.
    pub organization: String,
    /// The repository's name, without the owner.
    pub repository: String,
    pub is_archived: bool,
    pub is_fork: bool,
    pub is_private: bool,
    /// The default branch's name; null for an empty repository.
    pub default_branch: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub pushed_at: Option<DateTime<Utc>>,
    /// The newest default-branch commit whose files are in the lake (and, once loaded, in the
    /// warehouse): every commit it reaches has been read.
    pub last_commit_sha: Option<String>,
    /// `last_commit_sha`'s committer date.
    pub last_commit_at: Option<DateTime<Utc>>,
    /// When the commits job wrote this state.
    pub collected_at: DateTime<Utc>,
    /// The commits run that wrote it.
    pub collection_id: String,
}

impl RepositoryState {
    /// `owner/name`.
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.organization, self.repository)
    }
}

/// One month of one repository in the lake: the Parquet objects of each commits table (in
/// [`crate::tables::COMMIT_TABLES`] order; an empty list when the month holds no rows of that
/// table, for instance after a force-push removed its commits). Together they are the whole
/// month: a load replaces the warehouse's rows of `(repository_id, commit_month)` with them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonthPartition {
    pub repository_id: i64,
    /// `YYYY-MM`.
    pub month: String,
    pub commits: Vec<String>,
    pub file_changes: Vec<String>,
    pub file_states: Vec<String>,
}

impl MonthPartition {
    /// The objects of `table` (`commits`, `file_changes` or `file_states`).
    pub fn files(&self, table: &str) -> &[String] {
        match table {
            "commits" => &self.commits,
            "file_changes" => &self.file_changes,
            _ => &self.file_states,
        }
    }
}

/// `{prefix}/github/{table}/repository_id={id}/commit_month={month}/`.
pub fn partition_dir(lake: &Lake, table: &str, repository_id: i64, month: &str) -> Path {
    lake.path_of(&[
        "github",
        table,
        &format!("repository_id={repository_id}"),
        &format!("commit_month={month}"),
    ])
}

/// `{prefix}/github/{table}/repository_id={id}/`.
pub fn repository_dir(lake: &Lake, table: &str, repository_id: i64) -> Path {
    lake.path_of(&["github", table, &format!("repository_id={repository_id}")])
}

/// Part `i` of a month: `.../{table}_{id}-{i}.parquet`.
pub fn partition_file(lake: &Lake, table: &str, repository_id: i64, month: &str, i: usize) -> Path {
    lake.path_of(&[
        "github",
        table,
        &format!("repository_id={repository_id}"),
        &format!("commit_month={month}"),
        &format!("{table}_{repository_id}-{i}.parquet"),
    ])
}

/// The state of one repository: `github/_commits/state/{repo_id}.json`.
pub fn state_path(lake: &Lake, repo_id: i64) -> Path {
    lake.path_of(&["github", DIR, "state", &format!("{repo_id}.json")])
}

/// The commits job's lease lock: `github/_commits/_locks/run.json`.
pub fn lock_path(lake: &Lake) -> Path {
    lake.path_of(&["github", DIR, "_locks", "run.json"])
}
