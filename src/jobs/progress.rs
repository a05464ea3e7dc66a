//! Progress of a run: a bar on a terminal, a log line every few seconds otherwise, showing
//! repositories done, pull requests fetched and the API budget left.

use crate::github::GithubClient;
use indicatif::{ProgressBar, ProgressStyle};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub struct Progress {
    repos: AtomicU64,
    done: AtomicU64,
    prs: AtomicU64,
    bar: Option<ProgressBar>,
    enabled: bool,
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

    fn line(&self, client: &GithubClient) -> String {
        let (rest, graphql) = client.budget_left();
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
                match &me.bar {
                    Some(b) => {
                        b.set_message(me.line(&client));
                        b.tick();
                    }
                    None => {
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
