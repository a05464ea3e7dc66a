//! The README's example queries run as written against a warehouse loaded from the simulator,
//! and the README shows each query file verbatim.

mod common;

use common::*;
use ghstats::jobs::load::load_collection;
use ghstats::warehouse::Warehouse;
use github_sim::{OrgSpec, SimOptions, Simulator};

const QUERIES: &[&str] = &[
    "velocity_by_author",
    "pr_size_distribution",
    "review_activity",
    "commit_attribution",
];

fn query(dialect: &str, name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/queries/{dialect}/{name}.sql",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[test]
fn the_readme_shows_every_query_file_verbatim() {
    let readme =
        std::fs::read_to_string(format!("{}/README.md", env!("CARGO_MANIFEST_DIR"))).unwrap();
    for name in QUERIES {
        for dialect in ["sqlite", "bigquery"] {
            assert!(
                readme.contains(&query(dialect, name)),
                "README.md does not show queries/{dialect}/{name}.sql as it is"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_queries_run_against_sqlite() {
    let sim = Simulator::start(&OrgSpec::new(ORG, 3, 300, 41), SimOptions::default(), 0)
        .await
        .unwrap();
    let (_dir, wh) = sqlite_warehouse().await;
    let lake = memory_lake();
    let result = collect(
        &fast_client(&sim.url(), &["t"]),
        &lake,
        &options(everything(), &[]),
    )
    .await;
    load_collection(&wh, &lake, &ORG.parse().unwrap(), &result.collection_id)
        .await
        .unwrap();
    let world = sim.world();
    let run = |name: &'static str| {
        let wh = &wh;
        async move {
            wh.query(&query("sqlite", name))
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}"))
        }
    };

    let velocity = run("velocity_by_author").await;
    assert!(!velocity.is_empty() && velocity.len() <= 20);
    let cutoff = chrono::Utc::now() - chrono::Duration::days(90);
    let merged_recently = world
        .pull_requests()
        .filter(|(r, p)| !r.is_archived && !r.is_fork && p.merged_at.is_some_and(|m| m >= cutoff))
        .filter(|(_, p)| {
            p.author
                .as_ref()
                .is_none_or(|a| a.kind != github_sim::model::ActorKind::Bot)
        })
        .count() as i64;
    let counted: i64 = velocity
        .iter()
        .map(|r| r["merged_prs"].as_i64().unwrap())
        .sum();
    assert!(
        counted <= merged_recently && counted > 0,
        "{counted} of {merged_recently}"
    );

    let sizes = run("pr_size_distribution").await;
    let total: i64 = sizes.iter().map(|r| r["prs"].as_i64().unwrap()).sum();
    assert_eq!(total, 300);
    let buckets: Vec<&str> = sizes
        .iter()
        .map(|r| r["size_bucket"].as_str().unwrap())
        .collect();
    let order = ["XS", "S", "M", "L", "XL"];
    assert!(
        buckets
            .windows(2)
            .all(|w| order.iter().position(|b| *b == w[0]) < order.iter().position(|b| *b == w[1])),
        "{buckets:?}"
    );

    let reviews = run("review_activity").await;
    assert!(!reviews.is_empty());
    assert!(reviews
        .iter()
        .all(|r| r["reviewer"] != "dependabot" && r["reviewer"] != "renovate"));

    let commits = run("commit_attribution").await;
    assert!(commits.iter().any(|r| r["commit_author"]
        .as_str()
        .unwrap()
        .starts_with("(no account) ")));
    let top = commits[0]["commits"].as_i64().unwrap();
    assert!(commits
        .iter()
        .all(|r| r["commits"].as_i64().unwrap() <= top));
}
