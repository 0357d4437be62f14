// A key written without its value is one error, not also "missing `order`".
#[graceful::on_shutdown(order)]
async fn close_pool() {}

fn main() {}
