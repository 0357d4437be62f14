#[graceful::main(pre_stop = 5)]
async fn main() {}
