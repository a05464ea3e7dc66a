//! The failure kinds found by replaying other collectors' public bug reports, on the simulator:
//! pagination that does not advance, a pull request GitHub cannot serve, a review deleted
//! between two queries, comment bodies far larger than a page should be, a stop that must be
//! honoured between any two requests, and the API cost of full detail by GitHub's formula.

mod common;

use common::*;
use ghstats::lake::checkpoint::Status;
use github_sim::graphql::{StuckMode, StuckPagination};
use github_sim::model::node_id;
use github_sim::{generate, OrgSpec, SimOptions, Simulator};
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

async fn sim_with(repos: usize, prs: usize, seed: u64, options: SimOptions) -> Simulator {
    let world = generate::generate(&OrgSpec::new(ORG, repos, prs, seed), chrono::Utc::now());
    Simulator::serve(world, options, 0)
        .await
        .expect("simulator starts")
}

/// `expected` without the rows of the pull requests `(repo, number)`.
fn without_prs(mut t: Tables, prs: &[(&str, u64)]) -> Tables {
    for rows in t.values_mut() {
        rows.retain(|_, row| {
            !prs.iter().any(|(r, n)| {
                row["repository"] == Value::String(r.to_string()) && row["pr_number"] == *n
            })
        });
    }
    t
}

/// A run with a short deadline, so a walk that never ends fails the test instead of hanging it.
fn bounded(window: ghstats::github::Window) -> ghstats::jobs::CollectOptions {
    let mut o = options(window, &[]);
    o.deadline = Instant::now() + Duration::from_secs(60);
    o
}

fn page_queries(sim: &Simulator) -> u64 {
    sim.ledger()
        .by_route
        .get("POST /graphql PullRequestPage")
        .copied()
        .unwrap_or(0)
}

#[tokio::test]
async fn pull_request_pages_that_do_not_advance_fail_the_repository_after_one_retry() {
    for mode in [
        StuckMode::SameCursor,
        StuckMode::NullCursor,
        StuckMode::Empty,
    ] {
        let sim = sim_with(3, 240, 5, SimOptions::default()).await;
        let client = fast_client(&sim.url(), &["t"]);
        let window = everything();
        // A clean run first, for the number of pages the organization takes.
        let clean = collect(&client, &memory_lake(), &bounded(window)).await;
        assert_eq!(clean.status, Status::Completed);
        let clean_pages = page_queries(&sim);
        sim.reset_ledger();
        sim.set_options(SimOptions {
            stuck_pagination: vec![StuckPagination {
                repo: "repo-001".into(),
                connection: "pullRequests".into(),
                pr: None,
                mode,
            }],
            ..SimOptions::default()
        });
        let lake = memory_lake();
        let result = collect(&client, &lake, &bounded(window)).await;
        assert_eq!(result.status, Status::Failed, "{mode:?}");
        let stuck = result.repos.iter().find(|r| r.name == "repo-001").unwrap();
        let error = stuck.error.as_deref().unwrap_or_default();
        assert!(
            error.contains("does not advance") && error.contains("one retry"),
            "{mode:?}: {error}"
        );
        // The first page, the page that did not advance and its one retry: nothing more.
        assert!(
            page_queries(&sim) <= clean_pages + 2,
            "{mode:?}: {} page queries against {clean_pages} for the whole clean run",
            page_queries(&sim)
        );
        // The other repositories are whole.
        let actual = read_collection(&lake, &result.collection_id).await;
        let world = sim.world();
        let mut expected = expected(&world, &window, &["repo-000", "repo-002"]);
        let first_page = actual["pull_requests"]
            .values()
            .filter(|r| r["repository"] == "repo-001")
            .count();
        assert!(first_page > 0, "the first page of repo-001 was written");
        for (table, rows) in actual.iter() {
            for (k, row) in rows {
                if row["repository"] == "repo-001" {
                    expected
                        .entry(table.clone())
                        .or_default()
                        .insert(k.clone(), row.clone());
                }
            }
        }
        assert_tables_eq(&actual, &expected);
        sim.stop().await;
    }
}

