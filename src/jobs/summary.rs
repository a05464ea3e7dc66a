//! The summary job, read-only: the organization's collections (status, whether loaded, rows
//! written), who holds its lock, what is stored per repository, table and collection date
//! (files, rows, bytes), the distinct rows the lake holds per table, and the warehouse's row
//! counts beside them.
//!
//! The lake's distinct rows are what the warehouse holds once every stored chunk is loaded: rows
//! deduplicated by their table's key (a pull request collected by two overlapping windows counts
//! once), and a pull request's children from an older snapshot than its newest left out, as the
//! load's reconciliation deletes them (`src/warehouse/mod.rs`). Equal counts mean the warehouse
//! holds what the lake does; a lower warehouse count means chunks not loaded yet.
//!
//! GH Archive has its own section, from the warehouse's `gharchive_hours` table: hours
//! ingested, missing and failed, the oldest of those not ingested with their errors, and the
//! events and bytes of the ingested hours. It is absent when nothing is recorded there, the
//! warehouse has no such table, or the backend has no GH Archive.

use crate::github::pulls::Window;
use crate::lake::checkpoint::{self, CollectionKind, Status, DAMAGED_SUFFIX};
use crate::lake::chunk::decode_chunk;
use crate::lake::lock::{HeldBy, HolderProcess, LeaseLock};
use crate::lake::{Checkpoint, Damaged, Lake};
use crate::names::OrgName;
use crate::tables::{self, TableDef};
use crate::warehouse::{HourState, HourStatus, Warehouse, WarehouseError};
use anyhow::Context;
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// Chunks of one repository, table and collection date.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stored {
    pub repository: String,
    pub table: String,
    /// The UTC date its collections started (`YYYY-MM-DD`).
    pub date: String,
    pub files: u64,
    /// Rows in the chunks, duplicates across collections included.
    pub rows: u64,
    pub bytes: u64,
}

/// Where a collection stands, as `summary` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CollectionState {
    /// Running, or its process died while it ran (then it holds no lock; `resume` continues it).
    Running,
    /// Stopped by its budget or SIGTERM with work left.
    Partial,
    /// Every repository done, not (known to be) in the warehouse yet: a `--no-load` run, or a
    /// load that was interrupted. The next job that loads loads it.
    Completed,
    /// Completed and loaded into the warehouse.
    Loaded,
    /// A repository failed.
    Failed,
}

/// One collection, from its checkpoint.
#[derive(Clone, Debug, Serialize)]
pub struct CollectionSummary {
    pub collection_id: String,
    pub kind: CollectionKind,
    pub window: Window,
    pub status: CollectionState,
    /// Whether its chunks are in the warehouse (a partial collection is loaded as far as it got).
    pub loaded: bool,
    /// Whether it holds the organization's lock now.
    pub holds_lock: bool,
    pub started_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub resumes: u32,
    /// Rows written per table (duplicates of other collections included).
    pub rows: BTreeMap<String, u64>,
}

/// The organization's lock, when an object is there.
#[derive(Clone, Debug, Serialize)]
pub struct LockSummary {
    /// A collection id, or `wipe-{repo}`.
    pub holder: String,
    /// The holder's host and process id (absent in locks of earlier builds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    pub acquired_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// The lease ran out: the next run takes the lock over.
    pub expired: bool,
    /// Whether the holder's process still runs, judged only on its own host.
    pub process: HolderProcess,
    /// One line for people, as a refused run prints it.
    pub message: String,
}

/// What `summary` answers.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub organization: String,
    /// The lock object, if there is one (`null`: no run holds it).
    pub lock: Option<LockSummary>,
    /// Every collection, newest first.
    pub collections: Vec<CollectionSummary>,
    pub stored: Vec<Stored>,
    /// Distinct rows per table in the lake: what the warehouse holds once every stored chunk
    /// is loaded (see the module's documentation).
    pub lake: BTreeMap<String, u64>,
    /// Rows per table in the warehouse.
    pub warehouse: BTreeMap<String, u64>,
    /// Stored files that cannot be read, each with its path and why, left out of the counts:
    /// checkpoints set aside (`set_aside_as`) or not yet, chunks that do not decode, a lock
    /// object that does not parse.
    pub damaged: Vec<Damaged>,
    /// GH Archive, from the warehouse's `gharchive_hours`; `null` when no hour is recorded
    /// there, the warehouse has no such table, or its backend has no GH Archive.
    pub gharchive: Option<GharchiveSummary>,
}

