//! `serve`'s own loop, run with a controller of its own: what its settings promise.

use std::convert::Infallible;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;

use super::*;
use crate::inflight::InFlight;

fn controller() -> &'static Controller {
    Box::leak(Box::new(Controller::new(InFlight::leak())))
}

fn hello() -> impl ConnectionService {
    hyper::service::service_fn(|_request| async {
        Ok::<_, Infallible>(http::Response::new(String::from("hello")))
    })
}

#[tokio::test]
async fn max_connections_stays_within_what_the_final_wait_counts() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let serve = serve(listener, hello()).max_connections(usize::MAX);
    let most = usize::try_from(u32::MAX)
        .unwrap()
        .min(Semaphore::MAX_PERMITS);
    assert_eq!(serve.settings.max_connections, Some(most));
    assert!(u32::try_from(most).is_ok());
    assert_eq!(serve.max_connections(0).settings.max_connections, Some(1));
}

#[tokio::test]
async fn with_the_largest_max_connections_serve_still_waits_for_its_connections() {
    let controller = controller();
    let started = Arc::new(Notify::new());
    let release = Arc::new(Notify::new());
    let held = {
        let (started, release) = (Arc::clone(&started), Arc::clone(&release));
        hyper::service::service_fn(move |_request| {
            let (started, release) = (Arc::clone(&started), Arc::clone(&release));
            async move {
                started.notify_one();
                release.notified().await;
                Ok::<_, Infallible>(http::Response::new(String::from("done")))
            }
        })
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let Serve {
        listener, settings, ..
    } = serve(listener, hello()).max_connections(usize::MAX);
    let mut server = tokio::spawn(run(
        listener,
        held,
        settings,
        #[cfg(feature = "tls")]
        None,
        controller,
    ));

    let mut client = tokio::net::TcpStream::connect(address).await.unwrap();
    client
        .write_all(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .unwrap();
    started.notified().await;
    controller.stop_accepting().cancel();
    // Were the final wait short of permits, `serve` would return as soon as it is polled.
    let early = tokio::time::timeout(Duration::from_millis(100), &mut server).await;
    assert!(early.is_err(), "serve returned with a connection open");

    release.notify_one();
    let mut response = Vec::new();
    while !response.ends_with(b"done") {
        let mut chunk = [0; 1024];
        let read = client.read(&mut chunk).await.unwrap();
        assert!(read > 0, "the connection closed before the response");
        response.extend_from_slice(&chunk[..read]);
    }
    drop(client);
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("serve returns once its connection has ended")
        .unwrap()
        .unwrap();
}

// ---- The header read timeout, kept by the connection's driver --------------------------------
// On tokio's paused clock: time moves only when every task waits, so the timings asserted are
// exact to the timer's millisecond, and a client's pauses are part of what it does.

const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(8);

/// A `serve` with `hello()`, a header read timeout of [`HEADER_READ_TIMEOUT`] and no HTTP/2
/// pings (a raw HTTP/2 client here does not answer them); returns its address.
async fn serve_with_header_read_timeout() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let Serve {
        listener, settings, ..
    } = serve(listener, hello())
        .http1_header_read_timeout(Some(HEADER_READ_TIMEOUT))
        .http2_keep_alive_interval(None);
    tokio::spawn(run(
        listener,
        hello(),
        settings,
        #[cfg(feature = "tls")]
        None,
        controller(),
    ));
    address
}

/// Reads until the server closes the connection; returns how long after `since` it did.
async fn closed_after(client: &mut tokio::net::TcpStream, since: tokio::time::Instant) -> Duration {
    let mut chunk = [0; 1024];
    while matches!(client.read(&mut chunk).await, Ok(read) if read > 0) {}
    since.elapsed()
}

fn within_the_timeout_and_an_eighth(held: Duration) -> bool {
    held >= HEADER_READ_TIMEOUT && held <= HEADER_READ_TIMEOUT + HEADER_READ_TIMEOUT / 8
}

#[tokio::test(start_paused = true)]
async fn a_connection_that_sends_nothing_is_closed_at_the_header_read_timeout() {
    let address = serve_with_header_read_timeout().await;
    let began = tokio::time::Instant::now();
    let mut client = tokio::net::TcpStream::connect(address).await.unwrap();
    let held = closed_after(&mut client, began).await;
    assert!(
        within_the_timeout_and_an_eighth(held),
        "closed after {held:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_client_trickling_its_head_is_closed_at_the_header_read_timeout() {
    let address = serve_with_header_read_timeout().await;
    let began = tokio::time::Instant::now();
    let client = tokio::net::TcpStream::connect(address).await.unwrap();
    let (mut reader, mut writer) = client.into_split();
    // A header line every tenth of the timeout: bytes keep coming, the head never ends.
    let trickle = tokio::spawn(async move {
        writer.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        let mut interval = tokio::time::interval(HEADER_READ_TIMEOUT / 10);
        while writer.write_all(b"X-Trickle: 1\r\n").await.is_ok() {
            interval.tick().await;
        }
    });
    let mut chunk = [0; 1024];
    while matches!(reader.read(&mut chunk).await, Ok(read) if read > 0) {}
    let held = began.elapsed();
    assert!(
        within_the_timeout_and_an_eighth(held),
        "closed after {held:?}"
    );
    trickle.abort();
}

#[tokio::test(start_paused = true)]
async fn an_idle_keep_alive_connection_is_closed_a_header_read_timeout_after_its_response() {
    let address = serve_with_header_read_timeout().await;
    let mut client = tokio::net::TcpStream::connect(address).await.unwrap();
    // Most of a timeout passes before the request: the count starts again at its response.
    tokio::time::sleep(HEADER_READ_TIMEOUT * 3 / 4).await;
    client
        .write_all(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .unwrap();
    let mut response = Vec::new();
    while !response.ends_with(b"hello") {
        let mut chunk = [0; 1024];
        let read = client.read(&mut chunk).await.unwrap();
        assert!(read > 0, "the connection closed before the response");
        response.extend_from_slice(&chunk[..read]);
    }
    let answered = tokio::time::Instant::now();
    let held = closed_after(&mut client, answered).await;
    assert!(
        within_the_timeout_and_an_eighth(held),
        "closed {held:?} after its response"
    );
}

#[tokio::test(start_paused = true)]
async fn an_idle_http2_connection_outlives_the_header_read_timeout() {
    let address = serve_with_header_read_timeout().await;
    let mut client = tokio::net::TcpStream::connect(address).await.unwrap();
    // The preface and an empty SETTINGS frame, in two writes, then nothing.
    client.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    client
        .write_all(b"\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    let read_all = async {
        let mut chunk = [0; 1024];
        while matches!(client.read(&mut chunk).await, Ok(read) if read > 0) {}
    };
    let closed = tokio::time::timeout(HEADER_READ_TIMEOUT * 10, read_all).await;
    assert!(closed.is_err(), "an HTTP/2 connection was closed");
}
