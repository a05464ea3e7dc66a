//! GitHub's REST list endpoints over the simulated organization, with `per_page` caps,
//! `since`/`sort`/`direction`, and Link headers: enough for a REST-based collector to read the
//! same organization the GraphQL API serves.

use crate::model::{
    node_id, Actor, Commit, IssueComment, PullRequest, Repository, ReviewComment, World,
};
use crate::server::SimState;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

pub(crate) fn routes() -> Router<Arc<SimState>> {
    Router::new()
        .route("/rate_limit", get(|| async { StatusCode::OK }))
        .route("/orgs/{org}/repos", get(org_repos))
        .route("/user", get(authenticated_user))
        .route("/repos/{owner}/{repo}", get(repo))
        .route("/repos/{owner}/{repo}/pulls", get(pulls))
        .route(
            "/repos/{owner}/{repo}/pulls/comments",
            get(repo_review_comments),
        )
        .route(
            "/repos/{owner}/{repo}/issues/comments",
            get(repo_issue_comments),
        )
        .route("/repos/{owner}/{repo}/pulls/{number}", get(pull))
        .route(
            "/repos/{owner}/{repo}/pulls/{number}/commits",
            get(pull_commits),
        )
        .route(
            "/repos/{owner}/{repo}/pulls/{number}/reviews",
            get(pull_reviews),
        )
        .route(
            "/repos/{owner}/{repo}/pulls/{number}/comments",
            get(pull_review_comments),
        )
        .route(
            "/repos/{owner}/{repo}/issues/{number}/comments",
            get(issue_comments),
        )
        .route("/repos/{owner}/{repo}/compare/{basehead}", get(compare))
        .route("/search/repositories", get(search_repositories))
}

#[derive(Deserialize, Default)]
pub(crate) struct SearchParams {
    q: Option<String>,
    per_page: Option<String>,
    page: Option<String>,
    sort: Option<String>,
    order: Option<String>,
}

/// GitHub's REST shape of a repository search item ("Search repositories", REST docs).
fn public_repo_json(r: &crate::population::PublicRepo) -> Value {
    json!({
        "id": r.database_id, "node_id": r.node_id, "name": r.name,
        "full_name": r.name_with_owner, "private": false,
        "owner": {"login": r.owner_login, "id": r.owner_id, "node_id": node_id("U", r.owner_id), "type": "User", "site_admin": false},
        "html_url": format!("https://github.com/{}", r.name_with_owner),
        "description": null, "fork": r.is_fork,
        "url": format!("https://api.github.com/repos/{}", r.name_with_owner),
        "created_at": ts(r.created_at), "updated_at": ts(r.pushed_at), "pushed_at": ts(r.pushed_at),
        "stargazers_count": r.stargazer_count, "watchers_count": r.stargazer_count,
        "forks_count": r.fork_count, "forks": r.fork_count, "watchers": r.stargazer_count,
        "language": r.primary_language, "archived": r.is_archived, "disabled": false,
        "open_issues_count": 0, "open_issues": 0, "default_branch": "main",
        "visibility": "public", "score": 1.0,
    })
}