/// How many of the oldest hours not ingested [`GharchiveSummary::not_ingested`] lists.
pub const SHOWN_NOT_INGESTED: usize = 10;

/// GH Archive's hours as the warehouse records them (`gharchive_hours`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GharchiveSummary {
    /// Hours whose events are in `gharchive_events`.
    pub hours_ingested: u64,
    /// Hours GH Archive answered 404 for, those missing for good included. A missing hour is
    /// asked again by every run for `gharchive::MISSING_RETRY_DAYS` (7) days after it was
    /// first found missing.
    pub hours_missing: u64,
    /// Of `hours_missing`, those given up on after the 7 days: no run asks again (`--force`
    /// does).
    pub hours_missing_for_good: u64,
    /// Hours whose last try failed (a broken download, a truncated gzip); the next run tries
    /// them again.
    pub hours_failed: u64,
    /// The newest and the oldest ingested hour (their start, UTC).
    pub newest_ingested: Option<DateTime<Utc>>,
    pub oldest_ingested: Option<DateTime<Utc>>,
    /// Events of the ingested hours: each hour's distinct event ids, summed. An id repeated
    /// in a later hour counts in both; `gharchive_events` holds it once.
    pub events: u64,
    /// Bytes downloaded (gzip) for the ingested hours.
    pub bytes: u64,
    /// Lines repeating an id earlier in the same hour, dropped.
    pub duplicates_dropped: u64,
    /// Lines that were not JSON, or had no type or time.
    pub lines_rejected: u64,
    /// The oldest hours not ingested (missing or failed), oldest first, at most
    /// [`SHOWN_NOT_INGESTED`].
    pub not_ingested: Vec<HourNotIngested>,
}

/// An hour that is not in the warehouse, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HourNotIngested {
    /// The hour's start, UTC.
    pub hour: DateTime<Utc>,
    /// `missing` (asked again by the next run), `missing_for_good` or `failed`.
    pub status: &'static str,
    /// What the last try met: the 404's URL, or the failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When a missing hour was first found missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_missing_at: Option<DateTime<Utc>>,
}

impl GharchiveSummary {
    /// The summary of `hours` (any order); `None` when there are none.
    pub fn of(hours: &[HourState]) -> Option<GharchiveSummary> {
        if hours.is_empty() {
            return None;
        }
        let mut s = GharchiveSummary::default();
        let mut not_ingested = Vec::new();
        for h in hours {
            match h.status {
                HourStatus::Ingested => {
                    s.hours_ingested += 1;
                    s.newest_ingested = s.newest_ingested.max(Some(h.hour));
                    s.oldest_ingested = Some(s.oldest_ingested.map_or(h.hour, |o| o.min(h.hour)));
                    if let Some(stats) = &h.stats {
                        s.events += stats.events;
                        s.bytes += stats.bytes;
                        s.duplicates_dropped += stats.duplicates_dropped;
                        s.lines_rejected += stats.lines_rejected;
                    }
                }
                HourStatus::Missing => {
                    s.hours_missing += 1;
                    if h.final_at.is_some() {
                        s.hours_missing_for_good += 1;
                    }
                }
                HourStatus::Failed => s.hours_failed += 1,
            }
            if h.status != HourStatus::Ingested {
                not_ingested.push(HourNotIngested {
                    hour: h.hour,
                    status: match h.status {
                        HourStatus::Missing if h.final_at.is_some() => "missing_for_good",
                        HourStatus::Missing => "missing",
                        _ => "failed",
                    },
                    error: h.error.clone(),
                    first_missing_at: h.first_missing_at,
                });
            }
        }
        not_ingested.sort_by_key(|n| n.hour);
        not_ingested.truncate(SHOWN_NOT_INGESTED);
        s.not_ingested = not_ingested;
        Some(s)
    }

