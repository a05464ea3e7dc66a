//! One configuration from flags and environment variables alike (a `.env` file is read first
//! when present), parsed into types at start-up. Secrets never print.

use crate::names::{OrgName, RepoName};
use chrono::{DateTime, NaiveDate, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;
use url::Url;

/// A secret value (a token). `Debug` and `Display` print `****`; only [`Secret::expose`]
/// reveals it, at the one place it is sent.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(****)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("****")
    }
}

impl FromStr for Secret {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        if t.is_empty() {
            return Err("empty token".into());
        }
        Ok(Secret(t.to_string()))
    }
}

/// Where chunks and checkpoints live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StorageUrl {
    /// A local directory (`file://./data/lake`, `file:///var/lib/ghstats`).
    Local(std::path::PathBuf),
    /// Google Cloud Storage (`gs://bucket/prefix`).
    Gcs { bucket: String, prefix: String },
    /// S3 or an S3-compatible store (`s3://bucket/prefix`).
    S3 { bucket: String, prefix: String },
    /// Process memory, for tests (`memory://`).
    Memory,
}

fn bucket_and_prefix(scheme: &str, rest: &str) -> Result<(String, String), String> {
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let ok = (3..=63).contains(&bucket.len())
        && bucket.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'.' | b'_')
        })
        && bucket
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric());
    if !ok {
        return Err(format!("{scheme}://{rest}: {bucket:?} is not a bucket name (3-63 lowercase letters, digits, '-', '.', '_')"));
    }
    let prefix = prefix.trim_matches('/');
    if prefix.split('/').any(|seg| seg == "." || seg == "..") {
        return Err(format!(
            "{scheme}://{rest}: the prefix may not contain '.' or '..' segments"
        ));
    }
    Ok((bucket.to_string(), prefix.to_string()))
}

impl FromStr for StorageUrl {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(path) = s.strip_prefix("file://") {
            if path.is_empty() {
                return Err("file:// needs a path, e.g. file://./data/lake".into());
            }
            return Ok(StorageUrl::Local(path.into()));
        }
        if let Some(rest) = s.strip_prefix("gs://") {
            let (bucket, prefix) = bucket_and_prefix("gs", rest)?;
            return Ok(StorageUrl::Gcs { bucket, prefix });
        }
        if let Some(rest) = s.strip_prefix("s3://") {
            let (bucket, prefix) = bucket_and_prefix("s3", rest)?;
            return Ok(StorageUrl::S3 { bucket, prefix });
        }
        if s == "memory://" {
            return Ok(StorageUrl::Memory);
        }
        Err(format!("unsupported STORAGE_URL {s:?}: use file://PATH, gs://BUCKET/PREFIX, s3://BUCKET/PREFIX or memory://"))
    }
}

impl fmt::Display for StorageUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let join = |scheme: &str, bucket: &str, prefix: &str| {
            if prefix.is_empty() {
                format!("{scheme}://{bucket}")
            } else {
                format!("{scheme}://{bucket}/{prefix}")
            }
        };
        match self {
            StorageUrl::Local(p) => write!(f, "file://{}", p.display()),
            StorageUrl::Gcs { bucket, prefix } => f.write_str(&join("gs", bucket, prefix)),
            StorageUrl::S3 { bucket, prefix } => f.write_str(&join("s3", bucket, prefix)),
            StorageUrl::Memory => f.write_str("memory://"),
        }
    }
}

/// Parses `WAREHOUSE_URL`. Unlike clap's own error, its error does not repeat the value: a
/// PostgreSQL URL may hold a password.
#[derive(Clone, Copy, Debug)]
pub struct WarehouseUrlParser;

impl clap::builder::TypedValueParser for WarehouseUrlParser {
    type Value = crate::warehouse::WarehouseUrl;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<Self::Value, clap::Error> {
        let refuse = |why: String| {
            let arg = arg.map_or_else(|| "WAREHOUSE_URL".to_string(), |a| a.to_string());
            clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                format!("invalid value for '{arg}': {why}\n"),
            )
            .with_cmd(cmd)
        };
        value
            .to_str()
            .ok_or_else(|| refuse("WAREHOUSE_URL is not UTF-8".into()))?
            .parse()
            .map_err(refuse)
    }
}

/// The longest duration any setting takes: 366 days. Longer ones are a typo (or an attempt to
/// overflow a deadline), refused with a readable error rather than wrapped or panicking.
pub const MAX_DURATION: Duration = Duration::from_secs(366 * 24 * 3600);

/// A duration such as `90s`, `15m`, `1h30m`, `2d` or a plain number of seconds; longer than
/// zero and at most [`MAX_DURATION`].
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let not_a_duration = || format!("{s:?} is not a duration (e.g. 90s, 15m, 1h30m, 2d)");
    let too_long = || {
        format!(
            "{s:?} is too long: a duration may be at most 366 days (8784h, {} seconds)",
            MAX_DURATION.as_secs()
        )
    };
    let total: u64 = if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        // Digits alone are seconds; more digits than any u64 holds are too long, not garbage.
        s.parse::<u64>().map_err(|_| too_long())?
    } else {
        let mut total = 0u64;
        let mut num = String::new();
        for c in s.chars() {
            if c.is_ascii_digit() {
                num.push(c);
                continue;
            }
            if num.is_empty() {
                return Err(not_a_duration());
            }
            let unit: u64 = match c {
                'd' => 86_400,
                'h' => 3600,
                'm' => 60,
                's' => 1,
                _ => return Err(not_a_duration()),
            };
            let n: u64 = num.parse().map_err(|_| too_long())?;
            num.clear();
            total = n
                .checked_mul(unit)
                .and_then(|v| total.checked_add(v))
                .ok_or_else(too_long)?;
        }
        if !num.is_empty() || s.is_empty() {
            return Err(not_a_duration());
        }
        total
    };
    if total == 0 {
        return Err(format!("{s:?}: a duration must be longer than zero"));
    }
    if total > MAX_DURATION.as_secs() {
        return Err(too_long());
    }
    Ok(Duration::from_secs(total))
}

