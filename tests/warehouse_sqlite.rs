//! The warehouse conformance suite against SQLite, one test per check.

use ghstats::warehouse::{conformance, sqlite::SqliteWarehouse};

async fn warehouse() -> (tempfile::TempDir, SqliteWarehouse) {
    let dir = tempfile::tempdir().unwrap();
    let wh = SqliteWarehouse::open(&dir.path().join("w.db"))
        .await
        .unwrap();
    (dir, wh)
}

macro_rules! conformance_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let (_dir, wh) = warehouse().await;
                conformance::$name(&wh).await.unwrap();
            }
        )*
    };
}

conformance_tests!(
    ensure_tables_is_repeatable,
    merge_is_idempotent,
    newest_version_wins_whatever_the_order,
    empty_load_is_a_noop,
    deleting_a_repository_leaves_the_others,
    unicode_and_long_text_survive,
    a_newer_snapshot_replaces_the_children_of_older_ones,
    a_bad_chunk_loads_nothing,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_checks_pass_on_one_shared_warehouse() {
    let (_dir, wh) = warehouse().await;
    conformance::run_all(&wh).await.unwrap();
}
