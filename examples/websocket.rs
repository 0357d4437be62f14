//! `cargo run --example websocket --features serve`: a WebSocket echo service on
//! `graceful::serve` whose sockets end cleanly at stop-accepting. Each socket is counted in
//! flight while it is open; at stop-accepting it sends a Close frame with code 1001 (Going
//! Away), waits up to a second for the client's Close, and returns, so the client reconnects to
//! another instance and the process exits long before its drain timeout.
//!
//! Try it with any WebSocket client on `ws://127.0.0.1:3002/echo`, then ctrl-c the server.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use axum::routing::get;
use axum::Router;

/// How long a socket waits for the client's Close after sending its own. Dropping the socket
/// sooner can turn unread data into a TCP reset, which the client sees as 1006.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// `GET /echo`: upgrades to a WebSocket served by [`echo`]. (tests-integration serves it too.)
pub(crate) async fn upgrade(upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(echo)
}

/// Echoes text and binary messages until the client leaves or stop-accepting comes.
#[graceful::tracked] // each open socket is in flight; one that ignored the signal would be named
async fn echo(mut socket: WebSocket) {
    let stop = graceful::token();
    loop {
        let message = tokio::select! {
            message = socket.recv() => message,
            _ = stop.cancelled() => break,
        };
        let reply = match message {
            Some(Ok(message @ (Message::Text(_) | Message::Binary(_)))) => message,
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
            Some(Ok(_)) => continue, // pings are answered by the library
        };
        if socket.send(reply).await.is_err() {
            return;
        }
    }
    go_away(socket).await;
}

/// Sends Close 1001 and waits for the client's Close, at most [`CLOSE_WAIT`].
async fn go_away(mut socket: WebSocket) {
    let close = CloseFrame {
        code: axum::extract::ws::close_code::AWAY,
        reason: "server shutting down, reconnect".into(),
    };
    if socket.send(Message::Close(Some(close))).await.is_err() {
        return;
    }
    let _ = tokio::time::timeout(CLOSE_WAIT, async {
        while let Some(Ok(message)) = socket.recv().await {
            if matches!(message, Message::Close(_)) {
                return;
            }
        }
    })
    .await;
}

#[graceful::main(pre_stop = "2s", drain_timeout = "20s")]
async fn main() -> std::io::Result<()> {
    let address = std::env::var("LISTEN_ADDR").unwrap_or_else(|_| "127.0.0.1:3002".to_owned());
    let app = Router::new()
        .route("/echo", get(upgrade))
        .route("/readyz", get(graceful::readyz));
    let listener = tokio::net::TcpListener::bind(&address).await?;
    println!("listening on {}", listener.local_addr()?);
    graceful::ready();
    graceful::serve(listener, app).await
}
