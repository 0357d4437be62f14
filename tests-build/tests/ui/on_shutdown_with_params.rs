#[graceful::on_shutdown(order = 10)]
async fn close_pool(pool: String) {
    drop(pool);
}

fn main() {}
