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
use crate::lake::lock::{Lease, LeaseLock, LockError};
use crate::lake::{new_collection_id, Checkpoint, CheckpointStore, Lake};
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
    /// Another run holds the organization's lock.
    #[error("another run ({holder}) holds the lock until {expires_at}")]
    Busy {
        holder: String,
        expires_at: chrono::DateTime<chrono::Utc>,
    },
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
}

/// What `wipe` did.
#[derive(Debug, Serialize)]
pub struct WipeResult {
    pub repo: String,
    pub confirmed: bool,
    pub chunks_deleted: u64,
    pub warehouse_rows_deleted: u64,
    pub message: String,
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
    warehouse: Arc<tokio::sync::OnceCell<Arc<dyn Warehouse>>>,
    /// The GitHub App installation, kept across runs so its token is reused until due.
    app: Arc<tokio::sync::OnceCell<Option<Arc<AppInstallation>>>>,
}

/// The lease, renewed in the background while a job runs.
struct Held {
    lock: Arc<LeaseLock>,
    lease: Arc<Mutex<Option<Lease>>>,
    renewer: tokio::task::JoinHandle<()>,
}

impl Held {
    async fn take(
        lake: &Lake,
        org: &OrgName,
        holder: &str,
        lease: Duration,
        lost: Arc<AtomicBool>,
    ) -> Result<Held, JobError> {
        Self::take_lock(
            LeaseLock::new(lake.clone(), org, lease),
            lease,
            holder,
            lost,
        )
        .await
    }

