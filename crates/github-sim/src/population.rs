//! A synthetic population of public repositories (2 million by default) for repository
//! search: generated from a seed, held as a few columns of `u32` sorted by creation time
//! (creation second, owner, star count), with every other field derived on demand from
//! `(seed, index)`. Creation times grow year by year from 2008, as GitHub's repository count
//! did, and are bursty: some owners create hundreds of repositories within minutes, a few
//! create over a thousand within an hour, and some days hold thousands.

use crate::model::node_id;
use crate::search::{ForkFilter, RepoSearch, RepoSort};
use chrono::{DateTime, Datelike, Duration, TimeZone, Utc, Weekday};
use rand::seq::index::sample;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Most results a search serves, on GitHub too ("Only the first 1000 search results are
/// available", GitHub's REST search docs; GraphQL's `search` stops at the same place).
pub const SEARCH_CAP: usize = 1000;

/// The first database id; the repository at creation index `i` has id `FIRST_ID + i`, so ids
/// grow with creation time, as GitHub's do.
pub const FIRST_ID: u64 = 10_000;

/// Midnight UTC on 2008-01-01, the population's first second (Unix seconds).
const EPOCH: i64 = 1_199_145_600;

/// Days from 2008-01-01 to 2026-01-01: the population's creation times lie in them.
const DAYS: u32 = 6575;

/// What to generate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PopulationSpec {
    /// The same seed and size give the same population.
    pub seed: u64,
    /// Repositories, all public, forks included.
    pub size: u32,
}

impl Default for PopulationSpec {
    fn default() -> Self {
        PopulationSpec {
            seed: 1,
            size: 2_000_000,
        }
    }
}

/// One repository as search answers it: GitHub's GraphQL `Repository` fields and their REST
/// counterparts (`id`, `node_id`, `full_name`, `stargazers_count`, …).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicRepo {
    /// `databaseId` (REST `id`).
    pub database_id: u64,
    /// `id` (REST `node_id`).
    pub node_id: String,
    pub name: String,
    /// `OWNER/NAME` (REST `full_name`).
    pub name_with_owner: String,
    pub owner_login: String,
    pub owner_id: u64,
    pub stargazer_count: u64,
    pub fork_count: u64,
    /// `primaryLanguage { name }` (REST `language`); `None` for a repository without code.
    pub primary_language: Option<String>,
    pub created_at: DateTime<Utc>,
    /// At or after `created_at`, before 2026-01-01.
    pub pushed_at: DateTime<Utc>,
    pub is_fork: bool,
    pub is_archived: bool,
}

/// What `/_sim/change` with `"stars": true` did: each changed repository's id and counts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StarChangeReport {
    /// `(database_id, before, after)`, one per changed repository, `before != after`.
    pub changed: Vec<(u64, u64, u64)>,
}

/// The population: columns indexed by creation order (ties in the same second keep their
/// generated order).
pub struct Population {
    spec: PopulationSpec,
    /// Seconds since 2008-01-01T00:00:00Z, ascending.
    created: Vec<u32>,
    /// Owner number: below `BURST_OWNER_BASE` one of many ordinary users, above it the owner
    /// of one burst.
    owners: Vec<u32>,
    /// Star counts, changed by [`Population::change_stars`].
    stars: Vec<u32>,
}

const BURST_OWNER_BASE: u32 = 3_000_000_000;

const LANGUAGES: &[&str] = &[
    "JavaScript",
    "Python",
    "Java",
    "TypeScript",
    "Go",
    "C++",
    "Ruby",
    "PHP",
    "C#",
    "C",
    "Shell",
    "Rust",
    "Kotlin",
    "Swift",
    "HTML",
    "Jupyter Notebook",
];

const WORDS: &[&str] = &[
    "dotfiles", "api", "web", "cli", "app", "lib", "tools", "site", "bot", "demo", "notes", "game",
    "parser", "server", "client", "utils", "sdk", "docs", "blog", "config",
];

/// SplitMix64: a well-mixed 64-bit hash of one word.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn hash(seed: u64, salt: u64, index: u32) -> u64 {
    mix(mix(seed ^ salt.wrapping_mul(0x100_0000_01B3)) ^ u64::from(index))
}

