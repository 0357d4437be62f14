//! Which inherited socket `bind` and `bind_named` take: pure choices over a description of
//! the sockets systemd passed, so that every rule is tested without a socket.

use std::fmt;
use std::net::SocketAddr;

/// What a passed file descriptor turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    /// What `bind` wants.
    TcpListener(SocketAddr),
    /// One connection, as `Accept=yes` passes.
    TcpConnection(SocketAddr),
    UnixListener(String),
    Udp(SocketAddr),
    UnixDatagram(String),
    /// Something listenfd could not adopt (a FIFO, a netlink socket...): listenfd's reason.
    Unusable(String),
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kind::TcpListener(address) => write!(f, "a listening TCP socket on {address}"),
            Kind::TcpConnection(address) => {
                write!(f, "a connected TCP socket on {address} (Accept=yes)")
            }
            Kind::UnixListener(path) => write!(f, "a Unix stream socket at {path}"),
            Kind::Udp(address) => write!(f, "a UDP socket on {address}"),
            Kind::UnixDatagram(path) => write!(f, "a Unix datagram socket at {path}"),
            Kind::Unusable(reason) => write!(f, "not a socket graceful can use ({reason})"),
        }
    }
}

/// One passed file descriptor, as the choice sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Slot {
    pub(crate) fd: i32,
    /// Its `FileDescriptorName=`, from `LISTEN_FDNAMES`.
    pub(crate) name: Option<String>,
    pub(crate) kind: Kind,
    /// Handed out by an earlier `bind`.
    pub(crate) taken: bool,
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}, {}", self.label(), self.kind)
    }
}

impl Slot {
    /// `fd 3 "web"`: the fd, and its name when it has one.
    fn label(&self) -> String {
        match &self.name {
            Some(name) => format!("fd {} {name:?}", self.fd),
            None => format!("fd {}", self.fd),
        }
    }

    fn listening_address(&self) -> Option<SocketAddr> {
        match (&self.kind, self.taken) {
            (Kind::TcpListener(address), false) => Some(*address),
            _ => None,
        }
    }
}

/// What `bind` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Choice {
    /// Adopt the slot at this index.
    Take(usize),
    /// Bind the address here: every passed socket has been taken already.
    Bind,
}

/// Why no socket could be handed out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The next socket in line is not a listening TCP socket.
    WrongKind(Slot),
    /// No passed socket has this name.
    NoSuchName { name: String, passed: Vec<Slot> },
    /// Every socket of this name was taken by an earlier `bind_named`.
    NameTaken { name: String, fds: Vec<i32> },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::WrongKind(slot) => write!(
                f,
                "{} from systemd is {}, where graceful::bind needs a listening TCP socket (ListenStream= with a port, and Accept=no, in the .socket unit)",
                slot.label(),
                slot.kind
            ),
            Refusal::NoSuchName { name, passed } => {
                write!(f, "systemd passed no socket named {name:?} (")?;
                for (index, slot) in passed.iter().enumerate() {
                    if index > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "{slot}")?;
                }
                write!(
                    f,
                    "); set FileDescriptorName={name} in the .socket unit, or ask for one of the names above"
                )
            }
            Refusal::NameTaken { name, fds } => write!(
                f,
                "the socket(s) systemd passed as {name:?} (fd {fds:?}) were all taken by earlier calls; call bind_named({name:?}, ..) once per socket"
            ),
        }
    }
}

/// The socket for `bind(addresses)`: the untaken TCP listener on one of `addresses`, else the
/// next untaken TCP listener in order (the order across socket units is undefined, so an
/// address that does not match is no reason to refuse), else `Bind` when all were taken.
pub(crate) fn for_addresses(slots: &[Slot], addresses: &[SocketAddr]) -> Result<Choice, Refusal> {
    let all: Vec<usize> = (0..slots.len()).collect();
    if let Some(index) = best_listener(slots, &all, addresses) {
        return Ok(Choice::Take(index));
    }
    match slots.iter().find(|slot| !slot.taken) {
        Some(slot) => Err(Refusal::WrongKind(slot.clone())),
        None => Ok(Choice::Bind),
    }
}

/// The socket for `bind_named(name, addresses)`: among the sockets of that name (systemd gives
/// every socket of one unit the same name unless told otherwise), the one on one of
/// `addresses`, else the next untaken one.
pub(crate) fn for_name(
    slots: &[Slot],
    name: &str,
    addresses: &[SocketAddr],
) -> Result<usize, Refusal> {
    let named: Vec<usize> = (0..slots.len())
        .filter(|&index| slots[index].name.as_deref() == Some(name))
        .collect();
    if named.is_empty() {
        return Err(Refusal::NoSuchName {
            name: name.to_owned(),
            passed: slots.to_vec(),
        });
    }
    if let Some(index) = best_listener(slots, &named, addresses) {
        return Ok(index);
    }
    match named.iter().find(|&&index| !slots[index].taken) {
        Some(&index) => Err(Refusal::WrongKind(slots[index].clone())),
        None => Err(Refusal::NameTaken {
            name: name.to_owned(),
            fds: named.iter().map(|&index| slots[index].fd).collect(),
        }),
    }
}

