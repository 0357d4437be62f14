//! Every hook shape #[graceful::on_shutdown] supports compiles, with every key.

use std::fmt;

#[derive(Debug)]
struct PoolError;

impl fmt::Display for PoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("pool error")
    }
}

#[graceful::on_shutdown(order = 10)]
async fn async_unit() {}

#[graceful::on_shutdown(order = -5, timeout = "2s", name = "close-pool")]
async fn async_result() -> Result<(), PoolError> {
    Ok(())
}

#[graceful::on_shutdown(order = 20)]
fn sync_unit() {}

#[graceful::on_shutdown(order = 2147483647)]
pub fn sync_result() -> Result<(), std::io::Error> {
    Ok(())
}

#[graceful::on_shutdown(order = -2147483648)]
pub(crate) fn lowest() -> Result<(), String> {
    Ok(())
}

#[graceful::main]
async fn main() {}
