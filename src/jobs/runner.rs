//! A job as the CLI and the HTTP service run it. The organization's lease lock is taken in the
//! collection's name and renewed while the job runs. An unfinished collection is resumed before
//! a new window starts, so no window is skipped. What was collected is loaded into the
//! warehouse, then the lock is released.

use super::collect::{self, CollectOptions, CollectionResult};
use super::load::{self, LoadFilter, LoadResult};
use super::progress::Progress;
use crate::config::{Config, RepoScope, StorageUrl};
use crate::github::client::read_ca_bundle;
use crate::github::{AppInstallation, ClientOptions, Credential, GithubClient, Window};
use crate::lake::checkpoint::{CollectionKind, Status};
use crate::lake::lock::{HeldBy, Lease, LeaseLock, LockError};
use crate::lake::{new_collection_id, Checkpoint, CheckpointError, CheckpointStore, Damaged, Lake};
use crate::names::{OrgName, RepoName};
use crate::warehouse::{self, Warehouse};
use anyhow::Context;
use serde::Serialize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Another run holds the organization's lock: who, since when, the time its lease has
    /// left, and whether it is known to be dead. Nothing was done.
    #[error("{0}")]
    Busy(Box<HeldBy>),
    /// What the job reads is not there or does not answer (no warehouse at WAREHOUSE_URL, a
    /// server that does not listen); the message says what to check. Nothing was done.
    #[error("{0}")]
    Unavailable(String),
    /// The request cannot be served as asked; nothing was done.
    #[error("{0}")]
    Invalid(String),
    /// The named thing does not exist.
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

/// What `collect`, `backfill` and `resume` answer.
#[derive(Debug, Serialize)]
pub struct RunResult {
    #[serde(flatten)]
    pub collection: CollectionResult,
    /// The unfinished collection resumed first, when there was one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resumed: Option<Box<CollectionResult>>,
    /// The completed collection left unloaded (a load killed with its process, a `--no-load`
    /// run) that this run loaded first, when there was one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loaded_first: Option<LoadedFirst>,
    /// Damaged checkpoints this run met and set aside, each with its path, why, and where it
    /// went. Their collections cannot be resumed; their chunks load with `ghstats load`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub damaged: Vec<Damaged>,
}

/// A completed collection loaded before a run's own work: its id and what the load did.
#[derive(Debug, Serialize)]
pub struct LoadedFirst {
    pub collection_id: String,
    #[serde(flatten)]
    pub load: LoadResult,
}

impl RunResult {
    /// Every damaged file the run met: checkpoints set aside, and chunks left out of any of its
    /// loads (also in that load's `bad_chunks`).
    pub fn damaged_files(&self) -> Vec<&Damaged> {
        let loads = [
            self.collection.load.as_ref(),
            self.resumed.as_ref().and_then(|r| r.load.as_ref()),
            self.loaded_first.as_ref().map(|l| &l.load),
        ];
        self.damaged
            .iter()
            .chain(loads.into_iter().flatten().flat_map(|l| &l.bad_chunks))
            .collect()
    }
}

/// A collection's progress in a few fields (what `GET /collections/{id}` answers by default,
/// instead of the whole checkpoint with every chunk): its status, repositories done out of
/// planned, rows written per table, the API cost so far, errors, and whether it is loaded.
#[derive(Clone, Debug, Serialize)]
pub struct CollectionProgress {
    pub collection_id: String,
    /// `running` until the run has ended (a caller of the service sees `running` until its
    /// load has ended too), then `completed`, `partial` (resume it) or `failed`.
    pub status: Status,
    /// Absent while a new window waits for an unfinished collection resumed first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<CollectionKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<chrono::DateTime<chrono::Utc>>,
    pub repositories: RepositoryCounts,
    /// Pull requests collected so far.
    pub pull_requests: u64,
    /// Rows written so far, per table.
    pub rows: std::collections::BTreeMap<String, u64>,
    /// GitHub API spent on the collection so far, over all its runs.
    pub api_cost: crate::github::ApiCost,
    /// What went wrong: failed repositories (`name: error`) and a job's own failure.
    pub errors: Vec<String>,
    /// Whether every chunk of the collection is in the warehouse.
    pub loaded: bool,
    /// How many times the collection was resumed.
    pub resumes: u32,
    /// Something the caller should know, e.g. that the new window waits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Repositories of a collection by state; `total` is every planned one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RepositoryCounts {
    pub total: u64,
    pub done: u64,
    pub failed: u64,
}

impl CollectionProgress {
    /// The progress a checkpoint records.
    pub fn of(cp: &Checkpoint) -> Self {
        use crate::lake::checkpoint::RepoState;
        let count = |state: RepoState| cp.repos.iter().filter(|r| r.state == state).count() as u64;
        let mut rows = std::collections::BTreeMap::new();
        for r in &cp.repos {
            for (table, n) in &r.rows {
                *rows.entry(table.clone()).or_default() += n;
            }
        }
        CollectionProgress {
            collection_id: cp.collection_id.clone(),
            status: cp.status,
            kind: Some(cp.kind),
            window: Some(cp.window),
            started_at: Some(cp.started_at),
            updated_at: Some(cp.updated_at),
            repositories: RepositoryCounts {
                total: cp.repos.len() as u64,
                done: count(RepoState::Done),
                failed: count(RepoState::Failed),
            },
            pull_requests: cp.repos.iter().map(|r| r.pull_requests).sum(),
            rows,
            api_cost: cp.api_cost,
            errors: cp.errors.clone(),
            loaded: cp.loaded,
            resumes: cp.resumes,
            note: None,
        }
    }