/// `GET /search/repositories?q=&sort=&order=&per_page=&page=` over the public population:
/// `{total_count, incomplete_results, items}` with `total_count` of the whole match, 100
/// results a page at most, and 422 past the first 1,000 results (`page * per_page > 1000`),
/// for a missing `q`, or for a qualifier the simulator does not know. `sort` is `stars`,
/// `forks` or `updated` (`order` `desc` by default); the gate charges the token's search
/// budget (30 a minute) instead of its core one.
async fn search_repositories(
    State(state): State<Arc<SimState>>,
    uri: Uri,
    Query(params): Query<SearchParams>,
) -> Response {
    let Some(text) = params.q.as_deref().filter(|q| !q.trim().is_empty()) else {
        return Invalid("Validation Failed: q is missing").into_response();
    };
    let mut query = match crate::search::parse_repository_search(text) {
        Ok(q) => q,
        Err(why) => {
            return (StatusCode::UNPROCESSABLE_ENTITY, Json(json!({"message": "Validation Failed", "errors": [{"message": why, "resource": "Search", "field": "q", "code": "invalid"}], "documentation_url": "https://docs.github.com/rest/search/search#search-repositories", "status": "422"}))).into_response()
        }
    };
    let desc = match params.order.as_deref() {
        None | Some("desc") => true,
        Some("asc") => false,
        Some(_) => return Invalid("Invalid order: asc or desc").into_response(),
    };
    query.sort = match params.sort.as_deref() {
        None => query.sort,
        Some("stars") => crate::search::RepoSort::Stars { desc },
        Some("forks") => crate::search::RepoSort::Forks { desc },
        Some("updated") => crate::search::RepoSort::Updated { desc },
        Some(_) => return Invalid("Invalid sort: stars, forks or updated").into_response(),
    };
    let per_page = match params.per_page.as_deref().map(str::parse::<usize>) {
        None => 30,
        Some(Ok(n)) => n.clamp(1, 100),
        Some(Err(_)) => return Invalid("Invalid per_page").into_response(),
    };
    let page = match params.page.as_deref().map(str::parse::<usize>) {
        None => 1,
        Some(Ok(n)) => n.max(1),
        Some(Err(_)) => return Invalid("Invalid page").into_response(),
    };
    if page.saturating_mul(per_page) > crate::population::SEARCH_CAP {
        return Invalid("Only the first 1000 search results are available").into_response();
    }
    let latency = state.search_latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let population = state.population().await;
    let (total, items) = {
        let p = population.read().unwrap_or_else(|e| e.into_inner());
        let total = p.count(&query);
        let items: Vec<Value> = p
            .page(&query, (page - 1) * per_page, per_page)
            .into_iter()
            .filter_map(|i| p.repo(i))
            .map(|r| public_repo_json(&r))
            .collect();
        (total, items)
    };
    let reachable = usize::try_from(total)
        .unwrap_or(usize::MAX)
        .min(crate::population::SEARCH_CAP);
    let window = ListParams {
        per_page: Some(per_page.to_string()),
        page: Some(page.to_string()),
        ..ListParams::default()
    };
    let link = page_window(&uri, &window, reachable)
        .ok()
        .and_then(|(_, link)| link);
    with_link(
        json!({"total_count": total, "incomplete_results": false, "items": items}),
        link,
    )
}

/// The route template of a concrete path, for the ledger.
pub(crate) fn route_name(path: &str) -> String {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let named: Vec<String> = parts
        .iter()
        .enumerate()
        .map(|(i, p)| match (parts.first().copied(), i) {
            (Some("orgs"), 1) => "{org}".to_string(),
            (Some("repos"), 1) => "{owner}".to_string(),
            (Some("repos"), 2) => "{repo}".to_string(),
            (Some("repos"), 4) if p.parse::<u64>().is_ok() => "{number}".to_string(),
            (Some("repos"), 4) if parts.get(3) == Some(&"compare") => "{basehead}".to_string(),
            _ => p.to_string(),
        })
        .collect();
    format!("/{}", named.join("/"))
}

