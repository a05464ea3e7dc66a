//! The subset of GitHub's GraphQL schema the collector uses, served by async-graphql over a
//! snapshot of the world. Type, field, enum and scalar names are GitHub's.

use crate::git::{linked_user, GitStore, HistoryCommit};
use crate::model::{self, node_id, parse_node_id, Location, World};
use crate::population::{Population, PublicRepo, SEARCH_CAP};
use async_graphql::{
    Context, Enum, ErrorExtensions, InputObject, InputValueError, InputValueResult, Interface,
    Object, Scalar, ScalarType, Value, ID,
};
use base64::Engine;
use chrono::{DateTime, Utc};
use std::sync::Arc;

/// Most commits GitHub lists on a pull request.
pub const PR_COMMIT_CAP: usize = 250;

/// Whether `PullRequest.commits.totalCount` stops at [`PR_COMMIT_CAP`] (request data).
#[derive(Clone, Copy, Debug)]
pub struct CapCommitTotal(pub bool);

/// Misbehaviour seen on GitHub, switched on per test (request data): pull requests GitHub
/// cannot serve, pagination that does not advance, nodes deleted between two queries.
#[derive(Clone, Debug, Default)]
pub struct Quirks {
    /// `(repository, number)`: any query that reads one of these pull requests' commits fails
    /// the whole request with HTTP 502, at every page size. Its number and `updatedAt` alone
    /// can still be read.
    pub poison_pull_requests: Vec<(String, u64)>,
    /// Connections whose follow-up pages (`after` given) do not advance.
    pub stuck_pagination: Vec<StuckPagination>,
    /// Node ids that `node`/`nodes` no longer resolve (NOT_FOUND) although their parents still
    /// list them: an object deleted between two queries.
    pub vanished_nodes: Vec<String>,
}

/// The marker of a poisoned pull request's error; the handler turns it into an HTTP 502.
pub const POISON_MARKER: &str = "__sim_poison__";

/// A connection whose pagination goes wrong once a client asks for a page after a cursor.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StuckPagination {
    /// Repository name.
    pub repo: String,
    /// `pullRequests`; a pull request's `commits`, `reviews`, `comments`, `labels`; or
    /// `reviewComments`, the comments of its reviews.
    pub connection: String,
    /// For a pull request's connection: its number (any pull request when absent).
    #[serde(default)]
    pub pr: Option<u64>,
    pub mode: StuckMode,
}

/// How a page fails to advance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StuckMode {
    /// `hasNextPage: true` with the cursor that was sent as `endCursor`.
    SameCursor,
    /// `hasNextPage: true` with a null `endCursor`.
    NullCursor,
    /// `hasNextPage: true`, no items, the cursor that was sent.
    Empty,
}

fn quirks<'a>(ctx: &Context<'a>) -> Option<&'a Quirks> {
    ctx.data_opt::<Quirks>()
}

/// The stuck rule for `connection` of repository `ri` (and pull request `pr`), if any.
fn stuck(ctx: &Context<'_>, ri: usize, connection: &str, pr: Option<u64>) -> Option<StuckMode> {
    let name = &world(ctx).repositories[ri].name;
    quirks(ctx)?
        .stuck_pagination
        .iter()
        .find(|s| &s.repo == name && s.connection == connection && (s.pr.is_none() || s.pr == pr))
        .map(|s| s.mode)
}

/// Applies a stuck rule to a page asked for after `after`: the items (emptied for
/// [`StuckMode::Empty`]) and a page info that claims more without moving on.
fn stick<T>(mode: StuckMode, after: &str, nodes: &mut Vec<T>, page: &mut PageInfo) {
    page.has_next_page = true;
    match mode {
        StuckMode::SameCursor => page.end_cursor = Some(after.to_string()),
        StuckMode::NullCursor => page.end_cursor = None,
        StuckMode::Empty => {
            nodes.clear();
            page.end_cursor = Some(after.to_string());
        }
    }
}

pub type GithubSchema =
    async_graphql::Schema<Query, async_graphql::EmptyMutation, async_graphql::EmptySubscription>;

pub fn schema() -> GithubSchema {
    async_graphql::Schema::build(
        Query,
        async_graphql::EmptyMutation,
        async_graphql::EmptySubscription,
    )
    .limit_depth(32)
    .finish()
}

/// The `rateLimit` object of one query, computed before it runs.
#[derive(Clone, Debug)]
pub struct RateLimitInfo {
    pub cost: u64,
    pub limit: u64,
    pub remaining: u64,
    pub used: u64,
    pub reset_at: DateTime<Utc>,
    pub node_count: u64,
}

fn world<'a>(ctx: &Context<'a>) -> &'a Arc<World> {
    ctx.data_unchecked::<Arc<World>>()
}

/// GitHub's `DateTime`: ISO-8601 UTC, whole seconds.
#[derive(Clone, Copy, Debug)]
pub struct GhDateTime(pub DateTime<Utc>);

#[Scalar(name = "DateTime")]
impl ScalarType for GhDateTime {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => DateTime::parse_from_rfc3339(s)
                .map(|t| GhDateTime(t.with_timezone(&Utc)))
                .map_err(|_| InputValueError::expected_type(value)),
            _ => Err(InputValueError::expected_type(value)),
        }
    }
    fn to_value(&self) -> Value {
        Value::String(self.0.format("%Y-%m-%dT%H:%M:%SZ").to_string())
    }
}

/// GitHub's `BigInt`: a decimal string.
#[derive(Clone, Copy, Debug)]
pub struct BigInt(pub u64);

#[Scalar(name = "BigInt")]
impl ScalarType for BigInt {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => s
                .parse()
                .map(BigInt)
                .map_err(|_| InputValueError::expected_type(value)),
            _ => Err(InputValueError::expected_type(value)),
        }
    }
    fn to_value(&self) -> Value {
        Value::String(self.0.to_string())
    }
}

fn dt(t: DateTime<Utc>) -> GhDateTime {
    GhDateTime(t)
}

