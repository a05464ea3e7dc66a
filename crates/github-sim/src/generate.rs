//! Seeded generation of a synthetic organization, and the changes that make it evolve while
//! the simulator runs.

use crate::model::*;
use chrono::{DateTime, Duration, DurationRound, Utc};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// What organization to generate.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OrgSpec {
    pub org: String,
    pub repos: usize,
    pub prs: usize,
    pub seed: u64,
    /// How far back pull requests reach.
    pub days: i64,
    /// Include the oversized pull requests (more than 250 commits, more than 100 reviews,
    /// comments, review comments or labels) in the first repository.
    pub oversized: bool,
    /// Archived and forked repositories added beside the `repos` active ones.
    pub archived_and_forks: bool,
    /// Git repositories served beside the generated ones (none by default): cloned from a
    /// bundle or repository, or synthetic (seeded by `seed` and the name). Each is a
    /// repository of the organization, with no pull requests, served over git's smart HTTP
    /// and GraphQL (see [`crate::git`]).
    #[serde(default)]
    pub git_repos: Vec<crate::git::GitRepoSpec>,
}

impl OrgSpec {
    pub fn new(org: &str, repos: usize, prs: usize, seed: u64) -> Self {
        OrgSpec {
            org: org.to_string(),
            repos,
            prs,
            seed,
            days: 365,
            oversized: true,
            archived_and_forks: true,
            git_repos: Vec::new(),
        }
    }
}

const FIRST_NAMES: &[&str] = &[
    "ada",
    "linus",
    "grace",
    "ken",
    "barbara",
    "dennis",
    "margaret",
    "guido",
    "yukihiro",
    "bjarne",
    "frances",
    "edsger",
    "donald",
    "radia",
    "anita",
    "tim",
    "sophie",
    "hedy",
    "jean",
    "john",
    "katherine",
    "alan",
    "niklaus",
    "leslie",
    "shafi",
    "ivan",
    "jose",
    "mei",
    "chen",
    "aiko",
];

const BOTS: &[&str] = &["dependabot", "renovate", "github-actions"];

const TITLES: &[&str] = &[
    "Fix race in scheduler",
    "Add retry to uploader",
    "Refactor config loading",
    "Bump serde from 1.0.1 to 1.0.2",
    "Improve error messages",
    "Docs: clarify setup",
    "Speed up parser by 30%",
    "Handle empty input",
    "修复登录问题",
    "Añadir soporte para ñ",
    "✨ New dashboard widgets 🚀",
    "Исправить утечку памяти",
    "إصلاح خطأ في التاريخ",
    "Remove dead code",
    "Support GitHub Enterprise",
];

const PATHS: &[&str] = &[
    "src/main.rs",
    "src/lib.rs",
    "README.md",
    "docs/setup.md",
    "src/api/handlers.rs",
    "tests/e2e.rs",
    "web/app.tsx",
    "src/日本語/mod.rs",
];

const BODIES: &[&str] = &[
    "LGTM",
    "Can we add a test for this?",
    "nit: naming",
    "👍",
    "This breaks on Windows, see the CI log.",
    "Looks good — thanks! 🎉",
    "为什么这里需要克隆？",
    "",
    "Please split this PR; it does three unrelated things.\n\nAlso the migration is missing.",
];

const LABELS: &[&str] = &[
    "bug",
    "enhancement",
    "documentation",
    "dependencies",
    "needs-review",
    "good first issue",
    "🔥 hot",
];
const SIZE_LABELS: &[&str] = &["size/XS", "size/S", "size/M", "size/L", "size/XL"];

struct Gen {
    rng: ChaCha8Rng,
    next_id: u64,
    users: Vec<Actor>,
    bots: Vec<Actor>,
    mannequin: Actor,
    sha_counter: u64,
}

impl Gen {
    fn id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn sha(&mut self) -> String {
        self.sha_counter += 1;
        let a: u64 = self.rng.gen();
        let b: u64 = self.rng.gen();
        format!("{a:016x}{b:016x}{:08x}", self.sha_counter as u32)
    }

    /// A plausible author: mostly people, some bots, the odd mannequin, and ~2% deleted.
    fn author(&mut self) -> Option<Actor> {
        let roll: f64 = self.rng.gen();
        if roll < 0.02 {
            None
        } else if roll < 0.10 {
            self.bots.choose(&mut self.rng).cloned()
        } else if roll < 0.11 {
            Some(self.mannequin.clone())
        } else {
            self.users.choose(&mut self.rng).cloned()
        }
    }

