#[graceful::main(reload_signal = "SIGTERM")]
async fn main() {}
