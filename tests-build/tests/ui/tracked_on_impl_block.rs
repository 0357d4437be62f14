struct Service;

#[graceful::tracked]
impl Service {
    fn handle(&self) {}
}

fn main() {
    Service.handle();
}
