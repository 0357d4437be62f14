#[graceful::main]
struct Service;

fn main() {}
