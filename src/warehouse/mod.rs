//! The warehouse: tables made from the one definition in [`crate::tables`], loaded from stored
//! chunks through staging and an idempotent MERGE. One module per backend, one conformance
//! suite they all pass.
//!
//! The MERGE rule, for every backend: staging rows are deduplicated by key, and the copy with
//! the greatest version (the table's `version` columns, compared in order) wins. A target row is
//! replaced only by a strictly newer version, so loading the same chunks twice changes nothing
//! and an older chunk never overwrites a newer row. A pull request's children carry the version
//! of the snapshot they came in (`pr_updated_at`, and the collection's `collected_at`): once a
//! newer snapshot of a pull request is loaded, children of older snapshots (a deleted comment, a
//! force-pushed commit) are deleted, and children older than the stored pull request are not
//! loaded. A snapshot is newer by its `updated_at`, then by its `collected_at`: GitHub does not
//! bump `updatedAt` when a comment is deleted, so a later re-collection reconciles too.

pub mod bigquery;
pub mod commits;
pub mod conformance;
pub mod gharchive;
pub mod pg_tls;
pub mod postgres;
pub mod sql;
pub mod sqlite;

pub use gharchive::{HourState, HourStatus};

use crate::lake::{ChunkInfo, Lake};
use async_trait::async_trait;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

#[derive(Debug, thiserror::Error)]
pub enum WarehouseError {
    /// The warehouse cannot be opened or reached.
    #[error("cannot open the warehouse: {0}")]
    Unavailable(String),
    /// A chunk is unreadable or holds a row that does not fit its table; nothing was loaded.
    #[error("chunk {path} cannot be loaded: {message}")]
    BadChunk { path: String, message: String },
    /// Reading a chunk from storage failed; nothing was loaded.
    #[error("reading chunk {path}: {message}")]
    Storage { path: String, message: String },
    /// A chunk is not in storage (deleted by `wipe` after a checkpoint named it); nothing was
    /// loaded.
    #[error("chunk {path} is not in storage")]
    MissingChunk { path: String },
    /// A statement failed; the load was rolled back.
    #[error("warehouse statement failed: {0}")]
    Query(String),
    /// The backend cannot do this (yet): GH Archive on a backend without it. Nothing was
    /// read or changed; the message names the backend and what to use instead.
    #[error("{0}")]
    Unsupported(String),
}

impl WarehouseError {
    /// Reading the chunk at `path` failed with `e`: [`WarehouseError::MissingChunk`] when
    /// storage does not have it, [`WarehouseError::Storage`] otherwise.
    pub fn reading(path: &str, e: object_store::Error) -> Self {
        match e {
            object_store::Error::NotFound { .. } => WarehouseError::MissingChunk {
                path: path.to_string(),
            },
            e => WarehouseError::Storage {
                path: path.to_string(),
                message: e.to_string(),
            },
        }
    }
}

/// What a load did to one table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TableLoad {
    /// Rows read from the chunks.
    pub staged: u64,
    /// Keys that were new.
    pub inserted: u64,
    /// Keys whose row was replaced by a newer version.
    pub updated: u64,
    /// Rows removed because a newer snapshot of their pull request no longer has them.
    pub deleted: u64,
}

pub type LoadReport = BTreeMap<String, TableLoad>;

/// A warehouse backend.
#[async_trait]
pub trait Warehouse: Send + Sync {
    /// A short name for logs (`sqlite`, `bigquery`, `postgres`).
    fn backend(&self) -> &'static str;

    /// Creates the tables and metric views if missing; safe to run again.
    async fn ensure_tables(&self) -> Result<(), WarehouseError>;

    /// `ghstats init`: creates what is missing (the dataset too, on BigQuery) and brings the
    /// metric views up to date; safe to run again.
    async fn init(&self) -> Result<(), WarehouseError> {
        self.ensure_tables().await
    }

