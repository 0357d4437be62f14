//! The new process of an upgrade: this binary again, as the process was started (argv[0]
//! resolved against the start-up working directory, symlinks left alone, so that a `current`
//! symlink moved to a new release starts that release), with the same arguments and
//! environment, the listeners at fds 3 onward as `LISTEN_FDS` names them, and the write end of
//! a readiness pipe.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Component, Path, PathBuf};
use std::process::{Child, Command};

use command_fds::{CommandFdExt, FdMapping};
use nix::fcntl::{fcntl, FcntlArg, FdFlag};

use super::{FROM_VARIABLE, READY_FD_VARIABLE};

/// sd_listen_fds(3)'s SD_LISTEN_FDS_START: where the passed sockets begin.
const FIRST_FD: i32 = 3;

/// Where the process was started.
pub(super) struct Origin {
    pub(super) directory: PathBuf,
}

/// A new process, started.
pub(super) struct Launched {
    pub(super) child: Child,
    /// The read end of the readiness pipe.
    pub(super) ready: OwnedFd,
    pub(super) program: PathBuf,
}

/// Starts the new process with `sockets` (name, address, a duplicate of the socket).
pub(super) fn launch(
    origin: &Origin,
    sockets: Vec<(String, SocketAddr, OwnedFd)>,
) -> Result<Launched, String> {
    let argv0 = std::env::args_os()
        .next()
        .ok_or("this process has no argv[0] to start again")?;
    let program = program(&argv0, &origin.directory);
    let (ready, ready_write) = pipe().map_err(|error| format!("cannot make a pipe: {error}"))?;
    let count = sockets.len();
    let names: Vec<&str> = sockets.iter().map(|(name, _, _)| name.as_str()).collect();
    let names = names.join(":");
    let ready_fd = FIRST_FD + i32::try_from(count).map_err(|_| "too many listeners")?;

    let mut command = Command::new(&program);
    command
        .arg0(&argv0)
        .args(std::env::args_os().skip(1))
        .current_dir(&origin.directory)
        // The watchdog is the new process's once it is the main one; with the old process's
        // pid here, sd_notify's watchdog_enabled() would say it is off.
        .env_remove("WATCHDOG_PID")
        .env_remove("LISTEN_PID")
        .env_remove("LISTEN_FDS_FIRST_FD")
        .env(READY_FD_VARIABLE, ready_fd.to_string())
        .env(FROM_VARIABLE, std::process::id().to_string());
    if count == 0 {
        command
            .env_remove("LISTEN_FDS")
            .env_remove("LISTEN_FDNAMES");
    } else {
        command
            .env("LISTEN_FDS", count.to_string())
            .env("LISTEN_FDNAMES", names);
    }
    let mut mappings: Vec<FdMapping> = sockets
        .into_iter()
        .zip(FIRST_FD..)
        .map(|((_, _, parent_fd), child_fd)| FdMapping {
            parent_fd,
            child_fd,
        })
        .collect();
    mappings.push(FdMapping {
        parent_fd: ready_write,
        child_fd: ready_fd,
    });
    command
        .fd_mappings(mappings)
        .map_err(|error| format!("cannot map the listeners: {error}"))?;
    let child = command
        .spawn()
        .map_err(|error| format!("cannot start {}: {error}", program.display()))?;
    // Dropping the command closes this process's copies of what it passed: the readiness pipe's
    // write end is then the new process's alone.
    drop(command);
    Ok(Launched {
        child,
        ready,
        program,
    })
}

/// What to execute: argv[0] as given when it has a `/` (relative to the start-up directory
/// when relative, as the shell resolved it then), else a name for `PATH`, as the shell
/// looked it up.
fn program(argv0: &OsString, directory: &Path) -> PathBuf {
    let path = Path::new(argv0);
    if path.is_absolute() || !argv0.as_bytes().contains(&b'/') {
        path.to_path_buf()
    } else {
        // `./` says nothing once joined; `..` stays, since it means something else beside a
        // symlink.
        let relative = path
            .components()
            .filter(|component| *component != Component::CurDir);
        directory.join(relative.collect::<PathBuf>())
    }
}

/// A pipe whose ends do not leak into processes started meanwhile.
fn pipe() -> nix::Result<(OwnedFd, OwnedFd)> {
    let (read, write) = nix::unistd::pipe()?;
    for end in [read.as_fd(), write.as_fd()] {
        fcntl(end, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
    }
    Ok((read, write))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv0_is_resolved_against_the_start_up_directory_and_never_canonicalised() {
        let directory = Path::new("/srv/app");
        let resolve = |argv0: &str| program(&OsString::from(argv0), directory);
        assert_eq!(
            resolve("/opt/app/current/bin/api"),
            Path::new("/opt/app/current/bin/api")
        );
        assert_eq!(resolve("./bin/api"), Path::new("/srv/app/bin/api"));
        assert_eq!(resolve("../app/api"), Path::new("/srv/app/../app/api"));
        assert_eq!(resolve("current/api"), Path::new("/srv/app/current/api"));
        // A bare name is looked up in PATH, as the shell did.
        assert_eq!(resolve("api"), Path::new("api"));
    }
}
