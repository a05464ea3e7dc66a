//! GitHub's repository search, as the stars crawl uses it: `created:` ranges written as search
//! qualifiers, the aliased GraphQL queries that count ranges or fetch a page of several ranges
//! at once (`graphql/stars_count.graphql`, `graphql/stars_search.graphql`), and REST
//! `GET /search/repositories` pages. Answers become [`RepoStar`] rows.

use super::RepoStar;
use crate::github::client::GithubClient;
use crate::github::error::GithubError;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::fmt::Write;

/// The counting query, one range: the form [`count_query`] repeats.
pub const STARS_COUNT: &str = include_str!("../../graphql/stars_count.graphql");
/// The page query, one range: the form [`page_query`] repeats.
pub const STARS_SEARCH: &str = include_str!("../../graphql/stars_search.graphql");

/// The most results one search returns, however it is paged ("Search", GitHub's REST docs:
/// "the GitHub Search API provides up to 1,000 results for each search").
pub const SEARCH_CAP: u64 = 1000;

/// A slice of the search: repositories created from `from` to `to`, both included, at
/// one-second precision; when one second holds more than [`SEARCH_CAP`], also a star range.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Range {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Inclusive star bounds `(min, max)`, `max` open when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stars: Option<(u64, Option<u64>)>,
}

fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

impl Range {
    /// The range's qualifiers: `created:2015-03-01T00:00:00Z..2015-03-01T05:59:59Z`, and
    /// `stars:A..B` (or `stars:>=A`) when it has star bounds. GitHub reads `created:` bounds
    /// with a time as given, both ends included ("Understanding the search syntax": query
    /// for dates, `YYYY-MM-DDTHH:MM:SS+00:00`, and ranges `n..n`).
    pub fn qualifiers(&self) -> String {
        let mut q = format!("created:{}..{}", stamp(self.from), stamp(self.to));
        match self.stars {
            Some((lo, Some(hi))) => {
                let _ = write!(q, " stars:{lo}..{hi}");
            }
            Some((lo, None)) => {
                let _ = write!(q, " stars:>={lo}");
            }
            None => {}
        }
        q
    }

    /// The whole search text: the user's `query` and this range.
    pub fn search(&self, query: &str) -> String {
        let query = query.trim();
        if query.is_empty() {
            self.qualifiers()
        } else {
            format!("{query} {}", self.qualifiers())
        }
    }

    /// Seconds the range spans (1 for a single second).
    pub fn seconds(&self) -> i64 {
        (self.to - self.from).num_seconds() + 1
    }

    /// `k` contiguous ranges covering this one, split by creation time into spans as equal
    /// as seconds allow (fewer when it spans fewer seconds). A single second is split by
    /// stars instead ([`Range::split_by_stars`]); `None` when neither can split it further.
    pub fn split(&self, k: u64) -> Option<Vec<Range>> {
        let secs = self.seconds();
        if secs <= 1 {
            return self.split_by_stars();
        }
        let k = i64::try_from(k).unwrap_or(i64::MAX).clamp(2, secs);
        let mut out = Vec::with_capacity(k as usize);
        let mut from = self.from;
        for i in 1..=k {
            // Piece i ends before the start of piece i+1: from + floor(secs * i / k).
            let end = if i == k {
                self.to
            } else {
                let offset = i128::from(secs) * i128::from(i) / i128::from(k);
                self.from + Duration::seconds(offset as i64) - Duration::seconds(1)
            };
            if end >= from {
                out.push(Range {
                    from,
                    to: end,
                    stars: self.stars,
                });
                from = end + Duration::seconds(1);
            }
        }
        Some(out)
    }

    /// A single second's repositories split by star count: 0, 1, 2–3, 4–7, … doubling, the
    /// last open. A range already bounded by stars splits its bounds in two. `None` when it
    /// holds one star count only.
    pub fn split_by_stars(&self) -> Option<Vec<Range>> {
        let piece = |lo, hi| Range {
            from: self.from,
            to: self.to,
            stars: Some((lo, hi)),
        };
        match self.stars {
            None => {
                let mut out = vec![piece(0, Some(0))];
                let mut lo = 1u64;
                while lo < 1 << 20 {
                    out.push(piece(lo, Some(lo * 2 - 1)));
                    lo *= 2;
                }
                out.push(piece(lo, None));
                Some(out)
            }
            Some((lo, Some(hi))) if hi > lo => {
                let mid = lo + (hi - lo) / 2;
                Some(vec![piece(lo, Some(mid)), piece(mid + 1, Some(hi))])
            }
            Some((lo, None)) => Some(vec![
                piece(lo, Some(lo.saturating_mul(2).max(lo + 1))),
                piece(lo.saturating_mul(2).max(lo + 1) + 1, None),
            ]),
            Some(_) => None,
        }
    }

