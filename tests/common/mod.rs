//! Shared helpers for the end-to-end tests: start the simulator, run a collection through the
//! library, read the chunks back, and build the expected rows from the simulator's ground
//! truth with a mapping written independently of `ghstats::rows`.

#![allow(dead_code)]

pub mod archive;
pub mod gcs;
pub mod gharchive;
pub mod service;

/// The `ghstats` binary run in `dir`, with none of its settings inherited from the environment.
pub fn ghstats_bin(dir: &std::path::Path) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_ghstats"));
    c.current_dir(dir);
    for var in [
        "GITHUB_ORG",
        "GITHUB_TOKEN",
        "GITHUB_TOKENS",
        "GITHUB_API_URL",
        "GITHUB_APP_ID",
        "GITHUB_APP_INSTALLATION_ID",
        "GITHUB_APP_PRIVATE_KEY",
        "GITHUB_APP_PRIVATE_KEY_FILE",
        "STORAGE_URL",
        "WAREHOUSE_URL",
        "PERSIST_TO_GCS",
        "RUN_BUDGET",
        "LOG_FORMAT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "GHARCHIVE_URL",
        "GHARCHIVE_PAYLOAD",
        "LOCK_LEASE",
        "CLOUD_RUN_TASK_INDEX",
        "CLOUD_RUN_TASK_COUNT",
        "GIT_CACHE_DIR",
        "GITHUB_GIT_URL",
        "MAX_WORKERS",
    ] {
        c.env_remove(var);
    }
    c
}

/// `ghstats gharchive ARGS` in `dir` against the GH Archive at `url`, with the lake in
/// `dir/lake` and the warehouse in `dir/wh.db`.
pub fn gharchive_command(dir: &std::path::Path, url: &str, args: &[&str]) -> std::process::Command {
    let mut c = ghstats_bin(dir);
    c.env("GHARCHIVE_URL", url)
        .env("STORAGE_URL", "file://./lake")
        .env("WAREHOUSE_URL", "sqlite://./wh.db")
        .env("LOG_FORMAT", "json")
        .arg("gharchive")
        .args(args);
    c
}

