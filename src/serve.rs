//! `ghstats serve`: every job over HTTP, JSON in and JSON out, for Cloud Scheduler, people with
//! curl and CI pipelines. Handlers parse and check the request, then call the same job code as
//! the CLI ([`crate::jobs::runner`]). A client's mistake is a 4xx with a JSON message that says
//! what to fix; nothing is done for it.
//!
//! `/collect`, `/backfill` and `/resume` answer when the run has ended (Cloud Scheduler waits),
//! or at once with `202 Accepted` and the collection's id when the caller asks for it
//! (`Prefer: respond-async` or `"wait": false`); the run then goes on in the background and
//! `GET /collections/{id}` shows its progress. `/gharchive` always answers when its run has
//! ended: it has no collection to poll. Connections are watched in
//! [`connections`]: header and idle timeouts, and a cap on how many are held.

mod connections;
pub use connections::{BodyDeadline, ConnectionLimits};

use crate::config::{parse_collection_id, parse_time, RepoScope, Secret};
use crate::gharchive::job::Selection;
use crate::jobs::collect::resolve_window;
use crate::jobs::load::LoadFilter;
use crate::jobs::runner::{CollectionProgress, JobError, Request, RunResult, Runner};
use crate::lake::checkpoint::CollectionKind;
use crate::lake::checkpoint::Status;
use crate::names::RepoName;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, Path, Query, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

/// The largest request body taken: every body is a few fields.
pub const BODY_LIMIT: usize = 16 * 1024;

/// How callers prove who they are (`AUTH_MODE`).
#[derive(Clone, Debug)]
pub enum Auth {
    /// No check: allowed only when listening on loopback.
    None,
    /// `Authorization: Bearer <token>` with this static token (from a secret).
    Token(Secret),
    /// `Authorization: Bearer <Google-signed ID token>` (Cloud Scheduler's OIDC token).
    Oidc(Arc<crate::oidc::OidcVerifier>),
}

/// What every handler shares: the runner, the authentication, and the jobs running in the
/// background for asynchronous requests.
pub struct AppState {
    pub runner: Runner,
    pub auth: Auth,
    jobs: Arc<BackgroundJobs>,
}

impl AppState {
    pub fn new(runner: Runner, auth: Auth) -> Self {
        AppState {
            runner,
            auth,
            jobs: Arc::default(),
        }
    }
}

impl AppState {
    /// Runs a job as a detached task ([`BackgroundJobs::detached`]: a client hanging up does
    /// not stop it) and waits for its answer.
    async fn run_detached<T, F, Fut>(self: &Arc<Self>, work: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(Arc<AppState>) -> Fut,
        Fut: std::future::Future<Output = Result<T, JobError>> + Send + 'static,
    {
        let answer = self.jobs.detached(work(self.clone())).await.map_err(|_| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the run stopped without an answer",
            )
        })?;
        Ok(answer?)
    }
}

/// How many finished background jobs are remembered (their outcome for `GET /collections`).
const KEPT_JOBS: usize = 100;

/// Collection jobs run in the background for asynchronous requests, by collection id.
#[derive(Default)]
struct BackgroundJobs {
    jobs: Mutex<BTreeMap<String, Job>>,
    /// Finished jobs, oldest first, so only the last [`KEPT_JOBS`] are kept.
    finished: Mutex<VecDeque<String>>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

#[derive(Clone)]
enum Job {
    /// Collecting or loading; a new window may first resume this unfinished collection.
    Running { resumes_first: Option<String> },
    /// Its outcome: the run's result, or the error it ended with.
    Finished(Result<Arc<RunResult>, String>),
}

impl BackgroundJobs {
    fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        m.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn get(&self, id: &str) -> Option<Job> {
        Self::lock(&self.jobs).get(id).cloned()
    }

    /// Runs `started` in the background, recorded as running under its collection id from
    /// before this returns.
    fn spawn(
        self: &Arc<Self>,
        started: crate::jobs::runner::StartedRun,
        resumes_first: Option<String>,
    ) {
        use tracing::Instrument;
        let id = started.collection_id().to_string();
        Self::lock(&self.jobs).insert(id.clone(), Job::Running { resumes_first });
        let jobs = self.clone();
        let task = tokio::spawn(
            async move {
                let outcome = started.finish().await.map(Arc::new).map_err(|e| {
                    let message = match e {
                        JobError::Failed(e) => {
                            let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
                            chain.join(": ")
                        }
                        other => other.to_string(),
                    };
                    tracing::error!(error = %message, "A background job failed.");
                    message
                });
                jobs.finish(id, outcome);
            }
            .in_current_span(),
        );
        let mut tasks = Self::lock(&self.tasks);
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
    }

    /// Runs `work` as a task of its own and hands its answer back on the returned receiver.
    /// axum drops a handler's future when its client hangs up (a Scheduler's attempt deadline,
    /// a `curl --max-time`); a run awaited in the handler would stop dead there, its lock left
    /// held until the lease ran out. Detached, it carries on to its end, and shutdown waits for
    /// it like the background jobs.
    fn detached<T: Send + 'static>(
        self: &Arc<Self>,
        work: impl std::future::Future<Output = T> + Send + 'static,
    ) -> tokio::sync::oneshot::Receiver<T> {
        use tracing::Instrument;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(
            async move {
                let _ = tx.send(work.await);
            }
            .in_current_span(),
        );
        let mut tasks = Self::lock(&self.tasks);
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
        rx
    }

