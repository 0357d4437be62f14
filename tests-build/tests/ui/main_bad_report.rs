#[graceful::main(report = "yaml")]
async fn main() {}
