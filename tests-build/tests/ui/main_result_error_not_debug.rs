struct NotDebug;

#[graceful::main]
async fn main() -> Result<(), NotDebug> {
    Ok(())
}
