//! TLS to servers behind a private certificate authority: GitHub Enterprise (`CA_BUNDLE`, the
//! system's store) and PostgreSQL (`sslmode=require|verify-full`, `sslrootcert=`). Each test
//! makes its own CA and server certificate.

mod common;

use github_sim::{OrgSpec, SimOptions, Simulator};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

/// A certificate authority and one server certificate it signed, in PEM.
struct Pki {
    ca: String,
    server_cert: String,
    server_key: String,
}

/// A new CA and a certificate for `localhost` / 127.0.0.1 signed by it.
fn pki() -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "ghstats test CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let mut params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    Pki {
        ca: ca.pem(),
        server_cert: cert.pem(),
        server_key: key.serialize_pem(),
    }
}

/// Serves TLS with the PKI's server certificate on a free loopback port and passes each
/// connection through to `backend` (the plain-HTTP simulator).
async fn tls_terminator(pki: &Pki, backend: SocketAddr) -> SocketAddr {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = vec![CertificateDer::from_pem_slice(pki.server_cert.as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(pki.server_key.as_bytes()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A client that refuses the certificate ends the handshake; nothing to pass on.
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut plain) = tokio::net::TcpStream::connect(backend).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    addr
}

/// `ghstats backfill` against `api`, in `dir`, with extra environment; (success, stdout, stderr).
async fn backfill(dir: &Path, api: &str, env: &[(&str, &str)]) -> (bool, String, String) {
    let mut cmd = common::ghstats_bin(dir);
    cmd.env_remove("CA_BUNDLE")
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR")
        .env("GITHUB_ORG", "acme")
        .env("GITHUB_TOKEN", "t1")
        .env("GITHUB_API_URL", api)
        .env("STORAGE_URL", "file://./lake")
        .env("WAREHOUSE_URL", "sqlite://./warehouse.db")
        .env("RUN_BUDGET", "60s")
        .args(["backfill", "--days", "400"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_enterprise_behind_a_private_ca_is_reached_with_ca_bundle_or_the_system_store() {
    let sim = Simulator::start(&OrgSpec::new("acme", 2, 30, 51), SimOptions::default(), 0)
        .await
        .unwrap();
    let backend: SocketAddr = sim.url().trim_start_matches("http://").parse().unwrap();
    let pki = pki();
    let tls = tls_terminator(&pki, backend).await;
    let api = format!("https://localhost:{}", tls.port());
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("private-ca.pem");
    std::fs::write(&ca_file, &pki.ca).unwrap();
    let ca = ca_file.to_str().unwrap();

    // Without the CA: one line that names the certificate problem and the way out.
    let (ok, _, stderr) = backfill(dir.path(), &api, &[]).await;
    assert!(!ok, "an untrusted certificate was accepted: {stderr}");
    let line = stderr
        .lines()
        .find(|l| l.contains("certificate"))
        .unwrap_or_else(|| panic!("no line names the certificate: {stderr}"));
    assert!(
        line.contains("not trusted")
            && line.contains("UnknownIssuer")
            && line.contains("CA_BUNDLE"),
        "{line}"
    );

    // With CA_BUNDLE: the whole organization is collected.
    let (ok, stdout, stderr) = backfill(dir.path(), &api, &[("CA_BUNDLE", ca)]).await;
    assert!(ok, "{stderr}");
    let result: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(result["status"], "completed", "{stdout}");
    assert_eq!(result["rows"]["pull_requests"], 30, "{stdout}");

    // The system's store counts too (rustls-native-certs reads SSL_CERT_FILE).
    let (ok, stdout, stderr) = backfill(dir.path(), &api, &[("SSL_CERT_FILE", ca)]).await;
    assert!(ok, "{stderr}");
    assert!(stdout.contains("\"completed\""), "{stdout}");

    // A CA_BUNDLE that is not PEM is refused before any request, with its path.
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate").unwrap();
    let (ok, _, stderr) =
        backfill(dir.path(), &api, &[("CA_BUNDLE", junk.to_str().unwrap())]).await;
    assert!(!ok);
    assert!(stderr.contains("junk.pem"), "{stderr}");
}

/// A PostgreSQL of the test's own, serving only TLS with the PKI's server certificate
/// (scripts/pg-tls.sh); stopped and removed on drop.
struct PrivatePostgres {
    dir: std::path::PathBuf,
    port: u16,
}

impl PrivatePostgres {
    /// `None` (with a note) when the PostgreSQL binaries are absent.
    fn start(pki: &Pki) -> Option<PrivatePostgres> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/pg-tls.sh");
        // Under /tmp itself: the unprivileged server user cannot enter a root-only temp dir.
        let dir = std::env::temp_dir().join(format!("ghstats-pgtls-{:08x}", rand::random::<u32>()));
        let files = tempfile::tempdir().unwrap();
        let (cert, key) = (
            files.path().join("server.crt"),
            files.path().join("server.key"),
        );
        std::fs::write(&cert, &pki.server_cert).unwrap();
        std::fs::write(&key, &pki.server_key).unwrap();
        let out = std::process::Command::new(&script)
            .arg("start")
            .args([&dir, &cert, &key])
            .output()
            .expect("scripts/pg-tls.sh runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.code() == Some(3) {
            eprintln!("skipped: {}", stderr.trim());
            return None;
        }
        // Whatever happens next, the server is stopped when this is dropped.
        let mut server = PrivatePostgres { dir, port: 0 };
        assert!(out.status.success(), "scripts/pg-tls.sh start: {stderr}");
        server.port = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        Some(server)
    }

    fn url(&self, query: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres{query}",
            self.port
        )
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/pg-tls.sh");
        let _ = std::process::Command::new(script)
            .arg("stop")
            .arg(&self.dir)
            .output();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_over_tls_verifies_a_private_ca_and_loads() {
    use ghstats::warehouse::{postgres::PostgresWarehouse, Warehouse};
    let pki = pki();
    let Some(pg) = PrivatePostgres::start(&pki) else {
        return;
    };
    let files = tempfile::tempdir().unwrap();
    let ca = files.path().join("ca.pem");
    std::fs::write(&ca, &pki.ca).unwrap();
    let ca = ca.to_str().unwrap();

    // verify-full with the CA: a collection loads and reads back equal to the ground truth.
    let sim = Simulator::start(
        &OrgSpec::new(common::ORG, 2, 40, 52),
        SimOptions::default(),
        0,
    )
    .await
    .unwrap();
    let client = common::fast_client(&sim.url(), &["t"]);
    let lake = common::memory_lake();
    let window = common::everything();
    let result = common::collect(&client, &lake, &common::options(window, &[])).await;
    let wh = PostgresWarehouse::connect(&pg.url(&format!("?sslmode=verify-full&sslrootcert={ca}")))
        .await
        .expect("verify-full with the CA connects");
    wh.ensure_tables().await.unwrap();
    ghstats::jobs::load::load_collection(
        &wh,
        &lake,
        &common::ORG.parse().unwrap(),
        &result.collection_id,
    )
    .await
    .unwrap();
    common::assert_tables_eq(
        &common::warehouse_tables(&wh).await,
        &common::expected(&sim.world(), &window, &[]),
    );

    // verify-full without the CA: refused, with what is wrong and what to do.
    let err = PostgresWarehouse::connect(&pg.url("?sslmode=verify-full"))
        .await
        .err()
        .expect("an unknown CA is refused");
    let text = err.to_string();
    assert!(
        text.contains("UnknownIssuer") && text.contains("sslrootcert") && !text.contains('\n'),
        "{text}"
    );

    // require and prefer (the default) encrypt without checking the certificate; the server
    // takes no plaintext connection, so these ran over TLS.
    for query in ["?sslmode=require", "", "?sslmode=prefer"] {
        let wh = PostgresWarehouse::connect(&pg.url(query))
            .await
            .unwrap_or_else(|e| panic!("{query}: {e}"));
        assert!(!wh
            .fetch_rows("pull_requests", common::ORG)
            .await
            .unwrap()
            .is_empty());
    }
    // disable sends plaintext, which this server refuses.
    let err = PostgresWarehouse::connect(&pg.url("?sslmode=disable"))
        .await
        .err()
        .expect("plaintext is refused");
    assert!(err.to_string().contains("no encryption"), "{err}");
}
