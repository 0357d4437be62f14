//! Takes ownership of the file descriptors systemd passed, through listenfd (which holds the
//! `unsafe`), and finds out what each one is.

use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::SocketAddr as UnixAddress;

use listenfd::ListenFd;

use super::select::{Kind, Slot};
use crate::log::event;

/// An adopted socket, owned until `bind` hands it out; the ones never asked for stay open (as
/// they would in a process that did not adopt them) and marked close-on-exec.
#[derive(Debug)]
pub(crate) enum Held {
    Tcp(TcpListener),
    /// Of a kind `bind` never hands out: owned, so that nothing else closes or reuses it.
    Kept {
        _fd: OwnedFd,
    },
}

impl Held {
    fn kept(socket: impl Into<OwnedFd>) -> Held {
        Held::Kept { _fd: socket.into() }
    }
}

/// Adopts the `names.len()` passed sockets from `first_fd` on. listenfd reads `LISTEN_FDS` and
/// `LISTEN_PID` again and removes them from the environment, which is why `Builder::run` gets
/// here before any thread starts. `LISTEN_FDNAMES` stays: without `LISTEN_FDS` it means
/// nothing to a child, and removing it would be `unsafe` from edition 2024 on.
pub(crate) fn adopt_all(first_fd: i32, names: Vec<Option<String>>) -> Vec<(Slot, Option<Held>)> {
    let mut passed = ListenFd::from_env();
    if passed.len() != names.len() {
        // Only another thread changing LISTEN_FDS between the two reads can get here.
        event!(
            Warn,
            "socket activation: LISTEN_FDS changed while being read ({} then {}); adopting {}",
            names.len(),
            passed.len(),
            names.len().min(passed.len())
        );
    }
    names
        .into_iter()
        .enumerate()
        .take(passed.len())
        .map(|(index, name)| {
            let fd = first_fd.saturating_add(i32::try_from(index).unwrap_or(i32::MAX));
            let (kind, held) = adopt_one(&mut passed, index);
            let fd = match &held {
                Some(Held::Tcp(listener)) => listener.as_raw_fd(),
                _ => fd,
            };
            let slot = Slot {
                fd,
                name,
                kind,
                taken: false,
            };
            (slot, held)
        })
        .collect()
}

/// Tries each kind listenfd knows in turn: each refusal leaves the fd in place for the next.
fn adopt_one(passed: &mut ListenFd, index: usize) -> (Kind, Option<Held>) {
    match passed.take_tcp_listener(index) {
        Ok(Some(listener)) => {
            let kind = match (listener.local_addr(), is_connected(listener.try_clone())) {
                (Ok(local), false) => Kind::TcpListener(local),
                (Ok(local), true) => Kind::TcpConnection(local),
                (Err(error), _) => Kind::Unusable(error.to_string()),
            };
            return (kind, Some(Held::Tcp(listener)));
        }
        Ok(None) => return (Kind::Unusable("already taken".to_owned()), None),
        Err(_) => {}
    }
    if let Ok(Some(listener)) = passed.take_unix_listener(index) {
        let path = describe_unix(listener.local_addr().ok());
        return (Kind::UnixListener(path), Some(Held::kept(listener)));
    }
    if let Ok(Some(socket)) = passed.take_udp_socket(index) {
        return match socket.local_addr() {
            Ok(local) => (Kind::Udp(local), Some(Held::kept(socket))),
            Err(error) => (Kind::Unusable(error.to_string()), Some(Held::kept(socket))),
        };
    }
    match passed.take_unix_datagram(index) {
        Ok(Some(socket)) => {
            let path = describe_unix(socket.local_addr().ok());
            (Kind::UnixDatagram(path), Some(Held::kept(socket)))
        }
        Ok(None) => (Kind::Unusable("already taken".to_owned()), None),
        Err(error) => (Kind::Unusable(error.to_string()), None),
    }
}

/// Whether a TCP socket is one connection (as `Accept=yes` passes) rather than a listener: a
/// connection has a peer. std has `peer_addr` only on streams; a duplicate of the fd is looked
/// at as one and closed.
fn is_connected(duplicate: std::io::Result<TcpListener>) -> bool {
    duplicate.is_ok_and(|listener| TcpStream::from(OwnedFd::from(listener)).peer_addr().is_ok())
}

fn describe_unix(address: Option<UnixAddress>) -> String {
    match address.as_ref().and_then(UnixAddress::as_pathname) {
        Some(path) => path.display().to_string(),
        None => "an unnamed or abstract address".to_owned(),
    }
}
