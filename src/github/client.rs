//! The HTTP client for GitHub's REST and GraphQL APIs: authentication, pacing across tokens,
//! retries with backoff and jitter, secondary limits, a cap on response size, and a count of
//! what every run spends.

use super::auth::Credential;
use super::error::GithubError;
use super::pacer::{budget_from_headers, retry_after, Budget, Pacer, Pick, Resource};
use crate::config::Secret;
use bytes::Bytes;
use chrono::Utc;
use rand::Rng;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, USER_AGENT};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{debug, warn};
use url::Url;

pub const API_VERSION: &str = "2022-11-28";

/// How the client behaves; defaults suit api.github.com.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Attempts per request for retryable errors.
    pub max_attempts: u32,
    /// The first backoff; it doubles per attempt, with jitter, up to `max_backoff`.
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    /// How long to wait on a secondary limit without `retry-after` (GitHub says one minute).
    pub secondary_default_wait: Duration,
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
    /// Larger responses are refused rather than held in memory.
    pub max_response_bytes: usize,
    /// No wait may end after this instant (the run's budget).
    pub deadline: Option<Instant>,
    /// Set on SIGTERM: a wait in progress (a rate limit's reset, a secondary limit, a
    /// backoff) ends at once with [`GithubError::OutOfTime`].
    pub stop: Option<Arc<std::sync::atomic::AtomicBool>>,
    /// Certificate authorities trusted beside webpki's roots and the system's store (a
    /// GitHub Enterprise server behind a private CA; see [`read_ca_bundle`]).
    pub ca_certificates: Vec<reqwest::Certificate>,
    /// The longest wait for a spent budget to reset; a longer one fails the call with
    /// [`GithubError::RateLimited`] at once, so the caller can turn to another budget (the
    /// stars crawl moves to REST search when GraphQL points are gone). `None`: wait, within
    /// the deadline.
    pub max_reset_wait: Option<Duration>,
}

/// The certificates of a PEM file (`CA_BUNDLE`), to trust beside the usual roots.
pub fn read_ca_bundle(path: &std::path::Path) -> Result<Vec<reqwest::Certificate>, String> {
    let pem = std::fs::read(path)
        .map_err(|e| format!("cannot read CA_BUNDLE {}: {e}", path.display()))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
        format!(
            "CA_BUNDLE {} is not a PEM certificate bundle: {e}",
            path.display()
        )
    })?;
    if certs.is_empty() {
        return Err(format!(
            "CA_BUNDLE {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(certs)
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            max_attempts: 6,
            base_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            secondary_default_wait: Duration::from_secs(60),
            request_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            max_response_bytes: 64 << 20,
            deadline: None,
            stop: None,
            ca_certificates: Vec::new(),
            max_reset_wait: None,
        }
    }
}

/// What a run has spent of GitHub's budgets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiCost {
    pub rest_requests: u64,
    pub graphql_queries: u64,
    pub graphql_points: u64,
}

impl ApiCost {
    pub fn calls(&self) -> u64 {
        self.rest_requests + self.graphql_queries
    }
    pub fn plus(&self, o: &ApiCost) -> ApiCost {
        ApiCost {
            rest_requests: self.rest_requests + o.rest_requests,
            graphql_queries: self.graphql_queries + o.graphql_queries,
            graphql_points: self.graphql_points + o.graphql_points,
        }
    }
}

#[derive(Default)]
struct CostCounter {
    rest: AtomicU64,
    queries: AtomicU64,
    points: AtomicU64,
}

/// GraphQL's `rateLimit` object, requested with every query.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RateLimit {
    pub cost: u64,
    pub remaining: u64,
    pub reset_at: chrono::DateTime<Utc>,
    #[serde(default)]
    pub limit: Option<u64>,
}

#[derive(Deserialize)]
struct GraphqlEnvelope {
    data: Option<serde_json::Value>,
    #[serde(default)]
    errors: Vec<GraphqlErrorItem>,
}

#[derive(Deserialize, Debug)]
struct GraphqlErrorItem {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    /// Not in GitHub's documentation, but sent with some errors (`graphql_rate_limit`).
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: String,
    /// Where in `data` the error belongs, e.g. `["nodes", 3]`.
    #[serde(default)]
    path: Vec<serde_json::Value>,
}

/// The index of a root `nodes(ids:)` item GitHub could not resolve: a `NOT_FOUND` error whose
/// path is `["nodes", i]`.
fn missing_node(e: &GraphqlErrorItem) -> Option<usize> {
    if e.kind.as_deref() != Some("NOT_FOUND") {
        return None;
    }
    match e.path.as_slice() {
        [serde_json::Value::String(f), serde_json::Value::Number(i)] if f == "nodes" => {
            i.as_u64().map(|i| i as usize)
        }
        // An aliased root field `rN: repository(…)` that names nothing (the commits job's
        // repository lookup).
        [serde_json::Value::String(f)] => f.strip_prefix('r').and_then(|i| i.parse().ok()),
        _ => None,
    }
}

