#[graceful::main(drain_timeout = "5 parsecs")]
async fn main() {}
