//! The embedded default warehouse: a SQLite file (rusqlite, bundled). BigQuery's types map to
//! SQLite's: TIMESTAMP as ISO-8601 UTC text with six fraction digits (so text order is time
//! order), INT64 and BOOL as INTEGER, REPEATED STRING as a JSON array. The file is in WAL mode:
//! a separate read connection is never blocked by a load. Every call runs on a blocking thread.

use super::sql::{self, column_list, indexes_sql, MergeSql};
use super::{LoadReport, RowFault, StarsLoad, TableLoad, Typed, Warehouse, WarehouseError};
use crate::lake::{ChunkInfo, Lake};
use crate::tables::{self, Column, ColumnType, Mode, TableDef};
use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::types::Value as SqlValue;
use rusqlite::{params_from_iter, Connection, OpenFlags, TransactionBehavior};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub struct SqliteWarehouse {
    path: PathBuf,
    writer: Arc<Mutex<Connection>>,
    reader: Arc<Mutex<Connection>>,
}

fn q(e: rusqlite::Error) -> WarehouseError {
    WarehouseError::Query(e.to_string())
}

fn sqlite_type(c: &Column) -> &'static str {
    match (c.mode, c.ty) {
        (Mode::Repeated, _) | (_, ColumnType::String) | (_, ColumnType::Timestamp) => "TEXT",
        (_, ColumnType::Int64) | (_, ColumnType::Bool) => "INTEGER",
    }
}

/// `CREATE TABLE` for a table definition.
pub fn create_table_sql(t: &TableDef) -> String {
    sql::create_table_sql(t, sqlite_type)
}

/// The MERGE of one table from its staging table.
pub fn merge_sql(t: &TableDef) -> MergeSql {
    sql::merge_sql(t, &dedup_sql(t))
}

/// The staging rows of `t`, one per key: the greatest version wins.
fn dedup_sql(t: &TableDef) -> String {
    format!(
        "SELECT {cols} FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY {key} ORDER BY {order}) AS _rn FROM temp.stage_{name}) WHERE _rn = 1",
        cols = column_list(t),
        key = t.key.join(", "),
        order = sql::newest_first(t),
        name = t.name
    )
}

/// Staged children from a snapshot older than the stored pull request are not loaded. A
/// snapshot is its pull request's `updated_at`, then the collection's `collected_at`.
fn drop_stale_staged_sql(child: &TableDef) -> String {
    format!(
        "DELETE FROM temp.stage_{c} WHERE EXISTS (SELECT 1 FROM pull_requests p WHERE p.repository_id = stage_{c}.repository_id \
         AND p.pr_number = stage_{c}.pr_number \
         AND (p.updated_at, p.collected_at) > (stage_{c}.pr_updated_at, stage_{c}.collected_at))",
        c = child.name
    )
}

/// Children of the pull requests in this load that belong to an older snapshot are gone: one
/// with an older `updated_at`, or the same `updated_at` seen by an earlier collection (GitHub
/// does not bump `updatedAt` when a comment is deleted). The staged pull requests drive the
/// delete, so it reads only their children (by the `_pr` index).
fn reconcile_sql(child: &TableDef) -> String {
    format!(
        "DELETE FROM {c} WHERE (repository_id, pr_number) IN \
         (SELECT repository_id, pr_number FROM temp.stage_pull_requests) \
         AND EXISTS (SELECT 1 FROM pull_requests p WHERE p.repository_id = {c}.repository_id \
         AND p.pr_number = {c}.pr_number AND (p.updated_at, p.collected_at) > ({c}.pr_updated_at, {c}.collected_at))",
        c = child.name
    )
}

/// ISO-8601 UTC with six fraction digits: text order is time order.
fn stored_ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

