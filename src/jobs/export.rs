//! `ghstats export`: one warehouse table streamed out as CSV or Parquet, in bounded memory.
//!
//! The warehouse reads the table a page at a time ([`Warehouse::export_rows`]) into a bounded
//! queue; a blocking thread writes the rows out as they come. A file is written under a
//! temporary name beside it and renamed only once complete, so a failed export leaves no half
//! file (and an earlier file of that name untouched).
//!
//! CSV: a header row of the column names, RFC 4180 quoting (the `csv` crate), UTF-8,
//! timestamps as RFC 3339 UTC with `Z` (a fraction only when non-zero), booleans `true` /
//! `false`, a REPEATED column as a JSON array, NULL as an empty field. Parquet: the table's
//! Arrow schema ([`crate::tables::arrow_schema`]), zstd, record batches of at most
//! [`crate::gharchive::batch::BATCH_ROWS`] rows.

use crate::gharchive::batch::{writer_properties, BATCH_BYTES, BATCH_ROWS};
use crate::tables::{self, ColumnType, Mode, TableDef};
use crate::warehouse::{Typed, Warehouse};
use anyhow::Context;
use arrow_array::builder::{
    BooleanBuilder, Int64Builder, ListBuilder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Rows waiting between the warehouse and the writer: the bound on what an export holds.
const QUEUE_ROWS: usize = 1024;

/// The file format of an export.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Csv,
    Parquet,
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "csv" => Ok(Format::Csv),
            "parquet" => Ok(Format::Parquet),
            other => Err(format!(
                "unknown format {other:?}: the formats are csv and parquet"
            )),
        }
    }
}

/// Where an export goes: standard output (`-`, CSV only) or a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    Stdout,
    File(PathBuf),
}

impl FromStr for Output {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "" => Err("--out needs a file path, or - for standard output".into()),
            "-" => Ok(Output::Stdout),
            path => match std::fs::symlink_metadata(path) {
                // Only a regular file (or nothing) is replaced.
                Ok(meta) if !meta.file_type().is_file() => Err(format!(
                    "{path} is not a regular file (a folder, a link, a device or a FIFO); give a file path"
                )),
                _ => Ok(Output::File(path.into())),
            },
        }
    }
}

/// A table name as `--table` takes it: any table of [`tables::every`]; the error names them.
pub fn parse_table(name: &str) -> Result<&'static TableDef, String> {
    tables::any_by_name(name).ok_or_else(|| {
        format!(
            "unknown table {name:?}: the tables are {}",
            tables::every()
                .map(|t| t.name)
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

/// What an export wrote.
#[derive(Clone, Debug, Serialize)]
pub struct Exported {
    pub table: &'static str,
    pub format: Format,
    /// Rows written (the header row of a CSV file not counted).
    pub rows: u64,
    /// The file written, or `-` for standard output.
    pub out: String,
}

/// Streams every row of `table` from `wh` to `out` as `format`. Parquet cannot go to standard
/// output (an error, before anything is read). On any failure nothing is left at `out`'s path
/// (a file already there stays as it was).
pub async fn export(
    wh: &dyn Warehouse,
    table: &'static TableDef,
    format: Format,
    out: &Output,
) -> anyhow::Result<Exported> {
    if format == Format::Parquet && *out == Output::Stdout {
        anyhow::bail!("Parquet is not written to standard output: give --out FILE");
    }
    if let Output::File(path) = out {
        // Only a regular file (or nothing) is replaced: a device, a FIFO, a symbolic link or
        // a folder at the path is refused before anything is read.
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            if !meta.file_type().is_file() {
                anyhow::bail!(
                    "--out {} is not a regular file (a folder, a link, a device or a FIFO); give a file path",
                    path.display()
                );
            }
        }
    }
    let (tx, rx) = tokio::sync::mpsc::channel(QUEUE_ROWS);
    let target = out.clone();
    let writer = tokio::task::spawn_blocking(move || write_rows(table, format, &target, rx));
    let read = wh.export_rows(table, tx).await;
    // The writer's own failure explains a reader stopped by it; it comes first.
    let written = writer
        .await
        .context("the export's writer thread failed")??;
    let rows = read.with_context(|| format!("reading {} from the warehouse", table.name))?;
    let shown = match (out, written) {
        (Output::File(path), Some(tmp)) => {
            // A temporary file is private (0600); the export is an ordinary file.
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                tmp.as_file()
                    .set_permissions(std::fs::Permissions::from_mode(0o644))
                    .with_context(|| format!("setting the mode of {}", path.display()))?;
            }
            tmp.persist(path)
                .with_context(|| format!("renaming the export to {}", path.display()))?;
            path.display().to_string()
        }
        _ => "-".to_string(),
    };
    tracing::info!(table = table.name, rows, out = %shown, "Table exported.");
    Ok(Exported {
        table: table.name,
        format,
        rows,
        out: shown,
    })
}

/// Writes the rows `rx` brings until it closes: to a temporary file beside `out`'s path
/// (returned, for the caller to rename once the read succeeded too), or to standard output.
fn write_rows(
    t: &'static TableDef,
    format: Format,
    out: &Output,
    rx: tokio::sync::mpsc::Receiver<Vec<Typed>>,
) -> anyhow::Result<Option<tempfile::NamedTempFile>> {
    match out {
        Output::Stdout => {
            let stdout = std::io::stdout();
            let mut w = std::io::BufWriter::new(stdout.lock());
            write_csv(t, &mut w, rx).context("writing CSV to standard output")?;
            w.flush().context("writing CSV to standard output")?;
            Ok(None)
        }
        Output::File(path) => {
            let dir = match path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => Path::new("."),
            };
            let mut tmp = tempfile::Builder::new()
                .prefix(".ghstats-export-")
                .tempfile_in(dir)
                .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
            let what = || format!("writing {}", path.display());
            match format {
                Format::Csv => {
                    let mut w = std::io::BufWriter::new(tmp.as_file_mut());
                    write_csv(t, &mut w, rx).with_context(what)?;
                    w.flush().with_context(what)?;
                }
                Format::Parquet => {
                    write_parquet(t, tmp.as_file_mut(), rx).with_context(what)?;
                }
            }
            tmp.as_file().sync_all().with_context(what)?;
            Ok(Some(tmp))
        }
    }
}

