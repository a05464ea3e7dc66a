//! The load job: chunks already in storage into the warehouse, with no GitHub calls. The
//! filters (repository, collection date, collection id) combine.

use crate::lake::{CheckpointStore, ChunkInfo, Lake};
use crate::names::{OrgName, RepoName};
use crate::warehouse::{LoadReport, Warehouse};
use chrono::NaiveDate;
use serde::Serialize;

/// Which stored chunks to load; empty filters select everything of the organization.
#[derive(Clone, Debug, Default)]
pub struct LoadFilter {
    pub repo: Option<RepoName>,
    pub date: Option<NaiveDate>,
    pub collection_id: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct LoadResult {
    pub chunks: usize,
    pub tables: LoadReport,
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

/// Loads the selected chunks in one warehouse transaction.
pub async fn load(
    wh: &dyn Warehouse,
    lake: &Lake,
    org: &OrgName,
    filter: &LoadFilter,
) -> anyhow::Result<LoadResult> {
    let chunks = select_chunks(lake, org, filter).await?;
    let tables = wh.load(lake, &chunks).await?;
    tracing::info!(chunks = chunks.len(), "Chunks loaded.");
    Ok(LoadResult {
        chunks: chunks.len(),
        tables,
    })
}

/// Loads the chunks a collection's checkpoint names.
pub async fn load_collection(
    wh: &dyn Warehouse,
    lake: &Lake,
    org: &OrgName,
    collection_id: &str,
) -> anyhow::Result<LoadResult> {
    let cp = CheckpointStore::new(lake.clone(), org.clone())
        .load(collection_id)
        .await?;
    let tables = wh.load(lake, &cp.chunks).await?;
    Ok(LoadResult {
        chunks: cp.chunks.len(),
        tables,
    })
}