/// An http(s) URL with a host for the setting `var`; `examples` name good values.
fn http_url(s: &str, var: &str, examples: &str) -> Result<Url, String> {
    let u = Url::parse(s.trim()).map_err(|e| format!("{s:?} is not a URL ({e})"))?;
    match u.scheme() {
        "https" | "http" if u.host().is_some() => Ok(u),
        "https" | "http" => Err(format!("{s:?} has no host")),
        other => Err(format!(
            "{var} must be http(s), not {other}:// ({examples})"
        )),
    }
}

/// `GITHUB_GIT_URL`: an http(s) URL without credentials (the token goes in a header).
pub fn parse_git_url(s: &str) -> Result<Url, String> {
    let u = Url::parse(s.trim()).map_err(|e| format!("GITHUB_GIT_URL is not a URL: {e}"))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(format!(
            "GITHUB_GIT_URL must be http(s), not {}",
            u.scheme()
        ));
    }
    // A URL holding credentials is refused when a job starts (`Runner::commits`), not here:
    // clap would print the whole value, secret included, beside the error.
    Ok(u)
}

/// `GHARCHIVE_URL`: an http(s) URL. Any other scheme is refused at start-up.
pub fn parse_gharchive_url(s: &str) -> Result<Url, String> {
    http_url(
        s,
        "GHARCHIVE_URL",
        "https://data.gharchive.org, or a mirror",
    )
}

/// `GITHUB_API_URL`: an http(s) URL. Any other scheme is refused at start-up, not retried.
pub fn parse_api_url(s: &str) -> Result<Url, String> {
    http_url(
        s,
        "GITHUB_API_URL",
        "https://api.github.com, or https://HOST/api/v3 for GitHub Enterprise",
    )
}

/// A point in time: RFC 3339 (`2026-01-31T12:00:00Z`) or a date (`2026-01-31`, midnight UTC).
pub fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s.trim()) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d") {
        if let Some(t) = d.and_hms_opt(0, 0, 0) {
            return Ok(t.and_utc());
        }
    }
    Err(format!(
        "{s:?} is not a time: use RFC 3339 (2026-01-31T12:00:00Z) or a date (2026-01-31)"
    ))
}

/// How `ghstats serve` checks callers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AuthMode {
    /// No check; allowed only on a loopback address.
    None,
    /// A static bearer token (`AUTH_TOKEN`, from a secret).
    Token,
    /// Google-signed ID tokens (OIDC_AUDIENCE, OIDC_ALLOWED_EMAILS).
    Oidc,
}

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// The address to listen on.
    #[arg(long, env = "HOST", default_value = "127.0.0.1")]
    pub host: std::net::IpAddr,
    /// The port to listen on (Cloud Run sets PORT).
    #[arg(long, env = "PORT", default_value_t = 8080)]
    pub port: u16,
    /// How callers are checked: `oidc` (Google-signed ID tokens), `token` (Authorization: Bearer
    /// AUTH_TOKEN) or `none` (loopback only). On Cloud Run the platform checks callers' identity
    /// before this.
    #[arg(long, env = "AUTH_MODE", value_enum, default_value_t = AuthMode::None)]
    pub auth_mode: AuthMode,
    /// The bearer token for AUTH_MODE=token.
    #[arg(long, env = "AUTH_TOKEN", hide_env_values = true)]
    pub auth_token: Option<Secret>,
    /// For AUTH_MODE=oidc: the audiences an ID token may carry (comma-separated), usually the
    /// service's URL.
    #[arg(long, env = "OIDC_AUDIENCE", value_delimiter = ',')]
    pub oidc_audience: Vec<String>,
    /// For AUTH_MODE=oidc: the emails (service accounts) allowed to call, comma-separated.
    #[arg(long, env = "OIDC_ALLOWED_EMAILS", value_delimiter = ',')]
    pub oidc_allowed_emails: Vec<String>,
    /// For AUTH_MODE=oidc: where the keys that sign ID tokens are published.
    #[arg(long, env = "OIDC_JWKS_URL", default_value = crate::oidc::GOOGLE_CERTS)]
    pub oidc_jwks_url: Url,
    /// How long a client may take to send a request's header (from the connection's start,
    /// or from the first byte of a later request), and again its body; a slower client is
    /// disconnected (a late body gets 408). 1s to 1h.
    #[arg(long, env = "SERVE_HEADER_TIMEOUT", default_value = "10s", value_parser = parse_serve_timeout)]
    pub header_timeout: Duration,
    /// How long a kept-alive connection may wait for its next request before it is closed.
    /// The default outlasts the 600 s keep-alive of Google's load balancers toward backends.
    /// 1s to 1h.
    #[arg(long, env = "SERVE_IDLE_TIMEOUT", default_value = "620s", value_parser = parse_serve_timeout)]
    pub idle_timeout: Duration,
    /// The most client connections held at once. A new one beyond it closes the connection
    /// idle longest, so health checks still get through; when every connection has a request
    /// in progress, it is refused. Keep it well under the file-descriptor limit (ulimit -n).
    #[arg(long, env = "SERVE_MAX_CONNECTIONS", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_connections: u32,
}

/// The longest `SERVE_HEADER_TIMEOUT` or `SERVE_IDLE_TIMEOUT`: one hour. Longer ones would let
/// slow or idle clients hold connections again.
pub const MAX_SERVE_TIMEOUT: Duration = Duration::from_secs(3600);

/// A [`parse_duration`] of at most [`MAX_SERVE_TIMEOUT`].
pub fn parse_serve_timeout(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d > MAX_SERVE_TIMEOUT {
        return Err(format!(
            "{s:?} is too long: a connection timeout may be at most 1h (3600 seconds)"
        ));
    }
    Ok(d)
}

/// The `--help` heading of the settings every command shares ([`Config`]).
pub const SHARED_SETTINGS: &str = "Shared settings (flags or environment variables)";

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable on a terminal, JSON otherwise.
    Auto,
    Text,
    Json,
}

/// Settings every command shares; each is a flag and an environment variable. `--help` lists
/// them under their own heading, after the command's own options.
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = SHARED_SETTINGS)]
pub struct Config {
    /// GitHub organization to collect.
    #[arg(long, env = "GITHUB_ORG", global = true)]
    pub org: Option<OrgName>,

