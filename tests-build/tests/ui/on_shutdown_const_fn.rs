#[graceful::on_shutdown(order = 10)]
const fn close_pool() {}

fn main() {}
