//! PostgreSQL (tokio-postgres). Types map from BigQuery's: TIMESTAMP → timestamptz, INT64 →
//! bigint, BOOL → boolean, STRING → text, REPEATED STRING → text[]. A load checks every row,
//! `COPY`s the rows as JSON into a temporary table, spreads them into one staging table per
//! table, and MERGEs with `INSERT … ON CONFLICT DO UPDATE … WHERE` (newest version wins), all in
//! one transaction.

use super::sql::{self, column_list, indexes_sql, MergeSql};
use super::{LoadReport, StarsLoad, TableLoad, Typed, Warehouse, WarehouseError};
use crate::lake::{ChunkInfo, Lake};
use crate::tables::{self, Column, ColumnType, Mode, TableDef};
use async_trait::async_trait;
use bytes::Bytes;
use futures::SinkExt;
use std::collections::BTreeMap;
use tokio::sync::Mutex;
use tokio_postgres::{Client, NoTls};

pub struct PostgresWarehouse {
    writer: Mutex<Client>,
    reader: Mutex<Client>,
}

/// Rows an export fetches from its portal at a time.
const EXPORT_PAGE: i32 = 2_000;

fn q(e: tokio_postgres::Error) -> WarehouseError {
    // The database's own message, where there is one.
    match e.as_db_error() {
        Some(db) => WarehouseError::Query(format!("{}: {}", db.code().code(), db.message())),
        None => WarehouseError::Query(e.to_string()),
    }
}

fn pg_type(c: &Column) -> &'static str {
    match (c.mode, c.ty) {
        (Mode::Repeated, _) => "text[]",
        (_, ColumnType::String) => "text",
        (_, ColumnType::Int64) => "bigint",
        (_, ColumnType::Bool) => "boolean",
        (_, ColumnType::Timestamp) => "timestamptz",
    }
}

/// `CREATE TABLE` for a table definition.
pub fn create_table_sql(t: &TableDef) -> String {
    sql::create_table_sql(t, pg_type)
}

/// The MERGE of one table from its staging table.
pub fn merge_sql(t: &TableDef) -> MergeSql {
    sql::merge_sql(t, &dedup_sql(t))
}

/// One row per key from the staging table: the greatest version wins.
fn dedup_sql(t: &TableDef) -> String {
    format!(
        "SELECT DISTINCT ON ({key}) {cols} FROM stage_{name} ORDER BY {key}, {order}",
        key = t.key.join(", "),
        cols = column_list(t),
        name = t.name,
        order = sql::newest_first(t)
    )
}

/// Staged children of a snapshot older than the stored pull request's (its `updated_at`, then
/// the collection's `collected_at`) are not loaded.
fn drop_stale_staged_sql(child: &TableDef) -> String {
    format!(
        "DELETE FROM stage_{c} s USING pull_requests p WHERE p.repository_id = s.repository_id \
         AND p.pr_number = s.pr_number AND (p.updated_at, p.collected_at) > (s.pr_updated_at, s.collected_at)",
        c = child.name
    )
}

/// Stored children of an older snapshot than their pull request's are gone, the same
/// `updated_at` seen by an earlier collection included (a deleted comment does not bump it).
fn reconcile_sql(child: &TableDef) -> String {
    format!(
        "DELETE FROM {c} c USING pull_requests p WHERE (c.repository_id, c.pr_number) IN \
         (SELECT repository_id, pr_number FROM stage_pull_requests) \
         AND p.repository_id = c.repository_id AND p.pr_number = c.pr_number \
         AND (p.updated_at, p.collected_at) > (c.pr_updated_at, c.collected_at)",
        c = child.name
    )
}

fn dialect() -> sql::ViewDialect {
    sql::plain(|a, b| {
        format!("ROUND((EXTRACT(EPOCH FROM ({b} - {a})) / 3600)::numeric, 2)::float8")
    })
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
  SELECT organization, to_char(date_trunc('week', created_at AT TIME ZONE 'UTC'), 'YYYY-MM-DD') AS week, COUNT(*) AS prs_opened
  FROM pull_requests GROUP BY 1, 2
),
merged AS (
  SELECT organization, to_char(date_trunc('week', merged_at AT TIME ZONE 'UTC'), 'YYYY-MM-DD') AS week, COUNT(*) AS prs_merged,
    ROUND((percentile_cont(0.5) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM (merged_at - created_at)) / 3600))::numeric, 2)::float8 AS median_hours_to_merge
  FROM pull_requests WHERE merged_at IS NOT NULL GROUP BY 1, 2
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

