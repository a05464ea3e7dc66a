//! `ghstats check`: whether a configuration works, before anything is collected. It checks the
//! settings, reaches GitHub with each credential (rate limit left, a classic token's scopes),
//! lists the organization's repositories, writes, reads back and deletes a probe object in
//! storage, opens the warehouse without changing it, and estimates what a backfill of N days
//! would cost from each repository's count of pull requests updated in the window. It takes
//! no lock and writes no chunk or checkpoint.

use super::collect::{backfill_window, plan_repositories};
use super::report::thousands;
use super::runner::Runner;
use crate::config::{RepoScope, StorageUrl};
use crate::github::client::read_ca_bundle;
use crate::github::pulls::list_repositories;
use crate::github::{ApiCost, ClientOptions, Credential, GithubClient, GithubError, PageSizer};
use crate::warehouse::{self, WarehouseUrl};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt::Write;
use std::time::{Duration, Instant};

/// The query counting one repository's pull requests updated since a date; [`count_query`]
/// repeats its selection for many repositories at once.
pub const PULL_REQUEST_COUNTS: &str = include_str!("../../graphql/pull_request_counts.graphql");

/// Repositories counted per query: each count is one connection request, so 50 cost 1 point.
pub const COUNT_BATCH: usize = 50;

/// GraphQL points a backfill spends per 1,000 pull requests beyond its pages and their
/// review-comment queries: follow-ups of pull requests with more than 100 commits, reviews,
/// comments or labels, measured on the simulator's mix (`scripts/bench.sh`: 65 budget units
/// per 1,000 pull requests, of which about 27 are pages of 37 and 27 review-comment queries).
pub const FOLLOW_UP_POINTS_PER_1000: u64 = 11;

/// How one check came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    Ok,
    /// Works, with something to know (a missing scope, tables not created yet, a budget that
    /// will not hold the backfill in one hour).
    Warning,
    Failed,
    /// Not run: what it needs failed or is not configured.
    Skipped,
}

/// One check: its name, how it came out, and what it found or why it failed.
#[derive(Clone, Debug, Serialize)]
pub struct CheckItem {
    pub name: String,
    pub status: CheckStatus,
    pub detail: String,
}

/// One repository's pull requests updated in the window, and the pages the walk would read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RepositoryCount {
    pub name: String,
    pub pull_requests: u64,
    pub pages: u64,
}

/// What a backfill of `days` days would cost, in GraphQL points, from the pull requests each
/// repository had updated since `since`. The pages are what the walk asks for (page sizes
/// grow from `PAGE_SIZE` to `PAGE_SIZE_MAX`, and the walk reads until the first pull request
/// older than the window: at most one page too many per repository); the rest is estimated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BackfillEstimate {
    pub days: u32,
    pub since: DateTime<Utc>,
    /// Per repository in scope, most pull requests first.
    pub repositories: Vec<RepositoryCount>,
    /// Pull requests updated in the window, over every repository in scope.
    pub pull_requests: u64,
    /// Pages of pull requests the walk reads.
    pub pages: u64,
    /// What those pages cost (1 point each up to 37 pull requests a page).
    pub page_points: u64,
    /// One review-comment query (1 point) per page that holds pull requests of the window.
    pub review_comment_points: u64,
    /// Follow-ups of oversized pull requests: [`FOLLOW_UP_POINTS_PER_1000`] per 1,000.
    pub follow_up_points: u64,
    /// Listing the organization's repositories: 1 point per 100.
    pub listing_points: u64,
    /// The sum: the estimate.
    pub graphql_points: u64,
}

/// The page sizes the walk asks for to see `prs` pull requests of the window and the first one
/// older than it (or the end of the list): as [`PageSizer`] grows them from `page_size` to
/// `page_size_max`. At least one page.
pub fn walk_pages(prs: u64, page_size: u32, page_size_max: u32) -> Vec<u32> {
    let mut sizer = PageSizer::new(page_size, page_size_max.max(page_size));
    let mut sizes = Vec::new();
    let mut seen = 0u64;
    loop {
        sizes.push(sizer.current);
        seen += u64::from(sizer.current);
        if seen > prs {
            return sizes;
        }
        sizer.success();
    }
}

