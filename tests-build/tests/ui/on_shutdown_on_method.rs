struct Pool;

impl Pool {
    #[graceful::on_shutdown(order = 10)]
    async fn close(&self) {}
}

fn main() {}