/// Escapes a line for `COPY … (FORMAT text)`.
fn copy_escape(s: &str, out: &mut Vec<u8>) {
    for b in s.bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.push(b),
        }
    }
}

/// `host:port` of every host a target names, for messages (never the user or password).
fn addresses(target: &super::pg_tls::PgTarget) -> String {
    let ports = target.config.get_ports();
    target
        .config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            // libpq's rule: one port for every host, or one for all; 5432 when none is given.
            let port = ports
                .get(i)
                .or_else(|| ports.first().filter(|_| ports.len() == 1))
                .copied()
                .unwrap_or(5432);
            match h {
                tokio_postgres::config::Host::Tcp(name) if name.contains(':') => {
                    format!("[{name}]:{port}")
                }
                tokio_postgres::config::Host::Tcp(name) => format!("{name}:{port}"),
                #[cfg(unix)]
                tokio_postgres::config::Host::Unix(dir) => {
                    format!("{}/.s.PGSQL.{port}", dir.display())
                }
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a failed connection means for the operator, when the cause is the network: nothing
/// listening at the address, a host name that does not resolve, no answer. `None` for the
/// rest (the server's own refusal says enough).
fn network_cause(e: &tokio_postgres::Error, at: &str) -> Option<String> {
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            // TLS failures come as I/O errors too: they keep tokio-postgres's text and hints.
            let text = io.to_string();
            return match io.kind() {
                std::io::ErrorKind::ConnectionRefused => Some(format!(
                    "nothing listens at {at} (connection refused): start PostgreSQL there, or check the host and port in WAREHOUSE_URL"
                )),
                std::io::ErrorKind::TimedOut => Some(format!(
                    "no answer from {at} (timed out): check the host and port in WAREHOUSE_URL, and the firewall"
                )),
                _ if text.contains("lookup address") || text.contains("not known") => Some(format!(
                    "the host of {at} is not found ({text}): check the host in WAREHOUSE_URL"
                )),
                _ => None,
            };
        }
        cause = c.source();
    }
    None
}

async fn connect(url: &str) -> Result<Client, WarehouseError> {
    let target = super::pg_tls::parse(url).map_err(WarehouseError::Unavailable)?;
    let tls = super::pg_tls::client_config(&target).map_err(WarehouseError::Unavailable)?;
    let at = addresses(&target);
    let unavailable = |e: tokio_postgres::Error| {
        if let Some(network) = network_cause(&e, &at) {
            return WarehouseError::Unavailable(redact(&network, url));
        }
        // tokio-postgres's own text stops at "error performing TLS handshake": the causes
        // say why.
        let mut full = e.to_string();
        let mut cause = std::error::Error::source(&e);
        while let Some(c) = cause {
            let more = c.to_string();
            if !full.contains(&more) {
                full.push_str(": ");
                full.push_str(&more);
            }
            cause = c.source();
        }
        let mut text = redact(&full, url);
        // The error chain says what rustls refused; the way out is in the URL.
        if text.contains("certificate") && target.ssl_mode != super::pg_tls::SslMode::Prefer {
            text.push_str(
                " (if the server's certificate is signed by a private CA, add sslrootcert=/path/to/ca.pem to WAREHOUSE_URL)",
            );
        }
        WarehouseError::Unavailable(text)
    };
    let client = match tls {
        None => {
            let (client, connection) = target.config.connect(NoTls).await.map_err(unavailable)?;
            tokio::spawn(watch(connection));
            client
        }
        Some(config) => {
            let (client, connection) = target
                .config
                .connect(tokio_postgres_rustls::MakeRustlsConnect::new(config))
                .await
                .map_err(unavailable)?;
            tokio::spawn(watch(connection));
            client
        }
    };
    Ok(client)
}

/// Drives a connection until it closes.
async fn watch<S, T>(connection: tokio_postgres::Connection<S, T>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    if let Err(e) = connection.await {
        tracing::warn!(error = %e, "PostgreSQL connection closed.");
    }
}

/// An error text without the connection URL's password.
fn redact(text: &str, url: &str) -> String {
    match url::Url::parse(url)
        .ok()
        .and_then(|u| u.password().map(str::to_string))
    {
        Some(p) if !p.is_empty() => text.replace(&p, "****"),
        _ => text.to_string(),
    }
}