    fn human(&mut self) -> Option<Actor> {
        if self.rng.gen_bool(0.02) {
            None
        } else {
            self.users.choose(&mut self.rng).cloned()
        }
    }

    fn time_between(&mut self, a: DateTime<Utc>, b: DateTime<Utc>) -> DateTime<Utc> {
        let span = (b - a).num_seconds().max(0);
        let off = if span == 0 {
            0
        } else {
            self.rng.gen_range(0..=span)
        };
        a + Duration::seconds(off)
    }

    /// A count with a long tail: most values small, a few large.
    fn skewed(&mut self, typical: u32) -> usize {
        let u: f64 = self.rng.gen_range(0.0001..1.0);
        ((-u.ln()) * typical as f64).floor() as usize
    }

    fn body(&mut self) -> String {
        BODIES
            .choose(&mut self.rng)
            .copied()
            .unwrap_or("")
            .to_string()
    }

    fn commit(&mut self, at: DateTime<Utc>, author: &Option<Actor>) -> Commit {
        let (name, login) = match author {
            Some(a) if self.rng.gen_bool(0.9) => (a.login.replace('-', " "), Some(a.login.clone())),
            // Commits by an email that is linked to no account.
            _ => ("Unlinked Person".to_string(), None),
        };
        let committer_is_github = self.rng.gen_bool(0.2);
        let committed_at = self.time_between(at, at + Duration::minutes(30));
        Commit {
            sha: self.sha(),
            message_headline: TITLES
                .choose(&mut self.rng)
                .copied()
                .unwrap_or("Change")
                .to_string(),
            authored_at: at,
            committed_at,
            additions: self.skewed(40) as u64,
            deletions: self.skewed(15) as u64,
            author_name: name.clone(),
            author_login: login.clone(),
            committer_name: if committer_is_github {
                "GitHub".into()
            } else {
                name
            },
            committer_login: if committer_is_github { None } else { login },
        }
    }

    fn review(&mut self, created: DateTime<Utc>, end: DateTime<Utc>, comments: usize) -> Review {
        let at = self.time_between(created, end);
        let state = match self.rng.gen_range(0..10) {
            0..=4 => ReviewState::Approved,
            5..=6 => ReviewState::Commented,
            7..=8 => ReviewState::ChangesRequested,
            _ => ReviewState::Dismissed,
        };
        let author = if self.rng.gen_bool(0.05) {
            self.bots.choose(&mut self.rng).cloned()
        } else {
            self.human()
        };
        let mut review = Review {
            id: self.id(),
            author,
            state,
            submitted_at: Some(at),
            created_at: at,
            updated_at: at,
            body: self.body(),
            comments: Vec::new(),
        };
        for i in 0..comments {
            let c = self.review_comment(at, &review, i);
            review.comments.push(c);
        }
        review
    }

    fn review_comment(&mut self, at: DateTime<Utc>, review: &Review, i: usize) -> ReviewComment {
        let created = at;
        let edited = self.rng.gen_bool(0.1);
        let updated = if edited {
            created + Duration::minutes(self.rng.gen_range(1..600))
        } else {
            created
        };
        let reply_to = if i > 0 && self.rng.gen_bool(0.3) {
            review.comments.choose(&mut self.rng).map(|c| c.id)
        } else {
            None
        };
        ReviewComment {
            id: self.id(),
            path: PATHS
                .choose(&mut self.rng)
                .copied()
                .unwrap_or("src/lib.rs")
                .to_string(),
            author: review.author.clone(),
            created_at: created,
            updated_at: updated,
            body: self.body(),
            reply_to,
        }
    }

