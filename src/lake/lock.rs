//! The lease lock that keeps one run per organization at a time: `{org}/_locks/run.json`,
//! created with create-if-not-exists and carrying an expiry. A live run renews it; a lock left
//! by a dead run expires and is taken over. A lock object that cannot be read (truncated,
//! corrupted) is held until a lease after it was last written, then taken over the same way
//! (at once with [`LeaseLock::force`]).
//!
//! Taking over and renewing use compare-and-swap (`PutMode::Update` with the version read) on
//! stores that have it: GCS (generations), S3 (ETag `If-Match`), memory. The local filesystem
//! has create-only but no compare-and-swap: there a takeover deletes the expired lock and
//! creates a new one with create-only, so of two takers at once only one creates it; the other
//! sees `AlreadyExists` and is refused. What remains is the narrow case of a taker deleting a
//! lock another taker created a moment earlier from the same expired state; the local store
//! serves one machine, where runs come from one scheduler, and each run re-reads the lock
//! before renewing and stops if another holder appears.
//!
//! The record names its holder's host and process, so a refusal can say who holds the lock,
//! since when and for how long, and whether that process is gone (checked only when it ran on
//! this same host and boot). An operator who knows the holder is gone takes the lock over with
//! [`LeaseLock::force`]; a holder still alive then loses it at its next renewal and stops.

use super::Lake;
use crate::names::OrgName;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The lock object, `{org}/_locks/run.json`, as JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockRecord {
    /// Who holds it: a collection id (`wipe-{repo}` for a wipe).
    pub holder: String,
    /// When the holder took the lock (kept through renewals).
    pub acquired_at: DateTime<Utc>,
    /// When the lease runs out unless renewed; after it, any run may take the lock over.
    pub expires_at: DateTime<Utc>,
    /// The holder's host name (`None` in locks written by builds that did not record it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The holder's process id on that host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// The Linux boot id of the holder's host: a pid is only checked on the same host and boot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_id: Option<String>,
}

/// Whether the process that holds a lock still runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HolderProcess {
    /// It ran on this host and boot, and no process has its pid any more: the run is dead.
    Gone,
    /// It runs on this host (a process with its pid exists).
    Running,
    /// It ran elsewhere (another host or container), or the lock does not say: unknown.
    Unknown,
}

/// The process taking the lock: its host, pid and boot id.
fn this_process() -> (Option<String>, u32, Option<String>) {
    let read = |path: &str| {
        std::fs::read_to_string(path)
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    };
    let host = read("/proc/sys/kernel/hostname")
        .or_else(|| read("/etc/hostname"))
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()));
    (
        host,
        std::process::id(),
        read("/proc/sys/kernel/random/boot_id"),
    )
}

impl LockRecord {
    /// Whether `other` is the same taking of the lock: the same holder, taken at the same
    /// moment by the same process. A forced takeover by a run of the same collection is
    /// another owner.
    pub fn same_owner(&self, other: &LockRecord) -> bool {
        self.holder == other.holder
            && self.acquired_at == other.acquired_at
            && self.host == other.host
            && self.pid == other.pid
    }

    /// Whether the holder's process still runs, as far as this process can tell: only a lock
    /// taken on this host and boot (same host name and boot id) is checked, in `/proc`.
    pub fn holder_process(&self) -> HolderProcess {
        let (host, _, boot) = this_process();
        match (&self.host, self.pid, &self.boot_id) {
            (Some(h), Some(pid), Some(b))
                if host.as_ref() == Some(h)
                    && boot.as_ref() == Some(b)
                    && std::path::Path::new("/proc/self").exists() =>
            {
                if std::path::Path::new(&format!("/proc/{pid}")).exists() {
                    HolderProcess::Running
                } else {
                    HolderProcess::Gone
                }
            }
            _ => HolderProcess::Unknown,
        }
    }
}

/// A lock another run holds, as a refusal reports it. Its `Display` is one line: who holds it,
/// since when, how long the lease has left, and whether the holder is known to be gone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldBy {
    pub organization: String,
    pub record: LockRecord,
    /// When the lock was read: the time left is counted from it.
    pub read_at: DateTime<Utc>,
    pub process: HolderProcess,
}

/// A duration for people: `4m 12s`, `1h 05m`, `12s`, `2d 3h`.
pub fn human_duration(d: chrono::Duration) -> String {
    let s = d.num_seconds().max(0);
    let (days, hours, minutes, seconds) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    match (days, hours, minutes) {
        (0, 0, 0) => format!("{seconds}s"),
        (0, 0, _) => format!("{minutes}m {seconds:02}s"),
        (0, _, _) => format!("{hours}h {minutes:02}m"),
        _ => format!("{days}d {hours}h"),
    }
}

