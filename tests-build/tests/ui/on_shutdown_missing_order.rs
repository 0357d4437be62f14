#[graceful::on_shutdown]
async fn close_pool() {}

fn main() {}
