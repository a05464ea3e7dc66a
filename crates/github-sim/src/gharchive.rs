//! GH Archive (<https://www.gharchive.org>) hours, generated from a seed: every public GitHub
//! event of one hour as gzip NDJSON, the file GH Archive serves at `/YYYY-MM-DD-H.json.gz`
//! (hour not zero-padded), and the ground truth of what the file holds.
//!
//! Events are built from the real payload shapes in `@octokit/webhooks-examples` (MIT; see
//! `fixtures/README.md`), reduced to the Events API's `payload`, with a realistic mix of types
//! ([`EVENT_MIX`]: Push about half) and sizes (a few KB on average, with a long tail: a push
//! with up to 20 commits, pull-request payloads of ~20 KB, bodies of up to ~60 KB).
//!
//! The hour's date decides the line format, as on GH Archive:
//! - before 2015-01-01 ([`HourFormat::Timeline`]): the older Timeline shape, `actor` a login
//!   string beside `actor_attributes`, a `repository` object with `id`, `name`, `owner` and
//!   `organization` (a login), `created_at` in Pacific time (`-08:00`/`-07:00`), no actor or
//!   org id; push payloads are `{shas: [[sha, email, message, name, distinct]], size, ref,
//!   head}`; other payloads as in the Events API;
//! - from 2015-01-01 ([`HourFormat::Events`]): the Events API shape (`id` a string, `actor`,
//!   `repo`, `payload`, `public`, `created_at`, `org` when the repository is an
//!   organization's);
//! - from 2025-10-01 ([`HourFormat::Trimmed`]): GitHub trims payloads: a push keeps exactly
//!   `{repository_id, push_id, ref, head, before}` (no size, no commits), and a pull request's
//!   `pull_request` (in PullRequestEvent, PullRequestReviewEvent and
//!   PullRequestReviewCommentEvent) keeps only `{url, id, number, head, base}` with
//!   `head`/`base` = `{ref, sha, repo: {id, url, name}}` (no title, no body).
//!
//! Each event is a pure function of (seed, hour, index), so an hour of any size streams in
//! bounded memory ([`write_gzip`], [`lines`]) and the same seed gives the same bytes. Event ids
//! grow with time: hour `h` (hours since 2011-02-12T00) holds ids in
//! `[1_000_000 + 8_000_000·h, 1_000_000 + 8_000_000·(h+1))`, increasing line by line.
//!
//! Quirks ([`HourQuirks`]) are off unless a spec asks for them, for every hour or per hour:
//! missing hours (404 until published), duplicate ids within the hour and repeating the
//! previous hour's last events, lines that are not JSON, events without `type` or without
//! `id`, `payload.member` as a login string, unknown fields, missing fields, a truncated gzip
//! and a slow download.

use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, Utc};
use flate2::write::GzEncoder;
use flate2::Compression;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::sync::OnceLock;

/// The first hour GH Archive has: 2011-02-12T00:00:00Z (its file is `2011-02-12-0.json.gz`).
pub fn first_hour() -> DateTime<Utc> {
    utc(2011, 2, 12)
}

/// Hours before this (2015-01-01T00:00:00Z) are in the Timeline format.
pub fn events_api_since() -> DateTime<Utc> {
    utc(2015, 1, 1)
}

/// Hours from this (2025-10-01T00:00:00Z) have trimmed payloads.
pub fn trimmed_since() -> DateTime<Utc> {
    utc(2025, 10, 1)
}

/// The most events (lines without the quirks' extra lines) one hour may hold.
pub const MAX_EVENTS_PER_HOUR: usize = 1_000_000;

/// Event types and their share of an hour's events, in percent (sum 100). Before
/// 2016-09-14, when pull-request reviews appeared, a PullRequestReviewEvent draw becomes a
/// PullRequestReviewCommentEvent.
pub const EVENT_MIX: [(&str, f64); 15] = [
    ("PushEvent", 50.0),
    ("CreateEvent", 12.0),
    ("PullRequestEvent", 8.0),
    ("WatchEvent", 7.0),
    ("IssueCommentEvent", 6.0),
    ("IssuesEvent", 4.0),
    ("DeleteEvent", 3.0),
    ("PullRequestReviewCommentEvent", 3.0),
    ("ForkEvent", 2.0),
    ("PullRequestReviewEvent", 2.0),
    ("GollumEvent", 1.0),
    ("CommitCommentEvent", 0.8),
    ("ReleaseEvent", 0.5),
    ("MemberEvent", 0.4),
    ("PublicEvent", 0.3),
];

/// What to generate: a seed, how many events an hour holds, and the quirks of every hour or of
/// particular hours.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GhArchiveSpec {
    /// Seed of the generator: the same spec gives the same bytes.
    pub seed: u64,
    /// Events per hour (at most [`MAX_EVENTS_PER_HOUR`]); [`HourQuirks::events`] overrides it
    /// for one hour.
    pub events_per_hour: usize,
    /// Quirks of every hour not listed in `hours`.
    #[serde(default)]
    pub quirks: HourQuirks,
    /// Quirks of particular hours (keys on the hour, UTC), replacing `quirks` there.
    #[serde(default)]
    pub hours: BTreeMap<DateTime<Utc>, HourQuirks>,
}

impl GhArchiveSpec {
    /// `events_per_hour` events an hour, no quirks.
    pub fn new(seed: u64, events_per_hour: usize) -> GhArchiveSpec {
        GhArchiveSpec {
            seed,
            events_per_hour,
            quirks: HourQuirks::default(),
            hours: BTreeMap::new(),
        }
    }

    /// Sets the quirks of one hour (`hour` is floored to the hour).
    pub fn with_hour(mut self, hour: DateTime<Utc>, quirks: HourQuirks) -> GhArchiveSpec {
        self.hours.insert(floor_hour(hour), quirks);
        self
    }

    /// The quirks that apply to `hour` (floored to the hour).
    pub fn quirks_for(&self, hour: DateTime<Utc>) -> HourQuirks {
        self.hours
            .get(&floor_hour(hour))
            .unwrap_or(&self.quirks)
            .clone()
    }

    /// Checks the spec: event counts within [`MAX_EVENTS_PER_HOUR`], `hours` keys on the hour.
    /// The error says which field is wrong.
    pub fn check(&self) -> Result<(), String> {
        let too_many = |n: usize, what: &str| {
            (n > MAX_EVENTS_PER_HOUR)
                .then(|| format!("{what} is {n}, more than {MAX_EVENTS_PER_HOUR}"))
        };
        if let Some(e) = too_many(self.events_per_hour, "events_per_hour") {
            return Err(e);
        }
        for (hour, q) in std::iter::once((None, &self.quirks))
            .chain(self.hours.iter().map(|(h, q)| (Some(h), q)))
        {
            if let Some(h) = hour {
                if floor_hour(*h) != *h {
                    return Err(format!("hours key {h} is not on the hour"));
                }
            }
            for (n, what) in [
                (q.events.unwrap_or(0), "events"),
                (q.duplicates_within, "duplicates_within"),
                (q.duplicates_from_previous, "duplicates_from_previous"),
                (q.not_json, "not_json"),
                (q.without_type, "without_type"),
            ] {
                if let Some(e) = too_many(n, what) {
                    return Err(e);
                }
            }
            if q.slow_bytes_per_sec == Some(0) {
                return Err("slow_bytes_per_sec must be at least 1".into());
            }
        }
        Ok(())
    }
}

impl Default for GhArchiveSpec {
    /// Seed 1, 100 events an hour, no quirks.
    fn default() -> Self {
        GhArchiveSpec::new(1, 100)
    }
}

/// The quirks of one hour; all off by default. Counts larger than the hour's events are
/// capped at its events where they pick events (`without_id`, `member_as_string`,
/// `unknown_fields`, `missing_fields`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HourQuirks {
    /// Events in this hour instead of the spec's `events_per_hour`.
    pub events: Option<usize>,
    /// The hour answers 404 until it is published (`POST /_sim/gharchive/publish`), as an
    /// hour GH Archive uploads late.
    pub missing: bool,
    /// Extra lines, each an exact copy of an earlier event line of this hour (same id).
    pub duplicates_within: usize,
    /// Extra lines near the start, exact copies of the previous hour's last events (their
    /// ids belong to the previous hour's truth).
    pub duplicates_from_previous: usize,
    /// Extra lines that are not JSON (an event line cut short).
    pub not_json: usize,
    /// Extra lines that are JSON events without `type` (their ids are no event's).
    pub without_type: usize,
    /// Events whose line has no `id` (as some Timeline lines); their truth has
    /// `event_id: None`.
    pub without_id: usize,
    /// Events turned into MemberEvents whose `payload.member` is the member's login string
    /// rather than an object.
    pub member_as_string: usize,
    /// Events carrying fields GH Archive never had (`x_sim_extra` at the top, in the actor,
    /// the repository and the payload).
    pub unknown_fields: usize,
    /// Events missing fields: no `public`, no actor `display_login`/`avatar_url`/`url`, no
    /// repo `url`, and in the payload no `action` (truth `action: None`), or for a push no
    /// `size` (truth `push_size: None`).
    pub missing_fields: usize,
    /// The gzip file stops partway: about half the lines, the next one cut, no gzip trailer.
    /// Decompressing it fails with an unexpected end of file.
    pub truncated: bool,
    /// Served at about this many bytes per second (in pieces every 100 ms).
    pub slow_bytes_per_sec: Option<u64>,
}

/// The line format of an hour, decided by its date.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HourFormat {
    /// Before 2015-01-01: the Timeline shape.
    Timeline,
    /// 2015-01-01 to 2025-09-30: the Events API shape.
    Events,
    /// From 2025-10-01: the Events API shape with trimmed payloads.
    Trimmed,
}