/// What a page of `size` pull requests costs by GitHub's formula: 1 + 4 × `size` connection
/// requests (graphql/pull_requests.graphql), divided by 100 and rounded, at least 1.
pub fn page_points(size: u32) -> u64 {
    let requests = 1 + 4 * u64::from(size);
    ((requests + 50) / 100).max(1)
}

/// The estimate for these per-repository counts (`(name, pull requests)`), with `listed`
/// repositories in the organization's listing.
pub fn estimate(
    days: u32,
    since: DateTime<Utc>,
    counts: &[(String, u64)],
    listed: usize,
    page_size: u32,
    page_size_max: u32,
) -> BackfillEstimate {
    let mut repositories = Vec::new();
    let (mut pages, mut page_pts, mut review_pts) = (0u64, 0u64, 0u64);
    for (name, prs) in counts {
        let sizes = walk_pages(*prs, page_size, page_size_max);
        pages += sizes.len() as u64;
        page_pts += sizes.iter().map(|s| page_points(*s)).sum::<u64>();
        // The pages that hold the window's pull requests; the last one may hold none.
        let mut held = 0u64;
        for s in &sizes {
            if held >= *prs {
                break;
            }
            held += u64::from(*s);
            review_pts += 1;
        }
        repositories.push(RepositoryCount {
            name: name.clone(),
            pull_requests: *prs,
            pages: sizes.len() as u64,
        });
    }
    repositories.sort_by(|a, b| {
        b.pull_requests
            .cmp(&a.pull_requests)
            .then(a.name.cmp(&b.name))
    });
    let pull_requests: u64 = counts.iter().map(|(_, n)| n).sum();
    let follow_up_points = (pull_requests * FOLLOW_UP_POINTS_PER_1000).div_ceil(1000);
    let listing_points = (listed as u64).div_ceil(100).max(1);
    BackfillEstimate {
        days,
        since,
        repositories,
        pull_requests,
        pages,
        page_points: page_pts,
        review_comment_points: review_pts,
        follow_up_points,
        listing_points,
        graphql_points: page_pts + review_pts + follow_up_points + listing_points,
    }
}

/// The counting query for `n` repositories: [`PULL_REQUEST_COUNTS`]'s selection repeated with
/// aliases `r0..r{n-1}` and variables `$q0..$q{n-1}`.
pub fn count_query(n: usize) -> String {
    let vars: Vec<String> = (0..n).map(|i| format!("$q{i}: String!")).collect();
    let mut q = format!(
        "query PullRequestCounts({}) {{\n  rateLimit {{\n    cost\n    remaining\n    resetAt\n    limit\n  }}\n",
        vars.join(", ")
    );
    for i in 0..n {
        let _ = write!(
            q,
            "  r{i}: search(query: $q{i}, type: ISSUE) {{\n    issueCount\n  }}\n"
        );
    }
    q.push_str("}\n");
    q
}

/// The search for one repository's pull requests updated since `since`.
pub fn count_search(org: &str, repo: &str, since: DateTime<Utc>) -> String {
    format!(
        "repo:{org}/{repo} is:pr updated:>={}",
        since.format("%Y-%m-%dT%H:%M:%S+00:00")
    )
}

/// Everything `ghstats check` found. `ok` is false when any check failed.
#[derive(Clone, Debug, Serialize)]
pub struct CheckReport {
    pub ok: bool,
    pub checks: Vec<CheckItem>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimate: Option<BackfillEstimate>,
    /// What the check itself spent of GitHub's budgets.
    pub api_cost: ApiCost,
}

#[derive(Deserialize)]
struct RateLimits {
    resources: RateResources,
}

#[derive(Deserialize)]
struct RateResources {
    core: Option<RateResource>,
    graphql: Option<RateResource>,
}

#[derive(Deserialize)]
struct RateResource {
    limit: u64,
    remaining: u64,
    reset: i64,
}

fn item(name: impl Into<String>, status: CheckStatus, detail: impl Into<String>) -> CheckItem {
    CheckItem {
        name: name.into(),
        status,
        detail: detail.into(),
    }
}

/// A GitHub failure in words a person can act on.
fn github_failure(e: &GithubError) -> String {
    match e {
        GithubError::Fatal {
            status: 401,
            message,
            ..
        } => format!(
            "GitHub does not accept the credentials (HTTP 401: {message}); check GITHUB_TOKEN / GITHUB_TOKENS or the GitHub App's settings"
        ),
        GithubError::Fatal {
            status: 403,
            message,
            ..
        } => format!(
            "GitHub refuses access (HTTP 403: {message}); the token lacks a permission, or the organization's SSO has not authorized it"
        ),
        _ => e.to_string(),
    }
}

