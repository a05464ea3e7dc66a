//! What `ghstats check` asks the simulator: pull-request counts from GitHub's search, charged
//! as count-only connections, and a classic token's scopes in `X-OAuth-Scopes`.

use github_sim::{OrgSpec, SimOptions, Simulator};
use serde_json::{json, Value};

async fn graphql(sim: &Simulator, query: &str, variables: Value) -> Value {
    reqwest::Client::new()
        .post(format!("{}/graphql", sim.url()))
        .header("authorization", "Bearer t")
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn search_counts_pull_requests_updated_since_a_time_for_one_point() {
    let sim = Simulator::start(&OrgSpec::new("acme", 3, 90, 4), SimOptions::default(), 0)
        .await
        .unwrap();
    let world = sim.world();
    let since = chrono::Utc::now() - chrono::Duration::days(20);
    let names: Vec<String> = world.repositories.iter().map(|r| r.name.clone()).collect();
    let vars: Vec<String> = (0..names.len())
        .map(|i| format!("$q{i}: String!"))
        .collect();
    let fields: Vec<String> = (0..names.len())
        .map(|i| format!("r{i}: search(query: $q{i}, type: ISSUE) {{ issueCount }}"))
        .collect();
    let query = format!(
        "query PullRequestCounts({}) {{ rateLimit {{ cost }} {} }}",
        vars.join(", "),
        fields.join(" ")
    );
    let mut variables = serde_json::Map::new();
    for (i, name) in names.iter().enumerate() {
        variables.insert(
            format!("q{i}"),
            json!(format!(
                "repo:acme/{name} is:pr updated:>={}",
                since.format("%Y-%m-%dT%H:%M:%S+00:00")
            )),
        );
    }
    let answer = graphql(&sim, &query, Value::Object(variables)).await;
    assert!(answer.get("errors").is_none(), "{answer}");
    let mut total = 0;
    for (i, repo) in world.repositories.iter().enumerate() {
        let want = repo
            .pull_requests
            .iter()
            .filter(|p| p.updated_at.timestamp() >= since.timestamp())
            .count() as u64;
        assert_eq!(
            answer["data"][format!("r{i}")]["issueCount"].as_u64(),
            Some(want),
            "{}",
            repo.name
        );
        total += want;
    }
    assert!(total > 0, "the window holds pull requests");
    // One count-only connection per repository: a handful cost one point.
    assert_eq!(answer["data"]["rateLimit"]["cost"], 1);
    assert_eq!(sim.ledger().graphql_points, 1);

    // What the simulator cannot answer is refused, not guessed.
    let refused = graphql(
        &sim,
        "query { search(query: \"is:pr fix the bug\", type: ISSUE) { issueCount } }",
        json!({}),
    )
    .await;
    assert!(refused["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("only qualifiers"));
}

#[tokio::test]
async fn classic_tokens_get_their_scopes_and_others_none() {
    let sim = Simulator::start(
        &OrgSpec::new("acme", 1, 5, 4),
        SimOptions {
            token_scopes: [("classic".to_string(), "repo, read:org".to_string())].into(),
            ..SimOptions::default()
        },
        0,
    )
    .await
    .unwrap();
    let scopes = |token: &'static str| {
        let url = format!("{}/rate_limit", sim.url());
        async move {
            let r = reqwest::Client::new()
                .get(url)
                .header("authorization", format!("Bearer {token}"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.headers()
                .get("x-oauth-scopes")
                .map(|v| v.to_str().unwrap().to_string())
        }
    };
    assert_eq!(scopes("classic").await.as_deref(), Some("repo, read:org"));
    assert_eq!(scopes("github_pat_fine").await, None);
}
