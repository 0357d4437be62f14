#[graceful::on_shutdown(order = 10, order = 20)]
async fn close_pool() {}

fn main() {}
