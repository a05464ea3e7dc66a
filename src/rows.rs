//! Warehouse-ready rows, one struct per table of [`crate::tables`], and their making from
//! GitHub's responses. Field order is the table's column order.

use crate::github::types;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize, Serializer};

/// The login that stands for a deleted account, as on GitHub.
pub const GHOST: &str = "ghost";
/// The actor type of a deleted account.
pub const GHOST_TYPE: &str = "Ghost";

fn ts<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

fn ts_opt<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => ts(t, s),
        None => s.serialize_none(),
    }
}

/// What every row carries besides its own fields.
#[derive(Clone, Debug)]
pub struct Provenance {
    pub organization: String,
    /// The repository's name when collected; the warehouse renames it to the current one.
    pub repository: String,
    /// GitHub's id of the repository (`databaseId`): its identity, whatever its name.
    pub repository_id: u64,
    pub collected_at: DateTime<Utc>,
    pub collection_id: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RepositoryRow {
    pub organization: String,
    pub repository: String,
    pub repo_id: u64,
    pub node_id: String,
    pub full_name: String,
    pub is_archived: bool,
    pub is_fork: bool,
    pub is_private: bool,
    pub default_branch: Option<String>,
    #[serde(serialize_with = "ts")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "ts")]
    pub updated_at: DateTime<Utc>,
    #[serde(serialize_with = "ts_opt")]
    pub pushed_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "ts")]
    pub collected_at: DateTime<Utc>,
    pub collection_id: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PullRequestRow {
    pub organization: String,
    pub repository: String,
    pub repository_id: u64,
    pub pr_number: u64,
    pub pr_id: u64,
    pub node_id: String,
    pub title: String,
    pub state: String,
    pub draft: bool,
    pub author: String,
    pub author_type: String,
    #[serde(serialize_with = "ts")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "ts")]
    pub updated_at: DateTime<Utc>,
    #[serde(serialize_with = "ts_opt")]
    pub closed_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "ts_opt")]
    pub merged_at: Option<DateTime<Utc>>,
    pub merged: bool,
    pub merged_by: Option<String>,
    pub merged_by_type: Option<String>,
    pub base_ref: String,
    pub head_ref: String,
    pub additions: u64,
    pub deletions: u64,
    pub changed_files: u64,
    pub labels: Vec<String>,
    pub size_label: Option<String>,
    pub review_decision: Option<String>,
    pub commit_count: u64,
    pub review_count: u64,
    pub comment_count: u64,
    #[serde(serialize_with = "ts")]
    pub collected_at: DateTime<Utc>,
    pub collection_id: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PrCommitRow {
    pub organization: String,
    pub repository: String,
    pub repository_id: u64,
    pub pr_number: u64,
    pub sha: String,
    pub author: Option<String>,
    pub author_name: Option<String>,
    #[serde(serialize_with = "ts")]
    pub authored_at: DateTime<Utc>,
    pub committer: Option<String>,
    pub committer_name: Option<String>,
    #[serde(serialize_with = "ts")]
    pub committed_at: DateTime<Utc>,
    pub additions: u64,
    pub deletions: u64,
    pub message_headline: String,
    #[serde(serialize_with = "ts")]
    pub pr_updated_at: DateTime<Utc>,
    #[serde(serialize_with = "ts")]
    pub collected_at: DateTime<Utc>,
    pub collection_id: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReviewRow {
    pub organization: String,
    pub repository: String,
    pub repository_id: u64,
    pub pr_number: u64,
    pub review_id: u64,
    pub node_id: String,
    pub reviewer: String,
    pub reviewer_type: String,
    pub state: String,
    #[serde(serialize_with = "ts_opt")]
    pub submitted_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "ts")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "ts")]
    pub updated_at: DateTime<Utc>,
    pub comment_count: u64,
    #[serde(serialize_with = "ts")]
    pub pr_updated_at: DateTime<Utc>,
    #[serde(serialize_with = "ts")]
    pub collected_at: DateTime<Utc>,
    pub collection_id: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReviewCommentRow {
    pub organization: String,
    pub repository: String,
    pub repository_id: u64,
    pub pr_number: u64,
    pub comment_id: u64,
    pub review_id: u64,
    pub node_id: String,
    pub path: String,
    pub author: String,
    pub author_type: String,
    #[serde(serialize_with = "ts")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "ts")]
    pub updated_at: DateTime<Utc>,
    pub in_reply_to: Option<u64>,
    #[serde(serialize_with = "ts")]
    pub pr_updated_at: DateTime<Utc>,
    #[serde(serialize_with = "ts")]
    pub collected_at: DateTime<Utc>,
    pub collection_id: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IssueCommentRow {
    pub organization: String,
    pub repository: String,
    pub repository_id: u64,
    pub pr_number: u64,
    pub comment_id: u64,
    pub node_id: String,
    pub author: String,
    pub author_type: String,
    #[serde(serialize_with = "ts")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "ts")]
    pub updated_at: DateTime<Utc>,
    #[serde(serialize_with = "ts")]
    pub pr_updated_at: DateTime<Utc>,
    #[serde(serialize_with = "ts")]
    pub collected_at: DateTime<Utc>,
    pub collection_id: String,
}

/// Text as every warehouse stores it: U+0000 removed. PostgreSQL refuses it in `text` and
/// `jsonb` (22P05), and SQLite's string functions stop at it; GitHub lets it into titles,
/// bodies and commit messages.
pub fn text(s: &str) -> String {
    if s.contains('\0') {
        s.replace('\0', "")
    } else {
        s.to_string()
    }
}

fn text_opt(s: &Option<String>) -> Option<String> {
    s.as_deref().map(text)
}

/// An actor's login and type, as GitHub's REST API, webhooks and audit log name it: a `Bot`
/// keeps its `[bot]` suffix (GraphQL gives the bare `dependabot`, everything else
/// `dependabot[bot]`); a deleted account (`null` on GitHub) is `ghost`.
pub fn actor(a: &Option<types::ActorRef>) -> (String, String) {
    match a {
        Some(a) if a.typename == "Bot" && !a.login.ends_with("[bot]") => {
            (text(&format!("{}[bot]", a.login)), text(&a.typename))
        }
        Some(a) => (text(&a.login), text(&a.typename)),
        None => (GHOST.to_string(), GHOST_TYPE.to_string()),
    }
}

/// The size label among a pull request's labels (`size/XL`, `size: M`, `size-S`), as the size
/// itself (`XL`, `M`, `S`).
pub fn size_label(labels: &[String]) -> Option<String> {
    const SIZES: &[&str] = &["XXS", "XS", "S", "M", "L", "XL", "XXL"];
    labels.iter().find_map(|l| {
        let lower = l.trim().to_ascii_lowercase();
        let rest = lower.strip_prefix("size")?;
        let value = rest.trim_start_matches(['/', ':', '-', '_', ' ']);
        let upper = value.to_ascii_uppercase();
        SIZES.contains(&upper.as_str()).then_some(upper)
    })
}

/// The rows of one complete pull request.
pub struct PullRequestRows {
    pub pull_request: PullRequestRow,
    pub commits: Vec<PrCommitRow>,
    pub reviews: Vec<ReviewRow>,
    pub issue_comments: Vec<IssueCommentRow>,
}

pub fn pull_request_rows(p: &Provenance, pr: &types::PullRequest) -> PullRequestRows {
    let (author, author_type) = actor(&pr.author);
    let (merged_by, merged_by_type) = if pr.merged {
        let (l, t) = actor(&pr.merged_by);
        (Some(l), Some(t))
    } else {
        (None, None)
    };
    let labels: Vec<String> = pr.labels.nodes.iter().map(|l| text(&l.name)).collect();
    let pull_request = PullRequestRow {
        organization: text(&p.organization),
        repository: text(&p.repository),
        repository_id: p.repository_id,
        pr_number: pr.number,
        pr_id: pr.full_database_id,
        node_id: text(&pr.id),
        title: text(&pr.title),
        state: text(&pr.state),
        draft: pr.is_draft,
        author,
        author_type,
        created_at: pr.created_at,
        updated_at: pr.updated_at,
        closed_at: pr.closed_at,
        merged_at: pr.merged_at,
        merged: pr.merged,
        merged_by,
        merged_by_type,
        base_ref: text(&pr.base_ref_name),
        head_ref: text(&pr.head_ref_name),
        additions: pr.additions,
        deletions: pr.deletions,
        changed_files: pr.changed_files,
        size_label: size_label(&labels),
        labels,
        review_decision: text_opt(&pr.review_decision),
        commit_count: pr.commits.nodes.len() as u64,
        review_count: pr.reviews.nodes.len() as u64,
        comment_count: pr.comments.nodes.len() as u64,
        collected_at: p.collected_at,
        collection_id: text(&p.collection_id),
    };
    let git = |a: &Option<types::GitActor>| -> (Option<String>, Option<String>) {
        match a {
            Some(a) => (a.user.as_ref().map(|u| text(&u.login)), text_opt(&a.name)),
            None => (None, None),
        }
    };
    let commits = pr
        .commits
        .nodes
        .iter()
        .map(|c| {
            let c = &c.commit;
            let (author, author_name) = git(&c.author);
            let (committer, committer_name) = git(&c.committer);
            PrCommitRow {
                organization: text(&p.organization),
                repository: text(&p.repository),
                repository_id: p.repository_id,
                pr_number: pr.number,
                sha: text(&c.oid),
                author,
                author_name,
                authored_at: c.authored_date,
                committer,
                committer_name,
                committed_at: c.committed_date,
                additions: c.additions,
                deletions: c.deletions,
                message_headline: text(&c.message_headline),
                pr_updated_at: pr.updated_at,
                collected_at: p.collected_at,
                collection_id: text(&p.collection_id),
            }
        })
        .collect();
    let reviews = pr
        .reviews
        .nodes
        .iter()
        .map(|r| {
            let (reviewer, reviewer_type) = actor(&r.author);
            ReviewRow {
                organization: text(&p.organization),
                repository: text(&p.repository),
                repository_id: p.repository_id,
                pr_number: pr.number,
                review_id: r.full_database_id,
                node_id: text(&r.id),
                reviewer,
                reviewer_type,
                state: text(&r.state),
                submitted_at: r.submitted_at,
                created_at: r.created_at,
                updated_at: r.updated_at,
                comment_count: r.comment_count,
                pr_updated_at: pr.updated_at,
                collected_at: p.collected_at,
                collection_id: text(&p.collection_id),
            }
        })
        .collect();
    let issue_comments = pr
        .comments
        .nodes
        .iter()
        .map(|c| {
            let (author, author_type) = actor(&c.author);
            IssueCommentRow {
                organization: text(&p.organization),
                repository: text(&p.repository),
                repository_id: p.repository_id,
                pr_number: pr.number,
                comment_id: c.full_database_id,
                node_id: text(&c.id),
                author,
                author_type,
                created_at: c.created_at,
                updated_at: c.updated_at,
                pr_updated_at: pr.updated_at,
                collected_at: p.collected_at,
                collection_id: text(&p.collection_id),
            }
        })
        .collect();
    PullRequestRows {
        pull_request,
        commits,
        reviews,
        issue_comments,
    }
}

pub fn review_comment_row(
    p: &Provenance,
    r: &crate::github::pulls::ReviewCommentRecord,
) -> ReviewCommentRow {
    let c = &r.comment;
    let (author, author_type) = actor(&c.author);
    ReviewCommentRow {
        organization: text(&p.organization),
        repository: text(&p.repository),
        repository_id: p.repository_id,
        pr_number: r.pr_number,
        comment_id: c.full_database_id,
        review_id: r.review_id,
        node_id: text(&c.id),
        path: text(&c.path),
        author,
        author_type,
        created_at: c.created_at,
        updated_at: c.updated_at,
        in_reply_to: c.reply_to.as_ref().and_then(|r| r.full_database_id),
        pr_updated_at: r.pr_updated_at,
        collected_at: p.collected_at,
        collection_id: text(&p.collection_id),
    }
}

pub fn repository_row(
    organization: &str,
    collected_at: DateTime<Utc>,
    collection_id: &str,
    r: &types::RepositoryNode,
) -> RepositoryRow {
    RepositoryRow {
        organization: text(organization),
        repository: text(&r.name),
        repo_id: r.database_id.unwrap_or_default(),
        node_id: text(&r.id),
        full_name: text(&r.name_with_owner),
        is_archived: r.is_archived,
        is_fork: r.is_fork,
        is_private: r.is_private,
        default_branch: r.default_branch_ref.as_ref().map(|b| text(&b.name)),
        created_at: r.created_at,
        updated_at: r.updated_at,
        pushed_at: r.pushed_at,
        collected_at,
        collection_id: text(collection_id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tables;

    fn keys<T: Serialize>(row: &T) -> Vec<String> {
        match serde_json::to_value(row).unwrap() {
            serde_json::Value::Object(m) => m.keys().cloned().collect(),
            _ => panic!("not an object"),
        }
    }

    fn columns(t: &tables::TableDef) -> Vec<String> {
        let mut c: Vec<String> = t.columns.iter().map(|c| c.name.to_string()).collect();
        c.sort();
        c
    }

    fn sorted(mut v: Vec<String>) -> Vec<String> {
        v.sort();
        v
    }

    #[test]
    fn row_fields_are_exactly_the_table_columns() {
        let t = Utc::now();
        let pr = PullRequestRow {
            organization: "o".into(),
            repository: "r".into(),
            repository_id: 1,
            pr_number: 1,
            pr_id: 1,
            node_id: "n".into(),
            title: "t".into(),
            state: "OPEN".into(),
            draft: false,
            author: "a".into(),
            author_type: "User".into(),
            created_at: t,
            updated_at: t,
            closed_at: None,
            merged_at: None,
            merged: false,
            merged_by: None,
            merged_by_type: None,
            base_ref: "main".into(),
            head_ref: "h".into(),
            additions: 1,
            deletions: 1,
            changed_files: 1,
            labels: vec![],
            size_label: None,
            review_decision: None,
            commit_count: 0,
            review_count: 0,
            comment_count: 0,
            collected_at: t,
            collection_id: "c".into(),
        };
        assert_eq!(sorted(keys(&pr)), columns(&tables::PULL_REQUESTS));
        let c = PrCommitRow {
            organization: "o".into(),
            repository: "r".into(),
            repository_id: 1,
            pr_number: 1,
            sha: "s".into(),
            author: None,
            author_name: None,
            authored_at: t,
            committer: None,
            committer_name: None,
            committed_at: t,
            additions: 0,
            deletions: 0,
            message_headline: "m".into(),
            pr_updated_at: t,
            collected_at: t,
            collection_id: "c".into(),
        };
        assert_eq!(sorted(keys(&c)), columns(&tables::PR_COMMITS));
        let r = ReviewRow {
            organization: "o".into(),
            repository: "r".into(),
            repository_id: 1,
            pr_number: 1,
            review_id: 1,
            node_id: "n".into(),
            reviewer: "x".into(),
            reviewer_type: "User".into(),
            state: "APPROVED".into(),
            submitted_at: None,
            created_at: t,
            updated_at: t,
            comment_count: 0,
            pr_updated_at: t,
            collected_at: t,
            collection_id: "c".into(),
        };
        assert_eq!(sorted(keys(&r)), columns(&tables::REVIEWS));
        let rc = ReviewCommentRow {
            organization: "o".into(),
            repository: "r".into(),
            repository_id: 1,
            pr_number: 1,
            comment_id: 1,
            review_id: 1,
            node_id: "n".into(),
            path: "p".into(),
            author: "a".into(),
            author_type: "User".into(),
            created_at: t,
            updated_at: t,
            in_reply_to: None,
            pr_updated_at: t,
            collected_at: t,
            collection_id: "c".into(),
        };
        assert_eq!(sorted(keys(&rc)), columns(&tables::REVIEW_COMMENTS));
        let ic = IssueCommentRow {
            organization: "o".into(),
            repository: "r".into(),
            repository_id: 1,
            pr_number: 1,
            comment_id: 1,
            node_id: "n".into(),
            author: "a".into(),
            author_type: "User".into(),
            created_at: t,
            updated_at: t,
            pr_updated_at: t,
            collected_at: t,
            collection_id: "c".into(),
        };
        assert_eq!(sorted(keys(&ic)), columns(&tables::ISSUE_COMMENTS));
        let repo = RepositoryRow {
            organization: "o".into(),
            repository: "r".into(),
            repo_id: 1,
            node_id: "n".into(),
            full_name: "o/r".into(),
            is_archived: false,
            is_fork: false,
            is_private: false,
            default_branch: None,
            created_at: t,
            updated_at: t,
            pushed_at: None,
            collected_at: t,
            collection_id: "c".into(),
        };
        // The commits job's columns are not a pull-request collection's: its chunk rows lack
        // them, their load reads them as NULL and never writes them over a stored row.
        let mut chunk_columns = columns(&tables::REPOSITORIES);
        chunk_columns.retain(|c| !tables::COMMITS_OWNED.contains(&c.as_str()));
        assert_eq!(sorted(keys(&repo)), chunk_columns);
    }

    #[test]
    fn deleted_accounts_become_ghost() {
        assert_eq!(actor(&None), ("ghost".to_string(), "Ghost".to_string()));
        let bot = Some(types::ActorRef {
            typename: "Bot".into(),
            login: "dependabot".into(),
        });
        assert_eq!(
            actor(&bot),
            ("dependabot[bot]".to_string(), "Bot".to_string())
        );
        // A login that already carries the suffix (REST-shaped) keeps just one.
        let rest_shaped = Some(types::ActorRef {
            typename: "Bot".into(),
            login: "renovate[bot]".into(),
        });
        assert_eq!(actor(&rest_shaped).0, "renovate[bot]");
        let user = Some(types::ActorRef {
            typename: "User".into(),
            login: "ada".into(),
        });
        assert_eq!(actor(&user), ("ada".to_string(), "User".to_string()));
    }

    /// Every string in `v` (nested too), with where it is.
    fn strings(v: &serde_json::Value, at: &str, out: &mut Vec<(String, String)>) {
        match v {
            serde_json::Value::String(s) => out.push((at.to_string(), s.clone())),
            serde_json::Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    strings(x, &format!("{at}[{i}]"), out)
                }
            }
            serde_json::Value::Object(m) => {
                for (k, x) in m {
                    strings(x, &format!("{at}.{k}"), out)
                }
            }
            _ => {}
        }
    }

    /// Every text GitHub sends, full of U+0000, comes out of every row type without it, so a
    /// column added later cannot forget the rule.
    #[test]
    fn no_row_keeps_a_nul_character() {
        let z = |s: &str| format!("\u{0}{s}\u{0}x\u{0}");
        let actor = |t: &str| serde_json::json!({"__typename": t, "login": z("someone")});
        let conn = |nodes: serde_json::Value| serde_json::json!({"totalCount": nodes.as_array().map_or(0, |a| a.len()), "pageInfo": {"hasNextPage": false, "endCursor": null}, "nodes": nodes});
        let t = "2026-01-01T00:00:00Z";
        let git = serde_json::json!({"name": z("Ada L"), "user": {"login": z("ada")}});
        let pr: types::PullRequest = serde_json::from_value(serde_json::json!({
            "id": z("PR_1"), "fullDatabaseId": "7", "number": 1, "title": z("title"), "state": z("OPEN"),
            "isDraft": false, "createdAt": t, "updatedAt": t, "closedAt": null, "mergedAt": t, "merged": true,
            "author": actor("Bot"), "mergedBy": actor("User"), "baseRefName": z("main"), "headRefName": z("feature"),
            "baseRefOid": z("b"), "headRefOid": z("h"), "additions": 1, "deletions": 1, "changedFiles": 1,
            "reviewDecision": z("APPROVED"),
            "labels": conn(serde_json::json!([{"name": z("bug")}, {"name": z("size/XL")}])),
            "commits": conn(serde_json::json!([{"commit": {"oid": z("abc"), "messageHeadline": z("msg"), "authoredDate": t,
                "committedDate": t, "additions": 1, "deletions": 0, "author": git, "committer": git}}])),
            "reviews": conn(serde_json::json!([{"id": z("PRR_1"), "fullDatabaseId": 8, "author": actor("Bot"), "state": z("APPROVED"),
                "submittedAt": t, "createdAt": t, "updatedAt": t, "body": z("body"), "comments": {"totalCount": 1}}])),
            "comments": conn(serde_json::json!([{"id": z("IC_1"), "fullDatabaseId": 9, "author": actor("Mannequin"),
                "createdAt": t, "updatedAt": t, "body": z("hi")}])),
        }))
        .unwrap();
        let prov = Provenance {
            organization: z("acme"),
            repository: z("repo"),
            repository_id: 1,
            collected_at: Utc::now(),
            collection_id: z("c1"),
        };
        let rows = pull_request_rows(&prov, &pr);
        let rc = review_comment_row(
            &prov,
            &crate::github::pulls::ReviewCommentRecord {
                pr_number: 1,
                pr_updated_at: Utc::now(),
                review_id: 8,
                comment: serde_json::from_value(serde_json::json!({"id": z("PRRC_1"), "fullDatabaseId": 10,
                    "path": z("src/main.rs"), "author": actor("User"), "createdAt": t, "updatedAt": t,
                    "body": z("nit"), "replyTo": null}))
                .unwrap(),
            },
        );
        let repo: types::RepositoryNode = serde_json::from_value(serde_json::json!({
            "id": z("R_1"), "databaseId": 1, "name": z("repo"), "nameWithOwner": z("acme/repo"), "isArchived": false,
            "isFork": false, "isPrivate": false, "createdAt": t, "updatedAt": t, "pushedAt": t,
            "defaultBranchRef": {"name": z("main")},
        }))
        .unwrap();
        let repo_row = repository_row(&z("acme"), Utc::now(), &z("c1"), &repo);
        let all = [
            serde_json::to_value(&rows.pull_request).unwrap(),
            serde_json::to_value(&rows.commits).unwrap(),
            serde_json::to_value(&rows.reviews).unwrap(),
            serde_json::to_value(&rows.issue_comments).unwrap(),
            serde_json::to_value(&rc).unwrap(),
            serde_json::to_value(&repo_row).unwrap(),
        ];
        let mut found = Vec::new();
        for v in &all {
            strings(v, "row", &mut found);
        }
        // Every string column of every table was filled by the input above.
        assert!(found.len() > 40, "{found:?}");
        for (at, s) in &found {
            assert!(!s.contains('\0'), "{at} kept a NUL: {s:?}");
        }
        assert_eq!(rows.pull_request.title, "titlex");
        assert_eq!(rows.pull_request.labels, ["bugx", "size/XLx"]);
        // Bots keep GitHub's login, wherever an actor is stored.
        assert_eq!(rows.pull_request.author, "someonex[bot]");
        assert_eq!(rows.reviews[0].reviewer, "someonex[bot]");
        assert_eq!(rows.pull_request.merged_by.as_deref(), Some("someonex"));
    }

    #[test]
    fn size_labels_are_recognised_in_common_spellings() {
        let l = |v: &[&str]| size_label(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(l(&["bug", "size/XL"]), Some("XL".into()));
        assert_eq!(l(&["Size: m"]), Some("M".into()));
        assert_eq!(l(&["size-S"]), Some("S".into()));
        assert_eq!(l(&["sizeable", "bug"]), None);
        assert_eq!(l(&[]), None);
    }

    #[test]
    fn timestamps_serialize_as_utc_rfc3339() {
        let t = DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
            .unwrap()
            .with_timezone(&Utc);
        let v = serde_json::to_value(IssueCommentRow {
            organization: "o".into(),
            repository: "r".into(),
            repository_id: 1,
            pr_number: 1,
            comment_id: 1,
            node_id: "n".into(),
            author: "a".into(),
            author_type: "User".into(),
            created_at: t,
            updated_at: t,
            pr_updated_at: t,
            collected_at: t,
            collection_id: "c".into(),
        })
        .unwrap();
        assert_eq!(v["created_at"], "2026-01-02T03:04:05Z");
    }
}
