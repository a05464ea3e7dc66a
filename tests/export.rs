//! `ghstats export` as a user runs it: a stars crawl of more than 100,000 repositories, with
//! text that CSV must quote (commas, quotes, newlines, non-ASCII), loaded into SQLite and
//! PostgreSQL and exported as CSV (a file and standard output) and Parquet, then read back
//! cell for cell; the BigQuery emulator's export through `tabledata.list` pages; bad choices
//! refused with one line; a failed export leaving no file behind.

mod common;

use chrono::{DateTime, SecondsFormat, Utc};
use ghstats::lake::{ChunkInfo, Lake};
use ghstats::stars::RepoStar;
use ghstats::warehouse::Warehouse;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

const ROWS: i64 = 100_050;

/// Text CSV must quote, and text beyond ASCII.
const ODD: [&str; 6] = [
    "plain",
    "a,comma",
    "a \"quoted\" word",
    "two\nlines",
    "crlf\r\nand, \"all\"",
    "ünïcödé 星 🚀",
];

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// Repository `i` as the crawl saw it.
fn star(i: i64) -> RepoStar {
    let odd = ODD[(i % ODD.len() as i64) as usize];
    RepoStar {
        repo_id: 1_000 + i,
        node_id: format!("R_{i}"),
        name_with_owner: format!("owner-{i}/{odd}"),
        owner_login: format!("owner-{i}"),
        stargazer_count: i * 7 % 100_000,
        fork_count: i % 13,
        primary_language: (i % 3 != 0).then(|| ODD[(i % 5) as usize].to_string()),
        created_at: at("2015-06-01T12:00:00Z") + chrono::Duration::seconds(i),
        pushed_at: (i % 4 != 0)
            .then(|| at("2026-03-01T10:00:00.123Z") + chrono::Duration::milliseconds(i)),
        is_fork: i % 2 == 0,
        is_archived: i % 11 == 0,
        observed_at: at("2026-11-30T04:00:00Z"),
        crawl_id: "20261130T040000Z-abcdef".into(),
    }
}

/// A row's CSV cells as the export writes them (RFC 3339 UTC, `Z`, fraction only when
/// non-zero; NULL empty; booleans `true`/`false`).
fn csv_cells(r: &RepoStar) -> Vec<String> {
    let t = |t: &DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::AutoSi, true);
    vec![
        r.repo_id.to_string(),
        r.node_id.clone(),
        r.name_with_owner.clone(),
        r.owner_login.clone(),
        r.stargazer_count.to_string(),
        r.fork_count.to_string(),
        r.primary_language.clone().unwrap_or_default(),
        t(&r.created_at),
        r.pushed_at.as_ref().map(t).unwrap_or_default(),
        r.is_fork.to_string(),
        r.is_archived.to_string(),
        t(&r.observed_at),
        r.crawl_id.clone(),
    ]
}

/// Writes `rows` as stars chunks of 25,000 rows into an in-memory lake.
async fn crawl(rows: &[RepoStar]) -> (Lake, Vec<ChunkInfo>) {
    let lake = Lake::new(Arc::new(object_store::memory::InMemory::new()), None);
    let mut chunks = Vec::new();
    for (seq, part) in rows.chunks(25_000).enumerate() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        for r in part {
            serde_json::to_writer(&mut gz, r).unwrap();
            gz.write_all(b"\n").unwrap();
        }
        let bytes = gz.finish().unwrap();
        let path = ghstats::stars::chunk_path(&lake, "2026-11-30", &part[0].crawl_id, seq as u32);
        chunks.push(ChunkInfo {
            path: path.to_string(),
            repository: String::new(),
            table: "repo_stars".into(),
            rows: part.len() as u64,
            bytes: bytes.len() as u64,
        });
        lake.put(&path, bytes.into()).await.unwrap();
    }
    (lake, chunks)
}

async fn load(wh: &dyn Warehouse, rows: &[RepoStar]) {
    wh.ensure_tables().await.unwrap();
    let (lake, chunks) = crawl(rows).await;
    let loaded = wh.load_stars(&lake, &chunks).await.unwrap();
    assert_eq!(loaded.inserted, rows.len() as u64, "{loaded:?}");
}