fn parse_ts(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// A JSON field of a chunk row as the SQLite value of its column.
fn to_sql(table: &str, c: &Column, v: Option<&serde_json::Value>) -> Result<SqlValue, String> {
    Ok(match super::typed(table, c, v)? {
        Typed::Null => SqlValue::Null,
        Typed::Text(s) => SqlValue::Text(s),
        Typed::Int(i) => SqlValue::Integer(i),
        Typed::Bool(b) => SqlValue::Integer(b as i64),
        Typed::Timestamp(t) => SqlValue::Text(stored_ts(t)),
        Typed::Labels(l) => SqlValue::Text(serde_json::Value::from(l).to_string()),
    })
}

/// A stored value in the backend-neutral JSON form of [`Warehouse::fetch_rows`].
fn to_json(c: &Column, v: SqlValue) -> serde_json::Value {
    use serde_json::Value as J;
    match (c.mode, c.ty, v) {
        (_, _, SqlValue::Null) => J::Null,
        (Mode::Repeated, _, SqlValue::Text(s)) => serde_json::from_str(&s).unwrap_or(J::Null),
        (_, ColumnType::Bool, SqlValue::Integer(i)) => J::Bool(i != 0),
        (_, ColumnType::Timestamp, SqlValue::Text(s)) => parse_ts(&s)
            .map(|t| J::String(t.to_rfc3339_opts(SecondsFormat::AutoSi, true)))
            .unwrap_or(J::String(s)),
        (_, _, SqlValue::Integer(i)) => J::from(i),
        (_, _, SqlValue::Real(f)) => J::from(f),
        (_, _, SqlValue::Text(s)) => J::String(s),
        (_, _, SqlValue::Blob(b)) => J::String(String::from_utf8_lossy(&b).into_owned()),
    }
}

fn plain_json(v: rusqlite::types::ValueRef<'_>) -> serde_json::Value {
    use rusqlite::types::ValueRef as R;
    match v {
        R::Null => serde_json::Value::Null,
        R::Integer(i) => i.into(),
        R::Real(f) => f.into(),
        R::Text(t) => String::from_utf8_lossy(t).into_owned().into(),
        R::Blob(b) => String::from_utf8_lossy(b).into_owned().into(),
    }
}

fn dialect() -> sql::ViewDialect {
    sql::plain(|a, b| format!("ROUND((julianday({b}) - julianday({a})) * 24, 2)"))
}

/// The metric views: the shared definitions of `sql`, with this dialect's time arithmetic.
fn views() -> [(&'static str, String); 3] {
    [
        ("pr_velocity", sql::pr_velocity_view(&dialect())),
        ("reviewer_load", sql::reviewer_load_view(&dialect())),
        (
            "weekly_throughput",
            "CREATE VIEW weekly_throughput AS
WITH opened AS (
  SELECT organization, date(created_at, '-6 days', 'weekday 1') AS week, COUNT(*) AS prs_opened
  FROM pull_requests GROUP BY 1, 2
),
merged_ranked AS (
  SELECT organization, date(merged_at, '-6 days', 'weekday 1') AS week,
    (julianday(merged_at) - julianday(created_at)) * 24 AS hours,
    ROW_NUMBER() OVER (PARTITION BY organization, date(merged_at, '-6 days', 'weekday 1')
                       ORDER BY julianday(merged_at) - julianday(created_at)) AS rn,
    COUNT(*) OVER (PARTITION BY organization, date(merged_at, '-6 days', 'weekday 1')) AS n
  FROM pull_requests WHERE merged_at IS NOT NULL
),
merged AS (
  SELECT organization, week, MAX(n) AS prs_merged,
    ROUND(AVG(CASE WHEN rn IN ((n + 1) / 2, (n + 2) / 2) THEN hours END), 2) AS median_hours_to_merge
  FROM merged_ranked GROUP BY organization, week
),
weeks AS (SELECT organization, week FROM opened UNION SELECT organization, week FROM merged)
SELECT w.organization, w.week, COALESCE(o.prs_opened, 0) AS prs_opened, COALESCE(m.prs_merged, 0) AS prs_merged,
  m.median_hours_to_merge
FROM weeks w
LEFT JOIN opened o ON o.organization = w.organization AND o.week = w.week
LEFT JOIN merged m ON m.organization = w.organization AND m.week = w.week"
                .to_string(),
        ),
    ]
}

impl SqliteWarehouse {
    /// Opens (creating if needed) the SQLite file at `path`.
    pub async fn open(path: &Path) -> Result<Self, WarehouseError> {
        let path = path.to_path_buf();
        let p = path.clone();
        let (writer, reader) = tokio::task::spawn_blocking(move || -> Result<_, WarehouseError> {
            let unavailable = |e: rusqlite::Error| WarehouseError::Unavailable(format!("{}: {e}", p.display()));
            if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| WarehouseError::Unavailable(format!("{}: {e}", dir.display())))?;
            }
            let writer = Connection::open(&p).map_err(unavailable)?;
            writer
                .execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 30000;")
                .map_err(unavailable)?;
            let reader = Connection::open_with_flags(&p, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX).map_err(unavailable)?;
            reader.execute_batch("PRAGMA busy_timeout = 30000;").map_err(unavailable)?;
            Ok((writer, reader))
        })
        .await
        .map_err(|e| WarehouseError::Unavailable(e.to_string()))??;
        Ok(SqliteWarehouse {
            path,
            writer: Arc::new(Mutex::new(writer)),
            reader: Arc::new(Mutex::new(reader)),
        })
    }

    /// Opens the SQLite file at `path` for reading only: neither the file nor its directory is
    /// created, and no write lock is ever taken (both connections are read-only, so a write
    /// through them fails). `Unavailable` when there is no file at `path`.
    pub async fn open_existing(path: &Path) -> Result<Self, WarehouseError> {
        if !path.is_file() {
            return Err(WarehouseError::Unavailable(format!(
                "there is no SQLite file at {} (nothing was created); run `ghstats init` to create the warehouse there, or check WAREHOUSE_URL",
                path.display()
            )));
        }
        let path = path.to_path_buf();
        let p = path.clone();
        let (writer, reader) = tokio::task::spawn_blocking(move || -> Result<_, WarehouseError> {
            let unavailable =
                |e: rusqlite::Error| WarehouseError::Unavailable(format!("{}: {e}", p.display()));
            let open = || -> Result<Connection, WarehouseError> {
                let c = Connection::open_with_flags(
                    &p,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .map_err(unavailable)?;
                c.execute_batch("PRAGMA busy_timeout = 30000;")
                    .map_err(unavailable)?;
                Ok(c)
            };
            Ok((open()?, open()?))
        })
        .await
        .map_err(|e| WarehouseError::Unavailable(e.to_string()))??;
        Ok(SqliteWarehouse {
            path,
            writer: Arc::new(Mutex::new(writer)),
            reader: Arc::new(Mutex::new(reader)),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn with<R: Send + 'static>(
        conn: &Arc<Mutex<Connection>>,
        f: impl FnOnce(&mut Connection) -> Result<R, WarehouseError> + Send + 'static,
    ) -> Result<R, WarehouseError> {
        let conn = conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut guard)
        })
        .await
        .map_err(|e| WarehouseError::Query(format!("the SQLite thread failed: {e}")))?
    }
}

