//! Crash safety through the load: `kill -9` at random moments of a backfill, while it collects
//! and while it loads, then the next job (alternately `resume`, `collect` and the service's
//! `POST /collect`) leaves the warehouse equal to the simulator's ground truth every time.
//!
//! The seed of the random moments is printed; `GHSTATS_KILL_SEED=N` replays a run.

mod common;

use common::ghstats_bin;
use github_sim::{OrgSpec, SimOptions, Simulator};
use rand::{Rng, SeedableRng};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

const TOKEN: &str = "ghp_killTESTtoken";
/// How many kills must land in a running process.
const KILLS: usize = 20;

/// Where a kill landed, read from the checkpoint after the process is gone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    /// The checkpoint says running: pages were being fetched and chunks written.
    Collecting,
    /// The checkpoint says completed, not loaded: the load was under way.
    Loading,
    /// Loaded, the process was releasing its lock and printing its result.
    AfterLoad,
}

/// The job that follows a kill.
#[derive(Clone, Copy, Debug)]
enum Next {
    Resume,
    Collect,
    ServiceCollect,
}

fn write_env(dir: &Path, api: &str) {
    std::fs::write(
        dir.join(".env"),
        format!(
            "GITHUB_ORG=acme\nGITHUB_TOKEN={TOKEN}\nGITHUB_API_URL={api}\nSTORAGE_URL=file://./lake\nWAREHOUSE_URL=sqlite://./wh.db\nLOG_FORMAT=json\nLOCK_LEASE=1s\n"
        ),
    )
    .unwrap();
}

fn checkpoints(dir: &Path) -> PathBuf {
    dir.join("lake/acme/_checkpoints")
}

/// The newest checkpoint as JSON (`None` before the first one is written or while one is
/// half-written: the file is replaced whole, but a read may still race a rename on some
/// filesystems).
fn newest_checkpoint(dir: &Path) -> Option<(String, serde_json::Value)> {
    let path = std::fs::read_dir(checkpoints(dir))
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .max()?;
    let id = path.file_stem()?.to_str()?.to_string();
    let v = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
    Some((id, v))
}

fn phase_of(cp: &serde_json::Value) -> Phase {
    match (cp["status"].as_str(), cp["loaded"].as_bool()) {
        (Some("completed"), Some(true)) => Phase::AfterLoad,
        (Some("completed"), _) => Phase::Loading,
        _ => Phase::Collecting,
    }
}

fn backfill(dir: &Path) -> Child {
    ghstats_bin(dir)
        .args(["backfill", "--all"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("backfill.log")).unwrap())
        .spawn()
        .unwrap()
}

/// Why a run ended before its kill: its exit status and last log line.
fn why_it_ended(child: &mut Child, dir: &Path) -> String {
    let status = child.wait().unwrap();
    let log = std::fs::read_to_string(dir.join("backfill.log")).unwrap_or_default();
    format!("{status}: {}", log.lines().last().unwrap_or(""))
}

