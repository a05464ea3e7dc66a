//! End to end against the GitHub simulator: what the chunks hold equals the simulator's
//! ground truth, entity by entity and field by field.

mod common;

use common::*;
use ghstats::lake::checkpoint::{RepoState, Status};
use github_sim::{Fault, FaultPlan, OrgSpec, SimOptions, Simulator};
use std::time::{Duration, Instant};

async fn sim(repos: usize, prs: usize, seed: u64) -> Simulator {
    Simulator::start(
        &OrgSpec::new(ORG, repos, prs, seed),
        SimOptions::default(),
        0,
    )
    .await
    .expect("simulator starts")
}

#[tokio::test]
async fn collected_rows_equal_the_ground_truth_including_oversized_prs() {
    let sim = sim(4, 300, 11).await;
    let token = "ghp_e2eSECRETtoken0123456789";
    let client = fast_client(&sim.url(), &[token]);
    let lake = memory_lake();
    let window = everything();
    let result = collect(&client, &lake, &options(window, &[])).await;
    assert_eq!(result.status, Status::Completed);
    let actual = read_collection(&lake, &result.collection_id).await;
    let world = sim.world();
    let expected = expected(&world, &window, &[]);
    assert_tables_eq(&actual, &expected);
    // The oversized pull requests came through whole.
    let commits_of = |n: u64| {
        actual["pr_commits"]
            .values()
            .filter(|r| r["repository"] == "repo-000" && r["pr_number"] == n)
            .count()
    };
    let big = world.repositories[0]
        .pull_requests
        .iter()
        .find(|p| p.commits.len() > 250)
        .unwrap();
    assert_eq!(commits_of(big.number), big.commits.len());
    assert!(actual["review_comments"].len() > 140);
    // Archived repositories and forks were skipped.
    assert!(!actual["repositories"]
        .values()
        .any(|r| r["repository"] == "old-archived" || r["repository"] == "forked-lib"));
    // The cost the client counted is what the simulator served.
    let ledger = sim.ledger();
    assert_eq!(result.api_cost.graphql_queries, ledger.graphql_queries);
    assert_eq!(result.api_cost.rest_requests, ledger.rest_requests);
    assert_eq!(result.api_cost.graphql_points, ledger.graphql_points);
    assert!(result.api_cost.calls() <= 40, "{:?}", result.api_cost);
    // The token is in no chunk and no checkpoint.
    for (path, _) in lake
        .list(&object_store::path::Path::from(""))
        .await
        .unwrap()
    {
        let bytes = lake.get(&path).await.unwrap();
        let text = if path.as_ref().ends_with(".gz") {
            let mut out = String::new();
            std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut out)
                .unwrap();
            out
        } else {
            String::from_utf8_lossy(&bytes).into_owned()
        };
        assert!(!text.contains(token), "{path} contains the token");
    }
    assert!(!format!("{client:?}{result:?}").contains(token));
}

#[tokio::test]
async fn faults_on_ten_percent_of_requests_lose_and_duplicate_nothing() {
    let sim = sim(4, 300, 12).await;
    sim.set_faults(FaultPlan {
        next: vec![Fault::BadGateway, Fault::PartialGraphql],
        rate: 0.10,
        kinds: vec![
            Fault::BadGateway,
            Fault::SecondaryLimit { retry_after: 1 },
            Fault::SecondaryLimit { retry_after: 0 },
            Fault::PartialGraphql,
            Fault::ResourceLimit,
            Fault::Slow { millis: 100 },
        ],
        seed: 99,
    });
    let client = fast_client(&sim.url(), &["t1"]);
    let lake = memory_lake();
    let window = everything();
    let result = collect(&client, &lake, &options(window, &[])).await;
    assert_eq!(result.status, Status::Completed, "{:?}", result.repos);
    let ledger = sim.ledger();
    assert!(
        ledger.faults_injected >= 4,
        "faults injected: {}",
        ledger.faults_injected
    );
    let actual = read_collection(&lake, &result.collection_id).await;
    assert_tables_eq(&actual, &expected(&sim.world(), &window, &[]));
}

#[tokio::test]
async fn a_second_run_over_the_same_window_writes_a_new_collection_with_the_same_rows() {
    let sim = sim(3, 150, 13).await;
    let client = fast_client(&sim.url(), &["t1"]);
    let lake = memory_lake();
    let window = everything();
    let first = collect(&client, &lake, &options(window, &[])).await;
    let second = collect(&client, &lake, &options(window, &[])).await;
    assert_ne!(first.collection_id, second.collection_id);
    let a = read_collection(&lake, &first.collection_id).await;
    let b = read_collection(&lake, &second.collection_id).await;
    assert!(row_count(&a) > 500);
    assert_tables_eq(&b, &a);
}

