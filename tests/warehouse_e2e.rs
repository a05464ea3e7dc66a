//! Collect from the simulator, load into SQLite, and compare every table to the ground truth
//! exactly; load again and nothing changes; change 50 pull requests, collect incrementally,
//! load, and compare again.

mod common;

use common::*;
use ghstats::jobs::load::{load, load_collection, LoadFilter};
use github_sim::{OrgSpec, SimOptions, Simulator};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_warehouse_equals_the_ground_truth_before_and_after_changes() {
    let sim = Simulator::start(&OrgSpec::new(ORG, 4, 400, 31), SimOptions::default(), 0)
        .await
        .unwrap();
    let (_dir, wh) = sqlite_warehouse().await;
    let lake = memory_lake();
    let client = fast_client(&sim.url(), &["t"]);

    let first = collect(&client, &lake, &options(everything(), &[])).await;
    let loaded = load_collection(&wh, &lake, &ORG.parse().unwrap(), &first.collection_id)
        .await
        .unwrap();
    assert_eq!(loaded.tables["pull_requests"].inserted, 400);
    assert_tables_eq(
        &warehouse_tables(&wh).await,
        &expected(&sim.world(), &everything(), &[]),
    );

    // Loading everything stored again changes nothing.
    let again = load(&wh, &lake, &ORG.parse().unwrap(), &LoadFilter::default())
        .await
        .unwrap();
    assert!(again.chunks > 0);
    for (t, l) in &again.tables {
        assert_eq!((l.inserted, l.updated, l.deleted), (0, 0, 0), "{t}");
    }
    assert_tables_eq(
        &warehouse_tables(&wh).await,
        &expected(&sim.world(), &everything(), &[]),
    );

    // 50 changes: new PRs, commits, force-pushes, reviews, edited and deleted comments.
    let report = sim.change(50, 8, None);
    assert!(
        report.deleted_comments > 0 && report.force_pushes > 0,
        "{report:?}"
    );
    let window = window_after(first.window.until).await;
    let inc = collect(&client, &lake, &options(window, &[])).await;
    let loaded = load_collection(&wh, &lake, &ORG.parse().unwrap(), &inc.collection_id)
        .await
        .unwrap();
    assert_eq!(
        loaded.tables["pull_requests"].inserted,
        report.new_prs as u64
    );
    assert_eq!(
        loaded.tables["pull_requests"].updated,
        (report.changed.len() - report.new_prs) as u64
    );
    let deleted: u64 = loaded.tables.values().map(|l| l.deleted).sum();
    assert!(
        deleted > 0,
        "deleted comments and force-pushed commits leave the warehouse"
    );
    assert_tables_eq(
        &warehouse_tables(&wh).await,
        &expected(&sim.world(), &everything(), &[]),
    );

    // Loading the first, older collection again brings nothing back.
    load_collection(&wh, &lake, &ORG.parse().unwrap(), &first.collection_id)
        .await
        .unwrap();
    assert_tables_eq(
        &warehouse_tables(&wh).await,
        &expected(&sim.world(), &everything(), &[]),
    );
}