/// Polls until `want` holds of the newest checkpoint or the process ends; the instant it held.
fn wait_for(
    child: &mut Child,
    dir: &Path,
    want: impl Fn(&serde_json::Value) -> bool,
) -> Option<Instant> {
    loop {
        if child.try_wait().unwrap().is_some() {
            return None;
        }
        if newest_checkpoint(dir).is_some_and(|(_, cp)| want(&cp)) {
            return Some(Instant::now());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Rows of `truth` the warehouse lacks or holds differently, and rows it has that `truth`
/// does not.
fn differences(actual: &common::Tables, truth: &common::Tables) -> (usize, usize) {
    let empty = Default::default();
    let mut lost = 0;
    let mut extra = 0;
    let names: std::collections::BTreeSet<&String> = actual.keys().chain(truth.keys()).collect();
    for t in names {
        let a = actual.get(t).unwrap_or(&empty);
        let e = truth.get(t).unwrap_or(&empty);
        lost += e.iter().filter(|(k, row)| a.get(*k) != Some(row)).count();
        extra += a.keys().filter(|k| !e.contains_key(*k)).count();
    }
    (lost, extra)
}

async fn warehouse(dir: &Path) -> common::Tables {
    let wh = ghstats::warehouse::sqlite::SqliteWarehouse::open(&dir.join("wh.db"))
        .await
        .unwrap();
    common::warehouse_tables(&wh).await
}

/// Runs the job that follows a kill in `dir`; panics with its output when it fails.
async fn next_job(dir: &Path, next: Next, collection_id: &str) {
    let out = match next {
        Next::Resume => ghstats_bin(dir)
            .args(["resume", "--collection-id", collection_id])
            .output()
            .unwrap(),
        Next::Collect => ghstats_bin(dir)
            .args(["collect", "--hours", "1"])
            .output()
            .unwrap(),
        Next::ServiceCollect => {
            let port = common::service::free_port();
            let mut service = ghstats_bin(dir)
                .args(["serve", "--host", "127.0.0.1", "--port", &port.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let url = format!("http://127.0.0.1:{port}");
            let http = reqwest::Client::new();
            common::service::wait_up(&http, &url).await;
            let r = http
                .post(format!("{url}/collect"))
                .json(&serde_json::json!({"hours": 1}))
                .send()
                .await
                .unwrap();
            let status = r.status();
            let body = r.text().await.unwrap_or_default();
            service.kill().unwrap();
            service.wait().unwrap();
            assert!(status.is_success(), "POST /collect: {status} {body}");
            return;
        }
    };
    assert!(
        out.status.success(),
        "{next:?} after a kill failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_twenty_random_moments_of_a_backfill_loses_no_row() {
    // Two dozen backfills: a budget that does not run out within the hour.
    let options = SimOptions {
        graphql_limit: 1_000_000,
        rest_limit: 1_000_000,
        ..SimOptions::default()
    };
    let sim = Simulator::start(&OrgSpec::new("acme", 4, 3000, 12), options, 0)
        .await
        .unwrap();
    let truth = common::expected(&sim.world(), &common::everything(), &[]);
    // The simulator's newest changes carry the second it started; a backfill's window ends at
    // the second it starts (exclusive), so the first one waits for the next second.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let seed: u64 = std::env::var("GHSTATS_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random::<u64>);
    eprintln!("GHSTATS_KILL_SEED={seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);

    // A backfill left alone, timed from its checkpoint: how long it collects and loads.
    let dir = tempfile::tempdir().unwrap();
    write_env(dir.path(), &sim.url());
    let mut child = backfill(dir.path());
    let started = wait_for(&mut child, dir.path(), |_| true).expect("a checkpoint is written");
    let completed = wait_for(&mut child, dir.path(), |cp| cp["status"] == "completed")
        .expect("the backfill completes");
    let status = child.wait().unwrap();
    let ended = Instant::now();
    assert!(status.success(), "an undisturbed backfill: {status}");
    common::assert_tables_eq(&warehouse(dir.path()).await, &truth);
    let collecting = completed - started;
    let loading = ended - completed;
    eprintln!(
        "undisturbed backfill: collecting {:?}, loading and exit {:?}, {} rows",
        collecting,
        loading,
        common::row_count(&truth)
    );

    let mut per_phase = std::collections::BTreeMap::<Phase, usize>::new();
    let mut per_job = std::collections::BTreeMap::<String, usize>::new();
    let mut ended_first = 0;
    let (mut total_lost, mut total_extra) = (0, 0);
    let mut kills = 0;
    for attempt in 0..KILLS * 3 {
        if kills == KILLS {
            break;
        }
        // Half the kills aim at the collection, half at the load; each at a uniform moment of
        // the phase as the undisturbed run measured it.
        let dir = tempfile::tempdir().unwrap();
        write_env(dir.path(), &sim.url());
        let mut child = backfill(dir.path());
        let aim_at_load = attempt % 2 == 1;
        let (from, span) = if aim_at_load {
            let Some(at) = wait_for(&mut child, dir.path(), |cp| cp["status"] == "completed")
            else {
                panic!(
                    "a backfill ended before it completed: {}",
                    why_it_ended(&mut child, dir.path())
                );
            };
            (at, loading)
        } else {
            let Some(at) = wait_for(&mut child, dir.path(), |_| true) else {
                panic!(
                    "a backfill ended before its first checkpoint: {}",
                    why_it_ended(&mut child, dir.path())
                );
            };
            (at, collecting)
        };
        let delay = span.mul_f64(rng.gen::<f64>());
        std::thread::sleep(delay.saturating_sub(from.elapsed()));
        if child.try_wait().unwrap().is_some() {
            ended_first += 1;
            continue;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let (id, cp) = newest_checkpoint(dir.path()).expect("the killed run left a checkpoint");
        let phase = phase_of(&cp);
        *per_phase.entry(phase).or_default() += 1;
        let next = [Next::Resume, Next::Collect, Next::ServiceCollect][kills % 3];
        *per_job.entry(format!("{next:?}")).or_default() += 1;
        kills += 1;

        if dir.path().join("wh.db").exists() {
            let (lost, _) = differences(&warehouse(dir.path()).await, &truth);
            eprintln!("  right after the kill the warehouse lacks {lost} rows");
        }
        // The dead run's lease (1 s) runs out; the next job takes the lock over.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        next_job(dir.path(), next, &id).await;
        let (lost, extra) = differences(&warehouse(dir.path()).await, &truth);
        eprintln!(
            "kill {kills}: {phase:?} after {delay:?} ({id}), then {next:?}: {lost} rows lost, {extra} extra"
        );
        total_lost += lost;
        total_extra += extra;
        assert_eq!(
            (lost, extra),
            (0, 0),
            "kill {kills} while {phase:?}, then {next:?} (GHSTATS_KILL_SEED={seed})"
        );
    }
    eprintln!(
        "kills: {kills} (per phase {per_phase:?}; {ended_first} runs ended before their kill); next jobs {per_job:?}; rows lost: {total_lost}, rows extra: {total_extra}"
    );
    assert_eq!(kills, KILLS, "{ended_first} runs ended before their kill");
    // Both phases were hit: the test proves the load is part of the crash-safe path.
    assert!(
        per_phase.get(&Phase::Collecting).copied().unwrap_or(0) >= KILLS / 4,
        "{per_phase:?}"
    );
    assert!(
        per_phase.get(&Phase::Loading).copied().unwrap_or(0) >= KILLS / 4,
        "{per_phase:?}"
    );
}
