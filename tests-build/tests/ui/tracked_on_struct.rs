#[graceful::tracked]
struct Upload;

fn main() {}
