//! The `gharchive` job: which hours to ingest, and each one's way through the lake into the
//! warehouse, with its state in `gharchive_hours`.
//!
//! An hour is done when the warehouse's state says `ingested`; its Parquet object is written
//! first, whole, so a run killed anywhere leaves either no object (the hour is downloaded
//! again) or a complete one (it is loaded without a download). Loads are idempotent, so an
//! hour loaded twice changes nothing.

use super::ingest::{ingest_hour, HourError};
use super::{file_name, floor_hour, newest_published, object_parts, HourStats, MISSING_RETRY_DAYS};
use crate::jobs::progress::HourProgress;
use crate::lake::Lake;
use crate::warehouse::{HourState, HourStatus, Warehouse};
use chrono::{DateTime, Duration, Utc};
use object_store::path::Path;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// At most this many hours in one request (20 years).
pub const MAX_HOURS: i64 = 24 * 366 * 20;

/// Which hours a run covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selection {
    /// `from` to `to`, both included.
    Range {
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    },
    /// The newest `n` published hours.
    Newest(u32),
    /// Every hour after the newest ingested one, up to the newest published, and the missing
    /// (for [`MISSING_RETRY_DAYS`]) and failed hours recorded before.
    SinceLast,
}

/// A shard of the hours: every `count`-th hour, starting at `index` (0-based), counted from
/// the Unix epoch so every shard of every run agrees.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl std::str::FromStr for Shard {
    type Err = String;
    /// `I/N`, with `0 <= I < N`.
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not a shard: give I/N with 0 <= I < N, e.g. 0/8");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: u32 = i.trim().parse().map_err(|_| bad())?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl Shard {
    pub fn takes(&self, hour: DateTime<Utc>) -> bool {
        (hour.timestamp() / 3600).rem_euclid(i64::from(self.count)) == i64::from(self.index)
    }
}

/// The name of the lock a run takes under `gharchive/_locks/`: `gharchive.json`, or for a
/// shard of more than one, `gharchive-shard-I-of-N.json`. Shards of one split never share an
/// hour, so the tasks of a Cloud Run Job run side by side; a second run of the same shard (or
/// a second unsharded run) is refused. Shard `0/1` takes every hour: it is the unsharded lock.
pub fn lock_file(shard: Option<Shard>) -> String {
    match shard {
        Some(s) if s.count > 1 => format!("gharchive-shard-{}-of-{}.json", s.index, s.count),
        _ => "gharchive.json".to_string(),
    }
}

/// What a run is told.
pub struct Options {
    /// GH Archive's base URL (`GHARCHIVE_URL`).
    pub base_url: url::Url,
    /// Keep `payload` (`GHARCHIVE_PAYLOAD=raw`, the default) or leave it null (`none`).
    pub keep_payload: bool,
    /// Ingest again hours already ingested (and ask again hours missing for good).
    pub force: bool,
    pub shard: Option<Shard>,
    /// Stop between hours once this passes (the run budget).
    pub deadline: Instant,
    /// Any of these set: stop between hours (SIGTERM, a lost lock).
    pub stop: Vec<Arc<AtomicBool>>,
    /// The progress bar (or [`HourProgress::hidden`]).
    pub progress: Arc<HourProgress>,
}

/// One hour's outcome in a run.
#[derive(Clone, Debug, Serialize)]
pub struct HourOutcome {
    /// `2015-01-01T15:00:00Z`.
    pub hour: DateTime<Utc>,
    /// `ingested`, `loaded` (its object was already in the lake), `missing`,
    /// `missing_for_good`, `failed`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<HourStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Seconds from the request to the whole Parquet object (download, gunzip, parse, encode,
    /// write), for an hour downloaded in this run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ingest_seconds: Option<f64>,
    /// Seconds the warehouse took to load the hour and record its state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_seconds: Option<f64>,
}

