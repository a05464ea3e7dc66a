//! The conformance suite every warehouse backend passes: each check takes `&dyn Warehouse`,
//! writes its own chunks to an in-memory lake under a random organization (so checks can share
//! one warehouse), and returns an error naming what did not hold.

use super::{StarsLoad, Warehouse, WarehouseError};
use crate::lake::{ChunkInfo, ChunkWriter, Lake};
use crate::stars::RepoStar;
use anyhow::{ensure, Context};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Every check, by name, for a backend's test to run one by one.
pub async fn run_all(wh: &dyn Warehouse) -> anyhow::Result<()> {
    ensure_tables_is_repeatable(wh)
        .await
        .context("ensure_tables_is_repeatable")?;
    merge_is_idempotent(wh)
        .await
        .context("merge_is_idempotent")?;
    newest_version_wins_whatever_the_order(wh)
        .await
        .context("newest_version_wins_whatever_the_order")?;
    empty_load_is_a_noop(wh)
        .await
        .context("empty_load_is_a_noop")?;
    deleting_a_repository_leaves_the_others(wh)
        .await
        .context("deleting_a_repository_leaves_the_others")?;
    unicode_and_long_text_survive(wh)
        .await
        .context("unicode_and_long_text_survive")?;
    a_newer_snapshot_replaces_the_children_of_older_ones(wh)
        .await
        .context("a_newer_snapshot_replaces_the_children_of_older_ones")?;
    a_bad_chunk_loads_nothing(wh)
        .await
        .context("a_bad_chunk_loads_nothing")?;
    a_renamed_repository_keeps_one_row_per_id_under_its_current_name(wh)
        .await
        .context("a_renamed_repository_keeps_one_row_per_id_under_its_current_name")?;
    chunks_without_repository_ids_load_under_their_repositorys_id(wh)
        .await
        .context("chunks_without_repository_ids_load_under_their_repositorys_id")?;
    every_text_column_takes_nul_and_stores_it_removed(wh)
        .await
        .context("every_text_column_takes_nul_and_stores_it_removed")?;
    a_newer_collection_of_the_same_snapshot_reconciles_children(wh)
        .await
        .context("a_newer_collection_of_the_same_snapshot_reconciles_children")?;
    a_stars_crawl_loads_the_snapshot_and_the_history(wh)
        .await
        .context("a_stars_crawl_loads_the_snapshot_and_the_history")?;
    loading_a_stars_crawl_twice_changes_nothing(wh)
        .await
        .context("loading_a_stars_crawl_twice_changes_nothing")?;
    a_newer_crawl_adds_history_only_where_the_count_changed(wh)
        .await
        .context("a_newer_crawl_adds_history_only_where_the_count_changed")?;
    an_older_crawl_loaded_late_never_rewrites_the_snapshot(wh)
        .await
        .context("an_older_crawl_loaded_late_never_rewrites_the_snapshot")?;
    star_history_is_append_only(wh)
        .await
        .context("star_history_is_append_only")?;
    a_bad_stars_chunk_loads_nothing(wh)
        .await
        .context("a_bad_stars_chunk_loads_nothing")?;
    commit_months_load_is_idempotent(wh)
        .await
        .context("commit_months_load_is_idempotent")?;
    a_month_loaded_again_replaces_its_rows(wh)
        .await
        .context("a_month_loaded_again_replaces_its_rows")?;
    a_month_with_no_objects_is_emptied(wh)
        .await
        .context("a_month_with_no_objects_is_emptied")?;
    other_months_and_repositories_are_untouched(wh)
        .await
        .context("other_months_and_repositories_are_untouched")?;
    a_pull_request_load_keeps_last_commit_sha(wh)
        .await
        .context("a_pull_request_load_keeps_last_commit_sha")?;
    parent_commits_round_trip(wh)
        .await
        .context("parent_commits_round_trip")?;
    null_and_empty_text_are_kept_apart(wh)
        .await
        .context("null_and_empty_text_are_kept_apart")?;
    odd_text_in_commits_survives(wh)
        .await
        .context("odd_text_in_commits_survives")?;
    a_row_of_another_month_fails_the_load_and_changes_nothing(wh)
        .await
        .context("a_row_of_another_month_fails_the_load_and_changes_nothing")?;
    Ok(())
}

/// One `#[tokio::test]` per check, for a backend's test file. `$setup` is an async expression
/// giving `Some((guard, warehouse))`, the guard kept alive for the test (a temporary
/// directory, say), or `None` when the backend's server is absent and the test is skipped.
#[macro_export]
macro_rules! warehouse_conformance_tests {
    ($setup:expr) => {
        $crate::warehouse_conformance_tests!(@each $setup;
            ensure_tables_is_repeatable,
            merge_is_idempotent,
            newest_version_wins_whatever_the_order,
            empty_load_is_a_noop,
            deleting_a_repository_leaves_the_others,
            unicode_and_long_text_survive,
            a_newer_snapshot_replaces_the_children_of_older_ones,
            a_bad_chunk_loads_nothing,
            a_renamed_repository_keeps_one_row_per_id_under_its_current_name,
            chunks_without_repository_ids_load_under_their_repositorys_id,
            every_text_column_takes_nul_and_stores_it_removed,
            a_newer_collection_of_the_same_snapshot_reconciles_children,
            a_stars_crawl_loads_the_snapshot_and_the_history,
            loading_a_stars_crawl_twice_changes_nothing,
            a_newer_crawl_adds_history_only_where_the_count_changed,
            an_older_crawl_loaded_late_never_rewrites_the_snapshot,
            star_history_is_append_only,
            a_bad_stars_chunk_loads_nothing,
            commit_months_load_is_idempotent,
            a_month_loaded_again_replaces_its_rows,
            a_month_with_no_objects_is_emptied,
            other_months_and_repositories_are_untouched,
            a_pull_request_load_keeps_last_commit_sha,
            parent_commits_round_trip,
            null_and_empty_text_are_kept_apart,
            odd_text_in_commits_survives,
            a_row_of_another_month_fails_the_load_and_changes_nothing);
    };
    (@each $setup:expr; $($name:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some((_guard, wh)) = $setup.await else { return };
                $crate::warehouse::conformance::$name(&wh).await.unwrap();
            }
        )*
    };
}

struct Fixture {
    lake: Lake,
    org: String,
    seq: u32,
    /// Repository ids of this fixture start here: checks share a warehouse, and rows are
    /// keyed by repository id.
    id_base: u64,
}

fn ts(minute: u32) -> String {
    format!("2026-03-01T10:{minute:02}:00Z")
}

impl Fixture {
    fn new() -> Self {
        let org = format!("conf-{:08x}", rand::random::<u32>());
        Fixture {
            lake: Lake::new(Arc::new(object_store::memory::InMemory::new()), None),
            org,
            seq: 0,
            id_base: u64::from(rand::random::<u32>()) << 16,
        }
    }

    /// The id of the repository a check calls `repo` (a renamed one keeps its id: see
    /// [`Fixture::repo_row`]).
    fn repo_id(&self, repo: &str) -> u64 {
        self.id_base + repo.bytes().map(u64::from).sum::<u64>()
    }

    /// A `repositories` row: repository `id` called `name` as collected at minute `collected`.
    fn repo_row(&self, id: u64, name: &str, collected: u32) -> Value {
        json!({
            "organization": self.org, "repository": name, "repo_id": id, "node_id": format!("R_{id}"),
            "full_name": format!("{}/{name}", self.org), "is_archived": false, "is_fork": false, "is_private": false,
            "default_branch": "main", "created_at": ts(0), "updated_at": ts(collected), "pushed_at": null,
            "collected_at": ts(collected), "collection_id": format!("c{collected:02}"),
        })
    }

    /// `row` as collected from repository `id` while it was called `name`.
    fn named(&self, mut row: Value, id: u64, name: &str) -> Value {
        row["repository_id"] = json!(id);
        row["repository"] = json!(name);
        row
    }

    fn pr(&self, repo: &str, number: u64, updated: u32, collected: u32, title: &str) -> Value {
        json!({
            "organization": self.org, "repository": repo, "repository_id": self.repo_id(repo), "pr_number": number, "pr_id": 1000 + number, "node_id": format!("PR_{number}"),
            "title": title, "state": "OPEN", "draft": false, "author": "ada", "author_type": "User",
            "created_at": ts(0), "updated_at": ts(updated), "closed_at": null, "merged_at": null, "merged": false,
            "merged_by": null, "merged_by_type": null, "base_ref": "main", "head_ref": "f", "additions": 10, "deletions": 2,
            "changed_files": 1, "labels": ["bug", "size/S"], "size_label": "S", "review_decision": null,
            "commit_count": 1, "review_count": 0, "comment_count": 0,
            "collected_at": ts(collected), "collection_id": format!("c{collected:02}"),
        })
    }

    fn commit(&self, repo: &str, number: u64, sha: &str, pr_updated: u32, collected: u32) -> Value {
        json!({
            "organization": self.org, "repository": repo, "repository_id": self.repo_id(repo), "pr_number": number, "sha": sha, "author": "ada", "author_name": "Ada",
            "authored_at": ts(0), "committer": null, "committer_name": "GitHub", "committed_at": ts(1), "additions": 1,
            "deletions": 0, "message_headline": "change", "pr_updated_at": ts(pr_updated),
            "collected_at": ts(collected), "collection_id": format!("c{collected:02}"),
        })
    }

    fn comment(
        &self,
        repo: &str,
        number: u64,
        id: u64,
        updated: u32,
        pr_updated: u32,
        collected: u32,
    ) -> Value {
        json!({
            "organization": self.org, "repository": repo, "repository_id": self.repo_id(repo), "pr_number": number, "comment_id": id, "node_id": format!("IC_{id}"),
            "author": "ghost", "author_type": "Ghost", "created_at": ts(0), "updated_at": ts(updated),
            "pr_updated_at": ts(pr_updated), "collected_at": ts(collected), "collection_id": format!("c{collected:02}"),
        })
    }

    /// Writes `rows` of `table` for `repo` as one chunk.
    async fn chunk(
        &mut self,
        repo: &str,
        table: &'static str,
        rows: &[Value],
    ) -> anyhow::Result<ChunkInfo> {
        self.seq += 1;
        let next = BTreeMap::from([(table.to_string(), self.seq)]);
        let mut w = ChunkWriter::new(
            self.lake.clone(),
            self.org.parse()?,
            repo.parse()?,
            "2026-03-01".into(),
            "20260301T100000Z-000000".into(),
            1_000_000,
            next,
        );
        for r in rows {
            w.push(table, r).await?;
        }
        w.flush()
            .await?
            .into_iter()
            .next()
            .context("a chunk was written")
    }