#[derive(Deserialize, Default)]
pub(crate) struct ListParams {
    per_page: Option<String>,
    page: Option<String>,
    since: Option<String>,
    sort: Option<String>,
    direction: Option<String>,
    state: Option<String>,
    #[serde(rename = "type")]
    _kind: Option<String>,
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, Json(json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest", "status": "404"}))).into_response()
}

/// A request GitHub would answer with 422 Unprocessable Entity.
struct Invalid(&'static str);

impl IntoResponse for Invalid {
    fn into_response(self) -> Response {
        (StatusCode::UNPROCESSABLE_ENTITY, Json(json!({"message": self.0, "documentation_url": "https://docs.github.com/rest", "status": "422"}))).into_response()
    }
}

fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn user(a: &Option<Actor>) -> Value {
    match a {
        None => Value::Null,
        Some(a) => {
            let (login, kind) = match a.kind {
                crate::model::ActorKind::Bot => (format!("{}[bot]", a.login), "Bot"),
                k => (a.login.clone(), k.typename()),
            };
            json!({"login": login, "id": a.id, "node_id": node_id("U", a.id), "type": kind, "site_admin": false})
        }
    }
}

/// The slice of a list of `len` items that `per_page`/`page` select, and GitHub's Link header.
fn page_window(
    uri: &Uri,
    params: &ListParams,
    len: usize,
) -> Result<(std::ops::Range<usize>, Option<HeaderValue>), Invalid> {
    let per_page = match params.per_page.as_deref().map(str::parse::<usize>) {
        None => 30,
        Some(Ok(n)) => n.clamp(1, 100),
        Some(Err(_)) => return Err(Invalid("Invalid per_page")),
    };
    let page = match params.page.as_deref().map(str::parse::<usize>) {
        None => 1,
        Some(Ok(n)) => n.max(1),
        Some(Err(_)) => return Err(Invalid("Invalid page")),
    };
    let last = len.div_ceil(per_page).max(1);
    let start = ((page - 1) * per_page).min(len);
    let end = (start + per_page).min(len);
    let link = |p: usize, rel: &str| {
        let mut query: Vec<&str> = uri
            .query()
            .unwrap_or("")
            .split('&')
            .filter(|kv| !kv.is_empty() && !kv.starts_with("page="))
            .collect();
        let page = format!("page={p}");
        query.push(&page);
        format!(
            "<http://sim{}?{}>; rel=\"{rel}\"",
            uri.path(),
            query.join("&")
        )
    };
    let mut links = Vec::new();
    if page < last {
        links.push(link(page + 1, "next"));
        links.push(link(last, "last"));
    }
    if page > 1 {
        links.push(link(1, "first"));
        links.push(link(page - 1, "prev"));
    }
    let header = (!links.is_empty())
        .then(|| HeaderValue::from_str(&links.join(", ")).ok())
        .flatten();
    Ok((start..end, header))
}

fn with_link(body: Value, link: Option<HeaderValue>) -> Response {
    let mut r = Json(body).into_response();
    if let Some(v) = link {
        r.headers_mut().insert("link", v);
    }
    r
}

/// One page of `items`, with GitHub's Link header.
fn page(uri: &Uri, params: &ListParams, items: Vec<Value>) -> Response {
    match page_window(uri, params, items.len()) {
        Ok((range, link)) => with_link(Value::Array(items[range].to_vec()), link),
        Err(r) => r.into_response(),
    }
}

fn since_of(params: &ListParams) -> Result<Option<DateTime<Utc>>, Invalid> {
    match &params.since {
        None => Ok(None),
        Some(s) => DateTime::parse_from_rfc3339(s)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|_| Invalid("Invalid since: use ISO 8601 format YYYY-MM-DDTHH:MM:SSZ")),
    }
}

fn find_repo<'a>(w: &'a World, owner: &str, repo: &str) -> Option<&'a Repository> {
    if !owner.eq_ignore_ascii_case(&w.org.login) {
        return None;
    }
    w.repository(repo).map(|(_, r)| r)
}

fn repo_json(w: &World, r: &Repository) -> Value {
    json!({
        "id": r.id, "node_id": node_id("R", r.id), "name": r.name,
        "full_name": format!("{}/{}", w.org.login, r.name),
        "private": r.is_private, "fork": r.is_fork, "archived": r.is_archived,
        "default_branch": r.default_branch,
        "created_at": ts(r.created_at), "updated_at": ts(r.updated_at), "pushed_at": ts(r.pushed_at),
        "owner": {"login": w.org.login, "id": w.org.id, "type": "Organization"},
    })
}

fn pr_json(w: &World, r: &Repository, p: &PullRequest) -> Value {
    json!({
        "id": p.id, "node_id": node_id("PR", p.id), "number": p.number, "title": p.title,
        "state": if p.state == crate::model::PrState::Open { "open" } else { "closed" },
        "draft": p.is_draft, "user": user(&p.author),
        "created_at": ts(p.created_at), "updated_at": ts(p.updated_at),
        "closed_at": p.closed_at.map(ts), "merged_at": p.merged_at.map(ts),
        "labels": p.labels.iter().map(|l| json!({"name": l})).collect::<Vec<_>>(),
        "base": {"ref": p.base_ref, "sha": p.base_oid, "repo": {"name": r.name, "full_name": format!("{}/{}", w.org.login, r.name)}},
        "head": {"ref": p.head_ref, "sha": p.head_oid},
    })
}

fn commit_json(c: &Commit) -> Value {
    let login = |l: &Option<String>| match l {
        Some(l) => json!({"login": l, "type": "User"}),
        None => Value::Null,
    };
    json!({
        "sha": c.sha, "node_id": crate::graphql::commit_node_id(&c.sha),
        "commit": {
            "author": {"name": c.author_name, "email": "dev@example.com", "date": ts(c.authored_at)},
            "committer": {"name": c.committer_name, "email": "dev@example.com", "date": ts(c.committed_at)},
            "message": c.message_headline,
        },
        "author": login(&c.author_login), "committer": login(&c.committer_login),
    })
}

