//! `AUTH_MODE=oidc`: Google-signed ID tokens, as Cloud Scheduler and `gcloud auth
//! print-identity-token` send them. A token passes when its RS256 signature checks against
//! Google's published keys (fetched, cached for their `Cache-Control` max-age, refetched once
//! when a token names a key not yet seen, at most every 30 s), its issuer is Google, its
//! audience is one configured, it has not expired, and its verified email is on the allowed
//! list.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use url::Url;

/// Where Google publishes the keys that sign its ID tokens.
pub const GOOGLE_CERTS: &str = "https://www.googleapis.com/oauth2/v3/certs";
const ISSUERS: [&str; 2] = ["https://accounts.google.com", "accounts.google.com"];
/// Clock skew allowed on `exp`, `nbf` and `iat`.
const LEEWAY_SECS: u64 = 10;
/// Keys are refetched for an unknown key id at most this often.
const MIN_REFETCH: Duration = Duration::from_secs(30);
/// How long keys are kept when the response says nothing.
const DEFAULT_MAX_AGE: Duration = Duration::from_secs(3600);

/// Why a caller was turned away.
#[derive(Debug, PartialEq, Eq)]
pub enum OidcError {
    /// No token, or not a valid one (401).
    Unauthenticated(String),
    /// A valid token of an identity that is not allowed (403).
    Forbidden(String),
    /// Google's keys could not be fetched (503): not the caller's fault.
    Unavailable(String),
}

#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    email_verified: Option<bool>,
}

struct Keys {
    /// Each published key by its id, decoded once per fetch (or why it cannot be used).
    by_kid: HashMap<String, Result<DecodingKey, String>>,
    fetched: Instant,
    max_age: Duration,
}

/// Checks Google ID tokens.
pub struct OidcVerifier {
    audiences: Vec<String>,
    allowed_emails: Vec<String>,
    jwks_url: Url,
    http: reqwest::Client,
    keys: tokio::sync::RwLock<Option<Keys>>,
    /// One fetch at a time; when the last one was.
    fetching: tokio::sync::Mutex<Option<Instant>>,
    min_refetch: Duration,
}

impl std::fmt::Debug for OidcVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcVerifier")
            .field("audiences", &self.audiences)
            .field("allowed_emails", &self.allowed_emails)
            .field("jwks_url", &self.jwks_url.as_str())
            .finish()
    }
}

fn max_age(headers: &reqwest::header::HeaderMap) -> Duration {
    headers
        .get(reqwest::header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split(',')
                .filter_map(|d| d.trim().strip_prefix("max-age="))
                .find_map(|n| n.parse::<u64>().ok())
        })
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_MAX_AGE)
}

impl OidcVerifier {
    pub fn new(
        audiences: Vec<String>,
        allowed_emails: Vec<String>,
        jwks_url: Url,
    ) -> Result<Self, String> {
        let audiences: Vec<String> = audiences
            .into_iter()
            .map(|a| a.trim().to_string())
            .filter(|a| !a.is_empty())
            .collect();
        let allowed_emails: Vec<String> = allowed_emails
            .into_iter()
            .map(|e| e.trim().to_ascii_lowercase())
            .filter(|e| !e.is_empty())
            .collect();
        if audiences.is_empty() {
            return Err(
                "AUTH_MODE=oidc needs OIDC_AUDIENCE (the audience callers request, usually the service URL)"
                    .into(),
            );
        }
        if allowed_emails.is_empty() {
            return Err(
                "AUTH_MODE=oidc needs OIDC_ALLOWED_EMAILS (the service accounts allowed to call)"
                    .into(),
            );
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(OidcVerifier {
            audiences,
            allowed_emails,
            jwks_url,
            http,
            keys: tokio::sync::RwLock::new(None),
            fetching: tokio::sync::Mutex::new(None),
            min_refetch: MIN_REFETCH,
        })
    }

    /// Refetches for unknown key ids at most this often (default 30 s).
    pub fn with_min_refetch(mut self, d: Duration) -> Self {
        self.min_refetch = d;
        self
    }

    /// Fetches the key set unless another caller just did, or (`force` false) the cache is
    /// still fresh.
    async fn refresh(&self, force: bool) -> Result<(), OidcError> {
        // Fresh keys need no lock beyond the read: requests do not queue behind a fetch.
        if !force {
            if let Some(k) = self.keys.read().await.as_ref() {
                if k.fetched.elapsed() < k.max_age {
                    return Ok(());
                }
            }
        }
        let mut last = self.fetching.lock().await;
        {
            let keys = self.keys.read().await;
            if let Some(k) = keys.as_ref() {
                let fresh = k.fetched.elapsed() < k.max_age;
                let recent = last.is_some_and(|t| t.elapsed() < self.min_refetch);
                if (fresh && !force) || recent {
                    return Ok(());
                }
            }
        }
        *last = Some(Instant::now());
        let unavailable = |e: String| {
            tracing::error!(error = %e, url = %self.jwks_url, "Cannot fetch the ID-token signing keys.");
            OidcError::Unavailable("cannot fetch the keys that verify ID tokens; try again".into())
        };
        let resp = self
            .http
            .get(self.jwks_url.clone())
            .send()
            .await
            .map_err(|e| unavailable(e.without_url().to_string()))?;
        if !resp.status().is_success() {
            return Err(unavailable(format!("HTTP {}", resp.status())));
        }
        let age = max_age(resp.headers());
        let set: JwkSet = resp
            .json()
            .await
            .map_err(|e| unavailable(e.without_url().to_string()))?;
        let by_kid = set
            .keys
            .iter()
            .filter_map(|jwk| {
                let kid = jwk.common.key_id.clone()?;
                Some((kid, DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())))
            })
            .collect();
        *self.keys.write().await = Some(Keys {
            by_kid,
            fetched: Instant::now(),
            max_age: age,
        });
        Ok(())
    }

