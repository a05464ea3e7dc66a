//! One GH Archive line into one `gharchive_events` row, leniently.
//!
//! GH Archive (<https://www.gharchive.org>) publishes what GitHub's Events API returned, as it
//! returned it, and that has changed over the years:
//! - From 2015 on: `{"id": "2489651045", "type": "PushEvent", "actor": {"id", "login", …},
//!   "repo": {"id", "name", …}, "org": {…} (only sometimes), "payload": {…}, "public",
//!   "created_at"}`; the id is a decimal string.
//! - Before 2015, the Timeline format: `actor` is the login as a string (with
//!   `actor_attributes`), the repository is `repository: {id, name, owner, …}`, the time carries
//!   an offset (`2012-03-10T14:12:23-08:00`), and some lines have no `id`.
//! - Since October 2025 GitHub trims payloads: a PushEvent keeps only `repository_id, push_id,
//!   ref, head, before` (no `size`, no `commits`); a PullRequestEvent lost the body and most
//!   fields of `pull_request`.
//! - `payload.member` is sometimes a login string, sometimes an object.
//!
//! So every field is optional and of whatever type it turns out to be: a field of an unexpected
//! type reads as null, unknown fields are ignored. Only a line that is not JSON, or has no
//! `type` or no readable `created_at`, is rejected ([`Rejected`]).
//!
//! Lines are read into typed structs by sonic-rs (SIMD), or by serde_json for the rare line
//! sonic-rs would read differently ([`parse_line`] says which); both check the whole line. The
//! payload is kept as the raw JSON text of the line, never parsed into a tree. sonic-rs reads
//! the few facts the row lifts out of it (`action`, `number`, `ref`, `push_head`, `push_size`)
//! in the same pass, and the text is cut from the line by its keys' positions
//! ([`parse_with_sonic`]); serde_json reads the facts in a second pass over the text.

use chrono::{DateTime, Utc};
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;

/// One row of `gharchive_events`, borrowing from its line where it can.
#[derive(Clone, Debug, PartialEq)]
pub struct EventRow<'a> {
    /// GitHub's event id; for a Timeline line without one, a synthetic negative id derived from
    /// the line's bytes (see [`synthetic_id`]), so the same line always gets the same id.
    pub event_id: i64,
    pub event_type: Cow<'a, str>,
    pub created_at: DateTime<Utc>,
    pub public: Option<bool>,
    pub actor_id: Option<i64>,
    pub actor_login: Option<Cow<'a, str>>,
    pub repo_id: Option<i64>,
    /// `owner/name`.
    pub repo_name: Option<Cow<'a, str>>,
    pub org_id: Option<i64>,
    pub org_login: Option<Cow<'a, str>>,
    /// `payload.action`, where the event has one (`opened`, `started`, `created`…).
    pub action: Option<Cow<'a, str>>,
    /// The issue's or pull request's number: `payload.number`, `payload.issue.number` or
    /// `payload.pull_request.number`.
    pub number: Option<i64>,
    /// `payload.ref` (PushEvent: `refs/heads/main`; CreateEvent/DeleteEvent: the bare name).
    pub r#ref: Option<Cow<'a, str>>,
    /// PushEvent's `payload.head`.
    pub push_head: Option<Cow<'a, str>>,
    /// PushEvent's `payload.size` (commits pushed); null in trimmed payloads (October 2025 on).
    pub push_size: Option<i64>,
    /// The payload as the line had it (JSON text).
    pub payload: Option<Cow<'a, str>>,
}

/// Why a line was not made into a row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rejected {
    /// Not a JSON object (the parser's message).
    NotJson(String),
    /// No `type`.
    NoType,
    /// No `created_at`, or one that is not a time.
    NoTime,
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejected::NotJson(e) => write!(f, "not a JSON event: {e}"),
            Rejected::NoType => f.write_str("an event without a type"),
            Rejected::NoTime => f.write_str("an event without a readable created_at"),
        }
    }
}

/// Lines with at most this many `[` and `{` bytes, so nested at most this deep, are read by
/// sonic-rs; the others by serde_json (see [`parse_line`]).
pub const FAST_NESTING: usize = 512;

/// Parses one line (without its newline) into a row.
///
/// Two readers give the same rows and reject the same lines (the tests compare them): sonic-rs
/// for nearly every line, serde_json for a line nested deeper than [`FAST_NESTING`] (sonic-rs
/// skips values recursively, without a depth limit, where serde_json skips them in a loop), one
/// with a `\u` escape that is not four hex digits (sonic-rs does not check those in strings it
/// skips) or one that is not all UTF-8 (see `sonic_input`). Both check every value the row
/// does not use, payload included: a line with invalid JSON anywhere is rejected.
pub fn parse_line(line: &[u8]) -> Result<EventRow<'_>, Rejected> {
    // serde reads a struct from an array too; an event is an object.
    if line.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(Rejected::NotJson("not a JSON object".into()));
    }
    match sonic_input(line) {
        Some(text) => parse_with_sonic(text),
        None => parse_with_serde_json(line),
    }
}

/// `line` as text when sonic-rs reads it exactly as serde_json does: nesting within
/// [`FAST_NESTING`] (counted as every `[` and `{`, in strings too), every `\u` followed by
/// four hex digits, and all of it UTF-8 (serde_json accepts bytes that are not UTF-8 in a
/// string it skips outside the payload; sonic-rs rejects them, after handing the visitor a
/// `str` of them).
fn sonic_input(line: &[u8]) -> Option<&str> {
    // `b | 0x20` is `{` for `[` and `{` only; counted in chunks of at most 255, so the
    // count of a chunk fits a byte and the loop vectorizes.
    let opening: usize = line
        .chunks(255)
        .map(|c| usize::from(c.iter().map(|&b| u8::from(b | 0x20 == b'{')).sum::<u8>()))
        .sum();
    if opening > FAST_NESTING {
        return None;
    }
    // In valid JSON a backslash only starts an escape, `\X` or `\uXXXX`; for a line that is not
    // valid JSON the answer does not matter, as both readers reject it.
    let mut at = 0;
    while let Some(i) = memchr::memchr(b'\\', &line[at..]) {
        let escape = at + i;
        if line.get(escape + 1) == Some(&b'u') {
            let hex = line.get(escape + 2..escape + 6);
            if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                return None;
            }
            at = escape + 6;
        } else {
            at = escape + 2;
        }
        if at >= line.len() {
            break;
        }
    }
    std::str::from_utf8(line).ok()
}