    async fn rows(&self, wh: &dyn Warehouse, table: &str) -> anyhow::Result<Vec<Value>> {
        Ok(wh.fetch_rows(table, &self.org).await?)
    }
}

pub async fn ensure_tables_is_repeatable(wh: &dyn Warehouse) -> anyhow::Result<()> {
    wh.ensure_tables().await?;
    let mut f = Fixture::new();
    let c = f
        .chunk("r", "pull_requests", &[f.pr("r", 1, 5, 5, "one")])
        .await?;
    wh.load(&f.lake, &[c]).await?;
    wh.ensure_tables().await?;
    ensure!(
        f.rows(wh, "pull_requests").await?.len() == 1,
        "ensure_tables lost rows"
    );
    // What `open_existing` checks before a read-only job: nothing is missing now.
    let missing = wh.missing_tables().await?;
    ensure!(
        missing.is_empty(),
        "tables missing after ensure_tables: {missing:?}"
    );
    Ok(())
}

pub async fn merge_is_idempotent(wh: &dyn Warehouse) -> anyhow::Result<()> {
    wh.ensure_tables().await?;
    let mut f = Fixture::new();
    let prs = f
        .chunk(
            "r",
            "pull_requests",
            &[f.pr("r", 1, 5, 5, "one"), f.pr("r", 2, 6, 5, "two")],
        )
        .await?;
    let commits = f
        .chunk(
            "r",
            "pr_commits",
            &[f.commit("r", 1, "aaa", 5, 5), f.commit("r", 2, "bbb", 6, 5)],
        )
        .await?;
    let chunks = [prs, commits];
    let first = wh.load(&f.lake, &chunks).await?;
    ensure!(
        first.get("pull_requests").map(|l| l.inserted) == Some(2),
        "first load: {first:?}"
    );
    let before = (
        f.rows(wh, "pull_requests").await?,
        f.rows(wh, "pr_commits").await?,
    );
    let second = wh.load(&f.lake, &chunks).await?;
    for (t, l) in &second {
        ensure!(
            l.inserted == 0 && l.updated == 0 && l.deleted == 0,
            "reloading changed {t}: {l:?}"
        );
    }
    let after = (
        f.rows(wh, "pull_requests").await?,
        f.rows(wh, "pr_commits").await?,
    );
    ensure!(
        before == after,
        "reloading the same chunks changed the rows"
    );
    Ok(())
}

pub async fn newest_version_wins_whatever_the_order(wh: &dyn Warehouse) -> anyhow::Result<()> {
    wh.ensure_tables().await?;
    let title = |rows: Vec<Value>| {
        rows.first()
            .and_then(|r| r["title"].as_str().map(str::to_string))
    };
    // Separate loads, newest first: the older never overwrites.
    let mut f = Fixture::new();
    let old = f
        .chunk("r", "pull_requests", &[f.pr("r", 1, 5, 5, "old")])
        .await?;
    let new = f
        .chunk("r", "pull_requests", &[f.pr("r", 1, 9, 9, "new")])
        .await?;
    wh.load(&f.lake, std::slice::from_ref(&new)).await?;
    let r = wh.load(&f.lake, std::slice::from_ref(&old)).await?;
    ensure!(
        r.get("pull_requests").map(|l| l.updated).unwrap_or(0) == 0,
        "an older version counted as an update: {r:?}"
    );
    ensure!(
        title(f.rows(wh, "pull_requests").await?).as_deref() == Some("new"),
        "older chunk overwrote a newer row"
    );
    // One load holding both versions, in either order.
    for order in [[old.clone(), new.clone()], [new.clone(), old.clone()]] {
        let mut g = Fixture::new();
        let chunks: Vec<ChunkInfo> = {
            let mut v = Vec::new();
            for c in &order {
                let title = if c.path == old.path { "old" } else { "new" };
                let (u, col) = if title == "old" { (5, 5) } else { (9, 9) };
                v.push(
                    g.chunk("r", "pull_requests", &[g.pr("r", 1, u, col, title)])
                        .await?,
                );
            }
            v
        };
        wh.load(&g.lake, &chunks).await?;
        ensure!(
            title(g.rows(wh, "pull_requests").await?).as_deref() == Some("new"),
            "the older staged copy won"
        );
    }
    // Same updated_at: the later collection wins.
    let mut h = Fixture::new();
    let a = h
        .chunk("r", "pull_requests", &[h.pr("r", 1, 5, 5, "first look")])
        .await?;
    let b = h
        .chunk("r", "pull_requests", &[h.pr("r", 1, 5, 7, "second look")])
        .await?;
    wh.load(&h.lake, &[a]).await?;
    let r = wh.load(&h.lake, &[b]).await?;
    ensure!(
        r.get("pull_requests").map(|l| l.updated) == Some(1),
        "{r:?}"
    );
    ensure!(title(h.rows(wh, "pull_requests").await?).as_deref() == Some("second look"));
    Ok(())
}

pub async fn empty_load_is_a_noop(wh: &dyn Warehouse) -> anyhow::Result<()> {
    wh.ensure_tables().await?;
    let before = wh.row_counts().await?;
    let f = Fixture::new();
    let r = wh.load(&f.lake, &[]).await?;
    ensure!(
        r.values()
            .all(|l| l.inserted == 0 && l.updated == 0 && l.deleted == 0),
        "{r:?}"
    );
    ensure!(
        wh.row_counts().await? == before,
        "an empty load changed row counts"
    );
    Ok(())
}

pub async fn deleting_a_repository_leaves_the_others(wh: &dyn Warehouse) -> anyhow::Result<()> {
    wh.ensure_tables().await?;
    let mut f = Fixture::new();
    let a = f
        .chunk(
            "a",
            "pull_requests",
            &[f.pr("a", 1, 5, 5, "a1"), f.pr("a", 2, 5, 5, "a2")],
        )
        .await?;
    let ac = f
        .chunk("a", "pr_commits", &[f.commit("a", 1, "x", 5, 5)])
        .await?;
    let b = f
        .chunk("b", "pull_requests", &[f.pr("b", 1, 5, 5, "b1")])
        .await?;
    wh.load(&f.lake, &[a, ac, b]).await?;
    let n = wh.delete_repository(&f.org, "a").await?;
    ensure!(n == 3, "deleted {n} rows, expected 3");
    let left = f.rows(wh, "pull_requests").await?;
    ensure!(left.len() == 1 && left[0]["repository"] == "b", "{left:?}");
    ensure!(f.rows(wh, "pr_commits").await?.is_empty());
    Ok(())
}

pub async fn unicode_and_long_text_survive(wh: &dyn Warehouse) -> anyhow::Result<()> {
    wh.ensure_tables().await?;
    let mut f = Fixture::new();
    let long = "ä✓🚀 修复 إصلاح ".repeat(8_000);
    let titles = [
        "✨ New dashboard 🚀",
        "修复登录问题",
        "إصلاح خطأ",
        "quote ' and \" and \\ and \n newline",
        long.as_str(),
    ];
    let rows: Vec<Value> = titles
        .iter()
        .enumerate()
        .map(|(i, t)| f.pr("r", i as u64 + 1, 5, 5, t))
        .collect();
    let c = f.chunk("r", "pull_requests", &rows).await?;
    wh.load(&f.lake, &[c]).await?;
    let stored = f.rows(wh, "pull_requests").await?;
    let got: Vec<&str> = stored.iter().filter_map(|r| r["title"].as_str()).collect();
    ensure!(got == titles, "text changed on the way through");
    ensure!(
        stored[0]["labels"] == json!(["bug", "size/S"]),
        "labels: {}",
        stored[0]["labels"]
    );
    ensure!(
        stored[0]["created_at"] == "2026-03-01T10:00:00Z",
        "timestamps: {}",
        stored[0]["created_at"]
    );
    ensure!(stored[0]["draft"] == false && stored[0]["merged_at"].is_null());
    Ok(())
}

pub async fn a_newer_snapshot_replaces_the_children_of_older_ones(
    wh: &dyn Warehouse,
) -> anyhow::Result<()> {
    wh.ensure_tables().await?;
    let mut f = Fixture::new();
    // Snapshot at minute 5: commits a, b; comment 1.
    let v1 = vec![
        f.chunk("r", "pull_requests", &[f.pr("r", 1, 5, 5, "v1")])
            .await?,
        f.chunk(
            "r",
            "pr_commits",
            &[f.commit("r", 1, "a", 5, 5), f.commit("r", 1, "b", 5, 5)],
        )
        .await?,
        f.chunk("r", "issue_comments", &[f.comment("r", 1, 1, 4, 5, 5)])
            .await?,
    ];
    // Snapshot at minute 9: b was force-pushed away, c added; comment 1 deleted, 2 added.
    let v2 = vec![
        f.chunk("r", "pull_requests", &[f.pr("r", 1, 9, 9, "v2")])
            .await?,
        f.chunk(
            "r",
            "pr_commits",
            &[f.commit("r", 1, "a", 9, 9), f.commit("r", 1, "c", 9, 9)],
        )
        .await?,
        f.chunk("r", "issue_comments", &[f.comment("r", 1, 2, 8, 9, 9)])
            .await?,
    ];
    wh.load(&f.lake, &v1).await?;
    let r = wh.load(&f.lake, &v2).await?;
    let shas = |rows: Vec<Value>| {
        rows.iter()
            .filter_map(|r| r["sha"].as_str().map(str::to_string))
            .collect::<Vec<_>>()
    };
    let ids = |rows: Vec<Value>| {
        rows.iter()
            .filter_map(|r| r["comment_id"].as_i64())
            .collect::<Vec<_>>()
    };
    ensure!(
        shas(f.rows(wh, "pr_commits").await?) == ["a", "c"],
        "commits after the force-push"
    );
    ensure!(
        ids(f.rows(wh, "issue_comments").await?) == [2],
        "comments after the deletion"
    );
    ensure!(r.get("pr_commits").map(|l| l.deleted) == Some(1), "{r:?}");
    ensure!(
        r.get("issue_comments").map(|l| l.deleted) == Some(1),
        "{r:?}"
    );
    // The older snapshot, loaded late, brings nothing back.
    wh.load(&f.lake, &v1).await?;
    ensure!(
        shas(f.rows(wh, "pr_commits").await?) == ["a", "c"],
        "an old snapshot brought back a commit"
    );
    ensure!(
        ids(f.rows(wh, "issue_comments").await?) == [2],
        "an old snapshot brought back a deleted comment"
    );
    ensure!(f.rows(wh, "pull_requests").await?[0]["title"] == "v2");
    Ok(())
}

