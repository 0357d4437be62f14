//! Heap per idle connection and per in-flight request, `graceful::serve` against `axum::serve`
//! on one axum Router, HTTP/1.1 and h2c; `benches/serve_heap.sh` runs it and prints the table.
//! With `TLS_CERT`, `TLS_KEY` and `TLS_CA` (the CA that signed the certificate, which the client
//! trusts) the same over HTTPS, HTTP/1.1 and HTTP/2 chosen by ALPN, against axum-server
//! (`SERVER=axum-server`): the figures then include what rustls holds per connection.
//!
//! Without `ROLE` this is the client: it starts itself as the server (`ROLE=server`, `SERVER=`
//! passed on), and asks the server, on its stdin, for the live heap bytes of the server process
//! (stats_alloc's counting allocator, every thread: bytes allocated minus bytes freed) around
//! each phase. Per protocol, one warm-up round then one measured round of:
//! 1. `HEAP_CONNECTIONS` connections (default 1000), each served one `GET /`, then left idle;
//! 2. one `GET /wait` on each, held until the server has counted every arrival;
//! 3. all released, then all connections closed.
//!
//! The warm-up round grows, once, what grows with the number of connections and then stays
//! (tokio's slabs, hyper's and axum's lazily built parts), so the measured round sees what each
//! connection and request holds, not one-time growth.
//!
//! `/wait` takes no extractor, so axum drops the request as the handler starts: over HTTP/1.1
//! the in-flight figure is net of the header map hyper keeps cached on an idle connection for
//! the next request, and can be below zero. It is the same on both servers; the difference
//! between them is what each server adds.
//!
//! Server commands, one a line, each answered with one line: `live` (live heap bytes, once two
//! readings 20 ms apart agree), `arrived` (requests that reached `/wait` so far), `release`
//! (every `/wait` request waiting now finishes).
//!
//! Server settings in shared/server_under_test.rs: the same on both sides where they can be
//! set, unless `GRACEFUL_DEFAULTS=1`, which keeps graceful's defaults.

#[path = "shared/server_under_test.rs"]
mod server_under_test;

use std::alloc::System;
use std::error::Error;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::process::{ExitCode, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use http_body_util::{BodyExt, Empty};
use hyper::body::{Bytes, Incoming};
use hyper::client::conn::{http1, http2};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

type BoxError = Box<dyn Error + Send + Sync>;

fn main() -> ExitCode {
    if std::env::var("ROLE").as_deref() == Ok("server") {
        return server();
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("serve_heap: cannot start the client runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(client()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("serve_heap: {error}");
            ExitCode::FAILURE
        }
    }
}

// ---- server ----

#[graceful::main]
async fn server() -> std::io::Result<()> {
    let arrived = Arc::new(AtomicUsize::new(0));
    let (release, released) = watch::channel(0_u64);
    let waiting = {
        let arrived = Arc::clone(&arrived);
        move || wait(Arc::clone(&arrived), released.clone())
    };
    let app = Router::new()
        .route("/", get(|| async { "hello" }))
        .route("/wait", get(waiting));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("LISTENING {}", listener.local_addr()?);
    // A thread of its own, blocking on stdin: tokio's stdin would add blocking-pool work (and
    // its allocations) to what is measured.
    std::thread::spawn(move || answer_commands(&arrived, &release));
    graceful::ready();
    server_under_test::serve(listener, app).await
}

async fn wait(arrived: Arc<AtomicUsize>, mut released: watch::Receiver<u64>) -> &'static str {
    // The generation is read before the arrival is counted, and the client releases only after
    // seeing every arrival: no request can miss its release.
    let generation = *released.borrow_and_update();
    arrived.fetch_add(1, Ordering::SeqCst);
    let _ = released.wait_for(|current| *current != generation).await;
    "released"
}

fn answer_commands(arrived: &AtomicUsize, release: &watch::Sender<u64>) {
    let stdin = std::io::stdin();
    let mut line = String::new();
    loop {
        line.clear();
        match stdin.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let answer = match line.trim() {
            "live" => settled_live_bytes().to_string(),
            "arrived" => arrived.load(Ordering::SeqCst).to_string(),
            "release" => {
                release.send_modify(|generation| *generation += 1);
                String::from("ok")
            }
            other => format!("unknown command {other:?}"),
        };
        println!("{answer}");
    }
}

fn live_bytes() -> i64 {
    let stats = GLOBAL.stats();
    stats.bytes_allocated as i64 - stats.bytes_deallocated as i64
}

/// Live bytes once the server is quiet. Not a synchronisation: the client has already seen
/// every response or arrival; this lets the tasks finish what they do just after (dropping a
/// finished request's state, closing a connection the client closed).
fn settled_live_bytes() -> i64 {
    let mut last = live_bytes();
    for _ in 0..100 {
        std::thread::sleep(Duration::from_millis(20));
        let now = live_bytes();
        if now == last {
            break;
        }
        last = now;
    }
    last
}

