//! `ghstats gharchive` end to end on the embedded default (a local lake and SQLite), against
//! hour files served on loopback: the quirks of real GH Archive files (duplicate ids within and
//! across hours, a line that is not JSON, an event without a type, a Timeline line from before
//! 2015 without an id, a trimmed 2025 push, `payload.member` as a string), a missing hour that
//! appears later, and a truncated gzip. The Parquet files are read back with the `parquet`
//! crate's own reader.

mod common;

use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::routing::get;
use common::{gharchive_run, ghstats_bin};
use flate2::write::GzEncoder;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::sync::{Arc, Mutex};

type Files = Arc<Mutex<HashMap<String, Vec<u8>>>>;

async fn serve(files: Files) -> String {
    let app = axum::Router::new()
        .route(
            "/{file}",
            get(
                |State(files): State<Files>, UrlPath(file): UrlPath<String>| async move {
                    match files.lock().unwrap().get(&file) {
                        Some(b) => Ok(b.clone()),
                        None => Err(StatusCode::NOT_FOUND),
                    }
                },
            ),
        )
        .with_state(files);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

fn gz(lines: &[String]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    for l in lines {
        e.write_all(l.as_bytes()).unwrap();
        e.write_all(b"\n").unwrap();
    }
    e.finish().unwrap()
}

fn event(id: i64, ty: &str, at: &str, payload: Value) -> String {
    json!({
        "id": id.to_string(),
        "type": ty,
        "actor": {"id": 1000 + id, "login": format!("user{id}"), "display_login": format!("user{id}")},
        "repo": {"id": 5000 + id % 7, "name": format!("org{}/repo{}", id % 3, id % 7)},
        "payload": payload,
        "public": true,
        "created_at": at,
    })
    .to_string()
}

fn query(dir: &std::path::Path, sql: &str) -> Vec<Vec<rusqlite::types::Value>> {
    let conn = rusqlite::Connection::open(dir.join("wh.db")).unwrap();
    let mut stmt = conn.prepare(sql).unwrap();
    let n = stmt.column_count();
    stmt.query_map([], |r| (0..n).map(|i| r.get(i)).collect())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Every row of a Parquet file, read with the `parquet` crate's synchronous reader.
fn parquet_ids(path: &std::path::Path) -> Vec<i64> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::Int64Type;
    let file = std::fs::File::open(path).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let mut ids = Vec::new();
    for b in reader {
        let b = b.unwrap();
        ids.extend(
            b.column_by_name("event_id")
                .unwrap()
                .as_primitive::<Int64Type>()
                .values()
                .iter(),
        );
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hours_with_every_quirk_land_once_and_missing_hours_are_picked_up_later() {
    let files: Files = Arc::default();
    let url = serve(files.clone()).await;
    // Hour 0: ordinary events, one id twice, a line that is not JSON, one without a type,
    // `payload.member` as a string, a PR with a number.
    let h0 = vec![
        event(
            1,
            "PushEvent",
            "2024-01-01T00:00:01Z",
            json!({"push_id": 9, "size": 2, "distinct_size": 2, "ref": "refs/heads/main", "head": "aaa", "before": "bbb", "commits": []}),
        ),
        event(
            2,
            "WatchEvent",
            "2024-01-01T00:10:00Z",
            json!({"action": "started"}),
        ),
        event(
            2,
            "WatchEvent",
            "2024-01-01T00:10:00Z",
            json!({"action": "started"}),
        ),
        "{not json".to_string(),
        json!({"id": "77", "created_at": "2024-01-01T00:11:00Z"}).to_string(),
        event(
            3,
            "MemberEvent",
            "2024-01-01T00:12:00Z",
            json!({"member": "octocat", "action": "added"}),
        ),
        event(
            4,
            "PullRequestEvent",
            "2024-01-01T00:13:00Z",
            json!({"action": "opened", "number": 12, "pull_request": {"number": 12}}),
        ),
    ];
    // Hour 1: id 4 again (across hours), a trimmed push, a Timeline line without an id.
    let timeline =
        json!({"created_at": "2024-01-01T01:20:00-08:00", "type": "PushEvent", "public": true,
        "actor": "olduser", "actor_attributes": {"login": "olduser"},
        "repository": {"id": 42, "name": "old", "owner": "someone"},
        "payload": {"head": "ccc", "ref": "refs/heads/master", "size": 1, "shas": []}})
        .to_string();
    let h1 = vec![
        event(
            4,
            "PullRequestEvent",
            "2024-01-01T00:13:00Z",
            json!({"action": "opened", "number": 12}),
        ),
        event(
            5,
            "PushEvent",
            "2024-01-01T01:00:05Z",
            json!({"repository_id": 5005, "push_id": 10, "ref": "refs/heads/dev", "head": "ddd", "before": "eee"}),
        ),
        timeline,
    ];
    {
        let mut f = files.lock().unwrap();
        f.insert("2024-01-01-0.json.gz".into(), gz(&h0));
        f.insert("2024-01-01-1.json.gz".into(), gz(&h1));
        // Hour 2 is missing (404). Hour 3 is a truncated gzip.
        let mut broken = gz(&[event(
            6,
            "ForkEvent",
            "2024-01-01T03:00:00Z",
            json!({"forkee": {"id": 1}}),
        )]);
        broken.truncate(broken.len() / 2);
        f.insert("2024-01-01-3.json.gz".into(), broken);
    }
    let dir = tempfile::tempdir().unwrap();
    let (code, result, stderr) = gharchive_run(
        dir.path(),
        &url,
        &["--from", "2024-01-01T00", "--to", "2024-01-01T03"],
    );
    assert_eq!(
        code, 1,
        "a failed hour makes the run fail: {result} {stderr}"
    );
    assert_eq!(result["hours_ingested"], 2, "{result}");
    assert_eq!(result["hours_missing"], 1, "{result}");
    assert_eq!(result["hours_failed"], 1, "{result}");
    assert_eq!(result["duplicates_dropped"], 1, "{result}");
    assert_eq!(result["lines_rejected"], 2, "{result}");
    let failed = result["hours"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["status"] == "failed")
        .unwrap();
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("2024-01-01-3.json.gz"),
        "{failed}"
    );

    // Each id once; the id seen in both hours belongs to the first.
    let rows = query(dir.path(), "SELECT event_id, event_type, archive_hour, actor_login, repo_name, number, ref, push_head, push_size, action FROM gharchive_events ORDER BY event_id");
    let ids: Vec<i64> = rows
        .iter()
        .map(|r| match r[0] {
            rusqlite::types::Value::Integer(i) => i,
            _ => panic!(),
        })
        .collect();
    assert_eq!(ids.len(), 6, "{rows:?}");
    assert!(
        ids[0] < 0,
        "the Timeline line without an id gets a negative one: {ids:?}"
    );
    assert_eq!(&ids[1..], &[1, 2, 3, 4, 5]);
    let by_id: BTreeMap<i64, &Vec<rusqlite::types::Value>> =
        ids.iter().copied().zip(rows.iter()).collect();
    use rusqlite::types::Value as V;
    assert_eq!(by_id[&4][2], V::Text("2024-01-01T00:00:00.000000Z".into()));
    assert_eq!(by_id[&4][5], V::Integer(12));
    assert_eq!(by_id[&5][8], V::Null, "a trimmed push has no size");
    assert_eq!(by_id[&5][7], V::Text("ddd".into()));
    assert_eq!(by_id[&1][8], V::Integer(2));
    assert_eq!(by_id[&ids[0]][4], V::Text("someone/old".into()));
    assert_eq!(by_id[&ids[0]][3], V::Text("olduser".into()));
    assert_eq!(by_id[&2][9], V::Text("started".into()));

    // The Parquet files hold the same rows, read by the parquet crate's own reader.
    let p0 = dir
        .path()
        .join("lake/gharchive/events/date=2024-01-01/hour=00/events.parquet");
    let p1 = dir
        .path()
        .join("lake/gharchive/events/date=2024-01-01/hour=01/events.parquet");
    assert_eq!(parquet_ids(&p0), vec![1, 2, 3, 4]);
    let mut in1 = parquet_ids(&p1);
    in1.sort();
    assert_eq!(in1.len(), 3, "hour 1's file keeps its own copy of id 4");
    assert!(
        !dir.path()
            .join("lake/gharchive/events/date=2024-01-01/hour=03")
            .join("events.parquet")
            .exists(),
        "no half file for the truncated hour"
    );

    let states = query(dir.path(), "SELECT hour, status, events, duplicates_dropped, lines_rejected FROM gharchive_hours ORDER BY hour");
    assert_eq!(states.len(), 4, "{states:?}");
    assert_eq!(states[0][1], V::Text("ingested".into()));
    assert_eq!(states[0][2], V::Integer(4));
    assert_eq!(states[0][3], V::Integer(1));
    assert_eq!(states[0][4], V::Integer(2));
    assert_eq!(states[2][1], V::Text("missing".into()));
    assert_eq!(states[3][1], V::Text("failed".into()));

    // Again: the ingested hours are skipped, the warehouse unchanged.
    let (_, again, _) = gharchive_run(
        dir.path(),
        &url,
        &["--from", "2024-01-01T00", "--to", "2024-01-01T01"],
    );
    assert_eq!(again["hours_skipped"], 2, "{again}");
    assert_eq!(again["hours_ingested"], 0, "{again}");
    // --force ingests them again: still each id once, same rows.
    let (code, forced, stderr) = gharchive_run(
        dir.path(),
        &url,
        &[
            "--from",
            "2024-01-01T00",
            "--to",
            "2024-01-01T01",
            "--force",
        ],
    );
    assert_eq!(code, 0, "{forced} {stderr}");
    assert_eq!(forced["hours_ingested"], 2, "{forced}");
    let after = query(dir.path(), "SELECT event_id, event_type, archive_hour, actor_login, repo_name, number, ref, push_head, push_size, action FROM gharchive_events ORDER BY event_id");
    assert_eq!(after, rows);

    // The missing hour appears and the file is mended: a run with no range picks up both.
    {
        let mut f = files.lock().unwrap();
        f.insert(
            "2024-01-01-2.json.gz".into(),
            gz(&[event(
                7,
                "IssuesEvent",
                "2024-01-01T02:00:00Z",
                json!({"action": "closed", "issue": {"number": 3}}),
            )]),
        );
        f.insert(
            "2024-01-01-3.json.gz".into(),
            gz(&[event(
                6,
                "ForkEvent",
                "2024-01-01T03:00:00Z",
                json!({"forkee": {"id": 1}}),
            )]),
        );
    }
    let (_, later, stderr) = gharchive_run(dir.path(), &url, &[]);
    let picked: Vec<&str> = later["hours"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["status"] == "ingested")
        .map(|h| h["hour"].as_str().unwrap())
        .collect();
    assert!(
        picked.contains(&"2024-01-01T02:00:00Z") && picked.contains(&"2024-01-01T03:00:00Z"),
        "{later} {stderr}"
    );
    let n = query(
        dir.path(),
        "SELECT COUNT(*) FROM gharchive_events WHERE event_id IN (6, 7)",
    );
    assert_eq!(n[0][0], V::Integer(2));
}

#[test]
fn bad_ranges_are_refused_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    for (args, want) in [
        (
            vec!["--from", "2024-01-02T00", "--to", "2024-01-01T00"],
            "is before from",
        ),
        (
            vec!["--from", "2024-01-01T25", "--to", "2024-01-02T00"],
            "0 to 23",
        ),
        (
            vec!["--from", "2099-01-01T00", "--to", "2099-01-01T01"],
            "not published yet",
        ),
        (vec!["--hours", "0"], "0"),
        (vec!["--shard", "3/3"], "shard"),
    ] {
        let (code, _, stderr) = gharchive_run(dir.path(), "http://127.0.0.1:9", &args);
        // A usage error, found before any lock is taken or any hour asked for.
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.contains(want), "{args:?}: {stderr}");
        assert_eq!(
            stderr
                .trim()
                .lines()
                .filter(|l| l.starts_with("error"))
                .count(),
            1,
            "{stderr}"
        );
    }
    // Cloud Run's task variables: a pair that is no shard, or one without the other.
    for (vars, want) in [
        (
            vec![("CLOUD_RUN_TASK_INDEX", "5"), ("CLOUD_RUN_TASK_COUNT", "2")],
            "not a shard",
        ),
        (vec![("CLOUD_RUN_TASK_INDEX", "abc")], "go together"),
    ] {
        let out = common::gharchive_command(dir.path(), "http://127.0.0.1:9", &["--hours", "1"])
            .envs(vars.iter().copied())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{vars:?}: {stderr}");
        assert!(stderr.contains(want), "{vars:?}: {stderr}");
    }
}