pub async fn a_bad_chunk_loads_nothing(wh: &dyn Warehouse) -> anyhow::Result<()> {
    wh.ensure_tables().await?;
    let mut f = Fixture::new();
    let good = f
        .chunk("r", "pull_requests", &[f.pr("r", 1, 5, 5, "fine")])
        .await?;
    let mut broken = f.pr("r", 2, 5, 5, "broken");
    broken.as_object_mut().context("object")?.remove("pr_id");
    let bad = f.chunk("r", "pull_requests", &[broken]).await?;
    match wh.load(&f.lake, &[good.clone(), bad]).await {
        Err(WarehouseError::BadChunk { message, .. }) => {
            ensure!(message.contains("pr_id"), "{message}")
        }
        other => anyhow::bail!("expected a bad-chunk error, got {other:?}"),
    }
    ensure!(
        f.rows(wh, "pull_requests").await?.is_empty(),
        "a failed load left rows behind"
    );
    let missing = ChunkInfo {
        path: format!("{}/r/pull_requests/2026-03-01/none.ndjson.gz", f.org),
        ..good
    };
    let path = missing.path.clone();
    match wh.load(&f.lake, &[missing]).await {
        // Named as missing, so the load job can skip it and say so.
        Err(WarehouseError::MissingChunk { path: p }) => ensure!(p == path, "{p}"),
        other => anyhow::bail!("a missing chunk must fail the load as missing, got {other:?}"),
    }
    Ok(())
}

