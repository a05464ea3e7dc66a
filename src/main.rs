//! The `ghstats` command: parses the configuration, runs a job, prints its result.

use anyhow::Context;
use clap::Parser;
use ghstats::config::{Cli, Command, Config, RepoScope};
use ghstats::github::{ClientOptions, GithubClient, Window};
use ghstats::jobs::{self, load::LoadFilter, CollectOptions, Progress};
use ghstats::lake::checkpoint::{CollectionKind, Status};
use ghstats::lake::Lake;
use ghstats::names::OrgName;
use ghstats::warehouse::{self, Warehouse};
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

fn org(config: &Config) -> anyhow::Result<OrgName> {
    config
        .org
        .clone()
        .context("no organization: set GITHUB_ORG or pass --org")
}

async fn open_warehouse(config: &Config) -> anyhow::Result<Box<dyn Warehouse>> {
    let wh = warehouse::open(&config.warehouse_url).await?;
    wh.ensure_tables()
        .await
        .with_context(|| format!("preparing the tables in {}", config.warehouse_url))?;
    Ok(wh)
}

/// What the jobs that read storage need: the organization, the lake and the warehouse.
async fn stored(config: &Config) -> anyhow::Result<(OrgName, Lake, Box<dyn Warehouse>)> {
    if !config.persist_to_gcs {
        anyhow::bail!("PERSIST_TO_GCS=false: nothing is kept in storage to load or summarise");
    }
    let org = org(config)?;
    let lake = Lake::open(&config.storage_url, config.storage_endpoint.as_ref())?;
    Ok((org, lake, open_warehouse(config).await?))
}

fn print_json<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = cli.config;
    match cli.command {
        Command::Init => {
            let wh = warehouse::open(&config.warehouse_url).await?;
            wh.init()
                .await
                .with_context(|| format!("creating the tables in {}", config.warehouse_url))?;
            print_json(&serde_json::json!({
                "warehouse": config.warehouse_url.to_string(),
                "tables": ghstats::tables::ALL.iter().map(|t| t.name).collect::<Vec<_>>(),
                "row_counts": wh.row_counts().await?,
            }))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Collect(a) => {
            let window = jobs::collect::resolve_window(
                chrono::Utc::now(),
                a.hours,
                a.since,
                a.until,
                config.default_lookback_days,
            )?;
            collect(
                &config,
                CollectionKind::Collect,
                window,
                a.scope,
                !a.no_load,
            )
            .await
        }
        Command::Backfill(a) => {
            let window = jobs::collect::resolve_window(
                chrono::Utc::now(),
                Some(a.days * 24),
                None,
                None,
                config.default_lookback_days,
            )?;
            collect(
                &config,
                CollectionKind::Backfill,
                window,
                a.scope,
                !a.no_load,
            )
            .await
        }
        Command::Load(a) => {
            let (org, lake, wh) = stored(&config).await?;
            let filter = LoadFilter {
                repo: a.repo,
                date: a.date,
                collection_id: a.collection_id,
            };
            let result = jobs::load::load(wh.as_ref(), &lake, &org, &filter).await?;
            print_json(&result)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Summary(a) => {
            let (org, lake, wh) = stored(&config).await?;
            let s = jobs::summary::summary(&lake, &org, wh.as_ref()).await?;
            if a.json {
                print_json(&s)?;
            } else {
                print!("{}", jobs::summary::render(&s));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn collect(
    config: &Config,
    kind: CollectionKind,
    window: Window,
    scope: RepoScope,
    load: bool,
) -> anyhow::Result<ExitCode> {
    let org = org(config)?;
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
    // PERSIST_TO_GCS=false: the chunks live in a temporary directory, removed after the load.
    let scratch = if config.persist_to_gcs {
        None
    } else {
        if !load {
            anyhow::bail!("PERSIST_TO_GCS=false keeps chunks only until they are loaded: it cannot be combined with --no-load");
        }
        Some(tempfile::tempdir().context("creating a temporary directory for the chunks")?)
    };
    let lake = match &scratch {
        Some(dir) => Lake::open(
            &ghstats::config::StorageUrl::Local(dir.path().to_path_buf()),
            None,
        )?,
        None => Lake::open(&config.storage_url, config.storage_endpoint.as_ref())?,
    };
    // The warehouse is opened first: a bad WAREHOUSE_URL fails before any GitHub call.
    let wh = if load {
        Some(open_warehouse(config).await?)
    } else {
        None
    };
    let progress = Arc::new(Progress::new(std::io::stderr().is_terminal()));
    let reporter = progress.spawn_reporter(client.clone(), Duration::from_secs(10));
    let opts = CollectOptions {
        org: org.clone(),
        kind,
        window,
        scope,
        chunk_size: config.chunk_size,
        max_workers: config.max_workers,
        page_size: config.page_size,
        page_size_max: config.page_size_max.max(config.page_size),
        deadline,
        stop: Default::default(),
    };
    let result = jobs::collect(&client, &lake, &opts, &progress).await;
    reporter.abort();
    progress.finish();
    let mut result = result?;
    if let Some(wh) = &wh {
        let loaded = jobs::load::load_collection(wh.as_ref(), &lake, &org, &result.collection_id)
            .await
            .with_context(|| format!("loading collection {} (its chunks are stored; `ghstats load --collection-id {}` retries)", result.collection_id, result.collection_id))?;
        result.load = Some(loaded);
    }
    print_json(&result)?;
    Ok(match result.status {
        Status::Completed | Status::Partial | Status::Running => ExitCode::SUCCESS,
        Status::Failed => ExitCode::FAILURE,
    })
}
