#[derive(Debug)]
struct StartupError;

#[graceful::main(
    drain_timeout = "1s",
    hook_timeout = "500ms",
    pre_stop = "0s",
    grace = "2s"
)]
async fn main() -> Result<(), StartupError> {
    let ok: Result<(), StartupError> = Ok(());
    ok?;
    Ok(())
}
