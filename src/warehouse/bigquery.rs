//! BigQuery, through Google's crates (`google-cloud-bigquery-v2` for datasets, tables and jobs,
//! `google-cloud-auth` for Application Default Credentials).
//!
//! A load, all or nothing:
//! 1. A staging table per table (same schema, expires after a day should the process die), filled
//!    by load jobs: from the chunks' `gs://` URIs when the lake is in GCS, otherwise as media
//!    uploads of the checked rows. Load jobs are free and leave the tables out of the streaming
//!    buffer's DML lock.
//! 2. One query reads each staging table's row count and partition range.
//! 3. One script, in one transaction: per table, count new and newer keys, then MERGE the
//!    deduplicated staging rows (newest version wins) with a partition filter on the target made
//!    of constants, so BigQuery prunes partitions; then delete children of older snapshots of the
//!    pull requests just loaded. A failing statement rolls the whole transaction back.
//! 4. The staging tables are dropped, whatever happened.
//!
//! A GH Archive hour (`load_gharchive_hour`): a load job reads the hour's Parquet object into
//! a staging table as it is (from its `gs://` URI, or as media streamed from other storage),
//! then one transaction deletes the hour's rows, inserts the staged events whose id is not
//! stored yet (a MERGE that only inserts) and records the hour in `gharchive_hours`. Both
//! statements filter `created_at` to the days around the hour, so only those partitions of
//! the day-partitioned table are read.
//!
//! Every statement runs as a job; a job's outcome is its `status.errorResult`, read after
//! polling `jobs.get` with backoff. (The emulator also answers failed queries with HTTP 200; the
//! code never relies on the HTTP status of a query.)

use super::sql::{self, ViewDialect};
use super::{HourState, LoadReport, StarsLoad, TableLoad, Typed, Warehouse, WarehouseError};
use crate::lake::{ChunkInfo, Lake};
use crate::tables::{self, Mode, TableDef};
use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use google_cloud_bigquery_v2::client::{DatasetService, JobService, TableService};
use google_cloud_bigquery_v2::model;
use google_cloud_gax::options::RequestOptionsBuilder;
use google_cloud_gax::retry_policy::{Aip194Strict, RetryPolicyExt};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// Where the tables live: `bigquery://PROJECT/DATASET[?location=US][&endpoint=URL]`.
#[derive(Clone, PartialEq, Eq)]
pub struct BigQueryTarget {
    pub project: String,
    pub dataset: String,
    /// The dataset's location (`US`, `EU`, `europe-west1`…), used when creating it.
    pub location: Option<String>,
    /// Another server than Google's (an emulator). Over plain `http://` no credentials are
    /// sent.
    pub endpoint: Option<String>,
}

impl std::str::FromStr for BigQueryTarget {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let usage = "use bigquery://PROJECT/DATASET[?location=US]";
        let rest = s
            .strip_prefix("bigquery://")
            .ok_or_else(|| format!("not a BigQuery URL: {usage}"))?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (project, dataset) = path
            .trim_end_matches('/')
            .split_once('/')
            .ok_or_else(|| format!("the BigQuery URL lacks a dataset: {usage}"))?;
        let project_ok = (1..=100).contains(&project.len())
            && project.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'.' | b':')
            });
        if !project_ok {
            return Err(format!(
                "{project:?} is not a Google Cloud project id (lowercase letters, digits, hyphens)"
            ));
        }
        let dataset_ok = (1..=1024).contains(&dataset.len())
            && dataset
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !dataset_ok {
            return Err(format!(
                "{dataset:?} is not a BigQuery dataset name (letters, digits, underscores)"
            ));
        }
        let mut target = BigQueryTarget {
            project: project.to_string(),
            dataset: dataset.to_string(),
            location: None,
            endpoint: None,
        };
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            match k.as_ref() {
                "location" if !v.is_empty() => target.location = Some(v.into_owned()),
                "endpoint" => {
                    let u = url::Url::parse(&v)
                        .map_err(|e| format!("the BigQuery endpoint {v:?} is not a URL: {e}"))?;
                    if !matches!(u.scheme(), "http" | "https") {
                        return Err(format!("the BigQuery endpoint {v:?} is not http(s)"));
                    }
                    target.endpoint = Some(v.trim_end_matches('/').to_string());
                }
                other => {
                    return Err(format!(
                        "unknown BigQuery URL parameter {other:?}: {usage}[&endpoint=URL]"
                    ))
                }
            }
        }
        Ok(target)
    }
}

impl fmt::Display for BigQueryTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bigquery://{}/{}", self.project, self.dataset)?;
        let mut sep = '?';
        if let Some(l) = &self.location {
            write!(f, "{sep}location={l}")?;
            sep = '&';
        }
        if let Some(e) = &self.endpoint {
            write!(f, "{sep}endpoint={e}")?;
        }
        Ok(())
    }
}

const DEFAULT_ENDPOINT: &str = "https://bigquery.googleapis.com";
/// A media upload carries at most this many bytes of rows; more rows take more load jobs.
const UPLOAD_BYTES: usize = 32 << 20;
/// A load job takes at most this many source URIs (BigQuery's limit is 10,000).
const URIS_PER_JOB: usize = 10_000;
/// Rows an export reads per `tabledata.list` page.
const EXPORT_PAGE: usize = 10_000;
/// How long a job may run before it is cancelled and the load fails.
const JOB_DEADLINE: Duration = Duration::from_secs(3600);

pub struct BigQueryWarehouse {
    target: BigQueryTarget,
    endpoint: String,
    credentials: google_cloud_auth::credentials::Credentials,
    datasets: DatasetService,
    tables: TableService,
    jobs: JobService,
    http: reqwest::Client,
}

fn api(what: &str, e: google_cloud_bigquery_v2::Error) -> WarehouseError {
    match e.http_status_code() {
        Some(401 | 403) => WarehouseError::Unavailable(format!("{what}: permission denied: {e}")),
        None if e.is_transport() || e.is_timeout() || e.is_io() => {
            WarehouseError::Unavailable(format!("{what}: {e}"))
        }
        _ => WarehouseError::Query(format!("{what}: {e}")),
    }
}

fn status(e: &google_cloud_bigquery_v2::Error) -> Option<u16> {
    e.http_status_code()
}

/// A BigQuery field of a column.
fn field(c: &crate::tables::Column) -> model::TableFieldSchema {
    model::TableFieldSchema::new()
        .set_name(c.name)
        .set_type(c.ty.bigquery())
        .set_mode(match c.mode {
            Mode::Required => "REQUIRED",
            Mode::Nullable => "NULLABLE",
            Mode::Repeated => "REPEATED",
        })
}

fn schema(t: &TableDef) -> model::TableSchema {
    model::TableSchema::new().set_fields(t.columns.iter().map(field))
}

/// A staging table's schema: the table's, with the column a chunk may lack nullable (the
/// load fills it before the MERGE).
fn stage_schema(t: &TableDef) -> model::TableSchema {
    model::TableSchema::new().set_fields(t.columns.iter().map(|c| {
        let f = field(c);
        if c.name == tables::FILLED_AT_LOAD {
            f.set_mode("NULLABLE")
        } else {
            f
        }
    }))
}

/// The table's schema as BigQuery's JSON (`[{"name", "type", "mode"}]`), as Terraform and
/// `bq mk --schema` take it.
pub fn schema_json(t: &TableDef) -> Value {
    Value::Array(
        t.columns
            .iter()
            .map(|c| {
                json!({"name": c.name, "type": c.ty.bigquery(), "mode": match c.mode {
                    Mode::Required => "REQUIRED", Mode::Nullable => "NULLABLE", Mode::Repeated => "REPEATED",
                }})
            })
            .collect(),
    )
}

/// Every table as Terraform creates it (`terraform/bigquery_tables.json`): its schema, its
/// partitioning column (or null) and unit (`DAY`, or `MONTH` for the commits tables) and its
/// clustering columns, keyed by table name. The GH Archive, stars and commits tables are there
/// too, so Terraform's deletion protection covers them.
pub fn terraform_tables() -> Value {
    let tables: serde_json::Map<String, Value> = crate::tables::every()
        .map(|t| {
            (
                t.name.to_string(),
                json!({
                    "schema": schema_json(t),
                    "partition_field": t.partition,
                    "partition_type": t.partition_unit.bigquery(),
                    "clustering": t.cluster,
                }),
            )
        })
        .collect();
    json!({
        "generated_by": "ghstats bigquery-schema > terraform/bigquery_tables.json",
        "tables": tables,
    })
}

