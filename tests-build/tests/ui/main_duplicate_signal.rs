#[graceful::main(signals = ["SIGTERM", "SIGINT", "SIGTERM"])]
async fn main() {}