    /// Takes `lock` (of `lease`) for `holder` and renews it in the background; `lost` is set
    /// when another run takes it over.
    async fn take_lock(
        lock: LeaseLock,
        lease: Duration,
        holder: &str,
        lost: Arc<AtomicBool>,
    ) -> Result<Held, JobError> {
        let every = lease / 3;
        let lock = Arc::new(lock);
        let lease = match lock.acquire(holder).await {
            Ok(l) => l,
            Err(LockError::Held { holder, expires_at }) => {
                return Err(JobError::Busy { holder, expires_at })
            }
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

impl Runner {
    pub fn new(config: Config, progress_on_terminal: bool) -> Self {
        Runner {
            config,
            stop: Arc::new(AtomicBool::new(false)),
            progress_on_terminal,
            warehouse: Arc::default(),
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

    /// What is stored, and the warehouse's row counts.
    pub async fn summary(&self) -> Result<crate::jobs::summary::Summary, JobError> {
        let lake = self.lake()?;
        let wh = self.warehouse().await?;
        Ok(crate::jobs::summary::summary(&lake, &self.org()?, wh.as_ref()).await?)
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
        let ca_certificates = match &self.config.ca_bundle {
            Some(path) => read_ca_bundle(path).map_err(JobError::Invalid)?,
            None => Vec::new(),
        };
        GithubClient::with_credentials(
            self.config.api_url.clone(),
            credentials,
            ClientOptions {
                deadline: Some(deadline),
                stop: Some(self.stop.clone()),
                ca_certificates,
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

    /// Runs a collection job under the lock; `load` loads what it collected.
    pub async fn run(&self, request: Request, load: bool) -> Result<RunResult, JobError> {
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
        let held = Held::take(&lake, &org, &id, self.config.lock_lease, lost.clone()).await?;
        let stop = vec![self.stop.clone(), lost];
        let progress = Arc::new(Progress::new(self.progress_on_terminal));
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
            self.run_locked(
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
                let loaded = load::load_collection(wh, lake, org, &result.collection_id)
                    .await
                    .with_context(|| format!("loading collection {0} (its chunks are stored; the next run loads it, or `ghstats load --collection-id {0}`)", result.collection_id))?;
                collect::mark_loaded(lake, org, &result.collection_id).await?;
                result.load = Some(loaded);
            }
            Ok::<_, JobError>(result)
        };
        // The load is part of the crash-safe path: a completed collection whose load was
        // interrupted (or that ran with --no-load) is loaded before anything else.
        if let Some(wh) = wh {
            if let Some(cp) = collect::unloaded(lake, org).await? {
                if cp.collection_id != id {
                    tracing::info!(collection_id = %cp.collection_id, "Loading a completed collection that is not in the warehouse yet.");
                    load::load_collection(wh, lake, org, &cp.collection_id)
                        .await
                        .with_context(|| {
                            format!("loading collection {} left unloaded", cp.collection_id)
                        })?;
                    collect::mark_loaded(lake, org, &cp.collection_id).await?;
                }
            }
        }
        match request {
            Request::Resume { collection_id } => {
                let cp = self.checkpoint(lake, org, collection_id).await?;
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
                Ok(RunResult {
                    collection: result,
                    resumed: None,
                })
            }
            Request::Collect {
                kind,
                window,
                scope,
            } => {
                let opts = self.options(org, *kind, *window, scope.clone(), deadline, stop.clone());
                let mut resumed = None;
                if let Some(cp) = collect::unfinished(lake, org).await? {
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
                                return Ok(RunResult {
                                    collection: r,
                                    resumed: None,
                                });
                            }
                        }
                        resumed = Some(Box::new(r));
                    }
                }
                let result = collect::start(client, lake, &opts, id, progress).await?;
                let result = load_into(result).await?;
                Ok(RunResult {
                    collection: result,
                    resumed,
                })
            }
        }
    }

    async fn checkpoint(
        &self,
        lake: &Lake,
        org: &OrgName,
        id: &str,
    ) -> Result<Checkpoint, JobError> {
        use object_store::ObjectStoreExt;
        match lake.store().head(&lake.checkpoint_path(org, id)).await {
            Ok(_) => {}
            Err(object_store::Error::NotFound { .. }) => {
                return Err(JobError::NotFound(format!("there is no collection {id}")))
            }
            Err(e) => return Err(JobError::Failed(e.into())),
        }
        Ok(CheckpointStore::new(lake.clone(), org.clone())
            .load(id)
            .await?)
    }

    /// The `gharchive` job: `selection` of hours into the lake and the warehouse, under GH
    /// Archive's own lock (`gharchive/_locks/gharchive.json`), within the run budget.
    pub async fn gharchive(
        &self,
        selection: crate::gharchive::job::Selection,
        force: bool,
        shard: Option<crate::gharchive::job::Shard>,
    ) -> Result<crate::gharchive::job::GharchiveResult, JobError> {
        let deadline = Instant::now() + self.config.run_budget;
        let lake = self.lake()?;
        let wh = self.warehouse().await?;
        let ca_certificates = match &self.config.ca_bundle {
            Some(path) => read_ca_bundle(path).map_err(JobError::Invalid)?,
            None => Vec::new(),
        };
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
        let path = lake.path_of(&["gharchive", "_locks", "gharchive.json"]);
        let holder = format!("gharchive-{}", new_collection_id(chrono::Utc::now()));
        let held = Held::take_lock(
            LeaseLock::at(lake.clone(), path, self.config.lock_lease),
            self.config.lock_lease,
            &holder,
            lost.clone(),
        )
        .await?;
        let opts = crate::gharchive::job::Options {
            base_url: self.config.gharchive_url.clone(),
            keep_payload: self.config.gharchive_payload != "none",
            force,
            shard,
            deadline,
            stop: vec![self.stop.clone(), lost],
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
        held.release().await;
        outcome.map_err(
            |e| match e.downcast_ref::<crate::gharchive::job::PlanError>() {
                Some(p) => JobError::Invalid(p.to_string()),
                None => JobError::Failed(e),
            },
        )
    }

    /// A collection's checkpoint: progress, API cost, errors.
    pub async fn collection(&self, id: &str) -> Result<Checkpoint, JobError> {
        let lake = self.lake()?;
        self.checkpoint(&lake, &self.org()?, id).await
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
        )
        .await?;
        let outcome = async {
            // The repository under every name it had: chunks stored under a former name would
            // bring its rows back on the next full load.
            let names = lake
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
            })
        }
        .await;
        held.release().await;
        outcome
    }
}
