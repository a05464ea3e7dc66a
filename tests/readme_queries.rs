//! The README's example queries run as written against a warehouse loaded from the simulator,
//! and the README shows each query file verbatim. The GH Archive ones run against hours of the
//! simulator's GH Archive, and what they answer is computed again from its truth.

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

/// The GH Archive queries; each reads the day [`GHARCHIVE_DAY`].
const GHARCHIVE_QUERIES: &[&str] = &[
    "gharchive_events_per_type_per_hour",
    "gharchive_pushes_per_hour",
    "gharchive_most_active_repos",
    "gharchive_new_stars_per_repo",
];

/// The day the GH Archive queries are written for.
const GHARCHIVE_DAY: &str = "2025-01-15";

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
    for name in QUERIES.iter().chain(GHARCHIVE_QUERIES) {
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

/// Ingests hours of the simulator's GH Archive around [`GHARCHIVE_DAY`] (the evening before,
/// the day's first six hours, the next day's first hour) into `wh`; returns every event stored,
/// from the simulator's truth. Quirks: copies of the previous hour's events, copies within an
/// hour, lines to reject, pushes without a size.
async fn gharchive_loaded(wh: &dyn Warehouse) -> Vec<github_sim::EventTruth> {
    use ghstats::gharchive::job::{self, Selection};
    use github_sim::{GhArchiveSpec, HourQuirks};
    let sim = Simulator::start(&OrgSpec::new(ORG, 1, 1, 1), SimOptions::default(), 0)
        .await
        .unwrap();
    let hour = |s: &str| ghstats::gharchive::parse_hour(s).unwrap();
    let mut quirks = HourQuirks {
        duplicates_from_previous: 6,
        duplicates_within: 5,
        not_json: 2,
        ..HourQuirks::default()
    };
    let mut spec = GhArchiveSpec::new(17, 600).with_hour(hour("2025-01-15T00"), quirks.clone());
    quirks.missing_fields = 40;
    spec = spec.with_hour(hour("2025-01-15T03"), quirks);
    sim.set_gharchive(spec).unwrap();
    let lake = memory_lake();
    let http = reqwest::Client::new();
    let opts = job::Options {
        base_url: sim.gharchive_url().parse().unwrap(),
        keep_payload: true,
        force: false,
        shard: None,
        deadline: std::time::Instant::now() + std::time::Duration::from_secs(3600),
        stop: Vec::new(),
        progress: std::sync::Arc::new(ghstats::jobs::progress::HourProgress::hidden()),
    };
    let mut hours = Vec::new();
    for (from, to) in [
        ("2025-01-14T22", "2025-01-15T05"),
        ("2025-01-16T00", "2025-01-16T00"),
    ] {
        let (from, to) = (hour(from), hour(to));
        let r = job::run(
            &http,
            &lake,
            wh,
            &Selection::Range { from, to },
            &opts,
            chrono::Utc::now(),
        )
        .await
        .unwrap();
        assert_eq!(r.status, "completed", "{r:?}");
        let mut h = from;
        while h <= to {
            hours.push(h);
            h += chrono::Duration::hours(1);
        }
    }
    // An hour's truth lists the events first written in it: each id once over the hours.
    hours
        .into_iter()
        .flat_map(|h| sim.gharchive_truth(h).events)
        .collect()
}

/// Rows as `(column, value)` lists in the query's column order, for comparison.
fn rows_of(rows: &[serde_json::Value], columns: &[&str]) -> Vec<Vec<serde_json::Value>> {
    rows.iter()
        .map(|r| columns.iter().map(|c| r[*c].clone()).collect())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gh_archive_queries_answer_what_the_simulator_served() {
    use serde_json::json;
    use std::collections::{BTreeMap, BTreeSet};
    let (_dir, wh) = sqlite_warehouse().await;
    let events = gharchive_loaded(&wh).await;
    let day: chrono::NaiveDate = GHARCHIVE_DAY.parse().unwrap();
    let of_day: Vec<&github_sim::EventTruth> = events
        .iter()
        .filter(|e| e.created_at.date_naive() == day)
        .collect();
    assert!(
        of_day.len() > 3000 && of_day.len() < events.len(),
        "{} of {}",
        of_day.len(),
        events.len()
    );
    let hour_of =
        |e: &github_sim::EventTruth| e.created_at.format("%Y-%m-%dT%H:00:00Z").to_string();
    let run = |name: &'static str| {
        let sql = query("sqlite", name);
        let wh = &wh;
        async move {
            wh.query(&sql)
                .await
                .unwrap_or_else(|e| panic!("sqlite {name}: {e}"))
        }
    };

    // Events per type per hour: hour, then most events first, then type.
    let mut per_type: BTreeMap<(String, String), i64> = BTreeMap::new();
    for e in &of_day {
        *per_type
            .entry((hour_of(e), e.event_type.clone()))
            .or_default() += 1;
    }
    let mut want: Vec<_> = per_type.into_iter().collect();
    want.sort_by(|((h1, t1), n1), ((h2, t2), n2)| (h1, -n1, t1).cmp(&(h2, -n2, t2)));
    let want: Vec<Vec<serde_json::Value>> = want
        .into_iter()
        .map(|((h, t), n)| vec![json!(h), json!(t), json!(n)])
        .collect();
    let got = run("gharchive_events_per_type_per_hour").await;
    assert_eq!(rows_of(&got, &["hour", "event_type", "events"]), want);
    assert_eq!(
        want.iter()
            .map(|r| r[0].as_str().unwrap_or_default())
            .collect::<BTreeSet<_>>()
            .len(),
        6,
        "the day's six hours"
    );

    // Pushes per hour, with pushers, repositories and commits (null sizes left out of the sum).
    let mut pushes: BTreeMap<String, Vec<&github_sim::EventTruth>> = BTreeMap::new();
    for e in of_day.iter().filter(|e| e.event_type == "PushEvent") {
        pushes.entry(hour_of(e)).or_default().push(e);
    }
    let want: Vec<Vec<serde_json::Value>> = pushes
        .iter()
        .map(|(h, es)| {
            let sizes: Vec<i64> = es.iter().filter_map(|e| e.push_size).collect();
            vec![
                json!(h),
                json!(es.len()),
                json!(es
                    .iter()
                    .map(|e| &e.actor_login)
                    .collect::<BTreeSet<_>>()
                    .len()),
                json!(es
                    .iter()
                    .map(|e| &e.repo_name)
                    .collect::<BTreeSet<_>>()
                    .len()),
                if sizes.is_empty() {
                    json!(null)
                } else {
                    json!(sizes.iter().sum::<i64>())
                },
            ]
        })
        .collect();
    assert!(
        pushes.values().flatten().any(|e| e.push_size.is_none()),
        "some pushes without a size"
    );
    let got = run("gharchive_pushes_per_hour").await;
    assert_eq!(
        rows_of(
            &got,
            &["hour", "pushes", "pushers", "repositories", "commits"]
        ),
        want
    );

    // The most active repositories: most events first, then by name; twenty.
    let mut repos: BTreeMap<&str, Vec<&github_sim::EventTruth>> = BTreeMap::new();
    for e in &of_day {
        repos.entry(&e.repo_name).or_default().push(e);
    }
    let mut want: Vec<(&str, i64, usize, i64, i64)> = repos
        .iter()
        .map(|(r, es)| {
            let n = |t: &str| es.iter().filter(|e| e.event_type == t).count() as i64;
            (
                *r,
                es.len() as i64,
                es.iter()
                    .map(|e| &e.actor_login)
                    .collect::<BTreeSet<_>>()
                    .len(),
                n("PushEvent"),
                n("PullRequestEvent"),
            )
        })
        .collect();
    want.sort_by(|a, b| (-a.1, a.0).cmp(&(-b.1, b.0)));
    want.truncate(20);
    assert!(want[0].1 > want[19].1, "a busiest repository: {want:?}");
    let want: Vec<Vec<serde_json::Value>> = want
        .into_iter()
        .map(|(r, n, a, p, pr)| vec![json!(r), json!(n), json!(a), json!(p), json!(pr)])
        .collect();
    let got = run("gharchive_most_active_repos").await;
    assert_eq!(
        rows_of(
            &got,
            &[
                "repo_name",
                "events",
                "actors",
                "pushes",
                "pull_request_events"
            ]
        ),
        want
    );

    // New stars per repository.
    let mut stars: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for e in of_day.iter().filter(|e| e.event_type == "WatchEvent") {
        stars.entry(&e.repo_name).or_default().push(&e.actor_login);
    }
    let mut want: Vec<(&str, i64, usize)> = stars
        .iter()
        .map(|(r, who)| {
            (
                *r,
                who.len() as i64,
                who.iter().collect::<BTreeSet<_>>().len(),
            )
        })
        .collect();
    want.sort_by(|a, b| (-a.1, a.0).cmp(&(-b.1, b.0)));
    want.truncate(20);
    assert!(
        want[0].1 > 1,
        "a repository starred more than once: {want:?}"
    );
    let want: Vec<Vec<serde_json::Value>> = want
        .into_iter()
        .map(|(r, n, a)| vec![json!(r), json!(n), json!(a)])
        .collect();
    let got = run("gharchive_new_stars_per_repo").await;
    assert_eq!(
        rows_of(&got, &["repo_name", "new_stars", "stargazers"]),
        want
    );
}

/// The GH Archive queries for BigQuery, run on the emulator against the same hours loaded by
/// BigQuery's own load path, answer row for row what the SQLite ones answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gh_archive_bigquery_queries_agree_with_sqlite() {
    let Some(target) = fresh_bigquery() else {
        return;
    };
    let bq = ghstats::warehouse::bigquery::BigQueryWarehouse::connect(&target)
        .await
        .unwrap();
    bq.init().await.unwrap();
    let (_dir, lite) = sqlite_warehouse().await;
    let on_bq = gharchive_loaded(&bq).await;
    let on_lite = gharchive_loaded(&lite).await;
    assert_eq!(on_bq.len(), on_lite.len(), "the same simulated hours");
    let dataset = format!("{}.", target.dataset);
    for name in GHARCHIVE_QUERIES {
        let b = bq
            .query(&query("bigquery", name).replace("ghstats.", &dataset))
            .await
            .unwrap_or_else(|e| panic!("bigquery {name}: {e}"));
        let l = lite
            .query(&query("sqlite", name))
            .await
            .unwrap_or_else(|e| panic!("sqlite {name}: {e}"));
        assert!(!l.is_empty(), "{name}: no rows");
        assert_eq!(b, l, "{name}: BigQuery against SQLite");
    }
}