/// Among `candidates`, the untaken TCP listener on the same address as one of `addresses`,
/// else one whose port matches with a wildcard on either side, else the first untaken one.
fn best_listener(slots: &[Slot], candidates: &[usize], addresses: &[SocketAddr]) -> Option<usize> {
    let listening = || {
        candidates
            .iter()
            .filter_map(|&index| Some((index, slots[index].listening_address()?)))
    };
    let matching = |test: fn(SocketAddr, SocketAddr) -> bool| {
        listening()
            .find(|&(_, local)| addresses.iter().any(|&wanted| test(local, wanted)))
            .map(|(index, _)| index)
    };
    matching(same_address)
        .or_else(|| matching(same_port_one_wildcard))
        .or_else(|| listening().next().map(|(index, _)| index))
}

/// `local` is `wanted`: the same port, and the same IP (an IPv4-mapped IPv6 address counts
/// as its IPv4 address) or a wildcard on both sides, whichever the family (systemd listens on
/// `[::]` for `ListenStream=8080`, where a service asks for `0.0.0.0:8080`).
fn same_address(local: SocketAddr, wanted: SocketAddr) -> bool {
    local.port() == wanted.port()
        && (local.ip().to_canonical() == wanted.ip().to_canonical()
            || (local.ip().is_unspecified() && wanted.ip().is_unspecified()))
}

