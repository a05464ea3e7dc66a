//! The pipeline end to end on BigQuery (the emulator started by scripts/services.sh), compared
//! with the simulator's ground truth before and after 50 changes:
//! - gs:// + BigQuery: chunks in fake-gcs-server, load jobs reading their gs:// URIs (the
//!   emulator maps them to fake-gcs-server's files). fake-gcs-server 1.54 lacks the XML upload
//!   API object_store writes with, so the collection is written to memory and copied into the
//!   bucket through its JSON API; reading, listing and the checkpoint go through object_store.
//! - file:// + BigQuery: load jobs as media uploads of the checked rows.
//!
//! Also: a MERGE that fails leaves every table untouched and no staging table behind.
//! Without the emulator (or fake-gcs-server) the tests say so and skip.

mod common;

use common::*;
use ghstats::config::StorageUrl;
use ghstats::jobs::load::load_collection;
use ghstats::lake::Lake;
use ghstats::warehouse::{bigquery::BigQueryWarehouse, Warehouse};
use github_sim::{OrgSpec, SimOptions, Simulator};

/// Copies every object of `from` into the fake-gcs-server bucket, under the same names.
async fn copy_to_gcs(from: &Lake, endpoint: &url::Url, bucket: &str) {
    let everything = from
        .list(&object_store::path::Path::from(""))
        .await
        .unwrap();
    for (path, _) in everything {
        let bytes = from.get(&path).await.unwrap();
        seed_gcs_object(endpoint, bucket, path.as_ref(), bytes.to_vec()).await;
    }
}

