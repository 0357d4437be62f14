#[graceful::on_shutdown(order = 10)]
struct Pool;

fn main() {}