    /// GitHub token (a personal access token or an installation token).
    #[arg(long, env = "GITHUB_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<Secret>,

    /// Several GitHub tokens, comma-separated; each has its own budget and work goes to the one
    /// with the most left.
    #[arg(
        long,
        env = "GITHUB_TOKENS",
        global = true,
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub tokens: Vec<Secret>,

    /// A GitHub App's id. With its private key the App's installation tokens are used (minted
    /// from a signed JWT and replaced before they expire), beside any GITHUB_TOKEN(S).
    #[arg(long, env = "GITHUB_APP_ID", global = true)]
    pub app_id: Option<String>,

    /// The App's installation on the organization; looked up from GITHUB_ORG when not set.
    #[arg(long, env = "GITHUB_APP_INSTALLATION_ID", global = true)]
    pub app_installation_id: Option<u64>,

    /// The App's private key, PEM (from a secret). GITHUB_APP_PRIVATE_KEY_FILE reads it from a
    /// file instead.
    #[arg(
        long,
        env = "GITHUB_APP_PRIVATE_KEY",
        global = true,
        hide_env_values = true
    )]
    pub app_private_key: Option<Secret>,

    /// A file holding the App's private key (PEM), e.g. a mounted secret.
    #[arg(long, env = "GITHUB_APP_PRIVATE_KEY_FILE", global = true)]
    pub app_private_key_file: Option<std::path::PathBuf>,

    /// GitHub's REST API base (GitHub Enterprise: https://HOST/api/v3).
    #[arg(
        long,
        env = "GITHUB_API_URL",
        global = true,
        default_value = "https://api.github.com",
        value_parser = parse_api_url
    )]
    pub api_url: Url,

    /// A PEM file of certificate authorities to trust for GitHub besides the system's store
    /// and the public roots (GitHub Enterprise behind a private CA).
    #[arg(long, env = "CA_BUNDLE", global = true)]
    pub ca_bundle: Option<std::path::PathBuf>,

    /// Where chunks and checkpoints are stored.
    #[arg(
        long,
        env = "STORAGE_URL",
        global = true,
        default_value = "file://./data/lake"
    )]
    pub storage_url: StorageUrl,

    /// Another endpoint for gs:// or s3:// storage (an emulator, MinIO, another S3 region).
    /// Credentials come from each cloud's environment variables; with an endpoint, gs:// uses
    /// none (emulators do not check them).
    #[arg(long, env = "STORAGE_ENDPOINT", global = true)]
    pub storage_endpoint: Option<Url>,

    /// Keep chunks in STORAGE_URL (true), or only in a temporary directory until they are
    /// loaded (false: no bucket needed; checkpoints live beside the chunks, so a resume works
    /// only within the same run).
    #[arg(long, env = "PERSIST_TO_GCS", global = true, default_value_t = true, action = clap::ArgAction::Set)]
    pub persist_to_gcs: bool,

    /// Where the warehouse is.
    #[arg(
        long,
        env = "WAREHOUSE_URL",
        global = true,
        default_value = "sqlite://./data/warehouse.db",
        value_parser = WarehouseUrlParser
    )]
    pub warehouse_url: crate::warehouse::WarehouseUrl,

    /// Most rows per chunk file.
    #[arg(long, env = "CHUNK_SIZE", global = true, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub chunk_size: u32,

    /// Repositories collected at once.
    #[arg(long, env = "MAX_WORKERS", global = true, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub max_workers: u32,

    /// The window of `collect` when neither --hours nor --since is given, in days.
    #[arg(long, env = "DEFAULT_LOOKBACK_DAYS", global = true, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub default_lookback_days: u32,

    /// How long one run may take (e.g. 55m); it stops at a page boundary and reports partial.
    #[arg(long, env = "RUN_BUDGET", global = true, default_value = "55m", value_parser = parse_duration)]
    pub run_budget: Duration,
    /// GH Archive's address (`gharchive` job): the files are `{URL}/YYYY-MM-DD-H.json.gz`.
    /// Point it at a mirror or the simulator.
    #[arg(long, env = "GHARCHIVE_URL", global = true, default_value = crate::gharchive::DEFAULT_URL, value_parser = parse_gharchive_url)]
    pub gharchive_url: url::Url,
    /// What `gharchive_events.payload` keeps: `raw` (the event's payload as JSON text) or
    /// `none` (null; about 80% less storage).
    #[arg(long, env = "GHARCHIVE_PAYLOAD", global = true, default_value = "raw", value_parser = ["raw", "none"])]
    pub gharchive_payload: String,

    /// Where the commits job keeps its bare git repositories (one per repository, by id);
    /// reused by the next run. On Cloud Run a temporary directory: a repository's first fetch
    /// there is shallow (since its last processed commit, or --since).
    #[arg(
        long,
        env = "GIT_CACHE_DIR",
        global = true,
        default_value = "./data/git"
    )]
    pub git_cache_dir: std::path::PathBuf,
    /// Where the commits job fetches repositories over git's smart HTTP:
    /// `{URL}/{owner}/{name}.git` (GitHub Enterprise: https://HOST).
    #[arg(long, env = "GITHUB_GIT_URL", global = true, default_value = "https://github.com", value_parser = parse_git_url)]
    pub git_url: Url,

    /// How long the organization's lock lasts without renewal: a lock left by a dead run is
    /// taken over after this. A live run renews it every third of it.
    #[arg(long, env = "LOCK_LEASE", global = true, default_value = "5m", value_parser = parse_duration)]
    pub lock_lease: Duration,

    /// Pull requests per GraphQL page at the start; halves when GitHub is overloaded.
    #[arg(long, env = "PAGE_SIZE", global = true, default_value_t = 25, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub page_size: u32,

    /// The largest page the walk grows back to. 37 is the largest page GitHub charges one
    /// point for: 1 + 4 x 37 = 149 connection requests, rounded to 1 point.
    #[arg(long, env = "PAGE_SIZE_MAX", global = true, default_value_t = 37, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub page_size_max: u32,

    /// Log format.
    #[arg(long, env = "LOG_FORMAT", global = true, value_enum, default_value_t = LogFormat::Auto)]
    pub log_format: LogFormat,
}