    fn issue_comment(&mut self, created: DateTime<Utc>, end: DateTime<Utc>) -> IssueComment {
        let at = self.time_between(created, end);
        let edited = self.rng.gen_bool(0.1);
        IssueComment {
            id: self.id(),
            author: self.author(),
            created_at: at,
            updated_at: if edited {
                self.time_between(at, end)
            } else {
                at
            },
            body: self.body(),
        }
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "the shape of one pull request, spelled out"
    )]
    fn pull_request(
        &mut self,
        number: u64,
        created: DateTime<Utc>,
        now: DateTime<Utc>,
        commits: usize,
        reviews: usize,
        comments: usize,
        review_comments: usize,
        labels: usize,
    ) -> PullRequest {
        let author = self.author();
        let life = Duration::minutes(self.skewed(60 * 24) as i64 + 5);
        let end = (created + life).min(now);
        let state_roll = self.rng.gen_range(0..100);
        let state = if state_roll < 60 {
            PrState::Merged
        } else if state_roll < 75 {
            PrState::Closed
        } else {
            PrState::Open
        };
        let mut pr = PullRequest {
            id: self.id(),
            number,
            title: TITLES
                .choose(&mut self.rng)
                .copied()
                .unwrap_or("Change")
                .to_string(),
            state,
            is_draft: state == PrState::Open && self.rng.gen_bool(0.2),
            created_at: created,
            updated_at: end,
            closed_at: None,
            merged_at: None,
            author: author.clone(),
            merged_by: None,
            base_ref: "main".into(),
            head_ref: format!("feature/{number}-{}", self.rng.gen_range(1000..9999)),
            base_oid: self.sha(),
            head_oid: String::new(),
            additions: 0,
            deletions: 0,
            changed_files: 0,
            labels: Vec::new(),
            review_decision: None,
            commits: Vec::new(),
            reviews: Vec::new(),
            comments: Vec::new(),
        };
        for _ in 0..commits.max(1) {
            let at = self.time_between(created, end);
            let c = self.commit(at, &author);
            pr.commits.push(c);
        }
        pr.commits.sort_by_key(|c| c.authored_at);
        let mut rc_left = review_comments;
        for i in 0..reviews {
            let n = if i + 1 == reviews {
                rc_left
            } else {
                self.rng.gen_range(0..=rc_left)
            };
            rc_left -= n;
            let r = self.review(created, end, n);
            pr.reviews.push(r);
        }
        pr.reviews.sort_by_key(|r| r.created_at);
        for _ in 0..comments {
            let c = self.issue_comment(created, end);
            pr.comments.push(c);
        }
        pr.comments.sort_by_key(|c| c.created_at);
        let mut names: Vec<String> = Vec::new();
        if labels > LABELS.len() {
            names.extend((0..labels).map(|i| format!("area/{i:03}")));
        } else {
            for l in LABELS.choose_multiple(&mut self.rng, labels) {
                names.push(l.to_string());
            }
        }
        if self.rng.gen_bool(0.7) {
            names.push(
                SIZE_LABELS
                    .choose(&mut self.rng)
                    .copied()
                    .unwrap_or("size/M")
                    .to_string(),
            );
        }
        pr.labels = names;
        match state {
            PrState::Merged => {
                pr.merged_at = Some(end);
                pr.closed_at = Some(end);
                pr.merged_by = self.human();
            }
            PrState::Closed => pr.closed_at = Some(end),
            PrState::Open => {}
        }
        pr.changed_files = (pr.commits.len() as u64 * self.rng.gen_range(1..4)).min(300);
        clamp_times(&mut pr, now);
        pr.refresh_derived();
        pr.updated_at = latest_activity(&pr).max(end);
        pr
    }
}

/// Nothing happens after `now`: child timestamps drawn past it are pulled back.
fn clamp_times(pr: &mut PullRequest, now: DateTime<Utc>) {
    for c in &mut pr.commits {
        c.authored_at = c.authored_at.min(now);
        c.committed_at = c.committed_at.min(now).max(c.authored_at);
    }
    for r in &mut pr.reviews {
        for c in &mut r.comments {
            c.created_at = c.created_at.min(now);
            c.updated_at = c.updated_at.min(now).max(c.created_at);
        }
    }
    for c in &mut pr.comments {
        c.updated_at = c.updated_at.min(now).max(c.created_at);
    }
}

/// The latest timestamp among a pull request and its children.
fn latest_activity(pr: &PullRequest) -> DateTime<Utc> {
    let mut t = pr.created_at;
    for c in &pr.commits {
        t = t.max(c.committed_at);
    }
    for r in &pr.reviews {
        t = t.max(r.updated_at);
        for c in &r.comments {
            t = t.max(c.updated_at);
        }
    }
    for c in &pr.comments {
        t = t.max(c.updated_at);
    }
    t
}

