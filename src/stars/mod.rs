//! Stars: the star counts of many public repositories, found with GitHub's repository search
//! (GraphQL `search(type: REPOSITORY)` and REST `GET /search/repositories`), kept as a snapshot
//! (`repo_stars`) and an append-only history (`repo_star_history`). See ARCHITECTURE.md,
//! "Stars".
//!
//! Lake layout (a GitHub login never starts with `_`, so no organization's folder collides):
//! ```text
//! {prefix}/_stars/{YYYY-MM-DD}/{crawl_id}_chunk_{seq:05}.ndjson.gz   rows: RepoStar, one per line
//! {prefix}/_stars/_checkpoints/{crawl_id}.json
//! {prefix}/_stars/_locks/run.json
//! ```

use crate::lake::Lake;
use chrono::{DateTime, Utc};
use object_store::path::Path;
use serde::{Deserialize, Serialize};

/// The lake folder of every stars object.
pub const DIR: &str = "_stars";

/// One repository as a crawl saw it: a row of a stars chunk and of `repo_stars`
/// (`tables::REPO_STARS`, the same field names and order).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoStar {
    /// GitHub's `databaseId` of the repository (REST `id`).
    pub repo_id: i64,
    /// GitHub's global node id (REST `node_id`).
    pub node_id: String,
    /// `owner/name` when observed.
    pub name_with_owner: String,
    pub owner_login: String,
    pub stargazer_count: i64,
    pub fork_count: i64,
    pub primary_language: Option<String>,
    pub created_at: DateTime<Utc>,
    pub pushed_at: Option<DateTime<Utc>>,
    pub is_fork: bool,
    pub is_archived: bool,
    /// When the search page holding this repository was answered.
    pub observed_at: DateTime<Utc>,
    /// The crawl that saw it (a collection id, `lake::new_collection_id`).
    pub crawl_id: String,
}

/// `{prefix}/_stars/{date}/{crawl_id}_chunk_{seq:05}.ndjson.gz`
pub fn chunk_path(lake: &Lake, date: &str, crawl_id: &str, seq: u32) -> Path {
    lake.path_of(&[DIR, date, &format!("{crawl_id}_chunk_{seq:05}.ndjson.gz")])
}

/// `{prefix}/_stars/_checkpoints/{crawl_id}.json`
pub fn checkpoint_path(lake: &Lake, crawl_id: &str) -> Path {
    lake.path_of(&[DIR, "_checkpoints", &format!("{crawl_id}.json")])
}

/// `{prefix}/_stars/_locks/run.json`
pub fn lock_path(lake: &Lake) -> Path {
    lake.path_of(&[DIR, "_locks", "run.json"])
}

pub mod crawl;
pub mod plan;
pub mod search;