// ---------- enums and inputs ----------

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum PullRequestState {
    Open,
    Closed,
    Merged,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum PullRequestReviewState {
    Pending,
    Commented,
    Approved,
    ChangesRequested,
    Dismissed,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum PullRequestReviewDecision {
    ChangesRequested,
    Approved,
    ReviewRequired,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum IssueOrderField {
    CreatedAt,
    UpdatedAt,
    Comments,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum OrderDirection {
    Asc,
    Desc,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum RepositoryOrderField {
    CreatedAt,
    UpdatedAt,
    PushedAt,
    Name,
    Stargazers,
}

/// What `search` looks for; the simulator answers `ISSUE` (pull request counts) and
/// `REPOSITORY` (over the public population).
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum SearchType {
    Issue,
    Repository,
    User,
    Discussion,
}

/// A search's answer: `issueCount` for `ISSUE` (no nodes); for `REPOSITORY`,
/// `repositoryCount` of the whole match (not capped) and a page of nodes/edges within the
/// first 1,000 results, by offset cursors.
pub struct SearchResultItemConnection {
    issue_count: u64,
    repository_count: u64,
    nodes: Vec<SearchResultItem>,
    /// The offset of the first node.
    start: usize,
    page: PageInfo,
}

#[Object]
impl SearchResultItemConnection {
    async fn issue_count(&self) -> i32 {
        i32::try_from(self.issue_count).unwrap_or(i32::MAX)
    }
    async fn repository_count(&self) -> i32 {
        i32::try_from(self.repository_count).unwrap_or(i32::MAX)
    }
    async fn nodes(&self) -> &[SearchResultItem] {
        &self.nodes
    }
    async fn edges(&self) -> Vec<SearchResultItemEdge> {
        self.nodes
            .iter()
            .enumerate()
            .map(|(i, node)| SearchResultItemEdge {
                cursor: encode_cursor(&(self.start + i).to_string()),
                node: node.clone(),
            })
            .collect()
    }
    async fn page_info(&self) -> &PageInfo {
        &self.page
    }
}

/// What a search finds; the simulator finds repositories only.
#[derive(async_graphql::Union, Clone)]
pub enum SearchResultItem {
    Repository(Repository),
}

pub struct SearchResultItemEdge {
    cursor: String,
    node: SearchResultItem,
}

#[Object]
impl SearchResultItemEdge {
    async fn cursor(&self) -> &str {
        &self.cursor
    }
    async fn node(&self) -> &SearchResultItem {
        &self.node
    }
}

/// A repository's language.
pub struct Language {
    name: String,
}

#[Object]
impl Language {
    async fn name(&self) -> &str {
        &self.name
    }
}

/// The public population repository search runs over (request data), built on first use.
#[derive(Clone)]
pub struct SearchPopulation(pub Arc<std::sync::RwLock<Population>>);

/// One page of a repository search: `first` (0..=100) results after the offset cursor
/// `after`, within the first [`SEARCH_CAP`]; the page info says there is no next page at the
/// cap, as GitHub's does.
fn repository_search(
    ctx: &Context<'_>,
    query: &str,
    first: Option<i32>,
    after: Option<String>,
) -> async_graphql::Result<SearchResultItemConnection> {
    let q = crate::search::parse_repository_search(query).map_err(async_graphql::Error::new)?;
    let population = ctx
        .data_opt::<SearchPopulation>()
        .ok_or_else(|| async_graphql::Error::new("repository search is not available"))?;
    let p = population.0.read().unwrap_or_else(|e| e.into_inner());
    let count = p.count(&q);
    let start = match after {
        Some(c) => decode_cursor(&c)?
            .parse::<usize>()
            .map_err(|_| async_graphql::Error::new("invalid cursor"))?
            .saturating_add(1),
        None => 0,
    };
    let reachable = usize::try_from(count).unwrap_or(usize::MAX).min(SEARCH_CAP);
    let n = usize::try_from(first.unwrap_or(0).clamp(0, 100)).unwrap_or(0);
    let wants_nodes =
        ctx.look_ahead().field("nodes").exists() || ctx.look_ahead().field("edges").exists();
    let indices = if wants_nodes && n > 0 {
        p.page(&q, start, n)
    } else {
        Vec::new()
    };
    let nodes: Vec<SearchResultItem> = indices
        .iter()
        .filter_map(|&i| p.repo(i))
        .map(|r| {
            SearchResultItem::Repository(Repository {
                ri: 0,
                public: Some(Arc::new(r)),
            })
        })
        .collect();
    let end = (start + n).min(reachable);
    let page = PageInfo {
        has_next_page: end < reachable,
        has_previous_page: start > 0,
        start_cursor: (!nodes.is_empty()).then(|| encode_cursor(&start.to_string())),
        end_cursor: (!nodes.is_empty())
            .then(|| encode_cursor(&(start + nodes.len() - 1).to_string())),
    };
    Ok(SearchResultItemConnection {
        issue_count: 0,
        repository_count: count,
        nodes,
        start,
        page,
    })
}

#[derive(InputObject)]
pub struct IssueOrder {
    pub field: IssueOrderField,
    pub direction: OrderDirection,
}

#[derive(InputObject)]
pub struct RepositoryOrder {
    pub field: RepositoryOrderField,
    pub direction: OrderDirection,
}

// ---------- pagination ----------

fn encode_cursor(raw: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("cursor:v2:{raw}"))
}

fn decode_cursor(cursor: &str) -> async_graphql::Result<String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(cursor)
        .map_err(|_| {
            async_graphql::Error::new(format!("`{cursor}` does not appear to be a valid cursor."))
        })?;
    let text = String::from_utf8(bytes).map_err(|_| async_graphql::Error::new("invalid cursor"))?;
    text.strip_prefix("cursor:v2:")
        .map(str::to_string)
        .ok_or_else(|| {
            async_graphql::Error::new(format!("`{cursor}` does not appear to be a valid cursor."))
        })
}

/// One page of an ordered list of `len` items by offset cursors.
fn offset_page(
    len: usize,
    first: Option<i32>,
    after: Option<String>,
) -> async_graphql::Result<(std::ops::Range<usize>, PageInfo)> {
    let start = match after {
        Some(c) => {
            decode_cursor(&c)?
                .parse::<usize>()
                .map_err(|_| async_graphql::Error::new("invalid cursor"))?
                + 1
        }
        None => 0,
    };
    let start = start.min(len);
    let n = first.unwrap_or(100).clamp(0, 100) as usize;
    let end = (start + n).min(len);
    let info = PageInfo {
        has_next_page: end < len,
        has_previous_page: start > 0,
        start_cursor: (end > start).then(|| encode_cursor(&start.to_string())),
        end_cursor: (end > start).then(|| encode_cursor(&(end - 1).to_string())),
    };
    Ok((start..end, info))
}

pub struct PageInfo {
    has_next_page: bool,
    has_previous_page: bool,
    start_cursor: Option<String>,
    end_cursor: Option<String>,
}

#[Object]
impl PageInfo {
    async fn has_next_page(&self) -> bool {
        self.has_next_page
    }
    async fn has_previous_page(&self) -> bool {
        self.has_previous_page
    }
    async fn start_cursor(&self) -> Option<&str> {
        self.start_cursor.as_deref()
    }
    async fn end_cursor(&self) -> Option<&str> {
        self.end_cursor.as_deref()
    }
}

macro_rules! connection {
    ($name:ident, $node:ty) => {
        pub struct $name {
            nodes: Vec<$node>,
            total: usize,
            page: PageInfo,
        }

        #[Object]
        impl $name {
            async fn nodes(&self) -> &[$node] {
                &self.nodes
            }
            async fn page_info(&self) -> &PageInfo {
                &self.page
            }
            async fn total_count(&self) -> i32 {
                self.total as i32
            }
        }
    };
}

connection!(RepositoryConnection, Repository);
connection!(PullRequestConnection, PullRequest);
connection!(PullRequestCommitConnection, PullRequestCommit);
connection!(PullRequestReviewConnection, PullRequestReview);
connection!(PullRequestReviewCommentConnection, PullRequestReviewComment);
connection!(IssueCommentConnection, IssueComment);
connection!(LabelConnection, Label);
connection!(CommitHistoryConnection, Commit);

// ---------- actors ----------

#[derive(Clone)]
pub struct ActorData {
    login: String,
    id: u64,
}

macro_rules! actor_type {
    ($name:ident, $prefix:literal) => {
        #[derive(Clone)]
        pub struct $name(ActorData);

        #[Object]
        impl $name {
            async fn login(&self) -> &str {
                &self.0.login
            }
            async fn id(&self) -> ID {
                ID(node_id($prefix, self.0.id))
            }
            async fn database_id(&self) -> i64 {
                i64::try_from(self.0.id).unwrap_or(i64::MAX)
            }
        }
    };
}

actor_type!(User, "U");
actor_type!(Bot, "BOT");
actor_type!(Mannequin, "MQ");

/// An organization as an actor. The `organization(login:)` root field serves the richer
/// [`Organization`] type below; GitHub's is one type, and the collector asks only `login` of it
/// as an actor.
#[derive(Clone)]
pub struct Organization {
    data: ActorData,
}

#[Object]
impl Organization {
    async fn login(&self) -> &str {
        &self.data.login
    }
    async fn id(&self) -> ID {
        ID(node_id("O", self.data.id))
    }
    async fn repositories(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        #[graphql(name = "orderBy")] _order_by: Option<RepositoryOrder>,
        #[graphql(name = "isFork")] is_fork: Option<bool>,
        #[graphql(name = "isArchived")] is_archived: Option<bool>,
    ) -> async_graphql::Result<RepositoryConnection> {
        let w = world(ctx);
        let mut indices: Vec<usize> = (0..w.repositories.len())
            .filter(|&i| is_fork.is_none_or(|f| w.repositories[i].is_fork == f))
            .filter(|&i| is_archived.is_none_or(|a| w.repositories[i].is_archived == a))
            .collect();
        indices.sort_by(|a, b| w.repositories[*a].name.cmp(&w.repositories[*b].name));
        let (range, page) = offset_page(indices.len(), first, after)?;
        Ok(RepositoryConnection {
            nodes: indices[range]
                .iter()
                .map(|&ri| Repository::org(ri))
                .collect(),
            total: indices.len(),
            page,
        })
    }
}

#[derive(Interface, Clone)]
#[graphql(field(name = "login", ty = "&str"))]
pub enum Actor {
    User(User),
    Bot(Bot),
    Organization(Organization),
    Mannequin(Mannequin),
}

fn actor(a: &Option<model::Actor>) -> Option<Actor> {
    let a = a.as_ref()?;
    let data = ActorData {
        login: a.login.clone(),
        id: a.id,
    };
    Some(match a.kind {
        model::ActorKind::User => Actor::User(User(data)),
        model::ActorKind::Bot => Actor::Bot(Bot(data)),
        model::ActorKind::Organization => Actor::Organization(Organization { data }),
        model::ActorKind::Mannequin => Actor::Mannequin(Mannequin(data)),
    })
}

// ---------- repository and pull requests ----------

/// A repository: one of the organization's (`ri`), or one of the public population's found by
/// `search` (`public`), which has no pull requests.
#[derive(Clone)]
pub struct Repository {
    ri: usize,
    public: Option<Arc<PublicRepo>>,
}

impl Repository {
    fn org(ri: usize) -> Repository {
        Repository { ri, public: None }
    }
}

pub struct Ref {
    name: String,
    /// The branch's head: `(repository database id, oid)`.
    target: Option<(u64, String)>,
}

#[Object]
impl Ref {
    async fn name(&self) -> &str {
        &self.name
    }
    /// The commit the branch points at: a git repository's real head, or a fixed fake sha
    /// ([`crate::git::fake_head`]) for a generated repository without git content.
    async fn target(&self) -> Option<GitObject> {
        self.target
            .as_ref()
            .map(|(id, oid)| GitObject::Commit(Commit::git(*id, oid.clone())))
    }
}

#[Object]
impl Repository {
    async fn id(&self, ctx: &Context<'_>) -> ID {
        if let Some(p) = &self.public {
            return ID(p.node_id.clone());
        }
        ID(node_id("R", world(ctx).repositories[self.ri].id))
    }
    async fn database_id(&self, ctx: &Context<'_>) -> i64 {
        if let Some(p) = &self.public {
            return i64::try_from(p.database_id).unwrap_or(i64::MAX);
        }
        world(ctx).repositories[self.ri].id as i64
    }
    async fn name(&self, ctx: &Context<'_>) -> String {
        if let Some(p) = &self.public {
            return p.name.clone();
        }
        world(ctx).repositories[self.ri].name.clone()
    }
    async fn name_with_owner(&self, ctx: &Context<'_>) -> String {
        if let Some(p) = &self.public {
            return p.name_with_owner.clone();
        }
        let w = world(ctx);
        format!("{}/{}", w.org.login, w.repositories[self.ri].name)
    }
    /// GitHub's `RepositoryOwner`: the organization, or a public repository's user.
    async fn owner(&self, ctx: &Context<'_>) -> Actor {
        if let Some(p) = &self.public {
            return Actor::User(User(ActorData {
                login: p.owner_login.clone(),
                id: p.owner_id,
            }));
        }
        let w = world(ctx);
        Actor::Organization(Organization {
            data: ActorData {
                login: w.org.login.clone(),
                id: w.org.id,
            },
        })
    }
    /// Stars: the population's count, 0 for the organization's repositories.
    async fn stargazer_count(&self) -> i32 {
        self.public
            .as_ref()
            .map_or(0, |p| i32::try_from(p.stargazer_count).unwrap_or(i32::MAX))
    }
    /// Forks: the population's count, 0 for the organization's repositories.
    async fn fork_count(&self) -> i32 {
        self.public
            .as_ref()
            .map_or(0, |p| i32::try_from(p.fork_count).unwrap_or(i32::MAX))
    }
    async fn primary_language(&self) -> Option<Language> {
        self.public
            .as_ref()
            .and_then(|p| p.primary_language.clone().map(|name| Language { name }))
    }
    async fn is_archived(&self, ctx: &Context<'_>) -> bool {
        if let Some(p) = &self.public {
            return p.is_archived;
        }
        world(ctx).repositories[self.ri].is_archived
    }
    async fn is_fork(&self, ctx: &Context<'_>) -> bool {
        if let Some(p) = &self.public {
            return p.is_fork;
        }
        world(ctx).repositories[self.ri].is_fork
    }
    async fn is_private(&self, ctx: &Context<'_>) -> bool {
        self.public.is_none() && world(ctx).repositories[self.ri].is_private
    }
    async fn created_at(&self, ctx: &Context<'_>) -> GhDateTime {
        if let Some(p) = &self.public {
            return dt(p.created_at);
        }
        dt(world(ctx).repositories[self.ri].created_at)
    }
    async fn updated_at(&self, ctx: &Context<'_>) -> GhDateTime {
        if let Some(p) = &self.public {
            return dt(p.pushed_at);
        }
        dt(world(ctx).repositories[self.ri].updated_at)
    }
    async fn pushed_at(&self, ctx: &Context<'_>) -> Option<GhDateTime> {
        if let Some(p) = &self.public {
            return Some(dt(p.pushed_at));
        }
        Some(dt(world(ctx).repositories[self.ri].pushed_at))
    }
    async fn default_branch_ref(&self, ctx: &Context<'_>) -> Option<Ref> {
        if let Some(p) = &self.public {
            return Some(Ref {
                name: "main".into(),
                target: Some((p.database_id, crate::git::fake_head(p.database_id))),
            });
        }
        let r = &world(ctx).repositories[self.ri];
        Some(Ref {
            name: r.default_branch.clone(),
            target: Some((
                r.id,
                r.git_head
                    .clone()
                    .unwrap_or_else(|| crate::git::fake_head(r.id)),
            )),
        })
    }
    /// Whether the repository has no commits: never, here.
    async fn is_empty(&self) -> bool {
        false
    }
    /// A git object by oid: a commit of a git repository, `null` when the oid is none of its
    /// commits (as on GitHub) or the repository has no git content.
    async fn object(
        &self,
        ctx: &Context<'_>,
        oid: Option<GitObjectId>,
        #[graphql(name = "expression")] _expression: Option<String>,
    ) -> async_graphql::Result<Option<GitObject>> {
        if self.public.is_some() {
            return Ok(None);
        }
        let r = &world(ctx).repositories[self.ri];
        let Some(oid) = oid else { return Ok(None) };
        if r.git_head.is_none() {
            return Ok(None);
        }
        let oid = oid.0.to_ascii_lowercase();
        Ok(git_history(ctx, r.id, &oid).await?.map(|list| {
            GitObject::Commit(Commit {
                src: CommitSrc::Git {
                    repo_id: r.id,
                    oid,
                    info: Some((list, 0)),
                },
            })
        }))
    }
    /// One pull request by number; `null` when there is none (an issue's number included).
    async fn pull_request(&self, ctx: &Context<'_>, number: i32) -> Option<PullRequest> {
        if self.public.is_some() {
            return None;
        }
        let w = world(ctx);
        w.repositories[self.ri]
            .pull_requests
            .iter()
            .position(|p| p.number == number as u64)
            .map(|pi| PullRequest { ri: self.ri, pi })
    }
    async fn pull_requests(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        #[graphql(name = "orderBy")] order_by: Option<IssueOrder>,
        states: Option<Vec<PullRequestState>>,
    ) -> async_graphql::Result<PullRequestConnection> {
        if self.public.is_some() {
            return Ok(PullRequestConnection {
                nodes: Vec::new(),
                total: 0,
                page: PageInfo {
                    has_next_page: false,
                    has_previous_page: false,
                    start_cursor: None,
                    end_cursor: None,
                },
            });
        }
        let w = world(ctx);
        let prs = &w.repositories[self.ri].pull_requests;
        let field = order_by
            .as_ref()
            .map(|o| o.field)
            .unwrap_or(IssueOrderField::CreatedAt);
        let desc = order_by
            .as_ref()
            .is_some_and(|o| o.direction == OrderDirection::Desc);
        let key = |p: &model::PullRequest| -> (i64, u64) {
            let t = match field {
                IssueOrderField::UpdatedAt => p.updated_at.timestamp(),
                IssueOrderField::Comments => p.comments.len() as i64,
                IssueOrderField::CreatedAt => p.created_at.timestamp(),
            };
            (t, p.number)
        };
        let mut items: Vec<((i64, u64), usize)> = prs
            .iter()
            .enumerate()
            .filter(|(_, p)| {
                states
                    .as_ref()
                    .is_none_or(|s| s.iter().any(|s| state(p.state) == *s))
            })
            .map(|(i, p)| (key(p), i))
            .collect();
        items.sort();
        if desc {
            items.reverse();
        }
        // Keyset cursors: a pull request updated while a client pages moves to the front
        // instead of shifting every later page by one.
        let after_sent = after.clone();
        let start = match after {
            None => 0,
            Some(c) => {
                let raw = decode_cursor(&c)?;
                let (t, n) = raw
                    .split_once(':')
                    .ok_or_else(|| async_graphql::Error::new("invalid cursor"))?;
                let k: (i64, u64) = (
                    t.parse()
                        .map_err(|_| async_graphql::Error::new("invalid cursor"))?,
                    n.parse()
                        .map_err(|_| async_graphql::Error::new("invalid cursor"))?,
                );
                items.partition_point(|(ik, _)| if desc { *ik >= k } else { *ik <= k })
            }
        };
        let n = first.unwrap_or(100).clamp(0, 100) as usize;
        let end = (start + n).min(items.len());
        let cursor = |i: usize| encode_cursor(&format!("{}:{}", items[i].0 .0, items[i].0 .1));
        let page = PageInfo {
            has_next_page: end < items.len(),
            has_previous_page: start > 0,
            start_cursor: (end > start).then(|| cursor(start)),
            end_cursor: (end > start).then(|| cursor(end - 1)),
        };
        let mut page = page;
        let mut nodes: Vec<PullRequest> = items[start..end]
            .iter()
            .map(|(_, pi)| PullRequest {
                ri: self.ri,
                pi: *pi,
            })
            .collect();
        if let (Some(mode), Some(a)) = (stuck(ctx, self.ri, "pullRequests", None), &after_sent) {
            stick(mode, a, &mut nodes, &mut page);
        }
        Ok(PullRequestConnection {
            nodes,
            total: items.len(),
            page,
        })
    }
}

fn state(s: model::PrState) -> PullRequestState {
    match s {
        model::PrState::Open => PullRequestState::Open,
        model::PrState::Closed => PullRequestState::Closed,
        model::PrState::Merged => PullRequestState::Merged,
    }
}

#[derive(Clone)]
pub struct PullRequest {
    ri: usize,
    pi: usize,
}

impl PullRequest {
    fn get<'a>(&self, ctx: &Context<'a>) -> &'a model::PullRequest {
        &world(ctx).repositories[self.ri].pull_requests[self.pi]
    }

    /// Applies a stuck-pagination quirk to this pull request's `connection` page.
    fn stick<T>(
        &self,
        ctx: &Context<'_>,
        connection: &str,
        after: Option<&str>,
        nodes: &mut Vec<T>,
        page: &mut PageInfo,
    ) {
        let number = self.get(ctx).number;
        if let (Some(mode), Some(a)) = (stuck(ctx, self.ri, connection, Some(number)), after) {
            stick(mode, a, nodes, page);
        }
    }
}

#[Object]
impl PullRequest {
    async fn id(&self, ctx: &Context<'_>) -> ID {
        ID(node_id("PR", self.get(ctx).id))
    }
    async fn full_database_id(&self, ctx: &Context<'_>) -> BigInt {
        BigInt(self.get(ctx).id)
    }
    async fn number(&self, ctx: &Context<'_>) -> i32 {
        self.get(ctx).number as i32
    }
    async fn title(&self, ctx: &Context<'_>) -> String {
        self.get(ctx).title.clone()
    }
    async fn state(&self, ctx: &Context<'_>) -> PullRequestState {
        state(self.get(ctx).state)
    }
    async fn is_draft(&self, ctx: &Context<'_>) -> bool {
        self.get(ctx).is_draft
    }
    async fn created_at(&self, ctx: &Context<'_>) -> GhDateTime {
        dt(self.get(ctx).created_at)
    }
    async fn updated_at(&self, ctx: &Context<'_>) -> GhDateTime {
        dt(self.get(ctx).updated_at)
    }
    async fn closed_at(&self, ctx: &Context<'_>) -> Option<GhDateTime> {
        self.get(ctx).closed_at.map(dt)
    }
    async fn merged_at(&self, ctx: &Context<'_>) -> Option<GhDateTime> {
        self.get(ctx).merged_at.map(dt)
    }
    async fn merged(&self, ctx: &Context<'_>) -> bool {
        self.get(ctx).merged_at.is_some()
    }
    async fn author(&self, ctx: &Context<'_>) -> Option<Actor> {
        actor(&self.get(ctx).author)
    }
    async fn merged_by(&self, ctx: &Context<'_>) -> Option<Actor> {
        actor(&self.get(ctx).merged_by)
    }
    async fn base_ref_name(&self, ctx: &Context<'_>) -> String {
        self.get(ctx).base_ref.clone()
    }
    async fn head_ref_name(&self, ctx: &Context<'_>) -> String {
        self.get(ctx).head_ref.clone()
    }
    async fn base_ref_oid(&self, ctx: &Context<'_>) -> String {
        self.get(ctx).base_oid.clone()
    }
    async fn head_ref_oid(&self, ctx: &Context<'_>) -> String {
        self.get(ctx).head_oid.clone()
    }
    async fn additions(&self, ctx: &Context<'_>) -> i32 {
        self.get(ctx).additions as i32
    }
    async fn deletions(&self, ctx: &Context<'_>) -> i32 {
        self.get(ctx).deletions as i32
    }
    async fn changed_files(&self, ctx: &Context<'_>) -> i32 {
        self.get(ctx).changed_files as i32
    }
    async fn review_decision(&self, ctx: &Context<'_>) -> Option<PullRequestReviewDecision> {
        self.get(ctx).review_decision.map(|d| match d {
            model::ReviewDecision::Approved => PullRequestReviewDecision::Approved,
            model::ReviewDecision::ChangesRequested => PullRequestReviewDecision::ChangesRequested,
            model::ReviewDecision::ReviewRequired => PullRequestReviewDecision::ReviewRequired,
        })
    }
    async fn labels(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<LabelConnection> {
        let labels = &self.get(ctx).labels;
        let (range, mut page) = offset_page(labels.len(), first, after.clone())?;
        let mut nodes: Vec<Label> = labels[range]
            .iter()
            .map(|n| Label { name: n.clone() })
            .collect();
        self.stick(ctx, "labels", after.as_deref(), &mut nodes, &mut page);
        Ok(LabelConnection {
            nodes,
            total: labels.len(),
            page,
        })
    }
    /// GitHub lists at most 250 commits on a pull request; `totalCount` tells the real number.
    async fn commits(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<PullRequestCommitConnection> {
        let pr = self.get(ctx);
        let name = &world(ctx).repositories[self.ri].name;
        if quirks(ctx).is_some_and(|q| {
            q.poison_pull_requests
                .iter()
                .any(|(r, n)| r == name && *n == pr.number)
        }) {
            return Err(async_graphql::Error::new(POISON_MARKER));
        }
        let listed = pr.commits.len().min(PR_COMMIT_CAP);
        let (range, mut page) = offset_page(listed, first, after.clone())?;
        let mut nodes: Vec<PullRequestCommit> = range
            .map(|ci| PullRequestCommit {
                commit: Commit::pr(self.ri, self.pi, ci),
            })
            .collect();
        self.stick(ctx, "commits", after.as_deref(), &mut nodes, &mut page);
        Ok(PullRequestCommitConnection {
            nodes,
            total: if ctx.data_opt::<CapCommitTotal>().is_some_and(|c| c.0) {
                listed
            } else {
                pr.commits.len()
            },
            page,
        })
    }
    async fn reviews(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<PullRequestReviewConnection> {
        let pr = self.get(ctx);
        let (range, mut page) = offset_page(pr.reviews.len(), first, after.clone())?;
        let mut nodes: Vec<PullRequestReview> = range
            .map(|vi| PullRequestReview {
                ri: self.ri,
                pi: self.pi,
                vi,
            })
            .collect();
        self.stick(ctx, "reviews", after.as_deref(), &mut nodes, &mut page);
        Ok(PullRequestReviewConnection {
            nodes,
            total: pr.reviews.len(),
            page,
        })
    }
    async fn comments(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<IssueCommentConnection> {
        let pr = self.get(ctx);
        let (range, mut page) = offset_page(pr.comments.len(), first, after.clone())?;
        let mut nodes: Vec<IssueComment> = range
            .map(|ci| IssueComment {
                ri: self.ri,
                pi: self.pi,
                ci,
            })
            .collect();
        self.stick(ctx, "comments", after.as_deref(), &mut nodes, &mut page);
        Ok(IssueCommentConnection {
            nodes,
            total: pr.comments.len(),
            page,
        })
    }
}

pub struct Label {
    name: String,
}

#[Object]
impl Label {
    async fn name(&self) -> &str {
        &self.name
    }
}

#[derive(Clone)]
pub struct PullRequestCommit {
    commit: Commit,
}

#[Object]
impl PullRequestCommit {
    async fn commit(&self) -> &Commit {
        &self.commit
    }
}

/// A commit: one of a pull request's (from the world), or one of a git repository's (from
/// its objects; `info` read lazily when a field needs more than the oid).
#[derive(Clone)]
pub struct Commit {
    src: CommitSrc,
}

#[derive(Clone)]
enum CommitSrc {
    Pr {
        ri: usize,
        pi: usize,
        ci: usize,
    },
    Git {
        /// The repository's database id.
        repo_id: u64,
        oid: String,
        /// The history starting at this commit, when it is known: (list, index of it).
        info: Option<(Arc<Vec<HistoryCommit>>, usize)>,
    },
}

impl Commit {
    fn pr(ri: usize, pi: usize, ci: usize) -> Commit {
        Commit {
            src: CommitSrc::Pr { ri, pi, ci },
        }
    }

    fn git(repo_id: u64, oid: String) -> Commit {
        Commit {
            src: CommitSrc::Git {
                repo_id,
                oid,
                info: None,
            },
        }
    }
}

pub struct GitActor {
    name: String,
    email: Option<String>,
    date: DateTime<Utc>,
    user: Option<(u64, String)>,
}

#[Object]
impl GitActor {
    async fn name(&self) -> &str {
        &self.name
    }
    async fn email(&self) -> Option<&str> {
        self.email.as_deref()
    }
    async fn date(&self) -> GhDateTime {
        dt(self.date)
    }
    /// The GitHub account behind the email: for a git repository's commit, the one
    /// [`crate::git::linked_user`] links.
    async fn user(&self) -> Option<User> {
        self.user.as_ref().map(|(id, login)| {
            User(ActorData {
                login: login.clone(),
                id: *id,
            })
        })
    }
}

/// The git objects of the request (request data): the simulator's store, if it has one.
#[derive(Clone)]
pub struct GitData(pub Option<Arc<GitStore>>);

/// The history from `oid` in git repository `repo_id`, read on a blocking thread (cached by
/// the store); `None` when `oid` is no commit there.
async fn git_history(
    ctx: &Context<'_>,
    repo_id: u64,
    oid: &str,
) -> async_graphql::Result<Option<Arc<Vec<HistoryCommit>>>> {
    let Some(store) = ctx.data_opt::<GitData>().and_then(|g| g.0.clone()) else {
        return Ok(None);
    };
    let oid = oid.to_string();
    tokio::task::spawn_blocking(move || store.history(repo_id, &oid))
        .await
        .map_err(|e| async_graphql::Error::new(format!("reading git history: {e}")))?
        .map_err(|e| async_graphql::Error::new(format!("reading git history: {e:#}")))
}

fn epoch(t: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp(t, 0).unwrap_or_default()
}

impl Commit {
    fn get<'a>(&self, ctx: &Context<'a>) -> Option<&'a model::Commit> {
        match self.src {
            CommitSrc::Pr { ri, pi, ci } => {
                Some(&world(ctx).repositories[ri].pull_requests[pi].commits[ci])
            }
            CommitSrc::Git { .. } => None,
        }
    }

    /// A git commit's details (loading its history when not known yet).
    async fn git_info(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<HistoryCommit>> {
        match &self.src {
            CommitSrc::Pr { .. } => Ok(None),
            CommitSrc::Git {
                info: Some((list, i)),
                ..
            } => Ok(list.get(*i).cloned()),
            CommitSrc::Git { repo_id, oid, .. } => Ok(git_history(ctx, *repo_id, oid)
                .await?
                .and_then(|l| l.first().cloned())),
        }
    }
}

#[Object]
impl Commit {
    async fn id(&self, ctx: &Context<'_>) -> ID {
        ID(commit_node_id(&self.oid_of(ctx)))
    }
    async fn oid(&self, ctx: &Context<'_>) -> GitObjectId {
        GitObjectId(self.oid_of(ctx))
    }
    async fn message_headline(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        if let Some(c) = self.get(ctx) {
            return Ok(c.message_headline.clone());
        }
        Ok(self
            .git_info(ctx)
            .await?
            .map(|i| i.headline)
            .unwrap_or_default())
    }
    async fn authored_date(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<GhDateTime>> {
        if let Some(c) = self.get(ctx) {
            return Ok(Some(dt(c.authored_at)));
        }
        Ok(self.git_info(ctx).await?.map(|i| dt(epoch(i.authored_at))))
    }
    async fn committed_date(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<GhDateTime>> {
        if let Some(c) = self.get(ctx) {
            return Ok(Some(dt(c.committed_at)));
        }
        Ok(self.git_info(ctx).await?.map(|i| dt(epoch(i.committed_at))))
    }
    async fn additions(&self, ctx: &Context<'_>) -> i32 {
        self.get(ctx).map_or(0, |c| c.additions as i32)
    }
    async fn deletions(&self, ctx: &Context<'_>) -> i32 {
        self.get(ctx).map_or(0, |c| c.deletions as i32)
    }
    async fn author(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<GitActor>> {
        if let Some(c) = self.get(ctx) {
            return Ok(Some(GitActor {
                name: c.author_name.clone(),
                email: None,
                date: c.authored_at,
                user: c.author_login.clone().map(|l| (1, l)),
            }));
        }
        Ok(self.git_info(ctx).await?.map(|i| GitActor {
            user: linked_user(&i.author_email).map(|(id, l)| (id as u64, l)),
            name: i.author_name,
            email: Some(i.author_email),
            date: epoch(i.authored_at),
        }))
    }
    async fn committer(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<GitActor>> {
        if let Some(c) = self.get(ctx) {
            return Ok(Some(GitActor {
                name: c.committer_name.clone(),
                email: None,
                date: c.committed_at,
                user: c.committer_login.clone().map(|l| (1, l)),
            }));
        }
        Ok(self.git_info(ctx).await?.map(|i| GitActor {
            user: linked_user(&i.committer_email).map(|(id, l)| (id as u64, l)),
            name: i.committer_name,
            email: Some(i.committer_email),
            date: epoch(i.committed_at),
        }))
    }
    /// The commits reachable from this one, newest committer date first as `git rev-list`
    /// lists them, `first` (0..=100) a page after the cursor `after` (cursors are `"OID
    /// OFFSET"`, base64, stable). A pull request's commit has no history here (empty).
    async fn history(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<CommitHistoryConnection> {
        let CommitSrc::Git { repo_id, oid, info } = &self.src else {
            return Ok(CommitHistoryConnection {
                nodes: Vec::new(),
                total: 0,
                page: PageInfo {
                    has_next_page: false,
                    has_previous_page: false,
                    start_cursor: None,
                    end_cursor: None,
                },
            });
        };
        let (list, at) = match info {
            Some((l, i)) if *i == 0 => (Arc::clone(l), 0),
            _ => match git_history(ctx, *repo_id, oid).await? {
                Some(l) => (l, 0),
                None => return Err(async_graphql::Error::new("the commit is gone")),
            },
        };
        let len = list.len() - at;
        let start = match after {
            Some(c) => {
                let raw = decode_cursor(&c)?;
                let (head, offset) = raw.split_once(' ').ok_or_else(|| {
                    async_graphql::Error::new(format!(
                        "`{c}` does not appear to be a valid cursor."
                    ))
                })?;
                if !head.eq_ignore_ascii_case(oid) {
                    return Err(async_graphql::Error::new(format!(
                        "`{c}` does not appear to be a valid cursor."
                    )));
                }
                offset
                    .parse::<usize>()
                    .map_err(|_| async_graphql::Error::new("invalid cursor"))?
                    + 1
            }
            None => 0,
        }
        .min(len);
        let n = first.unwrap_or(100).clamp(0, 100) as usize;
        let end = (start + n).min(len);
        let cursor = |i: usize| encode_cursor(&format!("{oid} {i}"));
        let page = PageInfo {
            has_next_page: end < len,
            has_previous_page: start > 0,
            start_cursor: (end > start).then(|| cursor(start)),
            end_cursor: (end > start).then(|| cursor(end - 1)),
        };
        let nodes = (start..end)
            .map(|i| Commit {
                src: CommitSrc::Git {
                    repo_id: *repo_id,
                    oid: list[at + i].oid.clone(),
                    info: Some((Arc::clone(&list), at + i)),
                },
            })
            .collect();
        Ok(CommitHistoryConnection {
            nodes,
            total: len,
            page,
        })
    }
}

impl Commit {
    fn oid_of(&self, ctx: &Context<'_>) -> String {
        match &self.src {
            CommitSrc::Pr { .. } => self.get(ctx).map(|c| c.sha.clone()).unwrap_or_default(),
            CommitSrc::Git { oid, .. } => oid.clone(),
        }
    }
}

/// GitHub's `GitObjectID`: a hex sha.
#[derive(Clone, Debug)]
pub struct GitObjectId(pub String);

#[Scalar(name = "GitObjectID")]
impl ScalarType for GitObjectId {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => Ok(GitObjectId(s.clone())),
            _ => Err(InputValueError::expected_type(value)),
        }
    }
    fn to_value(&self) -> Value {
        Value::String(self.0.clone())
    }
}

/// GitHub's `GitObject`: the simulator serves commits only.
#[derive(Interface, Clone)]
#[graphql(field(name = "oid", ty = "GitObjectId"))]
pub enum GitObject {
    Commit(Commit),
}

/// A commit's node id: commits have no database id, so the sha stands in.
pub fn commit_node_id(sha: &str) -> String {
    format!(
        "C_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("sim:sha:{sha}"))
    )
}

fn parse_commit_node_id(id: &str) -> Option<String> {
    let rest = id.strip_prefix("C_")?;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(rest)
        .ok()?;
    String::from_utf8(raw)
        .ok()?
        .strip_prefix("sim:sha:")
        .map(str::to_string)
}

#[derive(Clone)]
pub struct PullRequestReview {
    ri: usize,
    pi: usize,
    vi: usize,
}

impl PullRequestReview {
    fn get<'a>(&self, ctx: &Context<'a>) -> &'a model::Review {
        &world(ctx).repositories[self.ri].pull_requests[self.pi].reviews[self.vi]
    }
}

#[Object]
impl PullRequestReview {
    async fn id(&self, ctx: &Context<'_>) -> ID {
        ID(node_id("PRR", self.get(ctx).id))
    }
    async fn full_database_id(&self, ctx: &Context<'_>) -> BigInt {
        BigInt(self.get(ctx).id)
    }
    async fn author(&self, ctx: &Context<'_>) -> Option<Actor> {
        actor(&self.get(ctx).author)
    }
    async fn state(&self, ctx: &Context<'_>) -> PullRequestReviewState {
        match self.get(ctx).state {
            model::ReviewState::Commented => PullRequestReviewState::Commented,
            model::ReviewState::Approved => PullRequestReviewState::Approved,
            model::ReviewState::ChangesRequested => PullRequestReviewState::ChangesRequested,
            model::ReviewState::Dismissed => PullRequestReviewState::Dismissed,
        }
    }
    async fn submitted_at(&self, ctx: &Context<'_>) -> Option<GhDateTime> {
        self.get(ctx).submitted_at.map(dt)
    }
    async fn created_at(&self, ctx: &Context<'_>) -> GhDateTime {
        dt(self.get(ctx).created_at)
    }
    async fn updated_at(&self, ctx: &Context<'_>) -> GhDateTime {
        dt(self.get(ctx).updated_at)
    }
    async fn body(&self, ctx: &Context<'_>) -> String {
        self.get(ctx).body.clone()
    }
    async fn comments(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<PullRequestReviewCommentConnection> {
        let r = self.get(ctx);
        let (range, mut page) = offset_page(r.comments.len(), first, after.clone())?;
        let mut nodes: Vec<PullRequestReviewComment> = range
            .map(|ci| PullRequestReviewComment {
                ri: self.ri,
                pi: self.pi,
                vi: self.vi,
                ci,
            })
            .collect();
        let number = world(ctx).repositories[self.ri].pull_requests[self.pi].number;
        if let (Some(mode), Some(a)) = (
            stuck(ctx, self.ri, "reviewComments", Some(number)),
            after.as_deref(),
        ) {
            stick(mode, a, &mut nodes, &mut page);
        }
        Ok(PullRequestReviewCommentConnection {
            nodes,
            total: r.comments.len(),
            page,
        })
    }
}

#[derive(Clone)]
pub struct PullRequestReviewComment {
    ri: usize,
    pi: usize,
    vi: usize,
    ci: usize,
}

impl PullRequestReviewComment {
    fn get<'a>(&self, ctx: &Context<'a>) -> &'a model::ReviewComment {
        &world(ctx).repositories[self.ri].pull_requests[self.pi].reviews[self.vi].comments[self.ci]
    }
}

#[Object]
impl PullRequestReviewComment {
    async fn id(&self, ctx: &Context<'_>) -> ID {
        ID(node_id("PRRC", self.get(ctx).id))
    }
    async fn full_database_id(&self, ctx: &Context<'_>) -> BigInt {
        BigInt(self.get(ctx).id)
    }
    async fn path(&self, ctx: &Context<'_>) -> String {
        self.get(ctx).path.clone()
    }
    async fn author(&self, ctx: &Context<'_>) -> Option<Actor> {
        actor(&self.get(ctx).author)
    }
    async fn created_at(&self, ctx: &Context<'_>) -> GhDateTime {
        dt(self.get(ctx).created_at)
    }
    async fn updated_at(&self, ctx: &Context<'_>) -> GhDateTime {
        dt(self.get(ctx).updated_at)
    }
    async fn body(&self, ctx: &Context<'_>) -> String {
        self.get(ctx).body.clone()
    }
    async fn reply_to(&self, ctx: &Context<'_>) -> Option<PullRequestReviewComment> {
        match world(ctx).locate(self.get(ctx).reply_to?)? {
            Location::ReviewComment(ri, pi, vi, ci) => {
                Some(PullRequestReviewComment { ri, pi, vi, ci })
            }
            _ => None,
        }
    }
    async fn pull_request_review(&self) -> PullRequestReview {
        PullRequestReview {
            ri: self.ri,
            pi: self.pi,
            vi: self.vi,
        }
    }
}

#[derive(Clone)]
pub struct IssueComment {
    ri: usize,
    pi: usize,
    ci: usize,
}

impl IssueComment {
    fn get<'a>(&self, ctx: &Context<'a>) -> &'a model::IssueComment {
        &world(ctx).repositories[self.ri].pull_requests[self.pi].comments[self.ci]
    }
}

#[Object]
impl IssueComment {
    async fn id(&self, ctx: &Context<'_>) -> ID {
        ID(node_id("IC", self.get(ctx).id))
    }
    async fn full_database_id(&self, ctx: &Context<'_>) -> BigInt {
        BigInt(self.get(ctx).id)
    }
    async fn author(&self, ctx: &Context<'_>) -> Option<Actor> {
        actor(&self.get(ctx).author)
    }
    async fn created_at(&self, ctx: &Context<'_>) -> GhDateTime {
        dt(self.get(ctx).created_at)
    }
    async fn updated_at(&self, ctx: &Context<'_>) -> GhDateTime {
        dt(self.get(ctx).updated_at)
    }
    async fn body(&self, ctx: &Context<'_>) -> String {
        self.get(ctx).body.clone()
    }
}

pub struct RateLimit(RateLimitInfo);

#[Object]
impl RateLimit {
    async fn cost(&self) -> i32 {
        self.0.cost as i32
    }
    async fn limit(&self) -> i32 {
        self.0.limit as i32
    }
    async fn remaining(&self) -> i32 {
        self.0.remaining as i32
    }
    async fn used(&self) -> i32 {
        self.0.used as i32
    }
    async fn reset_at(&self) -> GhDateTime {
        dt(self.0.reset_at)
    }
    async fn node_count(&self) -> i32 {
        self.0.node_count as i32
    }
}

#[derive(Interface, Clone)]
#[graphql(field(name = "id", ty = "ID"))]
pub enum Node {
    Repository(Repository),
    PullRequest(PullRequest),
    PullRequestReview(PullRequestReview),
    PullRequestReviewComment(PullRequestReviewComment),
    IssueComment(IssueComment),
    Commit(Commit),
}

fn lookup(w: &World, id: &str) -> Option<Node> {
    if let Some(sha) = parse_commit_node_id(id) {
        for (ri, repo) in w.repositories.iter().enumerate() {
            for (pi, pr) in repo.pull_requests.iter().enumerate() {
                if let Some(ci) = pr.commits.iter().position(|c| c.sha == sha) {
                    return Some(Node::Commit(Commit::pr(ri, pi, ci)));
                }
            }
        }
        return None;
    }
    Some(match w.locate(parse_node_id(id)?)? {
        Location::Repository(ri) => Node::Repository(Repository::org(ri)),
        Location::PullRequest(ri, pi) => Node::PullRequest(PullRequest { ri, pi }),
        Location::Review(ri, pi, vi) => Node::PullRequestReview(PullRequestReview { ri, pi, vi }),
        Location::ReviewComment(ri, pi, vi, ci) => {
            Node::PullRequestReviewComment(PullRequestReviewComment { ri, pi, vi, ci })
        }
        Location::IssueComment(ri, pi, ci) => Node::IssueComment(IssueComment { ri, pi, ci }),
    })
}

/// A node by id, unless a quirk says it vanished.
fn resolve(ctx: &Context<'_>, id: &str) -> Option<Node> {
    if quirks(ctx).is_some_and(|q| q.vanished_nodes.iter().any(|v| v == id)) {
        return None;
    }
    lookup(world(ctx), id)
}

fn not_found_message(id: &str) -> String {
    format!("Could not resolve to a node with the global id of '{id}'")
}

/// An error GitHub reports with a `type`, such as `NOT_FOUND`.
fn typed_error(kind: &str, message: String) -> async_graphql::Error {
    async_graphql::Error::new(message).extend_with(|_, e| e.set("type", kind))
}

/// Who the request's token belongs to (request data): `(databaseId, login)`.
#[derive(Clone, Debug)]
pub struct Viewer(pub u64, pub String);

pub struct Query;

#[Object]
impl Query {
    /// The user of the request's token (see [`crate::server::viewer_of`]).
    async fn viewer(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        let v = ctx
            .data_opt::<Viewer>()
            .ok_or_else(|| async_graphql::Error::new("no viewer"))?;
        Ok(User(ActorData {
            login: v.1.clone(),
            id: v.0,
        }))
    }

    async fn rate_limit(
        &self,
        ctx: &Context<'_>,
        #[graphql(name = "dryRun")] _dry_run: Option<bool>,
    ) -> Option<RateLimit> {
        ctx.data_opt::<RateLimitInfo>().cloned().map(RateLimit)
    }

    async fn repository(
        &self,
        ctx: &Context<'_>,
        owner: String,
        name: String,
        #[graphql(name = "followRenames")] _follow_renames: Option<bool>,
    ) -> async_graphql::Result<Option<Repository>> {
        let w = world(ctx);
        match w.repository(&name) {
            Some((ri, _)) if owner.eq_ignore_ascii_case(&w.org.login) => {
                Ok(Some(Repository::org(ri)))
            }
            _ => Err(typed_error(
                "NOT_FOUND",
                format!("Could not resolve to a Repository with the name '{owner}/{name}'."),
            )),
        }
    }

    async fn organization(
        &self,
        ctx: &Context<'_>,
        login: String,
    ) -> async_graphql::Result<Option<Organization>> {
        let w = world(ctx);
        if login.eq_ignore_ascii_case(&w.org.login) {
            Ok(Some(Organization {
                data: ActorData {
                    login: w.org.login.clone(),
                    id: w.org.id,
                },
            }))
        } else {
            Err(typed_error(
                "NOT_FOUND",
                format!("Could not resolve to an Organization with the login of '{login}'."),
            ))
        }
    }

    /// GitHub's search: counts of pull requests (`ISSUE`, see [`crate::search::parse`]), or
    /// repositories of the public population (`REPOSITORY`, see
    /// [`crate::search::parse_repository_search`]) with `repositoryCount` and pages of nodes.
    /// Each search connection is one request to the cost formula, a count alone included.
    async fn search(
        &self,
        ctx: &Context<'_>,
        query: String,
        #[graphql(name = "type")] kind: SearchType,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<SearchResultItemConnection> {
        match kind {
            SearchType::Issue => {
                let q = crate::search::parse(&query).map_err(async_graphql::Error::new)?;
                Ok(SearchResultItemConnection {
                    issue_count: q.count(world(ctx)),
                    repository_count: 0,
                    nodes: Vec::new(),
                    start: 0,
                    page: PageInfo {
                        has_next_page: false,
                        has_previous_page: false,
                        start_cursor: None,
                        end_cursor: None,
                    },
                })
            }
            SearchType::Repository => repository_search(ctx, &query, first, after),
            _ => Err(async_graphql::Error::new(
                "the simulator's search serves type: ISSUE and REPOSITORY only",
            )),
        }
    }

    async fn node(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Node>> {
        match resolve(ctx, &id) {
            Some(n) => Ok(Some(n)),
            None => Err(typed_error("NOT_FOUND", not_found_message(&id))),
        }
    }

    async fn nodes(
        &self,
        ctx: &Context<'_>,
        ids: Vec<ID>,
    ) -> async_graphql::Result<Vec<Option<Node>>> {
        if ids.len() > 100 {
            return Err(typed_error(
                "EXCESSIVE_PAGINATION",
                "You may not request more than 100 nodes at once.".into(),
            ));
        }
        // GitHub answers an id it cannot resolve with null in its place and a NOT_FOUND
        // error whose path names the item; the other items are served.
        Ok(ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let found = resolve(ctx, id);
                if found.is_none() {
                    let mut e = async_graphql::ServerError::new(not_found_message(id), None);
                    e.path = vec![
                        async_graphql::PathSegment::Field("nodes".into()),
                        async_graphql::PathSegment::Index(i),
                    ];
                    let mut ext = async_graphql::ErrorExtensionValues::default();
                    ext.set("type", "NOT_FOUND");
                    e.extensions = Some(ext);
                    ctx.add_error(e);
                }
                found
            })
            .collect())
    }
}