/// The sonic-rs reader. One pass reads the row's fields and the payload's facts and checks
/// everything else; the payload's raw text is then cut from the line between its key and the
/// key after it (or the line's closing brace), whose positions the keys give, as sonic-rs
/// borrows them from the line. Where that cannot be done (an escaped key beside the payload),
/// or the one pass fails, the line is read in two passes, which decide: the line with the
/// payload as raw text, then the facts from that text, whose failure (a fact that is valid
/// JSON but not a number sonic-rs reads, such as `1e400`) only leaves the facts out.
pub fn parse_with_sonic(line: &str) -> Result<EventRow<'_>, Rejected> {
    let mut de = sonic_rs::Deserializer::from_str(line);
    let Ok(top) = de::DeserializeSeed::deserialize(TopLevel { line }, &mut de)
        .and_then(|top| de.end().map(|()| top))
    else {
        return parse_with_sonic_twice(line);
    };
    match top.payload {
        PayloadRead::Absent => into_row(line.as_bytes(), top.raw, Facts::default(), None),
        PayloadRead::Cut(facts, text) => {
            into_row(line.as_bytes(), top.raw, facts, Some(Cow::Borrowed(text)))
        }
        PayloadRead::Uncut => parse_with_sonic_twice(line),
    }
}

/// The sonic-rs reader in two passes (see [`parse_with_sonic`]).
fn parse_with_sonic_twice(line: &str) -> Result<EventRow<'_>, Rejected> {
    let raw: RawEvent<'_, sonic_rs::LazyValue<'_>> =
        sonic_rs::from_str(line).map_err(|e| Rejected::NotJson(e.to_string()))?;
    let payload = raw.payload.as_ref().map(sonic_rs::LazyValue::as_raw_cow);
    let facts = match &payload {
        Some(Cow::Borrowed(p)) => sonic_rs::from_str::<Facts<'_>>(p).ok(),
        // A string with escapes: not an object, so no facts.
        _ => None,
    };
    into_row(line.as_bytes(), raw, facts.unwrap_or_default(), payload)
}

/// The serde_json reader, for the lines sonic-rs does not take (see [`parse_line`]).
pub fn parse_with_serde_json(line: &[u8]) -> Result<EventRow<'_>, Rejected> {
    let raw: RawEvent<'_, &RawValue> =
        serde_json::from_slice(line).map_err(|e| Rejected::NotJson(e.to_string()))?;
    let payload = raw.payload.map(RawValue::get);
    let facts = payload
        .and_then(|p| serde_json::from_str::<Facts<'_>>(p).ok())
        .unwrap_or_default();
    into_row(line, raw, facts, payload.map(Cow::Borrowed))
}

fn into_row<'a, P>(
    line: &'a [u8],
    raw: RawEvent<'a, P>,
    facts: Facts<'a>,
    payload: Option<Cow<'a, str>>,
) -> Result<EventRow<'a>, Rejected> {
    let event_type = raw.event_type.0.ok_or(Rejected::NoType)?;
    if event_type.is_empty() {
        return Err(Rejected::NoType);
    }
    let created_at = raw
        .created_at
        .0
        .as_deref()
        .and_then(parse_time)
        .ok_or(Rejected::NoTime)?;
    let event_id = match raw.id.0 {
        Some(id) => id,
        None => synthetic_id(line),
    };
    // 2015 on: `actor` and `repo` objects. Timeline: `actor` a login, `repository` an object.
    let (actor_id, actor_login) = match raw.actor {
        Some(Actor::Object { id, login }) => (id.0, login.0),
        Some(Actor::Login(login)) => (None, Some(login)),
        None => (None, raw.actor_attributes.and_then(|a| a.login.0)),
    };
    let mut timeline_org = None;
    let (repo_id, repo_name) = match (raw.repo, raw.repository) {
        (Some(r), _) => (r.id.0, r.name.0),
        (None, Some(r)) => (
            {
                timeline_org = r.organization.0;
                r.id.0
            },
            match (r.owner.0, r.name.0) {
                (Some(owner), Some(name)) => Some(Cow::Owned(format!("{owner}/{name}"))),
                (None, name) => name,
                (Some(_), None) => None,
            },
        ),
        (None, None) => (None, None),
    };
    let (org_id, org_login) = match raw.org {
        Some(o) => (o.id.0, o.login.0),
        // Timeline: the organization's login on the repository.
        None => (None, timeline_org),
    };
    let number = facts
        .number
        .0
        .or(facts.issue.and_then(|i| i.number.0))
        .or(facts.pull_request.and_then(|p| p.number.0));
    let is_push = event_type == "PushEvent";
    Ok(EventRow {
        event_id,
        event_type,
        created_at,
        public: raw.public.0,
        actor_id,
        actor_login,
        repo_id,
        repo_name,
        org_id,
        org_login,
        action: facts.action.0,
        number,
        r#ref: facts.r#ref.0,
        push_head: if is_push { facts.head.0 } else { None },
        push_size: if is_push { facts.size.0 } else { None },
        payload,
    })
}

/// The id of a line that has none (some Timeline lines before 2015): minus the low 63 bits of
/// the line's XXH64, so it is stable across runs and never collides with GitHub's positive ids.
pub fn synthetic_id(line: &[u8]) -> i64 {
    let h = twox_hash::XxHash64::oneshot(0, line);
    -((h >> 1) as i64) - 1
}

/// RFC 3339 (`2015-01-01T15:00:00Z`, `2012-03-10T14:12:23-08:00`), or the `2011/05/01
/// 12:34:56 -0700` form of the oldest Timeline lines.
fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .or_else(|_| DateTime::parse_from_str(s, "%Y/%m/%d %H:%M:%S %z"))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The line's top level; `P` is the payload's raw JSON text as each reader gives it.
#[derive(Deserialize)]
#[serde(bound(deserialize = "P: Deserialize<'de>"))]
struct RawEvent<'a, P> {
    #[serde(default)]
    id: LenientI64,
    #[serde(default, rename = "type", borrow)]
    event_type: LenientStr<'a>,
    #[serde(default, borrow, deserialize_with = "actor")]
    actor: Option<Actor<'a>>,
    #[serde(default, borrow, deserialize_with = "object")]
    actor_attributes: Option<Login<'a>>,
    #[serde(default, borrow, deserialize_with = "object")]
    repo: Option<Repo<'a>>,
    #[serde(default, borrow, deserialize_with = "object")]
    repository: Option<Repo<'a>>,
    #[serde(default, borrow, deserialize_with = "object")]
    org: Option<Login<'a>>,
    #[serde(default)]
    public: LenientBool,
    #[serde(default, borrow)]
    created_at: LenientStr<'a>,
    #[serde(default)]
    payload: Option<P>,
}