    fn finish(&self, id: String, outcome: Result<Arc<RunResult>, String>) {
        Self::lock(&self.jobs).insert(id.clone(), Job::Finished(outcome));
        let mut finished = Self::lock(&self.finished);
        finished.push_back(id);
        while finished.len() > KEPT_JOBS {
            if let Some(old) = finished.pop_front() {
                Self::lock(&self.jobs).remove(&old);
            }
        }
    }

    /// Waits until every background job has ended (at shutdown they stop at a page boundary,
    /// write their checkpoint, load and release the lock).
    async fn ended(&self) {
        let tasks: Vec<_> = std::mem::take(&mut *Self::lock(&self.tasks));
        for t in tasks {
            let _ = t.await;
        }
    }
}

/// An answer that is not a success: a status and a message.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    extra: Option<(&'static str, Value)>,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            extra: None,
        }
    }
    fn bad(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "error": self.message });
        if let Some((k, v)) = self.extra {
            body[k] = v;
        }
        (self.status, Json(body)).into_response()
    }
}

impl From<JobError> for ApiError {
    fn from(e: JobError) -> Self {
        match e {
            JobError::Busy(by) => ApiError {
                status: StatusCode::CONFLICT,
                message: by.to_string(),
                extra: Some(("running_collection_id", json!(by.record.holder))),
            },
            JobError::Unavailable(m) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, m),
            JobError::Invalid(m) => ApiError::bad(m),
            JobError::NotFound(m) => ApiError::new(StatusCode::NOT_FOUND, m),
            JobError::Failed(e) => {
                let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
                tracing::error!(error = %chain.join(": "), "A job failed.");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, chain.join(": "))
            }
        }
    }
}

/// The most of a too-large body read and dropped before the 413 is sent, so the client has
/// finished sending when the answer comes: a server that closes on unread data makes the
/// kernel reset the connection, and the client may never see the 413.
const DRAIN_LIMIT: usize = 1 << 20;

/// Reads a request body of at most [`BODY_LIMIT`] bytes. A larger one is a 413, after the rest
/// of it (up to [`DRAIN_LIMIT`]) is read and dropped.
async fn read_body(body: axum::body::Body) -> Result<Bytes, ApiError> {
    use futures::StreamExt;
    let mut stream = body.into_data_stream();
    let mut buf = Vec::new();
    let mut total = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad(format!("the body cannot be read: {e}")))?;
        total = total.saturating_add(chunk.len());
        if total <= BODY_LIMIT {
            buf.extend_from_slice(&chunk);
        } else if total > DRAIN_LIMIT {
            break;
        }
    }
    if total > BODY_LIMIT {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is larger than {BODY_LIMIT} bytes"),
        ));
    }
    Ok(Bytes::from(buf))
}

/// A JSON body, strictly: `Content-Type: application/json`, at most [`BODY_LIMIT`] bytes, no
/// unknown fields (the body types deny them). An empty body reads as `{}`.
pub struct StrictJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for StrictJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, _state: &S) -> Result<Self, ApiError> {
        let json_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                let mime = v
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                mime == "application/json"
            });
        let deadline = req.extensions().get::<BodyDeadline>().map(|d| d.0);
        let read = read_body(req.into_body());
        let read = match deadline {
            Some(at) => tokio::time::timeout_at(at, read).await.map_err(|_| {
                ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "the body did not arrive in time (SERVE_HEADER_TIMEOUT)",
                )
            })?,
            None => read.await,
        };
        let bytes = read?;
        let body: &[u8] = if bytes.iter().all(|b| b.is_ascii_whitespace()) {
            b"{}"
        } else {
            if json_type != Some(true) {
                return Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "send the body as JSON with Content-Type: application/json",
                ));
            }
            &bytes
        };
        serde_json::from_slice(body)
            .map(StrictJson)
            .map_err(|e| ApiError::bad(format!("the body is not valid: {e}")))
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectBody {
    pub hours: Option<i64>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub repos: Option<Vec<String>>,
    /// Also collect again the pull requests outside the window whose comments were created or
    /// edited since its start (the daily sweep).
    pub sweep_comments: Option<bool>,
    /// `false`: answer `202 Accepted` at once and run in the background (as
    /// `Prefer: respond-async` asks).
    pub wait: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackfillBody {
    pub days: Option<i64>,
    /// Everything since 2008-01-01, GitHub's start (instead of `days`).
    pub all: Option<bool>,
    pub repos: Option<Vec<String>>,
    /// `false`: answer `202 Accepted` at once and run in the background.
    pub wait: Option<bool>,
}

/// `POST /gharchive`: `from` and `to` (both included, in the CLI's hour formats:
/// `2015-01-01T15`, `2015-01-01T5` or GH Archive's `2015-01-01-15`, UTC), or the newest
/// `hours`, or neither: every hour since the last one ingested, up to the newest published.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GharchiveBody {
    pub from: Option<String>,
    pub to: Option<String>,
    pub hours: Option<i64>,
    /// Ingest again hours already ingested, and ask again for hours missing for good.
    #[serde(default)]
    pub force: bool,
}