/// The run's result.
#[derive(Clone, Debug, Serialize)]
pub struct GharchiveResult {
    /// `completed`, `partial` (stopped by the budget or a signal; the rest waits for the next
    /// run) or `failed` (some hour failed; it is retried next run).
    pub status: &'static str,
    /// Hours the selection named that this run takes (with a shard, the shard's hours only).
    pub hours_selected: usize,
    /// Already ingested: left alone.
    pub hours_skipped: usize,
    pub hours_ingested: usize,
    pub hours_missing: usize,
    /// Missing for more than [`MISSING_RETRY_DAYS`] days: not asked again.
    pub hours_missing_for_good: usize,
    pub hours_failed: usize,
    /// Hours not reached before the budget or a stop.
    pub hours_left: usize,
    pub events: u64,
    pub duplicates_dropped: u64,
    pub lines_rejected: u64,
    pub bytes_downloaded: u64,
    pub hours: Vec<HourOutcome>,
}

/// A selection that names no valid hours (a client's mistake: HTTP 400, CLI usage error).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PlanError(pub String);

impl Selection {
    /// Checks that the selection names hours GH Archive can have at `now`, before any lock is
    /// taken or any hour asked for. The CLI (exit status 2) and `POST /gharchive` (400) both
    /// call it, and [`plan`] again.
    ///
    /// Errors, each saying what to fix: `to` before `from`; `to` not published yet (after
    /// [`newest_published`]); a range of more than [`MAX_HOURS`]; `hours` outside 1 to
    /// [`MAX_HOURS`] or reaching back before GH Archive's first hour ([`super::FIRST_HOUR`]).
    pub fn check(&self, now: DateTime<Utc>) -> Result<(), PlanError> {
        let newest = newest_published(now);
        let hour = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H").to_string();
        match self {
            Selection::Range { from, to } => {
                let (from, to) = (floor_hour(*from), floor_hour(*to));
                if to < from {
                    return Err(PlanError(format!(
                        "to {} is before from {}: give the first hour in from and the last in to",
                        hour(to),
                        hour(from)
                    )));
                }
                if to > newest {
                    return Err(PlanError(format!(
                        "to {} is not published yet: the newest hour GH Archive can have is {}",
                        hour(to),
                        hour(newest)
                    )));
                }
                if (to - from).num_hours() >= MAX_HOURS {
                    return Err(PlanError(format!(
                        "{} hours is more than one run takes ({MAX_HOURS}); split the range",
                        (to - from).num_hours() + 1
                    )));
                }
            }
            Selection::Newest(n) => {
                if *n == 0 || i64::from(*n) > MAX_HOURS {
                    return Err(PlanError(format!(
                        "hours must be 1 to {MAX_HOURS}, not {n}"
                    )));
                }
                let reach = (newest - super::first_hour()).num_hours() + 1;
                if i64::from(*n) > reach {
                    return Err(PlanError(format!(
                        "hours {n} reaches back before GH Archive's first hour, {}: at most {reach} hours are published now",
                        super::FIRST_HOUR
                    )));
                }
            }
            Selection::SinceLast => {}
        }
        Ok(())
    }
}

/// The hours `selection` names, oldest first, as of `now`.
///
/// Errors: what [`Selection::check`] refuses.
pub fn plan(
    selection: &Selection,
    states: &BTreeMap<DateTime<Utc>, HourState>,
    now: DateTime<Utc>,
) -> Result<Vec<DateTime<Utc>>, String> {
    selection.check(now).map_err(|e| e.0)?;
    let newest = newest_published(now);
    let range = |from: DateTime<Utc>, to: DateTime<Utc>| {
        let n = (to - from).num_hours() + 1;
        (0..n.max(0)).map(move |i| from + Duration::hours(i))
    };
    Ok(match selection {
        Selection::Range { from, to } => range(floor_hour(*from), floor_hour(*to)).collect(),
        Selection::Newest(n) => {
            range(newest - Duration::hours(i64::from(*n) - 1), newest).collect()
        }
        Selection::SinceLast => {
            let last = states
                .values()
                .filter(|s| s.status == HourStatus::Ingested)
                .map(|s| s.hour)
                .max();
            let from = match last {
                Some(h) => h + Duration::hours(1),
                None => newest,
            };
            let mut hours: Vec<DateTime<Utc>> = states
                .values()
                .filter(|s| match s.status {
                    HourStatus::Failed => true,
                    HourStatus::Missing => s.final_at.is_none(),
                    HourStatus::Ingested => false,
                })
                .map(|s| s.hour)
                .filter(|h| *h < from)
                .collect();
            hours.extend(range(from, newest));
            hours
        }
    })
}

