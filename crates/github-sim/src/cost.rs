//! GitHub's GraphQL rate-limit cost and node limits, computed from a query document the way
//! GitHub documents it ("Rate limits and query limits for the GraphQL API"): every connection
//! the query selects costs one request per item its parent connections may return (their
//! `first`/`last`), whether it selects `nodes`/`edges` or only `totalCount`/`pageInfo`; the
//! query costs the sum of requests divided by 100, rounded, at least 1. A connection that
//! selects `nodes` or `edges` needs `first` or `last` in 0..=100, and a query may ask for at
//! most 500,000 nodes. `search` is a connection like any other: a page, and a count probe
//! (`first: 0`, or `repositoryCount` alone), are one request each, so five aliased probes
//! cost 1 point together and 150 cost 2.

use async_graphql::parser::types::Directive;
use async_graphql::parser::types::{
    ExecutableDocument, Field, FragmentDefinition, Selection, SelectionSet,
};
use async_graphql::{Name, Positioned};
use async_graphql_value::Value as GqlValue;
use std::collections::HashMap;

pub const MAX_NODES: u64 = 500_000;

/// Fields that only connections have: selecting one makes the field a connection even when it
/// selects no `nodes` or `edges`.
const CONNECTION_ONLY_FIELDS: &[&str] = &[
    "totalCount",
    "pageInfo",
    "repositoryCount",
    "issueCount",
    "userCount",
    "discussionCount",
    "codeCount",
    "wikiCount",
];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryCost {
    /// Connection requests, GitHub's intermediate figure.
    pub requests: u64,
    /// Rate-limit points.
    pub points: u64,
    /// The most nodes the query may return.
    pub nodes: u64,
    /// `search` connections in the query (aliases each count), pages and probes alike.
    pub searches: u64,
    /// The most results its `search` connections may return (the sum of their `first`).
    pub search_nodes: u64,
    /// Of `searches`, those with `type: REPOSITORY`.
    pub repository_searches: u64,
}

/// Why GitHub would refuse to run a query, with GitHub's error `type`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CostError {
    pub kind: &'static str,
    pub message: String,
}

struct Walker<'a> {
    fragments: &'a HashMap<Name, Positioned<FragmentDefinition>>,
    vars: &'a serde_json::Map<String, serde_json::Value>,
    defaults: HashMap<String, serde_json::Value>,
    requests: u64,
    nodes: u64,
    searches: u64,
    search_nodes: u64,
    repository_searches: u64,
    error: Option<CostError>,
}

