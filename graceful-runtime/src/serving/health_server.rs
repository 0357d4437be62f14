//! The health port: `/livez` and `/readyz` served with hyper on an address of their own,
//! bound before the user's body runs so that a bad address is a start-up error.

use std::convert::Infallible;
use std::net::SocketAddr;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;

use crate::accept::AcceptErrors;
use crate::log::event;

/// The variable that sets (or overrides) the health port's address.
pub(crate) const ADDRESS_VARIABLE: &str = "GRACEFUL_HEALTH_ADDR";

/// The address to serve on: `GRACEFUL_HEALTH_ADDR` when set, else the `health` key, else none.
pub(crate) fn address(
    key: Option<&str>,
    lookup: impl Fn(&str) -> Option<std::ffi::OsString>,
) -> Result<Option<SocketAddr>, String> {
    let (source, text) = match lookup(ADDRESS_VARIABLE) {
        Some(value) => (ADDRESS_VARIABLE, value.to_string_lossy().into_owned()),
        None => match key {
            Some(key) => ("the `health` key", key.to_owned()),
            None => return Ok(None),
        },
    };
    text.trim()
        .parse::<SocketAddr>()
        .map(Some)
        .map_err(|error| {
            format!(
                "{source}={text:?} is not a socket address ({error}); write e.g. \"0.0.0.0:8081\""
            )
        })
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    #[test]
    fn the_environment_overrides_the_key() {
        let from_env = |_: &str| Some(OsString::from("127.0.0.1:9000"));
        assert_eq!(
            address(Some("0.0.0.0:8081"), from_env).unwrap(),
            Some("127.0.0.1:9000".parse().unwrap())
        );
        assert_eq!(
            address(Some("0.0.0.0:8081"), |_| None).unwrap(),
            Some("0.0.0.0:8081".parse().unwrap())
        );
        assert_eq!(address(None, |_| None).unwrap(), None);
    }

    #[test]
    fn a_bad_address_names_where_it_came_from() {
        let error = address(None, |_| Some(OsString::from("localhost"))).unwrap_err();
        assert!(
            error.starts_with("GRACEFUL_HEALTH_ADDR=\"localhost\" is not a socket address"),
            "{error}"
        );
    }
}
