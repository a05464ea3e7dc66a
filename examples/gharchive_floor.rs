//! The floors `scripts/bench-gharchive.sh` compares the `gharchive` job with, on one GH Archive
//! hour file: gunzip only (the same decoder and buffers as the job, output thrown away), then
//! gunzip + parse into Arrow batches (the job's parser, batches thrown away: no Parquet, no
//! storage, no warehouse). Prints one JSON object:
//! `{"json_bytes", "gunzip_seconds", "parse_seconds", "events"}` (bytes after gunzip; wall
//! seconds of each pass).
//!
//!   gharchive_floor FILE.json.gz

use std::io::Read;
use std::time::Instant;

fn main() -> std::process::ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: gharchive_floor FILE.json.gz");
        return std::process::ExitCode::from(2);
    };
    match measure(&path) {
        Ok(line) => {
            println!("{line}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gharchive_floor: {path}: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn measure(path: &str) -> Result<String, String> {
    let open = || std::fs::File::open(path).map_err(|e| e.to_string());
    // The same layering as `ghstats::gharchive::ingest::parse_hour`.
    let start = Instant::now();
    let mut gz = std::io::BufReader::with_capacity(
        1 << 20,
        flate2::read::MultiGzDecoder::new(std::io::BufReader::with_capacity(1 << 16, open()?)),
    );
    let mut buf = vec![0u8; 1 << 20];
    let mut json_bytes = 0u64;
    loop {
        let n = gz.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        json_bytes += n as u64;
    }
    let gunzip_seconds = start.elapsed().as_secs_f64();

    let hour = chrono::DateTime::from_timestamp(0, 0).ok_or("no epoch")?;
    let start = Instant::now();
    let stats = ghstats::gharchive::ingest::parse_hour(open()?, hour, true, |batch| {
        std::hint::black_box(batch);
        Ok(())
    })?;
    let parse_seconds = start.elapsed().as_secs_f64();
    Ok(serde_json::json!({
        "json_bytes": json_bytes,
        "gunzip_seconds": gunzip_seconds,
        "parse_seconds": parse_seconds,
        "events": stats.events,
    })
    .to_string())
}
