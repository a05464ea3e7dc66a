//! What every backend shares for GH Archive: an hour's recorded state, and the cells of an
//! hour's Parquet batches in the backend-neutral [`Typed`] form.

use super::{Typed, WarehouseError};
use crate::gharchive::HourStats;
use crate::tables::{ColumnType, GHARCHIVE_EVENTS};
use arrow_array::cast::AsArray;
use arrow_array::types::{Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, RecordBatch};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// An hour's status in `gharchive_hours`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HourStatus {
    Ingested,
    Missing,
    Failed,
}

impl HourStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            HourStatus::Ingested => "ingested",
            HourStatus::Missing => "missing",
            HourStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<HourStatus> {
        match s {
            "ingested" => Some(HourStatus::Ingested),
            "missing" => Some(HourStatus::Missing),
            "failed" => Some(HourStatus::Failed),
            _ => None,
        }
    }
}

/// One row of `gharchive_hours`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HourState {
    pub hour: DateTime<Utc>,
    pub status: HourStatus,
    /// The hour's figures, once ingested.
    pub stats: Option<HourStats>,
    pub ingested_at: Option<DateTime<Utc>>,
    /// When the hour was first found missing (404).
    pub first_missing_at: Option<DateTime<Utc>>,
    /// Set when a missing hour is given up on (after `gharchive::MISSING_RETRY_DAYS`).
    pub final_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
    pub updated_at: DateTime<Utc>,
}

impl HourState {
    /// The state's cells in the column order of `tables::GHARCHIVE_HOURS`.
    pub fn cells(&self) -> Vec<Typed> {
        let ts = |t: Option<DateTime<Utc>>| t.map(Typed::Timestamp).unwrap_or(Typed::Null);
        let n = |f: fn(&HourStats) -> u64| {
            self.stats
                .as_ref()
                .map(|s| Typed::Int(i64::try_from(f(s)).unwrap_or(i64::MAX)))
                .unwrap_or(Typed::Null)
        };
        vec![
            Typed::Timestamp(self.hour),
            Typed::Text(self.status.as_str().into()),
            n(|s| s.events),
            n(|s| s.bytes),
            n(|s| s.duplicates_dropped),
            n(|s| s.lines_rejected),
            ts(self.ingested_at),
            ts(self.first_missing_at),
            ts(self.final_at),
            self.error.clone().map(Typed::Text).unwrap_or(Typed::Null),
            Typed::Timestamp(self.updated_at),
        ]
    }

    /// A state back from its cells (the order of [`HourState::cells`]).
    pub fn from_cells(c: &[Typed]) -> Result<HourState, WarehouseError> {
        let bad =
            || WarehouseError::Query("gharchive_hours holds a row of an unexpected shape".into());
        let ts = |v: &Typed| match v {
            Typed::Timestamp(t) => Some(*t),
            _ => None,
        };
        let int = |v: &Typed| match v {
            Typed::Int(i) => Some(u64::try_from(*i).unwrap_or(0)),
            _ => None,
        };
        let [hour, status, events, bytes, dups, rejected, ingested_at, first_missing_at, final_at, error, updated_at] =
            c
        else {
            return Err(bad());
        };
        let status = match status {
            Typed::Text(s) => HourStatus::parse(s).ok_or_else(bad)?,
            _ => return Err(bad()),
        };
        let stats = int(events).map(|events| HourStats {
            events,
            bytes: int(bytes).unwrap_or(0),
            duplicates_dropped: int(dups).unwrap_or(0),
            lines_rejected: int(rejected).unwrap_or(0),
            lines: 0,
            json_bytes: 0,
        });
        Ok(HourState {
            hour: ts(hour).ok_or_else(bad)?,
            status,
            stats,
            ingested_at: ts(ingested_at),
            first_missing_at: ts(first_missing_at),
            final_at: ts(final_at),
            error: match error {
                Typed::Text(s) => Some(s.clone()),
                _ => None,
            },
            updated_at: ts(updated_at).ok_or_else(bad)?,
        })
    }
}

/// The error of a backend that cannot hold GH Archive yet ([`WarehouseError::Unsupported`]).
pub fn unsupported(backend: &str) -> WarehouseError {
    WarehouseError::Unsupported(format!(
        "the {backend} warehouse does not take GH Archive events yet; use SQLite, PostgreSQL or BigQuery"
    ))
}

/// The cells of row `i` of a `gharchive_events` batch, in the table's column order.
pub fn event_cells(batch: &RecordBatch, i: usize) -> Result<Vec<Typed>, WarehouseError> {
    let mut out = Vec::with_capacity(GHARCHIVE_EVENTS.columns.len());
    for c in GHARCHIVE_EVENTS.columns {
        let col = batch.column_by_name(c.name).ok_or_else(|| {
            WarehouseError::Query(format!("the Parquet file lacks the column {}", c.name))
        })?;
        if col.is_null(i) {
            out.push(Typed::Null);
            continue;
        }
        let wrong = || {
            WarehouseError::Query(format!(
                "the Parquet column {} is {}, not {:?}",
                c.name,
                col.data_type(),
                c.ty
            ))
        };
        out.push(match c.ty {
            ColumnType::Int64 => Typed::Int(
                col.as_primitive_opt::<Int64Type>()
                    .ok_or_else(wrong)?
                    .value(i),
            ),
            ColumnType::String => Typed::Text(
                col.as_string_opt::<i32>()
                    .ok_or_else(wrong)?
                    .value(i)
                    .to_string(),
            ),
            ColumnType::Bool => Typed::Bool(col.as_boolean_opt().ok_or_else(wrong)?.value(i)),
            ColumnType::Timestamp => {
                let micros = col
                    .as_primitive_opt::<TimestampMicrosecondType>()
                    .ok_or_else(wrong)?
                    .value(i);
                Typed::Timestamp(DateTime::from_timestamp_micros(micros).ok_or_else(wrong)?)
            }
        });
    }
    Ok(out)
}

/// Reads the hour's Parquet object batch by batch.
pub async fn read_batches(
    lake: &crate::lake::Lake,
    path: &object_store::path::Path,
) -> Result<
    parquet::arrow::async_reader::ParquetRecordBatchStream<crate::lake::parquet::ObjectReader>,
    WarehouseError,
> {
    crate::lake::parquet::open(lake.store().clone(), path)
        .await
        .and_then(|b| b.with_batch_size(4096).build())
        .map_err(|e| WarehouseError::Storage {
            path: path.to_string(),
            message: e.to_string(),
        })
}
