//! A crate that re-exports graceful can point the macros at its own path, through a module
//! (`platform::graceful`) or a renamed extern crate (`g`).

extern crate graceful as g;

mod platform {
    pub use ::graceful;
}

#[graceful::tracked(crate = "platform::graceful")]
fn work() {}

#[graceful::on_shutdown(order = 1, crate = "platform::graceful")]
fn hook() {}

mod nested {
    #[g::tracked(crate = "g", name = "renamed")]
    pub async fn renamed_work() -> u8 {
        assert_eq!(g::in_flight(), 1);
        1
    }

    #[g::on_shutdown(order = 2, timeout = "1s", crate = "g")]
    pub async fn renamed_hook() -> Result<(), String> {
        Ok(())
    }
}

#[graceful::main(crate = "platform::graceful", drain_timeout = "1s")]
async fn main() {
    work();
    assert_eq!(nested::renamed_work().await, 1);
}
