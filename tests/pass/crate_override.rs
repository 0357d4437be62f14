//! A crate that re-exports graceful can point the macros at its own path.

mod platform {
    pub use ::graceful;
}

#[graceful::tracked(crate = "platform::graceful")]
fn work() {}

#[graceful::on_shutdown(order = 1, crate = "platform::graceful")]
fn hook() {}

#[graceful::main(crate = "platform::graceful")]
async fn main() {
    work();
}