enum Actor<'a> {
    Object {
        id: LenientI64,
        login: LenientStr<'a>,
    },
    Login(Cow<'a, str>),
}

#[derive(Deserialize)]
struct Login<'a> {
    #[serde(default)]
    id: LenientI64,
    #[serde(default, borrow)]
    login: LenientStr<'a>,
}

#[derive(Deserialize)]
struct Repo<'a> {
    #[serde(default)]
    id: LenientI64,
    #[serde(default, borrow)]
    name: LenientStr<'a>,
    /// Timeline only: the owner's login (`name` is then the bare name).
    #[serde(default, borrow)]
    owner: LenientStr<'a>,
    /// Timeline only: the organization's login, when the owner is one.
    #[serde(default, borrow)]
    organization: LenientStr<'a>,
}

#[derive(Deserialize, Default)]
struct Facts<'a> {
    #[serde(default, borrow)]
    action: LenientStr<'a>,
    #[serde(default)]
    number: LenientI64,
    #[serde(default, deserialize_with = "object")]
    issue: Option<Numbered>,
    #[serde(default, deserialize_with = "object")]
    pull_request: Option<Numbered>,
    #[serde(default, rename = "ref", borrow)]
    r#ref: LenientStr<'a>,
    #[serde(default, borrow)]
    head: LenientStr<'a>,
    #[serde(default)]
    size: LenientI64,
}

#[derive(Deserialize)]
struct Numbered {
    #[serde(default)]
    number: LenientI64,
}

/// The top level of a line read in one pass by sonic-rs, with the line it borrows from.
struct TopLevel<'a> {
    line: &'a str,
}

struct Top<'a> {
    raw: RawEvent<'a, ()>,
    payload: PayloadRead<'a>,
}

enum PayloadRead<'a> {
    /// No payload, or `null`.
    Absent,
    /// The payload's facts and raw text.
    Cut(Facts<'a>, &'a str),
    /// The facts were read but the raw text could not be cut from the line.
    Uncut,
}

impl<'de: 'a, 'a> de::DeserializeSeed<'de> for TopLevel<'a> {
    type Value = Top<'a>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Top<'a>, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de: 'a, 'a> Visitor<'de> for TopLevel<'a> {
    type Value = Top<'a>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an event")
    }

    /// What `#[derive(Deserialize)]` does for [`RawEvent`] (a field twice is an error, unknown
    /// fields are skipped), with `payload` read as its facts and its position noted.
    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Top<'a>, M::Error> {
        fn once<T, E: de::Error>(slot: &mut Option<T>, name: &'static str, v: T) -> Result<(), E> {
            match slot {
                Some(_) => Err(E::duplicate_field(name)),
                None => {
                    *slot = Some(v);
                    Ok(())
                }
            }
        }
        let bytes = self.line.as_bytes();
        let (mut id, mut event_type, mut actor, mut actor_attributes) = (None, None, None, None);
        let (mut repo, mut repository, mut org, mut public) = (None, None, None, None);
        let (mut created_at, mut payload) = (None, None);
        // The payload's facts and where its value starts, until the next key shows its end.
        let mut open: Option<(Facts<'a>, Option<usize>)> = None;
        let close = |open: (Facts<'a>, Option<usize>), end: Option<usize>| {
            let text = open
                .1
                .zip(end)
                .and_then(|(start, end)| self.line.get(start..end))
                .filter(|t| !t.is_empty());
            match text {
                Some(text) => PayloadRead::Cut(open.0, text),
                None => PayloadRead::Uncut,
            }
        };
        while let Some(key) = map.next_key::<Key<'de>>()? {
            let at = key.position_in(self.line);
            if let Some(o) = open.take() {
                let end = at.and_then(|(start, _)| value_end_before_key(bytes, start));
                payload = Some(close(o, end));
            }
            match key.0.as_ref() {
                "id" => once(&mut id, "id", map.next_value::<LenientI64>()?)?,
                "type" => once(&mut event_type, "type", map.next_value::<LenientStr<'a>>()?)?,
                "actor" => once(&mut actor, "actor", map.next_value::<ActorField<'a>>()?.0)?,
                "actor_attributes" => once(
                    &mut actor_attributes,
                    "actor_attributes",
                    map.next_value::<ObjectField<Login<'a>>>()?.0,
                )?,
                "repo" => once(
                    &mut repo,
                    "repo",
                    map.next_value::<ObjectField<Repo<'a>>>()?.0,
                )?,
                "repository" => once(
                    &mut repository,
                    "repository",
                    map.next_value::<ObjectField<Repo<'a>>>()?.0,
                )?,
                "org" => once(
                    &mut org,
                    "org",
                    map.next_value::<ObjectField<Login<'a>>>()?.0,
                )?,
                "public" => once(&mut public, "public", map.next_value::<LenientBool>()?)?,
                "created_at" => once(
                    &mut created_at,
                    "created_at",
                    map.next_value::<LenientStr<'a>>()?,
                )?,
                "payload" => {
                    if payload.is_some() || open.is_some() {
                        return Err(de::Error::duplicate_field("payload"));
                    }
                    match map.next_value::<PayloadFacts<'a>>()?.0 {
                        None => payload = Some(PayloadRead::Absent),
                        Some(facts) => {
                            let start = at.and_then(|(_, end)| value_start_after_key(bytes, end));
                            open = Some((facts, start));
                        }
                    }
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if let Some(o) = open.take() {
            payload = Some(close(o, value_end_at_close(bytes)));
        }
        Ok(Top {
            raw: RawEvent {
                id: id.unwrap_or_default(),
                event_type: event_type.unwrap_or_default(),
                actor: actor.flatten(),
                actor_attributes: actor_attributes.flatten(),
                repo: repo.flatten(),
                repository: repository.flatten(),
                org: org.flatten(),
                public: public.unwrap_or_default(),
                created_at: created_at.unwrap_or_default(),
                payload: None,
            },
            payload: payload.unwrap_or(PayloadRead::Absent),
        })
    }
}

/// JSON's whitespace.
fn is_json_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// Where the value after a key starts, `key_end` being the key's closing quote: past the
/// quote, whitespace, `:` and whitespace.
fn value_start_after_key(b: &[u8], key_end: usize) -> Option<usize> {
    let mut i = key_end + 1;
    while b.get(i).copied().is_some_and(is_json_space) {
        i += 1;
    }
    (b.get(i) == Some(&b':')).then_some(())?;
    i += 1;
    while b.get(i).copied().is_some_and(is_json_space) {
        i += 1;
    }
    Some(i)
}

/// Where the value before a key ends, `key_start` being just after the key's opening quote:
/// before the quote, whitespace, `,` and whitespace.
fn value_end_before_key(b: &[u8], key_start: usize) -> Option<usize> {
    let mut i = key_start.checked_sub(1)?;
    while i > 0 && is_json_space(b[i - 1]) {
        i -= 1;
    }
    (i > 0 && b[i - 1] == b',').then_some(())?;
    i -= 1;
    while i > 0 && is_json_space(b[i - 1]) {
        i -= 1;
    }
    Some(i)
}

/// Where the top level's last value ends: before whitespace, the closing `}` and whitespace.
fn value_end_at_close(b: &[u8]) -> Option<usize> {
    let mut i = b.len();
    while i > 0 && is_json_space(b[i - 1]) {
        i -= 1;
    }
    (i > 0 && b[i - 1] == b'}').then_some(())?;
    i -= 1;
    while i > 0 && is_json_space(b[i - 1]) {
        i -= 1;
    }
    Some(i)
}

/// An object's key, borrowed from the input unless it has escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Key<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Key<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(V(std::marker::PhantomData))
    }
}