/// Runs `ghstats export` against `warehouse_url` in `dir`.
async fn export(dir: &Path, warehouse_url: &str, args: &[&str]) -> std::process::Output {
    let mut cmd = common::ghstats_bin(dir);
    cmd.env("WAREHOUSE_URL", warehouse_url)
        .arg("export")
        .args(args);
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

/// Reads CSV text back: the header and every record.
fn read_csv(bytes: &[u8]) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::ReaderBuilder::new().from_reader(bytes);
    let header = r.headers().unwrap().iter().map(str::to_string).collect();
    let rows = r
        .records()
        .map(|rec| rec.unwrap().iter().map(str::to_string).collect())
        .collect();
    (header, rows)
}

fn header() -> Vec<String> {
    ghstats::tables::REPO_STARS
        .columns
        .iter()
        .map(|c| c.name.to_string())
        .collect()
}

fn assert_csv_eq(bytes: &[u8], expected: &[RepoStar]) {
    let (head, rows) = read_csv(bytes);
    assert_eq!(head, header());
    assert_eq!(rows.len(), expected.len());
    for (got, want) in rows.iter().zip(expected) {
        assert_eq!(*got, csv_cells(want));
    }
}

/// Reads the Parquet file back with the parquet crate: the table's schema, every cell.
fn assert_parquet_eq(path: &Path, expected: &[RepoStar]) {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Int64Type, TimestampMicrosecondType};
    use arrow_array::Array;
    let file = std::fs::File::open(path).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let want_schema = ghstats::tables::arrow_schema(&ghstats::tables::REPO_STARS);
    let mut i = 0;
    for batch in reader {
        let b = batch.unwrap();
        assert_eq!(b.schema().fields(), want_schema.fields());
        let int = |c: usize| b.column(c).as_primitive::<Int64Type>().clone();
        let text = |c: usize| b.column(c).as_string::<i32>().clone();
        let time = |c: usize| {
            b.column(c)
                .as_primitive::<TimestampMicrosecondType>()
                .clone()
        };
        let bool_ = |c: usize| b.column(c).as_boolean().clone();
        let (id, node, name, owner, stars, forks, lang) =
            (int(0), text(1), text(2), text(3), int(4), int(5), text(6));
        let (created, pushed, fork, archived, observed, crawl) =
            (time(7), time(8), bool_(9), bool_(10), time(11), text(12));
        for r in 0..b.num_rows() {
            let w = &expected[i];
            assert_eq!(id.value(r), w.repo_id);
            assert_eq!(node.value(r), w.node_id);
            assert_eq!(name.value(r), w.name_with_owner);
            assert_eq!(owner.value(r), w.owner_login);
            assert_eq!(stars.value(r), w.stargazer_count);
            assert_eq!(forks.value(r), w.fork_count);
            assert_eq!(
                (!lang.is_null(r)).then(|| lang.value(r).to_string()),
                w.primary_language
            );
            assert_eq!(created.value(r), w.created_at.timestamp_micros());
            assert_eq!(
                (!pushed.is_null(r)).then(|| pushed.value(r)),
                w.pushed_at.map(|t| t.timestamp_micros())
            );
            assert_eq!(fork.value(r), w.is_fork);
            assert_eq!(archived.value(r), w.is_archived);
            assert_eq!(observed.value(r), w.observed_at.timestamp_micros());
            assert_eq!(crawl.value(r), w.crawl_id);
            i += 1;
        }
    }
    assert_eq!(i, expected.len());
}

