//! Git repositories served by the simulator as production reaches GitHub's: cloned and
//! fetched with the real `git` CLI over smart HTTP with GitHub's token checks, their GraphQL
//! `history` read from the same objects, pushes and force-pushes between runs, the seeded
//! synthetic histories, and tokens of one user sharing one budget.

use base64::Engine;
use github_sim::git::{linked_user, write_synthetic};
use github_sim::{GitRepoSpec, GitSource, OrgSpec, SimOptions, Simulator};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const FD_BUNDLE: &str = "/work/shared/fixtures/git/fd.bundle";
const HISTORY: &str = include_str!("../../../graphql/commit_history.graphql");
const REPOSITORY: &str = include_str!("../../../graphql/git_repository.graphql");
const ORG_REPOSITORIES: &str = include_str!("../../../graphql/org_git_repositories.graphql");

/// The fd bundle (shared fixture): present on the machines these tests run on.
fn fd_bundle() -> PathBuf {
    let p = PathBuf::from(FD_BUNDLE);
    assert!(p.exists(), "{FD_BUNDLE} is missing");
    p
}

fn spec(repos: Vec<GitRepoSpec>) -> OrgSpec {
    let mut s = OrgSpec::new("acme", 1, 5, 1);
    s.git_repos = repos;
    s
}

fn synthetic(name: &str, commits: usize) -> GitRepoSpec {
    GitRepoSpec {
        name: name.into(),
        source: GitSource::Synthetic { commits },
    }
}

fn fd() -> GitRepoSpec {
    GitRepoSpec {
        name: "fd".into(),
        source: GitSource::Path(fd_bundle()),
    }
}

async fn start(repos: Vec<GitRepoSpec>, options: SimOptions) -> Simulator {
    Simulator::start(&spec(repos), options, 0)
        .await
        .expect("the simulator starts")
}

/// `git` with no user or system configuration and no prompts.
fn git(dir: Option<&Path>) -> Command {
    let mut c = Command::new("git");
    if let Some(d) = dir {
        c.arg("-C").arg(d);
    }
    c.env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("LC_ALL", "C");
    c
}

fn out(mut c: Command) -> Output {
    c.output().expect("git runs")
}

