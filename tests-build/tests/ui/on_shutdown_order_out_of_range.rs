#[graceful::on_shutdown(order = 3000000000)]
async fn close_pool() {}

fn main() {}