fn seconds(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(Duration::seconds(1)).unwrap_or(t)
}

fn new_gen(seed: u64) -> Gen {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut next_id = 1_000_000 + rng.gen_range(0..1000) * 1000;
    let mut id = || {
        next_id += 1;
        next_id
    };
    let users = FIRST_NAMES
        .iter()
        .enumerate()
        .map(|(i, n)| Actor {
            id: id(),
            login: format!("{n}-{i}"),
            kind: ActorKind::User,
        })
        .collect();
    let bots = BOTS
        .iter()
        .map(|b| Actor {
            id: id(),
            login: b.to_string(),
            kind: ActorKind::Bot,
        })
        .collect();
    let mannequin = Actor {
        id: id(),
        login: "imported-svn-user".into(),
        kind: ActorKind::Mannequin,
    };
    Gen {
        rng,
        next_id: next_id + 1,
        users,
        bots,
        mannequin,
        sha_counter: 0,
    }
}

/// Generates the organization `spec` describes, relative to `now`.
pub fn generate(spec: &OrgSpec, now: DateTime<Utc>) -> World {
    let now = seconds(now);
    let mut g = new_gen(spec.seed);
    let org = Actor {
        id: g.id(),
        login: spec.org.clone(),
        kind: ActorKind::Organization,
    };
    let repos = spec.repos.max(1);
    // Zipf-like weights: the first repositories hold most pull requests.
    let weights: Vec<f64> = (0..repos).map(|i| 1.0 / (i as f64 + 1.5)).collect();
    let total: f64 = weights.iter().sum();
    let mut counts: Vec<usize> = weights
        .iter()
        .map(|w| (w / total * spec.prs as f64).floor() as usize)
        .collect();
    let assigned: usize = counts.iter().sum();
    for i in 0..spec.prs.saturating_sub(assigned) {
        counts[i % repos] += 1;
    }
    let earliest = now - Duration::days(spec.days.max(1));
    let mut repositories = Vec::new();
    for (ri, count) in counts.iter().enumerate() {
        let created = earliest - Duration::days(30 + ri as i64);
        let mut repo = Repository {
            id: g.id(),
            name: format!("repo-{ri:03}"),
            is_archived: false,
            is_fork: false,
            is_private: ri % 3 == 0,
            default_branch: "main".into(),
            created_at: created,
            updated_at: created,
            pushed_at: created,
            pull_requests: Vec::new(),
            issues: Vec::new(),
            former_names: Vec::new(),
            git_head: None,
        };
        let mut number = 0u64;
        for k in 0..*count {
            number += 1 + u64::from(g.rng.gen_bool(0.3)); // issues share the number sequence
            let created_at = g.time_between(earliest, now - Duration::minutes(10));
            let oversized = spec.oversized && ri == 0 && k < 5;
            let (commits, reviews, comments, review_comments, labels) = if oversized {
                match k {
                    0 => (263, 2, 1, 3, 1),
                    1 => (120, 104, 3, 12, 2),
                    2 => (3, 2, 130, 1, 0),
                    3 => (2, 1, 1, 140, 1),
                    _ => (4, 1, 2, 2, 103),
                }
            } else {
                let commits = if g.rng.gen_bool(0.01) {
                    g.rng.gen_range(101..160)
                } else {
                    1 + g.skewed(3)
                };
                let reviews = g.skewed(1);
                let rc = if reviews > 0 { g.skewed(2) } else { 0 };
                (commits, reviews, g.skewed(2), rc, g.rng.gen_range(0..3))
            };
            let pr = g.pull_request(
                number,
                created_at,
                now,
                commits,
                reviews,
                comments,
                review_comments,
                labels,
            );
            repo.updated_at = repo.updated_at.max(pr.updated_at);
            repo.pushed_at = repo.pushed_at.max(
                pr.commits
                    .last()
                    .map(|c| c.committed_at)
                    .unwrap_or(created_at),
            );
            repo.pull_requests.push(pr);
        }
        repositories.push(repo);
    }
    if spec.archived_and_forks {
        for (name, archived, fork) in [("old-archived", true, false), ("forked-lib", false, true)] {
            let created = earliest - Duration::days(400);
            let mut repo = Repository {
                id: g.id(),
                name: name.into(),
                is_archived: archived,
                is_fork: fork,
                is_private: false,
                default_branch: "master".into(),
                created_at: created,
                updated_at: created,
                pushed_at: created,
                pull_requests: Vec::new(),
                issues: Vec::new(),
                former_names: Vec::new(),
                git_head: None,
            };
            let created_at = now - Duration::days(2);
            let pr = g.pull_request(1, created_at, now, 2, 1, 1, 1, 1);
            repo.updated_at = pr.updated_at;
            repo.pull_requests.push(pr);
            repositories.push(repo);
        }
    }
    let next_id = g.next_id;
    World::new(org, repositories, next_id)
}