/// The commits queries (default-branch commits and their file changes). The SQLite files are
/// portable SQL: they run as written on PostgreSQL too.
const COMMIT_QUERIES: &[&str] = &[
    "commits_per_author_per_month",
    "commits_most_changed_files",
    "commits_churn_by_file_type",
    "commits_largest",
    "commits_through_pull_requests",
];

#[test]
fn the_readme_shows_every_commits_query_file_verbatim() {
    let readme =
        std::fs::read_to_string(format!("{}/README.md", env!("CARGO_MANIFEST_DIR"))).unwrap();
    for name in COMMIT_QUERIES {
        for dialect in ["sqlite", "bigquery"] {
            assert!(
                readme.contains(&query(dialect, name)),
                "README.md does not show queries/{dialect}/{name}.sql as it is"
            );
        }
    }
}

mod known_commits {
    //! Two repositories' commits whose answers are worked out by hand (the comments say how).
    use chrono::{DateTime, Utc};
    use ghstats::commits::rows::{
        commits_batch, file_changes_batch, file_states_batch, CommitRow, FileChangeRow,
    };
    use ghstats::commits::{partition_file, MonthPartition, RepositoryState};
    use ghstats::lake::Lake;
    use ghstats::warehouse::Warehouse;
    use serde_json::{json, Value};
    use std::collections::BTreeMap;

