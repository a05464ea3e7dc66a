//! GitHub's GraphQL rate-limit cost and node limits, computed from a query document the way
//! GitHub documents it: every connection that selects `nodes` or `edges` needs `first` or
//! `last` in 1..=100; it costs one request per parent item; the query costs the sum of
//! requests divided by 100, rounded, at least 1; at most 500,000 nodes.

use async_graphql::parser::types::Directive;
use async_graphql::parser::types::{
    ExecutableDocument, Field, FragmentDefinition, Selection, SelectionSet,
};
use async_graphql::{Name, Positioned};
use async_graphql_value::Value as GqlValue;
use std::collections::HashMap;

pub const MAX_NODES: u64 = 500_000;

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

    fn selects_nodes(&self, set: &SelectionSet, depth: usize) -> bool {
        if depth > 16 {
            return false;
        }
        set.items.iter().any(|sel| match &sel.node {
            Selection::Field(f) => matches!(f.node.name.node.as_str(), "nodes" | "edges"),
            Selection::InlineFragment(i) => {
                self.selects_nodes(&i.node.selection_set.node, depth + 1)
            }
            Selection::FragmentSpread(s) => self
                .fragments
                .get(&s.node.fragment_name.node)
                .is_some_and(|f| self.selects_nodes(&f.node.selection_set.node, depth + 1)),
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
                    if self.selects_nodes(&field.selection_set.node, 0) {
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

    #[test]
    fn matches_githubs_documented_example() {
        // GitHub's docs: 50 repositories x 60 issues... here 50 PRs x 4 nested connections.
        let q = "query($n:Int=50){ repository(owner:\"a\",name:\"b\"){ pullRequests(first:$n){ nodes { commits(first:100){nodes{commit{oid}}} reviews(first:100){nodes{id comments{totalCount}}} comments(first:100){nodes{id}} labels(first:100){nodes{name}} } } } }";
        let c = cost(q, serde_json::json!({})).unwrap();
        assert_eq!(c.requests, 1 + 50 * 4);
        assert_eq!(c.points, 2);
        assert_eq!(c.nodes, 50 + 50 * 400);
        let c = cost(q, serde_json::json!({"n": 25})).unwrap();
        assert_eq!((c.requests, c.points), (101, 1));
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