#[tokio::test]
async fn a_pull_requests_child_connection_that_does_not_advance_skips_that_pull_request() {
    let sim = sim_with(2, 120, 9, SimOptions::default()).await;
    let world = sim.world();
    let big = world.repositories[0]
        .pull_requests
        .iter()
        .find(|p| p.commits.len() > 100)
        .expect("an oversized pull request")
        .number;
    sim.set_options(SimOptions {
        stuck_pagination: vec![StuckPagination {
            repo: "repo-000".into(),
            connection: "commits".into(),
            pr: Some(big),
            mode: StuckMode::SameCursor,
        }],
        ..SimOptions::default()
    });
    let client = fast_client(&sim.url(), &["t"]);
    let lake = memory_lake();
    let window = everything();
    let result = collect(&client, &lake, &bounded(window)).await;
    assert_eq!(result.status, Status::Completed);
    let repo = result.repos.iter().find(|r| r.name == "repo-000").unwrap();
    assert_eq!(
        repo.not_collectable
            .iter()
            .map(|s| s.number)
            .collect::<Vec<_>>(),
        vec![big]
    );
    assert!(repo.not_collectable[0].error.contains("does not advance"));
    let actual = read_collection(&lake, &result.collection_id).await;
    let expected = without_prs(expected(&world, &window, &[]), &[("repo-000", big)]);
    assert_tables_eq(&actual, &expected);
}

#[tokio::test]
async fn a_pull_request_github_cannot_serve_is_stepped_past_recorded_and_read_next_run() {
    let sim = sim_with(2, 150, 13, SimOptions::default()).await;
    let world = sim.world();
    // A pull request in the middle of repo-000's walk, newest update first.
    let mut order: Vec<_> = world.repositories[0].pull_requests.iter().collect();
    order.sort_by_key(|p| std::cmp::Reverse((p.updated_at, p.number)));
    let poison = order[order.len() / 2].number;
    sim.set_options(SimOptions {
        poison_pull_requests: vec![("repo-000".into(), poison)],
        ..SimOptions::default()
    });
    let client = fast_client(&sim.url(), &["t"]);
    let lake = memory_lake();
    let window = everything();
    let result = collect(&client, &lake, &bounded(window)).await;
    assert_eq!(result.status, Status::Completed);
    let repo = result.repos.iter().find(|r| r.name == "repo-000").unwrap();
    assert_eq!(repo.not_collectable.len(), 1);
    assert_eq!(repo.not_collectable[0].number, poison);
    assert!(
        repo.not_collectable[0].error.contains("502"),
        "{:?}",
        repo.not_collectable
    );
    // Every other pull request, older ones included, is whole.
    let actual = read_collection(&lake, &result.collection_id).await;
    assert_tables_eq(
        &actual,
        &without_prs(expected(&world, &window, &[]), &[("repo-000", poison)]),
    );
    // The checkpoint names it.
    let cp = ghstats::lake::CheckpointStore::new(lake.clone(), ORG.parse().unwrap())
        .load(&result.collection_id)
        .await
        .unwrap();
    let entry = cp.repos.iter().find(|r| r.name == "repo-000").unwrap();
    assert_eq!(entry.walk.skipped[0].number, poison);

    // GitHub serves it again: the next collection, whose window does not hold it, reads it.
    sim.set_options(SimOptions::default());
    let next = window_after(window.until).await;
    let again = collect(&client, &lake, &bounded(next)).await;
    assert_eq!(again.status, Status::Completed);
    assert!(again.repos.iter().all(|r| r.not_collectable.is_empty()));
    let rows = read_collection(&lake, &again.collection_id).await;
    let key = format!("{}|{poison}", world.repositories[0].id);
    assert!(
        rows["pull_requests"].contains_key(&key),
        "the pull request skipped before was collected: {:?}",
        rows["pull_requests"].keys().collect::<Vec<_>>()
    );
    let full = expected(&world, &window, &["repo-000"]);
    assert_eq!(rows["pull_requests"][&key], full["pull_requests"][&key]);
}

