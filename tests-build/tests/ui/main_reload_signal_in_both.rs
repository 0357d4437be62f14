#[graceful::main(signals = ["SIGTERM", "SIGHUP"], reload_signal = "SIGHUP")]
async fn main() {}
