//! One GH Archive hour: download → gunzip → parse → Arrow batches → one Parquet object, in
//! bounded memory.
//!
//! Three stages run at once: the download (async, a bounded queue of network buffers), a
//! thread that gunzips and parses lines into record batches, and the Parquet writer (async,
//! through `object_store`'s multipart [`BufWriter`], so the object appears under its final name
//! only when it is complete, on `file://`, `gs://` and `s3://` alike). At most
//! [`QUEUE`] buffers and batches wait between stages, and the writer closes a row group at
//! [`batch::ROW_GROUP_BYTES`]: memory does not grow with the hour's size.

use super::batch::{self, EventBatch};
use super::event::parse_line;
use super::HourStats;
use arrow_array::RecordBatch;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use object_store::buffered::BufWriter;
use object_store::path::Path;
use object_store::ObjectStore;
use parquet::arrow::AsyncArrowWriter;
use parquet::file::metadata::KeyValue;
use std::collections::HashSet;
use std::io::{BufRead, Read};
use std::sync::Arc;

/// Buffers (or batches) that may wait between two stages.
pub const QUEUE: usize = 8;
/// Rejected lines logged one by one per hour; the rest are only counted.
const LOGGED_REJECTS: u64 = 20;

/// What ingests have done so far, for a progress display: added to as it happens, over every
/// hour they are passed to (the caller resets them as it likes).
#[derive(Debug, Default)]
pub struct IngestCounters {
    /// Bytes downloaded (gzip).
    pub bytes: std::sync::atomic::AtomicU64,
    /// Events parsed and handed to the Parquet writer (duplicates within the hour left out).
    pub events: std::sync::atomic::AtomicU64,
}

/// What can go wrong with an hour.
#[derive(Debug, thiserror::Error)]
pub enum HourError {
    /// The hour is not published (HTTP 404).
    #[error("not published (404 at {0})")]
    Missing(String),
    /// The download failed or the file is damaged (a truncated gzip, say): retried next run.
    #[error("{0}")]
    Failed(String),
}

/// A `Read` over byte buffers arriving on a channel (the download), for the gunzip thread.
struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<Result<Bytes, String>>,
    current: Bytes,
    error: Option<String>,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.current = b,
                Some(Err(e)) => {
                    self.error = Some(e.clone());
                    return Err(std::io::Error::other(e));
                }
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        bytes::Buf::advance(&mut self.current, n);
        Ok(n)
    }
}

/// Gunzips and parses an hour from `gz` (gzip NDJSON, possibly several gzip members, as GH
/// Archive's files sometimes are), handing each full batch to `sink`. Duplicate ids within the
/// hour are dropped (the first is kept) and counted; rejected lines are counted and the first
/// [`LOGGED_REJECTS`] logged with their line number.
pub fn parse_hour(
    gz: impl Read,
    hour: DateTime<Utc>,
    keep_payload: bool,
    mut sink: impl FnMut(RecordBatch) -> Result<(), String>,
) -> Result<HourStats, String> {
    let label = super::file_name(hour);
    let mut reader = std::io::BufReader::with_capacity(
        1 << 20,
        flate2::read::MultiGzDecoder::new(std::io::BufReader::with_capacity(1 << 16, gz)),
    );
    let mut stats = HourStats::default();
    let mut seen: HashSet<i64> = HashSet::with_capacity(1 << 17);
    let mut batch = EventBatch::new(hour, keep_payload);
    let mut line = Vec::with_capacity(1 << 16);
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line).map_err(|e| {
            format!(
                "{label}: reading the gzip stream after line {}: {e}",
                stats.lines
            )
        })?;
        if n == 0 {
            break;
        }
        stats.json_bytes += n as u64;
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        if text.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        stats.lines += 1;
        match parse_line(text) {
            Ok(row) => {
                if !seen.insert(row.event_id) {
                    stats.duplicates_dropped += 1;
                    continue;
                }
                batch.push(&row);
                stats.events += 1;
                if batch.is_full() {
                    sink(batch.finish())?;
                }
            }
            Err(why) => {
                stats.lines_rejected += 1;
                if stats.lines_rejected <= LOGGED_REJECTS {
                    tracing::warn!(hour = %label, line = stats.lines, reason = %why, "A GH Archive line was rejected.");
                }
            }
        }
    }
    if !batch.is_empty() {
        sink(batch.finish())?;
    }
    Ok(stats)
}

