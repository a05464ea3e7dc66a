//! The metric views on known data, on every backend whose SQL defines them (SQLite always,
//! PostgreSQL and the BigQuery emulator when scripts/services.sh runs them): time to first review (author and bots
//! excluded), time to merge, size buckets, reviews per reviewer, weekly throughput and its
//! median.

mod common;

use ghstats::lake::{ChunkInfo, ChunkWriter, Lake};
use ghstats::warehouse::{sqlite::SqliteWarehouse, Warehouse};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

const ORG: &str = "views";

fn pr(
    number: u64,
    author: &str,
    created: &str,
    merged: Option<&str>,
    additions: u64,
    deletions: u64,
) -> Value {
    json!({
        "organization": ORG, "repository": "r", "repository_id": 1, "pr_number": number, "pr_id": number, "node_id": format!("PR_{number}"),
        "title": "t", "state": if merged.is_some() { "MERGED" } else { "OPEN" }, "draft": false, "author": author,
        "author_type": "User", "created_at": created, "updated_at": merged.unwrap_or(created), "closed_at": merged,
        "merged_at": merged, "merged": merged.is_some(), "merged_by": merged.map(|_| "lead"), "merged_by_type": merged.map(|_| "User"),
        "base_ref": "main", "head_ref": "f", "additions": additions, "deletions": deletions, "changed_files": 1, "labels": [],
        "size_label": null, "review_decision": null, "commit_count": 1, "review_count": 0, "comment_count": 0,
        "collected_at": "2026-04-01T00:00:00Z", "collection_id": "c",
    })
}

fn review(
    id: u64,
    number: u64,
    pr_updated: &str,
    reviewer: &str,
    kind: &str,
    state: &str,
    at: &str,
) -> Value {
    json!({
        "organization": ORG, "repository": "r", "repository_id": 1, "pr_number": number, "review_id": id, "node_id": format!("PRR_{id}"),
        "reviewer": reviewer, "reviewer_type": kind, "state": state, "submitted_at": at, "created_at": at, "updated_at": at,
        "comment_count": 0, "pr_updated_at": pr_updated,
        "collected_at": "2026-04-01T00:00:00Z", "collection_id": "c",
    })
}

async fn write(lake: &Lake, table: &'static str, rows: &[Value]) -> ChunkInfo {
    let mut w = ChunkWriter::new(
        lake.clone(),
        ORG.parse().unwrap(),
        "r".parse().unwrap(),
        "2026-04-01".into(),
        "20260401T000000Z-000000".into(),
        1000,
        BTreeMap::new(),
    );
    for r in rows {
        w.push(table, r).await.unwrap();
    }
    w.flush().await.unwrap().remove(0)
}

/// The backends to check: SQLite, and PostgreSQL and BigQuery (each in a new database or
/// dataset) when the test servers run.
async fn backends() -> Vec<(tempfile::TempDir, Box<dyn Warehouse>)> {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteWarehouse::open(&dir.path().join("v.db"))
        .await
        .unwrap();
    let mut out: Vec<(tempfile::TempDir, Box<dyn Warehouse>)> = vec![(dir, Box::new(sqlite))];
    if let Some(url) = common::fresh_database().await {
        let pg = ghstats::warehouse::postgres::PostgresWarehouse::connect(&url)
            .await
            .unwrap();
        out.push((tempfile::tempdir().unwrap(), Box::new(pg)));
    }
    if let Some(target) = common::fresh_bigquery() {
        let bq = ghstats::warehouse::bigquery::BigQueryWarehouse::connect(&target)
            .await
            .unwrap();
        bq.init().await.unwrap();
        out.push((tempfile::tempdir().unwrap(), Box::new(bq)));
    }
    for (_, wh) in &out {
        load_known_data(wh.as_ref()).await;
    }
    out
}

/// Timestamps as instants and numbers as numbers, whatever text form the backend gives them
/// (PostgreSQL's jsonb writes the float 2.0 as 2).
fn normalised(mut rows: Vec<Value>) -> Vec<Value> {
    for row in &mut rows {
        for v in row.as_object_mut().unwrap().values_mut() {
            if let Some(n) = v.as_f64() {
                *v = json!(n);
            } else if let Some(t) = v
                .as_str()
                .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
            {
                *v = json!(t
                    .with_timezone(&chrono::Utc)
                    .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true));
            }
        }
    }
    rows
}

