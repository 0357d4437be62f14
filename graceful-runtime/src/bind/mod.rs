//! systemd socket activation for listeners: `graceful::bind` hands out the TCP socket systemd
//! passed for an address (`LISTEN_FDS`), or binds the address itself when nothing was passed.
//!
//! The `LISTEN_*` variables are read once, before the runtime and the signal thread start
//! (listenfd removes them from the environment, which is a race once other threads exist), and
//! every passed socket is adopted at that moment and kept here until asked for.

use std::io;

use tokio::net::{TcpListener, ToSocketAddrs};

use crate::log::event;

#[cfg(unix)]
mod adopt;
#[cfg(unix)]
mod environment;
#[cfg(unix)]
mod select;

#[cfg(all(unix, feature = "serve"))]
pub(crate) use inherited::is_inherited;
#[cfg(unix)]
pub(crate) use inherited::{bind, bind_named, read_environment};

/// The error of a malformed `LISTEN_*` variable; none off Unix, where nothing is read.
#[cfg(not(unix))]
pub(crate) type EnvironmentError = std::convert::Infallible;

/// Off Unix there is no socket activation: nothing to read.
#[cfg(not(unix))]
pub(crate) fn read_environment() -> Result<(), EnvironmentError> {
    Ok(())
}

/// Off Unix there is no socket activation: binds `addr`.
#[cfg(not(unix))]
pub(crate) async fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
    bind_here(addr, "no socket activation on this platform").await
}

/// Off Unix there is no socket activation: binds `addr`.
#[cfg(not(unix))]
pub(crate) async fn bind_named(_name: &str, addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
    bind_here(addr, "no socket activation on this platform").await
}

/// Off Unix no listener is inherited.
#[cfg(all(not(unix), feature = "serve"))]
pub(crate) fn is_inherited(_listener: &TcpListener) -> bool {
    false
}

/// Binds `addr` in this process, and says so.
async fn bind_here(addr: impl ToSocketAddrs, why: &str) -> io::Result<TcpListener> {
    let listener = TcpListener::bind(addr).await?;
    match listener.local_addr() {
        Ok(local) => event!(Info, "bind: listening on {local} (bound here: {why})"),
        Err(_) => event!(Info, "bind: listening (bound here: {why})"),
    }
    Ok(listener)
}

#[cfg(unix)]
mod inherited {
    use std::fmt;
    use std::io;
    use std::net::SocketAddr;
    use std::sync::{Mutex, OnceLock};

    use tokio::net::{TcpListener, ToSocketAddrs};

    use super::adopt::{adopt_all, Held};
    use super::bind_here;
    use super::environment::{self, EnvironmentError, Passed};
    use super::select::{self, Choice, Refusal, Slot};
    use crate::log::event;
    use crate::sync::lock;

    /// The sockets passed to this process, adopted once; `Err` when the variables were
    /// malformed, which every later call reports again.
    static INHERITED: OnceLock<Result<Mutex<Inherited>, EnvironmentError>> = OnceLock::new();

    /// The sockets systemd passed, and which of them were handed out.
    #[derive(Debug, Default)]
    struct Inherited {
        slots: Vec<Slot>,
        /// Beside `slots`: the socket itself, until handed out.
        held: Vec<Option<Held>>,
    }

    impl Inherited {
        /// Reads the variables and adopts what they name, logging what was found.
        fn from_environment() -> Result<Inherited, EnvironmentError> {
            let own_pid = std::process::id();
            match environment::from_process(own_pid)? {
                Passed::Nothing => Ok(Inherited::default()),
                Passed::NotOurs {
                    listen_pid,
                    listen_fds,
                } => {
                    event!(
                        Warn,
                        "socket activation: LISTEN_PID={listen_pid} names another process (this one is {own_pid}): the sockets of LISTEN_FDS={listen_fds} are not ours; ignoring them, graceful::bind binds its addresses itself"
                    );
                    Ok(Inherited::default())
                }
                Passed::Sockets { first_fd, names } => {
                    let (slots, held) = adopt_all(first_fd, names).into_iter().unzip();
                    let inherited = Inherited { slots, held };
                    event!(
                        Info,
                        "socket activation: systemd passed {} socket(s): {}",
                        inherited.slots.len(),
                        Joined(&inherited.slots, "; ")
                    );
                    Ok(inherited)
                }
            }
        }

