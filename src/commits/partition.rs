//! Month partitions of the commits tables in the lake. A month is rewritten whole when a run
//! adds to it: its stored rows are read, the rows of commits dropped from the branch are taken
//! out, the new rows replace any stored row of the same key, and the result, sorted by key, is
//! written back as `{table}_{id}-{i}.parquet` parts of at most [`PART_ROWS`] rows. Each part is
//! one PUT, which every object store makes atomic (S3 and GCS replace an object whole;
//! object_store's local store writes a temporary file and renames it), so a reader sees the
//! old part or the new one, never half of one; the same rows always give the same bytes, so a
//! rerun writes the same files.

use super::rows::{
    commits_batch, commits_of, file_changes_batch, file_changes_of, file_states_batch,
    file_states_of, CommitRow, FileChangeRow, FileStateRow,
};
use super::{partition_dir, partition_file, MonthPartition};
use crate::lake::Lake;
use anyhow::Context;
use arrow_array::RecordBatch;
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use std::collections::{BTreeMap, HashSet};

/// The most rows one Parquet part holds (a month of a very busy repository is split).
pub const PART_ROWS: usize = 250_000;

/// The new rows of one month.
#[derive(Debug, Default)]
pub struct MonthRows {
    pub commits: Vec<CommitRow>,
    pub file_changes: Vec<FileChangeRow>,
    pub file_states: Vec<FileStateRow>,
}

/// How a month's stored rows are treated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rewrite {
    /// Stored rows are kept (less those of dropped commits); new rows replace same-key ones.
    Merge,
    /// Stored rows are thrown away: the month is exactly the new rows (a rebuild).
    Replace,
}

fn properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).unwrap_or_default()))
        .set_max_row_group_bytes(Some(32 << 20))
        .build()
}

/// The Parquet bytes of `batch`.
fn parquet_bytes(batch: &RecordBatch) -> anyhow::Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut w = ArrowWriter::try_new(&mut buf, batch.schema(), Some(properties()))?;
    w.write(batch)?;
    w.close()?;
    Ok(buf)
}

/// The parts stored for `table` in a month, in part order.
async fn parts(
    lake: &Lake,
    table: &str,
    repository_id: i64,
    month: &str,
) -> anyhow::Result<Vec<String>> {
    let dir = partition_dir(lake, table, repository_id, month);
    let mut found: Vec<(usize, String)> = lake
        .list(&dir)
        .await
        .with_context(|| format!("listing {dir}"))?
        .into_iter()
        .filter_map(|(p, _)| {
            let name = p.filename()?.to_string();
            let i = name
                .strip_prefix(&format!("{table}_{repository_id}-"))?
                .strip_suffix(".parquet")?
                .parse()
                .ok()?;
            Some((i, p.to_string()))
        })
        .collect();
    found.sort();
    Ok(found.into_iter().map(|(_, p)| p).collect())
}

/// Every batch of the Parquet object at `path`.
async fn read_batches(lake: &Lake, path: &str) -> anyhow::Result<Vec<RecordBatch>> {
    let p = object_store::path::Path::from(path);
    let builder = crate::lake::parquet::open(lake.store().clone(), &p)
        .await
        .with_context(|| format!("opening {path}"))?;
    let stream = builder.build().with_context(|| format!("reading {path}"))?;
    stream
        .try_collect()
        .await
        .with_context(|| format!("reading {path}"))
}

/// The months of a repository stored in the lake (`commit_month=` folders of `commits`).
pub async fn stored_months(lake: &Lake, repository_id: i64) -> anyhow::Result<Vec<String>> {
    let dir = super::repository_dir(lake, "commits", repository_id);
    let mut months: Vec<String> = lake
        .list(&dir)
        .await
        .with_context(|| format!("listing {dir}"))?
        .into_iter()
        .filter_map(|(p, _)| {
            p.parts()
                .find_map(|s| s.as_ref().strip_prefix("commit_month=").map(str::to_string))
        })
        .collect();
    months.sort();
    months.dedup();
    Ok(months)
}

/// Writes `rows` as the parts of `table`'s month and deletes stored parts past the last new
/// one. Returns the parts' paths.
async fn write_parts<R>(
    lake: &Lake,
    table: &str,
    repository_id: i64,
    month: &str,
    rows: &[R],
    old: &[String],
    to_batch: impl Fn(&[R]) -> Result<RecordBatch, arrow_schema::ArrowError>,
) -> anyhow::Result<Vec<String>> {
    let mut written = Vec::new();
    for (i, chunk) in rows.chunks(PART_ROWS).enumerate() {
        let batch = to_batch(chunk)?;
        let bytes = parquet_bytes(&batch)?;
        let path = partition_file(lake, table, repository_id, month, i);
        lake.put(&path, bytes.into())
            .await
            .with_context(|| format!("writing {path}"))?;
        written.push(path.to_string());
    }
    for p in old {
        if !written.contains(p) {
            lake.store()
                .delete(&object_store::path::Path::from(p.as_str()))
                .await
                .or_else(|e| match e {
                    object_store::Error::NotFound { .. } => Ok(()),
                    e => Err(e),
                })
                .with_context(|| format!("deleting {p}"))?;
        }
    }
    Ok(written)
}