impl HourFormat {
    /// The format of the hour holding `t`.
    pub fn of(t: DateTime<Utc>) -> HourFormat {
        if t < events_api_since() {
            HourFormat::Timeline
        } else if t < trimmed_since() {
            HourFormat::Events
        } else {
            HourFormat::Trimmed
        }
    }
}

/// One distinct event of an hour as its line says it (after the hour's quirks); what an
/// ingest should store for it. Absent values are `None`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventTruth {
    /// The event id (`"id"`, a decimal string in the line); `None` when the line has no id.
    pub event_id: Option<i64>,
    /// `PushEvent`, `CreateEvent`, … (see [`EVENT_MIX`]).
    pub event_type: String,
    /// When it happened, UTC, whole seconds, inside the hour.
    pub created_at: DateTime<Utc>,
    /// `public`; `None` when the line lacks it.
    pub public: Option<bool>,
    /// `actor.id`; `None` in Timeline lines (which carry only the login).
    pub actor_id: Option<i64>,
    /// `actor.login`, or the Timeline `actor` string.
    pub actor_login: String,
    /// `repo.id`, or the Timeline `repository.id`.
    pub repo_id: i64,
    /// `repo.name` (`owner/name`), or the Timeline `repository.owner` + `/` + `name`.
    pub repo_name: String,
    /// `org.id`; `None` without an org and in Timeline lines.
    pub org_id: Option<i64>,
    /// `org.login`, or the Timeline `repository.organization`.
    pub org_login: Option<String>,
    /// `payload.action`.
    pub action: Option<String>,
    /// The issue or pull-request number: `payload.number` (PullRequestEvent) or
    /// `payload.issue.number` (IssuesEvent, IssueCommentEvent) or
    /// `payload.pull_request.number` (the review events).
    pub number: Option<i64>,
    /// `payload.ref` of PushEvent (`refs/heads/…`, `refs/tags/…`), CreateEvent and
    /// DeleteEvent (a short name; `None` when a CreateEvent creates a repository).
    #[serde(rename = "ref")]
    pub git_ref: Option<String>,
    /// `payload.head` of a PushEvent.
    pub push_head: Option<String>,
    /// `payload.size` of a PushEvent (commits pushed; the `commits` list holds at most 20);
    /// `None` when trimmed or missing.
    pub push_size: Option<i64>,
}

/// Line counts of an hour's (untruncated) file.
/// `lines = events + duplicates_within + duplicates_from_previous + rejected`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HourCounts {
    /// Lines in the file.
    pub lines: u64,
    /// Distinct events first written in this hour (one line each).
    pub events: u64,
    /// Lines repeating an id written earlier in this hour.
    pub duplicates_within: u64,
    /// Lines repeating an id of the previous hour.
    pub duplicates_from_previous: u64,
    /// Lines an ingest must reject: `not_json + without_type`.
    pub rejected: u64,
    /// Lines that are not JSON.
    pub not_json: u64,
    /// JSON lines without `type`.
    pub without_type: u64,
    /// Events whose line has no id (counted in `events`).
    pub without_id: u64,
    /// Bytes of NDJSON, newlines included.
    pub json_bytes: u64,
}

/// The ground truth of one hour.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HourTruth {
    /// The hour's start, UTC.
    pub hour: DateTime<Utc>,
    /// GH Archive's name for it: `2024-01-01-15.json.gz`.
    pub file: String,
    pub format: HourFormat,
    /// The quirks that applied.
    pub quirks: HourQuirks,
    /// The spec holds the hour back: 404 until published. Hours before 2011-02-12 are
    /// missing for good (and empty).
    pub missing: bool,
    /// The gzip file is truncated (the ingest must fail the hour and store none of it).
    pub truncated: bool,
    pub counts: HourCounts,
    /// The distinct events first written in this hour, in line order.
    pub events: Vec<EventTruth>,
    /// Ids of the lines repeating an earlier event of this hour, in line order.
    pub duplicate_ids_within: Vec<i64>,
    /// Ids of the lines repeating an event of the previous hour, in line order.
    pub repeated_from_previous: Vec<i64>,
}

/// One hour's uncompressed NDJSON and its truth.
#[derive(Clone, Debug)]
pub struct Hour {
    pub truth: HourTruth,
    /// Every line, each ending in `\n` (never truncated: truncation is of the gzip).
    pub ndjson: Vec<u8>,
}

/// What a line of the file is.
#[derive(Clone, Debug, PartialEq)]
pub enum LineKind {
    /// A distinct event's first line.
    Event(Box<EventTruth>),
    /// A copy of an earlier line of this hour.
    DuplicateWithin { event_id: i64 },
    /// A copy of a line of the previous hour.
    DuplicateFromPrevious { event_id: i64 },
    /// Not JSON.
    NotJson,
    /// A JSON event without `type`.
    WithoutType,
}

/// One line of an hour's file, without its newline.
#[derive(Clone, Debug)]
pub struct Line {
    pub text: String,
    pub kind: LineKind,
}

/// The hour holding `t`: `t` floored to the hour.
pub fn floor_hour(t: DateTime<Utc>) -> DateTime<Utc> {
    let s = t.timestamp();
    DateTime::from_timestamp(s - s.rem_euclid(3600), 0).unwrap_or(t)
}

/// GH Archive's file name of the hour holding `t`: `2024-01-01-15.json.gz` (hour not
/// zero-padded).
pub fn file_name(t: DateTime<Utc>) -> String {
    let h = floor_hour(t);
    format!("{}-{}.json.gz", h.format("%Y-%m-%d"), h.format("%-H"))
}

/// The hour a GH Archive file name names, strictly: `YYYY-MM-DD-H.json.gz` with a real date
/// and `H` in 0..=23 without a leading zero; anything else is `None` (GH Archive has no such
/// file).
pub fn parse_file_name(name: &str) -> Option<DateTime<Utc>> {
    let stem = name.strip_suffix(".json.gz")?;
    let (date, hour) = stem.rsplit_once('-')?;
    if date.len() != 10 || hour.is_empty() || (hour.len() > 1 && hour.starts_with('0')) {
        return None;
    }
    if !hour.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let h: u32 = hour.parse().ok()?;
    let day = NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
    if day.format("%Y-%m-%d").to_string() != date {
        return None;
    }
    Some(day.and_hms_opt(h, 0, 0)?.and_utc())
}

/// An hour written as `2024-01-01T15`, `2024-01-01T15:00:00Z` (any RFC 3339 time; floored to
/// the hour) or GH Archive's `2024-01-01-15` (with or without `.json.gz`). The error names
/// the forms.
pub fn parse_hour(s: &str) -> Result<DateTime<Utc>, String> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(floor_hour(t.with_timezone(&Utc)));
    }
    if let Ok(t) = chrono::NaiveDateTime::parse_from_str(&format!("{s}:00:00"), "%Y-%m-%dT%H:%M:%S")
    {
        return Ok(t.and_utc());
    }
    let file = if s.ends_with(".json.gz") {
        s.to_string()
    } else {
        format!("{s}.json.gz")
    };
    parse_file_name(&file).ok_or_else(|| {
        format!("`{s}` is not an hour: write 2024-01-01T15, 2024-01-01T15:00:00Z or 2024-01-01-15")
    })
}

/// Generates one hour: its NDJSON (untruncated) and its truth.
pub fn hour(spec: &GhArchiveSpec, hour: DateTime<Utc>) -> Hour {
    let mut ndjson = Vec::new();
    let mut b = TruthBuilder::new(spec, hour);
    for line in lines(spec, hour) {
        ndjson.extend_from_slice(line.text.as_bytes());
        ndjson.push(b'\n');
        b.add(line);
    }
    Hour {
        truth: b.finish(),
        ndjson,
    }
}

/// The truth of one hour, without keeping its bytes.
pub fn truth(spec: &GhArchiveSpec, hour: DateTime<Utc>) -> HourTruth {
    let mut b = TruthBuilder::new(spec, hour);
    for line in lines(spec, hour) {
        b.add(line);
    }
    b.finish()
}

/// The hour's gzip file as GH Archive serves it (truncated when the quirk asks), and its
/// truth.
pub fn gzip(spec: &GhArchiveSpec, hour: DateTime<Utc>) -> (Vec<u8>, HourTruth) {
    let mut out = Vec::new();
    let mut events = Vec::new();
    // Writing to a Vec cannot fail.
    let counts = write_gzip(spec, hour, &mut out, |e| events.push(e.clone())).unwrap_or_default();
    let mut t = truth_shell(spec, hour);
    t.counts = counts;
    t.events = events;
    let (within, previous) = duplicate_ids(spec, hour);
    t.duplicate_ids_within = within;
    t.repeated_from_previous = previous;
    (out, t)
}

/// Streams the hour's gzip file (truncated when the quirk asks) to `out` in bounded memory,
/// calling `on_event` for each distinct event; returns the counts. Errors are `out`'s.
pub fn write_gzip<W: Write>(
    spec: &GhArchiveSpec,
    hour: DateTime<Utc>,
    out: W,
    mut on_event: impl FnMut(&EventTruth),
) -> io::Result<HourCounts> {
    let lines = lines(spec, hour);
    let cut = lines.truncated().then(|| lines.total() / 2);
    let mut gz = GzEncoder::new(
        Gate {
            inner: io::BufWriter::with_capacity(1 << 16, out),
            open: true,
        },
        Compression::default(),
    );
    let mut counts = HourCounts::default();
    for (i, line) in lines.enumerate() {
        if Some(i) == cut {
            // A cut inside a line, flushed so a reader gets everything before it, then nothing
            // more: no rest, no gzip trailer.
            let mut end = line.text.len() / 2;
            while !line.text.is_char_boundary(end) {
                end -= 1;
            }
            gz.write_all(&line.text.as_bytes()[..end])?;
            gz.flush()?;
            gz.get_mut().open = false;
        } else {
            gz.write_all(line.text.as_bytes())?;
            gz.write_all(b"\n")?;
        }
        count(&mut counts, &line);
        if let LineKind::Event(e) = &line.kind {
            on_event(e);
        }
    }
    let gate = gz.finish()?;
    let mut inner = gate.inner;
    inner.flush()?;
    Ok(counts)
}