/// What a classic token's `X-OAuth-Scopes` says; fine-grained and installation tokens send
/// none. Returns the words and whether something is missing.
fn scopes_note(header: Option<&str>) -> (String, bool) {
    match header {
        None => (
            "no X-OAuth-Scopes header: a fine-grained or installation token, whose permissions GitHub does not list (the organization check shows what it can read)".into(),
            false,
        ),
        Some(s) => {
            let scopes: Vec<&str> = s.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
            if scopes.contains(&"repo") {
                (format!("classic token, scopes: {}", scopes.join(", ")), false)
            } else if scopes.is_empty() {
                ("classic token with no scopes: only public repositories are readable".into(), true)
            } else {
                (
                    format!(
                        "classic token, scopes: {}; without `repo` only public repositories are readable",
                        scopes.join(", ")
                    ),
                    true,
                )
            }
        }
    }
}

fn client_options(ca_certificates: Vec<reqwest::Certificate>) -> ClientOptions {
    ClientOptions {
        max_attempts: 3,
        base_backoff: Duration::from_millis(500),
        max_backoff: Duration::from_secs(4),
        request_timeout: Duration::from_secs(30),
        deadline: Some(Instant::now() + Duration::from_secs(120)),
        ca_certificates,
        ..ClientOptions::default()
    }
}

/// The warehouse, opened without creating anything in it: its row counts, or for a SQLite
/// file that does not exist yet, whether its directory takes a new file.
async fn check_warehouse(url: &WarehouseUrl) -> CheckItem {
    const NAME: &str = "warehouse";
    if let WarehouseUrl::Sqlite(path) = url {
        if !path.exists() {
            let mut dir = path.parent().map(|p| p.to_path_buf()).unwrap_or_default();
            if dir.as_os_str().is_empty() {
                dir = ".".into();
            }
            while !dir.exists() {
                match dir.parent() {
                    Some(p) if !p.as_os_str().is_empty() => dir = p.to_path_buf(),
                    _ => {
                        dir = ".".into();
                        break;
                    }
                }
            }
            if !dir.is_dir() {
                return item(
                    NAME,
                    CheckStatus::Failed,
                    format!(
                        "{url} cannot be created: {} is not a directory",
                        dir.display()
                    ),
                );
            }
            return match tempfile::Builder::new()
                .prefix(".ghstats-check")
                .tempfile_in(&dir)
            {
                Ok(_) => item(
                    NAME,
                    CheckStatus::Ok,
                    format!(
                        "{url} does not exist yet; the first job (or `ghstats init`) creates it"
                    ),
                ),
                Err(e) => item(
                    NAME,
                    CheckStatus::Failed,
                    format!("{url} cannot be created in {}: {e}", dir.display()),
                ),
            };
        }
    }
    let wh = match warehouse::open(url).await {
        Ok(wh) => wh,
        Err(e) => return item(NAME, CheckStatus::Failed, format!("{url}: {e}")),
    };
    match wh.row_counts().await {
        Ok(counts) => item(
            NAME,
            CheckStatus::Ok,
            format!(
                "{url} ({}): {} tables, {} rows",
                wh.backend(),
                counts.len(),
                thousands(counts.values().sum())
            ),
        ),
        Err(e) => item(
            NAME,
            CheckStatus::Warning,
            format!("{url} answers, but its tables cannot be read ({e}); `ghstats init` or the first job creates them"),
        ),
    }
}