impl GharchiveBody {
    /// The hours this body names, checked at `now` as the CLI checks its own
    /// ([`Selection::check`]). Errors: a 400 saying what to fix.
    fn selection(&self, now: chrono::DateTime<chrono::Utc>) -> Result<Selection, ApiError> {
        let hour = |v: &str, name: &str| {
            crate::gharchive::parse_hour(v).map_err(|e| ApiError::bad(format!("{name}: {e}")))
        };
        let selection = match (&self.from, &self.to, self.hours) {
            (Some(_), _, Some(_)) | (_, Some(_), Some(_)) => {
                return Err(ApiError::bad("give either hours or from/to, not both"))
            }
            (Some(from), Some(to), None) => Selection::Range {
                from: hour(from, "from")?,
                to: hour(to, "to")?,
            },
            (Some(_), None, None) | (None, Some(_), None) => {
                return Err(ApiError::bad(
                    "give both from and to (the first and the last hour, both included), e.g. {\"from\": \"2015-01-01T00\", \"to\": \"2015-01-01T23\"}",
                ))
            }
            (None, None, Some(h)) if h <= 0 => {
                return Err(ApiError::bad(format!("hours must be positive, not {h}")))
            }
            (None, None, Some(h)) => match u32::try_from(h) {
                Ok(n) => Selection::Newest(n),
                Err(_) => {
                    return Err(ApiError::bad(format!(
                        "hours must be 1 to {}, not {h}",
                        crate::gharchive::job::MAX_HOURS
                    )))
                }
            },
            (None, None, None) => Selection::SinceLast,
        };
        selection
            .check(now)
            .map_err(|e| ApiError::bad(e.to_string()))?;
        Ok(selection)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadBody {
    pub repo: Option<String>,
    pub date: Option<String>,
    pub collection_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResumeBody {
    pub collection_id: Option<String>,
    /// `false`: answer `202 Accepted` at once and run in the background.
    pub wait: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WipeBody {
    pub repo: Option<String>,
    #[serde(default)]
    pub confirm: bool,
    #[serde(default)]
    pub warehouse: bool,
}

fn repo_name(s: &str) -> Result<RepoName, ApiError> {
    s.parse()
        .map_err(|e| ApiError::bad(format!("repo {s:?}: {e}")))
}

fn scope(repos: &Option<Vec<String>>) -> Result<RepoScope, ApiError> {
    let repos = match repos {
        None => Vec::new(),
        Some(list) if list.is_empty() => {
            return Err(ApiError::bad(
                "repos is empty: leave it out to collect every repository",
            ))
        }
        Some(list) => list
            .iter()
            .map(|r| repo_name(r))
            .collect::<Result<_, _>>()?,
    };
    Ok(RepoScope {
        repos,
        include_archived: false,
        include_forks: false,
    })
}

fn collection_id(s: &str) -> Result<String, ApiError> {
    parse_collection_id(s).map_err(ApiError::bad)
}

/// How a run is answered: when it has ended, or at once with `202 Accepted`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    /// `200` with the run's result (the default: Cloud Scheduler's way).
    WhenDone,
    /// `202` with the collection id; `preferred` when `Prefer: respond-async` asked for it.
    AtOnce { preferred: bool },
}

/// Whether the caller asked for the answer at once: `Prefer: respond-async` (RFC 7240; any
/// other preference is ignored) or `"wait": false` in the body. An explicit `"wait": true`
/// wins over the header.
fn answer(headers: &HeaderMap, wait: Option<bool>) -> Answer {
    let preferred = headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| {
            let token = p.split([';', '=']).next().unwrap_or("").trim();
            token.eq_ignore_ascii_case("respond-async")
        });
    match wait {
        Some(true) => Answer::WhenDone,
        Some(false) => Answer::AtOnce { preferred },
        None if preferred => Answer::AtOnce { preferred },
        None => Answer::WhenDone,
    }
}

async fn run(
    state: &Arc<AppState>,
    request: Request,
    answer: Answer,
) -> Result<Response, ApiError> {
    let Answer::AtOnce { preferred } = answer else {
        let result = state
            .run_detached(|s| async move { s.runner.run(request, true).await })
            .await?;
        return Ok((StatusCode::OK, Json(result)).into_response());
    };
    // The lock is taken before the answer: a busy organization is a 409 as when waiting.
    let started = state.runner.start(request, true).await?;
    let id = started.collection_id().to_string();
    let resumes_first = match started.resumes_first().await {
        Ok(r) => r,
        Err(e) => {
            // Only the answer's hint is missing; the run finds out again and reports it.
            tracing::warn!(error = %e, "Looking for an unfinished collection failed.");
            None
        }
    };
    state.jobs.spawn(started, resumes_first.clone());
    let location = format!("/collections/{id}");
    let mut body = json!({
        "collection_id": id,
        "status": "running",
        "location": location,
    });
    if let Some(r) = resumes_first {
        body["resumes_first"] = json!(r);
    }
    let mut response = (StatusCode::ACCEPTED, Json(body)).into_response();
    let headers = response.headers_mut();
    if let Ok(v) = header::HeaderValue::from_str(&location) {
        headers.insert(header::LOCATION, v);
    }
    if preferred {
        headers.insert(
            "preference-applied",
            header::HeaderValue::from_static("respond-async"),
        );
    }
    Ok(response)
}

async fn collect(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    StrictJson(b): StrictJson<CollectBody>,
) -> Result<Response, ApiError> {
    let hours = match b.hours {
        Some(h) if h <= 0 => return Err(ApiError::bad(format!("hours must be positive, not {h}"))),
        Some(h) if h > 24 * 3660 => {
            return Err(ApiError::bad(format!(
                "hours {h} is more than ten years: use /backfill"
            )))
        }
        Some(h) => Some(h as u32),
        None => None,
    };
    if hours.is_some() && (b.since.is_some() || b.until.is_some()) {
        return Err(ApiError::bad("give either hours or since/until, not both"));
    }
    if b.until.is_some() && b.since.is_none() {
        return Err(ApiError::bad("until needs since"));
    }
    let time = |v: &Option<String>, name: &str| {
        v.as_deref()
            .map(|s| parse_time(s).map_err(|e| ApiError::bad(format!("{name}: {e}"))))
            .transpose()
    };
    let since = time(&b.since, "since")?;
    let until = time(&b.until, "until")?;
    let window = resolve_window(
        chrono::Utc::now(),
        hours,
        since,
        until,
        state.runner.config.default_lookback_days,
    )
    .map_err(|e| ApiError::bad(e.to_string()))?;
    let scope = scope(&b.repos)?;
    run(
        &state,
        Request::Collect {
            kind: if b.sweep_comments.unwrap_or(false) {
                CollectionKind::Sweep
            } else {
                CollectionKind::Collect
            },
            window,
            scope,
        },
        answer(&headers, b.wait),
    )
    .await
}

async fn backfill(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    StrictJson(b): StrictJson<BackfillBody>,
) -> Result<Response, ApiError> {
    let days = match b.days {
        None => None,
        Some(d) if d <= 0 => return Err(ApiError::bad(format!("days must be positive, not {d}"))),
        // Anything beyond u32 reaches back before 2008: backfill_window says so.
        Some(d) => Some(u32::try_from(d).unwrap_or(u32::MAX)),
    };
    if b.all == Some(false) {
        return Err(ApiError::bad(
            "all must be true when given (or give days instead), e.g. {\"all\": true}",
        ));
    }
    let scope = scope(&b.repos)?;
    let window =
        crate::jobs::collect::backfill_window(chrono::Utc::now(), days, b.all == Some(true))
            .map_err(|e| ApiError::bad(e.to_string()))?;
    run(
        &state,
        Request::Collect {
            kind: CollectionKind::Backfill,
            window,
            scope,
        },
        answer(&headers, b.wait),
    )
    .await
}

async fn resume(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    StrictJson(b): StrictJson<ResumeBody>,
) -> Result<Response, ApiError> {
    let id = b
        .collection_id
        .as_deref()
        .ok_or_else(|| ApiError::bad("collection_id is required"))?;
    let collection_id = collection_id(id)?;
    // A stars crawl's id continues that crawl, answered when its run ends.
    if state.runner.is_stars_crawl(&collection_id).await? {
        let result = state
            .run_detached(move |s| async move { s.runner.stars_resume(&collection_id).await })
            .await?;
        return Ok(Json(result).into_response());
    }
    run(
        &state,
        Request::Resume { collection_id },
        answer(&headers, b.wait),
    )
    .await
}

/// GH Archive hours into the lake and the warehouse, under GH Archive's own lock (409 while
/// another run holds it). Answers when the run ends with its result, `200` whether it
/// `completed`, stopped `partial` (budget or SIGTERM; the next call takes the rest) or
/// `failed` an hour (retried next call), as `/collect` answers. `Prefer: respond-async` is not
/// applied: there is no collection to poll, so the answer is always the run's result.
async fn gharchive(
    State(state): State<Arc<AppState>>,
    StrictJson(b): StrictJson<GharchiveBody>,
) -> Result<Response, ApiError> {
    let selection = b.selection(chrono::Utc::now())?;
    let result = state
        .run_detached(|s| async move { s.runner.gharchive(selection, b.force, None).await })
        .await?;
    Ok(Json(result).into_response())
}

/// `POST /stars`: the fields of `ghstats stars`, each optional (`target` 100,000, `query`
/// `is:public`, `created_from` 2008-01-01, `rest_search` auto). Checked before the lock is
/// taken; a bad field is a 400 naming it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StarsBody {
    pub target: Option<i64>,
    pub query: Option<String>,
    pub created_from: Option<String>,
    pub rest_search: Option<crate::stars::crawl::RestSearch>,
}

impl StarsBody {
    fn params(&self) -> Result<crate::stars::crawl::Params, ApiError> {
        let target = match self.target {
            None => 100_000,
            Some(t) if (1..=10_000_000).contains(&t) => t as u64,
            Some(t) => {
                return Err(ApiError::bad(format!(
                    "target must be from 1 to 10000000, not {t}"
                )))
            }
        };
        let query = crate::config::parse_stars_query(self.query.as_deref().unwrap_or("is:public"))
            .map_err(|e| ApiError::bad(format!("query: {e}")))?;
        let created_from =
            crate::config::parse_created_from(self.created_from.as_deref().unwrap_or("2008-01-01"))
                .map_err(|e| ApiError::bad(format!("created_from: {e}")))?;
        Ok(crate::stars::crawl::Params {
            query,
            target,
            created_from,
        })
    }
}

async fn stars(
    State(state): State<Arc<AppState>>,
    StrictJson(b): StrictJson<StarsBody>,
) -> Result<Response, ApiError> {
    let params = b.params()?;
    let rest = b.rest_search.unwrap_or_default();
    let result = state
        .run_detached(move |s| async move { s.runner.stars(params, rest, 8).await })
        .await?;
    Ok(Json(result).into_response())
}

type Instant = chrono::DateTime<chrono::Utc>;

/// `POST /commits`: the fields of `ghstats commits`. Exactly one of `repos` (`owner/name`
/// strings), `org` (the organization's repositories; `include_forks`/`include_archived`) or
/// `top_starred` (N from `repo_stars`); `until` and `since` as RFC 3339 or YYYY-MM-DD. Checked
/// before the lock is taken; a bad field is a 400 naming it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommitsBody {
    pub repos: Option<Vec<String>>,
    pub org: Option<String>,
    pub top_starred: Option<i64>,
    #[serde(default)]
    pub include_forks: bool,
    #[serde(default)]
    pub include_archived: bool,
    pub until: Option<String>,
    pub since: Option<String>,
}