impl Key<'_> {
    /// The key's text as `line[start..end]`, when it is borrowed from `line` between quotes.
    fn position_in(&self, line: &str) -> Option<(usize, usize)> {
        let Cow::Borrowed(k) = &self.0 else {
            return None;
        };
        let start = (k.as_ptr() as usize).checked_sub(line.as_ptr() as usize)?;
        let end = start + k.len();
        let b = line.as_bytes();
        let quoted = end < b.len() && start > 0 && b[start - 1] == b'"' && b[end] == b'"';
        quoted.then_some((start, end))
    }
}

/// `actor` as [`actor`] reads it.
struct ActorField<'a>(Option<Actor<'a>>);

impl<'de: 'a, 'a> Deserialize<'de> for ActorField<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        actor(d).map(ActorField)
    }
}

/// A field read as [`object`] reads it.
struct ObjectField<T>(Option<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for ObjectField<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        object(d).map(ObjectField)
    }
}

/// The payload read in the top level's pass: `None` for `null`, else its facts as a second
/// pass over its text reads them, `serde_json::from_str::<Facts>(text).ok().unwrap_or_default()`,
/// without failing: where that would fail on valid JSON (a field twice, an array of more than
/// [`Facts`]' seven fields, read in order as `#[derive(Deserialize)]` does), the facts are
/// none and the rest is still checked.
struct PayloadFacts<'a>(Option<Facts<'a>>);

impl<'de: 'a, 'a> Deserialize<'de> for PayloadFacts<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = PayloadFacts<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a payload")
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(PayloadFacts(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(PayloadFacts(None))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_any(FactsVisitor(std::marker::PhantomData))
                    .map(|f| PayloadFacts(Some(f)))
            }
        }
        d.deserialize_option(V(std::marker::PhantomData))
    }
}

struct FactsVisitor<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for FactsVisitor<'a> {
    type Value = Facts<'a>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a payload")
    }
    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Facts<'a>, M::Error> {
        let mut f = Facts::default();
        let mut seen = [false; 7];
        let mut spoiled = false;
        while let Some(key) = map.next_key::<Key<'de>>()? {
            let i = match key.0.as_ref() {
                "action" => 0,
                "number" => 1,
                "issue" => 2,
                "pull_request" => 3,
                "ref" => 4,
                "head" => 5,
                "size" => 6,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            if std::mem::replace(&mut seen[i], true) {
                spoiled = true;
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            match i {
                0 => f.action = map.next_value()?,
                1 => f.number = map.next_value()?,
                2 | 3 => {
                    let n = map.next_value::<NumberedField>()?;
                    spoiled |= n.spoiled;
                    if i == 2 {
                        f.issue = n.value;
                    } else {
                        f.pull_request = n.value;
                    }
                }
                4 => f.r#ref = map.next_value()?,
                5 => f.head = map.next_value()?,
                _ => f.size = map.next_value()?,
            }
        }
        Ok(if spoiled { Facts::default() } else { f })
    }
    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Facts<'a>, S::Error> {
        let action = seq.next_element()?.unwrap_or_default();
        let number = seq.next_element()?.unwrap_or_default();
        let issue = seq.next_element::<NumberedField>()?;
        let pull_request = seq.next_element::<NumberedField>()?;
        let r#ref = seq.next_element()?.unwrap_or_default();
        let head = seq.next_element()?.unwrap_or_default();
        let size = seq.next_element()?.unwrap_or_default();
        let mut spoiled = [&issue, &pull_request]
            .iter()
            .any(|n| n.as_ref().is_some_and(|n| n.spoiled));
        while seq.next_element::<IgnoredAny>()?.is_some() {
            spoiled = true;
        }
        Ok(if spoiled {
            Facts::default()
        } else {
            Facts {
                action,
                number,
                issue: issue.and_then(|n| n.value),
                pull_request: pull_request.and_then(|n| n.value),
                r#ref,
                head,
                size,
            }
        })
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Facts<'a>, E> {
        Ok(Facts::default())
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Facts<'a>, E> {
        Ok(Facts::default())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Facts<'a>, E> {
        Ok(Facts::default())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Facts<'a>, E> {
        Ok(Facts::default())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Facts<'a>, E> {
        Ok(Facts::default())
    }
    fn visit_unit<E: de::Error>(self) -> Result<Facts<'a>, E> {
        Ok(Facts::default())
    }
}

/// `issue` or `pull_request` in one pass: [`object`] of [`Numbered`], with `number` twice
/// (an error for `#[derive(Deserialize)]`) noted instead of failing.
struct NumberedField {
    value: Option<Numbered>,
    spoiled: bool,
}

