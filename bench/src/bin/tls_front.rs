//! A TLS front for the testserver, in its own process: `tls_front 127.0.0.1:PORT` accepts TLS
//! (a fresh self-signed certificate for 127.0.0.1) on a free loopback port, prints
//! `listening on https://127.0.0.1:PORT`, and relays each connection to the plain testserver at
//! the given address. It exits when its standard input closes. The e2e benchmark uses it to
//! measure the memory of idle HTTPS sources (`e2e --idle K`): the server's memory is not in the
//! client's process.

use std::io::Read;
use std::sync::Arc;

use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

fn main() {
    let backend = std::env::args().nth(1).expect("usage: tls_front 127.0.0.1:PORT");
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
        .expect("certificate");
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_no_client_auth()
    .with_single_cert(vec![ck.cert.der().clone()], key)
    .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let listener =
        rt.block_on(tokio::net::TcpListener::bind(("127.0.0.1", 0))).expect("bind 127.0.0.1");
    let port = listener.local_addr().expect("local address").port();
    println!("listening on https://127.0.0.1:{port}");
    rt.spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { continue };
            let (acceptor, backend) = (acceptor.clone(), backend.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                let Ok(mut plain) = tokio::net::TcpStream::connect(&backend).await else { return };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    // Until the parent closes our standard input (or dies).
    let _ = std::io::stdin().read(&mut [0u8; 1]);
}
