#[graceful::tracked(name = upload)]
async fn upload() {}

fn main() {}
