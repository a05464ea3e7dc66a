//! `gharchive_events` rows as Arrow record batches, and the Parquet file of one hour.
//!
//! The Arrow schema follows the table's definition in `tables::GHARCHIVE_EVENTS` (tested):
//! INT64 → Int64, STRING → Utf8, BOOL → Boolean, TIMESTAMP → Timestamp(µs, UTC), the mode's
//! nullability. Files are zstd-compressed ([`ZSTD_LEVEL`]) with row groups cut at
//! [`ROW_GROUP_BYTES`] of buffered data, so memory stays bounded whatever the hour's size.

use super::event::EventRow;
use crate::tables::GHARCHIVE_EVENTS;
use arrow_array::builder::{
    BooleanBuilder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::SchemaRef;
use chrono::{DateTime, Utc};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use std::sync::Arc;

/// Rows per record batch handed to the Parquet writer.
pub const BATCH_ROWS: usize = 8192;
/// A batch is also cut when its strings reach this many bytes (payloads can be large): about
/// 900 rows of a 2024 hour.
pub const BATCH_BYTES: usize = 4 << 20;
/// Encoded (compressed) bytes at which the writer closes a row group: the writer buffers one
/// row group, and a load reads one at a time. About 45,000 rows of a 2024 hour.
pub const ROW_GROUP_BYTES: usize = 16 << 20;
/// zstd's level for an hour's file. On a simulated 2024 hour (657 MB of JSON), encoding took
/// 0.87 s at level 2 and 1.0 s at level 3 for 50.9 MB and 48.7 MB of Parquet (level 1: 0.87 s,
/// 52.3 MB; -1: 0.83 s, 65 MB).
pub const ZSTD_LEVEL: i32 = 2;

/// The Arrow schema of `gharchive_events` ([`crate::tables::arrow_schema`]).
pub fn schema() -> SchemaRef {
    crate::tables::arrow_schema(&GHARCHIVE_EVENTS)
}

/// Parquet writer settings for an hour's file: zstd at [`ZSTD_LEVEL`], statistics per page,
/// except for `payload`: no dictionary (every payload differs, so a dictionary would be built
/// only to be dropped) and no statistics (a minimum and maximum of JSON text prune nothing).
pub fn writer_properties() -> WriterProperties {
    let payload = ColumnPath::from("payload");
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(ZSTD_LEVEL).unwrap_or_default(),
        ))
        .set_max_row_group_bytes(Some(ROW_GROUP_BYTES))
        .set_column_dictionary_enabled(payload.clone(), false)
        .set_column_statistics_enabled(payload, EnabledStatistics::None)
        .build()
}

/// Accumulates rows column by column.
pub struct EventBatch {
    schema: SchemaRef,
    keep_payload: bool,
    archive_hour: i64,
    event_id: Int64Builder,
    event_type: StringBuilder,
    created_at: TimestampMicrosecondBuilder,
    public: BooleanBuilder,
    actor_id: Int64Builder,
    actor_login: StringBuilder,
    repo_id: Int64Builder,
    repo_name: StringBuilder,
    org_id: Int64Builder,
    org_login: StringBuilder,
    action: StringBuilder,
    number: Int64Builder,
    r#ref: StringBuilder,
    push_head: StringBuilder,
    push_size: Int64Builder,
    payload: StringBuilder,
    archive_hour_col: TimestampMicrosecondBuilder,
    rows: usize,
    bytes: usize,
}

