//! The one definition of the warehouse tables (ARCHITECTURE.md, "The tables"): columns with
//! BigQuery's types, the key, the version columns that decide which copy of a row is newest,
//! partitioning and clustering. Every backend's DDL and every chunk's rows follow it.

/// A column type, named as BigQuery names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnType {
    String,
    Int64,
    Bool,
    Timestamp,
}

impl ColumnType {
    pub fn bigquery(self) -> &'static str {
        match self {
            ColumnType::String => "STRING",
            ColumnType::Int64 => "INT64",
            ColumnType::Bool => "BOOL",
            ColumnType::Timestamp => "TIMESTAMP",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Required,
    Nullable,
    Repeated,
}

#[derive(Clone, Copy, Debug)]
pub struct Column {
    pub name: &'static str,
    pub ty: ColumnType,
    pub mode: Mode,
}

/// The size of a table's time partitions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartitionUnit {
    Day,
    Month,
}

impl PartitionUnit {
    /// BigQuery's name of it (`timePartitioning.type`): `DAY` or `MONTH`.
    pub fn bigquery(self) -> &'static str {
        match self {
            PartitionUnit::Day => "DAY",
            PartitionUnit::Month => "MONTH",
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct TableDef {
    pub name: &'static str,
    pub columns: &'static [Column],
    /// Columns that identify a row: GitHub's ids, never a name (a repository can be renamed;
    /// its `repository_id` stays). The `organization` and `repository` columns hold the
    /// repository's current names: every load sets them from the `repositories` table.
    pub key: &'static [&'static str],
    /// Columns compared, in order, to decide which copy of a row is newest. A pull request's
    /// children carry `pr_updated_at`, the version of the pull-request snapshot they came in:
    /// a newer snapshot replaces the children of an older one (see `warehouse`).
    pub version: &'static [&'static str],
    /// Time partitioning on this TIMESTAMP column, where the table has it (BigQuery's; the SQL
    /// backends index it).
    pub partition: Option<&'static str>,
    /// The partitions' size: a day, or a month for tables whose history spans decades
    /// (BigQuery allows 4,000 partitions per table: 20 years of days exceed it).
    pub partition_unit: PartitionUnit,
    pub cluster: &'static [&'static str],
}

impl TableDef {
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }
}

const fn req(name: &'static str, ty: ColumnType) -> Column {
    Column {
        name,
        ty,
        mode: Mode::Required,
    }
}
const fn opt(name: &'static str, ty: ColumnType) -> Column {
    Column {
        name,
        ty,
        mode: Mode::Nullable,
    }
}
const fn rep(name: &'static str, ty: ColumnType) -> Column {
    Column {
        name,
        ty,
        mode: Mode::Repeated,
    }
}

use ColumnType::{Bool, Int64, String as Str, Timestamp};

pub const REPOSITORIES: TableDef = TableDef {
    name: "repositories",
    columns: &[
        req("organization", Str),
        req("repository", Str),
        req("repo_id", Int64),
        req("node_id", Str),
        req("full_name", Str),
        req("is_archived", Bool),
        req("is_fork", Bool),
        req("is_private", Bool),
        opt("default_branch", Str),
        req("created_at", Timestamp),
        req("updated_at", Timestamp),
        opt("pushed_at", Timestamp),
        req("collected_at", Timestamp),
        req("collection_id", Str),
        opt("last_commit_sha", Str),
        opt("last_commit_at", Timestamp),
    ],
    key: &["repo_id"],
    version: &["updated_at", "collected_at"],
    partition: None,
    partition_unit: PartitionUnit::Day,
    cluster: &["organization"],
};

pub const PULL_REQUESTS: TableDef = TableDef {
    name: "pull_requests",
    columns: &[
        req("organization", Str),
        req("repository", Str),
        req("repository_id", Int64),
        req("pr_number", Int64),
        req("pr_id", Int64),
        req("node_id", Str),
        req("title", Str),
        req("state", Str),
        req("draft", Bool),
        req("author", Str),
        req("author_type", Str),
        req("created_at", Timestamp),
        req("updated_at", Timestamp),
        opt("closed_at", Timestamp),
        opt("merged_at", Timestamp),
        req("merged", Bool),
        opt("merged_by", Str),
        opt("merged_by_type", Str),
        req("base_ref", Str),
        req("head_ref", Str),
        req("additions", Int64),
        req("deletions", Int64),
        req("changed_files", Int64),
        rep("labels", Str),
        opt("size_label", Str),
        opt("review_decision", Str),
        req("commit_count", Int64),
        req("review_count", Int64),
        req("comment_count", Int64),
        req("collected_at", Timestamp),
        req("collection_id", Str),
    ],
    key: &["repository_id", "pr_number"],
    version: &["updated_at", "collected_at"],
    partition: Some("created_at"),
    partition_unit: PartitionUnit::Day,
    cluster: &["repository", "author"],
};

