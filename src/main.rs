//! The `ghstats` command: parses the configuration, runs a job, prints its result as JSON.

use anyhow::Context;
use clap::Parser;
use ghstats::config::{Cli, Command, Config, RepoScope};
use ghstats::github::{ClientOptions, GithubClient, Window};
use ghstats::jobs::{self, CollectOptions, Progress};
use ghstats::lake::checkpoint::{CollectionKind, Status};
use ghstats::lake::Lake;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::main]
async fn main() -> ExitCode {
    // A .env file fills in what the environment does not set.
    let _ = dotenvy::dotenv();
    let cli = Cli::parse();
    ghstats::telemetry::init(cli.config.log_format);
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            // One readable line: the context chain, outermost first.
            let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
            eprintln!("error: {}", chain.join(": "));
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = cli.config;
    match cli.command {
        Command::Collect(a) => {
            let window = jobs::collect::resolve_window(
                chrono::Utc::now(),
                a.hours,
                a.since,
                a.until,
                config.default_lookback_days,
            )?;
            collect(&config, CollectionKind::Collect, window, a.scope).await
        }
        Command::Backfill(a) => {
            let window = jobs::collect::resolve_window(
                chrono::Utc::now(),
                Some(a.days * 24),
                None,
                None,
                config.default_lookback_days,
            )?;
            collect(&config, CollectionKind::Backfill, window, a.scope).await
        }
    }
}

async fn collect(
    config: &Config,
    kind: CollectionKind,
    window: Window,
    scope: RepoScope,
) -> anyhow::Result<ExitCode> {
    let org = config
        .org
        .clone()
        .context("no organization: set GITHUB_ORG or pass --org")?;
    let tokens = config.all_tokens();
    if tokens.is_empty() {
        anyhow::bail!("no GitHub token: set GITHUB_TOKEN (or GITHUB_TOKENS=a,b,c)");
    }
    let deadline = Instant::now() + config.run_budget;
    let client = GithubClient::new(
        config.api_url.clone(),
        tokens,
        ClientOptions {
            deadline: Some(deadline),
            ..ClientOptions::default()
        },
    )?;
    let lake = Lake::open(&config.storage_url)?;
    let progress = Arc::new(Progress::new(std::io::stderr().is_terminal()));
    let reporter = progress.spawn_reporter(client.clone(), Duration::from_secs(10));
    let opts = CollectOptions {
        org,
        kind,
        window,
        scope,
        chunk_size: config.chunk_size,
        max_workers: config.max_workers,
        page_size: config.page_size,
        page_size_max: config.page_size_max.max(config.page_size),
        deadline,
    };
    let result = jobs::collect(&client, &lake, &opts, &progress).await;
    reporter.abort();
    progress.finish();
    let result = result?;
    println!("{}", serde_json::to_string_pretty(&result)?);
    Ok(match result.status {
        Status::Completed | Status::Partial | Status::Running => ExitCode::SUCCESS,
        Status::Failed => ExitCode::FAILURE,
    })
}