fn stage_chunk(
    tx: &rusqlite::Transaction<'_>,
    t: &TableDef,
    chunk: &ChunkInfo,
    bytes: &[u8],
) -> Result<u64, WarehouseError> {
    let placeholders: Vec<String> = (1..=t.columns.len()).map(|i| format!("?{i}")).collect();
    let mut stmt = tx
        .prepare_cached(&format!(
            "INSERT INTO temp.stage_{} ({}) VALUES ({})",
            t.name,
            column_list(t),
            placeholders.join(", ")
        ))
        .map_err(q)?;
    super::read_rows(chunk, bytes, |_, obj| {
        let values: Vec<SqlValue> = t
            .columns
            .iter()
            .map(|c| to_sql(t.name, c, obj.get(c.name)))
            .collect::<Result<_, _>>()
            .map_err(RowFault::Bad)?;
        stmt.execute(params_from_iter(values)).map_err(q)?;
        Ok(())
    })
}

#[async_trait]
impl Warehouse for SqliteWarehouse {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn ensure_tables(&self) -> Result<(), WarehouseError> {
        Self::with(&self.writer, |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(q)?;
            for t in tables::every() {
                tx.execute_batch(&create_table_sql(t)).map_err(q)?;
                let have: Vec<String> = tx
                    .prepare("SELECT name FROM pragma_table_info(?1)")
                    .and_then(|mut s| s.query_map([t.name], |r| r.get(0))?.collect())
                    .map_err(q)?;
                if let Some(m) = sql::missing_columns(t, &have) {
                    return Err(WarehouseError::Query(m));
                }
                // A table made by an earlier build gains the nullable columns added since.
                for add in sql::added_columns(t, &have, sqlite_type) {
                    tx.execute_batch(&add).map_err(q)?;
                }
                for ix in indexes_sql(t) {
                    tx.execute_batch(&ix).map_err(q)?;
                }
            }
            // Views are replaced, so a new build's definitions take effect.
            for (name, sql) in views() {
                tx.execute_batch(&format!("DROP VIEW IF EXISTS {name}; {sql};"))
                    .map_err(q)?;
            }
            tx.commit().map_err(q)
        })
        .await
    }

    async fn load(&self, lake: &Lake, chunks: &[ChunkInfo]) -> Result<LoadReport, WarehouseError> {
        let mut report = LoadReport::new();
        if chunks.is_empty() {
            return Ok(report);
        }
        for c in chunks {
            if tables::by_name(&c.table).is_none() {
                return Err(WarehouseError::BadChunk {
                    path: c.path.clone(),
                    message: format!("unknown table {}", c.table),
                });
            }
        }
        let lake = lake.clone();
        let chunks = chunks.to_vec();
        let handle = tokio::runtime::Handle::current();
        Self::with(&self.writer, move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(q)?;
            for t in tables::ALL {
                tx.execute_batch(&format!(
                    "CREATE TEMP TABLE IF NOT EXISTS stage_{0} AS SELECT * FROM main.{0} WHERE 0; DELETE FROM temp.stage_{0};",
                    t.name
                ))
                .map_err(q)?;
            }
            // One chunk in memory at a time.
            for chunk in &chunks {
                let t = tables::by_name(&chunk.table).ok_or_else(|| WarehouseError::BadChunk { path: chunk.path.clone(), message: "unknown table".into() })?;
                let path = object_store::path::Path::from(chunk.path.as_str());
                let bytes = handle
                    .block_on(lake.get(&path))
                    .map_err(|e| WarehouseError::reading(&chunk.path, e))?;
                let n = stage_chunk(&tx, t, chunk, &bytes)?;
                report.entry(t.name.to_string()).or_default().staged += n;
            }
            for t in sql::renamed_tables() {
                tx.execute(&sql::fill_repository_id_sql(&format!("temp.stage_{}", t.name), "temp.stage_repositories", "repositories"), []).map_err(q)?;
            }
            tx.execute_batch("CREATE INDEX IF NOT EXISTS temp.stage_pull_requests_key ON stage_pull_requests (repository_id, pr_number);")
                .map_err(q)?;
            // Parents first: children are judged against the merged pull requests.
            for t in tables::ALL {
                let is_child = tables::PR_CHILDREN.iter().any(|c| c.name == t.name);
                if is_child {
                    tx.execute_batch(&drop_stale_staged_sql(t)).map_err(q)?;
                }
                let m = merge_sql(t);
                let inserted: u64 = tx.query_row(&m.count_inserted, [], |r| r.get(0)).map_err(q)?;
                let updated: u64 = tx.query_row(&m.count_updated, [], |r| r.get(0)).map_err(q)?;
                tx.execute(&m.upsert, []).map_err(q)?;
                let e = report.entry(t.name.to_string()).or_default();
                e.inserted += inserted;
                e.updated += updated;
            }
            for child in tables::PR_CHILDREN {
                let deleted = tx.execute(&reconcile_sql(child), []).map_err(q)? as u64;
                report.entry(child.name.to_string()).or_default().deleted += deleted;
            }
            // Names follow the repository's id: its rows take its current name.
            for t in sql::renamed_tables() {
                tx.execute(&sql::rename_sql(t.name, "repositories", "temp.stage_repositories"), []).map_err(q)?;
            }
            for t in tables::ALL {
                tx.execute_batch(&format!("DELETE FROM temp.stage_{};", t.name)).map_err(q)?;
            }
            tx.commit().map_err(q)?;
            report.retain(|_, l| *l != TableLoad::default());
            Ok(report)
        })
        .await
    }

    async fn delete_repository(
        &self,
        organization: &str,
        repository: &str,
    ) -> Result<u64, WarehouseError> {
        let (org, repo) = (organization.to_string(), repository.to_string());
        Self::with(&self.writer, move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(q)?;
            let mut n = 0u64;
            for t in tables::ALL {
                n += tx
                    .execute(
                        &format!(
                            "DELETE FROM {} WHERE organization = ?1 AND repository = ?2",
                            t.name
                        ),
                        [&org, &repo],
                    )
                    .map_err(q)? as u64;
            }
            tx.commit().map_err(q)?;
            Ok(n)
        })
        .await
    }

    async fn row_counts(&self) -> Result<BTreeMap<String, u64>, WarehouseError> {
        Self::with(&self.reader, |conn| {
            let mut out = BTreeMap::new();
            let have: Vec<String> = conn
                .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
                .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
                .map_err(q)?;
            let commit_tables = tables::COMMIT_TABLES
                .iter()
                .filter(|t| have.iter().any(|h| h == t.name));
            for t in tables::ALL.iter().chain(commit_tables) {
                let n: u64 = conn
                    .query_row(&format!("SELECT COUNT(*) FROM {}", t.name), [], |r| {
                        r.get(0)
                    })
                    .map_err(q)?;
                out.insert(t.name.to_string(), n);
            }
            Ok(out)
        })
        .await
    }

    async fn missing_tables(&self) -> Result<Vec<&'static str>, WarehouseError> {
        Self::with(&self.reader, |conn| {
            let have: Vec<String> = conn
                .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
                .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
                .map_err(q)?;
            Ok(tables::ALL
                .iter()
                .map(|t| t.name)
                .filter(|n| !have.iter().any(|h| h == n))
                .collect())
        })
        .await
    }

    async fn fetch_rows(
        &self,
        table: &str,
        organization: &str,
    ) -> Result<Vec<serde_json::Value>, WarehouseError> {
        let t = tables::by_name(table)
            .ok_or_else(|| WarehouseError::Query(format!("unknown table {table}")))?;
        let org = organization.to_string();
        Self::with(&self.reader, move |conn| {
            let sql = format!(
                "SELECT {} FROM {} WHERE organization = ?1 ORDER BY {}",
                column_list(t),
                t.name,
                t.key.join(", ")
            );
            let mut stmt = conn.prepare(&sql).map_err(q)?;
            let rows = stmt
                .query_map([&org], |r| {
                    let mut obj = serde_json::Map::new();
                    for (i, c) in t.columns.iter().enumerate() {
                        obj.insert(c.name.to_string(), to_json(c, r.get::<_, SqlValue>(i)?));
                    }
                    Ok(serde_json::Value::Object(obj))
                })
                .map_err(q)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(q)
        })
        .await
    }

    async fn query(&self, sql: &str) -> Result<Vec<serde_json::Value>, WarehouseError> {
        let sql = sql.to_string();
        Self::with(&self.reader, move |conn| {
            let mut stmt = conn.prepare(&sql).map_err(q)?;
            if !stmt.readonly() {
                return Err(WarehouseError::Query(
                    "only read-only statements can be queried".into(),
                ));
            }
            let names: Vec<String> = stmt.column_names().iter().map(|s| s.to_string()).collect();
            let rows = stmt
                .query_map([], |r| {
                    let mut obj = serde_json::Map::new();
                    for (i, n) in names.iter().enumerate() {
                        obj.insert(n.clone(), plain_json(r.get_ref(i)?));
                    }
                    Ok(serde_json::Value::Object(obj))
                })
                .map_err(q)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(q)
        })
        .await
    }

    /// Stages the crawl's rows, keeps one per repository (its newest observation), then, in
    /// the same transaction, upserts `repo_stars` (strictly newer `observed_at` only) and
    /// appends to `repo_star_history` with [`sql::star_history_rows_sql`].
    async fn load_stars(
        &self,
        lake: &Lake,
        chunks: &[ChunkInfo],
    ) -> Result<StarsLoad, WarehouseError> {
        if chunks.is_empty() {
            return Ok(StarsLoad::default());
        }
        let lake = lake.clone();
        let chunks = chunks.to_vec();
        let handle = tokio::runtime::Handle::current();
        Self::with(&self.writer, move |conn| {
            let t = &tables::REPO_STARS;
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(q)?;
            tx.execute_batch(
                "CREATE TEMP TABLE IF NOT EXISTS stage_repo_stars AS SELECT * FROM main.repo_stars WHERE 0; \
                 DELETE FROM temp.stage_repo_stars; DROP TABLE IF EXISTS temp.stage_repo_stars_one;",
            )
            .map_err(q)?;
            let mut load = StarsLoad::default();
            // One chunk in memory at a time.
            for chunk in &chunks {
                let path = object_store::path::Path::from(chunk.path.as_str());
                let bytes = handle
                    .block_on(lake.get(&path))
                    .map_err(|e| WarehouseError::reading(&chunk.path, e))?;
                load.staged += stage_chunk(&tx, t, chunk, &bytes)?;
            }
            tx.execute_batch(&format!(
                "CREATE TEMP TABLE stage_repo_stars_one AS {}; \
                 CREATE UNIQUE INDEX temp.stage_repo_stars_one_key ON stage_repo_stars_one (repo_id);",
                dedup_sql(t)
            ))
            .map_err(q)?;
            // `WHERE 1 = 1`: SQLite reads `ON CONFLICT` after a bare `FROM t` as a join's `ON`.
            let one = format!(
                "SELECT {} FROM temp.stage_repo_stars_one WHERE 1 = 1",
                column_list(t)
            );
            let m = sql::merge_sql(t, &one);
            load.inserted = tx
                .query_row(&m.count_inserted, [], |r| r.get(0))
                .map_err(q)?;
            load.updated = tx
                .query_row(&m.count_updated, [], |r| r.get(0))
                .map_err(q)?;
            tx.execute(&m.upsert, []).map_err(q)?;
            load.history_added = tx
                .execute(
                    &format!(
                        "INSERT INTO {h} ({cols}) {rows}",
                        h = tables::REPO_STAR_HISTORY.name,
                        cols = column_list(&tables::REPO_STAR_HISTORY),
                        rows = sql::star_history_rows_sql(
                            "temp.stage_repo_stars_one",
                            tables::REPO_STAR_HISTORY.name
                        )
                    ),
                    [],
                )
                .map_err(q)? as u64;
            tx.execute_batch(
                "DELETE FROM temp.stage_repo_stars; DROP TABLE temp.stage_repo_stars_one;",
            )
            .map_err(q)?;
            tx.commit().map_err(q)?;
            Ok(load)
        })
        .await
    }

    async fn export_rows(
        &self,
        table: &'static TableDef,
        rows: tokio::sync::mpsc::Sender<Vec<Typed>>,
    ) -> Result<u64, WarehouseError> {
        Self::with(&self.reader, move |conn| {
            let t = table;
            let sql = format!(
                "SELECT {} FROM {} ORDER BY {}",
                column_list(t),
                t.name,
                t.key.join(", ")
            );
            let mut stmt = conn.prepare(&sql).map_err(q)?;
            // A cursor: one row in hand at a time, however many the table holds.
            let mut cursor = stmt.query([]).map_err(q)?;
            let mut n = 0u64;
            while let Some(r) = cursor.next().map_err(q)? {
                let cells = t
                    .columns
                    .iter()
                    .enumerate()
                    .map(|(i, c)| r.get::<_, SqlValue>(i).map(|v| from_sql(c, v)))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(q)?;
                rows.blocking_send(cells)
                    .map_err(|_| super::export_stopped())?;
                n += 1;
            }
            Ok(n)
        })
        .await
    }

    async fn gharchive_hours(&self) -> Result<Vec<super::HourState>, WarehouseError> {
        let t = &tables::GHARCHIVE_HOURS;
        let sql = format!("SELECT {} FROM {} ORDER BY hour", column_list(t), t.name);
        Self::with(&self.reader, move |conn| {
            // A warehouse made before GH Archive, opened read-only, has no such table.
            let exists: bool = conn
                .query_row(
                    "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
                    [t.name],
                    |r| r.get(0),
                )
                .map_err(q)?;
            if !exists {
                return Ok(Vec::new());
            }
            let mut stmt = conn.prepare(&sql).map_err(q)?;
            let rows = stmt
                .query_map([], |r| {
                    (0..t.columns.len())
                        .map(|i| r.get::<_, SqlValue>(i))
                        .collect::<Result<Vec<_>, _>>()
                })
                .map_err(q)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(q)?;
            rows.into_iter()
                .map(|row| {
                    let cells: Vec<Typed> = t
                        .columns
                        .iter()
                        .zip(row)
                        .map(|(c, v)| from_sql(c, v))
                        .collect();
                    super::HourState::from_cells(&cells)
                })
                .collect()
        })
        .await
    }

    async fn record_gharchive_hour(&self, state: &super::HourState) -> Result<(), WarehouseError> {
        let cells = state.cells();
        Self::with(&self.writer, move |conn| {
            conn.execute(
                &upsert_sql(&tables::GHARCHIVE_HOURS),
                params_from_iter(cells.into_iter().map(typed_sql)),
            )
            .map_err(q)?;
            Ok(())
        })
        .await
    }

    async fn load_gharchive_hour(
        &self,
        lake: &Lake,
        path: &object_store::path::Path,
        state: &super::HourState,
    ) -> Result<u64, WarehouseError> {
        use futures::StreamExt;
        let mut batches = super::gharchive::read_batches(lake, path).await?;
        let handle = tokio::runtime::Handle::current();
        let state_cells = state.cells();
        let hour = stored_ts(state.hour);
        let shown = path.to_string();
        Self::with(&self.writer, move |conn| {
            let t = &tables::GHARCHIVE_EVENTS;
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(q)?;
            // The hour's own rows are replaced; an id another hour holds keeps that row.
            tx.execute(
                "DELETE FROM gharchive_events WHERE archive_hour = ?1",
                [&hour],
            )
            .map_err(q)?;
            let mut rows = 0u64;
            {
                let placeholders: Vec<String> =
                    (1..=t.columns.len()).map(|i| format!("?{i}")).collect();
                let mut stmt = tx
                    .prepare(&format!(
                        "INSERT INTO {} ({}) VALUES ({}) ON CONFLICT (event_id) DO NOTHING",
                        t.name,
                        column_list(t),
                        placeholders.join(", ")
                    ))
                    .map_err(q)?;
                while let Some(batch) = handle.block_on(batches.next()) {
                    let batch = batch.map_err(|e| WarehouseError::Storage {
                        path: shown.clone(),
                        message: e.to_string(),
                    })?;
                    for i in 0..batch.num_rows() {
                        let cells = super::gharchive::event_cells(&batch, i)?;
                        stmt.execute(params_from_iter(cells.into_iter().map(typed_sql)))
                            .map_err(q)?;
                        rows += 1;
                    }
                }
            }
            tx.execute(
                &upsert_sql(&tables::GHARCHIVE_HOURS),
                params_from_iter(state_cells.into_iter().map(typed_sql)),
            )
            .map_err(q)?;
            tx.commit().map_err(q)?;
            Ok(rows)
        })
        .await
    }

    async fn load_commit_months(
        &self,
        lake: &Lake,
        repo: &crate::commits::RepositoryState,
        months: &[crate::commits::MonthPartition],
    ) -> Result<BTreeMap<String, u64>, WarehouseError> {
        use super::commits as shared;
        use futures::StreamExt;
        shared::check_months(repo, months)?;
        let lake = lake.clone();
        let repo_cells = shared::repository_cells(repo);
        let repo_id = repo.repo_id;
        let months = months.to_vec();
        let handle = tokio::runtime::Handle::current();
        Self::with(&self.writer, move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(q)?;
            let mut read = shared::zero_counts();
            for m in &months {
                for t in tables::COMMIT_TABLES {
                    tx.execute(
                        &format!(
                            "DELETE FROM {} WHERE repository_id = ?1 AND commit_month = ?2",
                            t.name
                        ),
                        rusqlite::params![m.repository_id, m.month],
                    )
                    .map_err(q)?;
                }
            }
            for t in tables::COMMIT_TABLES {
                let mut stmt = tx.prepare(&upsert_sql(t)).map_err(q)?;
                for m in &months {
                    for file in m.files(t.name) {
                        let path = object_store::path::Path::from(file.as_str());
                        // One record batch in memory at a time.
                        let mut batches =
                            handle.block_on(super::gharchive::read_batches(&lake, &path))?;
                        while let Some(batch) = handle.block_on(batches.next()) {
                            let batch = batch.map_err(|e| WarehouseError::Storage {
                                path: file.clone(),
                                message: e.to_string(),
                            })?;
                            for i in 0..batch.num_rows() {
                                let cells =
                                    shared::batch_cells(t, &batch, i).map_err(|message| {
                                        WarehouseError::BadChunk {
                                            path: file.clone(),
                                            message,
                                        }
                                    })?;
                                shared::check_row(t, &cells, m, file)?;
                                stmt.execute(params_from_iter(cells.into_iter().map(typed_sql)))
                                    .map_err(q)?;
                                *read.entry(t.name.to_string()).or_default() += 1;
                            }
                        }
                    }
                }
            }
            tx.execute(
                &shared::repository_upsert_sql(|i, _| format!("?{i}")),
                params_from_iter(repo_cells.into_iter().map(typed_sql)),
            )
            .map_err(q)?;
            tx.execute(
                &shared::rename_commits_sql("repositories", tables::COMMITS.name, "?1", |a, b| {
                    format!("{a} || {b}")
                }),
                [repo_id],
            )
            .map_err(q)?;
            tx.commit().map_err(q)?;
            Ok(read)
        })
        .await
    }
}

