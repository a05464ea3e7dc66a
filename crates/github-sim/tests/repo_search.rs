//! Repository search over HTTP, as a star-count crawler uses it: GraphQL `search(type:
//! REPOSITORY)` pages and count probes with GitHub's cost, REST `/search/repositories` with
//! its own per-minute budget, the 1,000-result cap, secondary limits and star changes.

use github_sim::{OrgSpec, PopulationSpec, SimOptions, Simulator};
use serde_json::{json, Value};
use std::collections::BTreeSet;

const PAGE: &str = "query($q: String!, $after: String) { rateLimit { cost limit } search(type: REPOSITORY, query: $q, first: 100, after: $after) { repositoryCount pageInfo { hasNextPage endCursor } nodes { ... on Repository { databaseId id nameWithOwner owner { login } stargazerCount forkCount primaryLanguage { name } createdAt pushedAt isFork isArchived } } } }";

fn options(size: u32) -> SimOptions {
    SimOptions {
        population: PopulationSpec { seed: 5, size },
        ..SimOptions::default()
    }
}

async fn start(options: SimOptions) -> Simulator {
    Simulator::start(&OrgSpec::new("acme", 1, 5, 1), options, 0)
        .await
        .expect("the simulator starts")
}

async fn graphql(sim: &Simulator, query: &str, variables: Value) -> Value {
    reqwest::Client::new()
        .post(format!("{}/graphql", sim.url()))
        .header("authorization", "Bearer t")
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .expect("the simulator answers")
        .json()
        .await
        .expect("GraphQL answers JSON")
}

async fn rest(sim: &Simulator, path_and_query: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!("{}{path_and_query}", sim.url()))
        .header("authorization", "Bearer t")
        .send()
        .await
        .expect("the simulator answers")
}

/// The truth's count for a query, read from the population itself.
async fn truth_count(sim: &Simulator, q: &str) -> u64 {
    let p = sim.population().await;
    let p = p.read().expect("population lock");
    p.count(&github_sim::search::parse_repository_search(q).expect("query parses"))
}

#[tokio::test]
async fn graphql_pages_stop_at_the_cap_while_the_count_covers_the_whole_match() {
    let sim = start(options(100_000)).await;
    let q = "is:public created:2024-01-01..2025-12-31 sort:stars";
    let want = truth_count(&sim, q).await;
    assert!(want > 5_000, "the range holds more than the cap: {want}");
    let mut after = Value::Null;
    let mut ids = BTreeSet::new();
    let mut pages = 0;
    let mut last_stars = u64::MAX;
    loop {
        let answer = graphql(&sim, PAGE, json!({"q": q, "after": after})).await;
        assert!(answer.get("errors").is_none(), "{answer}");
        let search = &answer["data"]["search"];
        assert_eq!(search["repositoryCount"].as_u64(), Some(want));
        assert_eq!(
            answer["data"]["rateLimit"]["cost"], 1,
            "a page costs 1 point"
        );
        pages += 1;
        for node in search["nodes"].as_array().expect("nodes") {
            let id = node["databaseId"].as_u64().expect("databaseId");
            assert!(ids.insert(id), "{id} served twice");
            let truth = sim.repo_truth(id).await.expect("a real repository");
            assert_eq!(node["stargazerCount"].as_u64(), Some(truth.stargazer_count));
            assert_eq!(node["nameWithOwner"], json!(truth.name_with_owner));
            assert_eq!(node["owner"]["login"], json!(truth.owner_login));
            assert_eq!(node["id"], json!(truth.node_id));
            assert!(chrono::Datelike::year(&truth.created_at) >= 2024);
            assert!(truth.stargazer_count <= last_stars, "sorted by stars");
            last_stars = truth.stargazer_count;
        }
        let more = search["pageInfo"]["hasNextPage"] == json!(true);
        after = search["pageInfo"]["endCursor"].clone();
        if !more {
            break;
        }
    }
    assert_eq!(pages, 10);
    assert_eq!(ids.len(), 1_000, "no results past the 1,000th");
    assert_eq!(sim.ledger().graphql_points, 10);
    // The 1,000th result's cursor gives nothing more.
    assert!(after.is_string());
    let answer = graphql(&sim, PAGE, json!({"q": q, "after": after})).await;
    assert_eq!(answer["data"]["search"]["nodes"], json!([]));
}

