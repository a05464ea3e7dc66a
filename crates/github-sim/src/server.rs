//! The simulator's HTTP face: GraphQL at `/graphql`, GitHub's REST list endpoints, per-token
//! rate limits with GitHub's headers, fault injection, a ledger of what was served, GH Archive
//! hours at `/gharchive/YYYY-MM-DD-H.json.gz`, and a control API under `/_sim/`.

use crate::app::{token_body, verify_app_jwt, AppSpec};
use crate::cost::query_cost;
use crate::generate::{self, ChangeReport, OrgSpec};
use crate::gharchive::{self, GhArchiveSpec, HourTruth};
use crate::git::{GitRepoSpec, GitStore, PushReport};
use crate::graphql::{self, GithubSchema, RateLimitInfo};
use crate::model::World;
use crate::population::{Population, PopulationSpec, PublicRepo, StarChangeReport};
use crate::rest;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// A fault the simulator can inject into a response.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// HTTP 502 Bad Gateway.
    BadGateway,
    /// HTTP 403 secondary rate limit with `retry-after` seconds.
    SecondaryLimit { retry_after: u64 },
    /// HTTP 200 GraphQL response with data and an `errors` entry (REST: treated as 502).
    PartialGraphql,
    /// HTTP 200 GraphQL `RESOURCE_LIMITS_EXCEEDED` error (REST: treated as 502).
    ResourceLimit,
    /// The response is delayed by this many milliseconds, then served normally.
    Slow { millis: u64 },
    /// The token's budget reads as exhausted until `reset_in` seconds from now.
    Exhausted { reset_in: u64 },
    /// The token's GraphQL budget is spent until `reset_in` seconds from now (whichever request
    /// draws this fault), and every GraphQL answer until then says so in `form`.
    GraphqlRateLimit { reset_in: u64, form: RateLimitForm },
}

/// How a GraphQL answer says the token's budget is spent. GitHub documents the first; the
/// others have been seen from it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RateLimitForm {
    /// `"type": "RATE_LIMITED"`.
    #[default]
    Documented,
    /// `"type": "RATE_LIMIT", "code": "graphql_rate_limit"`.
    RateLimitType,
    /// An error with neither type nor code; only `x-ratelimit-remaining: 0` tells.
    HeadersOnly,
}

impl RateLimitForm {
    fn error(self) -> serde_json::Value {
        let text = "API rate limit already exceeded for user ID 1.";
        let item = match self {
            RateLimitForm::Documented => {
                serde_json::json!({ "type": "RATE_LIMITED", "message": text })
            }
            RateLimitForm::RateLimitType => {
                serde_json::json!({ "type": "RATE_LIMIT", "code": "graphql_rate_limit", "message": text })
            }
            RateLimitForm::HeadersOnly => {
                serde_json::json!({ "message": "Your request could not be processed." })
            }
        };
        serde_json::json!({ "errors": [item] })
    }
}

/// When to inject faults: a queue of faults for the next requests, then a random share.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct FaultPlan {
    /// Faults for the next requests, in order (control endpoints excluded).
    #[serde(default)]
    pub next: Vec<Fault>,
    /// Share of requests that get a random fault from `kinds`, 0.0 to 1.0.
    #[serde(default)]
    pub rate: f64,
    #[serde(default)]
    pub kinds: Vec<Fault>,
    #[serde(default)]
    pub seed: u64,
}

impl FaultPlan {
    /// Every response delayed by `millis`, then served normally.
    pub fn slow(millis: u64) -> FaultPlan {
        FaultPlan {
            rate: 1.0,
            kinds: vec![Fault::Slow { millis }],
            ..FaultPlan::default()
        }
    }
}

/// What the simulator has served.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Ledger {
    pub rest_requests: u64,
    pub graphql_queries: u64,
    pub graphql_points: u64,
    pub faults_injected: u64,
    /// Requests per route (`GET /repos/{owner}/{repo}/pulls`, `POST /graphql PullRequestPage`).
    pub by_route: BTreeMap<String, u64>,
    /// Tokens that were refused as unknown.
    pub rejected_auth: u64,
    /// Installation tokens minted for the GitHub App.
    #[serde(default)]
    pub installation_tokens_minted: u64,
    /// Requests refused because their installation token had expired.
    #[serde(default)]
    pub expired_token_rejections: u64,
    /// The largest GraphQL response body served, in bytes.
    #[serde(default)]
    pub largest_graphql_response_bytes: u64,
    /// For each request that arrived while a secondary limit the simulator issued to the same
    /// token was in force: how many milliseconds after the limit was issued it came. The
    /// simulator serves these requests; a client that honours `retry-after` sends none.
    #[serde(default)]
    pub requests_during_secondary_limit: Vec<u64>,
    /// GH Archive requests per hour (`2024-01-01-15`), whatever the answer (404 included);
    /// names that are no hour are not counted.
    #[serde(default)]
    pub gharchive_requests: BTreeMap<String, u64>,
    /// GH Archive files served (HTTP 200) per hour (`2024-01-01-15`).
    #[serde(default)]
    pub gharchive_downloads: BTreeMap<String, u64>,
    /// Git ref listings served (`GET …/info/refs?service=git-upload-pack`). Git requests
    /// spend no REST or GraphQL budget, as on GitHub.
    #[serde(default)]
    pub git_info_refs: u64,
    /// Git fetches served (`POST …/git-upload-pack`; protocol v2 sends one for `ls-refs`
    /// too, so see `git_fetches` for what transferred objects).
    #[serde(default)]
    pub git_upload_packs: u64,
    /// Upload-pack requests that asked for objects (a `want`), per repository name.
    #[serde(default)]
    pub git_fetches: BTreeMap<String, u64>,
    /// Git requests (ref listings and upload-packs) per budget key of their token (the
    /// token itself, `installation:ID` or `user:LOGIN`).
    #[serde(default)]
    pub git_requests_by_token: BTreeMap<String, u64>,
    /// Git requests refused: no credentials, an unknown token, an unknown repository or a
    /// push.
    #[serde(default)]
    pub git_refused: u64,
}

/// How the simulator answers, beside the organization itself.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SimOptions {
    /// Points per hour for GraphQL, per token.
    pub graphql_limit: u64,
    /// Requests per hour for REST, per token.
    pub rest_limit: u64,
    /// Accept only these tokens (any non-empty token when empty).
    pub tokens: Vec<String>,
    /// Report a pull request's commit `totalCount` as at most 250, as GitHub may, instead of
    /// the true number.
    #[serde(default)]
    pub cap_commit_total_count: bool,
    /// A GitHub App whose installation tokens are accepted (they share one budget per
    /// installation, as on GitHub) besides `tokens`.
    #[serde(default)]
    pub app: Option<AppSpec>,
    /// Pull requests (`repo`, `number`) GitHub cannot serve: every query reading their commits
    /// answers HTTP 502, at any page size.
    #[serde(default)]
    pub poison_pull_requests: Vec<(String, u64)>,
    /// Connections whose pages after a cursor do not advance.
    #[serde(default)]
    pub stuck_pagination: Vec<graphql::StuckPagination>,
    /// Node ids `node`/`nodes` answer NOT_FOUND for though their parents still list them.
    #[serde(default)]
    pub vanished_nodes: Vec<String>,
    /// Classic tokens' OAuth scopes (`"repo, read:org"`), sent as `X-OAuth-Scopes` on REST
    /// answers to that token. Tokens not listed get no such header, as GitHub sends none for
    /// fine-grained and installation tokens.
    #[serde(default)]
    pub token_scopes: BTreeMap<String, String>,
    /// The public repositories `search(type: REPOSITORY)` and `GET /search/repositories`
    /// find, generated on the first search.
    #[serde(default)]
    pub population: PopulationSpec,
    /// REST search requests per minute per token: 30 on GitHub ("Rate limits for the REST
    /// API": the search resource), apart from the core budget.
    #[serde(default = "default_search_rest_limit")]
    pub search_rest_limit: u64,
    /// Milliseconds each search page takes to answer (GitHub's take about 1-3 s): a REST page
    /// waits this long, a GraphQL query this long per 100 search results it asks for (at
    /// least once when it searches at all; count probes are cheap).
    #[serde(default)]
    pub search_latency_ms: u64,
    /// Milliseconds after which a GraphQL query's search work times out: GitHub stops a query
    /// at 10 s ("Rate limits and query limits for the GraphQL API": timeouts) and answers 502.
    #[serde(default = "default_graphql_timeout_ms")]
    pub graphql_timeout_ms: u64,
    /// GitHub's secondary limit on back-to-back searches, off when `None`.
    #[serde(default)]
    pub search_burst: Option<SearchBurst>,
    /// GitHub's secondary limit on GraphQL points per minute per token (2,000 on GitHub,
    /// "Rate limits for the REST API": secondary rate limits), off when `None`. A query that
    /// would pass it gets a 403 with `retry-after: 60` and costs nothing.
    #[serde(default)]
    pub graphql_points_per_minute: Option<u64>,
    /// Personal tokens by the login of the user they belong to: tokens of one user share ONE
    /// budget (REST, GraphQL and search alike), as GitHub counts personal tokens per user,
    /// and `viewer` / `GET /user` answer that user. These tokens are accepted even when
    /// `tokens` does not list them. Tokens not listed here keep a budget of their own.
    #[serde(default)]
    pub token_users: BTreeMap<String, String>,
}