impl PostgresWarehouse {
    /// Connects to `url` (`postgres://user:password@host:port/db`; `?sslmode=verify-full` and
    /// `&sslrootcert=ca.pem` for TLS, see [`super::pg_tls`]).
    pub async fn connect(url: &str) -> Result<Self, WarehouseError> {
        Ok(PostgresWarehouse {
            writer: Mutex::new(connect(url).await?),
            reader: Mutex::new(connect(url).await?),
        })
    }

    /// Connects to `url` for reading only: both sessions are read-only
    /// (`default_transaction_read_only`), so nothing can be created or written, and no lock of
    /// `ensure_tables` is taken.
    pub async fn connect_read_only(url: &str) -> Result<Self, WarehouseError> {
        let session = || async {
            let c = connect(url).await?;
            c.batch_execute("SET default_transaction_read_only = on")
                .await
                .map_err(q)?;
            Ok::<_, WarehouseError>(c)
        };
        Ok(PostgresWarehouse {
            writer: Mutex::new(session().await?),
            reader: Mutex::new(session().await?),
        })
    }
}

/// One cell in `COPY … (FORMAT text)`: `\N` for NULL, text escaped (U+0000, which `text`
/// refuses, removed), timestamps in RFC 3339, a list as a `text[]` literal.
fn copy_cell(v: Typed, out: &mut Vec<u8>) {
    match v {
        Typed::Null => out.extend_from_slice(b"\\N"),
        Typed::Text(s) => copy_escape(&crate::rows::text(&s), out),
        Typed::Int(i) => out.extend_from_slice(i.to_string().as_bytes()),
        Typed::Bool(b) => out.push(if b { b't' } else { b'f' }),
        Typed::Timestamp(t) => out.extend_from_slice(
            t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
                .as_bytes(),
        ),
        Typed::Labels(l) => copy_escape(&array_literal(&l), out),
    }
}

