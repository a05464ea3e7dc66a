//! Planning a crawl from counts: `created:` ranges of at most [`SEARCH_CAP`] repositories each,
//! in creation order from `--created-from`, until they hold the target.
//!
//! Creation times are bursty (an owner making hundreds of repositories in minutes, days with
//! thousands), so ranges are not halved blindly: a range over the cap is cut into many pieces
//! at once (about one per 250 repositories it holds), every piece is counted (one aliased query
//! counts 100 pieces for 1 point), pieces still over the cap are cut again, and neighbours are
//! then merged back into ranges as close to the cap as their counts allow. A single second over
//! the cap is cut by star counts; one that cannot be cut further is kept and reported, never
//! silently taken short.

use super::search::{Range, SEARCH_CAP};
use async_trait::async_trait;
use chrono::{DateTime, Datelike, Duration, TimeZone, Utc};
use serde::{Deserialize, Serialize};

/// Counts the repositories of ranges (the GraphQL count probe, or a fake in tests).
#[async_trait]
pub trait Counter: Send {
    /// The count of each range, in order.
    async fn count(&mut self, ranges: &[Range]) -> anyhow::Result<Vec<u64>>;
}

/// One range of the plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Planned {
    pub range: Range,
    /// Repositories it held when counted.
    pub count: u64,
    /// Take at most this many (the last range, where the target falls inside it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
}

/// Pieces per repository counted when a range is cut: one per this many.
const PIECE: u64 = 250;
/// The most pieces one range is cut into at once.
const MAX_PIECES: u64 = 400;

