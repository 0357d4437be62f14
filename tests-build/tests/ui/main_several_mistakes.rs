// Every mistake of one attribute is reported in one build, each on its own token.
#[graceful::main(drain_timout = "5s", grace = "28", flavor = "single")]
fn main(port: u16) {
    let _ = port;
}