    /// Loads `chunks` (read from `lake`) through staging and MERGEs them into the tables, all or
    /// nothing.
    async fn load(&self, lake: &Lake, chunks: &[ChunkInfo]) -> Result<LoadReport, WarehouseError>;

    /// Deletes one repository's rows from every table; returns how many.
    async fn delete_repository(
        &self,
        organization: &str,
        repository: &str,
    ) -> Result<u64, WarehouseError>;

    /// Rows per table: those of [`crate::tables::ALL`], and of
    /// [`crate::tables::COMMIT_TABLES`] where the warehouse has them (one made before them,
    /// opened read-only, does not).
    async fn row_counts(&self) -> Result<BTreeMap<String, u64>, WarehouseError>;

    /// The tables of [`crate::tables::ALL`] the warehouse lacks, in that order; read without
    /// creating or locking anything (a warehouse opened only for reading answers it). The GH
    /// Archive, stars and commits tables are not asked for: a warehouse made before them still
    /// serves `summary` and `/readyz`, and `ensure_tables` adds them.
    async fn missing_tables(&self) -> Result<Vec<&'static str>, WarehouseError>;

    /// One organization's rows of a table, in a backend-neutral form: columns as in the table
    /// definition, timestamps as RFC 3339 UTC with `Z` (fraction only when non-zero), labels as
    /// a JSON array, booleans as JSON booleans. For tests and exports.
    async fn fetch_rows(
        &self,
        table: &str,
        organization: &str,
    ) -> Result<Vec<serde_json::Value>, WarehouseError>;

    /// Runs a read-only query in the backend's dialect; rows as JSON objects.
    async fn query(&self, sql: &str) -> Result<Vec<serde_json::Value>, WarehouseError>;

    /// GH Archive: every recorded hour's state (`gharchive_hours`), oldest hour first. Empty
    /// when the warehouse has no `gharchive_hours` table (one made before GH Archive, opened
    /// read-only by `summary`). [`WarehouseError::Unsupported`] from a backend without GH
    /// Archive.
    async fn gharchive_hours(&self) -> Result<Vec<HourState>, WarehouseError> {
        Err(gharchive::unsupported(self.backend()))
    }

    /// GH Archive: records a missing or failed hour's state.
    async fn record_gharchive_hour(&self, _state: &HourState) -> Result<(), WarehouseError> {
        Err(gharchive::unsupported(self.backend()))
    }

    /// GH Archive: loads one hour's Parquet object at `path` into `gharchive_events` and
    /// records `state` (`ingested`), in one transaction. An event id already stored by another
    /// hour keeps that row; the hour's own rows are replaced, so loading twice changes nothing.
    /// Returns the rows read from the file.
    async fn load_gharchive_hour(
        &self,
        _lake: &Lake,
        _path: &object_store::path::Path,
        _state: &HourState,
    ) -> Result<u64, WarehouseError> {
        Err(gharchive::unsupported(self.backend()))
    }

    /// Stars: loads one crawl's chunks (gzip NDJSON of `stars::RepoStar`, paths in `lake`) in
    /// one transaction. `repo_stars` takes a row when its `observed_at` is newer than the stored
    /// one; `repo_star_history` gains a row `(repo_id, observed_at, stargazer_count, crawl_id)`
    /// when no row has that key and the repository's previous row by `observed_at` has another
    /// count (or there is none). A repository seen twice in the crawl counts once, its newest
    /// observation. Loading a crawl again changes nothing.
    async fn load_stars(
        &self,
        _lake: &Lake,
        _chunks: &[ChunkInfo],
    ) -> Result<StarsLoad, WarehouseError> {
        Err(WarehouseError::Unsupported(format!(
            "the {} warehouse does not take star counts yet",
            self.backend()
        )))
    }

