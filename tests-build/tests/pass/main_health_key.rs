//! With the `health` feature on (this package's dev-dependencies turn it on for its cases), the
//! key becomes `Builder::health`. Port 0: the OS picks a free one.

#[graceful::main(health = "127.0.0.1:0", flavor = "current_thread")]
async fn main() {}
