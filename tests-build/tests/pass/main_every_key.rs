#[graceful::main(
    drain_timeout = "20s",
    hook_timeout = "5s",
    pre_stop = "0s",
    grace = "28s",
    signals = ["SIGTERM"],
    reload_signal = "SIGUSR1",
    flavor = "multi_thread",
    worker_threads = 2,
    report = "json",
    crate = "::graceful"
)]
pub async fn main() {}