/// Whether GraphQL errors say the token's budget is spent, in any of the forms GitHub has been
/// seen to use: `type: RATE_LIMITED` (documented), `type: RATE_LIMIT`, `code:
/// graphql_rate_limit`, or any error on an answer whose `x-ratelimit-remaining` is 0. The reset
/// comes from `x-ratelimit-reset`, else a minute from now.
fn graphql_rate_limit(errors: &[GraphqlErrorItem], headers: &HeaderMap) -> Option<GithubError> {
    let named = errors.iter().any(|e| {
        matches!(e.kind.as_deref(), Some("RATE_LIMITED" | "RATE_LIMIT"))
            || e.code.as_deref() == Some("graphql_rate_limit")
    });
    // An answer that spent the last point and failed for a reason it names (NOT_FOUND) is
    // that failure, not a rate limit.
    let untyped = errors.iter().all(|e| e.kind.is_none());
    let budget = budget_from_headers(headers).ok().map(|(b, _)| b);
    let spent = untyped && budget.is_some_and(|b| b.remaining == Some(0));
    if errors.is_empty() || !(named || spent) {
        return None;
    }
    let reset = budget
        .and_then(|b| b.reset)
        .filter(|r| *r > Utc::now())
        .unwrap_or_else(|| Utc::now() + chrono::Duration::seconds(60));
    Some(GithubError::RateLimited { reset })
}

/// A client for one GitHub host, shared by every task of a run.
#[derive(Clone)]
pub struct GithubClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    api: Url,
    graphql: Url,
    tokens: Vec<Credential>,
    pacer: Pacer,
    options: ClientOptions,
    cost: CostCounter,
}

/// The GraphQL endpoint of a REST base URL: `https://api.github.com` → `/graphql`;
/// GitHub Enterprise's `https://HOST/api/v3` → `https://HOST/api/graphql`.
pub fn graphql_url(api: &Url) -> Result<Url, url::ParseError> {
    let path = api.path().trim_end_matches('/');
    let mut u = api.clone();
    if let Some(base) = path.strip_suffix("/api/v3") {
        u.set_path(&format!("{base}/api/graphql"));
    } else {
        u.set_path(&format!("{path}/graphql"));
    }
    Ok(u)
}

fn classify_status(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> GithubError {
    #[derive(Deserialize)]
    struct Msg {
        #[serde(default)]
        message: String,
    }
    let message = serde_json::from_slice::<Msg>(body)
        .map(|m| m.message)
        .unwrap_or_else(|_| {
            String::from_utf8_lossy(&body[..body.len().min(200)])
                .trim()
                .to_string()
        });
    let request_id = headers
        .get("x-github-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let lower = message.to_ascii_lowercase();
    if status == StatusCode::FORBIDDEN || status == StatusCode::TOO_MANY_REQUESTS {
        let wait = match retry_after(headers) {
            Ok(w) => w,
            Err(e) => {
                warn!(error = %e, "Ignoring a malformed header.");
                None
            }
        };
        if wait.is_some() || lower.contains("secondary rate limit") || lower.contains("abuse") {
            return GithubError::SecondaryLimit {
                retry_after: wait.unwrap_or_default(),
            };
        }
        // A GraphQL answer that names its rate limit in the body.
        if let Ok(env) = serde_json::from_slice::<GraphqlEnvelope>(body) {
            if let Some(limited) = graphql_rate_limit(&env.errors, headers) {
                return limited;
            }
        }
        if let Ok((b, _)) = budget_from_headers(headers) {
            if b.remaining == Some(0) {
                return GithubError::RateLimited {
                    reset: b
                        .reset
                        .unwrap_or_else(|| Utc::now() + chrono::Duration::seconds(60)),
                };
            }
        }
    }
    match status.as_u16() {
        404 => GithubError::NotFound { message },
        502 | 504 => GithubError::Overloaded(format!("HTTP {}", status.as_u16())),
        408 | 500..=599 => GithubError::Transient(format!("HTTP {}: {message}", status.as_u16())),
        s => GithubError::Fatal {
            status: s,
            message,
            request_id,
        },
    }
}

fn classify_graphql(errors: &[GraphqlErrorItem], headers: &HeaderMap) -> GithubError {
    // Each message once: an aliased query's searches fail alike.
    let mut messages: Vec<&str> = Vec::new();
    for e in errors {
        if !messages.contains(&e.message.as_str()) {
            messages.push(e.message.as_str());
        }
    }
    let text = messages.join("; ");
    let has = |k: &str| errors.iter().any(|e| e.kind.as_deref() == Some(k));
    if let Some(limited) = graphql_rate_limit(errors, headers) {
        return limited;
    }
    if has("NOT_FOUND") {
        return GithubError::NotFound { message: text };
    }
    let lower = text.to_ascii_lowercase();
    if has("RESOURCE_LIMITS_EXCEEDED")
        || lower.contains("resource limits")
        || lower.contains("timeout")
        || lower.contains("something went wrong")
    {
        return GithubError::Overloaded(text);
    }
    if has("SERVICE_UNAVAILABLE") || has("INTERNAL") {
        return GithubError::Transient(text);
    }
    GithubError::Fatal {
        status: 200,
        message: text,
        request_id: None,
    }
}

impl std::fmt::Debug for GithubClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GithubClient")
            .field("api", &self.inner.api.as_str())
            .field("tokens", &self.inner.tokens.len())
            .finish()
    }
}

impl GithubClient {
    pub fn new(api: Url, tokens: Vec<Secret>, options: ClientOptions) -> Result<Self, GithubError> {
        Self::with_credentials(
            api,
            tokens.into_iter().map(Credential::Token).collect(),
            options,
        )
    }

