//! `cargo run --example streaming --features serve`: long-lived responses (server-sent events)
//! that end cleanly at stop-accepting instead of holding the process until the drain timeout.
//! Each stream watches `graceful::token()`, sends a last event, and ends; `graceful::serve`
//! counts the request until its body has ended, so the drain waits for that last event to go
//! out.
//!
//! Try it: `curl -N localhost:3001/events`, then ctrl-c the server.

use std::convert::Infallible;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use axum::Router;
use futures_util::stream::{self, Stream};

/// Ticks once a second until stop-accepting, then says goodbye and ends the stream.
async fn events() -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let stop = graceful::token();
    let ticks = stream::unfold((0u64, false), move |(count, finished)| {
        let stop = stop.clone();
        async move {
            if finished {
                return None;
            }
            tokio::select! {
                _ = stop.cancelled() => {
                    // Tell the client why, so it reconnects (to another instance) at once.
                    let last = Event::default().event("shutdown").data("server restarting, reconnect");
                    Some((Ok(last), (count, true)))
                }
                _ = tokio::time::sleep(Duration::from_secs(1)) => {
                    Some((Ok(Event::default().data(format!("tick {count}"))), (count + 1, false)))
                }
            }
        }
    });
    Sse::new(ticks).keep_alive(KeepAlive::default())
}

#[graceful::main(drain_timeout = "10s")]
async fn main() -> std::io::Result<()> {
    let address = std::env::var("LISTEN_ADDR").unwrap_or_else(|_| "127.0.0.1:3001".to_owned());
    let app = Router::new().route("/events", get(events));
    let listener = tokio::net::TcpListener::bind(&address).await?;
    println!("listening on {}", listener.local_addr()?);
    graceful::ready();
    graceful::serve(listener, app).await
}