impl Walker<'_> {
    fn resolve(&self, v: &GqlValue) -> serde_json::Value {
        match v {
            GqlValue::Variable(name) => self
                .vars
                .get(name.as_str())
                .or_else(|| self.defaults.get(name.as_str()))
                .cloned()
                .unwrap_or(serde_json::Value::Null),
            GqlValue::Number(n) => serde_json::Value::Number(n.clone()),
            GqlValue::Boolean(b) => serde_json::Value::Bool(*b),
            GqlValue::List(items) => {
                serde_json::Value::Array(items.iter().map(|i| self.resolve(i)).collect())
            }
            GqlValue::String(s) => serde_json::Value::String(s.clone()),
            _ => serde_json::Value::Null,
        }
    }

    fn included(&self, directives: &[Positioned<Directive>]) -> bool {
        for d in directives {
            let cond = d.node.get_argument("if").map(|v| self.resolve(&v.node));
            match (d.node.name.node.as_str(), cond) {
                ("include", Some(serde_json::Value::Bool(false))) => return false,
                ("skip", Some(serde_json::Value::Bool(true))) => return false,
                _ => {}
            }
        }
        true
    }

    /// Whether `set` selects one of `names` directly (through fragments too).
    fn selects_any(&self, set: &SelectionSet, names: &[&str], depth: usize) -> bool {
        if depth > 16 {
            return false;
        }
        set.items.iter().any(|sel| match &sel.node {
            Selection::Field(f) => names.contains(&f.node.name.node.as_str()),
            Selection::InlineFragment(i) => {
                self.selects_any(&i.node.selection_set.node, names, depth + 1)
            }
            Selection::FragmentSpread(s) => self
                .fragments
                .get(&s.node.fragment_name.node)
                .is_some_and(|f| self.selects_any(&f.node.selection_set.node, names, depth + 1)),
        })
    }

    fn int_arg(&self, field: &Field, name: &str) -> Option<serde_json::Value> {
        field
            .get_argument(name)
            .map(|v| self.resolve(&v.node))
            .filter(|v| !v.is_null())
    }

    fn walk(&mut self, set: &SelectionSet, multiplier: u64, depth: usize) {
        if depth > 32 || self.error.is_some() {
            return;
        }
        for sel in &set.items {
            if !self.included(sel.node.directives()) {
                continue;
            }
            match &sel.node {
                Selection::InlineFragment(i) => {
                    self.walk(&i.node.selection_set.node, multiplier, depth + 1)
                }
                Selection::FragmentSpread(s) => {
                    if let Some(f) = self.fragments.get(&s.node.fragment_name.node) {
                        let set = f.node.selection_set.node.clone();
                        self.walk(&set, multiplier, depth + 1);
                    }
                }
                Selection::Field(f) => {
                    let field = &f.node;
                    let mut child = multiplier;
                    if field.name.node == "nodes" && depth == 0 {
                        // Root `nodes(ids:)`: every id is a parent of what is nested below it.
                        if let Some(serde_json::Value::Array(ids)) = self.int_arg(field, "ids") {
                            child = multiplier * (ids.len() as u64).max(1);
                        }
                    }
                    let set = &field.selection_set.node;
                    let lists = self.selects_any(set, &["nodes", "edges"], 0);
                    // Only connections have these fields in GitHub's schema (`search` counts
                    // by kind); a connection selected for its count alone is still a request
                    // per parent.
                    let count_only = !lists && self.selects_any(set, CONNECTION_ONLY_FIELDS, 0);
                    let is_search = field.name.node == "search";
                    if is_search && (lists || count_only) {
                        let kind = field.get_argument("type").map(|v| match &v.node {
                            GqlValue::Enum(n) => n.to_string(),
                            other => self.resolve(other).as_str().unwrap_or("").to_string(),
                        });
                        if kind.as_deref() == Some("REPOSITORY") {
                            self.repository_searches += multiplier;
                        }
                    }
                    if count_only {
                        self.requests += multiplier;
                        if is_search {
                            self.searches += multiplier;
                        }
                    }
                    if lists {
                        let bound = self
                            .int_arg(field, "first")
                            .or_else(|| self.int_arg(field, "last"));
                        let size = match bound {
                            None => {
                                self.error = Some(CostError {
                                    kind: "MISSING_PAGINATION_BOUNDARIES",
                                    message: format!(
                                        "You must provide a `first` or `last` value to properly paginate the `{}` connection.",
                                        field.name.node
                                    ),
                                });
                                return;
                            }
                            Some(v) => match v.as_i64() {
                                Some(n) if (0..=100).contains(&n) => n as u64,
                                _ => {
                                    self.error = Some(CostError {
                                        kind: "EXCESSIVE_PAGINATION",
                                        message: format!(
                                            "Requesting {v} records on the `{}` connection exceeds the `first` limit of 100 records.",
                                            field.name.node
                                        ),
                                    });
                                    return;
                                }
                            },
                        };
                        self.requests += multiplier;
                        self.nodes += multiplier * size;
                        if is_search {
                            self.searches += multiplier;
                            self.search_nodes += multiplier * size;
                        }
                        child = multiplier * size;
                    }
                    self.walk(&field.selection_set.node, child, depth + 1);
                }
            }
        }
    }
}

