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

/// A warehouse made by an earlier build (pull requests keyed by repository name, no
/// `repository_id`) is refused with what to do, not with an SQL error halfway through a load.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_of_an_earlier_build_are_refused_with_what_to_do() {
    use ghstats::warehouse::Warehouse;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(
            "CREATE TABLE pull_requests (organization TEXT NOT NULL, repository TEXT NOT NULL, \
             pr_number INTEGER NOT NULL, title TEXT, PRIMARY KEY (organization, repository, pr_number))",
        )
        .unwrap();
    let wh = SqliteWarehouse::open(&path).await.unwrap();
    let err = wh.ensure_tables().await.unwrap_err().to_string();
    assert!(
        err.contains("pull_requests")
            && err.contains("repository_id")
            && err.contains("ghstats load"),
        "{err}"
    );
}
