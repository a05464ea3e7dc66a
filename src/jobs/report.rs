//! What `collect`, `backfill` and `resume` print when they end: a short summary for a person at
//! a terminal, or the JSON result for scripts (stdout not a terminal, or `--json`).

use super::collect::CollectionResult;
use super::runner::RunResult;
use crate::lake::checkpoint::{RepoState, Status};
use std::fmt::Write;

/// Whether a run's result is printed as text for a person: only when stdout is a terminal and
/// `--json` was not given. Anything else (a pipe, a file, a cron wrapper) gets the JSON.
pub fn wants_text(stdout_is_terminal: bool, json_flag: bool) -> bool {
    stdout_is_terminal && !json_flag
}

/// `1234567` as `1,234,567`.
pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn status_word(s: Status) -> &'static str {
    match s {
        Status::Running => "running",
        Status::Completed => "completed",
        Status::Partial => "partial",
        Status::Failed => "failed",
    }
}

/// The tables a pull request's rows go to, in the order a person reads them, with a name for
/// each.
const CHILDREN: [(&str, &str); 4] = [
    ("pr_commits", "commits"),
    ("reviews", "reviews"),
    ("review_comments", "review comments"),
    ("issue_comments", "issue comments"),
];

/// How many failures and unservable pull requests are listed before "and N more".
const LISTED: usize = 5;

fn render_collection(out: &mut String, c: &CollectionResult) {
    let fmt = "%Y-%m-%d %H:%M UTC";
    let _ = writeln!(
        out,
        "collection {}: {}",
        c.collection_id,
        status_word(c.status)
    );
    let _ = writeln!(
        out,
        "  window     {} .. {}",
        c.window.since.format(fmt),
        c.window.until.format(fmt)
    );
    let prs = c.rows.get("pull_requests").copied().unwrap_or(0);
    let done = c
        .repos
        .iter()
        .filter(|r| r.state == RepoState::Done)
        .count();
    let children: Vec<String> = CHILDREN
        .iter()
        .map(|(t, name)| format!("{} {name}", thousands(c.rows.get(*t).copied().unwrap_or(0))))
        .collect();
    let _ = writeln!(
        out,
        "  collected  {} pull requests from {done} of {} repositories: {}",
        thousands(prs),
        c.repos.len(),
        children.join(", ")
    );
    let a = &c.api_cost;
    // A budget GitHub did not report (no request of that kind was made) is left out.
    let left: Vec<String> = [
        ("GraphQL", c.budget_left.graphql),
        ("REST", c.budget_left.rest),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| format!("{k} {}", thousands(v))))
    .collect();
    let _ = writeln!(
        out,
        "  API cost   {} GraphQL points ({} queries), {} REST requests{}",
        thousands(a.graphql_points),
        thousands(a.graphql_queries),
        thousands(a.rest_requests),
        if left.is_empty() {
            String::new()
        } else {
            format!("; left: {}", left.join(", "))
        }
    );
    match &c.load {
        Some(l) => {
            let inserted: u64 = l.tables.values().map(|t| t.inserted).sum();
            let updated: u64 = l.tables.values().map(|t| t.updated).sum();
            let deleted: u64 = l.tables.values().map(|t| t.deleted).sum();
            let _ = writeln!(
                out,
                "  loaded     {} chunks into the warehouse: {} rows new, {} updated, {} deleted",
                thousands(l.chunks as u64),
                thousands(inserted),
                thousands(updated),
                thousands(deleted)
            );
            if !l.bad_chunks.is_empty() {
                let _ = writeln!(
                    out,
                    "  damaged    {} chunks left out of the load (named on stderr; they stay in storage)",
                    l.bad_chunks.len()
                );
            }
            if !l.missing_chunks.is_empty() {
                let _ = writeln!(
                    out,
                    "  missing    {} chunks the checkpoint names are no longer in storage (wiped); skipped",
                    l.missing_chunks.len()
                );
            }
        }
        None => {
            let _ = writeln!(
                out,
                "  loaded     nothing: {} chunks are stored, not in the warehouse yet",
                thousands(c.chunks as u64)
            );
        }
    }
    let failed: Vec<_> = c.repos.iter().filter(|r| r.error.is_some()).collect();
    for r in failed.iter().take(LISTED) {
        let _ = writeln!(
            out,
            "  failed     {}: {}",
            r.name,
            r.error.as_deref().unwrap_or("")
        );
    }
    if failed.len() > LISTED {
        let _ = writeln!(
            out,
            "  failed     and {} more repositories",
            failed.len() - LISTED
        );
    }
    let skipped: Vec<(&str, u64, &str)> = c
        .repos
        .iter()
        .flat_map(|r| {
            r.not_collectable
                .iter()
                .map(move |s| (r.name.as_str(), s.number, s.error.as_str()))
        })
        .collect();
    for (repo, number, why) in skipped.iter().take(LISTED) {
        let _ = writeln!(
            out,
            "  skipped    {repo}#{number}, GitHub cannot serve it: {why}"
        );
    }
    if skipped.len() > LISTED {
        let _ = writeln!(
            out,
            "  skipped    and {} more pull requests",
            skipped.len() - LISTED
        );
    }
    if let Some(note) = &c.note {
        let _ = writeln!(out, "  note       {note}");
    }
}