#[tokio::test]
async fn an_incremental_run_after_50_changes_fetches_only_what_changed() {
    let sim = sim(3, 400, 14).await;
    let client = fast_client(&sim.url(), &["t1"]);
    let lake = memory_lake();
    let first = collect(&client, &lake, &options(everything(), &["repo-001"])).await;
    assert_eq!(first.status, Status::Completed);
    let report = sim.change(50, 5, Some("repo-001"));
    assert_eq!(report.changed.len(), 50);
    assert!(
        report.force_pushes + report.deleted_comments + report.edited_comments > 0,
        "{report:?}"
    );
    let window = window_after(first.window.until).await;
    sim.reset_ledger();
    let client = fast_client(&sim.url(), &["t1"]);
    let inc = collect(&client, &lake, &options(window, &["repo-001"])).await;
    assert_eq!(inc.status, Status::Completed);
    let actual = read_collection(&lake, &inc.collection_id).await;
    let fetched: std::collections::BTreeSet<u64> = actual["pull_requests"]
        .values()
        .map(|r| r["pr_number"].as_u64().unwrap())
        .collect();
    let changed: std::collections::BTreeSet<u64> = report.changed.iter().map(|(_, n)| *n).collect();
    assert_eq!(fetched, changed);
    assert_tables_eq(&actual, &expected(&sim.world(), &window, &["repo-001"]));
    let ledger = sim.ledger();
    let listing = ledger
        .by_route
        .get("POST /graphql OrganizationRepositories")
        .copied()
        .unwrap_or(0);
    assert_eq!(listing, 1);
    let calls = ledger.graphql_queries + ledger.rest_requests - listing;
    assert!(
        calls <= 5,
        "incremental run used {calls} calls besides the listing: {:?}",
        ledger.by_route
    );
}

#[tokio::test]
async fn work_moves_to_the_token_with_budget_left() {
    let spec = OrgSpec::new(ORG, 3, 200, 15);
    // 12 points a token: the organization takes about 26 by GitHub's formula (its pages,
    // review-comment batches and follow-ups), more than any one token has.
    let options_sim = SimOptions {
        graphql_limit: 12,
        rest_limit: 100,
        tokens: vec!["a".into(), "b".into(), "c".into()],
        ..SimOptions::default()
    };
    let sim = Simulator::start(&spec, options_sim, 0).await.unwrap();
    let client = fast_client(&sim.url(), &["a", "b", "c"]);
    let lake = memory_lake();
    let window = everything();
    let result = collect(&client, &lake, &options(window, &[])).await;
    assert_eq!(result.status, Status::Completed, "{:?}", result.repos);
    // More points than one token has: at least two tokens did the work.
    assert!(result.api_cost.graphql_points > 12, "{:?}", result.api_cost);
    assert_tables_eq(
        &read_collection(&lake, &result.collection_id).await,
        &expected(&sim.world(), &window, &[]),
    );
    // An unknown token is refused with GitHub's message.
    let bad = fast_client(&sim.url(), &["nope"]);
    let err = ghstats::jobs::collect(
        &bad,
        &lake,
        &options(window, &[]),
        &ghstats::jobs::Progress::hidden(),
    )
    .await
    .unwrap_err();
    assert!(format!("{err:#}").contains("Bad credentials"), "{err:#}");
}

#[tokio::test]
async fn an_exhausted_budget_stops_the_run_as_partial_at_its_deadline() {
    let spec = OrgSpec::new(ORG, 2, 200, 16);
    let sim = Simulator::start(
        &spec,
        // Enough for the listing and a page or two with their review comments, far from
        // the whole organization.
        SimOptions {
            graphql_limit: 8,
            rest_limit: 100,
            tokens: vec![],
            ..SimOptions::default()
        },
        0,
    )
    .await
    .unwrap();
    let mut opts = options(everything(), &[]);
    opts.deadline = Instant::now() + Duration::from_secs(5);
    let client = {
        let mut o = ghstats::github::ClientOptions {
            base_backoff: Duration::from_millis(10),
            ..Default::default()
        };
        o.deadline = Some(opts.deadline);
        ghstats::github::GithubClient::new(
            sim.url().parse().unwrap(),
            vec![ghstats::config::Secret::new("t")],
            o,
        )
        .unwrap()
    };
    let lake = memory_lake();
    let started = Instant::now();
    let result = collect(&client, &lake, &opts).await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the run must not wait for the hourly reset"
    );
    assert_eq!(result.status, Status::Partial);
    assert!(result
        .repos
        .iter()
        .any(|r| r.state == RepoState::InProgress));
    // The checkpoint keeps the cursor in hand for a resume.
    let store = ghstats::lake::CheckpointStore::new(lake.clone(), ORG.parse().unwrap());
    let cp = store.load(&result.collection_id).await.unwrap();
    assert_eq!(cp.status, Status::Partial);
    assert!(cp
        .repos
        .iter()
        .any(|r| r.state == RepoState::InProgress && r.walk.cursor.is_some()));
}

