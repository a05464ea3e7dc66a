//! `github-sim`: serves a synthetic organization like api.github.com, for demos and benchmarks.

use clap::Parser;
use github_sim::{OrgSpec, SimOptions, Simulator};

/// Serve a seeded synthetic GitHub organization over GitHub's REST and GraphQL APIs.
#[derive(Parser, Debug)]
#[command(name = "github-sim", version)]
struct Args {
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
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut spec = OrgSpec::new(&args.org, args.repos, args.prs, args.seed);
    spec.days = args.days;
    let options = SimOptions {
        graphql_limit: args.graphql_limit,
        rest_limit: args.rest_limit,
        tokens: Vec::new(),
        ..SimOptions::default()
    };
    let sim = Simulator::start(&spec, options, args.port).await?;
    let world = sim.world();
    println!(
        "github-sim serving org {} ({} repositories, {} pull requests) at {}",
        args.org,
        world.repositories.len(),
        world.pull_request_count(),
        sim.url()
    );
    tokio::signal::ctrl_c().await?;
    sim.stop().await;
    Ok(())
}
