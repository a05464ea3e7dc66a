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
            a_bad_stars_chunk_loads_nothing);
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
