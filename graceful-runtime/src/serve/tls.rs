//! HTTPS in `serve`: each connection's TLS handshake, run in that connection's own task (never
//! in the accept loop, so a client that stalls mid-handshake delays no one else), under a
//! timeout at all times. A connection still handshaking at stop-accepting has not delivered a
//! request yet: the first-request window applies to it, and after that it is dropped.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::sequence::Controller;
use crate::TlsConfig;

/// What every TLS connection of one `serve` shares.
pub(super) struct Tls {
    acceptor: TlsAcceptor,
    /// Keeps the certificate's reloads and watch alive as long as the server.
    _config: TlsConfig,
}

impl Tls {
    pub(super) fn new(config: TlsConfig) -> Tls {
        Tls {
            acceptor: TlsAcceptor::from(std::sync::Arc::clone(config.server_config())),
            _config: config,
        }
    }

    pub(super) fn acceptor(&self) -> &TlsAcceptor {
        &self.acceptor
    }
}

/// A finished handshake, and when the first-request window began if it began during the
/// handshake (stop-accepting came first): what is left of it is all the connection gets.
pub(super) struct Handshaken<Io> {
    pub(super) stream: TlsStream<Io>,
    pub(super) window_began: Option<Instant>,
}

/// Runs the TLS handshake on `io`: `None` when it fails, takes longer than `timeout`, or is
/// still under way when the first-request window after stop-accepting ends.
pub(super) async fn handshake<Io>(
    acceptor: &TlsAcceptor,
    io: Io,
    timeout: Duration,
    controller: &'static Controller,
    first_request_window: Duration,
) -> Option<Handshaken<Io>>
where
    Io: AsyncRead + AsyncWrite + Unpin,
{
    let deadline = Instant::now() + timeout;
    let mut accept = acceptor.accept(io);
    let stop_accepting = controller.stop_accepting();
    tokio::select! {
        biased;
        done = &mut accept => return finished(done, None),
        _ = tokio::time::sleep_until(deadline) => return timed_out(timeout),
        _ = stop_accepting.cancelled() => {}
    }
    let window_began = Instant::now();
    let window_end = window_began + first_request_window;
    tokio::select! {
        biased;
        done = accept => finished(done, Some(window_began)),
        _ = tokio::time::sleep_until(deadline.min(window_end)) => {
            tracing::debug!(
                target: "graceful",
                "serve: dropped a connection still in its TLS handshake at the end of the \
                 first-request window"
            );
            None
        }
    }
}

fn finished<Io>(
    done: io::Result<TlsStream<Io>>,
    window_began: Option<Instant>,
) -> Option<Handshaken<Io>> {
    match done {
        Ok(stream) => Some(Handshaken {
            stream,
            window_began,
        }),
        Err(error) => {
            // Scanners and clients that reject the certificate: one line each would flood.
            tracing::debug!(target: "graceful", "serve: TLS handshake failed: {error}");
            None
        }
    }
}

fn timed_out<Io>(timeout: Duration) -> Option<Handshaken<Io>> {
    tracing::debug!(
        target: "graceful",
        "serve: TLS handshake not done within {timeout:?}: connection dropped"
    );
    None
}
