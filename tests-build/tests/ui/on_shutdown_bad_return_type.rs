#[graceful::on_shutdown(order = 10)]
fn close_pool() -> u32 {
    0
}

fn main() {}
