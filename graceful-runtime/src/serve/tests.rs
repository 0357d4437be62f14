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
    assert_eq!(serve.settings.max_connections, most);
    assert!(u32::try_from(serve.settings.max_connections).is_ok());
    assert_eq!(serve.max_connections(0).settings.max_connections, 1);
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
