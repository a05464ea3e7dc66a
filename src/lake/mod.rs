//! Object storage: the layout in ARCHITECTURE.md, NDJSON chunks and checkpoints, on any
//! `object_store` backend.

pub mod checkpoint;
pub mod chunk;
pub mod conformance;
pub mod lock;
pub mod parquet;

use crate::config::StorageUrl;
use crate::names::{OrgName, RepoName};
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use std::sync::Arc;

pub use checkpoint::{Checkpoint, CheckpointError, CheckpointStore};
pub use chunk::{ChunkInfo, ChunkWriter};

/// A stored file ghstats could not read back (truncated, corrupted, or not of this build's
/// shape), and what was done so it blocks nothing: a checkpoint is set aside under
/// `set_aside_as`; a chunk stays where it is and is left out of the load that met it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Damaged {
    /// The object's path where it was found.
    pub path: String,
    /// Why it could not be read, e.g. `EOF while parsing a value at line 9663 column 14`.
    pub reason: String,
    /// Where it was moved (`….json.damaged`); absent when it was left in place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_aside_as: Option<String>,
}

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

/// Where a chunk sits in the layout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkLocation {
    pub org: OrgName,
    pub repo: RepoName,
    pub table: String,
    pub date: chrono::NaiveDate,
    pub collection_id: String,
    pub seq: u32,
}

/// The storage behind a run, with the layout's paths.
#[derive(Clone)]
pub struct Lake {
    store: Arc<dyn ObjectStore>,
    prefix: Option<Path>,
    /// The bucket, when the store is Google Cloud Storage: BigQuery load jobs then read the
    /// chunks straight from it.
    gcs_bucket: Option<String>,
}

impl Lake {
    pub fn new(store: Arc<dyn ObjectStore>, prefix: Option<Path>) -> Self {
        Lake {
            store,
            prefix,
            gcs_bucket: None,
        }
    }

    /// The same lake, known to be the GCS bucket `bucket` (whatever client `store` is).
    pub fn with_gcs_bucket(mut self, bucket: impl Into<String>) -> Self {
        self.gcs_bucket = Some(bucket.into());
        self
    }

    /// `gs://bucket/path` for an object of this lake, when it is in Google Cloud Storage.
    pub fn gcs_uri(&self, path: &str) -> Option<String> {
        self.gcs_bucket
            .as_ref()
            .map(|b| format!("gs://{b}/{}", path.trim_start_matches('/')))
    }