/// Writes, reads back and deletes a probe object under `{org}/_check/`.
async fn check_storage(runner: &Runner, org: Option<&crate::names::OrgName>) -> CheckItem {
    use object_store::{ObjectStoreExt, PutPayload};
    const NAME: &str = "storage";
    let url = &runner.config.storage_url;
    if !runner.config.persist_to_gcs {
        return item(
            NAME,
            CheckStatus::Skipped,
            "PERSIST_TO_GCS=false: chunks live in a temporary directory until they are loaded",
        );
    }
    let Some(org) = org else {
        return item(
            NAME,
            CheckStatus::Skipped,
            "needs GITHUB_ORG: objects live under {org}/",
        );
    };
    let lake = match runner.lake() {
        Ok(l) => l,
        Err(e) => return item(NAME, CheckStatus::Failed, format!("{url}: {e:#}")),
    };
    let name = format!("probe-{}.txt", crate::lake::new_collection_id(Utc::now()));
    let path = lake.org_dir(org).join("_check").join(name.as_str());
    let body = format!("ghstats check {name}\n");
    let shown = match url {
        StorageUrl::Local(dir) => format!("{}/{path}", dir.display()),
        other => format!("{other} ({path})"),
    };
    let store = lake.store();
    if let Err(e) = store
        .put(&path, PutPayload::from(body.clone().into_bytes()))
        .await
    {
        return item(
            NAME,
            CheckStatus::Failed,
            format!("cannot write to {url}: {e}"),
        );
    }
    let read = match store.get(&path).await {
        Ok(r) => r.bytes().await.map(|b| b.to_vec()),
        Err(e) => Err(e),
    };
    let deleted = store.delete(&path).await;
    match (read, deleted) {
        (Ok(bytes), Ok(())) if bytes == body.as_bytes() => item(
            NAME,
            CheckStatus::Ok,
            format!("wrote, read back and deleted {shown}"),
        ),
        (Ok(_), Ok(())) => item(
            NAME,
            CheckStatus::Failed,
            format!("{shown} read back different bytes than were written"),
        ),
        (Err(e), _) => item(
            NAME,
            CheckStatus::Failed,
            format!("wrote {shown} but cannot read it back: {e}"),
        ),
        (Ok(_), Err(e)) => item(
            NAME,
            CheckStatus::Failed,
            format!("wrote {shown} but cannot delete it (jobs need to, for the lock): {e}"),
        ),
    }
}

