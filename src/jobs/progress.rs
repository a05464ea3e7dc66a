//! Progress of a run. A collection ([`Progress`]): a bar on a terminal, a log line every few
//! seconds otherwise, showing repositories done, pull requests fetched and the API budget left,
//! then the load into the warehouse (its chunks, and how long it has taken). A `gharchive` run
//! ([`HourProgress`]): a bar on a terminal showing hours done, events, megabytes downloaded and
//! the hour in hand; nothing otherwise, as every hour's end is a log line already.

use crate::gharchive::ingest::IngestCounters;
use crate::github::GithubClient;
use chrono::{DateTime, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often a bar's message is brought up to date.
const BAR_TICK: Duration = Duration::from_millis(250);

/// A bar counting `unit` (`repos`, `hours`), its message after the count. Drawn on stderr,
/// and only when stderr is a terminal (indicatif's default target).
fn counting_bar(unit: &str) -> ProgressBar {
    let b = ProgressBar::new(0);
    b.set_style(
        ProgressStyle::with_template(&format!(
            "{{spinner}} {{elapsed_precise}} [{{bar:30}}] {{pos}}/{{len}} {unit}  {{msg}}"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    b
}

pub struct Progress {
    repos: AtomicU64,
    done: AtomicU64,
    prs: AtomicU64,
    /// The load in hand, when the run is loading rather than collecting.
    load: Mutex<Option<LoadPhase>>,
    bar: Option<ProgressBar>,
    enabled: bool,
}

/// A collection's chunks going into the warehouse.
#[derive(Clone, Debug)]
struct LoadPhase {
    collection_id: String,
    chunks: usize,
    started: Instant,
}

impl Progress {
    /// Progress shown as a bar when `terminal`, as log lines otherwise.
    pub fn new(terminal: bool) -> Self {
        let bar = terminal.then(|| counting_bar("repos"));
        Progress {
            repos: AtomicU64::new(0),
            done: AtomicU64::new(0),
            prs: AtomicU64::new(0),
            load: Mutex::new(None),
            bar,
            enabled: true,
        }
    }

    /// No output at all (tests, the HTTP service).
    pub fn hidden() -> Self {
        Progress {
            repos: AtomicU64::new(0),
            done: AtomicU64::new(0),
            prs: AtomicU64::new(0),
            load: Mutex::new(None),
            bar: None,
            enabled: false,
        }
    }

    pub fn announce(&self, collection_id: &str) {
        if self.enabled {
            match &self.bar {
                Some(b) => b.println(format!("collection {collection_id}")),
                // Without a terminal the announcement is a log line like every other.
                None => tracing::info!(collection_id, "collection {collection_id}"),
            }
        }
    }

    pub fn set_repos(&self, n: u64) {
        self.repos.store(n, Ordering::Relaxed);
        if let Some(b) = &self.bar {
            b.set_length(n);
        }
    }

    pub fn add_prs(&self, n: u64) {
        self.prs.fetch_add(n, Ordering::Relaxed);
    }

    pub fn repo_done(&self) {
        self.done.fetch_add(1, Ordering::Relaxed);
        if let Some(b) = &self.bar {
            b.inc(1);
        }
    }

    pub fn prs(&self) -> u64 {
        self.prs.load(Ordering::Relaxed)
    }

    fn load_phase(&self) -> Option<LoadPhase> {
        self.load.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The run is loading `chunks` chunks of `collection_id` into the warehouse (one
    /// transaction: no count moves until it ends). The bar says so at once; without a terminal
    /// a log line does, and the periodic lines say how long it has taken.
    pub fn loading(&self, collection_id: &str, chunks: usize) {
        *self.load.lock().unwrap_or_else(|e| e.into_inner()) = Some(LoadPhase {
            collection_id: collection_id.to_string(),
            chunks,
            started: Instant::now(),
        });
        if !self.enabled {
            return;
        }
        match &self.bar {
            Some(b) => {
                b.set_message(self.line((None, None)));
                b.tick();
            }
            None => tracing::info!(
                collection_id,
                chunks,
                "Loading the collection into the warehouse."
            ),
        }
    }

    /// The load in hand has ended (loaded or failed); the run collects again, or ends.
    pub fn loaded(&self) {
        *self.load.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// The bar's message: pull requests and budget left while collecting, the load while
    /// loading. `budget` is (REST requests, GraphQL points) left.
    fn line(&self, budget: (Option<u64>, Option<u64>)) -> String {
        if let Some(l) = self.load_phase() {
            return format!(
                "loading {} chunks of {} into the warehouse ({}s)",
                l.chunks,
                l.collection_id,
                l.started.elapsed().as_secs()
            );
        }
        let (rest, graphql) = budget;
        let show = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_else(|| "?".into());
        format!(
            "{} PRs  budget left: graphql {} rest {}",
            self.prs(),
            show(graphql),
            show(rest)
        )
    }

    /// Updates the bar or logs a line every `every` until the returned handle is aborted.
    pub fn spawn_reporter(
        self: &Arc<Self>,
        client: GithubClient,
        every: Duration,
    ) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            if !me.enabled {
                return;
            }
            let mut tick = tokio::time::interval(if me.bar.is_some() { BAR_TICK } else { every });
            tick.tick().await;
            loop {
                tick.tick().await;
                match (&me.bar, me.load_phase()) {
                    (Some(b), _) => {
                        b.set_message(me.line(client.budget_left()));
                        b.tick();
                    }
                    (None, Some(l)) => tracing::info!(
                        collection_id = %l.collection_id,
                        chunks = l.chunks,
                        seconds = l.started.elapsed().as_secs(),
                        "Loading."
                    ),
                    (None, None) => {
                        let (rest, graphql) = client.budget_left();
                        tracing::info!(
                            repos_done = me.done.load(Ordering::Relaxed),
                            repos = me.repos.load(Ordering::Relaxed),
                            prs = me.prs(),
                            graphql_left = graphql,
                            rest_left = rest,
                            "Collecting."
                        );
                    }
                }
            }
        })
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// Progress of a `gharchive` run: hours done of those the run takes on, events (of the hours
/// done, and so far of the hour in hand), megabytes downloaded (gzip, every download of the
/// run), and the hour in hand. A bar on a terminal; nothing otherwise (tests, the service,
/// a log file), as the job logs every hour's end.
pub struct HourProgress {
    /// Added to by the download and the parser of the hour in hand.
    counters: Arc<IngestCounters>,
    /// Events of the hours done.
    events_done: AtomicU64,
    current: Mutex<Option<DateTime<Utc>>>,
    /// The hour in hand is being loaded into the warehouse.
    loading: std::sync::atomic::AtomicBool,
    bar: Option<ProgressBar>,
}

impl HourProgress {
    /// A bar when `terminal`, nothing otherwise.
    pub fn new(terminal: bool) -> Self {
        HourProgress {
            counters: Arc::default(),
            events_done: AtomicU64::new(0),
            current: Mutex::new(None),
            loading: std::sync::atomic::AtomicBool::new(false),
            bar: terminal.then(|| counting_bar("hours")),
        }
    }

    /// No output at all (tests, the HTTP service).
    pub fn hidden() -> Self {
        HourProgress::new(false)
    }

    /// Whether a bar is shown.
    pub fn is_shown(&self) -> bool {
        self.bar.is_some()
    }

    /// The counters the ingest of each hour adds to (bytes downloaded, events parsed).
    pub fn counters(&self) -> Arc<IngestCounters> {
        self.counters.clone()
    }

    /// The run takes on `n` hours (those selected, less the ones skipped).
    pub fn set_hours(&self, n: u64) {
        if let Some(b) = &self.bar {
            b.set_length(n);
        }
    }

    /// `hour` is in hand.
    pub fn hour_started(&self, hour: DateTime<Utc>) {
        self.counters.events.store(0, Ordering::Relaxed);
        self.loading.store(false, Ordering::Relaxed);
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Some(hour);
    }

    /// The hour in hand is in the lake and is being loaded into the warehouse.
    pub fn hour_loading(&self) {
        self.loading.store(true, Ordering::Relaxed);
    }

    /// The hour in hand has ended with `events` stored (0 when missing or failed: what its
    /// parser counted is dropped).
    pub fn hour_ended(&self, events: u64) {
        self.events_done.fetch_add(events, Ordering::Relaxed);
        self.counters.events.store(0, Ordering::Relaxed);
        self.loading.store(false, Ordering::Relaxed);
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = None;
        if let Some(b) = &self.bar {
            b.inc(1);
        }
    }

    /// The bar's message: `12345 events  67.8 MB  hour 2015-01-01T15`, and `(loading)` while
    /// the hour goes into the warehouse.
    fn line(&self) -> String {
        let events =
            self.events_done.load(Ordering::Relaxed) + self.counters.events.load(Ordering::Relaxed);
        let mb = self.counters.bytes.load(Ordering::Relaxed) as f64 / 1e6;
        let mut line = format!("{events} events  {mb:.1} MB");
        if let Some(h) = *self.current.lock().unwrap_or_else(|e| e.into_inner()) {
            line.push_str(&format!("  hour {}", h.format("%Y-%m-%dT%H")));
            if self.loading.load(Ordering::Relaxed) {
                line.push_str(" (loading)");
            }
        }
        line
    }

    /// Brings the bar's message up to date every [`BAR_TICK`] until the handle is aborted;
    /// without a bar the task ends at once.
    pub fn spawn_reporter(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let Some(bar) = &me.bar else {
                return;
            };
            let mut tick = tokio::time::interval(BAR_TICK);
            loop {
                tick.tick().await;
                bar.set_message(me.line());
                bar.tick();
            }
        })
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// The commits job's progress: a bar of repositories on a terminal with commits and files
/// read; a log line every 30 s otherwise. Abort the handle when the run ends.
pub fn spawn_commits_reporter(
    p: Arc<crate::commits::job::CommitsProgress>,
    terminal: bool,
) -> tokio::task::JoinHandle<()> {
    let bar = terminal.then(|| counting_bar("repos"));
    tokio::spawn(async move {
        let every = if bar.is_some() {
            BAR_TICK
        } else {
            Duration::from_secs(30)
        };
        loop {
            tokio::time::sleep(every).await;
            let repos = p.repositories.load(Ordering::Relaxed);
            let done = p.repositories_done.load(Ordering::Relaxed);
            let commits = p.commits.load(Ordering::Relaxed);
            let files = p.files.load(Ordering::Relaxed);
            match &bar {
                Some(b) => {
                    b.set_length(repos);
                    b.set_position(done);
                    b.set_message(format!("{commits} commits  {files} files"));
                }
                None => tracing::info!(repos, done, commits, files, "Commits run in progress."),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Events of the hours done and of the hour in hand, megabytes downloaded over every hour,
    /// and the hour in hand; an hour that ends without events drops what its parser counted.
    #[test]
    fn the_hour_line_counts_events_bytes_and_the_hour_in_hand() {
        let p = HourProgress::new(false);
        assert!(!p.is_shown());
        let c = p.counters();
        let h: DateTime<Utc> = "2015-01-01T15:00:00Z".parse().unwrap();
        p.hour_started(h);
        c.bytes.fetch_add(2_500_000, Ordering::Relaxed);
        c.events.fetch_add(8192, Ordering::Relaxed);
        assert_eq!(p.line(), "8192 events  2.5 MB  hour 2015-01-01T15");
        p.hour_loading();
        assert_eq!(
            p.line(),
            "8192 events  2.5 MB  hour 2015-01-01T15 (loading)"
        );
        p.hour_ended(10_000);
        assert_eq!(p.line(), "10000 events  2.5 MB");
        p.hour_started(h + chrono::Duration::hours(1));
        c.bytes.fetch_add(1_000_000, Ordering::Relaxed);
        c.events.fetch_add(500, Ordering::Relaxed);
        assert_eq!(p.line(), "10500 events  3.5 MB  hour 2015-01-01T16");
        // Truncated: failed, its events not stored.
        p.hour_ended(0);
        assert_eq!(p.line(), "10000 events  3.5 MB");
        assert!(p.bar.is_none());
        assert!(HourProgress::new(true).is_shown());
    }

    #[test]
    fn the_line_shows_the_load_while_loading_and_the_collection_otherwise() {
        let p = Progress::new(false);
        p.add_prs(12);
        assert_eq!(
            p.line((Some(4990), Some(4900))),
            "12 PRs  budget left: graphql 4900 rest 4990"
        );
        p.loading("20261121T091600Z-3fa9c2", 47);
        assert_eq!(
            p.line((Some(4990), Some(4900))),
            "loading 47 chunks of 20261121T091600Z-3fa9c2 into the warehouse (0s)"
        );
        p.loaded();
        assert!(p.line((None, None)).starts_with("12 PRs"));
    }
}
