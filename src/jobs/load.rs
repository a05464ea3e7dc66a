//! The load job: chunks already in storage into the warehouse, with no GitHub calls. The
//! filters (repository, collection date, collection id) combine. A chunk that cannot be read or
//! does not fit its table is left out and named, a chunk no longer in storage (deleted by
//! `wipe`) is skipped and named, and the rest are loaded.

use crate::lake::{CheckpointStore, ChunkInfo, Damaged, Lake};
use crate::names::{OrgName, RepoName};
use crate::warehouse::{LoadReport, Warehouse, WarehouseError};
use chrono::NaiveDate;
use object_store::path::Path;
use serde::Serialize;

/// Which stored chunks to load; empty filters select everything of the organization.
#[derive(Clone, Debug, Default)]
pub struct LoadFilter {
    pub repo: Option<RepoName>,
    pub date: Option<NaiveDate>,
    pub collection_id: Option<String>,
}

/// What a load did.
#[derive(Clone, Debug, Serialize)]
pub struct LoadResult {
    /// Chunks loaded.
    pub chunks: usize,
    /// What the load did to each table.
    pub tables: LoadReport,
    /// Chunks left out because they cannot be read (not gzip NDJSON) or hold a row that does
    /// not fit their table, each with its path and why. They stay in storage; every load that
    /// selects them names them again. The CLI exits with status 5 when there are any.
    pub bad_chunks: Vec<Damaged>,
    /// Paths of chunks a checkpoint names that storage no longer has (deleted by `wipe`),
    /// skipped. Not an error: the exit status stays 0.
    pub missing_chunks: Vec<String>,
}

/// The chunks the filter selects, in storage order.
pub async fn select_chunks(
    lake: &Lake,
    org: &OrgName,
    filter: &LoadFilter,
) -> anyhow::Result<Vec<ChunkInfo>> {
    let prefix = match &filter.repo {
        Some(r) => lake.repo_dir(org, r),
        None => lake.org_dir(org),
    };
    let mut out = Vec::new();
    for (path, size) in lake.list(&prefix).await? {
        let Some(loc) = lake.parse_chunk_path(&path) else {
            continue;
        };
        if filter.date.is_some_and(|d| d != loc.date)
            || filter
                .collection_id
                .as_ref()
                .is_some_and(|id| *id != loc.collection_id)
        {
            continue;
        }
        out.push(ChunkInfo {
            path: path.to_string(),
            repository: loc.repo.to_string(),
            table: loc.table,
            rows: 0,
            bytes: size,
        });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// Loads the selected chunks in one warehouse transaction, leaving out bad and missing ones
/// (named in the result).
pub async fn load(
    wh: &dyn Warehouse,
    lake: &Lake,
    org: &OrgName,
    filter: &LoadFilter,
) -> anyhow::Result<LoadResult> {
    let chunks = select_chunks(lake, org, filter).await?;
    let result = load_chunks(wh, lake, chunks).await?;
    tracing::info!(chunks = result.chunks, "Chunks loaded.");
    Ok(result)
}

/// Loads the chunks a collection's checkpoint names, leaving out bad and missing ones (named
/// in the result).
pub async fn load_collection(
    wh: &dyn Warehouse,
    lake: &Lake,
    org: &OrgName,
    collection_id: &str,
) -> anyhow::Result<LoadResult> {
    let cp = CheckpointStore::new(lake.clone(), org.clone())
        .load(collection_id)
        .await?;
    load_chunks(wh, lake, cp.chunks).await
}

/// Loads `chunks` in one warehouse transaction. When the load fails, every chunk is read and
/// checked against its table as a load would; the bad and missing ones are left out and the
/// load runs again with the rest. A chunk only the backend finds fault with is left out the
/// same way, one per attempt. A failure no chunk explains (the warehouse, storage down) fails
/// the load.
pub async fn load_chunks(
    wh: &dyn Warehouse,
    lake: &Lake,
    mut chunks: Vec<ChunkInfo>,
) -> anyhow::Result<LoadResult> {
    let mut bad_chunks: Vec<Damaged> = Vec::new();
    let mut missing_chunks: Vec<String> = Vec::new();
    let mut checked = false;
    loop {
        let err = match wh.load(lake, &chunks).await {
            Ok(tables) => {
                for d in &bad_chunks {
                    tracing::error!(path = %d.path, reason = %d.reason, "A damaged chunk was left out of the load; the other chunks were loaded.");
                }
                for p in &missing_chunks {
                    tracing::warn!(path = %p, "A chunk the checkpoint names is no longer in storage (deleted by wipe?); skipped.");
                }
                return Ok(LoadResult {
                    chunks: chunks.len(),
                    tables,
                    bad_chunks,
                    missing_chunks,
                });
            }
            Err(e) => e,
        };
        if matches!(err, WarehouseError::Unavailable(_)) {
            return Err(err.into());
        }
        let left_out = bad_chunks.len() + missing_chunks.len();
        if !checked {
            checked = true;
            let (bad, missing) = check_chunks(lake, &chunks).await?;
            chunks.retain(|c| !bad.iter().any(|b| b.path == c.path) && !missing.contains(&c.path));
            bad_chunks.extend(bad);
            missing_chunks.extend(missing);
        }
        // A fault the check did not see (the backend's own), on a chunk still in the load.
        match &err {
            WarehouseError::BadChunk { path, message }
                if chunks.iter().any(|c| c.path == *path) =>
            {
                chunks.retain(|c| c.path != *path);
                bad_chunks.push(Damaged {
                    path: path.clone(),
                    reason: message.clone(),
                    set_aside_as: None,
                });
            }
            WarehouseError::MissingChunk { path } if chunks.iter().any(|c| c.path == *path) => {
                chunks.retain(|c| c.path != *path);
                missing_chunks.push(path.clone());
            }
            _ => {}
        }
        if bad_chunks.len() + missing_chunks.len() == left_out {
            return Err(err.into());
        }
    }
}

/// Reads each chunk and checks every row against its table, as the backends do: returns the
/// bad chunks (with why) and the paths of those storage does not have. Any other storage
/// error fails: that is storage trouble, not a damaged chunk.
async fn check_chunks(
    lake: &Lake,
    chunks: &[ChunkInfo],
) -> anyhow::Result<(Vec<Damaged>, Vec<String>)> {
    let mut bad = Vec::new();
    let mut missing = Vec::new();
    for chunk in chunks {
        let Some(t) = crate::tables::by_name(&chunk.table) else {
            bad.push(Damaged {
                path: chunk.path.clone(),
                reason: format!("unknown table {}", chunk.table),
                set_aside_as: None,
            });
            continue;
        };
        let bytes = match lake.get(&Path::from(chunk.path.as_str())).await {
            Ok(b) => b,
            Err(object_store::Error::NotFound { .. }) => {
                missing.push(chunk.path.clone());
                continue;
            }
            Err(e) => anyhow::bail!("reading chunk {}: {e}", chunk.path),
        };
        let checked = crate::warehouse::read_rows(chunk, &bytes, |_, obj| {
            crate::warehouse::check_row(t, obj)
        });
        match checked {
            Ok(_) => {}
            Err(WarehouseError::BadChunk { message, .. }) => bad.push(Damaged {
                path: chunk.path.clone(),
                reason: message,
                set_aside_as: None,
            }),
            Err(e) => return Err(e.into()),
        }
    }
    Ok((bad, missing))
}
