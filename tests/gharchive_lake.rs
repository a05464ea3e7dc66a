//! GH Archive's Parquet in the lake, checked from outside ghstats:
//! - `kill -9` at random moments of `ghstats gharchive` over three hours (while downloading,
//!   writing, loading), each time the same command again: never a half Parquet file under its
//!   final name, and in the end the warehouse equals the simulator's truth, each id once.
//!   The seed of the moments is printed; `GHSTATS_KILL_SEED=N` replays a run.
//! - The files read by pyarrow and DuckDB (from PyPI, through
//!   `scripts/read-gharchive-parquet.py` and the Python in `GHSTATS_TEST_PARQUET_PYTHON`, which
//!   `scripts/services.sh` sets up) as a Hive-partitioned table: the same rows as the truth.

mod common;

use chrono::{DateTime, Utc};
use common::{gharchive_command, gharchive_run};
use github_sim::{GhArchiveSpec, HourQuirks, OrgSpec, SimOptions, Simulator};
use rand::{Rng, SeedableRng};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn hour(s: &str) -> DateTime<Utc> {
    ghstats::gharchive::parse_hour(s).unwrap()
}

async fn simulator(spec: GhArchiveSpec) -> Simulator {
    let sim = Simulator::start(&OrgSpec::new("acme", 1, 1, 1), SimOptions::default(), 0)
        .await
        .unwrap();
    sim.set_gharchive(spec).unwrap();
    sim
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Reads a whole Parquet file with the `parquet` crate: its rows, and the events its
/// `ghstats.events` metadata claims.
fn parquet_rows(path: &Path) -> Result<(usize, Option<u64>), String> {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let b = ParquetRecordBatchReaderBuilder::try_new(f).map_err(|e| e.to_string())?;
    let claimed = b
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|k| k.key == "ghstats.events"))
        .and_then(|k| k.value.as_deref()?.parse().ok());
    let mut rows = 0;
    for batch in b.build().map_err(|e| e.to_string())? {
        rows += batch.map_err(|e| e.to_string())?.num_rows();
    }
    Ok((rows, claimed))
}

/// Every `events.parquet` under the lake is whole: readable to its end, with the rows its
/// metadata names. Returns how many there are.
fn assert_no_half_file(lake: &Path, when: &str) -> usize {
    let finals: Vec<PathBuf> = files(lake)
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n == "events.parquet"))
        .collect();
    for p in &finals {
        match parquet_rows(p) {
            Ok((rows, Some(claimed))) => assert_eq!(
                rows as u64,
                claimed,
                "{when}: {} has {rows} rows but claims {claimed}",
                p.display()
            ),
            Ok((_, None)) => panic!("{when}: {} carries no ghstats figures", p.display()),
            Err(e) => panic!("{when}: a half Parquet file {}: {e}", p.display()),
        }
    }
    finals.len()
}

/// The warehouse's ids per archive hour, and how many rows it holds in all.
fn warehouse_ids(dir: &Path) -> (BTreeMap<String, Vec<i64>>, i64) {
    let conn = rusqlite::Connection::open(dir.join("wh.db")).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT archive_hour, event_id FROM gharchive_events ORDER BY archive_hour, event_id",
        )
        .unwrap();
    let mut by_hour: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for row in stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
        .unwrap()
    {
        let (h, id) = row.unwrap();
        by_hour.entry(h).or_default().push(id);
    }
    let total: i64 = conn
        .query_row("SELECT COUNT(*) FROM gharchive_events", [], |r| r.get(0))
        .unwrap();
    (by_hour, total)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_an_hour_leaves_no_half_file_and_the_next_run_ends_equal_to_the_truth() {
    let (h0, h1, h2) = (
        hour("2024-05-06T10"),
        hour("2024-05-06T11"),
        hour("2024-05-06T12"),
    );
    // Served at 1.5 MB/s, an hour takes about a second to arrive: kills land in downloads,
    // in the Parquet writes that follow them, and in loads.
    let slow = |mut q: HourQuirks| {
        q.slow_bytes_per_sec = Some(1_500_000);
        q
    };
    let spec = GhArchiveSpec::new(11, 3_000)
        .with_hour(
            h0,
            slow(HourQuirks {
                duplicates_within: 7,
                ..HourQuirks::default()
            }),
        )
        .with_hour(
            h1,
            slow(HourQuirks {
                duplicates_from_previous: 6,
                ..HourQuirks::default()
            }),
        )
        .with_hour(h2, slow(HourQuirks::default()));
    let sim = simulator(spec).await;
    let url = sim.gharchive_url();
    let args = ["--from", "2024-05-06T10", "--to", "2024-05-06T12"];

    // One whole run elsewhere gives the span the kills are spread over.
    let scratch = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let (code, r, stderr) = gharchive_run(scratch.path(), &url, &args);
    assert_eq!(code, 0, "{r} {stderr}");
    let span = started.elapsed();

    let seed = std::env::var("GHSTATS_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::thread_rng().gen::<u64>());
    println!("GHSTATS_KILL_SEED={seed} (a whole run took {span:?})");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let mut kills = 0;
    let mut ended_before_kill = 0;
    for k in 0..8 {
        let at = span.mul_f64(rng.gen_range(0.05..0.95));
        let mut child = gharchive_command(dir.path(), &url, &args)
            .env("LOCK_LEASE", "1s")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(at);
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        } else {
            ended_before_kill += 1;
        }
        child.wait().unwrap();
        let whole = assert_no_half_file(&lake, &format!("after kill {k} at {at:?}"));
        println!("kill {k} at {at:?}: {whole} whole hour file(s)");
        // The dead run's lease (1 s) runs out before the next one starts.
        std::thread::sleep(Duration::from_millis(1_100));
    }
    // What a killed multipart write leaves beside the final names (object_store's staging
    // files on file://): never read as an hour, named here for the record.
    let strays: Vec<PathBuf> = files(&lake)
        .into_iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n != "events.parquet" && n != "gharchive.json")
        })
        .collect();
    println!("kills: {kills}, runs that ended first: {ended_before_kill}, other files: {strays:?}");
    assert!(kills > 0, "no run was killed (seed {seed})");

    let (code, r, stderr) = gharchive_run(dir.path(), &url, &args);
    assert_eq!(
        code, 0,
        "the run after the kills (seed {seed}): {r} {stderr}"
    );
    assert_eq!(assert_no_half_file(&lake, "at the end"), 3);
    let (by_hour, total) = warehouse_ids(dir.path());
    let mut want_total = 0;
    for h in [h0, h1, h2] {
        let t = sim.gharchive_truth(h);
        let mut want: Vec<i64> = t.events.iter().map(|e| e.event_id.unwrap()).collect();
        want.sort_unstable();
        want_total += want.len() as i64;
        let key = h.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
        assert_eq!(
            by_hour.get(&key),
            Some(&want),
            "hour {h} (seed {seed}): the warehouse's ids differ from the truth"
        );
        let file = lake.join(format!(
            "gharchive/events/date={}/hour={}/events.parquet",
            h.format("%Y-%m-%d"),
            h.format("%H")
        ));
        let (rows, _) = parquet_rows(&file).unwrap();
        assert_eq!(
            rows,
            t.events.len() + t.repeated_from_previous.len(),
            "{} (seed {seed})",
            file.display()
        );
    }
    assert_eq!(total, want_total, "each id once (seed {seed})");

    // The whole run elsewhere and the killed-and-resumed one agree row for row.
    assert_eq!(warehouse_ids(scratch.path()), (by_hour, total));
}

