//! Gzip-compressed NDJSON chunks of at most `CHUNK_SIZE` rows, written one table stream at a
//! time with deterministic names, so a retried write overwrites instead of duplicating.

use super::Lake;
use crate::names::{OrgName, RepoName};
use bytes::Bytes;
use flate2::write::GzEncoder;
use flate2::Compression;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;

/// A chunk that has been written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkInfo {
    pub path: String,
    pub repository: String,
    pub table: String,
    pub rows: u64,
    pub bytes: u64,
}

struct Stream {
    lines: Vec<u8>,
    rows: u64,
}

/// Buffers one repository's rows per table and writes a chunk whenever a table reaches the
/// chunk size (and on [`ChunkWriter::flush`]).
pub struct ChunkWriter {
    lake: Lake,
    org: OrgName,
    repo: RepoName,
    date: String,
    collection_id: String,
    chunk_size: u64,
    streams: BTreeMap<&'static str, Stream>,
    /// The next sequence number per table; kept in the checkpoint so a resumed run continues
    /// the numbering.
    pub next_seq: BTreeMap<String, u32>,
    /// Rows written per table so far.
    pub rows: BTreeMap<String, u64>,
}

impl ChunkWriter {
    pub fn new(
        lake: Lake,
        org: OrgName,
        repo: RepoName,
        date: String,
        collection_id: String,
        chunk_size: u32,
        next_seq: BTreeMap<String, u32>,
    ) -> Self {
        ChunkWriter {
            lake,
            org,
            repo,
            date,
            collection_id,
            chunk_size: chunk_size.max(1) as u64,
            streams: BTreeMap::new(),
            next_seq,
            rows: BTreeMap::new(),
        }
    }

    /// Adds a row; returns the chunk written if the table's buffer became full.
    pub async fn push<T: Serialize>(
        &mut self,
        table: &'static str,
        row: &T,
    ) -> anyhow::Result<Option<ChunkInfo>> {
        let s = self.streams.entry(table).or_insert_with(|| Stream {
            lines: Vec::new(),
            rows: 0,
        });
        serde_json::to_writer(&mut s.lines, row)?;
        s.lines.push(b'\n');
        s.rows += 1;
        if s.rows >= self.chunk_size {
            return self.write(table).await;
        }
        Ok(None)
    }

    /// Writes every non-empty buffer.
    pub async fn flush(&mut self) -> anyhow::Result<Vec<ChunkInfo>> {
        let tables: Vec<&'static str> = self.streams.keys().copied().collect();
        let mut out = Vec::new();
        for t in tables {
            if let Some(c) = self.write(t).await? {
                out.push(c);
            }
        }
        Ok(out)
    }

    async fn write(&mut self, table: &'static str) -> anyhow::Result<Option<ChunkInfo>> {
        let Some(s) = self.streams.get_mut(table) else {
            return Ok(None);
        };
        if s.rows == 0 {
            return Ok(None);
        }
        let rows = s.rows;
        let mut gz = GzEncoder::new(
            Vec::with_capacity(s.lines.len() / 4),
            Compression::default(),
        );
        gz.write_all(&s.lines)?;
        let bytes = Bytes::from(gz.finish()?);
        s.lines.clear();
        s.rows = 0;
        let seq = self.next_seq.entry(table.to_string()).or_insert(0);
        let path = self.lake.chunk_path(
            &self.org,
            &self.repo,
            table,
            &self.date,
            &self.collection_id,
            *seq,
        );
        let size = bytes.len() as u64;
        self.lake
            .put(&path, bytes)
            .await
            .map_err(|e| anyhow::anyhow!("writing chunk {path}: {e}"))?;
        *seq += 1;
        *self.rows.entry(table.to_string()).or_insert(0) += rows;
        Ok(Some(ChunkInfo {
            path: path.to_string(),
            repository: self.repo.to_string(),
            table: table.to_string(),
            rows,
            bytes: size,
        }))
    }
}

/// Reads a chunk back into its JSON rows.
pub fn decode_chunk(bytes: &[u8]) -> anyhow::Result<Vec<serde_json::Value>> {
    use std::io::BufRead;
    let reader = std::io::BufReader::new(flate2::read::GzDecoder::new(bytes));
    let mut rows = Vec::new();
    for line in reader.lines() {
        let line = line?;
        if !line.trim().is_empty() {
            rows.push(serde_json::from_str(&line)?);
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn chunks_hold_at_most_chunk_size_rows_and_read_back() {
        let lake = Lake::new(Arc::new(object_store::memory::InMemory::new()), None);
        let mut w = ChunkWriter::new(
            lake.clone(),
            "acme".parse().unwrap(),
            "r".parse().unwrap(),
            "2026-01-01".into(),
            "C".into(),
            3,
            BTreeMap::new(),
        );
        let mut written = Vec::new();
        for i in 0..7 {
            if let Some(c) = w
                .push(
                    "pull_requests",
                    &serde_json::json!({"n": i, "t": "ünïcödé 🚀"}),
                )
                .await
                .unwrap()
            {
                written.push(c);
            }
        }
        written.extend(w.flush().await.unwrap());
        assert_eq!(
            written.iter().map(|c| c.rows).collect::<Vec<_>>(),
            [3, 3, 1]
        );
        assert!(written[2]
            .path
            .ends_with("acme/r/pull_requests/2026-01-01/C_chunk_00002.ndjson.gz"));
        let mut all = Vec::new();
        for c in &written {
            let bytes = lake
                .get(&object_store::path::Path::from(c.path.as_str()))
                .await
                .unwrap();
            all.extend(decode_chunk(&bytes).unwrap());
        }
        assert_eq!(
            all.iter()
                .map(|v| v["n"].as_i64().unwrap())
                .collect::<Vec<_>>(),
            (0..7).collect::<Vec<_>>()
        );
        assert_eq!(all[0]["t"], "ünïcödé 🚀");
        assert_eq!(w.rows["pull_requests"], 7);
        // Nothing buffered: a second flush writes nothing.
        assert!(w.flush().await.unwrap().is_empty());
    }
}
