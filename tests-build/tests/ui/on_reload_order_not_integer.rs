#[graceful::on_reload(order = "first")]
fn reload_settings() {}

fn main() {}