impl CommitsBody {
    fn selection(&self) -> Result<crate::commits::job::Selection, ApiError> {
        use crate::commits::job::{parse_repo, Selection};
        let given = [
            self.repos.is_some(),
            self.org.is_some(),
            self.top_starred.is_some(),
        ]
        .iter()
        .filter(|x| **x)
        .count();
        if given != 1 {
            return Err(ApiError::bad(
                "give exactly one of repos, org or top_starred".to_string(),
            ));
        }
        if let Some(repos) = &self.repos {
            if repos.is_empty() || repos.len() > 100_000 {
                return Err(ApiError::bad(format!(
                    "repos must name 1 to 100000 repositories, not {}",
                    repos.len()
                )));
            }
            let mut names = Vec::with_capacity(repos.len());
            for r in repos {
                names.push(parse_repo(r).map_err(|e| ApiError::bad(format!("repos: {e}")))?);
            }
            names.sort();
            names.dedup();
            return Ok(Selection::Repos(names));
        }
        if let Some(n) = self.top_starred {
            if !(1..=1_000_000).contains(&n) {
                return Err(ApiError::bad(format!(
                    "top_starred must be from 1 to 1000000, not {n}"
                )));
            }
            return Ok(Selection::TopStarred(n as u64));
        }
        let org = self.org.clone().unwrap_or_default();
        let org: crate::names::OrgName = org
            .parse()
            .map_err(|e| ApiError::bad(format!("org: {e}")))?;
        Ok(Selection::Org {
            org: org.to_string(),
            include_forks: self.include_forks,
            include_archived: self.include_archived,
        })
    }