#[tokio::test]
async fn aliased_count_probes_cost_one_point_and_sum_to_the_population() {
    let sim = start(SimOptions {
        graphql_limit: 1_000,
        ..options(100_000)
    })
    .await;
    // Five probes, one per range, splitting 2008..2025 edge to edge.
    let ranges = [
        "created:<2012-01-01",
        "created:2012-01-01..2016-12-31",
        "created:2017-01-01T00:00:00Z..2020-12-31T23:59:59Z",
        "created:2021-01-01..2023-06-30",
        "created:>=2023-07-01",
    ];
    let fields: String = ranges
        .iter()
        .enumerate()
        .map(|(i, r)| {
            format!("r{i}: search(type: REPOSITORY, query: \"fork:true {r}\", first: 0) {{ repositoryCount }} ")
        })
        .collect();
    let answer = graphql(
        &sim,
        &format!("{{ rateLimit {{ cost limit remaining }} {fields} }}"),
        json!({}),
    )
    .await;
    assert!(answer.get("errors").is_none(), "{answer}");
    let sum: u64 = (0..ranges.len())
        .map(|i| {
            answer["data"][format!("r{i}")]["repositoryCount"]
                .as_u64()
                .unwrap_or(0)
        })
        .sum();
    assert_eq!(sum, 100_000);
    assert_eq!(answer["data"]["rateLimit"]["cost"], 1);
    assert_eq!(answer["data"]["rateLimit"]["limit"], 1_000);
    assert_eq!(answer["data"]["rateLimit"]["remaining"], 999);
}

#[tokio::test]
async fn unknown_qualifiers_are_refused_by_both_apis() {
    let sim = start(options(20_000)).await;
    let answer = graphql(
        &sim,
        "{ search(type: REPOSITORY, query: \"language:rust sort:created\", first: 10) { repositoryCount } }",
        json!({}),
    )
    .await;
    let message = answer["errors"][0]["message"].as_str().unwrap_or("");
    assert!(message.contains("language:rust"), "{answer}");
    let r = rest(&sim, "/search/repositories?q=sort:created").await;
    assert_eq!(r.status(), 422);
    let r = rest(&sim, "/search/repositories?per_page=10").await;
    assert_eq!(r.status(), 422, "q is required");
}

#[tokio::test]
async fn rest_search_serves_githubs_shape_up_to_the_cap() {
    let sim = start(options(100_000)).await;
    let q = "created:2025-01-01..2025-12-31 stars:>=1";
    let want = truth_count(&sim, q).await;
    assert!(want > 1_000);
    let r = rest(
        &sim,
        &format!("/search/repositories?q={q}&per_page=100&page=10&sort=stars&order=desc"),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()
            .get("x-ratelimit-resource")
            .and_then(|v| v.to_str().ok()),
        Some("search")
    );
    let body: Value = r.json().await.expect("JSON");
    assert_eq!(body["total_count"].as_u64(), Some(want));
    assert_eq!(body["incomplete_results"], json!(false));
    let items = body["items"].as_array().expect("items");
    assert_eq!(items.len(), 100);
    for item in items {
        let truth = sim
            .repo_truth(item["id"].as_u64().expect("id"))
            .await
            .expect("a real repository");
        assert_eq!(
            item["stargazers_count"].as_u64(),
            Some(truth.stargazer_count)
        );
        assert!(truth.stargazer_count >= 1);
        assert_eq!(item["full_name"], json!(truth.name_with_owner));
        assert_eq!(item["owner"]["login"], json!(truth.owner_login));
        assert_eq!(item["node_id"], json!(truth.node_id));
    }
    let past = rest(
        &sim,
        &format!("/search/repositories?q={q}&per_page=100&page=11"),
    )
    .await;
    assert_eq!(past.status(), 422);
    let body: Value = past.json().await.expect("JSON");
    assert_eq!(
        body["message"],
        json!("Only the first 1000 search results are available")
    );
}

