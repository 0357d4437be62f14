#[graceful::main(current_thread)]
async fn main() {}
