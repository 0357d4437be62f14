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

/// The health port's listener, when it is on: the one the process this one upgrades passed,
/// else bound here. Done on the caller's thread, before user code runs.
pub(crate) fn open(address: Option<SocketAddr>) -> Result<Option<std::net::TcpListener>, String> {
    #[cfg(all(unix, feature = "upgrade"))]
    let listener = match crate::bind::take_health(address) {
        Some(passed) => Some(passed),
        None => address.map(bind).transpose()?,
    };
    #[cfg(not(all(unix, feature = "upgrade")))]
    let listener = address.map(bind).transpose()?;
    #[cfg(all(unix, feature = "upgrade"))]
    if let (Some(listener), Some(address)) = (&listener, address) {
        let local = listener.local_addr().unwrap_or(address);
        crate::bind::handout::record(crate::bind::handout::HEALTH_NAME, listener, local);
    }
    Ok(listener)
}

/// Binds the health port.
fn bind(address: SocketAddr) -> Result<std::net::TcpListener, String> {
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
        // After an upgrade's handover the new process answers the probes on this socket.
        let mut handover = std::pin::pin!(crate::upgrade::handover());
        loop {
            let accepted = tokio::select! {
                biased;
                () = &mut handover => return,
                accepted = listener.accept() => accepted,
            };
            let stream = match accepted {
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
    // After an upgrade's handover the port is the new process's, which is ready: a probe this
    // process accepted just before, or on a connection kept alive, is answered for the service
    // (not with this process's 503), and its connection closed so that the next probe reaches
    // the new process.
    let handed_over = crate::upgrade::handed_over();
    let mut response = match (request.method(), request.uri().path()) {
        (&Method::GET | &Method::HEAD, "/readyz") if handed_over => super::respond(200, "ready"),
        (&Method::GET | &Method::HEAD, "/readyz") => super::readyz().await,
        (&Method::GET | &Method::HEAD, "/livez") => super::livez().await,
        _ => super::respond(404, "not found: try /livez or /readyz"),
    };
    if handed_over {
        response.headers_mut().insert(
            http::header::CONNECTION,
            http::HeaderValue::from_static("close"),
        );
    }
    Ok(response)
}