/// A string literal in GoogleSQL.
fn lit(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for ch in s.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

fn ts_lit(t: DateTime<Utc>) -> String {
    format!(
        "TIMESTAMP '{}'",
        t.to_rfc3339_opts(SecondsFormat::Micros, true)
    )
}

/// A cell as a GoogleSQL literal of its column's type.
fn cell_lit(c: &tables::Column, v: &Typed) -> String {
    match v {
        Typed::Null => format!("CAST(NULL AS {})", c.ty.bigquery()),
        Typed::Text(s) => lit(s),
        Typed::Int(i) => i.to_string(),
        Typed::Bool(b) => if *b { "TRUE" } else { "FALSE" }.to_string(),
        Typed::Timestamp(t) => ts_lit(*t),
        Typed::Labels(l) => format!(
            "[{}]",
            l.iter().map(|s| lit(s)).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// The `created_at` range a GH Archive hour's load reads and writes in `gharchive_events`:
/// the hour and its staged events' range, widened by a day each way. Constants, so BigQuery
/// prunes the table's day partitions to three or four instead of scanning every one (a year
/// is billions of rows). This holds as long as an event appears in an hour's file within a day
/// of its `created_at`, and a copy of it in another hour carries the same `created_at`, which
/// is how GH Archive's duplicates come (the same event recorded twice).
fn gharchive_window(hour: DateTime<Utc>, staged: &Staged) -> (DateTime<Utc>, DateTime<Utc>) {
    let end = hour + chrono::Duration::hours(1);
    let lo = staged.low.map_or(hour, |l| l.min(hour));
    let hi = staged.high.map_or(end, |h| h.max(end));
    (
        lo - chrono::Duration::days(1),
        hi + chrono::Duration::days(1),
    )
}

/// `(S.a > T.a OR (S.a = T.a AND (S.b > T.b)))`: the version of `s` is greater than that of `t`.
fn newer(t: &TableDef, s: &str, target: &str) -> String {
    fn go(vs: &[&str], s: &str, t: &str) -> String {
        match vs {
            [] => "FALSE".into(),
            [v] => format!("{s}.{v} > {t}.{v}"),
            [v, rest @ ..] => format!(
                "({s}.{v} > {t}.{v} OR ({s}.{v} = {t}.{v} AND {}))",
                go(rest, s, t)
            ),
        }
    }
    go(t.version, s, target)
}

/// The pull request `p` is a newer snapshot than the one child `c` came in: a greater
/// `updated_at`, or the same one seen by a later collection (GitHub does not bump `updatedAt`
/// when a comment is deleted, so a re-collection must reconcile too).
fn newer_snapshot(p: &str, c: &str) -> String {
    format!(
        "({p}.updated_at > {c}.pr_updated_at OR ({p}.updated_at = {c}.pr_updated_at AND {p}.collected_at > {c}.collected_at))"
    )
}

/// What a staging table holds: rows, and the range of the partitioning column.
#[derive(Clone, Debug, Default)]
struct Staged {
    rows: u64,
    low: Option<DateTime<Utc>>,
    high: Option<DateTime<Utc>>,
}

/// What a media upload carries.
enum Media<'a> {
    /// Rows made in memory (checked NDJSON).
    Rows(bytes::Bytes),
    /// An object of the lake (an hour's Parquet file), streamed from storage.
    Object {
        lake: &'a Lake,
        path: &'a object_store::path::Path,
    },
}

impl Media<'_> {
    /// The multipart body `head`, media, `tail`, and its length in bytes.
    async fn body(
        &self,
        head: bytes::Bytes,
        tail: bytes::Bytes,
    ) -> Result<(reqwest::Body, u64), WarehouseError> {
        use futures::StreamExt;
        use object_store::ObjectStoreExt;
        let framing = (head.len() + tail.len()) as u64;
        match self {
            Media::Rows(rows) => {
                let mut all = Vec::with_capacity(head.len() + rows.len() + tail.len());
                all.extend_from_slice(&head);
                all.extend_from_slice(rows);
                all.extend_from_slice(&tail);
                Ok((reqwest::Body::from(all), framing + rows.len() as u64))
            }
            Media::Object { lake, path } => {
                let got = lake
                    .store()
                    .get(path)
                    .await
                    .map_err(|e| WarehouseError::reading(path.as_ref(), e))?;
                let size = got.meta.size;
                let stream =
                    futures::stream::once(async move { Ok::<_, object_store::Error>(head) })
                        .chain(got.into_stream())
                        .chain(futures::stream::once(async move { Ok(tail) }));
                Ok((reqwest::Body::wrap_stream(stream), framing + size))
            }
        }
    }
}

/// A script's parts: its `DECLARE`s, the statements of its transaction, and the variables its
/// last `SELECT` returns (`name AS name`).
#[derive(Default)]
struct Script {
    declare: Vec<String>,
    body: Vec<String>,
    result: Vec<String>,
}

impl Script {
    /// The whole script, or nothing when it has no statement.
    fn render(self) -> String {
        if self.body.is_empty() {
            return String::new();
        }
        format!(
            "{}\nBEGIN TRANSACTION;\n{}\nCOMMIT TRANSACTION;\nSELECT {};",
            self.declare.join("\n"),
            self.body.join("\n"),
            self.result.join(", ")
        )
    }
}

/// The rows of `source_rows` (a query with `t`'s columns), one per key: the newest version wins
/// (see [`sql::newest_first`]).
fn dedup_sql(t: &TableDef, source_rows: &str) -> String {
    format!(
        "SELECT {cols} FROM (SELECT {cols}, ROW_NUMBER() OVER (PARTITION BY {key} ORDER BY {order}) AS ghstats_rank FROM ({source_rows})) WHERE ghstats_rank = 1",
        cols = sql::column_list(t),
        key = t.key.join(", "),
        order = sql::newest_first(t),
    )
}

impl BigQueryWarehouse {
    /// Connects to the dataset `target` names; nothing is created until `ensure_tables`.
    pub async fn connect(target: &BigQueryTarget) -> Result<Self, WarehouseError> {
        let endpoint = target
            .endpoint
            .clone()
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string());
        // No token travels over plain http: such an endpoint is an emulator on loopback.
        let credentials = if endpoint.starts_with("http://") {
            google_cloud_auth::credentials::anonymous::Builder::new().build()
        } else {
            google_cloud_auth::credentials::Builder::default()
                .build()
                .map_err(|e| {
                    WarehouseError::Unavailable(format!(
                        "no Google credentials for BigQuery (Application Default Credentials): {e}"
                    ))
                })?
        };
        let unavailable = |e: google_cloud_gax::client_builder::Error| {
            WarehouseError::Unavailable(format!("BigQuery client: {e}"))
        };
        // Idempotent calls (and job inserts, whose ids make them so) retry transient errors.
        macro_rules! client {
            ($service:ty) => {
                <$service>::builder()
                    .with_endpoint(&endpoint)
                    .with_credentials(credentials.clone())
                    .with_retry_policy(Aip194Strict.with_attempt_limit(5))
                    .build()
                    .await
                    .map_err(unavailable)?
            };
        }
        Ok(BigQueryWarehouse {
            datasets: client!(DatasetService),
            tables: client!(TableService),
            jobs: client!(JobService),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(600))
                .build()
                .map_err(|e| WarehouseError::Unavailable(e.to_string()))?,
            credentials,
            endpoint,
            target: target.clone(),
        })
    }

    /// `` `project.dataset.table` ``
    fn table_ref(&self, table: &str) -> String {
        format!(
            "`{}.{}.{}`",
            self.target.project, self.target.dataset, table
        )
    }

    fn table_reference(&self, table: &str) -> model::TableReference {
        model::TableReference::new()
            .set_project_id(&self.target.project)
            .set_dataset_id(&self.target.dataset)
            .set_table_id(table)
    }

    fn job_reference(&self, kind: &str) -> model::JobReference {
        let id = format!(
            "ghstats_{kind}_{}_{:016x}",
            Utc::now().format("%Y%m%d%H%M%S"),
            rand::random::<u64>()
        );
        let r = model::JobReference::new()
            .set_project_id(&self.target.project)
            .set_job_id(id);
        match &self.target.location {
            Some(l) => r.set_location(l.clone()),
            None => r,
        }
    }

    /// Inserts a job (the id makes a retried insert harmless) and waits for it.
    async fn run(
        &self,
        kind: &str,
        config: model::JobConfiguration,
    ) -> Result<model::Job, WarehouseError> {
        let reference = self.job_reference(kind);
        let job = model::Job::new()
            .set_job_reference(reference.clone())
            .set_configuration(config);
        let inserted = self
            .jobs
            .insert_job()
            .set_project_id(&self.target.project)
            .set_job(job)
            .with_idempotency(true)
            .send()
            .await;
        let job = match inserted {
            Ok(job) => job,
            // A retry of an insert that reached the server: the job exists.
            Err(e) if status(&e) == Some(409) => self.get_job(&reference).await?,
            Err(e) => return Err(api(&format!("starting a {kind} job"), e)),
        };
        self.wait(kind, job).await
    }

    async fn get_job(&self, r: &model::JobReference) -> Result<model::Job, WarehouseError> {
        let mut req = self
            .jobs
            .get_job()
            .set_project_id(&r.project_id)
            .set_job_id(&r.job_id);
        if let Some(l) = r.location.as_ref().filter(|l| !l.is_empty()) {
            req = req.set_location(l.clone());
        }
        req.send()
            .await
            .map_err(|e| api(&format!("reading job {}", r.job_id), e))
    }

    /// Polls a job until it is done, with backoff; its error, if any, is the load's error.
    async fn wait(&self, kind: &str, mut job: model::Job) -> Result<model::Job, WarehouseError> {
        let reference = job
            .job_reference
            .clone()
            .ok_or_else(|| WarehouseError::Query(format!("the {kind} job has no reference")))?;
        let started = std::time::Instant::now();
        let mut delay = Duration::from_millis(100);
        loop {
            let state = job.status.as_ref().map(|s| s.state.as_str()).unwrap_or("");
            if state == "DONE" {
                break;
            }
            if started.elapsed() > JOB_DEADLINE {
                let _ = self
                    .jobs
                    .cancel_job()
                    .set_project_id(&reference.project_id)
                    .set_job_id(&reference.job_id)
                    .send()
                    .await;
                return Err(WarehouseError::Query(format!(
                    "BigQuery {kind} job {} did not finish within {} s and was cancelled",
                    reference.job_id,
                    JOB_DEADLINE.as_secs()
                )));
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 3 / 2).min(Duration::from_secs(5));
            job = self.get_job(&reference).await?;
        }
        if let Some(err) = job.status.as_ref().and_then(|s| s.error_result.as_ref()) {
            let details: Vec<String> = job
                .status
                .as_ref()
                .map(|s| {
                    s.errors
                        .iter()
                        .filter(|e| e.message != err.message)
                        .take(5)
                        .map(|e| e.message.clone())
                        .collect()
                })
                .unwrap_or_default();
            let mut message = format!(
                "BigQuery {kind} job {} failed: {}: {}",
                reference.job_id, err.reason, err.message
            );
            if !details.is_empty() {
                message.push_str(&format!(" ({})", details.join("; ")));
            }
            return Err(WarehouseError::Query(message));
        }
        Ok(job)
    }

    fn query_config(&self, sql: &str) -> model::JobConfiguration {
        model::JobConfiguration::new().set_query(
            model::JobConfigurationQuery::new()
                .set_query(sql)
                .set_use_legacy_sql(false)
                .set_default_dataset(
                    model::DatasetReference::new()
                        .set_project_id(&self.target.project)
                        .set_dataset_id(&self.target.dataset),
                ),
        )
    }

    /// Runs a statement or script and returns its (last statement's) rows as JSON objects.
    async fn rows(&self, kind: &str, sql: &str) -> Result<Vec<Value>, WarehouseError> {
        let job = self.run(kind, self.query_config(sql)).await?;
        let reference = job.job_reference.unwrap_or_default();
        let mut out = Vec::new();
        let mut token = String::new();
        loop {
            let mut req = self
                .jobs
                .get_query_results()
                .set_project_id(&reference.project_id)
                .set_job_id(&reference.job_id)
                .set_page_token(token.clone())
                .set_format_options(model::DataFormatOptions::new().set_use_int64_timestamp(true));
            if let Some(l) = reference.location.as_ref().filter(|l| !l.is_empty()) {
                req = req.set_location(l.clone());
            }
            let page = req
                .send()
                .await
                .map_err(|e| api(&format!("reading the results of {}", reference.job_id), e))?;
            let fields = page.schema.map(|s| s.fields).unwrap_or_default();
            for row in &page.rows {
                out.push(decode_row(&fields, row)?);
            }
            if page.page_token.is_empty() {
                return Ok(out);
            }
            token = page.page_token;
        }
    }

    /// The statement type of `sql`, from a dry run (nothing runs, nothing is billed).
    async fn statement_type(&self, sql: &str) -> Result<String, WarehouseError> {
        let job = self
            .run("dry_run", self.query_config(sql).set_dry_run(true))
            .await?;
        Ok(job
            .statistics
            .and_then(|s| s.query)
            .map(|q| q.statement_type)
            .unwrap_or_default())
    }

    async fn create_dataset(&self) -> Result<(), WarehouseError> {
        let got = self
            .datasets
            .get_dataset()
            .set_project_id(&self.target.project)
            .set_dataset_id(&self.target.dataset)
            .send()
            .await;
        match got {
            Ok(_) => return Ok(()),
            Err(e) if status(&e) == Some(404) => {}
            Err(e) => return Err(api("reading the dataset", e)),
        }
        let mut ds = model::Dataset::new().set_dataset_reference(
            model::DatasetReference::new()
                .set_project_id(&self.target.project)
                .set_dataset_id(&self.target.dataset),
        );
        if let Some(l) = &self.target.location {
            ds = ds.set_location(l.clone());
        }
        match self
            .datasets
            .insert_dataset()
            .set_project_id(&self.target.project)
            .set_dataset(ds)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if status(&e) == Some(409) => Ok(()),
            Err(e) => Err(api("creating the dataset", e)),
        }
    }

    /// The table `name`, or `None` when it does not exist.
    async fn get_table(&self, name: &str) -> Result<Option<model::Table>, WarehouseError> {
        match self
            .tables
            .get_table()
            .set_project_id(&self.target.project)
            .set_dataset_id(&self.target.dataset)
            .set_table_id(name)
            .send()
            .await
        {
            Ok(t) => Ok(Some(t)),
            Err(e) if status(&e) == Some(404) => Ok(None),
            Err(e) => Err(api(&format!("reading table {name}"), e)),
        }
    }

    async fn insert_table(&self, table: model::Table, name: &str) -> Result<bool, WarehouseError> {
        match self
            .tables
            .insert_table()
            .set_project_id(&self.target.project)
            .set_dataset_id(&self.target.dataset)
            .set_table(table)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if status(&e) == Some(409) => Ok(false),
            Err(e) => Err(api(&format!("creating table {name}"), e)),
        }
    }

    async fn drop_table(&self, name: &str) {
        let r = self
            .tables
            .delete_table()
            .set_project_id(&self.target.project)
            .set_dataset_id(&self.target.dataset)
            .set_table_id(name)
            .send()
            .await;
        match r {
            Ok(()) => {}
            Err(e) if status(&e) == Some(404) => {}
            Err(e) => {
                tracing::warn!(table = name, error = %e, "Dropping a staging table failed; it expires within a day.")
            }
        }
    }

    /// A table from the definition: partitioned by day (or month) on its partition column,
    /// clustered.
    fn table_resource(&self, t: &TableDef, name: &str) -> model::Table {
        let mut table = model::Table::new()
            .set_table_reference(self.table_reference(name))
            .set_schema(schema(t));
        if let Some(p) = t.partition {
            table = table.set_time_partitioning(
                model::TimePartitioning::new()
                    .set_type(t.partition_unit.bigquery())
                    .set_field(p),
            );
        }
        if !t.cluster.is_empty() {
            table = table.set_clustering(
                model::Clustering::new().set_fields(t.cluster.iter().map(|c| c.to_string())),
            );
        }
        table
    }

    /// Creates a missing table. An existing one must have every REQUIRED column of the
    /// definition; the nullable ones it lacks (a table made by an earlier build) are added to
    /// its schema, as NULL in the rows already there.
    async fn ensure_table(&self, t: &TableDef) -> Result<(), WarehouseError> {
        let existing = match self.get_table(t.name).await? {
            Some(existing) => existing,
            None => {
                if self
                    .insert_table(self.table_resource(t, t.name), t.name)
                    .await?
                {
                    return Ok(());
                }
                self.get_table(t.name).await?.unwrap_or_default()
            }
        };
        let fields: Vec<model::TableFieldSchema> =
            existing.schema.map(|s| s.fields).unwrap_or_default();
        let has = |c: &str| fields.iter().any(|f| f.name.eq_ignore_ascii_case(c));
        let missing: Vec<&str> = t
            .columns
            .iter()
            .filter(|c| c.mode == Mode::Required && !has(c.name))
            .map(|c| c.name)
            .collect();
        if !missing.is_empty() {
            return Err(WarehouseError::Query(format!(
                "table {} exists without the columns {}: add them or recreate the table",
                self.table_ref(t.name),
                missing.join(", ")
            )));
        }
        // DDL rather than a schema patch: the same statement on BigQuery and its emulator.
        for c in t.columns.iter().filter(|c| !has(c.name)) {
            let ty = match c.mode {
                Mode::Repeated => format!("ARRAY<{}>", c.ty.bigquery()),
                _ => c.ty.bigquery().to_string(),
            };
            self.rows(
                "ddl",
                &format!(
                    "ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {ty}",
                    self.table_ref(t.name),
                    c.name
                ),
            )
            .await?;
        }
        Ok(())
    }

    /// The metric views in GoogleSQL. A view names its tables with project and dataset, as
    /// BigQuery requires.
    fn views(&self) -> Vec<(&'static str, String)> {
        let (project, dataset) = (self.target.project.clone(), self.target.dataset.clone());
        let d = ViewDialect {
            table: Box::new(move |t| format!("`{project}.{dataset}.{t}`")),
            hours: |a, b| format!("ROUND(TIMESTAMP_DIFF({b}, {a}, SECOND) / 3600, 2)"),
            pr_key: "CONCAT(repository, '#', CAST(pr_number AS STRING))",
        };
        let prs = self.table_ref("pull_requests");
        let name = |v: &str| self.table_ref(v);
        // The Monday of the week, in UTC. (`DATE_TRUNC(…, WEEK(MONDAY))` says the same on
        // BigQuery, but the emulator truncates to Sunday.)
        let week = |c: &str| {
            format!("FORMAT_DATE('%Y-%m-%d', DATE_SUB(DATE({c}), INTERVAL MOD(EXTRACT(DAYOFWEEK FROM {c}) + 5, 7) DAY))")
        };
        let throughput = format!(
            "CREATE VIEW weekly_throughput AS
WITH opened AS (
  SELECT organization, {wc} AS week, COUNT(*) AS prs_opened
  FROM {prs} GROUP BY organization, week
),
merged_prs AS (
  SELECT organization, {wm} AS week, TIMESTAMP_DIFF(merged_at, created_at, SECOND) / 3600 AS hours
  FROM {prs} WHERE merged_at IS NOT NULL
),
medians AS (
  SELECT DISTINCT organization, week, PERCENTILE_CONT(hours, 0.5) OVER (PARTITION BY organization, week) AS median_hours
  FROM merged_prs
),
merged AS (
  SELECT m.organization, m.week, COUNT(*) AS prs_merged, ROUND(MAX(d.median_hours), 2) AS median_hours_to_merge
  FROM merged_prs m JOIN medians d ON d.organization = m.organization AND d.week = m.week
  GROUP BY m.organization, m.week
),
weeks AS (SELECT organization, week FROM opened UNION DISTINCT SELECT organization, week FROM merged)
SELECT w.organization, w.week, COALESCE(o.prs_opened, 0) AS prs_opened, COALESCE(m.prs_merged, 0) AS prs_merged,
  m.median_hours_to_merge
FROM weeks w
LEFT JOIN opened o ON o.organization = w.organization AND o.week = w.week
LEFT JOIN merged m ON m.organization = w.organization AND m.week = w.week",
            wc = week("created_at"),
            wm = week("merged_at"),
        );
        [
            ("pr_velocity", sql::pr_velocity_view(&d)),
            ("reviewer_load", sql::reviewer_load_view(&d)),
            ("weekly_throughput", throughput),
        ]
        .into_iter()
        .map(|(v, sql)| {
            let sql = sql.replacen(
                &format!("CREATE VIEW {v} AS"),
                &format!("CREATE OR REPLACE VIEW {} AS", name(v)),
                1,
            );
            (v, sql)
        })
        .collect()
    }

    /// Loads the staging table `stage` of `t` from `chunks`; returns the rows read when this
    /// process read them (media upload), `None` when BigQuery read them from GCS.
    async fn fill_stage(
        &self,
        lake: &Lake,
        t: &TableDef,
        stage: &str,
        chunks: &[&ChunkInfo],
    ) -> Result<Option<u64>, WarehouseError> {
        let load = |uris: Vec<String>| {
            model::JobConfiguration::new().set_load(
                model::JobConfigurationLoad::new()
                    .set_source_uris(uris)
                    .set_source_format("NEWLINE_DELIMITED_JSON")
                    .set_schema(stage_schema(t))
                    .set_destination_table(self.table_reference(stage))
                    .set_write_disposition("WRITE_APPEND")
                    .set_create_disposition("CREATE_NEVER")
                    .set_max_bad_records(0)
                    .set_ignore_unknown_values(false),
            )
        };
        let uris: Option<Vec<String>> = chunks.iter().map(|c| lake.gcs_uri(&c.path)).collect();
        if let Some(uris) = uris {
            for batch in uris.chunks(URIS_PER_JOB) {
                self.run("load", load(batch.to_vec())).await?;
            }
            return Ok(None);
        }
        let mut buf = Vec::new();
        let mut rows = 0;
        for chunk in chunks {
            let bytes = lake
                .get(&object_store::path::Path::from(chunk.path.as_str()))
                .await
                .map_err(|e| WarehouseError::reading(&chunk.path, e))?;
            rows += check_chunk(t, chunk, &bytes, &mut buf)?;
            if buf.len() >= UPLOAD_BYTES {
                self.upload(
                    load(Vec::new()),
                    Media::Rows(std::mem::take(&mut buf).into()),
                )
                .await?;
            }
        }
        if !buf.is_empty() {
            self.upload(load(Vec::new()), Media::Rows(buf.into()))
                .await?;
        }
        Ok(Some(rows))
    }

    /// The credentials' headers for a request made outside Google's clients.
    async fn auth_headers(&self) -> Result<http::HeaderMap, WarehouseError> {
        Ok(
            match self
                .credentials
                .headers(http::Extensions::new())
                .await
                .map_err(|e| WarehouseError::Unavailable(format!("Google credentials: {e}")))?
            {
                google_cloud_auth::credentials::CacheableResource::New { data, .. } => data,
                google_cloud_auth::credentials::CacheableResource::NotModified => {
                    http::HeaderMap::new()
                }
            },
        )
    }

    /// One page of `tabledata.list` of `table` (`pageToken` `token`), retried on a server
    /// error or a lost connection.
    async fn table_data_page(
        &self,
        table: &str,
        token: Option<&str>,
    ) -> Result<Value, WarehouseError> {
        let url = format!(
            "{}/bigquery/v2/projects/{}/datasets/{}/tables/{}/data",
            self.endpoint, self.target.project, self.target.dataset, table
        );
        let what = format!("reading the rows of {}", self.table_ref(table));
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut req = self
                .http
                .get(&url)
                .headers(self.auth_headers().await?)
                .query(&[
                    ("maxResults", EXPORT_PAGE.to_string().as_str()),
                    ("formatOptions.useInt64Timestamp", "true"),
                ]);
            if let Some(t) = token {
                req = req.query(&[("pageToken", t)]);
            }
            match req.send().await {
                Ok(r) if r.status().is_server_error() && attempt < 4 => {}
                Ok(r) => {
                    let code = r.status();
                    let text = r
                        .text()
                        .await
                        .map_err(|e| WarehouseError::Unavailable(format!("{what}: {e}")))?;
                    let body: Value = serde_json::from_str(&text).map_err(|e| {
                        WarehouseError::Query(format!("{what}: HTTP {code}, not JSON: {e}"))
                    })?;
                    if !code.is_success() {
                        let message = body["error"]["message"].as_str().unwrap_or_default();
                        return Err(WarehouseError::Query(format!(
                            "{what}: HTTP {code}: {message}"
                        )));
                    }
                    return Ok(body);
                }
                Err(e) if attempt < 4 && (e.is_connect() || e.is_timeout()) => {}
                Err(e) => return Err(WarehouseError::Unavailable(format!("{what}: {e}"))),
            }
            tokio::time::sleep(Duration::from_millis(500 << attempt)).await;
        }
    }

    /// A load job whose rows travel in the request (a multipart media upload): `media` is the
    /// rows themselves, or an object of the lake streamed through (never held in memory).
    async fn upload(
        &self,
        config: model::JobConfiguration,
        media: Media<'_>,
    ) -> Result<(), WarehouseError> {
        let job = model::Job::new()
            .set_job_reference(self.job_reference("upload"))
            .set_configuration(config);
        let meta = serde_json::to_vec(&job).map_err(|e| WarehouseError::Query(e.to_string()))?;
        let boundary = format!("ghstats{:016x}", rand::random::<u64>());
        let mut head = Vec::with_capacity(meta.len() + 256);
        head.extend_from_slice(
            format!("--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n")
                .as_bytes(),
        );
        head.extend_from_slice(&meta);
        head.extend_from_slice(
            format!("\r\n--{boundary}\r\nContent-Type: application/octet-stream\r\n\r\n")
                .as_bytes(),
        );
        let head = bytes::Bytes::from(head);
        let tail = bytes::Bytes::from(format!("\r\n--{boundary}--\r\n"));
        let url = format!(
            "{}/upload/bigquery/v2/projects/{}/jobs?uploadType=multipart",
            self.endpoint, self.target.project
        );
        let headers = self.auth_headers().await?;
        let mut attempt = 0;
        let response = loop {
            attempt += 1;
            // Built again for each attempt: an object's stream is read once.
            let (body, length) = media.body(head.clone(), tail.clone()).await?;
            let r = self
                .http
                .post(&url)
                .headers(headers.clone())
                .header(
                    "content-type",
                    format!("multipart/related; boundary={boundary}"),
                )
                .header("content-length", length)
                .body(body)
                .send()
                .await;
            match r {
                Ok(r) if r.status().is_server_error() && attempt < 4 => {}
                Ok(r) if r.status() == reqwest::StatusCode::CONFLICT => {
                    // A retried upload whose first try arrived: the job exists.
                    let reference = job.job_reference.clone().unwrap_or_default();
                    let existing = self.get_job(&reference).await?;
                    self.wait("upload", existing).await?;
                    return Ok(());
                }
                Ok(r) => break r,
                Err(e) if attempt < 4 && (e.is_connect() || e.is_timeout()) => {}
                Err(e) => {
                    return Err(WarehouseError::Unavailable(format!(
                        "uploading rows to BigQuery: {e}"
                    )))
                }
            }
            tokio::time::sleep(Duration::from_millis(500 << attempt)).await;
        };
        let code = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| WarehouseError::Unavailable(format!("uploading rows to BigQuery: {e}")))?;
        if !code.is_success() {
            let message = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
                .unwrap_or_else(|| text.chars().take(300).collect());
            return Err(WarehouseError::Query(format!(
                "uploading rows to BigQuery: HTTP {code}: {message}"
            )));
        }
        let started: model::Job = serde_json::from_str(&text).map_err(|e| {
            WarehouseError::Query(format!("BigQuery answered an upload with no job: {e}"))
        })?;
        self.wait("upload", started).await?;
        Ok(())
    }

    /// Row count and partition range of each staging table, in one query.
    async fn staged(
        &self,
        stages: &[(&'static TableDef, String)],
    ) -> Result<BTreeMap<&'static str, Staged>, WarehouseError> {
        let parts: Vec<String> = stages
            .iter()
            .map(|(t, stage)| {
                let (lo, hi) = match t.partition {
                    Some(p) => (format!("MIN({p})"), format!("MAX({p})")),
                    None => (
                        "CAST(NULL AS TIMESTAMP)".into(),
                        "CAST(NULL AS TIMESTAMP)".into(),
                    ),
                };
                format!(
                    "SELECT {} AS tbl, COUNT(*) AS n, {lo} AS lo, {hi} AS hi FROM {}",
                    lit(t.name),
                    self.table_ref(stage)
                )
            })
            .collect();
        let mut out = BTreeMap::new();
        for row in self.rows("stats", &parts.join("\nUNION ALL\n")).await? {
            let tbl = row["tbl"].as_str().unwrap_or_default();
            let Some((t, _)) = stages.iter().find(|(t, _)| t.name == tbl) else {
                continue;
            };
            let when = |v: &Value| {
                v.as_str()
                    .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                    .map(|d| d.with_timezone(&Utc))
            };
            out.insert(
                t.name,
                Staged {
                    rows: row["n"].as_u64().unwrap_or(0),
                    low: when(&row["lo"]),
                    high: when(&row["hi"]),
                },
            );
        }
        Ok(out)
    }

    /// The script that MERGEs every staging table and reconciles children, in one transaction;
    /// its last statement returns the counts.
    fn merge_script(
        &self,
        stages: &[(&'static TableDef, String)],
        staged: &BTreeMap<&'static str, Staged>,
    ) -> String {
        self.merge_statements(stages, staged).render()
    }

    /// The statements of [`BigQueryWarehouse::merge_script`], for a caller to add to.
    fn merge_statements(
        &self,
        stages: &[(&'static TableDef, String)],
        staged: &BTreeMap<&'static str, Staged>,
    ) -> Script {
        let mut declare = Vec::new();
        let mut body = Vec::new();
        let mut result = Vec::new();
        let stage_of = |name: &str| {
            stages
                .iter()
                .find(|(t, _)| t.name == name)
                .map(|(_, s)| self.table_ref(s))
        };
        let staged_prs = stage_of("pull_requests")
            .filter(|_| staged.get("pull_requests").is_some_and(|s| s.rows > 0));
        let staged_repos = stage_of(tables::REPOSITORIES.name).filter(|_| {
            staged
                .get(tables::REPOSITORIES.name)
                .is_some_and(|s| s.rows > 0)
        });
        let repositories = self.table_ref(tables::REPOSITORIES.name);
        // Rows of chunks written before rows carried the repository's id get it first.
        for (t, stage) in stages {
            if t.column(tables::FILLED_AT_LOAD).is_none()
                || staged.get(t.name).is_none_or(|s| s.rows == 0)
            {
                continue;
            }
            body.push(format!(
                "{};",
                sql::fill_repository_id_sql(
                    &self.table_ref(stage),
                    staged_repos.as_deref().unwrap_or(&repositories),
                    &repositories
                )
            ));
        }
        for (t, stage) in stages {
            let Some(info) = staged.get(t.name).filter(|s| s.rows > 0) else {
                continue;
            };
            let target = self.table_ref(t.name);
            let cols: Vec<&str> = t.columns.iter().map(|c| c.name).collect();
            let is_child = tables::PR_CHILDREN.iter().any(|c| c.name == t.name);
            // Children of a pull request already stored in a newer snapshot are stale.
            let source_rows = if is_child {
                format!(
                    "SELECT X.* FROM {} X LEFT JOIN {} P ON P.repository_id = X.repository_id \
                     AND P.pr_number = X.pr_number WHERE P.updated_at IS NULL OR NOT {}",
                    self.table_ref(stage),
                    self.table_ref("pull_requests"),
                    newer_snapshot("P", "X")
                )
            } else {
                format!("SELECT * FROM {}", self.table_ref(stage))
            };
            let dedup = dedup_sql(t, &source_rows);
            let mut on: Vec<String> = t.key.iter().map(|k| format!("T.{k} = S.{k}")).collect();
            // Constants, so BigQuery prunes the target's partitions. A partition column that
            // may be NULL (a pending review) keeps the NULL partition in.
            if let (Some(p), Some(lo), Some(hi)) = (t.partition, info.low, info.high) {
                let range = format!("T.{p} BETWEEN {} AND {}", ts_lit(lo), ts_lit(hi));
                let nullable = t.column(p).is_some_and(|c| c.mode != Mode::Required);
                on.push(if nullable {
                    format!("(T.{p} IS NULL OR {range})")
                } else {
                    range
                });
            } else if let Some(p) = t.partition {
                on.push(format!("T.{p} IS NULL"));
            }
            let on = on.join(" AND ");
            let newer = newer(t, "S", "T");
            let ins = format!("ins_{}", t.name);
            let upd = format!("upd_{}", t.name);
            declare.push(format!("DECLARE {ins} INT64 DEFAULT 0;"));
            declare.push(format!("DECLARE {upd} INT64 DEFAULT 0;"));
            result.push(format!("{ins} AS {ins}"));
            result.push(format!("{upd} AS {upd}"));
            body.push(format!(
                "SET {ins} = (SELECT COUNT(*) FROM ({dedup}) S LEFT JOIN {target} T ON {on} WHERE T.{k0} IS NULL);",
                k0 = t.key[0]
            ));
            body.push(format!(
                "SET {upd} = (SELECT COUNT(*) FROM ({dedup}) S JOIN {target} T ON {on} WHERE {newer});"
            ));
            let set: Vec<String> = t
                .columns
                .iter()
                .filter(|c| sql::merged(t, c))
                .map(|c| format!("{0} = S.{0}", c.name))
                .collect();
            body.push(format!(
                "MERGE {target} T USING ({dedup}) S ON {on}\nWHEN MATCHED AND {newer} THEN UPDATE SET {set}\nWHEN NOT MATCHED THEN INSERT ({cols}) VALUES ({values});",
                set = set.join(", "),
                cols = cols.join(", "),
                values = cols.iter().map(|c| format!("S.{c}")).collect::<Vec<_>>().join(", "),
            ));
        }
        if let Some(prs) = staged_prs {
            for child in tables::PR_CHILDREN {
                let del = format!("del_{}", child.name);
                let cond = format!(
                    "EXISTS (SELECT 1 FROM {} P JOIN (SELECT DISTINCT repository_id, pr_number FROM {prs}) SP \
                     ON SP.repository_id = P.repository_id AND SP.pr_number = P.pr_number \
                     WHERE P.repository_id = C.repository_id AND P.pr_number = C.pr_number \
                     AND {})",
                    self.table_ref("pull_requests"),
                    newer_snapshot("P", "C")
                );
                let target = self.table_ref(child.name);
                declare.push(format!("DECLARE {del} INT64 DEFAULT 0;"));
                result.push(format!("{del} AS {del}"));
                body.push(format!(
                    "SET {del} = (SELECT COUNT(*) FROM {target} C WHERE {cond});"
                ));
                body.push(format!("DELETE FROM {target} C WHERE {cond};"));
            }
        }
        // Names follow the repository's id: its rows take its current name.
        if let Some(repos) = &staged_repos {
            for t in sql::renamed_tables() {
                body.push(format!(
                    "{};",
                    sql::rename_sql(&self.table_ref(t.name), &repositories, repos)
                ));
            }
        }
        Script {
            declare,
            body,
            result,
        }
    }

    /// Creates the staging table of `t` for one load, `_ghstats_stage_{table}_{token}`, with
    /// the table's columns (see [`stage_schema`]); it expires after a day should the process
    /// die before dropping it. Returns its name.
    async fn create_stage(&self, t: &TableDef, token: &str) -> Result<String, WarehouseError> {
        let stage = format!("_ghstats_stage_{}_{token}", t.name);
        let expires = (Utc::now() + chrono::Duration::days(1)).timestamp_millis();
        self.insert_table(
            model::Table::new()
                .set_table_reference(self.table_reference(&stage))
                .set_schema(stage_schema(t))
                .set_expiration_time(expires),
            &stage,
        )
        .await?;
        Ok(stage)
    }

    /// Runs a script holding a transaction, or one DML statement, and returns its last
    /// statement's rows. Another transaction on the same tables makes BigQuery abort this one,
    /// which then changed nothing: it runs again, up to four times in all.
    async fn transaction(&self, kind: &str, script: &str) -> Result<Vec<Value>, WarehouseError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.rows(kind, script).await {
                Err(WarehouseError::Query(m)) if attempt < 4 && m.contains("concurrent update") => {
                    tracing::warn!(
                        attempt,
                        kind,
                        "A concurrent transaction aborted the script; retrying."
                    );
                    tokio::time::sleep(Duration::from_secs(2 << attempt)).await;
                }
                other => return other,
            }
        }
    }

    /// The MERGE that sets the row of `state.hour` in `gharchive_hours` to `state`.
    fn hour_upsert_sql(&self, state: &HourState) -> String {
        let t = &tables::GHARCHIVE_HOURS;
        let values: Vec<String> = t
            .columns
            .iter()
            .zip(state.cells())
            .map(|(c, v)| format!("{} AS {}", cell_lit(c, &v), c.name))
            .collect();
        let cols: Vec<&str> = t.columns.iter().map(|c| c.name).collect();
        let set: Vec<String> = cols
            .iter()
            .filter(|c| !t.key.contains(c))
            .map(|c| format!("{c} = S.{c}"))
            .collect();
        format!(
            "MERGE {} T USING (SELECT {}) S ON T.hour = S.hour\nWHEN MATCHED THEN UPDATE SET {}\nWHEN NOT MATCHED THEN INSERT ({}) VALUES ({})",
            self.table_ref(t.name),
            values.join(", "),
            set.join(", "),
            cols.join(", "),
            cols.iter().map(|c| format!("S.{c}")).collect::<Vec<_>>().join(", ")
        )
    }

    /// The script that takes an hour's staged events into `gharchive_events` and records its
    /// state, in one transaction, with the rule of every backend: the hour's own rows are
    /// replaced, an id already stored (by another hour) keeps its row, so loading twice
    /// changes nothing. Both statements read only the day partitions of [`gharchive_window`].
    fn gharchive_load_script(&self, stage: &str, staged: &Staged, state: &HourState) -> String {
        let t = &tables::GHARCHIVE_EVENTS;
        let target = self.table_ref(t.name);
        let cols: Vec<&str> = t.columns.iter().map(|c| c.name).collect();
        let (lo, hi) = gharchive_window(state.hour, staged);
        let window = format!("T.created_at BETWEEN {} AND {}", ts_lit(lo), ts_lit(hi));
        // An hour's file holds each id once (the ingest drops later copies); the ranking only
        // keeps a MERGE from failing on a file that does not.
        let dedup = format!(
            "SELECT {cols} FROM (SELECT {cols}, ROW_NUMBER() OVER (PARTITION BY event_id ORDER BY created_at) AS ghstats_rank FROM {stage}) WHERE ghstats_rank = 1",
            cols = cols.join(", "),
            stage = self.table_ref(stage),
        );
        format!(
            "BEGIN TRANSACTION;\n\
             DELETE FROM {target} T WHERE T.archive_hour = {hour} AND {window};\n\
             MERGE {target} T USING ({dedup}) S ON T.event_id = S.event_id AND {window}\n\
             WHEN NOT MATCHED THEN INSERT ({cols}) VALUES ({values});\n\
             {upsert};\n\
             COMMIT TRANSACTION;",
            hour = ts_lit(state.hour),
            cols = cols.join(", "),
            values = cols
                .iter()
                .map(|c| format!("S.{c}"))
                .collect::<Vec<_>>()
                .join(", "),
            upsert = self.hour_upsert_sql(state),
        )
    }

    /// Fills the staging table `stage` from the hour's Parquet object and takes it into
    /// `gharchive_events`; returns the rows the file holds.
    async fn load_gharchive_stage(
        &self,
        lake: &Lake,
        path: &object_store::path::Path,
        state: &HourState,
        stage: &str,
    ) -> Result<u64, WarehouseError> {
        let t = &tables::GHARCHIVE_EVENTS;
        // BigQuery reads the file as it is: no schema is given, the columns match the
        // staging table's by name (`gharchive::batch::schema` follows the same definition), and
        // without `hivePartitioningOptions` the `date=…/hour=…` folders add no columns. (The
        // emulator, bqemulator 1.4.0, reads a gs:// Parquet file with DuckDB's `read_parquet`,
        // which does add them, and failed with "table … has 17 columns but 19 values were
        // supplied"; scripts/bqemulator-launcher.py makes it read the file's columns only. Its
        // media uploads go through a temporary file and never had the problem.)
        let load = |uris: Vec<String>| {
            model::JobConfiguration::new().set_load(
                model::JobConfigurationLoad::new()
                    .set_source_uris(uris)
                    .set_source_format("PARQUET")
                    .set_destination_table(self.table_reference(stage))
                    .set_write_disposition("WRITE_APPEND")
                    .set_create_disposition("CREATE_NEVER")
                    .set_max_bad_records(0),
            )
        };
        match lake.gcs_uri(path.as_ref()) {
            Some(uri) => {
                self.run("load", load(vec![uri])).await?;
            }
            None => {
                self.upload(load(Vec::new()), Media::Object { lake, path })
                    .await?
            }
        }
        let staged = self
            .staged(&[(&tables::GHARCHIVE_EVENTS, stage.to_string())])
            .await?
            .remove(t.name)
            .unwrap_or_default();
        let script = self.gharchive_load_script(stage, &staged, state);
        self.transaction("gharchive_load", &script).await?;
        Ok(staged.rows)
    }

    /// Fills one staging table per commits table from the months' Parquet objects (load jobs
    /// reading `gs://` URIs when the lake is a bucket, otherwise each object streamed as a
    /// media upload), checks that every staged row is of its repository and month, then runs
    /// [`BigQueryWarehouse::commit_months_script`]. `stages` collects the staging tables made,
    /// for the caller to drop.
    async fn load_commit_stages(
        &self,
        lake: &Lake,
        repo: &crate::commits::RepositoryState,
        months: &[crate::commits::MonthPartition],
        token: &str,
        stages: &mut Vec<(&'static TableDef, String)>,
    ) -> Result<BTreeMap<String, u64>, WarehouseError> {
        use super::commits as shared;
        let names: Vec<String> = months.iter().map(|m| lit(&m.month)).collect();
        for t in tables::COMMIT_TABLES {
            let files: Vec<&String> = months.iter().flat_map(|m| m.files(t.name)).collect();
            if files.is_empty() {
                continue;
            }
            let stage = self.create_stage(t, token).await?;
            stages.push((t, stage.clone()));
            // The file's columns match the staging table's by name; list inference reads a
            // Parquet LIST (`parent_commits`) as a REPEATED column rather than a record.
            let load = |uris: Vec<String>| {
                model::JobConfiguration::new().set_load(
                    model::JobConfigurationLoad::new()
                        .set_source_uris(uris)
                        .set_source_format("PARQUET")
                        .set_parquet_options(
                            model::ParquetOptions::new().set_enable_list_inference(true),
                        )
                        .set_destination_table(self.table_reference(&stage))
                        .set_write_disposition("WRITE_APPEND")
                        .set_create_disposition("CREATE_NEVER")
                        .set_max_bad_records(0),
                )
            };
            let uris: Option<Vec<String>> = files.iter().map(|f| lake.gcs_uri(f)).collect();
            match uris {
                Some(uris) => {
                    for batch in uris.chunks(URIS_PER_JOB) {
                        self.run("load", load(batch.to_vec())).await?;
                    }
                }
                None => {
                    for f in files {
                        let path = object_store::path::Path::from(f.as_str());
                        self.upload(load(Vec::new()), Media::Object { lake, path: &path })
                            .await?;
                    }
                }
            }
        }
        let mut read = shared::zero_counts();
        if !stages.is_empty() {
            // Rows per table, and those not of their repository and month: such a row would
            // stay behind when its own month is replaced.
            let parts: Vec<String> = stages
                .iter()
                .map(|(t, stage)| {
                    format!(
                        "SELECT {} AS tbl, COUNT(*) AS n, SUM(CASE WHEN repository_id <> {id} OR commit_month NOT IN ({months}) \
                         OR FORMAT_TIMESTAMP('%Y-%m', commit_at) <> commit_month THEN 1 ELSE 0 END) AS bad FROM {}",
                        lit(t.name),
                        self.table_ref(stage),
                        id = repo.repo_id,
                        months = names.join(", "),
                    )
                })
                .collect();
            for row in self.rows("stats", &parts.join("\nUNION ALL\n")).await? {
                let tbl = row["tbl"].as_str().unwrap_or_default().to_string();
                if row["bad"].as_u64().unwrap_or(0) > 0 {
                    return Err(WarehouseError::BadChunk {
                        path: months
                            .iter()
                            .flat_map(|m| m.files(&tbl))
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", "),
                        message: format!(
                            "{} {tbl} rows are not of repository {} and the months {}",
                            row["bad"],
                            repo.repo_id,
                            names.join(", ")
                        ),
                    });
                }
                read.insert(tbl, row["n"].as_u64().unwrap_or(0));
            }
        }
        let script = self.commit_months_script(repo, months, stages)?;
        self.transaction("commits", &script).await?;
        Ok(read)
    }

    /// One transaction: per commits table, the months' stored rows deleted (their `commit_at`
    /// range given as constants, so only those month partitions are read) and the staged rows
    /// inserted, one per key; then the repository's `repositories` row upserted by the rule of
    /// [`super::commits`], and its `commits` rows given its current name.
    fn commit_months_script(
        &self,
        repo: &crate::commits::RepositoryState,
        months: &[crate::commits::MonthPartition],
        stages: &[(&'static TableDef, String)],
    ) -> Result<String, WarehouseError> {
        use super::commits as shared;
        let mut body = vec!["BEGIN TRANSACTION;".to_string()];
        if let Some((lo, hi)) = shared::months_range(months)? {
            let names: Vec<String> = months.iter().map(|m| lit(&m.month)).collect();
            for t in tables::COMMIT_TABLES {
                let target = self.table_ref(t.name);
                body.push(format!(
                    "DELETE FROM {target} T WHERE T.repository_id = {id} AND T.commit_month IN ({names}) \
                     AND T.commit_at >= {lo} AND T.commit_at < {hi};",
                    id = repo.repo_id,
                    names = names.join(", "),
                    lo = ts_lit(lo),
                    hi = ts_lit(hi),
                ));
                let Some((_, stage)) = stages.iter().find(|(s, _)| s.name == t.name) else {
                    continue;
                };
                let cols = sql::column_list(t);
                body.push(format!(
                    "INSERT INTO {target} ({cols}) SELECT {cols} FROM (SELECT {cols}, ROW_NUMBER() OVER (PARTITION BY {key} ORDER BY commit_at) AS ghstats_rank FROM {stage}) WHERE ghstats_rank = 1;",
                    key = t.key.join(", "),
                    stage = self.table_ref(stage),
                ));
            }
        }
        let t = &tables::REPOSITORIES;
        let values: Vec<String> = t
            .columns
            .iter()
            .zip(shared::repository_cells(repo))
            .map(|(c, v)| format!("{} AS {}", cell_lit(c, &v), c.name))
            .collect();
        let newer = newer(t, "S", "T");
        let set: Vec<String> = t
            .columns
            .iter()
            .filter(|c| !t.key.contains(&c.name))
            .map(|c| {
                if tables::COMMITS_OWNED.contains(&c.name) {
                    format!("{0} = S.{0}", c.name)
                } else {
                    format!("{0} = CASE WHEN {newer} THEN S.{0} ELSE T.{0} END", c.name)
                }
            })
            .collect();
        let cols: Vec<&str> = t.columns.iter().map(|c| c.name).collect();
        body.push(format!(
            "MERGE {} T USING (SELECT {}) S ON T.repo_id = S.repo_id\nWHEN MATCHED THEN UPDATE SET {}\nWHEN NOT MATCHED THEN INSERT ({}) VALUES ({});",
            self.table_ref(t.name),
            values.join(", "),
            set.join(", "),
            cols.join(", "),
            cols.iter().map(|c| format!("S.{c}")).collect::<Vec<_>>().join(", ")
        ));
        body.push(format!(
            "{};",
            shared::rename_commits_sql(
                &self.table_ref(t.name),
                &self.table_ref(tables::COMMITS.name),
                &repo.repo_id.to_string(),
                |a, b| format!("CONCAT({a}, {b})")
            )
        ));
        body.push("COMMIT TRANSACTION;".into());
        Ok(body.join("\n"))
    }

    /// Fills the staging table `stage` from a stars crawl's chunks and runs the transaction of
    /// [`Warehouse::load_stars`].
    async fn load_stars_stage(
        &self,
        lake: &Lake,
        chunks: &[ChunkInfo],
        stage: &str,
    ) -> Result<StarsLoad, WarehouseError> {
        let t = &tables::REPO_STARS;
        let h = &tables::REPO_STAR_HISTORY;
        let refs: Vec<&ChunkInfo> = chunks.iter().collect();
        let read_here = self.fill_stage(lake, t, stage, &refs).await?;
        let stages = [(t, stage.to_string())];
        let staged = self.staged(&stages).await?;
        let rows = staged.get(t.name).map_or(0, |s| s.rows);
        let mut load = StarsLoad {
            staged: read_here.unwrap_or(rows),
            ..StarsLoad::default()
        };
        if rows == 0 {
            return Ok(load);
        }
        let mut script = self.merge_statements(&stages, &staged);
        let one = format!(
            "({})",
            dedup_sql(t, &format!("SELECT * FROM {}", self.table_ref(stage)))
        );
        let added = sql::star_history_rows_sql(&one, &self.table_ref(h.name));
        script
            .declare
            .push("DECLARE history_added INT64 DEFAULT 0;".into());
        script.body.push(format!(
            "SET history_added = (SELECT COUNT(*) FROM ({added}));"
        ));
        script.body.push(format!(
            "INSERT INTO {} ({}) {added};",
            self.table_ref(h.name),
            sql::column_list(h)
        ));
        script.result.push("history_added AS history_added".into());
        let rows = self.transaction("stars", &script.render()).await?;
        let counts = rows.first().cloned().unwrap_or(Value::Null);
        let n = |k: &str| counts[k].as_u64().unwrap_or(0);
        load.inserted = n(&format!("ins_{}", t.name));
        load.updated = n(&format!("upd_{}", t.name));
        load.history_added = n("history_added");
        Ok(load)
    }

    async fn load_staged(
        &self,
        lake: &Lake,
        groups: &[(&'static TableDef, Vec<&ChunkInfo>)],
        stages: &mut Vec<(&'static TableDef, String)>,
        token: &str,
    ) -> Result<LoadReport, WarehouseError> {
        let mut read_here = BTreeMap::new();
        for (t, chunks) in groups {
            let stage = self.create_stage(t, token).await?;
            stages.push((t, stage.clone()));
            if let Some(n) = self.fill_stage(lake, t, &stage, chunks).await? {
                read_here.insert(t.name, n);
            }
        }
        let staged = self.staged(stages).await?;
        let mut report = LoadReport::new();
        for (name, s) in &staged {
            report.entry(name.to_string()).or_default().staged =
                read_here.get(name).copied().unwrap_or(s.rows);
        }
        let script = self.merge_script(stages, &staged);
        if !script.is_empty() {
            let rows = self.transaction("merge", &script).await?;
            let counts = rows
                .first()
                .and_then(|r| r.as_object())
                .cloned()
                .unwrap_or_default();
            for (k, v) in counts {
                let n = v.as_u64().unwrap_or(0);
                let (kind, table) = k.split_once('_').unwrap_or(("", ""));
                let e = report.entry(table.to_string()).or_default();
                match kind {
                    "ins" => e.inserted += n,
                    "upd" => e.updated += n,
                    "del" => e.deleted += n,
                    _ => {}
                }
            }
        }
        report.retain(|_, l| *l != TableLoad::default());
        Ok(report)
    }
}

/// Checks each row of a chunk against its table and appends it to `out` as one NDJSON line.
fn check_chunk(
    t: &TableDef,
    chunk: &ChunkInfo,
    bytes: &[u8],
    out: &mut Vec<u8>,
) -> Result<u64, WarehouseError> {
    super::read_rows(chunk, bytes, |line, obj| {
        super::check_row(t, obj)?;
        out.extend_from_slice(super::line_without_nul(line, obj).as_bytes());
        out.push(b'\n');
        Ok(())
    })
}

/// One result row (`{"f": [{"v": …}]}`) as a JSON object, typed by the result schema.
/// Timestamps arrive as microseconds (`useInt64Timestamp`) or, from older servers, as
/// floating-point seconds; both become RFC 3339 with six fraction digits.
fn decode_row(
    fields: &[model::TableFieldSchema],
    row: &serde_json::Map<String, Value>,
) -> Result<Value, WarehouseError> {
    let cells = row
        .get("f")
        .and_then(Value::as_array)
        .ok_or_else(|| WarehouseError::Query("a BigQuery result row has no cells".into()))?;
    let mut obj = serde_json::Map::new();
    for (f, cell) in fields.iter().zip(cells) {
        obj.insert(
            f.name.clone(),
            decode_value(f, cell.get("v").unwrap_or(&Value::Null))?,
        );
    }
    Ok(Value::Object(obj))
}

fn decode_value(f: &model::TableFieldSchema, v: &Value) -> Result<Value, WarehouseError> {
    if f.mode == "REPEATED" {
        let items = v.as_array().cloned().unwrap_or_default();
        let mut single = f.clone();
        single.mode = "NULLABLE".into();
        return items
            .iter()
            .map(|i| decode_value(&single, i.get("v").unwrap_or(&Value::Null)))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array);
    }
    if v.is_null() {
        return Ok(Value::Null);
    }
    let bad =
        || WarehouseError::Query(format!("BigQuery returned {v} for {} {}", f.r#type, f.name));
    let s = v.as_str();
    Ok(match f.r#type.as_str() {
        "INTEGER" | "INT64" => s
            .and_then(|s| s.parse::<i64>().ok())
            .map(Value::from)
            .ok_or_else(bad)?,
        "FLOAT" | "FLOAT64" | "NUMERIC" | "BIGNUMERIC" => s
            .and_then(|s| s.parse::<f64>().ok())
            .map(Value::from)
            .ok_or_else(bad)?,
        "BOOLEAN" | "BOOL" => Value::Bool(s.ok_or_else(bad)?.eq_ignore_ascii_case("true")),
        "TIMESTAMP" => {
            let s = s.ok_or_else(bad)?;
            let micros = match s.parse::<i64>() {
                Ok(m) => m,
                Err(_) => (s.parse::<f64>().map_err(|_| bad())? * 1e6).round() as i64,
            };
            let t = DateTime::<Utc>::from_timestamp_micros(micros).ok_or_else(bad)?;
            Value::String(t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
        }
        "RECORD" | "STRUCT" => {
            let inner = v.as_object().ok_or_else(bad)?;
            decode_row(&f.fields, inner)?
        }
        _ => v.clone(),
    })
}

#[async_trait]
impl Warehouse for BigQueryWarehouse {
    fn backend(&self) -> &'static str {
        "bigquery"
    }

    /// Creates the dataset, missing tables and missing views; a table that exists must have
    /// every column. `init` also replaces the views.
    async fn ensure_tables(&self) -> Result<(), WarehouseError> {
        self.create_dataset().await?;
        for t in tables::every() {
            self.ensure_table(t).await?;
        }
        for (name, sql) in self.views() {
            if self.get_table(name).await?.is_none() {
                self.rows("ddl", &sql).await?;
            }
        }
        Ok(())
    }

    async fn init(&self) -> Result<(), WarehouseError> {
        self.ensure_tables().await?;
        for (_, sql) in self.views() {
            self.rows("ddl", &sql).await?;
        }
        Ok(())
    }

    async fn load(&self, lake: &Lake, chunks: &[ChunkInfo]) -> Result<LoadReport, WarehouseError> {
        let mut groups: Vec<(&'static TableDef, Vec<&ChunkInfo>)> = Vec::new();
        for t in tables::ALL {
            let mine: Vec<&ChunkInfo> = chunks.iter().filter(|c| c.table == t.name).collect();
            if !mine.is_empty() {
                groups.push((t, mine));
            }
        }
        if let Some(c) = chunks.iter().find(|c| tables::by_name(&c.table).is_none()) {
            return Err(WarehouseError::BadChunk {
                path: c.path.clone(),
                message: format!("unknown table {}", c.table),
            });
        }
        if groups.is_empty() {
            return Ok(LoadReport::new());
        }
        let token = format!("{:016x}", rand::random::<u64>());
        let mut stages = Vec::new();
        let result = self.load_staged(lake, &groups, &mut stages, &token).await;
        for (_, stage) in &stages {
            self.drop_table(stage).await;
        }
        result
    }

    /// A staging table filled by load jobs (from the chunks' `gs://` URIs, or media uploads of
    /// the checked rows), then one transaction: the `repo_stars` MERGE of every table (newest
    /// `observed_at` wins) and the `repo_star_history` rows of
    /// [`sql::star_history_rows_sql`]. The staging table is dropped whatever happened.
    async fn load_stars(
        &self,
        lake: &Lake,
        chunks: &[ChunkInfo],
    ) -> Result<StarsLoad, WarehouseError> {
        if chunks.is_empty() {
            return Ok(StarsLoad::default());
        }
        let token = format!("{:016x}", rand::random::<u64>());
        let stage = self.create_stage(&tables::REPO_STARS, &token).await?;
        let result = self.load_stars_stage(lake, chunks, &stage).await;
        self.drop_table(&stage).await;
        result
    }

    /// Pages of `tabledata.list` (free, unlike a query scanning the table), decoded with the
    /// stored table's schema and taken in the definition's column order.
    async fn export_rows(
        &self,
        table: &'static TableDef,
        rows: tokio::sync::mpsc::Sender<Vec<Typed>>,
    ) -> Result<u64, WarehouseError> {
        let t = table;
        let stored = self.get_table(t.name).await?.ok_or_else(|| {
            WarehouseError::Query(format!(
                "{} does not exist; run `ghstats init`",
                self.table_ref(t.name)
            ))
        })?;
        let fields = stored.schema.map(|s| s.fields).unwrap_or_default();
        let mut token: Option<String> = None;
        let mut n = 0u64;
        loop {
            let page = self.table_data_page(t.name, token.as_deref()).await?;
            for row in page["rows"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                let obj = row.as_object().ok_or_else(|| {
                    WarehouseError::Query(format!("BigQuery returned the row {row}"))
                })?;
                let decoded = decode_row(&fields, obj)?;
                let cells = t
                    .columns
                    .iter()
                    .map(|c| super::typed(t.name, c, decoded.get(c.name)))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(WarehouseError::Query)?;
                rows.send(cells)
                    .await
                    .map_err(|_| super::export_stopped())?;
                n += 1;
            }
            match page["pageToken"].as_str() {
                Some(next) if !next.is_empty() => token = Some(next.to_string()),
                _ => return Ok(n),
            }
        }
    }

    /// Every hour's state, oldest first; none when `gharchive_hours` does not exist yet (a
    /// dataset opened only for reading).
    async fn gharchive_hours(&self) -> Result<Vec<HourState>, WarehouseError> {
        let t = &tables::GHARCHIVE_HOURS;
        if self.get_table(t.name).await?.is_none() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {} FROM {} ORDER BY hour",
            sql::column_list(t),
            self.table_ref(t.name)
        );
        self.rows("fetch", &sql)
            .await?
            .iter()
            .map(|row| {
                let cells = t
                    .columns
                    .iter()
                    .map(|c| super::typed(t.name, c, row.get(c.name)))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(WarehouseError::Query)?;
                HourState::from_cells(&cells)
            })
            .collect()
    }

    async fn record_gharchive_hour(&self, state: &HourState) -> Result<(), WarehouseError> {
        self.transaction("gharchive_hour", &self.hour_upsert_sql(state))
            .await
            .map(drop)
    }

    /// A load job reads the Parquet object into a staging table (from its `gs://` URI when the
    /// lake is in GCS, otherwise as a media upload streamed from storage; ghstats re-encodes
    /// nothing), then one transaction replaces the hour's rows and records its state (see
    /// `gharchive_load_script`). The staging table is dropped whatever happened.
    async fn load_gharchive_hour(
        &self,
        lake: &Lake,
        path: &object_store::path::Path,
        state: &HourState,
    ) -> Result<u64, WarehouseError> {
        let token = format!("{:016x}", rand::random::<u64>());
        let stage = self.create_stage(&tables::GHARCHIVE_EVENTS, &token).await?;
        let result = self.load_gharchive_stage(lake, path, state, &stage).await;
        self.drop_table(&stage).await;
        result
    }

    /// Load jobs read the months' Parquet objects into staging tables (from `gs://` when the
    /// lake is a bucket), then one transaction replaces the months and upserts the repository
    /// (see `load_commit_stages`). The staging tables are dropped whatever happened.
    async fn load_commit_months(
        &self,
        lake: &Lake,
        repo: &crate::commits::RepositoryState,
        months: &[crate::commits::MonthPartition],
    ) -> Result<BTreeMap<String, u64>, WarehouseError> {
        super::commits::check_months(repo, months)?;
        let token = format!("{:016x}", rand::random::<u64>());
        let mut stages = Vec::new();
        let result = self
            .load_commit_stages(lake, repo, months, &token, &mut stages)
            .await;
        for (_, stage) in &stages {
            self.drop_table(stage).await;
        }
        result
    }

    async fn delete_repository(
        &self,
        organization: &str,
        repository: &str,
    ) -> Result<u64, WarehouseError> {
        let cond = format!(
            "organization = {} AND repository = {}",
            lit(organization),
            lit(repository)
        );
        let mut script = vec![
            "DECLARE n INT64 DEFAULT 0;".to_string(),
            "BEGIN TRANSACTION;".into(),
        ];
        for t in tables::ALL {
            let target = self.table_ref(t.name);
            script.push(format!(
                "SET n = n + (SELECT COUNT(*) FROM {target} WHERE {cond});"
            ));
            script.push(format!("DELETE FROM {target} WHERE {cond};"));
        }
        script.push("COMMIT TRANSACTION;".into());
        script.push("SELECT n AS deleted;".into());
        let rows = self.rows("delete", &script.join("\n")).await?;
        Ok(rows
            .first()
            .and_then(|r| r["deleted"].as_u64())
            .unwrap_or(0))
    }

    async fn row_counts(&self) -> Result<BTreeMap<String, u64>, WarehouseError> {
        let mut counted: Vec<&TableDef> = tables::ALL.iter().collect();
        for t in tables::COMMIT_TABLES {
            if self.get_table(t.name).await?.is_some() {
                counted.push(t);
            }
        }
        let sql: Vec<String> = counted
            .iter()
            .map(|t| {
                format!(
                    "SELECT {} AS tbl, COUNT(*) AS n FROM {}",
                    lit(t.name),
                    self.table_ref(t.name)
                )
            })
            .collect();
        let mut out: BTreeMap<String, u64> =
            counted.iter().map(|t| (t.name.to_string(), 0)).collect();
        for row in self.rows("count", &sql.join("\nUNION ALL\n")).await? {
            if let (Some(t), Some(n)) = (row["tbl"].as_str(), row["n"].as_u64()) {
                out.insert(t.to_string(), n);
            }
        }
        Ok(out)
    }

    async fn missing_tables(&self) -> Result<Vec<&'static str>, WarehouseError> {
        // A dataset that does not exist answers 404 for each of its tables.
        let mut missing = Vec::new();
        for t in tables::ALL {
            if self.get_table(t.name).await?.is_none() {
                missing.push(t.name);
            }
        }
        Ok(missing)
    }

    async fn fetch_rows(
        &self,
        table: &str,
        organization: &str,
    ) -> Result<Vec<Value>, WarehouseError> {
        let t = tables::by_name(table)
            .ok_or_else(|| WarehouseError::Query(format!("unknown table {table}")))?;
        let sql = format!(
            "SELECT {} FROM {} WHERE organization = {} ORDER BY {}",
            sql::column_list(t),
            self.table_ref(t.name),
            lit(organization),
            t.key.join(", ")
        );
        let rows = self.rows("fetch", &sql).await?;
        Ok(rows
            .into_iter()
            .map(|mut r| {
                for c in t.columns {
                    if let Some(v) = r.get_mut(c.name) {
                        *v = super::fetched_value(c, v.take());
                    }
                }
                r
            })
            .collect())
    }

    /// Runs a query in the dataset (unqualified names resolve there). Only `SELECT` runs: a
    /// dry run tells the statement type first.
    async fn query(&self, sql: &str) -> Result<Vec<Value>, WarehouseError> {
        let sql = sql.trim().trim_end_matches(';');
        let kind = self.statement_type(sql).await?;
        if kind != "SELECT" {
            return Err(WarehouseError::Query(format!(
                "only SELECT queries run here, not {}",
                if kind.is_empty() {
                    "this statement"
                } else {
                    &kind
                }
            )));
        }
        self.rows("query", sql).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_and_print() {
        let t: BigQueryTarget = "bigquery://my-proj/ghstats?location=EU".parse().unwrap();
        assert_eq!(t.project, "my-proj");
        assert_eq!(t.dataset, "ghstats");
        assert_eq!(t.location.as_deref(), Some("EU"));
        assert_eq!(t.to_string(), "bigquery://my-proj/ghstats?location=EU");
        let e: BigQueryTarget = "bigquery://p-1/d?endpoint=http://127.0.0.1:9050/"
            .parse()
            .unwrap();
        assert_eq!(e.endpoint.as_deref(), Some("http://127.0.0.1:9050"));
        for bad in [
            "bigquery://proj",
            "bigquery://Proj/d",
            "bigquery://p/d-x",
            "bigquery://p/d?region=US",
            "bigquery://p/d?endpoint=ftp://x",
        ] {
            assert!(bad.parse::<BigQueryTarget>().is_err(), "{bad}");
        }
    }

    #[test]
    fn literals_are_escaped() {
        assert_eq!(lit("it's\\x"), "'it\\'s\\\\x'");
    }

    #[test]
    fn the_newest_version_is_compared_in_order() {
        assert_eq!(
            newer(&tables::REVIEWS, "S", "T"),
            "(S.pr_updated_at > T.pr_updated_at OR (S.pr_updated_at = T.pr_updated_at AND \
             (S.updated_at > T.updated_at OR (S.updated_at = T.updated_at AND S.collected_at > T.collected_at))))"
        );
    }

    #[test]
    fn result_cells_are_typed() {
        let f = |name: &str, ty: &str, mode: &str| {
            model::TableFieldSchema::new()
                .set_name(name)
                .set_type(ty)
                .set_mode(mode)
        };
        let fields = vec![
            f("n", "INTEGER", "NULLABLE"),
            f("t", "TIMESTAMP", "NULLABLE"),
            f("u", "TIMESTAMP", "NULLABLE"),
            f("l", "STRING", "REPEATED"),
            f("b", "BOOLEAN", "NULLABLE"),
            f("x", "FLOAT", "NULLABLE"),
            f("z", "STRING", "NULLABLE"),
        ];
        let row = json!({"f": [{"v": "42"}, {"v": "1772359200123456"}, {"v": "1.7723592E9"},
            {"v": [{"v": "a"}, {"v": "b"}]}, {"v": "true"}, {"v": "2.5"}, {"v": null}]});
        let got = decode_row(&fields, row.as_object().unwrap()).unwrap();
        assert_eq!(
            got,
            json!({"n": 42, "t": "2026-03-01T10:00:00.123456Z", "u": "2026-03-01T10:00:00.000000Z",
                   "l": ["a", "b"], "b": true, "x": 2.5, "z": null})
        );
        let bad = json!({"f": [{"v": "x"}]});
        assert!(decode_row(&fields[..1], bad.as_object().unwrap()).is_err());
    }

    #[test]
    fn an_hours_load_reads_the_days_around_it_only() {
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let hour = t("2024-03-10T05:00:00Z");
        // Nothing staged: the hour itself, a day either side.
        assert_eq!(
            gharchive_window(hour, &Staged::default()),
            (t("2024-03-09T05:00:00Z"), t("2024-03-11T06:00:00Z"))
        );
        // Copies of the previous hour's events reach back into it.
        let staged = Staged {
            rows: 3,
            low: Some(t("2024-03-10T04:58:00Z")),
            high: Some(t("2024-03-10T05:59:59Z")),
        };
        assert_eq!(
            gharchive_window(hour, &staged),
            (t("2024-03-09T04:58:00Z"), t("2024-03-11T06:00:00Z"))
        );
    }

    #[test]
    fn cells_become_literals_of_their_column() {
        let col = |name| *tables::GHARCHIVE_HOURS.column(name).unwrap();
        assert_eq!(
            cell_lit(&col("events"), &Typed::Null),
            "CAST(NULL AS INT64)"
        );
        assert_eq!(
            cell_lit(&col("error"), &Typed::Text("it's".into())),
            "'it\\'s'"
        );
        assert_eq!(cell_lit(&col("events"), &Typed::Int(-3)), "-3");
        let at = "2024-03-10T05:00:00Z".parse::<DateTime<Utc>>().unwrap();
        assert_eq!(
            cell_lit(&col("hour"), &Typed::Timestamp(at)),
            "TIMESTAMP '2024-03-10T05:00:00.000000Z'"
        );
    }

    #[test]
    fn the_schema_follows_the_table_definition() {
        let s = schema_json(&tables::PULL_REQUESTS);
        assert_eq!(
            s[2],
            json!({"name": "repository_id", "type": "INT64", "mode": "REQUIRED"})
        );
        assert_eq!(
            s[3],
            json!({"name": "pr_number", "type": "INT64", "mode": "REQUIRED"})
        );
        assert!(s
            .as_array()
            .unwrap()
            .contains(&json!({"name": "labels", "type": "STRING", "mode": "REPEATED"})));
    }
}
