//! The rows of the commits tables (one field per column of [`crate::tables::COMMITS`],
//! [`crate::tables::FILE_CHANGES`] and [`crate::tables::FILE_STATES`], in order), and their
//! Arrow form: the record batches written to and read from the Parquet partitions.

use crate::tables;
use arrow_array::builder::{
    BooleanBuilder, Int64Builder, ListBuilder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::{
    Array, ArrayRef, BooleanArray, Int64Array, ListArray, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use chrono::{DateTime, Utc};
use std::sync::Arc;

/// A `commits` row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitRow {
    pub repository_id: i64,
    pub repository: String,
    pub commit_sha: String,
    pub commit_author_id: Option<i64>,
    pub author_login: Option<String>,
    pub author_name: String,
    pub author_email: String,
    pub committer_name: String,
    pub commit_at: DateTime<Utc>,
    pub authored_at: DateTime<Utc>,
    pub commit_message: String,
    pub num_files_changed: i64,
    pub num_lines_added: i64,
    pub num_lines_deleted: i64,
    pub parent_commits: Vec<String>,
    pub is_merge: bool,
    pub commit_month: String,
}

/// A `file_changes` row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileChangeRow {
    pub repository_id: i64,
    pub commit_sha: String,
    pub file_path: String,
    pub previous_path: Option<String>,
    pub file_sha: Option<String>,
    pub commit_at: DateTime<Utc>,
    pub file_type: Option<String>,
    pub status: String,
    pub lines_added: i64,
    pub lines_deleted: i64,
    pub changes: i64,
    pub is_binary: bool,
    pub commit_month: String,
}

/// A `file_states` row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileStateRow {
    pub repository_id: i64,
    pub commit_sha: String,
    pub file_path: String,
    pub file_sha: String,
    pub commit_at: DateTime<Utc>,
    pub file_size: Option<i64>,
    pub raw_url: String,
    pub s3_file_location: Option<String>,
    pub commit_month: String,
}

/// `YYYY-MM` of `t` (UTC): the partition a row belongs to.
pub fn month_of(t: DateTime<Utc>) -> String {
    t.format("%Y-%m").to_string()
}

/// The extension of `path`'s file name, lower-cased, without the dot; `None` when the name
/// has none (`Makefile`) or is a dot file without another dot (`.gitignore`).
pub fn file_type(path: &str) -> Option<String> {
    let name = path.rsplit('/').next().unwrap_or(path);
    let (stem, ext) = name.rsplit_once('.')?;
    if stem.is_empty() || ext.is_empty() {
        return None;
    }
    Some(ext.to_lowercase())
}