/// Runs `selection` against `lake` and `wh`.
pub async fn run(
    http: &reqwest::Client,
    lake: &Lake,
    wh: &dyn Warehouse,
    selection: &Selection,
    opts: &Options,
    now: DateTime<Utc>,
) -> anyhow::Result<GharchiveResult> {
    let states: BTreeMap<DateTime<Utc>, HourState> = wh
        .gharchive_hours()
        .await?
        .into_iter()
        .map(|s| (s.hour, s))
        .collect();
    let selected: Vec<DateTime<Utc>> = plan(selection, &states, now)
        .map_err(PlanError)?
        .into_iter()
        .filter(|h| opts.shard.is_none_or(|s| s.takes(*h)))
        .collect();
    let mut result = GharchiveResult {
        status: "completed",
        hours_selected: selected.len(),
        hours_skipped: 0,
        hours_ingested: 0,
        hours_missing: 0,
        hours_missing_for_good: 0,
        hours_failed: 0,
        hours_left: 0,
        events: 0,
        duplicates_dropped: 0,
        lines_rejected: 0,
        bytes_downloaded: 0,
        hours: Vec::new(),
    };
    let mut todo = Vec::new();
    for hour in selected {
        match states.get(&hour) {
            Some(s) if s.status == HourStatus::Ingested && !opts.force => {
                result.hours_skipped += 1;
            }
            Some(s) if s.status == HourStatus::Missing && s.final_at.is_some() && !opts.force => {
                result.hours_missing_for_good += 1;
                result.hours.push(HourOutcome {
                    hour,
                    status: "missing_for_good",
                    stats: None,
                    error: None,
                    ingest_seconds: None,
                    load_seconds: None,
                });
            }
            _ => todo.push(hour),
        }
    }
    let stopped =
        || Instant::now() >= opts.deadline || opts.stop.iter().any(|s| s.load(Ordering::Relaxed));
    opts.progress.set_hours(todo.len() as u64);
    for (i, hour) in todo.iter().copied().enumerate() {
        if stopped() {
            result.hours_left = todo.len() - i;
            result.status = "partial";
            break;
        }
        opts.progress.hour_started(hour);
        let outcome = one_hour(http, lake, wh, hour, states.get(&hour), opts).await?;
        opts.progress
            .hour_ended(outcome.stats.as_ref().map_or(0, |s| s.events));
        match outcome.status {
            "ingested" | "loaded" => {
                result.hours_ingested += 1;
                if let Some(s) = &outcome.stats {
                    result.events += s.events;
                    result.duplicates_dropped += s.duplicates_dropped;
                    result.lines_rejected += s.lines_rejected;
                    if outcome.status == "ingested" {
                        result.bytes_downloaded += s.bytes;
                    }
                }
            }
            "missing" => result.hours_missing += 1,
            "missing_for_good" => result.hours_missing_for_good += 1,
            _ => result.hours_failed += 1,
        }
        result.hours.push(outcome);
    }
    if result.status == "completed" && result.hours_failed > 0 {
        result.status = "failed";
    }
    Ok(result)
}

