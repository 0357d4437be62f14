#[graceful::main(grace = "10s", grace = "20s")]
async fn main() {}