/// A uniform draw in [0, 1) from a hash.
fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// Heavy-tailed star counts: P(stars >= k) = (k + 1)^-1.2, so most repositories have none and
/// a few thousand of 2 million have over a thousand, capped at 400,000.
fn initial_stars(seed: u64, index: u32) -> u32 {
    let u = unit(hash(seed, 1, index));
    let s = (1.0 - u).powf(-1.0 / 1.2) - 1.0;
    s.clamp(0.0, 400_000.0) as u32
}

/// A burst: one owner creating `size` repositories within `minutes` minutes of one day.
struct Burst {
    day: u32,
    size: u32,
    minutes: u32,
}

impl Population {
    /// Generates the population of `spec`: a few seconds for 2 million in a debug build.
    pub fn generate(spec: PopulationSpec) -> Population {
        let mut rng = ChaCha8Rng::seed_from_u64(spec.seed ^ 0x005E_A2C4);
        let size = spec.size;
        let scale = f64::from(size) / 2_000_000.0;
        // Bursts of tens to hundreds of repositories from one owner, more of them as GitHub
        // grows (one day in 500 in 2008, one in 5 from 2024), and a dozen owners who create
        // over a thousand within an hour, from 2014 on.
        let mut bursts: Vec<Burst> = Vec::new();
        for day in 0..DAYS {
            let p = (0.002 * 1.33f64.powf(f64::from(day) / 365.25)).min(0.2);
            if rng.gen_bool(p) {
                let n = (f64::from(rng.gen_range(50..600u32)) * scale) as u32;
                bursts.push(Burst {
                    day,
                    size: n,
                    minutes: rng.gen_range(2..20),
                });
            }
        }
        for _ in 0..12 {
            let n = (f64::from(rng.gen_range(1_100..2_600u32)) * scale) as u32;
            bursts.push(Burst {
                day: rng.gen_range(2_200..DAYS),
                size: n,
                minutes: rng.gen_range(10..55),
            });
        }
        let burst_total: u64 = bursts.iter().map(|b| u64::from(b.size)).sum();
        if burst_total > u64::from(size) / 2 {
            bursts.clear();
        }
        let burst_total: u32 = bursts.iter().map(|b| b.size).sum();
        let background = size - burst_total;
        // Day weights: growth of about a third a year, quieter weekends, noise, and now and
        // then a day three times as busy.
        let weights: Vec<f64> = (0..DAYS)
            .map(|d| {
                let date = day_start(d);
                let years = f64::from(d) / 365.25;
                let weekend = matches!(date.weekday(), Weekday::Sat | Weekday::Sun);
                let busy = if rng.gen_bool(0.01) { 3.0 } else { 1.0 };
                1.33f64.powf(years)
                    * if weekend { 0.7 } else { 1.0 }
                    * rng.gen_range(0.8..1.2)
                    * busy
            })
            .collect();
        let total_weight: f64 = weights.iter().sum();
        let mut bursts_by_day: Vec<Vec<usize>> = vec![Vec::new(); DAYS as usize];
        for (i, b) in bursts.iter().enumerate() {
            bursts_by_day[b.day as usize].push(i);
        }
        let owner_pool = (size / 4).max(1);
        let mut created = Vec::with_capacity(size as usize);
        let mut owners = Vec::with_capacity(size as usize);
        let mut cumulative = 0.0;
        let mut placed: u64 = 0;
        let mut day_items: Vec<(u32, u32)> = Vec::new();
        for d in 0..DAYS {
            cumulative += weights[d as usize];
            // Cumulative rounding: the day counts sum to `background` exactly.
            let upto = if d + 1 == DAYS {
                u64::from(background)
            } else {
                ((f64::from(background) * cumulative / total_weight).round() as u64)
                    .min(u64::from(background))
            };
            let n = upto - placed;
            placed = upto;
            day_items.clear();
            for _ in 0..n {
                day_items.push((rng.gen_range(0..86_400), rng.gen_range(0..owner_pool)));
            }
            for &bi in &bursts_by_day[d as usize] {
                let b = &bursts[bi];
                let span = b.minutes * 60;
                let start = rng.gen_range(0..86_400 - span);
                for _ in 0..b.size {
                    day_items.push((start + rng.gen_range(0..span), BURST_OWNER_BASE + bi as u32));
                }
            }
            day_items.sort_unstable_by_key(|&(t, _)| t);
            for &(t, owner) in &day_items {
                created.push(d * 86_400 + t);
                owners.push(owner);
            }
        }
        let stars = (0..size).map(|i| initial_stars(spec.seed, i)).collect();
        Population {
            spec,
            created,
            owners,
            stars,
        }
    }

