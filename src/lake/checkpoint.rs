//! The checkpoint of a collection: its window, the repositories planned and where each stands,
//! the chunks written and the API cost so far. Written after the chunks it mentions.

use super::{ChunkInfo, Lake};
use crate::github::pulls::{WalkState, Window};
use crate::github::ApiCost;
use crate::names::OrgName;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use object_store::path::Path;
use object_store::ObjectStoreExt;
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

/// Why a checkpoint could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The id does not have the shape of a collection id; nothing was read.
    #[error("{0:?} is not a collection id")]
    NotAnId(String),
    /// There is no checkpoint at `path`.
    #[error("there is no checkpoint {path}")]
    NotFound { path: String },
    /// The object at `path` is not a checkpoint (truncated, corrupted): the caller holding the
    /// organization's lock sets it aside with [`CheckpointStore::set_aside`].
    #[error("checkpoint {path} is damaged: {reason}")]
    Damaged { path: String, reason: String },
    /// Written by a newer build, whose fields this one may not know: left alone.
    #[error(
        "checkpoint {path} has schema version {found}, newer than this build's {SCHEMA_VERSION}"
    )]
    Newer { path: String, found: u32 },
    /// Storage did not answer.
    #[error("reading checkpoint {path}: {source}")]
    Storage {
        path: String,
        source: object_store::Error,
    },
}

/// Parses a checkpoint object; the error is the parser's, e.g. `EOF while parsing a value at
/// line 9663 column 14`.
pub fn parse(bytes: &[u8]) -> Result<Checkpoint, String> {
    serde_json::from_slice(bytes).map_err(|e| e.to_string())
}

/// The suffix a damaged checkpoint's object gets when it is set aside.
pub const DAMAGED_SUFFIX: &str = ".damaged";

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

    /// Reads a collection's checkpoint. A damaged one is [`CheckpointError::Damaged`], with
    /// its path and the parse error.
    pub async fn load(&self, collection_id: &str) -> Result<Checkpoint, CheckpointError> {
        if !super::is_collection_id(collection_id) {
            return Err(CheckpointError::NotAnId(collection_id.to_string()));
        }
        let path = self.lake.checkpoint_path(&self.org, collection_id);
        let bytes = match self.lake.get(&path).await {
            Ok(b) => b,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(CheckpointError::NotFound {
                    path: path.to_string(),
                })
            }
            Err(source) => {
                return Err(CheckpointError::Storage {
                    path: path.to_string(),
                    source,
                })
            }
        };
        let c = parse(&bytes).map_err(|reason| CheckpointError::Damaged {
            path: path.to_string(),
            reason,
        })?;
        if c.schema_version > SCHEMA_VERSION {
            return Err(CheckpointError::Newer {
                path: path.to_string(),
                found: c.schema_version,
            });
        }
        Ok(c)
    }

    /// Where a collection's checkpoint goes when it is set aside:
    /// `{org}/_checkpoints/{collection_id}.json.damaged`. No job reads it as a checkpoint again.
    pub fn set_aside_path(&self, collection_id: &str) -> Path {
        let path = self.lake.checkpoint_path(&self.org, collection_id);
        Path::from(format!("{path}{DAMAGED_SUFFIX}"))
    }

    /// Sets a damaged checkpoint aside: its object moves to [`Self::set_aside_path`], so it is
    /// no longer anyone's newest collection, and an ERROR log line names both paths and
    /// `reason`. Its collection cannot be resumed; its chunks stay where they are and load with
    /// `ghstats load`. Only a run holding the organization's lock calls it.
    pub async fn set_aside(
        &self,
        collection_id: &str,
        reason: String,
    ) -> anyhow::Result<super::Damaged> {
        let path = self.lake.checkpoint_path(&self.org, collection_id);
        let to = self.set_aside_path(collection_id);
        // Copied by hand rather than renamed: every store takes a put and a delete.
        match self.lake.get(&path).await {
            Ok(bytes) => self
                .lake
                .put(&to, bytes)
                .await
                .map_err(|e| anyhow::anyhow!("setting checkpoint {path} aside as {to}: {e}"))?,
            // Set aside meanwhile: the copy is there.
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => anyhow::bail!("setting checkpoint {path} aside: {e}"),
        }
        match self.lake.store().delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => anyhow::bail!("setting checkpoint {path} aside: deleting it: {e}"),
        }
        tracing::error!(
            path = %path,
            set_aside_as = %to,
            reason = %reason,
            collection_id,
            "A damaged checkpoint was set aside: its collection cannot be resumed; its chunks load with `ghstats load --collection-id`."
        );
        Ok(super::Damaged {
            path: path.to_string(),
            reason,
            set_aside_as: Some(to.to_string()),
        })
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

    /// A truncated checkpoint is reported with its path and the parse error, and setting it
    /// aside moves it to `….json.damaged`, where no job reads it as a checkpoint.
    #[tokio::test]
    async fn a_truncated_checkpoint_is_named_and_set_aside() {
        let lake = Lake::new(Arc::new(object_store::memory::InMemory::new()), None);
        let store = CheckpointStore::new(lake.clone(), "acme".parse().unwrap());
        let id = "20261121T090000Z-abcdef";
        store.save(&sample(id, None, 3)).await.unwrap();
        let path = lake.checkpoint_path(&"acme".parse().unwrap(), id);
        let whole = lake.get(&path).await.unwrap();
        lake.put(&path, whole.slice(..whole.len() / 2))
            .await
            .unwrap();
        let err = store.load(id).await.unwrap_err();
        let CheckpointError::Damaged {
            path: named,
            reason,
        } = &err
        else {
            panic!("{err:?}");
        };
        assert_eq!(named, "acme/_checkpoints/20261121T090000Z-abcdef.json");
        assert!(reason.contains("EOF while parsing"), "{reason}");
        assert!(err.to_string().contains(named.as_str()), "{err}");
        let d = store.set_aside(id, reason.clone()).await.unwrap();
        assert_eq!(
            d.set_aside_as.as_deref(),
            Some("acme/_checkpoints/20261121T090000Z-abcdef.json.damaged")
        );
        assert!(matches!(
            store.load(id).await,
            Err(CheckpointError::NotFound { .. })
        ));
        let kept = lake
            .get(&object_store::path::Path::from(d.set_aside_as.unwrap()))
            .await
            .unwrap();
        assert_eq!(kept, whole.slice(..whole.len() / 2), "the bytes are kept");
    }
}
