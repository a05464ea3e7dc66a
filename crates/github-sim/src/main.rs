//! `github-sim`: serves a synthetic organization like api.github.com (and GH Archive hours
//! under `/gharchive/`), for demos and benchmarks; `github-sim gharchive-hour` writes one GH
//! Archive hour to a file.

use anyhow::Context;
use clap::{Parser, Subcommand};
use github_sim::gharchive::{self, GhArchiveSpec, HourQuirks};
use github_sim::{GitRepoSpec, OrgSpec, SimOptions, Simulator};
use std::io::Write;

/// Serve a seeded synthetic GitHub organization over GitHub's REST and GraphQL APIs, and
/// seeded GH Archive hours at /gharchive/YYYY-MM-DD-H.json.gz.
#[derive(Parser, Debug)]
#[command(name = "github-sim", version, args_conflicts_with_subcommands = true)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(clap::Args, Debug)]
struct ServeArgs {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Organization login.
    #[arg(long, default_value = "acme")]
    org: String,
    /// Active repositories (an archived one and a fork are added beside them).
    #[arg(long, default_value_t = 5)]
    repos: usize,
    /// Pull requests across the active repositories.
    #[arg(long, default_value_t = 500)]
    prs: usize,
    /// Seed of the generator: the same seed gives the same organization.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// How many days back pull requests reach.
    #[arg(long, default_value_t = 365)]
    days: i64,
    /// GraphQL points per hour per token.
    #[arg(long, default_value_t = 5000)]
    graphql_limit: u64,
    /// REST requests per hour per token.
    #[arg(long, default_value_t = 5000)]
    rest_limit: u64,
    /// Events in each GH Archive hour served at /gharchive/ (seeded by --seed).
    #[arg(long, default_value_t = 100)]
    gharchive_events: usize,
    /// Public repositories that repository search finds (seeded by --seed), generated on
    /// the first search.
    #[arg(long, default_value_t = 2_000_000)]
    search_repos: u32,
    /// Milliseconds each search page takes (GitHub's take about 1000-3000).
    #[arg(long, default_value_t = 0)]
    search_latency_ms: u64,
    /// REST search requests per minute per token.
    #[arg(long, default_value_t = 30)]
    search_rest_limit: u64,
    /// Serve a real git history as the organization's repository NAME: PATH is a git bundle
    /// or a repository, cloned (bare) into a directory the simulator owns. Served over git's
    /// smart HTTP at {url}/{org}/NAME.git and in GraphQL (defaultBranchRef, object(oid:) {
    /// ... on Commit { history } }). Repeatable.
    #[arg(long = "git-repo", value_name = "NAME=PATH", value_parser = GitRepoSpec::parse_path)]
    git_repos: Vec<GitRepoSpec>,
    /// Serve a synthetic git history of COMMITS commits (seeded by --seed and NAME) as the
    /// organization's repository NAME, like --git-repo. Repeatable.
    #[arg(long = "git-synthetic", value_name = "NAME=COMMITS", value_parser = GitRepoSpec::parse_synthetic)]
    git_synthetic: Vec<GitRepoSpec>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Write one GH Archive hour (gzip NDJSON, as GH Archive serves it) to a file, streaming
    /// in bounded memory, and print its counts.
    GharchiveHour {
        /// The hour: 2024-01-01T15, 2024-01-01T15:00:00Z or 2024-01-01-15.
        #[arg(long)]
        hour: String,
        /// Events in the hour.
        #[arg(long, default_value_t = 150_000)]
        events: usize,
        /// Seed of the generator: the same seed gives the same bytes.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// The hour's quirks as JSON, e.g. '{"duplicates_within": 10, "not_json": 1}'.
        #[arg(long)]
        quirks: Option<String>,
        /// Where to write the .json.gz file.
        #[arg(long)]
        out: std::path::PathBuf,
        /// Also write each distinct event's truth here, one JSON object a line.
        #[arg(long)]
        truth: Option<std::path::PathBuf>,
    },
    /// Write a synthetic git history (merges, renames, copies, binaries, odd names, …) into a
    /// new bare repository with `git fast-import`, and print its head and counts as JSON. The
    /// same seed gives the same head.
    GitSynthetic {
        /// Commits on the default branch (`main`), 1 or more.
        #[arg(long)]
        commits: usize,
        /// Seed of the generator.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// The new bare repository's directory (must not exist, or be empty).
        #[arg(long)]
        out: std::path::PathBuf,
    },
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let result = match args.command {
        Some(Command::GharchiveHour {
            hour,
            events,
            seed,
            quirks,
            out,
            truth,
        }) => gharchive_hour(
            &hour,
            events,
            seed,
            quirks.as_deref(),
            &out,
            truth.as_deref(),
        ),
        Some(Command::GitSynthetic { commits, seed, out }) => git_synthetic(commits, seed, &out),
        None => serve(args.serve).await,
    };
    if let Err(e) = result {
        eprintln!("github-sim: {e:#}");
        std::process::exit(1);
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut spec = OrgSpec::new(&args.org, args.repos, args.prs, args.seed);
    spec.days = args.days;
    spec.git_repos = args
        .git_repos
        .into_iter()
        .chain(args.git_synthetic)
        .collect();
    let options = SimOptions {
        graphql_limit: args.graphql_limit,
        rest_limit: args.rest_limit,
        tokens: Vec::new(),
        population: github_sim::PopulationSpec {
            seed: args.seed,
            size: args.search_repos,
        },
        search_latency_ms: args.search_latency_ms,
        search_rest_limit: args.search_rest_limit,
        ..SimOptions::default()
    };
    let sim = Simulator::start(&spec, options, args.port).await?;
    sim.set_gharchive(GhArchiveSpec::new(args.seed, args.gharchive_events))
        .map_err(anyhow::Error::msg)?;
    let world = sim.world();
    println!(
        "github-sim serving org {} ({} repositories, {} pull requests) at {}",
        args.org,
        world.repositories.len(),
        world.pull_request_count(),
        sim.url()
    );
    for r in world.repositories.iter().filter(|r| r.git_head.is_some()) {
        println!(
            "git repository {}/{} at {} (head {})",
            args.org,
            r.name,
            sim.git_url(&r.name),
            r.git_head.as_deref().unwrap_or("")
        );
    }
    tokio::signal::ctrl_c().await?;
    sim.stop().await;
    Ok(())
}

fn git_synthetic(commits: usize, seed: u64, out: &std::path::Path) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let report = github_sim::git::write_synthetic(commits, seed, out)?;
    let mut json = serde_json::to_value(&report)?;
    json["out"] = serde_json::json!(out.display().to_string());
    json["seconds"] = serde_json::json!(started.elapsed().as_secs_f64());
    println!("{json}");
    Ok(())
}