    pub fn spec(&self) -> PopulationSpec {
        self.spec
    }

    pub fn len(&self) -> usize {
        self.created.len()
    }

    pub fn is_empty(&self) -> bool {
        self.created.is_empty()
    }

    /// Bytes the columns take: 12 per repository, whatever the fields derived from them.
    pub fn index_bytes(&self) -> usize {
        (self.created.capacity() + self.owners.capacity() + self.stars.capacity())
            * std::mem::size_of::<u32>()
    }

    /// The creation time of the repository at `index`.
    pub fn created_at(&self, index: usize) -> Option<DateTime<Utc>> {
        self.created.get(index).map(|&s| from_epoch(i64::from(s)))
    }

    /// The repository at creation index `index`, all fields derived.
    pub fn repo(&self, index: usize) -> Option<PublicRepo> {
        let created = *self.created.get(index)?;
        let owner = *self.owners.get(index)?;
        let stars = *self.stars.get(index)?;
        let i = u32::try_from(index).ok()?;
        let seed = self.spec.seed;
        let h = hash(seed, 2, i);
        let owner_login = if owner >= BURST_OWNER_BASE {
            format!("mass-creator-{}", owner - BURST_OWNER_BASE)
        } else {
            format!("user{owner}")
        };
        let owner_id = if owner >= BURST_OWNER_BASE {
            u64::from(owner - BURST_OWNER_BASE) + 9_000_000_000
        } else {
            u64::from(owner) + 1
        };
        let name = format!("{}-{index:x}", WORDS[(h % WORDS.len() as u64) as usize]);
        let created_at = from_epoch(i64::from(created));
        let end = i64::from(DAYS) * 86_400;
        let pushed = i64::from(created) + ((end - i64::from(created)) as f64 * unit(mix(h))) as i64;
        let lang = (h >> 20) % (LANGUAGES.len() as u64 + 3);
        let database_id = FIRST_ID + index as u64;
        Some(PublicRepo {
            database_id,
            node_id: node_id("R", database_id),
            name_with_owner: format!("{owner_login}/{name}"),
            name,
            owner_login,
            owner_id,
            stargazer_count: u64::from(stars),
            fork_count: u64::from(stars) / (2 + (h >> 40) % 8),
            primary_language: LANGUAGES.get(lang as usize).map(|l| l.to_string()),
            created_at,
            pushed_at: from_epoch(pushed),
            is_fork: self.is_fork(i),
            is_archived: (h >> 32) % 100 < 3,
        })
    }

    /// The repository with this database id.
    pub fn repo_by_id(&self, database_id: u64) -> Option<PublicRepo> {
        let index = usize::try_from(database_id.checked_sub(FIRST_ID)?).ok()?;
        self.repo(index)
    }

    fn is_fork(&self, i: u32) -> bool {
        hash(self.spec.seed, 3, i) % 100 < 8
    }

    fn pushed_secs(&self, i: u32) -> i64 {
        let created = i64::from(self.created[i as usize]);
        let end = i64::from(DAYS) * 86_400;
        created + ((end - created) as f64 * unit(mix(hash(self.spec.seed, 2, i)))) as i64
    }

    /// The creation indices `q`'s `created:` bounds allow.
    fn created_range(&self, q: &RepoSearch) -> std::ops::Range<usize> {
        let bound = |t: DateTime<Utc>| -> u64 { (t.timestamp() - EPOCH).max(0) as u64 };
        let from = q
            .created_from
            .map(|t| self.created.partition_point(|&s| u64::from(s) < bound(t)))
            .unwrap_or(0);
        let to = q
            .created_before
            .map(|t| self.created.partition_point(|&s| u64::from(s) < bound(t)))
            .unwrap_or(self.created.len());
        from..to.max(from)
    }

    fn matches(&self, q: &RepoSearch, i: u32) -> bool {
        let stars = u64::from(self.stars[i as usize]);
        let fork_ok = match q.forks {
            ForkFilter::Exclude => !self.is_fork(i),
            ForkFilter::Include => true,
            ForkFilter::Only => self.is_fork(i),
        };
        fork_ok
            && q.public
            && q.stars_min.is_none_or(|m| stars >= m)
            && q.stars_max.is_none_or(|m| stars <= m)
    }