    /// A client sending these credentials (static tokens, a GitHub App installation), each
    /// with its own budget.
    pub fn with_credentials(
        api: Url,
        tokens: Vec<Credential>,
        options: ClientOptions,
    ) -> Result<Self, GithubError> {
        if tokens.is_empty() {
            return Err(GithubError::Fatal {
                status: 401,
                message:
                    "no GitHub credentials configured (GITHUB_TOKEN, GITHUB_TOKENS or GITHUB_APP_ID)"
                        .into(),
                request_id: None,
            });
        }
        let mut headers = HeaderMap::new();
        headers.insert(
            ACCEPT,
            HeaderValue::from_static("application/vnd.github+json"),
        );
        headers.insert(
            "x-github-api-version",
            HeaderValue::from_static(API_VERSION),
        );
        headers.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("ghstats/", env!("CARGO_PKG_VERSION"))),
        );
        // webpki's roots and the system's store are both trusted (reqwest's two root
        // features), and whatever CA_BUNDLE adds.
        let mut builder = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(options.request_timeout)
            .connect_timeout(options.connect_timeout);
        for ca in &options.ca_certificates {
            builder = builder.add_root_certificate(ca.clone());
        }
        let http = builder.build().map_err(|e| GithubError::Fatal {
            status: 0,
            message: format!("cannot build the HTTP client: {e}"),
            request_id: None,
        })?;
        let graphql = graphql_url(&api).map_err(|e| GithubError::Fatal {
            status: 0,
            message: e.to_string(),
            request_id: None,
        })?;
        let pacer = Pacer::new(tokens.len());
        Ok(GithubClient {
            inner: Arc::new(Inner {
                http,
                api,
                graphql,
                tokens,
                pacer,
                options,
                cost: CostCounter::default(),
            }),
        })
    }

    /// What this client has spent so far.
    pub fn cost(&self) -> ApiCost {
        let c = &self.inner.cost;
        ApiCost {
            rest_requests: c.rest.load(Ordering::Relaxed),
            graphql_queries: c.queries.load(Ordering::Relaxed),
            graphql_points: c.points.load(Ordering::Relaxed),
        }
    }

    /// Budget left across tokens: (REST requests, GraphQL points), where known.
    pub fn budget_left(&self) -> (Option<u64>, Option<u64>) {
        (
            self.inner.pacer.remaining(Resource::Rest),
            self.inner.pacer.remaining(Resource::Graphql),
        )
    }

    fn remaining_time(&self) -> Option<Duration> {
        self.inner
            .options
            .deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// Sleeps `d`, unless that would pass the run's deadline.
    async fn wait(&self, d: Duration, why: &str) -> Result<(), GithubError> {
        if let Some(left) = self.remaining_time() {
            if d >= left {
                return Err(GithubError::OutOfTime(format!(
                    "{why}: would wait {}s",
                    d.as_secs()
                )));
            }
        }
        debug!(
            wait_ms = d.as_millis() as u64,
            why, "Waiting before the next GitHub request."
        );
        let Some(stop) = &self.inner.options.stop else {
            tokio::time::sleep(d).await;
            return Ok(());
        };
        // In slices, so SIGTERM ends a long wait (a rate limit's reset) within a fifth of a
        // second: Cloud Run kills the instance ten seconds after it.
        let until = Instant::now() + d;
        loop {
            if stop.load(Ordering::Relaxed) {
                return Err(GithubError::OutOfTime(format!(
                    "{why}: stopped while waiting (shutdown)"
                )));
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            tokio::time::sleep(left.min(Duration::from_millis(200))).await;
        }
    }

    /// Waits the backoff for the `attempt`-th failure (1-based), within the run's budget.
    pub async fn pause(&self, attempt: u32) -> Result<(), GithubError> {
        self.wait(self.backoff(attempt.saturating_sub(1)), "retry backoff")
            .await
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let o = &self.inner.options;
        let exp = o.base_backoff.saturating_mul(1u32 << attempt.min(16));
        let capped = exp.min(o.max_backoff);
        // Full jitter between half and all of the backoff.
        let ms = capped.as_millis() as u64;
        Duration::from_millis(rand::thread_rng().gen_range(ms / 2..=ms.max(1)))
    }

    async fn read_capped(&self, mut resp: reqwest::Response) -> Result<Bytes, GithubError> {
        let cap = self.inner.options.max_response_bytes;
        if resp.content_length().is_some_and(|l| l as usize > cap) {
            return Err(GithubError::TooLarge { cap });
        }
        let mut buf = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    if buf.len() + chunk.len() > cap {
                        return Err(GithubError::TooLarge { cap });
                    }
                    buf.extend_from_slice(&chunk);
                }
                Ok(None) => return Ok(Bytes::from(buf)),
                Err(e) => {
                    return Err(GithubError::Transient(format!(
                        "reading the response: {}",
                        without_url(&e)
                    )))
                }
            }
        }
    }

    /// One attempt of a request with `bearer`: the budget it reports is noted, and a failure
    /// is classified for [`Self::send`] to act on.
    #[expect(
        clippy::too_many_arguments,
        reason = "one attempt of `send`, with its context"
    )]
    async fn send_once(
        &self,
        resource: Resource,
        method: &Method,
        url: &Url,
        body: Option<&serde_json::Value>,
        token: usize,
        bearer: &Secret,
        attempt: u32,
    ) -> Result<(HeaderMap, Bytes, usize), GithubError> {
        let mut req = self
            .inner
            .http
            .request(method.clone(), url.clone())
            .header(AUTHORIZATION, format!("Bearer {}", bearer.expose()));
        if let Some(b) = body {
            req = req.json(b);
        }
        match resource {
            Resource::Rest | Resource::Search => {
                self.inner.cost.rest.fetch_add(1, Ordering::Relaxed)
            }
            Resource::Graphql => self.inner.cost.queries.fetch_add(1, Ordering::Relaxed),
        };
        match req.send().await {
            Err(e) if e.is_timeout() => Err(GithubError::Overloaded(format!(
                "timed out: {}",
                without_url(&e)
            ))),
            Err(e) => Err(match untrusted_certificate(&e) {
                Some(why) => GithubError::Fatal {
                    status: 0,
                    message: format!(
                        "the TLS certificate of {} is not trusted ({why}); if it is signed by a private CA, set CA_BUNDLE to that CA's PEM file",
                        url.host_str().unwrap_or("the GitHub host")
                    ),
                    request_id: None,
                },
                None => GithubError::Transient(without_url(&e)),
            }),
            Ok(resp) => {
                let status = resp.status();
                let span = tracing::Span::current();
                span.record("http.response.status_code", i64::from(status.as_u16()));
                span.record("attempts", i64::from(attempt + 1));
                let headers = resp.headers().clone();
                match budget_from_headers(&headers) {
                    Ok((b, named)) => {
                        if b != Budget::default() {
                            self.inner
                                .pacer
                                .observe(token, named.unwrap_or(resource), b);
                        }
                    }
                    Err(e) => warn!(error = %e, "Ignoring a malformed rate-limit header."),
                }
                match self.read_capped(resp).await {
                    Ok(bytes) => {
                        if let Some(e) = not_github(url, status, &headers, &bytes) {
                            return Err(e);
                        }
                        if status.is_success() {
                            Ok((headers, bytes, token))
                        } else {
                            Err(match classify_status(status, &headers, &bytes) {
                                GithubError::NotFound { message } if message.is_empty() => {
                                    GithubError::NotFound {
                                        message: format!("{method} {}", redacted(url)),
                                    }
                                }
                                other => other,
                            })
                        }
                    }
                    Err(e) => Err(e),
                }
            }
        }
    }

    /// Sends one request with retries. `overload_is_final` returns `Overloaded` at once so the
    /// caller can shrink its page; otherwise it is retried like any transient error.
    async fn send(
        &self,
        resource: Resource,
        method: Method,
        url: Url,
        body: Option<&serde_json::Value>,
        overload_is_final: bool,
    ) -> Result<(HeaderMap, Bytes, usize), GithubError> {
        let mut attempt = 0u32;
        let mut reauthenticated = false;
        loop {
            let token = loop {
                match self.inner.pacer.pick(resource, Utc::now()) {
                    Pick::Send(i) => break i,
                    Pick::WaitUntil(reset) => {
                        let d = (reset - Utc::now()).to_std().unwrap_or_default()
                            + Duration::from_secs(1);
                        if self.inner.options.max_reset_wait.is_some_and(|max| d > max) {
                            return Err(GithubError::RateLimited { reset });
                        }
                        self.wait(d, "every token's rate limit is spent").await?;
                    }
                    Pick::Paused(until) => {
                        let d = (until - Utc::now()).to_std().unwrap_or_default();
                        self.wait(d, "a secondary rate limit holds the token")
                            .await?;
                    }
                }
            };
            let credential = &self.inner.tokens[token];
            // A GitHub App token that cannot be minted fails the attempt like a failed request:
            // a transient error is retried below, any other ends the call.
            let (result, sent) = match credential.bearer(&self.inner.http).await {
                Err(e) => (Err(e), false),
                Ok(bearer) => (
                    self.send_once(resource, &method, &url, body, token, &bearer, attempt)
                        .await,
                    true,
                ),
            };
            let err = match result {
                Ok(ok) => return Ok(ok),
                Err(e) => e,
            };
            attempt += 1;
            match &err {
                GithubError::RateLimited { reset } => {
                    // Another token may still have budget; the pacer decides.
                    self.inner.pacer.exhaust(token, resource, *reset);
                    if attempt >= self.inner.options.max_attempts * 4 {
                        return Err(err);
                    }
                    continue;
                }
                GithubError::SecondaryLimit { retry_after } => {
                    if attempt >= self.inner.options.max_attempts {
                        return Err(err);
                    }
                    let wait = if retry_after.is_zero() {
                        self.inner.options.secondary_default_wait
                    } else {
                        *retry_after
                    };
                    let wait = wait + self.backoff(0) / 4;
                    warn!(
                        wait_s = wait.as_secs(),
                        attempt,
                        "Secondary rate limit; every request on this token waits as GitHub asks."
                    );
                    if self.remaining_time().is_some_and(|left| wait >= left) {
                        return Err(out_of_time(attempt, &err));
                    }
                    // The token's pacer holds every task's next request on this token, this
                    // one's included, until the wait is over.
                    let until = Utc::now()
                        + chrono::Duration::from_std(wait)
                            .unwrap_or_else(|_| chrono::Duration::seconds(60));
                    self.inner.pacer.pause(token, until);
                }
                // An installation token GitHub no longer takes (revoked, or clocks apart):
                // mint another and try once more.
                GithubError::Fatal { status: 401, .. } if sent && !reauthenticated => {
                    let Credential::App(app) = credential else {
                        return Err(err);
                    };
                    warn!("GitHub refused the installation token; minting another.");
                    app.invalidate().await;
                    reauthenticated = true;
                }
                GithubError::Overloaded(_) | GithubError::TooLarge { .. } if overload_is_final => {
                    return Err(err)
                }
                GithubError::Overloaded(_) | GithubError::Transient(_) => {
                    if attempt >= self.inner.options.max_attempts {
                        return Err(err);
                    }
                    warn!(error = %err, attempt, "GitHub request failed; retrying.");
                    self.wait(self.backoff(attempt - 1), "retry backoff")
                        .await
                        .map_err(|_| out_of_time(attempt, &err))?;
                }
                _ => return Err(err),
            }
        }
    }

    /// `GET` a REST path (relative to the API base) and decode its JSON, with the Link header's
    /// `next` URL if there is one.
    pub async fn rest_get<T: DeserializeOwned>(
        &self,
        path_or_url: &str,
    ) -> Result<(T, Option<Url>), GithubError> {
        self.rest_get_with_headers(path_or_url)
            .await
            .map(|(value, next, _)| (value, next))
    }

    /// [`Self::rest_get`] with the answer's headers, for what GitHub says only there (a classic
    /// token's `X-OAuth-Scopes`).
    pub async fn rest_get_with_headers<T: DeserializeOwned>(
        &self,
        path_or_url: &str,
    ) -> Result<(T, Option<Url>, HeaderMap), GithubError> {
        let span = request_span("GET", "rest");
        tracing::Instrument::instrument(
            self.rest_get_inner(path_or_url, Resource::Rest),
            span.clone(),
        )
        .await
        .inspect_err(|e| failed(&span, e))
    }

    /// `GET` a REST search path (`search/repositories?q=…`), drawing on the token's search
    /// budget (30 requests per minute) rather than the core one.
    pub async fn rest_search<T: DeserializeOwned>(&self, path: &str) -> Result<T, GithubError> {
        let span = request_span("GET", "rest");
        tracing::Instrument::instrument(self.rest_get_inner(path, Resource::Search), span.clone())
            .await
            .map(|(value, _, _)| value)
            .inspect_err(|e| failed(&span, e))
    }

    async fn rest_get_inner<T: DeserializeOwned>(
        &self,
        path_or_url: &str,
        resource: Resource,
    ) -> Result<(T, Option<Url>, HeaderMap), GithubError> {
        let url = if path_or_url.starts_with("http://") || path_or_url.starts_with("https://") {
            Url::parse(path_or_url).map_err(|e| GithubError::Fatal {
                status: 0,
                message: e.to_string(),
                request_id: None,
            })?
        } else {
            let base = self.inner.api.as_str().trim_end_matches('/');
            Url::parse(&format!("{base}/{}", path_or_url.trim_start_matches('/'))).map_err(|e| {
                GithubError::Fatal {
                    status: 0,
                    message: e.to_string(),
                    request_id: None,
                }
            })?
        };
        tracing::Span::current().record("url.path", url.path());
        let (headers, body, _) = self.send(resource, Method::GET, url, None, false).await?;
        let next = headers
            .get("link")
            .and_then(|v| v.to_str().ok())
            .and_then(super::link::next_link)
            .map(|n| self.rebase(&n))
            .transpose()?;
        let value = serde_json::from_slice(&body).map_err(|e| GithubError::Fatal {
            status: 200,
            message: format!("unexpected REST response: {e}"),
            request_id: None,
        })?;
        Ok((value, next, headers))
    }

    /// A Link URL, moved onto the configured API base: GitHub's links name its public host, and
    /// a proxy or simulator in front of it must keep receiving the follow-ups.
    fn rebase(&self, link: &str) -> Result<Url, GithubError> {
        let parsed = Url::parse(link).map_err(|e| GithubError::Fatal {
            status: 0,
            message: format!("bad Link URL: {e}"),
            request_id: None,
        })?;
        let mut u = self.inner.api.clone();
        let base_path = self.inner.api.path().trim_end_matches('/');
        let path = parsed.path();
        let rel = path.strip_prefix(base_path).unwrap_or(path);
        u.set_path(&format!("{base_path}{rel}"));
        u.set_query(parsed.query());
        Ok(u)
    }

    /// Runs a GraphQL query. Any `errors` entry fails the call, whatever `data` holds: a
    /// half-answered page is never used. `shrinkable` callers get `Overloaded` (and
    /// `TooLarge`) back at once, to ask again for less.
    pub async fn graphql<T: DeserializeOwned>(
        &self,
        query: &str,
        variables: serde_json::Value,
        shrinkable: bool,
    ) -> Result<T, GithubError> {
        self.graphql_call(query, None, variables, shrinkable, false)
            .await
            .map(|(data, _)| data)
    }

    /// [`Self::graphql`] for one `operation` of a document holding several.
    pub async fn graphql_operation<T: DeserializeOwned>(
        &self,
        query: &str,
        operation: &str,
        variables: serde_json::Value,
        shrinkable: bool,
    ) -> Result<T, GithubError> {
        self.graphql_call(query, Some(operation), variables, shrinkable, false)
            .await
            .map(|(data, _)| data)
    }

    /// A root `nodes(ids:)` query whose ids may have been deleted since they were read: GitHub
    /// answers such an id with a null item and a `NOT_FOUND` error naming its index. Those
    /// items are dropped and their indexes returned; any other error fails the call.
    pub async fn graphql_nodes<T: DeserializeOwned>(
        &self,
        query: &str,
        variables: serde_json::Value,
        shrinkable: bool,
    ) -> Result<(T, Vec<usize>), GithubError> {
        self.graphql_call(query, None, variables, shrinkable, true)
            .await
    }

    async fn graphql_call<T: DeserializeOwned>(
        &self,
        query: &str,
        operation: Option<&str>,
        variables: serde_json::Value,
        shrinkable: bool,
        missing_nodes_ok: bool,
    ) -> Result<(T, Vec<usize>), GithubError> {
        let span = request_span("POST", "graphql");
        span.record(
            "graphql.operation",
            operation.unwrap_or_else(|| operation_name(query)),
        );
        tracing::Instrument::instrument(
            self.graphql_inner(query, operation, variables, shrinkable, missing_nodes_ok),
            span.clone(),
        )
        .await
        .inspect_err(|e| failed(&span, e))
    }

    async fn graphql_inner<T: DeserializeOwned>(
        &self,
        query: &str,
        operation: Option<&str>,
        variables: serde_json::Value,
        shrinkable: bool,
        missing_nodes_ok: bool,
    ) -> Result<(T, Vec<usize>), GithubError> {
        let mut body = serde_json::json!({ "query": query, "variables": variables });
        if let Some(op) = operation {
            body["operationName"] = serde_json::Value::String(op.to_string());
        }
        let mut attempt = 0u32;
        loop {
            let (headers, bytes, token) = self
                .send(
                    Resource::Graphql,
                    Method::POST,
                    self.inner.graphql.clone(),
                    Some(&body),
                    shrinkable,
                )
                .await?;
            let env: GraphqlEnvelope =
                serde_json::from_slice(&bytes).map_err(|e| GithubError::Fatal {
                    status: 200,
                    message: format!("unexpected GraphQL response: {e}"),
                    request_id: None,
                })?;
            let missing: Option<Vec<usize>> = if env.errors.is_empty() {
                Some(Vec::new())
            } else if missing_nodes_ok {
                env.errors.iter().map(missing_node).collect()
            } else {
                None
            };
            let err = if let Some(missing) = missing {
                if !missing.is_empty() {
                    debug!(
                        items = missing.len(),
                        "GraphQL items not found (deleted since they were listed); dropped."
                    );
                }
                match env.data {
                    Some(data) => {
                        if let Some(rl) = data
                            .get("rateLimit")
                            .and_then(|r| serde_json::from_value::<RateLimit>(r.clone()).ok())
                        {
                            self.inner.cost.points.fetch_add(rl.cost, Ordering::Relaxed);
                            let span = tracing::Span::current();
                            span.record("graphql.cost", rl.cost as i64);
                            span.record("rate_limit.remaining", rl.remaining as i64);
                            self.inner.pacer.observe(
                                token,
                                Resource::Graphql,
                                Budget {
                                    limit: rl.limit,
                                    remaining: Some(rl.remaining),
                                    reset: Some(rl.reset_at),
                                },
                            );
                        }
                        return serde_json::from_value(data)
                            .map(|d| (d, missing))
                            .map_err(|e| GithubError::Fatal {
                                status: 200,
                                message: format!("unexpected GraphQL data: {e}"),
                                request_id: None,
                            });
                    }
                    None => GithubError::Transient("GraphQL response without data".into()),
                }
            } else {
                // What the answer says of the budget holds even when the query failed.
                if let Some(rl) = env
                    .data
                    .as_ref()
                    .and_then(|d| d.get("rateLimit"))
                    .and_then(|r| serde_json::from_value::<RateLimit>(r.clone()).ok())
                {
                    self.inner.pacer.observe(
                        token,
                        Resource::Graphql,
                        Budget {
                            limit: rl.limit,
                            remaining: Some(rl.remaining),
                            reset: Some(rl.reset_at),
                        },
                    );
                }
                classify_graphql(&env.errors, &headers)
            };
            attempt += 1;
            match &err {
                GithubError::RateLimited { reset } => {
                    // The body names no reset time; the response's headers did, if it had them.
                    let reset = self
                        .inner
                        .pacer
                        .reset(token, Resource::Graphql)
                        .filter(|r| *r > Utc::now())
                        .unwrap_or(*reset);
                    self.inner.pacer.exhaust(token, Resource::Graphql, reset);
                    if attempt >= self.inner.options.max_attempts * 4 {
                        return Err(err);
                    }
                }
                GithubError::Overloaded(_) if shrinkable => return Err(err),
                GithubError::Overloaded(_) | GithubError::Transient(_)
                    if attempt < self.inner.options.max_attempts =>
                {
                    warn!(error = %err, attempt, "GraphQL query failed; retrying.");
                    self.wait(self.backoff(attempt - 1), "retry backoff")
                        .await
                        .map_err(|_| out_of_time(attempt, &err))?;
                }
                _ => return Err(err),
            }
        }
    }
}