    /// `(until, since)`.
    fn times(&self) -> Result<(Option<Instant>, Option<Instant>), ApiError> {
        let parse = |name: &str, v: &Option<String>| {
            v.as_deref()
                .map(crate::config::parse_instant)
                .transpose()
                .map_err(|e| ApiError::bad(format!("{name}: {e}")))
        };
        let until = parse("until", &self.until)?;
        let since = parse("since", &self.since)?;
        if let (Some(s), Some(u)) = (since, until) {
            if s >= u {
                return Err(ApiError::bad(format!("since {s} is not before until {u}")));
            }
        }
        Ok((until, since))
    }
}

async fn commits(
    State(state): State<Arc<AppState>>,
    StrictJson(b): StrictJson<CommitsBody>,
) -> Result<Response, ApiError> {
    let selection = b.selection()?;
    let (until, since) = b.times()?;
    let result = state
        .run_detached(move |s| async move { s.runner.commits(selection, until, since, 5000).await })
        .await?;
    Ok(Json(result).into_response())
}

async fn load_gcs(
    State(state): State<Arc<AppState>>,
    StrictJson(b): StrictJson<LoadBody>,
) -> Result<Response, ApiError> {
    let filter = LoadFilter {
        repo: b.repo.as_deref().map(repo_name).transpose()?,
        date: b
            .date
            .as_deref()
            .map(|d| {
                chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
                    .map_err(|_| ApiError::bad(format!("date {d:?} is not YYYY-MM-DD")))
            })
            .transpose()?,
        collection_id: b.collection_id.as_deref().map(collection_id).transpose()?,
    };
    let result = state.runner.load(&filter).await?;
    Ok(Json(result).into_response())
}