#[tokio::test]
async fn a_review_deleted_before_its_comments_are_read_is_dropped_and_the_rest_collected() {
    let sim = sim_with(2, 120, 17, SimOptions::default()).await;
    let world = sim.world();
    let (pr, review) = world.repositories[1]
        .pull_requests
        .iter()
        .find_map(|p| {
            p.reviews
                .iter()
                .find(|r| !r.comments.is_empty())
                .map(|r| (p, r))
        })
        .expect("a review with comments");
    sim.set_options(SimOptions {
        vanished_nodes: vec![node_id("PRR", review.id)],
        ..SimOptions::default()
    });
    let client = fast_client(&sim.url(), &["t"]);
    let lake = memory_lake();
    let window = everything();
    let result = collect(&client, &lake, &bounded(window)).await;
    assert_eq!(result.status, Status::Completed);
    let actual = read_collection(&lake, &result.collection_id).await;
    let mut want = expected(&world, &window, &[]);
    for table in ["reviews", "review_comments"] {
        want.get_mut(table)
            .unwrap()
            .retain(|_, row| row["review_id"] != review.id);
    }
    let key = format!("{}|{}", world.repositories[1].id, pr.number);
    let row = want
        .get_mut("pull_requests")
        .unwrap()
        .get_mut(&key)
        .unwrap();
    row["review_count"] = (pr.reviews.len() as u64 - 1).into();
    assert!(
        actual["pull_requests"]
            .values()
            .any(|r| r["repository"] == "repo-001" && r["pr_number"] == pr.number),
        "its pull request is still collected"
    );
    assert_tables_eq(&actual, &want);
}

#[tokio::test]
async fn long_comment_bodies_are_not_fetched_and_a_response_too_large_shrinks_the_page() {
    let mut world = generate::generate(&OrgSpec::new(ORG, 2, 150, 21), chrono::Utc::now());
    let long = "x".repeat(65_000);
    for repo in &mut world.repositories {
        for pr in &mut repo.pull_requests {
            for c in &mut pr.comments {
                c.body = long.clone();
            }
            for r in &mut pr.reviews {
                r.body = long.clone();
                for c in &mut r.comments {
                    c.body = long.clone();
                }
            }
        }
    }
    let sim = Simulator::serve(world, SimOptions::default(), 0)
        .await
        .unwrap();
    let window = everything();
    let client = fast_client(&sim.url(), &["t"]);
    let lake = memory_lake();
    let result = collect(&client, &lake, &bounded(window)).await;
    assert_eq!(result.status, Status::Completed);
    let largest = sim.ledger().largest_graphql_response_bytes;
    assert!(
        largest < 2 << 20,
        "a response of {largest} bytes: bodies were fetched"
    );
    let world = sim.world();
    assert_tables_eq(
        &read_collection(&lake, &result.collection_id).await,
        &expected(&world, &window, &[]),
    );

    // A client that keeps at most a quarter of the largest response: pages shrink until they
    // fit, the size learned holds, and the run collects everything else; a pull request whose
    // follow-up alone is too large is recorded as not collectable, not half-stored.
    let clean_pages = page_queries(&sim);
    sim.reset_ledger();
    let small = ghstats::github::GithubClient::new(
        sim.url().parse().unwrap(),
        vec![ghstats::config::Secret::new("t")],
        ghstats::github::ClientOptions {
            max_response_bytes: (largest / 4) as usize,
            base_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(100),
            ..Default::default()
        },
    )
    .unwrap();
    let lake = memory_lake();
    let result = collect(&small, &lake, &bounded(window)).await;
    assert_eq!(result.status, Status::Completed, "{:?}", result.repos);
    let mut skipped: Vec<(&str, u64)> = Vec::new();
    for r in &result.repos {
        for s in &r.not_collectable {
            assert!(s.error.contains("larger than"), "{s:?}");
            skipped.push((r.name.as_str(), s.number));
        }
    }
    assert!(
        page_queries(&sim) > clean_pages,
        "pages shrank: {} page queries against {clean_pages}",
        page_queries(&sim)
    );
    assert_tables_eq(
        &read_collection(&lake, &result.collection_id).await,
        &without_prs(expected(&world, &window, &[]), &skipped),
    );
}