    /// The range from `self.from` to `last.to`: adjacent ranges merged.
    pub fn through(&self, last: &Range) -> Range {
        Range {
            from: self.from,
            to: last.to,
            stars: self.stars,
        }
    }
}

/// The selection `r0` of a query file, from its `  r0:` line to the query's closing brace.
fn alias_block(file: &str) -> &str {
    let start = file.find("  r0:").unwrap_or(0);
    let end = file.rfind('}').unwrap_or(file.len());
    &file[start..end]
}

fn header(file: &str) -> String {
    file.lines()
        .filter(|l| !l.starts_with('#'))
        .take_while(|l| !l.starts_with("  r0:"))
        .skip(1)
        .map(|l| format!("{l}\n"))
        .collect()
}

/// The file's alias block, variables and declaration repeated for `n` aliases.
fn repeated(file: &str, name: &str, vars: &[(&str, &str)], n: usize) -> String {
    let decls: Vec<String> = (0..n)
        .flat_map(|i| vars.iter().map(move |(v, ty)| format!("${v}{i}: {ty}")))
        .collect();
    let mut q = format!("query {name}({}) {{\n", decls.join(", "));
    q.push_str(&header(file));
    let block = alias_block(file);
    for i in 0..n {
        let mut b = block.replacen("  r0:", &format!("  r{i}:"), 1);
        for (v, _) in vars {
            b = b.replace(&format!("${v}0"), &format!("${v}{i}"));
        }
        q.push_str(&b);
    }
    q.push_str("}\n");
    q
}

/// The counting query for `n` ranges: [`STARS_COUNT`]'s selection repeated with aliases
/// `r0..r{n-1}` and variables `$q0..$q{n-1}`. Costs 1 point for up to 100 ranges.
pub fn count_query(n: usize) -> String {
    repeated(STARS_COUNT, "StarsCount", &[("q", "String!")], n)
}

