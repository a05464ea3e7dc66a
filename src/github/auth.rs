//! How requests to GitHub authenticate: a static token, or a GitHub App installation.
//!
//! An App signs a JWT (RS256, `iss` = the App id, nine minutes long, `iat` a minute in the past
//! for clock drift) with its private key and trades it for an installation token, which expires
//! (an hour on GitHub). The token is kept and replaced before it expires: a quarter of its life
//! early, at most five minutes, so a backfill that runs for hours never sends an expired one. A
//! 401 on a request drops the token so the retry mints another.

use super::error::GithubError;
use crate::config::Secret;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use url::Url;

/// One credential the client can send; each has its own rate-limit budget.
#[derive(Clone)]
pub enum Credential {
    Token(Secret),
    App(Arc<AppInstallation>),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Token(_) => f.write_str("Token(****)"),
            Credential::App(a) => write!(f, "App({})", a.app_id),
        }
    }
}

/// A GitHub App's installation on one organization.
pub struct AppInstallation {
    app_id: String,
    /// Looked up from the organization when not configured.
    installation_id: tokio::sync::OnceCell<u64>,
    org: String,
    key: EncodingKey,
    api: Url,
    current: tokio::sync::Mutex<Option<Minted>>,
    minted: AtomicU64,
}

struct Minted {
    token: Secret,
    refresh_at: DateTime<Utc>,
}

#[derive(Serialize)]
struct AppClaims<'a> {
    iat: i64,
    exp: i64,
    iss: &'a str,
}

#[derive(Deserialize)]
struct AccessToken {
    token: String,
    expires_at: DateTime<Utc>,
}

#[derive(Deserialize)]
struct Installation {
    id: u64,
}

fn fatal(status: u16, message: String) -> GithubError {
    GithubError::Fatal {
        status,
        message,
        request_id: None,
    }
}

/// When to replace a token that lives from `now` to `expires`: a quarter of its life early, at
/// most five minutes.
pub fn refresh_at(now: DateTime<Utc>, expires: DateTime<Utc>) -> DateTime<Utc> {
    let life = (expires - now).max(chrono::Duration::zero());
    let early = (life / 4).min(chrono::Duration::minutes(5));
    expires - early
}

impl AppInstallation {
    /// `private_key_pem` is the App's key as GitHub hands it out (PKCS#1 or PKCS#8 PEM).
    pub fn new(
        app_id: &str,
        installation_id: Option<u64>,
        org: &str,
        private_key_pem: &Secret,
        api: Url,
    ) -> Result<Self, String> {
        // A key passed through an environment variable often has its newlines escaped.
        let pem = private_key_pem.expose().replace("\\n", "\n");
        let key = EncodingKey::from_rsa_pem(pem.as_bytes())
            .map_err(|e| format!("the GitHub App private key is not an RSA PEM key ({e})"))?;
        if app_id.trim().is_empty() {
            return Err("GITHUB_APP_ID is empty".into());
        }
        let cell = tokio::sync::OnceCell::new();
        if let Some(id) = installation_id {
            let _ = cell.set(id);
        }
        Ok(AppInstallation {
            app_id: app_id.trim().to_string(),
            installation_id: cell,
            org: org.to_string(),
            key,
            api,
            current: tokio::sync::Mutex::new(None),
            minted: AtomicU64::new(0),
        })
    }

    /// Installation tokens minted so far.
    pub fn minted(&self) -> u64 {
        self.minted.load(Ordering::Relaxed)
    }

    fn jwt(&self) -> Result<String, GithubError> {
        let now = Utc::now().timestamp();
        let claims = AppClaims {
            iat: now - 60,
            exp: now + 9 * 60,
            iss: &self.app_id,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &self.key)
            .map_err(|e| fatal(0, format!("cannot sign the GitHub App JWT: {e}")))
    }

    fn url(&self, path: &str) -> Result<Url, GithubError> {
        let base = self.api.as_str().trim_end_matches('/');
        Url::parse(&format!("{base}{path}")).map_err(|e| fatal(0, e.to_string()))
    }

