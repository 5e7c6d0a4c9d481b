//! A test CA and a server certificate for 127.0.0.1 made at test time with rcgen, and the
//! rustls client configuration that trusts it.

use std::sync::Arc;

use mqgate_broker::TlsFiles;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rumqttc::TlsConfiguration;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

/// The CA's certificate and the server's certificate and key files (removed on drop).
pub struct TestPki {
    pub ca_der: Vec<u8>,
    pub files: TlsFiles,
    _dir: tempfile::TempDir,
}

/// A CA and a leaf for `127.0.0.1` and `localhost` signed by it, the leaf's files in a
/// temporary directory of their own.
pub fn test_pki() -> TestPki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("CA key"))
        .expect("CA certificate");
    let leaf_key = KeyPair::generate().expect("leaf key");
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .expect("leaf params")
        .signed_by(&leaf_key, &ca)
        .expect("leaf certificate");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let files = TlsFiles {
        cert_pem: dir.path().join("cert.pem"),
        key_pem: dir.path().join("key.pem"),
    };
    std::fs::write(&files.cert_pem, leaf.pem()).expect("cert written");
    std::fs::write(&files.key_pem, leaf_key.serialize_pem()).expect("key written");
    TestPki {
        ca_der: ca.der().to_vec(),
        files,
        _dir: dir,
    }
}

/// rumqttc's TLS settings trusting only `pki`'s CA.
pub fn client_tls(pki: &TestPki) -> TlsConfiguration {
    TlsConfiguration::Rustls(rustls_client(pki))
}

/// A rustls client configuration trusting only `pki`'s CA (ring as the crypto provider).
pub fn rustls_client(pki: &TestPki) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(pki.ca_der.clone().into()).expect("CA added");
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}