fn assert_reload_changes_nothing(report: &ghstats::jobs::load::LoadResult) {
    assert!(
        report
            .tables
            .values()
            .all(|l| l.inserted == 0 && l.updated == 0 && l.deleted == 0),
        "{:?}",
        report.tables
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gs_and_bigquery_equal_the_ground_truth_before_and_after_changes() {
    let Some(target) = fresh_bigquery() else {
        return;
    };
    let Some(common::gcs::GcsBucket { endpoint, bucket }) = common::gcs::GcsBucket::from_env()
    else {
        return;
    };
    let prefix = format!("e2e-{:08x}", rand::random::<u32>());
    let url: StorageUrl = format!("gs://{bucket}/{prefix}").parse().unwrap();
    let wh = BigQueryWarehouse::connect(&target).await.unwrap();
    wh.init().await.unwrap();
    let org = ORG.parse().unwrap();

    let sim = Simulator::start(&OrgSpec::new(ORG, 3, 120, 61), SimOptions::default(), 0)
        .await
        .unwrap();
    let client = fast_client(&sim.url(), &["t"]);
    // Written with the bucket's prefix, so the checkpoint names the chunks as they are in GCS.
    let written = Lake::new(
        std::sync::Arc::new(object_store::memory::InMemory::new()),
        Some(object_store::path::Path::from(prefix.as_str())),
    );
    let first = collect(&client, &written, &options(everything(), &[])).await;
    copy_to_gcs(&written, &endpoint, &bucket).await;
    let gcs = Lake::open(&url, Some(&endpoint)).unwrap();
    assert!(gcs.gcs_uri("x").is_some());
    let loaded = load_collection(&wh, &gcs, &org, &first.collection_id)
        .await
        .unwrap();
    assert_eq!(loaded.tables["pull_requests"].inserted, 120);
    assert_eq!(loaded.tables["pull_requests"].staged, 120);
    assert_tables_eq(
        &warehouse_tables(&wh).await,
        &expected(&sim.world(), &everything(), &[]),
    );

    let report = sim.change(50, 13, None);
    assert!(
        report.deleted_comments + report.force_pushes > 0,
        "{report:?}"
    );
    let inc = collect(
        &client,
        &written,
        &options(window_after(first.window.until).await, &[]),
    )
    .await;
    copy_to_gcs(&written, &endpoint, &bucket).await;
    let second = load_collection(&wh, &gcs, &org, &inc.collection_id)
        .await
        .unwrap();
    assert!(second.tables["pull_requests"].updated > 0, "{second:?}");
    assert_tables_eq(
        &warehouse_tables(&wh).await,
        &expected(&sim.world(), &everything(), &[]),
    );
    for id in [&first.collection_id, &inc.collection_id] {
        assert_reload_changes_nothing(&load_collection(&wh, &gcs, &org, id).await.unwrap());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_files_and_bigquery_by_media_upload_equal_the_ground_truth() {
    let Some(target) = fresh_bigquery() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(&StorageUrl::Local(dir.path().to_path_buf()), None).unwrap();
    assert!(lake.gcs_uri("x").is_none());
    let wh = BigQueryWarehouse::connect(&target).await.unwrap();
    wh.ensure_tables().await.unwrap();
    let org = ORG.parse().unwrap();

    let sim = Simulator::start(&OrgSpec::new(ORG, 2, 90, 62), SimOptions::default(), 0)
        .await
        .unwrap();
    let client = fast_client(&sim.url(), &["t"]);
    let first = collect(&client, &lake, &options(everything(), &[])).await;
    let loaded = load_collection(&wh, &lake, &org, &first.collection_id)
        .await
        .unwrap();
    assert_eq!(loaded.tables["pull_requests"].inserted, 90);
    assert_tables_eq(
        &warehouse_tables(&wh).await,
        &expected(&sim.world(), &everything(), &[]),
    );
    sim.change(50, 14, None);
    let inc = collect(
        &client,
        &lake,
        &options(window_after(first.window.until).await, &[]),
    )
    .await;
    load_collection(&wh, &lake, &org, &inc.collection_id)
        .await
        .unwrap();
    assert_tables_eq(
        &warehouse_tables(&wh).await,
        &expected(&sim.world(), &everything(), &[]),
    );
    // The older collection loaded again brings nothing back.
    assert_reload_changes_nothing(
        &load_collection(&wh, &lake, &org, &first.collection_id)
            .await
            .unwrap(),
    );
}

/// A MERGE that fails inside the script (here: a table whose `created_at` someone changed to
/// INT64) surfaces BigQuery's message, rolls back the tables merged before it in the same
/// transaction, and leaves no staging table behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_merge_leaves_the_tables_untouched_and_no_staging_behind() {
    let Some(target) = fresh_bigquery() else {
        return;
    };
    let wh = BigQueryWarehouse::connect(&target).await.unwrap();
    wh.ensure_tables().await.unwrap();
    let base = dataset_url(&target);
    let http = reqwest::Client::new();
    assert!(http
        .delete(format!("{base}/tables/issue_comments"))
        .send()
        .await
        .unwrap()
        .status()
        .is_success());
    let fields: Vec<serde_json::Value> = ghstats::tables::ISSUE_COMMENTS
        .columns
        .iter()
        .map(|c| {
            let ty = if c.name == "created_at" {
                "INT64"
            } else {
                c.ty.bigquery()
            };
            serde_json::json!({"name": c.name, "type": ty, "mode": "NULLABLE"})
        })
        .collect();
    let created = http
        .post(format!("{base}/tables"))
        .json(&serde_json::json!({
            "tableReference": {"projectId": target.project, "datasetId": target.dataset, "tableId": "issue_comments"},
            "schema": {"fields": fields},
        }))
        .send()
        .await
        .unwrap();
    assert!(created.status().is_success());

    let sim = Simulator::start(&OrgSpec::new(ORG, 1, 30, 63), SimOptions::default(), 0)
        .await
        .unwrap();
    let client = fast_client(&sim.url(), &["t"]);
    let lake = memory_lake();
    let c = collect(&client, &lake, &options(everything(), &[])).await;
    let err = load_collection(&wh, &lake, &ORG.parse().unwrap(), &c.collection_id)
        .await
        .expect_err("the MERGE into the altered table fails");
    let message = format!("{err:#}");
    assert!(message.contains("BigQuery merge job"), "{message}");
    let counts = wh.row_counts().await.unwrap();
    assert_eq!(counts["pull_requests"], 0, "rolled back: {counts:?}");
    assert_eq!(counts["repositories"], 0, "rolled back: {counts:?}");
    let tables: serde_json::Value = http
        .get(format!("{base}/tables"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = tables["tables"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["tableReference"]["tableId"].as_str())
        .collect();
    assert!(
        names.iter().all(|n| !n.starts_with("_ghstats_stage_")),
        "{names:?}"
    );
    assert!(names.contains(&"pull_requests"), "{names:?}");
}

/// A query error is BigQuery's message, and only SELECT statements run through `query`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_errors_carry_bigquerys_message() {
    let Some(target) = fresh_bigquery() else {
        return;
    };
    let wh = BigQueryWarehouse::connect(&target).await.unwrap();
    wh.ensure_tables().await.unwrap();
    let err = wh
        .query("SELECT no_such_column FROM pull_requests")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("no_such_column"), "{err}");
    let err = wh
        .query("DELETE FROM pull_requests WHERE TRUE")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("only SELECT"), "{err}");
    let rows = wh
        .query("SELECT COUNT(*) AS n FROM pull_requests")
        .await
        .unwrap();
    assert_eq!(rows, vec![serde_json::json!({"n": 0})]);
}

/// Commit months whose Parquet objects are in GCS load through load jobs reading their gs://
/// URIs (the emulator reads fake-gcs-server's files), and equal the objects; loading them again
/// changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_months_load_from_gs_and_equal_their_objects() {
    let Some(target) = fresh_bigquery() else {
        return;
    };
    let Some(common::gcs::GcsBucket { endpoint, bucket }) = common::gcs::GcsBucket::from_env()
    else {
        return;
    };
    let prefix = format!("commits-{:08x}", rand::random::<u32>());
    let written = Lake::new(
        std::sync::Arc::new(object_store::memory::InMemory::new()),
        Some(object_store::path::Path::from(prefix.as_str())),
    );
    let sample = ghstats::warehouse::conformance::commit_months_sample(&written)
        .await
        .unwrap();
    copy_to_gcs(&written, &endpoint, &bucket).await;
    let url: StorageUrl = format!("gs://{bucket}/{prefix}").parse().unwrap();
    let gcs = Lake::open(&url, Some(&endpoint)).unwrap();
    assert!(gcs.gcs_uri(&sample.months[0].commits[0]).is_some());
    let wh = BigQueryWarehouse::connect(&target).await.unwrap();
    wh.init().await.unwrap();
    for _ in 0..2 {
        let read = wh
            .load_commit_months(&gcs, &sample.state, &sample.months)
            .await
            .unwrap();
        assert_eq!(
            read,
            std::collections::BTreeMap::from([
                ("commits".to_string(), 3),
                ("file_changes".to_string(), 2),
                ("file_states".to_string(), 2),
            ])
        );
        let stored = ghstats::warehouse::conformance::stored_commit_rows(&wh, sample.state.repo_id)
            .await
            .unwrap();
        assert_eq!(stored, sample.expected);
    }
}