async fn load_known_data(wh: &dyn Warehouse) {
    wh.ensure_tables().await.unwrap();
    let lake = Lake::new(Arc::new(object_store::memory::InMemory::new()), None);
    // Week of Monday 2026-03-02: PRs 1-3 opened, 1 and 2 merged (24 h and 36 h).
    // Week of Monday 2026-03-09: PR 4 opened and merged in 4 h.
    let prs = write(
        &lake,
        "pull_requests",
        &[
            pr(
                1,
                "alice",
                "2026-03-02T10:00:00Z",
                Some("2026-03-03T10:00:00Z"),
                5,
                3,
            ),
            pr(
                2,
                "bob",
                "2026-03-03T00:00:00Z",
                Some("2026-03-04T12:00:00Z"),
                100,
                0,
            ),
            pr(3, "carol", "2026-03-04T00:00:00Z", None, 1500, 500),
            pr(
                4,
                "dave",
                "2026-03-10T00:00:00Z",
                Some("2026-03-10T04:00:00Z"),
                30,
                10,
            ),
        ],
    )
    .await;
    let reviews = write(
        &lake,
        "reviews",
        &[
            // PR 1: the author's own review and a bot's come first; bob's at +2 h is the first that counts.
            review(
                11,
                1,
                "2026-03-03T10:00:00Z",
                "alice",
                "User",
                "COMMENTED",
                "2026-03-02T10:30:00Z",
            ),
            review(
                12,
                1,
                "2026-03-03T10:00:00Z",
                "dependabot[bot]",
                "Bot",
                "APPROVED",
                "2026-03-02T11:00:00Z",
            ),
            review(
                13,
                1,
                "2026-03-03T10:00:00Z",
                "bob",
                "User",
                "CHANGES_REQUESTED",
                "2026-03-02T12:00:00Z",
            ),
            review(
                14,
                1,
                "2026-03-03T10:00:00Z",
                "carol",
                "User",
                "APPROVED",
                "2026-03-02T13:00:00Z",
            ),
            review(
                21,
                2,
                "2026-03-04T12:00:00Z",
                "alice",
                "User",
                "APPROVED",
                "2026-03-03T06:00:00Z",
            ),
        ],
    )
    .await;
    wh.load(&lake, &[prs, reviews]).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pr_velocity_measures_first_review_merge_time_and_size() {
    for (_d, wh) in backends().await {
        let rows = wh
        .query("SELECT pr_number, first_review_at, hours_to_first_review, hours_to_merge, lines_changed, size_bucket FROM pr_velocity ORDER BY pr_number")
        .await
        .unwrap();
        assert_eq!(
            normalised(rows),
            normalised(vec![
                json!({"pr_number": 1, "first_review_at": "2026-03-02T12:00:00.000000Z", "hours_to_first_review": 2.0, "hours_to_merge": 24.0, "lines_changed": 8, "size_bucket": "XS"}),
                json!({"pr_number": 2, "first_review_at": "2026-03-03T06:00:00.000000Z", "hours_to_first_review": 6.0, "hours_to_merge": 36.0, "lines_changed": 100, "size_bucket": "M"}),
                json!({"pr_number": 3, "first_review_at": null, "hours_to_first_review": null, "hours_to_merge": null, "lines_changed": 2000, "size_bucket": "XL"}),
                json!({"pr_number": 4, "first_review_at": null, "hours_to_first_review": null, "hours_to_merge": 4.0, "lines_changed": 40, "size_bucket": "S"}),
            ]),
            "{}",
            wh.backend()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reviewer_load_counts_reviews_per_reviewer() {
    for (_d, wh) in backends().await {
        let rows = wh.query("SELECT reviewer, reviewer_type, reviews_given, prs_reviewed, approvals, changes_requested FROM reviewer_load ORDER BY reviewer").await.unwrap();
        assert_eq!(
            normalised(rows),
            normalised(vec![
                json!({"reviewer": "alice", "reviewer_type": "User", "reviews_given": 2, "prs_reviewed": 2, "approvals": 1, "changes_requested": 0}),
                json!({"reviewer": "bob", "reviewer_type": "User", "reviews_given": 1, "prs_reviewed": 1, "approvals": 0, "changes_requested": 1}),
                json!({"reviewer": "carol", "reviewer_type": "User", "reviews_given": 1, "prs_reviewed": 1, "approvals": 1, "changes_requested": 0}),
                json!({"reviewer": "dependabot[bot]", "reviewer_type": "Bot", "reviews_given": 1, "prs_reviewed": 1, "approvals": 1, "changes_requested": 0}),
            ]),
            "{}",
            wh.backend()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weekly_throughput_counts_opened_merged_and_the_median() {
    for (_d, wh) in backends().await {
        let rows = wh.query("SELECT week, prs_opened, prs_merged, median_hours_to_merge FROM weekly_throughput ORDER BY week").await.unwrap();
        assert_eq!(
            normalised(rows),
            normalised(vec![
                json!({"week": "2026-03-02", "prs_opened": 3, "prs_merged": 2, "median_hours_to_merge": 30.0}),
                json!({"week": "2026-03-09", "prs_opened": 1, "prs_merged": 1, "median_hours_to_merge": 4.0}),
            ]),
            "{}",
            wh.backend()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_must_be_read_only() {
    for (_d, wh) in backends().await {
        assert!(
            wh.query("DELETE FROM pull_requests").await.is_err(),
            "{}",
            wh.backend()
        );
        assert_eq!(wh.row_counts().await.unwrap()["pull_requests"], 4);
    }
}
