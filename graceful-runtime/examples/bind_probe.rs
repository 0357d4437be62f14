//! A probe for systemd socket activation: listens through `graceful::bind` (or `bind_named`
//! when given a name), answers one connection with "ok\n", and exits. graceful's log says
//! whether it adopted a socket from systemd or bound one itself.
//!
//! ```text
//! cargo build -p graceful-runtime --example bind_probe
//! systemd-socket-activate -l 127.0.0.1:8080 target/debug/examples/bind_probe 127.0.0.1:8080
//! systemd-socket-activate -l 127.0.0.1:8080 --fdname=web target/debug/examples/bind_probe 127.0.0.1:8080 web
//! curl http://127.0.0.1:8080/   # or: nc 127.0.0.1 8080
//! ```

use graceful_runtime as graceful;
use tokio::io::AsyncWriteExt;

fn main() -> std::process::ExitCode {
    let mut arguments = std::env::args().skip(1);
    let address = arguments
        .next()
        .unwrap_or_else(|| "127.0.0.1:8080".to_owned());
    let name = arguments.next();
    graceful::Builder::new()
        .flavor(graceful::Flavor::CurrentThread)
        .run(async move {
            let listener = match &name {
                Some(name) => graceful::bind_named(name, &address).await?,
                None => graceful::bind(&address).await?,
            };
            eprintln!("bind_probe: listening on {}", listener.local_addr()?);
            let (mut connection, peer) = listener.accept().await?;
            eprintln!("bind_probe: answering {peer}");
            connection.write_all(b"ok\n").await?;
            connection.shutdown().await?;
            Ok::<(), std::io::Error>(())
        })
}