fn default_search_rest_limit() -> u64 {
    30
}

fn default_graphql_timeout_ms() -> u64 {
    10_000
}

/// A secondary limit on bursts of searches: a token's search requests (REST search pages and
/// GraphQL queries that search) beyond `max_requests` within `window_ms` milliseconds get a
/// 403 with `retry-after: retry_after` seconds, as GitHub's "secondary rate limits" do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchBurst {
    pub max_requests: u32,
    pub window_ms: u64,
    pub retry_after: u64,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            graphql_limit: 5000,
            rest_limit: 5000,
            tokens: Vec::new(),
            cap_commit_total_count: false,
            app: None,
            poison_pull_requests: Vec::new(),
            stuck_pagination: Vec::new(),
            vanished_nodes: Vec::new(),
            token_scopes: BTreeMap::new(),
            population: PopulationSpec::default(),
            search_rest_limit: default_search_rest_limit(),
            search_latency_ms: 0,
            graphql_timeout_ms: default_graphql_timeout_ms(),
            search_burst: None,
            graphql_points_per_minute: None,
            token_users: BTreeMap::new(),
        }
    }
}

#[derive(Clone, Debug)]
struct Budget {
    limit: u64,
    used: u64,
    reset_at: DateTime<Utc>,
    period: ChronoDuration,
}

impl Budget {
    fn new(limit: u64, period: ChronoDuration) -> Self {
        Budget {
            limit,
            used: 0,
            reset_at: Utc::now() + period,
            period,
        }
    }
    fn roll(&mut self) {
        if Utc::now() >= self.reset_at {
            self.used = 0;
            self.reset_at = Utc::now() + self.period;
        }
    }
    fn remaining(&self) -> u64 {
        self.limit.saturating_sub(self.used)
    }
}

#[derive(Default)]
struct Accounts {
    rest: HashMap<String, Budget>,
    graphql: HashMap<String, Budget>,
    /// REST search, per minute.
    search: HashMap<String, Budget>,
}

/// Which budget a request spends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Resource {
    Core,
    Graphql,
    Search,
}

pub(crate) struct SimState {
    pub(crate) world: RwLock<Arc<World>>,
    schema: GithubSchema,
    options: RwLock<SimOptions>,
    accounts: Mutex<Accounts>,
    faults: Mutex<(FaultPlan, VecDeque<Fault>, ChaCha8Rng)>,
    pub(crate) ledger: Mutex<Ledger>,
    /// The organization's git repositories, when it has any.
    pub(crate) git: Option<Arc<GitStore>>,
    /// Installation tokens minted, with when each expires.
    installation_tokens: Mutex<HashMap<String, DateTime<Utc>>>,
    /// Per token, the secondary limit issued last: when, and for how long.
    secondary_limits: Mutex<HashMap<String, (std::time::Instant, Duration)>>,
    /// How GraphQL answers say a budget is spent (set by [`Fault::GraphqlRateLimit`]).
    rate_limit_form: Mutex<RateLimitForm>,
    /// What `/gharchive/` serves.
    gharchive: RwLock<GhArchiveSpec>,
    /// Hours the spec holds back (`missing`) that have been published since.
    gharchive_published: Mutex<BTreeSet<DateTime<Utc>>>,
    /// The public population of repository search, once generated, with its spec.
    population: Mutex<Option<(PopulationSpec, Arc<RwLock<Population>>)>>,
    /// Per token, when its recent search requests arrived (for [`SearchBurst`]).
    search_times: Mutex<HashMap<String, VecDeque<std::time::Instant>>>,
    /// Per token, the GraphQL points of the last minute, with when each query arrived.
    graphql_minute: Mutex<HashMap<String, VecDeque<(std::time::Instant, u64)>>>,
}

impl SimState {
    pub(crate) fn snapshot(&self) -> Arc<World> {
        self.world
            .read()
            .map(|w| Arc::clone(&w))
            .unwrap_or_else(|e| Arc::clone(&e.into_inner()))
    }
    /// Runs `f` on a token's GraphQL or REST budget, created full on first use and refilled
    /// once its reset has passed.
    fn with_budget<R>(&self, graphql: bool, token: &str, f: impl FnOnce(&mut Budget) -> R) -> R {
        let resource = if graphql {
            Resource::Graphql
        } else {
            Resource::Core
        };
        self.with_resource(resource, token, f)
    }

    /// Runs `f` on a token's budget of `resource`: hourly for core and GraphQL, per minute
    /// for search.
    fn with_resource<R>(
        &self,
        resource: Resource,
        token: &str,
        f: impl FnOnce(&mut Budget) -> R,
    ) -> R {
        let (limit, period) = self
            .options
            .read()
            .map(|o| match resource {
                Resource::Graphql => (o.graphql_limit, ChronoDuration::hours(1)),
                Resource::Core => (o.rest_limit, ChronoDuration::hours(1)),
                Resource::Search => (o.search_rest_limit, ChronoDuration::minutes(1)),
            })
            .unwrap_or((5000, ChronoDuration::hours(1)));
        let mut accounts = lock(&self.accounts);
        let map = match resource {
            Resource::Graphql => &mut accounts.graphql,
            Resource::Core => &mut accounts.rest,
            Resource::Search => &mut accounts.search,
        };
        let b = map
            .entry(token.to_string())
            .or_insert_with(|| Budget::new(limit, period));
        b.roll();
        f(b)
    }

    /// The population repository search runs over, generated (on a blocking thread) on first
    /// use and again when the options name another one.
    pub(crate) async fn population(&self) -> Arc<RwLock<Population>> {
        let spec = self
            .options
            .read()
            .map(|o| o.population)
            .unwrap_or_default();
        if let Some((built, p)) = lock(&self.population).as_ref() {
            if *built == spec {
                return Arc::clone(p);
            }
        }
        let made = tokio::task::spawn_blocking(move || Population::generate(spec))
            .await
            .unwrap_or_else(|_| Population::generate(spec));
        let mut slot = lock(&self.population);
        match slot.as_ref() {
            // Another request built it meanwhile: keep one, so changes are not lost.
            Some((built, p)) if *built == spec => Arc::clone(p),
            _ => {
                let p = Arc::new(RwLock::new(made));
                *slot = Some((spec, Arc::clone(&p)));
                p
            }
        }
    }

