//! The commits job's reading of one repository, for `scripts/bench-commits.sh`: every commit of
//! HEAD of a bare repository, in the job's batches of 5,000, read with the job's code
//! (`ghstats::commits::job::read_batch`: `git log --raw --numstat` over one reader per core, blob
//! sizes from `git cat-file`, rows) and encoded as the job's Parquet (zstd), kept in memory and
//! thrown away: no storage, no warehouse, no network. Prints one JSON object:
//! `{"commits", "file_changes", "seconds", "parquet_bytes"}` (wall seconds).
//!
//!   commits_read BARE_REPO

use ghstats::commits::{git, job, rows};
use std::collections::HashMap;
use std::time::Instant;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let Some(dir) = std::env::args().nth(1) else {
        eprintln!("usage: commits_read BARE_REPO");
        return std::process::ExitCode::from(2);
    };
    match measure(std::path::Path::new(&dir)).await {
        Ok(line) => {
            println!("{line}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("commits_read: {dir}: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn measure(dir: &std::path::Path) -> anyhow::Result<String> {
    let readers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let start = Instant::now();
    let shas = git::new_commits(dir, "HEAD", &[])?;
    let authors = HashMap::new();
    let (mut commits, mut changes, mut bytes) = (0u64, 0u64, 0u64);
    for batch in shas.chunks(5000) {
        let b = job::read_batch(dir, batch, readers, 1, "bench/repo", &authors).await?;
        let mut c = Vec::new();
        let mut f = Vec::new();
        let mut s = Vec::new();
        for (commit, ch, st) in b.commits {
            c.push(commit);
            f.extend(ch);
            s.extend(st);
        }
        commits += c.len() as u64;
        changes += f.len() as u64;
        for batch in [
            rows::commits_batch(&c)?,
            rows::file_changes_batch(&f)?,
            rows::file_states_batch(&s)?,
        ] {
            let mut buf = Vec::new();
            let mut w = parquet::arrow::ArrowWriter::try_new(&mut buf, batch.schema(), None)?;
            w.write(&batch)?;
            w.close()?;
            bytes += buf.len() as u64;
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    Ok(format!(
        "{{\"commits\":{commits},\"file_changes\":{changes},\"seconds\":{seconds:.3},\"parquet_bytes\":{bytes}}}"
    ))
}