impl<'de> Deserialize<'de> for NumberedField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = NumberedField;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<NumberedField, M::Error> {
                let (mut number, mut spoiled) = (None, false);
                while let Some(key) = map.next_key::<Key<'de>>()? {
                    if key.0 != "number" {
                        map.next_value::<IgnoredAny>()?;
                    } else if number.is_some() {
                        spoiled = true;
                        map.next_value::<IgnoredAny>()?;
                    } else {
                        number = Some(map.next_value::<LenientI64>()?);
                    }
                }
                Ok(NumberedField {
                    value: Some(Numbered {
                        number: number.unwrap_or_default(),
                    }),
                    spoiled,
                })
            }
            fn visit_seq<S: SeqAccess<'de>>(self, seq: S) -> Result<NumberedField, S::Error> {
                IgnoredAny.visit_seq(seq).map(|_| NumberedField::none())
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<NumberedField, E> {
                Ok(NumberedField::none())
            }
            fn visit_unit<E: de::Error>(self) -> Result<NumberedField, E> {
                Ok(NumberedField::none())
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<NumberedField, E> {
                Ok(NumberedField::none())
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<NumberedField, E> {
                Ok(NumberedField::none())
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<NumberedField, E> {
                Ok(NumberedField::none())
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<NumberedField, E> {
                Ok(NumberedField::none())
            }
        }
        d.deserialize_any(V)
    }
}

impl NumberedField {
    fn none() -> Self {
        NumberedField {
            value: None,
            spoiled: false,
        }
    }
}

/// `actor`: an object (2015 on) or a login string (Timeline); anything else is none.
fn actor<'de: 'a, 'a, D: Deserializer<'de>>(d: D) -> Result<Option<Actor<'a>>, D::Error> {
    struct V<'a>(std::marker::PhantomData<&'a ()>);
    impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
        type Value = Option<Actor<'a>>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an actor")
        }
        fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
            Ok(Some(Actor::Login(Cow::Borrowed(v))))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(Actor::Login(Cow::Owned(v.to_string()))))
        }
        fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<Self::Value, M::Error> {
            let l = Login::deserialize(de::value::MapAccessDeserializer::new(map))?;
            Ok(Some(Actor::Object {
                id: l.id,
                login: l.login,
            }))
        }
        fn visit_seq<S: SeqAccess<'de>>(self, seq: S) -> Result<Self::Value, S::Error> {
            IgnoredAny.visit_seq(seq).map(|_| None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    d.deserialize_any(V(std::marker::PhantomData))
}

/// An object read as `T`; any other JSON value is none.
fn object<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    struct V<T>(std::marker::PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
        type Value = Option<T>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<Self::Value, M::Error> {
            T::deserialize(de::value::MapAccessDeserializer::new(map)).map(Some)
        }
        fn visit_seq<S: SeqAccess<'de>>(self, seq: S) -> Result<Self::Value, S::Error> {
            IgnoredAny.visit_seq(seq).map(|_| None)
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    d.deserialize_any(V(std::marker::PhantomData))
}