impl Config {
    /// The GitHub App settings, when an App is configured: its id and private key.
    pub fn github_app(&self) -> Result<Option<(String, Secret)>, String> {
        let key = match (&self.app_private_key, &self.app_private_key_file) {
            (Some(_), Some(_)) => {
                return Err(
                    "set GITHUB_APP_PRIVATE_KEY or GITHUB_APP_PRIVATE_KEY_FILE, not both".into(),
                )
            }
            (Some(k), None) => Some(k.clone()),
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    format!(
                        "cannot read GITHUB_APP_PRIVATE_KEY_FILE {}: {e}",
                        path.display()
                    )
                })?;
                Some(text.parse::<Secret>().map_err(|_| {
                    format!("GITHUB_APP_PRIVATE_KEY_FILE {} is empty", path.display())
                })?)
            }
            (None, None) => None,
        };
        match (&self.app_id, key) {
            (Some(id), Some(key)) => Ok(Some((id.clone(), key))),
            (None, None) => {
                if self.app_installation_id.is_some() {
                    return Err("GITHUB_APP_INSTALLATION_ID is set without GITHUB_APP_ID".into());
                }
                Ok(None)
            }
            (Some(_), None) => Err(
                "GITHUB_APP_ID is set without the App's key: set GITHUB_APP_PRIVATE_KEY or GITHUB_APP_PRIVATE_KEY_FILE"
                    .into(),
            ),
            (None, Some(_)) => Err("the GitHub App's private key is set without GITHUB_APP_ID".into()),
        }
    }

    /// Every configured token, `GITHUB_TOKENS` first.
    pub fn all_tokens(&self) -> Vec<Secret> {
        let mut t = self.tokens.clone();
        if let Some(one) = &self.token {
            if !t.contains(one) {
                t.push(one.clone());
            }
        }
        t
    }
}

/// Which repositories a run covers.
#[derive(Args, Debug, Clone, Default)]
pub struct RepoScope {
    /// Only these repositories (comma-separated); default: all of the organization's.
    #[arg(long, value_delimiter = ',')]
    pub repos: Vec<RepoName>,
    /// Include archived repositories.
    #[arg(long)]
    pub include_archived: bool,
    /// Include forks.
    #[arg(long)]
    pub include_forks: bool,
}

/// A collection id, as printed when a collection starts (`20261121T091600Z-3fa9c2`).
pub fn parse_collection_id(s: &str) -> Result<String, String> {
    if crate::lake::is_collection_id(s) {
        Ok(s.to_string())
    } else {
        Err(format!(
            "{s:?} is not a collection id (like 20261121T091600Z-3fa9c2)"
        ))
    }
}

fn parse_date(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| format!("{s:?} is not a date (YYYY-MM-DD)"))
}

#[derive(Args, Debug, Clone)]
pub struct CollectArgs {
    /// Collect pull requests updated in the last N hours.
    #[arg(long, conflicts_with_all = ["since", "until"], value_parser = clap::value_parser!(u32).range(1..=87_840))]
    pub hours: Option<u32>,
    /// Start of the window (RFC 3339 or YYYY-MM-DD, UTC).
    #[arg(long, value_parser = parse_time)]
    pub since: Option<DateTime<Utc>>,
    /// End of the window (default: now).
    #[arg(long, value_parser = parse_time, requires = "since")]
    pub until: Option<DateTime<Utc>>,
    /// Also collect again every pull request outside the window with an issue or review comment
    /// created or edited since the window's start (GitHub does not bump a pull request's
    /// `updatedAt` for an edit); two REST listings per repository. The daily sweep uses it.
    #[arg(long)]
    pub sweep_comments: bool,
    #[command(flatten)]
    pub scope: RepoScope,
    /// Only write chunks; do not load them into the warehouse.
    #[arg(long)]
    pub no_load: bool,
    /// Print the result as JSON even on a terminal (it is JSON whenever stdout is not one).
    #[arg(long)]
    pub json: bool,
    /// Take the organization's lock even while another run holds it, for when you know that
    /// run is gone (its process killed, its machine lost) and do not want to wait for its lease
    /// to run out. A run that is still alive loses the lock at its next renewal and stops.
    #[arg(long)]
    pub force: bool,
}

#[derive(Args, Debug, Clone)]
#[command(group(clap::ArgGroup::new("span").required(true).args(["days", "all"])))]
pub struct BackfillArgs {
    /// Collect pull requests updated in the last N days (back to 2008-01-01, GitHub's start).
    #[arg(long, value_parser = parse_backfill_days)]
    pub days: Option<u32>,
    /// Collect every pull request since 2008-01-01, GitHub's start.
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub scope: RepoScope,
    /// Only write chunks; do not load them into the warehouse.
    #[arg(long)]
    pub no_load: bool,
    /// Print the result as JSON even on a terminal (it is JSON whenever stdout is not one).
    #[arg(long)]
    pub json: bool,
    /// Take the organization's lock even while another run holds it, for when you know that
    /// run is gone (its process killed, its machine lost) and do not want to wait for its lease
    /// to run out. A run that is still alive loses the lock at its next renewal and stops.
    #[arg(long)]
    pub force: bool,
}

#[derive(Args, Debug, Clone)]
#[command(group(clap::ArgGroup::new("hours_or_range").args(["hours", "from"])))]
pub struct GharchiveArgs {
    /// The first hour, YYYY-MM-DDTHH in UTC (e.g. 2015-01-01T00); with --to.
    #[arg(long, value_parser = parse_gharchive_hour, requires = "to")]
    pub from: Option<chrono::DateTime<chrono::Utc>>,
    /// The last hour, included.
    #[arg(long, value_parser = parse_gharchive_hour, requires = "from")]
    pub to: Option<chrono::DateTime<chrono::Utc>>,
    /// The newest N published hours.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=175_680))]
    pub hours: Option<u32>,
    /// Ingest again hours already ingested, and ask again for hours missing for good.
    #[arg(long)]
    pub force: bool,
    /// Only every N-th hour, starting at I (0-based): I/N. On Cloud Run Jobs,
    /// CLOUD_RUN_TASK_INDEX / CLOUD_RUN_TASK_COUNT are the shard when this is not given.
    #[arg(long, value_parser = parse_shard)]
    pub shard: Option<crate::gharchive::job::Shard>,
}