/// The span of one GitHub call (retries included), for OTLP traces: what was asked, the HTTP
/// status, the attempts, and for GraphQL the query's cost in points.
fn request_span(method: &'static str, api: &'static str) -> tracing::Span {
    tracing::info_span!(
        "github.request",
        otel.name = format!("GitHub {api}"),
        otel.kind = "client",
        http.request.method = method,
        github.api = api,
        url.path = tracing::field::Empty,
        graphql.operation = tracing::field::Empty,
        graphql.cost = tracing::field::Empty,
        rate_limit.remaining = tracing::field::Empty,
        http.response.status_code = tracing::field::Empty,
        attempts = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
        error = tracing::field::Empty,
    )
}

fn failed(span: &tracing::Span, e: &GithubError) {
    span.record("otel.status_code", "ERROR");
    span.record("error", e.to_string());
}

/// `PullRequestPage` of `query PullRequestPage($owner: …) { … }`.
fn operation_name(query: &str) -> &str {
    query
        .lines()
        .map(str::trim_start)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .unwrap_or("")
        .strip_prefix("query")
        .map(|rest| {
            rest.trim_start()
                .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .next()
                .unwrap_or("")
        })
        .filter(|n| !n.is_empty())
        .unwrap_or("anonymous")
}

/// The run's budget ends before the next retry: say what kept failing.
fn out_of_time(attempts: u32, last: &GithubError) -> GithubError {
    GithubError::OutOfTime(format!(
        "stopped after {attempts} attempts; last error: {last}"
    ))
}