    /// The section from what the warehouse answered: none when it has no GH Archive
    /// ([`WarehouseError::Unsupported`]) or nothing recorded; other errors are the caller's.
    pub fn from_warehouse(
        answer: Result<Vec<HourState>, WarehouseError>,
    ) -> Result<Option<GharchiveSummary>, WarehouseError> {
        match answer {
            Ok(hours) => Ok(GharchiveSummary::of(&hours)),
            Err(WarehouseError::Unsupported(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// What one row of a chunk contributes to the distinct count: its key, its pull request, its
/// version (the table's version columns, in microseconds) and the pull-request snapshot it came
/// in (`updated_at` or `pr_updated_at`, then `collected_at`).
#[derive(Clone, Copy, Debug)]
struct RowFacts {
    key: u64,
    pr: u64,
    version: [i64; 3],
    snapshot: [i64; 2],
}

/// The rows of one chunk, reduced to what counting needs.
#[derive(Debug)]
struct ChunkFacts {
    table: &'static TableDef,
    rows: Vec<RowFacts>,
}

/// What `summary` read from each chunk, by path, size and modification time, so a summary
/// repeated by the service reads only the chunks written since (about 56 bytes a row).
#[derive(Default)]
pub struct ChunkFactsCache {
    chunks: std::sync::Mutex<HashMap<String, CachedChunk>>,
}

struct CachedChunk {
    size: u64,
    modified: DateTime<Utc>,
    facts: Arc<ChunkFacts>,
}

/// A key value as text: numbers (also as decimal strings, as chunks may carry them) and
/// strings alike.
fn key_text(v: Option<&serde_json::Value>) -> String {
    match v {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn hash_of(parts: &[String]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    parts.hash(&mut h);
    h.finish()
}

/// `column`'s value for identity: chunks of builds before `repository_id` stand in the
/// repository's name for it.
fn identity(row: &serde_json::Value, column: &str) -> String {
    match row.get(column) {
        None | Some(serde_json::Value::Null) if column == tables::FILLED_AT_LOAD => {
            format!("name:{}", key_text(row.get("repository")))
        }
        v => key_text(v),
    }
}

fn micros(row: &serde_json::Value, column: &str) -> i64 {
    row.get(column)
        .and_then(|v| v.as_str())
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.timestamp_micros())
        .unwrap_or(i64::MIN)
}

fn facts_of(table: &'static TableDef, rows: &[serde_json::Value]) -> ChunkFacts {
    let is_child = tables::PR_CHILDREN.iter().any(|c| c.name == table.name);
    let facts = rows
        .iter()
        .map(|row| {
            let key_parts: Vec<String> = table.key.iter().map(|c| identity(row, c)).collect();
            let pr = hash_of(&[
                identity(row, "repository_id"),
                key_text(row.get("pr_number")),
            ]);
            let mut version = [i64::MIN; 3];
            for (slot, column) in version.iter_mut().zip(table.version) {
                *slot = micros(row, column);
            }
            let snapshot_of = if is_child {
                "pr_updated_at"
            } else {
                "updated_at"
            };
            RowFacts {
                key: hash_of(&key_parts),
                pr,
                version,
                snapshot: [micros(row, snapshot_of), micros(row, "collected_at")],
            }
        })
        .collect();
    ChunkFacts { table, rows: facts }
}

/// Distinct rows per table, as the warehouse holds them once every chunk is loaded.
fn distinct_rows<'a>(chunks: impl Iterator<Item = &'a ChunkFacts>) -> BTreeMap<String, u64> {
    // Per table, per key: the newest version, its pull request and its snapshot.
    let mut newest: HashMap<&'static str, HashMap<u64, RowFacts>> = HashMap::new();
    for c in chunks {
        let rows = newest.entry(c.table.name).or_default();
        for r in &c.rows {
            rows.entry(r.key)
                .and_modify(|kept| {
                    if r.version > kept.version {
                        *kept = *r;
                    }
                })
                .or_insert(*r);
        }
    }
    let pull_requests: HashMap<u64, [i64; 2]> = newest
        .get(tables::PULL_REQUESTS.name)
        .map(|prs| prs.values().map(|r| (r.key, r.snapshot)).collect())
        .unwrap_or_default();
    tables::ALL
        .iter()
        .map(|t| {
            let rows = newest.get(t.name);
            let n = if tables::PR_CHILDREN.iter().any(|c| c.name == t.name) {
                // A child of an older snapshot than its pull request's newest is deleted by
                // the load that brings the newer one.
                rows.map(|rows| {
                    rows.values()
                        .filter(|r| pull_requests.get(&r.pr).is_none_or(|s| r.snapshot >= *s))
                        .count()
                })
                .unwrap_or(0)
            } else {
                rows.map(HashMap::len).unwrap_or(0)
            };
            (t.name.to_string(), n as u64)
        })
        .collect()
}

impl CollectionState {
    fn of(cp: &Checkpoint) -> Self {
        match cp.status {
            Status::Running => CollectionState::Running,
            Status::Partial => CollectionState::Partial,
            Status::Completed if cp.loaded => CollectionState::Loaded,
            Status::Completed => CollectionState::Completed,
            Status::Failed => CollectionState::Failed,
        }
    }

    fn name(self) -> &'static str {
        match self {
            CollectionState::Running => "running",
            CollectionState::Partial => "partial",
            CollectionState::Completed => "completed",
            CollectionState::Loaded => "loaded",
            CollectionState::Failed => "failed",
        }
    }
}

/// Reads what is stored for `org` and the warehouse's row counts. Reads every chunk not in
/// `cache` (a chunk, checkpoint or lock that cannot be read is listed in `damaged`); writes
/// nothing. `lease` is the configured `LOCK_LEASE` (reading the lock does not depend on it).
pub async fn summary(
    lake: &Lake,
    org: &OrgName,
    wh: &dyn Warehouse,
    lease: std::time::Duration,
    cache: &ChunkFactsCache,
) -> anyhow::Result<Summary> {
    let mut damaged = Vec::new();
    let lock = match LeaseLock::new(lake.clone(), org, lease).current().await {
        Ok(Some((record, _))) => {
            let now = Utc::now();
            let held = HeldBy {
                organization: org.to_string(),
                process: record.holder_process(),
                read_at: now,
                record,
            };
            Some(LockSummary {
                message: held.to_string(),
                holder: held.record.holder.clone(),
                host: held.record.host.clone(),
                pid: held.record.pid,
                acquired_at: held.record.acquired_at,
                expires_at: held.record.expires_at,
                expired: held.record.expires_at <= now,
                process: held.process,
            })
        }
        Ok(None) => None,
        Err(e) => {
            damaged.push(Damaged {
                path: lake.lock_path(org).to_string(),
                reason: e.to_string(),
                set_aside_as: None,
            });
            None
        }
    };
    let lock_holder = lock
        .as_ref()
        .filter(|l| !l.expired)
        .map(|l| l.holder.clone());

    let mut collections = Vec::new();
    for (path, _) in lake.list(&lake.checkpoints_dir(org)).await? {
        let aside = path.as_ref().strip_suffix(DAMAGED_SUFFIX);
        let parsed: Result<Checkpoint, String> = match lake.get(&path).await {
            Ok(bytes) => checkpoint::parse(&bytes),
            Err(e) => Err(e.to_string()),
        };
        let cp = match (parsed, aside) {
            (Ok(cp), None) => cp,
            (parsed, _) => {
                damaged.push(Damaged {
                    path: aside.unwrap_or(path.as_ref()).to_string(),
                    reason: parsed.err().unwrap_or_else(|| "set aside".into()),
                    set_aside_as: aside.map(|_| path.to_string()),
                });
                continue;
            }
        };
        let mut rows: BTreeMap<String, u64> = BTreeMap::new();
        for c in &cp.chunks {
            *rows.entry(c.table.clone()).or_default() += c.rows;
        }
        collections.push(CollectionSummary {
            status: CollectionState::of(&cp),
            holds_lock: lock_holder.as_deref() == Some(cp.collection_id.as_str()),
            collection_id: cp.collection_id,
            kind: cp.kind,
            window: cp.window,
            loaded: cp.loaded,
            started_at: cp.started_at,
            updated_at: cp.updated_at,
            resumes: cp.resumes,
            rows,
        });
    }
    collections
        .sort_by(|a, b| (b.started_at, &b.collection_id).cmp(&(a.started_at, &a.collection_id)));

    // Every chunk, with what it holds: from the cache when unchanged, else read.
    let listed: Vec<object_store::ObjectMeta> = lake
        .store()
        .list(Some(&lake.org_dir(org)))
        .try_collect()
        .await?;
    let chunks: Vec<(object_store::ObjectMeta, crate::lake::ChunkLocation)> = listed
        .into_iter()
        .filter_map(|m| {
            let loc = lake.parse_chunk_path(&m.location)?;
            Some((m, loc))
        })
        .collect();
    let cached: HashMap<String, Arc<ChunkFacts>> = {
        let held = cache.chunks.lock().unwrap_or_else(|e| e.into_inner());
        chunks
            .iter()
            .filter_map(|(m, _)| {
                let c = held.get(m.location.as_ref())?;
                (c.size == m.size && c.modified == m.last_modified)
                    .then(|| (m.location.to_string(), c.facts.clone()))
            })
            .collect()
    };
    // Tables by their index in `tables::ALL` (a plain value keeps the stream `Send`).
    let to_read: Vec<(object_store::path::Path, usize)> = chunks
        .iter()
        .filter(|(m, _)| !cached.contains_key(m.location.as_ref()))
        .filter_map(|(m, loc)| {
            let i = tables::ALL.iter().position(|t| t.name == loc.table)?;
            Some((m.location.clone(), i))
        })
        .collect();
    let read: Vec<(String, Result<ChunkFacts, String>)> = futures::stream::iter(to_read)
        .map(|(path, table)| {
            let lake = lake.clone();
            let table = &tables::ALL[table];
            async move {
                let facts = match lake.get(&path).await {
                    Ok(bytes) => decode_chunk(&bytes)
                        .map(|rows| facts_of(table, &rows))
                        .map_err(|e| format!("not gzip NDJSON: {e}")),
                    Err(e) => Err(e.to_string()),
                };
                (path.to_string(), facts)
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let mut facts_of_path: HashMap<String, Arc<ChunkFacts>> = cached;
    for (path, facts) in read {
        match facts {
            Ok(f) => {
                facts_of_path.insert(path, Arc::new(f));
            }
            Err(reason) => damaged.push(Damaged {
                path,
                reason,
                set_aside_as: None,
            }),
        }
    }
    {
        // The cache keeps exactly the chunks listed now: wiped ones are forgotten.
        let mut held = cache.chunks.lock().unwrap_or_else(|e| e.into_inner());
        *held = chunks
            .iter()
            .filter_map(|(m, _)| {
                let facts = facts_of_path.get(m.location.as_ref())?.clone();
                Some((
                    m.location.to_string(),
                    CachedChunk {
                        size: m.size,
                        modified: m.last_modified,
                        facts,
                    },
                ))
            })
            .collect();
    }

    let mut groups: BTreeMap<(String, String, String), Stored> = BTreeMap::new();
    for (m, loc) in &chunks {
        let date = loc.date.to_string();
        let g = groups
            .entry((loc.repo.to_string(), loc.table.clone(), date.clone()))
            .or_insert_with(|| Stored {
                repository: loc.repo.to_string(),
                table: loc.table.clone(),
                date,
                ..Stored::default()
            });
        g.files += 1;
        g.rows += facts_of_path
            .get(m.location.as_ref())
            .map_or(0, |f| f.rows.len() as u64);
        g.bytes += m.size;
    }
    damaged.sort_by(|a, b| a.path.cmp(&b.path));
    let gharchive = GharchiveSummary::from_warehouse(wh.gharchive_hours().await)
        .context("reading GH Archive's hours (gharchive_hours)")?;
    Ok(Summary {
        organization: org.to_string(),
        lock,
        collections,
        stored: groups.into_values().collect(),
        lake: distinct_rows(facts_of_path.values().map(|f| f.as_ref())),
        warehouse: wh.row_counts().await?,
        damaged,
        gharchive,
    })
}

/// How many collections the text shows; `--json` has them all.
const SHOWN_COLLECTIONS: usize = 20;

/// The summary as plain text: the lock, the collections (newest first), the stored chunks, and
/// the lake's distinct rows beside the warehouse's.
pub fn render(s: &Summary) -> String {
    let mut out = format!("organization {}\n\n", s.organization);
    match &s.lock {
        None => out.push_str("lock: free\n"),
        Some(l) if l.expired => out.push_str(&format!(
            "lock: {} (its lease has run out: the next run takes it over)\n",
            l.message
        )),
        Some(l) => out.push_str(&format!("lock: {}\n", l.message)),
    }
    out.push_str(&format!("\ncollections: {}\n", s.collections.len()));
    if !s.collections.is_empty() {
        out.push_str(&format!(
            "{:<24} {:<8} {:<36} {:<11} {:>10} {:>7}\n",
            "collection", "kind", "window (UTC)", "status", "rows", "resumes"
        ));
    }
    let when = |t: DateTime<Utc>| t.format("%Y-%m-%d %H:%M").to_string();
    for c in s.collections.iter().take(SHOWN_COLLECTIONS) {
        let kind = match c.kind {
            CollectionKind::Collect => "collect",
            CollectionKind::Backfill => "backfill",
            CollectionKind::Sweep => "sweep",
        };
        let status = if c.holds_lock {
            format!("{} *", c.status.name())
        } else {
            c.status.name().to_string()
        };
        out.push_str(&format!(
            "{:<24} {:<8} {:<36} {:<11} {:>10} {:>7}\n",
            c.collection_id,
            kind,
            format!("{} .. {}", when(c.window.since), when(c.window.until)),
            status,
            c.rows.values().sum::<u64>(),
            c.resumes
        ));
    }
    if s.collections.len() > SHOWN_COLLECTIONS {
        let mut older: BTreeMap<&str, usize> = BTreeMap::new();
        for c in &s.collections[SHOWN_COLLECTIONS..] {
            *older.entry(c.status.name()).or_default() += 1;
        }
        let parts: Vec<String> = older.iter().map(|(k, n)| format!("{n} {k}")).collect();
        out.push_str(&format!(
            "… and {} older ({}); `summary --json` lists them all\n",
            s.collections.len() - SHOWN_COLLECTIONS,
            parts.join(", ")
        ));
    }
    if s.collections.iter().any(|c| c.holds_lock) {
        out.push_str("* holds the organization's lock\n");
    }
    for c in &s.collections {
        if c.status == CollectionState::Running && !c.holds_lock {
            out.push_str(&format!(
                "collection {} says running but holds no lock: its run stopped; `ghstats resume --collection-id {}` continues it\n",
                c.collection_id, c.collection_id
            ));
        }
    }

    out.push_str(&format!(
        "\n{:<24} {:<16} {:<10} {:>6} {:>10} {:>12}\n",
        "repository", "table", "date", "files", "rows", "bytes"
    ));
    for r in &s.stored {
        out.push_str(&format!(
            "{:<24} {:<16} {:<10} {:>6} {:>10} {:>12}\n",
            r.repository, r.table, r.date, r.files, r.rows, r.bytes
        ));
    }

    out.push_str(&format!(
        "\n{:<18} {:>15} {:>10}\n",
        "rows", "lake (distinct)", "warehouse"
    ));
    let mut differ = false;
    for t in tables::ALL {
        let lake = s.lake.get(t.name).copied().unwrap_or(0);
        let wh = s.warehouse.get(t.name).copied().unwrap_or(0);
        differ |= lake != wh;
        out.push_str(&format!("  {:<16} {lake:>15} {wh:>10}\n", t.name));
    }
    if differ {
        out.push_str("the warehouse and the lake differ: `ghstats load` loads every stored chunk (a warehouse shared with other lakes, or a wipe without --warehouse, differs too)\n");
    }
    if let Some(g) = &s.gharchive {
        out.push_str(&render_gharchive(g));
    }
    if !s.damaged.is_empty() {
        out.push_str(&format!(
            "\ndamaged: {} stored files cannot be read and are left out\n",
            s.damaged.len()
        ));
        for d in &s.damaged {
            match &d.set_aside_as {
                Some(to) => {
                    out.push_str(&format!("  {} (set aside as {to}): {}\n", d.path, d.reason))
                }
                None => out.push_str(&format!("  {}: {}\n", d.path, d.reason)),
            }
        }
    }
    out
}

/// An hour as the `gharchive` command takes it: `2015-01-01T15`.
fn hour_text(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H").to_string()
}

/// The GH Archive section of the text summary.
fn render_gharchive(g: &GharchiveSummary) -> String {
    let mut out = String::from("\nGH Archive (gharchive_hours)\n");
    let span = match (g.oldest_ingested, g.newest_ingested) {
        (Some(o), Some(n)) => format!(" (newest {}, oldest {})", hour_text(n), hour_text(o)),
        _ => String::new(),
    };
    out.push_str(&format!("  hours ingested: {}{span}\n", g.hours_ingested));
    out.push_str(&format!("  hours missing: {}", g.hours_missing));
    if g.hours_missing_for_good > 0 {
        out.push_str(&format!(
            " ({} for good: no run asks for them again)",
            g.hours_missing_for_good
        ));
    }
    out.push('\n');
    out.push_str(&format!("  hours failed: {}", g.hours_failed));
    if g.hours_failed > 0 {
        out.push_str(" (the next run tries them again)");
    }
    out.push('\n');
    out.push_str(&format!(
        "  events: {} ({} duplicate lines dropped, {} lines rejected)\n",
        g.events, g.duplicates_dropped, g.lines_rejected
    ));
    out.push_str(&format!(
        "  downloaded: {:.1} MB (gzip)\n",
        g.bytes as f64 / 1e6
    ));
    if !g.not_ingested.is_empty() {
        let all = g.hours_missing + g.hours_failed;
        if all > g.not_ingested.len() as u64 {
            out.push_str(&format!(
                "  the oldest {} of {all} hours not ingested:\n",
                g.not_ingested.len()
            ));
        } else {
            out.push_str("  hours not ingested:\n");
        }
        for n in &g.not_ingested {
            let line = format!(
                "    {}  {:<16}  {}",
                hour_text(n.hour),
                n.status,
                n.error.as_deref().unwrap_or("")
            );
            out.push_str(line.trim_end());
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pr(n: u64, updated: &str, collected: &str) -> serde_json::Value {
        json!({"repository_id": 7, "pr_number": n, "updated_at": updated, "collected_at": collected})
    }

    fn comment(id: u64, n: u64, pr_updated: &str, collected: &str) -> serde_json::Value {
        json!({"repository_id": "7", "comment_id": id, "pr_number": n, "pr_updated_at": pr_updated,
               "updated_at": pr_updated, "collected_at": collected})
    }

    /// Two overlapping collections: a pull request collected twice counts once; a comment
    /// deleted before the second collection (same `updatedAt`, as GitHub leaves it) is not
    /// counted, as the load deletes it; a comment of a pull request only in the first
    /// collection stays.
    #[test]
    fn distinct_rows_count_what_the_warehouse_keeps() {
        let (t1, t2) = ("2026-05-01T00:00:00Z", "2026-05-02T00:00:00Z");
        let (a, b) = ("2026-05-03T00:00:00Z", "2026-05-04T00:00:00Z");
        let first = [
            facts_of(&tables::PULL_REQUESTS, &[pr(1, t1, a), pr(2, t1, a)]),
            facts_of(
                &tables::ISSUE_COMMENTS,
                &[
                    comment(10, 1, t1, a),
                    comment(11, 1, t1, a),
                    comment(20, 2, t1, a),
                ],
            ),
        ];
        let second = [
            facts_of(&tables::PULL_REQUESTS, &[pr(1, t1, b)]),
            facts_of(&tables::ISSUE_COMMENTS, &[comment(10, 1, t1, b)]),
        ];
        let counts = distinct_rows(first.iter().chain(second.iter()));
        assert_eq!(counts["pull_requests"], 2);
        assert_eq!(counts["issue_comments"], 2, "10 and 20; 11 was deleted");
        // A newer snapshot by `updated_at` replaces the children of the older one as well.
        let third = [
            facts_of(&tables::PULL_REQUESTS, &[pr(2, t2, b)]),
            facts_of(&tables::ISSUE_COMMENTS, &[comment(21, 2, t2, b)]),
        ];
        let counts = distinct_rows(first.iter().chain(second.iter()).chain(third.iter()));
        assert_eq!(counts["pull_requests"], 2);
        assert_eq!(counts["issue_comments"], 2, "10 and 21");
        assert_eq!(counts["reviews"], 0);
    }

    fn hour_state(hour: &str, status: HourStatus) -> HourState {
        let t: DateTime<Utc> = hour.parse().unwrap();
        HourState {
            hour: t,
            status,
            stats: (status == HourStatus::Ingested).then_some(crate::gharchive::HourStats {
                events: 100,
                bytes: 2_000_000,
                duplicates_dropped: 2,
                lines_rejected: 1,
                ..Default::default()
            }),
            ingested_at: None,
            first_missing_at: None,
            final_at: None,
            error: (status != HourStatus::Ingested).then(|| format!("{status:?} at {hour}")),
            updated_at: t,
        }
    }

    /// Ingested, missing (one of them for good) and failed hours are counted, the ingested
    /// hours' figures summed, and the hours not ingested listed oldest first, a few of them.
    #[test]
    fn gh_archive_hours_are_summed_and_the_oldest_trouble_listed() {
        let mut hours = vec![
            hour_state("2024-03-10T05:00:00Z", HourStatus::Ingested),
            hour_state("2024-03-10T04:00:00Z", HourStatus::Ingested),
            hour_state("2024-03-10T07:00:00Z", HourStatus::Failed),
        ];
        let mut gone = hour_state("2024-03-10T03:00:00Z", HourStatus::Missing);
        gone.final_at = Some(gone.hour);
        hours.push(gone);
        for h in 0..12 {
            hours.push(hour_state(
                &format!("2024-03-11T{h:02}:00:00Z"),
                HourStatus::Missing,
            ));
        }
        let g = GharchiveSummary::of(&hours).unwrap();
        assert_eq!(
            (
                g.hours_ingested,
                g.hours_missing,
                g.hours_missing_for_good,
                g.hours_failed
            ),
            (2, 13, 1, 1)
        );
        assert_eq!(
            (g.events, g.bytes, g.duplicates_dropped, g.lines_rejected),
            (200, 4_000_000, 4, 2)
        );
        assert_eq!(
            g.newest_ingested,
            Some("2024-03-10T05:00:00Z".parse().unwrap())
        );
        assert_eq!(
            g.oldest_ingested,
            Some("2024-03-10T04:00:00Z".parse().unwrap())
        );
        let listed: Vec<(String, &str)> = g
            .not_ingested
            .iter()
            .map(|n| (hour_text(n.hour), n.status))
            .collect();
        assert_eq!(listed.len(), SHOWN_NOT_INGESTED);
        assert_eq!(listed[0], ("2024-03-10T03".into(), "missing_for_good"));
        assert_eq!(listed[1], ("2024-03-10T07".into(), "failed"));
        assert_eq!(listed[2], ("2024-03-11T00".into(), "missing"));
        let text = render_gharchive(&g);
        for line in [
            "  hours ingested: 2 (newest 2024-03-10T05, oldest 2024-03-10T04)\n",
            "  hours missing: 13 (1 for good: no run asks for them again)\n",
            "  hours failed: 1 (the next run tries them again)\n",
            "  events: 200 (4 duplicate lines dropped, 2 lines rejected)\n",
            "  downloaded: 4.0 MB (gzip)\n",
            "  the oldest 10 of 14 hours not ingested:\n",
            "    2024-03-10T07  failed            Failed at 2024-03-10T07:00:00Z\n",
        ] {
            assert!(text.contains(line), "{line:?} not in\n{text}");
        }
    }

    /// No section when nothing is recorded or the backend has no GH Archive; other errors
    /// are errors.
    #[test]
    fn no_gh_archive_section_without_gh_archive() {
        assert_eq!(
            GharchiveSummary::from_warehouse(Ok(Vec::new())).unwrap(),
            None
        );
        assert_eq!(
            GharchiveSummary::from_warehouse(Err(crate::warehouse::gharchive::unsupported(
                "bigquery"
            )))
            .unwrap(),
            None
        );
        assert!(GharchiveSummary::from_warehouse(Err(WarehouseError::Query("x".into()))).is_err());
    }
}