fn gharchive_hour(
    hour: &str,
    events: usize,
    seed: u64,
    quirks: Option<&str>,
    out: &std::path::Path,
    truth: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let hour = gharchive::parse_hour(hour).map_err(anyhow::Error::msg)?;
    let mut spec = GhArchiveSpec::new(seed, events);
    if let Some(q) = quirks {
        spec.quirks = serde_json::from_str::<HourQuirks>(q).context("reading --quirks")?;
    }
    spec.check().map_err(anyhow::Error::msg)?;
    let file = std::fs::File::create(out).with_context(|| format!("creating {}", out.display()))?;
    let mut truth_out = match truth {
        Some(p) => Some(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => None,
    };
    let mut truth_err = None;
    let counts = gharchive::write_gzip(&spec, hour, file, |e| {
        if let Some(w) = truth_out.as_mut() {
            let written = serde_json::to_writer(&mut *w, e)
                .map_err(std::io::Error::from)
                .and_then(|()| w.write_all(b"\n"));
            if let Err(err) = written {
                truth_err.get_or_insert(err);
            }
        }
    })
    .with_context(|| format!("writing {}", out.display()))?;
    if let Some(err) = truth_err {
        return Err(err).context("writing the truth file");
    }
    if let Some(mut w) = truth_out {
        w.flush().context("writing the truth file")?;
    }
    let gz_bytes = std::fs::metadata(out).map(|m| m.len()).unwrap_or(0);
    println!(
        "{} {}: lines={} events={} duplicates_within={} duplicates_from_previous={} rejected={} json_bytes={} gzip_bytes={}",
        out.display(),
        gharchive::file_name(hour),
        counts.lines,
        counts.events,
        counts.duplicates_within,
        counts.duplicates_from_previous,
        counts.rejected,
        counts.json_bytes,
        gz_bytes
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Args::command().debug_assert();
        let args = Args::try_parse_from([
            "github-sim",
            "gharchive-hour",
            "--hour",
            "2024-01-01T15",
            "--out",
            "x.json.gz",
        ])
        .expect("gharchive-hour parses");
        assert!(matches!(
            args.command,
            Some(Command::GharchiveHour {
                events: 150_000,
                ..
            })
        ));
        let serve = Args::try_parse_from(["github-sim", "--port", "0", "--prs", "20"])
            .expect("serving flags parse");
        assert!(serve.command.is_none() && serve.serve.prs == 20);
        assert_eq!(serve.serve.search_repos, 2_000_000);
        let git = Args::try_parse_from([
            "github-sim",
            "--git-repo",
            "fd=/tmp/fd.bundle",
            "--git-synthetic",
            "big=50000",
            "--git-synthetic",
            "small=3",
        ])
        .expect("git flags parse");
        assert_eq!(git.serve.git_repos.len(), 1);
        assert_eq!(git.serve.git_synthetic.len(), 2);
        for bad in ["fd", "=x", "a b=x", "x.git=y"] {
            assert!(
                Args::try_parse_from(["github-sim", "--git-repo", bad]).is_err(),
                "{bad}"
            );
        }
        assert!(Args::try_parse_from(["github-sim", "--git-synthetic", "s=0"]).is_err());
        let synth = Args::try_parse_from([
            "github-sim",
            "git-synthetic",
            "--commits",
            "10",
            "--out",
            "/tmp/x",
        ])
        .expect("git-synthetic parses");
        assert!(matches!(
            synth.command,
            Some(Command::GitSynthetic {
                commits: 10,
                seed: 1,
                ..
            })
        ));
        let search = Args::try_parse_from([
            "github-sim",
            "--search-latency-ms",
            "1000",
            "--graphql-limit",
            "1000",
        ])
        .expect("search flags parse");
        assert_eq!(
            (search.serve.search_latency_ms, search.serve.graphql_limit),
            (1000, 1000)
        );
    }
}
