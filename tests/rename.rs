//! A repository renamed on GitHub (same id, new name): collected before and after the rename,
//! every table holds each pull request, review, comment and commit once, under the current
//! name, and reloading every stored chunk (the old name's too) changes nothing. In SQLite,
//! PostgreSQL and the BigQuery emulator (those two skip without their servers).

mod common;

use common::*;
use ghstats::jobs::load::{load, load_collection, LoadFilter};
use ghstats::lake::checkpoint::Status;
use ghstats::warehouse::Warehouse;
use github_sim::{OrgSpec, SimOptions, Simulator};

const OLD: &str = "repo-001";
const NEW: &str = "repo-renamed";

/// Every table equals the ground truth under the current names, with no row twice.
async fn assert_true_once(wh: &dyn Warehouse, sim: &Simulator, when: &str) {
    let want = expected(&sim.world(), &everything(), &[]);
    let have = warehouse_tables(wh).await;
    assert_tables_eq(&have, &want);
    let counts = wh.row_counts().await.unwrap();
    for (table, rows) in &want {
        assert_eq!(
            counts.get(table).copied().unwrap_or(0),
            rows.len() as u64,
            "{when}: {table} holds a row twice"
        );
    }
    for (table, rows) in have.iter().filter(|_| when != "before the rename") {
        assert!(
            !rows.values().any(|r| r["repository"] == OLD),
            "{when}: {table} still names {OLD}"
        );
    }
}

async fn renamed_repository_is_stored_once_under_its_new_name(wh: &dyn Warehouse) {
    let sim = Simulator::start(&OrgSpec::new(ORG, 3, 150, 81), SimOptions::default(), 0)
        .await
        .unwrap();
    let lake = memory_lake();
    let org = ORG.parse().unwrap();
    let client = fast_client(&sim.url(), &["t"]);

    let first = collect(&client, &lake, &options(everything(), &[])).await;
    assert_eq!(first.status, Status::Completed);
    load_collection(wh, &lake, &org, &first.collection_id)
        .await
        .unwrap();
    assert_true_once(wh, &sim, "before the rename").await;

    // Renamed on GitHub; then some of its pull requests change.
    let id = sim.rename(OLD, NEW).expect("the simulator renames");
    assert_eq!(sim.world().repository(OLD).map(|(_, r)| r.id), Some(id));
    let changes = sim.change(15, 3, Some(NEW));
    assert!(!changes.changed.is_empty(), "{changes:?}");

    // An hourly window: only the changed pull requests come, under the new name; the
    // repository's other rows are stored under the old one until the load renames them.
    let window = window_after(first.window.until).await;
    let inc = collect(&client, &lake, &options(window, &[])).await;
    assert_eq!(inc.status, Status::Completed);
    load_collection(wh, &lake, &org, &inc.collection_id)
        .await
        .unwrap();
    assert_true_once(wh, &sim, "after an incremental collection").await;

    // A full backfill collects every pull request again under the new name.
    let full = collect(&client, &lake, &options(everything(), &[])).await;
    assert_eq!(full.status, Status::Completed);
    load_collection(wh, &lake, &org, &full.collection_id)
        .await
        .unwrap();
    assert_true_once(wh, &sim, "after a backfill").await;

    // The lake keeps chunks under both names; loading all of them again changes nothing.
    let stored = lake
        .list(&object_store::path::Path::from(ORG))
        .await
        .unwrap();
    for name in [OLD, NEW] {
        assert!(
            stored
                .iter()
                .any(|(p, _)| p.as_ref().starts_with(&format!("{ORG}/{name}/"))),
            "chunks under {name}"
        );
    }
    let again = load(wh, &lake, &org, &LoadFilter::default()).await.unwrap();
    for (t, l) in &again.tables {
        assert_eq!((l.inserted, l.deleted), (0, 0), "{t}: {l:?}");
    }
    assert_true_once(wh, &sim, "after reloading everything").await;
    // Only the old name's chunks, last: still nothing comes back.
    load(
        wh,
        &lake,
        &org,
        &LoadFilter {
            repo: Some(OLD.parse().unwrap()),
            ..LoadFilter::default()
        },
    )
    .await
    .unwrap();
    assert_true_once(wh, &sim, "after reloading the old name's chunks").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renamed_repository_is_stored_once_under_its_new_name_in_sqlite() {
    let (_dir, wh) = sqlite_warehouse().await;
    renamed_repository_is_stored_once_under_its_new_name(&wh).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renamed_repository_is_stored_once_under_its_new_name_in_postgres() {
    let Some(url) = fresh_database().await else {
        return;
    };
    let wh = ghstats::warehouse::postgres::PostgresWarehouse::connect(&url)
        .await
        .unwrap();
    wh.ensure_tables().await.unwrap();
    renamed_repository_is_stored_once_under_its_new_name(&wh).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renamed_repository_is_stored_once_under_its_new_name_in_bigquery() {
    let Some(target) = fresh_bigquery() else {
        return;
    };
    let wh = ghstats::warehouse::bigquery::BigQueryWarehouse::connect(&target)
        .await
        .unwrap();
    wh.init().await.unwrap();
    renamed_repository_is_stored_once_under_its_new_name(&wh).await;
}

/// `wipe` of a renamed repository (by either name) deletes its chunks under every name it had
/// and its rows, so a later `load` of everything brings none of it back; the other repository
/// stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wiping_a_renamed_repository_removes_it_under_every_name() {
    let sim = Simulator::start(&OrgSpec::new(ORG, 2, 60, 83), SimOptions::default(), 0)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        format!("GITHUB_ORG={ORG}\nGITHUB_TOKEN=t\nGITHUB_API_URL={}\nSTORAGE_URL=file://./lake\nWAREHOUSE_URL=sqlite://./wh.db\nLOG_FORMAT=json\n", sim.url()),
    )
    .unwrap();
    let run = |args: &[&str]| {
        let out =
            tokio::task::block_in_place(|| ghstats_bin(dir.path()).args(args).output()).unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let pull_requests = |run: &dyn Fn(&[&str]) -> serde_json::Value| {
        run(&["summary", "--json"])["warehouse"]["pull_requests"]
            .as_u64()
            .unwrap()
    };
    run(&["backfill", "--days", "400"]);
    let old = "repo-000";
    sim.rename(old, "repo-new").unwrap();
    run(&["backfill", "--days", "400"]);
    assert_eq!(pull_requests(&run), 60);
    // The lake holds the renamed repository's chunks under both names; by id they count once.
    let summary = run(&["summary", "--json"]);
    assert_eq!(summary["lake"]["pull_requests"], 60, "{summary}");
    let theirs = sim.world().repository(old).unwrap().1.pull_requests.len() as u64;
    // By the old name: both names' chunks and every row go.
    let wiped = run(&["wipe", "--repo", old, "--confirm", "--warehouse"]);
    assert!(
        wiped["warehouse_rows_deleted"].as_u64().unwrap() > theirs,
        "{wiped}"
    );
    for name in [old, "repo-new"] {
        assert!(
            !dir.path().join("lake").join(ORG).join(name).exists(),
            "chunks under {name} are left"
        );
    }
    assert!(dir.path().join("lake").join(ORG).join("repo-001").exists());
    run(&["load"]);
    assert_eq!(pull_requests(&run), 60 - theirs);
}
