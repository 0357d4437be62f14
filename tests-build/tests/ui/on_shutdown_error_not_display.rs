#[derive(Debug)]
struct PoolError;

#[graceful::on_shutdown(order = 10)]
async fn close_pool() -> Result<(), PoolError> {
    Ok(())
}

fn main() {}
