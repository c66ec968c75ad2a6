//! TLS client configurations (rustls with the `ring` provider), one per distinct setting.

use std::path::Path;
use std::sync::{Arc, Mutex};

use once_cell::sync::Lazy;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

fn provider() -> Arc<CryptoProvider> {
    static P: Lazy<Arc<CryptoProvider>> =
        Lazy::new(|| Arc::new(rustls::crypto::ring::default_provider()));
    P.clone()
}

/// The system's trusted roots (loaded once), or Mozilla's bundled ones when none load.
fn system_roots() -> Arc<RootCertStore> {
    static ROOTS: Lazy<Arc<RootCertStore>> = Lazy::new(|| {
        let mut roots = RootCertStore::empty();
        let found = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(found.certs);
        if roots.is_empty() {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        Arc::new(roots)
    });
    ROOTS.clone()
}

/// Reads a PEM bundle of certificates (the `ca_certs` option).
pub(crate) fn read_pem_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = std::fs::read(path)
        .map_err(|e| format!("cannot read ca_certs file {}: {e}", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("ca_certs file {} is not a PEM bundle: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("ca_certs file {} holds no PEM certificate", path.display()));
    }
    Ok(certs)
}

/// Configurations by (extra roots file, accept invalid certs); the default one is shared.
type Key = (Option<std::path::PathBuf>, bool);
type Configs = Vec<(Key, Arc<ClientConfig>)>;
static CONFIGS: Lazy<Mutex<Configs>> = Lazy::new(Default::default);

/// The client configuration for these settings: built once per distinct setting.
pub(crate) fn config(ca_certs: Option<&Path>, insecure: bool) -> Result<Arc<ClientConfig>, String> {
    let key: Key = (ca_certs.map(Path::to_path_buf), insecure);
    let mut configs = CONFIGS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, c)) = configs.iter().find(|(k, _)| *k == key) {
        return Ok(c.clone());
    }
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot set up TLS: {e}"))?;
    let mut config = if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny(provider())))
            .with_no_client_auth()
    } else {
        let roots = match ca_certs {
            None => system_roots(),
            Some(path) => {
                let mut roots = (*system_roots()).clone();
                for cert in read_pem_certs(path)? {
                    roots.add(cert).map_err(|e| {
                        format!("ca_certs file {}: unusable certificate: {e}", path.display())
                    })?;
                }
                Arc::new(roots)
            }
        };
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let config = Arc::new(config);
    if configs.len() < 64 {
        configs.push((key, config.clone()));
    }
    Ok(config)
}

/// `accept_invalid_certs`: any certificate passes; handshake signatures are still checked.
#[derive(Debug)]
struct AcceptAny(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
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
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
