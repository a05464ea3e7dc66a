//! Collect from the simulator, load into SQLite, and compare every table to the ground truth
//! exactly; load again and nothing changes; change 50 pull requests, collect incrementally,
//! load, and compare again.

mod common;

use common::*;
use ghstats::jobs::load::{load, load_collection, LoadFilter};
use ghstats::warehouse::Warehouse;
use github_sim::model::{Actor, ActorKind, Issue, IssueComment};
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

/// SQLite, and PostgreSQL when the test server runs, each with its tables.
async fn backends() -> Vec<(Option<tempfile::TempDir>, Box<dyn Warehouse>)> {
    let (dir, lite) = sqlite_warehouse().await;
    let mut out: Vec<(Option<tempfile::TempDir>, Box<dyn Warehouse>)> =
        vec![(Some(dir), Box::new(lite))];
    if let Some(url) = fresh_database().await {
        let pg = ghstats::warehouse::postgres::PostgresWarehouse::connect(&url)
            .await
            .unwrap();
        pg.ensure_tables().await.unwrap();
        out.push((None, Box::new(pg)));
    }
    out
}

fn org() -> ghstats::names::OrgName {
    ORG.parse().unwrap()
}

/// GitHub lets U+0000 into titles, bodies, commit messages, paths, labels and branch names;
/// PostgreSQL refuses it (22P05). Every backend loads the collection and stores the truth with
/// U+0000 removed. Bots, which GitHub's GraphQL names bare (`dependabot`), are stored under
/// GitHub's login (`dependabot[bot]`), and the metric views still recognise them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_text_loads_everywhere_without_it_and_bots_keep_their_login() {
    let sim = Simulator::start(&OrgSpec::new(ORG, 2, 60, 41), SimOptions::default(), 0)
        .await
        .unwrap();
    let nul = |s: &str| format!("\u{0}{s}\u{0}!\u{0}");
    let (bot_pr, (repo_id, repo)) = sim.edit(|w| {
        let bot = Actor {
            id: w.take_id(),
            login: "dependabot".into(),
            kind: ActorKind::Bot,
        };
        for r in &mut w.repositories {
            for p in &mut r.pull_requests {
                p.title = nul(&p.title);
                p.head_ref = nul(&p.head_ref);
                p.labels.push(nul("needs\u{0}triage"));
                for c in &mut p.commits {
                    c.message_headline = nul(&c.message_headline);
                    c.author_name = nul(&c.author_name);
                }
                for v in &mut p.reviews {
                    v.body = nul(&v.body);
                    for c in &mut v.comments {
                        c.body = nul(&c.body);
                        c.path = nul(&c.path);
                    }
                }
                for c in &mut p.comments {
                    c.body = nul(&c.body);
                }
            }
        }
        // A pull request by a bot, reviewed by it (not a first review) and by a person.
        let r = &mut w.repositories[0];
        let p = r
            .pull_requests
            .iter_mut()
            .find(|p| !p.reviews.is_empty())
            .expect("a reviewed pull request");
        p.author = Some(bot.clone());
        p.reviews[0].author = Some(bot);
        (p.number, (r.id, r.name.clone()))
    });
    let client = fast_client(&sim.url(), &["t"]);
    let lake = memory_lake();
    let first = collect(&client, &lake, &options(everything(), &[])).await;
    let truth = expected(&sim.world(), &everything(), &[]);
    for (_dir, wh) in backends().await {
        load_collection(wh.as_ref(), &lake, &org(), &first.collection_id)
            .await
            .unwrap_or_else(|e| panic!("{}: {e:#}", wh.backend()));
        let stored = warehouse_tables(wh.as_ref()).await;
        assert_tables_eq(&stored, &truth);
        let key = format!("{repo_id}|{bot_pr}");
        let pr = &stored["pull_requests"][&key];
        assert_eq!(pr["author"], "dependabot[bot]", "{}", wh.backend());
        assert_eq!(pr["author_type"], "Bot");
        assert!(!pr["title"].as_str().unwrap().contains('\u{0}'));
        assert!(pr["labels"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("needstriage!")));
        // The bot's review is stored under its login, counted as a bot's by reviewer_load,
        // and is not a first review.
        let bot_reviews = wh
            .query("SELECT reviewer, reviewer_type, reviews_given FROM reviewer_load WHERE reviewer = 'dependabot[bot]'")
            .await
            .unwrap();
        assert_eq!(bot_reviews.len(), 1, "{}: {bot_reviews:?}", wh.backend());
        assert_eq!(bot_reviews[0]["reviewer_type"], "Bot");
        let bare = wh
            .query("SELECT COUNT(*) AS n FROM reviews WHERE reviewer_type = 'Bot' AND reviewer NOT LIKE '%[bot]'")
            .await
            .unwrap();
        assert_eq!(bare[0]["n"].as_i64(), Some(0), "{}", wh.backend());
        let first_reviews = wh
            .query(&format!("SELECT v.first_review_at, r.submitted_at FROM pr_velocity v JOIN reviews r ON r.organization = v.organization AND r.repository = v.repository AND r.pr_number = v.pr_number AND r.reviewer = 'dependabot[bot]' WHERE v.repository = '{repo}' AND v.pr_number = {bot_pr}"))
            .await
            .unwrap();
        assert_eq!(first_reviews.len(), 1, "{}", wh.backend());
        assert_ne!(
            first_reviews[0]["first_review_at"],
            first_reviews[0]["submitted_at"],
            "{}: a bot's review counted as the first review",
            wh.backend()
        );
    }
}