    /// How long a REST search page takes ([`SimOptions::search_latency_ms`]).
    pub(crate) fn search_latency(&self) -> Duration {
        Duration::from_millis(
            self.options
                .read()
                .map(|o| o.search_latency_ms)
                .unwrap_or(0),
        )
    }

    /// Whether a search request from `token` now breaks the [`SearchBurst`] limit: the
    /// seconds to send as `retry-after` when it does (the limit is then recorded like any
    /// secondary limit).
    fn search_burst(&self, token: &str) -> Option<u64> {
        let burst = self.options.read().ok().and_then(|o| o.search_burst)?;
        let now = std::time::Instant::now();
        let window = Duration::from_millis(burst.window_ms);
        let mut times = lock(&self.search_times);
        let recent = times.entry(token.to_string()).or_default();
        while recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= window)
        {
            recent.pop_front();
        }
        if recent.len() >= burst.max_requests as usize {
            lock(&self.secondary_limits).insert(
                token.to_string(),
                (now, Duration::from_secs(burst.retry_after)),
            );
            return Some(burst.retry_after);
        }
        recent.push_back(now);
        None
    }

    /// Whether `points` more from `token` would pass
    /// [`SimOptions::graphql_points_per_minute`]; records them when they would not.
    fn graphql_minute_exceeded(&self, token: &str, points: u64) -> bool {
        let Some(limit) = self
            .options
            .read()
            .ok()
            .and_then(|o| o.graphql_points_per_minute)
        else {
            return false;
        };
        let now = std::time::Instant::now();
        let mut minutes = lock(&self.graphql_minute);
        let recent = minutes.entry(token.to_string()).or_default();
        while recent
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) >= Duration::from_secs(60))
        {
            recent.pop_front();
        }
        let spent: u64 = recent.iter().map(|(_, p)| p).sum();
        if spent + points > limit {
            lock(&self.secondary_limits).insert(token.to_string(), (now, Duration::from_secs(60)));
            return true;
        }
        recent.push_back((now, points));
        false
    }

    /// Charges `units` to a token's budget: the budget after, or `Err` with it untouched when
    /// fewer units are left.
    fn charge(&self, graphql: bool, token: &str, units: u64) -> Result<Budget, Budget> {
        let resource = if graphql {
            Resource::Graphql
        } else {
            Resource::Core
        };
        self.charge_resource(resource, token, units)
    }

    fn charge_resource(
        &self,
        resource: Resource,
        token: &str,
        units: u64,
    ) -> Result<Budget, Budget> {
        self.with_resource(resource, token, |b| {
            if b.remaining() < units {
                return Err(b.clone());
            }
            b.used += units;
            Ok(b.clone())
        })
    }

    /// The budget a token spends, or why it is refused (counted in the ledger): an
    /// installation token (checked against what was minted, expiry included) spends its
    /// installation's (`installation:ID`), a token of [`SimOptions::token_users`] its user's
    /// (`user:LOGIN`), any other accepted token its own (the token itself).
    pub(crate) fn budget_key(&self, token: &str) -> Result<String, AuthRefusal> {
        let (allowed, app, user) = self
            .options
            .read()
            .map(|o| {
                let user = o.token_users.get(token).cloned();
                (
                    o.tokens.is_empty() || o.tokens.iter().any(|t| t == token) || user.is_some(),
                    o.app.clone(),
                    user,
                )
            })
            .unwrap_or((false, None, None));
        let minted = app.as_ref().and_then(|a| {
            lock(&self.installation_tokens)
                .get(token)
                .map(|exp| (a.installation_id, *exp))
        });
        match minted {
            Some((_, expires)) if Utc::now() >= expires => {
                lock(&self.ledger).expired_token_rejections += 1;
                Err(AuthRefusal::Expired)
            }
            Some((installation, _)) => Ok(format!("installation:{installation}")),
            None if allowed && !token.starts_with("ghs_") => Ok(match user {
                Some(login) => format!("user:{login}"),
                None => token.to_string(),
            }),
            None => {
                lock(&self.ledger).rejected_auth += 1;
                Err(AuthRefusal::Unknown)
            }
        }
    }

    fn count_route(&self, route: String) {
        if let Ok(mut l) = self.ledger.lock() {
            *l.by_route.entry(route).or_default() += 1;
        }
    }
}

/// Why a token is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AuthRefusal {
    /// An installation token past its expiry.
    Expired,
    /// A token the simulator does not accept.
    Unknown,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running simulator on 127.0.0.1.
