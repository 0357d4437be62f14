//! HAProxy's own view of its servers, read from its stats page: the restart harnesses wait on it
//! before they stop the next instance.

use std::net::SocketAddr;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::Request;
use hyper_util::rt::TokioIo;

/// The stats page as CSV (`GET /stats;csv` on the stats port), over one HTTP/1.1 connection.
pub async fn stats_csv(
    stats_port: u16,
) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
    let address = SocketAddr::from(([127, 0, 0, 1], stats_port));
    let stream = tokio::net::TcpStream::connect(address).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let request = Request::get("/stats;csv")
        .header("host", "localhost")
        .body(Full::<Bytes>::default())?;
    let body = sender
        .send_request(request)
        .await?
        .into_body()
        .collect()
        .await?
        .to_bytes();
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// Whether the stats CSV shows `server` of `backend` with a status starting with `status`
/// (`UP`, `DOWN`): column 0 is the proxy, 1 the server, 17 the status.
pub fn shows(csv: &str, backend: &str, server: &str, status: &str) -> bool {
    csv.lines().any(|line| {
        let fields: Vec<&str> = line.split(',').collect();
        fields.len() > 17
            && fields[0] == backend
            && fields[1] == server
            && fields[17].starts_with(status)
    })
}