/// One hour: its object if the lake has it whole, else a download; then the load and the
/// state, or the state of a missing or failed hour. Errors of the warehouse end the run;
/// an hour's own trouble is its outcome.
async fn one_hour(
    http: &reqwest::Client,
    lake: &Lake,
    wh: &dyn Warehouse,
    hour: DateTime<Utc>,
    before: Option<&HourState>,
    opts: &Options,
) -> anyhow::Result<HourOutcome> {
    let parts = object_parts(hour);
    let path = lake.path_of(&parts.iter().map(String::as_str).collect::<Vec<_>>());
    let now = Utc::now();
    let stored = if opts.force {
        None
    } else {
        stored_stats(lake, &path).await
    };
    let started = Instant::now();
    let (stats, status) = match stored {
        Some(s) => (s, "loaded"),
        None => {
            let url = hour_url(&opts.base_url, hour)?;
            match ingest_hour(
                http,
                &url,
                lake.store().clone(),
                &path,
                hour,
                opts.keep_payload,
                opts.progress.counters(),
            )
            .await
            {
                Ok(s) => (s, "ingested"),
                Err(HourError::Missing(url)) => {
                    let first = before.and_then(|b| b.first_missing_at).unwrap_or(now);
                    let final_at =
                        (now - first >= Duration::days(MISSING_RETRY_DAYS)).then_some(now);
                    wh.record_gharchive_hour(&HourState {
                        hour,
                        status: HourStatus::Missing,
                        stats: None,
                        ingested_at: None,
                        first_missing_at: Some(first),
                        final_at,
                        error: Some(format!("not published: 404 at {url}")),
                        updated_at: now,
                    })
                    .await?;
                    tracing::warn!(hour = %file_name(hour), for_good = final_at.is_some(), "A GH Archive hour is missing.");
                    return Ok(HourOutcome {
                        hour,
                        status: if final_at.is_some() {
                            "missing_for_good"
                        } else {
                            "missing"
                        },
                        stats: None,
                        error: None,
                        ingest_seconds: None,
                        load_seconds: None,
                    });
                }
                Err(HourError::Failed(e)) => {
                    wh.record_gharchive_hour(&HourState {
                        hour,
                        status: HourStatus::Failed,
                        stats: None,
                        ingested_at: None,
                        first_missing_at: None,
                        final_at: None,
                        error: Some(e.clone()),
                        updated_at: now,
                    })
                    .await?;
                    tracing::error!(hour = %file_name(hour), error = %e, "A GH Archive hour failed; the next run tries it again.");
                    return Ok(HourOutcome {
                        hour,
                        status: "failed",
                        stats: None,
                        error: Some(e),
                        ingest_seconds: None,
                        load_seconds: None,
                    });
                }
            }
        }
    };
    let ingest_seconds = (status == "ingested").then(|| started.elapsed().as_secs_f64());
    let loading = Instant::now();
    let state = HourState {
        hour,
        status: HourStatus::Ingested,
        stats: Some(stats),
        ingested_at: Some(Utc::now()),
        first_missing_at: None,
        final_at: None,
        error: None,
        updated_at: Utc::now(),
    };
    opts.progress.hour_loading();
    wh.load_gharchive_hour(lake, &path, &state).await?;
    tracing::info!(hour = %file_name(hour), events = stats.events, "A GH Archive hour is in the warehouse.");
    Ok(HourOutcome {
        hour,
        status,
        stats: Some(stats),
        error: None,
        ingest_seconds,
        load_seconds: Some(loading.elapsed().as_secs_f64()),
    })
}

/// `{base}/YYYY-MM-DD-H.json.gz`.
pub fn hour_url(base: &url::Url, hour: DateTime<Utc>) -> anyhow::Result<url::Url> {
    let mut base = base.clone();
    if !base.path().ends_with('/') {
        base.set_path(&format!("{}/", base.path()));
    }
    Ok(base.join(&file_name(hour))?)
}