async fn wipe(
    State(state): State<Arc<AppState>>,
    StrictJson(b): StrictJson<WipeBody>,
) -> Result<Response, ApiError> {
    let repo = b
        .repo
        .as_deref()
        .ok_or_else(|| ApiError::bad("repo is required"))?;
    let repo = repo_name(repo)?;
    let result = state.runner.wipe(&repo, b.confirm, b.warehouse).await?;
    Ok(Json(result).into_response())
}

async fn summary(State(state): State<Arc<AppState>>) -> Result<Response, ApiError> {
    Ok(Json(state.runner.summary().await?).into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectionQuery {
    /// `true`: the whole checkpoint (every repository's walk and every chunk) instead of the
    /// compact progress.
    pub full: Option<bool>,
}

async fn collection(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    query: Result<Query<CollectionQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let id = collection_id(&id)?;
    let Query(query) = query.map_err(|e| {
        ApiError::bad(format!(
            "the query is not valid ({}): the only parameter is full=true|false",
            e.body_text()
        ))
    })?;
    if query.full == Some(true) {
        return Ok(Json(state.runner.collection(&id).await?).into_response());
    }
    let job = state.jobs.get(&id);
    let stored = match state.runner.collection(&id).await {
        Ok(cp) => Some(cp),
        // A background job's collection before its checkpoint exists, or one whose
        // checkpoint is not kept (PERSIST_TO_GCS=false).
        Err(JobError::NotFound(_) | JobError::Invalid(_)) if job.is_some() => None,
        Err(e) => return Err(e.into()),
    };
    // A checkpoint that says running, with no run of this process on it: is any run alive?
    let abandoned = match (&stored, &job) {
        (Some(cp), None) if cp.status == Status::Running => !state.runner.lock_is_held().await?,
        _ => false,
    };
    match progress(&id, stored, job, abandoned) {
        Some(p) => Ok(Json(p).into_response()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("there is no collection {id}"),
        )),
    }
}

/// A collection's compact progress: its checkpoint's, with what this process knows of the
/// background job working on it. `abandoned`: the checkpoint says running but no run holds
/// the organization's lock, so the run that wrote it stopped without finishing.
fn progress(
    id: &str,
    stored: Option<crate::lake::Checkpoint>,
    job: Option<Job>,
    abandoned: bool,
) -> Option<CollectionProgress> {
    Some(match (stored, job) {
        (Some(cp), job) => {
            let mut p = CollectionProgress::of(&cp);
            if abandoned && p.status == Status::Running {
                p.status = Status::Partial;
                p.note = Some(
                    "no run holds the organization's lock: the run collecting this stopped without finishing (its process ended); /resume or the next /collect continues it"
                        .into(),
                );
            }
            match job {
                // Loading, or releasing the lock: not finished for the caller yet.
                Some(Job::Running { .. }) => p.status = Status::Running,
                Some(Job::Finished(Err(e))) => {
                    if p.status == Status::Running {
                        p.status = Status::Failed;
                    }
                    p.errors.push(e);
                }
                Some(Job::Finished(Ok(_))) | None => {}
            }
            p
        }
        (None, Some(Job::Running { resumes_first })) => {
            let mut p = CollectionProgress::nothing_yet(id, Status::Running);
            p.note = resumes_first.map(|r| {
                format!("the unfinished collection {r} is resumed first; this window starts when it completes")
            });
            p
        }
        (None, Some(Job::Finished(Err(e)))) => {
            let mut p = CollectionProgress::nothing_yet(id, Status::Failed);
            p.errors.push(e);
            p
        }
        (None, Some(Job::Finished(Ok(r)))) if r.collection.collection_id == id => {
            CollectionProgress::of_result(&r.collection)
        }
        (None, Some(Job::Finished(Ok(r)))) => {
            // The unfinished collection resumed first did not complete: the window waits.
            let mut p = CollectionProgress::nothing_yet(id, r.collection.status);
            p.note = Some(format!(
                "the unfinished collection {} was resumed first and ended {}; this window did not start (the next /collect starts a new one)",
                r.collection.collection_id,
                serde_json::to_value(r.collection.status)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            ));
            p
        }
        (None, None) => return None,
    })
}

async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Ready when storage and the warehouse answer.
async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    let storage = match (state.runner.lake(), state.runner.org()) {
        (Ok(lake), Ok(org)) => lake
            .list(&lake.checkpoints_dir(&org))
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
        (Err(e), _) | (_, Err(e)) => Err(e.to_string()),
    };
    // Read-only: readiness creates no warehouse and waits for no load.
    let warehouse = match state.runner.warehouse_for_reading().await {
        Ok(wh) => wh.row_counts().await.map(|_| ()).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let status = |r: &Result<(), String>| match r {
        Ok(()) => json!("ok"),
        Err(e) => json!(e),
    };
    let code = if storage.is_ok() && warehouse.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        Json(json!({ "storage": status(&storage), "warehouse": status(&warehouse) })),
    )
        .into_response()
}

