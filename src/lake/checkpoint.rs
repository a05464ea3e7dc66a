//! The checkpoint of a collection: its window, the repositories planned and where each stands,
//! the chunks written and the API cost so far. Written after the chunks it mentions.

use super::{ChunkInfo, Lake};
use crate::github::pulls::{WalkState, Window};
use crate::github::ApiCost;
use crate::names::OrgName;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CollectionKind {
    Collect,
    Backfill,
    /// A collection of the window, then, per repository, every pull request outside it with
    /// comments created or edited since the window's start (the daily sweep).
    Sweep,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Running,
    Completed,
    Partial,
    Failed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RepoState {
    Pending,
    InProgress,
    Done,
    Failed,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RepoProgress {
    /// GitHub's id of the repository (`databaseId`): what the checkpoint knows it by. (`None`
    /// only in checkpoints of builds that did not record it: the name is the key then.)
    #[serde(default)]
    pub id: Option<u64>,
    /// The repository's name when the collection started (chunks are stored under it).
    pub name: String,
    pub state: RepoState,
    #[serde(default)]
    pub walk: WalkState,
    pub pull_requests: u64,
    #[serde(default)]
    pub rows: BTreeMap<String, u64>,
    #[serde(default)]
    pub next_seq: BTreeMap<String, u32>,
    #[serde(default)]
    pub error: Option<String>,
    /// The repository as listed when the collection started: its row is written from it.
    #[serde(default)]
    pub repository: Option<crate::github::types::RepositoryNode>,
}

impl RepoProgress {
    /// Whether `other` is the progress of the same repository: the same id (names change; a
    /// renamed repository is the same one), or the same name where an id is missing.
    pub fn same_repository(&self, other: &RepoProgress) -> bool {
        match (self.id, other.id) {
            (Some(a), Some(b)) => a == b,
            _ => self.name == other.name,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub schema_version: u32,
    pub collection_id: String,
    pub organization: String,
    pub kind: CollectionKind,
    pub window: Window,
    pub started_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub status: Status,
    pub repos: Vec<RepoProgress>,
    pub chunks: Vec<ChunkInfo>,
    pub api_cost: ApiCost,
    #[serde(default)]
    pub errors: Vec<String>,
    /// How many times the collection was resumed.
    #[serde(default)]
    pub resumes: u32,
    /// Whether every chunk it names is in the warehouse: set after a load succeeds, cleared
    /// whenever the collection runs again. A completed collection that is not loaded (a load
    /// interrupted by a crash, a `--no-load` run) is loaded by the next job that loads.
    #[serde(default)]
    pub loaded: bool,
    /// Pull requests GitHub could not serve in repositories this collection did not plan (a
    /// run over other `--repos`), by repository id, carried to the next collection that does.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub not_collectable_elsewhere:
        std::collections::BTreeMap<String, Vec<crate::github::pulls::SkippedPullRequest>>,
}

/// Reads and writes checkpoints at `{org}/_checkpoints/{collection_id}.json`.
#[derive(Clone)]
pub struct CheckpointStore {
    lake: Lake,
    org: OrgName,
}

impl CheckpointStore {
    pub fn new(lake: Lake, org: OrgName) -> Self {
        CheckpointStore { lake, org }
    }

    pub async fn save(&self, c: &Checkpoint) -> anyhow::Result<()> {
        let path = self.lake.checkpoint_path(&self.org, &c.collection_id);
        let bytes = serde_json::to_vec_pretty(c)?;
        self.lake
            .put(&path, Bytes::from(bytes))
            .await
            .map_err(|e| anyhow::anyhow!("writing checkpoint {path}: {e}"))
    }

    pub async fn load(&self, collection_id: &str) -> anyhow::Result<Checkpoint> {
        if !super::is_collection_id(collection_id) {
            anyhow::bail!("{collection_id:?} is not a collection id");
        }
        let path = self.lake.checkpoint_path(&self.org, collection_id);
        let bytes = self
            .lake
            .get(&path)
            .await
            .map_err(|e| anyhow::anyhow!("reading checkpoint {path}: {e}"))?;
        let c: Checkpoint = serde_json::from_slice(&bytes)?;
        if c.schema_version > SCHEMA_VERSION {
            anyhow::bail!("checkpoint {collection_id} has schema version {}, newer than this build's {SCHEMA_VERSION}", c.schema_version);
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::sync::Arc;

    fn sample(id: &str, cursor: Option<String>, prs: u64) -> Checkpoint {
        let t = DateTime::parse_from_rfc3339("2026-11-21T09:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        Checkpoint {
            schema_version: SCHEMA_VERSION,
            collection_id: id.into(),
            organization: "acme".into(),
            kind: CollectionKind::Collect,
            window: Window {
                since: t - chrono::Duration::hours(2),
                until: t,
            },
            started_at: t,
            updated_at: t,
            status: Status::Running,
            repos: vec![RepoProgress {
                id: Some(42),
                name: "r".into(),
                state: RepoState::InProgress,
                walk: WalkState {
                    cursor,
                    pages_done: false,
                    ..WalkState::default()
                },
                pull_requests: prs,
                rows: BTreeMap::from([("pull_requests".to_string(), prs)]),
                next_seq: BTreeMap::from([("pull_requests".to_string(), 2)]),
                error: None,
                repository: None,
            }],
            chunks: vec![],
            api_cost: ApiCost {
                rest_requests: 1,
                graphql_queries: 2,
                graphql_points: 3,
            },
            errors: vec![],
            resumes: 0,
            loaded: false,
            not_collectable_elsewhere: Default::default(),
        }
    }

    proptest! {
        #[test]
        fn checkpoints_round_trip(cursor in proptest::option::of("\\PC{0,40}"), prs in 0u64..1_000_000) {
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            rt.block_on(async {
                let lake = Lake::new(Arc::new(object_store::memory::InMemory::new()), None);
                let store = CheckpointStore::new(lake, "acme".parse().unwrap());
                let c = sample("20261121T090000Z-abcdef", cursor, prs);
                store.save(&c).await.unwrap();
                let back = store.load("20261121T090000Z-abcdef").await.unwrap();
                assert_eq!(back, c);
            });
        }
    }

    #[tokio::test]
    async fn loading_refuses_ids_that_are_not_collection_ids() {
        let lake = Lake::new(Arc::new(object_store::memory::InMemory::new()), None);
        let store = CheckpointStore::new(lake, "acme".parse().unwrap());
        assert!(store.load("../../secrets").await.is_err());
    }
}
