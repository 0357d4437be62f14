#[graceful::on_shutdown(order = 10)]
fn close<T: Default>() {
    let _ = T::default();
}

fn main() {}
