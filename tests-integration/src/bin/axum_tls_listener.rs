//! A contrast of tests/tls.rs: the axum hello world under `axum::serve` with the TLS handshake in
//! the accept loop, what a TLS `Listener` amounts to (its `accept` returns a finished TLS
//! stream). The handshake has a 10 s timeout, as graceful's; while one client stalls in it, no
//! other connection is accepted. The certificate comes from `TLS_CERT` and `TLS_KEY`. Prints
//! `listening on ADDR`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::serve::Listener;
use axum::Router;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
}

impl Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (stream, address) = Listener::accept(&mut self.tcp).await;
            // A failed or timed-out handshake is that client's problem: take the next one.
            if let Ok(Ok(tls)) =
                tokio::time::timeout(HANDSHAKE_TIMEOUT, self.acceptor.accept(stream)).await
            {
                return (tls, address);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

fn acceptor() -> Result<TlsAcceptor, Box<dyn std::error::Error + Send + Sync>> {
    let cert = std::env::var("TLS_CERT").map_err(|_| "TLS_CERT is not set")?;
    let key = std::env::var("TLS_KEY").map_err(|_| "TLS_KEY is not set")?;
    let chain = CertificateDer::pem_file_iter(cert)?.collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_file(key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

#[graceful::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let tcp = TcpListener::bind("127.0.0.1:0").await?;
    println!("listening on {}", tcp.local_addr()?);
    let listener = TlsListener {
        tcp,
        acceptor: acceptor()?,
    };
    let app = Router::new().route("/", get(|| async { "hello\n" }));
    graceful::ready();
    axum::serve(listener, app)
        .with_graceful_shutdown(graceful::shutdown_signal())
        .await?;
    Ok(())
}
