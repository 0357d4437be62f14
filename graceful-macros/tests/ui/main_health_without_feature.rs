#[graceful::main(health = "127.0.0.1:8081")]
async fn main() {}