/// The year ranges from `from` to `to` (both included): the first count.
fn years(from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Range> {
    let mut out = Vec::new();
    let mut start = from;
    while start <= to {
        let next_year = Utc
            .with_ymd_and_hms(start.year() + 1, 1, 1, 0, 0, 0)
            .single()
            .unwrap_or(to + Duration::seconds(1));
        let end = (next_year - Duration::seconds(1)).min(to);
        out.push(Range {
            from: start,
            to: end,
            stars: None,
        });
        start = end + Duration::seconds(1);
    }
    out
}

/// Keeps the ranges, in order, up to and including the one where the running count reaches
/// `target`.
fn through_target(list: &mut Vec<(Range, u64)>, target: u64) {
    let mut sum = 0u64;
    for (i, (_, c)) in list.iter().enumerate() {
        sum = sum.saturating_add(*c);
        if sum >= target {
            list.truncate(i + 1);
            return;
        }
    }
}

/// Plans the ranges for `target` repositories created from `from` to `to`, counting with
/// `counter`. The plan is in creation order; its counts add up to at least `target` unless
/// the search holds fewer. Ranges over [`SEARCH_CAP`] that cannot be cut are in the plan with
/// their count (the crawl takes the first 1,000 and reports the rest).
pub async fn plan(
    counter: &mut dyn Counter,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    target: u64,
) -> anyhow::Result<Vec<Planned>> {
    let first = years(from, to);
    let counts = counter.count(&first).await?;
    let mut list: Vec<(Range, u64)> = first.into_iter().zip(counts).collect();
    loop {
        through_target(&mut list, target);
        // Every range over the cap that can be cut, cut into pieces counted together.
        let mut pieces: Vec<(usize, Vec<Range>)> = Vec::new();
        for (i, (r, c)) in list.iter().enumerate() {
            if *c > SEARCH_CAP {
                let k = c.div_ceil(PIECE).clamp(2, MAX_PIECES);
                if let Some(p) = r.split(k) {
                    pieces.push((i, p));
                }
            }
        }
        if pieces.is_empty() {
            break;
        }
        let flat: Vec<Range> = pieces.iter().flat_map(|(_, p)| p.iter().cloned()).collect();
        let counts = counter.count(&flat).await?;
        let mut counts = counts.into_iter();
        let mut next: Vec<(Range, u64)> = Vec::with_capacity(list.len() + flat.len());
        let mut cut = pieces.into_iter().peekable();
        for (i, item) in list.into_iter().enumerate() {
            match cut.peek() {
                Some((j, _)) if *j == i => {
                    let (_, p) = cut.next().unwrap_or_default();
                    for r in p {
                        next.push((r, counts.next().unwrap_or(0)));
                    }
                }
                _ => next.push(item),
            }
        }
        list = next;
    }
    Ok(finish(list, target))
}

/// Merges neighbours into ranges of at most [`SEARCH_CAP`] and sets the last range's limit.
fn finish(list: Vec<(Range, u64)>, target: u64) -> Vec<Planned> {
    let mut merged = merge(list);
    let mut sum = 0u64;
    for p in &mut merged {
        let before = sum;
        sum += p.count;
        if sum > target {
            p.limit = Some(target.saturating_sub(before));
        }
    }
    merged
}

/// Contiguous counted ranges, in order, merged with their neighbours into ranges of at most
/// [`SEARCH_CAP`] (star-bounded ranges stay apart); ranges that hold nothing are left out.
pub fn merge(list: Vec<(Range, u64)>) -> Vec<Planned> {
    let mut merged: Vec<Planned> = Vec::new();
    for (r, c) in list {
        if let Some(last) = merged.last_mut() {
            let joinable = last.range.stars.is_none() && r.stars.is_none();
            if joinable && last.count + c <= SEARCH_CAP {
                last.range = last.range.through(&r);
                last.count += c;
                continue;
            }
        }
        merged.push(Planned {
            range: r,
            count: c,
            limit: None,
        });
    }
    // Ranges that hold nothing are not asked for.
    merged.retain(|p| p.count > 0);
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake search over creation times, counting how many ranges it was asked for.
    struct Fake {
        times: Vec<DateTime<Utc>>,
        asked: usize,
    }

    #[async_trait]
    impl Counter for Fake {
        async fn count(&mut self, ranges: &[Range]) -> anyhow::Result<Vec<u64>> {
            self.asked += ranges.len();
            Ok(ranges
                .iter()
                .map(|r| {
                    let lo = self.times.partition_point(|t| *t < r.from);
                    // `to` names its whole second, as GitHub reads it.
                    let hi = self
                        .times
                        .partition_point(|t| *t < r.to + Duration::seconds(1));
                    match r.stars {
                        // The fake gives every repository 0 stars.
                        Some((lo_s, _)) if lo_s > 0 => 0,
                        _ => (hi - lo) as u64,
                    }
                })
                .collect())
        }
    }

    fn bursty() -> Vec<DateTime<Utc>> {
        let mut t = Vec::new();
        let start = Utc.with_ymd_and_hms(2010, 1, 1, 0, 0, 0).unwrap();
        // A steady trickle: one repository every 20 minutes for 8 years.
        let mut at = start;
        while at < start + Duration::days(365 * 8) {
            t.push(at);
            at += Duration::minutes(20);
        }
        // A burst: 3,000 repositories within 10 minutes, and 1,500 within one second.
        let burst = Utc.with_ymd_and_hms(2013, 6, 1, 12, 0, 0).unwrap();
        for i in 0..3000 {
            t.push(burst + Duration::milliseconds(i * 200));
        }
        let second = Utc.with_ymd_and_hms(2014, 2, 2, 2, 2, 2).unwrap();
        for _ in 0..1500 {
            t.push(second);
        }
        t.sort();
        t
    }

    #[tokio::test]
    async fn the_plan_covers_the_target_in_ranges_under_the_cap_from_counts() {
        let times = bursty();
        let mut fake = Fake {
            times: times.clone(),
            asked: 0,
        };
        let from = Utc.with_ymd_and_hms(2008, 1, 1, 0, 0, 0).unwrap();
        let to = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let target = 150_000;
        let plan = plan(&mut fake, from, to, target).await.unwrap();
        // Contiguous, in order, each within the cap except the one second that cannot be cut
        // (every repository of it has the same star count).
        for w in plan.windows(2) {
            assert!(w[0].range.to < w[1].range.from);
        }
        let over: Vec<_> = plan.iter().filter(|p| p.count > SEARCH_CAP).collect();
        assert_eq!(over.len(), 1, "{over:?}");
        assert_eq!(over[0].range.seconds(), 1);
        assert_eq!(over[0].count, 1500);
        // The counts add up to the target exactly once limits are applied.
        let taken: u64 = plan.iter().map(|p| p.limit.unwrap_or(p.count)).sum();
        assert_eq!(taken, target);
        // Every repository before the last range is inside some range.
        let last = plan.last().unwrap();
        let covered = times.iter().filter(|t| **t < last.range.from).count() as u64;
        let counted: u64 = plan[..plan.len() - 1].iter().map(|p| p.count).sum();
        assert_eq!(covered, counted);
        // Ranges are close to the cap: pages needed within 15% of the floor.
        let pages: u64 = plan
            .iter()
            .map(|p| p.limit.unwrap_or(p.count).min(SEARCH_CAP).div_ceil(100))
            .sum();
        let floor = target.div_ceil(100);
        assert!(pages <= floor * 115 / 100, "{pages} pages for {floor}");
        // Counting is cheap: ranges counted stay within a few per thousand repositories.
        assert!(fake.asked < 1200, "{} ranges counted", fake.asked);
    }

    #[tokio::test]
    async fn a_search_smaller_than_the_target_is_planned_whole() {
        let times: Vec<_> = (0..2500)
            .map(|i| Utc.with_ymd_and_hms(2020, 1, 1, 0, 0, 0).unwrap() + Duration::hours(i))
            .collect();
        let mut fake = Fake { times, asked: 0 };
        let from = Utc.with_ymd_and_hms(2008, 1, 1, 0, 0, 0).unwrap();
        let to = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let plan = plan(&mut fake, from, to, 100_000).await.unwrap();
        assert_eq!(plan.iter().map(|p| p.count).sum::<u64>(), 2500);
        assert!(plan
            .iter()
            .all(|p| p.limit.is_none() && p.count <= SEARCH_CAP));
    }
}