#[tokio::test]
async fn a_stop_is_honoured_between_any_two_requests_inside_a_page() {
    // Every pull request has follow-ups (oversized connections need them); each response is
    // slow, so the stop lands while a page is being completed.
    let sim = sim_with(1, 400, 23, SimOptions::default()).await;
    sim.set_faults(github_sim::FaultPlan::slow(150));
    let client = fast_client(&sim.url(), &["t"]);
    let stop = Arc::new(AtomicBool::new(false));
    let mut o = bounded(everything());
    o.max_workers = 1;
    o.stop = vec![stop.clone()];
    let lake = memory_lake();
    let run = tokio::spawn({
        let lake = lake.clone();
        async move { collect(&client, &lake, &o).await }
    });
    // Wait until the walk is past its first pages, then stop.
    while sim.ledger().graphql_queries < 4 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let at_stop = sim.ledger().graphql_queries + sim.ledger().rest_requests;
    let result = run.await.unwrap();
    let after = sim.ledger().graphql_queries + sim.ledger().rest_requests;
    assert_eq!(result.status, Status::Partial);
    assert!(
        after <= at_stop + 1,
        "{} requests were sent after the stop (one may be in flight)",
        after - at_stop
    );
}

/// The goal of issue 11: full detail for at most 150 budget units (REST requests + GraphQL
/// points, by GitHub's documented formula with count-only connections charged) per 1,000 pull
/// requests, on an organization with oversized pull requests (more than 100 commits, reviews,
/// comments, review comments, labels; more than 250 commits), bots and deleted accounts.
#[tokio::test]
async fn full_detail_costs_at_most_150_budget_units_per_1000_pull_requests() {
    let sim = sim_with(6, 3000, 42, SimOptions::default()).await;
    let client = fast_client(&sim.url(), &["t"]);
    let mut o = bounded(everything());
    o.page_size = 25;
    o.page_size_max = 37;
    let result = collect(&client, &memory_lake(), &o).await;
    assert_eq!(result.status, Status::Completed);
    let prs = result.rows["pull_requests"];
    let ledger = sim.ledger();
    let units = ledger.rest_requests + ledger.graphql_points;
    let per_1000 = units as f64 * 1000.0 / prs as f64;
    eprintln!(
        "{prs} pull requests: {} REST requests + {} GraphQL points = {per_1000:.1} budget units per 1,000; {:?}",
        ledger.rest_requests, ledger.graphql_points, ledger.by_route
    );
    assert!(
        per_1000 <= 150.0,
        "{per_1000:.1} budget units per 1,000 pull requests"
    );
    // What the client counted is what the simulator charged.
    assert_eq!(result.api_cost.graphql_points, ledger.graphql_points);
}

#[tokio::test]
async fn a_reviews_comments_that_do_not_advance_skip_only_that_pull_request() {
    let sim = sim_with(2, 120, 9, SimOptions::default()).await;
    let world = sim.world();
    let big = world.repositories[0]
        .pull_requests
        .iter()
        .find(|p| p.reviews.iter().any(|r| r.comments.len() > 100))
        .expect("a review with more than 100 comments")
        .number;
    sim.set_options(SimOptions {
        stuck_pagination: vec![StuckPagination {
            repo: "repo-000".into(),
            connection: "reviewComments".into(),
            pr: Some(big),
            mode: StuckMode::SameCursor,
        }],
        ..SimOptions::default()
    });
    let client = fast_client(&sim.url(), &["t"]);
    let lake = memory_lake();
    let window = everything();
    let result = collect(&client, &lake, &bounded(window)).await;
    assert_eq!(result.status, Status::Completed, "{:?}", result.repos);
    let repo = result.repos.iter().find(|r| r.name == "repo-000").unwrap();
    assert_eq!(
        repo.not_collectable
            .iter()
            .map(|s| s.number)
            .collect::<Vec<_>>(),
        vec![big]
    );
    assert_tables_eq(
        &read_collection(&lake, &result.collection_id).await,
        &without_prs(expected(&world, &window, &[]), &[("repo-000", big)]),
    );
}