pub const PR_COMMITS: TableDef = TableDef {
    name: "pr_commits",
    columns: &[
        req("organization", Str),
        req("repository", Str),
        req("repository_id", Int64),
        req("pr_number", Int64),
        req("sha", Str),
        opt("author", Str),
        opt("author_name", Str),
        req("authored_at", Timestamp),
        opt("committer", Str),
        opt("committer_name", Str),
        req("committed_at", Timestamp),
        req("additions", Int64),
        req("deletions", Int64),
        req("message_headline", Str),
        req("pr_updated_at", Timestamp),
        req("collected_at", Timestamp),
        req("collection_id", Str),
    ],
    key: &["repository_id", "pr_number", "sha"],
    // A commit does not change; the copy from the newest look at its pull request wins.
    version: &["pr_updated_at", "collected_at"],
    partition: Some("committed_at"),
    partition_unit: PartitionUnit::Day,
    cluster: &["repository", "author"],
};

pub const REVIEWS: TableDef = TableDef {
    name: "reviews",
    columns: &[
        req("organization", Str),
        req("repository", Str),
        req("repository_id", Int64),
        req("pr_number", Int64),
        req("review_id", Int64),
        req("node_id", Str),
        req("reviewer", Str),
        req("reviewer_type", Str),
        req("state", Str),
        opt("submitted_at", Timestamp),
        req("created_at", Timestamp),
        req("updated_at", Timestamp),
        req("comment_count", Int64),
        req("pr_updated_at", Timestamp),
        req("collected_at", Timestamp),
        req("collection_id", Str),
    ],
    key: &["repository_id", "review_id"],
    version: &["pr_updated_at", "updated_at", "collected_at"],
    partition: Some("submitted_at"),
    partition_unit: PartitionUnit::Day,
    cluster: &["repository", "reviewer"],
};

pub const REVIEW_COMMENTS: TableDef = TableDef {
    name: "review_comments",
    columns: &[
        req("organization", Str),
        req("repository", Str),
        req("repository_id", Int64),
        req("pr_number", Int64),
        req("comment_id", Int64),
        req("review_id", Int64),
        req("node_id", Str),
        req("path", Str),
        req("author", Str),
        req("author_type", Str),
        req("created_at", Timestamp),
        req("updated_at", Timestamp),
        opt("in_reply_to", Int64),
        req("pr_updated_at", Timestamp),
        req("collected_at", Timestamp),
        req("collection_id", Str),
    ],
    key: &["repository_id", "comment_id"],
    version: &["pr_updated_at", "updated_at", "collected_at"],
    partition: Some("created_at"),
    partition_unit: PartitionUnit::Day,
    cluster: &["repository", "author"],
};

pub const ISSUE_COMMENTS: TableDef = TableDef {
    name: "issue_comments",
    columns: &[
        req("organization", Str),
        req("repository", Str),
        req("repository_id", Int64),
        req("pr_number", Int64),
        req("comment_id", Int64),
        req("node_id", Str),
        req("author", Str),
        req("author_type", Str),
        req("created_at", Timestamp),
        req("updated_at", Timestamp),
        req("pr_updated_at", Timestamp),
        req("collected_at", Timestamp),
        req("collection_id", Str),
    ],
    key: &["repository_id", "comment_id"],
    version: &["pr_updated_at", "updated_at", "collected_at"],
    partition: Some("created_at"),
    partition_unit: PartitionUnit::Day,
    cluster: &["repository", "author"],
};

