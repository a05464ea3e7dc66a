//! The warehouse conformance suite against SQLite, one test per check.

use ghstats::warehouse::{conformance, sqlite::SqliteWarehouse};

async fn warehouse() -> (tempfile::TempDir, SqliteWarehouse) {
    let dir = tempfile::tempdir().unwrap();
    let wh = SqliteWarehouse::open(&dir.path().join("w.db"))
        .await
        .unwrap();
    (dir, wh)
}

async fn setup() -> Option<(tempfile::TempDir, SqliteWarehouse)> {
    Some(warehouse().await)
}

ghstats::warehouse_conformance_tests!(setup());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_checks_pass_on_one_shared_warehouse() {
    let (_dir, wh) = warehouse().await;
    conformance::run_all(&wh).await.unwrap();
}
