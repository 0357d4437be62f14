//! The rule for which passed socket `bind` and `bind_named` take, as a pure choice over a
//! description of the sockets, so that every case is tested without a socket.

use std::fmt;
use std::io;
use std::net::SocketAddr;

/// What a passed file descriptor is, as far as `bind` cares.
#[derive(Debug, Clone, PartialEq, Eq)]
// Off Unix nothing is passed, and only adoption, which is Unix's, finds the other kinds.
#[cfg_attr(not(unix), allow(dead_code))]
pub(crate) enum Kind {
    /// The one kind `bind` hands out.
    TcpListener(SocketAddr),
    /// One connection, as `Accept=yes` passes.
    TcpConnection(SocketAddr),
    /// Anything else (UDP, Unix, a FIFO...), with listenfd's reason for refusing it as TCP.
    Other(String),
}

/// One passed file descriptor.
#[derive(Debug, Clone)]
pub(crate) struct Socket {
    pub(crate) fd: i32,
    /// Its `FileDescriptorName=`, from `LISTEN_FDNAMES`.
    pub(crate) name: Option<String>,
    pub(crate) kind: Kind,
    /// Handed out by an earlier call.
    pub(crate) taken: bool,
}

impl fmt::Display for Socket {
    /// `fd 3 "web", a listening TCP socket on 127.0.0.1:8080`, as logs and errors list it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "fd {}", self.fd)?;
        if let Some(name) = &self.name {
            write!(f, " {name:?}")?;
        }
        match &self.kind {
            Kind::TcpListener(local) => write!(f, ", a listening TCP socket on {local}")?,
            Kind::TcpConnection(local) => {
                write!(f, ", a connected TCP socket on {local} (Accept=yes)")?;
            }
            Kind::Other(reason) => write!(f, ", not a socket graceful can use ({reason})")?,
        }
        if self.taken {
            f.write_str(", taken")?;
        }
        Ok(())
    }
}

/// What `bind` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Choice {
    /// Take the socket at this index: it listens on the address asked for.
    OnAddress(usize),
    /// Take the socket at this index: none listens on the address asked for, and this is the
    /// one untaken listener.
    OnlyListener(usize),
    /// Bind the address here: nothing was passed, or `bind` has taken every passed socket.
    BindHere,
}

/// The rule of `bind(addresses)`, over every passed socket, and of `bind_named(name, addresses)`,
/// over the sockets of that name:
/// 1. take the untaken TCP listener on one of `addresses` (see `same_address`);
/// 2. else, when exactly one untaken TCP listener is left, take it (the caller logs both
///    addresses);
/// 3. else fail, listing what was passed.
///
/// When nothing was passed, or `bind` finds every passed socket taken, it binds the address
/// itself. `bind_named` never does once sockets were passed: a name that no socket has, or
/// whose sockets are all taken, is an error rather than a bind of a port systemd may hold.
pub(crate) fn choose(
    sockets: &[Socket],
    name: Option<&str>,
    addresses: &[SocketAddr],
) -> io::Result<Choice> {
    if sockets.is_empty() {
        return Ok(Choice::BindHere);
    }
    let candidates: Vec<(usize, &Socket)> = sockets
        .iter()
        .enumerate()
        .filter(|(_, socket)| name.is_none() || socket.name.as_deref() == name)
        .collect();
    let listeners: Vec<(usize, SocketAddr)> = candidates
        .iter()
        .filter_map(|&(index, socket)| match socket.kind {
            Kind::TcpListener(local) if !socket.taken => Some((index, local)),
            _ => None,
        })
        .collect();
    let on_address = listeners
        .iter()
        .find(|&&(_, local)| addresses.iter().any(|&wanted| same_address(local, wanted)));
    if let Some(&(index, _)) = on_address {
        return Ok(Choice::OnAddress(index));
    }
    if let [(index, _)] = listeners[..] {
        return Ok(Choice::OnlyListener(index));
    }
    let all_taken = candidates.iter().all(|(_, socket)| socket.taken);
    let passed = list(sockets, "; ");
    let (kind, message) = match name {
        None if all_taken => return Ok(Choice::BindHere),
        Some(name) if candidates.is_empty() => (
            io::ErrorKind::NotFound,
            format!("systemd passed no socket named {name:?} ({passed}); set FileDescriptorName={name} in the .socket unit, or ask for one of the names above"),
        ),
        Some(name) if all_taken => (
            io::ErrorKind::AddrInUse,
            format!("the socket(s) systemd passed as {name:?} were all taken by earlier calls ({passed}); call bind_named({name:?}, ..) once per socket"),
        ),
        _ => {
            let named = name.map(|name| format!(" named {name:?}")).unwrap_or_default();
            let message = match listeners.len() {
                0 => format!("systemd passed no untaken listening TCP socket{named} ({passed}); graceful::bind needs one: ListenStream= with a port, and Accept=no, in the .socket unit"),
                count => format!("none of the {count} untaken listening TCP sockets{named} systemd passed is on {} ({passed}); ask for one of their addresses", describe_addresses(addresses)),
            };
            (io::ErrorKind::InvalidInput, message)
        }
    };
    Err(io::Error::new(kind, message))
}

