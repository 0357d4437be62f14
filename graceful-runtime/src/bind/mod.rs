//! systemd socket activation for listeners: `graceful::bind` hands out the TCP socket systemd
//! passed for an address (`LISTEN_FDS`), or binds the address itself when nothing was passed.
//! Which socket it takes is the one rule of `select::choose`.
//!
//! The `LISTEN_*` variables are read once, before the runtime and the signal thread start
//! (listenfd removes them from the environment, which is a race once other threads exist), and
//! every passed socket is adopted at that moment and kept here until asked for.

use std::io;
use std::net::SocketAddr;
use std::sync::{Mutex, OnceLock};

use tokio::net::{TcpListener, ToSocketAddrs};

use adopt::EnvironmentError;
use inherited::{Inherited, Taken};

use crate::log::event;
use crate::sync::lock;

#[cfg(unix)]
mod adopt;
#[cfg(unix)]
mod environment;
#[cfg(all(unix, feature = "upgrade"))]
pub(crate) mod handout;
mod inherited;
mod select;

/// Off Unix there is no socket activation: nothing is passed, and nothing read is malformed.
#[cfg(not(unix))]
mod adopt {
    pub(super) type EnvironmentError = std::convert::Infallible;

    pub(super) fn from_environment() -> Result<super::Inherited, EnvironmentError> {
        Ok(super::Inherited::default())
    }

    /// Never compared with anything: no socket was passed.
    #[cfg(feature = "serve")]
    pub(super) fn fd_number(_listener: &tokio::net::TcpListener) -> i32 {
        -1
    }
}

/// The sockets passed to this process, adopted once; `Err` when the variables were malformed,
/// which every later call reports again.
static INHERITED: OnceLock<Result<Mutex<Inherited>, EnvironmentError>> = OnceLock::new();

/// Reads the `LISTEN_*` variables once and adopts the sockets they name. `Builder::run` calls it
/// first thing, while the process has one thread; `bind` calls it too for code without the
/// builder.
pub(crate) fn read_environment() -> Result<(), EnvironmentError> {
    inherited().map(|_| ()).map_err(Clone::clone)
}

fn inherited() -> Result<&'static Mutex<Inherited>, &'static EnvironmentError> {
    INHERITED
        .get_or_init(|| adopt::from_environment().map(Mutex::new))
        .as_ref()
}

/// See `graceful::bind`.
pub(crate) async fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
    take_or_bind(None, addr).await
}

/// See `graceful::bind_named`.
pub(crate) async fn bind_named(name: &str, addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
    take_or_bind(Some(name), addr).await
}

async fn take_or_bind(name: Option<&str>, addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
    let inherited = inherited()
        .map_err(|malformed| io::Error::new(io::ErrorKind::InvalidInput, malformed.to_string()))?;
    // An address that does not resolve matches no passed socket, but the rule may still take
    // the one left; only binding it here fails.
    let resolved: io::Result<Vec<SocketAddr>> =
        tokio::net::lookup_host(addr).await.map(Iterator::collect);
    let asked = resolved.as_deref().unwrap_or_default();
    let call = match name {
        Some(name) => format!("bind_named({name:?})"),
        None => format!("bind({})", select::describe_addresses(asked)),
    };
    let taken = lock(inherited).take(name, asked).map_err(|refused| {
        io::Error::new(
            refused.kind(),
            format!("socket activation: {call}: {refused}"),
        )
    })?;
    // The name an upgrade passes it on under: the one asked for, else systemd's.
    let (listener, _passed_name) = match taken {
        Taken::Passed {
            socket,
            listener,
            on_address,
        } => {
            let listener = TcpListener::from_std(listener)?;
            if on_address {
                event!(
                    Info,
                    "{call}: adopted the socket systemd passed as {socket}"
                );
            } else {
                event!(
                    Warn,
                    "{call}: adopted the socket systemd passed as {socket}, the only one left, though none listens on {}",
                    select::describe_addresses(asked)
                );
            }
            (listener, socket.name)
        }
        Taken::BindHere(why) => {
            let listener = TcpListener::bind(&resolved?[..]).await?;
            let local = listener.local_addr()?;
            event!(Info, "bind: listening on {local} (bound here: {why})");
            (listener, None)
        }
    };
    #[cfg(all(unix, feature = "upgrade"))]
    if handout::enabled() {
        handout::record(
            name.or(_passed_name.as_deref()).unwrap_or(handout::UNNAMED),
            &listener,
            listener.local_addr()?,
        );
    }
    Ok(listener)
}

/// The health port's socket passed by the process this one upgrades, if it listens on
/// `address`. Every socket of that name is taken, so that none is left for `bind` to pick:
/// one on another address (the health address changed) is closed.
#[cfg(all(unix, feature = "upgrade"))]
pub(crate) fn take_health(address: Option<SocketAddr>) -> Option<std::net::TcpListener> {
    // A malformed environment is reported by `read_environment`, first thing at start-up.
    let inherited = inherited().ok()?;
    let mut found = None;
    for (socket, listener) in lock(inherited).take_all_named(handout::HEALTH_NAME) {
        match address {
            Some(address) if socket.kind == select::Kind::TcpListener(address) => {
                found = Some(listener);
            }
            _ => event!(
                Info,
                "health port: closing the socket passed as {socket}: the health port is {}",
                address.map_or("off".to_owned(), |address| format!("on {address} now"))
            ),
        }
    }
    found
}

/// Whether the socket of `listener` outlives this process: one of the sockets systemd passed,
/// or, once an upgrade has handed over, one the new process has too. Never reads the
/// environment.
#[cfg(feature = "serve")]
pub(crate) fn is_inherited(listener: &TcpListener) -> bool {
    let Ok(local) = listener.local_addr() else {
        return false;
    };
    let fd = adopt::fd_number(listener);
    #[cfg(all(unix, feature = "upgrade"))]
    if crate::upgrade::handed_over() && handout::holds(fd, local) {
        return true;
    }
    let Some(Ok(inherited)) = INHERITED.get() else {
        return false;
    };
    lock(inherited).holds(fd, local)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_futures_are_send() {
        fn send<T: Send>(_: T) {}
        send(bind("127.0.0.1:0"));
        send(bind_named("web", "127.0.0.1:0"));
    }
}
