//! The certificates and TLS configurations of the TLS listeners and the https proxy.
//!
//! A fresh CA is generated at every start (ECDSA P-256 with ring: a few milliseconds), so no key
//! is ever committed and no two servers trust each other's clients. The CA signs a server leaf
//! for `127.0.0.1`, `::1` and `localhost`, and a client certificate for the mTLS listener. The
//! CA and the client pair are written as PEM files so that clients in any language can load
//! them.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;

/// The generated CA and client identity, and where their PEM files are.
#[derive(Debug, Clone)]
pub struct Certs {
    /// The directory holding `ca.pem`, `client.pem` and `client.key`.
    pub dir: PathBuf,
    /// The CA certificate (PEM): trust it as the client's only root (`ca_certs`).
    pub ca_pem: String,
    /// `DIR/ca.pem`.
    pub ca_path: PathBuf,
    /// A client certificate signed by the CA (PEM), for the mTLS listener.
    pub client_cert_pem: String,
    /// `DIR/client.pem`.
    pub client_cert_path: PathBuf,
    /// The client certificate's private key (PKCS#8 PEM).
    pub client_key_pem: String,
    /// `DIR/client.key`.
    pub client_key_path: PathBuf,
    ca_der: CertificateDer<'static>,
    server_cert: CertificateDer<'static>,
    server_key: Vec<u8>,
}

impl Certs {
    /// Generates the CA, the server leaf and the client pair, and writes `ca.pem`, `client.pem`
    /// and `client.key` into `dir` (created if missing).
    pub(crate) fn generate(dir: &Path) -> io::Result<Certs> {
        let err = |e: rcgen::Error| io::Error::other(format!("certificate generation: {e}"));

        let mut ca_params = CertificateParams::new(Vec::new()).map_err(err)?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, "testserver CA");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_key = KeyPair::generate().map_err(err)?;
        let ca_cert = ca_params.self_signed(&ca_key).map_err(err)?;
        let issuer = Issuer::new(ca_params, ca_key);

        let mut server_params =
            CertificateParams::new(vec!["127.0.0.1".into(), "::1".into(), "localhost".into()])
                .map_err(err)?;
        server_params.distinguished_name.push(DnType::CommonName, "127.0.0.1");
        server_params.use_authority_key_identifier_extension = true;
        server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_key = KeyPair::generate().map_err(err)?;
        let server_cert = server_params.signed_by(&server_key, &issuer).map_err(err)?;

        let mut client_params = CertificateParams::new(Vec::new()).map_err(err)?;
        client_params.distinguished_name.push(DnType::CommonName, "testserver client");
        client_params.use_authority_key_identifier_extension = true;
        client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client_key = KeyPair::generate().map_err(err)?;
        let client_cert = client_params.signed_by(&client_key, &issuer).map_err(err)?;

        std::fs::create_dir_all(dir)?;
        let certs = Certs {
            dir: dir.to_owned(),
            ca_pem: ca_cert.pem(),
            ca_path: dir.join("ca.pem"),
            client_cert_pem: client_cert.pem(),
            client_cert_path: dir.join("client.pem"),
            client_key_pem: client_key.serialize_pem(),
            client_key_path: dir.join("client.key"),
            ca_der: ca_cert.der().clone(),
            server_cert: server_cert.der().clone(),
            server_key: server_key.serialize_der(),
        };
        std::fs::write(&certs.ca_path, &certs.ca_pem)?;
        std::fs::write(&certs.client_cert_path, &certs.client_cert_pem)?;
        std::fs::write(&certs.client_key_path, &certs.client_key_pem)?;
        Ok(certs)
    }

    /// The server configuration: ALPN `alpn` (most preferred first), and client certificates
    /// verified against our CA, either required (`require_client_cert`) or optional.
    pub(crate) fn server_config(
        &self,
        alpn: &[&[u8]],
        require_client_cert: bool,
    ) -> io::Result<Arc<rustls::ServerConfig>> {
        // Named explicitly: if the workspace ever also enables aws-lc-rs, rustls cannot pick a
        // process default and `ServerConfig::builder()` would panic.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        roots.add(self.ca_der.clone()).map_err(io::Error::other)?;
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
        let verifier =
            if require_client_cert { verifier } else { verifier.allow_unauthenticated() };
        let verifier = verifier.build().map_err(io::Error::other)?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.server_key.clone()));
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(io::Error::other)?
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![self.server_cert.clone()], key)
            .map_err(io::Error::other)?;
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(config))
    }
}

/// A fresh, empty directory under the system temp dir.
pub(crate) fn fresh_temp_dir() -> io::Result<PathBuf> {
    let base = std::env::temp_dir();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    for attempt in 0..100u32 {
        let dir = base.join(format!("testserver-{}-{nanos}-{attempt}", std::process::id()));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other("cannot create a fresh temp dir for the certificates"))
}