/// Checks the caller (health endpoints are not behind it).
async fn authenticate(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match &state.auth {
        Auth::None => next.run(req).await,
        Auth::Oidc(verifier) => {
            use crate::oidc::OidcError;
            let Some(token) = given else {
                return ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "send Authorization: Bearer <Google ID token>",
                )
                .into_response();
            };
            match verifier.verify(token.trim()).await {
                Ok(email) => {
                    tracing::Span::current().record("caller", email.as_str());
                    next.run(req).await
                }
                Err(OidcError::Unauthenticated(m)) => {
                    ApiError::new(StatusCode::UNAUTHORIZED, m).into_response()
                }
                Err(OidcError::Forbidden(m)) => {
                    ApiError::new(StatusCode::FORBIDDEN, m).into_response()
                }
                Err(OidcError::Unavailable(m)) => {
                    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, m).into_response()
                }
            }
        }
        Auth::Token(token) => match given {
            Some(g) if constant_time_eq(g.as_bytes(), token.expose().as_bytes()) => {
                next.run(req).await
            }
            Some(_) => ApiError::new(StatusCode::UNAUTHORIZED, "the bearer token is not valid")
                .into_response(),
            None => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "send Authorization: Bearer <token>",
            )
            .into_response(),
        },
    }
}

/// Runs each request in a span: its method and path, and, when the caller sent a trace header
/// and `GOOGLE_CLOUD_PROJECT` is set, the Cloud Logging trace every log line of it carries.
async fn request_span(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    use tracing::Instrument;
    let trace = {
        let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
        std::env::var("GOOGLE_CLOUD_PROJECT").ok().and_then(|p| {
            crate::telemetry::cloud_trace(
                &p,
                header("x-cloud-trace-context"),
                header("traceparent"),
            )
        })
    };
    let (method, path) = (req.method().to_string(), req.uri().path().to_string());
    let span = tracing::info_span!(
        "request",
        method,
        path,
        trace = tracing::field::Empty,
        caller = tracing::field::Empty,
        otel.kind = "server",
        otel.name = format!("{method} {path}"),
    );
    if let Some(t) = trace {
        span.record("trace", t);
    }
    crate::telemetry::continue_trace(&span, req.headers());
    next.run(req).instrument(span).await
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such endpoint")
}

/// The OpenAPI description of these endpoints, served at `/openapi.json`.
pub const OPENAPI: &str = include_str!("../openapi.json");

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

type Route = (
    &'static str,
    Method,
    bool,
    axum::routing::MethodRouter<Arc<AppState>>,
);

/// Every route: its path, its method, whether callers must authenticate, and its handler. The
/// router is built from this table, and a test holds it to `openapi.json`.
fn route_table() -> Vec<Route> {
    vec![
        ("/collect", Method::POST, true, post(collect)),
        ("/backfill", Method::POST, true, post(backfill)),
        ("/gharchive", Method::POST, true, post(gharchive)),
        ("/stars", Method::POST, true, post(stars)),
        ("/commits", Method::POST, true, post(commits)),
        ("/load-gcs", Method::POST, true, post(load_gcs)),
        ("/resume", Method::POST, true, post(resume)),
        ("/wipe", Method::POST, true, post(wipe)),
        ("/summary", Method::GET, true, get(summary)),
        ("/collections/{id}", Method::GET, true, get(collection)),
        ("/openapi.json", Method::GET, true, get(openapi)),
        ("/healthz", Method::GET, false, get(healthz)),
        ("/readyz", Method::GET, false, get(readyz)),
    ]
}

/// The routes as (path, method, authenticated).
pub fn routes() -> Vec<(&'static str, Method, bool)> {
    route_table()
        .into_iter()
        .map(|(p, m, a, _)| (p, m, a))
        .collect()
}

/// The service's routes.
pub fn router(state: Arc<AppState>) -> Router {
    let mut open = Router::new();
    let mut guarded = Router::new();
    for (path, _, auth, handler) in route_table() {
        if auth {
            guarded = guarded.route(path, handler);
        } else {
            open = open.route(path, handler);
        }
    }
    let guarded = guarded.route_layer(axum::middleware::from_fn_with_state(
        state.clone(),
        authenticate,
    ));
    open.merge(guarded)
        .fallback(not_found)
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "this endpoint does not take that method",
            )
        })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn(request_span))
        .with_state(state)
}