    const APP: i64 = 501;
    const LIB: i64 = 502;

    fn at(s: &str) -> DateTime<Utc> {
        format!("{s}T12:00:00Z").parse().unwrap()
    }

    /// A commit and the files it changed.
    type Known = (CommitRow, Vec<FileChangeRow>);

    /// One file change: (path, status, added, deleted, binary).
    type Change = (&'static str, &'static str, i64, i64, bool);

    fn commit(
        id: i64,
        sha: &str,
        day: &str,
        login: Option<&str>,
        email: &str,
        merge: bool,
        changes: &[Change],
    ) -> Known {
        let name = if id == APP { "acme/app" } else { "acme/lib" };
        let c = CommitRow {
            repository_id: id,
            repository: name.into(),
            commit_sha: sha.into(),
            commit_author_id: login.map(|_| 7),
            author_login: login.map(str::to_string),
            author_name: "someone".into(),
            author_email: email.into(),
            committer_name: "GitHub".into(),
            commit_at: at(day),
            authored_at: at(day),
            commit_message: format!("{sha}\n\nbody"),
            num_files_changed: changes.len() as i64,
            num_lines_added: changes.iter().map(|c| c.2).sum(),
            num_lines_deleted: changes.iter().map(|c| c.3).sum(),
            parent_commits: if merge {
                vec!["p1".into(), "p2".into()]
            } else {
                vec!["p1".into()]
            },
            is_merge: merge,
            commit_month: day[..7].to_string(),
        };
        let files = changes
            .iter()
            .map(|(path, status, added, deleted, binary)| FileChangeRow {
                repository_id: id,
                commit_sha: sha.into(),
                file_path: path.to_string(),
                previous_path: None,
                file_sha: (*status != "removed").then(|| format!("blob-{sha}-{path}")),
                commit_at: at(day),
                file_type: ghstats::commits::rows::file_type(path),
                status: status.to_string(),
                lines_added: *added,
                lines_deleted: *deleted,
                changes: added + deleted,
                is_binary: *binary,
                commit_month: day[..7].to_string(),
            })
            .collect();
        (c, files)
    }

