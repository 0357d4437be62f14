//! Server-loop subject: the same axum hello world served by `graceful::serve` (`SERVER=graceful`)
//! or by `axum::serve` (`SERVER=axum`), HTTP/1.1 and h2c on one port; `benches/serve.sh` drives
//! it with wrk and h2load. With `TLS_CERT` and `TLS_KEY`, HTTPS against axum-server
//! (`SERVER=axum-server`), driven by `benches/tls.sh`. Prints `LISTENING <address>`, stops on
//! SIGTERM. The settings of each side are in shared/server_under_test.rs.

#[path = "shared/server_under_test.rs"]
mod server_under_test;

use axum::routing::get;
use axum::Router;

#[graceful::main]
async fn main() -> std::io::Result<()> {
    let app = Router::new().route("/", get(|| async { "hello" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("LISTENING {}", listener.local_addr()?);
    graceful::ready();
    server_under_test::serve(listener, app).await
}
