//! Adopts the sockets systemd passed: the `LISTEN_*` variables read strictly by `environment`,
//! then each socket taken through listenfd, which holds the `unsafe`.

use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};

use listenfd::ListenFd;

use super::environment::{self, Passed};
use super::inherited::Inherited;
use super::select::{self, Kind, Socket};
use crate::log::event;

pub(super) use super::environment::EnvironmentError;

/// Reads the variables and adopts the sockets they name, logging what was found.
pub(super) fn from_environment() -> Result<Inherited, EnvironmentError> {
    let own_pid = std::process::id();
    let (first_fd, names) = match environment::from_process(own_pid)? {
        Passed::Nothing => return Ok(Inherited::default()),
        Passed::NotOurs {
            listen_pid,
            listen_fds,
        } => {
            event!(
                Warn,
                "socket activation: LISTEN_PID={listen_pid} names another process (this one is {own_pid}): the sockets of LISTEN_FDS={listen_fds} are not ours; ignoring them, graceful::bind binds its addresses itself"
            );
            return Ok(Inherited::default());
        }
        Passed::Sockets { first_fd, names } => (first_fd, names),
    };
    // listenfd reads LISTEN_FDS and LISTEN_PID again and removes them from the environment,
    // which is why `Builder::run` gets here before any thread starts. LISTEN_FDNAMES stays:
    // without LISTEN_FDS it means nothing to a child, and removing it would be `unsafe` from
    // edition 2024 on.
    let mut passed = ListenFd::from_env();
    if passed.len() != names.len() {
        // listenfd parses the same variables less strictly (spaces, for one).
        event!(
            Warn,
            "socket activation: listenfd sees {} of the {} sockets LISTEN_FDS names; adopting those",
            passed.len(),
            names.len()
        );
    }
    let mut inherited = Inherited::default();
    for ((index, fd), name) in (0..passed.len()).zip(first_fd..).zip(names) {
        let (kind, held) = adopt(&mut passed, index);
        inherited.sockets.push(Socket {
            fd: held.as_ref().map_or(fd, AsRawFd::as_raw_fd),
            name,
            kind,
            taken: false,
        });
        inherited.held.push(held);
    }
    event!(
        Info,
        "socket activation: systemd passed {} socket(s): {}",
        inherited.sockets.len(),
        select::list(&inherited.sockets, "; ")
    );
    Ok(inherited)
}

/// Takes the passed socket at `index` if it is TCP; listenfd leaves any other where it is.
fn adopt(passed: &mut ListenFd, index: usize) -> (Kind, Option<TcpListener>) {
    match passed.take_tcp_listener(index) {
        Ok(Some(socket)) => {
            let kind = kind_of(&socket).unwrap_or_else(|error| Kind::Other(error.to_string()));
            (kind, Some(socket))
        }
        Ok(None) => (Kind::Other("adopted twice".to_owned()), None),
        Err(not_tcp) => (Kind::Other(not_tcp.to_string()), None),
    }
}

/// A listener, made non-blocking as tokio needs it, or one connection.
fn kind_of(socket: &TcpListener) -> io::Result<Kind> {
    let local = socket.local_addr()?;
    // A connection, as `Accept=yes` passes, has a peer. std asks only streams for theirs, so a
    // duplicate of the fd is looked at as one.
    if TcpStream::from(OwnedFd::from(socket.try_clone()?))
        .peer_addr()
        .is_ok()
    {
        return Ok(Kind::TcpConnection(local));
    }
    socket.set_nonblocking(true)?;
    Ok(Kind::TcpListener(local))
}

/// The number `is_inherited` compares with those of the passed sockets.
#[cfg(feature = "serve")]
pub(super) fn fd_number(listener: &tokio::net::TcpListener) -> i32 {
    listener.as_raw_fd()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listener_is_made_non_blocking() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let kind = kind_of(&listener).unwrap();
        assert_eq!(kind, Kind::TcpListener(listener.local_addr().unwrap()));
        // Non-blocking: an empty queue answers at once instead of waiting.
        let error = listener.accept().unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::WouldBlock);
    }

    #[test]
    fn an_accepted_connection_is_told_from_a_listener() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (connection, _) = listener.accept().unwrap();
        let local = connection.local_addr().unwrap();
        // As listenfd hands it over: a TCP socket, whatever it is.
        let passed = TcpListener::from(OwnedFd::from(connection));
        assert_eq!(kind_of(&passed).unwrap(), Kind::TcpConnection(local));
    }
}
