//! The warehouse conformance suite against the BigQuery emulator (bqemulator, started by
//! scripts/services.sh), each test in a dataset of its own. The in-memory lake of the suite
//! makes every load a media upload; tests/warehouse_e2e_bigquery.rs covers loads from gs://.
//! Without the emulator the tests say so and skip.

mod common;

use common::*;
use ghstats::warehouse::{bigquery::BigQueryWarehouse, Warehouse};

async fn setup() -> Option<((), BigQueryWarehouse)> {
    let target = fresh_bigquery()?;
    Some(((), BigQueryWarehouse::connect(&target).await.unwrap()))
}

ghstats::warehouse_conformance_tests!(setup());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_creates_the_dataset_partitioned_clustered_tables_and_views() {
    let Some(target) = fresh_bigquery() else {
        return;
    };
    let wh = BigQueryWarehouse::connect(&target).await.unwrap();
    wh.init().await.unwrap();
    wh.init().await.unwrap();
    let base = dataset_url(&target);
    let http = reqwest::Client::new();
    let get = |path: String| {
        let http = http.clone();
        async move {
            http.get(path)
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    assert_eq!(get(base.clone()).await["location"], "US");
    for t in ghstats::tables::every() {
        let table = get(format!("{base}/tables/{}", t.name)).await;
        assert_eq!(
            table["schema"]["fields"].as_array().map(Vec::len),
            Some(t.columns.len()),
            "{}",
            t.name
        );
        assert_eq!(
            table["timePartitioning"]["field"].as_str(),
            t.partition,
            "{}",
            t.name
        );
        if t.partition.is_some() {
            // Commits span decades: months, as BigQuery allows 4,000 partitions a table.
            assert_eq!(
                table["timePartitioning"]["type"].as_str(),
                Some(t.partition_unit.bigquery()),
                "{}",
                t.name
            );
        }
        let cluster: Vec<&str> = table["clustering"]["fields"]
            .as_array()
            .map(|a| a.iter().filter_map(|f| f.as_str()).collect())
            .unwrap_or_default();
        assert_eq!(cluster, t.cluster, "{}", t.name);
    }
    for v in ["pr_velocity", "reviewer_load", "weekly_throughput"] {
        assert_eq!(
            get(format!("{base}/tables/{v}")).await["type"],
            "VIEW",
            "{v}"
        );
    }
}

/// Reading (`summary`, `/readyz`) a dataset that does not exist says to run `ghstats init` and
/// creates nothing; after `init` the same read answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_a_missing_dataset_creates_nothing() {
    let Some(target) = fresh_bigquery() else {
        return;
    };
    let url = ghstats::warehouse::WarehouseUrl::BigQuery(target.clone());
    let e = match ghstats::warehouse::open_existing(&url).await {
        Ok(_) => panic!("a missing dataset opened"),
        Err(e) => e.to_string(),
    };
    assert!(
        e.contains("holds no ghstats tables; run `ghstats init`"),
        "{e}"
    );
    let status = reqwest::get(dataset_url(&target)).await.unwrap().status();
    assert_eq!(status.as_u16(), 404, "a read created the dataset");
    BigQueryWarehouse::connect(&target)
        .await
        .unwrap()
        .init()
        .await
        .unwrap();
    let wh = ghstats::warehouse::open_existing(&url).await.unwrap();
    assert_eq!(wh.row_counts().await.unwrap()["pull_requests"], 0);
}

/// A dataset whose `repositories` table was made before the commits job (no
/// `last_commit_sha`/`last_commit_at`) gains the columns at `ensure_tables` (a schema update
/// adding nullable fields), keeping its rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_repositories_table_gains_the_commit_columns() {
    use ghstats::warehouse::conformance;
    let Some(target) = fresh_bigquery() else {
        return;
    };
    let base = dataset_url(&target);
    let http = reqwest::Client::new();
    let ok = |r: reqwest::Response| async move {
        let status = r.status();
        let body = r.text().await.unwrap();
        assert!(status.is_success(), "{status}: {body}");
    };
    let projects = base.split("/datasets/").next().unwrap().to_string();
    ok(http
        .post(format!("{projects}/datasets"))
        .json(&serde_json::json!({"datasetReference": {"projectId": target.project, "datasetId": target.dataset}, "location": "US"}))
        .send()
        .await
        .unwrap())
    .await;
    let old = &conformance::OLD_REPOSITORIES;
    ok(http
        .post(format!("{base}/tables"))
        .json(&serde_json::json!({
            "tableReference": {"projectId": target.project, "datasetId": target.dataset, "tableId": old.name},
            "schema": {"fields": ghstats::warehouse::bigquery::schema_json(old)},
        }))
        .send()
        .await
        .unwrap())
    .await;
    let insert = conformance::old_repository_insert(
        7,
        &format!("`{}.{}.repositories`", target.project, target.dataset),
        "TIMESTAMP '2026-03-01T10:05:00Z'",
        "FALSE",
    );
    ok(http
        .post(format!("{projects}/queries"))
        .json(&serde_json::json!({"query": insert, "useLegacySql": false}))
        .send()
        .await
        .unwrap())
    .await;
    let wh = BigQueryWarehouse::connect(&target).await.unwrap();
    conformance::an_old_repositories_table_gains_the_commit_columns(&wh, 7)
        .await
        .unwrap();
}
