//! `ghstats serve`: every job over HTTP, JSON in and JSON out, for Cloud Scheduler, people with
//! curl and CI pipelines. Handlers parse and check the request, then call the same job code as
//! the CLI ([`crate::jobs::runner`]). A client's mistake is a 4xx with a JSON message that says
//! what to fix; nothing is done for it.

use crate::config::{parse_collection_id, parse_time, RepoScope, Secret};
use crate::jobs::collect::resolve_window;
use crate::jobs::load::LoadFilter;
use crate::jobs::runner::{JobError, Request, Runner};
use crate::lake::checkpoint::CollectionKind;
use crate::names::RepoName;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Path, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

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

pub struct AppState {
    pub runner: Runner,
    pub auth: Auth,
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

/// A JSON body, strictly: `Content-Type: application/json`, at most [`BODY_LIMIT`] bytes, no
/// unknown fields (the body types deny them). An empty body reads as `{}`.
pub struct StrictJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for StrictJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
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
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("the body is larger than {BODY_LIMIT} bytes"),
                )
            } else {
                ApiError::bad(format!("the body cannot be read: {e}"))
            }
        })?;
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
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackfillBody {
    pub days: Option<i64>,
    /// Everything since 2008-01-01, GitHub's start (instead of `days`).
    pub all: Option<bool>,
    pub repos: Option<Vec<String>>,
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

async fn run(state: &AppState, request: Request) -> Result<Response, ApiError> {
    let result = state.runner.run(request, true).await?;
    Ok((StatusCode::OK, Json(result)).into_response())
}

async fn collect(
    State(state): State<Arc<AppState>>,
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
    )
    .await
}

async fn backfill(
    State(state): State<Arc<AppState>>,
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
    )
    .await
}

async fn resume(
    State(state): State<Arc<AppState>>,
    StrictJson(b): StrictJson<ResumeBody>,
) -> Result<Response, ApiError> {
    let id = b
        .collection_id
        .as_deref()
        .ok_or_else(|| ApiError::bad("collection_id is required"))?;
    let collection_id = collection_id(id)?;
    run(&state, Request::Resume { collection_id }).await
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

async fn collection(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = collection_id(&id)?;
    let cp = state.runner.collection(&id).await?;
    Ok(Json(cp).into_response())
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

/// Serves until SIGTERM or Ctrl-C: then runs in flight stop at a page boundary, answer
/// `partial`, and the server drains before exiting.
pub async fn serve(
    state: Arc<AppState>,
    addr: SocketAddr,
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
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move {
            shutdown.await;
            tracing::warn!("Shutting down: runs stop at a page boundary; draining requests.");
            stop.store(true, Ordering::Relaxed);
        })
        .await?;
    Ok(())
}