/// What [`change`] did, for tests to know which pull requests moved.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ChangeReport {
    /// `(repository, number)` of every pull request created or changed.
    pub changed: Vec<(String, u64)>,
    pub new_prs: usize,
    pub new_commits: usize,
    pub force_pushes: usize,
    pub new_reviews: usize,
    pub new_comments: usize,
    pub edited_comments: usize,
    pub deleted_comments: usize,
}

/// Changes `count` pull requests of `repo` (or of any repository when `None`) at time `now`:
/// about one in five is new; the others get new commits, reviews and comments, edited and
/// deleted comments, a force-push that drops commits, or a merge. Every changed pull request's
/// `updatedAt` becomes `now`, as on GitHub.
pub fn change(
    world: &mut World,
    count: usize,
    seed: u64,
    repo: Option<&str>,
    now: DateTime<Utc>,
) -> ChangeReport {
    let now = seconds(now);
    let mut g = new_gen(seed);
    g.next_id = world.next_id;
    let mut report = ChangeReport::default();
    let repo_indices: Vec<usize> = match repo {
        Some(name) => world
            .repository(name)
            .map(|(i, _)| vec![i])
            .unwrap_or_default(),
        None => (0..world.repositories.len())
            .filter(|&i| !world.repositories[i].is_archived && !world.repositories[i].is_fork)
            .collect(),
    };
    if repo_indices.is_empty() {
        return report;
    }
    let mut touched = std::collections::HashSet::new();
    for _ in 0..count {
        let untouched: Vec<(usize, usize)> = repo_indices
            .iter()
            .flat_map(|&ri| (0..world.repositories[ri].pull_requests.len()).map(move |pi| (ri, pi)))
            .filter(|k| !touched.contains(k))
            .collect();
        let make_new = untouched.is_empty() || g.rng.gen_bool(0.2);
        if make_new {
            let ri = *repo_indices.choose(&mut g.rng).unwrap_or(&repo_indices[0]);
            let repo = &mut world.repositories[ri];
            let number = repo
                .pull_requests
                .iter()
                .map(|p| p.number)
                .max()
                .unwrap_or(0)
                + 1;
            let mut pr = g.pull_request(number, now - Duration::minutes(1), now, 2, 1, 1, 1, 1);
            pr.state = PrState::Open;
            pr.merged_at = None;
            pr.closed_at = None;
            pr.merged_by = None;
            pr.updated_at = now;
            report.changed.push((repo.name.clone(), number));
            touched.insert((ri, repo.pull_requests.len()));
            repo.pull_requests.push(pr);
            report.new_prs += 1;
            continue;
        }
        let (ri, pi) = untouched[g.rng.gen_range(0..untouched.len())];
        touched.insert((ri, pi));
        let repo = &mut world.repositories[ri];
        let pr = &mut repo.pull_requests[pi];
        match g.rng.gen_range(0..7) {
            0 => {
                let author = pr.author.clone();
                for _ in 0..g.rng.gen_range(1..4) {
                    let c = g.commit(now, &author);
                    pr.commits.push(c);
                }
                report.new_commits += 1;
            }
            1 => {
                // A force-push: the last commits are replaced.
                let drop = g
                    .rng
                    .gen_range(1..=pr.commits.len().max(1))
                    .min(pr.commits.len().saturating_sub(1));
                pr.commits.truncate(pr.commits.len() - drop);
                let author = pr.author.clone();
                let c = g.commit(now, &author);
                pr.commits.push(c);
                report.force_pushes += 1;
            }
            2 => {
                let n = g.rng.gen_range(0..3);
                let r = g.review(now, now, n);
                pr.reviews.push(r);
                report.new_reviews += 1;
            }
            3 => {
                let c = g.issue_comment(now, now);
                pr.comments.push(c);
                report.new_comments += 1;
            }
            4 => {
                if let Some(c) = pr.comments.last_mut() {
                    c.body = format!("{} (edited ✏️)", c.body);
                    c.updated_at = now;
                    report.edited_comments += 1;
                } else if let Some(c) = pr
                    .reviews
                    .iter_mut()
                    .flat_map(|r| r.comments.iter_mut())
                    .last()
                {
                    c.body = format!("{} (edited)", c.body);
                    c.updated_at = now;
                    report.edited_comments += 1;
                } else {
                    let c = g.issue_comment(now, now);
                    pr.comments.push(c);
                    report.new_comments += 1;
                }
            }
            5 => {
                if !pr.comments.is_empty() {
                    let i = g.rng.gen_range(0..pr.comments.len());
                    pr.comments.remove(i);
                    report.deleted_comments += 1;
                } else if let Some(r) = pr.reviews.iter_mut().find(|r| !r.comments.is_empty()) {
                    let removed = r.comments.remove(0).id;
                    for c in &mut r.comments {
                        if c.reply_to == Some(removed) {
                            c.reply_to = None;
                        }
                    }
                    report.deleted_comments += 1;
                } else {
                    let c = g.issue_comment(now, now);
                    pr.comments.push(c);
                    report.new_comments += 1;
                }
            }
            _ => {
                if pr.state == PrState::Open {
                    pr.state = PrState::Merged;
                    pr.merged_at = Some(now);
                    pr.closed_at = Some(now);
                    pr.merged_by = g.human();
                    pr.is_draft = false;
                } else {
                    pr.labels.push("needs-review".into());
                }
            }
        }
        pr.refresh_derived();
        pr.updated_at = now;
        report.changed.push((repo.name.clone(), pr.number));
    }
    world.next_id = g.next_id;
    world.reindex();
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-06-01T12:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap()
    }

    #[test]
    fn generation_is_deterministic_for_a_seed() {
        let a = generate(&OrgSpec::new("acme", 4, 300, 7), at());
        let b = generate(&OrgSpec::new("acme", 4, 300, 7), at());
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            serde_json::to_string(&b).unwrap()
        );
        let c = generate(&OrgSpec::new("acme", 4, 300, 8), at());
        assert_ne!(
            serde_json::to_string(&a).unwrap(),
            serde_json::to_string(&c).unwrap()
        );
    }

    #[test]
    fn generated_org_has_requested_size_and_oversized_prs() {
        let w = generate(&OrgSpec::new("acme", 5, 500, 1), at());
        let active: usize = w
            .repositories
            .iter()
            .filter(|r| !r.is_archived && !r.is_fork)
            .map(|r| r.pull_requests.len())
            .sum();
        assert_eq!(active, 500);
        let r0 = &w.repositories[0];
        assert!(r0.pull_requests.iter().any(|p| p.commits.len() > 250));
        assert!(r0.pull_requests.iter().any(|p| p.reviews.len() > 100));
        assert!(r0.pull_requests.iter().any(|p| p.comments.len() > 100));
        assert!(r0.pull_requests.iter().any(|p| p.labels.len() > 100));
        assert!(r0
            .pull_requests
            .iter()
            .flat_map(|p| &p.reviews)
            .any(|r| r.comments.len() > 100));
        assert!(w.pull_requests().any(|(_, p)| p.author.is_none()));
        assert!(w
            .pull_requests()
            .any(|(_, p)| p.author.as_ref().is_some_and(|a| a.kind == ActorKind::Bot)));
        for (_, p) in w.pull_requests() {
            assert!(p.updated_at >= p.created_at);
            assert!(
                p.updated_at <= at(),
                "no activity after the generation time"
            );
            assert_eq!(
                p.additions,
                p.commits.iter().map(|c| c.additions).sum::<u64>()
            );
        }
    }

    #[test]
    fn changes_bump_updated_at_of_exactly_the_changed_prs() {
        let mut w = generate(&OrgSpec::new("acme", 3, 200, 1), at());
        let later = at() + Duration::hours(1);
        let report = change(&mut w, 50, 9, None, later);
        assert_eq!(report.changed.len(), 50);
        let moved: Vec<_> = w
            .pull_requests()
            .filter(|(_, p)| p.updated_at == later)
            .collect();
        assert_eq!(moved.len(), 50);
    }
}