pub struct Simulator {
    state: Arc<SimState>,
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Simulator {
    /// Generates the organization and serves it on `127.0.0.1:port` (0 picks a free port).
    /// The git repositories of [`OrgSpec::git_repos`] are cloned or generated first (into a
    /// directory the simulator owns and removes when it is dropped); an error says which
    /// could not be, or which name is taken twice.
    pub async fn start(
        spec: &OrgSpec,
        options: SimOptions,
        port: u16,
    ) -> anyhow::Result<Simulator> {
        let mut world = generate::generate(spec, Utc::now());
        let git = if spec.git_repos.is_empty() {
            None
        } else {
            let repos = spec.git_repos.clone();
            let seed = spec.seed;
            let (store, made) = tokio::task::spawn_blocking(move || create_git(&repos, seed))
                .await
                .map_err(|e| anyhow::anyhow!("creating the git repositories: {e}"))??;
            for r in made {
                if world.repository(&r.name).is_some() {
                    anyhow::bail!(
                        "the organization already has a repository called {}",
                        r.name
                    );
                }
                world.repositories.push(r);
            }
            world.reindex();
            Some(Arc::new(store))
        };
        Self::serve_inner(world, options, port, git).await
    }

    /// Serves an existing world (without git repositories).
    pub async fn serve(world: World, options: SimOptions, port: u16) -> anyhow::Result<Simulator> {
        Self::serve_inner(world, options, port, None).await
    }

    async fn serve_inner(
        world: World,
        options: SimOptions,
        port: u16,
        git: Option<Arc<GitStore>>,
    ) -> anyhow::Result<Simulator> {
        let state = Arc::new(SimState {
            git,
            world: RwLock::new(Arc::new(world)),
            schema: graphql::schema(),
            options: RwLock::new(options),
            accounts: Mutex::new(Accounts::default()),
            faults: Mutex::new((
                FaultPlan::default(),
                VecDeque::new(),
                ChaCha8Rng::seed_from_u64(0),
            )),
            ledger: Mutex::new(Ledger::default()),
            installation_tokens: Mutex::new(HashMap::new()),
            secondary_limits: Mutex::new(HashMap::new()),
            rate_limit_form: Mutex::new(RateLimitForm::default()),
            gharchive: RwLock::new(GhArchiveSpec::default()),
            gharchive_published: Mutex::new(BTreeSet::new()),
            population: Mutex::new(None),
            search_times: Mutex::new(HashMap::new()),
            graphql_minute: Mutex::new(HashMap::new()),
        });
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let app = router(state.clone());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await;
        });
        Ok(Simulator {
            state,
            addr,
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    /// The base URL, to use as `GITHUB_API_URL`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The ground truth as it is now.
    pub fn world(&self) -> Arc<World> {
        self.state.snapshot()
    }

    /// Changes `count` pull requests (see [`generate::change`]) at the current time.
    pub fn change(&self, count: usize, seed: u64, repo: Option<&str>) -> ChangeReport {
        apply_change(&self.state, count, seed, repo)
    }

    /// Changes the organization with `f`, exactly as it says and nothing more: no `updatedAt`
    /// is bumped unless `f` bumps it (GitHub, too, leaves a pull request's `updatedAt` alone
    /// when a comment on it is deleted or edited). Returns what `f` returns.
    pub fn edit<R>(&self, f: impl FnOnce(&mut World) -> R) -> R {
        let mut guard = self.state.world.write().unwrap_or_else(|e| e.into_inner());
        let mut next = (**guard).clone();
        let out = f(&mut next);
        next.reindex();
        *guard = Arc::new(next);
        out
    }

    /// Renames a repository (same id, new name; the old name keeps answering with it), at
    /// the current time. Its id, or `None` when `from` is unknown or `to` taken.
    pub fn rename(&self, from: &str, to: &str) -> Option<u64> {
        apply_rename(&self.state, from, to)
    }

    /// The public population repository search runs over (generated now if it was not yet):
    /// read it for the truth, e.g. `sim.population().await.read()`.
    pub async fn population(&self) -> Arc<RwLock<Population>> {
        self.state.population().await
    }

    /// The truth about one repository of the population, by database id, as it is now.
    pub async fn repo_truth(&self, database_id: u64) -> Option<PublicRepo> {
        let p = self.state.population().await;
        let p = p.read().unwrap_or_else(|e| e.into_inner());
        p.repo_by_id(database_id)
    }

    /// Changes the star counts of `count` repositories of the population, picked by `seed`
    /// (see [`Population::change_stars`]).
    pub async fn change_stars(&self, count: usize, seed: u64) -> StarChangeReport {
        let p = self.state.population().await;
        let mut p = p.write().unwrap_or_else(|e| e.into_inner());
        p.change_stars(count, seed)
    }

    /// Pushes `commits` new commits to the default branch of the git repository `repo` (see
    /// [`crate::git::push`]); its `pushedAt` and `updatedAt` become now. `Err` says why not
    /// (no such git repository, git failed).
    pub async fn git_push(
        &self,
        repo: &str,
        commits: usize,
        seed: u64,
    ) -> Result<PushReport, String> {
        apply_git_push(Arc::clone(&self.state), repo.to_string(), 0, commits, seed).await
    }

    /// Force-pushes the git repository `repo`: its default branch goes `drop` first-parent
    /// commits back and gets `commits` new ones (see [`crate::git::push`]).
    pub async fn git_force_push(
        &self,
        repo: &str,
        drop: usize,
        commits: usize,
        seed: u64,
    ) -> Result<PushReport, String> {
        apply_git_push(
            Arc::clone(&self.state),
            repo.to_string(),
            drop,
            commits,
            seed,
        )
        .await
    }

    /// The bare repository serving git repository `repo`, to read with `git` in tests
    /// (never write to it).
    pub fn git_dir(&self, repo: &str) -> Option<std::path::PathBuf> {
        let store = self.state.git.as_ref()?;
        let w = self.state.snapshot();
        let (_, r) = w.repository(repo)?;
        r.git_head.as_ref()?;
        Some(store.repo_dir(r.id))
    }

    /// The URL git clones repository `repo` from: `{url}/{org}/{repo}.git`.
    pub fn git_url(&self, repo: &str) -> String {
        format!(
            "{}/{}/{repo}.git",
            self.url(),
            self.state.snapshot().org.login
        )
    }

    /// Replaces the fault plan.
    pub fn set_faults(&self, plan: FaultPlan) {
        set_faults(&self.state, plan);
    }

    pub fn ledger(&self) -> Ledger {
        lock(&self.state.ledger).clone()
    }

    /// Every installation token minted so far, for tests that look for leaks.
    pub fn minted_tokens(&self) -> Vec<String> {
        lock(&self.state.installation_tokens)
            .keys()
            .cloned()
            .collect()
    }

    pub fn reset_ledger(&self) {
        *lock(&self.state.ledger) = Ledger::default();
    }

    pub fn set_options(&self, options: SimOptions) {
        if let Ok(mut o) = self.state.options.write() {
            *o = options;
        }
        *lock(&self.state.accounts) = Accounts::default();
    }

    /// Replaces what `/gharchive/` serves (by default [`GhArchiveSpec::default`]: seed 1, 100
    /// events an hour, no quirks) and forgets which hours were published. `Err` says why the
    /// spec is invalid (see [`GhArchiveSpec::check`]).
    pub fn set_gharchive(&self, spec: GhArchiveSpec) -> Result<(), String> {
        set_gharchive(&self.state, spec)
    }

    /// What `/gharchive/` serves.
    pub fn gharchive_spec(&self) -> GhArchiveSpec {
        gharchive_spec(&self.state)
    }

    /// The ground truth of one GH Archive hour (`hour` floored to the hour), as generated
    /// from the current spec; `missing` says whether the spec holds it back, whether or not it
    /// has been published since (see [`Simulator::gharchive_published`]).
    pub fn gharchive_truth(&self, hour: DateTime<Utc>) -> HourTruth {
        gharchive::truth(&gharchive_spec(&self.state), hour)
    }

    /// Publishes an hour the spec holds back: `/gharchive/` serves it from now on, as GH
    /// Archive does with an hour uploaded late. `true` when the hour was held back and is
    /// now published, `false` when it was not held back or already published.
    pub fn gharchive_publish(&self, hour: DateTime<Utc>) -> bool {
        publish_gharchive(&self.state, hour)
    }

    /// The held-back hours published so far.
    pub fn gharchive_published(&self) -> Vec<DateTime<Utc>> {
        lock(&self.state.gharchive_published)
            .iter()
            .copied()
            .collect()
    }

    /// The base URL of the GH Archive files: `{url}/gharchive`, so that an hour is at
    /// `{gharchive_url}/2024-01-01-15.json.gz`.
    pub fn gharchive_url(&self) -> String {
        format!("{}/gharchive", self.url())
    }

    /// Stops serving and waits for the server task.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

fn apply_change(state: &SimState, count: usize, seed: u64, repo: Option<&str>) -> ChangeReport {
    let mut guard = state.world.write().unwrap_or_else(|e| e.into_inner());
    let mut next = (**guard).clone();
    let report = generate::change(&mut next, count, seed, repo, Utc::now());
    *guard = Arc::new(next);
    report
}

/// Creates the git repositories of `specs` in a new store: the store and the organization's
/// repository records for them.
fn create_git(
    specs: &[GitRepoSpec],
    seed: u64,
) -> anyhow::Result<(GitStore, Vec<crate::model::Repository>)> {
    let store = GitStore::new()?;
    let mut repos: Vec<crate::model::Repository> = Vec::new();
    for spec in specs {
        if !crate::git::valid_repo_name(&spec.name) {
            anyhow::bail!("`{}` is no repository name", spec.name);
        }
        if repos
            .iter()
            .any(|r| r.name.eq_ignore_ascii_case(&spec.name))
        {
            anyhow::bail!("the git repository {} is given twice", spec.name);
        }
        let id = crate::git::repo_database_id(&spec.name);
        let f = store.create(id, spec, seed)?;
        let at = |t: i64| DateTime::<Utc>::from_timestamp(t, 0).unwrap_or_else(Utc::now);
        let created = at(f.created_at);
        let pushed = at(f.head_committed_at).max(created);
        repos.push(crate::model::Repository {
            id,
            name: spec.name.clone(),
            is_archived: false,
            is_fork: false,
            is_private: false,
            default_branch: f.default_branch,
            created_at: created,
            updated_at: pushed,
            pushed_at: pushed,
            pull_requests: Vec::new(),
            issues: Vec::new(),
            former_names: Vec::new(),
            git_head: Some(f.head),
        });
    }
    Ok((store, repos))
}

/// Pushes to (`back` = 0) or force-pushes (`back` > 0) git repository `repo`, then records
/// its new head and push time.
async fn apply_git_push(
    state: Arc<SimState>,
    repo: String,
    back: usize,
    commits: usize,
    seed: u64,
) -> Result<PushReport, String> {
    let Some(store) = state.git.clone() else {
        return Err(format!("{repo} is no git repository of the organization"));
    };
    let id = state
        .snapshot()
        .repository(&repo)
        .filter(|(_, r)| r.git_head.is_some())
        .map(|(_, r)| (r.id, r.name.clone()));
    let Some((id, name)) = id else {
        return Err(format!("{repo} is no git repository of the organization"));
    };
    let st = Arc::clone(&state);
    tokio::task::spawn_blocking(move || {
        let _writing = lock(&store.writing);
        let report = crate::git::push(
            &store.repo_dir(id),
            &name,
            back,
            commits,
            seed,
            Utc::now().timestamp(),
        )
        .map_err(|e| format!("{e:#}"))?;
        let now = Utc::now();
        let mut guard = st.world.write().unwrap_or_else(|e| e.into_inner());
        let mut next = (**guard).clone();
        if let Some(r) = next.repositories.iter_mut().find(|r| r.id == id) {
            r.git_head = Some(report.new_head.clone());
            r.pushed_at = now;
            r.updated_at = now;
        }
        *guard = Arc::new(next);
        Ok(report)
    })
    .await
    .map_err(|e| format!("pushing: {e}"))?
}

fn apply_rename(state: &SimState, from: &str, to: &str) -> Option<u64> {
    let mut guard = state.world.write().unwrap_or_else(|e| e.into_inner());
    let mut next = (**guard).clone();
    let id = next.rename(from, to, Utc::now())?;
    *guard = Arc::new(next);
    Some(id)
}

fn set_faults(state: &SimState, plan: FaultPlan) {
    let queue = plan.next.iter().cloned().collect();
    let rng = ChaCha8Rng::seed_from_u64(plan.seed);
    *lock(&state.faults) = (plan, queue, rng);
}

fn router(state: Arc<SimState>) -> Router {
    let github = Router::new()
        .route("/graphql", post(graphql_handler))
        .merge(rest::routes())
        .layer(middleware::from_fn_with_state(state.clone(), gate));
    Router::new()
        .route("/_sim/change", post(control_change))
        .route("/_sim/faults", post(control_faults))
        .route("/_sim/rename", post(control_rename))
        .route(
            "/_sim/ledger",
            get(control_ledger).delete(control_reset_ledger),
        )
        .route("/_sim/truth", get(control_truth))
        .route("/_sim/population/repos/{id}", get(control_population_repo))
        .route(
            "/_sim/gharchive",
            post(control_gharchive).get(control_gharchive_spec),
        )
        .route("/_sim/gharchive/publish", post(control_gharchive_publish))
        .route("/_sim/gharchive/truth", get(control_gharchive_truth))
        .route("/gharchive/{file}", get(gharchive_file))
        .route(
            "/app/installations/{id}/access_tokens",
            post(app_access_token),
        )
        .route("/orgs/{org}/installation", get(app_org_installation))
        .route(
            "/{org}/{repo}/{*rest}",
            get(crate::git_http::git_endpoint).post(crate::git_http::git_endpoint),
        )
        .merge(github)
        .with_state(state)
}

#[derive(Deserialize)]
struct ChangeBody {
    #[serde(default)]
    count: usize,
    #[serde(default)]
    seed: u64,
    #[serde(default)]
    repo: Option<String>,
    /// Change the star counts of `count` repositories of the search population instead of
    /// pull requests.
    #[serde(default)]
    stars: bool,
    /// Push new commits to a git repository instead.
    #[serde(default)]
    git_push: Option<GitPushBody>,
    /// Force-push a git repository instead.
    #[serde(default)]
    git_force_push: Option<GitPushBody>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GitPushBody {
    repo: String,
    commits: usize,
    /// First-parent commits dropped from the head (force-push only).
    #[serde(default)]
    drop: usize,
}

/// `POST /_sim/change {"count": 50, "seed": 1}`: changes pull requests, answering a
/// [`ChangeReport`]; with `"stars": true`, changes the star counts of `count` repositories
/// of the search population, answering a [`StarChangeReport`]. With `"git_push": {"repo":
/// NAME, "commits": N}` pushes N commits to a git repository, with `"git_force_push": {"repo":
/// NAME, "drop": K, "commits": N}` force-pushes it (K first-parent commits dropped, N new),
/// answering a [`PushReport`] (new head, added and dropped shas), or 400 with why not.
async fn control_change(
    State(state): State<Arc<SimState>>,
    Json(body): Json<ChangeBody>,
) -> Response {
    let push = match (&body.git_push, &body.git_force_push) {
        (Some(_), Some(_)) => {
            return message(
                StatusCode::BAD_REQUEST,
                "give git_push or git_force_push, not both",
            )
        }
        (Some(p), None) if p.drop > 0 => {
            return message(
                StatusCode::BAD_REQUEST,
                "git_push drops nothing: use git_force_push",
            )
        }
        (Some(p), None) => Some((p, 0)),
        (None, Some(p)) if p.drop == 0 => {
            return message(
                StatusCode::BAD_REQUEST,
                "git_force_push needs `drop` of 1 or more",
            )
        }
        (None, Some(p)) => Some((p, p.drop)),
        (None, None) => None,
    };
    if let Some((p, back)) = push {
        if p.commits > 10_000 {
            return message(StatusCode::BAD_REQUEST, "at most 10000 commits a push");
        }
        return match apply_git_push(
            Arc::clone(&state),
            p.repo.clone(),
            back,
            p.commits,
            body.seed,
        )
        .await
        {
            Ok(r) => Json(r).into_response(),
            Err(why) => message(StatusCode::BAD_REQUEST, &why),
        };
    }
    if body.stars {
        let p = state.population().await;
        let mut p = p.write().unwrap_or_else(|e| e.into_inner());
        return Json(p.change_stars(body.count, body.seed)).into_response();
    }
    Json(apply_change(
        &state,
        body.count,
        body.seed,
        body.repo.as_deref(),
    ))
    .into_response()
}

/// `GET /_sim/population/repos/{id}`: the truth about one repository of the search
/// population ([`PublicRepo`]), or 404.
async fn control_population_repo(
    State(state): State<Arc<SimState>>,
    axum::extract::Path(id): axum::extract::Path<u64>,
) -> Response {
    let p = state.population().await;
    let found = p.read().unwrap_or_else(|e| e.into_inner()).repo_by_id(id);
    match found {
        Some(r) => Json(r).into_response(),
        None => message(StatusCode::NOT_FOUND, "no such repository"),
    }
}

#[derive(Deserialize)]
struct RenameBody {
    from: String,
    to: String,
}

/// `POST /_sim/rename {"from": "web", "to": "web-app"}`: `{"id": …}`, or 404 when `from` is
/// unknown or `to` is taken.
async fn control_rename(
    State(state): State<Arc<SimState>>,
    Json(body): Json<RenameBody>,
) -> Response {
    match apply_rename(&state, &body.from, &body.to) {
        Some(id) => Json(serde_json::json!({ "id": id })).into_response(),
        None => message(
            StatusCode::NOT_FOUND,
            "no repository by that name, or the new name is taken",
        ),
    }
}

async fn control_faults(
    State(state): State<Arc<SimState>>,
    Json(plan): Json<FaultPlan>,
) -> StatusCode {
    set_faults(&state, plan);
    StatusCode::NO_CONTENT
}

async fn control_ledger(State(state): State<Arc<SimState>>) -> Json<Ledger> {
    Json(lock(&state.ledger).clone())
}

async fn control_reset_ledger(State(state): State<Arc<SimState>>) -> StatusCode {
    *lock(&state.ledger) = Ledger::default();
    StatusCode::NO_CONTENT
}

async fn control_truth(State(state): State<Arc<SimState>>) -> Response {
    let w = state.snapshot();
    Json(&*w).into_response()
}

fn gharchive_spec(state: &SimState) -> GhArchiveSpec {
    state
        .gharchive
        .read()
        .map(|s| s.clone())
        .unwrap_or_else(|e| e.into_inner().clone())
}

fn set_gharchive(state: &SimState, spec: GhArchiveSpec) -> Result<(), String> {
    spec.check()?;
    *state.gharchive.write().unwrap_or_else(|e| e.into_inner()) = spec;
    lock(&state.gharchive_published).clear();
    Ok(())
}

fn publish_gharchive(state: &SimState, hour: DateTime<Utc>) -> bool {
    let hour = gharchive::floor_hour(hour);
    let held_back =
        gharchive_spec(state).quirks_for(hour).missing && hour >= gharchive::first_hour();
    held_back && lock(&state.gharchive_published).insert(hour)
}

/// What GH Archive's storage answers for a file it does not have.
fn no_such_key() -> Response {
    (
        StatusCode::NOT_FOUND,
        [("content-type", "application/xml; charset=UTF-8")],
        "<?xml version='1.0' encoding='UTF-8'?><Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>",
    )
        .into_response()
}

/// `GET /gharchive/{YYYY-MM-DD-H}.json.gz`: the hour's gzip NDJSON (`application/gzip`, with
/// its length), or 404 as GH Archive's storage answers: for a name that is no hour (a
/// zero-padded hour included), an hour before 2011-02-12, an hour that has not ended yet, and
/// an hour the spec holds back until it is published. Served slowly or truncated when the
/// hour's quirks say so.
async fn gharchive_file(
    State(state): State<Arc<SimState>>,
    axum::extract::Path(file): axum::extract::Path<String>,
) -> Response {
    let Some(hour) = gharchive::parse_file_name(&file) else {
        return no_such_key();
    };
    let key = file.trim_end_matches(".json.gz").to_string();
    *lock(&state.ledger)
        .gharchive_requests
        .entry(key.clone())
        .or_default() += 1;
    let spec = gharchive_spec(&state);
    let quirks = spec.quirks_for(hour);
    let held_back = quirks.missing && !lock(&state.gharchive_published).contains(&hour);
    if hour < gharchive::first_hour() || hour + ChronoDuration::hours(1) > Utc::now() || held_back {
        return no_such_key();
    }
    let made = tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        gharchive::write_gzip(&spec, hour, &mut out, |_| {}).map(|_| out)
    })
    .await;
    let bytes = match made {
        Ok(Ok(b)) => axum::body::Bytes::from(b),
        _ => return message(StatusCode::INTERNAL_SERVER_ERROR, "Server Error"),
    };
    *lock(&state.ledger)
        .gharchive_downloads
        .entry(key)
        .or_default() += 1;
    let len = bytes.len();
    let body = match quirks.slow_bytes_per_sec {
        None => Body::from(bytes),
        Some(rate) => {
            // A tenth of the rate every 100 ms.
            let piece = usize::try_from(rate / 10).unwrap_or(usize::MAX).max(1);
            let chunks = futures::stream::unfold((bytes, 0usize), move |(bytes, at)| async move {
                if at >= bytes.len() {
                    return None;
                }
                if at > 0 {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                let end = at.saturating_add(piece).min(bytes.len());
                let chunk = bytes.slice(at..end);
                Some((Ok::<_, std::convert::Infallible>(chunk), (bytes, end)))
            });
            Body::from_stream(chunks)
        }
    };
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/gzip"));
    if let Ok(v) = HeaderValue::from_str(&len.to_string()) {
        r.headers_mut().insert("content-length", v);
    }
    r
}

/// `POST /_sim/gharchive` with a [`GhArchiveSpec`]: what `/gharchive/` serves from now on;
/// 204, or 400 with a message when the spec is invalid.
async fn control_gharchive(
    State(state): State<Arc<SimState>>,
    Json(spec): Json<GhArchiveSpec>,
) -> Response {
    match set_gharchive(&state, spec) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(why) => message(StatusCode::BAD_REQUEST, &why),
    }
}

/// `GET /_sim/gharchive`: the current [`GhArchiveSpec`].
async fn control_gharchive_spec(State(state): State<Arc<SimState>>) -> Json<GhArchiveSpec> {
    Json(gharchive_spec(&state))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HourBody {
    hour: String,
}

/// `POST /_sim/gharchive/publish {"hour": "2024-01-01T15"}`: serves a held-back hour from
/// now on; `{"hour": …, "file": …, "published": bool}` (`false` when it was not held back or
/// already published), or 400 for a malformed hour.
async fn control_gharchive_publish(
    State(state): State<Arc<SimState>>,
    Json(body): Json<HourBody>,
) -> Response {
    match gharchive::parse_hour(&body.hour) {
        Ok(hour) => Json(serde_json::json!({
            "hour": hour,
            "file": gharchive::file_name(hour),
            "published": publish_gharchive(&state, hour),
        }))
        .into_response(),
        Err(why) => message(StatusCode::BAD_REQUEST, &why),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HourQuery {
    hour: String,
}

/// `GET /_sim/gharchive/truth?hour=2024-01-01T15`: the hour's [`HourTruth`], or 400 for a
/// malformed hour.
async fn control_gharchive_truth(
    State(state): State<Arc<SimState>>,
    query: Result<axum::extract::Query<HourQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(axum::extract::Query(q)) = query else {
        return message(
            StatusCode::BAD_REQUEST,
            "give the hour: ?hour=2024-01-01T15",
        );
    };
    match gharchive::parse_hour(&q.hour) {
        Ok(hour) => {
            let spec = gharchive_spec(&state);
            match tokio::task::spawn_blocking(move || gharchive::truth(&spec, hour)).await {
                Ok(t) => Json(t).into_response(),
                Err(_) => message(StatusCode::INTERNAL_SERVER_ERROR, "Server Error"),
            }
        }
        Err(why) => message(StatusCode::BAD_REQUEST, &why),
    }
}

/// The token a request carries, from `Authorization: Bearer X` or `token X`.
pub(crate) fn token_of(headers: &HeaderMap) -> Option<String> {
    let v = headers.get("authorization")?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token"))
        .then(|| token.trim().to_string())
        .filter(|t| !t.is_empty())
}

fn message(status: StatusCode, text: &str) -> Response {
    (
        status,
        [("x-github-request-id", request_id().as_str())],
        Json(serde_json::json!({ "message": text, "documentation_url": "https://docs.github.com/rest", "status": status.as_u16().to_string() })),
    )
        .into_response()
}

/// GitHub's answer to a secondary rate limit: 403 with `retry-after` in seconds.
fn secondary_limit_response(retry_after: u64) -> Response {
    let mut r = message(
        StatusCode::FORBIDDEN,
        "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
    );
    if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
        r.headers_mut().insert("retry-after", v);
    }
    r
}

fn request_id() -> String {
    let n: u64 = rand::thread_rng().gen();
    format!("SIM:{n:016X}")
}

fn rate_headers(headers: &mut HeaderMap, b: &Budget, resource: &str) {
    let mut set = |k: &'static str, v: String| {
        if let Ok(v) = HeaderValue::from_str(&v) {
            headers.insert(k, v);
        }
    };
    set("x-ratelimit-limit", b.limit.to_string());
    set("x-ratelimit-remaining", b.remaining().to_string());
    set("x-ratelimit-used", b.used.to_string());
    set("x-ratelimit-reset", b.reset_at.timestamp().to_string());
    set("x-ratelimit-resource", resource.to_string());
}

fn next_fault(state: &SimState) -> Option<Fault> {
    let mut f = lock(&state.faults);
    let (plan, queue, rng) = &mut *f;
    if let Some(fault) = queue.pop_front() {
        return Some(fault);
    }
    if plan.rate > 0.0 && !plan.kinds.is_empty() && rng.gen_bool(plan.rate.clamp(0.0, 1.0)) {
        let i = rng.gen_range(0..plan.kinds.len());
        return Some(plan.kinds[i].clone());
    }
    None
}

/// Authentication, fault injection, REST budgets and the ledger, for every GitHub route.
async fn gate(State(state): State<Arc<SimState>>, mut req: Request, next: Next) -> Response {
    let is_graphql = req.uri().path() == "/graphql";
    let is_rate_limit = req.uri().path() == "/rate_limit";
    let Some(token) = token_of(req.headers()) else {
        return message(StatusCode::UNAUTHORIZED, "Requires authentication");
    };
    let scopes = state
        .options
        .read()
        .ok()
        .and_then(|o| o.token_scopes.get(&token).cloned())
        .and_then(|s| HeaderValue::from_str(&s).ok());
    let token = match state.budget_key(&token) {
        Ok(key) => key,
        Err(_) => return message(StatusCode::UNAUTHORIZED, "Bad credentials"),
    };
    req.extensions_mut().insert(Token(token.clone()));
    if !is_rate_limit {
        let mut l = lock(&state.ledger);
        if is_graphql {
            l.graphql_queries += 1;
        } else {
            l.rest_requests += 1;
        }
        if let Some((issued, wait)) = lock(&state.secondary_limits).get(&token) {
            let after = issued.elapsed();
            if after < *wait {
                l.requests_during_secondary_limit
                    .push(after.as_millis() as u64);
            }
        }
    }
    let fault = if is_rate_limit {
        None
    } else {
        next_fault(&state)
    };
    if let Some(f) = &fault {
        lock(&state.ledger).faults_injected += 1;
        match f {
            Fault::BadGateway => return message(StatusCode::BAD_GATEWAY, "Server Error"),
            Fault::SecondaryLimit { retry_after } => {
                let r = secondary_limit_response(*retry_after);
                lock(&state.secondary_limits).insert(
                    token.clone(),
                    (std::time::Instant::now(), Duration::from_secs(*retry_after)),
                );
                return r;
            }
            Fault::Slow { millis } => tokio::time::sleep(Duration::from_millis(*millis)).await,
            Fault::Exhausted { reset_in } => state.with_budget(is_graphql, &token, |b| {
                b.used = b.limit;
                b.reset_at = Utc::now() + ChronoDuration::seconds(*reset_in as i64);
            }),
            Fault::GraphqlRateLimit { reset_in, form } => {
                *lock(&state.rate_limit_form) = *form;
                state.with_budget(true, &token, |b| {
                    b.used = b.limit;
                    b.reset_at = Utc::now() + ChronoDuration::seconds(*reset_in as i64);
                });
            }
            Fault::PartialGraphql | Fault::ResourceLimit if !is_graphql => {
                return message(StatusCode::BAD_GATEWAY, "Server Error");
            }
            _ => {}
        }
    }
    if is_graphql {
        req.extensions_mut().insert(GraphqlFault(fault));
        return next.run(req).await;
    }
    // REST: one request from the token's core budget (`/rate_limit` is free), or from its
    // search budget for a search.
    let is_search = req.uri().path().starts_with("/search/");
    let (resource, resource_name) = if is_search {
        (Resource::Search, "search")
    } else {
        (Resource::Core, "core")
    };
    let budget = match state.charge_resource(resource, &token, u64::from(!is_rate_limit)) {
        Ok(b) => b,
        Err(spent) => {
            let mut r = message(
                StatusCode::FORBIDDEN,
                "API rate limit exceeded for user ID 1.",
            );
            rate_headers(r.headers_mut(), &spent, resource_name);
            return r;
        }
    };
    if is_search {
        if let Some(wait) = state.search_burst(&token) {
            return secondary_limit_response(wait);
        }
    }
    if is_rate_limit {
        let g = state.with_budget(true, &token, |b| b.clone());
        let s = state.with_resource(Resource::Search, &token, |b| b.clone());
        let body = serde_json::json!({
            "resources": {
                "core": {"limit": budget.limit, "remaining": budget.remaining(), "used": budget.used, "reset": budget.reset_at.timestamp()},
                "graphql": {"limit": g.limit, "remaining": g.remaining(), "used": g.used, "reset": g.reset_at.timestamp()},
                "search": {"limit": s.limit, "remaining": s.remaining(), "used": s.used, "reset": s.reset_at.timestamp()},
            },
            "rate": {"limit": budget.limit, "remaining": budget.remaining(), "used": budget.used, "reset": budget.reset_at.timestamp()},
        });
        let mut r = Json(body).into_response();
        rate_headers(r.headers_mut(), &budget, "core");
        if let Some(s) = scopes {
            r.headers_mut().insert("x-oauth-scopes", s);
        }
        return r;
    }
    let route = format!("GET {}", rest::route_name(req.uri().path()));
    state.count_route(route);
    let mut r = next.run(req).await;
    rate_headers(r.headers_mut(), &budget, resource_name);
    if let Some(s) = scopes {
        r.headers_mut().insert("x-oauth-scopes", s);
    }
    r.headers_mut().insert(
        "x-github-request-id",
        HeaderValue::from_str(&request_id()).unwrap_or(HeaderValue::from_static("SIM")),
    );
    r
}

/// The App's JWT from the request, checked; the App when it passes.
fn app_caller(state: &SimState, headers: &HeaderMap) -> Result<AppSpec, Box<Response>> {
    let app = state.options.read().ok().and_then(|o| o.app.clone());
    let Some(app) = app else {
        return Err(Box::new(message(StatusCode::NOT_FOUND, "Not Found")));
    };
    let Some(jwt) = token_of(headers) else {
        return Err(Box::new(message(
            StatusCode::UNAUTHORIZED,
            "A JSON web token could not be decoded",
        )));
    };
    if let Err(why) = verify_app_jwt(&app, &jwt) {
        lock(&state.ledger).rejected_auth += 1;
        return Err(Box::new(message(StatusCode::UNAUTHORIZED, &why)));
    }
    Ok(app)
}

async fn app_access_token(
    State(state): State<Arc<SimState>>,
    axum::extract::Path(id): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Response {
    state.count_route("POST /app/installations/{id}/access_tokens".into());
    let app = match app_caller(&state, &headers) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    if id != app.installation_id.to_string() {
        return message(StatusCode::NOT_FOUND, "Not Found");
    }
    let token: String = {
        let mut rng = rand::thread_rng();
        let tail: String = (0..36)
            .map(|_| {
                char::from(
                    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
                        [rng.gen_range(0..62)],
                )
            })
            .collect();
        format!("ghs_{tail}")
    };
    let expires = Utc::now() + ChronoDuration::seconds(app.token_ttl_secs as i64);
    lock(&state.installation_tokens).insert(token.clone(), expires);
    lock(&state.ledger).installation_tokens_minted += 1;
    (StatusCode::CREATED, Json(token_body(&token, expires))).into_response()
}

async fn app_org_installation(
    State(state): State<Arc<SimState>>,
    axum::extract::Path(org): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Response {
    state.count_route("GET /orgs/{org}/installation".into());
    let app = match app_caller(&state, &headers) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    if !org.eq_ignore_ascii_case(&state.snapshot().org.login) {
        return message(StatusCode::NOT_FOUND, "Not Found");
    }
    Json(serde_json::json!({
        "id": app.installation_id,
        "app_id": app.app_id,
        "account": { "login": org, "type": "Organization" },
        "target_type": "Organization",
    }))
    .into_response()
}

#[derive(Clone)]
struct GraphqlFault(Option<Fault>);

/// The budget key of the request's token (see [`SimState::budget_key`]).
#[derive(Clone)]
pub(crate) struct Token(pub(crate) String);

#[derive(Deserialize)]
struct GraphqlBody {
    query: String,
    #[serde(default)]
    variables: Option<serde_json::Value>,
    #[serde(default, rename = "operationName")]
    operation_name: Option<String>,
}

fn graphql_error(kind: &str, text: &str) -> serde_json::Value {
    serde_json::json!({ "errors": [ { "type": kind, "message": text } ] })
}

async fn graphql_handler(State(state): State<Arc<SimState>>, req: Request) -> Response {
    let fault = req
        .extensions()
        .get::<GraphqlFault>()
        .and_then(|f| f.0.clone());
    let token = req
        .extensions()
        .get::<Token>()
        .map(|t| t.0.clone())
        .unwrap_or_default();
    let bytes = match axum::body::to_bytes(req.into_body(), 1 << 20).await {
        Ok(b) => b,
        Err(_) => return message(StatusCode::PAYLOAD_TOO_LARGE, "Body too large"),
    };
    let body: GraphqlBody = match serde_json::from_slice(&bytes) {
        Ok(b) => b,
        Err(e) => {
            return message(
                StatusCode::BAD_REQUEST,
                &format!("Problems parsing JSON: {e}"),
            )
        }
    };
    let vars = match body.variables {
        Some(serde_json::Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    let doc = match async_graphql::parser::parse_query(&body.query) {
        Ok(d) => d,
        Err(e) => return Json(graphql_error("PARSE_ERROR", &e.to_string())).into_response(),
    };
    let operation = body.operation_name.clone();
    let op_label = operation.clone().or_else(|| {
        doc.operations
            .iter()
            .next()
            .and_then(|(n, _)| n.map(|n| n.to_string()))
    });
    state.count_route(format!(
        "POST /graphql {}",
        op_label.unwrap_or_else(|| "anonymous".into())
    ));
    let cost = match query_cost(&doc, operation.as_deref(), &vars) {
        Ok(c) => c,
        Err(e) => return Json(graphql_error(e.kind, &e.message)).into_response(),
    };
    if state.graphql_minute_exceeded(&token, cost.points) {
        return secondary_limit_response(60);
    }
    let budget = match state.charge(true, &token, cost.points) {
        Ok(b) => b,
        Err(spent) => {
            let form = *lock(&state.rate_limit_form);
            let mut r = Json(form.error()).into_response();
            rate_headers(r.headers_mut(), &spent, "graphql");
            return r;
        }
    };
    lock(&state.ledger).graphql_points += cost.points;
    let mut population = None;
    if cost.searches > 0 {
        if let Some(wait) = state.search_burst(&token) {
            let mut r = secondary_limit_response(wait);
            rate_headers(r.headers_mut(), &budget, "graphql");
            return r;
        }
        let (latency, timeout) = state
            .options
            .read()
            .map(|o| (o.search_latency_ms, o.graphql_timeout_ms))
            .unwrap_or((0, 10_000));
        // One latency per 100 search results asked for, at least one for any search.
        let pages = cost.search_nodes.div_ceil(100).max(1);
        let wait = latency.saturating_mul(pages);
        if wait > timeout {
            tokio::time::sleep(Duration::from_millis(timeout)).await;
            return message(StatusCode::BAD_GATEWAY, "Server Error");
        }
        if wait > 0 {
            tokio::time::sleep(Duration::from_millis(wait)).await;
        }
        if cost.repository_searches > 0 {
            population = Some(graphql::SearchPopulation(state.population().await));
        }
    }
    if fault == Some(Fault::ResourceLimit) {
        let mut r = Json(graphql_error(
            "RESOURCE_LIMITS_EXCEEDED",
            "Resource limits for this query exceeded.",
        ))
        .into_response();
        rate_headers(r.headers_mut(), &budget, "graphql");
        return r;
    }
    let info = RateLimitInfo {
        cost: cost.points,
        limit: budget.limit,
        remaining: budget.remaining(),
        used: budget.used,
        reset_at: budget.reset_at,
        node_count: cost.nodes,
    };
    let mut request = async_graphql::Request::new(body.query).variables(
        async_graphql::Variables::from_json(serde_json::Value::Object(vars)),
    );
    if let Some(op) = operation {
        request = request.operation_name(op);
    }
    let (cap, quirks) = state
        .options
        .read()
        .map(|o| {
            (
                o.cap_commit_total_count,
                graphql::Quirks {
                    poison_pull_requests: o.poison_pull_requests.clone(),
                    stuck_pagination: o.stuck_pagination.clone(),
                    vanished_nodes: o.vanished_nodes.clone(),
                },
            )
        })
        .unwrap_or_default();
    let (viewer_id, viewer_login) = viewer_of(&token);
    let mut request = request
        .data(state.snapshot())
        .data(graphql::GitData(state.git.clone()))
        .data(graphql::Viewer(viewer_id, viewer_login))
        .data(info)
        .data(graphql::CapCommitTotal(cap))
        .data(quirks);
    if let Some(p) = population {
        request = request.data(p);
    }
    let response = state.schema.execute(request).await;
    if response
        .errors
        .iter()
        .any(|e| e.message == graphql::POISON_MARKER)
    {
        return message(StatusCode::BAD_GATEWAY, "Server Error");
    }
    let mut json = serde_json::to_value(&response).unwrap_or_else(|_| serde_json::json!({}));
    github_error_shape(&mut json);
    if fault == Some(Fault::PartialGraphql) {
        // Partial data: the first field of `data` is nulled and an error says why.
        if let Some(data) = json.get_mut("data").and_then(|d| d.as_object_mut()) {
            if let Some(key) = data.keys().find(|k| *k != "rateLimit").cloned() {
                data.insert(key, serde_json::Value::Null);
            }
        }
        let errors = json
            .as_object_mut()
            .map(|o| o.entry("errors").or_insert_with(|| serde_json::json!([])));
        if let Some(serde_json::Value::Array(list)) = errors {
            list.push(serde_json::json!({
                "message": "Something went wrong while executing your query. This may be the result of a timeout, or it could be a GitHub bug. Please include `SIM:0000` when reporting this issue."
            }));
        }
    }
    let text = json.to_string();
    {
        let mut ledger = lock(&state.ledger);
        ledger.largest_graphql_response_bytes =
            ledger.largest_graphql_response_bytes.max(text.len() as u64);
    }
    let mut r = (StatusCode::OK, Body::from(text)).into_response();
    r.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    rate_headers(r.headers_mut(), &budget, "graphql");
    r
}

/// GitHub puts an error's `type` beside its message, not under `extensions`.
fn github_error_shape(json: &mut serde_json::Value) {
    if let Some(serde_json::Value::Array(errors)) = json.get_mut("errors") {
        for e in errors {
            let kind = e.get("extensions").and_then(|x| x.get("type")).cloned();
            if let (Some(kind), Some(obj)) = (kind, e.as_object_mut()) {
                obj.insert("type".into(), kind);
                obj.remove("extensions");
            }
        }
    }
}

/// The user behind a budget key (see [`SimState::budget_key`]) as `(databaseId, login)`:
/// `user:LOGIN` is that user (its id a stable hash of the login); an installation is the
/// App's bot, `ghstats-sim[bot]`; any other token a user of its own, `sim-user-XXXXXXXX`
/// (a stable hash of the token, which is never shown).
pub fn viewer_of(key: &str) -> (u64, String) {
    use crate::git::stable_hash;
    if let Some(login) = key.strip_prefix("user:") {
        return (
            200_000_000 + stable_hash(login.to_ascii_lowercase().as_bytes()) % 100_000_000,
            login.to_string(),
        );
    }
    if key.starts_with("installation:") {
        return (41_898_282, "ghstats-sim[bot]".to_string());
    }
    let h = stable_hash(key.as_bytes());
    (
        300_000_000 + h % 100_000_000,
        format!("sim-user-{:08x}", h as u32),
    )
}

/// Starts a simulator for the organization in `spec` and returns its handle; for tests.
pub async fn start_for_tests(spec: &OrgSpec) -> anyhow::Result<Simulator> {
    Simulator::start(spec, SimOptions::default(), 0).await
}
