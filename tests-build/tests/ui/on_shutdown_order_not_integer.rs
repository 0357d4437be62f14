#[graceful::on_shutdown(order = "first")]
async fn close_pool() {}

fn main() {}
