//! One GH Archive hour: download → gunzip → parse → Arrow batches → one Parquet object, in
//! bounded memory.
//!
//! Three stages run at once: the download (async, a bounded queue of network buffers); one
//! thread that gunzips blocks of whole lines ([`BLOCK_BYTES`]) straight into a buffer, parses
//! the lines where they lie (`event::parse_line`) and builds record batches
//! ([`batch::BATCH_BYTES`]); and the Parquet writer (async: encoding and zstd, then
//! `object_store`'s multipart [`BufWriter`], so the object appears under its final name only
//! when it is complete, on `file://`, `gs://` and `s3://` alike). At most [`QUEUE`] network
//! buffers and [`BATCH_QUEUE`] batches wait between stages, and the writer closes a row group
//! at [`batch::ROW_GROUP_BYTES`] of compressed pages: memory does not grow with the hour's size.
//!
//! The parser thread and the writer are the two busy stages and take about equal CPU time, so
//! on 2 cores the hour takes about half their sum. A third thread for the gunzip alone (it is
//! about a quarter of the parser thread's time) was measured and did not help on 2 cores.

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
use std::io::Read;
use std::sync::Arc;

/// Network buffers that may wait for the gunzip.
pub const QUEUE: usize = 8;
/// Record batches that may wait for the Parquet writer.
pub const BATCH_QUEUE: usize = 4;
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

/// A `Read` over byte buffers arriving on a channel (the download), for the parser thread.
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

/// Bytes of JSON gunzipped at a time, then parsed where they lie (a block holds whole lines; a
/// line longer than a block gets a block as long as it is).
pub const BLOCK_BYTES: usize = 512 << 10;

/// The gunzipped stream as blocks of whole lines, gunzipped straight into one buffer and
/// parsed where they lie (no copy per line).
struct LineBlocks<R> {
    gz: R,
    buf: Vec<u8>,
    /// `buf[..lines]`: the whole lines of the current block.
    lines: usize,
    /// `buf[lines..filled]`: the start of the next line, read with the block.
    filled: usize,
    done: bool,
}

impl<R: Read> LineBlocks<R> {
    fn new(gz: R) -> Self {
        LineBlocks {
            gz,
            buf: Vec::new(),
            lines: 0,
            filled: 0,
            done: false,
        }
    }

    /// The current block's lines (the stream's last line may lack its newline).
    fn lines(&self) -> &[u8] {
        &self.buf[..self.lines]
    }

    /// Reads the next block; `Ok(false)` once the stream has ended and nothing is left. After
    /// an error, [`LineBlocks::lines`] holds the whole lines read before it.
    fn fill(&mut self) -> std::io::Result<bool> {
        if self.done {
            (self.lines, self.filled) = (0, 0);
            return Ok(false);
        }
        // The unfinished line to the front; a buffer grown for a long line is not kept.
        self.buf.copy_within(self.lines..self.filled, 0);
        self.filled -= self.lines;
        self.lines = 0;
        if self.buf.len() > 2 * BLOCK_BYTES && self.filled <= BLOCK_BYTES / 2 {
            self.buf.truncate(BLOCK_BYTES);
            self.buf.shrink_to_fit();
        }
        if self.buf.len() < BLOCK_BYTES {
            self.buf.resize(BLOCK_BYTES, 0);
        }
        // The unfinished line has no newline: look for one after it.
        let mut searched = self.filled;
        loop {
            if self.filled == self.buf.len() {
                if let Some(i) = memchr::memrchr(b'\n', &self.buf[searched..self.filled]) {
                    self.lines = searched + i + 1;
                    return Ok(true);
                }
                // One line longer than the buffer: make room for it.
                searched = self.filled;
                self.buf.resize(2 * self.buf.len(), 0);
            }
            match self.gz.read(&mut self.buf[self.filled..]) {
                Ok(0) => {
                    self.done = true;
                    self.lines = self.filled;
                    return Ok(self.lines > 0);
                }
                Ok(n) => self.filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.done = true;
                    self.lines =
                        memchr::memrchr(b'\n', &self.buf[..self.filled]).map_or(0, |i| i + 1);
                    self.filled = self.lines;
                    return Err(e);
                }
            }
        }
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
    sink: impl FnMut(RecordBatch) -> Result<(), String>,
) -> Result<HourStats, String> {
    let gz = flate2::read::MultiGzDecoder::new(std::io::BufReader::with_capacity(1 << 16, gz));
    let mut parser = HourParser::new(hour, keep_payload, sink);
    let mut blocks = LineBlocks::new(gz);
    loop {
        let more = blocks.fill();
        parser.block(blocks.lines())?;
        match more {
            Ok(true) => {}
            Ok(false) => return parser.finish(),
            Err(e) => return Err(parser.read_error(e)),
        }
    }
}

