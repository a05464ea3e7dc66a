//! The lease lock that keeps one run per organization at a time: `{org}/_locks/run.json`,
//! created with create-if-not-exists and carrying an expiry. A live run renews it; a lock left
//! by a dead run expires and is taken over. A lock object that cannot be read (truncated,
//! corrupted) is held until a lease after it was last written, then taken over the same way.
//!
//! Taking over and renewing use compare-and-swap (`PutMode::Update` with the version read) on
//! stores that have it: GCS (generations), S3 (ETag `If-Match`), memory. The local filesystem
//! has create-only but no compare-and-swap: there a takeover deletes the expired lock and
//! creates a new one with create-only, so of two takers at once only one creates it; the other
//! sees `AlreadyExists` and is refused. What remains is the narrow case of a taker deleting a
//! lock another taker created a moment earlier from the same expired state; the local store
//! serves one machine, where runs come from one scheduler, and each run re-reads the lock
//! before renewing and stops if another holder appears.

use super::Lake;
use crate::names::OrgName;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockRecord {
    /// Who holds it: a collection id.
    pub holder: String,
    pub acquired_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A held lease.
#[derive(Clone, Debug)]
pub struct Lease {
    pub record: LockRecord,
    version: UpdateVersion,
}

impl Lease {
    /// The lease a successful write of `record` gives, with the version the write returned.
    fn new(record: LockRecord, put: object_store::PutResult) -> Self {
        Lease {
            record,
            version: UpdateVersion {
                e_tag: put.e_tag,
                version: put.version,
            },
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another run ({holder}) holds the lock until {expires_at}")]
    Held {
        holder: String,
        expires_at: DateTime<Utc>,
    },
    #[error("the lock was taken over by {0}")]
    Lost(String),
    #[error("lock storage: {0}")]
    Storage(#[from] object_store::Error),
    #[error("the lock object is unreadable: {0}")]
    Corrupt(String),
}

pub struct LeaseLock {
    lake: Lake,
    path: Path,
    lease: Duration,
}

/// Who a lock read names, for `Lost`.
fn holder_of(current: Option<(LockRecord, UpdateVersion)>) -> String {
    current
        .map(|(r, _)| r.holder)
        .unwrap_or_else(|| "nobody".into())
}

impl LeaseLock {
    pub fn new(lake: Lake, org: &OrgName, lease: Duration) -> Self {
        let path = lake.lock_path(org);
        LeaseLock { lake, path, lease }
    }

    /// A lock at `path` (jobs not tied to an organization, e.g. GH Archive's).
    pub fn at(lake: Lake, path: Path, lease: Duration) -> Self {
        LeaseLock { lake, path, lease }
    }

    fn record(&self, holder: &str, acquired_at: DateTime<Utc>) -> LockRecord {
        let now = Utc::now();
        LockRecord {
            holder: holder.to_string(),
            acquired_at,
            expires_at: now
                + chrono::Duration::from_std(self.lease).unwrap_or(chrono::Duration::hours(1)),
        }
    }

    /// Writes `record` as the lock with `mode` (create-only, compare-and-swap or overwrite).
    async fn write(
        &self,
        record: &LockRecord,
        mode: PutMode,
    ) -> object_store::Result<object_store::PutResult> {
        let bytes = serde_json::to_vec(record).map_err(|e| object_store::Error::Generic {
            store: "lock",
            source: Box::new(e),
        })?;
        let opts = PutOptions {
            mode,
            ..PutOptions::default()
        };
        self.lake
            .store()
            .put_opts(&self.path, PutPayload::from_bytes(Bytes::from(bytes)), opts)
            .await
    }

    /// The current lock and its version, if any.
    pub async fn current(&self) -> Result<Option<(LockRecord, UpdateVersion)>, LockError> {
        match self.lake.store().get(&self.path).await {
            Ok(r) => {
                let version = UpdateVersion {
                    e_tag: r.meta.e_tag.clone(),
                    version: r.meta.version.clone(),
                };
                let bytes = r.bytes().await?;
                let record = serde_json::from_slice(&bytes)
                    .map_err(|e| LockError::Corrupt(e.to_string()))?;
                Ok(Some((record, version)))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Takes the lock for `holder`, or says who holds it.
    pub async fn acquire(&self, holder: &str) -> Result<Lease, LockError> {
        let record = self.record(holder, Utc::now());
        match self.write(&record, PutMode::Create).await {
            Ok(r) => return Ok(Lease::new(record, r)),
            Err(object_store::Error::AlreadyExists { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        let (current, version) = match self.current().await {
            Ok(Some(c)) => c,
            // Released between our create and our read: try once more.
            Ok(None) => return Box::pin(self.acquire(holder)).await,
            Err(LockError::Corrupt(reason)) => return self.take_unreadable(record, reason).await,
            Err(e) => return Err(e),
        };
        if current.expires_at > Utc::now() {
            return Err(LockError::Held {
                holder: current.holder,
                expires_at: current.expires_at,
            });
        }
        tracing::warn!(previous = %current.holder, expired = %current.expires_at, "Taking over an expired run lock.");
        match self.write(&record, PutMode::Update(version)).await {
            Ok(r) => Ok(Lease::new(record, r)),
            Err(object_store::Error::Precondition { .. })
            | Err(object_store::Error::AlreadyExists { .. }) => Err(self.held().await),
            Err(object_store::Error::NotImplemented { .. }) => {
                // No compare-and-swap (local filesystem): delete the expired lock, then create.
                match self.lake.store().delete(&self.path).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
                match self.write(&record, PutMode::Create).await {
                    Ok(r) => Ok(Lease::new(record, r)),
                    Err(object_store::Error::AlreadyExists { .. }) => Err(self.held().await),
                    Err(e) => Err(e.into()),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// A lock whose object cannot be read (truncated, corrupted) names no holder and no expiry.
    /// It is treated as held until a lease after its object was last written: a live holder
    /// renews it (each renewal rewrites the object) and keeps it, and a lock nobody renews is
    /// taken over like an expired one, with a warning naming its path and why.
    async fn take_unreadable(
        &self,
        record: LockRecord,
        reason: String,
    ) -> Result<Lease, LockError> {
        let meta = match self.lake.store().head(&self.path).await {
            Ok(m) => m,
            // Deleted since: take it the ordinary way.
            Err(object_store::Error::NotFound { .. }) => {
                return Box::pin(self.acquire(&record.holder)).await
            }
            Err(e) => return Err(e.into()),
        };
        let until = meta.last_modified
            + chrono::Duration::from_std(self.lease).unwrap_or(chrono::Duration::hours(1));
        if until > Utc::now() {
            return Err(LockError::Held {
                holder: format!("unknown: the lock {} is unreadable ({reason})", self.path),
                expires_at: until,
            });
        }
        tracing::warn!(path = %self.path, reason, written = %meta.last_modified, "Taking over an unreadable run lock not rewritten for a lease.");
        let version = UpdateVersion {
            e_tag: meta.e_tag,
            version: meta.version,
        };
        match self.write(&record, PutMode::Update(version)).await {
            Ok(r) => Ok(Lease::new(record, r)),
            Err(object_store::Error::Precondition { .. })
            | Err(object_store::Error::AlreadyExists { .. }) => Err(self.held().await),
            Err(object_store::Error::NotImplemented { .. }) => {
                // No compare-and-swap (local filesystem): as for an expired lock.
                match self.lake.store().delete(&self.path).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
                match self.write(&record, PutMode::Create).await {
                    Ok(r) => Ok(Lease::new(record, r)),
                    Err(object_store::Error::AlreadyExists { .. }) => Err(self.held().await),
                    Err(e) => Err(e.into()),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn held(&self) -> LockError {
        match self.current().await {
            Ok(Some((r, _))) => LockError::Held {
                holder: r.holder,
                expires_at: r.expires_at,
            },
            Ok(None) => LockError::Lost(holder_of(None)),
            Err(e) => e,
        }
    }

    /// Extends a held lease; fails with `Lost` if another run has taken the lock.
    pub async fn renew(&self, lease: &mut Lease) -> Result<(), LockError> {
        let record = self.record(&lease.record.holder, lease.record.acquired_at);
        match self
            .write(&record, PutMode::Update(lease.version.clone()))
            .await
        {
            Ok(r) => {
                *lease = Lease::new(record, r);
                Ok(())
            }
            Err(object_store::Error::Precondition { .. })
            | Err(object_store::Error::NotFound { .. }) => {
                Err(LockError::Lost(holder_of(self.current().await?)))
            }
            Err(object_store::Error::NotImplemented { .. }) => {
                // No compare-and-swap: re-read, and overwrite only while it is still ours.
                match self.current().await? {
                    Some((r, _)) if r.holder == lease.record.holder => {
                        let put = self.write(&record, PutMode::Overwrite).await?;
                        *lease = Lease::new(record, put);
                        Ok(())
                    }
                    other => Err(LockError::Lost(holder_of(other))),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Gives the lock up, if it is still ours.
    pub async fn release(&self, lease: Lease) -> Result<(), LockError> {
        match self.current().await? {
            Some((r, _)) if r.holder == lease.record.holder => {
                match self.lake.store().delete(&self.path).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                    Err(e) => Err(e.into()),
                }
            }
            _ => Ok(()),
        }
    }
}
