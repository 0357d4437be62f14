struct Settings;

impl Settings {
    #[graceful::on_reload]
    async fn reload(&self) {}
}

fn main() {}
