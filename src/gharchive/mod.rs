//! GH Archive (<https://www.gharchive.org>): every public GitHub event, one gzip NDJSON file
//! per hour, into one Parquet object per hour and the `gharchive_events` table.
//!
//! Files are `{GHARCHIVE_URL}/YYYY-MM-DD-H.json.gz`, the hour not zero-padded (`-9`, not
//! `-09`), in UTC. An hour is published some time after it ends (the Scheduler job runs at
//! minute 20); some hours are missing, a few uploaded later.
//!
//! Lake layout: `{prefix}/gharchive/events/date=YYYY-MM-DD/hour=HH/events.parquet` (Hive-style
//! partitions), written whole or not at all. The hour's figures (lines, events, duplicates
//! dropped, lines rejected, bytes) ride in the file's key-value metadata, so an hour whose
//! object exists is loaded without downloading it again.

pub mod batch;
pub mod event;
pub mod ingest;
pub mod job;

use chrono::{DateTime, NaiveDate, TimeZone, Timelike, Utc};
use serde::Serialize;

/// The default mirror.
pub const DEFAULT_URL: &str = "https://data.gharchive.org";
/// A missing hour (404) is asked again on every run for this many days after it was first
/// found missing; then it is `missing` for good.
pub const MISSING_RETRY_DAYS: i64 = 7;
/// The first hour GH Archive has.
pub const FIRST_HOUR: &str = "2011-02-12T00";

/// An hour's figures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct HourStats {
    /// Non-empty lines read.
    pub lines: u64,
    /// Rows written: distinct event ids.
    pub events: u64,
    /// Lines whose id appeared earlier in the same hour.
    pub duplicates_dropped: u64,
    /// Lines that are not JSON, or have no type or time.
    pub lines_rejected: u64,
    /// Bytes downloaded (gzip).
    pub bytes: u64,
    /// Bytes of JSON after gunzip.
    pub json_bytes: u64,
}

const META_KEYS: [&str; 6] = [
    "ghstats.lines",
    "ghstats.events",
    "ghstats.duplicates_dropped",
    "ghstats.lines_rejected",
    "ghstats.bytes",
    "ghstats.json_bytes",
];

impl HourStats {
    /// The figures as Parquet key-value metadata.
    pub fn metadata(&self) -> Vec<(String, String)> {
        let v = [
            self.lines,
            self.events,
            self.duplicates_dropped,
            self.lines_rejected,
            self.bytes,
            self.json_bytes,
        ];
        META_KEYS
            .iter()
            .zip(v)
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// The figures back from a file's metadata; `None` when a key is missing (not our file).
    pub fn from_metadata(kv: &[(String, Option<String>)]) -> Option<HourStats> {
        let get = |k: &str| -> Option<u64> {
            kv.iter()
                .find(|(key, _)| key == k)
                .and_then(|(_, v)| v.as_deref())
                .and_then(|v| v.parse().ok())
        };
        Some(HourStats {
            lines: get(META_KEYS[0])?,
            events: get(META_KEYS[1])?,
            duplicates_dropped: get(META_KEYS[2])?,
            lines_rejected: get(META_KEYS[3])?,
            bytes: get(META_KEYS[4])?,
            json_bytes: get(META_KEYS[5])?,
        })
    }
}

/// `2015-01-01-15.json.gz`: GH Archive's name of an hour's file.
pub fn file_name(hour: DateTime<Utc>) -> String {
    format!("{}-{}.json.gz", hour.format("%Y-%m-%d"), hour.hour())
}

/// `gharchive/events/date=2015-01-01/hour=15/events.parquet`, under the lake's prefix.
pub fn object_parts(hour: DateTime<Utc>) -> [String; 5] {
    [
        "gharchive".into(),
        "events".into(),
        format!("date={}", hour.format("%Y-%m-%d")),
        format!("hour={:02}", hour.hour()),
        "events.parquet".into(),
    ]
}

/// The hour `s` names: `2015-01-01T15` (also `T5`), or GH Archive's `2015-01-01-15`; UTC.
pub fn parse_hour(s: &str) -> Result<DateTime<Utc>, String> {
    let bad = || format!("{s:?} is not an hour: give YYYY-MM-DDTHH in UTC, e.g. 2015-01-01T15");
    let s = s.trim();
    if s.len() < 12 {
        return Err(bad());
    }
    let (date, hour) = s.split_at(10);
    let hour = hour
        .strip_prefix('T')
        .or_else(|| hour.strip_prefix('-'))
        .ok_or_else(bad)?;
    let date = NaiveDate::parse_from_str(date, "%Y-%m-%d").map_err(|_| bad())?;
    let h: u32 = hour
        .strip_suffix('Z')
        .unwrap_or(hour)
        .parse()
        .map_err(|_| bad())?;
    if h > 23 {
        return Err(format!("{s:?}: the hour must be 0 to 23"));
    }
    let t = date.and_hms_opt(h, 0, 0).ok_or_else(bad)?;
    let t = Utc.from_utc_datetime(&t);
    let first = first_hour();
    if t < first {
        return Err(format!(
            "{s:?} is before GH Archive's first hour, {FIRST_HOUR}"
        ));
    }
    Ok(t)
}

/// GH Archive's first hour, [`FIRST_HOUR`], as a time.
pub fn first_hour() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2011, 2, 12, 0, 0, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// The newest hour that should be published at `now`: the hour before the current one (GH
/// Archive writes an hour's file after it ends).
pub fn newest_published(now: DateTime<Utc>) -> DateTime<Utc> {
    floor_hour(now) - chrono::Duration::hours(1)
}

/// `t` truncated to its hour.
pub fn floor_hour(t: DateTime<Utc>) -> DateTime<Utc> {
    t.with_nanosecond(0)
        .and_then(|t| t.with_second(0))
        .and_then(|t| t.with_minute(0))
        .unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_do_not_pad_the_hour() {
        let t = parse_hour("2015-01-01T09").unwrap();
        assert_eq!(file_name(t), "2015-01-01-9.json.gz");
        assert_eq!(object_parts(t)[3], "hour=09");
        assert_eq!(
            file_name(parse_hour("2024-12-31-23").unwrap()),
            "2024-12-31-23.json.gz"
        );
        assert_eq!(
            parse_hour("2015-01-01T5").unwrap(),
            parse_hour("2015-01-01T05").unwrap()
        );
    }

    #[test]
    fn bad_hours_are_refused_with_a_reason() {
        for bad in [
            "",
            "2015-01-01",
            "2015-01-01T24",
            "2015-13-01T00",
            "2011-01-01T00",
            "x",
        ] {
            assert!(parse_hour(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn stats_survive_the_metadata() {
        let s = HourStats {
            lines: 5,
            events: 3,
            duplicates_dropped: 1,
            lines_rejected: 1,
            bytes: 99,
            json_bytes: 1000,
        };
        let kv: Vec<(String, Option<String>)> = s
            .metadata()
            .into_iter()
            .map(|(k, v)| (k, Some(v)))
            .collect();
        assert_eq!(HourStats::from_metadata(&kv), Some(s));
        assert_eq!(HourStats::from_metadata(&kv[1..]), None);
    }
}
