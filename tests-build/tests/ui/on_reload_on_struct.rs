#[graceful::on_reload]
struct Settings;

fn main() {}
