//! The warehouse conformance suite against a real PostgreSQL (started by scripts/services.sh),
//! and the end-to-end path s3:// (moto) + Postgres compared to the simulator's ground truth.
//! Each test works in a database of its own; without the server the tests say so and skip.

mod common;

use common::*;
use ghstats::config::StorageUrl;
use ghstats::jobs::load::load_collection;
use ghstats::lake::Lake;
use ghstats::warehouse::{postgres::PostgresWarehouse, Warehouse};
use github_sim::{OrgSpec, SimOptions, Simulator};

async fn setup() -> Option<((), PostgresWarehouse)> {
    let url = fresh_database().await?;
    Some(((), PostgresWarehouse::connect(&url).await.unwrap()))
}

ghstats::warehouse_conformance_tests!(setup());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_and_postgres_equal_the_ground_truth_before_and_after_changes() {
    let Some(db) = fresh_database().await else {
        return;
    };
    let Some(endpoint) = std::env::var("GHSTATS_TEST_S3_ENDPOINT")
        .ok()
        .and_then(|u| u.parse::<url::Url>().ok())
    else {
        eprintln!("skipped: GHSTATS_TEST_S3_ENDPOINT is not set");
        return;
    };
    let bucket = format!("ghstats-{:08x}", rand::random::<u32>());
    assert!(reqwest::Client::new()
        .put(format!("{endpoint}{bucket}"))
        .send()
        .await
        .unwrap()
        .status()
        .is_success());
    std::env::set_var("AWS_ACCESS_KEY_ID", "test");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "test");
    let lake = Lake::open(
        &format!("s3://{bucket}/raw").parse::<StorageUrl>().unwrap(),
        Some(&endpoint),
    )
    .unwrap();
    let wh = PostgresWarehouse::connect(&db).await.unwrap();
    wh.ensure_tables().await.unwrap();

    let sim = Simulator::start(&OrgSpec::new(ORG, 3, 250, 51), SimOptions::default(), 0)
        .await
        .unwrap();
    let client = fast_client(&sim.url(), &["t"]);
    let first = collect(&client, &lake, &options(everything(), &[])).await;
    let loaded = load_collection(&wh, &lake, &ORG.parse().unwrap(), &first.collection_id)
        .await
        .unwrap();
    assert_eq!(loaded.tables["pull_requests"].inserted, 250);
    assert_tables_eq(
        &warehouse_tables(&wh).await,
        &expected(&sim.world(), &everything(), &[]),
    );

    let report = sim.change(50, 9, None);
    assert!(
        report.deleted_comments + report.force_pushes > 0,
        "{report:?}"
    );
    let window = window_after(first.window.until).await;
    let inc = collect(&client, &lake, &options(window, &[])).await;
    load_collection(&wh, &lake, &ORG.parse().unwrap(), &inc.collection_id)
        .await
        .unwrap();
    assert_tables_eq(
        &warehouse_tables(&wh).await,
        &expected(&sim.world(), &everything(), &[]),
    );
    // Reloading both collections changes nothing.
    for id in [&first.collection_id, &inc.collection_id] {
        let again = load_collection(&wh, &lake, &ORG.parse().unwrap(), id)
            .await
            .unwrap();
        assert!(
            again
                .tables
                .values()
                .all(|l| l.inserted == 0 && l.updated == 0 && l.deleted == 0),
            "{:?}",
            again.tables
        );
    }
}