    /// The progress a run's result reports (for a collection whose checkpoint is not kept:
    /// `PERSIST_TO_GCS=false`).
    pub fn of_result(r: &CollectionResult) -> Self {
        use crate::lake::checkpoint::RepoState;
        let count = |state: RepoState| r.repos.iter().filter(|x| x.state == state).count() as u64;
        CollectionProgress {
            collection_id: r.collection_id.clone(),
            status: r.status,
            kind: None,
            window: Some(r.window),
            started_at: None,
            updated_at: None,
            repositories: RepositoryCounts {
                total: r.repos.len() as u64,
                done: count(RepoState::Done),
                failed: count(RepoState::Failed),
            },
            pull_requests: r.repos.iter().map(|x| x.pull_requests).sum(),
            rows: r.rows.clone(),
            api_cost: r.api_cost,
            errors: r
                .repos
                .iter()
                .filter_map(|x| x.error.as_ref().map(|e| format!("{}: {e}", x.name)))
                .collect(),
            loaded: r.load.is_some(),
            resumes: 0,
            note: r.note.clone(),
        }
    }

    /// The progress of a collection that has no checkpoint (yet): nothing done.
    pub fn nothing_yet(collection_id: &str, status: Status) -> Self {
        CollectionProgress {
            collection_id: collection_id.to_string(),
            status,
            kind: None,
            window: None,
            started_at: None,
            updated_at: None,
            repositories: RepositoryCounts::default(),
            pull_requests: 0,
            rows: Default::default(),
            api_cost: Default::default(),
            errors: Vec::new(),
            loaded: false,
            resumes: 0,
            note: None,
        }
    }
}

/// What `wipe` did.
#[derive(Debug, Serialize)]
pub struct WipeResult {
    pub repo: String,
    pub confirmed: bool,
    pub chunks_deleted: u64,
    pub warehouse_rows_deleted: u64,
    pub message: String,
    /// `repositories` chunks that could not be read while finding the names the repository
    /// had: a former name recorded only there was not wiped.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub damaged: Vec<Damaged>,
}

/// What a job asks for.
#[derive(Clone, Debug)]
pub enum Request {
    /// A new window (resuming an unfinished collection first).
    Collect {
        kind: CollectionKind,
        window: Window,
        scope: RepoScope,
    },
    /// One named collection, from its checkpoint.
    Resume { collection_id: String },
}

/// The configuration a job runs with, the signal that stops runs at a page boundary
/// (SIGTERM), and the warehouse, opened (tables ensured) on first use and kept.
#[derive(Clone)]
pub struct Runner {
    pub config: Config,
    pub stop: Arc<AtomicBool>,
    pub progress_on_terminal: bool,
    /// Take the organization's lock even while another run holds it (`--force`): for an
    /// operator who knows that run is gone. The takeover is logged as a warning. The service
    /// never sets it: a caller over HTTP cannot know whether the holder is alive.
    pub force_lock: bool,
    warehouse: Arc<tokio::sync::OnceCell<Arc<dyn Warehouse>>>,
    /// The warehouse opened for reading only, when no job has opened it for writing.
    reader: Arc<tokio::sync::OnceCell<Arc<dyn Warehouse>>>,
    /// What `summary` learned from each chunk, kept so a repeated summary reads only new ones.
    lake_rows: Arc<crate::jobs::summary::ChunkFactsCache>,
    /// The GitHub App installation, kept across runs so its token is reused until due.
    app: Arc<tokio::sync::OnceCell<Option<Arc<AppInstallation>>>>,
}

/// How a stars run starts.
enum StarsStart {
    New(crate::stars::crawl::Params),
    Resume(String),
}

/// The lease, renewed in the background while a job runs. Dropped without
/// [`Held::release`] (a job future cancelled), it stops renewing and the lease expires.
struct Held {
    lock: Arc<LeaseLock>,
    lease: Arc<Mutex<Option<Lease>>>,
    renewer: tokio::task::JoinHandle<()>,
}

impl Held {
    /// Takes the lock for `holder` (by force with `force`) and starts renewing it.
    async fn take(
        lake: &Lake,
        org: &OrgName,
        holder: &str,
        lease: Duration,
        lost: Arc<AtomicBool>,
        force: bool,
    ) -> Result<Held, JobError> {
        Self::take_lock(
            LeaseLock::new(lake.clone(), org, lease),
            lease,
            holder,
            lost,
            force,
        )
        .await
    }

    /// Takes `lock` (of `lease`) for `holder` (by force with `force`) and renews it in the
    /// background; `lost` is set when another run takes it over.
    async fn take_lock(
        lock: LeaseLock,
        lease: Duration,
        holder: &str,
        lost: Arc<AtomicBool>,
        force: bool,
    ) -> Result<Held, JobError> {
        let every = lease / 3;
        let lock = Arc::new(lock);
        let taken = if force {
            lock.force(holder).await
        } else {
            lock.acquire(holder).await
        };
        let lease = match taken {
            Ok(l) => l,
            Err(LockError::Held(by)) => return Err(JobError::Busy(by)),
            Err(e) => return Err(JobError::Failed(anyhow::anyhow!("taking the lock: {e}"))),
        };
        let lease = Arc::new(Mutex::new(Some(lease)));
        let renewer = {
            let (lock, lease) = (lock.clone(), lease.clone());
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    let mut guard = lease.lock().await;
                    let Some(l) = guard.as_mut() else { return };
                    match lock.renew(l).await {
                        Ok(()) => {}
                        Err(LockError::Lost(by)) => {
                            tracing::error!(by, "The lock was taken over; stopping this run.");
                            lost.store(true, Ordering::Relaxed);
                            *guard = None;
                            return;
                        }
                        Err(e) => tracing::warn!(error = %e, "Renewing the lock failed; retrying."),
                    }
                }
            })
        };
        Ok(Held {
            lock,
            lease,
            renewer,
        })
    }

    async fn release(self) {
        self.renewer.abort();
        if let Some(l) = self.lease.lock().await.take() {
            if let Err(e) = self.lock.release(l).await {
                tracing::warn!(error = %e, "Releasing the lock failed; it expires by itself.");
            }
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.renewer.abort();
    }
}