impl std::fmt::Display for HeldBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = &self.record;
        // The organization's lock, or a source's own (GH Archive's, the stars crawl's).
        let what = match self.organization.as_str() {
            "gharchive" => "GH Archive's lock is held".to_string(),
            "stars" => "the stars lock is held".to_string(),
            org => format!("organization {org} is locked"),
        };
        write!(f, "{what} by {}", describe_holder(r))?;
        write!(
            f,
            " since {}",
            r.acquired_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )?;
        let left = r.expires_at - self.read_at;
        if left > chrono::Duration::zero() {
            write!(f, "; the lease ends in {}", human_duration(left))?;
        } else {
            write!(f, "; the lease has just ended")?;
        }
        match (self.process, r.pid) {
            (HolderProcess::Gone, Some(pid)) => write!(
                f,
                "; no process {pid} runs on this host any more: that run is dead"
            ),
            _ => Ok(()),
        }
    }
}

/// `collection C (pid 1234 on host H)`, or without the parenthesis for a lock of an earlier
/// build.
fn describe_holder(r: &LockRecord) -> String {
    let who = if super::is_collection_id(&r.holder) {
        format!("collection {}", r.holder)
    } else {
        r.holder.clone()
    };
    match (&r.host, r.pid) {
        (Some(h), Some(p)) => format!("{who} (pid {p} on host {h})"),
        (None, Some(p)) => format!("{who} (pid {p})"),
        (Some(h), None) => format!("{who} (on host {h})"),
        (None, None) => who,
    }
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
    /// Another run holds the lock and its lease has not run out.
    #[error("{0}")]
    Held(Box<HeldBy>),
    #[error("the lock was taken over by {0}")]
    Lost(String),
    #[error("lock storage: {0}")]
    Storage(#[from] object_store::Error),
    #[error("the lock object is unreadable: {0}")]
    Corrupt(String),
}

pub struct LeaseLock {
    lake: Lake,
    org: String,
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
        LeaseLock {
            lake,
            org: org.to_string(),
            path,
            lease,
        }
    }

    /// A lock at `path` (jobs not tied to an organization, e.g. GH Archive's).
    /// `name` stands where refusals name the organization.
    pub fn at(lake: Lake, name: &str, path: Path, lease: Duration) -> Self {
        LeaseLock {
            lake,
            org: name.to_string(),
            path,
            lease,
        }
    }

    /// The record this process writes for `holder`: this host, pid and boot.
    fn record(&self, holder: &str, acquired_at: DateTime<Utc>) -> LockRecord {
        let now = Utc::now();
        let (host, pid, boot_id) = this_process();
        LockRecord {
            holder: holder.to_string(),
            acquired_at,
            expires_at: now
                + chrono::Duration::from_std(self.lease).unwrap_or(chrono::Duration::hours(1)),
            host,
            pid: Some(pid),
            boot_id,
        }
    }

    /// The refusal for a lock `record` holds.
    fn held_by(&self, record: LockRecord) -> LockError {
        LockError::Held(Box::new(HeldBy {
            organization: self.org.clone(),
            process: record.holder_process(),
            record,
            read_at: Utc::now(),
        }))
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

    /// Takes the lock for `holder`, or says who holds it (`Held`). A lock whose lease ran out is
    /// taken over.
    pub async fn acquire(&self, holder: &str) -> Result<Lease, LockError> {
        self.take(holder, false).await
    }

    /// Takes the lock for `holder` even while another run holds it (`--force`, for an
    /// operator who knows that run is gone). The takeover is logged as a warning; a holder
    /// still alive loses the lock at its next renewal and stops. Fails only on storage errors,
    /// or when a third run takes the lock at the same moment (`Held`).
    pub async fn force(&self, holder: &str) -> Result<Lease, LockError> {
        self.take(holder, true).await
    }

    async fn take(&self, holder: &str, force: bool) -> Result<Lease, LockError> {
        let record = self.record(holder, Utc::now());
        match self.write(&record, PutMode::Create).await {
            Ok(r) => return Ok(Lease::new(record, r)),
            Err(object_store::Error::AlreadyExists { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        let (current, version) = match self.current().await {
            Ok(Some(c)) => c,
            // Released between our create and our read: try once more.
            Ok(None) => return Box::pin(self.take(holder, force)).await,
            Err(LockError::Corrupt(reason)) => {
                return self.take_unreadable(record, reason, force).await
            }
            Err(e) => return Err(e),
        };
        if current.expires_at > Utc::now() {
            if !force {
                return Err(self.held_by(current));
            }
            tracing::warn!(
                previous = %current.holder,
                host = current.host.as_deref().unwrap_or("unknown"),
                pid = current.pid.map(i64::from).unwrap_or(-1),
                expires = %current.expires_at,
                "Taking over a run lock that has not expired (--force); if that run is still alive, it stops at its next renewal."
            );
        } else {
            tracing::warn!(previous = %current.holder, expired = %current.expires_at, "Taking over an expired run lock.");
        }
        match self.write(&record, PutMode::Update(version)).await {
            Ok(r) => Ok(Lease::new(record, r)),
            Err(object_store::Error::Precondition { .. })
            | Err(object_store::Error::AlreadyExists { .. }) => Err(self.held().await),
            Err(object_store::Error::NotImplemented { .. }) => {
                // No compare-and-swap (local filesystem): delete the lock read (expired, or
                // forced), then create.
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
        force: bool,
    ) -> Result<Lease, LockError> {
        let meta = match self.lake.store().head(&self.path).await {
            Ok(m) => m,
            // Deleted since: take it the ordinary way.
            Err(object_store::Error::NotFound { .. }) => {
                return Box::pin(self.take(&record.holder, force)).await
            }
            Err(e) => return Err(e.into()),
        };
        let until = meta.last_modified
            + chrono::Duration::from_std(self.lease).unwrap_or(chrono::Duration::hours(1));
        if until > Utc::now() && !force {
            return Err(self.held_by(LockRecord {
                holder: format!("unknown: the lock {} is unreadable ({reason})", self.path),
                acquired_at: meta.last_modified,
                expires_at: until,
                host: None,
                pid: None,
                boot_id: None,
            }));
        }
        tracing::warn!(path = %self.path, reason, written = %meta.last_modified, forced = force, "Taking over an unreadable run lock.");
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
            Ok(Some((r, _))) => self.held_by(r),
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
                    Some((r, _)) if r.same_owner(&lease.record) => {
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
            Some((r, _)) if r.same_owner(&lease.record) => {
                match self.lake.store().delete(&self.path).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                    Err(e) => Err(e.into()),
                }
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_lock_of_an_earlier_build_still_reads() {
        let r: LockRecord = serde_json::from_str(
            r#"{"holder":"20261121T091600Z-3fa9c2","acquired_at":"2026-11-21T09:16:00Z","expires_at":"2026-11-21T09:21:00Z"}"#,
        )
        .unwrap();
        assert_eq!((r.host, r.pid, r.boot_id), (None, None, None));
    }

    #[test]
    fn the_holder_process_is_judged_only_on_this_host_and_boot() {
        let (host, pid, boot_id) = this_process();
        let mine = LockRecord {
            holder: "20261121T091600Z-3fa9c2".into(),
            acquired_at: Utc::now(),
            expires_at: Utc::now(),
            host: host.clone(),
            pid: Some(pid),
            boot_id: boot_id.clone(),
        };
        if host.is_none() || boot_id.is_none() {
            eprintln!("skipped: no /proc on this system");
            return;
        }
        assert_eq!(mine.holder_process(), HolderProcess::Running);
        // A process that has ended (and been reaped) has no /proc entry.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let gone = LockRecord {
            pid: Some(dead),
            ..mine.clone()
        };
        assert_eq!(gone.holder_process(), HolderProcess::Gone);
        // The same pid on another host, or after a reboot, says nothing about this one.
        for other in [
            LockRecord {
                host: Some("another-host".into()),
                ..gone.clone()
            },
            LockRecord {
                boot_id: Some("another-boot".into()),
                ..gone.clone()
            },
            LockRecord {
                host: None,
                pid: None,
                boot_id: None,
                ..gone.clone()
            },
        ] {
            assert_eq!(other.holder_process(), HolderProcess::Unknown, "{other:?}");
        }
    }

    #[test]
    fn a_refusal_names_the_holder_the_time_left_and_a_dead_holder() {
        let record = LockRecord {
            holder: "20261121T091600Z-3fa9c2".into(),
            acquired_at: at("2026-11-21T09:16:00Z"),
            expires_at: at("2026-11-21T09:21:00Z"),
            host: Some("worker-1".into()),
            pid: Some(1234),
            boot_id: Some("b".into()),
        };
        let mut held = HeldBy {
            organization: "acme".into(),
            record: record.clone(),
            read_at: at("2026-11-21T09:16:48Z"),
            process: HolderProcess::Unknown,
        };
        assert_eq!(
            held.to_string(),
            "organization acme is locked by collection 20261121T091600Z-3fa9c2 (pid 1234 on host worker-1) since 2026-11-21T09:16:00Z; the lease ends in 4m 12s"
        );
        held.process = HolderProcess::Gone;
        assert!(held
            .to_string()
            .ends_with("; the lease ends in 4m 12s; no process 1234 runs on this host any more: that run is dead"));
        held.record = LockRecord {
            holder: "wipe-web".into(),
            host: None,
            pid: None,
            boot_id: None,
            ..record
        };
        held.process = HolderProcess::Unknown;
        assert_eq!(
            held.to_string(),
            "organization acme is locked by wipe-web since 2026-11-21T09:16:00Z; the lease ends in 4m 12s"
        );
    }

    #[test]
    fn durations_read_as_people_say_them() {
        let d = chrono::Duration::seconds;
        assert_eq!(human_duration(d(12)), "12s");
        assert_eq!(human_duration(d(252)), "4m 12s");
        assert_eq!(human_duration(d(3900)), "1h 05m");
        assert_eq!(human_duration(d(2 * 86_400 + 3 * 3600)), "2d 3h");
        assert_eq!(human_duration(d(-5)), "0s");
    }
}
