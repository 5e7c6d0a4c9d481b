//! TLS listeners: a rustls server configuration from PEM files, with the `ring` provider
//! (no C build beyond ring's own).

use std::sync::Arc;

use tokio_rustls::rustls::crypto::ring::default_provider;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

use crate::config::TlsFiles;
use crate::BrokerError;

/// Builds the acceptor of the TLS and WSS listeners from the configured PEM files.
///
/// # Errors
/// [`BrokerError::Io`] when a file cannot be read; [`BrokerError::Tls`] when it holds no
/// certificate or key, or rustls refuses the pair.
pub(crate) fn acceptor(files: &TlsFiles) -> Result<TlsAcceptor, BrokerError> {
    let cert_pem = std::fs::read(&files.cert_pem).map_err(BrokerError::Io)?;
    let key_pem = std::fs::read(&files.key_pem).map_err(BrokerError::Io)?;
    acceptor_from_pem(&cert_pem, &key_pem)
}

/// Like [`acceptor`], from PEM text in memory.
pub(crate) fn acceptor_from_pem(
    cert_pem: &[u8],
    key_pem: &[u8],
) -> Result<TlsAcceptor, BrokerError> {
    let tls = |what: &str, e: &dyn std::fmt::Display| BrokerError::Tls(format!("{what}: {e}"));
    let certs = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls("certificate PEM", &e))?;
    if certs.is_empty() {
        return Err(BrokerError::Tls("no certificate in the PEM file".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| tls("private key PEM", &e))?;
    let config = ServerConfig::builder_with_provider(Arc::new(default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| tls("protocol versions", &e))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| tls("certificate and key", &e))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_pem_is_an_error_not_a_panic() {
        for (cert, key) in [
            (&b""[..], &b""[..]),
            (b"-----BEGIN CERTIFICATE-----\nzz\n", b"x"),
        ] {
            assert!(matches!(
                acceptor_from_pem(cert, key),
                Err(BrokerError::Tls(_))
            ));
        }
    }
}