/// The hour's lines in file order, generated one at a time.
pub fn lines(spec: &GhArchiveSpec, hour: DateTime<Utc>) -> HourLines<'_> {
    let plan = Plan::new(spec, floor_hour(hour), true);
    let prev = (plan.quirks.duplicates_from_previous > 0)
        .then(|| Plan::new(spec, plan.hour - Duration::hours(1), false));
    HourLines {
        plan,
        prev,
        next_event: 0,
        next_extra: 0,
    }
}

/// The lines of one hour (see [`lines`]).
pub struct HourLines<'a> {
    plan: Plan<'a>,
    prev: Option<Plan<'a>>,
    next_event: usize,
    next_extra: usize,
}

impl HourLines<'_> {
    /// Lines in the whole (untruncated) file.
    pub fn total(&self) -> usize {
        self.plan.n + self.plan.extras.len()
    }
    /// Whether the gzip of this hour is truncated.
    pub fn truncated(&self) -> bool {
        self.plan.quirks.truncated
    }
    pub fn format(&self) -> HourFormat {
        self.plan.format
    }

    fn extra(&mut self) -> Line {
        let (_, extra) = self.plan.extras[self.next_extra];
        self.next_extra += 1;
        match extra {
            Extra::Within(j) => {
                let (text, t) = self.plan.event(j);
                Line {
                    text,
                    kind: LineKind::DuplicateWithin {
                        event_id: t.event_id.unwrap_or_default(),
                    },
                }
            }
            Extra::Previous(j) => {
                let (text, t) = match &self.prev {
                    Some(p) => p.event(j),
                    None => self.plan.event(j),
                };
                Line {
                    text,
                    kind: LineKind::DuplicateFromPrevious {
                        event_id: t.event_id.unwrap_or_default(),
                    },
                }
            }
            Extra::NotJson(k) => {
                let text = self.plan.spare(k, true);
                // Any proper prefix of a JSON object is not JSON.
                let mut end = text.len() * 3 / 5;
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                Line {
                    text: text[..end].to_string(),
                    kind: LineKind::NotJson,
                }
            }
            Extra::WithoutType(k) => Line {
                text: self.plan.spare(k, false),
                kind: LineKind::WithoutType,
            },
        }
    }
}

impl Iterator for HourLines<'_> {
    type Item = Line;
    fn next(&mut self) -> Option<Line> {
        let extra_due = self
            .plan
            .extras
            .get(self.next_extra)
            .is_some_and(|(before, _)| *before <= self.next_event);
        if extra_due {
            return Some(self.extra());
        }
        if self.next_event < self.plan.n {
            let (text, t) = self.plan.event(self.next_event);
            self.next_event += 1;
            return Some(Line {
                text,
                kind: LineKind::Event(Box::new(t)),
            });
        }
        None
    }
}

/// A writer that passes bytes on until closed, then swallows them (a truncated file).
struct Gate<W: Write> {
    inner: W,
    open: bool,
}

impl<W: Write> Write for Gate<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.open {
            self.inner.write(buf)
        } else {
            Ok(buf.len())
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn count(c: &mut HourCounts, line: &Line) {
    c.lines += 1;
    c.json_bytes += line.text.len() as u64 + 1;
    match &line.kind {
        LineKind::Event(e) => {
            c.events += 1;
            c.without_id += u64::from(e.event_id.is_none());
        }
        LineKind::DuplicateWithin { .. } => c.duplicates_within += 1,
        LineKind::DuplicateFromPrevious { .. } => c.duplicates_from_previous += 1,
        LineKind::NotJson => {
            c.not_json += 1;
            c.rejected += 1;
        }
        LineKind::WithoutType => {
            c.without_type += 1;
            c.rejected += 1;
        }
    }
}

fn truth_shell(spec: &GhArchiveSpec, hour: DateTime<Utc>) -> HourTruth {
    let hour = floor_hour(hour);
    let quirks = spec.quirks_for(hour);
    HourTruth {
        hour,
        file: file_name(hour),
        format: HourFormat::of(hour),
        missing: quirks.missing || hour < first_hour(),
        truncated: quirks.truncated,
        quirks,
        counts: HourCounts::default(),
        events: Vec::new(),
        duplicate_ids_within: Vec::new(),
        repeated_from_previous: Vec::new(),
    }
}

/// The duplicate lines' ids, from the plan alone (without rendering the hour).
fn duplicate_ids(spec: &GhArchiveSpec, hour: DateTime<Utc>) -> (Vec<i64>, Vec<i64>) {
    let l = lines(spec, hour);
    let mut within = Vec::new();
    let mut previous = Vec::new();
    for (_, e) in &l.plan.extras {
        match e {
            Extra::Within(j) => within.push(l.plan.event_id(*j).unwrap_or_default()),
            Extra::Previous(j) => {
                let p = l.prev.as_ref().unwrap_or(&l.plan);
                previous.push(p.event_id(*j).unwrap_or_default());
            }
            _ => {}
        }
    }
    (within, previous)
}

struct TruthBuilder {
    truth: HourTruth,
}

impl TruthBuilder {
    fn new(spec: &GhArchiveSpec, hour: DateTime<Utc>) -> TruthBuilder {
        TruthBuilder {
            truth: truth_shell(spec, hour),
        }
    }
    fn add(&mut self, line: Line) {
        count(&mut self.truth.counts, &line);
        match line.kind {
            LineKind::Event(e) => self.truth.events.push(*e),
            LineKind::DuplicateWithin { event_id } => {
                self.truth.duplicate_ids_within.push(event_id)
            }
            LineKind::DuplicateFromPrevious { event_id } => {
                self.truth.repeated_from_previous.push(event_id)
            }
            LineKind::NotJson | LineKind::WithoutType => {}
        }
    }
    fn finish(self) -> HourTruth {
        self.truth
    }
}

// ---------------------------------------------------------------------------------------------
// The plan of an hour: which events carry which quirk, where the extra lines go.

#[derive(Clone, Copy, Debug)]
enum Extra {
    /// A copy of this hour's event `j`.
    Within(usize),
    /// A copy of the previous hour's event `j`.
    Previous(usize),
    NotJson(usize),
    WithoutType(usize),
}

struct Plan<'a> {
    spec: &'a GhArchiveSpec,
    hour: DateTime<Utc>,
    format: HourFormat,
    quirks: HourQuirks,
    n: usize,
    id_base: i64,
    without_id: BTreeSet<usize>,
    member_as_string: BTreeSet<usize>,
    unknown_fields: BTreeSet<usize>,
    missing_fields: BTreeSet<usize>,
    /// Extra lines, each before event `.0` (`n`: at the end), in file order.
    extras: Vec<(usize, Extra)>,
}

impl<'a> Plan<'a> {
    fn new(spec: &'a GhArchiveSpec, hour: DateTime<Utc>, with_extras: bool) -> Plan<'a> {
        let quirks = spec.quirks_for(hour);
        let archived = hour >= first_hour();
        let n = if archived {
            quirks
                .events
                .unwrap_or(spec.events_per_hour)
                .min(MAX_EVENTS_PER_HOUR)
        } else {
            0
        };
        let hours = (hour - first_hour()).num_hours();
        let mut rng = ChaCha8Rng::seed_from_u64(mix(&[spec.seed, hour.timestamp() as u64, 0x9e]));
        let mut pick = |count: usize| -> BTreeSet<usize> {
            let amount = count.min(n);
            if amount == 0 {
                return BTreeSet::new();
            }
            rand::seq::index::sample(&mut rng, n, amount)
                .into_iter()
                .collect()
        };
        let without_id = pick(quirks.without_id);
        let member_as_string = pick(quirks.member_as_string);
        let unknown_fields = pick(quirks.unknown_fields);
        let missing_fields = pick(quirks.missing_fields);
        let mut plan = Plan {
            spec,
            hour,
            format: HourFormat::of(hour),
            quirks,
            n,
            id_base: 1_000_000 + hours * 8_000_000,
            without_id,
            member_as_string,
            unknown_fields,
            missing_fields,
            extras: Vec::new(),
        };
        if with_extras && archived {
            plan.extras = plan.place_extras(&mut rng);
        }
        plan
    }

    fn place_extras(&self, rng: &mut ChaCha8Rng) -> Vec<(usize, Extra)> {
        let n = self.n;
        let q = &self.quirks;
        let mut extras = Vec::new();
        if q.duplicates_from_previous > 0 {
            let prev = Plan::new(self.spec, self.hour - Duration::hours(1), false);
            let mut j = prev.n;
            let mut taken = 0;
            while taken < q.duplicates_from_previous && j > 0 {
                j -= 1;
                if prev.without_id.contains(&j) {
                    continue;
                }
                let before = rng.gen_range(0..=n.min(2 * q.duplicates_from_previous));
                extras.push((before, Extra::Previous(j)));
                taken += 1;
            }
        }
        if n > 0 {
            for _ in 0..q.duplicates_within {
                let before = rng.gen_range(1..=n);
                let lo = before.saturating_sub(200);
                let start = rng.gen_range(lo..before);
                if let Some(j) = (lo..=start).rev().find(|j| !self.without_id.contains(j)) {
                    extras.push((before, Extra::Within(j)));
                }
            }
        }
        for k in 0..q.not_json {
            extras.push((rng.gen_range(0..=n), Extra::NotJson(k)));
        }
        for k in 0..q.without_type {
            extras.push((rng.gen_range(0..=n), Extra::WithoutType(k)));
        }
        extras.sort_by_key(|(before, _)| *before);
        extras
    }

    fn event_id(&self, index: usize) -> Option<i64> {
        let mut rng = self.event_rng(index);
        (!self.without_id.contains(&index)).then(|| self.id_of(index, &mut rng))
    }

    fn event_rng(&self, index: usize) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(mix(&[
            self.spec.seed,
            self.hour.timestamp() as u64,
            index as u64,
        ]))
    }

