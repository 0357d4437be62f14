//! What a test needs from the machine (a program, a daemon, root), said out loud. Under CI
//! (`CI=true`) a missing need fails the test; elsewhere the test is skipped with a banner that
//! cannot be missed, like the skipped Windows check in .ci/run.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

/// Returns `available`. When it is false, panics under `CI=true` (CI must provide `what`), and
/// elsewhere prints a loud skip naming `what`, for the test to return early:
///
/// ```ignore
/// use graceful_tests_integration::require::require;
/// if !require("haproxy on PATH (scripts/rolling-restart installs it)", found) {
///     return;
/// }
/// ```
pub fn require(what: &str, available: bool) -> bool {
    if available {
        return true;
    }
    assert!(
        !on_ci(),
        "this test needs {what}, which is missing, and CI=true: CI must provide it"
    );
    let message =
        format!("!!! WARNING: this test needs {what}, which is missing: test SKIPPED !!!");
    let bar = "!".repeat(message.chars().count());
    // To the process's stderr itself, past the test harness's capture, so that the skip shows
    // without --nocapture.
    let _ = writeln!(std::io::stderr().lock(), "{bar}\n{message}\n{bar}");
    false
}

/// Whether this is a CI run: `CI=true`, as .ci/run is run and as CI services set it.
pub fn on_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| value == "true")
}

/// Where the shell would find the executable `program`: the first match in `PATH`.
pub fn program_on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|directory| directory.join(program))
        .find(|candidate| {
            candidate.metadata().is_ok_and(|metadata| {
                metadata.is_file() && metadata.permissions().mode() & 0o111 != 0
            })
        })
}