impl Runner {
    pub fn new(config: Config, progress_on_terminal: bool) -> Self {
        Runner {
            config,
            stop: Arc::new(AtomicBool::new(false)),
            progress_on_terminal,
            force_lock: false,
            warehouse: Arc::default(),
            reader: Arc::default(),
            lake_rows: Arc::default(),
            app: Arc::default(),
        }
    }

    pub fn org(&self) -> Result<OrgName, JobError> {
        self.config.org.clone().ok_or_else(|| {
            JobError::Invalid("no organization: set GITHUB_ORG or pass --org".into())
        })
    }

    /// The storage of stored jobs (load, resume, summary, wipe).
    pub fn lake(&self) -> Result<Lake, JobError> {
        if !self.config.persist_to_gcs {
            return Err(JobError::Invalid(
                "PERSIST_TO_GCS=false: nothing is kept in storage between runs".into(),
            ));
        }
        Lake::open(
            &self.config.storage_url,
            self.config.storage_endpoint.as_ref(),
        )
        .map_err(JobError::Failed)
    }

    /// The warehouse, its tables created if missing: opened once, then shared by every job
    /// and request of this runner. A failed open is tried again next time.
    pub async fn warehouse(&self) -> Result<Arc<dyn Warehouse>, JobError> {
        let url = &self.config.warehouse_url;
        let wh = self
            .warehouse
            .get_or_try_init(|| async {
                let wh = warehouse::open(url)
                    .await
                    .map_err(|e| JobError::Failed(e.into()))?;
                wh.ensure_tables()
                    .await
                    .with_context(|| format!("preparing the tables in {url}"))?;
                Ok::<_, JobError>(Arc::from(wh))
            })
            .await?;
        Ok(wh.clone())
    }

    /// The warehouse for reading (`summary`, `/readyz`): the one a job of this runner opened,
    /// or else the warehouse opened as it is ([`warehouse::open_existing`]): nothing created,
    /// no write lock taken. `Unavailable` when there is none at WAREHOUSE_URL or it lacks
    /// tables, saying what to do. A failed open is tried again next time.
    pub async fn warehouse_for_reading(&self) -> Result<Arc<dyn Warehouse>, JobError> {
        if let Some(wh) = self.warehouse.get() {
            return Ok(wh.clone());
        }
        let url = &self.config.warehouse_url;
        let wh = self
            .reader
            .get_or_try_init(|| async {
                warehouse::open_existing(url)
                    .await
                    .map(Arc::from)
                    .map_err(|e| match e {
                        e @ warehouse::WarehouseError::Unavailable(_) => {
                            JobError::Unavailable(e.to_string())
                        }
                        other => JobError::Failed(other.into()),
                    })
            })
            .await?;
        Ok(wh.clone())
    }

    /// What is stored (collections, the lock, chunks, distinct rows) and the warehouse's row
    /// counts. Reads only: the warehouse is opened with [`Runner::warehouse_for_reading`].
    pub async fn summary(&self) -> Result<crate::jobs::summary::Summary, JobError> {
        let lake = self.lake()?;
        let org = self.org()?;
        let wh = self.warehouse_for_reading().await?;
        Ok(crate::jobs::summary::summary(
            &lake,
            &org,
            wh.as_ref(),
            self.config.lock_lease,
            &self.lake_rows,
        )
        .await?)
    }

    /// The GitHub App installation, when one is configured.
    pub async fn github_app(&self) -> Result<Option<Arc<AppInstallation>>, JobError> {
        self.app
            .get_or_try_init(|| async {
                let Some((id, key)) = self.config.github_app().map_err(JobError::Invalid)? else {
                    return Ok(None);
                };
                let org = self.org()?;
                AppInstallation::new(
                    &id,
                    self.config.app_installation_id,
                    org.as_str(),
                    &key,
                    self.config.api_url.clone(),
                )
                .map(|a| Some(Arc::new(a)))
                .map_err(JobError::Invalid)
            })
            .await
            .cloned()
    }

    /// The certificates `CA_BUNDLE` adds to the trusted roots (none without it).
    fn ca_certificates(&self) -> Result<Vec<reqwest::Certificate>, JobError> {
        match &self.config.ca_bundle {
            Some(path) => read_ca_bundle(path).map_err(JobError::Invalid),
            None => Ok(Vec::new()),
        }
    }

    async fn client(&self, deadline: Instant) -> Result<GithubClient, JobError> {
        let mut credentials: Vec<Credential> = Vec::new();
        if let Some(app) = self.github_app().await? {
            credentials.push(Credential::App(app));
        }
        credentials.extend(self.config.all_tokens().into_iter().map(Credential::Token));
        if credentials.is_empty() {
            return Err(JobError::Invalid(
                "no GitHub credentials: set GITHUB_TOKEN (or GITHUB_TOKENS=a,b,c), or GITHUB_APP_ID with GITHUB_APP_PRIVATE_KEY(_FILE)".into(),
            ));
        }
        self.client_with(credentials, deadline, None)
    }

    /// A client for `credentials` within `deadline`, stopped by SIGTERM, trusting `CA_BUNDLE`;
    /// `max_reset_wait` as in [`ClientOptions`].
    fn client_with(
        &self,
        credentials: Vec<Credential>,
        deadline: Instant,
        max_reset_wait: Option<Duration>,
    ) -> Result<GithubClient, JobError> {
        GithubClient::with_credentials(
            self.config.api_url.clone(),
            credentials,
            ClientOptions {
                deadline: Some(deadline),
                stop: Some(self.stop.clone()),
                ca_certificates: self.ca_certificates()?,
                max_reset_wait,
                ..ClientOptions::default()
            },
        )
        .map_err(|e| JobError::Failed(e.into()))
    }

    fn options(
        &self,
        org: &OrgName,
        kind: CollectionKind,
        window: Window,
        scope: RepoScope,
        deadline: Instant,
        stop: Vec<Arc<AtomicBool>>,
    ) -> CollectOptions {
        CollectOptions {
            org: org.clone(),
            kind,
            window,
            scope,
            chunk_size: self.config.chunk_size,
            max_workers: self.config.max_workers,
            page_size: self.config.page_size,
            page_size_max: self.config.page_size_max.max(self.config.page_size),
            deadline,
            stop,
        }
    }

