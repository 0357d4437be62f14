//! The tests' own HTTP client, on hyper's connection API so that a test knows which connection
//! each request went out on: one connection of HTTP/1.1 or of HTTP/2 (h2c, prior knowledge),
//! the requests the services under test answer, the readiness poll, and a request held open.

use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::client::conn::{http1, http2};
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::rt::{TokioExecutor, TokioIo};

use crate::PATIENCE;

/// One connection, kept alive until the server says `Connection: close` (HTTP/1.1) or the
/// connection fails.
pub struct Connection {
    sender: Sender,
}

enum Sender {
    Http1(http1::SendRequest<Full<Bytes>>),
    Http2(http2::SendRequest<Full<Bytes>>),
}

/// A complete response: its status, whether it closes the connection, and its body.
pub struct Answer {
    /// The response's status.
    pub status: StatusCode,
    /// Whether it carried `Connection: close`.
    pub closes: bool,
    /// The whole body, as text.
    pub body: String,
}

impl Connection {
    /// Connects to `address` and makes the HTTP/1.1 handshake.
    pub async fn open(address: SocketAddr) -> std::io::Result<Connection> {
        let stream = tokio::net::TcpStream::connect(address).await?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(std::io::Error::other)?;
        tokio::spawn(connection);
        Ok(Connection {
            sender: Sender::Http1(sender),
        })
    }

    /// Connects to `address` and speaks HTTP/2 over cleartext at once (prior knowledge, as
    /// HAProxy's `bind ... proto h2` expects).
    pub async fn open_http2(address: SocketAddr) -> std::io::Result<Connection> {
        let stream = tokio::net::TcpStream::connect(address).await?;
        let (sender, connection) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .map_err(std::io::Error::other)?;
        tokio::spawn(connection);
        Ok(Connection {
            sender: Sender::Http2(sender),
        })
    }

    /// Sends `request` and returns the response as it arrives, its body still to be read.
    /// Over HTTP/2 a path with a `host` header becomes the URI that `:scheme` and
    /// `:authority` are taken from.
    pub async fn send_streaming(
        &mut self,
        mut request: Request<Full<Bytes>>,
    ) -> Result<Response<Incoming>, hyper::Error> {
        match &mut self.sender {
            Sender::Http1(sender) => {
                sender.ready().await?;
                sender.send_request(request).await
            }
            Sender::Http2(sender) => {
                if request.uri().scheme().is_none() {
                    let host = request
                        .headers_mut()
                        .remove(hyper::header::HOST)
                        .and_then(|host| host.to_str().ok().map(str::to_owned))
                        .unwrap_or_else(|| "localhost".to_owned());
                    let path = request
                        .uri()
                        .path_and_query()
                        .map_or("/", |path| path.as_str());
                    *request.uri_mut() = Uri::try_from(format!("http://{host}{path}"))
                        .expect("a path and a host make a URI");
                }
                sender.ready().await?;
                sender.send_request(request).await
            }
        }
    }

    /// Sends `request` and reads the whole response.
    pub async fn send(&mut self, request: Request<Full<Bytes>>) -> Result<Answer, hyper::Error> {
        let response = self.send_streaming(request).await?;
        let status = response.status();
        let closes = response
            .headers()
            .get(hyper::header::CONNECTION)
            .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"close"));
        // The whole body, so that "complete response" means complete.
        let body = response.into_body().collect().await?.to_bytes();
        Ok(Answer {
            status,
            closes,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }
}

/// `GET path`, with a `host` header.
pub fn get(path: &str) -> Request<Full<Bytes>> {
    request("GET", path)
}

/// `METHOD path` with an empty body and a `host` header.
pub fn request(method: &str, path: &str) -> Request<Full<Bytes>> {
    Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost")
        .body(Full::default())
        .unwrap()
}

/// `POST /items`: one row, committed after `work_ms` inside its transaction.
pub fn post_item(id: &str, work_ms: u64) -> Request<Full<Bytes>> {
    Request::post(format!("/items?work_ms={work_ms}"))
        .header("host", "localhost")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(format!(
            r#"{{"id":"{id}","body":"payload {id}"}}"#
        ))))
        .unwrap()
}

/// `METHOD path` on a new HTTP/1.1 connection to `address`, from a test without a runtime: the
/// status, or the error. At most [`PATIENCE`].
pub fn blocking_request(address: SocketAddr, method: &str, path: &str) -> Result<u16, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let answer = async {
            let mut connection = Connection::open(address)
                .await
                .map_err(|error| error.to_string())?;
            let answer = connection
                .send(request(method, path))
                .await
                .map_err(|error| error.to_string())?;
            Ok(answer.status.as_u16())
        };
        tokio::time::timeout(PATIENCE, answer)
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {PATIENCE:?}")))
    })
}

/// Polls `/readyz` until it answers `status`; every poll a full round trip, bounded in time.
pub async fn wait_for_readiness(health: SocketAddr, status: u16) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while tokio::time::Instant::now() < deadline {
        if let Ok(mut connection) = Connection::open(health).await {
            if let Ok(answer) = connection.send(get("/readyz")).await {
                if answer.status.as_u16() == status {
                    return;
                }
            }
        }
        // Polling: the health endpoint has no way to tell a client when it flips.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{health}/readyz never answered {status}");
}

/// A request that stays in flight: `GET path` sent on a connection held open until drop, its
/// answer never read.
pub struct HeldRequest {
    _stream: std::net::TcpStream,
}

impl HeldRequest {
    /// Connects to `address` and sends `GET path`.
    pub fn send(address: SocketAddr, path: &str) -> HeldRequest {
        use std::io::Write;
        let mut stream = std::net::TcpStream::connect(address).expect("connect");
        write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
        HeldRequest { _stream: stream }
    }
}
