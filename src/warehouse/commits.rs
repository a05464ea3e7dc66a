//! What every backend shares for the commits tables ([`crate::tables::COMMIT_TABLES`]): the
//! cells of a month partition's Parquet batches in the backend-neutral [`Typed`] form, the
//! checks that a month's objects hold that month only, and the `repositories` row of a
//! [`RepositoryState`] with the rule for upserting it.
//!
//! The rule for `repositories` (see [`Warehouse::load_commit_months`](super::Warehouse)):
//! `last_commit_sha` and `last_commit_at` belong to the commits job and are always set as given.
//! Every other column is shared with the pull-request collection, and the newest snapshot of
//! the repository wins there, as in a chunk load's MERGE: the state's columns replace the
//! stored ones only when its `(updated_at, collected_at)` is greater. A repository the
//! warehouse does not hold yet is inserted whole, with the state's `collected_at` and
//! `collection_id`.

use super::{Typed, WarehouseError};
use crate::commits::{MonthPartition, RepositoryState};
use crate::tables::{self, Column, ColumnType, Mode, TableDef};
use arrow_array::cast::AsArray;
use arrow_array::types::{Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, RecordBatch};
use chrono::{DateTime, NaiveDate, Utc};
use std::collections::BTreeMap;

/// The cells of row `i` of a batch of `t` (read from a month partition), in the table's column
/// order. A column missing from the file, or of another type, is an error naming it.
pub fn batch_cells(t: &TableDef, batch: &RecordBatch, i: usize) -> Result<Vec<Typed>, String> {
    let mut out = Vec::with_capacity(t.columns.len());
    for c in t.columns {
        let col = batch
            .column_by_name(c.name)
            .ok_or_else(|| format!("the file lacks the column {}", c.name))?;
        if col.is_null(i) {
            if c.mode == Mode::Required {
                return Err(format!("{}.{} is null in row {i}", t.name, c.name));
            }
            out.push(match c.mode {
                Mode::Repeated => Typed::Labels(Vec::new()),
                _ => Typed::Null,
            });
            continue;
        }
        out.push(cell(c, col.as_ref(), i).ok_or_else(|| {
            format!(
                "the column {} is {}, not {}{}",
                c.name,
                col.data_type(),
                if c.mode == Mode::Repeated {
                    "a list of "
                } else {
                    ""
                },
                c.ty.bigquery()
            )
        })?);
    }
    Ok(out)
}

fn cell(c: &Column, col: &dyn Array, i: usize) -> Option<Typed> {
    if c.mode == Mode::Repeated {
        let list = col.as_list_opt::<i32>()?.value(i);
        let items = list.as_string_opt::<i32>()?;
        return Some(Typed::Labels(
            (0..items.len())
                .filter(|j| !items.is_null(*j))
                .map(|j| items.value(j).to_string())
                .collect(),
        ));
    }
    Some(match c.ty {
        ColumnType::Int64 => Typed::Int(col.as_primitive_opt::<Int64Type>()?.value(i)),
        ColumnType::String => Typed::Text(col.as_string_opt::<i32>()?.value(i).to_string()),
        ColumnType::Bool => Typed::Bool(col.as_boolean_opt()?.value(i)),
        ColumnType::Timestamp => Typed::Timestamp(DateTime::from_timestamp_micros(
            col.as_primitive_opt::<TimestampMicrosecondType>()?.value(i),
        )?),
    })
}

/// Checks that a row of `t` read from `path`, one of `month`'s objects, belongs to that
/// repository and month: a row of another would stay behind when its own month is replaced.
pub fn check_row(
    t: &TableDef,
    cells: &[Typed],
    month: &MonthPartition,
    path: &str,
) -> Result<(), WarehouseError> {
    let at = |name: &str| t.columns.iter().position(|c| c.name == name);
    let (Some(id), Some(m), Some(at)) = (at("repository_id"), at("commit_month"), at("commit_at"))
    else {
        return Ok(());
    };
    let bad = |message: String| WarehouseError::BadChunk {
        path: path.to_string(),
        message,
    };
    match (&cells[id], &cells[m]) {
        (Typed::Int(id), Typed::Text(m)) if *id == month.repository_id && *m == month.month => {}
        (id, m) => {
            return Err(bad(format!(
                "a {} row of repository {id:?} and month {m:?} is in the partition of repository {} and month {}",
                t.name, month.repository_id, month.month
            )))
        }
    }
    // BigQuery's load deletes a month by its `commit_at` range too (partition pruning).
    match &cells[at] {
        Typed::Timestamp(when) if crate::commits::rows::month_of(*when) == month.month => Ok(()),
        other => Err(bad(format!(
            "a {} row of month {} has commit_at {other:?}, outside the month",
            t.name, month.month
        ))),
    }
}