/// Runs [`gharchive_command`] to its end: the exit status, the JSON result (null when stdout
/// is not JSON) and stderr.
pub fn gharchive_run(dir: &std::path::Path, url: &str, args: &[&str]) -> (i32, Value, String) {
    let out = gharchive_command(dir, url, args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

use chrono::{DateTime, Utc};
use ghstats::config::{RepoScope, Secret};
use ghstats::github::{ClientOptions, GithubClient, Window};
use ghstats::jobs::{self, CollectOptions, CollectionResult, Progress};
use ghstats::lake::checkpoint::CollectionKind;
use ghstats::lake::{chunk::decode_chunk, CheckpointStore, Lake};
use github_sim::model::{node_id, Actor, World};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const ORG: &str = "acme";

/// Rows per table, keyed by the table's key, without `collected_at` / `collection_id`.
pub type Tables = BTreeMap<String, BTreeMap<String, Value>>;

pub fn fast_client(url: &str, tokens: &[&str]) -> GithubClient {
    let options = ClientOptions {
        base_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(200),
        secondary_default_wait: Duration::from_millis(50),
        max_attempts: 8,
        ..ClientOptions::default()
    };
    GithubClient::new(
        url.parse().unwrap(),
        tokens.iter().map(|t| Secret::new(*t)).collect(),
        options,
    )
    .unwrap()
}

pub fn memory_lake() -> Lake {
    Lake::new(Arc::new(object_store::memory::InMemory::new()), None)
}

pub fn options(window: Window, repos: &[&str]) -> CollectOptions {
    CollectOptions {
        org: ORG.parse().unwrap(),
        kind: CollectionKind::Backfill,
        window,
        scope: RepoScope {
            repos: repos.iter().map(|r| r.parse().unwrap()).collect(),
            include_archived: false,
            include_forks: false,
        },
        chunk_size: 50,
        max_workers: 3,
        page_size: 25,
        page_size_max: 50,
        deadline: Instant::now() + Duration::from_secs(600),
        stop: Default::default(),
    }
}

pub fn everything() -> Window {
    let now =
        chrono::DurationRound::duration_trunc(Utc::now(), chrono::Duration::seconds(1)).unwrap();
    Window {
        since: now - chrono::Duration::days(3650),
        until: now + chrono::Duration::seconds(1),
    }
}

/// The window of an incremental run after changes made at or after `previous_until`: it waits
/// for the next whole second (changes carry whole-second timestamps) and ends then.
pub async fn window_after(previous_until: DateTime<Utc>) -> Window {
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let now =
        chrono::DurationRound::duration_trunc(Utc::now(), chrono::Duration::seconds(1)).unwrap();
    Window {
        since: previous_until.min(Utc::now()) - chrono::Duration::seconds(1),
        until: now,
    }
}

/// A new SQLite warehouse in a temporary directory, with its tables.
pub async fn sqlite_warehouse() -> (
    tempfile::TempDir,
    ghstats::warehouse::sqlite::SqliteWarehouse,
) {
    use ghstats::warehouse::Warehouse;
    let dir = tempfile::tempdir().unwrap();
    let wh = ghstats::warehouse::sqlite::SqliteWarehouse::open(&dir.path().join("warehouse.db"))
        .await
        .unwrap();
    wh.ensure_tables().await.unwrap();
    (dir, wh)
}

pub async fn collect(
    client: &GithubClient,
    lake: &Lake,
    opts: &CollectOptions,
) -> CollectionResult {
    jobs::collect(client, lake, opts, &Progress::hidden())
        .await
        .expect("collection runs")
}

/// Every row a collection wrote, read back from its chunks.
pub async fn read_collection(lake: &Lake, collection_id: &str) -> Tables {
    let store = CheckpointStore::new(lake.clone(), ORG.parse().unwrap());
    let cp = store.load(collection_id).await.expect("checkpoint");
    let mut out: Tables = BTreeMap::new();
    for chunk in &cp.chunks {
        let bytes = lake
            .get(&object_store::path::Path::from(chunk.path.as_str()))
            .await
            .expect("chunk named in the checkpoint exists");
        let rows = decode_chunk(&bytes).unwrap();
        assert!(
            rows.len() as u64 == chunk.rows,
            "chunk {} holds {} rows, checkpoint says {}",
            chunk.path,
            rows.len(),
            chunk.rows
        );
        for mut row in rows {
            assert_eq!(row["collection_id"], collection_id);
            let obj = row.as_object_mut().unwrap();
            obj.remove("collected_at");
            obj.remove("collection_id");
            let key = key_of(&chunk.table, &row);
            let prev = out
                .entry(chunk.table.clone())
                .or_default()
                .insert(key.clone(), row);
            assert!(
                prev.is_none(),
                "{} row {key} written twice in one collection",
                chunk.table
            );
        }
    }
    out
}

fn key_of(table: &str, row: &Value) -> String {
    let def = ghstats::tables::by_name(table).expect("known table");
    def.key
        .iter()
        .map(|k| row[*k].to_string())
        .collect::<Vec<_>>()
        .join("|")
}

fn ts(t: DateTime<Utc>) -> Value {
    Value::String(t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
}

fn ts_opt(t: Option<DateTime<Utc>>) -> Value {
    t.map(ts).unwrap_or(Value::Null)
}

/// An actor as stored: GitHub's login, a bot's with its `[bot]` suffix (the simulator's GraphQL
/// answers the bare login, as GitHub's does).
fn login(a: &Option<Actor>) -> (Value, Value) {
    match a {
        Some(a) if a.kind == github_sim::model::ActorKind::Bot => {
            (json!(format!("{}[bot]", a.login)), json!("Bot"))
        }
        Some(a) => (json!(a.login), json!(a.kind.typename())),
        None => (json!("ghost"), json!("Ghost")),
    }
}

/// `v` with U+0000 removed from every string, as rows store text.
fn without_nul(v: Value) -> Value {
    match v {
        Value::String(s) => Value::String(s.replace('\0', "")),
        Value::Array(a) => Value::Array(a.into_iter().map(without_nul).collect()),
        Value::Object(m) => {
            Value::Object(m.into_iter().map(|(k, v)| (k, without_nul(v))).collect())
        }
        other => other,
    }
}

/// What the tables must hold for `window`, from the simulator's ground truth: the selected
/// repositories (active ones, or `repos`) and every pull request updated in the window with
/// all of its children.
pub fn expected(world: &World, window: &Window, repos: &[&str]) -> Tables {
    let mut out: Tables = BTreeMap::new();
    let mut put = |table: &str, row: Value| {
        let row = without_nul(row);
        let key = key_of(table, &row);
        out.entry(table.to_string()).or_default().insert(key, row);
    };
    for repo in &world.repositories {
        let selected = if repos.is_empty() {
            !repo.is_archived && !repo.is_fork
        } else {
            repos.contains(&repo.name.as_str())
        };
        if !selected {
            continue;
        }
        let base = |extra: Value| {
            let mut v =
                json!({"organization": ORG, "repository": repo.name, "repository_id": repo.id});
            v.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            v
        };
        let repository_row = |extra: Value| {
            let mut v = base(extra);
            v.as_object_mut().unwrap().remove("repository_id");
            v
        };
        put(
            "repositories",
            repository_row(json!({
                "repo_id": repo.id, "node_id": node_id("R", repo.id), "full_name": format!("{ORG}/{}", repo.name),
                "is_archived": repo.is_archived, "is_fork": repo.is_fork, "is_private": repo.is_private,
                "default_branch": repo.default_branch, "created_at": ts(repo.created_at), "updated_at": ts(repo.updated_at),
                "pushed_at": ts(repo.pushed_at),
            })),
        );
        for pr in &repo.pull_requests {
            if !(window.since <= pr.updated_at && pr.updated_at < window.until) {
                continue;
            }
            let (author, author_type) = login(&pr.author);
            let merged = pr.merged_at.is_some();
            let (merged_by, merged_by_type) = if merged {
                login(&pr.merged_by)
            } else {
                (Value::Null, Value::Null)
            };
            let size = pr
                .labels
                .iter()
                .find_map(|l| l.strip_prefix("size/"))
                .map(|s| json!(s))
                .unwrap_or(Value::Null);
            put(
                "pull_requests",
                base(json!({
                    "pr_number": pr.number, "pr_id": pr.id, "node_id": node_id("PR", pr.id), "title": pr.title,
                    "state": pr.state.graphql(), "draft": pr.is_draft, "author": author, "author_type": author_type,
                    "created_at": ts(pr.created_at), "updated_at": ts(pr.updated_at), "closed_at": ts_opt(pr.closed_at),
                    "merged_at": ts_opt(pr.merged_at), "merged": merged, "merged_by": merged_by, "merged_by_type": merged_by_type,
                    "base_ref": pr.base_ref, "head_ref": pr.head_ref, "additions": pr.additions, "deletions": pr.deletions,
                    "changed_files": pr.changed_files, "labels": pr.labels, "size_label": size,
                    "review_decision": pr.review_decision.map(|d| d.graphql()),
                    "commit_count": pr.commits.len(), "review_count": pr.reviews.len(), "comment_count": pr.comments.len(),
                })),
            );
            for c in &pr.commits {
                put(
                    "pr_commits",
                    base(json!({
                        "pr_number": pr.number, "sha": c.sha, "author": c.author_login, "author_name": c.author_name,
                        "authored_at": ts(c.authored_at), "committer": c.committer_login, "committer_name": c.committer_name,
                        "committed_at": ts(c.committed_at), "additions": c.additions, "deletions": c.deletions,
                        "message_headline": c.message_headline, "pr_updated_at": ts(pr.updated_at),
                    })),
                );
            }
            for r in &pr.reviews {
                let (reviewer, reviewer_type) = login(&r.author);
                put(
                    "reviews",
                    base(json!({
                        "pr_number": pr.number, "review_id": r.id, "node_id": node_id("PRR", r.id), "reviewer": reviewer,
                        "reviewer_type": reviewer_type, "state": r.state.graphql(), "submitted_at": ts_opt(r.submitted_at),
                        "created_at": ts(r.created_at), "updated_at": ts(r.updated_at),
                        "comment_count": r.comments.len(), "pr_updated_at": ts(pr.updated_at),
                    })),
                );
                for c in &r.comments {
                    let (author, author_type) = login(&c.author);
                    put(
                        "review_comments",
                        base(json!({
                            "pr_number": pr.number, "comment_id": c.id, "review_id": r.id, "node_id": node_id("PRRC", c.id),
                            "path": c.path, "author": author, "author_type": author_type, "created_at": ts(c.created_at),
                            "updated_at": ts(c.updated_at), "in_reply_to": c.reply_to,
                            "pr_updated_at": ts(pr.updated_at),
                        })),
                    );
                }
            }
            for c in &pr.comments {
                let (author, author_type) = login(&c.author);
                put(
                    "issue_comments",
                    base(json!({
                        "pr_number": pr.number, "comment_id": c.id, "node_id": node_id("IC", c.id), "author": author,
                        "author_type": author_type, "created_at": ts(c.created_at), "updated_at": ts(c.updated_at),
                        "pr_updated_at": ts(pr.updated_at),
                    })),
                );
            }
        }
    }
    out
}

/// Asserts two table sets are equal, naming the first difference.
pub fn assert_tables_eq(actual: &Tables, expected: &Tables) {
    let names: std::collections::BTreeSet<&String> = actual.keys().chain(expected.keys()).collect();
    for t in names {
        let empty = BTreeMap::new();
        let a = actual.get(t).unwrap_or(&empty);
        let e = expected.get(t).unwrap_or(&empty);
        for (k, row) in e {
            match a.get(k) {
                None => panic!("{t}: missing row {k}: {row}"),
                Some(got) => assert_eq!(got, row, "{t}: row {k} differs"),
            }
        }
        for k in a.keys() {
            assert!(e.contains_key(k), "{t}: unexpected row {k}");
        }
    }
}

/// Every table of the warehouse for [`ORG`], keyed like [`expected`], without
/// `collected_at` / `collection_id`, and without the commits job's columns of `repositories`
/// (`tables::COMMITS_OWNED`, which a pull-request collection never writes).
pub async fn warehouse_tables(wh: &dyn ghstats::warehouse::Warehouse) -> Tables {
    let mut out = Tables::new();
    for t in ghstats::tables::ALL {
        let mut m = std::collections::BTreeMap::new();
        for mut row in wh.fetch_rows(t.name, ORG).await.unwrap() {
            let obj = row.as_object_mut().unwrap();
            obj.remove("collected_at");
            obj.remove("collection_id");
            if t.name == ghstats::tables::REPOSITORIES.name {
                for c in ghstats::tables::COMMITS_OWNED {
                    obj.remove(*c);
                }
            }
            let key = t
                .key
                .iter()
                .map(|k| row[*k].to_string())
                .collect::<Vec<_>>()
                .join("|");
            m.insert(key, row);
        }
        if !m.is_empty() {
            out.insert(t.name.to_string(), m);
        }
    }
    out
}

/// A new, empty database on the test server, or `None` (with a note) when there is none.
pub async fn fresh_database() -> Option<String> {
    let Ok(admin) = std::env::var("GHSTATS_TEST_POSTGRES_URL") else {
        eprintln!("skipped: GHSTATS_TEST_POSTGRES_URL is not set (scripts/services.sh start sets it; .ci/run runs it)");
        return None;
    };
    let (client, conn) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
        .await
        .expect("the test PostgreSQL answers");
    tokio::spawn(conn);
    let name = format!("ghstats_{:08x}", rand::random::<u32>());
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let mut url: url::Url = admin.parse().unwrap();
    url.set_path(&name);
    Some(url.to_string())
}

pub fn row_count(t: &Tables) -> usize {
    t.values().map(|m| m.len()).sum()
}

/// A BigQuery target in a dataset of its own on the test emulator, or `None` (with a message)
/// when scripts/services.sh has not started it. Nothing is created yet.
#[allow(dead_code)]
pub fn fresh_bigquery() -> Option<ghstats::warehouse::bigquery::BigQueryTarget> {
    let (Ok(endpoint), Ok(project)) = (
        std::env::var("GHSTATS_TEST_BIGQUERY_ENDPOINT"),
        std::env::var("GHSTATS_TEST_BIGQUERY_PROJECT"),
    ) else {
        eprintln!("skipped: GHSTATS_TEST_BIGQUERY_ENDPOINT is not set (scripts/services.sh start sets it; .ci/run runs it)");
        return None;
    };
    let url = format!(
        "bigquery://{project}/ghstats_{:08x}?location=US&endpoint={endpoint}",
        rand::random::<u32>()
    );
    Some(url.parse().expect("a BigQuery URL"))
}

/// The REST URL of a test target's dataset on the emulator, for checks behind the client's back.
pub fn dataset_url(t: &ghstats::warehouse::bigquery::BigQueryTarget) -> String {
    format!(
        "{}/bigquery/v2/projects/{}/datasets/{}",
        t.endpoint
            .as_deref()
            .expect("a test target has an endpoint"),
        t.project,
        t.dataset
    )
}

/// Writes one object into a fake-gcs-server bucket through its JSON API (object_store's XML
/// uploads are missing from that emulator).
pub async fn seed_gcs_object(endpoint: &url::Url, bucket: &str, name: &str, bytes: Vec<u8>) {
    let r = reqwest::Client::new()
        .post(format!("{endpoint}upload/storage/v1/b/{bucket}/o"))
        .query(&[("uploadType", "media"), ("name", name)])
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "seeding {name}: {}", r.status());
}

/// The endpoint of a test server from the environment variable `var`, or `None` with a note
/// that the test is skipped.
pub fn test_server(var: &str) -> Option<url::Url> {
    match std::env::var(var).ok().and_then(|v| v.parse().ok()) {
        Some(u) => Some(u),
        None => {
            eprintln!(
                "skipped: {var} is not set (scripts/services.sh start sets it; .ci/run runs it)"
            );
            None
        }
    }
}

/// A lake at `s3://NEW-BUCKET/{prefix}` on the test S3 server (moto), in a bucket of its own,
/// or `None` (with a note) when the server is not running.
pub async fn fresh_s3_lake(prefix: &str) -> Option<Lake> {
    let endpoint = test_server("GHSTATS_TEST_S3_ENDPOINT")?;
    let bucket = format!("ghstats-{:08x}", rand::random::<u32>());
    let created = reqwest::Client::new()
        .put(format!("{endpoint}{bucket}"))
        .send()
        .await
        .unwrap();
    assert!(
        created.status().is_success(),
        "creating the bucket: {}",
        created.status()
    );
    std::env::set_var("AWS_ACCESS_KEY_ID", "test");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "test");
    let url: ghstats::config::StorageUrl = format!("s3://{bucket}/{prefix}").parse().unwrap();
    Some(Lake::open(&url, Some(&endpoint)).unwrap())
}