/// `owner/repo` as GitHub's URLs spell it.
fn full_name(w: &World, r: &Repository) -> String {
    format!("{}/{}", w.org.login, r.name)
}

fn review_comment_json(
    w: &World,
    r: &Repository,
    p: &PullRequest,
    review_id: u64,
    c: &ReviewComment,
) -> Value {
    let repo = full_name(w, r);
    json!({
        "id": c.id, "node_id": node_id("PRRC", c.id), "pull_request_review_id": review_id,
        "path": c.path, "user": user(&c.author), "body": c.body,
        "created_at": ts(c.created_at), "updated_at": ts(c.updated_at),
        "in_reply_to_id": c.reply_to,
        "url": format!("https://api.github.com/repos/{repo}/pulls/comments/{}", c.id),
        "pull_request_url": format!("https://api.github.com/repos/{repo}/pulls/{}", p.number),
        "html_url": format!("https://github.com/{repo}/pull/{}#discussion_r{}", p.number, c.id),
    })
}

/// An issue comment as GitHub's REST API shows it. `issue_url` says `/issues/N` for an issue
/// and a pull request alike; `html_url` tells them apart (`/pull/N` or `/issues/N`).
fn issue_comment_json(
    w: &World,
    r: &Repository,
    number: u64,
    on_pull_request: bool,
    c: &IssueComment,
) -> Value {
    let repo = full_name(w, r);
    let page = if on_pull_request { "pull" } else { "issues" };
    json!({
        "id": c.id, "node_id": node_id("IC", c.id), "user": user(&c.author), "body": c.body,
        "created_at": ts(c.created_at), "updated_at": ts(c.updated_at),
        "url": format!("https://api.github.com/repos/{repo}/issues/comments/{}", c.id),
        "issue_url": format!("https://api.github.com/repos/{repo}/issues/{number}"),
        "html_url": format!("https://github.com/{repo}/{page}/{number}#issuecomment-{}", c.id),
    })
}

/// A page of comments: `since` applied, sorted as asked.
fn comment_page(
    uri: &Uri,
    params: &ListParams,
    rows: Vec<(DateTime<Utc>, DateTime<Utc>, Value)>,
) -> Response {
    match since_of(params) {
        Ok(since) => page(uri, params, sorted(rows, params, since)),
        Err(e) => e.into_response(),
    }
}

/// Sorts `(created, updated, value)` rows as GitHub's `sort`/`direction` say and drops those
/// updated before `since`.
fn sorted(
    mut rows: Vec<(DateTime<Utc>, DateTime<Utc>, Value)>,
    params: &ListParams,
    since: Option<DateTime<Utc>>,
) -> Vec<Value> {
    if let Some(s) = since {
        rows.retain(|(_, u, _)| *u >= s);
    }
    let by_updated = params.sort.as_deref() == Some("updated");
    rows.sort_by_key(|(c, u, _)| if by_updated { *u } else { *c });
    let default_desc = false;
    let desc = match params.direction.as_deref() {
        Some("desc") => true,
        Some("asc") => false,
        _ => default_desc,
    };
    if desc {
        rows.reverse();
    }
    rows.into_iter().map(|(_, _, v)| v).collect()
}

/// `GET /user`: the user of the token ([`crate::server::viewer_of`]); 403 for an
/// installation token, as GitHub answers ("Resource not accessible by integration").
async fn authenticated_user(
    axum::Extension(token): axum::Extension<crate::server::Token>,
) -> Response {
    if token.0.starts_with("installation:") {
        return (
            StatusCode::FORBIDDEN,
            Json(json!({ "message": "Resource not accessible by integration", "status": "403" })),
        )
            .into_response();
    }
    let (id, login) = crate::server::viewer_of(&token.0);
    Json(json!({
        "login": login,
        "id": id,
        "node_id": node_id("U", id),
        "type": "User",
        "site_admin": false,
    }))
    .into_response()
}

async fn org_repos(
    State(s): State<Arc<SimState>>,
    Path(org): Path<String>,
    Query(params): Query<ListParams>,
    uri: Uri,
) -> Response {
    let w = s.snapshot();
    if !org.eq_ignore_ascii_case(&w.org.login) {
        return not_found();
    }
    let mut repos: Vec<&Repository> = w.repositories.iter().collect();
    repos.sort_by(|a, b| a.name.cmp(&b.name));
    let items = repos.into_iter().map(|r| repo_json(&w, r)).collect();
    page(&uri, &params, items)
}