/// A repository renamed on GitHub (same id): rows collected under the old name and under the
/// new one are one row per key, all under the new name, whichever order the chunks load in;
/// reloading the old name's chunks brings back neither the old name nor a duplicate.
pub async fn a_renamed_repository_keeps_one_row_per_id_under_its_current_name(
    wh: &dyn Warehouse,
) -> anyhow::Result<()> {
    wh.ensure_tables().await?;
    let mut f = Fixture::new();
    let id = f.repo_id("web");
    let other = f.repo_id("api");
    // Before the rename: PRs 1 and 2 of "web", and "api" beside it.
    let old_repo = f
        .chunk(
            "web",
            "repositories",
            &[f.repo_row(id, "web", 5), f.repo_row(other, "api", 5)],
        )
        .await?;
    let old_prs = f
        .chunk(
            "web",
            "pull_requests",
            &[
                f.named(f.pr("web", 1, 5, 5, "one"), id, "web"),
                f.named(f.pr("web", 2, 5, 5, "two"), id, "web"),
                f.pr("api", 1, 5, 5, "api one"),
            ],
        )
        .await?;
    let old_comments = f
        .chunk(
            "web",
            "issue_comments",
            &[f.named(f.comment("web", 1, 77, 5, 5, 5), id, "web")],
        )
        .await?;
    // After the rename to "web-app": PR 1 changed, PR 3 is new; PR 2 is not in the window.
    let new_repo = f
        .chunk("web-app", "repositories", &[f.repo_row(id, "web-app", 10)])
        .await?;
    let new_prs = f
        .chunk(
            "web-app",
            "pull_requests",
            &[
                f.named(f.pr("web", 1, 9, 10, "one v2"), id, "web-app"),
                f.named(f.pr("web", 3, 9, 10, "three"), id, "web-app"),
            ],
        )
        .await?;
    let new_comments = f
        .chunk(
            "web-app",
            "issue_comments",
            &[f.named(f.comment("web", 1, 77, 5, 9, 10), id, "web-app")],
        )
        .await?;
    let old = [old_repo, old_prs, old_comments];
    let new = [new_repo, new_prs, new_comments];
    let check = |prs: Vec<Value>, comments: Vec<Value>, when: &str| -> anyhow::Result<()> {
        let mut web: Vec<(u64, String, String)> = prs
            .iter()
            .filter(|r| r["repository_id"] == json!(id))
            .map(|r| {
                (
                    r["pr_number"].as_u64().unwrap_or_default(),
                    r["repository"].as_str().unwrap_or_default().to_string(),
                    r["title"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        web.sort();
        let want = [
            (1, "web-app", "one v2"),
            (2, "web-app", "two"),
            (3, "web-app", "three"),
        ]
        .map(|(n, r, t)| (n, r.to_string(), t.to_string()));
        ensure!(
            web == want,
            "{when}: pull requests of the renamed repository: {web:?}"
        );
        ensure!(
            prs.iter()
                .any(|r| r["repository"] == "api" && r["repository_id"] == json!(other)),
            "{when}: the other repository keeps its name: {prs:?}"
        );
        ensure!(
            comments.len() == 1 && comments[0]["repository"] == "web-app",
            "{when}: comments: {comments:?}"
        );
        Ok(())
    };
    wh.load(&f.lake, &old).await?;
    wh.load(&f.lake, &new).await?;
    check(
        f.rows(wh, "pull_requests").await?,
        f.rows(wh, "issue_comments").await?,
        "after the rename",
    )?;
    // The old name's chunks again, then everything at once: nothing changes.
    wh.load(&f.lake, &old).await?;
    check(
        f.rows(wh, "pull_requests").await?,
        f.rows(wh, "issue_comments").await?,
        "after reloading the old chunks",
    )?;
    let all: Vec<ChunkInfo> = old.iter().chain(new.iter()).cloned().collect();
    wh.load(&f.lake, &all).await?;
    check(
        f.rows(wh, "pull_requests").await?,
        f.rows(wh, "issue_comments").await?,
        "after reloading everything",
    )?;
    let repos = f.rows(wh, "repositories").await?;
    ensure!(
        repos
            .iter()
            .filter(|r| r["repo_id"] == json!(id))
            .map(|r| r["repository"].clone())
            .collect::<Vec<_>>()
            == [json!("web-app")],
        "one repositories row under the new name: {repos:?}"
    );
    Ok(())
}

/// Chunks written before rows carried `repository_id` still load: their rows take the id of
/// their repository's row in the same collection, or else of the stored row of that name.
pub async fn chunks_without_repository_ids_load_under_their_repositorys_id(
    wh: &dyn Warehouse,
) -> anyhow::Result<()> {
    wh.ensure_tables().await?;
    let mut f = Fixture::new();
    let id = f.repo_id("legacy") + 7;
    let strip = |mut v: Value| {
        if let Some(o) = v.as_object_mut() {
            o.remove("repository_id");
        }
        v
    };
    let repo = f
        .chunk("legacy", "repositories", &[f.repo_row(id, "legacy", 5)])
        .await?;
    let prs = f
        .chunk(
            "legacy",
            "pull_requests",
            &[strip(f.pr("legacy", 1, 5, 5, "one"))],
        )
        .await?;
    let comments = f
        .chunk(
            "legacy",
            "issue_comments",
            &[strip(f.comment("legacy", 1, 31, 5, 5, 5))],
        )
        .await?;
    wh.load(&f.lake, &[repo, prs, comments]).await?;
    // Alone, from a later collection: the stored repositories row of that name gives the id.
    let later = f
        .chunk(
            "legacy",
            "pull_requests",
            &[strip(f.pr("legacy", 2, 7, 7, "two"))],
        )
        .await?;
    wh.load(&f.lake, &[later]).await?;
    let prs = f.rows(wh, "pull_requests").await?;
    let ids: Vec<(Value, Value)> = prs
        .iter()
        .map(|r| (r["pr_number"].clone(), r["repository_id"].clone()))
        .collect();
    ensure!(
        ids == [(json!(1), json!(id)), (json!(2), json!(id))],
        "pull requests: {ids:?}"
    );
    let comments = f.rows(wh, "issue_comments").await?;
    ensure!(
        comments.len() == 1 && comments[0]["repository_id"] == json!(id),
        "{comments:?}"
    );
    Ok(())
}

/// U+0000 in every text column of every table (keys, labels and nullable columns included):
/// the load succeeds (PostgreSQL refuses it in `jsonb` and `text` with 22P05) and each value is
/// stored with it removed. Chunks written before rows dropped U+0000 may hold it.
pub async fn every_text_column_takes_nul_and_stores_it_removed(
    wh: &dyn Warehouse,
) -> anyhow::Result<()> {
    use crate::tables::{ColumnType, Mode};
    wh.ensure_tables().await?;
    let mut f = Fixture::new();
    let (head, tail) = f.org.split_at(5);
    let org_with_nul = format!("{head}\u{0}{tail}\u{0}");
    let repo_id = 1 + rand::random::<u32>() as u64;
    let mut chunks = Vec::new();
    for t in crate::tables::ALL {
        let mut row = serde_json::Map::new();
        for c in t.columns {
            let v = match (c.mode, c.ty, c.name) {
                (Mode::Repeated, _, _) => json!(["a\u{0}b", "\u{0}", "✓\u{0}"]),
                (_, ColumnType::String, "organization") => json!(org_with_nul),
                (_, ColumnType::String, "repository") => json!("r\u{0}"),
                (_, ColumnType::String, name) => json!(format!("\u{0}{name} ✓\u{0}ok\u{0}")),
                (_, ColumnType::Int64, "repo_id") => json!(repo_id),
                (_, ColumnType::Int64, _) => json!(1),
                (_, ColumnType::Bool, _) => json!(false),
                (_, ColumnType::Timestamp, _) => json!(ts(5)),
            };
            row.insert(c.name.to_string(), v);
        }
        chunks.push(f.chunk("r", t.name, &[Value::Object(row)]).await?);
    }
    wh.load(&f.lake, &chunks).await?;
    for t in crate::tables::ALL {
        let rows = f.rows(wh, t.name).await?;
        ensure!(rows.len() == 1, "{}: {} rows stored", t.name, rows.len());
        let row = &rows[0];
        for c in t.columns {
            let want = match (c.mode, c.ty, c.name) {
                (Mode::Repeated, _, _) => json!(["ab", "", "✓"]),
                (_, ColumnType::String, "organization") => json!(f.org),
                (_, ColumnType::String, "repository") => json!("r"),
                (_, ColumnType::String, name) => json!(format!("{name} ✓ok")),
                _ => continue,
            };
            ensure!(
                row[c.name] == want,
                "{}.{}: stored {}, expected {want}",
                t.name,
                c.name,
                row[c.name]
            );
        }
    }
    Ok(())
}

/// GitHub does not bump a pull request's `updatedAt` when a comment on it is deleted. A snapshot
/// with the same `updatedAt` from a later collection reconciles the children all the same; the
/// same or an older collection, loaded again, changes nothing.
pub async fn a_newer_collection_of_the_same_snapshot_reconciles_children(
    wh: &dyn Warehouse,
) -> anyhow::Result<()> {
    wh.ensure_tables().await?;
    let mut f = Fixture::new();
    // Collected at minute 5: commits a, b; comments 1, 2.
    let first = vec![
        f.chunk("r", "pull_requests", &[f.pr("r", 1, 5, 5, "same")])
            .await?,
        f.chunk(
            "r",
            "pr_commits",
            &[f.commit("r", 1, "a", 5, 5), f.commit("r", 1, "b", 5, 5)],
        )
        .await?,
        f.chunk(
            "r",
            "issue_comments",
            &[f.comment("r", 1, 1, 4, 5, 5), f.comment("r", 1, 2, 4, 5, 5)],
        )
        .await?,
    ];
    // Collected again at minute 7, same updatedAt: comment 1 and commit b are gone.
    let second = vec![
        f.chunk("r", "pull_requests", &[f.pr("r", 1, 5, 7, "same")])
            .await?,
        f.chunk("r", "pr_commits", &[f.commit("r", 1, "a", 5, 7)])
            .await?,
        f.chunk("r", "issue_comments", &[f.comment("r", 1, 2, 4, 5, 7)])
            .await?,
    ];
    let shas = |rows: Vec<Value>| {
        rows.iter()
            .filter_map(|r| r["sha"].as_str().map(str::to_string))
            .collect::<Vec<_>>()
    };
    let ids = |rows: Vec<Value>| {
        rows.iter()
            .filter_map(|r| r["comment_id"].as_i64())
            .collect::<Vec<_>>()
    };
    wh.load(&f.lake, &first).await?;
    ensure!(ids(f.rows(wh, "issue_comments").await?) == [1, 2]);
    let r = wh.load(&f.lake, &second).await?;
    ensure!(
        ids(f.rows(wh, "issue_comments").await?) == [2],
        "the comment deleted without a new updatedAt stayed"
    );
    ensure!(
        shas(f.rows(wh, "pr_commits").await?) == ["a"],
        "the commit gone without a new updatedAt stayed"
    );
    ensure!(
        r.get("issue_comments").map(|l| l.deleted) == Some(1),
        "{r:?}"
    );
    ensure!(r.get("pr_commits").map(|l| l.deleted) == Some(1), "{r:?}");
    let settled = (
        f.rows(wh, "pull_requests").await?,
        f.rows(wh, "pr_commits").await?,
        f.rows(wh, "issue_comments").await?,
    );
    // The same collection again, and the older one late: nothing changes.
    for chunks in [&second, &first] {
        let r = wh.load(&f.lake, chunks).await?;
        for (t, l) in &r {
            ensure!(
                l.inserted == 0 && l.updated == 0 && l.deleted == 0,
                "reloading changed {t}: {l:?}"
            );
        }
        let now = (
            f.rows(wh, "pull_requests").await?,
            f.rows(wh, "pr_commits").await?,
            f.rows(wh, "issue_comments").await?,
        );
        ensure!(now == settled, "reloading a collection changed the rows");
    }
    Ok(())
}

/// Stars crawls for the checks below: repositories of ids `base + n`, observed at a minute of
/// 2026-03-01 10:00 UTC, written as gzip NDJSON chunks under `_stars/` in an in-memory lake.
struct StarsFixture {
    lake: Lake,
    /// Ids of this fixture start here: checks share a warehouse.
    base: i64,
    seq: u32,
}

/// A repository seen by a crawl: (repository number, star count, minute observed).
type Seen = (i64, i64, u32);

impl StarsFixture {
    fn new() -> Self {
        StarsFixture {
            lake: Lake::new(Arc::new(object_store::memory::InMemory::new()), None),
            base: i64::from(rand::random::<u32>()) << 16,
            seq: 0,
        }
    }

    fn star(&self, (n, count, minute): Seen, crawl_id: &str) -> anyhow::Result<RepoStar> {
        let at = |m: u32| -> anyhow::Result<chrono::DateTime<chrono::Utc>> { Ok(ts(m).parse()?) };
        Ok(RepoStar {
            repo_id: self.base + n,
            node_id: format!("R_{n}"),
            name_with_owner: format!("owner-{n}/repo-{n}"),
            owner_login: format!("owner-{n}"),
            stargazer_count: count,
            fork_count: 3,
            primary_language: (n % 2 == 0).then(|| "Rust".to_string()),
            created_at: at(0)?,
            pushed_at: None,
            is_fork: false,
            is_archived: n == 3,
            observed_at: at(minute)?,
            crawl_id: crawl_id.to_string(),
        })
    }

    /// Writes a crawl's rows as two chunks (so a load reads several) and names them.
    async fn crawl(&mut self, crawl_id: &str, seen: &[Seen]) -> anyhow::Result<Vec<ChunkInfo>> {
        use std::io::Write;
        let rows = seen
            .iter()
            .map(|s| self.star(*s, crawl_id))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let mut chunks = Vec::new();
        for part in rows.chunks(rows.len().div_ceil(2).max(1)) {
            self.seq += 1;
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            for r in part {
                serde_json::to_writer(&mut gz, r)?;
                gz.write_all(b"\n")?;
            }
            let bytes = gz.finish()?;
            let path = crate::stars::chunk_path(&self.lake, "2026-03-01", crawl_id, self.seq);
            let info = ChunkInfo {
                path: path.to_string(),
                repository: String::new(),
                table: crate::tables::REPO_STARS.name.to_string(),
                rows: part.len() as u64,
                bytes: bytes.len() as u64,
            };
            self.lake.put(&path, bytes.into()).await?;
            chunks.push(info);
        }
        Ok(chunks)
    }

    fn ours(&self) -> String {
        format!(
            "repo_id >= {} AND repo_id < {}",
            self.base,
            self.base + 1000
        )
    }

    /// This fixture's `repo_stars` rows: (repository number, count, minute observed, crawl).
    async fn snapshot(&self, wh: &dyn Warehouse) -> anyhow::Result<Vec<(i64, i64, u32, String)>> {
        self.read(
            wh,
            &format!(
                "SELECT repo_id, stargazer_count, observed_at, crawl_id FROM repo_stars WHERE {} ORDER BY repo_id",
                self.ours()
            ),
        )
        .await
    }

    /// This fixture's `repo_star_history` rows, in key order.
    async fn history(&self, wh: &dyn Warehouse) -> anyhow::Result<Vec<(i64, i64, u32, String)>> {
        self.read(
            wh,
            &format!(
                "SELECT repo_id, stargazer_count, observed_at, crawl_id FROM repo_star_history WHERE {} ORDER BY repo_id, observed_at",
                self.ours()
            ),
        )
        .await
    }

    async fn read(
        &self,
        wh: &dyn Warehouse,
        sql: &str,
    ) -> anyhow::Result<Vec<(i64, i64, u32, String)>> {
        wh.query(sql)
            .await?
            .iter()
            .map(|r| {
                let at: chrono::DateTime<chrono::Utc> = r["observed_at"]
                    .as_str()
                    .context("observed_at is text")?
                    .parse()?;
                let minute = (at
                    - "2026-03-01T10:00:00Z".parse::<chrono::DateTime<chrono::Utc>>()?)
                .num_minutes();
                Ok((
                    r["repo_id"].as_i64().context("repo_id")? - self.base,
                    r["stargazer_count"].as_i64().context("stargazer_count")?,
                    u32::try_from(minute)?,
                    r["crawl_id"].as_str().context("crawl_id")?.to_string(),
                ))
            })
            .collect()
    }
}

/// (repository number, count, minute, crawl) rows, for comparisons.
fn star_rows(rows: &[(i64, i64, u32, &str)]) -> Vec<(i64, i64, u32, String)> {
    rows.iter()
        .map(|(n, c, m, id)| (*n, *c, *m, id.to_string()))
        .collect()
}

/// One crawl fills both tables: the snapshot one row per repository (a repository seen twice
/// in the crawl takes its newest observation, once), the history a row per repository.
pub async fn a_stars_crawl_loads_the_snapshot_and_the_history(
    wh: &dyn Warehouse,
) -> anyhow::Result<()> {
    wh.ensure_tables().await?;
    let mut f = StarsFixture::new();
    let a = f
        .crawl("a", &[(1, 5, 10), (2, 7, 10), (3, 9, 10), (1, 6, 11)])
        .await?;
    let load = wh.load_stars(&f.lake, &a).await?;
    ensure!(
        load == StarsLoad {
            staged: 4,
            inserted: 3,
            updated: 0,
            history_added: 3
        },
        "{load:?}"
    );
    ensure!(
        f.snapshot(wh).await? == star_rows(&[(1, 6, 11, "a"), (2, 7, 10, "a"), (3, 9, 10, "a")]),
        "snapshot: {:?}",
        f.snapshot(wh).await?
    );
    ensure!(
        f.history(wh).await? == star_rows(&[(1, 6, 11, "a"), (2, 7, 10, "a"), (3, 9, 10, "a")]),
        "history: {:?}",
        f.history(wh).await?
    );
    // Every column arrives as the crawl wrote it.
    let full = wh
        .query(&format!(
            "SELECT node_id, name_with_owner, owner_login, fork_count, primary_language, is_fork, is_archived, pushed_at FROM repo_stars WHERE repo_id = {}",
            f.base + 2
        ))
        .await?;
    let row = full.first().context("repository 2 is stored")?;
    ensure!(
        row["node_id"] == "R_2"
            && row["name_with_owner"] == "owner-2/repo-2"
            && row["owner_login"] == "owner-2"
            && row["fork_count"] == 3
            && row["primary_language"] == "Rust"
            && row["pushed_at"].is_null(),
        "{row}"
    );
    Ok(())
}

/// Loading the same crawl again adds no history row and changes no snapshot row.
pub async fn loading_a_stars_crawl_twice_changes_nothing(wh: &dyn Warehouse) -> anyhow::Result<()> {
    wh.ensure_tables().await?;
    let mut f = StarsFixture::new();
    let a = f.crawl("a", &[(1, 5, 10), (2, 7, 10)]).await?;
    wh.load_stars(&f.lake, &a).await?;
    let before = (f.snapshot(wh).await?, f.history(wh).await?);
    let again = wh.load_stars(&f.lake, &a).await?;
    ensure!(
        again
            == StarsLoad {
                staged: 2,
                ..StarsLoad::default()
            },
        "reloading: {again:?}"
    );
    ensure!(
        (f.snapshot(wh).await?, f.history(wh).await?) == before,
        "reloading the crawl changed the tables"
    );
    Ok(())
}

/// A later crawl updates every snapshot row it saw, and adds history rows only for the
/// repositories whose count changed, or that are new.
pub async fn a_newer_crawl_adds_history_only_where_the_count_changed(
    wh: &dyn Warehouse,
) -> anyhow::Result<()> {
    wh.ensure_tables().await?;
    let mut f = StarsFixture::new();
    let a = f.crawl("a", &[(1, 5, 10), (2, 7, 10), (3, 9, 10)]).await?;
    let b = f
        .crawl("b", &[(1, 5, 20), (2, 8, 20), (3, 9, 20), (4, 1, 20)])
        .await?;
    wh.load_stars(&f.lake, &a).await?;
    let load = wh.load_stars(&f.lake, &b).await?;
    ensure!(
        load == StarsLoad {
            staged: 4,
            inserted: 1,
            updated: 3,
            history_added: 2
        },
        "{load:?}"
    );
    ensure!(
        f.snapshot(wh).await?
            == star_rows(&[
                (1, 5, 20, "b"),
                (2, 8, 20, "b"),
                (3, 9, 20, "b"),
                (4, 1, 20, "b")
            ]),
        "snapshot: {:?}",
        f.snapshot(wh).await?
    );
    ensure!(
        f.history(wh).await?
            == star_rows(&[
                (1, 5, 10, "a"),
                (2, 7, 10, "a"),
                (2, 8, 20, "b"),
                (3, 9, 10, "a"),
                (4, 1, 20, "b")
            ]),
        "history: {:?}",
        f.history(wh).await?
    );
    Ok(())
}

/// A crawl older than the stored snapshot, loaded late, rewrites no snapshot row (it only adds
/// repositories never seen), and adds history rows only where its count differs from the row
/// before it in time.
pub async fn an_older_crawl_loaded_late_never_rewrites_the_snapshot(
    wh: &dyn Warehouse,
) -> anyhow::Result<()> {
    wh.ensure_tables().await?;
    let mut f = StarsFixture::new();
    let a = f.crawl("a", &[(1, 5, 10), (2, 7, 10)]).await?;
    let c = f.crawl("c", &[(1, 6, 30), (2, 7, 30)]).await?;
    let b = f.crawl("b", &[(1, 5, 20), (2, 9, 20), (3, 4, 20)]).await?;
    wh.load_stars(&f.lake, &a).await?;
    wh.load_stars(&f.lake, &c).await?;
    let late = wh.load_stars(&f.lake, &b).await?;
    ensure!(
        late == StarsLoad {
            staged: 3,
            inserted: 1,
            updated: 0,
            history_added: 2
        },
        "{late:?}"
    );
    ensure!(
        f.snapshot(wh).await? == star_rows(&[(1, 6, 30, "c"), (2, 7, 30, "c"), (3, 4, 20, "b")]),
        "snapshot: {:?}",
        f.snapshot(wh).await?
    );
    ensure!(
        f.history(wh).await?
            == star_rows(&[
                (1, 5, 10, "a"),
                (1, 6, 30, "c"),
                (2, 7, 10, "a"),
                (2, 9, 20, "b"),
                (3, 4, 20, "b")
            ]),
        "history: {:?}",
        f.history(wh).await?
    );
    Ok(())
}

/// No load ever updates or deletes a history row: after each load of a sequence (new crawls,
/// a reload, a late older crawl, a crawl observing a stored moment with another count) the rows
/// before it are all still there, unchanged.
pub async fn star_history_is_append_only(wh: &dyn Warehouse) -> anyhow::Result<()> {
    wh.ensure_tables().await?;
    let mut f = StarsFixture::new();
    let crawls = [
        f.crawl("a", &[(1, 5, 10), (2, 7, 10), (3, 1, 10)]).await?,
        f.crawl("c", &[(1, 8, 30), (2, 7, 30)]).await?,
        f.crawl("a", &[(1, 5, 10), (2, 7, 10), (3, 1, 10)]).await?,
        f.crawl("b", &[(1, 2, 20), (2, 7, 20), (3, 1, 20)]).await?,
        // The same moments as crawl a's, other counts: the stored rows keep theirs.
        f.crawl("z", &[(1, 99, 10), (3, 42, 10)]).await?,
        f.crawl("d", &[(1, 8, 40), (3, 0, 40)]).await?,
    ];
    let mut before = f.history(wh).await?;
    for (i, chunks) in crawls.iter().enumerate() {
        wh.load_stars(&f.lake, chunks).await?;
        let after = f.history(wh).await?;
        let lost: Vec<_> = before.iter().filter(|r| !after.contains(r)).collect();
        ensure!(
            lost.is_empty(),
            "load {i} updated or deleted history rows: {lost:?}"
        );
        before = after;
    }
    ensure!(
        before
            == star_rows(&[
                (1, 5, 10, "a"),
                (1, 2, 20, "b"),
                (1, 8, 30, "c"),
                (2, 7, 10, "a"),
                (3, 1, 10, "a"),
                (3, 0, 40, "d")
            ]),
        "history: {before:?}"
    );
    Ok(())
}

/// A stars chunk holding a row that does not fit `repo_stars` fails the load, which then
/// changed nothing.
pub async fn a_bad_stars_chunk_loads_nothing(wh: &dyn Warehouse) -> anyhow::Result<()> {
    wh.ensure_tables().await?;
    let mut f = StarsFixture::new();
    let mut chunks = f.crawl("a", &[(1, 5, 10)]).await?;
    let path = crate::stars::chunk_path(&f.lake, "2026-03-01", "a", 99);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(
        &mut gz,
        br#"{"repo_id": 12, "stargazer_count": "many"}
"#,
    )?;
    f.lake.put(&path, gz.finish()?.into()).await?;
    chunks.push(ChunkInfo {
        path: path.to_string(),
        ..chunks[0].clone()
    });
    match wh.load_stars(&f.lake, &chunks).await {
        Err(WarehouseError::BadChunk { path: p, .. }) => ensure!(p == path.to_string(), "{p}"),
        other => anyhow::bail!("expected a bad-chunk error, got {other:?}"),
    }
    ensure!(
        f.snapshot(wh).await?.is_empty() && f.history(wh).await?.is_empty(),
        "a failed load left rows behind"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Commits: month partitions of Parquet objects, loaded by `Warehouse::load_commit_months`.

use crate::commits::rows::{CommitRow, FileChangeRow, FileStateRow};
use crate::commits::{MonthPartition, RepositoryState};
use crate::tables::{ColumnType, Mode, TableDef, COMMIT_TABLES};

/// Writes month partitions of the commits tables as the commits job does (Parquet, one object
/// per table and write, under `github/{table}/repository_id=…/commit_month=…/`) to an
/// in-memory lake, for repositories of ids of its own.
struct CommitsFixture {
    lake: Lake,
    /// Repository ids of this fixture start here: checks share a warehouse.
    base: i64,
    /// The part number of the next object: a month written again gets new object names, as
    /// the job's rewrite does.
    seq: usize,
}

fn commit_ts(month: &str, day: u32, minute: u32) -> anyhow::Result<chrono::DateTime<chrono::Utc>> {
    Ok(format!("{month}-{day:02}T12:{minute:02}:00.123456Z").parse()?)
}

impl CommitsFixture {
    fn new() -> Self {
        Self::in_lake(Lake::new(
            Arc::new(object_store::memory::InMemory::new()),
            None,
        ))
    }

    fn in_lake(lake: Lake) -> Self {
        CommitsFixture {
            lake,
            base: i64::from(rand::random::<u32>()) << 16,
            seq: 0,
        }
    }

    fn repo(&self, n: i64) -> i64 {
        self.base + n
    }

    /// Commit `sha` of repository `n` in `month` (`YYYY-MM`) on `day`, with one parent.
    fn commit(&self, n: i64, sha: &str, month: &str, day: u32) -> anyhow::Result<CommitRow> {
        let at = commit_ts(month, day, 0)?;
        Ok(CommitRow {
            repository_id: self.repo(n),
            repository: format!("acme/repo-{n}"),
            commit_sha: sha.to_string(),
            commit_author_id: Some(42),
            author_login: Some("ada".into()),
            author_name: "Ada Lovelace".into(),
            author_email: "ada@example.com".into(),
            committer_name: "GitHub".into(),
            commit_at: at,
            authored_at: commit_ts(month, day, 1)?,
            commit_message: format!("change {sha}"),
            num_files_changed: 1,
            num_lines_added: 3,
            num_lines_deleted: 1,
            parent_commits: vec![format!("{sha}-parent")],
            is_merge: false,
            commit_month: month.to_string(),
        })
    }

    /// The one file commit `c` changed.
    fn change(c: &CommitRow) -> FileChangeRow {
        FileChangeRow {
            repository_id: c.repository_id,
            commit_sha: c.commit_sha.clone(),
            file_path: format!("src/{}.rs", c.commit_sha),
            previous_path: None,
            file_sha: Some(format!("blob-{}", c.commit_sha)),
            commit_at: c.commit_at,
            file_type: Some("rs".into()),
            status: "modified".into(),
            lines_added: 3,
            lines_deleted: 1,
            changes: 4,
            is_binary: false,
            commit_month: c.commit_month.clone(),
        }
    }

    /// The version of the file commit `c` wrote.
    fn state(c: &CommitRow) -> FileStateRow {
        FileStateRow {
            repository_id: c.repository_id,
            commit_sha: c.commit_sha.clone(),
            file_path: format!("src/{}.rs", c.commit_sha),
            file_sha: format!("blob-{}", c.commit_sha),
            commit_at: c.commit_at,
            file_size: Some(120),
            raw_url: crate::commits::rows::raw_url(&c.repository, &c.commit_sha, "src/x.rs"),
            s3_file_location: None,
            commit_month: c.commit_month.clone(),
        }
    }

    /// Writes `batch` as a Parquet object of `table` in the month; returns its path.
    async fn object(
        &mut self,
        table: &str,
        repository_id: i64,
        month: &str,
        batch: &arrow_array::RecordBatch,
    ) -> anyhow::Result<String> {
        self.seq += 1;
        let mut buf = Vec::new();
        let mut w = parquet::arrow::ArrowWriter::try_new(&mut buf, batch.schema(), None)?;
        w.write(batch)?;
        w.close()?;
        let path =
            crate::commits::partition_file(&self.lake, table, repository_id, month, self.seq);
        self.lake.put(&path, buf.into()).await?;
        Ok(path.to_string())
    }

    /// Writes a month of repository `n` from its commits (each with its file change and
    /// state, unless given apart) and names its objects: none for a table without rows.
    async fn month(
        &mut self,
        n: i64,
        month: &str,
        commits: &[CommitRow],
    ) -> anyhow::Result<MonthPartition> {
        let changes: Vec<FileChangeRow> = commits.iter().map(Self::change).collect();
        let states: Vec<FileStateRow> = commits.iter().map(Self::state).collect();
        self.month_of(n, month, commits, &changes, &states).await
    }

    async fn month_of(
        &mut self,
        n: i64,
        month: &str,
        commits: &[CommitRow],
        changes: &[FileChangeRow],
        states: &[FileStateRow],
    ) -> anyhow::Result<MonthPartition> {
        use crate::commits::rows::{commits_batch, file_changes_batch, file_states_batch};
        let id = self.repo(n);
        let mut p = MonthPartition {
            repository_id: id,
            month: month.to_string(),
            commits: vec![],
            file_changes: vec![],
            file_states: vec![],
        };
        if !commits.is_empty() {
            p.commits = vec![
                self.object("commits", id, month, &commits_batch(commits)?)
                    .await?,
            ];
        }
        if !changes.is_empty() {
            p.file_changes = vec![
                self.object("file_changes", id, month, &file_changes_batch(changes)?)
                    .await?,
            ];
        }
        if !states.is_empty() {
            p.file_states = vec![
                self.object("file_states", id, month, &file_states_batch(states)?)
                    .await?,
            ];
        }
        Ok(p)
    }

    /// The commits job's state of repository `n`, as seen at minute `seen` of 2026-03-01,
    /// called `name`, with `last` its newest processed commit.
    fn repo_state(
        &self,
        n: i64,
        name: &str,
        seen: u32,
        last: Option<&str>,
    ) -> anyhow::Result<RepositoryState> {
        let at = |m: u32| -> anyhow::Result<chrono::DateTime<chrono::Utc>> { Ok(ts(m).parse()?) };
        Ok(RepositoryState {
            repo_id: self.repo(n),
            node_id: format!("R_{n}"),
            organization: "acme".into(),
            repository: name.to_string(),
            is_archived: false,
            is_fork: false,
            is_private: false,
            default_branch: Some("main".into()),
            created_at: at(0)?,
            updated_at: at(seen)?,
            pushed_at: Some(at(seen)?),
            last_commit_sha: last.map(str::to_string),
            last_commit_at: last.map(|_| at(seen)).transpose()?,
            collected_at: at(seen)?,
            collection_id: format!("commits-{seen:02}"),
        })
    }

    /// The stored rows of `table` for repository `n`, in the backend-neutral form of
    /// [`neutral`], sorted by key.
    async fn stored(&self, wh: &dyn Warehouse, t: &TableDef, n: i64) -> anyhow::Result<Vec<Value>> {
        let rows = wh
            .query(&format!(
                "SELECT {} FROM {} WHERE repository_id = {}",
                super::sql::column_list(t),
                t.name,
                self.repo(n)
            ))
            .await?;
        let mut out = rows
            .iter()
            .map(|r| neutral_stored(t, r))
            .collect::<anyhow::Result<Vec<_>>>()?;
        sort_by_key(t, &mut out);
        Ok(out)
    }

    /// The rows of every table a load of these months should leave for repository `n`.
    async fn expected(
        &self,
        t: &TableDef,
        months: &[&MonthPartition],
    ) -> anyhow::Result<Vec<Value>> {
        use futures::StreamExt;
        let mut out = Vec::new();
        for m in months {
            for f in m.files(t.name) {
                let path = object_store::path::Path::from(f.as_str());
                let mut batches = super::gharchive::read_batches(&self.lake, &path).await?;
                while let Some(b) = batches.next().await {
                    let b = b?;
                    for i in 0..b.num_rows() {
                        let cells = super::commits::batch_cells(t, &b, i)
                            .map_err(|e| anyhow::anyhow!(e))?;
                        out.push(neutral(t, &cells));
                    }
                }
            }
        }
        sort_by_key(t, &mut out);
        Ok(out)
    }

    /// Every commits table of repository `n` as stored.
    async fn all(&self, wh: &dyn Warehouse, n: i64) -> anyhow::Result<Vec<Vec<Value>>> {
        let mut out = Vec::new();
        for t in COMMIT_TABLES {
            out.push(self.stored(wh, t, n).await?);
        }
        Ok(out)
    }

    /// Every commits table as the months' objects have it.
    async fn truth(&self, months: &[&MonthPartition]) -> anyhow::Result<Vec<Vec<Value>>> {
        let mut out = Vec::new();
        for t in COMMIT_TABLES {
            out.push(self.expected(t, months).await?);
        }
        Ok(out)
    }

    /// The stored `repositories` row of repository `n`: name, default branch, last commit, the
    /// collection that wrote it.
    async fn repository(&self, wh: &dyn Warehouse, n: i64) -> anyhow::Result<Value> {
        let rows = wh
            .query(&format!(
                "SELECT organization, repository, full_name, default_branch, last_commit_sha, last_commit_at, collection_id FROM repositories WHERE repo_id = {}",
                self.repo(n)
            ))
            .await?;
        ensure!(
            rows.len() == 1,
            "{} repositories rows: {rows:?}",
            rows.len()
        );
        let mut row = rows[0].clone();
        let at = row["last_commit_at"].clone();
        row["last_commit_at"] = match at.as_str() {
            Some(s) => json!(chrono::DateTime::parse_from_rfc3339(s)?
                .with_timezone(&chrono::Utc)
                .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
            None => Value::Null,
        };
        Ok(row)
    }
}

/// A row's cells as JSON: text, numbers, booleans, timestamps as RFC 3339 UTC with six fraction
/// digits, lists as arrays.
fn neutral(t: &TableDef, cells: &[super::Typed]) -> Value {
    use super::Typed;
    let mut obj = serde_json::Map::new();
    for (c, v) in t.columns.iter().zip(cells) {
        let j = match v {
            Typed::Null => Value::Null,
            Typed::Text(s) => json!(s),
            Typed::Int(i) => json!(i),
            Typed::Bool(b) => json!(b),
            Typed::Timestamp(at) => {
                json!(at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
            }
            Typed::Labels(l) => json!(l),
        };
        obj.insert(c.name.to_string(), j);
    }
    Value::Object(obj)
}

/// A row of [`Warehouse::query`] in the form of [`neutral`], whatever the backend: SQLite's
/// booleans are integers and its lists JSON text, PostgreSQL's timestamps carry `+00:00`.
fn neutral_stored(t: &TableDef, row: &Value) -> anyhow::Result<Value> {
    let mut obj = serde_json::Map::new();
    for c in t.columns {
        let v = row.get(c.name).cloned().unwrap_or(Value::Null);
        let j = match (c.mode, c.ty, v) {
            (Mode::Repeated, _, Value::String(s)) => serde_json::from_str(&s)?,
            (Mode::Repeated, _, Value::Null) => json!([]),
            (_, _, Value::Null) => Value::Null,
            (_, ColumnType::Bool, Value::Number(n)) => json!(n.as_i64() != Some(0)),
            (_, ColumnType::Timestamp, Value::String(s)) => {
                json!(chrono::DateTime::parse_from_rfc3339(&s)
                    .with_context(|| format!("{}.{}: {s}", t.name, c.name))?
                    .with_timezone(&chrono::Utc)
                    .to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
            }
            (_, _, v) => v,
        };
        obj.insert(c.name.to_string(), j);
    }
    Ok(Value::Object(obj))
}

/// Sorts rows by the table's key, compared here: backends' collations differ.
fn sort_by_key(t: &TableDef, rows: &mut [Value]) {
    rows.sort_by_key(|r| t.key.iter().map(|k| r[*k].to_string()).collect::<Vec<_>>());
}

/// Loading the same months twice leaves the same rows, and says it read the same rows.
pub async fn commit_months_load_is_idempotent(wh: &dyn Warehouse) -> anyhow::Result<()> {
    wh.ensure_tables().await?;
    let mut f = CommitsFixture::new();
    let jan = vec![
        f.commit(1, "a1", "2024-01", 3)?,
        f.commit(1, "a2", "2024-01", 30)?,
    ];
    let feb = vec![f.commit(1, "b1", "2024-02", 1)?];
    let months = vec![
        f.month(1, "2024-01", &jan).await?,
        f.month(1, "2024-02", &feb).await?,
    ];
    let state = f.repo_state(1, "repo-1", 5, Some("b1"))?;
    let read = wh.load_commit_months(&f.lake, &state, &months).await?;
    let want = BTreeMap::from([
        ("commits".to_string(), 3),
        ("file_changes".to_string(), 3),
        ("file_states".to_string(), 3),
    ]);
    ensure!(read == want, "first load read {read:?}");
    let first = f.all(wh, 1).await?;
    ensure!(
        first == f.truth(&months.iter().collect::<Vec<_>>()).await?,
        "the stored rows differ from the objects: {first:?}"
    );
    let again = wh.load_commit_months(&f.lake, &state, &months).await?;
    ensure!(again == want, "second load read {again:?}");
    ensure!(
        f.all(wh, 1).await? == first,
        "loading the months again changed the rows"
    );
    ensure!(
        f.repository(wh, 1).await?["last_commit_sha"] == "b1",
        "{}",
        f.repository(wh, 1).await?
    );
    Ok(())
}

/// A month loaded again from a rewrite that lost commits (a force-push removed them) loses
/// them, their file changes and file states included.
pub async fn a_month_loaded_again_replaces_its_rows(wh: &dyn Warehouse) -> anyhow::Result<()> {
    wh.ensure_tables().await?;
    let mut f = CommitsFixture::new();
    let a = f.commit(1, "a", "2024-05", 1)?;
    let b = f.commit(1, "b", "2024-05", 2)?;
    let c = f.commit(1, "c", "2024-05", 3)?;
    let before = f
        .month(1, "2024-05", &[a.clone(), b.clone(), c.clone()])
        .await?;
    let state = f.repo_state(1, "repo-1", 5, Some("c"))?;
    wh.load_commit_months(&f.lake, &state, &[before]).await?;
    ensure!(f.stored(wh, &crate::tables::COMMITS, 1).await?.len() == 3);
    // The rewrite: b is gone, c' replaces c, d is new.
    let mut c2 = c.clone();
    c2.commit_sha = "c2".into();
    let d = f.commit(1, "d", "2024-05", 4)?;
    let after = f.month(1, "2024-05", &[a, c2, d]).await?;
    let state = f.repo_state(1, "repo-1", 6, Some("d"))?;
    wh.load_commit_months(&f.lake, &state, std::slice::from_ref(&after))
        .await?;
    let stored = f.all(wh, 1).await?;
    ensure!(
        stored == f.truth(&[&after]).await?,
        "after the rewrite: {stored:?}"
    );
    let shas: Vec<&str> = stored[0]
        .iter()
        .filter_map(|r| r["commit_sha"].as_str())
        .collect();
    ensure!(shas == ["a", "c2", "d"], "{shas:?}");
    Ok(())
}

/// A month whose objects are all gone (every commit of it force-pushed away) is emptied; a
/// table with no object in a month has no rows there while the others keep theirs.
pub async fn a_month_with_no_objects_is_emptied(wh: &dyn Warehouse) -> anyhow::Result<()> {
    wh.ensure_tables().await?;
    let mut f = CommitsFixture::new();
    let a = f.commit(1, "a", "2024-06", 1)?;
    let full = f.month(1, "2024-06", std::slice::from_ref(&a)).await?;
    let state = f.repo_state(1, "repo-1", 5, Some("a"))?;
    wh.load_commit_months(&f.lake, &state, &[full]).await?;
    // Only the commit: a merge that changed no file writes no file rows.
    let no_files = f
        .month_of(1, "2024-06", std::slice::from_ref(&a), &[], &[])
        .await?;
    ensure!(no_files.file_changes.is_empty() && no_files.file_states.is_empty());
    let read = wh
        .load_commit_months(&f.lake, &state, std::slice::from_ref(&no_files))
        .await?;
    ensure!(
        read["commits"] == 1 && read["file_changes"] == 0,
        "{read:?}"
    );
    let stored = f.all(wh, 1).await?;
    ensure!(
        stored[0].len() == 1 && stored[1].is_empty() && stored[2].is_empty(),
        "{stored:?}"
    );
    let empty = MonthPartition {
        repository_id: f.repo(1),
        month: "2024-06".into(),
        commits: vec![],
        file_changes: vec![],
        file_states: vec![],
    };
    let read = wh.load_commit_months(&f.lake, &state, &[empty]).await?;
    ensure!(
        read.values().all(|n| *n == 0) && read.len() == 3,
        "{read:?}"
    );
    ensure!(
        f.all(wh, 1).await?.iter().all(Vec::is_empty),
        "the emptied month kept rows"
    );
    Ok(())
}

/// Replacing one month of one repository leaves its other months and every other repository's
/// rows as they were.
pub async fn other_months_and_repositories_are_untouched(wh: &dyn Warehouse) -> anyhow::Result<()> {
    wh.ensure_tables().await?;
    let mut f = CommitsFixture::new();
    let x_jan = f
        .month(
            1,
            "2024-01",
            &[
                f.commit(1, "x1", "2024-01", 5)?,
                f.commit(1, "x2", "2024-01", 6)?,
            ],
        )
        .await?;
    let x_feb = f
        .month(1, "2024-02", &[f.commit(1, "x3", "2024-02", 5)?])
        .await?;
    let y_jan = f
        .month(2, "2024-01", &[f.commit(2, "y1", "2024-01", 5)?])
        .await?;
    wh.load_commit_months(
        &f.lake,
        &f.repo_state(1, "repo-1", 5, Some("x3"))?,
        &[x_jan, x_feb.clone()],
    )
    .await?;
    wh.load_commit_months(
        &f.lake,
        &f.repo_state(2, "repo-2", 5, Some("y1"))?,
        std::slice::from_ref(&y_jan),
    )
    .await?;
    let y_before = f.all(wh, 2).await?;
    let x_jan2 = f
        .month(1, "2024-01", &[f.commit(1, "x1", "2024-01", 5)?])
        .await?;
    wh.load_commit_months(
        &f.lake,
        &f.repo_state(1, "repo-1", 6, Some("x3"))?,
        std::slice::from_ref(&x_jan2),
    )
    .await?;
    ensure!(
        f.all(wh, 1).await? == f.truth(&[&x_jan2, &x_feb]).await?,
        "repository 1: {:?}",
        f.all(wh, 1).await?
    );
    ensure!(f.all(wh, 2).await? == y_before, "repository 2 changed");
    ensure!(
        y_before == f.truth(&[&y_jan]).await?,
        "repository 2: {y_before:?}"
    );
    Ok(())
}

/// The commits job's `last_commit_sha`/`last_commit_at` survive a pull-request load of the
/// same repository (its chunk rows never carry them), and the columns both write follow the
/// newest snapshot: a commits load older than the stored row keeps the stored name, a newer
/// one renames, the repository's `commits` rows included.
pub async fn a_pull_request_load_keeps_last_commit_sha(wh: &dyn Warehouse) -> anyhow::Result<()> {
    wh.ensure_tables().await?;
    let mut f = Fixture::new();
    let mut c = CommitsFixture::new();
    // One repository: the pull-request fixture's "r", known to the commits fixture as n.
    let id = f.repo_id("r");
    let n = i64::try_from(id)? - c.base;
    let org = f.org.clone();
    let state = |c: &CommitsFixture,
                 name: &str,
                 seen: u32,
                 last: &str|
     -> anyhow::Result<RepositoryState> {
        let mut s = c.repo_state(n, name, seen, Some(last))?;
        s.organization = org.clone();
        Ok(s)
    };
    let mut jan = c.commit(n, "a", "2024-01", 1)?;
    jan.repository = format!("{org}/r");
    let month = c.month(n, "2024-01", &[jan]).await?;
    wh.load_commit_months(
        &c.lake,
        &state(&c, "r", 3, "a")?,
        std::slice::from_ref(&month),
    )
    .await?;
    let row = c.repository(wh, n).await?;
    ensure!(
        row["repository"] == "r"
            && row["last_commit_sha"] == "a"
            && row["last_commit_at"] == ts(3)
            && row["collection_id"] == "commits-03"
            && row["default_branch"] == "main",
        "inserted by the commits load: {row}"
    );
    // A pull-request collection at minute 5 sees it renamed to r2.
    let chunk = f
        .chunk("r", "repositories", &[f.repo_row(id, "r2", 5)])
        .await?;
    wh.load(&f.lake, std::slice::from_ref(&chunk)).await?;
    let row = c.repository(wh, n).await?;
    ensure!(
        row["repository"] == "r2"
            && row["last_commit_sha"] == "a"
            && row["last_commit_at"] == ts(3),
        "after the pull-request load: {row}"
    );
    wh.load(&f.lake, &[chunk]).await?;
    ensure!(
        c.repository(wh, n).await?["last_commit_sha"] == "a",
        "a reload cleared it"
    );
    // A commits load that saw the repository before (minute 4, still "r-old"): its commit
    // columns are set, the newer name kept.
    wh.load_commit_months(&c.lake, &state(&c, "r-old", 4, "b")?, &[])
        .await?;
    let row = c.repository(wh, n).await?;
    ensure!(
        row["repository"] == "r2" && row["last_commit_sha"] == "b" && row["collection_id"] == "c05",
        "after an older commits load: {row}"
    );
    // A newer one (minute 6, "r3") takes every column, and the commits rows its name.
    wh.load_commit_months(&c.lake, &state(&c, "r3", 6, "c")?, &[])
        .await?;
    let row = c.repository(wh, n).await?;
    ensure!(
        row["repository"] == "r3"
            && row["full_name"] == format!("{org}/r3")
            && row["last_commit_sha"] == "c"
            && row["last_commit_at"] == ts(6)
            && row["collection_id"] == "commits-06",
        "after a newer commits load: {row}"
    );
    let commits = c.stored(wh, &crate::tables::COMMITS, n).await?;
    ensure!(
        commits.len() == 1 && commits[0]["repository"] == format!("{org}/r3"),
        "{commits:?}"
    );
    Ok(())
}

/// `parent_commits` (REPEATED STRING) keeps its items, their order and an empty list, with
/// items holding what a `text[]` literal or JSON would have to escape.
pub async fn parent_commits_round_trip(wh: &dyn Warehouse) -> anyhow::Result<()> {
    wh.ensure_tables().await?;
    let mut f = CommitsFixture::new();
    let lists: Vec<Vec<String>> = vec![
        vec![],
        vec!["p1".into()],
        vec!["p2".into(), "p1".into()],
        vec![
            "a,b".into(),
            "{c}".into(),
            "\"q\"".into(),
            "back\\slash".into(),
            "NULL".into(),
            "".into(),
            "✓ ü".into(),
        ],
    ];
    let mut commits = Vec::new();
    for (i, parents) in lists.iter().enumerate() {
        let mut c = f.commit(1, &format!("m{i}"), "2024-07", 1 + i as u32)?;
        c.is_merge = parents.len() > 1;
        c.parent_commits = parents.clone();
        commits.push(c);
    }
    let month = f.month(1, "2024-07", &commits).await?;
    wh.load_commit_months(
        &f.lake,
        &f.repo_state(1, "repo-1", 5, Some("m3"))?,
        std::slice::from_ref(&month),
    )
    .await?;
    let stored = f.stored(wh, &crate::tables::COMMITS, 1).await?;
    let got: Vec<Value> = stored.iter().map(|r| r["parent_commits"].clone()).collect();
    ensure!(
        got == json!(lists).as_array().cloned().unwrap_or_default(),
        "{got:?}"
    );
    ensure!(
        stored[2]["is_merge"] == true && stored[1]["is_merge"] == false,
        "{stored:?}"
    );
    Ok(())
}

/// NULL and the empty string stay apart in every nullable text column of the three tables.
pub async fn null_and_empty_text_are_kept_apart(wh: &dyn Warehouse) -> anyhow::Result<()> {
    wh.ensure_tables().await?;
    let mut f = CommitsFixture::new();
    let mut null = f.commit(1, "n", "2024-08", 1)?;
    null.author_login = None;
    null.commit_author_id = None;
    null.commit_message = String::new();
    let mut empty = f.commit(1, "e", "2024-08", 2)?;
    empty.author_login = Some(String::new());
    empty.author_name = String::new();
    let mut nc = CommitsFixture::change(&null);
    nc.previous_path = None;
    nc.file_type = None;
    nc.file_sha = None;
    let mut ec = CommitsFixture::change(&empty);
    ec.previous_path = Some(String::new());
    ec.file_type = Some(String::new());
    ec.file_sha = Some(String::new());
    let mut ns = CommitsFixture::state(&null);
    ns.file_size = None;
    ns.s3_file_location = None;
    let mut es = CommitsFixture::state(&empty);
    es.s3_file_location = Some(String::new());
    let month = f
        .month_of(1, "2024-08", &[null, empty], &[nc, ec], &[ns, es])
        .await?;
    wh.load_commit_months(
        &f.lake,
        &f.repo_state(1, "repo-1", 5, None)?,
        std::slice::from_ref(&month),
    )
    .await?;
    let stored = f.all(wh, 1).await?;
    ensure!(stored == f.truth(&[&month]).await?, "{stored:?}");
    // Sorted by sha: "e" then "n".
    let (c, fc, fs) = (&stored[0], &stored[1], &stored[2]);
    ensure!(
        c[0]["author_login"] == "" && c[1]["author_login"].is_null(),
        "{c:?}"
    );
    ensure!(
        c[1]["commit_message"] == "" && c[1]["commit_author_id"].is_null(),
        "{c:?}"
    );
    ensure!(
        fc[0]["previous_path"] == "" && fc[1]["previous_path"].is_null(),
        "{fc:?}"
    );
    ensure!(
        fc[0]["file_type"] == "" && fc[1]["file_type"].is_null(),
        "{fc:?}"
    );
    ensure!(
        fs[0]["s3_file_location"] == "" && fs[1]["s3_file_location"].is_null(),
        "{fs:?}"
    );
    ensure!(
        f.repository(wh, 1).await?["last_commit_sha"].is_null(),
        "a state without a last commit stores NULL"
    );
    Ok(())
}

/// Text as git holds it survives: unicode in names, paths and messages, control characters
/// other than U+0000 (tab, carriage return, escape, form feed, DEL), quotes and backslashes,
/// and a message of half a megabyte.
pub async fn odd_text_in_commits_survives(wh: &dyn Warehouse) -> anyhow::Result<()> {
    wh.ensure_tables().await?;
    let mut f = CommitsFixture::new();
    let odd =
        "tab\there\r\nesc\u{1b}[31m ff\u{c} del\u{7f} bell\u{7} \\N \\ 'q' \"qq\" ✨ 修复 إصلاح 🚀";
    let long = format!("{}\n", "ä✓🚀 line of a long message\t".repeat(18_000));
    let mut a = f.commit(1, "o1", "2024-09", 1)?;
    a.author_name = "Zoë \u{1}Ñandú 山田".into();
    a.author_email = "zoë+\u{1f}tag@例え.jp".into();
    a.commit_message = odd.to_string();
    let mut b = f.commit(1, "o2", "2024-09", 2)?;
    b.commit_message = long.clone();
    let mut ca = CommitsFixture::change(&a);
    ca.file_path = "dir with space/ünï#?\t.md".into();
    ca.previous_path = Some("old\\path/\"q\".md".into());
    let mut sa = CommitsFixture::state(&a);
    sa.file_path = ca.file_path.clone();
    sa.raw_url = crate::commits::rows::raw_url("acme/repo-1", "o1", &ca.file_path);
    let month = f
        .month_of(
            1,
            "2024-09",
            &[a, b.clone()],
            &[ca, CommitsFixture::change(&b)],
            &[sa, CommitsFixture::state(&b)],
        )
        .await?;
    wh.load_commit_months(
        &f.lake,
        &f.repo_state(1, "repo-1", 5, Some("o2"))?,
        std::slice::from_ref(&month),
    )
    .await?;
    let stored = f.all(wh, 1).await?;
    ensure!(
        stored == f.truth(&[&month]).await?,
        "the text changed on the way through"
    );
    ensure!(
        stored[0][0]["commit_message"] == odd && stored[0][1]["commit_message"] == long.as_str()
    );
    Ok(())
}

/// An object holding a row of a month the load does not replace (or of another repository)
/// fails the load, which then changes nothing: such a row would stay behind when its own month
/// is replaced. (SQLite and PostgreSQL check each object against its own month; BigQuery, whose
/// load jobs mix a table's objects, checks each row against the months of the load.)
pub async fn a_row_of_another_month_fails_the_load_and_changes_nothing(
    wh: &dyn Warehouse,
) -> anyhow::Result<()> {
    wh.ensure_tables().await?;
    let mut f = CommitsFixture::new();
    let good = f
        .month(1, "2024-10", &[f.commit(1, "g", "2024-10", 1)?])
        .await?;
    let state = f.repo_state(1, "repo-1", 5, Some("g"))?;
    wh.load_commit_months(&f.lake, &state, std::slice::from_ref(&good))
        .await?;
    let before = (f.all(wh, 1).await?, f.repository(wh, 1).await?);
    // November's object holds a December commit.
    let stray = f.commit(1, "s", "2024-12", 2)?;
    let mut bad = f.month(1, "2024-12", &[stray]).await?;
    bad.month = "2024-11".into();
    let later = f.repo_state(1, "repo-1", 6, Some("s"))?;
    match wh
        .load_commit_months(&f.lake, &later, &[good.clone(), bad])
        .await
    {
        Err(WarehouseError::BadChunk { .. }) => {}
        other => anyhow::bail!("expected a bad object, got {other:?}"),
    }
    ensure!(
        (f.all(wh, 1).await?, f.repository(wh, 1).await?) == before,
        "a failed load changed the warehouse"
    );
    // A month of another repository is refused before anything is read.
    let other = f
        .month(2, "2024-10", &[f.commit(2, "o", "2024-10", 1)?])
        .await?;
    match wh.load_commit_months(&f.lake, &later, &[other]).await {
        Err(WarehouseError::Query(m)) if m.contains("was given with repository") => {}
        other => anyhow::bail!("expected a refusal, got {other:?}"),
    }
    Ok(())
}

/// The repository `repositories` row of a warehouse made before the commits tables, as its
/// table held it (without `last_commit_sha`/`last_commit_at`): the definition a backend's test
/// creates the old table from.
pub const OLD_REPOSITORIES: TableDef = TableDef {
    columns: OLD_REPOSITORY_COLUMNS,
    ..crate::tables::REPOSITORIES
};

const OLD_REPOSITORY_COLUMNS: &[crate::tables::Column] = {
    let all = crate::tables::REPOSITORIES.columns;
    match all.split_at_checked(all.len() - crate::tables::COMMITS_OWNED.len()) {
        Some((old, _)) => old,
        None => all,
    }
};

/// An `INSERT` of one row into [`OLD_REPOSITORIES`]: repository `repo_id` called `old-org/old`,
/// every timestamp `ts` (the backend's literal of 2026-03-01T10:05:00Z), booleans as `f`.
pub fn old_repository_insert(repo_id: i64, table: &str, ts: &str, f: &str) -> String {
    format!(
        "INSERT INTO {table} ({}) VALUES ('old-org', 'old', {repo_id}, 'R_old', 'old-org/old', {f}, {f}, {f}, 'main', {ts}, {ts}, NULL, {ts}, 'c-old')",
        super::sql::column_list(&OLD_REPOSITORIES)
    )
}

async fn old_repository_row(wh: &dyn Warehouse, repo_id: i64) -> anyhow::Result<Value> {
    let rows = wh
        .query(&format!(
            "SELECT organization, repository, default_branch, last_commit_sha, last_commit_at, collection_id FROM repositories WHERE repo_id = {repo_id}"
        ))
        .await?;
    ensure!(rows.len() == 1, "{rows:?}");
    Ok(rows[0].clone())
}

/// After a backend's test made `repositories` as an earlier build did ([`OLD_REPOSITORIES`])
/// with one row ([`old_repository_insert`] of `repo_id`): `ensure_tables` adds the commit
/// columns, keeps the row (the new columns NULL), and a commits load then sets them, the row's
/// newer columns kept.
pub async fn an_old_repositories_table_gains_the_commit_columns(
    wh: &dyn Warehouse,
    repo_id: i64,
) -> anyhow::Result<()> {
    wh.ensure_tables().await?;
    wh.ensure_tables().await?;
    let row = old_repository_row(wh, repo_id).await?;
    ensure!(
        row["repository"] == "old"
            && row["collection_id"] == "c-old"
            && row["last_commit_sha"].is_null()
            && row["last_commit_at"].is_null(),
        "after ensure_tables: {row}"
    );
    let c = CommitsFixture::new();
    let mut state = c.repo_state(0, "renamed-before", 3, Some("abc"))?;
    state.repo_id = repo_id;
    wh.load_commit_months(&c.lake, &state, &[]).await?;
    let row = old_repository_row(wh, repo_id).await?;
    ensure!(
        row["repository"] == "old"
            && row["collection_id"] == "c-old"
            && row["last_commit_sha"] == "abc",
        "after a commits load older than the row: {row}"
    );
    Ok(())
}

/// Months of one repository written by [`commit_months_sample`], and what the warehouse
/// should hold once they are loaded.
pub struct CommitMonthsSample {
    pub state: RepositoryState,
    pub months: Vec<MonthPartition>,
    /// Per table of [`COMMIT_TABLES`], the rows of the objects in the form of
    /// [`stored_commit_rows`].
    pub expected: Vec<Vec<Value>>,
}

/// Writes two months of a new repository into `lake` (its prefix included in the objects'
/// paths): merges, NULLs, odd text, a month without file rows. For a backend's test that loads
/// them from another store the objects were copied to (BigQuery from `gs://`).
pub async fn commit_months_sample(lake: &Lake) -> anyhow::Result<CommitMonthsSample> {
    let mut f = CommitsFixture::in_lake(lake.clone());
    let mut a = f.commit(1, "s1", "2024-01", 2)?;
    a.commit_message = "odd\ttext ✨ 修复 \\ 'q' \"qq\"\r\n".into();
    a.author_login = None;
    let mut b = f.commit(1, "s2", "2024-01", 3)?;
    b.parent_commits = vec!["s1".into(), "x9".into()];
    b.is_merge = true;
    let c = f.commit(1, "s3", "2024-02", 1)?;
    let jan = f.month(1, "2024-01", &[a, b]).await?;
    let feb = f.month_of(1, "2024-02", &[c], &[], &[]).await?;
    let expected = f.truth(&[&jan, &feb]).await?;
    Ok(CommitMonthsSample {
        state: f.repo_state(1, "repo-1", 5, Some("s3"))?,
        months: vec![jan, feb],
        expected,
    })
}

/// Every commits table's rows of repository `repository_id`, per table of [`COMMIT_TABLES`],
/// backend-neutral and sorted by key.
pub async fn stored_commit_rows(
    wh: &dyn Warehouse,
    repository_id: i64,
) -> anyhow::Result<Vec<Vec<Value>>> {
    let f = CommitsFixture {
        lake: Lake::new(Arc::new(object_store::memory::InMemory::new()), None),
        base: repository_id - 1,
        seq: 0,
    };
    f.all(wh, 1).await
}