    /// The commits, by repository:
    /// - app c1 2024-01-05 ada: src/a.rs +10 -2, README.md +2 -1 (15 lines, through PR 1 and 2)
    /// - app c2 2024-01-20 no account, bob@example.com: src/a.rs +5 -5, logo.png binary,
    ///   old.txt removed -6 (16 lines)
    /// - app c3 2024-02-02 ada: src/b.rs added +100, Makefile +3 -1 (104 lines, through PR 1)
    /// - app m1 2024-02-10 ada, a merge: src/a.rs +7
    /// - lib l1 2024-02-03 bob: src/a.rs +1
    fn known() -> Vec<Known> {
        vec![
            commit(
                APP,
                "c1",
                "2024-01-05",
                Some("ada"),
                "ada@example.com",
                false,
                &[
                    ("src/a.rs", "modified", 10, 2, false),
                    ("README.md", "modified", 2, 1, false),
                ],
            ),
            commit(
                APP,
                "c2",
                "2024-01-20",
                None,
                "bob@example.com",
                false,
                &[
                    ("src/a.rs", "modified", 5, 5, false),
                    ("logo.png", "added", 0, 0, true),
                    ("old.txt", "removed", 0, 6, false),
                ],
            ),
            commit(
                APP,
                "c3",
                "2024-02-02",
                Some("ada"),
                "ada@example.com",
                false,
                &[
                    ("src/b.rs", "added", 100, 0, false),
                    ("Makefile", "modified", 3, 1, false),
                ],
            ),
            commit(
                APP,
                "m1",
                "2024-02-10",
                Some("ada"),
                "ada@example.com",
                true,
                &[("src/a.rs", "modified", 7, 0, false)],
            ),
            commit(
                LIB,
                "l1",
                "2024-02-03",
                Some("bob"),
                "bob@example.com",
                false,
                &[("src/a.rs", "modified", 1, 0, false)],
            ),
        ]
    }

