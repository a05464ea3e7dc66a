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

/// A warehouse whose `repositories` table was made before the commits job (no
/// `last_commit_sha`/`last_commit_at`) gains the columns at `ensure_tables`, keeping its rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_repositories_table_gains_the_commit_columns() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let old = &conformance::OLD_REPOSITORIES;
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(&ghstats::warehouse::sqlite::create_table_sql(old))
            .unwrap();
        conn.execute_batch(&conformance::old_repository_insert(
            7,
            "repositories",
            "'2026-03-01T10:05:00.000000Z'",
            "0",
        ))
        .unwrap();
        let columns: Vec<String> = conn
            .prepare("SELECT name FROM pragma_table_info('repositories')")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            !columns.iter().any(|c| c == "last_commit_sha"),
            "{columns:?}"
        );
    }
    let wh = SqliteWarehouse::open(&path).await.unwrap();
    conformance::an_old_repositories_table_gains_the_commit_columns(&wh, 7)
        .await
        .unwrap();
}
