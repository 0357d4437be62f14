use std::process::ExitCode;

#[graceful::main(flavor = "current_thread", signals = ["SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2"])]
async fn main() -> ExitCode {
    ExitCode::SUCCESS
}