        /// Takes the socket for `bind`; `None` when all were taken.
        fn take_for_addresses(
            &mut self,
            addresses: &[SocketAddr],
        ) -> io::Result<Option<(Slot, std::net::TcpListener)>> {
            match select::for_addresses(&self.slots, addresses).map_err(refused)? {
                Choice::Take(index) => self.take(index).map(Some),
                Choice::Bind => Ok(None),
            }
        }

        /// Takes the socket named `name` for `bind_named`.
        fn take_named(
            &mut self,
            name: &str,
            addresses: &[SocketAddr],
        ) -> io::Result<(Slot, std::net::TcpListener)> {
            let index = select::for_name(&self.slots, name, addresses).map_err(refused)?;
            self.take(index)
        }

        /// Hands out the TCP listener at `index`, non-blocking as tokio needs it; on an error
        /// it stays here.
        fn take(&mut self, index: usize) -> io::Result<(Slot, std::net::TcpListener)> {
            let listener = match self.held[index].take() {
                Some(Held::Tcp(listener)) => listener,
                other => {
                    // `select` picks only untaken TCP listeners, all held as `Tcp`.
                    self.held[index] = other;
                    return Err(io::Error::other(format!(
                        "socket activation: {} is no longer held",
                        self.slots[index]
                    )));
                }
            };
            if let Err(error) = listener.set_nonblocking(true) {
                self.held[index] = Some(Held::Tcp(listener));
                return Err(error);
            }
            self.slots[index].taken = true;
            Ok((self.slots[index].clone(), listener))
        }

        /// Whether `fd`, listening on `local`, is one of the passed sockets.
        #[cfg(feature = "serve")]
        fn holds(&self, fd: i32, local: SocketAddr) -> bool {
            self.slots.iter().any(|slot| {
                // The address too: a socket handed out and dropped frees its fd number for
                // a socket of the service's own.
                slot.fd == fd && slot.kind == select::Kind::TcpListener(local)
            })
        }
    }

    /// Items as one line of a log, `separator` between them.
    struct Joined<'a, T>(&'a [T], &'static str);

