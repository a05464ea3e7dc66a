//! A REST-based client reads the same organization the GraphQL API serves: listings follow
//! Link headers to the ground truth, `since` filters, caps hold, rate-limit headers count down,
//! and faults look like GitHub's.

use github_sim::{Fault, FaultPlan, OrgSpec, SimOptions, Simulator};
use serde_json::Value;

async fn get(url: &str, token: Option<&str>) -> reqwest::Response {
    let mut req = reqwest::Client::new().get(url).header("user-agent", "test");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    req.send().await.expect("request")
}

fn next_link(resp: &reqwest::Response) -> Option<String> {
    let link = resp.headers().get("link")?.to_str().ok()?;
    link.split(',')
        .find(|p| p.contains("rel=\"next\""))
        .and_then(|p| {
            let url = p
                .trim()
                .split(';')
                .next()?
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>');
            // The simulator names itself `http://sim`; follow on the real address.
            Some(url.replacen("http://sim", "", 1))
        })
}

/// Every item of a listing, following `rel="next"`; returns the items and the pages read.
async fn all(base: &str, path: &str) -> (Vec<Value>, usize) {
    let mut out = Vec::new();
    let mut next = Some(path.to_string());
    let mut pages = 0;
    while let Some(p) = next {
        let resp = get(&format!("{base}{p}"), Some("t")).await;
        assert_eq!(resp.status(), 200, "{p}");
        next = next_link(&resp);
        let page: Vec<Value> = resp.json().await.unwrap();
        assert!(page.len() <= 100);
        out.extend(page);
        pages += 1;
    }
    (out, pages)
}

#[tokio::test]
async fn a_rest_client_reads_the_whole_organization() {
    let sim = Simulator::start(&OrgSpec::new("acme", 3, 250, 3), SimOptions::default(), 0)
        .await
        .unwrap();
    let base = sim.url();
    let world = sim.world();
    let (repos, _) = all(&base, "/orgs/acme/repos?per_page=2").await;
    assert_eq!(repos.len(), world.repositories.len());
    for repo in &world.repositories {
        let (prs, pages) = all(
            &base,
            &format!("/repos/acme/{}/pulls?state=all&per_page=100", repo.name),
        )
        .await;
        assert_eq!(prs.len(), repo.pull_requests.len(), "{}", repo.name);
        assert_eq!(pages, repo.pull_requests.len().div_ceil(100).max(1));
        let numbers: std::collections::BTreeSet<u64> =
            prs.iter().map(|p| p["number"].as_u64().unwrap()).collect();
        assert_eq!(
            numbers,
            repo.pull_requests.iter().map(|p| p.number).collect()
        );
        let comments: usize = repo.pull_requests.iter().map(|p| p.comments.len()).sum();
        assert_eq!(
            all(
                &base,
                &format!("/repos/acme/{}/issues/comments?per_page=100", repo.name)
            )
            .await
            .0
            .len(),
            comments
        );
        let review_comments: usize = repo
            .pull_requests
            .iter()
            .flat_map(|p| &p.reviews)
            .map(|r| r.comments.len())
            .sum();
        assert_eq!(
            all(
                &base,
                &format!("/repos/acme/{}/pulls/comments?per_page=100", repo.name)
            )
            .await
            .0
            .len(),
            review_comments
        );
    }
    // Per pull request: commits (capped at 250 like GitHub), reviews, both kinds of comments.
    let repo = &world.repositories[0];
    let big = repo
        .pull_requests
        .iter()
        .find(|p| p.commits.len() > 250)
        .unwrap();
    let (commits, _) = all(
        &base,
        &format!(
            "/repos/acme/{}/pulls/{}/commits?per_page=100",
            repo.name, big.number
        ),
    )
    .await;
    assert_eq!(commits.len(), 250);
    let compare = get(
        &format!(
            "{base}/repos/acme/{}/compare/{}...{}?per_page=100&page=3",
            repo.name, big.base_oid, big.head_oid
        ),
        Some("t"),
    )
    .await;
    let compare: Value = compare.json().await.unwrap();
    assert_eq!(
        compare["total_commits"].as_u64().unwrap() as usize,
        big.commits.len()
    );
    assert_eq!(
        compare["commits"].as_array().unwrap().len(),
        big.commits.len() - 200
    );
    let many_reviews = repo
        .pull_requests
        .iter()
        .find(|p| p.reviews.len() > 100)
        .unwrap();
    let (reviews, _) = all(
        &base,
        &format!(
            "/repos/acme/{}/pulls/{}/reviews?per_page=100",
            repo.name, many_reviews.number
        ),
    )
    .await;
    assert_eq!(reviews.len(), many_reviews.reviews.len());
    let pr = &repo.pull_requests[5];
    let (ics, _) = all(
        &base,
        &format!("/repos/acme/{}/issues/{}/comments", repo.name, pr.number),
    )
    .await;
    assert_eq!(ics.len(), pr.comments.len());
    let (rcs, _) = all(
        &base,
        &format!("/repos/acme/{}/pulls/{}/comments", repo.name, pr.number),
    )
    .await;
    assert_eq!(
        rcs.len(),
        pr.reviews.iter().map(|r| r.comments.len()).sum::<usize>()
    );
    // The REST side counted every request it served.
    assert!(sim.ledger().rest_requests > 20);
}