    /// Opens the storage a URL names; a local directory is created if missing. Cloud
    /// credentials come from the environment as each cloud's SDKs read them (Application
    /// Default Credentials on Cloud Run; `AWS_*` for S3). `endpoint` points gs:// or s3:// at
    /// another server, such as an emulator.
    pub fn open(url: &StorageUrl, endpoint: Option<&url::Url>) -> anyhow::Result<Lake> {
        use anyhow::Context;
        let prefix = |p: &str| (!p.is_empty()).then(|| Path::from(p));
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
            StorageUrl::Gcs { bucket, prefix: p } => {
                let mut b = object_store::gcp::GoogleCloudStorageBuilder::from_env()
                    .with_bucket_name(bucket);
                if let Some(e) = endpoint {
                    // Emulators take no credentials; this key only carries the base URL.
                    let key = serde_json::json!({
                        "gcs_base_url": e.as_str().trim_end_matches('/'), "disable_oauth": true,
                        "client_email": "", "private_key": "", "private_key_id": "",
                    });
                    b = b.with_service_account_key(key.to_string());
                }
                let store = b.build().with_context(|| format!("opening {url}"))?;
                Ok(Lake::new(Arc::new(store), prefix(p)).with_gcs_bucket(bucket))
            }
            StorageUrl::S3 { bucket, prefix: p } => {
                let mut b = object_store::aws::AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    .with_conditional_put(object_store::aws::S3ConditionalPut::ETagMatch);
                if std::env::var_os("AWS_REGION").is_none()
                    && std::env::var_os("AWS_DEFAULT_REGION").is_none()
                {
                    b = b.with_region("us-east-1");
                }
                if let Some(e) = endpoint {
                    b = b
                        .with_endpoint(e.as_str().trim_end_matches('/'))
                        .with_allow_http(e.scheme() == "http");
                }
                let store = b.build().with_context(|| format!("opening {url}"))?;
                Ok(Lake::new(Arc::new(store), prefix(p)))
            }
        }
    }

    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// `parts` joined under this lake's prefix.
    pub fn path_of(&self, parts: &[&str]) -> Path {
        self.path(parts)
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

    pub fn lock_path(&self, org: &OrgName) -> Path {
        self.path(&[org.as_str(), "_locks", "run.json"])
    }

    pub fn checkpoints_dir(&self, org: &OrgName) -> Path {
        self.path(&[org.as_str(), "_checkpoints"])
    }

    pub fn org_dir(&self, org: &OrgName) -> Path {
        self.path(&[org.as_str()])
    }

    /// What a chunk's object path says: `{org}/{repo}/{table}/{date}/{id}_chunk_{seq}.ndjson.gz`
    /// under this lake's prefix. `None` for anything else (checkpoints, locks, strays).
    pub fn parse_chunk_path(&self, path: &Path) -> Option<ChunkLocation> {
        let base: Vec<String> = self
            .prefix
            .as_ref()
            .map(|p| p.parts().map(|s| s.as_ref().to_string()).collect())
            .unwrap_or_default();
        let parts: Vec<String> = path.parts().map(|s| s.as_ref().to_string()).collect();
        let rest = parts.strip_prefix(base.as_slice())?;
        let [org, repo, table, date, file] = rest else {
            return None;
        };
        let (id, seq) = file.strip_suffix(".ndjson.gz")?.split_once("_chunk_")?;
        if !is_collection_id(id) || seq.len() < 5 || !seq.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(ChunkLocation {
            org: org.parse().ok()?,
            repo: repo.parse().ok()?,
            table: table.clone(),
            date: chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?,
            collection_id: id.to_string(),
            seq: seq.parse().ok()?,
        })
    }

    /// Every name under which this lake stores the repository called `repo`: `repo` itself and
    /// the names it had before or after a rename, found by its id (`repo_id`) in the
    /// `repositories` chunks of each name's directory. Just `repo` when the lake holds no
    /// `repositories` row of it. A `repositories` chunk that cannot be read is left out and
    /// returned beside the names, with its path and why.
    pub async fn names_of_repository(
        &self,
        org: &OrgName,
        repo: &RepoName,
    ) -> anyhow::Result<(Vec<RepoName>, Vec<Damaged>)> {
        use std::collections::BTreeSet;
        let mut by_name: std::collections::BTreeMap<RepoName, BTreeSet<u64>> = Default::default();
        let mut damaged = Vec::new();
        for (path, _) in self.list(&self.org_dir(org)).await? {
            let Some(loc) = self.parse_chunk_path(&path) else {
                continue;
            };
            if loc.table != crate::tables::REPOSITORIES.name {
                continue;
            }
            let bytes = self.get(&path).await?;
            let rows = match chunk::decode_chunk(&bytes) {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::error!(path = %path, reason = %e, "A damaged repositories chunk was left out of the search for a repository's names.");
                    damaged.push(Damaged {
                        path: path.to_string(),
                        reason: e.to_string(),
                        set_aside_as: None,
                    });
                    continue;
                }
            };
            by_name
                .entry(loc.repo)
                .or_default()
                .extend(rows.iter().filter_map(|row| row["repo_id"].as_u64()));
        }
        let ids = by_name.get(repo).cloned().unwrap_or_default();
        let mut names: BTreeSet<RepoName> = by_name
            .into_iter()
            .filter(|(_, theirs)| !theirs.is_disjoint(&ids))
            .map(|(name, _)| name)
            .collect();
        names.insert(repo.clone());
        Ok((names.into_iter().collect(), damaged))
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

    /// Deletes every object under `prefix`; returns how many.
    pub async fn delete_prefix(&self, prefix: &Path) -> object_store::Result<u64> {
        let mut n = 0;
        for (path, _) in self.list(prefix).await? {
            match self.store.delete(&path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => n += 1,
                Err(e) => return Err(e),
            }
        }
        Ok(n)
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

    proptest::proptest! {
        #[test]
        fn chunk_paths_round_trip(repo in "[a-z0-9][a-z0-9._-]{0,20}", seq in 0u32..100_000, day in 1u32..28) {
            let lake = Lake::new(Arc::new(object_store::memory::InMemory::new()), Some(Path::from("pre")));
            let org: OrgName = "acme".parse().unwrap();
            let repo: RepoName = repo.parse().unwrap();
            let date = format!("2026-02-{day:02}");
            let id = "20261121T091600Z-abcdef";
            let path = lake.chunk_path(&org, &repo, "reviews", &date, id, seq);
            let loc = lake.parse_chunk_path(&path).unwrap();
            proptest::prop_assert_eq!(loc, ChunkLocation { org, repo, table: "reviews".into(), date: date.parse().unwrap(), collection_id: id.into(), seq });
        }
    }

    #[test]
    fn other_objects_are_not_chunks() {
        let lake = Lake::new(Arc::new(object_store::memory::InMemory::new()), None);
        for p in [
            "acme/_checkpoints/20261121T091600Z-abcdef.json",
            "acme/r/t/2026-01-01/junk.ndjson.gz",
            "acme/r/t/not-a-date/20261121T091600Z-abcdef_chunk_00001.ndjson.gz",
            "x",
        ] {
            assert!(lake.parse_chunk_path(&Path::from(p)).is_none(), "{p}");
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