/// `INSERT … ON CONFLICT (key) DO UPDATE` of every column of `t`.
fn upsert_sql(t: &TableDef) -> String {
    sql::upsert_sql(t, |i, _| format!("?{i}"))
}

/// A backend-neutral value as SQLite stores it.
fn typed_sql(v: Typed) -> SqlValue {
    match v {
        Typed::Null => SqlValue::Null,
        Typed::Text(s) => SqlValue::Text(s),
        Typed::Int(i) => SqlValue::Integer(i),
        Typed::Bool(b) => SqlValue::Integer(b as i64),
        Typed::Timestamp(t) => SqlValue::Text(stored_ts(t)),
        Typed::Labels(l) => SqlValue::Text(serde_json::Value::from(l).to_string()),
    }
}

/// A stored value back as a backend-neutral one.
fn from_sql(c: &Column, v: SqlValue) -> Typed {
    match (c.ty, v) {
        (_, SqlValue::Null) => Typed::Null,
        // A REPEATED column is kept as a JSON array of strings.
        (_, SqlValue::Text(s)) if c.mode == Mode::Repeated => {
            Typed::Labels(serde_json::from_str(&s).unwrap_or_default())
        }
        (ColumnType::Timestamp, SqlValue::Text(s)) => {
            parse_ts(&s).map(Typed::Timestamp).unwrap_or(Typed::Null)
        }
        (ColumnType::Bool, SqlValue::Integer(i)) => Typed::Bool(i != 0),
        (_, SqlValue::Integer(i)) => Typed::Int(i),
        (_, SqlValue::Text(s)) => Typed::Text(s),
        (_, SqlValue::Real(f)) => Typed::Int(f as i64),
        (_, SqlValue::Blob(b)) => Typed::Text(String::from_utf8_lossy(&b).into_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ddl_follows_the_table_definition() {
        let sql = create_table_sql(&tables::PULL_REQUESTS);
        assert!(sql.starts_with("CREATE TABLE IF NOT EXISTS pull_requests ("));
        assert!(sql.contains("  pr_number INTEGER NOT NULL,"));
        assert!(sql.contains("  merged_at TEXT,"));
        assert!(sql.contains("  labels TEXT,"));
        assert!(sql.contains("  draft INTEGER NOT NULL,"));
        assert!(sql.ends_with("PRIMARY KEY (repository_id, pr_number)\n)"));
    }

    #[test]
    fn merge_only_replaces_strictly_newer_versions() {
        let m = merge_sql(&tables::PULL_REQUESTS);
        assert!(m
            .upsert
            .contains("ON CONFLICT (repository_id, pr_number) DO UPDATE SET"));
        assert!(m.upsert.ends_with("WHERE (excluded.updated_at, excluded.collected_at) > (pull_requests.updated_at, pull_requests.collected_at)"));
        assert!(
            !m.upsert.contains("repository_id = excluded.repository_id"),
            "keys are not updated"
        );
        assert!(
            m.upsert.contains("repository = excluded.repository"),
            "names are not keys"
        );
    }

    #[test]
    fn stored_timestamps_sort_as_text_in_time_order() {
        let a = stored_ts(parse_ts("2026-01-01T00:00:05Z").unwrap());
        let b = stored_ts(parse_ts("2026-01-01T00:00:05.5Z").unwrap());
        let c = stored_ts(parse_ts("2026-01-01T00:00:06+00:00").unwrap());
        assert!(a < b && b < c, "{a} {b} {c}");
        assert_eq!(a, "2026-01-01T00:00:05.000000Z");
    }

    #[test]
    fn chunk_values_are_checked_against_the_column_type() {
        let col = |name| *tables::PULL_REQUESTS.column(name).unwrap();
        assert!(to_sql(
            "pull_requests",
            &col("pr_number"),
            Some(&serde_json::json!("x"))
        )
        .is_err());
        assert!(to_sql("pull_requests", &col("pr_number"), None).is_err());
        assert_eq!(
            to_sql(
                "pull_requests",
                &col("pr_number"),
                Some(&serde_json::json!("42"))
            )
            .unwrap(),
            SqlValue::Integer(42)
        );
        assert_eq!(
            to_sql("pull_requests", &col("merged_at"), None).unwrap(),
            SqlValue::Null
        );
        assert_eq!(
            to_sql("pull_requests", &col("labels"), None).unwrap(),
            SqlValue::Text("[]".into())
        );
        assert!(to_sql(
            "pull_requests",
            &col("labels"),
            Some(&serde_json::json!([1, 2]))
        )
        .is_err());
        assert!(to_sql(
            "pull_requests",
            &col("created_at"),
            Some(&serde_json::json!("yesterday"))
        )
        .is_err());
        assert_eq!(
            to_sql(
                "pull_requests",
                &col("draft"),
                Some(&serde_json::json!(true))
            )
            .unwrap(),
            SqlValue::Integer(1)
        );
    }
}