// ---- client ----

async fn client() -> Result<(), BoxError> {
    let count: usize = match std::env::var("HEAP_CONNECTIONS") {
        Ok(value) => value.parse()?,
        Err(_) => 1000,
    };
    if count == 0 {
        return Err("HEAP_CONNECTIONS must be at least 1".into());
    }
    let tls = match std::env::var("TLS_CA") {
        Ok(ca) => Some(Tls::trusting(&ca)?),
        Err(_) => None,
    };
    let mut server = Server::start().await?;
    for protocol in [Protocol::Http1, Protocol::Http2] {
        round(&mut server, protocol, tls.as_ref(), count).await?;
        let live = round(&mut server, protocol, tls.as_ref(), count).await?;
        let per = |bytes: i64| bytes as f64 / count as f64;
        println!(
            "RESULT {} connections={count} idle_per_connection={:.0} \
             in_flight_per_request={:.0} after_release_per_connection={:.0} \
             left_after_close={}",
            protocol.name(tls.is_some()),
            per(live.idle - live.empty),
            per(live.in_flight - live.idle),
            per(live.released - live.idle),
            live.closed - live.empty,
        );
    }
    server.stop().await
}

/// The server's live heap bytes at each step of a round.
struct Round {
    empty: i64,
    idle: i64,
    in_flight: i64,
    released: i64,
    closed: i64,
}

async fn round(
    server: &mut Server,
    protocol: Protocol,
    tls: Option<&Tls>,
    count: usize,
) -> Result<Round, BoxError> {
    let empty = server.live().await?;

    let mut connections = Vec::with_capacity(count);
    for _ in 0..count {
        let mut connection = Connection::open(server.address, protocol, tls).await?;
        expect_body(connection.send("/").await?.await?, "hello")?;
        connections.push(connection);
    }
    let idle = server.live().await?;

    let arrived_before = server.count_arrived().await?;
    let mut waiting = Vec::with_capacity(count);
    for connection in &mut connections {
        let response = connection.send("/wait").await?;
        waiting.push(tokio::spawn(response));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let arrived = server.count_arrived().await? - arrived_before;
        if arrived == count {
            break;
        }
        if arrived > count || tokio::time::Instant::now() > deadline {
            return Err(format!("{arrived} of {count} /wait requests arrived").into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let in_flight = server.live().await?;

    server.ask("release").await?;
    for response in waiting {
        expect_body(response.await??, "released")?;
    }
    let released = server.live().await?;

    for connection in connections {
        connection.close().await?;
    }
    let closed = server.live().await?;
    Ok(Round {
        empty,
        idle,
        in_flight,
        released,
        closed,
    })
}

fn expect_body(response: (StatusCode, Bytes), expected: &str) -> Result<(), BoxError> {
    let (status, body) = response;
    if status != StatusCode::OK || body != expected.as_bytes() {
        return Err(format!("expected 200 {expected:?}, got {status} {body:?}").into());
    }
    Ok(())
}

/// The server process, and its command channel.
struct Server {
    child: Child,
    commands: ChildStdin,
    answers: Lines<BufReader<ChildStdout>>,
    address: SocketAddr,
}

impl Server {
    async fn start() -> Result<Server, BoxError> {
        let mut child = tokio::process::Command::new(std::env::current_exe()?)
            .env("ROLE", "server")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            // graceful's shutdown report; the client reports a server that went away.
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let commands = child.stdin.take().ok_or("no stdin")?;
        let mut answers = BufReader::new(child.stdout.take().ok_or("no stdout")?).lines();
        let first = answers.next_line().await?.ok_or("the server exited")?;
        let address = first
            .strip_prefix("LISTENING ")
            .ok_or_else(|| format!("unexpected first line {first:?}"))?
            .parse()?;
        Ok(Server {
            child,
            commands,
            answers,
            address,
        })
    }

    async fn ask(&mut self, command: &str) -> Result<String, BoxError> {
        self.commands
            .write_all(format!("{command}\n").as_bytes())
            .await?;
        self.commands.flush().await?;
        Ok(self.answers.next_line().await?.ok_or("the server exited")?)
    }

    async fn live(&mut self) -> Result<i64, BoxError> {
        Ok(self.ask("live").await?.parse()?)
    }

    async fn count_arrived(&mut self) -> Result<usize, BoxError> {
        Ok(self.ask("arrived").await?.parse()?)
    }

    async fn stop(mut self) -> Result<(), BoxError> {
        let pid = self.child.id().ok_or("the server already exited")?;
        let pid = nix::unistd::Pid::from_raw(i32::try_from(pid)?);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM)?;
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await??;
        if !status.success() {
            return Err(format!("the server exited with {status}").into());
        }
        Ok(())
    }
}

#[derive(Clone, Copy)]
enum Protocol {
    Http1,
    Http2,
}

impl Protocol {
    fn name(self, tls: bool) -> &'static str {
        match (self, tls) {
            (Protocol::Http1, false) => "http1",
            (Protocol::Http2, false) => "h2c",
            (Protocol::Http1, true) => "https1",
            (Protocol::Http2, true) => "h2",
        }
    }
}

/// The client's TLS: one connector per protocol, each offering only that protocol by ALPN.
struct Tls {
    http1: TlsConnector,
    h2: TlsConnector,
}

impl Tls {
    /// Connectors that trust only the CA certificate in the PEM file `ca`.
    fn trusting(ca: &str) -> Result<Tls, BoxError> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from_pem_file(ca)?)?;
        let connector = |alpn: &[u8]| -> Result<TlsConnector, BoxError> {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let mut config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()?
                .with_root_certificates(roots.clone())
                .with_no_client_auth();
            config.alpn_protocols = vec![alpn.to_vec()];
            Ok(TlsConnector::from(Arc::new(config)))
        };
        Ok(Tls {
            http1: connector(b"http/1.1")?,
            h2: connector(b"h2")?,
        })
    }

    fn connector(&self, protocol: Protocol) -> &TlsConnector {
        match protocol {
            Protocol::Http1 => &self.http1,
            Protocol::Http2 => &self.h2,
        }
    }
}