#[derive(Args, Debug, Clone)]
pub struct StarsArgs {
    /// Repositories wanted (the crawl takes them in creation order from --created-from).
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub target: u64,
    /// Search qualifiers every range shares; the crawl adds `created:` ranges. GitHub's
    /// repository search syntax, e.g. `is:public`, `is:public stars:>=10`, `language:rust`.
    #[arg(long, default_value = "is:public", value_parser = parse_stars_query)]
    pub query: String,
    /// The earliest creation date searched (YYYY-MM-DD, UTC).
    #[arg(long, default_value = "2008-01-01", value_parser = parse_created_from)]
    pub created_from: chrono::DateTime<chrono::Utc>,
    /// REST search pages beside GraphQL: `auto` (when GraphQL points are too few or spent),
    /// `always` or `never`.
    #[arg(long, env = "STARS_REST_SEARCH", value_enum, default_value_t = crate::stars::crawl::RestSearch::Auto)]
    pub rest_search: crate::stars::crawl::RestSearch,
    /// Take the stars lock even while another crawl holds it, for when you know that crawl is
    /// gone (its process killed) and do not want to wait for its lease to run out.
    #[arg(long)]
    pub force: bool,
    /// GraphQL queries in flight at once.
    #[arg(long, env = "STARS_WORKERS", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub workers: u32,
    /// Print the result as JSON even on a terminal.
    #[arg(long)]
    pub json: bool,
}

/// `ghstats commits`: which repositories, and the snapshot.
#[derive(Args, Debug, Clone)]
pub struct CommitsArgs {
    /// Repositories as owner/name, comma-separated.
    #[arg(long, value_delimiter = ',', value_parser = parse_owner_name)]
    pub repos: Vec<(String, String)>,
    /// A file of repositories, one owner/name a line (blank lines and # comments skipped).
    #[arg(long)]
    pub repos_file: Option<std::path::PathBuf>,
    /// The N most-starred repositories in `repo_stars` (filled by `ghstats stars`).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1_000_000), conflicts_with_all = ["repos", "repos_file"])]
    pub top_starred: Option<u64>,
    /// For an organization's repositories (GITHUB_ORG): forks too.
    #[arg(long)]
    pub include_forks: bool,
    /// For an organization's repositories (GITHUB_ORG): archived ones too.
    #[arg(long)]
    pub include_archived: bool,
    /// The snapshot time (RFC 3339, or YYYY-MM-DD for midnight UTC): commits committed after
    /// it are left for the next run.
    #[arg(long, value_parser = parse_instant)]
    pub until: Option<chrono::DateTime<chrono::Utc>>,
    /// A repository's first fetch brings only commits committed since then (a shallow fetch
    /// by date); later runs add what is new. Default: the whole history.
    #[arg(long, value_parser = parse_instant)]
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    /// Take the commits lock even while another run holds it (that run is known dead).
    #[arg(long)]
    pub force: bool,
    /// Commits read, written and loaded per step (the repository's place moves after each).
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub batch_commits: u32,
    /// Print the result as JSON even on a terminal.
    #[arg(long)]
    pub json: bool,
}

/// `owner/name`.
pub fn parse_owner_name(s: &str) -> Result<(String, String), String> {
    crate::commits::job::parse_repo(s)
}

/// RFC 3339, or `YYYY-MM-DD` as midnight UTC; not in the future.
pub fn parse_instant(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    let s = s.trim();
    let t = match chrono::DateTime::parse_from_rfc3339(s) {
        Ok(t) => t.with_timezone(&chrono::Utc),
        Err(_) => chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map_err(|_| format!("{s:?} is not a time (RFC 3339) or a date (YYYY-MM-DD)"))?
            .and_hms_opt(0, 0, 0)
            .map(|d| d.and_utc())
            .ok_or_else(|| format!("{s:?} is not a date"))?,
    };
    if t > chrono::Utc::now() + chrono::Duration::minutes(5) {
        return Err(format!("{s} is in the future"));
    }
    Ok(t)
}

/// A stars search text: qualifiers the crawl can add `created:` ranges to. A `created:` of
/// its own (the crawl owns it) or a `sort:` (ranges are paged in GitHub's order) is refused.
pub fn parse_stars_query(s: &str) -> Result<String, String> {
    if s.len() > 200 {
        return Err("the query is longer than 200 characters".into());
    }
    for term in s.split_whitespace() {
        let key = term.split(':').next().unwrap_or("").to_ascii_lowercase();
        if key.trim_start_matches('-') == "created" {
            return Err(format!(
                "{term:?}: the crawl sets created: itself; use --created-from"
            ));
        }
        if key.trim_start_matches('-') == "sort" {
            return Err(format!("{term:?}: the crawl cannot take a sort order"));
        }
    }
    if s.chars().any(char::is_control) {
        return Err("the query holds a control character".into());
    }
    Ok(s.trim().to_string())
}

/// `YYYY-MM-DD` from 2007-10-01 (GitHub's first repositories) to today, as midnight UTC.
pub fn parse_created_from(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    let d = chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .map_err(|_| format!("{s:?} is not a date YYYY-MM-DD"))?;
    let earliest = chrono::NaiveDate::from_ymd_opt(2007, 10, 1).unwrap_or_default();
    if d < earliest {
        return Err(format!("{s}: GitHub has no repositories before 2007-10-01"));
    }
    if d > chrono::Utc::now().date_naive() {
        return Err(format!("{s} is in the future"));
    }
    Ok(d.and_time(chrono::NaiveTime::MIN).and_utc())
}

