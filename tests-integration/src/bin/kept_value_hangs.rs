//! Main returns its own `ExitCode` (7) while a value kept until exit hangs in its `Drop`: the
//! process must still end within its grace period, and with 7, not with the watchdog's 1.

use std::process::ExitCode;

/// A log writer's guard whose flush never returns.
struct HangsOnDrop;

impl Drop for HangsOnDrop {
    fn drop(&mut self) {
        println!("dropping the kept value: it hangs");
        loop {
            std::thread::park();
        }
    }
}

#[graceful::main(grace = "2s")]
async fn main() -> ExitCode {
    graceful::keep_until_exit(HangsOnDrop);
    println!("READY");
    graceful::shutdown_signal().await;
    ExitCode::from(7)
}