#[tokio::test]
async fn an_unknown_repository_is_a_clear_error() {
    let sim = sim(2, 20, 17).await;
    let client = fast_client(&sim.url(), &["t"]);
    let err = ghstats::jobs::collect(
        &client,
        &memory_lake(),
        &options(everything(), &["no-such-repo"]),
        &ghstats::jobs::Progress::hidden(),
    )
    .await
    .unwrap_err();
    assert!(
        format!("{err:#}").contains("repository no-such-repo is not in the organization"),
        "{err:#}"
    );
}

#[tokio::test]
async fn prs_past_250_commits_are_complete_even_when_github_caps_total_count() {
    let options_sim = SimOptions {
        cap_commit_total_count: true,
        ..SimOptions::default()
    };
    let sim = Simulator::start(&OrgSpec::new(ORG, 2, 60, 18), options_sim, 0)
        .await
        .unwrap();
    let client = fast_client(&sim.url(), &["t"]);
    let lake = memory_lake();
    let result = collect(&client, &lake, &options(everything(), &["repo-000"])).await;
    let actual = read_collection(&lake, &result.collection_id).await;
    let world = sim.world();
    let big = world.repositories[0]
        .pull_requests
        .iter()
        .find(|p| p.commits.len() > 250)
        .unwrap();
    let got = actual["pr_commits"]
        .values()
        .filter(|r| r["pr_number"] == big.number)
        .count();
    assert_eq!(
        got,
        big.commits.len(),
        "commits past GitHub's cap were lost"
    );
    assert_tables_eq(&actual, &expected(&world, &everything(), &["repo-000"]));
}

/// A collection killed again and again (its future dropped at ever later moments, as a crash
/// would) and resumed each time ends with exactly the ground truth; each resume refetches at
/// most the page in hand per repository. Resuming it once more changes nothing and says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collection_killed_again_and_again_resumes_to_the_ground_truth() {
    use ghstats::jobs::{collect::resume, Progress};
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;
    let sim = sim(3, 150, 19).await;
    let client = fast_client(&sim.url(), &["t"]);
    let lake = memory_lake();
    let mut opts = options(everything(), &[]);
    opts.page_size = 10;
    opts.page_size_max = 10;
    // The first run stops before its first page: a checkpoint with nothing done.
    opts.stop = vec![Arc::new(AtomicBool::new(true))];
    let first = collect(&client, &lake, &opts).await;
    assert_eq!(first.status, Status::Partial);
    assert_eq!(first.rows.get("pull_requests"), None, "{:?}", first.rows);
    opts.stop = Vec::new();
    let id = first.collection_id.clone();
    let (mut runs, mut kills) = (0u64, 0u64);
    loop {
        runs += 1;
        assert!(runs < 500, "the collection never completed");
        let alive = Duration::from_millis(20 + 7 * runs);
        match tokio::time::timeout(
            alive,
            resume(&client, &lake, &opts, &id, &Progress::hidden()),
        )
        .await
        {
            Err(_) => kills += 1,
            Ok(r) => {
                let r = r.unwrap();
                if r.status == Status::Completed {
                    break;
                }
            }
        }
    }
    assert!(kills >= 2, "only {kills} kills in {runs} runs");
    assert_tables_eq(
        &read_collection(&lake, &id).await,
        &expected(&sim.world(), &everything(), &[]),
    );
    // Rows of a page fetched again after a kill are written twice: at most a page per
    // repository per kill.
    let cp = ghstats::lake::CheckpointStore::new(lake.clone(), ORG.parse().unwrap())
        .load(&id)
        .await
        .unwrap();
    let written: u64 = cp
        .chunks
        .iter()
        .filter(|c| c.table == "pull_requests")
        .map(|c| c.rows)
        .sum();
    let expected_prs = expected(&sim.world(), &everything(), &[])["pull_requests"].len() as u64;
    assert!(
        written <= expected_prs + kills * 3 * 10,
        "{written} pull-request rows written for {expected_prs} pull requests and {kills} kills"
    );
    let again = resume(&client, &lake, &opts, &id, &Progress::hidden())
        .await
        .unwrap();
    assert_eq!(again.status, Status::Completed);
    assert!(
        again
            .note
            .as_deref()
            .unwrap_or("")
            .contains("already completed"),
        "{again:?}"
    );
}
