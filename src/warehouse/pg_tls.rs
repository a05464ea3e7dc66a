//! TLS for PostgreSQL connections, as libpq's `sslmode` and `sslrootcert` URL parameters ask:
//! `disable` (plaintext), `allow`/`prefer` (TLS when the server offers it, certificate not
//! checked, else plaintext; `prefer` is the default as in libpq), `require` (TLS, certificate
//! not checked, unless `sslrootcert` is given: then as `verify-ca`), `verify-ca` (the
//! certificate chains to a trusted CA) and `verify-full` (and names the host). The trusted CAs
//! are the PEM file `sslrootcert` names, or the system's store and the public webpki roots
//! when it is absent or `system`.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::path::PathBuf;
use std::sync::Arc;

/// libpq's `sslmode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// A PostgreSQL URL taken apart: what tokio-postgres reads, and how to use TLS.
#[derive(Clone, Debug)]
pub struct PgTarget {
    pub config: tokio_postgres::Config,
    pub ssl_mode: SslMode,
    /// `sslrootcert`: a PEM file of trusted CAs (`None`: the system's store and webpki roots).
    pub root_cert: Option<PathBuf>,
}

/// Parses `postgres://USER:PASSWORD@HOST:PORT/DB?sslmode=…&sslrootcert=…`. The error never
/// repeats the URL (it may hold a password).
pub fn parse(url: &str) -> Result<PgTarget, String> {
    let malformed = |e: &dyn std::fmt::Display| {
        format!("WAREHOUSE_URL is malformed: {e}; the form is postgres://USER:PASSWORD@HOST:PORT/DATABASE (nothing was connected to)")
    };
    let mut parsed = url::Url::parse(url).map_err(|e| malformed(&e))?;
    let mut ssl_mode = SslMode::Prefer;
    let mut root_cert = None;
    // Other parameters go to tokio-postgres as written: re-encoding them would turn a space
    // into `+`, which it does not decode (`options=-c%20search_path%3Dx`).
    let rest: Vec<String> = parsed
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|segment| {
            let key = segment.split('=').next().unwrap_or_default();
            !segment.is_empty() && key != "sslmode" && key != "sslrootcert"
        })
        .map(str::to_string)
        .collect();
    for (k, v) in parsed.query_pairs() {
        match k.as_ref() {
            "sslmode" => {
                ssl_mode = match v.as_ref() {
                    "disable" => SslMode::Disable,
                    "allow" | "prefer" => SslMode::Prefer,
                    "require" => SslMode::Require,
                    "verify-ca" => SslMode::VerifyCa,
                    "verify-full" => SslMode::VerifyFull,
                    other => {
                        return Err(format!(
                            "sslmode={other} is not one of disable, allow, prefer, require, verify-ca, verify-full"
                        ))
                    }
                }
            }
            "sslrootcert" if v == "system" => root_cert = None,
            "sslrootcert" => root_cert = Some(PathBuf::from(v.as_ref())),
            _ => {}
        }
    }
    parsed.set_query((!rest.is_empty()).then(|| rest.join("&")).as_deref());
    // A root certificate asks for verification even under `require` (libpq does the same).
    if ssl_mode == SslMode::Require && root_cert.is_some() {
        ssl_mode = SslMode::VerifyCa;
    }
    let mut config: tokio_postgres::Config = parsed.as_str().parse().map_err(|e| malformed(&e))?;
    if config.get_hosts().is_empty() {
        return Err(malformed(&"it names no host"));
    }
    config.ssl_mode(match ssl_mode {
        SslMode::Disable => tokio_postgres::config::SslMode::Disable,
        SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
        _ => tokio_postgres::config::SslMode::Require,
    });
    Ok(PgTarget {
        config,
        ssl_mode,
        root_cert,
    })
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The rustls client configuration for a target (`None` for `sslmode=disable`).
pub fn client_config(t: &PgTarget) -> Result<Option<rustls::ClientConfig>, String> {
    if t.ssl_mode == SslMode::Disable {
        return Ok(None);
    }
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?;
    let verifier: Arc<dyn ServerCertVerifier> = match t.ssl_mode {
        SslMode::Disable | SslMode::Prefer | SslMode::Require => Arc::new(EncryptOnly { provider }),
        SslMode::VerifyCa | SslMode::VerifyFull => {
            let roots = Arc::new(roots(t.root_cert.as_deref())?);
            let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider)
                .build()
                .map_err(|e| format!("TLS setup: {e}"))?;
            if t.ssl_mode == SslMode::VerifyCa {
                Arc::new(AnyName(webpki))
            } else {
                webpki
            }
        }
    };
    Ok(Some(
        builder
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth(),
    ))
}

/// The CAs of `sslrootcert`, or the system's store and webpki's roots.
fn roots(file: Option<&std::path::Path>) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    match file {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|i| i.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("sslrootcert {}: {e}", path.display()))?;
            if certs.is_empty() {
                return Err(format!(
                    "sslrootcert {} holds no PEM certificate",
                    path.display()
                ));
            }
            for c in certs {
                store
                    .add(c)
                    .map_err(|e| format!("sslrootcert {}: {e}", path.display()))?;
            }
        }
        None => {
            store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            let native = rustls_native_certs::load_native_certs();
            for c in native.certs {
                // One unreadable certificate in the system's store does not spoil the rest.
                let _ = store.add(c);
            }
        }
    }
    Ok(store)
}

/// `require` / `prefer`: the connection is encrypted and the server proves it holds the
/// certificate's key, but the certificate itself is not checked (libpq's behaviour).
#[derive(Debug)]
struct EncryptOnly {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// `verify-ca`: the chain must lead to a trusted CA; the name in the certificate is not
/// compared with the host.
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmode_follows_libpq() {
        let p = |u: &str| parse(u).unwrap();
        assert_eq!(p("postgres://u@h/db").ssl_mode, SslMode::Prefer);
        assert_eq!(
            p("postgres://u@h/db?sslmode=disable").ssl_mode,
            SslMode::Disable
        );
        assert_eq!(
            p("postgres://u@h/db?sslmode=require").ssl_mode,
            SslMode::Require
        );
        let t = p("postgres://u:pw@h:5433/db?sslmode=verify-full&sslrootcert=/etc/ca.pem&application_name=x");
        assert_eq!(t.ssl_mode, SslMode::VerifyFull);
        assert_eq!(
            t.root_cert.as_deref(),
            Some(std::path::Path::new("/etc/ca.pem"))
        );
        // Other parameters still reach tokio-postgres, spaces included.
        assert_eq!(t.config.get_application_name(), Some("x"));
        assert_eq!(t.config.get_ports(), &[5433]);
        let t = p("postgres://u@h/db?sslmode=disable&options=-c%20lock_timeout%3D5000");
        assert_eq!(t.config.get_options(), Some("-c lock_timeout=5000"));
        // A root certificate makes `require` check the chain, as in libpq.
        assert_eq!(
            p("postgres://u@h/db?sslmode=require&sslrootcert=/ca.pem").ssl_mode,
            SslMode::VerifyCa
        );
        assert_eq!(
            p("postgres://u@h/db?sslmode=verify-full&sslrootcert=system").root_cert,
            None
        );
        let e = parse("postgres://u:hunter2@h/db?sslmode=strict").unwrap_err();
        assert!(
            e.contains("sslmode=strict") && !e.contains("hunter2"),
            "{e}"
        );
    }
}
