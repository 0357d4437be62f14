#[graceful::on_shutdown(order = 10, timeout = "soon")]
async fn close_pool() {}

fn main() {}