    /// Ids grow with the index: four ids per event, the fourth kept for the rejected lines.
    fn id_of(&self, index: usize, rng: &mut ChaCha8Rng) -> i64 {
        self.id_base + index as i64 * 4 + rng.gen_range(0..3)
    }

    fn created_at(&self, index: usize) -> DateTime<Utc> {
        let secs = (index as i64 * 3600) / self.n.max(1) as i64;
        self.hour + Duration::seconds(secs)
    }

    /// Event `index` of the hour: its line and truth.
    fn event(&self, index: usize) -> (String, EventTruth) {
        let mut rng = self.event_rng(index);
        let id = self.id_of(index, &mut rng);
        let ty = if self.member_as_string.contains(&index) {
            "MemberEvent"
        } else {
            pick_type(&mut rng, self.hour)
        };
        let shape = Shape {
            id: (!self.without_id.contains(&index)).then_some(id),
            ty,
            created_at: self.created_at(index),
            member_as_string: self.member_as_string.contains(&index),
            unknown_fields: self.unknown_fields.contains(&index),
            missing_fields: self.missing_fields.contains(&index),
            with_type: true,
        };
        render(self, &mut rng, &shape)
    }

    /// A rejected line's event: an id no event has, `type` present or not.
    fn spare(&self, k: usize, with_type: bool) -> String {
        let mut rng = ChaCha8Rng::seed_from_u64(mix(&[
            self.spec.seed,
            self.hour.timestamp() as u64,
            (1 << 40) + k as u64,
        ]));
        let index = rng.gen_range(0..self.n.max(1));
        let ty = pick_type(&mut rng, self.hour);
        let shape = Shape {
            id: Some(self.id_base + index as i64 * 4 + 3),
            ty,
            created_at: self.created_at(index),
            member_as_string: false,
            unknown_fields: false,
            missing_fields: false,
            with_type,
        };
        render(self, &mut rng, &shape).0
    }
}

struct Shape {
    id: Option<i64>,
    ty: &'static str,
    created_at: DateTime<Utc>,
    member_as_string: bool,
    unknown_fields: bool,
    missing_fields: bool,
    with_type: bool,
}

fn pick_type(rng: &mut ChaCha8Rng, hour: DateTime<Utc>) -> &'static str {
    let mut x = rng.gen_range(0.0..100.0);
    let mut ty = EVENT_MIX[0].0;
    for (t, w) in EVENT_MIX {
        if x < w {
            ty = t;
            break;
        }
        x -= w;
    }
    if ty == "PullRequestReviewEvent" && hour < utc(2016, 9, 14) {
        "PullRequestReviewCommentEvent"
    } else {
        ty
    }
}

// ---------------------------------------------------------------------------------------------
// Who and where: actors, organizations and repositories, each a pure function of its index.

const ACTORS: usize = 250_000;
const ORGS: usize = 25_000;
const REPOS: usize = 600_000;

/// Real bots with their real ids.
const BOTS: [(&str, i64); 3] = [
    ("dependabot[bot]", 49_699_333),
    ("github-actions[bot]", 41_898_282),
    ("renovate[bot]", 29_139_614),
];

const SYLLABLES: [&str; 32] = [
    "ka", "ro", "mi", "tes", "lu", "van", "dor", "el", "pa", "zu", "qi", "nor", "sa", "bel", "tri",
    "on", "gar", "fi", "lo", "ne", "kor", "av", "is", "pet", "ma", "jun", "rey", "ox", "wen", "da",
    "hu", "ty",
];

const WORDS: [&str; 48] = [
    "api", "app", "web", "core", "cli", "tools", "lib", "data", "docs", "site", "bot", "server",
    "client", "engine", "kit", "sdk", "parser", "config", "infra", "ui", "auth", "cache", "queue",
    "stream", "graph", "ml", "model", "agent", "scripts", "notes", "blog", "game", "demo", "test",
    "plugin", "theme", "rust", "go", "py", "js", "vision", "chat", "sync", "store", "metrics",
    "search", "image", "audio",
];

struct Actor {
    id: i64,
    login: String,
    display_login: String,
}

struct Org {
    id: i64,
    login: String,
}

struct Repo {
    id: i64,
    name: String,
    owner: String,
    short: String,
    org: Option<Org>,
}

