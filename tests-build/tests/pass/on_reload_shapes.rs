//! Every hook shape #[graceful::on_reload] supports compiles, with every key, and runs at a
//! reload in ascending order; one fn may be both a reload and a shutdown hook.

use std::fmt;
use std::sync::Mutex;

static RAN: Mutex<Vec<&str>> = Mutex::new(Vec::new());

#[derive(Debug)]
struct SettingsError;

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("settings error")
    }
}

#[graceful::on_reload]
async fn async_unit() {
    RAN.lock().unwrap().push("async_unit");
}

#[graceful::on_reload(order = -5, timeout = "2s", name = "settings")]
async fn async_result() -> Result<(), SettingsError> {
    RAN.lock().unwrap().push("settings");
    Ok(())
}

#[graceful::on_reload(order = 20)]
fn sync_unit() {
    RAN.lock().unwrap().push("sync_unit");
}

#[graceful::on_reload(order = 10)]
pub fn sync_result() -> Result<(), std::io::Error> {
    RAN.lock().unwrap().push("sync_result");
    Ok(())
}

#[graceful::on_reload(order = 30)]
#[graceful::on_shutdown(order = 1)]
pub(crate) fn both() {
    RAN.lock().unwrap().push("both");
}

#[graceful::main]
async fn main() {
    let report = graceful::reload().await.expect("a reload under graceful::main runs");
    assert!(!report.has_failures(), "{report}");
    assert_eq!(
        *RAN.lock().unwrap(),
        ["settings", "async_unit", "sync_result", "sync_unit", "both"]
    );
}