async fn repo(
    State(s): State<Arc<SimState>>,
    Path((owner, name)): Path<(String, String)>,
) -> Response {
    let w = s.snapshot();
    match find_repo(&w, &owner, &name) {
        Some(r) => Json(repo_json(&w, r)).into_response(),
        None => not_found(),
    }
}

async fn pulls(
    State(s): State<Arc<SimState>>,
    Path((owner, name)): Path<(String, String)>,
    Query(params): Query<ListParams>,
    uri: Uri,
) -> Response {
    let w = s.snapshot();
    let Some(r) = find_repo(&w, &owner, &name) else {
        return not_found();
    };
    let state = params.state.as_deref().unwrap_or("open");
    let mut prs: Vec<&PullRequest> = r
        .pull_requests
        .iter()
        .filter(|p| match state {
            "all" => true,
            "closed" => p.state != crate::model::PrState::Open,
            _ => p.state == crate::model::PrState::Open,
        })
        .collect();
    match params.sort.as_deref() {
        Some("updated") => prs.sort_by_key(|p| (p.updated_at, p.number)),
        _ => prs.sort_by_key(|p| (p.created_at, p.number)),
    }
    // GitHub's default direction is desc for pulls.
    if params.direction.as_deref() != Some("asc") {
        prs.reverse();
    }
    let items = prs.into_iter().map(|p| pr_json(&w, r, p)).collect();
    page(&uri, &params, items)
}

fn find_pr<'a>(
    w: &'a World,
    owner: &str,
    name: &str,
    number: &str,
) -> Option<(&'a Repository, &'a PullRequest)> {
    let r = find_repo(w, owner, name)?;
    let n: u64 = number.parse().ok()?;
    r.pull_requests
        .iter()
        .find(|p| p.number == n)
        .map(|p| (r, p))
}

async fn pull(
    State(s): State<Arc<SimState>>,
    Path((owner, name, number)): Path<(String, String, String)>,
) -> Response {
    let w = s.snapshot();
    match find_pr(&w, &owner, &name, &number) {
        Some((r, p)) => {
            let mut v = pr_json(&w, r, p);
            if let Some(o) = v.as_object_mut() {
                o.insert("additions".into(), json!(p.additions));
                o.insert("deletions".into(), json!(p.deletions));
                o.insert("changed_files".into(), json!(p.changed_files));
                o.insert("commits".into(), json!(p.commits.len()));
                o.insert("merged".into(), json!(p.merged_at.is_some()));
                o.insert("merged_by".into(), user(&p.merged_by));
            }
            Json(v).into_response()
        }
        None => not_found(),
    }
}

async fn pull_commits(
    State(s): State<Arc<SimState>>,
    Path((owner, name, number)): Path<(String, String, String)>,
    Query(params): Query<ListParams>,
    uri: Uri,
) -> Response {
    let w = s.snapshot();
    let Some((_, p)) = find_pr(&w, &owner, &name, &number) else {
        return not_found();
    };
    // GitHub lists at most 250 commits here too.
    let items = p
        .commits
        .iter()
        .take(crate::graphql::PR_COMMIT_CAP)
        .map(commit_json)
        .collect();
    page(&uri, &params, items)
}

async fn pull_reviews(
    State(s): State<Arc<SimState>>,
    Path((owner, name, number)): Path<(String, String, String)>,
    Query(params): Query<ListParams>,
    uri: Uri,
) -> Response {
    let w = s.snapshot();
    let Some((_, p)) = find_pr(&w, &owner, &name, &number) else {
        return not_found();
    };
    let items = p
        .reviews
        .iter()
        .map(|r| {
            json!({
                "id": r.id, "node_id": node_id("PRR", r.id), "user": user(&r.author), "body": r.body,
                "state": r.state.graphql(), "submitted_at": r.submitted_at.map(ts), "commit_id": p.head_oid,
            })
        })
        .collect();
    page(&uri, &params, items)
}

async fn pull_review_comments(
    State(s): State<Arc<SimState>>,
    Path((owner, name, number)): Path<(String, String, String)>,
    Query(params): Query<ListParams>,
    uri: Uri,
) -> Response {
    let w = s.snapshot();
    let Some((repo, p)) = find_pr(&w, &owner, &name, &number) else {
        return not_found();
    };
    let w = &w;
    let rows = p
        .reviews
        .iter()
        .flat_map(|r| {
            r.comments.iter().map(move |c| {
                (
                    c.created_at,
                    c.updated_at,
                    review_comment_json(w, repo, p, r.id, c),
                )
            })
        })
        .collect();
    comment_page(&uri, &params, rows)
}