    impl<T: fmt::Display> fmt::Display for Joined<'_, T> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            for (index, item) in self.0.iter().enumerate() {
                if index > 0 {
                    f.write_str(self.1)?;
                }
                write!(f, "{item}")?;
            }
            Ok(())
        }
    }

    fn refused(refusal: Refusal) -> io::Error {
        let kind = match refusal {
            Refusal::WrongKind(_) => io::ErrorKind::InvalidInput,
            Refusal::NoSuchName { .. } => io::ErrorKind::NotFound,
            Refusal::NameTaken { .. } => io::ErrorKind::AddrInUse,
        };
        io::Error::new(kind, format!("socket activation: {refusal}"))
    }

    /// Reads the `LISTEN_*` variables once and adopts the sockets they name. `Builder::run`
    /// calls it first thing, while the process has one thread; `bind` calls it too for code
    /// without the builder.
    pub(crate) fn read_environment() -> Result<(), EnvironmentError> {
        inherited().map(|_| ()).map_err(Clone::clone)
    }

    fn inherited() -> Result<&'static Mutex<Inherited>, &'static EnvironmentError> {
        INHERITED
            .get_or_init(|| Inherited::from_environment().map(Mutex::new))
            .as_ref()
    }

    /// The passed sockets, reading the environment now if nothing has; a malformed variable
    /// is an error of every `bind`.
    fn passed() -> io::Result<&'static Mutex<Inherited>> {
        inherited().map_err(|error| io::Error::new(io::ErrorKind::InvalidInput, error.clone()))
    }

    /// See `graceful::bind`.
    pub(crate) async fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        let inherited = passed()?;
        if lock(inherited).slots.is_empty() {
            return bind_here(addr, "systemd passed no sockets to this process").await;
        }
        let resolved = resolve(addr).await;
        let addresses = resolved.as_deref().unwrap_or_default();
        if let Err(error) = &resolved {
            event!(
                Warn,
                "bind: cannot resolve the address ({error}); taking the next socket systemd passed"
            );
        }
        let taken = lock(inherited).take_for_addresses(addresses)?;
        match taken {
            Some((slot, listener)) => hand_out(
                &format!("bind({})", Joined(addresses, ", ")),
                slot,
                listener,
            ),
            None => {
                bind_here(
                    &resolved?[..],
                    "every socket systemd passed is taken by an earlier bind",
                )
                .await
            }
        }
    }

    /// See `graceful::bind_named`.
    pub(crate) async fn bind_named(
        name: &str,
        addr: impl ToSocketAddrs,
    ) -> io::Result<TcpListener> {
        let inherited = passed()?;
        if lock(inherited).slots.is_empty() {
            return bind_here(addr, "systemd passed no sockets to this process").await;
        }
        // The address only breaks a tie between sockets sharing the name: unresolvable, the
        // name alone decides.
        let addresses = resolve(addr).await.unwrap_or_default();
        let (slot, listener) = lock(inherited).take_named(name, &addresses)?;
        hand_out(&format!("bind_named({name:?})"), slot, listener)
    }

    async fn resolve(addr: impl ToSocketAddrs) -> io::Result<Vec<SocketAddr>> {
        Ok(tokio::net::lookup_host(addr).await?.collect())
    }

    fn hand_out(
        call: &str,
        slot: Slot,
        listener: std::net::TcpListener,
    ) -> io::Result<TcpListener> {
        let listener = TcpListener::from_std(listener)?;
        event!(Info, "{call}: adopted the socket systemd passed as {slot}");
        Ok(listener)
    }

    /// Whether `listener` is one of the sockets systemd passed; never reads the environment.
    #[cfg(feature = "serve")]
    pub(crate) fn is_inherited(listener: &TcpListener) -> bool {
        let Some(Ok(inherited)) = INHERITED.get() else {
            return false;
        };
        let Ok(local) = listener.local_addr() else {
            return false;
        };
        let fd = std::os::fd::AsRawFd::as_raw_fd(listener);
        lock(inherited).holds(fd, local)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn one_listener(name: &str) -> (Inherited, SocketAddr) {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let local = listener.local_addr().unwrap();
            let slot = Slot {
                fd: std::os::fd::AsRawFd::as_raw_fd(&listener),
                name: Some(name.to_owned()),
                kind: select::Kind::TcpListener(local),
                taken: false,
            };
            let inherited = Inherited {
                slots: vec![slot],
                held: vec![Some(Held::Tcp(listener))],
            };
            (inherited, local)
        }

        #[test]
        fn a_taken_listener_is_non_blocking_and_taken_once() {
            let (mut inherited, local) = one_listener("web");
            let (slot, listener) = inherited.take_named("web", &[local]).unwrap();
            assert!(slot.taken);
            // Non-blocking: an empty queue answers at once instead of waiting.
            let error = listener.accept().unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::WouldBlock);
            let again = inherited.take_named("web", &[local]).unwrap_err();
            assert_eq!(again.kind(), io::ErrorKind::AddrInUse);
            assert_eq!(
                inherited
                    .take_for_addresses(&[local])
                    .unwrap()
                    .map(|(slot, _)| slot),
                None
            );
        }

        #[cfg(feature = "serve")]
        #[test]
        fn a_handed_out_listener_is_recognised_by_fd_and_address() {
            let (mut inherited, local) = one_listener("web");
            let (slot, listener) = inherited.take_for_addresses(&[local]).unwrap().unwrap();
            let fd = std::os::fd::AsRawFd::as_raw_fd(&listener);
            assert!(inherited.holds(fd, local));
            assert_eq!(slot.fd, fd);
            let elsewhere = SocketAddr::new(local.ip(), local.port().wrapping_add(1));
            assert!(!inherited.holds(fd, elsewhere));
        }

        #[test]
        fn bind_futures_are_send() {
            fn send<T: Send>(_: T) {}
            send(bind("127.0.0.1:0"));
            send(bind_named("web", "127.0.0.1:0"));
        }
    }
}