/// A `text[]` literal (`{"a","b\"c"}`): every item quoted, `"` and `\` escaped.
fn array_literal(items: &[String]) -> String {
    let quoted: Vec<String> = items
        .iter()
        .map(|s| crate::rows::text(s))
        .map(|s| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    format!("{{{}}}", quoted.join(","))
}

/// A stored cell of `c` as a backend-neutral value.
fn pg_cell(r: &tokio_postgres::Row, i: usize, c: &Column) -> Result<Typed, WarehouseError> {
    if c.mode == Mode::Repeated {
        return Ok(r
            .try_get::<_, Option<Vec<String>>>(i)
            .map_err(q)?
            .map_or(Typed::Null, Typed::Labels));
    }
    Ok(match c.ty {
        ColumnType::String => r
            .try_get::<_, Option<String>>(i)
            .map_err(q)?
            .map(Typed::Text),
        ColumnType::Int64 => r.try_get::<_, Option<i64>>(i).map_err(q)?.map(Typed::Int),
        ColumnType::Bool => r.try_get::<_, Option<bool>>(i).map_err(q)?.map(Typed::Bool),
        ColumnType::Timestamp => r
            .try_get::<_, Option<chrono::DateTime<chrono::Utc>>>(i)
            .map_err(q)?
            .map(Typed::Timestamp),
    }
    .unwrap_or(Typed::Null))
}

/// `INSERT … ON CONFLICT (hour) DO UPDATE` of an hour's state.
async fn upsert_hour(
    client: &impl tokio_postgres::GenericClient,
    state: &super::HourState,
) -> Result<(), WarehouseError> {
    let t = &tables::GHARCHIVE_HOURS;
    let mut buf = Vec::new();
    let cells = state.cells();
    let params: Vec<Option<String>> = cells
        .into_iter()
        .map(|c| match c {
            Typed::Null => None,
            other => {
                buf.clear();
                copy_cell(other, &mut buf);
                Some(String::from_utf8_lossy(&buf).into_owned())
            }
        })
        .collect();
    let sql = sql::upsert_sql(t, |i, c| format!("${i}::text::{}", pg_type(c)));
    let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
        .iter()
        .map(|p| p as &(dyn tokio_postgres::types::ToSql + Sync))
        .collect();
    client.execute(&sql, &refs).await.map_err(q)?;
    Ok(())
}

/// Checks each row of a chunk and appends it to the COPY buffer as `table<TAB>json`.
fn stage_chunk(
    t: &TableDef,
    chunk: &ChunkInfo,
    bytes: &[u8],
    out: &mut Vec<u8>,
) -> Result<u64, WarehouseError> {
    super::read_rows(chunk, bytes, |line, obj| {
        super::check_row(t, obj)?;
        out.extend_from_slice(t.name.as_bytes());
        out.push(b'\t');
        copy_escape(&super::line_without_nul(line, obj), out);
        out.push(b'\n');
        Ok(())
    })
}

#[async_trait]
impl Warehouse for PostgresWarehouse {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn ensure_tables(&self) -> Result<(), WarehouseError> {
        let mut client = self.writer.lock().await;
        let tx = client.transaction().await.map_err(q)?;
        // Two instances starting at once must not race on the catalog.
        tx.execute("SELECT pg_advisory_xact_lock(7391842)", &[])
            .await
            .map_err(q)?;
        for t in tables::every() {
            tx.batch_execute(&create_table_sql(t)).await.map_err(q)?;
            let have: Vec<String> = tx
                .query(
                    "SELECT column_name::text FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1",
                    &[&t.name],
                )
                .await
                .map_err(q)?
                .iter()
                .map(|r| r.get(0))
                .collect();
            if let Some(m) = sql::missing_columns(t, &have) {
                return Err(WarehouseError::Query(m));
            }
            // A table made by an earlier build gains the nullable columns added since.
            for add in sql::added_columns(t, &have, pg_type) {
                tx.batch_execute(&add).await.map_err(q)?;
            }
            for ix in indexes_sql(t) {
                tx.batch_execute(&ix).await.map_err(q)?;
            }
        }
        for (name, sql) in views() {
            tx.batch_execute(&format!("DROP VIEW IF EXISTS {name}; {sql};"))
                .await
                .map_err(q)?;
        }
        tx.commit().await.map_err(q)
    }

    async fn load(&self, lake: &Lake, chunks: &[ChunkInfo]) -> Result<LoadReport, WarehouseError> {
        let mut report = LoadReport::new();
        if chunks.is_empty() {
            return Ok(report);
        }
        let mut client = self.writer.lock().await;
        let tx = client.transaction().await.map_err(q)?;
        tx.batch_execute(
            "CREATE TEMP TABLE stage_raw (tbl text NOT NULL, doc jsonb NOT NULL) ON COMMIT DROP",
        )
        .await
        .map_err(q)?;
        let sink = tx
            .copy_in("COPY stage_raw (tbl, doc) FROM STDIN (FORMAT text)")
            .await
            .map_err(q)?;
        futures::pin_mut!(sink);
        // One chunk in memory at a time.
        for chunk in chunks {
            let t = tables::by_name(&chunk.table).ok_or_else(|| WarehouseError::BadChunk {
                path: chunk.path.clone(),
                message: format!("unknown table {}", chunk.table),
            })?;
            let bytes = lake
                .get(&object_store::path::Path::from(chunk.path.as_str()))
                .await
                .map_err(|e| WarehouseError::reading(&chunk.path, e))?;
            let mut buf = Vec::with_capacity(bytes.len() * 4);
            let n = stage_chunk(t, chunk, &bytes, &mut buf)?;
            report.entry(t.name.to_string()).or_default().staged += n;
            sink.send(Bytes::from(buf)).await.map_err(q)?;
        }
        sink.finish().await.map_err(q)?;
        for t in tables::ALL {
            tx.batch_execute(&format!(
                "CREATE TEMP TABLE stage_{0} ON COMMIT DROP AS SELECT * FROM {0} WHERE false; \
                 INSERT INTO stage_{0} SELECT (jsonb_populate_record(NULL::{0}, doc)).* FROM stage_raw WHERE tbl = '{0}';",
                t.name
            ))
            .await
            .map_err(q)?;
        }
        for t in sql::renamed_tables() {
            tx.execute(
                &sql::fill_repository_id_sql(
                    &format!("stage_{}", t.name),
                    "stage_repositories",
                    "repositories",
                ),
                &[],
            )
            .await
            .map_err(q)?;
        }
        tx.batch_execute("CREATE INDEX ON stage_pull_requests (repository_id, pr_number); ANALYZE stage_pull_requests;").await.map_err(q)?;
        // Parents first: children are judged against the merged pull requests.
        for t in tables::ALL {
            if tables::PR_CHILDREN.iter().any(|c| c.name == t.name) {
                tx.execute(&drop_stale_staged_sql(t), &[])
                    .await
                    .map_err(q)?;
            }
            let m = merge_sql(t);
            let inserted: i64 = tx
                .query_one(&m.count_inserted, &[])
                .await
                .map_err(q)?
                .get(0);
            let updated: i64 = tx.query_one(&m.count_updated, &[]).await.map_err(q)?.get(0);
            tx.execute(&m.upsert, &[]).await.map_err(q)?;
            let e = report.entry(t.name.to_string()).or_default();
            e.inserted += inserted as u64;
            e.updated += updated as u64;
        }
        for child in tables::PR_CHILDREN {
            let deleted = tx.execute(&reconcile_sql(child), &[]).await.map_err(q)?;
            report.entry(child.name.to_string()).or_default().deleted += deleted;
        }
        // Names follow the repository's id: its rows take its current name.
        for t in sql::renamed_tables() {
            tx.execute(
                &sql::rename_sql(t.name, "repositories", "stage_repositories"),
                &[],
            )
            .await
            .map_err(q)?;
        }
        tx.commit().await.map_err(q)?;
        report.retain(|_, l| *l != TableLoad::default());
        Ok(report)
    }

    /// COPYs the crawl's checked rows into staging, keeps one per repository (its newest
    /// observation), then upserts `repo_stars` (strictly newer `observed_at` only) and appends
    /// to `repo_star_history` with [`sql::star_history_rows_sql`], in one transaction.
    async fn load_stars(
        &self,
        lake: &Lake,
        chunks: &[ChunkInfo],
    ) -> Result<StarsLoad, WarehouseError> {
        if chunks.is_empty() {
            return Ok(StarsLoad::default());
        }
        let t = &tables::REPO_STARS;
        let h = &tables::REPO_STAR_HISTORY;
        let mut load = StarsLoad::default();
        let mut client = self.writer.lock().await;
        let tx = client.transaction().await.map_err(q)?;
        tx.batch_execute(
            "CREATE TEMP TABLE stage_raw (tbl text NOT NULL, doc jsonb NOT NULL) ON COMMIT DROP",
        )
        .await
        .map_err(q)?;
        let sink = tx
            .copy_in("COPY stage_raw (tbl, doc) FROM STDIN (FORMAT text)")
            .await
            .map_err(q)?;
        futures::pin_mut!(sink);
        // One chunk in memory at a time.
        for chunk in chunks {
            let bytes = lake
                .get(&object_store::path::Path::from(chunk.path.as_str()))
                .await
                .map_err(|e| WarehouseError::reading(&chunk.path, e))?;
            let mut buf = Vec::with_capacity(bytes.len() * 4);
            load.staged += stage_chunk(t, chunk, &bytes, &mut buf)?;
            sink.send(Bytes::from(buf)).await.map_err(q)?;
        }
        sink.finish().await.map_err(q)?;
        tx.batch_execute(&format!(
            "CREATE TEMP TABLE stage_{0} ON COMMIT DROP AS SELECT * FROM {0} WHERE false; \
             INSERT INTO stage_{0} SELECT (jsonb_populate_record(NULL::{0}, doc)).* FROM stage_raw; \
             CREATE TEMP TABLE stage_{0}_one ON COMMIT DROP AS {1}; \
             CREATE UNIQUE INDEX ON stage_{0}_one (repo_id); ANALYZE stage_{0}_one;",
            t.name,
            dedup_sql(t)
        ))
        .await
        .map_err(q)?;
        let m = sql::merge_sql(
            t,
            &format!("SELECT {} FROM stage_{}_one", column_list(t), t.name),
        );
        load.inserted = tx
            .query_one(&m.count_inserted, &[])
            .await
            .map_err(q)?
            .get::<_, i64>(0) as u64;
        load.updated = tx
            .query_one(&m.count_updated, &[])
            .await
            .map_err(q)?
            .get::<_, i64>(0) as u64;
        tx.execute(&m.upsert, &[]).await.map_err(q)?;
        load.history_added = tx
            .execute(
                &format!(
                    "INSERT INTO {} ({}) {}",
                    h.name,
                    column_list(h),
                    sql::star_history_rows_sql(&format!("stage_{}_one", t.name), h.name)
                ),
                &[],
            )
            .await
            .map_err(q)?;
        tx.commit().await.map_err(q)?;
        Ok(load)
    }

    /// A portal of a read-only transaction, fetched [`EXPORT_PAGE`] rows at a time.
    async fn export_rows(
        &self,
        table: &'static TableDef,
        rows: tokio::sync::mpsc::Sender<Vec<Typed>>,
    ) -> Result<u64, WarehouseError> {
        let t = table;
        let mut client = self.reader.lock().await;
        let tx = client
            .build_transaction()
            .read_only(true)
            .start()
            .await
            .map_err(q)?;
        let stmt = tx
            .prepare(&format!(
                "SELECT {} FROM {} ORDER BY {}",
                column_list(t),
                t.name,
                t.key.join(", ")
            ))
            .await
            .map_err(q)?;
        let portal = tx.bind(&stmt, &[]).await.map_err(q)?;
        let mut n = 0u64;
        loop {
            let page = tx.query_portal(&portal, EXPORT_PAGE).await.map_err(q)?;
            if page.is_empty() {
                break;
            }
            for r in &page {
                let cells = t
                    .columns
                    .iter()
                    .enumerate()
                    .map(|(i, c)| pg_cell(r, i, c))
                    .collect::<Result<Vec<_>, _>>()?;
                rows.send(cells)
                    .await
                    .map_err(|_| super::export_stopped())?;
                n += 1;
            }
        }
        tx.rollback().await.map_err(q)?;
        Ok(n)
    }

    async fn gharchive_hours(&self) -> Result<Vec<super::HourState>, WarehouseError> {
        let t = &tables::GHARCHIVE_HOURS;
        let client = self.reader.lock().await;
        // A database made before GH Archive, opened read-only, has no such table.
        let exists: bool = client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = $1)",
                &[&t.name],
            )
            .await
            .map_err(q)?
            .get(0);
        if !exists {
            return Ok(Vec::new());
        }
        let rows = client
            .query(
                &format!(
                    "SELECT {} FROM {} ORDER BY hour",
                    sql::column_list(t),
                    t.name
                ),
                &[],
            )
            .await
            .map_err(q)?;
        rows.iter()
            .map(|r| {
                let cells: Vec<Typed> = t
                    .columns
                    .iter()
                    .enumerate()
                    .map(|(i, c)| pg_cell(r, i, c))
                    .collect::<Result<_, _>>()?;
                super::HourState::from_cells(&cells)
            })
            .collect()
    }

    async fn record_gharchive_hour(&self, state: &super::HourState) -> Result<(), WarehouseError> {
        let client = self.writer.lock().await;
        upsert_hour(&*client, state).await
    }

    async fn load_gharchive_hour(
        &self,
        lake: &Lake,
        path: &object_store::path::Path,
        state: &super::HourState,
    ) -> Result<u64, WarehouseError> {
        use futures::StreamExt;
        let t = &tables::GHARCHIVE_EVENTS;
        let mut batches = super::gharchive::read_batches(lake, path).await?;
        let mut client = self.writer.lock().await;
        let tx = client.transaction().await.map_err(q)?;
        tx.batch_execute(&format!(
            "CREATE TEMP TABLE stage_{0} ON COMMIT DROP AS SELECT * FROM {0} WHERE false",
            t.name
        ))
        .await
        .map_err(q)?;
        let sink = tx
            .copy_in(&format!(
                "COPY stage_{} ({}) FROM STDIN (FORMAT text)",
                t.name,
                sql::column_list(t)
            ))
            .await
            .map_err(q)?;
        futures::pin_mut!(sink);
        let mut rows = 0u64;
        // One record batch in memory at a time.
        while let Some(batch) = batches.next().await {
            let batch = batch.map_err(|e| WarehouseError::Storage {
                path: path.to_string(),
                message: e.to_string(),
            })?;
            let mut buf = Vec::with_capacity(1 << 20);
            for i in 0..batch.num_rows() {
                for (j, cell) in super::gharchive::event_cells(&batch, i)?
                    .into_iter()
                    .enumerate()
                {
                    if j > 0 {
                        buf.push(b'\t');
                    }
                    copy_cell(cell, &mut buf);
                }
                buf.push(b'\n');
                rows += 1;
            }
            sink.send(Bytes::from(buf)).await.map_err(q)?;
        }
        sink.finish().await.map_err(q)?;
        // The hour's own rows are replaced; an id another hour holds keeps that row.
        tx.execute(
            "DELETE FROM gharchive_events WHERE archive_hour = $1",
            &[&state.hour],
        )
        .await
        .map_err(q)?;
        tx.execute(
            &format!(
                "INSERT INTO {0} ({1}) SELECT {1} FROM stage_{0} ON CONFLICT (event_id) DO NOTHING",
                t.name,
                sql::column_list(t)
            ),
            &[],
        )
        .await
        .map_err(q)?;
        upsert_hour(&tx, state).await?;
        tx.commit().await.map_err(q)?;
        Ok(rows)
    }

    /// COPYs each commits table's rows, read a record batch at a time from the months'
    /// Parquet objects, into a staging table, then deletes the months' stored rows, inserts
    /// the staged ones (one per key) and upserts the repository, in one transaction.
    async fn load_commit_months(
        &self,
        lake: &Lake,
        repo: &crate::commits::RepositoryState,
        months: &[crate::commits::MonthPartition],
    ) -> Result<BTreeMap<String, u64>, WarehouseError> {
        use super::commits as shared;
        use futures::StreamExt;
        shared::check_months(repo, months)?;
        let mut read = shared::zero_counts();
        let mut client = self.writer.lock().await;
        let tx = client.transaction().await.map_err(q)?;
        for t in tables::COMMIT_TABLES {
            tx.batch_execute(&format!(
                "CREATE TEMP TABLE stage_{0} ON COMMIT DROP AS SELECT * FROM {0} WHERE false",
                t.name
            ))
            .await
            .map_err(q)?;
            let sink = tx
                .copy_in(&format!(
                    "COPY stage_{} ({}) FROM STDIN (FORMAT text)",
                    t.name,
                    column_list(t)
                ))
                .await
                .map_err(q)?;
            futures::pin_mut!(sink);
            for m in months {
                for file in m.files(t.name) {
                    let path = object_store::path::Path::from(file.as_str());
                    let mut batches = super::gharchive::read_batches(lake, &path).await?;
                    // One record batch in memory at a time.
                    while let Some(batch) = batches.next().await {
                        let batch = batch.map_err(|e| WarehouseError::Storage {
                            path: file.clone(),
                            message: e.to_string(),
                        })?;
                        let mut buf = Vec::with_capacity(1 << 20);
                        for i in 0..batch.num_rows() {
                            let cells = shared::batch_cells(t, &batch, i).map_err(|message| {
                                WarehouseError::BadChunk {
                                    path: file.clone(),
                                    message,
                                }
                            })?;
                            shared::check_row(t, &cells, m, file)?;
                            for (j, cell) in cells.into_iter().enumerate() {
                                if j > 0 {
                                    buf.push(b'\t');
                                }
                                copy_cell(cell, &mut buf);
                            }
                            buf.push(b'\n');
                            *read.entry(t.name.to_string()).or_default() += 1;
                        }
                        sink.send(Bytes::from(buf)).await.map_err(q)?;
                    }
                }
            }
            sink.finish().await.map_err(q)?;
        }
        let names: Vec<&str> = months.iter().map(|m| m.month.as_str()).collect();
        for t in tables::COMMIT_TABLES {
            tx.execute(
                &format!(
                    "DELETE FROM {} WHERE repository_id = $1 AND commit_month = ANY($2)",
                    t.name
                ),
                &[&repo.repo_id, &names],
            )
            .await
            .map_err(q)?;
            let set: Vec<String> = t
                .columns
                .iter()
                .filter(|c| !t.key.contains(&c.name))
                .map(|c| format!("{0} = excluded.{0}", c.name))
                .collect();
            // One row per key (the month's objects are the writer's, deduplicated already);
            // the conflict clause only keeps a key stored under another month from failing it.
            tx.execute(
                &format!(
                    "INSERT INTO {name} ({cols}) SELECT DISTINCT ON ({key}) {cols} FROM stage_{name} ORDER BY {key} \
                     ON CONFLICT ({key}) DO UPDATE SET {set}",
                    name = t.name,
                    cols = column_list(t),
                    key = t.key.join(", "),
                    set = set.join(", ")
                ),
                &[],
            )
            .await
            .map_err(q)?;
        }
        let mut buf = Vec::new();
        let params: Vec<Option<String>> = shared::repository_cells(repo)
            .into_iter()
            .map(|c| match c {
                Typed::Null => None,
                other => {
                    buf.clear();
                    copy_cell(other, &mut buf);
                    Some(String::from_utf8_lossy(&buf).into_owned())
                }
            })
            .collect();
        let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
            .iter()
            .map(|p| p as &(dyn tokio_postgres::types::ToSql + Sync))
            .collect();
        tx.execute(
            &shared::repository_upsert_sql(|i, c| format!("${i}::text::{}", pg_type(c))),
            &refs,
        )
        .await
        .map_err(q)?;
        tx.execute(
            &shared::rename_commits_sql("repositories", tables::COMMITS.name, "$1", |a, b| {
                format!("{a} || {b}")
            }),
            &[&repo.repo_id],
        )
        .await
        .map_err(q)?;
        tx.commit().await.map_err(q)?;
        Ok(read)
    }

    async fn delete_repository(
        &self,
        organization: &str,
        repository: &str,
    ) -> Result<u64, WarehouseError> {
        let mut client = self.writer.lock().await;
        let tx = client.transaction().await.map_err(q)?;
        let mut n = 0;
        for t in tables::ALL {
            n += tx
                .execute(
                    &format!(
                        "DELETE FROM {} WHERE organization = $1 AND repository = $2",
                        t.name
                    ),
                    &[&organization, &repository],
                )
                .await
                .map_err(q)?;
        }
        tx.commit().await.map_err(q)?;
        Ok(n)
    }

    async fn row_counts(&self) -> Result<BTreeMap<String, u64>, WarehouseError> {
        let mut out = BTreeMap::new();
        let names: Vec<&str> = tables::COMMIT_TABLES.iter().map(|t| t.name).collect();
        let have: Vec<String> = self
            .reader
            .lock()
            .await
            .query(
                "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = ANY($1)",
                &[&names],
            )
            .await
            .map_err(q)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let commit_tables = tables::COMMIT_TABLES
            .iter()
            .filter(|t| have.iter().any(|h| h == t.name));
        for t in tables::ALL.iter().chain(commit_tables) {
            let n: i64 = self
                .reader
                .lock()
                .await
                .query_one(&format!("SELECT COUNT(*) FROM {}", t.name), &[])
                .await
                .map_err(q)?
                .get(0);
            out.insert(t.name.to_string(), n as u64);
        }
        Ok(out)
    }

    async fn missing_tables(&self) -> Result<Vec<&'static str>, WarehouseError> {
        let names: Vec<&str> = tables::ALL.iter().map(|t| t.name).collect();
        let have: Vec<String> = self
            .reader
            .lock()
            .await
            .query(
                "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = ANY($1)",
                &[&names],
            )
            .await
            .map_err(q)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        Ok(names
            .into_iter()
            .filter(|n| !have.iter().any(|h| h == n))
            .collect())
    }

    async fn fetch_rows(
        &self,
        table: &str,
        organization: &str,
    ) -> Result<Vec<serde_json::Value>, WarehouseError> {
        let t = tables::by_name(table)
            .ok_or_else(|| WarehouseError::Query(format!("unknown table {table}")))?;
        let sql = format!(
            "SELECT to_jsonb(x) FROM {} x WHERE organization = $1 ORDER BY {}",
            t.name,
            t.key.join(", ")
        );
        let rows = self
            .reader
            .lock()
            .await
            .query(&sql, &[&organization])
            .await
            .map_err(q)?;
        Ok(rows
            .iter()
            .map(|r| {
                let doc: serde_json::Value = r.get(0);
                let mut obj = serde_json::Map::new();
                for c in t.columns {
                    obj.insert(
                        c.name.to_string(),
                        super::fetched_value(
                            c,
                            doc.get(c.name).cloned().unwrap_or(serde_json::Value::Null),
                        ),
                    );
                }
                serde_json::Value::Object(obj)
            })
            .collect())
    }

    async fn query(&self, sql: &str) -> Result<Vec<serde_json::Value>, WarehouseError> {
        let sql = sql.trim().trim_end_matches(';');
        let mut client = self.reader.lock().await;
        let tx = client
            .build_transaction()
            .read_only(true)
            .start()
            .await
            .map_err(q)?;
        let wrapped =
            format!("SELECT COALESCE(jsonb_agg(to_jsonb(q)), '[]'::jsonb) FROM ({sql}) q");
        let doc: serde_json::Value = tx.query_one(&wrapped, &[]).await.map_err(q)?.get(0);
        tx.rollback().await.map_err(q)?;
        Ok(match doc {
            serde_json::Value::Array(rows) => rows,
            _ => Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ddl_follows_the_table_definition() {
        let sql = create_table_sql(&tables::PULL_REQUESTS);
        assert!(sql.contains("  pr_number bigint NOT NULL,"));
        assert!(sql.contains("  merged_at timestamptz,"));
        assert!(sql.contains("  labels text[],"));
        assert!(sql.ends_with("PRIMARY KEY (repository_id, pr_number)\n)"));
    }

    #[test]
    fn copy_lines_are_escaped() {
        let mut out = Vec::new();
        copy_escape("a\\b\tc\nd", &mut out);
        assert_eq!(out, b"a\\\\b\\tc\\nd");
    }

    #[test]
    fn passwords_are_redacted_from_errors() {
        assert_eq!(
            redact(
                "failed for postgres://u:s3cret@h/db: s3cret",
                "postgres://u:s3cret@h/db"
            ),
            "failed for postgres://u:****@h/db: ****"
        );
    }
}