#[tokio::test]
async fn rest_search_limit_hits_at_the_31st_request_in_a_minute() {
    let sim = start(options(20_000)).await;
    for n in 1..=30u64 {
        let r = rest(&sim, "/search/repositories?q=stars:>=100&per_page=1").await;
        assert_eq!(r.status(), 200, "request {n}");
        let remaining = r
            .headers()
            .get("x-ratelimit-remaining")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        assert_eq!(remaining, Some(30 - n));
    }
    let r = rest(&sim, "/search/repositories?q=stars:>=100&per_page=1").await;
    assert_eq!(r.status(), 403);
    let header = |k: &str| {
        r.headers()
            .get(k)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    assert_eq!(header("x-ratelimit-resource").as_deref(), Some("search"));
    assert_eq!(header("x-ratelimit-limit").as_deref(), Some("30"));
    assert_eq!(header("x-ratelimit-remaining").as_deref(), Some("0"));
    let reset: i64 = header("x-ratelimit-reset")
        .and_then(|v| v.parse().ok())
        .expect("a reset time");
    assert!(reset <= chrono::Utc::now().timestamp() + 60);
    // The core budget is untouched.
    let limits: Value = rest(&sim, "/rate_limit").await.json().await.expect("JSON");
    assert_eq!(limits["resources"]["core"]["used"], 0);
    assert_eq!(limits["resources"]["search"]["used"], 30);
}

#[tokio::test]
async fn back_to_back_searches_get_a_secondary_limit_with_retry_after() {
    let sim = start(SimOptions {
        search_burst: Some(github_sim::server::SearchBurst {
            max_requests: 3,
            window_ms: 60_000,
            retry_after: 7,
        }),
        ..options(20_000)
    })
    .await;
    let probe = "{ search(type: REPOSITORY, query: \"stars:>=1\") { repositoryCount } }";
    for _ in 0..2 {
        let answer = graphql(&sim, probe, json!({})).await;
        assert!(answer["data"]["search"]["repositoryCount"].as_u64() > Some(0));
    }
    assert_eq!(
        rest(&sim, "/search/repositories?q=stars:>=1")
            .await
            .status(),
        200
    );
    let r = rest(&sim, "/search/repositories?q=stars:>=1").await;
    assert_eq!(r.status(), 403);
    assert_eq!(
        r.headers().get("retry-after").and_then(|v| v.to_str().ok()),
        Some("7")
    );
    let r = reqwest::Client::new()
        .post(format!("{}/graphql", sim.url()))
        .header("authorization", "Bearer t")
        .json(&json!({ "query": probe }))
        .send()
        .await
        .expect("the simulator answers");
    assert_eq!(r.status(), 403, "GraphQL searches count too");
    assert_eq!(sim.ledger().requests_during_secondary_limit.len(), 1);
}

#[tokio::test]
async fn star_changes_are_served_and_are_the_new_truth() {
    let sim = start(options(20_000)).await;
    let report: Value = reqwest::Client::new()
        .post(format!("{}/_sim/change", sim.url()))
        .json(&json!({"count": 20, "seed": 2, "stars": true}))
        .send()
        .await
        .expect("the simulator answers")
        .json()
        .await
        .expect("JSON");
    let changed = report["changed"].as_array().expect("changed");
    assert_eq!(changed.len(), 20);
    for c in changed {
        let (id, before, after) = (
            c[0].as_u64().expect("id"),
            c[1].as_u64().expect("before"),
            c[2].as_u64().expect("after"),
        );
        assert_ne!(before, after);
        assert_eq!(
            sim.repo_truth(id).await.map(|r| r.stargazer_count),
            Some(after)
        );
        let served: Value = rest(&sim, &format!("/_sim/population/repos/{id}"))
            .await
            .json()
            .await
            .expect("JSON");
        assert_eq!(served["stargazer_count"].as_u64(), Some(after));
    }
    // Search sees the new count: the changed repository is found by its exact count.
    let (id, after) = (
        changed[0][0].as_u64().unwrap_or(0),
        changed[0][2].as_u64().unwrap_or(0),
    );
    let truth = sim.repo_truth(id).await.expect("exists");
    let q = format!(
        "fork:true stars:{after} created:{}",
        truth.created_at.format("%Y-%m-%dT%H:%M:%SZ")
    );
    let answer = graphql(&sim, PAGE, json!({"q": q, "after": null})).await;
    let ids: Vec<u64> = answer["data"]["search"]["nodes"]
        .as_array()
        .map(|n| n.iter().filter_map(|x| x["databaseId"].as_u64()).collect())
        .unwrap_or_default();
    assert!(ids.contains(&id), "{answer}");
}

#[tokio::test]
async fn a_search_query_slower_than_the_timeout_answers_502() {
    // 1 ms a page, a timeout of 0: any search query runs out of time, without a real wait.
    let sim = start(SimOptions {
        search_latency_ms: 1,
        graphql_timeout_ms: 0,
        ..options(20_000)
    })
    .await;
    let r = reqwest::Client::new()
        .post(format!("{}/graphql", sim.url()))
        .header("authorization", "Bearer t")
        .json(&json!({ "query": PAGE, "variables": {"q": "stars:>=1"} }))
        .send()
        .await
        .expect("the simulator answers");
    assert_eq!(r.status(), 502);
    // A query that does not search is not slowed.
    let answer = graphql(&sim, "{ rateLimit { cost } }", json!({})).await;
    assert_eq!(answer["data"]["rateLimit"]["cost"], 1);
}

#[tokio::test]
async fn graphql_points_past_the_per_minute_limit_get_a_secondary_limit() {
    let sim = start(SimOptions {
        graphql_points_per_minute: Some(2),
        ..options(20_000)
    })
    .await;
    let probe = json!({ "query": "{ search(type: REPOSITORY, query: \"stars:>=1\") { repositoryCount } }" });
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..3 {
        let r = reqwest::Client::new()
            .post(format!("{}/graphql", sim.url()))
            .header("authorization", "Bearer t")
            .json(&probe)
            .send()
            .await
            .expect("the simulator answers");
        statuses.push(r.status().as_u16());
        retry_after = r
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
    }
    assert_eq!(statuses, [200, 200, 403]);
    assert_eq!(retry_after.as_deref(), Some("60"));
    assert_eq!(
        sim.ledger().graphql_points,
        2,
        "the refused query costs nothing"
    );
}
