//! TLS client configurations (rustls with the `ring` provider), one per distinct setting, for
//! both transports: the lean one offers `http/1.1` by ALPN, reqwest `h2` and `http/1.1`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use once_cell::sync::Lazy;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
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

/// Reads a PEM bundle of certificates (the file of the option named `option`: `ca_certs`,
/// `client_cert`).
pub(crate) fn read_pem_certs(
    path: &Path,
    option: &str,
) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = std::fs::read(path)
        .map_err(|e| format!("cannot read {option} file {}: {e}", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{option} file {} is not a PEM bundle: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{option} file {} holds no PEM certificate", path.display()));
    }
    Ok(certs)
}

/// The TLS options of a source.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct Settings {
    pub ca_certs: Option<PathBuf>,
    pub insecure: bool,
    /// The client certificate chain and the file of its key (mTLS).
    pub identity: Option<(PathBuf, PathBuf)>,
}

impl Settings {
    pub(crate) fn from_options(o: &crate::Options) -> Result<Settings, String> {
        let identity = match (&o.client_cert, &o.client_key) {
            (Some(cert), key) => Some((cert.clone(), key.clone().unwrap_or_else(|| cert.clone()))),
            (None, Some(_)) => return Err("client_key is set without client_cert".into()),
            (None, None) => None,
        };
        Ok(Settings { ca_certs: o.ca_certs.clone(), insecure: o.accept_invalid_certs, identity })
    }

    /// True when nothing differs from the defaults.
    pub(crate) fn is_default(&self) -> bool {
        *self == Settings::default()
    }
}

/// The protocols offered by ALPN.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Alpn {
    Http1,
    H2AndHttp1,
}

/// Keyed by fork generation too: a child gets configurations of its own, not the parent's
/// session cache, whose lock a parent thread may have held at the fork.
type Configs = Vec<((u32, Settings, Alpn), Arc<ClientConfig>)>;
static CONFIGS: Lazy<Mutex<Configs>> = Lazy::new(Default::default);

/// The client configuration for these settings: built once per distinct setting, so that a bad
/// CA or certificate file is reported when the first source with it is made.
pub(crate) fn config(settings: &Settings, alpn: Alpn) -> Result<Arc<ClientConfig>, String> {
    let key = (crate::runtime::generation(), settings.clone(), alpn);
    let mut configs = CONFIGS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, c)) = configs.iter().find(|(k, _)| *k == key) {
        return Ok(c.clone());
    }
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot set up TLS: {e}"))?;
    let builder = if settings.insecure {
        builder.dangerous().with_custom_certificate_verifier(Arc::new(AcceptAny(provider())))
    } else {
        let roots = match &settings.ca_certs {
            None => system_roots(),
            Some(path) => {
                let mut roots = (*system_roots()).clone();
                for cert in read_pem_certs(path, "ca_certs")? {
                    roots.add(cert).map_err(|e| {
                        format!("ca_certs file {}: unusable certificate: {e}", path.display())
                    })?;
                }
                Arc::new(roots)
            }
        };
        builder.with_root_certificates(roots)
    };
    let mut config = match &settings.identity {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let (chain, key) = read_identity(cert, key)?;
            builder.with_client_auth_cert(chain, key).map_err(|e| {
                format!("client_cert {} cannot be used with its key: {e}", cert.display())
            })?
        }
    };
    config.alpn_protocols = match alpn {
        Alpn::Http1 => vec![b"http/1.1".to_vec()],
        Alpn::H2AndHttp1 => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
    };
    let config = Arc::new(config);
    if configs.len() < 64 {
        configs.push((key, config.clone()));
    }
    Ok(config)
}

/// Reads a client certificate chain and its private key (PEM files; may be the same file).
fn read_identity(
    cert: &Path,
    key: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    let chain = read_pem_certs(cert, "client_cert")?;
    let pem = std::fs::read(key)
        .map_err(|e| format!("cannot read client_key file {}: {e}", key.display()))?;
    let key = PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        format!("no PEM private key (PKCS#8, PKCS#1 or SEC1) in {}: {e}", key.display())
    })?;
    Ok((chain, key))
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
