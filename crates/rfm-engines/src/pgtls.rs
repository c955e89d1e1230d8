//! TLS for PostgreSQL, as libpq's `sslmode` in the URL says:
//! - `disable`: plain;
//! - `prefer` (the default): encrypted when the server offers it, certificate not checked;
//! - `require`: encrypted; the certificate is checked against PGSSLROOTCERT when that is set
//!   (libpq's rule for a root certificate), else not;
//! - `verify-ca`: encrypted, signed by a trusted CA (the system's roots and PGSSLROOTCERT);
//! - `verify-full`: as `verify-ca`, and issued for the host in the URL.
//!
//! rustls does the TLS; the unchecked modes use a verifier that still checks the handshake's
//! signatures (libpq's behaviour: encryption without authentication).

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

/// How much of the server's certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    Nothing,
    Chain,
    Full,
}

/// The URL as tokio-postgres reads it (which knows `disable|prefer|require` only) and how to
/// check the certificate.
pub fn mode(url: &str) -> Result<(String, Verify)> {
    let root = std::env::var_os("PGSSLROOTCERT").is_some_and(|p| !p.is_empty());
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_string(), Verify::Nothing));
    };
    let mut verify = Verify::Nothing;
    let mut params = Vec::new();
    for p in query.split('&') {
        let (mode, verified) = match p.strip_prefix("sslmode=") {
            None => (p, verify),
            Some("verify-full") => ("sslmode=require", Verify::Full),
            Some("verify-ca") => ("sslmode=require", Verify::Chain),
            Some("require") if root => (p, Verify::Chain),
            Some("disable" | "prefer" | "require") => (p, Verify::Nothing),
            Some(other) => bail!(
                "postgres: sslmode `{}` is not one of disable, prefer, require, verify-ca, verify-full",
                rfm_core::bounded::value(other, 32)
            ),
        };
        params.push(mode);
        verify = verified;
    }
    Ok((format!("{base}?{}", params.join("&")), verify))
}

/// The connector for `verify`.
pub fn connector(verify: Verify) -> Result<MakeRustlsConnect> {
    let provider = rfm_core::tls::provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("TLS for PostgreSQL")?;
    let chain = match verify {
        Verify::Full => {
            let config = builder.with_root_certificates(roots()?);
            return Ok(MakeRustlsConnect::new(config.with_no_client_auth()));
        }
        Verify::Chain => Some(
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots()?), provider.clone())
                .build()
                .context("TLS for PostgreSQL: no usable CA certificate")?,
        ),
        Verify::Nothing => None,
    };
    let config = builder
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Relaxed { chain, provider }));
    Ok(MakeRustlsConnect::new(config.with_no_client_auth()))
}

/// The system's trusted roots and the CA certificates in PGSSLROOTCERT.
fn roots() -> Result<rustls::RootCertStore> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        // A system certificate rustls cannot use is skipped, as by other rustls clients.
        let _ = roots.add(cert);
    }
    if let Some(path) = std::env::var_os("PGSSLROOTCERT").filter(|p| !p.is_empty()) {
        let shown = std::path::Path::new(&path).display().to_string();
        let pem = std::fs::read(&path).with_context(|| format!("PGSSLROOTCERT {shown}"))?;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.with_context(|| format!("PGSSLROOTCERT {shown}: not PEM"))?;
            roots
                .add(cert)
                .with_context(|| format!("PGSSLROOTCERT {shown}: an unusable certificate"))?;
        }
    }
    Ok(roots)
}

/// `verify-ca` (a chain to a trusted root, any host name) and the unchecked modes (`prefer`,
/// `require` without a root certificate: libpq's encryption without authentication). The
/// handshake's signatures are verified in both.
#[derive(Debug)]
struct Relaxed {
    chain: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Relaxed {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
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
        let algorithms = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmode_words_map_to_what_tokio_postgres_reads_and_a_check() {
        let u = "postgres://u@h:5432/db";
        assert_eq!(mode(u).unwrap(), (u.to_string(), Verify::Nothing));
        let (url, v) = mode(&format!("{u}?application_name=x&sslmode=verify-full")).unwrap();
        assert_eq!(
            (url.as_str(), v),
            (
                "postgres://u@h:5432/db?application_name=x&sslmode=require",
                Verify::Full
            )
        );
        assert_eq!(
            mode(&format!("{u}?sslmode=verify-ca")).unwrap().1,
            Verify::Chain
        );
        assert_eq!(
            mode(&format!("{u}?sslmode=disable")).unwrap().1,
            Verify::Nothing
        );
        let e = mode(&format!("{u}?sslmode=maybe")).unwrap_err().to_string();
        assert!(e.contains("`maybe`") && e.contains("verify-full"), "{e}");
    }
}