    /// How many repositories match `q`: `repositoryCount` / `total_count`, not capped.
    pub fn count(&self, q: &RepoSearch) -> u64 {
        if !q.public {
            return 0;
        }
        let range = self.created_range(q);
        if q.stars_min.is_none() && q.stars_max.is_none() && q.forks == ForkFilter::Include {
            return range.len() as u64;
        }
        range.filter(|&i| self.matches(q, i as u32)).count() as u64
    }

    /// Creation indices of the results `offset..offset + limit` in `q`'s order, within the
    /// first [`SEARCH_CAP`]; empty past it.
    pub fn page(&self, q: &RepoSearch, offset: usize, limit: usize) -> Vec<usize> {
        let want = (offset + limit).min(SEARCH_CAP);
        if offset >= want || !q.public {
            return Vec::new();
        }
        let mut hits: Vec<u32> = self
            .created_range(q)
            .map(|i| i as u32)
            .filter(|&i| self.matches(q, i))
            .collect();
        let key = |i: u32| -> (u64, u32) {
            let v = match q.sort {
                // Best match: a stable order that is not creation order.
                RepoSort::BestMatch => mix(u64::from(i) ^ self.spec.seed),
                RepoSort::Stars { desc } => flip(u64::from(self.stars[i as usize]), desc),
                RepoSort::Forks { desc } => {
                    let h = hash(self.spec.seed, 2, i);
                    flip(
                        u64::from(self.stars[i as usize]) / (2 + (h >> 40) % 8),
                        desc,
                    )
                }
                RepoSort::Updated { desc } => flip(self.pushed_secs(i).max(0) as u64, desc),
            };
            (v, i)
        };
        if hits.len() > want {
            hits.select_nth_unstable_by_key(want - 1, |&i| key(i));
            hits.truncate(want);
        }
        hits.sort_unstable_by_key(|&i| key(i));
        hits.iter().skip(offset).map(|&i| i as usize).collect()
    }

    /// Changes the star counts of `count` repositories picked by `seed` (some gain up to 50,
    /// some lose up to 5; none goes below 0 or stays the same).
    pub fn change_stars(&mut self, count: usize, seed: u64) -> StarChangeReport {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x57A2);
        let n = count.min(self.stars.len());
        let mut changed = Vec::with_capacity(n);
        for index in sample(&mut rng, self.stars.len(), n).into_iter() {
            let before = self.stars[index];
            let after = if before > 0 && rng.gen_bool(0.2) {
                before - rng.gen_range(1..=before.min(5))
            } else {
                before + rng.gen_range(1..=50)
            };
            self.stars[index] = after;
            changed.push((FIRST_ID + index as u64, u64::from(before), u64::from(after)));
        }
        changed.sort_unstable();
        StarChangeReport { changed }
    }

    /// Repositories created in each UTC day, hour or other `bucket` of seconds, busiest
    /// first: `(bucket start, count)`.
    pub fn busiest(&self, bucket_secs: u32, top: usize) -> Vec<(DateTime<Utc>, u64)> {
        let mut counts: Vec<(u32, u64)> = Vec::new();
        for &s in &self.created {
            let b = s / bucket_secs;
            match counts.last_mut() {
                Some((last, n)) if *last == b => *n += 1,
                _ => counts.push((b, 1)),
            }
        }
        counts.sort_unstable_by_key(|&(b, n)| (std::cmp::Reverse(n), b));
        counts
            .into_iter()
            .take(top)
            .map(|(b, n)| (from_epoch(i64::from(b) * i64::from(bucket_secs)), n))
            .collect()
    }
}

fn flip(v: u64, desc: bool) -> u64 {
    if desc {
        u64::MAX - v
    } else {
        v
    }
}