/// Days of a backfill: 1 up to the days since 2008-01-01 (GitHub's start), checked when the
/// command line is read, so a bad value is a usage error (exit status 2).
fn parse_backfill_days(s: &str) -> Result<u32, String> {
    let d: u32 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number of days"))?;
    crate::jobs::collect::backfill_window(chrono::Utc::now(), Some(d), false)
        .map(|_| d)
        .map_err(|e| e.to_string())
}

fn parse_gharchive_hour(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    crate::gharchive::parse_hour(s)
}

fn parse_shard(s: &str) -> Result<crate::gharchive::job::Shard, String> {
    s.parse()
}

#[derive(Args, Debug, Clone)]
pub struct LoadArgs {
    /// Only this repository's chunks.
    #[arg(long)]
    pub repo: Option<RepoName>,
    /// Only chunks of collections made on this UTC date (YYYY-MM-DD).
    #[arg(long, value_parser = parse_date)]
    pub date: Option<NaiveDate>,
    /// Only this collection's chunks.
    #[arg(long, value_parser = parse_collection_id)]
    pub collection_id: Option<String>,
    /// Load the stars crawls' chunks instead (every crawl, or the one --collection-id names)
    /// into `repo_stars` and `repo_star_history`.
    #[arg(long, conflicts_with_all = ["repo", "date"])]
    pub stars: bool,
}

#[derive(Args, Debug, Clone)]
pub struct ExportArgs {
    /// The table: repositories, pull_requests, pr_commits, reviews, review_comments,
    /// issue_comments, gharchive_events, gharchive_hours, repo_stars, repo_star_history,
    /// commits, file_changes or file_states.
    #[arg(long, value_parser = crate::jobs::export::parse_table)]
    pub table: &'static crate::tables::TableDef,
    /// csv or parquet.
    #[arg(long, default_value = "csv", value_parser = parse_export_format)]
    pub format: crate::jobs::export::Format,
    /// The file to write, or - for standard output (CSV only).
    #[arg(long, value_name = "FILE", default_value = "-", value_parser = parse_export_output)]
    pub out: crate::jobs::export::Output,
}

fn parse_export_format(s: &str) -> Result<crate::jobs::export::Format, String> {
    s.parse()
}

fn parse_export_output(s: &str) -> Result<crate::jobs::export::Output, String> {
    s.parse()
}

#[derive(Args, Debug, Clone)]
pub struct SummaryArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug, Clone)]
pub struct CheckArgs {
    /// Estimate the API cost of a backfill of this many days.
    #[arg(long, default_value_t = 180, value_parser = clap::value_parser!(u32).range(1..))]
    pub days: u32,
    #[command(flatten)]
    pub scope: RepoScope,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug, Clone)]
pub struct ResumeArgs {
    /// The collection to continue.
    #[arg(long, value_parser = parse_collection_id)]
    pub collection_id: String,
    /// Only write chunks; do not load them into the warehouse.
    #[arg(long)]
    pub no_load: bool,
    /// Print the result as JSON even on a terminal (it is JSON whenever stdout is not one).
    #[arg(long)]
    pub json: bool,
    /// Take the organization's lock even while another run holds it, for when you know that
    /// run is gone (its process killed, its machine lost) and do not want to wait for its lease
    /// to run out. A run that is still alive loses the lock at its next renewal and stops.
    #[arg(long)]
    pub force: bool,
}

#[derive(Args, Debug, Clone)]
pub struct WipeArgs {
    /// The repository whose stored chunks are deleted.
    #[arg(long)]
    pub repo: RepoName,
    /// Really delete; without it nothing is deleted.
    #[arg(long)]
    pub confirm: bool,
    /// Also delete the repository's rows from the warehouse.
    #[arg(long)]
    pub warehouse: bool,
}

#[derive(Args, Debug, Clone)]
pub struct ScheduledArgs {
    /// How often a collection starts (e.g. 1h, 6h).
    #[arg(long, value_parser = parse_duration)]
    pub interval: Duration,
    #[command(flatten)]
    pub scope: RepoScope,
}

#[derive(Subcommand, Debug, Clone)]
pub enum Command {
    /// Check the configuration without collecting anything: settings, GitHub (rate limit
    /// left, scopes, the organization), storage (a probe object written and deleted), the
    /// warehouse, and the API cost of a backfill of --days days. Exits 1 when a check fails.
    Check(CheckArgs),
    /// Create the warehouse's tables and views (on BigQuery the dataset too) and bring the
    /// views up to date; safe to run again.
    Init,
    /// Collect pull requests updated in a recent window (the hourly job).
    Collect(CollectArgs),
    /// Collect a long window, e.g. the last 180 days.
    Backfill(BackfillArgs),
    /// Load chunks already in storage into the warehouse (no GitHub calls); filters combine.
    Load(LoadArgs),
    /// Continue an unfinished collection from its checkpoint (a completed one is left alone).
    Resume(ResumeArgs),
    /// Delete a repository's stored chunks (and with --warehouse its rows).
    Wipe(WipeArgs),
    /// Serve every job over HTTP (Cloud Run, or any host).
    Serve(ServeArgs),
    /// Collect forever, one window per interval, for hosts without a scheduler (systemd, a
    /// container); stops on SIGTERM.
    Scheduled(ScheduledArgs),
    /// What is stored (collections and their status, the lock, chunks per repository, table
    /// and date, distinct rows per table) beside the warehouse's row counts. Reads only: a
    /// warehouse that does not exist is reported, not created.
    Summary(SummaryArgs),
    /// Ingest GH Archive hours (every public GitHub event) into Parquet in storage and the
    /// `gharchive_events` table. Without --from/--to or --hours: every hour since the last one
    /// ingested, up to the newest published, and missing or failed hours again.
    Gharchive(GharchiveArgs),
    /// Star counts of many public repositories through GitHub's repository search, into
    /// `repo_stars` (snapshot) and `repo_star_history`. Continues an unfinished crawl of the
    /// same search first.
    Stars(StarsArgs),
    /// Default-branch commits with per-file changes of many repositories, from git objects
    /// (fetched over git's smart HTTP into GIT_CACHE_DIR), into Parquet partitions
    /// `github/{commits|file_changes|file_states}/repository_id=/commit_month=/` in storage and
    /// the warehouse. Incremental: each repository continues from its last processed commit.
    Commits(CommitsArgs),
    /// Stream one warehouse table out as CSV or Parquet, in bounded memory, whatever its size.
    /// CSV: a header row, RFC 4180 quoting, UTF-8, timestamps RFC 3339 UTC, NULL as an empty
    /// field, a list as a JSON array. Parquet: the table's own types. A file is written under a
    /// temporary name and renamed when complete, so a failed export leaves no half file.
    Export(ExportArgs),
    /// Print the BigQuery tables (schema, partitioning, clustering) as JSON, from the same
    /// definition the loader uses: `terraform/bigquery_tables.json` is this output.
    BigquerySchema,
}

