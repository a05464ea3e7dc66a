//! `ghstats gharchive` against the simulator's GH Archive (payloads from
//! `@octokit/webhooks-examples`), every quirk on, compared field by field with the simulator's
//! ground truth: events per hour, each id once, rejected lines counted, missing hours recorded
//! and picked up when they appear, a truncated hour failed and retried, reloading changes
//! nothing. The three formats: Timeline (2014), Events (2024), trimmed (2025-11).

mod common;

use chrono::{DateTime, Utc};
use common::gharchive::{truth_lines, EventLine};
use common::gharchive_run;
use github_sim::{GhArchiveSpec, HourQuirks, OrgSpec, SimOptions, Simulator};
use rusqlite::types::Value as V;
use serde_json::Value;

fn hour(s: &str) -> DateTime<Utc> {
    ghstats::gharchive::parse_hour(s).unwrap()
}

fn text(v: &V) -> Option<String> {
    match v {
        V::Text(s) => Some(s.clone()),
        _ => None,
    }
}

fn int(v: &V) -> Option<i64> {
    match v {
        V::Integer(i) => Some(*i),
        _ => None,
    }
}

/// The warehouse's rows of one archive hour as comparable strings, and their ids.
fn stored(dir: &std::path::Path, h: DateTime<Utc>) -> Vec<String> {
    let conn = rusqlite::Connection::open(dir.join("wh.db")).unwrap();
    let mut stmt = conn
        .prepare("SELECT event_id, event_type, created_at, public, actor_id, actor_login, repo_id, repo_name, org_id, org_login, action, number, ref, push_head, push_size FROM gharchive_events WHERE archive_hour = ?1 ORDER BY created_at, event_id")
        .unwrap();
    let key = h.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
    let rows: Vec<Vec<V>> = stmt
        .query_map([key], |r| (0..15).map(|i| r.get(i)).collect())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut lines: Vec<String> = rows
        .iter()
        .map(|r| {
            EventLine {
                event_id: EventLine::id(int(&r[0]).unwrap()),
                event_type: text(&r[1]),
                created_at: text(&r[2]).map(|t| t.parse().unwrap()),
                public: int(&r[3]).map(|b| b != 0),
                actor_id: int(&r[4]),
                actor_login: text(&r[5]),
                repo_id: int(&r[6]),
                repo_name: text(&r[7]),
                org_id: int(&r[8]),
                org_login: text(&r[9]),
                action: text(&r[10]),
                number: int(&r[11]),
                git_ref: text(&r[12]),
                push_head: text(&r[13]),
                push_size: int(&r[14]),
            }
            .line()
        })
        .collect();
    lines.sort();
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_quirk_of_gh_archive_against_the_simulators_truth() {
    let sim = Simulator::start(&OrgSpec::new("acme", 1, 1, 1), SimOptions::default(), 0)
        .await
        .unwrap();
    let q = |f: fn(&mut HourQuirks)| {
        let mut x = HourQuirks::default();
        f(&mut x);
        x
    };
    let (h0, h1, h2, h3) = (
        hour("2024-03-10T04"),
        hour("2024-03-10T05"),
        hour("2024-03-10T06"),
        hour("2024-03-10T07"),
    );
    let (old, trimmed) = (hour("2014-06-01T12"), hour("2025-11-02T08"));
    let spec = GhArchiveSpec::new(7, 600)
        .with_hour(
            h0,
            q(|x| {
                x.duplicates_within = 9;
                x.not_json = 3;
                x.without_type = 2;
                x.member_as_string = 4;
            }),
        )
        .with_hour(
            h1,
            q(|x| {
                x.duplicates_from_previous = 5;
                x.unknown_fields = 20;
                x.missing_fields = 20;
                x.without_id = 3;
            }),
        )
        .with_hour(h2, q(|x| x.missing = true))
        .with_hour(h3, q(|x| x.truncated = true))
        .with_hour(old, q(|x| x.without_id = 4))
        .with_hour(trimmed, HourQuirks::default());
    sim.set_gharchive(spec).unwrap();
    let url = sim.gharchive_url();
    let dir = tempfile::tempdir().unwrap();

    let (code, r, stderr) = gharchive_run(
        dir.path(),
        &url,
        &["--from", "2024-03-10T04", "--to", "2024-03-10T07"],
    );
    assert_eq!(code, 1, "the truncated hour fails the run: {r} {stderr}");
    assert_eq!(
        (
            &r["hours_ingested"],
            &r["hours_missing"],
            &r["hours_failed"]
        ),
        (&Value::from(2), &Value::from(1), &Value::from(1)),
        "{r}"
    );
    let (t0, t1) = (sim.gharchive_truth(h0), sim.gharchive_truth(h1));
    assert_eq!(
        r["lines_rejected"],
        t0.counts.rejected + t1.counts.rejected,
        "{r}"
    );
    assert_eq!(r["duplicates_dropped"], t0.counts.duplicates_within, "{r}");
    for h in [h0, h1] {
        let (got, want) = (stored(dir.path(), h), truth_lines(&sim, h));
        assert!(want.len() > 500, "{h}: {} events", want.len());
        assert_eq!(got.len(), want.len(), "{h}");
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g, w, "{h}");
        }
    }
    // Each id once across the hours: the copies of hour 0's events in hour 1 stay hour 0's.
    let conn = rusqlite::Connection::open(dir.path().join("wh.db")).unwrap();
    let total: i64 = conn
        .query_row("SELECT COUNT(*) FROM gharchive_events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(total as usize, t0.events.len() + t1.events.len());
    // No object for the truncated or the missing hour.
    for h in ["06", "07"] {
        assert!(!dir
            .path()
            .join(format!(
                "lake/gharchive/events/date=2024-03-10/hour={h}/events.parquet"
            ))
            .exists());
    }

    // Reloading changes nothing.
    let before = (stored(dir.path(), h0), stored(dir.path(), h1));
    let (code, r, stderr) = gharchive_run(
        dir.path(),
        &url,
        &[
            "--from",
            "2024-03-10T04",
            "--to",
            "2024-03-10T05",
            "--force",
        ],
    );
    assert_eq!(code, 0, "{r} {stderr}");
    assert_eq!((stored(dir.path(), h0), stored(dir.path(), h1)), before);

    // The missing hour is published and the truncated one mended: the next run
    // takes both.
    sim.gharchive_publish(h2);
    sim.set_gharchive(
        GhArchiveSpec::new(7, 600)
            .with_hour(h0, sim.gharchive_truth(h0).quirks)
            .with_hour(h1, sim.gharchive_truth(h1).quirks),
    )
    .unwrap();
    let (_, r, stderr) = gharchive_run(
        dir.path(),
        &url,
        &["--from", "2024-03-10T06", "--to", "2024-03-10T07"],
    );
    assert_eq!(r["hours_ingested"], 2, "{r} {stderr}");
    for h in [h2, h3] {
        assert_eq!(stored(dir.path(), h), truth_lines(&sim, h), "{h}");
    }

    // The other formats: a Timeline hour (some lines without an id) and a trimmed one.
    sim.set_gharchive(
        GhArchiveSpec::new(7, 600)
            .with_hour(old, q(|x| x.without_id = 4))
            .with_hour(trimmed, HourQuirks::default()),
    )
    .unwrap();
    for h in [old, trimmed] {
        let arg = h.format("%Y-%m-%dT%H").to_string();
        let (code, r, stderr) = gharchive_run(dir.path(), &url, &["--from", &arg, "--to", &arg]);
        assert_eq!(code, 0, "{r} {stderr}");
        assert_eq!(stored(dir.path(), h), truth_lines(&sim, h), "{h}");
    }
}
