//! SQL that every SQL backend shares: DDL from the table definition and the statements of the
//! MERGE rule (count new keys, count newer versions, upsert only strictly newer versions).
//! A backend supplies its column types and how it keeps one staged row per key.

use crate::tables::{self, Column, Mode, TableDef};

/// `CREATE TABLE` for a table definition, with the backend's column types.
pub fn create_table_sql(t: &TableDef, type_of: fn(&Column) -> &'static str) -> String {
    let cols: Vec<String> = t
        .columns
        .iter()
        .map(|c| {
            format!(
                "  {} {}{}",
                c.name,
                type_of(c),
                if c.mode == Mode::Required {
                    " NOT NULL"
                } else {
                    ""
                }
            )
        })
        .collect();
    format!(
        "CREATE TABLE IF NOT EXISTS {} (\n{},\n  PRIMARY KEY ({})\n)",
        t.name,
        cols.join(",\n"),
        t.key.join(", ")
    )
}

/// What to say when a table exists without some of the definition's REQUIRED columns (made by
/// an earlier build, e.g. keyed by repository names before `repository_id`): `None` when none
/// is missing. Missing nullable columns are added instead ([`added_columns`]).
pub fn missing_columns(t: &TableDef, have: &[String]) -> Option<String> {
    let missing: Vec<&str> = t
        .columns
        .iter()
        .filter(|c| c.mode == Mode::Required)
        .map(|c| c.name)
        .filter(|c| !has(have, c))
        .collect();
    (!missing.is_empty()).then(|| {
        format!(
            "table {} was made by an earlier ghstats and lacks the columns {}: drop the tables \
             (or use a new database) and run `ghstats load` to rebuild them from storage",
            t.name,
            missing.join(", ")
        )
    })
}

fn has(have: &[String], column: &str) -> bool {
    have.iter().any(|h| h.eq_ignore_ascii_case(column))
}

/// The nullable (or REPEATED) columns of `t` a table made by an earlier build lacks (say,
/// `repositories` before `last_commit_sha`): `ALTER TABLE … ADD COLUMN` adds them, the rows
/// already there get NULL (`type_of` gives the backend's type).
pub fn added_columns(
    t: &TableDef,
    have: &[String],
    type_of: fn(&Column) -> &'static str,
) -> Vec<String> {
    t.columns
        .iter()
        .filter(|c| c.mode != Mode::Required && !has(have, c.name))
        .map(|c| {
            format!(
                "ALTER TABLE {} ADD COLUMN {} {}",
                t.name,
                c.name,
                type_of(c)
            )
        })
        .collect()
}

/// Indexes on the clustering and partitioning columns, and on a child's pull request.
pub fn indexes_sql(t: &TableDef) -> Vec<String> {
    let mut out = Vec::new();
    if !t.cluster.is_empty() {
        out.push(format!(
            "CREATE INDEX IF NOT EXISTS {0}_cluster ON {0} ({1})",
            t.name,
            t.cluster.join(", ")
        ));
    }
    if let Some(p) = t.partition {
        out.push(format!(
            "CREATE INDEX IF NOT EXISTS {0}_{1} ON {0} ({1})",
            t.name, p
        ));
    }
    if tables::PR_CHILDREN.iter().any(|c| c.name == t.name) {
        out.push(format!(
            "CREATE INDEX IF NOT EXISTS {0}_pr ON {0} (repository_id, pr_number)",
            t.name
        ));
    }
    // A commits load replaces one repository's month.
    if t.column("commit_month").is_some() {
        out.push(format!(
            "CREATE INDEX IF NOT EXISTS {0}_month ON {0} (repository_id, commit_month)",
            t.name
        ));
    }
    out
}

