//! Any name works, as do attributes on the fn and `?` on any error type.

use std::error::Error;

/// The entry point, called from the real `main` below.
#[graceful::main(flavor = "current_thread")]
#[allow(clippy::needless_return)]
async fn serve() -> Result<(), Box<dyn Error + Send + Sync>> {
    let port: u16 = "8080".parse()?;
    assert_eq!(port, 8080);
    return Ok(());
}

fn main() -> std::process::ExitCode {
    serve()
}