/// What rustls said of a certificate it refused, when that is why a request failed: no retry
/// will change it.
fn untrusted_certificate(e: &reqwest::Error) -> Option<String> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        // rustls's own words (`invalid peer certificate: UnknownIssuer`), however deep the
        // connector wrapped them.
        let text = c.to_string();
        if let Some(at) = text.find("invalid peer certificate") {
            return Some(text[at..].to_string());
        }
        cause = c.source();
    }
    None
}

/// A reqwest error's text without the URL (which may carry query parameters).
/// `url` without credentials (`user:password@`), to show in errors and logs.
pub fn redacted(url: &Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.to_string()
}

/// An answer that is not GitHub's API: an HTML page with a success or client-error status (a
/// web server or proxy at the wrong URL; 501 from one that takes no POST), or a success that
/// is not JSON. GitHub's own 5xx pages can be HTML and stay retryable. `None` when it may be
/// GitHub.
fn not_github(
    url: &Url,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Option<GithubError> {
    let start = body.trim_ascii_start().first().copied();
    let html = headers
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.to_ascii_lowercase().contains("html"))
        || start == Some(b'<');
    let what = if html && (status.as_u16() < 500 || status == StatusCode::NOT_IMPLEMENTED) {
        "HTML"
    } else if status.is_success() && !matches!(start, Some(b'{') | Some(b'[')) {
        "a body that is not JSON"
    } else {
        return None;
    };
    Some(GithubError::Fatal {
        status: status.as_u16(),
        message: format!(
            "this is not GitHub's API at {} (got {what}, status {}); check GITHUB_API_URL",
            redacted(url),
            status.as_u16()
        ),
        request_id: None,
    })
}

fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    if let Some(u) = e.url() {
        s = s.replace(u.as_str(), &redacted(u));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_names_skip_comments() {
        assert_eq!(
            operation_name("# a comment\n# more\nquery CommitsById($ids: [ID!]!) {\n}"),
            "CommitsById"
        );
        assert_eq!(operation_name("query{ viewer { login } }"), "anonymous");
        assert_eq!(operation_name("{ viewer { login } }"), "anonymous");
    }

    #[test]
    fn graphql_endpoint_follows_the_api_base() {
        let u = |s: &str| graphql_url(&Url::parse(s).unwrap()).unwrap().to_string();
        assert_eq!(
            u("https://api.github.com"),
            "https://api.github.com/graphql"
        );
        assert_eq!(
            u("https://ghe.example.com/api/v3"),
            "https://ghe.example.com/api/graphql"
        );
        assert_eq!(u("http://127.0.0.1:9000/"), "http://127.0.0.1:9000/graphql");
    }

    #[test]
    fn statuses_map_to_what_the_caller_can_do() {
        let h = HeaderMap::new();
        assert!(matches!(
            classify_status(StatusCode::BAD_GATEWAY, &h, b""),
            GithubError::Overloaded(_)
        ));
        assert!(matches!(
            classify_status(StatusCode::INTERNAL_SERVER_ERROR, &h, b""),
            GithubError::Transient(_)
        ));
        assert!(matches!(
            classify_status(StatusCode::NOT_FOUND, &h, br#"{"message":"Not Found"}"#),
            GithubError::NotFound { .. }
        ));
        let e = classify_status(
            StatusCode::UNPROCESSABLE_ENTITY,
            &h,
            br#"{"message":"Validation Failed"}"#,
        );
        assert!(
            matches!(e, GithubError::Fatal { status: 422, ref message, .. } if message == "Validation Failed")
        );
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("3"));
        assert!(
            matches!(classify_status(StatusCode::FORBIDDEN, &h, b"{}"), GithubError::SecondaryLimit { retry_after } if retry_after == Duration::from_secs(3))
        );
        let secondary = br#"{"message":"You have exceeded a secondary rate limit."}"#;
        assert!(matches!(
            classify_status(StatusCode::FORBIDDEN, &HeaderMap::new(), secondary),
            GithubError::SecondaryLimit { .. }
        ));
        let mut h = HeaderMap::new();
        h.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
        h.insert("x-ratelimit-reset", HeaderValue::from_static("1900000000"));
        assert!(matches!(
            classify_status(StatusCode::FORBIDDEN, &h, b"{}"),
            GithubError::RateLimited { .. }
        ));
        // A plain 403 (SSO, permissions) is final.
        assert!(matches!(
            classify_status(
                StatusCode::FORBIDDEN,
                &HeaderMap::new(),
                br#"{"message":"Resource not accessible"}"#
            ),
            GithubError::Fatal { status: 403, .. }
        ));
    }

    #[test]
    fn answers_that_are_not_githubs_api_say_so_with_the_url_and_no_credentials() {
        let url = Url::parse("https://user:secret@ghe.example.com/api/v3/graphql").unwrap();
        let html = |ct: &str| {
            let mut h = HeaderMap::new();
            h.insert(
                reqwest::header::CONTENT_TYPE,
                HeaderValue::from_str(ct).unwrap(),
            );
            h
        };
        for (status, headers, body) in [
            (
                StatusCode::OK,
                html("text/html"),
                &b"<!doctype html><p>Sign in</p>"[..],
            ),
            (
                StatusCode::NOT_IMPLEMENTED,
                html("text/html"),
                &b"<html>501</html>"[..],
            ),
            (
                StatusCode::NOT_FOUND,
                HeaderMap::new(),
                &b"<html>404</html>"[..],
            ),
            (StatusCode::OK, HeaderMap::new(), &b"hello"[..]),
        ] {
            let e = not_github(&url, status, &headers, body).expect("not GitHub");
            let m = e.to_string();
            assert!(
                m.contains("this is not GitHub's API at https://ghe.example.com/api/v3/graphql"),
                "{m}"
            );
            assert!(
                m.contains(&format!("status {}", status.as_u16())) && m.contains("GITHUB_API_URL"),
                "{m}"
            );
            assert!(!m.contains("secret") && !m.contains("user@"), "{m}");
        }
        // GitHub's own answers: JSON, and its HTML 502/503/504 pages stay retryable.
        assert!(not_github(&url, StatusCode::OK, &HeaderMap::new(), b"{\"data\":{}}").is_none());
        assert!(not_github(
            &url,
            StatusCode::NOT_FOUND,
            &HeaderMap::new(),
            b"{\"message\":\"Not Found\"}"
        )
        .is_none());
        assert!(not_github(
            &url,
            StatusCode::BAD_GATEWAY,
            &html("text/html"),
            b"<html>Unicorn</html>"
        )
        .is_none());
    }

    #[test]
    fn only_not_found_items_of_root_nodes_are_missing_nodes() {
        let e: Vec<GraphqlErrorItem> = serde_json::from_value(serde_json::json!([
            {"type": "NOT_FOUND", "path": ["nodes", 3], "message": "Could not resolve to a node with the global id of 'PRR_x'"},
            {"type": "NOT_FOUND", "path": ["node"], "message": "gone"},
            {"type": "FORBIDDEN", "path": ["nodes", 1], "message": "no"},
            {"message": "Something went wrong"}
        ]))
        .unwrap();
        assert_eq!(
            e.iter().map(missing_node).collect::<Vec<_>>(),
            vec![Some(3), None, None, None]
        );
    }

    #[test]
    fn graphql_errors_are_classified() {
        let item = |kind: Option<&str>, m: &str| GraphqlErrorItem {
            kind: kind.map(str::to_string),
            code: None,
            message: m.into(),
            path: Vec::new(),
        };
        let h = HeaderMap::new();
        assert!(matches!(
            classify_graphql(&[item(Some("RATE_LIMITED"), "x")], &h),
            GithubError::RateLimited { .. }
        ));
        assert!(matches!(
            classify_graphql(&[item(Some("NOT_FOUND"), "x")], &h),
            GithubError::NotFound { .. }
        ));
        assert!(matches!(
            classify_graphql(&[item(Some("RESOURCE_LIMITS_EXCEEDED"), "x")], &h),
            GithubError::Overloaded(_)
        ));
        assert!(matches!(classify_graphql(&[item(None, "Something went wrong while executing your query. This may be the result of a timeout")], &h), GithubError::Overloaded(_)));
        assert!(matches!(
            classify_graphql(&[item(Some("MAX_NODE_LIMIT_EXCEEDED"), "x")], &h),
            GithubError::Fatal { .. }
        ));
    }

    #[test]
    fn every_form_of_a_graphql_rate_limit_waits_for_the_reset() {
        let reset = Utc::now() + chrono::Duration::seconds(90);
        let mut spent = HeaderMap::new();
        spent.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
        spent.insert(
            "x-ratelimit-reset",
            HeaderValue::from_str(&reset.timestamp().to_string()).unwrap(),
        );
        let none = HeaderMap::new();
        let body = |s: &str| serde_json::from_str::<GraphqlEnvelope>(s).unwrap().errors;
        let forms = [
            (
                body(r#"{"errors":[{"type":"RATE_LIMITED","message":"API rate limit exceeded"}]}"#),
                &none,
            ),
            (
                body(
                    r#"{"errors":[{"type":"RATE_LIMIT","code":"graphql_rate_limit","message":"API rate limit already exceeded for user ID 1."}]}"#,
                ),
                &none,
            ),
            (
                body(r#"{"errors":[{"code":"graphql_rate_limit","message":"x"}]}"#),
                &none,
            ),
            (
                body(r#"{"errors":[{"message":"Your request could not be processed."}]}"#),
                &spent,
            ),
            (
                body(r#"{"errors":[{"type":"RATE_LIMIT","message":"x"}]}"#),
                &spent,
            ),
        ];
        for (errors, headers) in &forms {
            match classify_graphql(errors, headers) {
                GithubError::RateLimited { reset: r } if std::ptr::eq(*headers, &spent) => {
                    assert_eq!(r.timestamp(), reset.timestamp(), "{errors:?}")
                }
                GithubError::RateLimited { .. } => {}
                other => panic!("{errors:?} gave {other:?}"),
            }
        }
        // The same bodies on an HTTP 403 are rate limits too.
        let e = classify_status(
            StatusCode::FORBIDDEN,
            &none,
            br#"{"errors":[{"type":"RATE_LIMIT","code":"graphql_rate_limit","message":"x"}]}"#,
        );
        assert!(matches!(e, GithubError::RateLimited { .. }), "{e:?}");
        // An error that names another cause is that cause, even on the last point.
        assert!(matches!(
            classify_graphql(
                &body(r#"{"errors":[{"type":"NOT_FOUND","message":"x"}]}"#),
                &spent
            ),
            GithubError::NotFound { .. }
        ));
    }
}
