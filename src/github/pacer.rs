//! Per-token budgets read from `x-ratelimit-*` headers and GraphQL's `rateLimit` object, and
//! the choice of which token sends the next request.

use chrono::{DateTime, TimeZone, Utc};
use reqwest::header::HeaderMap;
use std::sync::Mutex;

/// Which of GitHub's separate budgets a request draws on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resource {
    Rest,
    Graphql,
    /// REST search (`GET /search/...`): 30 requests per minute per token, a budget of its own
    /// (`x-ratelimit-resource: search`, "Rate limits for the REST API").
    Search,
}

/// What is known of one budget of one token.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Budget {
    pub limit: Option<u64>,
    pub remaining: Option<u64>,
    pub reset: Option<DateTime<Utc>>,
}

impl Budget {
    /// Remaining units for choosing a token: unknown counts as a full budget, and a budget
    /// whose reset has passed is full again.
    fn usable(&self, now: DateTime<Utc>) -> u64 {
        match (self.remaining, self.reset) {
            (Some(_), Some(reset)) if reset <= now => self.limit.unwrap_or(5000),
            (Some(r), _) => r,
            (None, _) => self.limit.unwrap_or(5000),
        }
    }
}

/// A malformed rate-limit header: reported, never a panic.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed {header} header: {value:?}")]
pub struct HeaderError {
    pub header: &'static str,
    pub value: String,
}

fn number(headers: &HeaderMap, name: &'static str) -> Result<Option<u64>, HeaderError> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => {
            let text = v.to_str().map_err(|_| HeaderError {
                header: name,
                value: String::from_utf8_lossy(v.as_bytes()).into_owned(),
            })?;
            text.trim()
                .parse::<u64>()
                .map(Some)
                .map_err(|_| HeaderError {
                    header: name,
                    value: text.to_string(),
                })
        }
    }
}

/// The budget `x-ratelimit-limit`, `-remaining` and `-reset` (epoch seconds) describe, and the
/// resource they name (`x-ratelimit-resource`), if any.
pub fn budget_from_headers(headers: &HeaderMap) -> Result<(Budget, Option<Resource>), HeaderError> {
    let limit = number(headers, "x-ratelimit-limit")?;
    let remaining = number(headers, "x-ratelimit-remaining")?;
    let reset = match number(headers, "x-ratelimit-reset")? {
        None => None,
        Some(secs) => Some(
            i64::try_from(secs)
                .ok()
                .and_then(|s| Utc.timestamp_opt(s, 0).single())
                .ok_or_else(|| HeaderError {
                    header: "x-ratelimit-reset",
                    value: secs.to_string(),
                })?,
        ),
    };
    let resource = headers
        .get("x-ratelimit-resource")
        .and_then(|v| v.to_str().ok())
        .map(|r| match r {
            "graphql" => Resource::Graphql,
            "search" => Resource::Search,
            _ => Resource::Rest,
        });
    Ok((
        Budget {
            limit,
            remaining,
            reset,
        },
        resource,
    ))
}

/// `retry-after` in seconds (GitHub sends whole seconds; an HTTP date is accepted too).
pub fn retry_after(headers: &HeaderMap) -> Result<Option<std::time::Duration>, HeaderError> {
    let Some(v) = headers.get("retry-after") else {
        return Ok(None);
    };
    let text = v.to_str().map_err(|_| HeaderError {
        header: "retry-after",
        value: String::from_utf8_lossy(v.as_bytes()).into_owned(),
    })?;
    if let Ok(secs) = text.trim().parse::<u64>() {
        return Ok(Some(std::time::Duration::from_secs(secs)));
    }
    match DateTime::parse_from_rfc2822(text.trim()) {
        Ok(at) => Ok(Some(
            (at.with_timezone(&Utc) - Utc::now())
                .to_std()
                .unwrap_or_default(),
        )),
        Err(_) => Err(HeaderError {
            header: "retry-after",
            value: text.to_string(),
        }),
    }
}

/// One token and what is known of its two budgets.
pub struct TokenSlot {
    pub index: usize,
    rest: Mutex<Budget>,
    graphql: Mutex<Budget>,
    search: Mutex<Budget>,
    /// A secondary limit holds the whole token, REST and GraphQL, until this time: no
    /// request of any task may use it before.
    paused_until: Mutex<Option<DateTime<Utc>>>,
}