/// GitHub does not bump a pull request's `updatedAt` when a comment on it is deleted. A backfill
/// of the window brings the same `updatedAt` without the comment: every backend deletes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_comment_deleted_without_a_new_updated_at_leaves_the_warehouse_on_the_next_backfill() {
    let sim = Simulator::start(&OrgSpec::new(ORG, 2, 80, 42), SimOptions::default(), 0)
        .await
        .unwrap();
    let client = fast_client(&sim.url(), &["t"]);
    let lake = memory_lake();
    let first = collect(&client, &lake, &options(everything(), &[])).await;
    let backends = backends().await;
    for (_dir, wh) in &backends {
        load_collection(wh.as_ref(), &lake, &org(), &first.collection_id)
            .await
            .unwrap();
    }
    let (issue_comment, review_comment, updated) = sim.edit(|w| {
        let r = &mut w.repositories[0];
        let p = r
            .pull_requests
            .iter_mut()
            .find(|p| !p.comments.is_empty())
            .expect("a pull request with comments");
        let ic = p.comments.remove(0).id;
        let q = r
            .pull_requests
            .iter_mut()
            .find(|p| p.reviews.iter().any(|v| v.comments.len() == 1))
            .expect("a review with one comment");
        let v = q
            .reviews
            .iter_mut()
            .find(|v| v.comments.len() == 1)
            .unwrap();
        let rc = v.comments.remove(0).id;
        (ic, rc, q.updated_at)
    });
    let backfill = collect(&client, &lake, &options(everything(), &[])).await;
    let truth = expected(&sim.world(), &everything(), &[]);
    for (_dir, wh) in &backends {
        let loaded = load_collection(wh.as_ref(), &lake, &org(), &backfill.collection_id)
            .await
            .unwrap();
        assert_eq!(
            loaded.tables["issue_comments"].deleted,
            1,
            "{}",
            wh.backend()
        );
        assert_eq!(
            loaded.tables["review_comments"].deleted,
            1,
            "{}",
            wh.backend()
        );
        let stored = warehouse_tables(wh.as_ref()).await;
        assert!(!stored["issue_comments"]
            .values()
            .any(|c| c["comment_id"] == issue_comment));
        assert!(!stored["review_comments"]
            .values()
            .any(|c| c["comment_id"] == review_comment));
        assert_tables_eq(&stored, &truth);
        // Loading the first collection again brings nothing back.
        load_collection(wh.as_ref(), &lake, &org(), &first.collection_id)
            .await
            .unwrap();
        assert_tables_eq(&warehouse_tables(wh.as_ref()).await, &truth);
    }
    // The pull request's updatedAt did not move.
    assert!(sim
        .world()
        .pull_requests()
        .any(|(_, p)| p.updated_at == updated));
}