fn from_epoch(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(EPOCH + secs, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

fn day_start(day: u32) -> DateTime<Utc> {
    from_epoch(0) + Duration::days(i64::from(day))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::parse_repository_search;
    use std::sync::OnceLock;

    /// The default population, built once for every test here.
    fn full() -> &'static Population {
        static P: OnceLock<Population> = OnceLock::new();
        P.get_or_init(|| Population::generate(PopulationSpec::default()))
    }

    fn count(p: &Population, q: &str) -> u64 {
        p.count(&parse_repository_search(q).expect(q))
    }

    #[test]
    fn two_million_repositories_fit_in_a_bounded_index() {
        let p = full();
        assert_eq!(p.len(), 2_000_000);
        assert_eq!(p.index_bytes(), 2_000_000 * 12);
        assert!(p.index_bytes() < 64 << 20);
        assert!(
            p.created.windows(2).all(|w| w[0] <= w[1]),
            "sorted by creation"
        );
    }

    #[test]
    fn creation_grows_by_year() {
        let p = full();
        let year = |y: i32| count(p, &format!("fork:true created:{y}-01-01..{y}-12-31"));
        let (first, mid, last) = (year(2008), year(2016), year(2025));
        assert!(
            first > 0 && first * 5 < mid && mid * 5 < last,
            "{first} {mid} {last}"
        );
        let total: u64 = (2008..2026).map(year).sum();
        assert_eq!(total, 2_000_000, "the years hold the whole population");
    }

    #[test]
    fn some_days_and_hours_hold_over_a_thousand() {
        let p = full();
        let days = p.busiest(86_400, 3);
        assert!(days[0].1 > 1_000, "{days:?}");
        let hours = p.busiest(3_600, 3);
        assert!(hours[0].1 > 1_000, "{hours:?}");
        // The busiest hour is one owner's burst.
        let start = hours[0].0;
        let q = format!(
            "fork:true created:{}..{}",
            start.format("%Y-%m-%dT%H:%M:%SZ"),
            (start + Duration::seconds(3_599)).format("%Y-%m-%dT%H:%M:%SZ")
        );
        assert_eq!(count(p, &q), hours[0].1);
        let range = p.created_range(&parse_repository_search(&q).unwrap());
        let mut owners: Vec<u32> = p.owners[range].to_vec();
        owners.sort_unstable();
        let most = owners
            .chunk_by(|a, b| a == b)
            .map(|c| c.len())
            .max()
            .unwrap_or(0);
        assert!(most >= 1_000, "one owner created {most} in the hour");
    }

    #[test]
    fn generation_is_deterministic_from_the_seed() {
        let spec = PopulationSpec {
            seed: 7,
            size: 50_000,
        };
        let (a, b) = (Population::generate(spec), Population::generate(spec));
        assert_eq!(a.created, b.created);
        assert_eq!(a.owners, b.owners);
        assert_eq!(a.repo(123), b.repo(123));
        let c = Population::generate(PopulationSpec { seed: 8, ..spec });
        assert_ne!(a.created, c.created);
    }

    #[test]
    fn day_ranges_sum_exactly_to_the_population() {
        let p = full();
        let mut sum = 0;
        let mut day = Utc.with_ymd_and_hms(2008, 1, 1, 0, 0, 0).unwrap();
        // Ranges of 30 days, inclusive dates, meeting edge to edge.
        while day.year() < 2026 {
            let last = day + Duration::days(29);
            sum += count(
                p,
                &format!(
                    "fork:true created:{}..{}",
                    day.format("%Y-%m-%d"),
                    last.format("%Y-%m-%d")
                ),
            );
            day = last + Duration::days(1);
        }
        assert_eq!(sum, 2_000_000);
        let forks = count(p, "fork:only is:public");
        let default = count(p, "is:public");
        assert_eq!(forks + default, 2_000_000, "forks are left out by default");
        assert!(forks > 100_000);
        let by_stars = count(p, "stars:0..9") + count(p, "stars:>=10");
        assert_eq!(by_stars, default);
    }

    #[test]
    fn pages_stop_at_the_cap_and_sort_by_stars() {
        let p = full();
        let q = parse_repository_search("created:2024-01-01..2024-12-31 sort:stars").unwrap();
        assert!(p.count(&q) > 10_000);
        let first = p.page(&q, 0, 100);
        assert_eq!(first.len(), 100);
        let stars: Vec<u32> = first.iter().map(|&i| p.stars[i]).collect();
        assert!(stars.windows(2).all(|w| w[0] >= w[1]));
        assert_eq!(p.page(&q, 900, 100).len(), 100);
        assert_eq!(
            p.page(&q, 950, 100).len(),
            50,
            "the 1,000th result is the last"
        );
        assert!(p.page(&q, 1000, 100).is_empty());
    }

    #[test]
    fn changed_stars_are_the_new_truth() {
        let mut p = Population::generate(PopulationSpec {
            seed: 3,
            size: 20_000,
        });
        let report = p.change_stars(25, 9);
        assert_eq!(report.changed.len(), 25);
        for &(id, before, after) in &report.changed {
            assert_ne!(before, after);
            let r = p.repo_by_id(id).expect("changed repository exists");
            assert_eq!(r.stargazer_count, after);
        }
    }
}
