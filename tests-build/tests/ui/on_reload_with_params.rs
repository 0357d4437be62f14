#[graceful::on_reload]
async fn reload_settings(path: &'static str) {
    let _ = path;
}

fn main() {}