fn base36(mut n: u64) -> String {
    let digits = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(digits[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8_lossy(&out).into_owned()
}

fn actor(idx: usize) -> Actor {
    if let Some((login, id)) = BOTS.get(idx) {
        return Actor {
            id: *id,
            login: login.to_string(),
            display_login: login.trim_end_matches("[bot]").to_string(),
        };
    }
    let h = mix(&[0xac, idx as u64]);
    let mut login = String::new();
    for i in 0..(2 + h % 2) {
        login.push_str(SYLLABLES[((h >> (8 * i + 4)) % 32) as usize]);
    }
    if h & 1 == 1 {
        login.push('-');
        login.push_str(WORDS[((h >> 40) % 48) as usize]);
    }
    login.push_str(&base36(idx as u64));
    Actor {
        id: 100_000_000 + idx as i64 * 7,
        display_login: login.clone(),
        login,
    }
}

fn org(idx: usize) -> Org {
    let h = mix(&[0x06, idx as u64]);
    Org {
        id: 60_000_000 + idx as i64 * 11,
        login: format!(
            "{}{}-{}",
            SYLLABLES[(h % 32) as usize],
            SYLLABLES[((h >> 8) % 32) as usize],
            base36(idx as u64 + 36 * 36)
        ),
    }
}

fn repo(idx: usize) -> Repo {
    let h = mix(&[0x7e, idx as u64]);
    let org = h
        .is_multiple_of(4)
        .then(|| org(((h >> 3) % ORGS as u64) as usize));
    let owner = match &org {
        Some(o) => o.login.clone(),
        None => actor(BOTS.len() + ((h >> 3) % (ACTORS - BOTS.len()) as u64) as usize).login,
    };
    let short = format!(
        "{}-{}{}",
        WORDS[((h >> 24) % 48) as usize],
        WORDS[((h >> 32) % 48) as usize],
        base36(idx as u64)
    );
    Repo {
        id: 300_000_000 + idx as i64 * 5,
        name: format!("{owner}/{short}"),
        owner,
        short,
        org,
    }
}

/// An index in `0..n`, low indices far likelier (a few actors and repositories are busy).
fn skewed(rng: &mut ChaCha8Rng, n: usize) -> usize {
    let u: f64 = rng.gen();
    ((u * u * u) * n as f64) as usize % n
}

// ---------------------------------------------------------------------------------------------
// The fixture: real payloads from @octokit/webhooks-examples.

static FIXTURE_GZ: &[u8] = include_bytes!("../fixtures/webhooks-examples.json.gz");

struct Template {
    repo: Option<String>,
    payload: Value,
}

struct Fixture {
    events: BTreeMap<String, Vec<Template>>,
    /// (message, author name, author email)
    commits: Vec<(String, String, String)>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let mut text = String::new();
        // The fixture is compiled in; tests read it, so a broken one fails them all.
        flate2::read::GzDecoder::new(FIXTURE_GZ)
            .read_to_string(&mut text)
            .expect("the embedded webhooks fixture is gzip");
        let v: Value = serde_json::from_str(&text).expect("the embedded webhooks fixture is JSON");
        let mut events = BTreeMap::new();
        if let Some(map) = v["events"].as_object() {
            for (ty, list) in map {
                let templates = list
                    .as_array()
                    .map(|l| {
                        l.iter()
                            .map(|t| Template {
                                repo: t["repo"].as_str().map(str::to_string),
                                payload: t["payload"].clone(),
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                events.insert(ty.clone(), templates);
            }
        }
        let commits = v["commits"]
            .as_array()
            .map(|l| {
                l.iter()
                    .map(|c| {
                        let s = |p: &str| c.pointer(p).and_then(Value::as_str).unwrap_or("");
                        (
                            s("/message").to_string(),
                            s("/author/name").to_string(),
                            s("/author/email").to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        Fixture { events, commits }
    })
}

fn template(rng: &mut ChaCha8Rng, ty: &str) -> (Option<&'static str>, Value) {
    match fixture().events.get(ty).filter(|l| !l.is_empty()) {
        Some(list) => {
            let t = &list[rng.gen_range(0..list.len())];
            (t.repo.as_deref(), t.payload.clone())
        }
        None => (None, json!({})),
    }
}

// ---------------------------------------------------------------------------------------------
// Rendering one event.

fn sha(rng: &mut ChaCha8Rng) -> String {
    let mut s = String::with_capacity(40);
    for _ in 0..5 {
        let _ = write!(s, "{:08x}", rng.gen::<u32>());
    }
    s
}

/// Prose of a long-tailed length around `mean` bytes (at most ~60 KB); empty a third of the
/// time.
fn text(rng: &mut ChaCha8Rng, mean: f64) -> String {
    if rng.gen_bool(0.33) {
        return String::new();
    }
    let u: f64 = rng.gen_range(1e-9..1.0);
    let len = ((-u.ln()) * mean).min(60_000.0) as usize;
    let mut s = String::with_capacity(len + 16);
    while s.len() < len {
        if !s.is_empty() {
            s.push(if rng.gen_bool(0.08) { '\n' } else { ' ' });
        }
        s.push_str(WORDS[rng.gen_range(0..WORDS.len())]);
    }
    s
}

fn branch(rng: &mut ChaCha8Rng) -> String {
    match rng.gen_range(0..10) {
        0..=4 => "main".into(),
        5 => "master".into(),
        6 => format!(
            "dependabot/npm_and_yarn/{}-{}",
            WORDS[rng.gen_range(0..48)],
            rng.gen_range(1..20)
        ),
        _ => format!(
            "{}/{}-{}",
            ["feature", "fix", "chore", "docs"][rng.gen_range(0..4)],
            WORDS[rng.gen_range(0..48)],
            rng.gen_range(1..999)
        ),
    }
}

fn version_tag(rng: &mut ChaCha8Rng) -> String {
    format!(
        "v{}.{}.{}",
        rng.gen_range(0..5),
        rng.gen_range(0..30),
        rng.gen_range(0..20)
    )
}

/// Commits in a push: mostly one, a long tail up to a few hundred.
fn push_size(rng: &mut ChaCha8Rng) -> i64 {
    match rng.gen_range(0..100) {
        0..=64 => 1,
        65..=76 => 2,
        77..=88 => rng.gen_range(3..=5),
        89..=96 => rng.gen_range(6..=20),
        _ => rng.gen_range(21..=300),
    }
}

fn set(v: &mut Value, pointer: &str, value: Value) {
    if let Some(slot) = v.pointer_mut(pointer) {
        *slot = value;
    }
}

fn user_object(a: &Actor) -> Value {
    json!({
        "login": a.login,
        "id": a.id,
        "avatar_url": format!("https://avatars.githubusercontent.com/u/{}?v=4", a.id),
        "url": format!("https://api.github.com/users/{}", a.login),
        "html_url": format!("https://github.com/{}", a.login),
        "type": "User",
        "site_admin": false,
    })
}

/// What a payload says, for the truth.
#[derive(Default)]
struct PayloadTruth {
    number: Option<i64>,
    git_ref: Option<String>,
    push_head: Option<String>,
    push_size: Option<i64>,
}

fn payload(
    rng: &mut ChaCha8Rng,
    ty: &str,
    format: HourFormat,
    event_id: i64,
    repo: &Repo,
    actor: &Actor,
) -> (Value, PayloadTruth) {
    let mut truth = PayloadTruth::default();
    if ty == "PushEvent" {
        return push_payload(rng, format, event_id, repo, actor);
    }
    let (tmpl_repo, mut p) = template(rng, ty);
    let tmpl_number = ["/number", "/pull_request/number", "/issue/number"]
        .iter()
        .find_map(|ptr| p.pointer(ptr).and_then(Value::as_i64));
    let number = 1 + skewed(rng, 30_000) as i64;
    let big_id = || 1_000_000_000 + event_id / 3;
    match ty {
        "CreateEvent" => {
            let (ref_type, git_ref) = match rng.gen_range(0..100) {
                0..=64 => ("branch", Some(branch(rng))),
                65..=84 => ("tag", Some(version_tag(rng))),
                _ => ("repository", None),
            };
            set(&mut p, "/ref", json!(git_ref));
            set(&mut p, "/ref_type", json!(ref_type));
            let master = if rng.gen_bool(0.8) { "main" } else { "master" };
            set(&mut p, "/master_branch", json!(master));
            if rng.gen_bool(0.4) {
                set(&mut p, "/description", json!(text(rng, 60.0)));
            }
            truth.git_ref = git_ref;
        }
        "DeleteEvent" => {
            let (ref_type, git_ref) = if rng.gen_bool(0.85) {
                ("branch", branch(rng))
            } else {
                ("tag", version_tag(rng))
            };
            set(&mut p, "/ref", json!(git_ref));
            set(&mut p, "/ref_type", json!(ref_type));
            truth.git_ref = Some(git_ref);
        }
        "PullRequestEvent" => {
            set(&mut p, "/number", json!(number));
            set(&mut p, "/pull_request/number", json!(number));
            set(&mut p, "/pull_request/id", json!(big_id()));
            set(&mut p, "/pull_request/body", json!(text(rng, 900.0)));
            set(&mut p, "/pull_request/head/sha", json!(sha(rng)));
            set(&mut p, "/pull_request/base/sha", json!(sha(rng)));
            set(&mut p, "/pull_request/base/repo/id", json!(repo.id));
            set(&mut p, "/pull_request/base/repo/name", json!(repo.short));
            truth.number = Some(number);
        }
        "IssuesEvent" => {
            set(&mut p, "/issue/number", json!(number));
            set(&mut p, "/issue/id", json!(big_id()));
            set(&mut p, "/issue/body", json!(text(rng, 700.0)));
            truth.number = Some(number);
        }
        "IssueCommentEvent" => {
            set(&mut p, "/issue/number", json!(number));
            set(&mut p, "/issue/id", json!(big_id()));
            set(&mut p, "/comment/id", json!(big_id() + 1));
            set(&mut p, "/comment/body", json!(text(rng, 500.0)));
            set(&mut p, "/comment/user", user_object(actor));
            truth.number = Some(number);
        }
        "PullRequestReviewEvent" | "PullRequestReviewCommentEvent" => {
            set(&mut p, "/pull_request/number", json!(number));
            set(&mut p, "/pull_request/id", json!(big_id()));
            set(&mut p, "/pull_request/head/sha", json!(sha(rng)));
            set(&mut p, "/pull_request/base/repo/id", json!(repo.id));
            set(&mut p, "/pull_request/base/repo/name", json!(repo.short));
            let (key, mean) = if ty == "PullRequestReviewEvent" {
                ("review", 200.0)
            } else {
                ("comment", 300.0)
            };
            set(&mut p, &format!("/{key}/id"), json!(big_id() + 1));
            set(&mut p, &format!("/{key}/body"), json!(text(rng, mean)));
            truth.number = Some(number);
        }
        "ForkEvent" => {
            let name = format!("{}/{}", actor.login, repo.short);
            set(&mut p, "/forkee/id", json!(big_id()));
            set(&mut p, "/forkee/name", json!(repo.short));
            set(&mut p, "/forkee/full_name", json!(name));
            set(&mut p, "/forkee/owner", user_object(actor));
            set(&mut p, "/forkee/fork", json!(true));
        }
        "ReleaseEvent" => {
            let tag = version_tag(rng);
            set(&mut p, "/release/id", json!(big_id()));
            set(&mut p, "/release/tag_name", json!(tag));
            set(&mut p, "/release/name", json!(tag));
            set(&mut p, "/release/body", json!(text(rng, 1500.0)));
        }
        "MemberEvent" => {
            let member = actor_for(rng, ty);
            set(&mut p, "/member", user_object(&member));
        }
        "CommitCommentEvent" => {
            set(&mut p, "/comment/id", json!(big_id()));
            set(&mut p, "/comment/commit_id", json!(sha(rng)));
            set(&mut p, "/comment/body", json!(text(rng, 300.0)));
        }
        _ => {}
    }
    if format == HourFormat::Trimmed && p.get("pull_request").is_some() {
        // What GitHub keeps: the action, the number, the review or comment, a pull request
        // reduced to its identity and branches.
        if let Some(obj) = p.as_object_mut() {
            obj.retain(|k, _| {
                matches!(
                    k.as_str(),
                    "action" | "number" | "pull_request" | "review" | "comment"
                )
            });
        }
        let pr = &p["pull_request"];
        let side = |s: &str| {
            json!({
                "ref": pr[s]["ref"], "sha": pr[s]["sha"],
                "repo": { "id": pr[s]["repo"]["id"], "url": pr[s]["repo"]["url"], "name": pr[s]["repo"]["name"] },
            })
        };
        let trimmed = json!({
            "url": pr["url"], "id": pr["id"], "number": pr["number"],
            "head": side("head"), "base": side("base"),
        });
        set(&mut p, "/pull_request", trimmed);
    }
    // The example's repository and number become ours in every URL and name they appear in.
    if let Some(from) = tmpl_repo {
        let mut text = p.to_string().replace(from, &repo.name);
        if let (Some(t), Some(n)) = (tmpl_number, truth.number) {
            for path in ["pulls", "pull", "issues"] {
                for end in ['"', '/', '#'] {
                    text = text.replace(
                        &format!("{}/{path}/{t}{end}", repo.name),
                        &format!("{}/{path}/{n}{end}", repo.name),
                    );
                }
            }
        }
        if let Ok(v) = serde_json::from_str(&text) {
            p = v;
        }
    }
    (p, truth)
}

fn push_payload(
    rng: &mut ChaCha8Rng,
    format: HourFormat,
    event_id: i64,
    repo: &Repo,
    actor: &Actor,
) -> (Value, PayloadTruth) {
    let tag = rng.gen_bool(0.03);
    let size = if tag { 0 } else { push_size(rng) };
    let git_ref = if tag {
        format!("refs/tags/{}", version_tag(rng))
    } else {
        format!("refs/heads/{}", branch(rng))
    };
    let before = sha(rng);
    let pool = &fixture().commits;
    let mut commits = Vec::new();
    let mut head = sha(rng);
    // The Events API lists at most 20 commits, the last ones.
    for _ in 0..size.min(20) {
        let c = sha(rng);
        let (message, name, email) = match pool.get(rng.gen_range(0..pool.len().max(1))) {
            Some(m) if rng.gen_bool(0.3) => (m.0.clone(), m.1.clone(), m.2.clone()),
            other => {
                let subject = other.map(|m| m.0.as_str()).unwrap_or("Update README.md");
                let body = text(rng, 120.0);
                let message = if body.is_empty() {
                    subject.to_string()
                } else {
                    format!("{subject}\n\n{body}")
                };
                (
                    message,
                    actor.display_login.clone(),
                    format!(
                        "{}+{}@users.noreply.github.com",
                        actor.id, actor.display_login
                    ),
                )
            }
        };
        commits.push((c.clone(), email, message, name));
        head = c;
    }
    let push_id = 1_000_000_000 + event_id / 2;
    let p = match format {
        HourFormat::Timeline => json!({
            "shas": commits.iter().map(|(sha, email, message, name)| json!([sha, email, message, name, true])).collect::<Vec<_>>(),
            "size": size,
            "ref": git_ref,
            "head": head,
        }),
        HourFormat::Events => json!({
            "repository_id": repo.id,
            "push_id": push_id,
            "size": size,
            "distinct_size": size,
            "ref": git_ref,
            "head": head,
            "before": before,
            "commits": commits.iter().map(|(sha, email, message, name)| json!({
                "sha": sha,
                "author": { "email": email, "name": name },
                "message": message,
                "distinct": true,
                "url": format!("https://api.github.com/repos/{}/commits/{sha}", repo.name),
            })).collect::<Vec<_>>(),
        }),
        HourFormat::Trimmed => json!({
            "repository_id": repo.id,
            "push_id": push_id,
            "ref": git_ref,
            "head": head,
            "before": before,
        }),
    };
    let truth = PayloadTruth {
        number: None,
        git_ref: Some(git_ref),
        push_head: Some(head),
        push_size: (format != HourFormat::Trimmed).then_some(size),
    };
    (p, truth)
}

/// The acting user: bots do some of the pushes, branches and pull requests.
fn actor_for(rng: &mut ChaCha8Rng, ty: &str) -> Actor {
    let bot_share = match ty {
        "PushEvent" | "CreateEvent" | "DeleteEvent" | "PullRequestEvent" => 0.08,
        _ => 0.0,
    };
    if rng.gen_bool(bot_share) {
        actor(rng.gen_range(0..BOTS.len()))
    } else {
        actor(BOTS.len() + skewed(rng, ACTORS - BOTS.len()))
    }
}

/// The US Pacific offset of `t` (-07:00 in daylight-saving time, else -08:00), as the
/// Timeline wrote `created_at`.
fn pacific(t: DateTime<Utc>) -> FixedOffset {
    let y = t.year();
    let sunday_on_or_after = |m: u32, d: u32| {
        NaiveDate::from_ymd_opt(y, m, d).map(|day| {
            let wd = day.weekday().num_days_from_sunday();
            day + Duration::days(i64::from((7 - wd) % 7))
        })
    };
    let start = sunday_on_or_after(3, 8).and_then(|d| d.and_hms_opt(10, 0, 0));
    let end = sunday_on_or_after(11, 1).and_then(|d| d.and_hms_opt(9, 0, 0));
    let dst = match (start, end) {
        (Some(s), Some(e)) => t.naive_utc() >= s && t.naive_utc() < e,
        _ => false,
    };
    let hours = if dst { -7 } else { -8 };
    FixedOffset::east_opt(hours * 3600).unwrap_or_else(|| FixedOffset::east_opt(0).expect("UTC"))
}

fn js(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

const EXTRA: &str = r#""x_sim_extra":{"note":"a field GH Archive never had","n":1}"#;

fn render(plan: &Plan, rng: &mut ChaCha8Rng, s: &Shape) -> (String, EventTruth) {
    let actor = actor_for(rng, s.ty);
    let repo = repo(skewed(rng, REPOS));
    let (mut p, pt) = payload(
        rng,
        s.ty,
        plan.format,
        s.id.unwrap_or(plan.id_base),
        &repo,
        &actor,
    );
    if s.member_as_string {
        let login = p["member"]["login"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| actor.login.clone());
        set(&mut p, "/member", json!(login));
    }
    let mut truth = EventTruth {
        event_id: s.id,
        event_type: s.ty.to_string(),
        created_at: s.created_at,
        public: Some(true),
        actor_id: Some(actor.id),
        actor_login: actor.login.clone(),
        repo_id: repo.id,
        repo_name: repo.name.clone(),
        org_id: repo.org.as_ref().map(|o| o.id),
        org_login: repo.org.as_ref().map(|o| o.login.clone()),
        action: None,
        number: pt.number,
        git_ref: pt.git_ref,
        push_head: pt.push_head,
        push_size: pt.push_size,
    };
    if s.missing_fields {
        if let Some(obj) = p.as_object_mut() {
            if s.ty == "PushEvent" {
                obj.remove("size");
                truth.push_size = None;
            }
            obj.remove("action");
        }
        truth.public = None;
    }
    if s.unknown_fields {
        if let Some(obj) = p.as_object_mut() {
            obj.insert(
                "x_sim_extra".into(),
                json!({"note": "a field GH Archive never had"}),
            );
        }
    }
    truth.action = p.get("action").and_then(Value::as_str).map(str::to_string);
    let payload_text = p.to_string();
    let line = match plan.format {
        HourFormat::Timeline => {
            truth.actor_id = None;
            truth.org_id = None;
            timeline_line(rng, s, &actor, &repo, &payload_text, &truth)
        }
        HourFormat::Events | HourFormat::Trimmed => events_line(s, &actor, &repo, &payload_text),
    };
    (line, truth)
}

fn events_line(s: &Shape, actor: &Actor, repo: &Repo, payload: &str) -> String {
    let mut l = String::with_capacity(payload.len() + 600);
    l.push('{');
    if let Some(id) = s.id {
        let _ = write!(l, "\"id\":\"{id}\",");
    }
    if s.with_type {
        let _ = write!(l, "\"type\":\"{}\",", s.ty);
    }
    let login = js(&actor.login);
    let _ = write!(l, "\"actor\":{{\"id\":{},\"login\":{login},", actor.id);
    if !s.missing_fields {
        let _ = write!(
            l,
            "\"display_login\":{},\"gravatar_id\":\"\",\"url\":\"https://api.github.com/users/{}\",\"avatar_url\":\"https://avatars.githubusercontent.com/u/{}?\"",
            js(&actor.display_login),
            actor.login,
            actor.id
        );
    } else {
        l.push_str("\"gravatar_id\":\"\"");
    }
    if s.unknown_fields {
        let _ = write!(l, ",{EXTRA}");
    }
    let _ = write!(
        l,
        "}},\"repo\":{{\"id\":{},\"name\":{}",
        repo.id,
        js(&repo.name)
    );
    if !s.missing_fields {
        let _ = write!(l, ",\"url\":\"https://api.github.com/repos/{}\"", repo.name);
    }
    if s.unknown_fields {
        let _ = write!(l, ",{EXTRA}");
    }
    let _ = write!(l, "}},\"payload\":{payload},");
    if !s.missing_fields {
        l.push_str("\"public\":true,");
    }
    let _ = write!(
        l,
        "\"created_at\":\"{}\"",
        s.created_at.format("%Y-%m-%dT%H:%M:%SZ")
    );
    if let Some(o) = &repo.org {
        let _ = write!(
            l,
            ",\"org\":{{\"id\":{},\"login\":{},\"gravatar_id\":\"\",\"url\":\"https://api.github.com/orgs/{}\",\"avatar_url\":\"https://avatars.githubusercontent.com/u/{}?\"}}",
            o.id,
            js(&o.login),
            o.login,
            o.id
        );
    }
    if s.unknown_fields {
        let _ = write!(l, ",{EXTRA}");
    }
    l.push('}');
    l
}

fn timeline_line(
    rng: &mut ChaCha8Rng,
    s: &Shape,
    actor: &Actor,
    repo: &Repo,
    payload: &str,
    truth: &EventTruth,
) -> String {
    let local = s.created_at.with_timezone(&pacific(s.created_at));
    let created = local.format("%Y-%m-%dT%H:%M:%S%:z");
    let url = match (&truth.push_head, s.ty) {
        (Some(head), "PushEvent") => format!(
            "https://github.com/{}/compare/{}...{}",
            repo.name,
            &sha(rng)[..10],
            &head[..head.len().min(10)]
        ),
        _ => format!("https://github.com/{}", repo.name),
    };
    let mut l = String::with_capacity(payload.len() + 900);
    let _ = write!(l, "{{\"created_at\":\"{created}\",\"payload\":{payload},");
    if !s.missing_fields {
        l.push_str("\"public\":true,");
    }
    if s.with_type {
        let _ = write!(l, "\"type\":\"{}\",", s.ty);
    }
    let _ = write!(l, "\"url\":{},", js(&url));
    if let Some(id) = s.id {
        let _ = write!(l, "\"id\":\"{id}\",");
    }
    let login = js(&actor.login);
    let _ = write!(
        l,
        "\"actor\":{login},\"actor_attributes\":{{\"login\":{login},\"type\":\"User\",\"gravatar_id\":\"{}\"",
        &sha(rng)[..32]
    );
    if !s.missing_fields && rng.gen_bool(0.6) {
        let _ = write!(
            l,
            ",\"name\":{},\"email\":{}",
            js(&actor.display_login),
            js(&format!("{}@example.com", actor.display_login))
        );
    }
    if s.unknown_fields {
        let _ = write!(l, ",{EXTRA}");
    }
    let _ = write!(
        l,
        "}},\"repository\":{{\"id\":{},\"name\":{},\"url\":{},\"description\":{},\"homepage\":\"\",\"watchers\":{},\"stargazers\":{},\"forks\":{},\"fork\":false,\"size\":{},\"owner\":{},\"private\":false,\"open_issues\":{},\"has_issues\":true,\"has_downloads\":true,\"has_wiki\":true,\"language\":{},\"created_at\":\"2012-03-04T05:06:07-08:00\",\"pushed_at\":\"{created}\",\"master_branch\":\"master\"",
        repo.id,
        js(&repo.short),
        js(&format!("https://github.com/{}", repo.name)),
        js(&text(rng, 60.0)),
        skewed(rng, 5000),
        skewed(rng, 5000),
        skewed(rng, 500),
        rng.gen_range(0..100_000),
        js(&repo.owner),
        skewed(rng, 100),
        js(["Ruby", "JavaScript", "Python", "Java", "C", "PHP", "Go"][rng.gen_range(0..7)]),
    );
    if let Some(o) = &repo.org {
        let _ = write!(l, ",\"organization\":{}", js(&o.login));
    }
    if s.unknown_fields {
        let _ = write!(l, ",{EXTRA}");
    }
    l.push('}');
    if s.unknown_fields {
        let _ = write!(l, ",{EXTRA}");
    }
    l.push('}');
    l
}

fn utc(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    NaiveDate::from_ymd_opt(y, m, d)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .unwrap_or_default()
}

/// SplitMix64 over the parts: a well-spread seed from several numbers.
fn mix(parts: &[u64]) -> u64 {
    let mut x: u64 = 0x853c_49e6_748f_ea9b;
    for p in parts {
        x ^= p.wrapping_add(0x9e37_79b9_7f4a_7c15);
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x = z ^ (z >> 31);
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    fn at(s: &str) -> DateTime<Utc> {
        parse_hour(s).expect("a test hour")
    }

    fn all_quirks() -> HourQuirks {
        HourQuirks {
            duplicates_within: 7,
            duplicates_from_previous: 5,
            not_json: 3,
            without_type: 2,
            without_id: 4,
            member_as_string: 3,
            unknown_fields: 6,
            missing_fields: 5,
            ..HourQuirks::default()
        }
    }

    /// A line as an ingest would see it, read without the generator's help.
    #[derive(Debug)]
    enum Seen {
        Rejected,
        Event(Value),
    }

    fn read(ndjson: &[u8]) -> Vec<Seen> {
        let text = std::str::from_utf8(ndjson).expect("NDJSON is UTF-8");
        assert!(
            text.is_empty() || text.ends_with('\n'),
            "the file ends in a newline"
        );
        text.lines()
            .map(|l| match serde_json::from_str::<Value>(l) {
                Ok(v) if v.get("type").and_then(Value::as_str).is_some() => Seen::Event(v),
                _ => Seen::Rejected,
            })
            .collect()
    }

    fn id_of(v: &Value) -> Option<i64> {
        v.get("id")?.as_str()?.parse().ok()
    }

    fn gunzip(bytes: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(bytes).read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn file_names_round_trip_and_names_gh_archive_lacks_are_refused() {
        let day = at("2015-01-01T00");
        for h in 0..48 {
            let t = day + Duration::hours(h);
            let name = file_name(t + Duration::minutes(59));
            assert_eq!(parse_file_name(&name), Some(t), "{name}");
        }
        assert_eq!(file_name(at("2015-01-01T05")), "2015-01-01-5.json.gz");
        assert_eq!(file_name(at("2015-01-01T15")), "2015-01-01-15.json.gz");
        for bad in [
            "2015-01-01-05.json.gz",
            "2015-01-01-24.json.gz",
            "2015-13-01-1.json.gz",
            "2015-02-30-1.json.gz",
            "2015-1-1-1.json.gz",
            "2015-01-01-1.json",
            "2015-01-01-+1.json.gz",
            "2015-01-01-.json.gz",
            "x.json.gz",
            "",
        ] {
            assert_eq!(parse_file_name(bad), None, "{bad}");
        }
        for form in [
            "2024-01-01T15",
            "2024-01-01T15:42:07Z",
            "2024-01-01-15",
            "2024-01-01-15.json.gz",
        ] {
            assert_eq!(parse_hour(form), Ok(at("2024-01-01T15")), "{form}");
        }
        assert!(parse_hour("2024-01-01").is_err());
        assert!(parse_hour("2024-01-01T25").is_err());
    }

    #[test]
    fn the_same_seed_gives_the_same_bytes_and_another_seed_others() {
        let h = at("2024-03-05T07");
        let spec = GhArchiveSpec::new(7, 300).with_hour(h, all_quirks());
        let a = gzip(&spec, h);
        let b = gzip(&spec, h);
        assert_eq!(a.0, b.0);
        assert_eq!(a.1, b.1);
        assert_eq!(hour(&spec, h).ndjson, hour(&spec, h).ndjson);
        let other = gzip(
            &GhArchiveSpec {
                seed: 8,
                ..spec.clone()
            },
            h,
        );
        assert_ne!(a.0, other.0);
    }

    #[test]
    fn the_mix_of_event_types_is_within_tolerance() {
        let n = 20_000;
        let t = truth(&GhArchiveSpec::new(3, n), at("2024-06-01T12"));
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for e in &t.events {
            *seen.entry(e.event_type.as_str()).or_default() += 1;
        }
        for (ty, weight) in EVENT_MIX {
            let share = 100.0 * *seen.get(ty).unwrap_or(&0) as f64 / n as f64;
            let p = weight / 100.0;
            let tolerance = 100.0 * 4.0 * (p * (1.0 - p) / n as f64).sqrt() + 0.05;
            assert!(
                (share - weight).abs() <= tolerance,
                "{ty}: {share:.2}% for {weight}% (±{tolerance:.2})"
            );
        }
        assert_eq!(seen.len(), EVENT_MIX.len());
    }

    #[test]
    fn payload_sizes_are_a_few_kilobytes_with_a_long_tail() {
        let h = hour(&GhArchiveSpec::new(5, 4_000), at("2024-06-01T12"));
        let mut sizes: Vec<usize> = std::str::from_utf8(&h.ndjson)
            .expect("UTF-8")
            .lines()
            .map(str::len)
            .collect();
        sizes.sort_unstable();
        let mean = h.ndjson.len() / sizes.len();
        assert!((2_500..=7_000).contains(&mean), "mean {mean} bytes");
        assert!(
            sizes[sizes.len() / 2] < 2_000,
            "median {}",
            sizes[sizes.len() / 2]
        );
        assert!(
            sizes[sizes.len() - 1] > 20_000,
            "largest {}",
            sizes[sizes.len() - 1]
        );
        assert_eq!(h.truth.counts.json_bytes, h.ndjson.len() as u64);
    }

    /// Reads an Events API line's fields the way an ingest would.
    fn events_fields(v: &Value) -> EventTruth {
        let p = &v["payload"];
        let s = |x: &Value| x.as_str().map(str::to_string);
        EventTruth {
            event_id: id_of(v),
            event_type: v["type"].as_str().unwrap_or_default().to_string(),
            created_at: v["created_at"]
                .as_str()
                .and_then(|c| DateTime::parse_from_rfc3339(c).ok())
                .map(|c| c.with_timezone(&Utc))
                .unwrap_or_default(),
            public: v["public"].as_bool(),
            actor_id: v["actor"]["id"].as_i64(),
            actor_login: v["actor"]["login"].as_str().unwrap_or_default().to_string(),
            repo_id: v["repo"]["id"].as_i64().unwrap_or_default(),
            repo_name: v["repo"]["name"].as_str().unwrap_or_default().to_string(),
            org_id: v["org"]["id"].as_i64(),
            org_login: s(&v["org"]["login"]),
            action: s(&p["action"]),
            number: p["number"]
                .as_i64()
                .or_else(|| p["issue"]["number"].as_i64())
                .or_else(|| p["pull_request"]["number"].as_i64()),
            git_ref: s(&p["ref"]),
            push_head: s(&p["head"]),
            push_size: p["size"].as_i64(),
        }
    }

    #[test]
    fn the_truth_agrees_with_the_lines_read_independently() {
        let h = at("2024-02-29T23");
        let prev = h - Duration::hours(1);
        let spec = GhArchiveSpec::new(11, 400)
            .with_hour(h, all_quirks())
            .with_hour(
                prev,
                HourQuirks {
                    without_id: 3,
                    ..HourQuirks::default()
                },
            );
        let previous_ids: HashSet<i64> = read(&hour(&spec, prev).ndjson)
            .iter()
            .filter_map(|r| match r {
                Seen::Event(v) => id_of(v),
                Seen::Rejected => None,
            })
            .collect();
        let made = hour(&spec, h);
        let lines = read(&made.ndjson);
        let mut seen = HashSet::new();
        let (mut events, mut within, mut previous, mut rejected) = (Vec::new(), 0, 0, 0);
        for r in &lines {
            match r {
                Seen::Rejected => rejected += 1,
                Seen::Event(v) => match id_of(v) {
                    Some(id) if previous_ids.contains(&id) => previous += 1,
                    Some(id) if !seen.insert(id) => within += 1,
                    _ => events.push(events_fields(v)),
                },
            }
        }
        let t = &made.truth;
        assert_eq!(t.counts.lines, lines.len() as u64);
        assert_eq!(t.counts.events, events.len() as u64);
        assert_eq!(t.counts.duplicates_within, within);
        assert_eq!(t.counts.duplicates_from_previous, previous);
        assert_eq!(t.counts.rejected, rejected);
        assert_eq!((within, previous, rejected), (7, 5, 5));
        assert_eq!(t.events, events);
        assert_eq!(t.counts.without_id, 4);
        assert_eq!(events.iter().filter(|e| e.event_id.is_none()).count(), 4);
        assert!(t
            .repeated_from_previous
            .iter()
            .all(|id| previous_ids.contains(id)));
        assert_eq!(t.duplicate_ids_within.len(), 7);
        assert!(t.duplicate_ids_within.iter().all(|id| seen.contains(id)));
        assert!(events
            .iter()
            .all(|e| e.created_at >= h && e.created_at < h + Duration::hours(1)));
        // Ids grow line by line and stay inside the hour's range.
        let ids: Vec<i64> = events.iter().filter_map(|e| e.event_id).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        // The same truth comes from the streaming writer.
        let (gz, streamed) = gzip(&spec, h);
        assert_eq!(&streamed, t);
        assert_eq!(gunzip(&gz).expect("whole gzip"), made.ndjson);
        assert_eq!(truth(&spec, h), *t);
    }

    #[test]
    fn no_quirk_appears_unless_asked() {
        for when in ["2013-05-05T05", "2024-02-29T23", "2025-12-01T00"] {
            let h = at(when);
            let spec = GhArchiveSpec::new(2, 500);
            let made = hour(&spec, h);
            let t = &made.truth;
            assert!(!t.missing && !t.truncated, "{when}");
            assert_eq!(
                (
                    t.counts.duplicates_within,
                    t.counts.duplicates_from_previous
                ),
                (0, 0)
            );
            assert_eq!((t.counts.rejected, t.counts.without_id), (0, 0));
            let lines = read(&made.ndjson);
            let mut ids = HashSet::new();
            for r in &lines {
                let Seen::Event(v) = r else {
                    panic!("{when}: a rejected line");
                };
                assert!(ids.insert(id_of(v).expect("an id")), "{when}: a duplicate");
                assert_eq!(v["public"], json!(true));
                assert!(!v.to_string().contains("x_sim_extra"));
                if v["type"] == "MemberEvent" {
                    assert!(v["payload"]["member"].is_object());
                }
            }
            assert_eq!(gunzip(&gzip(&spec, h).0).expect("whole gzip"), made.ndjson);
        }
    }

    #[test]
    fn every_quirk_appears_as_often_as_asked() {
        let h = at("2024-02-29T23");
        let spec = GhArchiveSpec::new(4, 300).with_hour(h, all_quirks());
        let made = hour(&spec, h);
        let text = std::str::from_utf8(&made.ndjson).expect("UTF-8");
        let parsed: Vec<Result<Value, _>> =
            text.lines().map(serde_json::from_str::<Value>).collect();
        assert_eq!(parsed.iter().filter(|p| p.is_err()).count(), 3);
        let values: Vec<&Value> = parsed.iter().filter_map(|p| p.as_ref().ok()).collect();
        assert_eq!(values.iter().filter(|v| v.get("type").is_none()).count(), 2);
        let events: Vec<&&Value> = values.iter().filter(|v| v.get("type").is_some()).collect();
        assert_eq!(events.iter().filter(|v| v.get("id").is_none()).count(), 4);
        let member_strings = events
            .iter()
            .filter(|v| v["type"] == "MemberEvent" && v["payload"]["member"].is_string())
            .count();
        assert_eq!(member_strings, 3);
        assert_eq!(
            events
                .iter()
                .filter(|v| v.get("x_sim_extra").is_some()
                    && v["actor"].get("x_sim_extra").is_some()
                    && v["repo"].get("x_sim_extra").is_some()
                    && v["payload"].get("x_sim_extra").is_some())
                .count(),
            // A duplicated line repeats its quirks; count distinct ids.
            events
                .iter()
                .filter(|v| v.get("x_sim_extra").is_some())
                .count()
        );
        let distinct_unknown: HashSet<String> = events
            .iter()
            .filter(|v| v.get("x_sim_extra").is_some())
            .map(|v| v["id"].to_string() + &v["created_at"].to_string())
            .collect();
        assert_eq!(distinct_unknown.len(), 6);
        let distinct_missing: HashSet<String> = events
            .iter()
            .filter(|v| v.get("public").is_none())
            .map(|v| v["id"].to_string() + &v["created_at"].to_string())
            .collect();
        assert_eq!(distinct_missing.len(), 5);
        assert_eq!(
            made.truth
                .events
                .iter()
                .filter(|e| e.public.is_none())
                .count(),
            5
        );
    }

    #[test]
    fn timeline_hours_have_the_timeline_shape() {
        for (when, offset) in [("2013-01-10T15", "-08:00"), ("2014-07-01T15", "-07:00")] {
            let h = at(when);
            let made = hour(&GhArchiveSpec::new(9, 400), h);
            assert_eq!(made.truth.format, HourFormat::Timeline);
            let lines = read(&made.ndjson);
            for (r, t) in lines.iter().zip(&made.truth.events) {
                let Seen::Event(v) = r else {
                    panic!("a rejected line");
                };
                assert!(v.get("repo").is_none() && v.get("org").is_none());
                assert_eq!(v["actor"].as_str(), Some(t.actor_login.as_str()));
                assert_eq!(v["actor_attributes"]["login"], v["actor"]);
                let repo = &v["repository"];
                assert_eq!(repo["id"].as_i64(), Some(t.repo_id));
                let name = format!(
                    "{}/{}",
                    repo["owner"].as_str().unwrap_or_default(),
                    repo["name"].as_str().unwrap_or_default()
                );
                assert_eq!(name, t.repo_name);
                assert_eq!(repo["organization"].as_str(), t.org_login.as_deref());
                let created = v["created_at"].as_str().expect("created_at");
                assert!(created.ends_with(offset), "{created}");
                let instant = DateTime::parse_from_rfc3339(created).expect("RFC 3339");
                assert_eq!(instant.with_timezone(&Utc), t.created_at);
                assert_eq!((t.actor_id, t.org_id), (None, None));
                if t.event_type == "PushEvent" {
                    let p = &v["payload"];
                    assert!(p["shas"].is_array() && p.get("commits").is_none());
                    assert_eq!(p["size"].as_i64(), t.push_size);
                    assert_eq!(p["head"].as_str(), t.push_head.as_deref());
                }
            }
        }
        assert_eq!(HourFormat::of(at("2014-12-31T23")), HourFormat::Timeline);
        assert_eq!(HourFormat::of(at("2015-01-01T00")), HourFormat::Events);
    }

    #[test]
    fn trimmed_pushes_carry_exactly_five_fields() {
        let five: BTreeSet<&str> = ["repository_id", "push_id", "ref", "head", "before"].into();
        let made = hour(&GhArchiveSpec::new(6, 600), at("2025-10-01T00"));
        assert_eq!(made.truth.format, HourFormat::Trimmed);
        let (mut pushes, mut prs) = (0, 0);
        for r in read(&made.ndjson) {
            let Seen::Event(v) = r else {
                panic!("a rejected line");
            };
            let p = &v["payload"];
            if v["type"] == "PushEvent" {
                let keys: BTreeSet<&str> = p
                    .as_object()
                    .expect("object")
                    .keys()
                    .map(String::as_str)
                    .collect();
                assert_eq!(keys, five);
                pushes += 1;
            }
            if let Some(pr) = p.get("pull_request") {
                let keys: BTreeSet<&str> = pr
                    .as_object()
                    .expect("object")
                    .keys()
                    .map(String::as_str)
                    .collect();
                assert_eq!(keys, ["base", "head", "id", "number", "url"].into());
                prs += 1;
            }
        }
        assert!(
            pushes > 200 && prs > 40,
            "{pushes} pushes, {prs} pull requests"
        );
        let pushes = made
            .truth
            .events
            .iter()
            .filter(|e| e.event_type == "PushEvent");
        assert!(pushes
            .clone()
            .all(|e| e.push_size.is_none() && e.push_head.is_some()));
        // The hour before still has the full push payload.
        let before = hour(&GhArchiveSpec::new(6, 200), at("2025-09-30T23"));
        let full = read(&before.ndjson).into_iter().any(|r| {
            matches!(r, Seen::Event(v) if v["type"] == "PushEvent"
                && v["payload"]["commits"].is_array() && v["payload"]["size"].is_i64())
        });
        assert!(full);
    }

    #[test]
    fn a_truncated_hour_does_not_decompress() {
        let h = at("2024-02-29T23");
        let whole = GhArchiveSpec::new(12, 300);
        let cut = whole.clone().with_hour(
            h,
            HourQuirks {
                truncated: true,
                ..HourQuirks::default()
            },
        );
        let (bytes, t) = gzip(&cut, h);
        assert!(t.truncated);
        let mut out = Vec::new();
        let err = flate2::read::MultiGzDecoder::new(&bytes[..])
            .read_to_end(&mut out)
            .expect_err("a truncated gzip");
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        // What does come out is the first half of the lines and part of the next.
        let full = hour(&whole, h).ndjson;
        assert!(full.starts_with(&out) && out.len() < full.len());
        let complete = out.iter().filter(|b| **b == b'\n').count();
        assert_eq!(complete, 150);
        assert_ne!(out.last(), Some(&b'\n'));
        assert!(gunzip(&gzip(&whole, h).0).is_ok());
    }

    #[test]
    fn hours_before_gh_archive_began_are_empty_and_missing() {
        let t = truth(&GhArchiveSpec::new(1, 50), at("2011-02-11T23"));
        assert!(t.missing && t.events.is_empty() && t.counts.lines == 0);
        let first = truth(&GhArchiveSpec::new(1, 50), first_hour());
        assert!(!first.missing && first.events.len() == 50);
    }

    #[test]
    fn the_spec_is_checked_and_round_trips_through_json() {
        let h = at("2024-01-01T15");
        let spec = GhArchiveSpec::new(1, 10).with_hour(h, all_quirks());
        let text = serde_json::to_string(&spec).expect("JSON");
        assert_eq!(
            serde_json::from_str::<GhArchiveSpec>(&text).expect("back"),
            spec
        );
        assert_eq!(spec.check(), Ok(()));
        let too_many = GhArchiveSpec::new(1, MAX_EVENTS_PER_HOUR + 1);
        assert!(too_many.check().unwrap_err().contains("events_per_hour"));
        let mut off_hour = GhArchiveSpec::new(1, 10);
        off_hour
            .hours
            .insert(h + Duration::minutes(5), HourQuirks::default());
        assert!(off_hour.check().unwrap_err().contains("not on the hour"));
        assert!(serde_json::from_str::<HourQuirks>(r#"{"trunkated": true}"#).is_err());
    }
}
