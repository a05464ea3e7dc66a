//! GitHub's search syntax. Repository search (see [`parse_repository_search`]) takes the
//! qualifiers a star-count crawler uses. Issue search, as far as counting pull requests needs it: `is:pr` (or `type:pr`,
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

/// A search date: `YYYY-MM-DD` (midnight UTC), RFC 3339 (`2026-05-25T09:16:00+00:00`,
/// `2026-05-25T09:16:00Z`) or a date-time without offset (UTC). Returns the instant and
/// whether it was a whole day.
fn parse_when(s: &str) -> Result<(DateTime<Utc>, bool), String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok((t.with_timezone(&Utc), false));
    }
    if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S") {
        return Ok((t.and_utc(), false));
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
            ("updated", v) => (q.updated_from, q.updated_before) = time_bounds(v)?,
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

/// Which forks a repository search includes (`fork:`): none by default, as on GitHub
/// ("Searching for repositories": forks are not shown unless `fork:true` or `fork:only`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ForkFilter {
    #[default]
    Exclude,
    Include,
    Only,
}

/// A repository search's order (`sort:`): GitHub sorts repositories by best match (the
/// default), stars, forks, help-wanted issues or updated time, never by creation time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RepoSort {
    /// A stable order unrelated to creation time.
    #[default]
    BestMatch,
    Stars {
        desc: bool,
    },
    Forks {
        desc: bool,
    },
    /// By `pushed_at`.
    Updated {
        desc: bool,
    },
}

/// What a repository search asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepoSearch {
    /// Inclusive lower and exclusive upper bound of `created_at`.
    pub created_from: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
    /// Inclusive bounds of the star count.
    pub stars_min: Option<u64>,
    pub stars_max: Option<u64>,
    pub forks: ForkFilter,
    /// False after `is:private`: the population is public, so nothing matches.
    pub public: bool,
    pub sort: RepoSort,
}

impl Default for RepoSearch {
    fn default() -> Self {
        RepoSearch {
            created_from: None,
            created_before: None,
            stars_min: None,
            stars_max: None,
            forks: ForkFilter::default(),
            public: true,
            sort: RepoSort::default(),
        }
    }
}

/// Inclusive lower and exclusive upper bound of a time, either open.
type TimeBounds = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// Bounds `[from, before)` of a `created:`/`updated:` value: `A..B` (inclusive at the
/// precision written, `*` for open), `>=A`, `>A`, `<=A`, `<A`, or one day or second.
fn time_bounds(v: &str) -> Result<TimeBounds, String> {
    Ok(if let Some((a, b)) = v.split_once("..") {
        let from = if a == "*" {
            None
        } else {
            Some(parse_when(a)?.0)
        };
        let before = if b == "*" { None } else { Some(after(b)?) };
        (from, before)
    } else if let Some(t) = v.strip_prefix(">=") {
        (Some(parse_when(t)?.0), None)
    } else if let Some(t) = v.strip_prefix('>') {
        (Some(after(t)?), None)
    } else if let Some(t) = v.strip_prefix("<=") {
        (None, Some(after(t)?))
    } else if let Some(t) = v.strip_prefix('<') {
        (None, Some(parse_when(t)?.0))
    } else {
        (Some(parse_when(v)?.0), Some(after(v)?))
    })
}

/// Inclusive bounds of a number qualifier (`stars:`): `A..B`, `A..*`, `*..B`, `>=A`, `>A`,
/// `<=A`, `<A` or `A`.
fn number_bounds(v: &str) -> Result<(Option<u64>, Option<u64>), String> {
    let num = |s: &str| {
        s.parse::<u64>()
            .map_err(|_| format!("the simulator cannot read the number {s:?}"))
    };
    Ok(if let Some((a, b)) = v.split_once("..") {
        let lo = if a == "*" { None } else { Some(num(a)?) };
        let hi = if b == "*" { None } else { Some(num(b)?) };
        (lo, hi)
    } else if let Some(n) = v.strip_prefix(">=") {
        (Some(num(n)?), None)
    } else if let Some(n) = v.strip_prefix('>') {
        (Some(num(n)?.saturating_add(1)), None)
    } else if let Some(n) = v.strip_prefix("<=") {
        (None, Some(num(n)?))
    } else if let Some(n) = v.strip_prefix('<') {
        let n = num(n)?;
        // `stars:<0` matches nothing: an empty inclusive range.
        match n.checked_sub(1) {
            Some(m) => (None, Some(m)),
            None => (Some(1), Some(0)),
        }
    } else {
        let n = num(v)?;
        (Some(n), Some(n))
    })
}