/// Checks the months given to a load: each is `repo`'s (`repository_id` = `repo_id`) and named
/// `YYYY-MM`. The months' names end up in SQL and in the partition filter.
pub fn check_months(
    repo: &RepositoryState,
    months: &[MonthPartition],
) -> Result<(), WarehouseError> {
    for m in months {
        if m.repository_id != repo.repo_id {
            return Err(WarehouseError::Query(format!(
                "the month {} of repository {} was given with repository {} ({})",
                m.month,
                m.repository_id,
                repo.repo_id,
                repo.full_name()
            )));
        }
        month_start(&m.month)?;
    }
    Ok(())
}

/// The first instant of the month `YYYY-MM`, UTC.
pub fn month_start(month: &str) -> Result<DateTime<Utc>, WarehouseError> {
    let bad = || WarehouseError::Query(format!("{month:?} is not a month (YYYY-MM)"));
    if month.len() != 7 {
        return Err(bad());
    }
    NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d")
        .map_err(|_| bad())
        .map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc())
}

/// `[start, end)`.
pub type TimeRange = (DateTime<Utc>, DateTime<Utc>);

/// The `commit_at` range `[first month's start, last month's end)` of `months`: constants that
/// let BigQuery prune the month partitions a load deletes from. `None` for no month.
pub fn months_range(months: &[MonthPartition]) -> Result<Option<TimeRange>, WarehouseError> {
    let mut starts = months
        .iter()
        .map(|m| month_start(&m.month))
        .collect::<Result<Vec<_>, _>>()?;
    starts.sort();
    let (Some(lo), Some(hi)) = (starts.first(), starts.last()) else {
        return Ok(None);
    };
    let end = hi
        .checked_add_months(chrono::Months::new(1))
        .ok_or_else(|| WarehouseError::Query(format!("the month of {hi} has no end")))?;
    Ok(Some((*lo, end)))
}

/// `state` as a `repositories` row, its cells in [`tables::REPOSITORIES`]' column order.
pub fn repository_cells(state: &RepositoryState) -> Vec<Typed> {
    let text = |s: &str| Typed::Text(s.to_string());
    let opt_text = |s: &Option<String>| s.as_deref().map_or(Typed::Null, text);
    let opt_ts = |t: Option<DateTime<Utc>>| t.map_or(Typed::Null, Typed::Timestamp);
    tables::REPOSITORIES
        .columns
        .iter()
        .map(|c| match c.name {
            "organization" => text(&state.organization),
            "repository" => text(&state.repository),
            "repo_id" => Typed::Int(state.repo_id),
            "node_id" => text(&state.node_id),
            "full_name" => text(&state.full_name()),
            "is_archived" => Typed::Bool(state.is_archived),
            "is_fork" => Typed::Bool(state.is_fork),
            "is_private" => Typed::Bool(state.is_private),
            "default_branch" => opt_text(&state.default_branch),
            "created_at" => Typed::Timestamp(state.created_at),
            "updated_at" => Typed::Timestamp(state.updated_at),
            "pushed_at" => opt_ts(state.pushed_at),
            "collected_at" => Typed::Timestamp(state.collected_at),
            "collection_id" => text(&state.collection_id),
            "last_commit_sha" => opt_text(&state.last_commit_sha),
            "last_commit_at" => opt_ts(state.last_commit_at),
            // A column added to the definition and not yet to the state.
            _ => Typed::Null,
        })
        .collect()
}