    /// Runs a collection job under the lock; `load` loads what it collected. The same as
    /// [`Runner::start`] followed by [`StartedRun::finish`].
    pub async fn run(&self, request: Request, load: bool) -> Result<RunResult, JobError> {
        self.start(request, load).await?.finish().await
    }

    /// Prepares a collection job and takes the organization's lock in its collection's name,
    /// without doing any of its work: the caller learns the collection id (and whether another
    /// run holds the lock: [`JobError::Busy`]) before the run starts. [`StartedRun::finish`]
    /// does the work and releases the lock; a `StartedRun` dropped unfinished stops renewing
    /// the lock, which then expires after `LOCK_LEASE`.
    ///
    /// Errors: [`JobError::Invalid`] for settings the job cannot run with (no organization,
    /// no credentials, `PERSIST_TO_GCS=false` with `load` false or a resume),
    /// [`JobError::Busy`] when the lock is held, [`JobError::Failed`] when storage, the
    /// warehouse or the lock cannot be reached.
    pub async fn start(&self, request: Request, load: bool) -> Result<StartedRun, JobError> {
        let org = self.org()?;
        let deadline = Instant::now() + self.config.run_budget;
        let client = self.client(deadline).await?;
        // PERSIST_TO_GCS=false: chunks live in a temporary directory, removed after the load.
        let scratch = if self.config.persist_to_gcs {
            None
        } else {
            if !load {
                return Err(JobError::Invalid("PERSIST_TO_GCS=false keeps chunks only until they are loaded: it cannot be combined with --no-load".into()));
            }
            Some(tempfile::tempdir().context("creating a temporary directory for the chunks")?)
        };
        let lake = match &scratch {
            Some(dir) => Lake::open(&StorageUrl::Local(dir.path().to_path_buf()), None)?,
            None => self.lake()?,
        };
        // The warehouse is opened first: a bad WAREHOUSE_URL fails before any GitHub call.
        let wh = if load {
            Some(self.warehouse().await?)
        } else {
            None
        };
        let id = match &request {
            Request::Resume { collection_id } => {
                if scratch.is_some() {
                    return Err(JobError::Invalid("PERSIST_TO_GCS=false keeps no checkpoints between runs: there is nothing to resume".into()));
                }
                collection_id.clone()
            }
            Request::Collect { .. } => new_collection_id(chrono::Utc::now()),
        };
        // A lost lock stops this run like a shutdown stops every run.
        let lost = Arc::new(AtomicBool::new(false));
        let held = Held::take(
            &lake,
            &org,
            &id,
            self.config.lock_lease,
            lost.clone(),
            self.force_lock,
        )
        .await?;
        Ok(StartedRun {
            runner: self.clone(),
            request,
            id,
            org,
            deadline,
            client,
            lake,
            wh,
            lost,
            held,
            _scratch: scratch,
        })
    }
}

/// A collection job holding the organization's lock, its work not started: made by
/// [`Runner::start`], run by [`StartedRun::finish`].
pub struct StartedRun {
    runner: Runner,
    request: Request,
    id: String,
    org: OrgName,
    deadline: Instant,
    client: GithubClient,
    lake: Lake,
    wh: Option<Arc<dyn Warehouse>>,
    lost: Arc<AtomicBool>,
    held: Held,
    /// The chunks' temporary directory with `PERSIST_TO_GCS=false`, removed when the run ends.
    _scratch: Option<tempfile::TempDir>,
}

impl StartedRun {
    /// The id of the collection this run starts (a new window) or continues (a resume). A new
    /// window may wait: when an unfinished collection is resumed first and does not complete,
    /// the result is that collection's and this id gets no checkpoint.
    pub fn collection_id(&self) -> &str {
        &self.id
    }

    /// The unfinished collection a new window resumes first, if there is one: its id. `None`
    /// for a resume, whose collection is [`StartedRun::collection_id`].
    pub async fn resumes_first(&self) -> Result<Option<String>, JobError> {
        if matches!(self.request, Request::Resume { .. }) {
            return Ok(None);
        }
        // Damaged checkpoints met here are set aside; the run reports them.
        Ok(collect::unfinished(&self.lake, &self.org)
            .await?
            .0
            .map(|cp| cp.collection_id)
            .filter(|id| *id != self.id))
    }

    /// Does the work: loads a completed collection left unloaded, resumes an unfinished one
    /// (for a new window), collects, loads what was collected, releases the lock.
    pub async fn finish(self) -> Result<RunResult, JobError> {
        let StartedRun {
            runner,
            request,
            id,
            org,
            deadline,
            client,
            lake,
            wh,
            lost,
            held,
            _scratch,
        } = self;
        let stop = vec![runner.stop.clone(), lost];
        let progress = Arc::new(Progress::new(runner.progress_on_terminal));
        let reporter = progress.spawn_reporter(client.clone(), Duration::from_secs(10));
        let job = match &request {
            Request::Resume { .. } => "resume",
            Request::Collect { kind, .. } => match kind {
                CollectionKind::Backfill => "backfill",
                _ => "collect",
            },
        };
        let span = tracing::info_span!(
            "job",
            otel.name = format!("job {job}"),
            job,
            organization = %org,
            collection_id = %id,
            status = tracing::field::Empty,
            rest_requests = tracing::field::Empty,
            graphql_queries = tracing::field::Empty,
            graphql_points = tracing::field::Empty,
            rows_written = tracing::field::Empty,
            rows_loaded = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
        );
        let outcome = tracing::Instrument::instrument(
            runner.run_locked(
                &client,
                &lake,
                wh.as_deref(),
                &org,
                &request,
                &id,
                deadline,
                stop,
                &progress,
            ),
            span.clone(),
        )
        .await;
        record_job(&span, &outcome, client.cost());
        reporter.abort();
        progress.finish();
        held.release().await;
        outcome
    }
}