/// Runs every check; a backfill of `days` days over `scope` is estimated.
pub async fn check(runner: &Runner, days: u32, scope: &RepoScope) -> CheckReport {
    let config = &runner.config;
    let mut checks = Vec::new();
    let mut cost = ApiCost::default();

    // The settings: what is missing or inconsistent, before anything is reached.
    let org = config.org.clone();
    let mut problems = Vec::new();
    if org.is_none() {
        problems.push("no organization: set GITHUB_ORG or pass --org".to_string());
    }
    let app = runner.github_app().await;
    let tokens = config.all_tokens();
    let several = tokens.len() > 1;
    let mut credentials: Vec<(String, Credential)> = Vec::new();
    match app {
        Ok(Some(a)) => credentials.push(("GitHub App".into(), Credential::App(a))),
        Ok(None) => {}
        Err(e) => problems.push(e.to_string()),
    }
    for (i, t) in tokens.into_iter().enumerate() {
        let name = if !several {
            "GitHub token".to_string()
        } else {
            format!("GitHub token {}", i + 1)
        };
        credentials.push((name, Credential::Token(t)));
    }
    if credentials.is_empty() && problems.iter().all(|p| !p.contains("GITHUB_APP")) {
        problems.push("no GitHub credentials: set GITHUB_TOKEN (or GITHUB_TOKENS=a,b,c), or GITHUB_APP_ID with GITHUB_APP_PRIVATE_KEY(_FILE)".into());
    }
    let ca = match &config.ca_bundle {
        Some(path) => match read_ca_bundle(path) {
            Ok(c) => c,
            Err(e) => {
                problems.push(e);
                Vec::new()
            }
        },
        None => Vec::new(),
    };
    let window = backfill_window(Utc::now(), Some(days), false);
    if let Err(e) = &window {
        problems.push(format!("--days {days}: {e}"));
    }
    let configured = problems.is_empty();
    checks.push(if configured {
        item(
            "configuration",
            CheckStatus::Ok,
            format!(
                "organization {}, {}, GitHub at {}, storage {}, warehouse {}",
                org.as_ref().map(|o| o.as_str()).unwrap_or("?"),
                credentials
                    .iter()
                    .map(|(name, _)| name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                crate::github::client::redacted(&config.api_url),
                config.storage_url,
                config.warehouse_url
            ),
        )
    } else {
        item("configuration", CheckStatus::Failed, problems.join("; "))
    });

    // GitHub, credential by credential: reachable, the rate limit left, the scopes.
    let mut graphql_left: Option<(u64, u64)> = None;
    let mut reachable = false;
    for (name, credential) in &credentials {
        let client = match GithubClient::with_credentials(
            config.api_url.clone(),
            vec![credential.clone()],
            client_options(ca.clone()),
        ) {
            Ok(c) => c,
            Err(e) => {
                checks.push(item(name.clone(), CheckStatus::Failed, e.to_string()));
                continue;
            }
        };
        let got = client
            .rest_get_with_headers::<RateLimits>("/rate_limit")
            .await;
        cost = cost.plus(&client.cost());
        match got {
            Ok((limits, _, headers)) => {
                reachable = true;
                let show = |r: &Option<RateResource>, unit: &str| match r {
                    Some(r) => format!(
                        "{} of {} {unit} left (reset {})",
                        thousands(r.remaining),
                        thousands(r.limit),
                        DateTime::from_timestamp(r.reset, 0)
                            .map(|t| t.format("%H:%M UTC").to_string())
                            .unwrap_or_else(|| "?".into())
                    ),
                    None => format!("{unit}: not reported"),
                };
                if let Some(g) = &limits.resources.graphql {
                    let (left, limit) = graphql_left.unwrap_or((0, 0));
                    graphql_left = Some((left + g.remaining, limit + g.limit));
                }
                let scopes = headers.get("x-oauth-scopes").and_then(|v| v.to_str().ok());
                let (note, missing) = match credential {
                    Credential::App(_) => (
                        "an installation token: its permissions are the App's".to_string(),
                        false,
                    ),
                    Credential::Token(_) => scopes_note(scopes),
                };
                let spent = limits
                    .resources
                    .graphql
                    .as_ref()
                    .is_some_and(|g| g.remaining == 0);
                checks.push(item(
                    name.clone(),
                    if missing || spent {
                        CheckStatus::Warning
                    } else {
                        CheckStatus::Ok
                    },
                    format!(
                        "GraphQL {}; REST {}; {note}",
                        show(&limits.resources.graphql, "points"),
                        show(&limits.resources.core, "requests")
                    ),
                ));
            }
            Err(e) => checks.push(item(name.clone(), CheckStatus::Failed, github_failure(&e))),
        }
    }
    if credentials.is_empty() {
        checks.push(item(
            "GitHub",
            CheckStatus::Skipped,
            "no credentials configured",
        ));
    }

    // The organization and the estimate, with every credential that answered.
    let mut estimate_out = None;
    match (&org, reachable, &window) {
        (Some(org), true, Ok(window)) => {
            let client = GithubClient::with_credentials(
                config.api_url.clone(),
                credentials.iter().map(|(_, c)| c.clone()).collect(),
                client_options(ca.clone()),
            );
            match client {
                Err(e) => checks.push(item("organization", CheckStatus::Failed, e.to_string())),
                Ok(client) => {
                    let (org_item, est_item, est) = check_organization(
                        runner,
                        &client,
                        org,
                        scope,
                        days,
                        window.since,
                        graphql_left,
                        credentials.len(),
                    )
                    .await;
                    cost = cost.plus(&client.cost());
                    checks.push(org_item);
                    checks.push(est_item);
                    estimate_out = est;
                }
            }
        }
        _ => {
            let why = if org.is_none() {
                "needs GITHUB_ORG"
            } else if window.is_err() {
                "needs a valid --days"
            } else {
                "needs GitHub to answer"
            };
            checks.push(item("organization", CheckStatus::Skipped, why));
            checks.push(item("backfill estimate", CheckStatus::Skipped, why));
        }
    }

    checks.push(check_storage(runner, org.as_ref()).await);
    checks.push(check_warehouse(&config.warehouse_url).await);

    CheckReport {
        ok: checks.iter().all(|c| c.status != CheckStatus::Failed),
        checks,
        estimate: estimate_out,
        api_cost: cost,
    }
}

#[expect(
    clippy::too_many_arguments,
    reason = "the check's context, from `check`"
)]
async fn check_organization(
    runner: &Runner,
    client: &GithubClient,
    org: &crate::names::OrgName,
    scope: &RepoScope,
    days: u32,
    since: DateTime<Utc>,
    graphql_left: Option<(u64, u64)>,
    credentials: usize,
) -> (CheckItem, CheckItem, Option<BackfillEstimate>) {
    let skipped = |why: &str| item("backfill estimate", CheckStatus::Skipped, why.to_string());
    let listed = match list_repositories(client, org.as_str()).await {
        Ok(l) => l,
        Err(GithubError::NotFound { .. }) => {
            return (
                item(
                    "organization",
                    CheckStatus::Failed,
                    format!(
                        "organization {org} does not exist or is not visible to the credentials"
                    ),
                ),
                skipped("needs the organization"),
                None,
            )
        }
        Err(e) => {
            return (
                item("organization", CheckStatus::Failed, github_failure(&e)),
                skipped("needs the organization"),
                None,
            )
        }
    };
    let total = listed.len();
    let private = listed.iter().filter(|r| r.is_private).count();
    let planned = match plan_repositories(listed, scope) {
        Ok(p) => p,
        Err(e) => {
            return (
                item("organization", CheckStatus::Failed, format!("{e:#}")),
                skipped("needs the repositories"),
                None,
            )
        }
    };
    let org_item = item(
        "organization",
        if total == 0 {
            CheckStatus::Warning
        } else {
            CheckStatus::Ok
        },
        if total == 0 {
            format!("{org}: no repositories visible; the token may lack access to them")
        } else {
            format!(
                "{org}: {total} repositories visible ({private} private), {} in scope{}",
                planned.len(),
                if scope.repos.is_empty() && !(scope.include_archived && scope.include_forks) {
                    " (archived repositories and forks are left out unless --include-archived / --include-forks)"
                } else {
                    ""
                }
            )
        },
    );
    let mut counts: Vec<(String, u64)> = Vec::new();
    for batch in planned.chunks(COUNT_BATCH) {
        let query = count_query(batch.len());
        let mut vars = serde_json::Map::new();
        for (i, r) in batch.iter().enumerate() {
            vars.insert(
                format!("q{i}"),
                serde_json::Value::String(count_search(org.as_str(), &r.name, since)),
            );
        }
        let data: serde_json::Value = match client
            .graphql(&query, serde_json::Value::Object(vars), false)
            .await
        {
            Ok(d) => d,
            Err(e) => {
                return (
                    org_item,
                    item(
                        "backfill estimate",
                        CheckStatus::Failed,
                        format!("counting pull requests: {}", github_failure(&e)),
                    ),
                    None,
                )
            }
        };
        for (i, r) in batch.iter().enumerate() {
            let n = data
                .get(format!("r{i}"))
                .and_then(|s| s.get("issueCount"))
                .and_then(|n| n.as_u64());
            match n {
                Some(n) => counts.push((r.name.clone(), n)),
                None => {
                    return (
                        org_item,
                        item(
                            "backfill estimate",
                            CheckStatus::Failed,
                            format!("GitHub's search gave no count for {}", r.name),
                        ),
                        None,
                    )
                }
            }
        }
    }
    let config = &runner.config;
    let est = estimate(
        days,
        since,
        &counts,
        total,
        config.page_size,
        config.page_size_max,
    );
    let largest: Vec<String> = est
        .repositories
        .iter()
        .take(3)
        .filter(|r| r.pull_requests > 0)
        .map(|r| format!("{} {}", r.name, thousands(r.pull_requests)))
        .collect();
    let mut detail = format!(
        "a backfill of {days} days (since {}): {} pull requests in {} repositories{}; about {} GraphQL points ({} for {} pages of pull requests, {} for their review comments, ~{} for oversized pull requests, {} for the listing)",
        since.format("%Y-%m-%d %H:%M UTC"),
        thousands(est.pull_requests),
        est.repositories.len(),
        if largest.is_empty() {
            String::new()
        } else {
            format!(" (most: {})", largest.join(", "))
        },
        thousands(est.graphql_points),
        thousands(est.page_points),
        thousands(est.pages),
        thousands(est.review_comment_points),
        thousands(est.follow_up_points),
        est.listing_points,
    );
    let mut status = CheckStatus::Ok;
    if let Some((left, limit)) = graphql_left {
        if est.graphql_points > left {
            status = CheckStatus::Warning;
            let hours = est.graphql_points.div_ceil(limit.max(1));
            let _ = write!(
                detail,
                "; more than the {} points left now: the run waits for each hourly reset, about {hours} hours of budget with {credentials} credential{} (RUN_BUDGET ends a run as partial; `resume` or the next `collect` continues it)",
                thousands(left),
                if credentials == 1 { "" } else { "s" }
            );
        } else {
            let _ = write!(
                detail,
                "; {}% of the {} points left",
                (est.graphql_points * 100).div_ceil(left.max(1)),
                thousands(left)
            );
        }
    }
    (
        org_item,
        item("backfill estimate", status, detail),
        Some(est),
    )
}

