#[graceful::on_shutdown(order = 10)]
unsafe fn release_mapping() {}

fn main() {}