    /// Sends one App-authenticated request; GitHub's message on failure.
    async fn app_call(
        &self,
        http: &reqwest::Client,
        method: reqwest::Method,
        path: &str,
    ) -> Result<bytes::Bytes, GithubError> {
        let jwt = self.jwt()?;
        let resp = http
            .request(method, self.url(path)?)
            .bearer_auth(jwt)
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .map_err(|e| {
                GithubError::Transient(format!("GitHub App request: {}", e.without_url()))
            })?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| {
            GithubError::Transient(format!("GitHub App response: {}", e.without_url()))
        })?;
        if status.is_success() {
            return Ok(body);
        }
        let message = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| {
                v.get("message")
                    .and_then(|m| m.as_str())
                    .map(str::to_string)
            })
            .unwrap_or_default();
        let what = match status.as_u16() {
            401 => "GitHub refused the App's JWT: check GITHUB_APP_ID and the private key".into(),
            404 => format!(
                "GitHub App {} has no such installation (check GITHUB_APP_INSTALLATION_ID and that the App is installed on {})",
                self.app_id, self.org
            ),
            s if s >= 500 => {
                return Err(GithubError::Transient(format!(
                    "GitHub App request: HTTP {s}: {message}"
                )))
            }
            s => format!("GitHub App request failed with HTTP {s}"),
        };
        Err(fatal(status.as_u16(), format!("{what}: {message}")))
    }

    async fn installation(&self, http: &reqwest::Client) -> Result<u64, GithubError> {
        self.installation_id
            .get_or_try_init(|| async {
                let body = self
                    .app_call(
                        http,
                        reqwest::Method::GET,
                        &format!("/orgs/{}/installation", self.org),
                    )
                    .await?;
                serde_json::from_slice::<Installation>(&body)
                    .map(|i| i.id)
                    .map_err(|e| fatal(200, format!("unexpected installation response: {e}")))
            })
            .await
            .copied()
    }

    /// The installation token to send now, minting one when there is none or it is due.
    pub async fn token(&self, http: &reqwest::Client) -> Result<Secret, GithubError> {
        let mut current = self.current.lock().await;
        if let Some(m) = current.as_ref() {
            if Utc::now() < m.refresh_at {
                return Ok(m.token.clone());
            }
        }
        let id = self.installation(http).await?;
        let body = self
            .app_call(
                http,
                reqwest::Method::POST,
                &format!("/app/installations/{id}/access_tokens"),
            )
            .await?;
        let t: AccessToken = serde_json::from_slice(&body)
            .map_err(|e| fatal(200, format!("unexpected access-token response: {e}")))?;
        let now = Utc::now();
        self.minted.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            installation_id = id,
            expires_at = %t.expires_at,
            "Minted a GitHub App installation token."
        );
        let token = Secret::new(t.token);
        *current = Some(Minted {
            token: token.clone(),
            refresh_at: refresh_at(now, t.expires_at),
        });
        Ok(token)
    }

    /// Drops the token in hand (GitHub refused it), so the next request mints another.
    pub async fn invalidate(&self) {
        *self.current.lock().await = None;
    }
}

impl Credential {
    /// The bearer token for the next request.
    pub async fn bearer(&self, http: &reqwest::Client) -> Result<Secret, GithubError> {
        match self {
            Credential::Token(t) => Ok(t.clone()),
            Credential::App(a) => a.token(http).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_comes_a_quarter_early_at_most_five_minutes() {
        let now = Utc::now();
        let hour = now + chrono::Duration::hours(1);
        assert_eq!(refresh_at(now, hour), hour - chrono::Duration::minutes(5));
        let short = now + chrono::Duration::seconds(8);
        assert_eq!(refresh_at(now, short), short - chrono::Duration::seconds(2));
        let past = now - chrono::Duration::seconds(1);
        assert_eq!(refresh_at(now, past), past);
    }

    #[test]
    fn a_bad_key_is_a_clear_error_without_the_key() {
        let e = AppInstallation::new(
            "1",
            None,
            "acme",
            &Secret::new("not-a-key-SECRETVALUE"),
            Url::parse("http://127.0.0.1:1").unwrap(),
        )
        .err()
        .unwrap();
        assert!(e.contains("not an RSA PEM key"), "{e}");
        assert!(!e.contains("SECRETVALUE"), "{e}");
    }
}