/// One cell as CSV text (see the module's rules).
fn csv_cell(v: &Typed) -> String {
    match v {
        Typed::Null => String::new(),
        Typed::Text(s) => s.clone(),
        Typed::Int(i) => i.to_string(),
        Typed::Bool(b) => b.to_string(),
        Typed::Timestamp(t) => t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        Typed::Labels(l) => serde_json::Value::from(l.clone()).to_string(),
    }
}

fn write_csv(
    t: &TableDef,
    w: impl Write,
    mut rx: tokio::sync::mpsc::Receiver<Vec<Typed>>,
) -> anyhow::Result<()> {
    let mut csv = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(w);
    csv.write_record(t.columns.iter().map(|c| c.name))?;
    while let Some(row) = rx.blocking_recv() {
        csv.write_record(row.iter().map(csv_cell))?;
    }
    csv.flush()?;
    Ok(())
}

/// One column of a record batch being built.
enum ColumnBuilder {
    Int(Int64Builder),
    Text(StringBuilder),
    Bool(BooleanBuilder),
    Time(TimestampMicrosecondBuilder),
    List(ListBuilder<StringBuilder>),
}

impl ColumnBuilder {
    fn new(c: &tables::Column) -> Self {
        match (c.mode, c.ty) {
            (Mode::Repeated, _) => ColumnBuilder::List(ListBuilder::new(StringBuilder::new())),
            (_, ColumnType::Int64) => ColumnBuilder::Int(Int64Builder::new()),
            (_, ColumnType::String) => ColumnBuilder::Text(StringBuilder::new()),
            (_, ColumnType::Bool) => ColumnBuilder::Bool(BooleanBuilder::new()),
            (_, ColumnType::Timestamp) => {
                ColumnBuilder::Time(TimestampMicrosecondBuilder::new().with_timezone("UTC"))
            }
        }
    }