    async fn key(&self, kid: &str) -> Result<DecodingKey, OidcError> {
        self.refresh(false).await?;
        let find = |keys: &Option<Keys>| keys.as_ref().and_then(|k| k.by_kid.get(kid).cloned());
        let found = find(&*self.keys.read().await);
        let found = match found {
            Some(k) => Some(k),
            None => {
                // Google rotates its keys: a new key id is worth one refetch.
                self.refresh(true).await?;
                find(&*self.keys.read().await)
            }
        };
        match found {
            Some(Ok(k)) => Ok(k),
            Some(Err(e)) => Err(OidcError::Unauthenticated(format!(
                "the ID token's signing key is unusable: {e}"
            ))),
            None => Err(OidcError::Unauthenticated(
                "the ID token is signed with a key Google does not publish".into(),
            )),
        }
    }

    /// The caller's email when `token` passes every check.
    pub async fn verify(&self, token: &str) -> Result<String, OidcError> {
        let bad = |m: String| OidcError::Unauthenticated(m);
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| bad(format!("the bearer token is not a JWT: {e}")))?;
        if header.alg != Algorithm::RS256 {
            return Err(bad(format!(
                "ID tokens are signed with RS256, not {:?}",
                header.alg
            )));
        }
        let kid = header
            .kid
            .ok_or_else(|| bad("the ID token names no signing key (kid)".into()))?;
        let key = self.key(&kid).await?;
        let mut v = Validation::new(Algorithm::RS256);
        v.set_audience(&self.audiences);
        v.set_issuer(&ISSUERS);
        v.set_required_spec_claims(&["exp", "iat", "iss", "aud"]);
        v.leeway = LEEWAY_SECS;
        let data = jsonwebtoken::decode::<Claims>(token, &key, &v).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            bad(match e.kind() {
                ErrorKind::ExpiredSignature => "the ID token has expired".into(),
                ErrorKind::InvalidAudience => format!(
                    "the ID token's audience is not this service's (request audience {})",
                    self.audiences[0]
                ),
                ErrorKind::InvalidIssuer => "the ID token was not issued by Google".into(),
                ErrorKind::InvalidSignature => "the ID token's signature does not verify".into(),
                ErrorKind::ImmatureSignature => "the ID token is not valid yet".into(),
                ErrorKind::MissingRequiredClaim(c) => format!("the ID token has no {c} claim"),
                _ => format!("the ID token is not valid: {e}"),
            })
        })?;
        let email = data
            .claims
            .email
            .map(|e| e.to_ascii_lowercase())
            .ok_or_else(|| {
                OidcError::Forbidden(
                    "the ID token carries no email: request it with the service account's email included"
                        .into(),
                )
            })?;
        if data.claims.email_verified != Some(true) {
            return Err(OidcError::Forbidden(format!(
                "{email} is not a verified email"
            )));
        }
        if !self.allowed_emails.contains(&email) {
            return Err(OidcError::Forbidden(format!(
                "{email} is not allowed to call this service"
            )));
        }
        Ok(email)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_control_max_age_is_read() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(
            reqwest::header::CACHE_CONTROL,
            "public, max-age=21317, must-revalidate, no-transform"
                .parse()
                .unwrap(),
        );
        assert_eq!(max_age(&h), Duration::from_secs(21317));
        assert_eq!(max_age(&Default::default()), DEFAULT_MAX_AGE);
    }

    #[test]
    fn audience_and_allowed_emails_are_required() {
        let url: Url = GOOGLE_CERTS.parse().unwrap();
        let e = OidcVerifier::new(
            vec![],
            vec!["a@b.iam.gserviceaccount.com".into()],
            url.clone(),
        )
        .unwrap_err();
        assert!(e.contains("OIDC_AUDIENCE"), "{e}");
        let e = OidcVerifier::new(vec!["https://svc".into()], vec![" ".into()], url).unwrap_err();
        assert!(e.contains("OIDC_ALLOWED_EMAILS"), "{e}");
    }
}
