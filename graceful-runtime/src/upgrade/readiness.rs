//! The new process's side of an upgrade: the write end of the readiness pipe that the process it
//! replaces named in `GRACEFUL_UPGRADE_READY_FD`, and the one byte written to it at the first
//! `graceful::ready()`, which tells that process to hand over.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Mutex;

use nix::fcntl::OFlag;

use super::{FROM_VARIABLE, READY_FD_VARIABLE};
use crate::log::event;
use crate::observe::Event;
use crate::phase::Health;
use crate::sequence::Controller;
use crate::sync::lock;

/// In a process an upgrade started, opens the readiness pipe and writes to it at the first
/// `ready()`. Elsewhere one environment look-up, and nothing else.
pub(super) fn install(controller: &'static Controller) {
    let Some(raw_fd) = std::env::var_os(READY_FD_VARIABLE) else {
        return;
    };
    let from = std::env::var(FROM_VARIABLE).ok();
    let parent = std::os::unix::process::parent_id();
    if from.as_deref() != Some(parent.to_string().as_str()) {
        // Set for another process: this one's parent (or grandparent) was started by an
        // upgrade and passed its environment on.
        return;
    }
    let Some(fd) = raw_fd.to_str().and_then(|raw| raw.parse::<i32>().ok()) else {
        event!(
            Warn,
            "upgrade: {READY_FD_VARIABLE}={raw_fd:?} is not a file descriptor; process {parent} will not hear that this one is ready"
        );
        return;
    };
    let pipe = match open(fd) {
        Ok(pipe) => pipe,
        Err(error) => {
            event!(
                Warn,
                "upgrade: cannot open the readiness pipe (fd {fd}): {error}; process {parent} will not hear that this one is ready"
            );
            return;
        }
    };
    event!(
        Info,
        "upgrade: started by process {parent}, which hands over at graceful::ready()"
    );
    let pipe = Mutex::new(Some(pipe));
    controller.subscribe(move |event| {
        if let Event::Health(Health::Ready) = event {
            // Once: a later ready() after unready() is this process's own business.
            if let Some(mut pipe) = lock(&pipe).take() {
                if let Err(error) = pipe.write_all(b"r") {
                    event!(
                        Warn,
                        "upgrade: cannot tell process {parent} that this one is ready: {error}"
                    );
                }
            }
        }
    });
}

/// Reopens the inherited write end through /dev/fd, which needs no `unsafe`, and closes the
/// inherited descriptor, which has no close-on-exec flag: a process this one starts must not
/// hold the pipe. Non-blocking: a pipe whose reader is gone fails at once rather than block.
fn open(fd: i32) -> std::io::Result<File> {
    let pipe = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(OFlag::O_NONBLOCK.bits())
        .open(format!("/dev/fd/{fd}"))?;
    nix::unistd::close(fd)?;
    Ok(pipe)
}