pub fn column_list(t: &TableDef) -> String {
    t.columns
        .iter()
        .map(|c| c.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `INSERT … ON CONFLICT (key) DO UPDATE SET` every other column, for SQLite and PostgreSQL
/// alike; `placeholder(i, column)` writes the i-th (1-based) value's placeholder (`?1`,
/// `$1::text::bigint`).
pub fn upsert_sql(t: &TableDef, placeholder: impl Fn(usize, &Column) -> String) -> String {
    let placeholders: Vec<String> = t
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| placeholder(i + 1, c))
        .collect();
    let set: Vec<String> = t
        .columns
        .iter()
        .filter(|c| !t.key.contains(&c.name))
        .map(|c| format!("{0} = excluded.{0}", c.name))
        .collect();
    format!(
        "INSERT INTO {} ({}) VALUES ({}) ON CONFLICT ({}) DO UPDATE SET {}",
        t.name,
        column_list(t),
        placeholders.join(", "),
        t.key.join(", "),
        set.join(", ")
    )
}

/// The version columns of `alias` as a row value, for comparisons like `(a, b) > (c, d)`.
pub fn version_tuple(t: &TableDef, alias: &str) -> String {
    format!(
        "({})",
        t.version
            .iter()
            .map(|v| format!("{alias}.{v}"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// The order that puts a key's newest copy first: the version columns, then the collection id
/// (a stars crawl's `crawl_id`), each descending (`updated_at DESC, collected_at DESC,
/// collection_id DESC`).
pub fn newest_first(t: &TableDef) -> String {
    let run = ["collection_id", "crawl_id"]
        .into_iter()
        .filter(|c| t.column(c).is_some());
    t.version
        .iter()
        .copied()
        .chain(run)
        .map(|v| format!("{v} DESC"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether a chunk load's MERGE sets `c` of a stored row: every column but the key and, in
/// `repositories`, those the commits job owns ([`tables::COMMITS_OWNED`]), which chunk rows
/// never carry: a pull-request load keeps the stored `last_commit_sha`/`last_commit_at`.
pub fn merged(t: &TableDef, c: &Column) -> bool {
    let commits_owned =
        t.name == tables::REPOSITORIES.name && tables::COMMITS_OWNED.contains(&c.name);
    !t.key.contains(&c.name) && !commits_owned
}

/// The statements of one table's MERGE.
pub struct MergeSql {
    pub count_inserted: String,
    pub count_updated: String,
    pub upsert: String,
}

/// The MERGE of `t` from `dedup`, a query that yields one staged row per key with the table's
/// columns in order.
pub fn merge_sql(t: &TableDef, dedup: &str) -> MergeSql {
    let on = t
        .key
        .iter()
        .map(|k| format!("t.{k} = s.{k}"))
        .collect::<Vec<_>>()
        .join(" AND ");
    let set = t
        .columns
        .iter()
        .filter(|c| merged(t, c))
        .map(|c| format!("{0} = excluded.{0}", c.name))
        .collect::<Vec<_>>()
        .join(", ");
    MergeSql {
        count_inserted: format!("SELECT COUNT(*) FROM ({dedup}) s WHERE NOT EXISTS (SELECT 1 FROM {} t WHERE {on})", t.name),
        count_updated: format!("SELECT COUNT(*) FROM ({dedup}) s JOIN {} t ON {on} WHERE {} > {}", t.name, version_tuple(t, "s"), version_tuple(t, "t")),
        upsert: format!(
            "INSERT INTO {name} ({cols}) {dedup} ON CONFLICT ({key}) DO UPDATE SET {set} WHERE {newer} > {current}",
            name = t.name,
            cols = column_list(t),
            key = t.key.join(", "),
            newer = version_tuple(t, "excluded"),
            current = version_tuple(t, t.name),
        ),
    }
}

/// Stars: the rows `repo_star_history` gains from `staged`, a query (or table) with one
/// observation per repository and `repo_stars`' columns: those whose key `(repo_id,
/// observed_at)` is not stored yet and whose count differs from the repository's previous row
/// by `observed_at` (or that have none). Portable SQL for every backend; `history` is the
/// history table's name in the backend's dialect. The previous row is found through the
/// history's key, so a crawl of 100,000 repositories reads only their rows.
pub fn star_history_rows_sql(staged: &str, history: &str) -> String {
    format!(
        "SELECT S.repo_id, S.observed_at, S.stargazer_count, S.crawl_id FROM {staged} S \
         LEFT JOIN {history} K ON K.repo_id = S.repo_id AND K.observed_at = S.observed_at \
         LEFT JOIN (SELECT S2.repo_id, MAX(H2.observed_at) AS prev_at FROM {staged} S2 \
         JOIN {history} H2 ON H2.repo_id = S2.repo_id AND H2.observed_at < S2.observed_at \
         GROUP BY S2.repo_id) P ON P.repo_id = S.repo_id \
         LEFT JOIN {history} H ON H.repo_id = P.repo_id AND H.observed_at = P.prev_at \
         WHERE K.repo_id IS NULL AND (H.repo_id IS NULL OR H.stargazer_count <> S.stargazer_count)"
    )
}

/// The tables whose `organization` and `repository` columns follow the repository's current
/// names: every table but `repositories`, which holds them.
pub fn renamed_tables() -> impl Iterator<Item = &'static TableDef> {
    tables::ALL
        .iter()
        .filter(|t| t.name != tables::REPOSITORIES.name)
}

/// Gives every row of `table` whose repository is in this load (`staged_repositories`) the
/// repository's current organization and name, from `repositories` (its newest row by id). A
/// renamed repository's rows stored under its old name, and rows reloaded from chunks stored
/// under it, all end up under the new one. Rows already named right are not touched. The three
/// arguments are table names in the backend's dialect.
pub fn rename_sql(table: &str, repositories: &str, staged_repositories: &str) -> String {
    format!(
        "UPDATE {table} AS T SET \
         organization = (SELECT r.organization FROM {repositories} r WHERE r.repo_id = T.repository_id), \
         repository = (SELECT r.repository FROM {repositories} r WHERE r.repo_id = T.repository_id) \
         WHERE T.repository_id IN (SELECT s.repo_id FROM {staged_repositories} s) \
         AND EXISTS (SELECT 1 FROM {repositories} r WHERE r.repo_id = T.repository_id \
         AND (r.organization <> T.organization OR r.repository <> T.repository))"
    )
}

/// Gives staged rows that lack `repository_id` (chunks written before rows carried it) the id
/// of their repository: from the staged `repositories` row of the same collection and name,
/// or else the stored row of that name. Rows with an id are not touched. The arguments are
/// table names in the backend's dialect.
pub fn fill_repository_id_sql(
    stage: &str,
    staged_repositories: &str,
    repositories: &str,
) -> String {
    format!(
        "UPDATE {stage} AS T SET repository_id = COALESCE(\
         (SELECT MAX(s.repo_id) FROM {staged_repositories} s WHERE s.organization = T.organization \
         AND s.repository = T.repository AND s.collection_id = T.collection_id), \
         (SELECT MAX(r.repo_id) FROM {repositories} r WHERE r.organization = T.organization AND r.repository = T.repository)) \
         WHERE T.repository_id IS NULL"
    )
}

/// What a dialect supplies to the metric views: how a table is named in a view, the hours
/// from `a` to `b` (rounded to two decimals), and a pull request's key as one string.
pub struct ViewDialect {
    pub table: Box<dyn Fn(&str) -> String + Send + Sync>,
    pub hours: fn(&str, &str) -> String,
    pub pr_key: &'static str,
}

/// The portable dialect of SQLite and PostgreSQL: plain table names and `||`.
pub fn plain(hours: fn(&str, &str) -> String) -> ViewDialect {
    ViewDialect {
        table: Box::new(|t| t.to_string()),
        hours,
        pr_key: "repository || '#' || pr_number",
    }
}

/// The metric definitions every backend's views share; only time arithmetic and naming are
/// per dialect. A pull request's first review is the first submitted one by someone other than
/// its author, bots left out.
pub fn first_review_cte(d: &ViewDialect) -> String {
    format!(
        "first_review AS (
  SELECT r.organization, r.repository, r.pr_number, MIN(r.submitted_at) AS first_review_at
  FROM {reviews} r
  JOIN {prs} p ON p.organization = r.organization AND p.repository = r.repository AND p.pr_number = r.pr_number
  WHERE r.submitted_at IS NOT NULL AND r.state <> 'PENDING' AND r.reviewer_type <> 'Bot' AND r.reviewer <> p.author
  GROUP BY r.organization, r.repository, r.pr_number
)",
        reviews = (d.table)("reviews"),
        prs = (d.table)("pull_requests"),
    )
}

/// The size bucket of a pull request `p` by lines changed (additions + deletions).
pub const SIZE_BUCKET: &str = "CASE WHEN p.additions + p.deletions < 10 THEN 'XS'
       WHEN p.additions + p.deletions < 50 THEN 'S'
       WHEN p.additions + p.deletions < 250 THEN 'M'
       WHEN p.additions + p.deletions < 1000 THEN 'L'
       ELSE 'XL' END";

/// Reviews given per reviewer: the same view on every backend.
pub fn reviewer_load_view(d: &ViewDialect) -> String {
    format!(
        "CREATE VIEW reviewer_load AS
SELECT organization, reviewer, reviewer_type,
  COUNT(*) AS reviews_given,
  COUNT(DISTINCT {key}) AS prs_reviewed,
  SUM(CASE WHEN state = 'APPROVED' THEN 1 ELSE 0 END) AS approvals,
  SUM(CASE WHEN state = 'CHANGES_REQUESTED' THEN 1 ELSE 0 END) AS changes_requested
FROM {reviews}
GROUP BY organization, reviewer, reviewer_type",
        key = d.pr_key,
        reviews = (d.table)("reviews"),
    )
}

/// The `pr_velocity` view.
pub fn pr_velocity_view(d: &ViewDialect) -> String {
    format!(
        "CREATE VIEW pr_velocity AS
WITH {}
SELECT p.organization, p.repository, p.pr_number, p.author, p.author_type, p.state, p.created_at, p.merged_at,
  f.first_review_at,
  {} AS hours_to_first_review,
  {} AS hours_to_merge,
  p.additions + p.deletions AS lines_changed,
  {SIZE_BUCKET} AS size_bucket
FROM {} p
LEFT JOIN first_review f ON f.organization = p.organization AND f.repository = p.repository AND f.pr_number = p.pr_number",
        first_review_cte(d),
        (d.hours)("p.created_at", "f.first_review_at"),
        (d.hours)("p.created_at", "p.merged_at"),
        (d.table)("pull_requests"),
    )
}
