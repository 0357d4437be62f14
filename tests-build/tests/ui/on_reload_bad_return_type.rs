#[graceful::on_reload]
async fn reload_settings() -> bool {
    true
}

fn main() {}