/// The figures of an hour's object when the lake has it whole; `None` when it has none. A
/// damaged object (not Parquet, or not ours) is named and set aside, and the hour downloaded
/// again.
async fn stored_stats(lake: &Lake, path: &Path) -> Option<HourStats> {
    use object_store::ObjectStoreExt;
    match lake.store().head(path).await {
        Ok(_) => {}
        Err(_) => return None,
    }
    let why = match crate::lake::parquet::open(lake.store().clone(), path).await {
        Ok(b) => match HourStats::from_metadata(&crate::lake::parquet::key_value_metadata(&b)) {
            Some(s) => return Some(s),
            None => "it carries no ghstats figures".to_string(),
        },
        Err(e) => e.to_string(),
    };
    let aside = Path::from(format!("{path}.damaged"));
    tracing::error!(path = %path, reason = %why, set_aside = %aside, "A GH Archive Parquet object is damaged; it is set aside and the hour downloaded again.");
    if let Err(e) = lake.store().rename(path, &aside).await {
        tracing::warn!(path = %path, error = %e, "Setting the damaged object aside failed; it is overwritten.");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> DateTime<Utc> {
        super::super::parse_hour(s).unwrap()
    }

    fn state(hour: &str, status: HourStatus, final_at: bool) -> (DateTime<Utc>, HourState) {
        (
            h(hour),
            HourState {
                hour: h(hour),
                status,
                stats: None,
                ingested_at: None,
                first_missing_at: None,
                final_at: final_at.then(Utc::now),
                error: None,
                updated_at: Utc::now(),
            },
        )
    }

    #[test]
    fn plans() {
        let now: DateTime<Utc> = "2024-05-01T10:20:00Z".parse().unwrap();
        let none = BTreeMap::new();
        let r = plan(
            &Selection::Range {
                from: h("2024-04-30T22"),
                to: h("2024-05-01T01"),
            },
            &none,
            now,
        )
        .unwrap();
        assert_eq!(r.len(), 4);
        assert_eq!(r[0], h("2024-04-30T22"));
        let n = plan(&Selection::Newest(3), &none, now).unwrap();
        assert_eq!(
            n,
            vec![h("2024-05-01T07"), h("2024-05-01T08"), h("2024-05-01T09")]
        );
        // Nothing ingested yet: the newest hour.
        assert_eq!(
            plan(&Selection::SinceLast, &none, now).unwrap(),
            vec![h("2024-05-01T09")]
        );
        let states: BTreeMap<_, _> = [
            state("2024-05-01T06", HourStatus::Ingested, false),
            state("2024-05-01T03", HourStatus::Missing, false),
            state("2024-05-01T02", HourStatus::Missing, true),
            state("2024-05-01T04", HourStatus::Failed, false),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            plan(&Selection::SinceLast, &states, now).unwrap(),
            vec![
                h("2024-05-01T03"),
                h("2024-05-01T04"),
                h("2024-05-01T07"),
                h("2024-05-01T08"),
                h("2024-05-01T09")
            ]
        );
        assert!(plan(&Selection::Newest(0), &none, now).is_err());
        assert!(plan(
            &Selection::Range {
                from: h("2024-05-01T09"),
                to: h("2024-05-01T10")
            },
            &none,
            now
        )
        .unwrap_err()
        .contains("not published yet"));
        assert!(plan(
            &Selection::Range {
                from: h("2024-05-01T09"),
                to: h("2024-05-01T08")
            },
            &none,
            now
        )
        .is_err());
    }

    #[test]
    fn a_selection_gh_archive_cannot_have_is_refused_saying_what_to_fix() {
        let now: DateTime<Utc> = "2024-05-01T10:20:00Z".parse().unwrap();
        let range = |from: &str, to: &str| Selection::Range {
            from: h(from),
            to: h(to),
        };
        let refused = |s: Selection| s.check(now).unwrap_err().0;
        assert_eq!(
            refused(range("2024-05-01T02", "2024-05-01T01")),
            "to 2024-05-01T01 is before from 2024-05-01T02: give the first hour in from and the last in to"
        );
        assert_eq!(
            refused(range("2024-05-01T09", "2024-05-01T10")),
            "to 2024-05-01T10 is not published yet: the newest hour GH Archive can have is 2024-05-01T09"
        );
        assert!(refused(Selection::Newest(0)).contains("hours must be 1 to"));
        assert!(refused(Selection::Newest(u32::MAX)).contains("not 4294967295"));
        // From 2011-02-12T00 to 2024-05-01T09, both included.
        let published = (h("2024-05-01T09") - h("2011-02-12T00")).num_hours() + 1;
        let n = u32::try_from(published).unwrap();
        assert!(Selection::Newest(n).check(now).is_ok());
        assert!(refused(Selection::Newest(n + 1)).contains(&format!(
            "before GH Archive's first hour, 2011-02-12T00: at most {published} hours"
        )));
        assert!(range("2011-02-12T00", "2024-05-01T09").check(now).is_ok());
        assert!(Selection::SinceLast.check(now).is_ok());
    }

    #[test]
    fn shards_split_the_hours_without_overlap() {
        let hours: Vec<_> = (0..100)
            .map(|i| h("2020-01-01T00") + Duration::hours(i))
            .collect();
        let shards: Vec<Shard> = (0..7).map(|i| format!("{i}/7").parse().unwrap()).collect();
        for hour in &hours {
            assert_eq!(shards.iter().filter(|s| s.takes(*hour)).count(), 1);
        }
        assert_eq!(lock_file(None), "gharchive.json");
        assert_eq!(lock_file(Some("0/1".parse().unwrap())), "gharchive.json");
        assert_eq!(lock_file(Some(shards[3])), "gharchive-shard-3-of-7.json");
        for bad in ["7/7", "1", "a/b", "0/0", "-1/3"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }
}