/// `local` is `wanted`: the same port, and the same IP, an IPv4-mapped IPv6 address counting as
/// its IPv4 address and every wildcard as every other (systemd listens on `[::]:8080` for
/// `ListenStream=8080`, where a service asks for `0.0.0.0:8080`). A wildcard on one side only
/// is another address: the service would listen on more, or fewer, interfaces than it asked.
fn same_address(local: SocketAddr, wanted: SocketAddr) -> bool {
    let ip = |address: SocketAddr| {
        let ip = address.ip().to_canonical();
        (!ip.is_unspecified()).then_some(ip)
    };
    local.port() == wanted.port() && ip(local) == ip(wanted)
}

/// The addresses a call asked for, as its log lines and errors name them.
pub(crate) fn describe_addresses(addresses: &[SocketAddr]) -> String {
    if addresses.is_empty() {
        "an address that does not resolve".to_owned()
    } else {
        list(addresses, ", ")
    }
}

/// `items` as one line, `separator` between them.
pub(crate) fn list<T: fmt::Display>(items: &[T], separator: &str) -> String {
    let items: Vec<String> = items.iter().map(ToString::to_string).collect();
    items.join(separator)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    fn tcp(fd: i32, local: &str) -> Socket {
        socket(fd, Kind::TcpListener(address(local)))
    }

    fn socket(fd: i32, kind: Kind) -> Socket {
        Socket {
            fd,
            name: None,
            kind,
            taken: false,
        }
    }

    /// A UDP socket, as listenfd refuses it.
    fn udp(fd: i32) -> Socket {
        socket(
            fd,
            Kind::Other(format!("fd {fd} is not a valid tcp socket")),
        )
    }

    fn named(mut socket: Socket, name: &str) -> Socket {
        socket.name = Some(name.to_owned());
        socket
    }

    fn taken(mut socket: Socket) -> Socket {
        socket.taken = true;
        socket
    }

    fn bind(sockets: &[Socket], wanted: &str) -> io::Result<Choice> {
        choose(sockets, None, &[address(wanted)])
    }

    fn refused(choice: io::Result<Choice>, kind: io::ErrorKind) -> String {
        let error = choice.unwrap_err();
        assert_eq!(error.kind(), kind, "{error}");
        error.to_string()
    }

    #[test]
    fn bind_takes_the_socket_on_the_asked_address() {
        let sockets = [tcp(3, "127.0.0.1:9000"), tcp(4, "127.0.0.1:8080")];
        let choice = bind(&sockets, "127.0.0.1:8080");
        assert_eq!(choice.unwrap(), Choice::OnAddress(1));
    }

    #[test]
    fn bind_matches_any_resolved_address() {
        let sockets = [tcp(3, "127.0.0.1:9000"), tcp(4, "[::1]:8080")];
        let resolved = [address("127.0.0.1:8080"), address("[::1]:8080")];
        let choice = choose(&sockets, None, &resolved);
        assert_eq!(choice.unwrap(), Choice::OnAddress(1));
    }

    #[test]
    fn bind_matches_wildcards_across_families() {
        let sockets = [tcp(3, "127.0.0.1:9000"), tcp(4, "[::]:8080")];
        let choice = bind(&sockets, "0.0.0.0:8080");
        assert_eq!(choice.unwrap(), Choice::OnAddress(1));
    }

    #[test]
    fn bind_matches_ipv4_mapped_addresses() {
        let sockets = [tcp(3, "127.0.0.1:9000"), tcp(4, "[::ffff:127.0.0.1]:8080")];
        let choice = bind(&sockets, "127.0.0.1:8080");
        assert_eq!(choice.unwrap(), Choice::OnAddress(1));
    }

    #[test]
    fn bind_counts_a_wildcard_on_one_side_as_another_address() {
        let sockets = [tcp(3, "127.0.0.1:9000"), tcp(4, "[::]:8080")];
        refused(
            bind(&sockets, "127.0.0.1:8080"),
            io::ErrorKind::InvalidInput,
        );
        let sockets = [tcp(3, "127.0.0.1:9000"), tcp(4, "127.0.0.1:8080")];
        refused(bind(&sockets, "0.0.0.0:8080"), io::ErrorKind::InvalidInput);
        // Alone, it is the one left.
        let sockets = [tcp(3, "[::]:8080")];
        let choice = bind(&sockets, "127.0.0.1:8080");
        assert_eq!(choice.unwrap(), Choice::OnlyListener(0));
    }

    #[test]
    fn bind_prefers_an_exact_match_over_a_wildcard_one() {
        let sockets = [tcp(3, "[::]:8080"), tcp(4, "127.0.0.1:8080")];
        let choice = bind(&sockets, "127.0.0.1:8080");
        assert_eq!(choice.unwrap(), Choice::OnAddress(1));
    }

    #[test]
    fn bind_without_a_match_takes_the_one_untaken_listener() {
        let sockets = [taken(tcp(3, "127.0.0.1:9000")), tcp(4, "127.0.0.1:9001")];
        let choice = bind(&sockets, "127.0.0.1:8080");
        assert_eq!(choice.unwrap(), Choice::OnlyListener(1));
    }

    #[test]
    fn bind_without_a_match_among_several_listeners_refuses_listing_them() {
        // Before, this took fd 3: a socket on another port, silently.
        let sockets = [tcp(3, "127.0.0.1:8080"), tcp(4, "127.0.0.1:8081")];
        let message = refused(
            bind(&sockets, "127.0.0.1:9000"),
            io::ErrorKind::InvalidInput,
        );
        assert!(
            message.contains(
                "none of the 2 untaken listening TCP sockets systemd passed is on 127.0.0.1:9000"
            ),
            "{message}"
        );
        assert!(message.contains("fd 3, a listening TCP socket on 127.0.0.1:8080; fd 4, a listening TCP socket on 127.0.0.1:8081"), "{message}");
    }

    #[test]
    fn bind_port_zero_matches_nothing() {
        let sockets = [tcp(3, "127.0.0.1:9000"), tcp(4, "[::]:9001")];
        refused(bind(&sockets, "0.0.0.0:0"), io::ErrorKind::InvalidInput);
        let choice = bind(&sockets[1..], "0.0.0.0:0");
        assert_eq!(choice.unwrap(), Choice::OnlyListener(0));
    }

    #[test]
    fn bind_of_an_address_that_does_not_resolve_takes_only_the_one_left() {
        let sockets = [tcp(3, "127.0.0.1:9000")];
        assert_eq!(
            choose(&sockets, None, &[]).unwrap(),
            Choice::OnlyListener(0)
        );
        let sockets = [tcp(3, "127.0.0.1:9000"), tcp(4, "127.0.0.1:9001")];
        let message = refused(choose(&sockets, None, &[]), io::ErrorKind::InvalidInput);
        assert!(
            message.contains("an address that does not resolve"),
            "{message}"
        );
    }

    #[test]
    fn bind_never_takes_a_socket_twice() {
        let sockets = [taken(tcp(3, "127.0.0.1:8080")), tcp(4, "127.0.0.1:9000")];
        let choice = bind(&sockets, "127.0.0.1:8080");
        assert_eq!(choice.unwrap(), Choice::OnlyListener(1));
    }

    #[test]
    fn bind_binds_itself_when_nothing_was_passed() {
        assert_eq!(bind(&[], "127.0.0.1:8080").unwrap(), Choice::BindHere);
    }

    #[test]
    fn bind_binds_itself_once_every_socket_is_taken() {
        let sockets = [taken(tcp(3, "127.0.0.1:8080"))];
        let choice = bind(&sockets, "127.0.0.1:9090");
        assert_eq!(choice.unwrap(), Choice::BindHere);
    }

    #[test]
    fn bind_skips_sockets_of_another_kind_while_a_listener_remains() {
        let sockets = [udp(3), tcp(4, "[::]:8080")];
        let choice = bind(&sockets, "0.0.0.0:9090");
        assert_eq!(choice.unwrap(), Choice::OnlyListener(1));
    }

    #[test]
    fn bind_refuses_a_socket_of_the_wrong_kind_naming_its_fd() {
        let sockets = [taken(tcp(3, "[::]:8080")), udp(4)];
        let message = refused(bind(&sockets, "0.0.0.0:9090"), io::ErrorKind::InvalidInput);
        assert!(
            message
                .contains("fd 4, not a socket graceful can use (fd 4 is not a valid tcp socket)"),
            "{message}"
        );
        assert!(message.contains("listening TCP socket"), "{message}");
        assert!(
            message.contains("fd 3, a listening TCP socket on [::]:8080, taken"),
            "{message}"
        );
    }

    #[test]
    fn bind_refuses_an_accepted_connection() {
        let connection = socket(3, Kind::TcpConnection(address("127.0.0.1:8080")));
        let message = refused(
            bind(&[connection], "127.0.0.1:8080"),
            io::ErrorKind::InvalidInput,
        );
        assert!(message.contains("fd 3"), "{message}");
        assert!(message.contains("Accept=yes"), "{message}");
    }

    #[test]
    fn bind_named_takes_the_socket_of_that_name() {
        let sockets = [
            named(tcp(3, "127.0.0.1:8080"), "web"),
            named(tcp(4, "127.0.0.1:9000"), "admin"),
        ];
        let any = [address("0.0.0.0:1")];
        let admin = choose(&sockets, Some("admin"), &any);
        assert_eq!(admin.unwrap(), Choice::OnlyListener(1));
        let web = choose(&sockets, Some("web"), &[address("127.0.0.1:8080")]);
        assert_eq!(web.unwrap(), Choice::OnAddress(0));
    }

    #[test]
    fn bind_named_picks_by_address_among_sockets_sharing_a_name() {
        let sockets = [
            named(tcp(3, "127.0.0.1:8080"), "web"),
            named(tcp(4, "[::1]:8080"), "web"),
        ];
        let choice = choose(&sockets, Some("web"), &[address("[::1]:8080")]);
        assert_eq!(choice.unwrap(), Choice::OnAddress(1));
        let elsewhere = choose(&sockets, Some("web"), &[address("127.0.0.1:9000")]);
        let message = refused(elsewhere, io::ErrorKind::InvalidInput);
        assert!(message.contains("sockets named \"web\""), "{message}");
    }

    #[test]
    fn bind_named_binds_itself_when_nothing_was_passed() {
        let choice = choose(&[], Some("web"), &[address("127.0.0.1:8080")]);
        assert_eq!(choice.unwrap(), Choice::BindHere);
    }

    #[test]
    fn bind_named_refuses_a_missing_name_listing_what_was_passed() {
        let sockets = [named(tcp(3, "127.0.0.1:8080"), "web"), named(udp(4), "dns")];
        let choice = choose(&sockets, Some("admin"), &[address("127.0.0.1:9000")]);
        let message = refused(choice, io::ErrorKind::NotFound);
        assert!(message.contains("no socket named \"admin\""), "{message}");
        assert!(message.contains("fd 3 \"web\""), "{message}");
        assert!(message.contains("fd 4 \"dns\""), "{message}");
        assert!(message.contains("FileDescriptorName=admin"), "{message}");
    }

    #[test]
    fn bind_named_refuses_when_no_socket_has_names() {
        let sockets = [tcp(3, "127.0.0.1:8080")];
        let choice = choose(&sockets, Some("web"), &[address("127.0.0.1:8080")]);
        refused(choice, io::ErrorKind::NotFound);
    }

    #[test]
    fn bind_named_refuses_a_name_on_the_wrong_kind_of_socket() {
        let sockets = [named(udp(3), "web")];
        let choice = choose(&sockets, Some("web"), &[address("0.0.0.0:53")]);
        let message = refused(choice, io::ErrorKind::InvalidInput);
        assert!(
            message.contains("fd 3 \"web\", not a socket graceful can use"),
            "{message}"
        );
    }

    #[test]
    fn bind_named_refuses_a_name_already_taken() {
        let sockets = [taken(named(tcp(3, "127.0.0.1:8080"), "web"))];
        let choice = choose(&sockets, Some("web"), &[address("127.0.0.1:8080")]);
        let message = refused(choice, io::ErrorKind::AddrInUse);
        assert!(message.contains("\"web\" were all taken"), "{message}");
        assert!(message.contains("fd 3 \"web\""), "{message}");
    }
}