/// Rewrites one month of one repository: stored rows (unless `mode` is
/// [`Rewrite::Replace`]), less those whose commit is in `dropped`, with `new` replacing rows
/// of the same key; sorted by commit time, commit and path. An empty result deletes the
/// month's parts. Returns the month as it now stands.
pub async fn rewrite_month(
    lake: &Lake,
    repository_id: i64,
    month: &str,
    new: MonthRows,
    dropped: &HashSet<String>,
    mode: Rewrite,
) -> anyhow::Result<MonthPartition> {
    let old_commits = parts(lake, "commits", repository_id, month).await?;
    let old_changes = parts(lake, "file_changes", repository_id, month).await?;
    let old_states = parts(lake, "file_states", repository_id, month).await?;

    let mut commits: BTreeMap<(i64, String), CommitRow> = BTreeMap::new();
    let mut changes: BTreeMap<(i64, String, String), FileChangeRow> = BTreeMap::new();
    let mut states: BTreeMap<(i64, String, String), FileStateRow> = BTreeMap::new();
    if mode == Rewrite::Merge {
        for p in &old_commits {
            for b in read_batches(lake, p).await? {
                for r in commits_of(&b).map_err(|e| anyhow::anyhow!("{p}: {e}"))? {
                    if !dropped.contains(&r.commit_sha) {
                        commits.insert((r.commit_at.timestamp_micros(), r.commit_sha.clone()), r);
                    }
                }
            }
        }
        for p in &old_changes {
            for b in read_batches(lake, p).await? {
                for r in file_changes_of(&b).map_err(|e| anyhow::anyhow!("{p}: {e}"))? {
                    if !dropped.contains(&r.commit_sha) {
                        changes.insert(
                            (
                                r.commit_at.timestamp_micros(),
                                r.commit_sha.clone(),
                                r.file_path.clone(),
                            ),
                            r,
                        );
                    }
                }
            }
        }
        for p in &old_states {
            for b in read_batches(lake, p).await? {
                for r in file_states_of(&b).map_err(|e| anyhow::anyhow!("{p}: {e}"))? {
                    if !dropped.contains(&r.commit_sha) {
                        states.insert(
                            (
                                r.commit_at.timestamp_micros(),
                                r.commit_sha.clone(),
                                r.file_path.clone(),
                            ),
                            r,
                        );
                    }
                }
            }
        }
    }
    // A commit read again replaces every row it had: its files may differ (never on the same
    // history, but a rebuild of a rewritten one may).
    let renewed: HashSet<&str> = new.commits.iter().map(|c| c.commit_sha.as_str()).collect();
    if !renewed.is_empty() {
        changes.retain(|k, _| !renewed.contains(k.1.as_str()));
        states.retain(|k, _| !renewed.contains(k.1.as_str()));
    }
    drop(renewed);
    for r in new.commits {
        commits.insert((r.commit_at.timestamp_micros(), r.commit_sha.clone()), r);
    }
    for r in new.file_changes {
        changes.insert(
            (
                r.commit_at.timestamp_micros(),
                r.commit_sha.clone(),
                r.file_path.clone(),
            ),
            r,
        );
    }
    for r in new.file_states {
        states.insert(
            (
                r.commit_at.timestamp_micros(),
                r.commit_sha.clone(),
                r.file_path.clone(),
            ),
            r,
        );
    }
    let commits: Vec<CommitRow> = commits.into_values().collect();
    let changes: Vec<FileChangeRow> = changes.into_values().collect();
    let states: Vec<FileStateRow> = states.into_values().collect();
    Ok(MonthPartition {
        repository_id,
        month: month.to_string(),
        commits: write_parts(
            lake,
            "commits",
            repository_id,
            month,
            &commits,
            &old_commits,
            commits_batch,
        )
        .await?,
        file_changes: write_parts(
            lake,
            "file_changes",
            repository_id,
            month,
            &changes,
            &old_changes,
            file_changes_batch,
        )
        .await?,
        file_states: write_parts(
            lake,
            "file_states",
            repository_id,
            month,
            &states,
            &old_states,
            file_states_batch,
        )
        .await?,
    })
}

/// The month as stored: its parts per table, nothing read or written.
pub async fn stored_month(
    lake: &Lake,
    repository_id: i64,
    month: &str,
) -> anyhow::Result<MonthPartition> {
    Ok(MonthPartition {
        repository_id,
        month: month.to_string(),
        commits: parts(lake, "commits", repository_id, month).await?,
        file_changes: parts(lake, "file_changes", repository_id, month).await?,
        file_states: parts(lake, "file_states", repository_id, month).await?,
    })
}

/// Every stored row of a month (tests, `summary`).
pub async fn read_month(
    lake: &Lake,
    part: &MonthPartition,
) -> anyhow::Result<(Vec<CommitRow>, Vec<FileChangeRow>, Vec<FileStateRow>)> {
    let mut c = Vec::new();
    let mut f = Vec::new();
    let mut s = Vec::new();
    for p in &part.commits {
        for b in read_batches(lake, p).await? {
            c.extend(commits_of(&b).map_err(|e| anyhow::anyhow!("{p}: {e}"))?);
        }
    }
    for p in &part.file_changes {
        for b in read_batches(lake, p).await? {
            f.extend(file_changes_of(&b).map_err(|e| anyhow::anyhow!("{p}: {e}"))?);
        }
    }
    for p in &part.file_states {
        for b in read_batches(lake, p).await? {
            s.extend(file_states_of(&b).map_err(|e| anyhow::anyhow!("{p}: {e}"))?);
        }
    }
    Ok((c, f, s))
}
