//! Progress of a run: a bar on a terminal, a log line every few seconds otherwise, showing
//! repositories done, pull requests fetched and the API budget left, then the load into the
//! warehouse (its chunks, and how long it has taken).

use crate::github::GithubClient;
use indicatif::{ProgressBar, ProgressStyle};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
        let bar = terminal.then(|| {
            let b = ProgressBar::new(0);
            b.set_style(
                ProgressStyle::with_template(
                    "{spinner} {elapsed_precise} [{bar:30}] {pos}/{len} repos  {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            b
        });
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
            let mut tick = tokio::time::interval(if me.bar.is_some() {
                Duration::from_millis(250)
            } else {
                every
            });
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

#[cfg(test)]
mod tests {
    use super::*;

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