/// ghstats: a GitHub organization's pull-request activity, collected at a fraction of the
/// usual API cost into NDJSON chunks and a warehouse.
#[derive(Parser, Debug)]
#[command(name = "ghstats", version, propagate_version = true, after_help = crate::exit::HELP)]
pub struct Cli {
    #[command(flatten)]
    pub config: Config,
    #[command(subcommand)]
    pub command: Command,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_flag_of_every_command_has_help() {
        let mut root = Cli::command();
        root.build();
        let mut commands = vec![root.clone()];
        commands.extend(root.get_subcommands().cloned());
        for cmd in &commands {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                assert!(
                    arg.get_help().is_some(),
                    "{} --{id} has no help text",
                    cmd.get_name()
                );
            }
            assert!(
                cmd.get_about().is_some() || cmd.get_name() == "ghstats",
                "{} has no description",
                cmd.get_name()
            );
        }
        let help = root.render_long_help().to_string();
        for env in [
            "GITHUB_ORG",
            "GITHUB_TOKEN",
            "GITHUB_TOKENS",
            "GITHUB_API_URL",
            "CA_BUNDLE",
            "STORAGE_URL",
            "CHUNK_SIZE",
            "MAX_WORKERS",
            "RUN_BUDGET",
        ] {
            assert!(help.contains(env), "--help does not name {env}");
        }
    }

    /// `ghstats COMMAND --help` shows the command's own options first, then the shared
    /// settings under their own heading, never interleaved.
    #[test]
    fn help_lists_own_options_before_the_shared_settings() {
        let mut root = Cli::command();
        root.build();
        for cmd in root.get_subcommands_mut() {
            let name = cmd.get_name().to_string();
            if name == "help" {
                continue;
            }
            let own: Vec<String> = cmd
                .get_arguments()
                .filter(|a| !a.is_global_set() && a.get_id() != "help" && a.get_id() != "version")
                .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
                .collect();
            let help = cmd.render_help().to_string();
            let heading = help
                .find(&format!("{SHARED_SETTINGS}:"))
                .unwrap_or_else(|| panic!("{name} --help has no shared-settings heading:\n{help}"));
            for flag in &own {
                let at = help
                    .find(&format!("{flag} "))
                    .or_else(|| help.find(&format!("{flag}\n")))
                    .unwrap_or_else(|| panic!("{name} --help does not show {flag}"));
                assert!(
                    at < heading,
                    "{name}: {flag} comes after the shared settings:\n{help}"
                );
            }
            for shared in ["--org", "--token", "--storage-url", "--warehouse-url"] {
                let at = help
                    .find(&format!("{shared} "))
                    .unwrap_or_else(|| panic!("{name} --help does not show {shared}"));
                assert!(
                    at > heading,
                    "{name}: {shared} is not under the shared heading:\n{help}"
                );
            }
        }
    }

    #[test]
    fn secrets_never_print() {
        let s: Secret = "ghp_supersecret".parse().unwrap();
        assert_eq!(format!("{s}"), "****");
        assert!(!format!("{s:?}").contains("supersecret"));
        let cli = Cli::try_parse_from([
            "ghstats",
            "--token",
            "ghp_supersecret",
            "collect",
            "--hours",
            "2",
        ])
        .unwrap();
        assert!(!format!("{cli:?}").contains("supersecret"));
    }

    proptest::proptest! {
        /// Any text at all: a duration or a readable error, never a panic.
        #[test]
        fn any_text_parses_or_is_refused(s in "\\PC{0,40}") {
            if let Ok(d) = parse_duration(&s) {
                proptest::prop_assert!(d > Duration::ZERO && d <= MAX_DURATION);
            }
        }

        /// Digits and units in any amounts: exactly their sum when it is in range, refused
        /// (never wrapped) when it is not.
        #[test]
        fn unit_sums_are_exact_or_refused(d in 0u64..400, h in 0u64..10_000, m in 0u64..600_000, sec in 0u64..40_000_000) {
            let text = format!("{d}d{h}h{m}m{sec}s");
            let want = u128::from(d) * 86_400 + u128::from(h) * 3600 + u128::from(m) * 60 + u128::from(sec);
            match parse_duration(&text) {
                Ok(got) => proptest::prop_assert_eq!(u128::from(got.as_secs()), want),
                Err(e) => proptest::prop_assert!(want == 0 || want > u128::from(MAX_DURATION.as_secs()), "{}: {}", text, e),
            }
        }
    }

    #[test]
    fn backfill_takes_days_beyond_ten_years_or_all() {
        for (args, days, all) in [
            (
                vec!["ghstats", "backfill", "--days", "6000"],
                Some(6000),
                false,
            ),
            (vec!["ghstats", "backfill", "--all"], None, true),
        ] {
            let cli = Cli::try_parse_from(&args).unwrap();
            let Command::Backfill(a) = cli.command else {
                panic!("{args:?} is a backfill");
            };
            assert_eq!((a.days, a.all), (days, all), "{args:?}");
        }
    }

    #[test]
    fn github_api_urls_must_be_http() {
        assert!(parse_api_url("https://api.github.com").is_ok());
        assert!(parse_api_url("http://127.0.0.1:8099").is_ok());
        for bad in [
            "ftp://ghe.example.com/api/v3",
            "file:///tmp",
            "api.github.com",
            "https://",
        ] {
            assert!(parse_api_url(bad).is_err(), "{bad}");
        }
        assert!(parse_gharchive_url("ftp://x/y")
            .unwrap_err()
            .starts_with("GHARCHIVE_URL must be http(s)"));
        assert!(parse_api_url("ftp://x/api/v3")
            .unwrap_err()
            .contains("must be http(s)"));
    }

    #[test]
    fn durations_and_times_parse() {
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("120").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("2d").unwrap(), Duration::from_secs(172_800));
        for bad in ["", "m", "5x", "0", "1h5", "0h0m", "h1", "-5s", "1.5h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        // The inputs that once panicked or wrapped: each is one readable refusal.
        for huge in [
            "18446744073709551615",
            "100000000000h",
            "5124095576030432h",
            "99999999999999999999999s",
            "8785h",
            "367d",
        ] {
            let e = parse_duration(huge).unwrap_err();
            assert!(e.contains("at most 366 days"), "{huge}: {e}");
        }
        assert_eq!(parse_duration("8784h").unwrap(), MAX_DURATION);
        assert_eq!(
            parse_time("2026-01-31").unwrap().to_rfc3339(),
            "2026-01-31T00:00:00+00:00"
        );
        assert!(parse_time("2026-01-31T12:00:00Z").is_ok());
        assert!(parse_time("yesterday").is_err());
    }

    #[test]
    fn storage_urls_parse() {
        assert_eq!(
            "file://./data/lake".parse::<StorageUrl>().unwrap(),
            StorageUrl::Local("./data/lake".into())
        );
        assert_eq!(
            "memory://".parse::<StorageUrl>().unwrap(),
            StorageUrl::Memory
        );
        assert!("ftp://x".parse::<StorageUrl>().is_err());
        assert_eq!(
            "gs://my-bucket/ghstats/raw/".parse::<StorageUrl>().unwrap(),
            StorageUrl::Gcs {
                bucket: "my-bucket".into(),
                prefix: "ghstats/raw".into()
            }
        );
        assert_eq!(
            "s3://b-1".parse::<StorageUrl>().unwrap(),
            StorageUrl::S3 {
                bucket: "b-1".into(),
                prefix: "".into()
            }
        );
        assert_eq!(
            "gs://my-bucket/a/b"
                .parse::<StorageUrl>()
                .unwrap()
                .to_string(),
            "gs://my-bucket/a/b"
        );
        for bad in [
            "gs://",
            "gs://UPPER",
            "s3://ab",
            "gs://b-1/../x",
            "s3://-bucket",
        ] {
            assert!(bad.parse::<StorageUrl>().is_err(), "{bad}");
        }
        assert!("file://".parse::<StorageUrl>().is_err());
    }

    #[test]
    fn bad_flags_are_refused_with_a_message() {
        for args in [
            vec!["ghstats", "collect", "--hours", "0"],
            vec![
                "ghstats",
                "collect",
                "--hours",
                "2",
                "--since",
                "2026-01-01",
            ],
            vec!["ghstats", "collect", "--until", "2026-01-01"],
            vec!["ghstats", "collect", "--repos", "../etc"],
            vec!["ghstats", "--org", "-bad-", "collect"],
            vec!["ghstats", "backfill", "--days", "0"],
            vec!["ghstats", "backfill"],
            vec!["ghstats", "backfill", "--days", "10", "--all"],
            vec!["ghstats", "--chunk-size", "0", "collect"],
            vec!["ghstats", "load", "--date", "2026-13-01"],
            vec!["ghstats", "load", "--collection-id", "../x"],
            vec!["ghstats", "--warehouse-url", "mysql://x", "summary"],
        ] {
            assert!(Cli::try_parse_from(&args).is_err(), "{args:?}");
        }
    }

    #[test]
    fn serve_limits_have_defaults_and_are_range_checked() {
        let serve = |args: &[&str]| {
            let mut all = vec!["ghstats", "serve"];
            all.extend_from_slice(args);
            match Cli::try_parse_from(all).map(|c| c.command) {
                Ok(Command::Serve(a)) => Ok(a),
                Ok(_) => unreachable!("serve parses as serve"),
                Err(e) => Err(e.to_string()),
            }
        };
        let d = serve(&[]).unwrap();
        assert_eq!(
            (d.header_timeout, d.idle_timeout, d.max_connections),
            (Duration::from_secs(10), Duration::from_secs(620), 256)
        );
        let a = serve(&[
            "--header-timeout",
            "2s",
            "--idle-timeout",
            "1h",
            "--max-connections",
            "20",
        ])
        .unwrap();
        assert_eq!(
            (a.header_timeout, a.idle_timeout, a.max_connections),
            (Duration::from_secs(2), Duration::from_secs(3600), 20)
        );
        for bad in [
            &["--header-timeout", "0"][..],
            &["--header-timeout", "61m"],
            &["--idle-timeout", "2d"],
            &["--idle-timeout", "soon"],
            &["--max-connections", "0"],
            &["--max-connections", "100001"],
        ] {
            assert!(serve(bad).is_err(), "{bad:?}");
        }
        assert!(serve(&["--idle-timeout", "2h"])
            .unwrap_err()
            .contains("at most 1h"));
    }

    #[test]
    fn a_malformed_warehouse_url_is_refused_without_its_password() {
        for url in [
            "postgres://u:s3cret@127.0.0.1:abc/db",
            "postgres://u:s3cret@[::1/db",
            "postgres:///db",
        ] {
            let e = Cli::try_parse_from(["ghstats", "--warehouse-url", url, "summary"])
                .unwrap_err()
                .to_string();
            assert!(e.contains("WAREHOUSE_URL is malformed"), "{url}: {e}");
            assert!(!e.contains("s3cret"), "{url}: {e}");
        }
    }

    #[test]
    fn all_tokens_merges_single_and_list() {
        let cli =
            Cli::try_parse_from(["ghstats", "--tokens", "a,b", "--token", "c", "collect"]).unwrap();
        let t: Vec<String> = cli
            .config
            .all_tokens()
            .iter()
            .map(|s| s.expose().to_string())
            .collect();
        assert_eq!(t, ["a", "b", "c"]);
    }
}