/// A run's result as a few lines for a person: a collection loaded first and damaged
/// checkpoints set aside, when there were any; then per collection (the one resumed first,
/// then the new one) its status, window, what was collected, the API cost and budget left, what the
/// load did, failed repositories and pull requests GitHub could not serve (the first few of
/// each), and what to do next when the run did not complete.
pub fn render(r: &RunResult) -> String {
    let mut out = String::new();
    if let Some(first) = &r.loaded_first {
        let _ = writeln!(
            out,
            "loaded first: collection {}, left unloaded by an earlier run: {} chunks",
            first.collection_id,
            thousands(first.load.chunks as u64)
        );
    }
    if !r.damaged.is_empty() {
        let _ = writeln!(
            out,
            "set aside {} damaged checkpoints (named on stderr); their chunks load with `ghstats load`",
            r.damaged.len()
        );
    }
    if r.loaded_first.is_some() || !r.damaged.is_empty() {
        out.push('\n');
    }
    if let Some(resumed) = &r.resumed {
        out.push_str("resumed first:\n");
        render_collection(&mut out, resumed);
        out.push('\n');
    }
    render_collection(&mut out, &r.collection);
    let id = &r.collection.collection_id;
    match r.collection.status {
        Status::Completed => {}
        Status::Partial | Status::Running => {
            let _ = writeln!(
                out,
                "\nnot finished: `ghstats resume --collection-id {id}` or the next `collect` continues it"
            );
        }
        Status::Failed => {
            let _ = writeln!(
                out,
                "\nsome repositories failed: `ghstats resume --collection-id {id}` tries them again (the next `collect` does too)"
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::github::pulls::SkippedPullRequest;
    use crate::github::{ApiCost, Window};
    use crate::jobs::collect::{BudgetLeft, RepoSummary};
    use crate::jobs::load::LoadResult;
    use crate::warehouse::TableLoad;
    use chrono::{TimeZone, Utc};
    use std::collections::BTreeMap;

    fn result(status: Status, loaded: bool) -> CollectionResult {
        let rows: BTreeMap<String, u64> = [
            ("pull_requests", 1500),
            ("pr_commits", 2873),
            ("reviews", 418),
            ("review_comments", 454),
            ("issue_comments", 868),
            ("repositories", 2),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let mut tables = BTreeMap::new();
        tables.insert(
            "pull_requests".to_string(),
            TableLoad {
                staged: 1500,
                inserted: 1400,
                updated: 100,
                deleted: 0,
            },
        );
        tables.insert(
            "reviews".to_string(),
            TableLoad {
                staged: 418,
                inserted: 410,
                updated: 0,
                deleted: 3,
            },
        );
        CollectionResult {
            collection_id: "20261121T091600Z-3fa9c2".into(),
            status,
            window: Window {
                since: Utc.with_ymd_and_hms(2026, 5, 25, 9, 16, 0).unwrap(),
                until: Utc.with_ymd_and_hms(2026, 11, 21, 9, 16, 0).unwrap(),
            },
            repos: vec![
                RepoSummary {
                    name: "api".into(),
                    state: RepoState::Done,
                    pull_requests: 1500,
                    rows: BTreeMap::new(),
                    error: None,
                    not_collectable: vec![SkippedPullRequest {
                        number: 42,
                        updated_at: None,
                        error: "HTTP 502".into(),
                        attempts: 1,
                    }],
                },
                RepoSummary {
                    name: "web".into(),
                    state: RepoState::Failed,
                    pull_requests: 0,
                    rows: BTreeMap::new(),
                    error: Some("GitHub's pagination of pullRequests does not advance".into()),
                    not_collectable: Vec::new(),
                },
            ],
            rows,
            chunks: 47,
            api_cost: ApiCost {
                rest_requests: 3,
                graphql_queries: 112,
                graphql_points: 1112,
            },
            budget_left: BudgetLeft {
                rest: Some(4997),
                graphql: None,
            },
            load: loaded.then_some(LoadResult {
                chunks: 47,
                tables,
                bad_chunks: Vec::new(),
                missing_chunks: Vec::new(),
            }),
            note: None,
        }
    }

    #[test]
    fn text_only_for_a_terminal_without_json() {
        assert!(wants_text(true, false));
        assert!(!wants_text(true, true));
        assert!(!wants_text(false, false));
        assert!(!wants_text(false, true));
    }

    #[test]
    fn a_completed_run_reads_as_a_few_lines() {
        let text = render(&RunResult {
            collection: result(Status::Completed, true),
            resumed: None,
            loaded_first: None,
            damaged: Vec::new(),
        });
        let want = "\
collection 20261121T091600Z-3fa9c2: completed
  window     2026-05-25 09:16 UTC .. 2026-11-21 09:16 UTC
  collected  1,500 pull requests from 1 of 2 repositories: 2,873 commits, 418 reviews, 454 review comments, 868 issue comments
  API cost   1,112 GraphQL points (112 queries), 3 REST requests; left: REST 4,997
  loaded     47 chunks into the warehouse: 1,810 rows new, 100 updated, 3 deleted
  failed     web: GitHub's pagination of pullRequests does not advance
  skipped    api#42, GitHub cannot serve it: HTTP 502
";
        assert_eq!(text, want);
    }

    #[test]
    fn a_partial_run_says_how_to_continue_and_shows_the_resumed_collection() {
        let text = render(&RunResult {
            collection: result(Status::Partial, false),
            resumed: Some(Box::new(result(Status::Completed, true))),
            loaded_first: None,
            damaged: Vec::new(),
        });
        assert!(text.starts_with("resumed first:\ncollection "), "{text}");
        assert!(
            text.contains("loaded     nothing: 47 chunks are stored"),
            "{text}"
        );
        assert!(
            text.ends_with(
                "not finished: `ghstats resume --collection-id 20261121T091600Z-3fa9c2` or the next `collect` continues it\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }
}
