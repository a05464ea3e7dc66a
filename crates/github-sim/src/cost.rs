//! GitHub's GraphQL rate-limit cost and node limits, computed from a query document the way
//! GitHub documents it ("Rate limits and query limits for the GraphQL API"): every connection
//! the query selects costs one request per item its parent connections may return (their
//! `first`/`last`), whether it selects `nodes`/`edges` or only `totalCount`/`pageInfo`; the
//! query costs the sum of requests divided by 100, rounded, at least 1. A connection that
//! selects `nodes` or `edges` needs `first` or `last` in 1..=100, and a query may ask for at
//! most 500,000 nodes.

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
                    if count_only {
                        self.requests += multiplier;
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
                                Some(n) if (1..=100).contains(&n) => n as u64,
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