    /// Commits: makes the warehouse's rows of `repo` (its `repo_id` is the `repository_id`)
    /// for each of `months` equal to that month's Parquet objects in `lake`
    /// ([`crate::commits::MonthPartition`]: the whole month of `commits`, `file_changes` and
    /// `file_states`; a table with no objects has no rows that month): the stored rows of
    /// `(repository_id, commit_month)` are deleted and the objects' rows inserted. A row of an
    /// object that is not of its month's repository and month, or whose `commit_at` is outside
    /// its `commit_month`, fails the load ([`WarehouseError::BadChunk`]; BigQuery, whose load
    /// jobs mix a table's objects, checks each row against the months of the load), as does a
    /// month of another repository or not `YYYY-MM` ([`WarehouseError::Query`]). Then `repo` is upserted into `repositories` by the rule of
    /// [`commits`]: `last_commit_sha`/`last_commit_at` set as given; the columns a
    /// pull-request collection writes too (names, flags, `default_branch`, …) taken from `repo`
    /// only when it is the newer snapshot by `(updated_at, collected_at)`; a new row inserted
    /// whole. The repository's `commits` rows take its current `owner/name`. One transaction,
    /// so a failed load leaves the warehouse as it was; loading the same months twice changes
    /// nothing. Objects are read a record batch at a time (bounded memory); on BigQuery a load
    /// job reads them, from `gs://` when the lake is a bucket. Returns the rows read per table
    /// (every commits table named, 0 when it had no objects).
    async fn load_commit_months(
        &self,
        _lake: &Lake,
        _repo: &crate::commits::RepositoryState,
        _months: &[crate::commits::MonthPartition],
    ) -> Result<BTreeMap<String, u64>, WarehouseError> {
        Err(WarehouseError::Unsupported(format!(
            "the {} warehouse does not take commits yet",
            self.backend()
        )))
    }

    /// Every row of `table` (any of [`crate::tables::every`]), each sent to `rows` as its cells
    /// in the definition's column order, read a page at a time (a cursor on SQLite and
    /// PostgreSQL, in key order; `tabledata.list` pages on BigQuery, which cost no query), so
    /// memory stays bounded whatever the table's size. Returns the rows sent.
    /// [`WarehouseError::Query`] when the table does not exist, a read fails, or the receiver
    /// was dropped (the reader of the rows stopped).
    async fn export_rows(
        &self,
        table: &'static crate::tables::TableDef,
        rows: tokio::sync::mpsc::Sender<Vec<Typed>>,
    ) -> Result<u64, WarehouseError>;
}

/// The error of [`Warehouse::export_rows`] when the receiver of the rows has gone.
pub fn export_stopped() -> WarehouseError {
    WarehouseError::Query("the export stopped reading rows".into())
}

/// What loading one stars crawl did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct StarsLoad {
    /// Rows read from the chunks (a repository seen twice in the crawl counts twice).
    pub staged: u64,
    /// `repo_stars` rows that were new.
    pub inserted: u64,
    /// `repo_stars` rows replaced by a newer observation.
    pub updated: u64,
    /// `repo_star_history` rows added.
    pub history_added: u64,
}

/// A chunk value checked against its column: what every backend stores.
#[derive(Clone, Debug, PartialEq)]
pub enum Typed {
    Null,
    Text(String),
    Int(i64),
    Bool(bool),
    Timestamp(chrono::DateTime<chrono::Utc>),
    Labels(Vec<String>),
}