/// With GHSTATS_TEST_PARQUET_PYTHON (a Python with pyarrow), Python's csv module reads the
/// CSV file back to the same cells, and pyarrow reads the Parquet file's rows and columns.
fn check_with_python(csv_path: &Path, parquet_path: &Path, expected: &[RepoStar]) {
    let Ok(python) = std::env::var("GHSTATS_TEST_PARQUET_PYTHON") else {
        eprintln!("Python's reading skipped: GHSTATS_TEST_PARQUET_PYTHON is not set");
        return;
    };
    let script = "import csv, json, sys\n\
        import pyarrow.parquet as pq\n\
        with open(sys.argv[1], newline='', encoding='utf-8') as f:\n    rows = list(csv.reader(f, strict=True))\n\
        t = pq.read_table(sys.argv[2])\n\
        json.dump({'csv': rows, 'parquet_rows': t.num_rows, 'parquet_columns': t.column_names}, sys.stdout)\n";
    let out = std::process::Command::new(python)
        .args(["-c", script])
        .arg(csv_path)
        .arg(parquet_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut want = vec![header()];
    want.extend(expected.iter().map(csv_cells));
    assert_eq!(got["csv"], serde_json::json!(want));
    assert_eq!(got["parquet_rows"], expected.len());
    assert_eq!(got["parquet_columns"], serde_json::json!(header()));
}

/// Every way out of one warehouse: CSV to a file, CSV to standard output, Parquet.
async fn exports_read_back_equal(url: &str, expected: &[RepoStar]) {
    let dir = tempfile::tempdir().unwrap();
    let csv_path = dir.path().join("stars.csv");
    let out = export(
        dir.path(),
        url,
        &[
            "--table",
            "repo_stars",
            "--format",
            "csv",
            "--out",
            "stars.csv",
        ],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["rows"], expected.len());
    assert_eq!(result["format"], "csv");
    let bytes = std::fs::read(&csv_path).unwrap();
    assert_csv_eq(&bytes, expected);

    let out = export(dir.path(), url, &["--table", "repo_stars", "--out", "-"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, bytes, "standard output holds the same CSV");

    let parquet_path = dir.path().join("out").join("stars.parquet");
    std::fs::create_dir(dir.path().join("out")).unwrap();
    let out = export(
        dir.path(),
        url,
        &[
            "--table",
            "repo_stars",
            "--format",
            "parquet",
            "--out",
            "out/stars.parquet",
        ],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_parquet_eq(&parquet_path, expected);
    check_with_python(&csv_path, &parquet_path, expected);
    // Nothing but the exports is left in the folders: no temporary file.
    for d in [dir.path().to_path_buf(), dir.path().join("out")] {
        let names: Vec<String> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".ghstats-export-"))
            .collect();
        assert!(names.is_empty(), "{names:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_exports_100k_stars_as_csv_and_parquet_that_read_back_cell_for_cell() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.db");
    let rows: Vec<RepoStar> = (0..ROWS).map(star).collect();
    {
        let wh = ghstats::warehouse::sqlite::SqliteWarehouse::open(&db)
            .await
            .unwrap();
        load(&wh, &rows).await;
    }
    exports_read_back_equal(&format!("sqlite://{}", db.display()), &rows).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_exports_100k_stars_as_csv_and_parquet_that_read_back_cell_for_cell() {
    let Some(url) = common::fresh_database().await else {
        return;
    };
    let rows: Vec<RepoStar> = (0..ROWS).map(star).collect();
    {
        let wh = ghstats::warehouse::postgres::PostgresWarehouse::connect(&url)
            .await
            .unwrap();
        load(&wh, &rows).await;
    }
    exports_read_back_equal(&url, &rows).await;
}

/// BigQuery's rows come through `tabledata.list` pages (10,000 rows each): more than one page
/// of them, every cell as loaded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bigquery_exports_every_page_of_a_table() {
    let Some(target) = common::fresh_bigquery() else {
        return;
    };
    let rows: Vec<RepoStar> = (0..12_345).map(star).collect();
    let wh = ghstats::warehouse::bigquery::BigQueryWarehouse::connect(&target)
        .await
        .unwrap();
    load(&wh, &rows).await;
    let dir = tempfile::tempdir().unwrap();
    let out = export(
        dir.path(),
        &target.to_string(),
        &["--table", "repo_stars", "--out", "-"],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (head, mut got) = read_csv(&out.stdout);
    assert_eq!(head, header());
    // BigQuery gives no order: compare by repository id.
    got.sort_by_key(|r| r[0].parse::<i64>().unwrap());
    let want: Vec<Vec<String>> = rows.iter().map(csv_cells).collect();
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g, w);
    }
}

/// A REPEATED column (a pull request's labels) is a JSON array in CSV and a list in Parquet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labels_export_as_a_json_array_and_a_parquet_list() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.db");
    {
        let wh = ghstats::warehouse::sqlite::SqliteWarehouse::open(&db)
            .await
            .unwrap();
        wh.ensure_tables().await.unwrap();
        let lake = Lake::new(Arc::new(object_store::memory::InMemory::new()), None);
        let pr = serde_json::json!({
            "organization": "acme", "repository": "r", "repository_id": 7, "pr_number": 1, "pr_id": 1001, "node_id": "PR_1",
            "title": "t", "state": "OPEN", "draft": false, "author": "ada", "author_type": "User",
            "created_at": "2026-03-01T10:00:00Z", "updated_at": "2026-03-01T10:05:00Z", "closed_at": null, "merged_at": null, "merged": false,
            "merged_by": null, "merged_by_type": null, "base_ref": "main", "head_ref": "f", "additions": 10, "deletions": 2,
            "changed_files": 1, "labels": ["bug", "a,\"b\""], "size_label": "S", "review_decision": null,
            "commit_count": 1, "review_count": 0, "comment_count": 0,
            "collected_at": "2026-03-01T10:05:00Z", "collection_id": "c1",
        });
        let mut w = ghstats::lake::ChunkWriter::new(
            lake.clone(),
            "acme".parse().unwrap(),
            "r".parse().unwrap(),
            "2026-03-01".into(),
            "20260301T100000Z-000000".into(),
            1_000_000,
            Default::default(),
        );
        w.push("pull_requests", &pr).await.unwrap();
        let chunks = w.flush().await.unwrap();
        wh.load(&lake, &chunks).await.unwrap();
    }
    let url = format!("sqlite://{}", db.display());
    let out = export(dir.path(), &url, &["--table", "pull_requests"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (head, rows) = read_csv(&out.stdout);
    let labels = head.iter().position(|h| h == "labels").unwrap();
    assert_eq!(rows[0][labels], r#"["bug","a,\"b\""]"#);

    let out = export(
        dir.path(),
        &url,
        &[
            "--table",
            "pull_requests",
            "--format",
            "parquet",
            "--out",
            "prs.parquet",
        ],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    use arrow_array::cast::AsArray;
    use arrow_array::Array;
    let file = std::fs::File::open(dir.path().join("prs.parquet")).unwrap();
    let batch = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let list = batch.column(labels).as_list::<i32>().value(0);
    let list = list.as_string::<i32>();
    assert_eq!(
        (0..list.len()).map(|i| list.value(i)).collect::<Vec<_>>(),
        ["bug", "a,\"b\""]
    );
}

/// An unknown table or format is a usage error (exit status 2) in one line naming the valid
/// choices; Parquet to standard output is refused the same way. Nothing is read or written.
#[test]
fn bad_choices_are_usage_errors_naming_the_valid_ones() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("folder")).unwrap();
    std::fs::write(dir.path().join("target.csv"), "kept\n").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink("target.csv", dir.path().join("link.csv")).unwrap();
    for (args, names) in [
        (
            vec!["--table", "stars", "--out", "x.csv"],
            vec![
                "repo_stars",
                "repo_star_history",
                "gharchive_events",
                "pull_requests",
            ],
        ),
        (
            vec![
                "--table",
                "repo_stars",
                "--format",
                "xlsx",
                "--out",
                "x.csv",
            ],
            vec!["csv", "parquet"],
        ),
        (
            vec!["--table", "repo_stars", "--format", "parquet"],
            vec!["--out FILE"],
        ),
        // A folder, a symbolic link or a device is never replaced by the export.
        (
            vec!["--table", "repo_stars", "--out", "folder"],
            vec!["not a regular file"],
        ),
        (
            vec!["--table", "repo_stars", "--out", "link.csv"],
            vec!["not a regular file"],
        ),
        (
            vec!["--table", "repo_stars", "--out", "/dev/null"],
            vec!["not a regular file"],
        ),
    ] {
        let out = common::ghstats_bin(dir.path())
            .env("WAREHOUSE_URL", "sqlite://./w.db")
            .arg("export")
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(i32::from(ghstats::exit::USAGE)),
            "{args:?}: {stderr}"
        );
        let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error")).collect();
        assert_eq!(errors.len(), 1, "{stderr}");
        for n in names {
            assert!(errors[0].contains(n), "{n} not in {stderr}");
        }
    }
    assert!(!dir.path().join("w.db").exists(), "nothing is created");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("target.csv")).unwrap(),
        "kept\n"
    );
    assert!(std::fs::symlink_metadata(dir.path().join("link.csv"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(!dir.path().join("x.csv").exists());
}

/// An export that fails (here the table is gone from the warehouse) leaves the file it was to
/// replace as it was, and no temporary file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_export_leaves_no_half_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.db");
    {
        let wh = ghstats::warehouse::sqlite::SqliteWarehouse::open(&db)
            .await
            .unwrap();
        load(&wh, &(0..10).map(star).collect::<Vec<_>>()).await;
    }
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("DROP TABLE repo_star_history")
        .unwrap();
    std::fs::write(dir.path().join("old.csv"), "before\n").unwrap();
    let url = format!("sqlite://{}", db.display());
    for format in ["csv", "parquet"] {
        let out = export(
            dir.path(),
            &url,
            &[
                "--table",
                "repo_star_history",
                "--format",
                format,
                "--out",
                "old.csv",
            ],
        )
        .await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("repo_star_history"), "{stderr}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("old.csv")).unwrap(),
            "before\n"
        );
        let left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".ghstats-export-"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
}

/// The commits tables export like any other: `parent_commits` as a JSON array in CSV and a
/// list of strings in Parquet, from SQLite and PostgreSQL alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_commits_tables_export_with_their_lists() {
    use arrow_array::cast::AsArray;
    use arrow_array::Array;
    let dir = tempfile::tempdir().unwrap();
    let mut urls = vec![format!("sqlite://{}", dir.path().join("w.db").display())];
    if let Some(pg) = common::fresh_database().await {
        urls.push(pg);
    }
    for url in urls {
        let wh = ghstats::warehouse::open(&url.parse().unwrap())
            .await
            .unwrap();
        wh.ensure_tables().await.unwrap();
        let lake = Lake::new(Arc::new(object_store::memory::InMemory::new()), None);
        let sample = ghstats::warehouse::conformance::commit_months_sample(&lake)
            .await
            .unwrap();
        wh.load_commit_months(&lake, &sample.state, &sample.months)
            .await
            .unwrap();
        drop(wh);
        let out = export(dir.path(), &url, &["--table", "commits", "--out", "c.csv"]).await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut csv = csv::Reader::from_path(dir.path().join("c.csv")).unwrap();
        let header = csv.headers().unwrap().clone();
        let parents = header.iter().position(|h| h == "parent_commits").unwrap();
        let lists: Vec<String> = csv
            .records()
            .map(|r| r.unwrap()[parents].to_string())
            .collect();
        assert_eq!(
            lists,
            [r#"["s1-parent"]"#, r#"["s1","x9"]"#, r#"["s3-parent"]"#],
            "{url}"
        );
        for table in ["commits", "file_changes", "file_states"] {
            let out = export(
                dir.path(),
                &url,
                &[
                    "--table",
                    table,
                    "--format",
                    "parquet",
                    "--out",
                    "c.parquet",
                ],
            )
            .await;
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            let want = sample.expected[["commits", "file_changes", "file_states"]
                .iter()
                .position(|t| *t == table)
                .unwrap()]
            .len();
            assert_eq!(v["rows"], want, "{url} {table}");
        }
        let file = std::fs::File::open(dir.path().join("c.parquet")).unwrap();
        assert!(
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
                .unwrap()
                .build()
                .unwrap()
                .next()
                .is_some()
        );
        let out = export(
            dir.path(),
            &url,
            &[
                "--table",
                "commits",
                "--format",
                "parquet",
                "--out",
                "c.parquet",
            ],
        )
        .await;
        assert!(out.status.success());
        let batch = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            std::fs::File::open(dir.path().join("c.parquet")).unwrap(),
        )
        .unwrap()
        .build()
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
        let col = batch
            .column_by_name("parent_commits")
            .unwrap()
            .as_list::<i32>()
            .value(1);
        let items = col.as_string::<i32>();
        assert_eq!(
            (0..items.len()).map(|i| items.value(i)).collect::<Vec<_>>(),
            ["s1", "x9"],
            "{url}"
        );
    }
}