/// Every public GitHub event of GH Archive, one row per event id (ARCHITECTURE.md, "GH
/// Archive"). Not in [`ALL`]: its rows come from an hour's Parquet file, not from chunks, and
/// belong to no organization.
pub const GHARCHIVE_EVENTS: TableDef = TableDef {
    name: "gharchive_events",
    columns: &[
        req("event_id", Int64),
        req("event_type", Str),
        req("created_at", Timestamp),
        opt("public", Bool),
        opt("actor_id", Int64),
        opt("actor_login", Str),
        opt("repo_id", Int64),
        opt("repo_name", Str),
        opt("org_id", Int64),
        opt("org_login", Str),
        opt("action", Str),
        opt("number", Int64),
        opt("ref", Str),
        opt("push_head", Str),
        opt("push_size", Int64),
        opt("payload", Str),
        req("archive_hour", Timestamp),
    ],
    key: &["event_id"],
    // An id seen in two hours keeps the row of the hour loaded first; reloading an hour
    // replaces only its own rows.
    version: &[],
    partition: Some("created_at"),
    partition_unit: PartitionUnit::Day,
    cluster: &["event_type", "repo_name"],
};

/// The state of each GH Archive hour: `ingested`, `missing` (a 404, retried for
/// `gharchive::MISSING_RETRY_DAYS`, then `missing` for good with `final_at` set) or `failed`
/// (retried every run).
pub const GHARCHIVE_HOURS: TableDef = TableDef {
    name: "gharchive_hours",
    columns: &[
        req("hour", Timestamp),
        req("status", Str),
        opt("events", Int64),
        opt("bytes", Int64),
        opt("duplicates_dropped", Int64),
        opt("lines_rejected", Int64),
        opt("ingested_at", Timestamp),
        opt("first_missing_at", Timestamp),
        opt("final_at", Timestamp),
        opt("error", Str),
        req("updated_at", Timestamp),
    ],
    key: &["hour"],
    version: &["updated_at"],
    partition: None,
    partition_unit: PartitionUnit::Day,
    cluster: &[],
};

/// The GH Archive tables.
pub const GHARCHIVE: &[TableDef] = &[GHARCHIVE_EVENTS, GHARCHIVE_HOURS];

/// The current star count of each repository found by a stars crawl, one row per `repo_id`
/// (GitHub's `databaseId`), upserted: the row with the newest `observed_at` wins, so an older
/// crawl loaded late never rewrites it. Not in [`ALL`]: its rows belong to no organization.
pub const REPO_STARS: TableDef = TableDef {
    name: "repo_stars",
    columns: &[
        req("repo_id", Int64),
        req("node_id", Str),
        req("name_with_owner", Str),
        req("owner_login", Str),
        req("stargazer_count", Int64),
        req("fork_count", Int64),
        opt("primary_language", Str),
        req("created_at", Timestamp),
        opt("pushed_at", Timestamp),
        req("is_fork", Bool),
        req("is_archived", Bool),
        req("observed_at", Timestamp),
        req("crawl_id", Str),
    ],
    key: &["repo_id"],
    version: &["observed_at"],
    partition: None,
    partition_unit: PartitionUnit::Day,
    cluster: &["repo_id"],
};

/// Append-only history of star counts: one row per repository and crawl where the count
/// differs from the repository's previous row by `observed_at` (or there is none). Rows are
/// never updated or deleted; loading a crawl again adds nothing.
pub const REPO_STAR_HISTORY: TableDef = TableDef {
    name: "repo_star_history",
    columns: &[
        req("repo_id", Int64),
        req("observed_at", Timestamp),
        req("stargazer_count", Int64),
        req("crawl_id", Str),
    ],
    key: &["repo_id", "observed_at"],
    version: &[],
    partition: Some("observed_at"),
    partition_unit: PartitionUnit::Day,
    cluster: &["repo_id"],
};

/// The stars tables.
pub const STARS: &[TableDef] = &[REPO_STARS, REPO_STAR_HISTORY];