fn without_nul(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains('\0') {
        std::borrow::Cow::Owned(s.replace('\0', ""))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

impl EventBatch {
    /// An empty batch for rows of `archive_hour`; `keep_payload` false leaves `payload` null
    /// (`GHARCHIVE_PAYLOAD=none`).
    pub fn new(archive_hour: DateTime<Utc>, keep_payload: bool) -> Self {
        EventBatch {
            schema: schema(),
            keep_payload,
            archive_hour: archive_hour.timestamp_micros(),
            event_id: Int64Builder::new(),
            event_type: StringBuilder::new(),
            created_at: TimestampMicrosecondBuilder::new().with_timezone("UTC"),
            public: BooleanBuilder::new(),
            actor_id: Int64Builder::new(),
            actor_login: StringBuilder::new(),
            repo_id: Int64Builder::new(),
            repo_name: StringBuilder::new(),
            org_id: Int64Builder::new(),
            org_login: StringBuilder::new(),
            action: StringBuilder::new(),
            number: Int64Builder::new(),
            r#ref: StringBuilder::new(),
            push_head: StringBuilder::new(),
            push_size: Int64Builder::new(),
            payload: StringBuilder::new(),
            archive_hour_col: TimestampMicrosecondBuilder::new().with_timezone("UTC"),
            rows: 0,
            bytes: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Whether the batch should be handed on ([`BATCH_ROWS`] rows or [`BATCH_BYTES`] bytes).
    pub fn is_full(&self) -> bool {
        self.rows >= BATCH_ROWS || self.bytes >= BATCH_BYTES
    }

    /// Appends one row. NUL characters are removed from the text columns (PostgreSQL refuses
    /// them; the payload keeps JSON's `\u0000` escape, which is plain text).
    pub fn push(&mut self, r: &EventRow<'_>) {
        let mut text = |b: &mut StringBuilder, v: Option<&str>| match v {
            Some(s) => {
                self.bytes += s.len();
                b.append_value(without_nul(s));
            }
            None => b.append_null(),
        };
        text(&mut self.event_type, Some(&r.event_type));
        text(&mut self.actor_login, r.actor_login.as_deref());
        text(&mut self.repo_name, r.repo_name.as_deref());
        text(&mut self.org_login, r.org_login.as_deref());
        text(&mut self.action, r.action.as_deref());
        text(&mut self.r#ref, r.r#ref.as_deref());
        text(&mut self.push_head, r.push_head.as_deref());
        text(
            &mut self.payload,
            if self.keep_payload {
                r.payload.as_deref()
            } else {
                None
            },
        );
        self.event_id.append_value(r.event_id);
        self.created_at
            .append_value(r.created_at.timestamp_micros());
        self.public.append_option(r.public);
        self.actor_id.append_option(r.actor_id);
        self.repo_id.append_option(r.repo_id);
        self.org_id.append_option(r.org_id);
        self.number.append_option(r.number);
        self.push_size.append_option(r.push_size);
        self.archive_hour_col.append_value(self.archive_hour);
        self.rows += 1;
    }

    /// The rows so far as a record batch; the builder starts empty again.
    pub fn finish(&mut self) -> RecordBatch {
        let mut cols: Vec<ArrayRef> = Vec::with_capacity(GHARCHIVE_EVENTS.columns.len());
        for c in GHARCHIVE_EVENTS.columns {
            let a: ArrayRef = match c.name {
                "event_id" => Arc::new(self.event_id.finish()),
                "event_type" => Arc::new(self.event_type.finish()),
                "created_at" => Arc::new(self.created_at.finish()),
                "public" => Arc::new(self.public.finish()),
                "actor_id" => Arc::new(self.actor_id.finish()),
                "actor_login" => Arc::new(self.actor_login.finish()),
                "repo_id" => Arc::new(self.repo_id.finish()),
                "repo_name" => Arc::new(self.repo_name.finish()),
                "org_id" => Arc::new(self.org_id.finish()),
                "org_login" => Arc::new(self.org_login.finish()),
                "action" => Arc::new(self.action.finish()),
                "number" => Arc::new(self.number.finish()),
                "ref" => Arc::new(self.r#ref.finish()),
                "push_head" => Arc::new(self.push_head.finish()),
                "push_size" => Arc::new(self.push_size.finish()),
                "payload" => Arc::new(self.payload.finish()),
                "archive_hour" => Arc::new(self.archive_hour_col.finish()),
                other => unreachable!("gharchive_events has no column {other} in batch.rs"),
            };
            cols.push(a);
        }
        self.rows = 0;
        self.bytes = 0;
        // The columns follow the schema built from the same definition; a mismatch is a bug
        // caught by the tests below.
        RecordBatch::try_new(self.schema.clone(), cols).expect("columns match the schema")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gharchive::event::parse_line;

    #[test]
    fn the_schema_follows_the_table_definition_and_batches_fit_it() {
        let s = schema();
        assert_eq!(s.fields().len(), GHARCHIVE_EVENTS.columns.len());
        let hour = "2015-01-01T15:00:00Z".parse().unwrap();
        let mut b = EventBatch::new(hour, true);
        let line = br#"{"id":"7","type":"PushEvent","actor":{"id":1,"login":"a\u0000b"},"repo":{"id":2,"name":"a/b"},"payload":{"ref":"refs/heads/x","head":"h","size":3},"created_at":"2015-01-01T15:00:01Z"}"#;
        b.push(&parse_line(line).unwrap());
        let batch = b.finish();
        assert_eq!(batch.num_rows(), 1);
        assert!(b.is_empty());
        let logins = batch
            .column_by_name("actor_login")
            .unwrap()
            .as_any()
            .downcast_ref::<arrow_array::StringArray>()
            .unwrap();
        assert_eq!(logins.value(0), "ab");
        let size = batch
            .column_by_name("push_size")
            .unwrap()
            .as_any()
            .downcast_ref::<arrow_array::Int64Array>()
            .unwrap();
        assert_eq!(size.value(0), 3);
    }

    #[test]
    fn the_payload_column_has_neither_dictionary_nor_statistics() {
        let hour = "2015-01-01T15:00:00Z".parse().unwrap();
        let mut b = EventBatch::new(hour, true);
        for i in 0..3 {
            let line = format!(
                r#"{{"id":"{i}","type":"WatchEvent","actor":{{"id":1,"login":"a"}},"payload":{{"action":"started"}},"created_at":"2015-01-01T15:00:01Z"}}"#
            );
            b.push(&parse_line(line.as_bytes()).unwrap());
        }
        let mut file = Vec::new();
        let mut w =
            parquet::arrow::ArrowWriter::try_new(&mut file, schema(), Some(writer_properties()))
                .unwrap();
        w.write(&b.finish()).unwrap();
        let meta = w.close().unwrap();
        let group = meta.row_group(0);
        let column = |name: &str| {
            group
                .columns()
                .iter()
                .find(|c| c.column_path().string() == name)
                .unwrap()
        };
        let payload = column("payload");
        assert!(payload.dictionary_page_offset().is_none());
        assert!(payload.statistics().is_none());
        // The file records the codec, not its level.
        assert!(matches!(payload.compression(), Compression::ZSTD(_)));
        assert!(column("actor_login").statistics().is_some());
    }
}