    /// Appends a cell; returns the bytes of text it added.
    fn push(&mut self, c: &tables::Column, v: Typed) -> anyhow::Result<usize> {
        let mismatch = |v: &Typed| anyhow::anyhow!("{} holds {v:?}", c.name);
        match (self, v) {
            (ColumnBuilder::Int(b), Typed::Int(i)) => b.append_value(i),
            (ColumnBuilder::Int(b), Typed::Null) => b.append_null(),
            (ColumnBuilder::Bool(b), Typed::Bool(x)) => b.append_value(x),
            (ColumnBuilder::Bool(b), Typed::Null) => b.append_null(),
            (ColumnBuilder::Time(b), Typed::Timestamp(t)) => b.append_value(t.timestamp_micros()),
            (ColumnBuilder::Time(b), Typed::Null) => b.append_null(),
            (ColumnBuilder::Text(b), Typed::Text(s)) => {
                b.append_value(&s);
                return Ok(s.len());
            }
            (ColumnBuilder::Text(b), Typed::Null) => b.append_null(),
            (ColumnBuilder::List(b), Typed::Labels(l)) => {
                let n = l.iter().map(String::len).sum();
                for s in l {
                    b.values().append_value(s);
                }
                b.append(true);
                return Ok(n);
            }
            (ColumnBuilder::List(b), Typed::Null) => b.append(true),
            (_, other) => return Err(mismatch(&other)),
        }
        Ok(0)
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            ColumnBuilder::Int(b) => std::sync::Arc::new(b.finish()),
            ColumnBuilder::Text(b) => std::sync::Arc::new(b.finish()),
            ColumnBuilder::Bool(b) => std::sync::Arc::new(b.finish()),
            ColumnBuilder::Time(b) => std::sync::Arc::new(b.finish()),
            ColumnBuilder::List(b) => std::sync::Arc::new(b.finish()),
        }
    }
}

fn write_parquet(
    t: &TableDef,
    file: &mut std::fs::File,
    mut rx: tokio::sync::mpsc::Receiver<Vec<Typed>>,
) -> anyhow::Result<()> {
    let schema = tables::arrow_schema(t);
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(file, schema.clone(), Some(writer_properties()))?;
    let mut builders: Vec<ColumnBuilder> = t.columns.iter().map(ColumnBuilder::new).collect();
    let (mut rows, mut bytes) = (0usize, 0usize);
    let flush = |builders: &mut Vec<ColumnBuilder>,
                 writer: &mut parquet::arrow::ArrowWriter<&mut std::fs::File>|
     -> anyhow::Result<()> {
        let columns: Vec<ArrayRef> = builders.iter_mut().map(ColumnBuilder::finish).collect();
        writer.write(&RecordBatch::try_new(schema.clone(), columns)?)?;
        Ok(())
    };
    while let Some(row) = rx.blocking_recv() {
        for ((b, c), v) in builders.iter_mut().zip(t.columns).zip(row) {
            bytes += b.push(c, v)?;
        }
        rows += 1;
        if rows >= BATCH_ROWS || bytes >= BATCH_BYTES {
            flush(&mut builders, &mut writer)?;
            (rows, bytes) = (0, 0);
        }
    }
    if rows > 0 {
        flush(&mut builders, &mut writer)?;
    }
    writer.close()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_choices_name_the_valid_ones() {
        let e = parse_table("stars").unwrap_err();
        assert!(
            e.contains("repo_stars")
                && e.contains("gharchive_events")
                && e.contains("pull_requests"),
            "{e}"
        );
        assert!("xlsx"
            .parse::<Format>()
            .unwrap_err()
            .contains("csv and parquet"));
        assert_eq!("-".parse::<Output>().unwrap(), Output::Stdout);
        assert_eq!(
            parse_table("repo_star_history").unwrap().name,
            "repo_star_history"
        );
    }

    /// `ghstats export --help` names every table `--table` takes.
    #[test]
    fn the_help_names_every_table() {
        use clap::CommandFactory;
        let mut cli = crate::config::Cli::command();
        let export = cli
            .find_subcommand_mut("export")
            .expect("an export command");
        let help = export.render_long_help().to_string();
        for t in tables::every() {
            assert!(help.contains(t.name), "export --help lacks {}", t.name);
        }
    }

    #[test]
    fn csv_cells_follow_the_rules() {
        let at = "2026-03-01T10:00:00.5+00:00"
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap();
        assert_eq!(csv_cell(&Typed::Timestamp(at)), "2026-03-01T10:00:00.500Z");
        assert_eq!(csv_cell(&Typed::Null), "");
        assert_eq!(csv_cell(&Typed::Bool(false)), "false");
        assert_eq!(
            csv_cell(&Typed::Labels(vec!["a\"b".into(), "c".into()])),
            r#"["a\"b","c"]"#
        );
    }
}