/// Checks one field of a chunk row against its column: a required column must be present, and
/// every value must be of the column's type (INT64 may come as a decimal string, as BigQuery
/// accepts). A missing REPEATED column is an empty list.
pub fn typed(
    table: &str,
    c: &crate::tables::Column,
    v: Option<&serde_json::Value>,
) -> Result<Typed, String> {
    use crate::tables::{ColumnType, Mode};
    use serde_json::Value as J;
    let v = match v {
        None | Some(J::Null) => {
            return match c.mode {
                // Filled by the load from the repository's row (chunks of earlier builds).
                Mode::Required if c.name == crate::tables::FILLED_AT_LOAD => Ok(Typed::Null),
                Mode::Required => Err(format!("{table}.{} is missing", c.name)),
                Mode::Repeated => Ok(Typed::Labels(Vec::new())),
                Mode::Nullable => Ok(Typed::Null),
            };
        }
        Some(v) => v,
    };
    let bad = || {
        format!(
            "{table}.{} has {v} where a {} is expected",
            c.name,
            c.ty.bigquery()
        )
    };
    if c.mode == Mode::Repeated {
        let items = v.as_array().ok_or_else(bad)?;
        return items
            .iter()
            .map(|i| i.as_str().map(crate::rows::text).ok_or_else(bad))
            .collect::<Result<_, _>>()
            .map(Typed::Labels);
    }
    match c.ty {
        // U+0000 is removed here too: chunks written before rows dropped it still load.
        ColumnType::String => v
            .as_str()
            .map(|s| Typed::Text(crate::rows::text(s)))
            .ok_or_else(bad),
        ColumnType::Int64 => v
            .as_i64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            .map(Typed::Int)
            .ok_or_else(bad),
        ColumnType::Bool => v.as_bool().map(Typed::Bool).ok_or_else(bad),
        ColumnType::Timestamp => v
            .as_str()
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
            .map(|t| Typed::Timestamp(t.with_timezone(&chrono::Utc)))
            .ok_or_else(bad),
    }
}

/// A fetched value in the form of [`Warehouse::fetch_rows`]: a timestamp column's text becomes
/// RFC 3339 UTC with `Z` (fraction only when non-zero); anything else stays as it is.
pub fn fetched_value(c: &crate::tables::Column, v: serde_json::Value) -> serde_json::Value {
    match (c.ty, &v) {
        (crate::tables::ColumnType::Timestamp, serde_json::Value::String(s)) => {
            chrono::DateTime::parse_from_rfc3339(s)
                .map(|t| {
                    serde_json::Value::String(
                        t.with_timezone(&chrono::Utc)
                            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                    )
                })
                .unwrap_or(v)
        }
        _ => v,
    }
}

/// What is wrong with one row of a chunk: the row itself, or the backend taking it.
pub enum RowFault {
    Bad(String),
    Backend(WarehouseError),
}

impl From<WarehouseError> for RowFault {
    fn from(e: WarehouseError) -> Self {
        RowFault::Backend(e)
    }
}

/// Reads a chunk (gzip NDJSON) line by line and hands each row, raw and parsed, to `each`;
/// returns the rows read. Any fault names the chunk and the line; nothing is skipped.
pub fn read_rows(
    chunk: &ChunkInfo,
    bytes: &[u8],
    mut each: impl FnMut(&str, &serde_json::Map<String, serde_json::Value>) -> Result<(), RowFault>,
) -> Result<u64, WarehouseError> {
    use std::io::BufRead;
    let bad = |message: String| WarehouseError::BadChunk {
        path: chunk.path.clone(),
        message,
    };
    let reader = std::io::BufReader::new(flate2::read::GzDecoder::new(bytes));
    let mut n = 0;
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| bad(format!("not gzip NDJSON: {e}")))?;
        if line.trim().is_empty() {
            continue;
        }
        let row: serde_json::Value =
            serde_json::from_str(&line).map_err(|e| bad(format!("line {}: {e}", i + 1)))?;
        let obj = row
            .as_object()
            .ok_or_else(|| bad(format!("line {} is not a JSON object", i + 1)))?;
        match each(&line, obj) {
            Ok(()) => n += 1,
            Err(RowFault::Bad(m)) => return Err(bad(format!("line {}: {m}", i + 1))),
            Err(RowFault::Backend(e)) => return Err(e),
        }
    }
    Ok(n)
}

