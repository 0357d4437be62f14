// A signal cannot both shut down and start an upgrade: the runtime would refuse to start (exit 78),
// so the build fails first, on the key.
#[graceful::main(signals = ["SIGTERM", "SIGUSR2"], upgrade_signal = "SIGUSR2")]
async fn main() {}
