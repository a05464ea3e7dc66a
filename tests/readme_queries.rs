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

/// Collects a simulated organization into a memory lake; returns the simulator and the lake.
async fn collected() -> (Simulator, ghstats::lake::Lake, String) {
    let sim = Simulator::start(&OrgSpec::new(ORG, 3, 300, 41), SimOptions::default(), 0)
        .await
        .unwrap();
    let lake = memory_lake();
    let result = collect(
        &fast_client(&sim.url(), &["t"]),
        &lake,
        &options(everything(), &[]),
    )
    .await;
    (sim, lake, result.collection_id)
}

/// Runs the example queries of `dialect` (dataset `ghstats` renamed by `rename`) and checks
/// what they say against the ground truth; returns each query's rows.
async fn check_examples(
    wh: &dyn Warehouse,
    dialect: &str,
    world: &github_sim::model::World,
    rename: impl Fn(String) -> String,
) -> Vec<Vec<serde_json::Value>> {
    let run = |name: &'static str| {
        let sql = rename(query(dialect, name));
        async move {
            wh.query(&sql)
                .await
                .unwrap_or_else(|e| panic!("{dialect} {name}: {e}"))
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
    // Bots are stored under GitHub's login (`dependabot[bot]`) and the query leaves them out.
    assert!(reviews.iter().all(|r| {
        let who = r["reviewer"].as_str().unwrap_or_default();
        !who.ends_with("[bot]") && who != "dependabot" && who != "renovate"
    }));
    if dialect == "sqlite" {
        let bots = wh
            .query("SELECT COUNT(*) AS n FROM reviews WHERE reviewer LIKE '%[bot]' AND reviewer_type = 'Bot'")
            .await
            .unwrap();
        assert!(
            bots[0]["n"].as_i64().unwrap() > 0,
            "bot reviews are stored as name[bot]"
        );
    }

    let commits = run("commit_attribution").await;
    assert!(commits.iter().any(|r| r["commit_author"]
        .as_str()
        .unwrap()
        .starts_with("(no account) ")));
    let top = commits[0]["commits"].as_i64().unwrap();
    assert!(commits
        .iter()
        .all(|r| r["commits"].as_i64().unwrap() <= top));
    vec![velocity, sizes, reviews, commits]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_queries_run_against_sqlite() {
    let (sim, lake, id) = collected().await;
    let (_dir, wh) = sqlite_warehouse().await;
    load_collection(&wh, &lake, &ORG.parse().unwrap(), &id)
        .await
        .unwrap();
    check_examples(&wh, "sqlite", &sim.world(), |s| s).await;
}

/// The BigQuery queries on the emulator (dataset `ghstats` renamed to the test's) give the same
/// rows as the SQLite ones on the same data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bigquery_queries_agree_with_sqlite() {
    let Some(target) = fresh_bigquery() else {
        return;
    };
    let (sim, lake, id) = collected().await;
    let bq = ghstats::warehouse::bigquery::BigQueryWarehouse::connect(&target)
        .await
        .unwrap();
    bq.init().await.unwrap();
    let (_dir, lite) = sqlite_warehouse().await;
    for wh in [&bq as &dyn Warehouse, &lite] {
        load_collection(wh, &lake, &ORG.parse().unwrap(), &id)
            .await
            .unwrap();
    }
    let world = sim.world();
    let dataset = format!("{}.", target.dataset);
    let on_bq = check_examples(&bq, "bigquery", &world, |s| s.replace("ghstats.", &dataset)).await;
    let on_lite = check_examples(&lite, "sqlite", &world, |s| s).await;
    // Rounded averages may differ in the last digit: SQLite measures hours as fractional days
    // in floating point, BigQuery as whole seconds.
    let same = |a: &serde_json::Value, b: &serde_json::Value| match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => (x - y).abs() <= 0.1 + 1e-9,
        _ => a == b,
    };
    for (name, (b, l)) in QUERIES.iter().zip(on_bq.into_iter().zip(on_lite)) {
        assert_eq!(b.len(), l.len(), "{name}");
        for (rb, rl) in b.iter().zip(&l) {
            let (ob, ol) = (rb.as_object().unwrap(), rl.as_object().unwrap());
            assert_eq!(
                ob.keys().collect::<Vec<_>>(),
                ol.keys().collect::<Vec<_>>(),
                "{name}"
            );
            assert!(
                ob.iter().all(|(k, v)| same(v, &ol[k])),
                "{name}: BigQuery {rb} against SQLite {rl}"
            );
        }
    }
}