/// The report as a person reads it: one line per check, then what the check spent.
pub fn render(r: &CheckReport) -> String {
    let mut out = String::new();
    let width = r.checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
    for c in &r.checks {
        let status = match c.status {
            CheckStatus::Ok => "ok",
            CheckStatus::Warning => "warning",
            CheckStatus::Failed => "FAILED",
            CheckStatus::Skipped => "skipped",
        };
        let _ = writeln!(out, "{status:<8} {:<width$}  {}", c.name, c.detail);
    }
    let failed = r
        .checks
        .iter()
        .filter(|c| c.status == CheckStatus::Failed)
        .count();
    let _ = writeln!(
        out,
        "\nthis check spent {} GraphQL points (and GET /rate_limit, which is free); nothing was collected",
        r.api_cost.graphql_points
    );
    if failed == 0 {
        out.push_str("every check passed\n");
    } else {
        let _ = writeln!(out, "{failed} check(s) failed");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_counting_query_for_one_repository_is_the_checked_file() {
        let file: String = PULL_REQUEST_COUNTS
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(count_query(1), file);
        let three = count_query(3);
        assert!(three
            .starts_with("query PullRequestCounts($q0: String!, $q1: String!, $q2: String!) {"));
        assert!(three.contains("  r2: search(query: $q2, type: ISSUE) {\n    issueCount\n  }\n"));
    }

    #[test]
    fn the_walk_reads_pages_growing_to_the_maximum_until_one_past_the_window() {
        assert_eq!(walk_pages(0, 25, 37), [25]);
        assert_eq!(walk_pages(24, 25, 37), [25]);
        assert_eq!(walk_pages(25, 25, 37), [25, 31]);
        assert_eq!(walk_pages(100, 25, 37), [25, 31, 37, 37]);
        assert_eq!(page_points(37), 1);
        assert_eq!(page_points(50), 2);
        assert_eq!(page_points(1), 1);
    }

    /// The simulator's 180-day demo organization (`scripts/demo.sh`): 1,500 pull requests in
    /// six repositories cost 112 points to backfill (46 pages, 48 review-comment queries, 17
    /// follow-ups, 1 listing); the estimate says 111.
    #[test]
    fn the_estimate_adds_pages_review_comments_follow_ups_and_the_listing() {
        let counts: Vec<(String, u64)> = [524, 315, 225, 174, 142, 120]
            .iter()
            .enumerate()
            .map(|(i, n)| (format!("repo-{i:03}"), *n))
            .collect();
        let e = estimate(180, Utc::now(), &counts, 8, 25, 37);
        assert_eq!(e.pull_requests, 1500);
        assert_eq!(
            (
                e.pages,
                e.page_points,
                e.review_comment_points,
                e.follow_up_points,
                e.listing_points
            ),
            (47, 47, 46, 17, 1)
        );
        assert_eq!(e.graphql_points, 111);
        assert_eq!(e.repositories[0].name, "repo-000");
        let none = estimate(7, Utc::now(), &[("quiet".into(), 0)], 1, 25, 37);
        assert_eq!(
            (none.pages, none.review_comment_points, none.graphql_points),
            (1, 0, 2)
        );
    }

    #[test]
    fn scopes_say_what_a_token_can_read() {
        assert!(!scopes_note(Some("repo, read:org")).1);
        assert!(scopes_note(Some("read:org")).1);
        assert!(scopes_note(Some("")).1);
        let (fine, missing) = scopes_note(None);
        assert!(fine.contains("fine-grained") && !missing);
    }

    #[test]
    fn the_report_is_one_line_per_check() {
        let r = CheckReport {
            ok: false,
            checks: vec![
                item("configuration", CheckStatus::Ok, "organization acme"),
                item("storage", CheckStatus::Failed, "cannot write"),
            ],
            estimate: None,
            api_cost: ApiCost::default(),
        };
        let text = render(&r);
        assert!(
            text.starts_with(
                "ok       configuration  organization acme\nFAILED   storage        cannot write\n"
            ),
            "{text}"
        );
        assert!(text.ends_with("1 check(s) failed\n"), "{text}");
    }
}