/// The cost of running `operation` (or the only operation) of `doc` with `vars`.
pub fn query_cost(
    doc: &ExecutableDocument,
    operation: Option<&str>,
    vars: &serde_json::Map<String, serde_json::Value>,
) -> Result<QueryCost, CostError> {
    let op = doc
        .operations
        .iter()
        .find(|(name, _)| operation.is_none() || name.map(|n| n.as_str()) == operation)
        .map(|(_, op)| op)
        .ok_or_else(|| CostError {
            kind: "INVALID",
            message: "No operation to run.".into(),
        })?;
    let mut defaults = HashMap::new();
    for def in &op.node.variable_definitions {
        if let Some(v) = &def.node.default_value {
            if let Ok(json) = v.node.clone().into_json() {
                defaults.insert(def.node.name.node.to_string(), json);
            }
        }
    }
    let mut w = Walker {
        fragments: &doc.fragments,
        vars,
        defaults,
        requests: 0,
        nodes: 0,
        searches: 0,
        search_nodes: 0,
        repository_searches: 0,
        error: None,
    };
    w.walk(&op.node.selection_set.node, 1, 0);
    if let Some(e) = w.error {
        return Err(e);
    }
    if w.nodes > MAX_NODES {
        return Err(CostError {
            kind: "MAX_NODE_LIMIT_EXCEEDED",
            message: format!("This query requests up to {} possible nodes which exceeds the maximum limit of {MAX_NODES}.", w.nodes),
        });
    }
    let points = ((w.requests as f64 / 100.0).round() as u64).max(1);
    Ok(QueryCost {
        requests: w.requests,
        points,
        nodes: w.nodes,
        searches: w.searches,
        search_nodes: w.search_nodes,
        repository_searches: w.repository_searches,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::parser::parse_query;

    fn cost(q: &str, vars: serde_json::Value) -> Result<QueryCost, CostError> {
        let doc = parse_query(q).unwrap();
        query_cost(&doc, None, vars.as_object().unwrap())
    }

    /// The worked example of GitHub's "Rate limits and query limits for the GraphQL API":
    /// 1 + 100 + 5,000 requests, a score of 51.
    #[test]
    fn matches_githubs_documented_rate_limit_example() {
        let q = "query { viewer { login repositories(first: 100) { edges { node { id issues(first: 50) { edges { node { id labels(first: 60) { edges { node { id name } } } } } } } } } } }";
        let c = cost(q, serde_json::json!({})).unwrap();
        assert_eq!((c.requests, c.points), (5_101, 51));
    }

    /// The two node-limit examples of the same page: 550 and 22,060 nodes. The first selects
    /// `totalCount` beside `edges`, which adds no request of its own.
    #[test]
    fn matches_githubs_documented_node_examples() {
        let simple = "query { viewer { repositories(first: 50) { edges { repository:node { name issues(first: 10) { totalCount edges { node { title bodyHTML } } } } } } } }";
        let c = cost(simple, serde_json::json!({})).unwrap();
        assert_eq!((c.nodes, c.requests), (550, 51));
        let complex = "query { viewer { repositories(first: 50) { edges { repository:node { name pullRequests(first: 20) { edges { pullRequest:node { title comments(first: 10) { edges { comment:node { bodyHTML } } } } } } issues(first: 20) { totalCount edges { issue:node { title bodyHTML comments(first: 10) { edges { comment:node { bodyHTML } } } } } } } } } followers(first: 10) { edges { follower:node { login } } } } }";
        assert_eq!(cost(complex, serde_json::json!({})).unwrap().nodes, 22_060);
    }

    /// A connection selected only for its `totalCount` is charged like any other: one request
    /// per item its parents may return. Under 25 pull requests x 100 reviews that is 2,500
    /// requests, the mistake of an earlier PullRequestPage (26 points a page, not 1).
    #[test]
    fn count_only_connections_are_charged() {
        let q = "query($n:Int=25){ repository(owner:\"a\",name:\"b\"){ pullRequests(first:$n){ nodes { commits(first:100){nodes{commit{oid}}} reviews(first:100){nodes{id comments{totalCount}}} comments(first:100){nodes{id}} labels(first:100){nodes{name}} } } } }";
        let c = cost(q, serde_json::json!({})).unwrap();
        assert_eq!(c.requests, 1 + 25 * 4 + 25 * 100);
        assert_eq!(c.points, 26);
        assert_eq!(c.nodes, 25 + 25 * 400, "a count returns no nodes");
        let q = "{ repository(owner:\"a\",name:\"b\"){ pullRequests(first:10){ totalCount pageInfo { hasNextPage } } issues { totalCount } } }";
        let c = cost(q, serde_json::json!({})).unwrap();
        assert_eq!((c.requests, c.points, c.nodes), (2, 1, 0));
        let without = "query($n:Int=25){ repository(owner:\"a\",name:\"b\"){ pullRequests(first:$n){ nodes { commits(first:100){nodes{commit{oid}}} reviews(first:100){nodes{id}} comments(first:100){nodes{id}} labels(first:100){nodes{name}} } } } }";
        let c = cost(without, serde_json::json!({"n": 37})).unwrap();
        assert_eq!((c.requests, c.points), (149, 1));
        let c = cost(without, serde_json::json!({"n": 50})).unwrap();
        assert_eq!((c.requests, c.points), (201, 2));
    }

    /// Repository search by the formula: a 100-result page is one request (1 point), a count
    /// probe with `first: 0` or `repositoryCount` alone is one too, five aliased probes are 5
    /// requests (1 point), and 150 aliased probes 2 points: never free.
    #[test]
    fn search_pages_and_probes_are_requests() {
        let page = "query($q:String!,$after:String){ search(type:REPOSITORY, query:$q, first:100, after:$after){ repositoryCount pageInfo { hasNextPage endCursor } nodes { ... on Repository { databaseId stargazerCount owner { login } } } } rateLimit { cost } }";
        let c = cost(page, serde_json::json!({"q": "stars:>1"})).unwrap();
        assert_eq!((c.requests, c.points, c.nodes), (1, 1, 100));
        assert_eq!(
            (c.searches, c.search_nodes, c.repository_searches),
            (1, 100, 1)
        );
        let probe = |n: usize, first: &str| {
            let aliases: String = (0..n)
                .map(|i| format!("r{i}: search(type:REPOSITORY, query:\"created:2015-01-0{}\"{first}) {{ repositoryCount nodes {{ ... on Repository {{ databaseId }} }} }} ", i % 9 + 1))
                .collect();
            format!("{{ {aliases} }}")
        };
        let c = cost(&probe(5, ", first:0"), serde_json::json!({})).unwrap();
        assert_eq!((c.requests, c.points, c.nodes, c.searches), (5, 1, 0, 5));
        let c = cost(&probe(150, ", first:0"), serde_json::json!({})).unwrap();
        assert_eq!((c.requests, c.points), (150, 2));
        let counts = "{ a: search(type:REPOSITORY, query:\"x\") { repositoryCount } b: search(type:REPOSITORY, query:\"y\") { repositoryCount } }";
        let c = cost(counts, serde_json::json!({})).unwrap();
        assert_eq!((c.requests, c.points, c.searches), (2, 1, 2));
        let pages = (0..5)
            .map(|i| format!("p{i}: search(type:REPOSITORY, query:\"q\", first:100) {{ nodes {{ ... on Repository {{ databaseId }} }} }} "))
            .collect::<String>();
        let c = cost(&format!("{{ {pages} }}"), serde_json::json!({})).unwrap();
        assert_eq!((c.requests, c.points, c.search_nodes), (5, 1, 500));
    }

    #[test]
    fn skipped_connections_cost_nothing() {
        let q = "query($w:Boolean!){ node(id:\"x\"){ ... on PullRequest { commits(first:100) @include(if:$w) { nodes { commit { oid } } } } } }";
        assert_eq!(
            cost(q, serde_json::json!({"w": false})).unwrap().requests,
            0
        );
        assert_eq!(cost(q, serde_json::json!({"w": true})).unwrap().requests, 1);
    }

    #[test]
    fn root_nodes_multiply_by_ids() {
        let q = "query($ids:[ID!]!){ nodes(ids:$ids){ ... on PullRequestReview { comments(first:100){ nodes { id } } } } }";
        let c = cost(q, serde_json::json!({"ids": ["a", "b", "c"]})).unwrap();
        assert_eq!((c.requests, c.nodes), (3, 300));
    }

    #[test]
    fn refuses_unbounded_and_excessive_pages_and_huge_queries() {
        let unbounded = "{ repository(owner:\"a\",name:\"b\"){ pullRequests { nodes { id } } } }";
        assert_eq!(
            cost(unbounded, serde_json::json!({})).unwrap_err().kind,
            "MISSING_PAGINATION_BOUNDARIES"
        );
        let excessive =
            "{ repository(owner:\"a\",name:\"b\"){ pullRequests(first: 101) { nodes { id } } } }";
        assert_eq!(
            cost(excessive, serde_json::json!({})).unwrap_err().kind,
            "EXCESSIVE_PAGINATION"
        );
        let huge = "{ organization(login:\"a\"){ repositories(first:100){ nodes { pullRequests(first:100){ nodes { commits(first:100){ nodes { commit { oid } } } } } } } } }";
        assert_eq!(
            cost(huge, serde_json::json!({})).unwrap_err().kind,
            "MAX_NODE_LIMIT_EXCEEDED"
        );
    }
}
