//! GitHub's issue search, as far as counting pull requests needs it: `is:pr` (or `type:pr`,
//! required: the simulated issues carry no update times), `repo:`, `org:`/`user:`,
//! `is:open`/`is:closed`/`is:merged` and `updated:` (`>=`, `>`, `<=`, `<`, a range `A..B`, or
//! one day), over the simulated organization. Anything else (free text, other qualifiers) is
//! refused with an error rather than guessed at, so a test notices a query the simulator
//! cannot answer.

use crate::model::{PrState, World};
use chrono::{DateTime, NaiveDate, Utc};

/// What a search query asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IssueSearch {
    /// `repo:OWNER/NAME` qualifiers (any of them matches).
    pub repos: Vec<(String, String)>,
    /// `org:` or `user:`.
    pub owner: Option<String>,
    /// `is:open`, `is:closed` or `is:merged`.
    pub state: Option<String>,
    /// Inclusive lower and exclusive upper bound of `updatedAt`.
    pub updated_from: Option<DateTime<Utc>>,
    pub updated_before: Option<DateTime<Utc>>,
}

/// A search date: `YYYY-MM-DD` (midnight UTC) or RFC 3339 (`2026-05-25T09:16:00+00:00`).
/// Returns the instant and whether it was a whole day.
fn parse_when(s: &str) -> Result<(DateTime<Utc>, bool), String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok((t.with_timezone(&Utc), false));
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        if let Some(t) = d.and_hms_opt(0, 0, 0) {
            return Ok((t.and_utc(), true));
        }
    }
    Err(format!("the simulator cannot read the search date {s:?}"))
}

/// The end of what `s` names, exclusive: the next day for a date, the next second otherwise.
fn after(s: &str) -> Result<DateTime<Utc>, String> {
    let (t, day) = parse_when(s)?;
    Ok(if day {
        t + chrono::Duration::days(1)
    } else {
        t + chrono::Duration::seconds(1)
    })
}

/// Parses a search query.
pub fn parse(query: &str) -> Result<IssueSearch, String> {
    let mut q = IssueSearch::default();
    let mut pull_requests = false;
    for term in query.split_whitespace() {
        let Some((key, value)) = term.split_once(':') else {
            return Err(format!(
                "the simulator's search takes only qualifiers, not the text {term:?}"
            ));
        };
        match (key.to_ascii_lowercase().as_str(), value) {
            ("repo", v) => {
                let (owner, name) = v
                    .split_once('/')
                    .ok_or_else(|| format!("repo:{v} is not OWNER/NAME"))?;
                q.repos.push((owner.to_string(), name.to_string()));
            }
            ("org" | "user", v) => q.owner = Some(v.to_string()),
            ("is" | "type", "pr") => pull_requests = true,
            ("is", s @ ("open" | "closed" | "merged")) => q.state = Some(s.to_string()),
            ("updated", v) => {
                if let Some((a, b)) = v.split_once("..") {
                    q.updated_from = Some(parse_when(a)?.0);
                    q.updated_before = Some(after(b)?);
                } else if let Some(t) = v.strip_prefix(">=") {
                    q.updated_from = Some(parse_when(t)?.0);
                } else if let Some(t) = v.strip_prefix('>') {
                    q.updated_from = Some(after(t)?);
                } else if let Some(t) = v.strip_prefix("<=") {
                    q.updated_before = Some(after(t)?);
                } else if let Some(t) = v.strip_prefix('<') {
                    q.updated_before = Some(parse_when(t)?.0);
                } else {
                    q.updated_from = Some(parse_when(v)?.0);
                    q.updated_before = Some(after(v)?);
                }
            }
            _ => return Err(format!("the simulator's search does not know {term:?}")),
        }
    }
    if !pull_requests {
        return Err("the simulator's search counts pull requests only: add is:pr".into());
    }
    Ok(q)
}

impl IssueSearch {
    fn updated(&self, t: DateTime<Utc>) -> bool {
        self.updated_from.is_none_or(|f| t >= f) && self.updated_before.is_none_or(|b| t < b)
    }

    /// How many pull requests of `world` match: GitHub's `issueCount`. Repositories
    /// are found by name or former name, as `repo:` does on GitHub.
    pub fn count(&self, world: &World) -> u64 {
        if self
            .owner
            .as_ref()
            .is_some_and(|o| !o.eq_ignore_ascii_case(&world.org.login))
        {
            return 0;
        }
        let repos: Vec<usize> = if self.repos.is_empty() {
            (0..world.repositories.len()).collect()
        } else {
            let mut v: Vec<usize> = self
                .repos
                .iter()
                .filter(|(owner, _)| owner.eq_ignore_ascii_case(&world.org.login))
                .filter_map(|(_, name)| world.repository(name).map(|(i, _)| i))
                .collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        let mut n = 0u64;
        for ri in repos {
            let r = &world.repositories[ri];
            n += r
                .pull_requests
                .iter()
                .filter(|p| self.updated(p.updated_at))
                .filter(|p| match self.state.as_deref() {
                    Some("open") => p.state == PrState::Open,
                    Some("closed") => p.state != PrState::Open,
                    Some("merged") => p.state == PrState::Merged,
                    _ => true,
                })
                .count() as u64;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn qualifiers_parse_and_unknown_terms_are_refused() {
        let q = parse("repo:acme/web is:pr updated:>=2026-05-25T09:16:00+00:00").unwrap();
        assert_eq!(q.repos, [("acme".to_string(), "web".to_string())]);
        assert_eq!(
            q.updated_from,
            Some(Utc.with_ymd_and_hms(2026, 5, 25, 9, 16, 0).unwrap())
        );
        let day = parse("is:pr updated:2026-01-31").unwrap();
        assert_eq!(
            (day.updated_from, day.updated_before),
            (
                Some(Utc.with_ymd_and_hms(2026, 1, 31, 0, 0, 0).unwrap()),
                Some(Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap())
            )
        );
        for bad in [
            "is:pr fix the bug",
            "is:pr label:bug",
            "is:pr updated:>=yesterday",
            "is:pr repo:web",
            "repo:acme/web",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
