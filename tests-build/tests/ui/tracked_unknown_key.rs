#[graceful::tracked(label = "upload")]
async fn upload() {}

fn main() {}