/// One commit of a repository's default branch, read from git objects (the commits job).
/// `commit_at` is the committer date, `authored_at` the author date, both UTC;
/// `commit_author_id`/`author_login` are the GitHub account GitHub links the author email to
/// (GraphQL `Commit.author.user`), null when it links none. Line counts are those of
/// `git log --numstat -M --diff-merges=first-parent`: a merge is compared with its first
/// parent; a binary file adds no lines. `commit_month` (`YYYY-MM` of `commit_at`) is the
/// Parquet partition. Not in [`ALL`]: its rows come from Parquet partitions, not chunks.
pub const COMMITS: TableDef = TableDef {
    name: "commits",
    columns: &[
        req("repository_id", Int64),
        req("repository", Str),
        req("commit_sha", Str),
        opt("commit_author_id", Int64),
        opt("author_login", Str),
        req("author_name", Str),
        req("author_email", Str),
        req("committer_name", Str),
        req("commit_at", Timestamp),
        req("authored_at", Timestamp),
        req("commit_message", Str),
        req("num_files_changed", Int64),
        req("num_lines_added", Int64),
        req("num_lines_deleted", Int64),
        rep("parent_commits", Str),
        req("is_merge", Bool),
        req("commit_month", Str),
    ],
    key: &["repository_id", "commit_sha"],
    version: &[],
    partition: Some("commit_at"),
    partition_unit: PartitionUnit::Month,
    cluster: &["repository_id", "author_email"],
};

/// One file a default-branch commit changed, against its first parent: `status` is `added`,
/// `modified`, `removed`, `renamed`, `copied` or `type-changed` (git's A, M, D, R, C, T);
/// `previous_path` is set for renames and copies (git's default rename detection, `-M`,
/// 50% similarity); `file_sha` is the blob after the change, null when removed (a
/// submodule's commit for a gitlink); `file_type` is the extension of the file name,
/// lower-cased, without the dot (null when it has none); `changes` = `lines_added` +
/// `lines_deleted`; a binary file has `is_binary` and no lines.
pub const FILE_CHANGES: TableDef = TableDef {
    name: "file_changes",
    columns: &[
        req("repository_id", Int64),
        req("commit_sha", Str),
        req("file_path", Str),
        opt("previous_path", Str),
        opt("file_sha", Str),
        req("commit_at", Timestamp),
        opt("file_type", Str),
        req("status", Str),
        req("lines_added", Int64),
        req("lines_deleted", Int64),
        req("changes", Int64),
        req("is_binary", Bool),
        req("commit_month", Str),
    ],
    key: &["repository_id", "commit_sha", "file_path"],
    version: &[],
    partition: Some("commit_at"),
    partition_unit: PartitionUnit::Month,
    cluster: &["repository_id", "file_type"],
};

/// The version of each file a commit wrote (every change but a removal): its blob, its size
/// in bytes read from the object itself (null for a submodule, whose object is a commit of
/// another repository), and where GitHub serves it raw
/// (`https://raw.githubusercontent.com/OWNER/REPO/SHA/PATH`, the path percent-encoded).
/// `s3_file_location` is null: kept for a later export of contents.
pub const FILE_STATES: TableDef = TableDef {
    name: "file_states",
    columns: &[
        req("repository_id", Int64),
        req("commit_sha", Str),
        req("file_path", Str),
        req("file_sha", Str),
        req("commit_at", Timestamp),
        opt("file_size", Int64),
        req("raw_url", Str),
        opt("s3_file_location", Str),
        req("commit_month", Str),
    ],
    key: &["repository_id", "commit_sha", "file_path"],
    version: &[],
    partition: Some("commit_at"),
    partition_unit: PartitionUnit::Month,
    cluster: &["repository_id"],
};

/// The commits tables, in load order; each is stored in the lake as Parquet partitions
/// `github/{table}/repository_id={id}/commit_month={YYYY-MM}/`.
pub const COMMIT_TABLES: &[TableDef] = &[COMMITS, FILE_CHANGES, FILE_STATES];

/// The column a chunk may lack: chunks written before rows carried the repository's id. A load
/// fills it from the `repositories` row of the same collection and name (or the stored one of
/// that name); see `warehouse::sql::fill_repository_id_sql`.
pub const FILLED_AT_LOAD: &str = "repository_id";

/// Every table, in load order.
pub const ALL: &[TableDef] = &[
    REPOSITORIES,
    PULL_REQUESTS,
    PR_COMMITS,
    REVIEWS,
    REVIEW_COMMENTS,
    ISSUE_COMMENTS,
];

/// The tables whose rows belong to one pull request's snapshot.
pub const PR_CHILDREN: &[TableDef] = &[PR_COMMITS, REVIEWS, REVIEW_COMMENTS, ISSUE_COMMENTS];

pub fn by_name(name: &str) -> Option<&'static TableDef> {
    ALL.iter().find(|t| t.name == name)
}

