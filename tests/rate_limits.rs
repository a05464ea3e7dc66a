//! Rate limits end to end against the simulator: every form GitHub uses for a spent GraphQL
//! budget is waited out to its reset, and a secondary limit holds every worker on its token.

mod common;

use common::*;
use ghstats::lake::checkpoint::Status;
use github_sim::{Fault, FaultPlan, OrgSpec, RateLimitForm, SimOptions, Simulator};
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
async fn a_graphql_rate_limit_in_an_undocumented_form_is_waited_out_to_its_reset() {
    for (seed, form) in [
        (41, RateLimitForm::RateLimitType),
        (42, RateLimitForm::HeadersOnly),
    ] {
        let sim = sim(3, 60, seed).await;
        let client = fast_client(&sim.url(), &["t1"]);
        let window = everything();
        // A run without limits, to know how many queries the work takes.
        let clean = collect(&client, &memory_lake(), &options(window, &[])).await;
        assert_eq!(clean.status, Status::Completed);
        let needed = clean.api_cost.graphql_queries;
        // The listing's request spends the GraphQL budget for two seconds; every GraphQL
        // answer until then says so in `form`.
        sim.set_faults(FaultPlan {
            next: vec![Fault::GraphqlRateLimit { reset_in: 2, form }],
            ..FaultPlan::default()
        });
        let client = fast_client(&sim.url(), &["t1"]);
        let lake = memory_lake();
        let started = Instant::now();
        let result = collect(&client, &lake, &options(window, &[])).await;
        assert_eq!(
            result.status,
            Status::Completed,
            "{form:?}: {:?}",
            result.repos
        );
        assert!(
            started.elapsed() >= Duration::from_secs(1),
            "{form:?}: the run did not wait for the reset"
        );
        assert_tables_eq(
            &read_collection(&lake, &result.collection_id).await,
            &expected(&sim.world(), &window, &[]),
        );
        // Each worker met the limit at most once: nobody kept asking until the reset.
        let refused = result.api_cost.graphql_queries - needed;
        let workers = options(window, &[]).max_workers as u64;
        assert!(
            (1..=workers).contains(&refused),
            "{form:?}: {refused} GraphQL queries refused"
        );
    }
}

#[tokio::test]
async fn a_graphql_rate_limit_never_waits_past_the_run_budget() {
    let sim = sim(2, 60, 43).await;
    // The budget is spent for an hour once the listing and a first page are served.
    sim.set_faults(FaultPlan {
        next: vec![
            Fault::Slow { millis: 1 },
            Fault::Slow { millis: 1 },
            Fault::GraphqlRateLimit {
                reset_in: 3600,
                form: RateLimitForm::RateLimitType,
            },
        ],
        ..FaultPlan::default()
    });
    let mut opts = options(everything(), &[]);
    opts.deadline = Instant::now() + Duration::from_secs(4);
    let client = ghstats::github::GithubClient::new(
        sim.url().parse().unwrap(),
        vec![ghstats::config::Secret::new("t")],
        ghstats::github::ClientOptions {
            base_backoff: Duration::from_millis(10),
            deadline: Some(opts.deadline),
            ..Default::default()
        },
    )
    .unwrap();
    let started = Instant::now();
    let result = collect(&client, &memory_lake(), &opts).await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the run waited for an hourly reset"
    );
    assert_eq!(result.status, Status::Partial, "{:?}", result.repos);
}

/// Requests that reach the simulator this soon after it issued a secondary limit were already
/// on their way when the client learned of it.
const IN_FLIGHT: u64 = 250;

#[tokio::test]
async fn a_secondary_limit_holds_every_worker_on_the_token_until_retry_after() {
    let sim = sim(6, 100, 44).await;
    // Every answer takes 100 ms, so the three workers are all busy when the secondary limit
    // comes (the 8th request), and keep sending through its 2 s window unless held back.
    let mut next = vec![Fault::Slow { millis: 100 }; 7];
    next.push(Fault::SecondaryLimit { retry_after: 2 });
    sim.set_faults(FaultPlan {
        next,
        ..FaultPlan::slow(100)
    });
    let client = fast_client(&sim.url(), &["t1"]);
    let lake = memory_lake();
    let window = everything();
    let opts = options(window, &[]);
    assert!(opts.max_workers > 1);
    let started = Instant::now();
    let result = collect(&client, &lake, &opts).await;
    assert_eq!(result.status, Status::Completed, "{:?}", result.repos);
    assert!(started.elapsed() >= Duration::from_secs(2));
    let ledger = sim.ledger();
    let inside: Vec<u64> = ledger
        .requests_during_secondary_limit
        .iter()
        .copied()
        .filter(|ms| *ms > IN_FLIGHT)
        .collect();
    assert!(
        inside.is_empty(),
        "requests sent while the token was held (ms after the limit): {inside:?}"
    );
    assert_tables_eq(
        &read_collection(&lake, &result.collection_id).await,
        &expected(&sim.world(), &window, &[]),
    );
}
