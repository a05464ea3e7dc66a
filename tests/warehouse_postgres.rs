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

/// `summary` only reads: against a database without ghstats' tables it says to run `ghstats
/// init` and creates nothing; once the tables exist it answers while another session holds the
/// lock `ensure_tables` takes (a job starting, or `init`), through read-only sessions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summary_creates_nothing_and_waits_for_no_write_lock() {
    use clap::Parser;
    let Some(db) = fresh_database().await else {
        return;
    };
    // A lock wait fails after 5 s instead of hanging: before reads stopped ensuring tables,
    // `summary` failed here with a lock timeout.
    let url = format!("{db}?options=-c%20lock_timeout%3D5000");
    let runner = ghstats::jobs::runner::Runner::new(
        ghstats::config::Cli::try_parse_from([
            "ghstats",
            "--org",
            "acme",
            "--storage-url",
            "memory://",
            "--warehouse-url",
            &url,
            "summary",
        ])
        .unwrap()
        .config,
        false,
    );
    let e = runner.summary().await.unwrap_err().to_string();
    assert!(
        e.contains("holds no ghstats tables; run `ghstats init`"),
        "{e}"
    );
    let (admin, conn) = tokio_postgres::connect(&db, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let tables: i64 = admin
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(tables, 0, "a read created tables");

    PostgresWarehouse::connect(&db)
        .await
        .unwrap()
        .ensure_tables()
        .await
        .unwrap();
    admin
        .execute("SELECT pg_advisory_lock(7391842)", &[])
        .await
        .unwrap();
    let s = runner.summary().await.unwrap();
    assert_eq!(s.warehouse["pull_requests"], 0);
    let wh = ghstats::warehouse::open_existing(&url.parse().unwrap())
        .await
        .unwrap();
    let e = wh
        .delete_repository("acme", "web")
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("read-only transaction"), "{e}");
    admin
        .execute("SELECT pg_advisory_unlock(7391842)", &[])
        .await
        .unwrap();
}

/// A database whose `repositories` table was made before the commits job (no
/// `last_commit_sha`/`last_commit_at`) gains the columns at `ensure_tables`, keeping its rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_repositories_table_gains_the_commit_columns() {
    let Some(url) = fresh_database().await else {
        return;
    };
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let old = &ghstats::warehouse::conformance::OLD_REPOSITORIES;
    client
        .batch_execute(&ghstats::warehouse::postgres::create_table_sql(old))
        .await
        .unwrap();
    client
        .batch_execute(&ghstats::warehouse::conformance::old_repository_insert(
            7,
            "repositories",
            "'2026-03-01T10:05:00Z'",
            "false",
        ))
        .await
        .unwrap();
    let wh = PostgresWarehouse::connect(&url).await.unwrap();
    ghstats::warehouse::conformance::an_old_repositories_table_gains_the_commit_columns(&wh, 7)
        .await
        .unwrap();
}