/// The tasks of a Cloud Run Job (`--shard I/N`, or CLOUD_RUN_TASK_INDEX/COUNT) run side by
/// side: each shard takes a lock of its own. A second run of the same shard is refused (exit
/// status 4), and together the shards ingest every hour once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_of_one_split_run_side_by_side_and_each_shard_once() {
    let spec = github_sim::GhArchiveSpec::new(11, 40);
    let hours: Vec<chrono::DateTime<chrono::Utc>> = (0..4)
        .map(|h| ghstats::gharchive::parse_hour(&format!("2024-01-01T{h:02}")).unwrap())
        .collect();
    // 2024-01-01T00 is an even hour since the epoch: shard 0/2's, held back.
    let (url, mut asked, release) = common::archive::gated(
        common::archive::hour_files(&spec, &hours),
        github_sim::gharchive::file_name(hours[0]),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let range = ["--from", "2024-01-01T00", "--to", "2024-01-01T03"];
    let shard0 = common::gharchive_command(dir.path(), &url, &range)
        .env("CLOUD_RUN_TASK_INDEX", "0")
        .env("CLOUD_RUN_TASK_COUNT", "2")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    asked.recv().await.unwrap();
    let cli = |args: Vec<&'static str>| {
        let (dir, url) = (dir.path().to_path_buf(), url.clone());
        tokio::task::spawn_blocking(move || gharchive_run(&dir, &url, &args))
    };
    let mut args = range.to_vec();
    args.extend(["--shard", "1/2"]);
    let (code, r, stderr) = cli(args.clone()).await.unwrap();
    assert_eq!(code, 0, "shard 1/2 runs beside 0/2: {r} {stderr}");
    assert_eq!(
        (&r["hours_selected"], &r["hours_ingested"]),
        (&json!(2), &json!(2)),
        "{r}"
    );
    args[5] = "0/2";
    let (code, _, stderr) = cli(args).await.unwrap();
    assert_eq!(code, 4, "shard 0/2 runs already: {stderr}");
    assert!(
        stderr.contains("GH Archive's lock is held by gharchive-"),
        "{stderr}"
    );

    release.add_permits(1);
    let out = tokio::task::spawn_blocking(move || shard0.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let r: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{r} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(r["hours_ingested"], 2, "{r}");
    let want: usize = hours
        .iter()
        .map(|h| github_sim::gharchive::truth(&spec, *h).events.len())
        .sum();
    let n = query(dir.path(), "SELECT COUNT(*) FROM gharchive_events");
    assert_eq!(n[0][0], rusqlite::types::Value::Integer(want as i64));
}

