#[graceful::main(health = "localhost:8081")]
async fn main() {}