/// Lines into rows into batches, block by block.
struct HourParser<S> {
    label: String,
    stats: HourStats,
    seen: HashSet<i64>,
    batch: EventBatch,
    sink: S,
}

impl<S: FnMut(RecordBatch) -> Result<(), String>> HourParser<S> {
    fn new(hour: DateTime<Utc>, keep_payload: bool, sink: S) -> Self {
        HourParser {
            label: super::file_name(hour),
            stats: HourStats::default(),
            seen: HashSet::with_capacity(1 << 17),
            batch: EventBatch::new(hour, keep_payload),
            sink,
        }
    }

    /// Whole lines (the last may lack its newline).
    fn block(&mut self, block: &[u8]) -> Result<(), String> {
        self.stats.json_bytes += block.len() as u64;
        let mut start = 0;
        while start < block.len() {
            let end = memchr::memchr(b'\n', &block[start..]).map_or(block.len(), |i| start + i);
            let line = &block[start..end];
            start = end + 1;
            let text = line.strip_suffix(b"\r").unwrap_or(line);
            if text.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            self.stats.lines += 1;
            match parse_line(text) {
                Ok(row) => {
                    if !self.seen.insert(row.event_id) {
                        self.stats.duplicates_dropped += 1;
                        continue;
                    }
                    self.batch.push(&row);
                    self.stats.events += 1;
                    if self.batch.is_full() {
                        (self.sink)(self.batch.finish())?;
                    }
                }
                Err(why) => {
                    self.stats.lines_rejected += 1;
                    if self.stats.lines_rejected <= LOGGED_REJECTS {
                        tracing::warn!(hour = %self.label, line = self.stats.lines, reason = %why, "A GH Archive line was rejected.");
                    }
                }
            }
        }
        Ok(())
    }

    fn read_error(&self, e: std::io::Error) -> String {
        format!(
            "{}: reading the gzip stream after line {}: {e}",
            self.label, self.stats.lines
        )
    }

    fn finish(mut self) -> Result<HourStats, String> {
        if !self.batch.is_empty() {
            (self.sink)(self.batch.finish())?;
        }
        Ok(self.stats)
    }
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
    let (batch_tx, mut batch_rx) = tokio::sync::mpsc::channel::<RecordBatch>(BATCH_QUEUE);
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
    if write_error.is_some() {
        // The gunzip may be waiting for the network: end the stream so the parser can stop.
        download.abort();
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out its bytes a few at a time, then an error if asked to.
    struct Trickle {
        data: Vec<u8>,
        at: usize,
        step: usize,
        fail_at_end: bool,
    }

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.at == self.data.len() && self.fail_at_end {
                return Err(std::io::Error::other("the download broke off"));
            }
            let n = buf.len().min(self.step).min(self.data.len() - self.at);
            buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    fn blocks_of(data: &[u8], step: usize, fail_at_end: bool) -> (Vec<Vec<u8>>, bool) {
        let mut blocks = LineBlocks::new(Trickle {
            data: data.to_vec(),
            at: 0,
            step,
            fail_at_end,
        });
        let mut out = Vec::new();
        loop {
            let more = blocks.fill();
            if !blocks.lines().is_empty() {
                out.push(blocks.lines().to_vec());
            }
            match more {
                Ok(true) => {}
                Ok(false) => return (out, false),
                Err(_) => return (out, true),
            }
        }
    }

    #[test]
    fn blocks_hold_whole_lines_of_any_length() {
        let long = "x".repeat(3 * BLOCK_BYTES + 17);
        let mut data = String::new();
        for i in 0..5000 {
            data.push_str(&format!("{{\"line\":{i}}}\n"));
            if i % 1000 == 7 {
                data.push_str(&long);
                data.push_str("\r\n\n");
            }
        }
        data.push_str("{\"last\":true}");
        for step in [1 << 20, 4096, 1000] {
            let (blocks, failed) = blocks_of(data.as_bytes(), step, false);
            assert!(!failed);
            assert_eq!(blocks.concat(), data.as_bytes(), "step {step}");
            for b in &blocks[..blocks.len() - 1] {
                assert_eq!(b.last(), Some(&b'\n'));
            }
        }
    }

    #[test]
    fn a_broken_stream_gives_its_whole_lines_then_the_error() {
        let data = "{\"a\":1}\n{\"b\":2}\n{\"c\":";
        let (blocks, failed) = blocks_of(data.as_bytes(), 3, true);
        assert!(failed);
        assert_eq!(blocks.concat(), b"{\"a\":1}\n{\"b\":2}\n");
    }
}