/// The Arrow schema of a table (its Parquet files: GH Archive's hours, `ghstats export`):
/// INT64 → Int64, STRING → Utf8, BOOL → Boolean, TIMESTAMP → Timestamp(µs, UTC), REPEATED
/// STRING → List(Utf8); a REQUIRED column is not nullable.
pub fn arrow_schema(t: &TableDef) -> arrow_schema::SchemaRef {
    use arrow_schema::{DataType, Field, Schema, TimeUnit};
    let fields: Vec<Field> = t
        .columns
        .iter()
        .map(|c| {
            let ty = match c.ty {
                ColumnType::String => DataType::Utf8,
                ColumnType::Int64 => DataType::Int64,
                ColumnType::Bool => DataType::Boolean,
                ColumnType::Timestamp => {
                    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
                }
            };
            let ty = match c.mode {
                Mode::Repeated => DataType::List(std::sync::Arc::new(Field::new("item", ty, true))),
                _ => ty,
            };
            Field::new(c.name, ty, c.mode != Mode::Required)
        })
        .collect();
    std::sync::Arc::new(Schema::new(fields))
}

/// The columns of [`REPOSITORIES`] that only the commits job writes (where it stands on the
/// default branch): chunk rows of a pull-request collection never carry them, and its load
/// keeps the stored values.
pub const COMMITS_OWNED: &[&str] = &["last_commit_sha", "last_commit_at"];

/// Every table the warehouse holds: [`ALL`], then [`GHARCHIVE`], then [`STARS`], then
/// [`COMMIT_TABLES`].
pub fn every() -> impl Iterator<Item = &'static TableDef> {
    ALL.iter()
        .chain(GHARCHIVE)
        .chain(STARS)
        .chain(COMMIT_TABLES)
}

/// Any table the warehouse holds, by name (see [`every`]); `None` for another name.
pub fn any_by_name(name: &str) -> Option<&'static TableDef> {
    every().find(|t| t.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// BigQuery allows 4,000 partitions a table: commits reach back decades, so months; every
    /// other partitioned table is by day. Every table of the warehouse is named once.
    #[test]
    fn the_commits_tables_are_partitioned_by_month() {
        for t in every() {
            let want = if COMMIT_TABLES.iter().any(|c| c.name == t.name) {
                PartitionUnit::Month
            } else {
                PartitionUnit::Day
            };
            assert_eq!(t.partition_unit, want, "{}", t.name);
            if let Some(p) = t.partition {
                assert_eq!(t.column(p).map(|c| c.ty), Some(ColumnType::Timestamp));
            }
        }
        let mut names: Vec<&str> = every().map(|t| t.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), every().count());
        for c in COMMITS_OWNED {
            assert_eq!(REPOSITORIES.column(c).map(|c| c.mode), Some(Mode::Nullable));
        }
    }

    #[test]
    fn every_table_is_well_formed() {
        for t in ALL {
            for k in t.key.iter().chain(t.version).chain(t.cluster) {
                let c = t
                    .column(k)
                    .unwrap_or_else(|| panic!("{}.{k} is not a column", t.name));
                assert_ne!(c.mode, Mode::Repeated, "{}.{k}", t.name);
            }
            for k in t.key {
                assert_eq!(
                    t.column(k).map(|c| c.mode),
                    Some(Mode::Required),
                    "{}.{k} is a key",
                    t.name
                );
            }
            if let Some(p) = t.partition {
                assert_eq!(
                    t.column(p).map(|c| c.ty),
                    Some(ColumnType::Timestamp),
                    "{}",
                    t.name
                );
            }
            for common in [
                "organization",
                "repository",
                "collected_at",
                "collection_id",
            ] {
                assert!(t.column(common).is_some(), "{} lacks {common}", t.name);
            }
            // Names change; ids do not: no key holds a name.
            for name in ["organization", "repository"] {
                assert!(!t.key.contains(&name), "{} is keyed by {name}", t.name);
            }
            if t.name != REPOSITORIES.name {
                assert_eq!(t.key[0], "repository_id", "{}", t.name);
            }
            let mut names: Vec<_> = t.columns.iter().map(|c| c.name).collect();
            names.sort();
            names.dedup();
            assert_eq!(names.len(), t.columns.len(), "{} repeats a column", t.name);
        }
    }
}