enum Sender {
    Http1(http1::SendRequest<Empty<Bytes>>),
    Http2(http2::SendRequest<Empty<Bytes>>),
}

type ResponseFuture = Pin<Box<dyn Future<Output = hyper::Result<Response<Incoming>>> + Send>>;

/// One client connection: hyper's, driven by a task of its own.
struct Connection {
    sender: Sender,
    driver: JoinHandle<()>,
    address: SocketAddr,
    scheme: &'static str,
}

impl Connection {
    async fn open(
        address: SocketAddr,
        protocol: Protocol,
        tls: Option<&Tls>,
    ) -> Result<Connection, BoxError> {
        let stream = tokio::net::TcpStream::connect(address).await?;
        stream.set_nodelay(true)?;
        match tls {
            None => Connection::over(stream, address, protocol, "http").await,
            Some(tls) => {
                let name = ServerName::try_from("localhost")?;
                let stream = tls.connector(protocol).connect(name, stream).await?;
                Connection::over(stream, address, protocol, "https").await
            }
        }
    }

    /// hyper's client connection on `stream`, already open (and through TLS when `scheme` is
    /// https).
    async fn over<S>(
        stream: S,
        address: SocketAddr,
        protocol: Protocol,
        scheme: &'static str,
    ) -> Result<Connection, BoxError>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let io = TokioIo::new(stream);
        let (sender, driver) = match protocol {
            Protocol::Http1 => {
                let (sender, connection) = http1::handshake(io).await?;
                let driver = tokio::spawn(async move {
                    let _ = connection.await;
                });
                (Sender::Http1(sender), driver)
            }
            Protocol::Http2 => {
                let (sender, connection) = http2::handshake(TokioExecutor::new(), io).await?;
                let driver = tokio::spawn(async move {
                    let _ = connection.await;
                });
                (Sender::Http2(sender), driver)
            }
        };
        Ok(Connection {
            sender,
            driver,
            address,
            scheme,
        })
    }

    /// Sends `GET path` once the connection can take it; the future is the status and body.
    async fn send(
        &mut self,
        path: &str,
    ) -> Result<
        impl Future<Output = Result<(StatusCode, Bytes), BoxError>> + Send + 'static,
        BoxError,
    > {
        let response: ResponseFuture = match &mut self.sender {
            Sender::Http1(sender) => {
                sender.ready().await?;
                let request = Request::get(path)
                    .header(hyper::header::HOST, self.address.to_string())
                    .body(Empty::new())?;
                Box::pin(sender.send_request(request))
            }
            Sender::Http2(sender) => {
                sender.ready().await?;
                // HTTP/2 requests carry :scheme and :authority: an absolute URI gives them.
                let uri = format!("{}://{}{path}", self.scheme, self.address);
                let request = Request::get(uri).body(Empty::new())?;
                Box::pin(sender.send_request(request))
            }
        };
        Ok(async move {
            let response = response.await?;
            let status = response.status();
            let body = response.into_body().collect().await?.to_bytes();
            Ok((status, body))
        })
    }

    async fn close(self) -> Result<(), BoxError> {
        drop(self.sender);
        tokio::time::timeout(Duration::from_secs(10), self.driver).await??;
        Ok(())
    }
}