/// Comments edited on pull requests outside the window are invisible to `collect` (GitHub does
/// not bump `updatedAt` for an edit). The sweep lists comments edited since the window's start
/// (two REST listings per repository, comments on issues left out) and collects those pull
/// requests again: the edit lands, and a deletion on the same pull request is reconciled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_comment_sweep_brings_edits_on_pull_requests_outside_the_window() {
    let sim = Simulator::start(&OrgSpec::new(ORG, 2, 80, 43), SimOptions::default(), 0)
        .await
        .unwrap();
    let client = fast_client(&sim.url(), &["t"]);
    let lake = memory_lake();
    let first = collect(&client, &lake, &options(everything(), &[])).await;
    let (_dir, wh) = sqlite_warehouse().await;
    load_collection(&wh, &lake, &org(), &first.collection_id)
        .await
        .unwrap();
    let now =
        chrono::DurationRound::duration_trunc(chrono::Utc::now(), chrono::Duration::seconds(1))
            .unwrap();
    let old = now - chrono::Duration::days(2);
    let (edited_pr, edited_comment, deleted_comment, edited_review_comment) = sim.edit(|w| {
        let next_id = w.take_id();
        let r = &mut w.repositories[0];
        let p = r
            .pull_requests
            .iter_mut()
            .find(|p| p.updated_at < old && p.comments.len() >= 2)
            .expect("an old pull request with two comments");
        p.comments[0].body = "edited: much longer than before, so its length changes".into();
        p.comments[0].updated_at = now;
        let edited = (p.number, p.comments[0].id);
        let deleted = p.comments.remove(1).id;
        let q = r
            .pull_requests
            .iter_mut()
            .find(|q| {
                q.updated_at < old
                    && q.number != edited.0
                    && q.reviews.iter().any(|v| !v.comments.is_empty())
            })
            .expect("an old pull request with review comments");
        let c = q
            .reviews
            .iter_mut()
            .flat_map(|v| v.comments.iter_mut())
            .next()
            .unwrap();
        c.body = "an edited review comment, longer than any generated one".into();
        c.updated_at = now;
        let rc = c.id;
        // A comment on an issue (not a pull request) edited in the window is left out.
        r.issues.push(Issue {
            number: 100_000,
            comments: vec![IssueComment {
                id: next_id,
                author: None,
                created_at: now,
                updated_at: now,
                body: "on an issue".into(),
            }],
        });
        (edited.0, edited.1, deleted, rc)
    });
    let window = ghstats::github::Window {
        since: now - chrono::Duration::hours(1),
        until: now + chrono::Duration::seconds(1),
    };
    // The hourly collect does not see the edits.
    let hourly = collect(&client, &lake, &options(window, &[])).await;
    load_collection(&wh, &lake, &org(), &hourly.collection_id)
        .await
        .unwrap();
    let stored = warehouse_tables(&wh).await;
    assert!(stored["issue_comments"]
        .values()
        .any(|c| c["comment_id"] == deleted_comment));
    // The sweep does.
    sim.reset_ledger();
    let mut opts = options(window, &[]);
    opts.kind = ghstats::lake::checkpoint::CollectionKind::Sweep;
    let sweep = collect(&client, &lake, &opts).await;
    assert_eq!(sweep.status, ghstats::lake::checkpoint::Status::Completed);
    let swept = read_collection(&lake, &sweep.collection_id).await;
    let prs: Vec<u64> = swept["pull_requests"]
        .values()
        .map(|r| r["pr_number"].as_u64().unwrap())
        .collect();
    assert!(prs.contains(&edited_pr), "{prs:?}");
    assert!(!prs.contains(&100_000));
    load_collection(&wh, &lake, &org(), &sweep.collection_id)
        .await
        .unwrap();
    let stored = warehouse_tables(&wh).await;
    assert_tables_eq(&stored, &expected(&sim.world(), &everything(), &[]));
    assert!(stored["issue_comments"]
        .values()
        .any(|c| c["comment_id"] == edited_comment
            && c["updated_at"] == now.format("%Y-%m-%dT%H:%M:%SZ").to_string()));
    assert!(stored["review_comments"]
        .values()
        .any(|c| c["comment_id"] == edited_review_comment
            && c["updated_at"] == now.format("%Y-%m-%dT%H:%M:%SZ").to_string()));
    // Two listings per repository, one page each; one query per pull request swept.
    let ledger = sim.ledger();
    let route = |r: &str| ledger.by_route.get(r).copied().unwrap_or(0);
    assert_eq!(
        route("GET /repos/{owner}/{repo}/issues/comments"),
        2,
        "{:?}",
        ledger.by_route
    );
    assert_eq!(
        route("GET /repos/{owner}/{repo}/pulls/comments"),
        2,
        "{:?}",
        ledger.by_route
    );
    assert!(
        route("POST /graphql PullRequestByNumber") >= 2,
        "{:?}",
        ledger.by_route
    );
}