/// A string, or none for any other JSON value.
#[derive(Default, Debug)]
struct LenientStr<'a>(Option<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for LenientStr<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = LenientStr<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(LenientStr(Some(Cow::Borrowed(v))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(LenientStr(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<Self::Value, M::Error> {
                IgnoredAny.visit_map(map).map(|_| LenientStr(None))
            }
            fn visit_seq<S: SeqAccess<'de>>(self, seq: S) -> Result<Self::Value, S::Error> {
                IgnoredAny.visit_seq(seq).map(|_| LenientStr(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(LenientStr(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(LenientStr(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(LenientStr(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(LenientStr(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(LenientStr(None))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// An integer, or a string of one (GH Archive's ids), or none for anything else.
#[derive(Default, Debug)]
struct LenientI64(Option<i64>);

impl<'de> Deserialize<'de> for LenientI64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = LenientI64;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(LenientI64(Some(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(LenientI64(i64::try_from(v).ok()))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(LenientI64(None))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(LenientI64(v.trim().parse().ok()))
            }
            fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<Self::Value, M::Error> {
                IgnoredAny.visit_map(map).map(|_| LenientI64(None))
            }
            fn visit_seq<S: SeqAccess<'de>>(self, seq: S) -> Result<Self::Value, S::Error> {
                IgnoredAny.visit_seq(seq).map(|_| LenientI64(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(LenientI64(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(LenientI64(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// A boolean, or none for anything else.
#[derive(Default, Debug)]
struct LenientBool(Option<bool>);

impl<'de> Deserialize<'de> for LenientBool {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = LenientBool;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(LenientBool(Some(v)))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(LenientBool(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(LenientBool(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(LenientBool(None))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(LenientBool(None))
            }
            fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<Self::Value, M::Error> {
                IgnoredAny.visit_map(map).map(|_| LenientBool(None))
            }
            fn visit_seq<S: SeqAccess<'de>>(self, seq: S) -> Result<Self::Value, S::Error> {
                IgnoredAny.visit_seq(seq).map(|_| LenientBool(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(LenientBool(None))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(line: &str) -> EventRow<'_> {
        parse_line(line.as_bytes()).unwrap()
    }

    #[test]
    fn a_2015_push_event() {
        // The first line of GH Archive's 2015-01-01-15 hour, as its README shows it.
        let line = r#"{"id":"2489651045","type":"CreateEvent","actor":{"id":665991,"login":"petroav","gravatar_id":"","url":"https://api.github.com/users/petroav","avatar_url":"https://avatars.githubusercontent.com/u/665991?"},"repo":{"id":28688495,"name":"petroav/6.828","url":"https://api.github.com/repos/petroav/6.828"},"payload":{"ref":"master","ref_type":"branch","master_branch":"master","description":"Solution to homework and assignments from MIT's 6.828 (Operating Systems Engineering). Done in my spare time.","pusher_type":"user"},"public":true,"created_at":"2015-01-01T15:00:00Z"}"#;
        let r = row(line);
        assert_eq!(r.event_id, 2489651045);
        assert_eq!(r.event_type, "CreateEvent");
        assert_eq!(r.created_at.to_rfc3339(), "2015-01-01T15:00:00+00:00");
        assert_eq!(r.actor_id, Some(665991));
        assert_eq!(r.actor_login.as_deref(), Some("petroav"));
        assert_eq!(r.repo_id, Some(28688495));
        assert_eq!(r.repo_name.as_deref(), Some("petroav/6.828"));
        assert_eq!(r.r#ref.as_deref(), Some("master"));
        assert_eq!((r.org_id, r.push_size, r.number), (None, None, None));
        assert_eq!(r.public, Some(true));
        assert!(r.payload.unwrap().starts_with(r#"{"ref":"master""#));
    }

    #[test]
    fn a_trimmed_push_event_is_a_row_with_no_size() {
        let line = r#"{"id":"52000000001","type":"PushEvent","actor":{"id":1,"login":"a"},"repo":{"id":2,"name":"a/b"},"payload":{"repository_id":2,"push_id":99,"ref":"refs/heads/main","head":"abc","before":"def"},"public":true,"created_at":"2025-10-20T10:00:01Z","org":{"id":7,"login":"o"}}"#;
        let r = row(line);
        assert_eq!(r.push_head.as_deref(), Some("abc"));
        assert_eq!(r.r#ref.as_deref(), Some("refs/heads/main"));
        assert_eq!(r.push_size, None);
        assert_eq!((r.org_id, r.org_login.as_deref()), (Some(7), Some("o")));
    }

    #[test]
    fn numbers_come_from_the_issue_or_the_pull_request() {
        let issue = r#"{"id":"1","type":"IssueCommentEvent","created_at":"2020-01-01T00:00:00Z","payload":{"action":"created","issue":{"number":42,"title":"x"}}}"#;
        assert_eq!(row(issue).number, Some(42));
        assert_eq!(row(issue).action.as_deref(), Some("created"));
        let review = r#"{"id":"2","type":"PullRequestReviewEvent","created_at":"2020-01-01T00:00:00Z","payload":{"action":"created","pull_request":{"number":7}}}"#;
        assert_eq!(row(review).number, Some(7));
        let pr = r#"{"id":"3","type":"PullRequestEvent","created_at":"2020-01-01T00:00:00Z","payload":{"action":"opened","number":"9","pull_request":{"number":9}}}"#;
        assert_eq!(row(pr).number, Some(9));
    }

    #[test]
    fn member_as_a_string_or_an_object_and_odd_types_are_not_errors() {
        for payload in [
            r#"{"member":"octocat","action":"added"}"#,
            r#"{"member":{"login":"octocat","id":1},"action":"added"}"#,
            r#"{"action":["odd"],"number":{"x":1},"ref":null,"size":"many"}"#,
            r#"[1,2]"#,
            r#""text""#,
        ] {
            let line = format!(
                r#"{{"id":"5","type":"MemberEvent","actor":{{"id":"x","login":5}},"created_at":"2014-06-01T00:00:00Z","payload":{payload},"extra":{{"new":true}}}}"#
            );
            let r = parse_line(line.as_bytes()).unwrap();
            assert_eq!(r.payload.as_deref(), Some(payload));
            assert_eq!((r.actor_id, r.actor_login.clone()), (None, None));
        }
    }

    #[test]
    fn a_timeline_line_maps_to_the_same_columns() {
        let line = r#"{"created_at":"2012-03-10T14:12:23-08:00","payload":{"head":"6b4e","ref":"refs/heads/master","size":1,"shas":[["6b4e","a@b.c","msg","Ann"]]},"public":true,"type":"PushEvent","url":"https://github.com/o/r/compare/1...6b4e","actor":"ann","actor_attributes":{"login":"ann","type":"User","name":"Ann","email":"a@b.c"},"repository":{"id":123,"name":"r","url":"https://github.com/o/r","owner":"o","private":false,"stargazers":3,"organization":"o"}}"#;
        let r = row(line);
        assert_eq!(r.created_at.to_rfc3339(), "2012-03-10T22:12:23+00:00");
        assert_eq!(r.actor_login.as_deref(), Some("ann"));
        assert_eq!(r.actor_id, None);
        assert_eq!(
            (r.repo_id, r.repo_name.as_deref()),
            (Some(123), Some("o/r"))
        );
        assert_eq!(
            (r.push_size, r.push_head.as_deref()),
            (Some(1), Some("6b4e"))
        );
        // No id: a synthetic one, negative, the same for the same line.
        assert!(r.event_id < 0);
        assert_eq!(r.event_id, row(line).event_id);
        assert_ne!(r.event_id, row(&line.replace("ann", "bob")).event_id);
    }

    #[test]
    fn escaped_strings_are_unescaped() {
        let line = r#"{"id":"8","type":"WatchEvent","actor":{"id":3,"login":"a\u00e9"},"repo":{"id":4,"name":"x\/y"},"created_at":"2016-01-01T00:00:00Z","payload":{"action":"started"}}"#;
        let r = row(line);
        assert_eq!(r.actor_login.as_deref(), Some("aé"));
        assert_eq!(r.repo_name.as_deref(), Some("x/y"));
        assert_eq!(r.action.as_deref(), Some("started"));
    }

    #[test]
    fn rejected_lines_say_why() {
        assert!(matches!(parse_line(b"not json"), Err(Rejected::NotJson(_))));
        assert!(matches!(
            parse_line(b"{\"id\":\"1\""),
            Err(Rejected::NotJson(_))
        ));
        assert!(matches!(parse_line(b"[1]"), Err(Rejected::NotJson(_))));
        assert_eq!(
            parse_line(br#"{"id":"1","created_at":"2015-01-01T00:00:00Z"}"#),
            Err(Rejected::NoType)
        );
        assert_eq!(
            parse_line(br#"{"id":"1","type":"","created_at":"2015-01-01T00:00:00Z"}"#),
            Err(Rejected::NoType)
        );
        assert_eq!(
            parse_line(br#"{"id":"1","type":"PushEvent","created_at":"yesterday"}"#),
            Err(Rejected::NoTime)
        );
    }

    fn line_with_payload(payload: &str) -> String {
        format!(
            r#"{{"id":"9","type":"IssuesEvent","actor":{{"id":1,"login":"a"}},"repo":{{"id":2,"name":"a/b"}},"payload":{payload},"public":true,"created_at":"2020-01-01T00:00:00Z"}}"#
        )
    }

    #[test]
    fn a_line_with_invalid_json_inside_the_payload_is_rejected() {
        for payload in [
            r#"{"action":"opened","issue":{"number":1,"body":tru}}"#,
            r#"{"action":"opened","issue":{"number":01}}"#,
            r#"{"action":"opened","issue":{"number":1,}}"#,
            r#"{"action":"opened","issue":{"body":"a\qb"}}"#,
            r#"{"action":"opened","issue":{"body":"a\uZZZZb"}}"#,
            r#"{"action":"opened","issue":{"body":"a\u12"}}"#,
            "{\"action\":\"opened\",\"issue\":{\"body\":\"a\tb\"}}",
            r#"{"action":"opened","issue":{"number":1}"#,
            r#"{"action":"opened" "issue":{}}"#,
        ] {
            let line = line_with_payload(payload);
            assert!(
                matches!(parse_line(line.as_bytes()), Err(Rejected::NotJson(_))),
                "{payload}"
            );
            // Either reader alone rejects it too.
            assert!(parse_with_serde_json(line.as_bytes()).is_err(), "{payload}");
            if let Some(text) = sonic_input(line.as_bytes()) {
                assert!(parse_with_sonic(text).is_err(), "{payload}");
            }
        }
        // Bytes that are not UTF-8, in the payload and elsewhere.
        let line = line_with_payload(r#"{"action":"opened","issue":{"body":"aXb"}}"#);
        for bad in [
            &[0xffu8][..],
            &[0xc0, 0x80],
            &[0xed, 0xa0, 0x80],
            &[0xe2, 0x82],
        ] {
            let mut bytes = line.as_bytes().to_vec();
            let at = line.find('X').unwrap();
            bytes.splice(at..at + 1, bad.iter().copied());
            assert!(
                matches!(parse_line(&bytes), Err(Rejected::NotJson(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_deeply_nested_payload_is_read_without_exhausting_the_stack() {
        let depth = 200_000;
        let payload = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let line = line_with_payload(&payload);
        assert!(sonic_input(line.as_bytes()).is_none());
        let r = std::thread::Builder::new()
            .stack_size(256 << 10)
            .spawn(move || parse_line(line.as_bytes()).map(|r| r.payload.map(|p| p.len())))
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(r, Ok(Some(2 * depth)));
        let just_fits = line_with_payload(&format!(
            "{}{}",
            "[".repeat(FAST_NESTING - 3),
            "]".repeat(FAST_NESTING - 3)
        ));
        assert!(sonic_input(just_fits.as_bytes()).is_some());
        let r = std::thread::Builder::new()
            .stack_size(256 << 10)
            .spawn(move || parse_line(just_fits.as_bytes()).is_ok())
            .unwrap()
            .join()
            .unwrap();
        assert!(r);
    }

    /// The reader before sonic-rs: serde_json alone.
    fn reference(line: &[u8]) -> Result<EventRow<'_>, Rejected> {
        if line.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(Rejected::NotJson("not a JSON object".into()));
        }
        parse_with_serde_json(line)
    }

    /// [`parse_line`] answers as serde_json alone would: the same row, or a rejection of the
    /// same kind (the messages differ).
    fn both_readers_agree(line: &[u8]) -> Result<(), String> {
        let kind = |r: &Result<EventRow<'_>, Rejected>| match r {
            Ok(row) => format!("{row:?}"),
            Err(Rejected::NotJson(_)) => "not JSON".into(),
            Err(e) => format!("{e:?}"),
        };
        let (fast, reference) = (parse_line(line), reference(line));
        if kind(&fast) == kind(&reference) {
            Ok(())
        } else {
            Err(format!(
                "{}\n  parse_line: {fast:?}\n  serde_json: {reference:?}",
                String::from_utf8_lossy(line)
            ))
        }
    }

    const SAMPLES: [&str; 4] = [
        r#"{"id":"2489651045","type":"CreateEvent","actor":{"id":665991,"login":"petroav","gravatar_id":""},"repo":{"id":28688495,"name":"petroav/6.828","url":"https://api.github.com/repos/petroav/6.828"},"payload":{"ref":"master","ref_type":"branch","description":"Solution \"x\" \u00e9\n","pusher_type":"user","n":[1,-2.5e3,true,null,{}]},"public":true,"created_at":"2015-01-01T15:00:00Z"}"#,
        r#"{"id":"52000000001","type":"PushEvent","actor":{"id":1,"login":"a"},"repo":{"id":2,"name":"a/b"},"payload":{"repository_id":2,"push_id":99,"size":3,"ref":"refs/heads/main","head":"abc","before":"def"},"public":false,"created_at":"2025-10-20T10:00:01Z","org":{"id":7,"login":"o"}}"#,
        r#"{"created_at":"2012-03-10T14:12:23-08:00","payload":{"head":"6b4e","ref":"refs/heads/master","size":1,"shas":[["6b4e","a@b.c","msg","Ann"]]},"public":true,"type":"PushEvent","actor":"ann","actor_attributes":{"login":"ann"},"repository":{"id":123,"name":"r","owner":"o","organization":"o"}}"#,
        r#"{"id":"3","type":"PullRequestEvent","created_at":"2020-01-01T00:00:00Z","payload":{"action":"opened","number":"9","pull_request":{"number":9,"title":"\ud83d\ude00 \\u0041"}}}"#,
    ];

    #[test]
    fn both_readers_agree_on_odd_values_anywhere() {
        let values = [
            "0",
            "-0",
            "1",
            "-1",
            "1.0",
            "-0.0",
            "1e2",
            "1E+2",
            "1e-2",
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775808",
            "-9223372036854775809",
            "18446744073709551615",
            "18446744073709551616",
            "1e400",
            "01",
            "1.",
            ".5",
            "+1",
            "1e",
            "-",
            "0x10",
            "NaN",
            "Infinity",
            "true",
            "false",
            "null",
            "nul",
            "tru",
            "[]",
            "{}",
            "[1,]",
            "{\"a\":1,}",
            "[[[]]]",
            "{\"a\":{\"b\":[1,{}]}}",
            "\"\"",
            "\"9\"",
            "\" 9 \"",
            "\"-9\"",
            "\"x\"",
            r#""\u00e9""#,
            r#""\ud83d\ude00""#,
            r#""\ud800""#,
            r#""\udc00""#,
            r#""\ud800\u0041""#,
            r#""\u0000""#,
            r#""a\/b""#,
            r#""a\\u0041""#,
            r#""\uD83D\uDE00""#,
            r#""\x41""#,
            r#""\u004""#,
            r#""\u004g""#,
            "\"a\tb\"",
            "\"a\u{7f}b\"",
            "\"é\"",
            "\"",
            "1 2",
            "[1 2]",
            "{\"a\" 1}",
            "{\"a\":1 \"b\":2}",
            "{1:2}",
            "\"2015-01-01T00:00:00Z\"",
        ];
        let fields = [
            "id",
            "type",
            "actor",
            "repo",
            "org",
            "public",
            "created_at",
            "payload",
            "extra",
        ];
        for v in values {
            for f in fields {
                let line = format!(
                    r#"{{"id":"1","type":"PullRequestEvent","created_at":"2020-01-01T00:00:00Z","{f}":{v}}}"#
                );
                for line in [
                    line.clone(),
                    line.replace(r#""id":"1""#, &format!(r#""id":{{"id":{v}}}"#)),
                    format!(
                        r#"{{"type":"IssuesEvent","created_at":"2020-01-01T00:00:00Z","actor":{{"id":{v},"login":{v}}},"repo":{{"id":{v},"name":{v}}},"payload":{{"action":{v},"number":{v},"issue":{{"number":{v}}},"pull_request":{v},"ref":{v},"head":{v},"size":{v},"{f}":{v}}}}}"#
                    ),
                    format!(
                        r#"{{"type":"PushEvent","created_at":"2020-01-01T00:00:00Z","payload":{{"size":{v},"head":{v},"pull_request":{{"number":{v}}},"issue":{v}}}}}"#
                    ),
                    format!(
                        r#"{{"type":"PushEvent","created_at":"2020-01-01T00:00:00Z","payload":[{v},{v}]}}"#
                    ),
                ] {
                    if let Err(e) = both_readers_agree(line.as_bytes()) {
                        panic!("{e}");
                    }
                }
            }
        }
        for line in [
            r#"{"id":"1","id":"2","type":"X","created_at":"2020-01-01T00:00:00Z"}"#,
            r#"{"id":"1","type":"X","created_at":"2020-01-01T00:00:00Z","payload":{"action":"a","action":"b"}}"#,
            r#"{"id":"1","type":"X","created_at":"2020-01-01T00:00:00Z","payload":{"x":1,"x":2}}"#,
            r#"{"id":"1","type":"X","created_at":"2020-01-01T00:00:00Z"} x"#,
            r#"{"id":"1","type":"X","created_at":"2020-01-01T00:00:00Z"}  "#,
            r#"{"id":"1","type":"X","created_at":"2020-01-01T00:00:00Z"}{}"#,
            "{\"id\":\"1\",\"type\":\"X\",\x0c\"created_at\":\"2020-01-01T00:00:00Z\"}",
            "{ \"id\" : \"1\" ,\t\"type\"\r\n:\"X\",\"created_at\":\"2020-01-01T00:00:00Z\" }",
            "{}",
            "{\"type\":\"X\",\"created_at\":\"2020-01-01T00:00:00Z\",\"payload\":\"a\\\"b\"}",
            // Where the payload's text is cut: first, last, beside escaped keys, spaced out.
            r#"{"payload":{"action":"a","number":1},"type":"X","created_at":"2020-01-01T00:00:00Z"}"#,
            r#"{"type":"X","created_at":"2020-01-01T00:00:00Z","payload":{"action":"a"}}"#,
            r#"{"type":"X","created_at":"2020-01-01T00:00:00Z","payload":{"action":"a"},"x":1}"#,
            r#"{"type":"X","created_at":"2020-01-01T00:00:00Z","payload":{"action":"a"},"x":1}"#,
            r#"{"type":"X","created_at":"2020-01-01T00:00:00Z","payload":{"action":"a"},"public ":1}"#,
            " { \"type\" : \"X\" , \"created_at\" : \"2020-01-01T00:00:00Z\" , \"payload\" :\t{ \"action\" : \"a\" } \r\n, \"x\" : [ ] } ",
            " { \"type\" : \"X\" , \"created_at\" : \"2020-01-01T00:00:00Z\" , \"payload\" : [ 1 , 2 ] } ",
            r#"{"type":"X","created_at":"2020-01-01T00:00:00Z","payload":{"action":"a"},"payload":{}}"#,
            r#"{"type":"X","created_at":"2020-01-01T00:00:00Z","payload":null,"payload":{}}"#,
            r#"{"type":"X","created_at":"2020-01-01T00:00:00Z","payload":null}"#,
            r#"{"type":"X","created_at":"2020-01-01T00:00:00Z","payload":"s","x":1}"#,
            r#"{"type":"X","created_at":"2020-01-01T00:00:00Z","payload":7}"#,
            // Facts that #[derive(Deserialize)] fails on: none, the line still read.
            r#"{"type":"X","created_at":"2020-01-01T00:00:00Z","payload":{"action":"a","issue":{"number":1,"number":2}}}"#,
            r#"{"type":"X","created_at":"2020-01-01T00:00:00Z","payload":{"action":"a","pull_request":{"number":1,"number":[]},"x":{}}}"#,
            r#"{"type":"X","created_at":"2020-01-01T00:00:00Z","payload":["a",1,{"number":3},null,"r","h",2]}"#,
            r#"{"type":"X","created_at":"2020-01-01T00:00:00Z","payload":["a",1,{"number":3},null,"r","h",2,8]}"#,
            r#"{"type":"X","created_at":"2020-01-01T00:00:00Z","payload":["a",1,{"number":3,"number":4}]}"#,
            r#"{"type":"X","created_at":"2020-01-01T00:00:00Z","payload":["a",1,[{"number":3}],"x"]}"#,
            r#"{"type":"X","created_at":"2020-01-01T00:00:00Z","payload":["a",1,{"number":3},null,"r","h",2,8,tru]}"#,
            r#"{"type":"X","created_at":"2020-01-01T00:00:00Z","payload":{"issue":{"number":1,"x":[1,}}}}"#,
            r#"{"type":"X","created_at":"2020-01-01T00:00:00Z","payload":{"action":"a","action":[1,}}"#,
            r#"{"type":"X","created_at":"2020-01-01T00:00:00Z","payload":{"action":"a","action":"b"}}"#,
            r#"{"type":"X","created_at":"2020-01-01T00:00:00Z","payload":{"action":"a","number":"7"}}"#,
        ] {
            if let Err(e) = both_readers_agree(line.as_bytes()) {
                panic!("{e}");
            }
        }
    }

    #[test]
    fn ordinary_lines_are_read_in_one_pass() {
        for line in SAMPLES {
            let mut de = sonic_rs::Deserializer::from_str(line);
            let top = de::DeserializeSeed::deserialize(TopLevel { line }, &mut de).unwrap();
            let PayloadRead::Cut(_, text) = top.payload else {
                panic!("not cut: {line}");
            };
            assert_eq!(
                parse_with_sonic(line).unwrap().payload.as_deref(),
                Some(text)
            );
            assert_eq!(parse_with_sonic(line), parse_with_sonic_twice(line));
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
        /// Lines damaged at random (bytes replaced, removed or inserted) read as serde_json
        /// alone reads them.
        #[test]
        fn both_readers_agree_on_damaged_lines(
            sample in 0..SAMPLES.len(),
            edits in proptest::collection::vec(
                (0.0..1.0f64, 0u8..3, proptest::sample::select(
                    b"{}[]\",:\\u0123456789abcdefEe.+-tfnrl xX\x00\x1f\x7f\xc3\xa9\xff".to_vec()
                )),
                1..4,
            ),
        ) {
            let mut line = SAMPLES[sample].as_bytes().to_vec();
            for (at, op, byte) in edits {
                let i = ((line.len() as f64) * at) as usize;
                match op {
                    0 if i < line.len() => line[i] = byte,
                    1 if i < line.len() => {
                        line.remove(i);
                    }
                    _ => line.insert(i.min(line.len()), byte),
                }
            }
            if let Err(e) = both_readers_agree(&line) {
                proptest::prop_assert!(false, "{}", e);
            }
        }
    }
}
