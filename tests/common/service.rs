//! The service in-process on port 0, for the HTTP tests.

use clap::Parser;
use ghstats::jobs::runner::Runner;
use ghstats::serve::{AppState, Auth, ConnectionLimits};
use github_sim::Simulator;
use serde_json::Value;
use std::sync::Arc;

/// The GitHub token the service is configured with; tests check it never leaks.
pub const GITHUB_TOKEN: &str = "ghp_serveSECRETtoken77";

pub struct Service {
    pub url: String,
    /// The address it listens on, for raw TCP clients.
    pub addr: std::net::SocketAddr,
    pub http: reqwest::Client,
    _dir: tempfile::TempDir,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

/// The command line of a service on a local lake and SQLite in `dir`, against `api` (the
/// simulator) when given: `extra` flags, then `command` (e.g. `["init"]`, or `["serve", …]`).
pub fn cli(
    dir: &std::path::Path,
    api: Option<&str>,
    extra: &[&str],
    command: &[&str],
) -> ghstats::config::Cli {
    let lake = format!("file://{}/lake", dir.display());
    let wh = format!("sqlite://{}/wh.db", dir.display());
    let mut args = vec![
        "ghstats",
        "--org",
        "acme",
        "--token",
        GITHUB_TOKEN,
        "--storage-url",
        &lake,
        "--warehouse-url",
        &wh,
    ];
    if let Some(api) = api {
        args.extend_from_slice(&["--api-url", api]);
    }
    args.extend_from_slice(extra);
    args.extend_from_slice(command);
    ghstats::config::Cli::try_parse_from(args).unwrap()
}

/// `ghstats serve` in this process on 127.0.0.1:0 against `sim`, with a local lake and SQLite
/// in a temporary directory; `extra` flags come before the command. The warehouse is made
/// first, as `ghstats init` makes it before a deployment serves (`/readyz` and `/summary` only
/// read it).
pub async fn start(sim: &Simulator, auth: Auth, extra: &[&str]) -> Service {
    let dir = tempfile::tempdir().unwrap();
    let cli = cli(dir.path(), Some(&sim.url()), extra, &["init"]);
    ghstats::warehouse::open(&cli.config.warehouse_url)
        .await
        .unwrap()
        .init()
        .await
        .unwrap();
    serve(cli.config, auth, dir).await
}

/// `ghstats serve` as [`start`] does, with `serve_flags` (e.g. `["--idle-timeout", "1s"]`)
/// setting its connection limits.
pub async fn start_with(
    sim: &Simulator,
    auth: Auth,
    extra: &[&str],
    serve_flags: &[&str],
) -> Service {
    let dir = tempfile::tempdir().unwrap();
    let mut command = vec!["serve"];
    command.extend_from_slice(serve_flags);
    let cli = cli(dir.path(), Some(&sim.url()), extra, &command);
    let ghstats::config::Command::Serve(args) = &cli.command else {
        unreachable!("the command is serve");
    };
    let limits = ConnectionLimits::from(args);
    serve_limited(cli.config, auth, dir, limits).await
}

/// Serves `config` with `auth` on 127.0.0.1:0 until the returned service is dropped; `dir`
/// lives as long as it.
pub async fn serve(config: ghstats::config::Config, auth: Auth, dir: tempfile::TempDir) -> Service {
    serve_limited(config, auth, dir, ConnectionLimits::default()).await
}

/// [`serve`] with these connection limits.
pub async fn serve_limited(
    config: ghstats::config::Config,
    auth: Auth,
    dir: tempfile::TempDir,
    limits: ConnectionLimits,
) -> Service {
    let state = Arc::new(AppState::new(Runner::new(config, false), auth));
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(ghstats::serve::serve(
        state,
        "127.0.0.1:0".parse().unwrap(),
        limits,
        Some(ready_tx),
        async move {
            let _ = stop_rx.await;
        },
    ));
    let addr = ready_rx.await.unwrap();
    Service {
        url: format!("http://{addr}"),
        addr,
        http: reqwest::Client::new(),
        _dir: dir,
        _shutdown: stop_tx,
    }
}

impl Service {
    /// The temporary directory holding the lake (`lake/`) and the warehouse (`wh.db`).
    pub fn dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.url))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

/// A port free on 127.0.0.1 for a service binary to listen on.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until the service at `url` answers `/healthz` (five seconds at most).
pub async fn wait_up(http: &reqwest::Client, url: &str) {
    for _ in 0..200 {
        if http.get(format!("{url}/healthz")).send().await.is_ok() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("the service did not start");
}