#[tokio::test]
async fn since_filters_repository_comment_listings() {
    let sim = Simulator::start(&OrgSpec::new("acme", 2, 200, 4), SimOptions::default(), 0)
        .await
        .unwrap();
    let world = sim.world();
    let repo = &world.repositories[0];
    let mut times: Vec<_> = repo
        .pull_requests
        .iter()
        .flat_map(|p| p.comments.iter().map(|c| c.updated_at))
        .collect();
    times.sort();
    let since = times[times.len() / 2];
    let expected = times.iter().filter(|t| **t >= since).count();
    let path = format!(
        "/repos/acme/{}/issues/comments?per_page=100&sort=updated&direction=desc&since={}",
        repo.name,
        since.format("%Y-%m-%dT%H:%M:%SZ")
    );
    let (got, _) = all(&sim.url(), &path).await;
    assert_eq!(got.len(), expected);
    let stamps: Vec<&str> = got
        .iter()
        .map(|c| c["updated_at"].as_str().unwrap())
        .collect();
    assert!(
        stamps.windows(2).all(|w| w[0] >= w[1]),
        "sorted by update, newest first"
    );
    let bad = get(
        &format!(
            "{}/repos/acme/{}/issues/comments?since=yesterday",
            sim.url(),
            repo.name
        ),
        Some("t"),
    )
    .await;
    assert_eq!(bad.status(), 422);
}

#[tokio::test]
async fn rate_limit_headers_count_down_per_token() {
    let sim = Simulator::start(
        &OrgSpec::new("acme", 1, 10, 5),
        SimOptions {
            graphql_limit: 5000,
            rest_limit: 3,
            tokens: vec![],
            ..SimOptions::default()
        },
        0,
    )
    .await
    .unwrap();
    let url = format!("{}/orgs/acme/repos", sim.url());
    let remaining = |r: &reqwest::Response| {
        r.headers()["x-ratelimit-remaining"]
            .to_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(remaining(&get(&url, Some("a")).await), "2");
    assert_eq!(remaining(&get(&url, Some("a")).await), "1");
    // Another token has its own budget.
    assert_eq!(remaining(&get(&url, Some("b")).await), "2");
    assert_eq!(remaining(&get(&url, Some("a")).await), "0");
    let spent = get(&url, Some("a")).await;
    assert_eq!(spent.status(), 403);
    assert_eq!(remaining(&spent), "0");
    assert!(
        spent.headers()["x-ratelimit-reset"]
            .to_str()
            .unwrap()
            .parse::<i64>()
            .unwrap()
            > chrono::Utc::now().timestamp()
    );
    // /rate_limit is free and reports both budgets.
    let rl: Value = get(&format!("{}/rate_limit", sim.url()), Some("a"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rl["resources"]["core"]["remaining"], 0);
    assert_eq!(rl["resources"]["graphql"]["remaining"], 5000);
    assert_eq!(get(&url, None).await.status(), 401);
}

#[tokio::test]
async fn injected_faults_look_like_githubs() {
    let sim = Simulator::start(&OrgSpec::new("acme", 1, 10, 6), SimOptions::default(), 0)
        .await
        .unwrap();
    sim.set_faults(FaultPlan {
        next: vec![
            Fault::BadGateway,
            Fault::SecondaryLimit { retry_after: 7 },
            Fault::PartialGraphql,
            Fault::ResourceLimit,
        ],
        ..FaultPlan::default()
    });
    let url = format!("{}/orgs/acme/repos", sim.url());
    assert_eq!(get(&url, Some("t")).await.status(), 502);
    let secondary = get(&url, Some("t")).await;
    assert_eq!(secondary.status(), 403);
    assert_eq!(secondary.headers()["retry-after"], "7");
    assert!(secondary
        .text()
        .await
        .unwrap()
        .contains("secondary rate limit"));
    let query =
        serde_json::json!({"query": "{ repository(owner:\"acme\", name:\"repo-000\") { name } }"});
    let post = || {
        reqwest::Client::new()
            .post(format!("{}/graphql", sim.url()))
            .header("authorization", "bearer t")
            .json(&query)
            .send()
    };
    let partial: Value = post().await.unwrap().json().await.unwrap();
    assert!(
        partial["errors"].as_array().is_some_and(|e| !e.is_empty()),
        "{partial}"
    );
    assert!(
        partial["data"].is_object(),
        "partial data comes with the error: {partial}"
    );
    let limits: Value = post().await.unwrap().json().await.unwrap();
    assert_eq!(limits["errors"][0]["type"], "RESOURCE_LIMITS_EXCEEDED");
    let ok: Value = post().await.unwrap().json().await.unwrap();
    assert_eq!(ok["data"]["repository"]["name"], "repo-000");
    assert!(ok.get("errors").is_none());
    let missing: Value = reqwest::Client::new()
        .post(format!("{}/graphql", sim.url()))
        .header("authorization", "bearer t")
        .json(
            &serde_json::json!({"query": "{ repository(owner:\"acme\", name:\"nope\") { name } }"}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(missing["errors"][0]["type"], "NOT_FOUND");
    assert_eq!(sim.ledger().faults_injected, 4);
}
