//! The sockets passed to this process, kept from their adoption until `bind` hands them out.

use std::io;
use std::net::SocketAddr;

use super::select::{self, Choice, Socket};

/// The passed sockets, and the listeners not handed out yet.
#[derive(Debug, Default)]
pub(super) struct Inherited {
    pub(super) sockets: Vec<Socket>,
    /// Beside `sockets`: each TCP socket until it is handed out. Sockets of other kinds are
    /// not held: listenfd leaves them open where they are.
    pub(super) held: Vec<Option<std::net::TcpListener>>,
}

/// What a call to `bind` gets.
#[derive(Debug)]
pub(super) enum Taken {
    /// A passed listener, and whether it listens on the address asked for.
    Passed {
        socket: Socket,
        listener: std::net::TcpListener,
        on_address: bool,
    },
    /// Nothing to take: bind the address here, for this reason.
    BindHere(&'static str),
}

impl Inherited {
    /// Hands out what the rule of `select::choose` picks.
    pub(super) fn take(&mut self, name: Option<&str>, asked: &[SocketAddr]) -> io::Result<Taken> {
        let (index, on_address) = match select::choose(&self.sockets, name, asked)? {
            Choice::OnAddress(index) => (index, true),
            Choice::OnlyListener(index) => (index, false),
            Choice::BindHere if self.sockets.is_empty() => {
                return Ok(Taken::BindHere("systemd passed no sockets to this process"))
            }
            Choice::BindHere => {
                return Ok(Taken::BindHere(
                    "every socket systemd passed is taken by an earlier bind",
                ))
            }
        };
        // `choose` picks only untaken TCP listeners, and each is held until taken.
        let listener = self.held[index].take().ok_or_else(|| {
            io::Error::other(format!("{} is no longer held", self.sockets[index]))
        })?;
        let socket = self.sockets[index].clone();
        self.sockets[index].taken = true;
        Ok(Taken::Passed {
            socket,
            listener,
            on_address,
        })
    }

    /// Takes every untaken TCP listener named `name`, whatever its address.
    #[cfg(all(unix, feature = "upgrade"))]
    pub(super) fn take_all_named(&mut self, name: &str) -> Vec<(Socket, std::net::TcpListener)> {
        let mut taken = Vec::new();
        for (socket, held) in self.sockets.iter_mut().zip(&mut self.held) {
            if socket.taken || socket.name.as_deref() != Some(name) {
                continue;
            }
            if let Some(listener) = held.take() {
                socket.taken = true;
                taken.push((socket.clone(), listener));
            }
        }
        taken
    }

    /// Whether the socket `fd`, listening on `local`, is a passed one. The address too: a passed
    /// socket handed out and dropped frees its fd number for a socket of the service's own.
    #[cfg(feature = "serve")]
    pub(super) fn holds(&self, fd: i32, local: SocketAddr) -> bool {
        self.sockets
            .iter()
            .any(|socket| socket.fd == fd && socket.kind == select::Kind::TcpListener(local))
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::fd::AsRawFd;

    use super::*;

    fn one_listener(name: &str) -> (Inherited, SocketAddr) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let local = listener.local_addr().unwrap();
        let socket = Socket {
            fd: listener.as_raw_fd(),
            name: Some(name.to_owned()),
            kind: select::Kind::TcpListener(local),
            taken: false,
        };
        let inherited = Inherited {
            sockets: vec![socket],
            held: vec![Some(listener)],
        };
        (inherited, local)
    }

    #[test]
    fn a_listener_is_taken_once_then_the_address_is_bound_here() {
        let (mut inherited, local) = one_listener("web");
        let taken = inherited.take(Some("web"), &[local]).unwrap();
        assert!(
            matches!(
                taken,
                Taken::Passed {
                    on_address: true,
                    ..
                }
            ),
            "{taken:?}"
        );
        assert!(inherited.sockets[0].taken);
        assert!(inherited.held[0].is_none());
        let again = inherited.take(Some("web"), &[local]).unwrap_err();
        assert_eq!(again.kind(), io::ErrorKind::AddrInUse);
        let unnamed = inherited.take(None, &[local]).unwrap();
        assert!(matches!(unnamed, Taken::BindHere(_)), "{unnamed:?}");
    }

    #[cfg(feature = "serve")]
    #[test]
    fn a_handed_out_listener_is_recognised_by_fd_and_address() {
        let (mut inherited, local) = one_listener("web");
        let Taken::Passed { listener, .. } = inherited.take(None, &[local]).unwrap() else {
            panic!("not taken");
        };
        let fd = listener.as_raw_fd();
        assert!(inherited.holds(fd, local));
        let elsewhere = SocketAddr::new(local.ip(), local.port().wrapping_add(1));
        assert!(!inherited.holds(fd, elsewhere));
        assert!(!inherited.holds(fd + 1, local));
    }
}