/// The page query for `n` ranges: [`STARS_SEARCH`]'s selection repeated with aliases
/// `r0..r{n-1}` and variables `$q{i}`, `$first{i}`, `$after{i}`.
pub fn page_query(n: usize) -> String {
    repeated(
        STARS_SEARCH,
        "StarsSearch",
        &[("q", "String!"), ("first", "Int!"), ("after", "String")],
        n,
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CountAnswer {
    repository_count: u64,
}

/// Counts the repositories of each search in `searches` with one aliased query. `Overloaded`
/// (a 502 or timeout) comes back at once, to ask again with fewer.
pub async fn count(client: &GithubClient, searches: &[String]) -> Result<Vec<u64>, GithubError> {
    let mut vars = serde_json::Map::new();
    for (i, s) in searches.iter().enumerate() {
        vars.insert(format!("q{i}"), serde_json::Value::String(s.clone()));
    }
    let data: serde_json::Map<String, serde_json::Value> = client
        .graphql(
            &count_query(searches.len()),
            serde_json::Value::Object(vars),
            true,
        )
        .await?;
    (0..searches.len())
        .map(|i| {
            let a = data.get(&format!("r{i}")).cloned().unwrap_or_default();
            serde_json::from_value::<CountAnswer>(a)
                .map(|c| c.repository_count)
                .map_err(|e| unexpected(format!("r{i}: {e}")))
        })
        .collect()
}

fn unexpected(message: String) -> GithubError {
    GithubError::Fatal {
        status: 200,
        message: format!("unexpected search answer: {message}"),
        request_id: None,
    }
}

/// One page of one range asked for in an aliased query.
#[derive(Clone, Debug)]
pub struct PageAsk {
    pub search: String,
    /// 1..=100.
    pub first: u32,
    pub after: Option<String>,
}

/// One range's page of a query.
#[derive(Clone, Debug)]
pub struct PageAnswer {
    /// Repositories the search matches now, not capped at [`SEARCH_CAP`].
    pub repository_count: u64,
    pub has_next_page: bool,
    pub end_cursor: Option<String>,
    pub repos: Vec<RepoStar>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageInfo {
    has_next_page: bool,
    end_cursor: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawPage {
    repository_count: u64,
    page_info: PageInfo,
    #[serde(default)]
    nodes: Vec<Option<serde_json::Value>>,
}

#[derive(Deserialize)]
struct Login {
    login: String,
}

#[derive(Deserialize)]
struct LanguageName {
    name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GraphqlRepo {
    database_id: i64,
    id: String,
    name_with_owner: String,
    owner: Login,
    stargazer_count: i64,
    fork_count: i64,
    primary_language: Option<LanguageName>,
    created_at: DateTime<Utc>,
    pushed_at: Option<DateTime<Utc>>,
    is_fork: bool,
    is_archived: bool,
}

/// Fetches one page of each of `asks` in one aliased query, answered at `observed_at`.
/// `Overloaded` comes back at once, to ask again with fewer ranges.
pub async fn pages(
    client: &GithubClient,
    asks: &[PageAsk],
    crawl_id: &str,
) -> Result<Vec<PageAnswer>, GithubError> {
    let mut vars = serde_json::Map::new();
    for (i, a) in asks.iter().enumerate() {
        vars.insert(format!("q{i}"), a.search.clone().into());
        vars.insert(format!("first{i}"), a.first.into());
        vars.insert(
            format!("after{i}"),
            a.after
                .clone()
                .map(serde_json::Value::String)
                .unwrap_or_default(),
        );
    }
    let data: serde_json::Map<String, serde_json::Value> = client
        .graphql(
            &page_query(asks.len()),
            serde_json::Value::Object(vars),
            true,
        )
        .await?;
    let observed_at = Utc::now();
    (0..asks.len())
        .map(|i| {
            let raw: RawPage = data
                .get(&format!("r{i}"))
                .cloned()
                .map(serde_json::from_value)
                .transpose()
                .map_err(|e| unexpected(format!("r{i}: {e}")))?
                .ok_or_else(|| unexpected(format!("r{i} is missing")))?;
            let mut repos = Vec::with_capacity(raw.nodes.len());
            for node in raw.nodes.into_iter().flatten() {
                // A search hit that is not a repository (none are expected) selects nothing.
                if node.as_object().is_some_and(|o| o.is_empty()) {
                    continue;
                }
                let r: GraphqlRepo = serde_json::from_value(node)
                    .map_err(|e| unexpected(format!("r{i}: a repository: {e}")))?;
                repos.push(RepoStar {
                    repo_id: r.database_id,
                    node_id: r.id,
                    name_with_owner: r.name_with_owner,
                    owner_login: r.owner.login,
                    stargazer_count: r.stargazer_count,
                    fork_count: r.fork_count,
                    primary_language: r.primary_language.map(|l| l.name),
                    created_at: r.created_at,
                    pushed_at: r.pushed_at,
                    is_fork: r.is_fork,
                    is_archived: r.is_archived,
                    observed_at,
                    crawl_id: crawl_id.to_string(),
                });
            }
            Ok(PageAnswer {
                repository_count: raw.repository_count,
                has_next_page: raw.page_info.has_next_page,
                end_cursor: raw.page_info.end_cursor,
                repos,
            })
        })
        .collect()
}

#[derive(Deserialize)]
struct RestOwner {
    login: String,
}

#[derive(Deserialize)]
struct RestRepo {
    id: i64,
    node_id: String,
    full_name: String,
    owner: RestOwner,
    stargazers_count: i64,
    forks_count: i64,
    language: Option<String>,
    created_at: DateTime<Utc>,
    pushed_at: Option<DateTime<Utc>>,
    fork: bool,
    archived: bool,
}

#[derive(Deserialize)]
struct RestAnswer {
    total_count: u64,
    #[serde(default)]
    incomplete_results: bool,
    items: Vec<RestRepo>,
}

/// `search/repositories?q=…&per_page=N&page=P`, the search text form-encoded.
fn rest_path(search: &str, per_page: u32, page: u32) -> String {
    let q: String = url::form_urlencoded::byte_serialize(search.as_bytes()).collect();
    format!("search/repositories?q={q}&per_page={per_page}&page={page}")
}

/// One REST search page: `GET /search/repositories?q=…&per_page=100&page=N` (1-based).
/// `incomplete_results` (GitHub's search timed out) comes back as `Overloaded`, so the page
/// is asked again rather than taken short.
pub async fn rest_page(
    client: &GithubClient,
    search: &str,
    page: u32,
    crawl_id: &str,
) -> Result<PageAnswer, GithubError> {
    let a: RestAnswer = client.rest_search(&rest_path(search, 100, page)).await?;
    if a.incomplete_results {
        return Err(GithubError::Overloaded(
            "REST search answered incomplete_results: true".into(),
        ));
    }
    let observed_at = Utc::now();
    let reachable = a.total_count.min(SEARCH_CAP);
    let repos: Vec<RepoStar> = a
        .items
        .into_iter()
        .map(|r| RepoStar {
            repo_id: r.id,
            node_id: r.node_id,
            name_with_owner: r.full_name,
            owner_login: r.owner.login,
            stargazer_count: r.stargazers_count,
            fork_count: r.forks_count,
            primary_language: r.language,
            created_at: r.created_at,
            pushed_at: r.pushed_at,
            is_fork: r.fork,
            is_archived: r.archived,
            observed_at,
            crawl_id: crawl_id.to_string(),
        })
        .collect();
    Ok(PageAnswer {
        repository_count: a.total_count,
        has_next_page: u64::from(page) * 100 < reachable && !repos.is_empty(),
        end_cursor: None,
        repos,
    })
}

/// How many repositories a search holds, by one REST search request (`per_page=1`): the
/// count when GraphQL points are spent.
pub async fn rest_count(client: &GithubClient, search: &str) -> Result<u64, GithubError> {
    #[derive(Deserialize)]
    struct Count {
        total_count: u64,
    }
    let c: Count = client.rest_search(&rest_path(search, 1, 1)).await?;
    Ok(c.total_count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn file_form(file: &str) -> String {
        file.lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| format!("{l}\n"))
            .collect()
    }

    #[test]
    fn the_one_range_queries_are_the_checked_files() {
        assert_eq!(count_query(1), file_form(STARS_COUNT));
        assert_eq!(page_query(1), file_form(STARS_SEARCH));
        let three = page_query(3);
        assert!(three.starts_with(
            "query StarsSearch($q0: String!, $first0: Int!, $after0: String, $q1: String!, $first1: Int!, $after1: String, $q2: String!"
        ));
        assert!(three.contains(
            "  r2: search(query: $q2, type: REPOSITORY, first: $first2, after: $after2) {"
        ));
        assert_eq!(three.matches("rateLimit").count(), 1);
        assert_eq!(count_query(100).matches("repositoryCount").count(), 100);
    }

    fn at(y: i32, m: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, mi, s).unwrap()
    }

    #[test]
    fn a_range_is_written_as_github_reads_it() {
        let r = Range {
            from: at(2015, 3, 1, 0, 0, 0),
            to: at(2015, 3, 1, 5, 59, 59),
            stars: None,
        };
        assert_eq!(
            r.search("is:public"),
            "is:public created:2015-03-01T00:00:00Z..2015-03-01T05:59:59Z"
        );
        let s = Range {
            stars: Some((4, Some(7))),
            ..r.clone()
        };
        assert!(s.qualifiers().ends_with(" stars:4..7"));
        let open = Range {
            stars: Some((1024, None)),
            ..r
        };
        assert!(open.qualifiers().ends_with(" stars:>=1024"));
    }

    #[test]
    fn splits_cover_the_range_without_gaps_or_overlaps() {
        let r = Range {
            from: at(2020, 1, 1, 0, 0, 0),
            to: at(2020, 12, 31, 23, 59, 59),
            stars: None,
        };
        for k in [2, 3, 7, 100, 1000] {
            let parts = r.split(k).unwrap();
            assert_eq!(parts.len() as u64, k);
            assert_eq!(parts[0].from, r.from);
            assert_eq!(parts.last().unwrap().to, r.to);
            for w in parts.windows(2) {
                assert_eq!(w[0].to + Duration::seconds(1), w[1].from);
                assert!(w[0].from <= w[0].to);
            }
            let secs: i64 = parts.iter().map(Range::seconds).sum();
            assert_eq!(secs, r.seconds());
        }
        // Three seconds split into at most three.
        let short = Range {
            from: at(2020, 1, 1, 0, 0, 0),
            to: at(2020, 1, 1, 0, 0, 2),
            stars: None,
        };
        assert_eq!(short.split(10).unwrap().len(), 3);
        // One second splits by stars, into bounds that cover every count once.
        let one = Range {
            from: at(2020, 1, 1, 0, 0, 0),
            to: at(2020, 1, 1, 0, 0, 0),
            stars: None,
        };
        let by_stars = one.split(4).unwrap();
        assert_eq!(by_stars[0].stars, Some((0, Some(0))));
        let mut next = 0;
        for p in &by_stars {
            let (lo, hi) = p.stars.unwrap();
            assert_eq!(lo, next);
            next = hi.map_or(u64::MAX, |h| h + 1);
        }
        assert_eq!(next, u64::MAX);
        let single = Range {
            stars: Some((5, Some(5))),
            ..one
        };
        assert!(single.split(2).is_none());
    }
}