async fn issue_comments(
    State(s): State<Arc<SimState>>,
    Path((owner, name, number)): Path<(String, String, String)>,
    Query(params): Query<ListParams>,
    uri: Uri,
) -> Response {
    let w = s.snapshot();
    let Some((repo, p)) = find_pr(&w, &owner, &name, &number) else {
        return not_found();
    };
    let rows = p
        .comments
        .iter()
        .map(|c| {
            (
                c.created_at,
                c.updated_at,
                issue_comment_json(&w, repo, p.number, true, c),
            )
        })
        .collect();
    comment_page(&uri, &params, rows)
}

async fn repo_review_comments(
    State(s): State<Arc<SimState>>,
    Path((owner, name)): Path<(String, String)>,
    Query(params): Query<ListParams>,
    uri: Uri,
) -> Response {
    let w = s.snapshot();
    let Some(r) = find_repo(&w, &owner, &name) else {
        return not_found();
    };
    let w = &w;
    let rows = r
        .pull_requests
        .iter()
        .flat_map(|p| {
            p.reviews.iter().flat_map(move |rv| {
                rv.comments.iter().map(move |c| {
                    (
                        c.created_at,
                        c.updated_at,
                        review_comment_json(w, r, p, rv.id, c),
                    )
                })
            })
        })
        .collect();
    comment_page(&uri, &params, rows)
}

async fn repo_issue_comments(
    State(s): State<Arc<SimState>>,
    Path((owner, name)): Path<(String, String)>,
    Query(params): Query<ListParams>,
    uri: Uri,
) -> Response {
    let w = s.snapshot();
    let Some(r) = find_repo(&w, &owner, &name) else {
        return not_found();
    };
    // Comments on issues and on pull requests alike, as on GitHub.
    let w = &w;
    let on_prs = r.pull_requests.iter().flat_map(|p| {
        p.comments.iter().map(move |c| {
            (
                c.created_at,
                c.updated_at,
                issue_comment_json(w, r, p.number, true, c),
            )
        })
    });
    let on_issues = r.issues.iter().flat_map(|i| {
        i.comments.iter().map(move |c| {
            (
                c.created_at,
                c.updated_at,
                issue_comment_json(w, r, i.number, false, c),
            )
        })
    });
    let rows = on_prs.chain(on_issues).collect();
    comment_page(&uri, &params, rows)
}

/// `base...head` for a pull request's own range: every commit, paginated (GitHub's compare
/// endpoint paginates commits; the 250 cap of the pull-request listings does not apply).
async fn compare(
    State(s): State<Arc<SimState>>,
    Path((owner, name, basehead)): Path<(String, String, String)>,
    Query(params): Query<ListParams>,
    uri: Uri,
) -> Response {
    let w = s.snapshot();
    let Some(r) = find_repo(&w, &owner, &name) else {
        return not_found();
    };
    let Some((base, head)) = basehead.split_once("...") else {
        return not_found();
    };
    let Some(p) = r
        .pull_requests
        .iter()
        .find(|p| p.base_oid == base && p.head_oid == head)
    else {
        return not_found();
    };
    let total = p.commits.len();
    match page_window(&uri, &params, total) {
        Ok((range, link)) => {
            let commits: Vec<Value> = p.commits[range].iter().map(commit_json).collect();
            with_link(
                json!({"status": "ahead", "ahead_by": total, "behind_by": 0, "total_commits": total, "commits": commits, "files": []}),
                link,
            )
        }
        Err(r) => r.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::route_name;

    #[test]
    fn route_names_hide_concrete_values() {
        assert_eq!(
            route_name("/repos/acme/repo-001/pulls/12/commits"),
            "/repos/{owner}/{repo}/pulls/{number}/commits"
        );
        assert_eq!(
            route_name("/repos/acme/x/pulls/comments"),
            "/repos/{owner}/{repo}/pulls/comments"
        );
        assert_eq!(route_name("/orgs/acme/repos"), "/orgs/{org}/repos");
        assert_eq!(
            route_name("/repos/acme/x/compare/a...b"),
            "/repos/{owner}/{repo}/compare/{basehead}"
        );
    }
}
