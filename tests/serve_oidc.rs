//! `AUTH_MODE=oidc` on the real server, offline: a local JWKS endpoint stands in for Google's
//! certs URL, and tests sign ID tokens with keys they generate. Valid tokens of allowed service
//! accounts pass; every other kind is refused with 401 or 403 and a JSON message; a key
//! rotation is picked up with one refetch, and unknown key ids do not hammer the endpoint.

use axum::routing::get;
mod common;

use ghstats::oidc::OidcVerifier;
use ghstats::serve::Auth;
use github_sim::{generate_rsa_key, RsaKey};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

const AUDIENCE: &str = "https://ghstats-abc123-uc.a.run.app";
const SCHEDULER: &str = "scheduler@proj.iam.gserviceaccount.com";

#[derive(Default)]
struct Jwks {
    keys: Mutex<Vec<Value>>,
    fetches: AtomicU64,
}

fn jwk(kid: &str, k: &RsaKey) -> Value {
    json!({ "kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig", "n": k.n, "e": k.e })
}

async fn start_jwks(jwks: Arc<Jwks>) -> String {
    let app = axum::Router::new().route(
        "/certs",
        get(move || {
            let jwks = jwks.clone();
            async move {
                jwks.fetches.fetch_add(1, Ordering::SeqCst);
                let keys = jwks.keys.lock().unwrap().clone();
                (
                    [("cache-control", "public, max-age=3600")],
                    axum::Json(json!({ "keys": keys })),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/certs")
}

fn sign(key: &RsaKey, kid: &str, claims: Value) -> String {
    let mut h = Header::new(Algorithm::RS256);
    h.kid = Some(kid.into());
    jsonwebtoken::encode(
        &h,
        &claims,
        &EncodingKey::from_rsa_pem(key.private_pem.as_bytes()).unwrap(),
    )
    .unwrap()
}

fn claims(email: &str) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({
        "iss": "https://accounts.google.com",
        "aud": AUDIENCE,
        "sub": "1234567890",
        "azp": "1234567890",
        "email": email,
        "email_verified": true,
        "iat": now,
        "exp": now + 3600,
    })
}

fn with(mut c: Value, field: &str, v: Value) -> Value {
    c[field] = v;
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn google_id_tokens_are_checked() {
    let key = generate_rsa_key().unwrap();
    let other = generate_rsa_key().unwrap();
    let jwks = Arc::new(Jwks::default());
    jwks.keys.lock().unwrap().push(jwk("k1", &key));
    let certs = start_jwks(jwks.clone()).await;

    let dir = tempfile::tempdir().unwrap();
    let allowed = format!("{SCHEDULER}, Invoker@proj.iam.gserviceaccount.com");
    let cli = common::service::cli(
        dir.path(),
        None,
        &[],
        &[
            "serve",
            "--auth-mode",
            "oidc",
            "--oidc-audience",
            AUDIENCE,
            "--oidc-allowed-emails",
            &allowed,
            "--oidc-jwks-url",
            &certs,
        ],
    );
    let ghstats::config::Command::Serve(args) = cli.command else {
        panic!("serve parsed")
    };
    let verifier = OidcVerifier::new(
        args.oidc_audience,
        args.oidc_allowed_emails,
        args.oidc_jwks_url,
    )
    .unwrap();
    // The warehouse exists, as `ghstats init` makes it: `/summary` only reads.
    ghstats::warehouse::open(&cli.config.warehouse_url)
        .await
        .unwrap()
        .init()
        .await
        .unwrap();
    let svc = common::service::serve(cli.config, Auth::Oidc(Arc::new(verifier)), dir).await;
    let url = svc.url.clone();
    let http = reqwest::Client::new();
    let call = |token: Option<String>| {
        let http = http.clone();
        let url = url.clone();
        async move {
            let mut r = http.get(format!("{url}/summary"));
            if let Some(t) = token {
                r = r.bearer_auth(t);
            }
            let r = r.send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };

    // Health needs no token.
    let health = http.get(format!("{url}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);

    // The scheduler's token passes; emails compare without case.
    let (status, body) = call(Some(sign(&key, "k1", claims(SCHEDULER)))).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = call(Some(sign(
        &key,
        "k1",
        claims("invoker@PROJ.iam.gserviceaccount.com"),
    )))
    .await;
    assert_eq!(status, 200);
    assert_eq!(jwks.fetches.load(Ordering::SeqCst), 1, "keys are cached");

    let now = chrono::Utc::now().timestamp();
    let cases: Vec<(&str, Option<String>, u16, &str)> = vec![
        ("no token", None, 401, "Bearer"),
        ("not a JWT", Some("abc.def".into()), 401, "not a JWT"),
        (
            "wrong audience",
            Some(sign(
                &key,
                "k1",
                with(claims(SCHEDULER), "aud", json!("https://other.example")),
            )),
            401,
            "audience",
        ),
        (
            "wrong issuer",
            Some(sign(
                &key,
                "k1",
                with(claims(SCHEDULER), "iss", json!("https://evil.example")),
            )),
            401,
            "not issued by Google",
        ),
        (
            "expired",
            Some(sign(
                &key,
                "k1",
                with(
                    with(claims(SCHEDULER), "exp", json!(now - 120)),
                    "iat",
                    json!(now - 3720),
                ),
            )),
            401,
            "expired",
        ),
        (
            "no expiry",
            Some(sign(&key, "k1", {
                let mut c = claims(SCHEDULER);
                c.as_object_mut().unwrap().remove("exp");
                c
            })),
            401,
            "exp",
        ),
        (
            "signed by another key under a published kid",
            Some(sign(&other, "k1", claims(SCHEDULER))),
            401,
            "signature",
        ),
        (
            "HS256 with the public modulus as secret",
            Some(
                jsonwebtoken::encode(
                    &{
                        let mut h = Header::new(Algorithm::HS256);
                        h.kid = Some("k1".into());
                        h
                    },
                    &claims(SCHEDULER),
                    &EncodingKey::from_secret(key.n.as_bytes()),
                )
                .unwrap(),
            ),
            401,
            "RS256",
        ),
        (
            "an email not allowed",
            Some(sign(
                &key,
                "k1",
                claims("intruder@proj.iam.gserviceaccount.com"),
            )),
            403,
            "not allowed",
        ),
        (
            "an unverified email",
            Some(sign(
                &key,
                "k1",
                with(claims(SCHEDULER), "email_verified", json!(false)),
            )),
            403,
            "not a verified email",
        ),
        (
            "no email",
            Some(sign(&key, "k1", {
                let mut c = claims(SCHEDULER);
                c.as_object_mut().unwrap().remove("email");
                c
            })),
            403,
            "no email",
        ),
    ];
    for (what, token, want, says) in cases {
        let (status, body) = call(token).await;
        assert_eq!(status, want, "{what}: {body}");
        let msg = body["error"].as_str().unwrap_or_default();
        assert!(msg.contains(says), "{what}: {msg:?} should say {says:?}");
    }

    // Tokens under a key id nobody published are refused, and within the refetch interval
    // (30 s) they cause no fetch at all: a flood of them cannot hammer Google's endpoint.
    let before = jwks.fetches.load(Ordering::SeqCst);
    for _ in 0..5 {
        let (status, body) = call(Some(sign(&other, "unknown", claims(SCHEDULER)))).await;
        assert_eq!(status, 401, "{body}");
    }
    assert_eq!(jwks.fetches.load(Ordering::SeqCst), before);

    // Google rotates: a key published after the last fetch is found with one refetch, once
    // the refetch interval has passed.
    let published = Arc::new(Jwks::default());
    published.keys.lock().unwrap().push(jwk("k1", &key));
    let certs = start_jwks(published.clone()).await;
    let verifier = OidcVerifier::new(
        vec![AUDIENCE.into()],
        vec![SCHEDULER.into()],
        certs.parse().unwrap(),
    )
    .unwrap()
    .with_min_refetch(std::time::Duration::from_millis(200));
    assert_eq!(
        verifier.verify(&sign(&key, "k1", claims(SCHEDULER))).await,
        Ok(SCHEDULER.to_string())
    );
    let rotated = generate_rsa_key().unwrap();
    published.keys.lock().unwrap().push(jwk("k2", &rotated));
    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    assert_eq!(
        verifier
            .verify(&sign(&rotated, "k2", claims(SCHEDULER)))
            .await,
        Ok(SCHEDULER.to_string()),
        "a rotated key is found with one refetch"
    );
    assert_eq!(
        verifier.verify(&sign(&key, "k1", claims(SCHEDULER))).await,
        Ok(SCHEDULER.to_string())
    );
    assert_eq!(published.fetches.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_keys_are_a_503_not_a_pass() {
    let key = generate_rsa_key().unwrap();
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/certs", closed.local_addr().unwrap());
    drop(closed);
    let verifier = OidcVerifier::new(
        vec![AUDIENCE.into()],
        vec![SCHEDULER.into()],
        url.parse().unwrap(),
    )
    .unwrap();
    let err = verifier
        .verify(&sign(&key, "k1", claims(SCHEDULER)))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ghstats::oidc::OidcError::Unavailable(_)),
        "{err:?}"
    );
}
