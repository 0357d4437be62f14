//! Every listener graceful handed out (`bind`, `bind_named`, the health port), each with a
//! duplicate of its socket and the name it goes by, so that an upgrade can pass them all to the
//! new process as `LISTEN_FDS`, and `serve` knows whose queue to leave to it afterwards.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crate::log::event;
use crate::sync::lock;

/// The name the health port's socket is passed under.
pub(crate) const HEALTH_NAME: &str = "graceful-health";

/// The name of a socket without one: what sd_listen_fds_with_names(3) calls a socket passed
/// without `FileDescriptorName=`. `bind(addr)` in the new process picks by address, whatever the
/// name.
pub(crate) const UNNAMED: &str = "unknown";

/// One handed-out listener.
struct HandedOut {
    name: String,
    /// Kept open until shutdown begins, so that an upgrade can still pass a listener the
    /// application has dropped; `None` when it could not be duplicated.
    duplicate: Option<OwnedFd>,
    /// The listener's own fd and address, as `is_inherited` recognises it (for `serve`).
    #[cfg_attr(not(feature = "serve"), allow(dead_code))]
    fd: i32,
    local: SocketAddr,
}

static HANDED_OUT: Mutex<Vec<HandedOut>> = Mutex::new(Vec::new());

/// Set by `Builder::run`'s start-up: without it nothing runs upgrades (`bind` in a test, say), and
/// no listener is kept open behind the application's back.
static ENABLED: AtomicBool = AtomicBool::new(false);

/// Upgrades can run from now on: `bind` keeps what it hands out.
pub(crate) fn enable() {
    ENABLED.store(true, Ordering::Release);
}

/// Whether `bind` keeps what it hands out.
pub(crate) fn enabled() -> bool {
    ENABLED.load(Ordering::Acquire)
}

/// Records a listener handed out under `name`.
pub(crate) fn record(name: &str, listener: &(impl AsFd + AsRawFd), local: SocketAddr) {
    let duplicate = match listener.as_fd().try_clone_to_owned() {
        Ok(duplicate) => Some(duplicate),
        Err(error) => {
            event!(
                Warn,
                "cannot keep a duplicate of the listener on {local} for upgrades: {error}; an upgrade will fail"
            );
            None
        }
    };
    lock(&HANDED_OUT).push(HandedOut {
        name: name.to_owned(),
        duplicate,
        fd: listener.as_raw_fd(),
        local,
    });
}

/// A fresh duplicate of each listener, with its name and address, in the order they were
/// handed out: what the new process gets as fds 3 onward.
pub(crate) fn duplicates() -> Result<Vec<(String, SocketAddr, OwnedFd)>, String> {
    let handed_out = lock(&HANDED_OUT);
    handed_out
        .iter()
        .map(|listener| {
            if listener.name.contains(':') {
                return Err(format!(
                    "cannot pass the listener on {} named {:?}: LISTEN_FDNAMES separates names with ':'",
                    listener.local, listener.name
                ));
            }
            let duplicate = listener
                .duplicate
                .as_ref()
                .ok_or_else(|| io::Error::other("it could not be duplicated when handed out"))
                .and_then(|fd| fd.try_clone())
                .map_err(|error| {
                    format!("cannot pass the listener on {}: {error}", listener.local)
                })?;
            Ok((listener.name.clone(), listener.local, duplicate))
        })
        .collect()
}

/// Closes the duplicates: shutdown has begun, so no upgrade will need them, and a listener the
/// application closes must really close (clients are refused, not left in a queue nobody reads).
pub(crate) fn release() {
    for listener in lock(&HANDED_OUT).iter_mut() {
        listener.duplicate = None;
    }
}

/// Whether the listener with `fd`, on `local`, is one graceful handed out. The address too: a
/// listener dropped frees its fd number for another socket.
#[cfg(feature = "serve")]
pub(crate) fn holds(fd: i32, local: SocketAddr) -> bool {
    lock(&HANDED_OUT)
        .iter()
        .any(|listener| listener.fd == fd && listener.local == local)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_come_in_order_with_their_names_until_released() {
        let web = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let web_address = web.local_addr().unwrap();
        record("web-handout-test", &web, web_address);
        let passed = duplicates().unwrap();
        let (name, local, _fd) = passed
            .iter()
            .find(|(name, _, _)| name == "web-handout-test")
            .expect("recorded");
        assert_eq!((name.as_str(), *local), ("web-handout-test", web_address));
        #[cfg(feature = "serve")]
        assert!(holds(web.as_raw_fd(), web_address));
    }
}