/// Serves until `shutdown` resolves (SIGTERM or Ctrl-C in `main`): then runs in flight stop at
/// a page boundary and answer `partial`, background runs stop the same way, and the server
/// drains before returning. `limits` bound slow and idle clients ([`ConnectionLimits`]).
///
/// Errors: `AUTH_MODE=none` on an address that is not loopback, or an address that cannot be
/// listened on.
pub async fn serve(
    state: Arc<AppState>,
    addr: SocketAddr,
    limits: ConnectionLimits,
    ready: Option<tokio::sync::oneshot::Sender<SocketAddr>>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    if matches!(state.auth, Auth::None) && !addr.ip().is_loopback() {
        anyhow::bail!("AUTH_MODE=none is allowed only on a loopback address, not {addr}: set AUTH_MODE=token with AUTH_TOKEN");
    }
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("listening on {addr}: {e}"))?;
    let local = listener.local_addr()?;
    tracing::info!(address = %local, "Serving.");
    if let Some(tx) = ready {
        let _ = tx.send(local);
    }
    let stop = state.runner.stop.clone();
    connections::serve(listener, router(state.clone()), limits, async move {
        shutdown.await;
        tracing::warn!("Shutting down: runs stop at a page boundary; draining requests.");
        stop.store(true, Ordering::Relaxed);
    })
    .await;
    // Background runs were told to stop with the rest: each writes its checkpoint, loads and
    // releases the lock before the process exits.
    state.jobs.ended().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lake::checkpoint::{RepoProgress, RepoState};

    fn prefer(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("prefer", header::HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn respond_async_is_read_from_any_prefer_header_and_wait_decides_first() {
        let at_once = Answer::AtOnce { preferred: true };
        for values in [
            &["respond-async"][..],
            &["Respond-Async"],
            &["return=minimal, respond-async; x=1"],
            &["wait=10", "respond-async"],
            &["respond-async, wait=100"],
        ] {
            assert_eq!(answer(&prefer(values), None), at_once, "{values:?}");
        }
        for values in [
            &[][..],
            &["return=minimal"],
            &["wait=10"],
            &["respond-asynchronously"],
        ] {
            assert_eq!(
                answer(&prefer(values), None),
                Answer::WhenDone,
                "{values:?}"
            );
        }
        assert_eq!(
            answer(&prefer(&[]), Some(false)),
            Answer::AtOnce { preferred: false }
        );
        assert_eq!(
            answer(&prefer(&["respond-async"]), Some(true)),
            Answer::WhenDone
        );
    }

    fn checkpoint(status: Status) -> crate::lake::Checkpoint {
        let t = chrono::DateTime::parse_from_rfc3339("2026-11-21T09:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let repo = |name: &str, state: RepoState, prs: u64| RepoProgress {
            id: Some(prs),
            name: name.into(),
            state,
            walk: Default::default(),
            pull_requests: prs,
            rows: [("pull_requests".to_string(), prs)].into(),
            next_seq: Default::default(),
            error: (state == RepoState::Failed).then(|| "boom".to_string()),
            repository: None,
        };
        crate::lake::Checkpoint {
            schema_version: crate::lake::checkpoint::SCHEMA_VERSION,
            collection_id: "20261121T090000Z-abcdef".into(),
            organization: "acme".into(),
            kind: CollectionKind::Backfill,
            window: crate::github::Window {
                since: t - chrono::Duration::days(1),
                until: t,
            },
            started_at: t,
            updated_at: t,
            status,
            repos: vec![
                repo("a", RepoState::Done, 3),
                repo("b", RepoState::Failed, 1),
                repo("c", RepoState::Pending, 0),
            ],
            chunks: vec![],
            api_cost: Default::default(),
            errors: vec!["b: boom".into()],
            resumes: 1,
            loaded: false,
            not_collectable_elsewhere: Default::default(),
        }
    }

    #[test]
    fn progress_counts_the_checkpoint_and_stays_running_while_the_job_loads() {
        let id = "20261121T090000Z-abcdef";
        let p = progress(id, Some(checkpoint(Status::Failed)), None, false).unwrap();
        assert_eq!(
            (
                p.repositories.total,
                p.repositories.done,
                p.repositories.failed
            ),
            (3, 1, 1)
        );
        assert_eq!((p.pull_requests, p.rows["pull_requests"]), (4, 4));
        assert_eq!(p.errors, ["b: boom"]);
        assert_eq!((p.status, p.resumes, p.loaded), (Status::Failed, 1, false));
        // The checkpoint says completed, but the job still loads it.
        let running = Job::Running {
            resumes_first: None,
        };
        let p = progress(
            id,
            Some(checkpoint(Status::Completed)),
            Some(running),
            false,
        )
        .unwrap();
        assert_eq!(p.status, Status::Running);
        // A job that failed after its checkpoint last said running.
        let failed = Job::Finished(Err("loading: no warehouse".into()));
        let p = progress(id, Some(checkpoint(Status::Running)), Some(failed), false).unwrap();
        assert_eq!(p.status, Status::Failed);
        assert_eq!(p.errors.last().unwrap(), "loading: no warehouse");
        // A running checkpoint nobody works on any more is partial: resume it.
        let p = progress(id, Some(checkpoint(Status::Running)), None, true).unwrap();
        assert_eq!(p.status, Status::Partial);
        assert!(p.note.unwrap().contains("/resume"));
        let p = progress(id, Some(checkpoint(Status::Running)), None, false).unwrap();
        assert_eq!(p.status, Status::Running);
    }

    #[test]
    fn progress_without_a_checkpoint_comes_from_the_job() {
        let id = "20261121T090000Z-abcdef";
        let waiting = Job::Running {
            resumes_first: Some("20261120T090000Z-000001".into()),
        };
        let p = progress(id, None, Some(waiting), false).unwrap();
        assert_eq!(p.status, Status::Running);
        assert!(p.note.unwrap().contains("20261120T090000Z-000001"));
        let p = progress(
            id,
            None,
            Some(Job::Finished(Err("listing: 502".into()))),
            false,
        )
        .unwrap();
        assert_eq!(
            (p.status, p.errors.as_slice()),
            (Status::Failed, &["listing: 502".to_string()][..])
        );
        assert!(progress(id, None, None, false).is_none());
    }
}