impl TokenSlot {
    fn budget(&self, r: Resource) -> &Mutex<Budget> {
        match r {
            Resource::Rest => &self.rest,
            Resource::Graphql => &self.graphql,
            Resource::Search => &self.search,
        }
    }
}

/// The tokens of a run; work goes to the one with the most left of the budget it needs.
pub struct Pacer {
    slots: Vec<TokenSlot>,
}

/// What the pacer says about sending the next request.
#[derive(Debug, PartialEq, Eq)]
pub enum Pick {
    /// Send with the token at this index.
    Send(usize),
    /// Every token is spent; the earliest budget resets at this time.
    WaitUntil(DateTime<Utc>),
    /// A token with budget left is held by a secondary limit until this time, and no other
    /// token can send.
    Paused(DateTime<Utc>),
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Pacer {
    pub fn new(tokens: usize) -> Self {
        Pacer {
            slots: (0..tokens.max(1))
                .map(|index| TokenSlot {
                    index,
                    rest: Mutex::new(Budget::default()),
                    graphql: Mutex::new(Budget::default()),
                    search: Mutex::new(Budget::default()),
                    paused_until: Mutex::new(None),
                })
                .collect(),
        }
    }

    /// The token to send with: among those no secondary limit holds, the one with the most
    /// left; else how long to wait.
    pub fn pick(&self, r: Resource, now: DateTime<Utc>) -> Pick {
        let paused = |s: &TokenSlot| lock(&s.paused_until).filter(|until| *until > now);
        let best = self
            .slots
            .iter()
            .filter(|s| paused(s).is_none())
            .map(|s| (s.index, lock(s.budget(r)).usable(now)))
            .max_by_key(|(i, left)| (*left, std::cmp::Reverse(*i)));
        if let Some((i, left)) = best {
            if left > 0 {
                return Pick::Send(i);
            }
        }
        let held = self
            .slots
            .iter()
            .filter(|s| lock(s.budget(r)).usable(now) > 0)
            .filter_map(paused)
            .min();
        if let Some(until) = held {
            return Pick::Paused(until);
        }
        // Every token is spent: the first to come back is the earliest reset (or the end of a
        // secondary limit that outlasts its reset).
        let earliest = self
            .slots
            .iter()
            .filter_map(|s| {
                let reset = lock(s.budget(r)).reset?;
                Some(paused(s).map_or(reset, |until| until.max(reset)))
            })
            .min();
        Pick::WaitUntil(earliest.unwrap_or(now + chrono::Duration::seconds(60)))
    }

    /// Holds every request on `token` until `until` (a secondary limit's `retry-after`): the
    /// wait belongs to the token, not to the request that was refused.
    pub fn pause(&self, token: usize, until: DateTime<Utc>) {
        if let Some(slot) = self.slots.get(token) {
            let mut cur = lock(&slot.paused_until);
            if cur.is_none_or(|c| c < until) {
                *cur = Some(until);
            }
        }
    }

    /// Records what a response said of a token's budget.
    pub fn observe(&self, token: usize, r: Resource, b: Budget) {
        if let Some(slot) = self.slots.get(token) {
            let mut cur = lock(slot.budget(r));
            if b.limit.is_some() {
                cur.limit = b.limit;
            }
            if b.remaining.is_some() {
                cur.remaining = b.remaining;
            }
            if b.reset.is_some() {
                cur.reset = b.reset;
            }
        }
    }

    /// When a token's budget resets, if known.
    pub fn reset(&self, token: usize, r: Resource) -> Option<DateTime<Utc>> {
        self.slots.get(token).and_then(|s| lock(s.budget(r)).reset)
    }

    /// Marks a token's budget as spent until `reset`.
    pub fn exhaust(&self, token: usize, r: Resource, reset: DateTime<Utc>) {
        self.observe(
            token,
            r,
            Budget {
                limit: None,
                remaining: Some(0),
                reset: Some(reset),
            },
        );
    }

    /// The budget left across all tokens for a resource, where known.
    pub fn remaining(&self, r: Resource) -> Option<u64> {
        let known: Vec<u64> = self
            .slots
            .iter()
            .filter_map(|s| lock(s.budget(r)).remaining)
            .collect();
        (!known.is_empty()).then(|| known.iter().sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn reads_githubs_rate_limit_headers() {
        let (b, r) = budget_from_headers(&headers(&[
            ("x-ratelimit-limit", "5000"),
            ("x-ratelimit-remaining", "4321"),
            ("x-ratelimit-reset", "1700000000"),
            ("x-ratelimit-resource", "graphql"),
        ]))
        .unwrap();
        assert_eq!(b.limit, Some(5000));
        assert_eq!(b.remaining, Some(4321));
        assert_eq!(b.reset.unwrap().timestamp(), 1_700_000_000);
        assert_eq!(r, Some(Resource::Graphql));
    }

    #[test]
    fn malformed_headers_are_errors_not_panics() {
        let e = budget_from_headers(&headers(&[("x-ratelimit-remaining", "lots")])).unwrap_err();
        assert_eq!(e.header, "x-ratelimit-remaining");
        assert!(
            budget_from_headers(&headers(&[("x-ratelimit-reset", "99999999999999999999")]))
                .is_err()
        );
        assert!(retry_after(&headers(&[("retry-after", "soon")])).is_err());
    }

    #[test]
    fn retry_after_reads_seconds() {
        assert_eq!(
            retry_after(&headers(&[("retry-after", "7")])).unwrap(),
            Some(std::time::Duration::from_secs(7))
        );
        assert_eq!(retry_after(&HeaderMap::new()).unwrap(), None);
    }

    #[test]
    fn work_goes_to_the_token_with_most_left() {
        let p = Pacer::new(3);
        let now = Utc::now();
        let reset = now + chrono::Duration::minutes(30);
        p.observe(
            0,
            Resource::Graphql,
            Budget {
                limit: Some(5000),
                remaining: Some(100),
                reset: Some(reset),
            },
        );
        p.observe(
            1,
            Resource::Graphql,
            Budget {
                limit: Some(5000),
                remaining: Some(900),
                reset: Some(reset),
            },
        );
        p.observe(
            2,
            Resource::Graphql,
            Budget {
                limit: Some(5000),
                remaining: Some(10),
                reset: Some(reset),
            },
        );
        assert_eq!(p.pick(Resource::Graphql, now), Pick::Send(1));
        // REST budgets are separate: unknown counts as full, lowest index first.
        assert_eq!(p.pick(Resource::Rest, now), Pick::Send(0));
        assert_eq!(p.remaining(Resource::Graphql), Some(1010));
    }

    #[test]
    fn spent_tokens_wait_for_the_earliest_reset() {
        let p = Pacer::new(2);
        let now = Utc::now();
        let a = now + chrono::Duration::minutes(5);
        let b = now + chrono::Duration::minutes(2);
        p.exhaust(0, Resource::Rest, a);
        p.exhaust(1, Resource::Rest, b);
        assert_eq!(p.pick(Resource::Rest, now), Pick::WaitUntil(b));
        // Once a reset has passed the budget is full again.
        assert_eq!(
            p.pick(Resource::Rest, now + chrono::Duration::minutes(3)),
            Pick::Send(1)
        );
    }

    #[test]
    fn a_secondary_limit_holds_every_request_on_its_token() {
        let p = Pacer::new(2);
        let now = Utc::now();
        let until = now + chrono::Duration::seconds(3);
        p.pause(0, until);
        // REST and GraphQL alike go to the other token while the first is held.
        assert_eq!(p.pick(Resource::Rest, now), Pick::Send(1));
        assert_eq!(p.pick(Resource::Graphql, now), Pick::Send(1));
        // A shorter pause never shortens a longer one.
        p.pause(0, now + chrono::Duration::seconds(1));
        p.exhaust(1, Resource::Graphql, now + chrono::Duration::minutes(10));
        assert_eq!(p.pick(Resource::Graphql, now), Pick::Paused(until));
        assert_eq!(
            p.pick(Resource::Graphql, until + chrono::Duration::milliseconds(1)),
            Pick::Send(0)
        );
        // One token: everyone waits for the end of its pause.
        let single = Pacer::new(1);
        single.pause(0, until);
        assert_eq!(single.pick(Resource::Rest, now), Pick::Paused(until));
    }

    proptest! {
        #[test]
        fn any_header_value_parses_or_errors_without_panicking(v in "\\PC{0,24}") {
            if let Ok(value) = HeaderValue::from_str(&v) {
                let mut h = HeaderMap::new();
                h.insert("x-ratelimit-remaining", value.clone());
                h.insert("x-ratelimit-reset", value.clone());
                h.insert("retry-after", value);
                let _ = budget_from_headers(&h);
                let _ = retry_after(&h);
            }
        }
    }
}