/// Downloads `url` and writes the hour's Parquet object at `path` in `store`. Returns the
/// hour's figures; on any error nothing is left under `path` (the multipart upload is
/// aborted). `counters` are added to while the hour streams (the progress bar).
pub async fn ingest_hour(
    http: &reqwest::Client,
    url: &url::Url,
    store: Arc<dyn ObjectStore>,
    path: &Path,
    hour: DateTime<Utc>,
    keep_payload: bool,
    counters: Arc<IngestCounters>,
) -> Result<HourStats, HourError> {
    use futures::StreamExt;
    let shown = crate::github::client::redacted(url);
    let response = http
        .get(url.clone())
        .send()
        .await
        .map_err(|e| HourError::Failed(format!("downloading {shown}: {}", e.without_url())))?;
    let status = response.status();
    if status == reqwest::StatusCode::NOT_FOUND {
        return Err(HourError::Missing(shown));
    }
    if !status.is_success() {
        return Err(HourError::Failed(format!(
            "downloading {shown}: HTTP {status}"
        )));
    }
    let (bytes_tx, bytes_rx) = tokio::sync::mpsc::channel::<Result<Bytes, String>>(QUEUE);
    let (batch_tx, mut batch_rx) = tokio::sync::mpsc::channel::<RecordBatch>(QUEUE);
    let downloaded = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = downloaded.clone();
    let shown_bytes = counters.clone();
    let download = tokio::spawn(async move {
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            let item = chunk.map_err(|e| format!("the download broke off: {}", e.without_url()));
            if let Ok(b) = &item {
                counter.fetch_add(b.len() as u64, std::sync::atomic::Ordering::Relaxed);
                shown_bytes
                    .bytes
                    .fetch_add(b.len() as u64, std::sync::atomic::Ordering::Relaxed);
            }
            let failed = item.is_err();
            if bytes_tx.send(item).await.is_err() || failed {
                return;
            }
        }
    });
    let parse = tokio::task::spawn_blocking(move || {
        let reader = ChannelReader {
            rx: bytes_rx,
            current: Bytes::new(),
            error: None,
        };
        parse_hour(reader, hour, keep_payload, |b| {
            counters
                .events
                .fetch_add(b.num_rows() as u64, std::sync::atomic::Ordering::Relaxed);
            batch_tx
                .blocking_send(b)
                .map_err(|_| "the Parquet writer stopped".to_string())
        })
    });
    let mut writer = match AsyncArrowWriter::try_new(
        BufWriter::new(store, path.clone()),
        batch::schema(),
        Some(batch::writer_properties()),
    ) {
        Ok(w) => w,
        Err(e) => return Err(HourError::Failed(format!("starting {path}: {e}"))),
    };
    let mut write_error = None;
    while let Some(b) = batch_rx.recv().await {
        if let Err(e) = writer.write(&b).await {
            write_error = Some(format!("writing {path}: {e}"));
            break;
        }
    }
    drop(batch_rx);
    let parsed = parse
        .await
        .map_err(|e| HourError::Failed(format!("the parser thread stopped: {e}")));
    download.abort();
    let outcome = match (write_error, parsed) {
        (Some(e), _) => Err(HourError::Failed(e)),
        (None, Err(e)) => Err(e),
        (None, Ok(Err(e))) => Err(HourError::Failed(format!("{shown}: {e}"))),
        (None, Ok(Ok(mut stats))) => {
            stats.bytes = downloaded.load(std::sync::atomic::Ordering::Relaxed);
            for (k, v) in stats.metadata() {
                writer.append_key_value_metadata(KeyValue::new(k, v));
            }
            match writer.close().await {
                Ok(_) => return Ok(stats),
                Err(e) => return Err(HourError::Failed(format!("finishing {path}: {e}"))),
            }
        }
    };
    // Nothing half-written stays under the final name.
    let mut inner = writer.into_inner();
    let _ = inner.abort().await;
    outcome
}