/// The same hours into PostgreSQL: each id once, the states recorded, a second load of an hour
/// (with --force) changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_holds_each_event_once() {
    let Some(db) = common::fresh_database().await else {
        return;
    };
    let files: Files = Arc::default();
    let url = serve(files.clone()).await;
    {
        let mut f = files.lock().unwrap();
        f.insert(
            "2023-06-01-9.json.gz".into(),
            gz(&[
                event(11, "PushEvent", "2023-06-01T09:00:00Z", json!({"size": 1, "head": "h", "ref": "refs/heads/a\tb"})),
                event(12, "IssueCommentEvent", "2023-06-01T09:01:00Z", json!({"action": "created", "issue": {"number": 5}, "comment": {"body": "tab\there\nnewline \\ backslash \u{0}nul"}})),
                event(12, "IssueCommentEvent", "2023-06-01T09:01:00Z", json!({"action": "created"})),
            ]),
        );
        f.insert(
            "2023-06-01-10.json.gz".into(),
            gz(&[
                event(11, "PushEvent", "2023-06-01T09:00:00Z", json!({"size": 1})),
                event(13, "ForkEvent", "2023-06-01T10:00:00Z", json!({})),
            ]),
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let run_pg = |args: &[&str]| {
        let out = ghstats_bin(dir.path())
            .env("GHARCHIVE_URL", &url)
            .env("STORAGE_URL", "file://./lake")
            .env("WAREHOUSE_URL", &db)
            .arg("gharchive")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let (client, conn) = tokio_postgres::connect(&db, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let snapshot = || async {
        client
            .query("SELECT event_id, event_type, archive_hour::text, ref, number, payload FROM gharchive_events ORDER BY event_id", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| format!("{:?}|{:?}|{:?}|{:?}|{:?}|{:?}", r.get::<_, i64>(0), r.get::<_, String>(1), r.get::<_, String>(2), r.get::<_, Option<String>>(3), r.get::<_, Option<i64>>(4), r.get::<_, Option<String>>(5)))
            .collect::<Vec<_>>()
    };
    run_pg(&["--from", "2023-06-01T09", "--to", "2023-06-01T10"]);
    let first = snapshot().await;
    assert_eq!(first.len(), 3, "{first:?}");
    assert!(first[0].contains("refs/heads/a\\tb"), "{first:?}");
    assert!(first[1].contains("Some(5)"), "{first:?}");
    assert!(first[1].contains("backslash"), "{first:?}");
    run_pg(&[
        "--from",
        "2023-06-01T09",
        "--to",
        "2023-06-01T10",
        "--force",
    ]);
    assert_eq!(snapshot().await, first);
    let states = client
        .query(
            "SELECT status, events, duplicates_dropped FROM gharchive_hours ORDER BY hour",
            &[],
        )
        .await
        .unwrap();
    let states: Vec<(String, i64, i64)> = states
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        states,
        vec![("ingested".into(), 2, 1), ("ingested".into(), 2, 0)]
    );
}