/// The same port, with a wildcard on one side: systemd listens on every address where the
/// service asked for one, or on one where the service asked for every address.
fn same_port_one_wildcard(local: SocketAddr, wanted: SocketAddr) -> bool {
    wanted.port() != 0
        && local.port() == wanted.port()
        && (local.ip().is_unspecified() || wanted.ip().is_unspecified())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    fn tcp(fd: i32, local: &str) -> Slot {
        Slot {
            fd,
            name: None,
            kind: Kind::TcpListener(address(local)),
            taken: false,
        }
    }

    fn named(mut slot: Slot, name: &str) -> Slot {
        slot.name = Some(name.to_owned());
        slot
    }

    fn taken(mut slot: Slot) -> Slot {
        slot.taken = true;
        slot
    }

    fn udp(fd: i32, local: &str) -> Slot {
        Slot {
            fd,
            name: None,
            kind: Kind::Udp(address(local)),
            taken: false,
        }
    }

    #[test]
    fn bind_takes_the_socket_on_the_asked_address() {
        let slots = [tcp(3, "127.0.0.1:9000"), tcp(4, "127.0.0.1:8080")];
        let choice = for_addresses(&slots, &[address("127.0.0.1:8080")]);
        assert_eq!(choice, Ok(Choice::Take(1)));
    }

    #[test]
    fn bind_matches_any_resolved_address() {
        let slots = [tcp(3, "127.0.0.1:9000"), tcp(4, "[::1]:8080")];
        let resolved = [address("127.0.0.1:8080"), address("[::1]:8080")];
        assert_eq!(for_addresses(&slots, &resolved), Ok(Choice::Take(1)));
    }

    #[test]
    fn bind_matches_wildcards_across_families() {
        let slots = [tcp(3, "127.0.0.1:9000"), tcp(4, "[::]:8080")];
        let choice = for_addresses(&slots, &[address("0.0.0.0:8080")]);
        assert_eq!(choice, Ok(Choice::Take(1)));
    }

    #[test]
    fn bind_matches_ipv4_mapped_addresses() {
        let slots = [tcp(3, "127.0.0.1:9000"), tcp(4, "[::ffff:127.0.0.1]:8080")];
        let choice = for_addresses(&slots, &[address("127.0.0.1:8080")]);
        assert_eq!(choice, Ok(Choice::Take(1)));
    }

    #[test]
    fn bind_matches_a_wildcard_on_either_side_by_port() {
        let slots = [tcp(3, "127.0.0.1:9000"), tcp(4, "[::]:8080")];
        let choice = for_addresses(&slots, &[address("127.0.0.1:8080")]);
        assert_eq!(choice, Ok(Choice::Take(1)));
        let slots = [tcp(3, "127.0.0.1:9000"), tcp(4, "127.0.0.1:8080")];
        let choice = for_addresses(&slots, &[address("0.0.0.0:8080")]);
        assert_eq!(choice, Ok(Choice::Take(1)));
    }

    #[test]
    fn bind_prefers_an_exact_match_over_a_wildcard_one() {
        let slots = [tcp(3, "[::]:8080"), tcp(4, "127.0.0.1:8080")];
        let choice = for_addresses(&slots, &[address("127.0.0.1:8080")]);
        assert_eq!(choice, Ok(Choice::Take(1)));
    }

    #[test]
    fn bind_without_a_match_takes_the_next_untaken_socket() {
        let slots = [taken(tcp(3, "127.0.0.1:9000")), tcp(4, "127.0.0.1:9001")];
        let choice = for_addresses(&slots, &[address("127.0.0.1:8080")]);
        assert_eq!(choice, Ok(Choice::Take(1)));
    }

    #[test]
    fn bind_port_zero_matches_nothing_and_takes_the_next() {
        let slots = [tcp(3, "127.0.0.1:9000"), tcp(4, "[::]:9001")];
        let choice = for_addresses(&slots, &[address("0.0.0.0:0")]);
        assert_eq!(choice, Ok(Choice::Take(0)));
    }

    #[test]
    fn bind_never_takes_a_socket_twice() {
        let slots = [taken(tcp(3, "127.0.0.1:8080")), tcp(4, "127.0.0.1:9000")];
        let choice = for_addresses(&slots, &[address("127.0.0.1:8080")]);
        assert_eq!(choice, Ok(Choice::Take(1)));
    }

    #[test]
    fn bind_binds_itself_once_every_socket_is_taken() {
        let slots = [taken(tcp(3, "127.0.0.1:8080"))];
        let choice = for_addresses(&slots, &[address("127.0.0.1:9090")]);
        assert_eq!(choice, Ok(Choice::Bind));
    }

    #[test]
    fn bind_skips_sockets_of_another_kind_while_a_listener_remains() {
        let slots = [udp(3, "0.0.0.0:53"), tcp(4, "[::]:8080")];
        let choice = for_addresses(&slots, &[address("0.0.0.0:9090")]);
        assert_eq!(choice, Ok(Choice::Take(1)));
    }

    #[test]
    fn bind_refuses_a_socket_of_the_wrong_kind_naming_its_fd() {
        let slots = [taken(tcp(3, "[::]:8080")), udp(4, "0.0.0.0:53")];
        let refusal = for_addresses(&slots, &[address("0.0.0.0:9090")]).unwrap_err();
        assert_eq!(refusal, Refusal::WrongKind(slots[1].clone()));
        let message = refusal.to_string();
        assert!(message.contains("fd 4"), "{message}");
        assert!(message.contains("UDP"), "{message}");
        assert!(message.contains("listening TCP socket"), "{message}");
    }

    #[test]
    fn bind_refuses_an_accepted_connection() {
        let connection = Slot {
            fd: 3,
            name: None,
            kind: Kind::TcpConnection(address("127.0.0.1:8080")),
            taken: false,
        };
        let refusal = for_addresses(&[connection], &[address("127.0.0.1:8080")]).unwrap_err();
        let message = refusal.to_string();
        assert!(message.contains("fd 3"), "{message}");
        assert!(message.contains("Accept=yes"), "{message}");
    }

    #[test]
    fn bind_named_takes_the_socket_of_that_name() {
        let slots = [
            named(tcp(3, "127.0.0.1:8080"), "web"),
            named(tcp(4, "127.0.0.1:9000"), "admin"),
        ];
        let any = [address("0.0.0.0:1")];
        assert_eq!(for_name(&slots, "admin", &any), Ok(1));
        assert_eq!(for_name(&slots, "web", &any), Ok(0));
    }

    #[test]
    fn bind_named_picks_by_address_among_sockets_sharing_a_name() {
        let slots = [
            named(tcp(3, "127.0.0.1:8080"), "web"),
            named(tcp(4, "[::1]:8080"), "web"),
        ];
        assert_eq!(for_name(&slots, "web", &[address("[::1]:8080")]), Ok(1));
    }

    #[test]
    fn bind_named_refuses_a_missing_name_listing_what_was_passed() {
        let slots = [
            named(tcp(3, "127.0.0.1:8080"), "web"),
            named(udp(4, "0.0.0.0:53"), "dns"),
        ];
        let refusal = for_name(&slots, "admin", &[address("127.0.0.1:9000")]).unwrap_err();
        let message = refusal.to_string();
        assert!(message.contains("no socket named \"admin\""), "{message}");
        assert!(message.contains("fd 3 \"web\""), "{message}");
        assert!(message.contains("fd 4 \"dns\""), "{message}");
        assert!(message.contains("FileDescriptorName=admin"), "{message}");
    }

    #[test]
    fn bind_named_refuses_when_no_socket_has_names() {
        let slots = [tcp(3, "127.0.0.1:8080")];
        let refusal = for_name(&slots, "web", &[address("127.0.0.1:8080")]).unwrap_err();
        assert!(matches!(refusal, Refusal::NoSuchName { .. }), "{refusal}");
    }

    #[test]
    fn bind_named_refuses_a_name_on_the_wrong_kind_of_socket() {
        let slots = [named(udp(3, "0.0.0.0:53"), "web")];
        let refusal = for_name(&slots, "web", &[address("0.0.0.0:53")]).unwrap_err();
        assert_eq!(refusal, Refusal::WrongKind(slots[0].clone()));
    }

    #[test]
    fn bind_named_refuses_a_name_already_taken() {
        let slots = [taken(named(tcp(3, "127.0.0.1:8080"), "web"))];
        let refusal = for_name(&slots, "web", &[address("127.0.0.1:8080")]).unwrap_err();
        assert_eq!(
            refusal,
            Refusal::NameTaken {
                name: "web".to_owned(),
                fds: vec![3],
            }
        );
    }
}
