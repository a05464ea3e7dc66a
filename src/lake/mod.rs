//! Object storage: the layout of DESIGN §3, NDJSON chunks and checkpoints, on any
//! `object_store` backend.

pub mod checkpoint;
pub mod chunk;

use crate::config::StorageUrl;
use crate::names::{OrgName, RepoName};
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use std::sync::Arc;

pub use checkpoint::{Checkpoint, CheckpointStore};
pub use chunk::{ChunkInfo, ChunkWriter};

/// A collection id: `YYYYMMDDTHHMMSSZ-xxxxxx` (UTC start time and six random hex digits).
pub fn new_collection_id(at: chrono::DateTime<chrono::Utc>) -> String {
    let n: u32 = rand::random::<u32>() & 0xFF_FFFF;
    format!("{}-{n:06x}", at.format("%Y%m%dT%H%M%SZ"))
}

/// Whether `s` has the shape of a collection id (safe as part of an object name).
pub fn is_collection_id(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 23
        && b[..8].iter().all(u8::is_ascii_digit)
        && b[8] == b'T'
        && b[9..15].iter().all(u8::is_ascii_digit)
        && b[15] == b'Z'
        && b[16] == b'-'
        && b[17..]
            .iter()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
}

/// The storage behind a run, with the layout's paths.
#[derive(Clone)]
pub struct Lake {
    store: Arc<dyn ObjectStore>,
    prefix: Option<Path>,
}

impl Lake {
    pub fn new(store: Arc<dyn ObjectStore>, prefix: Option<Path>) -> Self {
        Lake { store, prefix }
    }

    /// Opens the storage a URL names; a local directory is created if missing.
    pub fn open(url: &StorageUrl) -> anyhow::Result<Lake> {
        use anyhow::Context;
        match url {
            StorageUrl::Local(dir) => {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating the storage directory {}", dir.display()))?;
                let fs = object_store::local::LocalFileSystem::new_with_prefix(dir)
                    .with_context(|| format!("opening the storage directory {}", dir.display()))?
                    .with_automatic_cleanup(true);
                Ok(Lake::new(Arc::new(fs), None))
            }
            StorageUrl::Memory => Ok(Lake::new(
                Arc::new(object_store::memory::InMemory::new()),
                None,
            )),
        }
    }

    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    fn path(&self, parts: &[&str]) -> Path {
        let base = self.prefix.clone().unwrap_or_default();
        parts.iter().fold(base, |p, part| p.join(*part))
    }

    /// `{org}/{repo}/{table}/{date}/{collection_id}_chunk_{seq:05}.ndjson.gz`
    pub fn chunk_path(
        &self,
        org: &OrgName,
        repo: &RepoName,
        table: &str,
        date: &str,
        collection_id: &str,
        seq: u32,
    ) -> Path {
        self.path(&[
            org.as_str(),
            repo.as_str(),
            table,
            date,
            &format!("{collection_id}_chunk_{seq:05}.ndjson.gz"),
        ])
    }

    pub fn checkpoint_path(&self, org: &OrgName, collection_id: &str) -> Path {
        self.path(&[
            org.as_str(),
            "_checkpoints",
            &format!("{collection_id}.json"),
        ])
    }

    pub fn checkpoints_dir(&self, org: &OrgName) -> Path {
        self.path(&[org.as_str(), "_checkpoints"])
    }

    pub fn repo_dir(&self, org: &OrgName, repo: &RepoName) -> Path {
        self.path(&[org.as_str(), repo.as_str()])
    }

    pub async fn put(&self, path: &Path, bytes: Bytes) -> object_store::Result<()> {
        self.store
            .put(path, PutPayload::from_bytes(bytes))
            .await
            .map(|_| ())
    }

    pub async fn get(&self, path: &Path) -> object_store::Result<Bytes> {
        self.store.get(path).await?.bytes().await
    }

    /// Every object under `prefix`, with its size.
    pub async fn list(&self, prefix: &Path) -> object_store::Result<Vec<(Path, u64)>> {
        self.store
            .list(Some(prefix))
            .map_ok(|m| (m.location, m.size))
            .try_collect()
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collection_ids_are_recognised() {
        let id = new_collection_id(chrono::Utc::now());
        assert!(is_collection_id(&id), "{id}");
        for bad in [
            "",
            "20261121T091600Z-zzzzzz",
            "../../etc/passwd",
            "20261121T091600Z-abc",
        ] {
            assert!(!is_collection_id(bad), "{bad}");
        }
    }

    #[test]
    fn paths_follow_the_layout() {
        let lake = Lake::new(
            Arc::new(object_store::memory::InMemory::new()),
            Some(Path::from("pre/fix")),
        );
        let org: OrgName = "acme".parse().unwrap();
        let repo: RepoName = "web.app".parse().unwrap();
        assert_eq!(
            lake.chunk_path(&org, &repo, "pull_requests", "2026-11-21", "20261121T091600Z-abcdef", 7).as_ref(),
            "pre/fix/acme/web.app/pull_requests/2026-11-21/20261121T091600Z-abcdef_chunk_00007.ndjson.gz"
        );
        assert_eq!(
            lake.checkpoint_path(&org, "X").as_ref(),
            "pre/fix/acme/_checkpoints/X.json"
        );
    }
}