/// The upsert of a commits load's `repositories` row for SQLite and PostgreSQL (the rule in
/// this module's documentation); `placeholder(i, column)` writes the i-th (1-based) value's
/// placeholder, the values being [`repository_cells`].
pub fn repository_upsert_sql(placeholder: impl Fn(usize, &Column) -> String) -> String {
    let t = &tables::REPOSITORIES;
    let newer = format!(
        "{} > {}",
        super::sql::version_tuple(t, "excluded"),
        super::sql::version_tuple(t, t.name)
    );
    let set: Vec<String> = t
        .columns
        .iter()
        .filter(|c| !t.key.contains(&c.name))
        .map(|c| {
            if tables::COMMITS_OWNED.contains(&c.name) {
                format!("{0} = excluded.{0}", c.name)
            } else {
                format!(
                    "{0} = CASE WHEN {newer} THEN excluded.{0} ELSE {1}.{0} END",
                    c.name, t.name
                )
            }
        })
        .collect();
    let placeholders: Vec<String> = t
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| placeholder(i + 1, c))
        .collect();
    format!(
        "INSERT INTO {} ({}) VALUES ({}) ON CONFLICT ({}) DO UPDATE SET {}",
        t.name,
        super::sql::column_list(t),
        placeholders.join(", "),
        t.key.join(", "),
        set.join(", ")
    )
}

/// The `commits` rows of a repository take its current name (`owner/name` from its
/// `repositories` row): names follow the id, as in every other table. A pull-request load
/// that renames the repository leaves them to the next commits load (on BigQuery, renaming
/// them at every hourly collection would read the whole `commits` table each time). `{id}` is the
/// repository id's placeholder or literal; `concat` joins two SQL strings in the dialect.
pub fn rename_commits_sql(
    repositories: &str,
    commits: &str,
    id: &str,
    concat: fn(&str, &str) -> String,
) -> String {
    let name = format!(
        "(SELECT {} FROM {repositories} r WHERE r.repo_id = {id})",
        concat("r.organization", &concat("'/'", "r.repository"))
    );
    format!("UPDATE {commits} SET repository = {name} WHERE repository_id = {id} AND repository <> {name}")
}

/// Rows read per commits table, every table named (0 when it had no objects).
pub fn zero_counts() -> BTreeMap<String, u64> {
    tables::COMMIT_TABLES
        .iter()
        .map(|t| (t.name.to_string(), 0))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_are_checked_and_bound_the_partitions() {
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        assert_eq!(month_start("2024-02").unwrap(), t("2024-02-01T00:00:00Z"));
        for bad in ["2024-13", "2024-2", "24-02", "2024-02-01", "x"] {
            assert!(month_start(bad).is_err(), "{bad}");
        }
        let m = |month: &str| MonthPartition {
            repository_id: 1,
            month: month.into(),
            commits: vec![],
            file_changes: vec![],
            file_states: vec![],
        };
        assert_eq!(
            months_range(&[m("2024-12"), m("2023-01")]).unwrap(),
            Some((t("2023-01-01T00:00:00Z"), t("2025-01-01T00:00:00Z")))
        );
        assert_eq!(months_range(&[]).unwrap(), None);
    }

    #[test]
    fn a_state_becomes_a_repositories_row_in_column_order() {
        let at = "2024-03-10T05:00:00Z".parse::<DateTime<Utc>>().unwrap();
        let s = RepositoryState {
            repo_id: 7,
            node_id: "R_7".into(),
            organization: "o".into(),
            repository: "r".into(),
            is_archived: false,
            is_fork: true,
            is_private: false,
            default_branch: Some("main".into()),
            created_at: at,
            updated_at: at,
            pushed_at: None,
            last_commit_sha: Some("abc".into()),
            last_commit_at: Some(at),
            collected_at: at,
            collection_id: "c".into(),
        };
        let cells = repository_cells(&s);
        assert_eq!(cells.len(), tables::REPOSITORIES.columns.len());
        let at_col = |n: &str| {
            &cells[tables::REPOSITORIES
                .columns
                .iter()
                .position(|c| c.name == n)
                .unwrap()]
        };
        assert_eq!(at_col("full_name"), &Typed::Text("o/r".into()));
        assert_eq!(at_col("is_fork"), &Typed::Bool(true));
        assert_eq!(at_col("pushed_at"), &Typed::Null);
        assert_eq!(at_col("last_commit_sha"), &Typed::Text("abc".into()));
    }

    #[test]
    fn the_upsert_always_sets_the_commit_columns_and_the_rest_when_newer() {
        let sql = repository_upsert_sql(|i, _| format!("?{i}"));
        assert!(sql.contains("last_commit_sha = excluded.last_commit_sha,"));
        assert!(sql.contains(
            "repository = CASE WHEN (excluded.updated_at, excluded.collected_at) > (repositories.updated_at, repositories.collected_at) THEN excluded.repository ELSE repositories.repository END"
        ));
        assert!(!sql.contains("repo_id = "), "the key is not updated");
    }
}
