//! GH Archive on the command line, beside the job itself (`tests/gharchive_sim.rs`):
//! - `ghstats summary` shows GH Archive from the warehouse's `gharchive_hours`: after a
//!   simulated run with ingested, missing (one of them for good) and failed hours, its figures
//!   equal the simulator's truth, in `--json` and in the text; a warehouse without GH Archive's
//!   tables, or with nothing recorded in them, gives no GH Archive section.
//! - `ghstats gharchive` draws a progress bar on a terminal (a pseudo-terminal from util-linux
//!   `script`), and none when stderr is not one.

mod common;

use chrono::{DateTime, Duration, Utc};
use common::ghstats_bin;
use ghstats::warehouse::{HourState, HourStatus, Warehouse};
use github_sim::{GhArchiveSpec, HourQuirks, OrgSpec, SimOptions, Simulator};
use serde_json::Value;
use std::collections::BTreeSet;

fn hour(s: &str) -> DateTime<Utc> {
    ghstats::gharchive::parse_hour(s).unwrap()
}

/// `ghstats ARGS` in `dir` with its lake and warehouse there: exit status, stdout, stderr.
fn ghstats(dir: &std::path::Path, url: &str, args: &[&str]) -> (i32, String, String) {
    let out = ghstats_bin(dir)
        .env("GHARCHIVE_URL", url)
        .env("GITHUB_ORG", "acme")
        .env("STORAGE_URL", "file://./lake")
        .env("WAREHOUSE_URL", "sqlite://./wh.db")
        .env("LOG_FORMAT", "json")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn summary_json(dir: &std::path::Path, url: &str) -> Value {
    let (code, out, err) = ghstats(dir, url, &["summary", "--json"]);
    assert_eq!(code, 0, "{out} {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// Distinct event ids in the hour's file, as the simulator wrote it: its own events and the
/// previous hour's repeated ones (copies within the hour dropped).
fn distinct_in_file(t: &github_sim::HourTruth) -> u64 {
    let repeated: BTreeSet<i64> = t.repeated_from_previous.iter().copied().collect();
    (t.events.len() + repeated.len()) as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summary_shows_gh_archive_hours_as_the_simulator_served_them() {
    let sim = Simulator::start(&OrgSpec::new("acme", 1, 1, 1), SimOptions::default(), 0)
        .await
        .unwrap();
    let q = |f: fn(&mut HourQuirks)| {
        let mut x = HourQuirks::default();
        f(&mut x);
        x
    };
    let (h0, h1, h2, h3, h4) = (
        hour("2024-03-10T04"),
        hour("2024-03-10T05"),
        hour("2024-03-10T06"),
        hour("2024-03-10T07"),
        hour("2024-03-10T08"),
    );
    let spec = GhArchiveSpec::new(11, 400)
        .with_hour(
            h0,
            q(|x| {
                x.duplicates_within = 7;
                x.not_json = 2;
                x.without_type = 1;
            }),
        )
        .with_hour(h1, q(|x| x.duplicates_from_previous = 4))
        .with_hour(h2, q(|x| x.missing = true))
        .with_hour(h3, q(|x| x.truncated = true))
        .with_hour(h4, q(|x| x.missing = true));
    sim.set_gharchive(spec.clone()).unwrap();
    let url = sim.gharchive_url();
    let dir = tempfile::tempdir().unwrap();

    // Hour 8 was first found missing eight days ago: this run gives up on it.
    {
        let wh = ghstats::warehouse::sqlite::SqliteWarehouse::open(&dir.path().join("wh.db"))
            .await
            .unwrap();
        wh.ensure_tables().await.unwrap();
        let then = Utc::now() - Duration::days(8);
        wh.record_gharchive_hour(&HourState {
            hour: h4,
            status: HourStatus::Missing,
            stats: None,
            ingested_at: None,
            first_missing_at: Some(then),
            final_at: None,
            error: Some("not published: 404".into()),
            updated_at: then,
        })
        .await
        .unwrap();
    }
    let (code, out, err) = ghstats(
        dir.path(),
        &url,
        &[
            "gharchive",
            "--from",
            "2024-03-10T04",
            "--to",
            "2024-03-10T08",
        ],
    );
    assert_eq!(code, 1, "the truncated hour fails the run: {out} {err}");

    let (t0, t1) = (sim.gharchive_truth(h0), sim.gharchive_truth(h1));
    let gz = |h| github_sim::gharchive::gzip(&spec, h).0.len() as u64;
    let events = distinct_in_file(&t0) + distinct_in_file(&t1);
    let s = summary_json(dir.path(), &url);
    let g = &s["gharchive"];
    assert_eq!(g["hours_ingested"], 2, "{g}");
    assert_eq!(g["hours_missing"], 2, "{g}");
    assert_eq!(g["hours_missing_for_good"], 1, "{g}");
    assert_eq!(g["hours_failed"], 1, "{g}");
    assert_eq!(g["newest_ingested"], "2024-03-10T05:00:00Z", "{g}");
    assert_eq!(g["oldest_ingested"], "2024-03-10T04:00:00Z", "{g}");
    assert_eq!(g["events"], events, "{g}");
    assert!(events > 700, "{events}");
    assert_eq!(g["bytes"], gz(h0) + gz(h1), "{g}");
    assert_eq!(
        g["duplicates_dropped"],
        t0.counts.duplicates_within + t1.counts.duplicates_within,
        "{g}"
    );
    assert_eq!(
        g["lines_rejected"],
        t0.counts.rejected + t1.counts.rejected,
        "{g}"
    );
    let listed: Vec<(&str, &str, &str)> = g["not_ingested"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["hour"].as_str().unwrap(),
                n["status"].as_str().unwrap(),
                n["error"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(listed.len(), 3, "{g}");
    assert_eq!(listed[0].0, "2024-03-10T06:00:00Z");
    assert_eq!(listed[0].1, "missing");
    assert!(
        listed[0].2.contains("404") && listed[0].2.contains("2024-03-10-6.json.gz"),
        "{g}"
    );
    assert_eq!(listed[1].0, "2024-03-10T07:00:00Z");
    assert_eq!(listed[1].1, "failed");
    assert!(
        listed[1].2.contains("2024-03-10-7.json.gz") && listed[1].2.contains("gzip"),
        "{g}"
    );
    assert_eq!(listed[2].0, "2024-03-10T08:00:00Z");
    assert_eq!(listed[2].1, "missing_for_good");

    let (code, text, err) = ghstats(dir.path(), &url, &["summary"]);
    assert_eq!(code, 0, "{text} {err}");
    for line in [
        "\nGH Archive (gharchive_hours)\n".to_string(),
        "  hours ingested: 2 (newest 2024-03-10T05, oldest 2024-03-10T04)\n".into(),
        "  hours missing: 2 (1 for good: no run asks for them again)\n".into(),
        "  hours failed: 1 (the next run tries them again)\n".into(),
        format!(
            "  events: {events} ({} duplicate lines dropped, {} lines rejected)\n",
            t0.counts.duplicates_within,
            t0.counts.rejected + t1.counts.rejected
        ),
        format!(
            "  downloaded: {:.1} MB (gzip)\n",
            (gz(h0) + gz(h1)) as f64 / 1e6
        ),
        "  hours not ingested:\n".into(),
        format!("    2024-03-10T06  missing           {}\n", listed[0].2),
        format!("    2024-03-10T07  failed            {}\n", listed[1].2),
        "    2024-03-10T08  missing_for_good  not published".into(),
    ] {
        assert!(text.contains(&line), "{line:?} is not in\n{text}");
    }

    // Hour 6 is published and hour 7 mended: the next run takes both; hour 8 stays given up.
    sim.gharchive_publish(h2);
    let mended = GhArchiveSpec::new(11, 400)
        .with_hour(h0, t0.quirks.clone())
        .with_hour(h1, t1.quirks.clone())
        .with_hour(h4, q(|x| x.missing = true));
    sim.set_gharchive(mended.clone()).unwrap();
    let (code, out, err) = ghstats(
        dir.path(),
        &url,
        &[
            "gharchive",
            "--from",
            "2024-03-10T06",
            "--to",
            "2024-03-10T08",
        ],
    );
    assert_eq!(code, 0, "{out} {err}");
    let s = summary_json(dir.path(), &url);
    let g = &s["gharchive"];
    let (t2, t3) = (sim.gharchive_truth(h2), sim.gharchive_truth(h3));
    assert_eq!(
        (
            &g["hours_ingested"],
            &g["hours_missing"],
            &g["hours_missing_for_good"],
            &g["hours_failed"]
        ),
        (
            &Value::from(4),
            &Value::from(1),
            &Value::from(1),
            &Value::from(0)
        ),
        "{g}"
    );
    assert_eq!(
        g["events"],
        events + distinct_in_file(&t2) + distinct_in_file(&t3),
        "{g}"
    );
    assert_eq!(g["newest_ingested"], "2024-03-10T07:00:00Z", "{g}");
    assert_eq!(g["not_ingested"].as_array().unwrap().len(), 1, "{g}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summary_has_no_gh_archive_section_without_gh_archive() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("lake")).unwrap();
    {
        let wh = ghstats::warehouse::sqlite::SqliteWarehouse::open(&dir.path().join("wh.db"))
            .await
            .unwrap();
        wh.ensure_tables().await.unwrap();
    }
    // GH Archive's tables, empty.
    let s = summary_json(dir.path(), "http://127.0.0.1:9");
    assert_eq!(s["gharchive"], Value::Null, "{s}");
    // A warehouse made before GH Archive: no such tables.
    let conn = rusqlite::Connection::open(dir.path().join("wh.db")).unwrap();
    conn.execute_batch("DROP TABLE gharchive_events; DROP TABLE gharchive_hours;")
        .unwrap();
    drop(conn);
    let s = summary_json(dir.path(), "http://127.0.0.1:9");
    assert_eq!(s["gharchive"], Value::Null, "{s}");
    assert_eq!(s["warehouse"]["pull_requests"], 0, "{s}");
    let (code, text, err) = ghstats(dir.path(), "http://127.0.0.1:9", &["summary"]);
    assert_eq!(code, 0, "{text} {err}");
    assert!(!text.contains("GH Archive"), "{text}");
}

/// On a terminal the run draws its bar (hours done of those to do, events, megabytes, the hour
/// in hand) on stderr; piped, stderr holds log lines only. The terminal is util-linux
/// `script`'s pseudo-terminal; without one the terminal half is skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_progress_bar_shows_on_a_terminal_only() {
    let sim = Simulator::start(&OrgSpec::new("acme", 1, 1, 1), SimOptions::default(), 0)
        .await
        .unwrap();
    sim.set_gharchive(GhArchiveSpec::new(3, 300)).unwrap();
    let url = sim.gharchive_url();
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = ghstats(
        dir.path(),
        &url,
        &[
            "gharchive",
            "--from",
            "2024-03-10T00",
            "--to",
            "2024-03-10T01",
        ],
    );
    assert_eq!(code, 0, "{out} {err}");
    assert!(!err.contains(" hours "), "no bar on a pipe: {err}");
    assert!(
        err.lines().all(|l| l.starts_with('{')),
        "log lines only: {err}"
    );

    let terminal = std::process::Command::new("script")
        .args(["-q", "-e", "-c", "true", "/dev/null"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !terminal {
        eprintln!("skipped: no util-linux `script`, or it cannot open a pseudo-terminal");
        return;
    }
    let command = format!(
        "'{}' gharchive --from 2024-03-10T02 --to 2024-03-10T04",
        env!("CARGO_BIN_EXE_ghstats")
    );
    let out = std::process::Command::new("script")
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .env("GHARCHIVE_URL", &url)
        .env("STORAGE_URL", "file://./lake")
        .env("WAREHOUSE_URL", "sqlite://./wh.db")
        .env("LOG_FORMAT", "json")
        .env("TERM", "xterm")
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .output()
        .unwrap();
    let screen = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{screen}");
    assert!(screen.contains("/3 hours"), "a bar of 3 hours: {screen}");
}

/// On PostgreSQL too: `gharchive_hours` is read back as recorded, and a database without GH
/// Archive's tables answers no hours (so `summary`, opened read-only, shows no section) rather
/// than an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_without_gh_archive_tables_answers_no_hours() {
    use ghstats::warehouse::postgres::PostgresWarehouse;
    let Some(db) = common::fresh_database().await else {
        return;
    };
    let wh = PostgresWarehouse::connect(&db).await.unwrap();
    wh.ensure_tables().await.unwrap();
    let h = hour("2024-03-10T06");
    let state = HourState {
        hour: h,
        status: HourStatus::Failed,
        stats: None,
        ingested_at: None,
        first_missing_at: None,
        final_at: None,
        error: Some("truncated".into()),
        updated_at: h,
    };
    wh.record_gharchive_hour(&state).await.unwrap();
    let read_only = PostgresWarehouse::connect_read_only(&db).await.unwrap();
    assert_eq!(read_only.gharchive_hours().await.unwrap(), vec![state]);
    let (client, conn) = tokio_postgres::connect(&db, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .batch_execute("DROP TABLE gharchive_events; DROP TABLE gharchive_hours;")
        .await
        .unwrap();
    assert_eq!(read_only.gharchive_hours().await.unwrap(), Vec::new());
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("lake")).unwrap();
    let out = ghstats_bin(dir.path())
        .env("GITHUB_ORG", "acme")
        .env("STORAGE_URL", "file://./lake")
        .env("WAREHOUSE_URL", &db)
        .args(["summary", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["gharchive"], Value::Null, "{s}");
}