/// Parses a repository search query: `created:` (dates or date-times, ranges and
/// comparisons), `stars:`, `fork:true|false|only`, `is:public`/`is:private` and
/// `sort:stars|forks|updated[-asc|-desc]`. Free text and any other qualifier (`sort:created`
/// included: GitHub offers no such order) are refused with the reason, which the servers
/// answer as a GraphQL error or a REST 422.
pub fn parse_repository_search(query: &str) -> Result<RepoSearch, String> {
    let mut q = RepoSearch::default();
    for term in query.split_whitespace() {
        let Some((key, value)) = term.split_once(':') else {
            return Err(format!(
                "the simulator's search takes only qualifiers, not the text {term:?}"
            ));
        };
        match (
            key.to_ascii_lowercase().as_str(),
            value.to_ascii_lowercase().as_str(),
        ) {
            ("created", _) => (q.created_from, q.created_before) = time_bounds(value)?,
            ("stars", _) => (q.stars_min, q.stars_max) = number_bounds(value)?,
            ("is", "public") => {}
            ("is", "private") => q.public = false,
            ("fork", "true") => q.forks = ForkFilter::Include,
            ("fork", "false") => q.forks = ForkFilter::Exclude,
            ("fork", "only") => q.forks = ForkFilter::Only,
            ("sort", s) => {
                let (field, desc) = match s.rsplit_once('-') {
                    Some((f, "asc")) => (f, false),
                    Some((f, "desc")) => (f, true),
                    _ => (s, true),
                };
                q.sort = match field {
                    "stars" => RepoSort::Stars { desc },
                    "forks" => RepoSort::Forks { desc },
                    "updated" => RepoSort::Updated { desc },
                    _ => {
                        return Err(format!(
                            "repositories cannot be sorted by {field:?}: stars, forks or updated"
                        ))
                    }
                };
            }
            _ => return Err(format!("the simulator's search does not know {term:?}")),
        }
    }
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn repository_qualifiers_parse_and_unknown_ones_are_refused() {
        let t = |y, m, d, h| Some(Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap());
        let q =
            parse_repository_search("is:public created:2015-01-01..2015-01-02 stars:>=10").unwrap();
        assert_eq!(
            (q.created_from, q.created_before),
            (t(2015, 1, 1, 0), t(2015, 1, 3, 0))
        );
        assert_eq!((q.stars_min, q.stars_max), (Some(10), None));
        let q = parse_repository_search(
            "created:2015-01-01T00:00:00Z..2015-01-01T01:00:00Z stars:10..50 sort:stars-asc",
        )
        .unwrap();
        assert_eq!(q.created_from, t(2015, 1, 1, 0));
        assert_eq!(
            q.created_before,
            Some(Utc.with_ymd_and_hms(2015, 1, 1, 1, 0, 1).unwrap())
        );
        assert_eq!((q.stars_min, q.stars_max), (Some(10), Some(50)));
        assert_eq!(q.sort, RepoSort::Stars { desc: false });
        let q = parse_repository_search("created:<2015-01-01 sort:updated fork:true").unwrap();
        assert_eq!((q.created_from, q.created_before), (None, t(2015, 1, 1, 0)));
        assert_eq!(q.forks, ForkFilter::Include);
        let q = parse_repository_search("created:>=2015-01-01T05:00:00").unwrap();
        assert_eq!((q.created_from, q.created_before), (t(2015, 1, 1, 5), None));
        for bad in [
            "sort:created",
            "language:rust",
            "hello",
            "stars:many",
            "created:yesterday",
            "is:pr",
        ] {
            assert!(parse_repository_search(bad).is_err(), "{bad}");
        }
    }

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
