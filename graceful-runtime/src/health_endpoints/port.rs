//! The health port: `/livez` and `/readyz` served with hyper on an address of their own (read
//! with the rest of the configuration), bound before the user's body runs so that a port that
//! cannot be bound is a start-up error.

use std::convert::Infallible;
use std::net::SocketAddr;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;

use crate::accept::AcceptErrors;
use crate::log::event;

/// Binds the health port. Done on the caller's thread, before user code runs.
pub(crate) fn bind(address: SocketAddr) -> Result<std::net::TcpListener, String> {
    let listener = std::net::TcpListener::bind(address)
        .map_err(|error| format!("cannot bind the health port {address}: {error}"))?;
    listener
        .set_nonblocking(true)
        .map_err(|error| format!("cannot use the health port {address}: {error}"))?;
    Ok(listener)
}

/// Serves `/livez` and `/readyz` until the process exits. Call inside the runtime.
pub(crate) fn spawn(listener: std::net::TcpListener) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let address = listener.local_addr()?;
    event!(
        Info,
        "health endpoint listening on http://{address} (/livez, /readyz)"
    );
    tokio::spawn(async move {
        let mut errors = AcceptErrors::new("health endpoint");
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => {
                    errors.accepted();
                    stream
                }
                Err(error) => {
                    // Out of file descriptors, say: pause, then keep serving the probes that do
                    // connect.
                    errors.pause_after(&error).await;
                    continue;
                }
            };
            tokio::spawn(async move {
                let connection = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service_fn(answer));
                // A probe that hangs up early is not worth a log line.
                let _ = connection.await;
            });
        }
    });
    Ok(())
}

async fn answer(request: Request<Incoming>) -> Result<Response<String>, Infallible> {
    let response = match (request.method(), request.uri().path()) {
        (&Method::GET | &Method::HEAD, "/readyz") => super::readyz().await,
        (&Method::GET | &Method::HEAD, "/livez") => super::livez().await,
        _ => super::respond(404, "not found: try /livez or /readyz"),
    };
    Ok(response)
}