/// A chunk line for the backends that load the JSON line itself (PostgreSQL's `jsonb`,
/// BigQuery's load jobs): every string without U+0000, which `jsonb` refuses (22P05). Rows
/// have none since they are built without it; chunks written before may.
pub fn line_without_nul<'a>(
    line: &'a str,
    obj: &serde_json::Map<String, serde_json::Value>,
) -> std::borrow::Cow<'a, str> {
    fn clean(v: &serde_json::Value) -> serde_json::Value {
        use serde_json::Value as J;
        match v {
            J::String(s) => J::String(crate::rows::text(s)),
            J::Array(a) => J::Array(a.iter().map(clean).collect()),
            J::Object(m) => J::Object(m.iter().map(|(k, v)| (k.clone(), clean(v))).collect()),
            other => other.clone(),
        }
    }
    // serde_json writes U+0000 as this escape; anything else is left as it is.
    if !line.contains("\\u0000") {
        return std::borrow::Cow::Borrowed(line);
    }
    let cleaned = clean(&serde_json::Value::Object(obj.clone()));
    std::borrow::Cow::Owned(cleaned.to_string())
}

/// Checks a row against its table: every column of its type, and no field that is not a column.
pub fn check_row(
    t: &crate::tables::TableDef,
    obj: &serde_json::Map<String, serde_json::Value>,
) -> Result<(), RowFault> {
    for c in t.columns {
        typed(t.name, c, obj.get(c.name)).map_err(RowFault::Bad)?;
    }
    match obj.keys().find(|k| t.column(k).is_none()) {
        Some(extra) => Err(RowFault::Bad(format!(
            "{extra} is not a column of {}",
            t.name
        ))),
        None => Ok(()),
    }
}

/// Where the warehouse is. `Debug` and `Display` hide a password.
#[derive(Clone, PartialEq, Eq)]
pub enum WarehouseUrl {
    /// A SQLite file (`sqlite://./data/warehouse.db`, `sqlite:///var/lib/ghstats.db`).
    Sqlite(std::path::PathBuf),
    /// PostgreSQL (`postgres://user:password@host:port/database`, with libpq's `sslmode` and
    /// `sslrootcert` if TLS is wanted).
    Postgres(String),
    /// BigQuery (`bigquery://PROJECT/DATASET[?location=US]`).
    BigQuery(bigquery::BigQueryTarget),
}

impl FromStr for WarehouseUrl {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(path) = s.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(
                    "sqlite:// needs a file path, e.g. sqlite://./data/warehouse.db".into(),
                );
            }
            return Ok(WarehouseUrl::Sqlite(path.into()));
        }
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            pg_tls::parse(s)?;
            return Ok(WarehouseUrl::Postgres(s.to_string()));
        }
        if s.starts_with("bigquery://") {
            return s.parse().map(WarehouseUrl::BigQuery);
        }
        // The URL is not echoed: it may hold a password.
        Err("unsupported WAREHOUSE_URL: use sqlite://PATH, postgres://USER:PASSWORD@HOST:PORT/DATABASE or bigquery://PROJECT/DATASET".to_string())
    }
}

impl fmt::Debug for WarehouseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WarehouseUrl({self})")
    }
}

impl fmt::Display for WarehouseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WarehouseUrl::Sqlite(p) => write!(f, "sqlite://{}", p.display()),
            WarehouseUrl::BigQuery(t) => write!(f, "{t}"),
            // The password never prints.
            WarehouseUrl::Postgres(u) => match url::Url::parse(u) {
                Ok(mut parsed) => {
                    if parsed.password().is_some() {
                        let _ = parsed.set_password(Some("****"));
                    }
                    write!(f, "{parsed}")
                }
                Err(_) => f.write_str("postgres://…"),
            },
        }
    }
}