/// `https://raw.githubusercontent.com/OWNER/REPO/SHA/PATH`, each path segment percent-encoded
/// (RFC 3986 unreserved characters kept), so a name with spaces, `#`, `?` or non-ASCII bytes
/// still names the file.
pub fn raw_url(full_name: &str, sha: &str, path: &str) -> String {
    let mut out = format!("https://raw.githubusercontent.com/{full_name}/{sha}/");
    for (i, segment) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        for b in segment.bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                out.push(b as char);
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn from_micros(v: i64) -> Result<DateTime<Utc>, String> {
    DateTime::from_timestamp_micros(v).ok_or_else(|| format!("timestamp {v} µs is out of range"))
}

fn ts_builder(n: usize) -> TimestampMicrosecondBuilder {
    TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC")
}

/// The rows as one record batch of `commits`' Arrow schema ([`tables::arrow_schema`]).
pub fn commits_batch(rows: &[CommitRow]) -> Result<RecordBatch, arrow_schema::ArrowError> {
    let n = rows.len();
    let mut repository_id = Int64Builder::with_capacity(n);
    let mut repository = StringBuilder::new();
    let mut sha = StringBuilder::new();
    let mut author_id = Int64Builder::with_capacity(n);
    let mut login = StringBuilder::new();
    let mut author_name = StringBuilder::new();
    let mut author_email = StringBuilder::new();
    let mut committer_name = StringBuilder::new();
    let mut commit_at = ts_builder(n);
    let mut authored_at = ts_builder(n);
    let mut message = StringBuilder::new();
    let mut files = Int64Builder::with_capacity(n);
    let mut added = Int64Builder::with_capacity(n);
    let mut deleted = Int64Builder::with_capacity(n);
    let mut parents = ListBuilder::new(StringBuilder::new());
    let mut is_merge = BooleanBuilder::with_capacity(n);
    let mut month = StringBuilder::new();
    for r in rows {
        repository_id.append_value(r.repository_id);
        repository.append_value(&r.repository);
        sha.append_value(&r.commit_sha);
        author_id.append_option(r.commit_author_id);
        login.append_option(r.author_login.as_deref());
        author_name.append_value(&r.author_name);
        author_email.append_value(&r.author_email);
        committer_name.append_value(&r.committer_name);
        commit_at.append_value(micros(r.commit_at));
        authored_at.append_value(micros(r.authored_at));
        message.append_value(&r.commit_message);
        files.append_value(r.num_files_changed);
        added.append_value(r.num_lines_added);
        deleted.append_value(r.num_lines_deleted);
        for p in &r.parent_commits {
            parents.values().append_value(p);
        }
        parents.append(true);
        is_merge.append_value(r.is_merge);
        month.append_value(&r.commit_month);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(repository_id.finish()),
        Arc::new(repository.finish()),
        Arc::new(sha.finish()),
        Arc::new(author_id.finish()),
        Arc::new(login.finish()),
        Arc::new(author_name.finish()),
        Arc::new(author_email.finish()),
        Arc::new(committer_name.finish()),
        Arc::new(commit_at.finish()),
        Arc::new(authored_at.finish()),
        Arc::new(message.finish()),
        Arc::new(files.finish()),
        Arc::new(added.finish()),
        Arc::new(deleted.finish()),
        Arc::new(parents.finish()),
        Arc::new(is_merge.finish()),
        Arc::new(month.finish()),
    ];
    RecordBatch::try_new(tables::arrow_schema(&tables::COMMITS), columns)
}

/// The rows as one record batch of `file_changes`' Arrow schema.
pub fn file_changes_batch(rows: &[FileChangeRow]) -> Result<RecordBatch, arrow_schema::ArrowError> {
    let n = rows.len();
    let mut repository_id = Int64Builder::with_capacity(n);
    let mut sha = StringBuilder::new();
    let mut path = StringBuilder::new();
    let mut previous = StringBuilder::new();
    let mut file_sha = StringBuilder::new();
    let mut commit_at = ts_builder(n);
    let mut file_type = StringBuilder::new();
    let mut status = StringBuilder::new();
    let mut added = Int64Builder::with_capacity(n);
    let mut deleted = Int64Builder::with_capacity(n);
    let mut changes = Int64Builder::with_capacity(n);
    let mut binary = BooleanBuilder::with_capacity(n);
    let mut month = StringBuilder::new();
    for r in rows {
        repository_id.append_value(r.repository_id);
        sha.append_value(&r.commit_sha);
        path.append_value(&r.file_path);
        previous.append_option(r.previous_path.as_deref());
        file_sha.append_option(r.file_sha.as_deref());
        commit_at.append_value(micros(r.commit_at));
        file_type.append_option(r.file_type.as_deref());
        status.append_value(&r.status);
        added.append_value(r.lines_added);
        deleted.append_value(r.lines_deleted);
        changes.append_value(r.changes);
        binary.append_value(r.is_binary);
        month.append_value(&r.commit_month);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(repository_id.finish()),
        Arc::new(sha.finish()),
        Arc::new(path.finish()),
        Arc::new(previous.finish()),
        Arc::new(file_sha.finish()),
        Arc::new(commit_at.finish()),
        Arc::new(file_type.finish()),
        Arc::new(status.finish()),
        Arc::new(added.finish()),
        Arc::new(deleted.finish()),
        Arc::new(changes.finish()),
        Arc::new(binary.finish()),
        Arc::new(month.finish()),
    ];
    RecordBatch::try_new(tables::arrow_schema(&tables::FILE_CHANGES), columns)
}

/// The rows as one record batch of `file_states`' Arrow schema.
pub fn file_states_batch(rows: &[FileStateRow]) -> Result<RecordBatch, arrow_schema::ArrowError> {
    let n = rows.len();
    let mut repository_id = Int64Builder::with_capacity(n);
    let mut sha = StringBuilder::new();
    let mut path = StringBuilder::new();
    let mut file_sha = StringBuilder::new();
    let mut commit_at = ts_builder(n);
    let mut size = Int64Builder::with_capacity(n);
    let mut raw = StringBuilder::new();
    let mut s3 = StringBuilder::new();
    let mut month = StringBuilder::new();
    for r in rows {
        repository_id.append_value(r.repository_id);
        sha.append_value(&r.commit_sha);
        path.append_value(&r.file_path);
        file_sha.append_value(&r.file_sha);
        commit_at.append_value(micros(r.commit_at));
        size.append_option(r.file_size);
        raw.append_value(&r.raw_url);
        s3.append_option(r.s3_file_location.as_deref());
        month.append_value(&r.commit_month);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(repository_id.finish()),
        Arc::new(sha.finish()),
        Arc::new(path.finish()),
        Arc::new(file_sha.finish()),
        Arc::new(commit_at.finish()),
        Arc::new(size.finish()),
        Arc::new(raw.finish()),
        Arc::new(s3.finish()),
        Arc::new(month.finish()),
    ];
    RecordBatch::try_new(tables::arrow_schema(&tables::FILE_STATES), columns)
}

/// A batch's column `name`, as `T`; an error naming the column when it is missing or of
/// another type (a file written by something else).
fn col<'a, T: 'static>(b: &'a RecordBatch, name: &str) -> Result<&'a T, String> {
    b.column_by_name(name)
        .ok_or_else(|| format!("column {name} is missing"))?
        .as_any()
        .downcast_ref::<T>()
        .ok_or_else(|| {
            format!(
                "column {name} has type {:?}",
                b.schema()
                    .field_with_name(name)
                    .map(|f| f.data_type().clone())
            )
        })
}

fn string(a: &StringArray, i: usize) -> String {
    a.value(i).to_string()
}

fn opt_string(a: &StringArray, i: usize) -> Option<String> {
    (!a.is_null(i)).then(|| a.value(i).to_string())
}

fn opt_i64(a: &Int64Array, i: usize) -> Option<i64> {
    (!a.is_null(i)).then(|| a.value(i))
}

/// The `commits` rows of a batch read from a partition.
pub fn commits_of(b: &RecordBatch) -> Result<Vec<CommitRow>, String> {
    let repository_id = col::<Int64Array>(b, "repository_id")?;
    let repository = col::<StringArray>(b, "repository")?;
    let sha = col::<StringArray>(b, "commit_sha")?;
    let author_id = col::<Int64Array>(b, "commit_author_id")?;
    let login = col::<StringArray>(b, "author_login")?;
    let author_name = col::<StringArray>(b, "author_name")?;
    let author_email = col::<StringArray>(b, "author_email")?;
    let committer_name = col::<StringArray>(b, "committer_name")?;
    let commit_at = col::<TimestampMicrosecondArray>(b, "commit_at")?;
    let authored_at = col::<TimestampMicrosecondArray>(b, "authored_at")?;
    let message = col::<StringArray>(b, "commit_message")?;
    let files = col::<Int64Array>(b, "num_files_changed")?;
    let added = col::<Int64Array>(b, "num_lines_added")?;
    let deleted = col::<Int64Array>(b, "num_lines_deleted")?;
    let parents = col::<ListArray>(b, "parent_commits")?;
    let is_merge = col::<BooleanArray>(b, "is_merge")?;
    let month = col::<StringArray>(b, "commit_month")?;
    let mut out = Vec::with_capacity(b.num_rows());
    for i in 0..b.num_rows() {
        let p = parents.value(i);
        let p = p
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or("parent_commits is not a list of strings")?;
        out.push(CommitRow {
            repository_id: repository_id.value(i),
            repository: string(repository, i),
            commit_sha: string(sha, i),
            commit_author_id: opt_i64(author_id, i),
            author_login: opt_string(login, i),
            author_name: string(author_name, i),
            author_email: string(author_email, i),
            committer_name: string(committer_name, i),
            commit_at: from_micros(commit_at.value(i))?,
            authored_at: from_micros(authored_at.value(i))?,
            commit_message: string(message, i),
            num_files_changed: files.value(i),
            num_lines_added: added.value(i),
            num_lines_deleted: deleted.value(i),
            parent_commits: (0..p.len()).map(|j| p.value(j).to_string()).collect(),
            is_merge: is_merge.value(i),
            commit_month: string(month, i),
        });
    }
    Ok(out)
}

/// The `file_changes` rows of a batch read from a partition.
pub fn file_changes_of(b: &RecordBatch) -> Result<Vec<FileChangeRow>, String> {
    let repository_id = col::<Int64Array>(b, "repository_id")?;
    let sha = col::<StringArray>(b, "commit_sha")?;
    let path = col::<StringArray>(b, "file_path")?;
    let previous = col::<StringArray>(b, "previous_path")?;
    let file_sha = col::<StringArray>(b, "file_sha")?;
    let commit_at = col::<TimestampMicrosecondArray>(b, "commit_at")?;
    let file_type = col::<StringArray>(b, "file_type")?;
    let status = col::<StringArray>(b, "status")?;
    let added = col::<Int64Array>(b, "lines_added")?;
    let deleted = col::<Int64Array>(b, "lines_deleted")?;
    let changes = col::<Int64Array>(b, "changes")?;
    let binary = col::<BooleanArray>(b, "is_binary")?;
    let month = col::<StringArray>(b, "commit_month")?;
    let mut out = Vec::with_capacity(b.num_rows());
    for i in 0..b.num_rows() {
        out.push(FileChangeRow {
            repository_id: repository_id.value(i),
            commit_sha: string(sha, i),
            file_path: string(path, i),
            previous_path: opt_string(previous, i),
            file_sha: opt_string(file_sha, i),
            commit_at: from_micros(commit_at.value(i))?,
            file_type: opt_string(file_type, i),
            status: string(status, i),
            lines_added: added.value(i),
            lines_deleted: deleted.value(i),
            changes: changes.value(i),
            is_binary: binary.value(i),
            commit_month: string(month, i),
        });
    }
    Ok(out)
}

/// The `file_states` rows of a batch read from a partition.
pub fn file_states_of(b: &RecordBatch) -> Result<Vec<FileStateRow>, String> {
    let repository_id = col::<Int64Array>(b, "repository_id")?;
    let sha = col::<StringArray>(b, "commit_sha")?;
    let path = col::<StringArray>(b, "file_path")?;
    let file_sha = col::<StringArray>(b, "file_sha")?;
    let commit_at = col::<TimestampMicrosecondArray>(b, "commit_at")?;
    let size = col::<Int64Array>(b, "file_size")?;
    let raw = col::<StringArray>(b, "raw_url")?;
    let s3 = col::<StringArray>(b, "s3_file_location")?;
    let month = col::<StringArray>(b, "commit_month")?;
    let mut out = Vec::with_capacity(b.num_rows());
    for i in 0..b.num_rows() {
        out.push(FileStateRow {
            repository_id: repository_id.value(i),
            commit_sha: string(sha, i),
            file_path: string(path, i),
            file_sha: string(file_sha, i),
            commit_at: from_micros(commit_at.value(i))?,
            file_size: opt_i64(size, i),
            raw_url: string(raw, i),
            s3_file_location: opt_string(s3, i),
            commit_month: string(month, i),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_types_are_the_extension_lower_cased() {
        assert_eq!(file_type("src/main.RS").as_deref(), Some("rs"));
        assert_eq!(file_type("a.b/Makefile"), None);
        assert_eq!(file_type(".gitignore"), None);
        assert_eq!(file_type("doc/.config.toml").as_deref(), Some("toml"));
        assert_eq!(file_type("archive.tar.gz").as_deref(), Some("gz"));
        assert_eq!(file_type("trailing."), None);
    }

    #[test]
    fn raw_urls_percent_encode_each_segment() {
        assert_eq!(
            raw_url("o/r", "abc", "dir with space/ünï#?.md"),
            "https://raw.githubusercontent.com/o/r/abc/dir%20with%20space/%C3%BCn%C3%AF%23%3F.md"
        );
        assert_eq!(
            raw_url("o/r", "abc", "a/b-c_d.e~f"),
            "https://raw.githubusercontent.com/o/r/abc/a/b-c_d.e~f"
        );
    }

    #[test]
    fn rows_round_trip_through_arrow() {
        let t = DateTime::from_timestamp(1_700_000_000, 123_000).unwrap();
        let c = CommitRow {
            repository_id: 7,
            repository: "o/r".into(),
            commit_sha: "a".repeat(40),
            commit_author_id: None,
            author_login: Some("x".into()),
            author_name: "X".into(),
            author_email: "x@example.com".into(),
            committer_name: "Y".into(),
            commit_at: t,
            authored_at: t,
            commit_message: "msg\nbody".into(),
            num_files_changed: 2,
            num_lines_added: 3,
            num_lines_deleted: 4,
            parent_commits: vec!["b".repeat(40), "c".repeat(40)],
            is_merge: true,
            commit_month: month_of(t),
        };
        let b = commits_batch(std::slice::from_ref(&c)).unwrap();
        assert_eq!(commits_of(&b).unwrap(), vec![c]);
        let f = FileChangeRow {
            repository_id: 7,
            commit_sha: "a".repeat(40),
            file_path: "x.rs".into(),
            previous_path: None,
            file_sha: None,
            commit_at: t,
            file_type: Some("rs".into()),
            status: "removed".into(),
            lines_added: 0,
            lines_deleted: 9,
            changes: 9,
            is_binary: false,
            commit_month: "2023-11".into(),
        };
        let b = file_changes_batch(std::slice::from_ref(&f)).unwrap();
        assert_eq!(file_changes_of(&b).unwrap(), vec![f]);
        let s = FileStateRow {
            repository_id: 7,
            commit_sha: "a".repeat(40),
            file_path: "x.rs".into(),
            file_sha: "d".repeat(40),
            commit_at: t,
            file_size: Some(12),
            raw_url: raw_url("o/r", "a", "x.rs"),
            s3_file_location: None,
            commit_month: "2023-11".into(),
        };
        let b = file_states_batch(std::slice::from_ref(&s)).unwrap();
        assert_eq!(file_states_of(&b).unwrap(), vec![s]);
    }
}