/// How many times `collect` resumes a failed collection before it starts a new window anyway.
pub const FAILED_RESUMES: u32 = 3;

/// A job's outcome on its span: status, API cost and rows, for trace backends.
fn record_job(
    span: &tracing::Span,
    outcome: &Result<RunResult, JobError>,
    cost: crate::github::ApiCost,
) {
    span.record("rest_requests", cost.rest_requests as i64);
    span.record("graphql_queries", cost.graphql_queries as i64);
    span.record("graphql_points", cost.graphql_points as i64);
    match outcome {
        Ok(r) => {
            let c = &r.collection;
            span.record("status", format!("{:?}", c.status).to_lowercase());
            span.record("rows_written", c.rows.values().sum::<u64>() as i64);
            if let Some(l) = &c.load {
                let written: u64 = l.tables.values().map(|t| t.inserted + t.updated).sum();
                span.record("rows_loaded", written as i64);
            }
            if c.status == Status::Failed {
                span.record("otel.status_code", "ERROR");
            }
        }
        Err(e) => {
            span.record("status", "error");
            span.record("otel.status_code", "ERROR");
            tracing::debug!(parent: span, error = %e, "The job failed.");
        }
    }
}

impl Runner {
    #[expect(clippy::too_many_arguments, reason = "a run's context, held by `run`")]
    async fn run_locked(
        &self,
        client: &GithubClient,
        lake: &Lake,
        wh: Option<&dyn Warehouse>,
        org: &OrgName,
        request: &Request,
        id: &str,
        deadline: Instant,
        stop: Vec<Arc<AtomicBool>>,
        progress: &Progress,
    ) -> Result<RunResult, JobError> {
        let load_into = |result: CollectionResult| async move {
            let mut result = result;
            if let Some(wh) = wh {
                progress.loading(&result.collection_id, result.chunks);
                let loaded = load::load_collection(wh, lake, org, &result.collection_id).await;
                progress.loaded();
                let loaded = loaded
                    .with_context(|| format!("loading collection {0} (its chunks are stored; the next run loads it, or `ghstats load --collection-id {0}`)", result.collection_id))?;
                // Loaded is every chunk that can be: bad ones are named in the result and by
                // every `ghstats load` that selects them.
                collect::mark_loaded(lake, org, &result.collection_id).await?;
                result.load = Some(loaded);
            }
            Ok::<_, JobError>(result)
        };
        let mut damaged = Vec::new();
        let mut loaded_first = None;
        // The load is part of the crash-safe path: a completed collection whose load was
        // interrupted (or that ran with --no-load) is loaded before anything else.
        if let Some(wh) = wh {
            let (cp, set_aside) = collect::unloaded(lake, org).await?;
            damaged.extend(set_aside);
            if let Some(cp) = cp {
                if cp.collection_id != id {
                    tracing::info!(collection_id = %cp.collection_id, "Loading a completed collection that is not in the warehouse yet.");
                    progress.loading(&cp.collection_id, cp.chunks.len());
                    let load = load::load_chunks(wh, lake, cp.chunks).await;
                    progress.loaded();
                    let load = load.with_context(|| {
                        format!("loading collection {} left unloaded", cp.collection_id)
                    })?;
                    collect::mark_loaded(lake, org, &cp.collection_id).await?;
                    loaded_first = Some(LoadedFirst {
                        collection_id: cp.collection_id,
                        load,
                    });
                }
            }
        }
        let (collection, resumed) = match request {
            Request::Resume { collection_id } => {
                let cp = self.checkpoint(lake, org, collection_id, true).await?;
                let opts = self.options(
                    org,
                    cp.kind,
                    cp.window,
                    RepoScope::default(),
                    deadline,
                    stop,
                );
                let loaded = cp.loaded;
                let result = collect::resume_from(client, lake, &opts, cp, progress).await?;
                let result = if result.note.is_some() && loaded {
                    result
                } else {
                    load_into(result).await?
                };
                (result, None)
            }
            Request::Collect {
                kind,
                window,
                scope,
            } => 'collect: {
                let opts = self.options(org, *kind, *window, scope.clone(), deadline, stop.clone());
                let mut resumed = None;
                let (cp, set_aside) = collect::unfinished(lake, org).await?;
                damaged.extend(set_aside);
                if let Some(cp) = cp {
                    if cp.collection_id != id {
                        tracing::info!(collection_id = %cp.collection_id, "Resuming an unfinished collection before a new window.");
                        let attempt = cp.resumes + 1;
                        let r = collect::resume_from(client, lake, &opts, cp, progress).await?;
                        let r = load_into(r).await?;
                        match r.status {
                            Status::Completed => {}
                            Status::Failed if attempt >= FAILED_RESUMES => {
                                // A repository that fails every time must not hold back every
                                // later window: report it and move on.
                                tracing::error!(
                                    collection_id = %r.collection_id,
                                    attempts = attempt,
                                    errors = ?r.repos.iter().filter_map(|x| x.error.as_deref()).collect::<Vec<_>>(),
                                    "A collection still fails after its last resume; its failed repositories are left out and a new window starts."
                                );
                            }
                            _ => {
                                // Out of budget again, or failed with resumes left: the new
                                // window waits for the next run.
                                break 'collect (r, None);
                            }
                        }
                        resumed = Some(Box::new(r));
                    }
                }
                let result = collect::start(client, lake, &opts, id, progress).await?;
                (load_into(result).await?, resumed)
            }
        };
        Ok(RunResult {
            collection,
            resumed,
            loaded_first,
            damaged,
        })
    }

    /// A collection's checkpoint. A damaged one is an error naming its path; with `set_aside`
    /// (the caller holds the lock) it is also set aside.
    async fn checkpoint(
        &self,
        lake: &Lake,
        org: &OrgName,
        id: &str,
        set_aside: bool,
    ) -> Result<Checkpoint, JobError> {
        use object_store::ObjectStoreExt;
        let store = CheckpointStore::new(lake.clone(), org.clone());
        match store.load(id).await {
            Ok(cp) => Ok(cp),
            Err(CheckpointError::NotFound { .. }) => {
                let aside = store.set_aside_path(id);
                match lake.store().head(&aside).await {
                    Ok(_) => Err(JobError::NotFound(format!("collection {id}'s checkpoint was damaged and is set aside as {aside}: it cannot be resumed; its chunks load with `ghstats load --collection-id {id}`"))),
                    Err(object_store::Error::NotFound { .. }) => Err(JobError::NotFound(format!("there is no collection {id}"))),
                    Err(e) => Err(JobError::Failed(e.into())),
                }
            }
            Err(CheckpointError::Damaged { path, reason }) if set_aside => {
                let d = store.set_aside(id, reason).await?;
                Err(JobError::NotFound(format!(
                    "checkpoint {path} is damaged ({}); it is set aside as {}: collection {id} cannot be resumed; its chunks load with `ghstats load --collection-id {id}`",
                    d.reason,
                    d.set_aside_as.unwrap_or_default()
                )))
            }
            Err(e @ CheckpointError::NotAnId(_)) => Err(JobError::Invalid(e.to_string())),
            Err(e) => Err(JobError::Failed(e.into())),
        }
    }

    /// The `gharchive` job: `selection` of hours into the lake and the warehouse, under GH
    /// Archive's own lock (`gharchive/_locks/gharchive.json`, or the shard's:
    /// [`crate::gharchive::job::lock_file`]), within the run budget.
    pub async fn gharchive(
        &self,
        selection: crate::gharchive::job::Selection,
        force: bool,
        shard: Option<crate::gharchive::job::Shard>,
    ) -> Result<crate::gharchive::job::GharchiveResult, JobError> {
        let deadline = Instant::now() + self.config.run_budget;
        let lake = self.lake()?;
        let wh = self.warehouse().await?;
        let ca_certificates = self.ca_certificates()?;
        let mut http = reqwest::Client::builder()
            .user_agent(concat!("ghstats/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(30))
            .read_timeout(Duration::from_secs(120));
        for ca in ca_certificates {
            http = http.add_root_certificate(ca);
        }
        let http = http
            .build()
            .map_err(|e| JobError::Failed(anyhow::anyhow!("cannot build the HTTP client: {e}")))?;
        let lost = Arc::new(AtomicBool::new(false));
        // Each shard has a lock of its own, so a Cloud Run Job's tasks run side by side.
        let file = crate::gharchive::job::lock_file(shard);
        let path = lake.path_of(&["gharchive", "_locks", &file]);
        let holder = format!("gharchive-{}", new_collection_id(chrono::Utc::now()));
        let held = Held::take_lock(
            LeaseLock::at(lake.clone(), "gharchive", path, self.config.lock_lease),
            self.config.lock_lease,
            &holder,
            lost.clone(),
            false,
        )
        .await?;
        // A bar on a terminal; nothing in the service (`progress_on_terminal` is false there).
        let progress = Arc::new(crate::jobs::progress::HourProgress::new(
            self.progress_on_terminal,
        ));
        let reporter = progress.spawn_reporter();
        let opts = crate::gharchive::job::Options {
            base_url: self.config.gharchive_url.clone(),
            keep_payload: self.config.gharchive_payload != "none",
            force,
            shard,
            deadline,
            stop: vec![self.stop.clone(), lost],
            progress: progress.clone(),
        };
        let span = tracing::info_span!("job", otel.name = "job gharchive", job = "gharchive");
        let outcome = tracing::Instrument::instrument(
            crate::gharchive::job::run(
                &http,
                &lake,
                wh.as_ref(),
                &selection,
                &opts,
                chrono::Utc::now(),
            ),
            span,
        )
        .await;
        reporter.abort();
        progress.finish();
        held.release().await;
        outcome.map_err(
            |e| match e.downcast_ref::<crate::gharchive::job::PlanError>() {
                Some(p) => JobError::Invalid(p.to_string()),
                None => JobError::Failed(e),
            },
        )
    }

    /// The `stars` job: continues the newest unfinished crawl of the same search, or starts
    /// one; fetches within the run budget and loads it. Under the stars lock
    /// (`_stars/_locks/run.json`).
    pub async fn stars(
        &self,
        params: crate::stars::crawl::Params,
        rest_search: crate::stars::crawl::RestSearch,
        workers: usize,
    ) -> Result<crate::stars::crawl::StarsResult, JobError> {
        self.stars_run(StarsStart::New(params), rest_search, workers)
            .await
    }

    /// Continues the stars crawl `crawl_id` (`resume --collection-id`); `NotFound` when the
    /// lake has no such crawl.
    pub async fn stars_resume(
        &self,
        crawl_id: &str,
    ) -> Result<crate::stars::crawl::StarsResult, JobError> {
        self.stars_run(
            StarsStart::Resume(crawl_id.to_string()),
            crate::stars::crawl::RestSearch::Auto,
            8,
        )
        .await
    }

    /// Whether `id` names a stars crawl in the lake.
    pub async fn is_stars_crawl(&self, id: &str) -> Result<bool, JobError> {
        let lake = self.lake()?;
        Ok(crate::stars::crawl::StarsCheckpoint::read(&lake, id)
            .await?
            .is_some())
    }

    async fn stars_run(
        &self,
        start: StarsStart,
        rest_search: crate::stars::crawl::RestSearch,
        workers: usize,
    ) -> Result<crate::stars::crawl::StarsResult, JobError> {
        use crate::stars::crawl::{CrawlStatus, StarsCheckpoint};
        let deadline = Instant::now() + self.config.run_budget;
        // Credentials first: without them nothing is opened or created.
        let client = self.stars_client(deadline).await?;
        let lake = self.lake()?;
        let wh = self.warehouse().await?;
        let lost = Arc::new(AtomicBool::new(false));
        let holder = format!("stars-{}", new_collection_id(chrono::Utc::now()));
        let held = Held::take_lock(
            LeaseLock::at(
                lake.clone(),
                "stars",
                crate::stars::lock_path(&lake),
                self.config.lock_lease,
            ),
            self.config.lock_lease,
            &holder,
            lost.clone(),
            self.force_lock,
        )
        .await?;
        let outcome = async {
            let (cp, resumed) = match start {
                StarsStart::Resume(id) => match StarsCheckpoint::read(&lake, &id).await? {
                    Some(cp) => (cp, true),
                    None => {
                        return Err(JobError::NotFound(format!(
                            "no stars crawl {id} in storage"
                        )))
                    }
                },
                StarsStart::New(params) => {
                    let unfinished = StarsCheckpoint::all(&lake)
                        .await?
                        .into_iter()
                        .rev()
                        .find(|c| c.status != CrawlStatus::Loaded && c.params == params);
                    match unfinished {
                        Some(cp) => {
                            tracing::info!(
                                crawl_id = cp.crawl_id,
                                "Continuing the unfinished crawl of the same search."
                            );
                            (cp, true)
                        }
                        None => {
                            let now = chrono::Utc::now();
                            (
                                StarsCheckpoint::new(new_collection_id(now), params, now),
                                false,
                            )
                        }
                    }
                }
            };
            let opts = crate::stars::crawl::Options {
                rest_search,
                workers: workers.max(1),
                chunk_rows: 10_000,
                deadline,
                stop: vec![self.stop.clone(), lost],
            };
            let span = tracing::info_span!("job", otel.name = "job stars", job = "stars");
            tracing::Instrument::instrument(
                crate::stars::crawl::run(&client, &lake, wh.as_ref(), cp, resumed, &opts),
                span,
            )
            .await
            .map_err(|e| {
                // GitHub refusing the search text (a GraphQL error, a 422) is the caller's
                // query, not a failure of the run.
                match e.downcast_ref::<crate::github::error::GithubError>() {
                    Some(crate::github::error::GithubError::Fatal {
                        status: 200 | 422,
                        message,
                        ..
                    }) => JobError::Invalid(format!("GitHub refused the search: {message}")),
                    _ => JobError::Failed(e),
                }
            })
        }
        .await;
        held.release().await;
        outcome
    }

    /// The `commits` job: `selection`'s default branches from git into the lake's Parquet
    /// partitions and the warehouse, under the commits lock (`github/_commits/_locks/run.json`),
    /// within the run budget. Each repository continues from its last processed commit.
    pub async fn commits(
        &self,
        selection: crate::commits::job::Selection,
        until: Option<chrono::DateTime<chrono::Utc>>,
        since: Option<chrono::DateTime<chrono::Utc>>,
        batch_commits: usize,
    ) -> Result<crate::commits::job::CommitsResult, JobError> {
        let deadline = Instant::now() + self.config.run_budget;
        let git_url = &self.config.git_url;
        if !git_url.username().is_empty() || git_url.password().is_some() {
            return Err(JobError::Invalid(
                "GITHUB_GIT_URL must not hold credentials (the token is sent in a header): give https://HOST only".into(),
            ));
        }
        // Credentials first: without them nothing is opened or created.
        let mut tokens = self.config.all_tokens();
        let app = self.github_app().await?;
        if tokens.is_empty() && app.is_none() {
            return Err(JobError::Invalid(
                "no GitHub credentials: set GITHUB_TOKEN (or GITHUB_TOKENS=a,b,c), or GITHUB_APP_ID with GITHUB_APP_PRIVATE_KEY(_FILE)".into(),
            ));
        }
        // Tokens of one user share one budget: keep one token per login.
        let mut distinct_budgets = tokens.len() as u64 + u64::from(app.is_some());
        if tokens.len() > 1 {
            let mut logins: Vec<String> = Vec::new();
            let mut kept = Vec::new();
            for t in tokens {
                let one = self.client_with(vec![Credential::Token(t.clone())], deadline, None)?;
                #[derive(serde::Deserialize)]
                struct Viewer {
                    viewer: Login,
                }
                #[derive(serde::Deserialize)]
                struct Login {
                    login: String,
                }
                let v: Viewer = one
                    .graphql(crate::commits::job::VIEWER, serde_json::json!({}), false)
                    .await
                    .map_err(|e| {
                        JobError::Failed(anyhow::anyhow!("asking GitHub whose token this is: {e}"))
                    })?;
                if !logins.contains(&v.viewer.login) {
                    logins.push(v.viewer.login);
                    kept.push(t);
                }
            }
            distinct_budgets = kept.len() as u64 + u64::from(app.is_some());
            tokens = kept;
        }
        let mut credentials: Vec<Credential> = Vec::new();
        if let Some(app) = &app {
            credentials.push(Credential::App(app.clone()));
        }
        credentials.extend(tokens.iter().cloned().map(Credential::Token));
        let client = self.client_with(credentials, deadline, None)?;
        let git_token = match (&app, tokens.first()) {
            (_, Some(t)) => Some(t.clone()),
            (Some(app), None) => {
                let http = reqwest::Client::new();
                Some(app.token(&http).await.map_err(|e| {
                    JobError::Failed(anyhow::anyhow!(
                        "minting an installation token for git: {e}"
                    ))
                })?)
            }
            (None, None) => None,
        };
        let lake = self.lake()?;
        let wh = self.warehouse().await?;
        let lost = Arc::new(AtomicBool::new(false));
        let collection_id = new_collection_id(chrono::Utc::now());
        let held = Held::take_lock(
            LeaseLock::at(
                lake.clone(),
                "commits",
                crate::commits::lock_path(&lake),
                self.config.lock_lease,
            ),
            self.config.lock_lease,
            &format!("commits-{collection_id}"),
            lost.clone(),
            self.force_lock,
        )
        .await?;
        let progress = Arc::new(crate::commits::job::CommitsProgress::default());
        let reporter = crate::jobs::progress::spawn_commits_reporter(
            progress.clone(),
            self.progress_on_terminal,
        );
        let readers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        let opts = Arc::new(crate::commits::job::Options {
            selection,
            until,
            since,
            workers: self.config.max_workers as usize,
            readers,
            batch_commits: batch_commits.max(1),
            cache_dir: self.config.git_cache_dir.clone(),
            git_url: self.config.git_url.clone(),
            git_token,
            deadline,
            stop: vec![self.stop.clone(), lost],
            collection_id,
            progress,
        });
        let span = tracing::info_span!("job", otel.name = "job commits", job = "commits");
        let outcome = tracing::Instrument::instrument(
            crate::commits::job::run(&client, &lake, wh, opts, distinct_budgets),
            span,
        )
        .await;
        reporter.abort();
        held.release().await;
        outcome.map_err(JobError::Failed)
    }

    /// Loads the stars crawls' chunks (every crawl, oldest first, or `crawl_id`'s), with no
    /// GitHub calls. A crawl still fetching is loaded as far as its chunks go.
    pub async fn load_stars(
        &self,
        crawl_id: Option<&str>,
    ) -> Result<Vec<(String, crate::warehouse::StarsLoad)>, JobError> {
        use crate::stars::crawl::StarsCheckpoint;
        let lake = self.lake()?;
        let wh = self.warehouse().await?;
        let crawls = match crawl_id {
            Some(id) => match StarsCheckpoint::read(&lake, id).await? {
                Some(cp) => vec![cp],
                None => {
                    return Err(JobError::NotFound(format!(
                        "no stars crawl {id} in storage"
                    )))
                }
            },
            None => StarsCheckpoint::all(&lake).await?,
        };
        let mut out = Vec::new();
        for cp in crawls {
            let l = wh
                .load_stars(&lake, &cp.chunks)
                .await
                .map_err(|e| JobError::Failed(e.into()))?;
            out.push((cp.crawl_id, l));
        }
        Ok(out)
    }

    /// A client for the stars crawl: a spent GraphQL budget is not waited for (REST search
    /// takes over); REST search's one-minute window is.
    async fn stars_client(&self, deadline: Instant) -> Result<GithubClient, JobError> {
        let mut credentials: Vec<Credential> = Vec::new();
        credentials.extend(self.config.all_tokens().into_iter().map(Credential::Token));
        if credentials.is_empty() {
            return Err(JobError::Invalid(
                "no GitHub credentials: set GITHUB_TOKEN (or GITHUB_TOKENS=a,b,c)".into(),
            ));
        }
        self.client_with(credentials, deadline, Some(Duration::from_secs(90)))
    }

    /// A collection's checkpoint: progress, API cost, errors.
    pub async fn collection(&self, id: &str) -> Result<Checkpoint, JobError> {
        let lake = self.lake()?;
        self.checkpoint(&lake, &self.org()?, id, false).await
    }

    /// Whether a run holds the organization's lock now (an unexpired lease, whoever holds it).
    /// A checkpoint that says `running` while none does was left by a run that stopped
    /// without finishing (a killed process).
    pub async fn lock_is_held(&self) -> Result<bool, JobError> {
        let lock = LeaseLock::new(self.lake()?, &self.org()?, self.config.lock_lease);
        match lock.current().await {
            Ok(current) => {
                Ok(current.is_some_and(|(record, _)| record.expires_at > chrono::Utc::now()))
            }
            Err(e) => Err(JobError::Failed(anyhow::anyhow!("reading the lock: {e}"))),
        }
    }

    /// Loads stored chunks (no GitHub calls).
    pub async fn load(&self, filter: &LoadFilter) -> Result<LoadResult, JobError> {
        let lake = self.lake()?;
        let wh = self.warehouse().await?;
        Ok(load::load(wh.as_ref(), &lake, &self.org()?, filter).await?)
    }

    /// Deletes a repository's chunks (and its warehouse rows with `warehouse`), under the lock.
    /// Without `confirm` nothing is deleted and the answer says so.
    pub async fn wipe(
        &self,
        repo: &RepoName,
        confirm: bool,
        warehouse: bool,
    ) -> Result<WipeResult, JobError> {
        let org = self.org()?;
        if !confirm {
            return Ok(WipeResult {
                repo: repo.to_string(),
                confirmed: false,
                chunks_deleted: 0,
                warehouse_rows_deleted: 0,
                message: format!("nothing deleted: wiping {repo} needs confirm"),
                damaged: Vec::new(),
            });
        }
        let lake = self.lake()?;
        let wh = if warehouse {
            Some(self.warehouse().await?)
        } else {
            None
        };
        let held = Held::take(
            &lake,
            &org,
            &format!("wipe-{repo}"),
            self.config.lock_lease,
            Arc::new(AtomicBool::new(false)),
            false,
        )
        .await?;
        let outcome = async {
            // The repository under every name it had: chunks stored under a former name would
            // bring its rows back on the next full load.
            let (names, damaged) = lake
                .names_of_repository(&org, repo)
                .await
                .map_err(JobError::Failed)?;
            let mut chunks = 0;
            let mut rows = 0;
            for name in &names {
                chunks += lake
                    .delete_prefix(&lake.repo_dir(&org, name))
                    .await
                    .map_err(|e| JobError::Failed(e.into()))?;
                if let Some(wh) = &wh {
                    rows += wh
                        .delete_repository(org.as_str(), name.as_str())
                        .await
                        .map_err(|e| JobError::Failed(e.into()))?;
                }
            }
            if names.len() > 1 {
                tracing::info!(repo = %repo, names = ?names, "Wiped a renamed repository under all its names.");
            }
            Ok(WipeResult {
                repo: repo.to_string(),
                confirmed: true,
                chunks_deleted: chunks,
                warehouse_rows_deleted: rows,
                message: format!(
                    "deleted {chunks} stored objects of {repo}{}",
                    if warehouse {
                        format!(" and {rows} warehouse rows")
                    } else {
                        String::new()
                    }
                ),
                damaged,
            })
        }
        .await;
        held.release().await;
        outcome
    }
}