/// Opens the warehouse a URL names, for jobs that write: a SQLite file (and its directory) is
/// created when missing; the caller runs [`Warehouse::ensure_tables`].
pub async fn open(url: &WarehouseUrl) -> Result<Box<dyn Warehouse>, WarehouseError> {
    match url {
        WarehouseUrl::Sqlite(path) => Ok(Box::new(sqlite::SqliteWarehouse::open(path).await?)),
        WarehouseUrl::Postgres(url) => {
            Ok(Box::new(postgres::PostgresWarehouse::connect(url).await?))
        }
        WarehouseUrl::BigQuery(t) => Ok(Box::new(bigquery::BigQueryWarehouse::connect(t).await?)),
    }
}

/// Opens the warehouse a URL names for reading only (`summary`, `/readyz`): nothing is created
/// and no write lock is taken. A SQLite file is opened read-only, a PostgreSQL session is read
/// only, BigQuery is only read. `Unavailable` when there is no warehouse at the URL (a typo, or
/// `ghstats init` not run yet) or it lacks tables, saying which and what to do.
pub async fn open_existing(url: &WarehouseUrl) -> Result<Box<dyn Warehouse>, WarehouseError> {
    let wh: Box<dyn Warehouse> = match url {
        WarehouseUrl::Sqlite(path) => Box::new(sqlite::SqliteWarehouse::open_existing(path).await?),
        WarehouseUrl::Postgres(u) => {
            Box::new(postgres::PostgresWarehouse::connect_read_only(u).await?)
        }
        WarehouseUrl::BigQuery(t) => Box::new(bigquery::BigQueryWarehouse::connect(t).await?),
    };
    let missing = wh.missing_tables().await?;
    if missing.len() == crate::tables::ALL.len() {
        return Err(WarehouseError::Unavailable(format!(
            "{url} holds no ghstats tables; run `ghstats init` to create them, or check WAREHOUSE_URL"
        )));
    }
    if !missing.is_empty() {
        return Err(WarehouseError::Unavailable(format!(
            "{url} lacks the tables {}; run `ghstats init` to create them",
            missing.join(", ")
        )));
    }
    Ok(wh)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_values_are_checked_against_the_column_type() {
        use crate::tables::PULL_REQUESTS;
        let col = |name| *PULL_REQUESTS.column(name).unwrap();
        let t = |name, v: Option<serde_json::Value>| typed("pull_requests", &col(name), v.as_ref());
        assert!(t("pr_number", Some(serde_json::json!("x"))).is_err());
        assert!(t("pr_number", None).is_err());
        assert_eq!(
            t("pr_number", Some(serde_json::json!("42"))).unwrap(),
            Typed::Int(42)
        );
        assert_eq!(t("merged_at", None).unwrap(), Typed::Null);
        assert_eq!(t("labels", None).unwrap(), Typed::Labels(vec![]));
        assert!(t("labels", Some(serde_json::json!([1, 2]))).is_err());
        assert!(t("created_at", Some(serde_json::json!("yesterday"))).is_err());
        assert_eq!(
            t("draft", Some(serde_json::json!(true))).unwrap(),
            Typed::Bool(true)
        );
    }

    #[test]
    fn warehouse_urls_parse() {
        assert_eq!(
            "sqlite://./data/warehouse.db"
                .parse::<WarehouseUrl>()
                .unwrap(),
            WarehouseUrl::Sqlite("./data/warehouse.db".into())
        );
        assert_eq!(
            "sqlite:///tmp/x.db".parse::<WarehouseUrl>().unwrap(),
            WarehouseUrl::Sqlite("/tmp/x.db".into())
        );
        assert!("sqlite://".parse::<WarehouseUrl>().is_err());
        assert!("mysql://x".parse::<WarehouseUrl>().is_err());
        let pg: WarehouseUrl = "postgres://u:s3cret@db.internal:5432/ghstats"
            .parse()
            .unwrap();
        assert_eq!(pg.to_string(), "postgres://u:****@db.internal:5432/ghstats");
        assert!(!format!("{pg}{pg:?}").contains("s3cret"));
    }
}
