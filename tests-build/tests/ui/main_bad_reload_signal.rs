#[graceful::main(reload_signal = "SIGKILL")]
async fn main() {}