fn ok(c: Command) -> String {
    let o = out(c);
    assert!(
        o.status.success(),
        "git failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn basic(token: &str) -> String {
    let b = base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{token}"));
    format!("http.extraHeader=Authorization: Basic {b}")
}

/// `git -c http.extraHeader=… ARGS` in `dir`.
fn authed(token: &str, dir: Option<&Path>, args: &[&str]) -> Command {
    let mut c = git(dir);
    c.arg("-c").arg(basic(token)).args(args);
    c
}

fn lines(s: &str) -> Vec<String> {
    s.lines().map(str::to_string).collect()
}

async fn graphql_as(sim: &Simulator, token: &str, query: &str, variables: Value) -> Value {
    reqwest::Client::new()
        .post(format!("{}/graphql", sim.url()))
        .header("authorization", format!("Bearer {token}"))
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .expect("the simulator answers")
        .json()
        .await
        .expect("GraphQL answers JSON")
}

async fn graphql(sim: &Simulator, query: &str, variables: Value) -> Value {
    graphql_as(sim, "good", query, variables).await
}

async fn head_of(sim: &Simulator, name: &str) -> Value {
    let a = graphql(sim, REPOSITORY, json!({"owner0": "acme", "name0": name})).await;
    assert!(a.get("errors").is_none(), "{a}");
    a["data"]["r0"].clone()
}

/// Every commit GraphQL's history lists from `head`, 100 a page, with each page's cost and
/// each commit's `author.user`.
async fn graphql_history(
    sim: &Simulator,
    name: &str,
    head: &str,
) -> (Vec<String>, Vec<u64>, BTreeMap<String, Value>) {
    let (mut oids, mut costs, mut users) = (Vec::new(), Vec::new(), BTreeMap::new());
    let mut cursor = Value::Null;
    loop {
        let a = graphql(
            sim,
            HISTORY,
            json!({"owner": "acme", "name": name, "head": head, "first": 100, "cursor": cursor}),
        )
        .await;
        assert!(a.get("errors").is_none(), "{a}");
        costs.push(a["data"]["rateLimit"]["cost"].as_u64().expect("a cost"));
        let h = &a["data"]["repository"]["object"]["history"];
        for n in h["nodes"].as_array().expect("nodes") {
            let oid = n["oid"].as_str().expect("an oid").to_string();
            users.insert(oid.clone(), n["author"]["user"].clone());
            oids.push(oid);
        }
        if h["pageInfo"]["hasNextPage"] != json!(true) {
            break;
        }
        cursor = h["pageInfo"]["endCursor"].clone();
    }
    (oids, costs, users)
}

async fn change(sim: &Simulator, body: Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{}/_sim/change", sim.url()))
        .json(&body)
        .send()
        .await
        .expect("the simulator answers");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn good_tokens() -> SimOptions {
    SimOptions {
        tokens: vec!["good".into()],
        ..SimOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn git_clones_over_smart_http_with_githubs_token_checks() {
    let sim = start(vec![fd(), synthetic("synth", 150)], good_tokens()).await;
    let tmp = tempfile::tempdir().expect("a temp dir");
    for name in ["fd", "synth"] {
        let dest = tmp.path().join(format!("{name}.git"));
        let url = sim.git_url(name);
        ok(authed(
            "good",
            None,
            &["clone", "-q", "--bare", &url, dest.to_str().unwrap()],
        ));
        let head = ok({
            let mut c = git(Some(&dest));
            c.args(["rev-parse", "HEAD"]);
            c
        });
        let repo = head_of(&sim, name).await;
        assert_eq!(
            repo["defaultBranchRef"]["target"]["oid"],
            json!(head),
            "{name}"
        );
        assert_eq!(repo["name"], json!(name));
        assert_eq!(repo["isEmpty"], json!(false));
        let served = sim.git_dir(name).expect("a git repository");
        let want = ok({
            let mut c = git(Some(&served));
            c.args(["rev-list", "--count", "HEAD"]);
            c
        });
        let got = ok({
            let mut c = git(Some(&dest));
            c.args(["rev-list", "--count", "HEAD"]);
            c
        });
        assert_eq!(got, want, "{name}: the clone holds the whole history");
    }
    // Protocol v0 and a Bearer token work too.
    let v0 = tmp.path().join("v0.git");
    ok(authed(
        "good",
        None,
        &[
            "-c",
            "protocol.version=0",
            "clone",
            "-q",
            "--bare",
            &sim.git_url("synth"),
            v0.to_str().unwrap(),
        ],
    ));
    let mut c = git(None);
    c.args([
        "-c",
        "http.extraHeader=Authorization: Bearer good",
        "ls-remote",
        &sim.git_url("fd"),
    ]);
    assert!(ok(c).contains("refs/heads/main"));

    // A shallow clone by date, then deepened: only what the window needs.
    let fd_dir = sim.git_dir("fd").expect("fd is served");
    let dates = lines(&ok({
        let mut c = git(Some(&fd_dir));
        c.args(["log", "--first-parent", "--format=%ct", "HEAD"]);
        c
    }));
    let since = dates[200].clone();
    let shallow = tmp.path().join("shallow.git");
    ok(authed(
        "good",
        None,
        &[
            "clone",
            "-q",
            "--bare",
            &format!("--shallow-since={since}"),
            &sim.git_url("fd"),
            shallow.to_str().unwrap(),
        ],
    ));
    let count = |dir: &Path| -> usize {
        ok({
            let mut c = git(Some(dir));
            c.args(["rev-list", "--count", "HEAD"]);
            c
        })
        .parse()
        .expect("a count")
    };
    let shallow_count = count(&shallow);
    let full: usize = ok({
        let mut c = git(Some(&fd_dir));
        c.args(["rev-list", "--count", "HEAD"]);
        c
    })
    .parse()
    .expect("a count");
    assert!(
        shallow_count > 150 && shallow_count < full,
        "shallow: {shallow_count} of {full}"
    );
    assert!(shallow.join("shallow").exists());
    // A clone by depth, deepened. (Deepening a `--shallow-since` clone of fd fails in git
    // 2.47 itself, over file:// too: "error in object: unshallow".)
    let deep = tmp.path().join("deep.git");
    ok(authed(
        "good",
        None,
        &[
            "clone",
            "-q",
            "--mirror",
            "--depth=50",
            &sim.git_url("fd"),
            deep.to_str().unwrap(),
        ],
    ));
    let depth_count = count(&deep);
    ok(authed(
        "good",
        Some(&deep),
        &["fetch", "-q", "--deepen=100", "origin"],
    ));
    assert!(count(&deep) > depth_count, "--deepen fetched more");
    ok(authed(
        "good",
        Some(&deep),
        &["fetch", "-q", &format!("--shallow-since={since}"), "origin"],
    ));
    assert!(count(&deep) >= shallow_count, "--shallow-since on a fetch");

    // What GitHub refuses.
    let refused = tmp.path().join("refused.git");
    let mut c = git(None);
    c.args([
        "clone",
        "-q",
        "--bare",
        &sim.git_url("fd"),
        refused.to_str().unwrap(),
    ]);
    let o = out(c);
    assert!(!o.status.success(), "no credentials: git fails");
    let o = out(authed("wrong", None, &["ls-remote", &sim.git_url("fd")]));
    assert!(!o.status.success(), "a wrong token: git fails");
    let o = out(authed(
        "good",
        None,
        &["ls-remote", &sim.git_url("repo-000")],
    ));
    assert!(
        !o.status.success(),
        "a repository without git content answers 404"
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("not found"));
    let o = out(authed(
        "good",
        Some(&v0),
        &["push", &sim.git_url("synth"), "HEAD:refs/heads/x"],
    ));
    assert!(!o.status.success(), "pushes are refused");

    let http = reqwest::Client::new();
    let refs = format!("{}/info/refs?service=git-upload-pack", sim.git_url("fd"));
    let r = http.get(&refs).send().await.expect("answers");
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(
        r.headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok()),
        Some("Basic realm=\"GitHub\"")
    );
    let r = http
        .get(&refs)
        .bearer_auth("wrong")
        .send()
        .await
        .expect("answers");
    assert_eq!(r.status().as_u16(), 401);
    let r = http
        .get(&refs)
        .basic_auth("anyone", Some("good"))
        .send()
        .await
        .expect("answers");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        r.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/x-git-upload-pack-advertisement")
    );
    let missing = format!(
        "{}/acme/nope.git/info/refs?service=git-upload-pack",
        sim.url()
    );
    let r = http
        .get(&missing)
        .bearer_auth("good")
        .send()
        .await
        .expect("answers");
    assert_eq!(r.status().as_u16(), 404);
    assert_eq!(
        r.text().await.unwrap_or_default().trim(),
        "Repository not found."
    );
    let receive = format!("{}/info/refs?service=git-receive-pack", sim.git_url("fd"));
    let r = http
        .get(&receive)
        .bearer_auth("good")
        .send()
        .await
        .expect("answers");
    assert_eq!(r.status().as_u16(), 403);

    let l = sim.ledger();
    assert_eq!(
        (l.rest_requests, l.graphql_queries > 0),
        (0, true),
        "git spends no REST budget"
    );
    assert!(l.git_info_refs >= 7 && l.git_upload_packs >= 5, "{l:?}");
    assert!(
        l.git_fetches["fd"] >= 3 && l.git_fetches["synth"] >= 2,
        "{l:?}"
    );
    assert!(l.git_requests_by_token["good"] >= 12, "{l:?}");
    assert!(l.git_refused >= 6, "{l:?}");
    assert_eq!(
        l.graphql_queries, 2,
        "only the two GraphQL queries of this test were counted as GraphQL"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphql_history_is_git_rev_list_at_a_point_a_page_with_linked_authors() {
    let sim = start(vec![fd()], good_tokens()).await;
    let dir = sim.git_dir("fd").expect("fd is served");
    let head = head_of(&sim, "fd").await["defaultBranchRef"]["target"]["oid"]
        .as_str()
        .expect("a head")
        .to_string();
    let want = lines(&ok({
        let mut c = git(Some(&dir));
        c.args(["rev-list", &head]);
        c
    }));
    assert!(want.len() > 1_900, "the fd bundle holds ~2,000 commits");
    let (oids, costs, users) = graphql_history(&sim, "fd", &head).await;
    assert_eq!(
        oids, want,
        "history lists git rev-list's commits in its order"
    );
    assert!(
        costs.iter().all(|c| *c == 1),
        "a page of 100 costs 1 point: {costs:?}"
    );
    assert_eq!(costs.len(), want.len().div_ceil(100));
    let emails: BTreeMap<String, String> = lines(&ok({
        let mut c = git(Some(&dir));
        c.args(["log", "--format=%H %ae", &head]);
        c
    }))
    .into_iter()
    .filter_map(|l| {
        l.split_once(' ')
            .map(|(a, b)| (a.to_string(), b.to_string()))
    })
    .collect();
    let (mut linked, mut unlinked) = (0, 0);
    for (oid, user) in &users {
        let truth = linked_user(&emails[oid]);
        match truth {
            Some((id, login)) => {
                linked += 1;
                assert_eq!(user, &json!({"databaseId": id, "login": login}), "{oid}");
            }
            None => {
                unlinked += 1;
                assert_eq!(user, &Value::Null, "{oid}");
            }
        }
    }
    assert!(
        linked > 0 && unlinked > 0,
        "{linked} linked, {unlinked} not"
    );

    // From an older commit: its own history; an unknown oid: null, as on GitHub.
    let older = &want[500];
    let (from_older, _, _) = graphql_history(&sim, "fd", older).await;
    assert_eq!(from_older.first(), Some(older));
    let a = graphql(
        &sim,
        HISTORY,
        json!({"owner": "acme", "name": "fd", "head": "0123456789012345678901234567890123456789", "first": 10}),
    )
    .await;
    assert_eq!(a["data"]["repository"]["object"], Value::Null, "{a}");
    let a = graphql(
        &sim,
        HISTORY,
        json!({"owner": "acme", "name": "fd", "head": head, "first": 101}),
    )
    .await;
    assert_eq!(a["errors"][0]["type"], json!("EXCESSIVE_PAGINATION"), "{a}");
    let a = graphql(
        &sim,
        HISTORY,
        json!({"owner": "acme", "name": "repo-000", "head": head, "first": 10}),
    )
    .await;
    assert_eq!(
        a["data"]["repository"]["object"],
        Value::Null,
        "no git content: {a}"
    );
    // The organization's listing holds the git repository with the same fields.
    let a = graphql(&sim, ORG_REPOSITORIES, json!({"org": "acme"})).await;
    let nodes = a["data"]["organization"]["repositories"]["nodes"]
        .as_array()
        .expect("nodes")
        .clone();
    let fd_node = nodes
        .iter()
        .find(|n| n["name"] == json!("fd"))
        .expect("fd listed");
    assert_eq!(fd_node["defaultBranchRef"]["target"]["oid"], json!(head));
    assert_eq!(
        fd_node["databaseId"],
        json!(github_sim::git::repo_database_id("fd"))
    );
    assert!(
        nodes.iter().all(|n| n["defaultBranchRef"]["target"]["oid"]
            .as_str()
            .is_some_and(|o| o.len() == 40)),
        "every repository has a 40-hex head: {nodes:?}"
    );
}

#[test]
fn linked_users_follow_githubs_noreply_emails_and_a_stable_hash() {
    assert_eq!(
        linked_user("583231+octocat@users.noreply.github.com"),
        Some((583231, "octocat".into()))
    );
    assert_eq!(
        linked_user("583231+OctoCat@Users.NoReply.GitHub.com"),
        linked_user("583231+octocat@users.noreply.github.com")
    );
    assert_eq!(linked_user("not an email"), None);
    assert_eq!(
        linked_user("Ada@Example.com"),
        linked_user("ada@example.com")
    );
    let emails: Vec<String> = (0..3000).map(|i| format!("dev{i}@example.org")).collect();
    let linked = emails.iter().filter(|e| linked_user(e).is_some()).count();
    assert!(
        (1800..2200).contains(&linked),
        "about two thirds linked: {linked}"
    );
    let ids: BTreeSet<i64> = emails
        .iter()
        .filter_map(|e| linked_user(e))
        .map(|u| u.0)
        .collect();
    assert!(ids.len() > linked - 5, "ids differ between emails");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_and_force_pushes_move_the_head_history_and_what_a_fetch_gets() {
    let sim = start(vec![synthetic("synth", 200)], good_tokens()).await;
    let served = sim.git_dir("synth").expect("served");
    let tmp = tempfile::tempdir().expect("a temp dir");
    let clone = tmp.path().join("c.git");
    ok(authed(
        "good",
        None,
        &[
            "clone",
            "-q",
            "--mirror",
            &sim.git_url("synth"),
            clone.to_str().unwrap(),
        ],
    ));
    let rev = |dir: &Path, args: &[&str]| -> Vec<String> {
        lines(&ok({
            let mut c = git(Some(dir));
            c.args(args);
            c
        }))
    };
    let before = head_of(&sim, "synth").await;
    let old = before["defaultBranchRef"]["target"]["oid"]
        .as_str()
        .unwrap()
        .to_string();

    // A fetch when nothing moved transfers nothing: a ref listing, no upload of objects.
    let fetches = |sim: &Simulator| sim.ledger().git_fetches.get("synth").copied().unwrap_or(0);
    let f0 = fetches(&sim);
    ok(authed("good", Some(&clone), &["fetch", "-q", "origin"]));
    assert_eq!(fetches(&sim), f0, "an unmoved head costs no fetch");

    let (status, push) = change(
        &sim,
        json!({"git_push": {"repo": "synth", "commits": 5}, "seed": 3}),
    )
    .await;
    assert_eq!(status, 200, "{push}");
    let new = push["new_head"].as_str().expect("a new head").to_string();
    assert_eq!(push["old_head"], json!(old));
    assert_eq!(push["dropped"], json!([]));
    let added: Vec<String> = serde_json::from_value(push["added"].clone()).expect("added shas");
    assert_eq!(added, rev(&served, &["rev-list", &new, &format!("^{old}")]));
    assert_eq!(added.len(), 5);
    assert_eq!(
        rev(&served, &["rev-list", "--merges", &new, &format!("^{old}")]).len(),
        1,
        "a merge among them"
    );
    let raw = rev(
        &served,
        &["log", "--raw", "-M", "--format=", &new, &format!("^{old}")],
    )
    .join("\n");
    assert!(
        raw.contains("\tR100\t") || raw.contains(" R100\t"),
        "an exact rename:\n{raw}"
    );
    assert!(
        raw.contains(" A\t") && raw.contains(" M\t"),
        "adds and edits:\n{raw}"
    );
    let old_time = ok({
        let mut c = git(Some(&served));
        c.args(["log", "-1", "--format=%ct", &old]);
        c
    });
    for sha in &added {
        let t = ok({
            let mut c = git(Some(&served));
            c.args(["log", "-1", "--format=%ct", sha]);
            c
        });
        assert!(
            t.parse::<i64>().unwrap() > old_time.parse::<i64>().unwrap(),
            "dated after the head"
        );
    }
    let after = head_of(&sim, "synth").await;
    assert_eq!(after["defaultBranchRef"]["target"]["oid"], json!(new));
    assert_ne!(after["pushedAt"], before["pushedAt"]);
    let (history, _, _) = graphql_history(&sim, "synth", &new).await;
    assert_eq!(history, rev(&served, &["rev-list", &new]));
    ok(authed("good", Some(&clone), &["fetch", "-q", "origin"]));
    assert_eq!(rev(&clone, &["rev-parse", "HEAD"]), vec![new.clone()]);
    assert_eq!(fetches(&sim), f0 + 1, "the push costs one fetch");

    // Force-push: three first-parent commits dropped, two new ones.
    let (status, force) = change(
        &sim,
        json!({"git_force_push": {"repo": "synth", "drop": 3, "commits": 2}, "seed": 4}),
    )
    .await;
    assert_eq!(status, 200, "{force}");
    let forced = force["new_head"].as_str().expect("a head").to_string();
    let dropped: Vec<String> = serde_json::from_value(force["dropped"].clone()).expect("dropped");
    let added: Vec<String> = serde_json::from_value(force["added"].clone()).expect("added");
    assert_eq!(
        dropped,
        rev(&served, &["rev-list", &new, &format!("^{forced}")])
    );
    assert_eq!(
        added,
        rev(&served, &["rev-list", &forced, &format!("^{new}")])
    );
    assert_eq!(added.len(), 2);
    assert!(
        dropped.len() >= 3,
        "at least the three first-parent commits: {dropped:?}"
    );
    let base = rev(&served, &["rev-parse", &format!("{new}~3")]);
    assert_eq!(
        rev(&served, &["rev-parse", &format!("{forced}~2")]),
        base,
        "rebuilt on HEAD~3"
    );
    let mut c = git(Some(&served));
    c.args(["merge-base", "--is-ancestor", &new, &forced]);
    assert!(
        !out(c).status.success(),
        "the old head is no ancestor of the new one"
    );
    let (history, _, _) = graphql_history(&sim, "synth", &forced).await;
    assert_eq!(history, rev(&served, &["rev-list", &forced]));
    assert!(
        dropped.iter().all(|d| !history.contains(d)),
        "dropped commits are gone from the history"
    );
    assert_eq!(
        head_of(&sim, "synth").await["defaultBranchRef"]["target"]["oid"],
        json!(forced)
    );
    ok(authed(
        "good",
        Some(&clone),
        &["fetch", "-q", "--force", "origin"],
    ));
    assert_eq!(rev(&clone, &["rev-parse", "HEAD"]), vec![forced]);

    // What /_sim/change refuses.
    for bad in [
        json!({"git_push": {"repo": "nope", "commits": 1}}),
        json!({"git_push": {"repo": "repo-000", "commits": 1}}),
        json!({"git_push": {"repo": "synth", "commits": 1, "drop": 1}}),
        json!({"git_force_push": {"repo": "synth", "commits": 1}}),
        json!({"git_force_push": {"repo": "synth", "drop": 100000, "commits": 1}}),
    ] {
        let (status, answer) = change(&sim, bad.clone()).await;
        assert_eq!(status, 400, "{bad}: {answer}");
        assert!(answer["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
}

/// `git log` of a generated history, with the facts the assertions read.
struct Shape {
    commits: usize,
    merges: Vec<(String, Vec<String>, i64)>,
    times: BTreeMap<String, i64>,
    raw: String,
    authors: BTreeSet<String>,
    committer_differs: usize,
}

fn shape(dir: &Path) -> Shape {
    let log = ok({
        let mut c = git(Some(dir));
        c.args(["log", "--format=%H|%P|%ct|%ae|%ce"]);
        c
    });
    let mut s = Shape {
        commits: 0,
        merges: Vec::new(),
        times: BTreeMap::new(),
        raw: String::new(),
        authors: BTreeSet::new(),
        committer_differs: 0,
    };
    for l in log.lines() {
        let f: Vec<&str> = l.split('|').collect();
        let t: i64 = f[2].parse().expect("a time");
        s.commits += 1;
        s.times.insert(f[0].into(), t);
        s.authors.insert(f[3].into());
        if f[3] != f[4] {
            s.committer_differs += 1;
        }
        let parents: Vec<String> = f[1]
            .split(' ')
            .filter(|p| !p.is_empty())
            .map(String::from)
            .collect();
        if parents.len() > 1 {
            s.merges.push((f[0].into(), parents, t));
        }
    }
    s.raw = ok({
        let mut c = git(Some(dir));
        c.args([
            "log",
            "--numstat",
            "--raw",
            "-M",
            "-C",
            "--find-copies-harder",
            "--diff-merges=first-parent",
            "--format=commit %H %s",
        ]);
        c
    });
    s
}

#[test]
fn synthetic_histories_are_deterministic_and_hold_every_kind_of_change() {
    let tmp = tempfile::tempdir().expect("a temp dir");
    let a = write_synthetic(400, 9, &tmp.path().join("a.git")).expect("generated");
    let b = write_synthetic(400, 9, &tmp.path().join("b.git")).expect("generated");
    let c = write_synthetic(400, 10, &tmp.path().join("c.git")).expect("generated");
    assert_eq!(a.head, b.head, "the same seed gives the same head");
    assert_ne!(a.head, c.head, "another seed another history");
    assert!(
        write_synthetic(5, 9, &tmp.path().join("a.git")).is_err(),
        "a used directory is refused"
    );

    let dir = tmp.path().join("a.git");
    let s = shape(&dir);
    assert_eq!(s.commits, 400);
    let share = s.merges.len() as f64 / 400.0;
    assert!((0.12..0.25).contains(&share), "merges: {share}");
    assert_eq!(s.merges.len(), a.merges);
    // Merges with the topic branch as first parent: "Merge branch 'main' into topic-N".
    let first_parent = ok({
        let mut c = git(Some(&dir));
        c.args(["log", "--first-parent", "--format=%s"]);
        c
    });
    assert!(a.reversed_merges > 0 && first_parent.contains("Merge branch 'main' into topic-"));
    // Some merges are dated before one of their parents.
    assert!(
        s.merges
            .iter()
            .any(|(_, ps, t)| ps.iter().any(|p| s.times[p] > *t)),
        "a non-monotonic merge date"
    );
    let raw = &s.raw;
    for (what, needle) in [
        ("an exact rename", " R100\t"),
        ("a deletion", " D\t"),
        ("a binary file", "-\t-\t"),
        ("a mode-only change", ":100644 100755 "),
        ("a symlink", ":000000 120000 "),
        ("a space in a name", "docs/with space.md"),
        (
            "unicode in a name",
            "\\303\\274n\\303\\257c\\303\\266d\\303\\251",
        ),
        ("a quote in a name", "quote\\\"d"),
        ("a leading dash", "\t-leading-dash.txt"),
        ("a tab in a name", "notes/tab\\there.txt"),
        ("an empty file", " e69de29 A\t"),
    ] {
        assert!(raw.contains(needle), "{what}: {needle}");
    }
    let statuses: Vec<&str> = raw
        .lines()
        .filter(|l| l.starts_with(':'))
        .filter_map(|l| l.split('\t').next()?.rsplit(' ').next())
        .collect();
    assert!(
        statuses
            .iter()
            .any(|st| st.starts_with('R') && *st != "R100"),
        "a rename with edits"
    );
    assert!(statuses.iter().any(|st| st.starts_with('C')), "a copy");
    let mode_only = raw.lines().any(|l| {
        let f: Vec<&str> = l.split(' ').collect();
        l.starts_with(':')
            && f.len() >= 5
            && f[0] != format!(":{}", f[1])
            && f[2] == f[3]
            && (f[0] == ":100644" && f[1] == "100755" || f[0] == ":100755" && f[1] == "100644")
    });
    assert!(mode_only, "an executable-bit-only change");
    // An empty (non-merge) commit: no file line after its header.
    let plain = ok({
        let mut c = git(Some(&dir));
        c.args(["log", "--no-merges", "--raw", "--format=commit %H"]);
        c
    });
    let empty = plain
        .split("commit ")
        .filter(|b| !b.trim().is_empty())
        .any(|b| !b.lines().skip(1).any(|l| l.starts_with(':')));
    assert!(empty, "an empty commit");
    let root = ok({
        let mut c = git(Some(&dir));
        c.args(["rev-list", "--max-parents=0", "HEAD"]);
        c
    });
    let bytes = out({
        let mut c = git(Some(&dir));
        c.args(["cat-file", "blob", &format!("{root}:no-newline.txt")]);
        c
    })
    .stdout;
    assert!(!bytes.is_empty());
    assert_ne!(bytes.last(), Some(&b'\n'), "a file without a final newline");
    let messages = ok({
        let mut c = git(Some(&dir));
        c.args(["log", "--format=%B%x00"]);
        c
    });
    assert!(messages.chars().any(|c| !c.is_ascii()), "unicode messages");
    assert!(s.authors.len() >= 8, "authors: {:?}", s.authors);
    assert!(s
        .authors
        .iter()
        .any(|a| a.ends_with("@users.noreply.github.com")));
    assert!(s.committer_differs > 10, "committers other than the author");
    let (min, max) = (
        s.times.values().min().unwrap(),
        s.times.values().max().unwrap(),
    );
    assert!(max - min > 2 * 365 * 86_400, "dates spread over years");
}

/// The benchmark's size: 50,000 commits in seconds (the time is printed, not asserted).
#[test]
fn fifty_thousand_commits_are_generated_with_fast_import() {
    let tmp = tempfile::tempdir().expect("a temp dir");
    let started = std::time::Instant::now();
    let r = write_synthetic(50_000, 3, &tmp.path().join("big.git")).expect("generated");
    println!(
        "50,000 synthetic commits ({} merges) in {:.1} s",
        r.merges,
        started.elapsed().as_secs_f64()
    );
    let count = ok({
        let mut c = git(Some(&tmp.path().join("big.git")));
        c.args(["rev-list", "--count", "HEAD"]);
        c
    });
    assert_eq!(count, "50000");
    assert!(r.merges > 5_000);
}

#[tokio::test]
async fn tokens_of_one_user_share_one_budget_and_viewer_answers_the_user() {
    let options = SimOptions {
        tokens: vec!["solo".into()],
        token_users: [("a1", "alice"), ("a2", "alice"), ("b1", "bob")]
            .into_iter()
            .map(|(t, u)| (t.to_string(), u.to_string()))
            .collect(),
        ..SimOptions::default()
    };
    let sim = start(vec![], options).await;
    let q = "{ rateLimit { remaining used } viewer { login databaseId } }";
    let a1 = graphql_as(&sim, "a1", q, json!({})).await;
    let a2 = graphql_as(&sim, "a2", q, json!({})).await;
    let b1 = graphql_as(&sim, "b1", q, json!({})).await;
    let solo = graphql_as(&sim, "solo", q, json!({})).await;
    assert_eq!(a1["data"]["rateLimit"]["used"], json!(1));
    assert_eq!(
        a2["data"]["rateLimit"]["used"],
        json!(2),
        "alice's two tokens share one budget"
    );
    assert_eq!(b1["data"]["rateLimit"]["used"], json!(1), "bob has his own");
    assert_eq!(
        solo["data"]["rateLimit"]["used"],
        json!(1),
        "an unmapped token has its own"
    );
    assert_eq!(a1["data"]["viewer"]["login"], json!("alice"));
    assert_eq!(a1["data"]["viewer"], a2["data"]["viewer"]);
    assert_eq!(b1["data"]["viewer"]["login"], json!("bob"));
    assert_ne!(
        a1["data"]["viewer"]["databaseId"],
        b1["data"]["viewer"]["databaseId"]
    );
    // REST: the same shared budget, and GET /user answers the user.
    let http = reqwest::Client::new();
    let user = |t: &'static str| {
        http.get(format!("{}/user", sim.url()))
            .bearer_auth(t)
            .send()
    };
    let r1 = user("a1").await.expect("answers");
    let remaining1: u64 = r1.headers()["x-ratelimit-remaining"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let body: Value = r1.json().await.expect("JSON");
    assert_eq!(body["login"], json!("alice"));
    assert_eq!(body["id"], a1["data"]["viewer"]["databaseId"]);
    let r2 = user("a2").await.expect("answers");
    let remaining2: u64 = r2.headers()["x-ratelimit-remaining"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        remaining2,
        remaining1 - 1,
        "REST counts alice's tokens together"
    );
    let r3 = user("b1").await.expect("answers");
    let remaining3: u64 = r3.headers()["x-ratelimit-remaining"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(remaining3, remaining1, "bob's REST budget is his own");
    let r = user("stranger").await.expect("answers");
    assert_eq!(
        r.status().as_u16(),
        401,
        "tokens outside both lists are refused"
    );
}