/// The rows the readers print, in the script's shape, from the simulator's truth.
fn expected_rows(sim: &Simulator, hours: &[DateTime<Utc>]) -> Vec<Value> {
    let mut rows = Vec::new();
    for &h in hours {
        for e in sim.gharchive_truth(h).events {
            rows.push(serde_json::json!([
                e.event_id.map(Value::from).unwrap_or("synthetic".into()),
                e.event_type,
                e.created_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                e.actor_login,
                e.repo_name,
                "object",
                h.format("%Y-%m-%d").to_string(),
                h.format("%H").to_string().parse::<i64>().unwrap(),
            ]));
        }
    }
    rows.sort_by_key(|r| r.to_string());
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyarrow_and_duckdb_read_the_lake_as_a_partitioned_table_equal_to_the_truth() {
    let Ok(python) = std::env::var("GHSTATS_TEST_PARQUET_PYTHON") else {
        eprintln!("skipped: GHSTATS_TEST_PARQUET_PYTHON is not set (scripts/services.sh sets it)");
        return;
    };
    // The three formats: Timeline (some lines without an id), Events, trimmed payloads.
    let hours = [
        hour("2014-06-01T12"),
        hour("2024-05-06T10"),
        hour("2025-11-02T08"),
    ];
    let spec = GhArchiveSpec::new(5, 400)
        .with_hour(
            hours[0],
            HourQuirks {
                without_id: 3,
                ..HourQuirks::default()
            },
        )
        .with_hour(
            hours[1],
            HourQuirks {
                duplicates_within: 5,
                member_as_string: 3,
                unknown_fields: 10,
                ..HourQuirks::default()
            },
        )
        .with_hour(hours[2], HourQuirks::default());
    let sim = simulator(spec).await;
    let url = sim.gharchive_url();
    let dir = tempfile::tempdir().unwrap();
    for h in hours {
        let at = h.format("%Y-%m-%dT%H").to_string();
        let (code, r, stderr) = gharchive_run(dir.path(), &url, &["--from", &at, "--to", &at]);
        assert_eq!(code, 0, "{at}: {r} {stderr}");
    }
    let out = std::process::Command::new(&python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/scripts/read-gharchive-parquet.py"
        ))
        .arg(dir.path().join("lake"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the readers failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read: BTreeMap<String, Vec<Value>> = serde_json::from_slice(&out.stdout).unwrap();
    let want = expected_rows(&sim, &hours);
    assert_eq!(want.len(), 1_200, "400 events an hour");
    for reader in ["pyarrow", "duckdb"] {
        let Some(rows) = read.get(reader) else {
            panic!("{python} has no {reader}: scripts/services.sh installs it");
        };
        let mut got: Vec<Value> = rows
            .iter()
            .map(|r| {
                let mut r = r.clone();
                // Lines without an id get a synthetic negative one.
                if r[0].as_i64().is_some_and(|id| id < 0) {
                    r[0] = "synthetic".into();
                }
                r
            })
            .collect();
        got.sort_by_key(|r| r.to_string());
        assert_eq!(got.len(), want.len(), "{reader}: rows");
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g, w, "{reader}");
        }
    }
}
