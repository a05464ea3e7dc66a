//! GitHub App authentication as GitHub does it: an App signs a short JWT (RS256, `iss` = the
//! App's id, at most ten minutes long) with its private key, trades it at
//! `POST /app/installations/{id}/access_tokens` for an installation token that expires, and
//! calls the API with that token. The simulator checks the JWT against the App's public key and
//! refuses installation tokens once they have expired, so a client that does not refresh them
//! fails here as it would on GitHub.

use base64::Engine;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};

/// The App the simulator knows.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AppSpec {
    /// The App's id, which its JWTs carry as `iss`.
    pub app_id: String,
    /// The one installation (on the simulated organization).
    pub installation_id: u64,
    /// The App's public key, PEM (`BEGIN PUBLIC KEY`).
    pub public_key_pem: String,
    /// How long an installation token lives (GitHub: one hour).
    pub token_ttl_secs: u64,
}

/// An RSA key pair for tests: the private key as PKCS#8 PEM, the public key as SPKI PEM and as
/// the JWK's base64url modulus and exponent.
#[derive(Clone)]
pub struct RsaKey {
    pub private_pem: String,
    pub public_pem: String,
    pub n: String,
    pub e: String,
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// A fresh 2048-bit RSA key pair.
pub fn generate_rsa_key() -> anyhow::Result<RsaKey> {
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rsa::{KeyPair, KeySize};
    use aws_lc_rs::signature::KeyPair as _;
    let kp = KeyPair::generate(KeySize::Rsa2048).map_err(|_| anyhow::anyhow!("RSA keygen"))?;
    let private = kp.as_der().map_err(|_| anyhow::anyhow!("PKCS#8"))?;
    let public = kp.public_key();
    let spki = public.as_der().map_err(|_| anyhow::anyhow!("SPKI"))?;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    Ok(RsaKey {
        private_pem: pem("PRIVATE KEY", private.as_ref()),
        public_pem: pem("PUBLIC KEY", spki.as_ref()),
        n: b64.encode(public.modulus().big_endian_without_leading_zero()),
        e: b64.encode(public.exponent().big_endian_without_leading_zero()),
    })
}

#[derive(Deserialize)]
struct AppClaims {
    iat: i64,
    exp: i64,
}

/// Checks an App JWT as GitHub does: RS256 under the App's key, `iss` the App's id, not
/// expired, and no longer than ten minutes.
pub(crate) fn verify_app_jwt(app: &AppSpec, jwt: &str) -> Result<(), String> {
    let key = DecodingKey::from_rsa_pem(app.public_key_pem.as_bytes())
        .map_err(|e| format!("the simulator's App key is unusable: {e}"))?;
    let mut v = Validation::new(Algorithm::RS256);
    v.set_issuer(&[app.app_id.as_str()]);
    v.set_required_spec_claims(&["exp", "iat", "iss"]);
    v.leeway = 0;
    let data = jsonwebtoken::decode::<AppClaims>(jwt, &key, &v)
        .map_err(|e| format!("A JSON web token could not be decoded ({e})"))?;
    let c = data.claims;
    if c.exp - c.iat > 600 {
        return Err("'Expiration time' claim ('exp') is too far in the future".into());
    }
    if c.iat > Utc::now().timestamp() + 60 {
        return Err(
            "'Issued at' claim ('iat') must be an Integer representing a time in the past".into(),
        );
    }
    Ok(())
}

/// A minted installation token's body, as GitHub answers it.
pub(crate) fn token_body(token: &str, expires_at: DateTime<Utc>) -> serde_json::Value {
    serde_json::json!({
        "token": token,
        "expires_at": expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "permissions": { "contents": "read", "pull_requests": "read", "metadata": "read" },
        "repository_selection": "all",
    })
}
