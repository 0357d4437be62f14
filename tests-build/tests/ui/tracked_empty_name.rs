#[graceful::tracked(name = "")]
async fn upload() {}

fn main() {}
