//! Waiting for the new process of an upgrade: its byte on the readiness pipe, or its exit; and
//! stopping it when it must go (SIGTERM, SIGKILL after `grace`), reaped either way. A thread
//! waits for its exit, so that it is reaped whenever it ends, also after a handover.

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::net::unix::pipe;
use tokio::sync::watch;

use super::launch::Launched;
use crate::log::{event, human};

/// How long a process sent SIGKILL may take to be reaped before the wait is given up: only a
/// process stuck in the kernel takes longer.
const REAP_LIMIT: Duration = Duration::from_secs(5);

/// A started new process, watched.
pub(super) struct NewProcess {
    pid: u32,
    /// `None` once the pipe has closed without a byte.
    ready: Option<pipe::Receiver>,
    /// How it ended, once it has: `exit code 1`, `signal SIGKILL`.
    exited: watch::Receiver<Option<String>>,
}

/// What the new process did first.
pub(super) enum Ended {
    /// It called `graceful::ready()`.
    Ready,
    /// It exited, this way.
    Exited(String),
}

impl NewProcess {
    /// Starts watching `launched`.
    pub(super) fn watch(launched: Launched) -> io::Result<NewProcess> {
        let Launched {
            mut child, ready, ..
        } = launched;
        let pid = child.id();
        let (sender, exited) = watch::channel(None);
        std::thread::Builder::new()
            .name("graceful-upgrade".into())
            .spawn(move || {
                let status = match child.wait() {
                    Ok(status) => describe(status),
                    Err(error) => format!("an unknown status ({error})"),
                };
                sender.send_replace(Some(status));
            })?;
        let ready = pipe::Receiver::from_owned_fd(ready)?;
        Ok(NewProcess {
            pid,
            ready: Some(ready),
            exited,
        })
    }

    pub(super) fn pid(&self) -> u32 {
        self.pid
    }

    /// Resolves when the new process is ready, or has exited before. A byte and an exit seen
    /// together count as the exit: a process that is gone cannot take over.
    pub(super) async fn ready_or_exit(&mut self) -> Ended {
        let mut exited = self.exited.clone();
        let ready = async {
            let mut byte = [0u8; 1];
            let read = match self.ready.as_mut() {
                Some(pipe) => read_byte(pipe, &mut byte).await,
                None => Ok(0),
            };
            if !matches!(read, Ok(1)) {
                // Closed without a byte: only its exit (or the timeout) can end the wait now.
                self.ready = None;
                std::future::pending::<()>().await;
            }
        };
        let status = tokio::select! {
            biased;
            status = exited.wait_for(Option::is_some) => status.ok().and_then(|status| status.clone()),
            () = ready => None,
        };
        match status.or_else(|| self.exited.borrow().clone()) {
            Some(status) => Ended::Exited(status),
            None => Ended::Ready,
        }
    }

    /// Stops the new process: SIGTERM, then SIGKILL once `grace` has passed; waits until it is
    /// reaped.
    pub(super) async fn stop(&mut self, grace: Duration) {
        if self.exited.borrow().is_some() {
            return;
        }
        let pid = self.pid;
        self.signal(Signal::SIGTERM);
        event!(
            Info,
            "upgrade: sent SIGTERM to the new process {pid}; SIGKILL in {} unless it exits",
            human(grace)
        );
        let mut exited = self.exited.clone();
        if tokio::time::timeout(grace, exited.wait_for(Option::is_some))
            .await
            .is_ok()
        {
            return;
        }
        self.signal(Signal::SIGKILL);
        event!(Warn, "upgrade: sent SIGKILL to the new process {pid}");
        if tokio::time::timeout(REAP_LIMIT, exited.wait_for(Option::is_some))
            .await
            .is_err()
        {
            event!(
                Warn,
                "upgrade: the new process {pid} is still not reaped {} after SIGKILL",
                human(REAP_LIMIT)
            );
        }
    }

    fn signal(&self, signal: Signal) {
        // Only while it is not yet reaped (checked by the callers just before): its pid cannot
        // belong to another process. The window between that check and this signal is the
        // reaping thread's, a few microseconds.
        let Ok(pid) = i32::try_from(self.pid) else {
            return;
        };
        if let Err(error) = kill(Pid::from_raw(pid), signal) {
            event!(
                Warn,
                "upgrade: cannot send {signal} to the new process {pid}: {error}"
            );
        }
    }
}

/// Reads from `pipe` once it has something (without tokio's `io-util`).
async fn read_byte(pipe: &mut pipe::Receiver, byte: &mut [u8; 1]) -> io::Result<usize> {
    loop {
        pipe.readable().await?;
        match pipe.try_read(byte) {
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => continue,
            read => return read,
        }
    }
}

/// `exit code 1`, or `signal SIGSEGV`.
fn describe(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exit code {code}");
    }
    match status.signal() {
        Some(number) => match Signal::try_from(number) {
            Ok(signal) => format!("signal {signal}"),
            Err(_) => format!("signal {number}"),
        },
        None => format!("{status}"),
    }
}