/// SIGTERM while the client waits out a spent rate limit (two minutes here) ends the wait at
/// once: the run answers `partial` instead of sleeping until the reset.
#[tokio::test]
async fn sigterm_ends_a_rate_limit_wait_at_once() {
    let sim = sim_with(2, 120, 3, SimOptions::default()).await;
    let stop = Arc::new(AtomicBool::new(false));
    let client = ghstats::github::GithubClient::new(
        sim.url().parse().unwrap(),
        vec![ghstats::config::Secret::new("t")],
        ghstats::github::ClientOptions {
            base_backoff: Duration::from_millis(10),
            stop: Some(stop.clone()),
            ..Default::default()
        },
    )
    .unwrap();
    let mut o = bounded(everything());
    o.deadline = Instant::now() + Duration::from_secs(600);
    o.stop = vec![stop.clone()];
    // The first page answers that the budget is spent until two minutes from now.
    let lake = memory_lake();
    let first = collect(&client, &lake, &o).await;
    assert_eq!(first.status, Status::Completed);
    sim.set_faults(github_sim::FaultPlan {
        next: vec![github_sim::Fault::Exhausted { reset_in: 120 }],
        ..Default::default()
    });
    let run = tokio::spawn({
        let lake = lake.clone();
        let o = o.clone();
        async move {
            ghstats::jobs::collect(&client, &lake, &o, &ghstats::jobs::Progress::hidden()).await
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stopped = Instant::now();
    stop.store(true, Ordering::Relaxed);
    let outcome = tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .expect("the run ended soon after SIGTERM, not at the reset two minutes later")
        .unwrap();
    eprintln!("ended {:?} after the stop", stopped.elapsed());
    // The budget ran out on the repository listing, before any checkpoint: the run ends with
    // the stop as its reason (a later page would end `partial`, as the other tests show).
    let e = outcome.expect_err("stopped while listing the repositories");
    assert!(format!("{e:#}").contains("shutdown"), "{e:#}");
}

/// The comment sweep meets a pull request GitHub cannot serve: it is recorded as not
/// collectable and stepped past, the other edited pull request is collected, and the
/// repository is done. A run over other repositories keeps the record for the next run that
/// covers it.
#[tokio::test]
async fn the_sweep_steps_past_a_pull_request_github_cannot_serve_and_the_record_survives() {
    let sim = sim_with(2, 150, 27, SimOptions::default()).await;
    let client = fast_client(&sim.url(), &["t"]);
    let lake = memory_lake();
    let all = collect(&client, &lake, &bounded(everything())).await;
    assert_eq!(all.status, Status::Completed);
    let now =
        chrono::DurationRound::duration_trunc(chrono::Utc::now(), chrono::Duration::seconds(1))
            .unwrap();
    let old = now - chrono::Duration::days(2);
    let (edited, poison) = sim.edit(|w| {
        let mut picked = w.repositories[0]
            .pull_requests
            .iter_mut()
            .filter(|p| p.updated_at < old && !p.comments.is_empty());
        let a = picked.next().expect("an old pull request with comments");
        a.comments[0].updated_at = now;
        let a = a.number;
        let b = picked.next().expect("another");
        b.comments[0].updated_at = now;
        (a, b.number)
    });
    sim.set_options(SimOptions {
        poison_pull_requests: vec![("repo-000".into(), poison)],
        ..SimOptions::default()
    });
    let window = ghstats::github::Window {
        since: now - chrono::Duration::hours(1),
        until: now + chrono::Duration::seconds(1),
    };
    let mut o = bounded(window);
    o.kind = ghstats::lake::checkpoint::CollectionKind::Sweep;
    let swept = collect(&client, &lake, &o).await;
    assert_eq!(swept.status, Status::Completed, "{:?}", swept.repos);
    let repo = swept.repos.iter().find(|r| r.name == "repo-000").unwrap();
    assert_eq!(
        repo.not_collectable
            .iter()
            .map(|s| s.number)
            .collect::<Vec<_>>(),
        vec![poison]
    );
    let rows = read_collection(&lake, &swept.collection_id).await;
    let world = sim.world();
    let id = world.repositories[0].id;
    assert!(rows["pull_requests"].contains_key(&format!("{id}|{edited}")));
    assert!(!rows["pull_requests"].contains_key(&format!("{id}|{poison}")));

    // A run over repo-001 only, then GitHub serves the pull request again: the next run over
    // repo-000 reads it.
    let narrow = collect(&client, &lake, &options(window, &["repo-001"])).await;
    assert_eq!(narrow.status, Status::Completed);
    sim.set_options(SimOptions::default());
    let next = collect(&client, &lake, &bounded(window_after(window.until).await)).await;
    assert_eq!(next.status, Status::Completed);
    let rows = read_collection(&lake, &next.collection_id).await;
    assert!(
        rows["pull_requests"].contains_key(&format!("{id}|{poison}")),
        "the pull request recorded two runs before was read again"
    );
}
