//! The `ghstats` command: parses the configuration, runs a job, prints its result.

use anyhow::Context;
use clap::Parser;
use ghstats::config::{Cli, Command, Config};
use ghstats::exit;
use ghstats::jobs::runner::{JobError, Request, Runner};
use ghstats::jobs::{self, load::LoadFilter};
use ghstats::lake::checkpoint::{CollectionKind, Status};
use ghstats::warehouse;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;

#[tokio::main]
async fn main() -> ExitCode {
    // A .env file fills in what the environment does not set.
    let _ = dotenvy::dotenv();
    let cli = Cli::parse();
    let telemetry = ghstats::telemetry::init(cli.config.log_format);
    if let Some(e) = &telemetry.otlp_error {
        tracing::warn!(error = %e, "Traces are not exported.");
    }
    let code = match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            // One readable line: the context chain, outermost first.
            let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
            eprintln!("error: {}", chain.join(": "));
            ExitCode::FAILURE
        }
    };
    if telemetry.exporting() {
        // The exporter blocks while it sends the last batch.
        let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
    }
    code
}

fn print_json<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = cli.config;
    match cli.command {
        Command::Check(a) => {
            let report = jobs::check::check(&runner(&config), a.days, &a.scope).await;
            if a.json {
                print_json(&report)?;
            } else {
                print!("{}", jobs::check::render(&report));
            }
            Ok(ExitCode::from(if report.ok {
                exit::COMPLETED
            } else {
                exit::FAILED
            }))
        }
        Command::Init => {
            let wh = warehouse::open(&config.warehouse_url).await?;
            wh.init()
                .await
                .with_context(|| format!("creating the tables in {}", config.warehouse_url))?;
            print_json(&serde_json::json!({
                "warehouse": config.warehouse_url.to_string(),
                "tables": ghstats::tables::every().map(|t| t.name).collect::<Vec<_>>(),
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
                Request::Collect {
                    kind: if a.sweep_comments {
                        CollectionKind::Sweep
                    } else {
                        CollectionKind::Collect
                    },
                    window,
                    scope: a.scope,
                },
                !a.no_load,
                a.json,
                a.force,
            )
            .await
        }
        Command::Backfill(a) => {
            let window = jobs::collect::backfill_window(chrono::Utc::now(), a.days, a.all)?;
            collect(
                &config,
                Request::Collect {
                    kind: CollectionKind::Backfill,
                    window,
                    scope: a.scope,
                },
                !a.no_load,
                a.json,
                a.force,
            )
            .await
        }
        Command::Load(a) if a.stars => {
            let loads = runner(&config)
                .load_stars(a.collection_id.as_deref())
                .await
                .map_err(job_error)?;
            let crawls: Vec<serde_json::Value> = loads
                .into_iter()
                .map(|(crawl_id, load)| serde_json::json!({"crawl_id": crawl_id, "load": load}))
                .collect();
            print_json(&serde_json::json!({ "crawls": crawls }))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Load(a) => {
            let filter = LoadFilter {
                repo: a.repo,
                date: a.date,
                collection_id: a.collection_id,
            };
            let result = runner(&config).load(&filter).await.map_err(job_error)?;
            print_json(&result)?;
            // Missing chunks (deleted by wipe) are reported in the result, not an error.
            Ok(ExitCode::from(damaged_status(
                result.bad_chunks.iter(),
                exit::COMPLETED,
            )))
        }
        Command::Resume(a)
            if runner(&config)
                .is_stars_crawl(&a.collection_id)
                .await
                .unwrap_or(false) =>
        {
            let mut runner = runner(&config);
            runner.force_lock = a.force;
            stop_on_signal(&runner, "Stopping after the pages in hand.");
            source_exit(runner.stars_resume(&a.collection_id).await, |r| r.status)
        }
        Command::Resume(a) => {
            collect(
                &config,
                Request::Resume {
                    collection_id: a.collection_id,
                },
                !a.no_load,
                a.json,
                a.force,
            )
            .await
        }
        Command::Wipe(a) => {
            let result = runner(&config)
                .wipe(&a.repo, a.confirm, a.warehouse)
                .await
                .map_err(job_error)?;
            if !result.confirmed {
                anyhow::bail!("{}", result.message);
            }
            print_json(&result)?;
            Ok(ExitCode::from(damaged_status(
                result.damaged.iter(),
                exit::COMPLETED,
            )))
        }
        Command::Scheduled(a) => scheduled(&config, a).await,
        Command::Serve(a) => {
            let limits = ghstats::serve::ConnectionLimits::from(&a);
            let auth = match a.auth_mode {
                ghstats::config::AuthMode::None => ghstats::serve::Auth::None,
                ghstats::config::AuthMode::Token => ghstats::serve::Auth::Token(
                    a.auth_token.context("AUTH_MODE=token needs AUTH_TOKEN")?,
                ),
                ghstats::config::AuthMode::Oidc => ghstats::serve::Auth::Oidc(Arc::new(
                    ghstats::oidc::OidcVerifier::new(
                        a.oidc_audience,
                        a.oidc_allowed_emails,
                        a.oidc_jwks_url,
                    )
                    .map_err(anyhow::Error::msg)?,
                )),
            };
            let state = Arc::new(ghstats::serve::AppState::new(
                Runner::new(config.clone(), false),
                auth,
            ));
            ghstats::serve::serve(
                state,
                std::net::SocketAddr::new(a.host, a.port),
                limits,
                None,
                shutdown_signal(),
            )
            .await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Gharchive(a) => {
            use ghstats::gharchive::job::{Selection, Shard};
            let selection = match (a.from, a.to, a.hours) {
                (Some(from), Some(to), _) => Selection::Range { from, to },
                (_, _, Some(n)) => Selection::Newest(n),
                _ => Selection::SinceLast,
            };
            // A range GH Archive cannot have is a usage error, found before any lock is taken.
            if let Err(e) = selection.check(chrono::Utc::now()) {
                eprintln!("error: {e}");
                return Ok(ExitCode::from(exit::USAGE));
            }
            // Cloud Run Jobs: each task takes its shard of the hours. Either variable alone,
            // or a pair that is no shard, is a setting error (exit 2), never ignored.
            let shard = match a.shard {
                Some(s) => Some(s),
                None => match (
                    std::env::var("CLOUD_RUN_TASK_INDEX").ok(),
                    std::env::var("CLOUD_RUN_TASK_COUNT").ok(),
                ) {
                    (None, None) => None,
                    (Some(i), Some(n)) => match format!("{i}/{n}").parse::<Shard>() {
                        Ok(s) => Some(s),
                        Err(e) => {
                            eprintln!("error: CLOUD_RUN_TASK_INDEX/COUNT: {e}");
                            return Ok(ExitCode::from(exit::USAGE));
                        }
                    },
                    _ => {
                        eprintln!("error: CLOUD_RUN_TASK_INDEX and CLOUD_RUN_TASK_COUNT go together: set both or neither");
                        return Ok(ExitCode::from(exit::USAGE));
                    }
                },
            };
            let runner = runner(&config);
            stop_on_signal(&runner, "Stopping after the hour in hand.");
            let result = runner.gharchive(selection, a.force, shard).await;
            source_exit(result, |r| r.status)
        }
        Command::Stars(a) => {
            let params = ghstats::stars::crawl::Params {
                query: a.query,
                target: a.target,
                created_from: a.created_from,
            };
            let mut runner = runner(&config);
            runner.force_lock = a.force;
            stop_on_signal(&runner, "Stopping after the pages in hand.");
            let result = runner
                .stars(params, a.rest_search, a.workers as usize)
                .await;
            source_exit(result, |r| r.status)
        }
        Command::Commits(a) => {
            use ghstats::commits::job::{parse_repo, Selection};
            let mut names = a.repos.clone();
            if let Some(file) = &a.repos_file {
                let text = match std::fs::read_to_string(file) {
                    Ok(t) => t,
                    Err(e) => {
                        eprintln!("error: reading --repos-file {}: {e}", file.display());
                        return Ok(ExitCode::from(exit::USAGE));
                    }
                };
                for (i, line) in text.lines().enumerate() {
                    let line = line.trim();
                    if line.is_empty() || line.starts_with('#') {
                        continue;
                    }
                    match parse_repo(line) {
                        Ok(p) => names.push(p),
                        Err(e) => {
                            eprintln!("error: {}:{}: {e}", file.display(), i + 1);
                            return Ok(ExitCode::from(exit::USAGE));
                        }
                    }
                }
            }
            names.sort();
            names.dedup();
            if a.repos_file.is_some() && names.is_empty() {
                eprintln!("error: the repos file names no repository (one owner/name a line)");
                return Ok(ExitCode::from(exit::USAGE));
            }
            let selection = if !names.is_empty() {
                Selection::Repos(names)
            } else if let Some(n) = a.top_starred {
                Selection::TopStarred(n)
            } else if let Some(org) = &config.org {
                Selection::Org {
                    org: org.to_string(),
                    include_forks: a.include_forks,
                    include_archived: a.include_archived,
                }
            } else {
                eprintln!("error: which repositories? give --repos, --repos-file, --org (or GITHUB_ORG) or --top-starred");
                return Ok(ExitCode::from(exit::USAGE));
            };
            if let (Some(s), Some(u)) = (a.since, a.until) {
                if s >= u {
                    eprintln!("error: --since {s} is not before --until {u}");
                    return Ok(ExitCode::from(exit::USAGE));
                }
            }
            let mut runner = runner(&config);
            runner.force_lock = a.force;
            stop_on_signal(&runner, "Stopping after the batch in hand.");
            let result = runner
                .commits(selection, a.until, a.since, a.batch_commits as usize)
                .await;
            source_exit(result, |r| match r.status.as_str() {
                "completed" => "completed",
                "partial" => "partial",
                _ => "failed",
            })
        }
        Command::Export(a) => {
            use ghstats::jobs::export::{export, Format, Output};
            if a.format == Format::Parquet && a.out == Output::Stdout {
                eprintln!("error: Parquet is not written to standard output: give --out FILE");
                return Ok(ExitCode::from(exit::USAGE));
            }
            // Read only: nothing is created, no write lock is taken.
            let wh = warehouse::open_existing(&config.warehouse_url).await?;
            let result = export(wh.as_ref(), a.table, a.format, &a.out).await?;
            // Standard output holds the rows; the result goes there only beside a file.
            if a.out != Output::Stdout {
                print_json(&result)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::BigquerySchema => {
            print_json(&warehouse::bigquery::terraform_tables())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Summary(a) => {
            let s = runner(&config).summary().await.map_err(job_error)?;
            if a.json {
                print_json(&s)?;
            } else {
                print!("{}", jobs::summary::render(&s));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// SIGTERM or Ctrl-C sets the runner's stop flag: its run finishes what is in hand, writes
/// its checkpoint and releases the lock; `what` is logged.
fn stop_on_signal(runner: &Runner, what: &'static str) {
    let stop = runner.stop.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::warn!("{what}");
        stop.store(true, Ordering::Relaxed);
    });
}

/// Says who holds the lock and what to do (exit status [`exit::LOCKED`]).
fn locked(by: &ghstats::lake::lock::HeldBy) -> ExitCode {
    let advice = match by.process {
        ghstats::lake::lock::HolderProcess::Gone => "rerun with --force to take the lock over now",
        _ => "if that run is gone, rerun with --force to take the lock over now, or wait for the lease to end",
    };
    eprintln!(
        "error: {by}; nothing was done; {advice} (exit status {})",
        exit::LOCKED
    );
    ExitCode::from(exit::LOCKED)
}

/// Prints a GH Archive or stars run's result and gives its exit status from its `status`
/// (`completed`, `partial`, anything else failed). A held lock is exit 4 with advice; a
/// request the job refuses (a search GitHub rejects, a missing token) is exit 2.
fn source_exit<T: serde::Serialize>(
    result: Result<T, JobError>,
    status: impl Fn(&T) -> &'static str,
) -> anyhow::Result<ExitCode> {
    let result = match result {
        Ok(r) => r,
        Err(JobError::Busy(by)) => return Ok(locked(&by)),
        Err(JobError::Invalid(m)) => {
            eprintln!("error: {m}");
            return Ok(ExitCode::from(exit::USAGE));
        }
        Err(e) => return Err(job_error(e)),
    };
    print_json(&result)?;
    Ok(ExitCode::from(match status(&result) {
        "completed" => exit::COMPLETED,
        "partial" => exit::PARTIAL,
        _ => exit::FAILED,
    }))
}

fn runner(config: &Config) -> Runner {
    Runner::new(config.clone(), std::io::stderr().is_terminal())
}

/// A job's error as the CLI reports it.
fn job_error(e: JobError) -> anyhow::Error {
    match e {
        JobError::Failed(e) => e,
        other => anyhow::anyhow!("{other}"),
    }
}

/// Runs a collection job and prints its result: a few lines on a terminal, JSON otherwise or
/// with `json`; `force` takes the lock even while held.
async fn collect(
    config: &Config,
    request: Request,
    load: bool,
    json: bool,
    force: bool,
) -> anyhow::Result<ExitCode> {
    let mut runner = runner(config);
    runner.force_lock = force;
    // SIGTERM or Ctrl-C: finish the page in hand, checkpoint, load, release the lock.
    stop_on_signal(&runner, "Stopping at the next page boundary.");
    let result = match runner.run(request, load).await {
        Ok(r) => r,
        Err(JobError::Busy(by)) => return Ok(locked(&by)),
        Err(e) => return Err(job_error(e)),
    };
    if jobs::report::wants_text(std::io::stdout().is_terminal(), json) {
        print!("{}", jobs::report::render(&result));
    } else {
        print_json(&result)?;
    }
    Ok(ExitCode::from(match result.collection.status {
        Status::Completed => damaged_status(result.damaged_files(), exit::COMPLETED),
        Status::Partial | Status::Running => exit::PARTIAL,
        Status::Failed => exit::FAILED,
    }))
}

/// Names each damaged file on stderr, one line each; `status` when there are none, otherwise
/// [`exit::DAMAGED`].
fn damaged_status<'a>(
    files: impl IntoIterator<Item = &'a ghstats::lake::Damaged>,
    status: u8,
) -> u8 {
    let mut any = false;
    for d in files {
        any = true;
        match &d.set_aside_as {
            Some(to) => eprintln!("damaged: {} ({}); set aside as {to}", d.path, d.reason),
            None => eprintln!("damaged: {} ({}); left out", d.path, d.reason),
        }
    }
    if any {
        exit::DAMAGED
    } else {
        status
    }
}

/// One collection per interval until SIGTERM. Each window reaches back one interval plus a tenth
/// (loads are idempotent, so the overlap costs only a few calls), and an unfinished collection
/// is resumed first, so a slow or failed run skips no window.
async fn scheduled(config: &Config, a: ghstats::config::ScheduledArgs) -> anyhow::Result<ExitCode> {
    let runner = runner(config);
    let stop = runner.stop.clone();
    let (tx, mut stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::warn!("Stopping after the run in hand.");
        stop.store(true, Ordering::Relaxed);
        let _ = tx.send(true);
    });
    let reach = a.interval + a.interval / 10;
    loop {
        let started = std::time::Instant::now();
        let now = chrono::Utc::now();
        let since = now - chrono::Duration::from_std(reach).unwrap_or(chrono::Duration::hours(1));
        let window = jobs::collect::resolve_window(now, None, Some(since), None, 1)?;
        let request = Request::Collect {
            kind: CollectionKind::Collect,
            window,
            scope: a.scope.clone(),
        };
        match runner.run(request, true).await {
            Ok(result) => println!("{}", serde_json::to_string(&result)?),
            // A busy lock or a failed run waits for the next tick; the error is logged.
            Err(e) => tracing::error!(error = %job_error(e), "A scheduled collection failed."),
        }
        if *stopped.borrow() {
            return Ok(ExitCode::SUCCESS);
        }
        let wait = a.interval.saturating_sub(started.elapsed());
        tokio::select! {
            _ = tokio::time::sleep(wait) => {},
            _ = stopped.changed() => return Ok(ExitCode::SUCCESS),
        }
    }
}

/// SIGTERM (what Cloud Run and systemd send) or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