    async fn object(
        lake: &Lake,
        table: &str,
        id: i64,
        month: &str,
        batch: arrow_array::RecordBatch,
    ) -> String {
        let mut buf = Vec::new();
        let mut w = parquet::arrow::ArrowWriter::try_new(&mut buf, batch.schema(), None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        let path = partition_file(lake, table, id, month, 0);
        lake.put(&path, buf.into()).await.unwrap();
        path.to_string()
    }

    /// Loads the known commits (and PR 1 and 2's commits) into `wh`.
    pub async fn load(wh: &dyn Warehouse) {
        let lake = Lake::new(
            std::sync::Arc::new(object_store::memory::InMemory::new()),
            None,
        );
        let mut by_month: BTreeMap<(i64, String), Vec<Known>> = BTreeMap::new();
        for c in known() {
            by_month
                .entry((c.0.repository_id, c.0.commit_month.clone()))
                .or_default()
                .push(c);
        }
        for id in [APP, LIB] {
            let mut months = Vec::new();
            for ((_, month), rows) in by_month.iter().filter(|((i, _), _)| *i == id) {
                let commits: Vec<CommitRow> = rows.iter().map(|r| r.0.clone()).collect();
                let changes: Vec<FileChangeRow> = rows.iter().flat_map(|r| r.1.clone()).collect();
                months.push(MonthPartition {
                    repository_id: id,
                    month: month.clone(),
                    commits: vec![
                        object(
                            &lake,
                            "commits",
                            id,
                            month,
                            commits_batch(&commits).unwrap(),
                        )
                        .await,
                    ],
                    file_changes: vec![
                        object(
                            &lake,
                            "file_changes",
                            id,
                            month,
                            file_changes_batch(&changes).unwrap(),
                        )
                        .await,
                    ],
                    file_states: vec![
                        object(
                            &lake,
                            "file_states",
                            id,
                            month,
                            file_states_batch(&[]).unwrap(),
                        )
                        .await,
                    ],
                });
            }
            let t = at("2024-03-01");
            let state = RepositoryState {
                repo_id: id,
                node_id: format!("R_{id}"),
                organization: "acme".into(),
                repository: if id == APP { "app" } else { "lib" }.into(),
                is_archived: false,
                is_fork: false,
                is_private: false,
                default_branch: Some("main".into()),
                created_at: t,
                updated_at: t,
                pushed_at: Some(t),
                last_commit_sha: None,
                last_commit_at: None,
                collected_at: t,
                collection_id: "commits-known".into(),
            };
            wh.load_commit_months(&lake, &state, &months).await.unwrap();
        }
        // PR 1 holds c1 and c3, PR 2 holds c1 again (cherry-picked): c1 counts once.
        let mut w = ghstats::lake::ChunkWriter::new(
            lake.clone(),
            "acme".parse().unwrap(),
            "app".parse().unwrap(),
            "2024-03-01".into(),
            "20240301T120000Z-000000".into(),
            1_000,
            BTreeMap::new(),
        );
        for (pr, sha) in [(1, "c1"), (1, "c3"), (2, "c1")] {
            w.push(
                "pr_commits",
                &json!({
                    "organization": "acme", "repository": "app", "repository_id": APP, "pr_number": pr,
                    "sha": sha, "author": "ada", "author_name": "Ada", "authored_at": "2024-01-01T00:00:00Z",
                    "committer": null, "committer_name": "GitHub", "committed_at": "2024-01-01T00:00:00Z",
                    "additions": 1, "deletions": 0, "message_headline": sha, "pr_updated_at": "2024-03-01T00:00:00Z",
                    "collected_at": "2024-03-01T12:00:00Z", "collection_id": "20240301T120000Z-000000",
                }),
            )
            .await
            .unwrap();
        }
        let chunks = w.flush().await.unwrap();
        wh.load(&lake, &chunks).await.unwrap();
    }

    /// What each query answers on the known rows, in its order, as the columns named.
    pub fn answers() -> Vec<(&'static str, Vec<&'static str>, Value)> {
        vec![
            (
                "commits_per_author_per_month",
                vec![
                    "commit_month",
                    "author",
                    "commits",
                    "lines_added",
                    "lines_deleted",
                ],
                json!([
                    ["2024-02", "ada", 1, 103, 1],
                    ["2024-02", "bob", 1, 1, 0],
                    ["2024-01", "ada", 1, 12, 3],
                    ["2024-01", "bob@example.com", 1, 5, 11],
                ]),
            ),
            (
                "commits_most_changed_files",
                vec!["repository", "file_path", "commits", "lines_changed"],
                json!([
                    ["acme/app", "src/a.rs", 3, 29],
                    ["acme/app", "src/b.rs", 1, 100],
                    ["acme/app", "Makefile", 1, 4],
                    ["acme/app", "README.md", 1, 3],
                    ["acme/lib", "src/a.rs", 1, 1],
                    ["acme/app", "logo.png", 1, 0],
                ]),
            ),
            (
                "commits_churn_by_file_type",
                vec![
                    "extension",
                    "file_changes",
                    "lines_added",
                    "lines_deleted",
                    "churn",
                    "binary_changes",
                ],
                json!([
                    ["rs", 5, 123, 7, 130, 0],
                    ["txt", 1, 0, 6, 6, 0],
                    ["(none)", 1, 3, 1, 4, 0],
                    ["md", 1, 2, 1, 3, 0],
                    ["png", 1, 0, 0, 0, 1],
                ]),
            ),
            (
                "commits_largest",
                vec![
                    "repository",
                    "commit_sha",
                    "author",
                    "num_files_changed",
                    "lines_changed",
                ],
                json!([
                    ["acme/app", "c3", "ada", 2, 104],
                    ["acme/app", "c2", "bob@example.com", 3, 16],
                    ["acme/app", "c1", "ada", 2, 15],
                    ["acme/lib", "l1", "bob", 1, 1],
                ]),
            ),
            (
                "commits_through_pull_requests",
                vec!["repository", "commit_month", "commits", "via_pull_requests"],
                json!([
                    ["acme/app", "2024-02", 1, 1],
                    ["acme/lib", "2024-02", 1, 0],
                    ["acme/app", "2024-01", 2, 1],
                ]),
            ),
        ]
    }

    /// Runs every commits query of `dialect` on `wh` (`rename` adapts the dataset) and checks
    /// its rows against [`answers`], numbers compared as integers (PostgreSQL's sums are
    /// numeric, BigQuery's come as text).
    pub async fn check(wh: &dyn Warehouse, dialect: &str, rename: impl Fn(String) -> String) {
        for (name, columns, want) in answers() {
            let sql = rename(super::query(dialect, name));
            let rows = wh
                .query(&sql)
                .await
                .unwrap_or_else(|e| panic!("{dialect} {name}: {e}"));
            let got: Vec<Value> = rows
                .iter()
                .map(|r| {
                    Value::Array(
                        columns
                            .iter()
                            .map(|c| match &r[*c] {
                                Value::Number(n) => json!(n.as_f64().map(|f| f as i64)),
                                Value::String(s)
                                    if s.parse::<i64>().is_ok() && *c != "commit_sha" =>
                                {
                                    json!(s.parse::<i64>().unwrap())
                                }
                                v => v.clone(),
                            })
                            .collect(),
                    )
                })
                .collect();
            assert_eq!(Value::Array(got), want, "{dialect} {name}");
            // The commit time comes back as each backend writes a timestamp.
            if name == "commits_largest" {
                let first: DateTime<Utc> = rows[0]["commit_at"].as_str().unwrap().parse().unwrap();
                assert_eq!(first, at("2024-02-02"), "{dialect}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_commit_queries_answer_known_rows_on_sqlite() {
    let (_dir, wh) = sqlite_warehouse().await;
    known_commits::load(&wh).await;
    known_commits::check(&wh, "sqlite", |s| s).await;
}

/// The SQLite files are portable: PostgreSQL runs them as written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_commit_queries_answer_known_rows_on_postgres() {
    let Some(url) = fresh_database().await else {
        return;
    };
    let wh = ghstats::warehouse::postgres::PostgresWarehouse::connect(&url)
        .await
        .unwrap();
    wh.ensure_tables().await.unwrap();
    known_commits::load(&wh).await;
    known_commits::check(&wh, "sqlite", |s| s).await;
}

/// The BigQuery files on the emulator (dataset `ghstats` renamed to the test's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_commit_queries_answer_known_rows_on_bigquery() {
    let Some(target) = fresh_bigquery() else {
        return;
    };
    let wh = ghstats::warehouse::bigquery::BigQueryWarehouse::connect(&target)
        .await
        .unwrap();
    wh.init().await.unwrap();
    known_commits::load(&wh).await;
    let dataset = format!("{}.", target.dataset);
    known_commits::check(&wh, "bigquery", |s| s.replace("ghstats.", &dataset)).await;
}
