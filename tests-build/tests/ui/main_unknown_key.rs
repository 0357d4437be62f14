#[graceful::main(drain_timout = "5s")]
async fn main() {}
