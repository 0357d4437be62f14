//! What `serve` accepts connections from: a TCP or Unix listener, or any listener of your own
//! that implements [`Listener`].

use std::future::Future;
use std::io;

use tokio::io::{AsyncRead, AsyncWrite};

/// A source of connections for [`serve`](fn@crate::serve).
///
/// Implemented for tokio's `TcpListener` and (on Unix) `UnixListener`. For HTTPS, do not make
/// a TLS acceptor a `Listener`: its handshake would run in the accept loop, where one client
/// that stalls mid-handshake stops every other from being accepted, and through a shutdown.
/// Use `serve(listener, app).tls(config)` (feature `tls`) on the TCP listener instead: each
/// handshake runs in its connection's own task, under a timeout.
///
/// ```
/// # use graceful_runtime as graceful;
/// # async fn example() -> std::io::Result<()> {
/// use graceful::Listener;
///
/// let mut listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let address = listener.local_addr()?;
/// let _client = tokio::net::TcpStream::connect(address).await?;
/// let (_stream, _peer) = Listener::accept(&mut listener).await?;
/// # Ok(())
/// # }
/// ```
pub trait Listener: Send + 'static {
    /// An accepted connection, read and written by hyper.
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// The peer's address, as the listener reports it at accept.
    type Addr: std::fmt::Debug + Send + 'static;

    /// Accepts the next connection. Must be cancel-safe, as tokio's `accept` is: `serve`
    /// polls it once more at stop-accepting to take the connections already queued.
    fn accept(&mut self) -> impl Future<Output = io::Result<(Self::Io, Self::Addr)>> + Send;

    /// Prepares an accepted connection; for TCP, sets `TCP_NODELAY` as asked.
    fn prepare(io: &Self::Io, nodelay: bool) -> io::Result<()> {
        let _ = (io, nodelay);
        Ok(())
    }

    /// At stop-accepting: takes, without waiting, the connections the kernel has already
    /// queued, and closes the listener. Their clients have a request on the way; closing the
    /// listener with them still queued would reset them. The default takes none.
    fn accept_queued(self) -> Vec<(Self::Io, Self::Addr)>
    where
        Self: Sized,
    {
        Vec::new()
    }

    /// Whether the listening socket outlives this process (systemd socket activation): then
    /// `serve` leaves the connections still queued at stop-accepting to the next process
    /// instead of taking them.
    fn is_inherited(&self) -> bool {
        false
    }
}

impl Listener for tokio::net::TcpListener {
    type Io = tokio::net::TcpStream;
    type Addr = std::net::SocketAddr;

    fn accept(&mut self) -> impl Future<Output = io::Result<(Self::Io, Self::Addr)>> + Send {
        tokio::net::TcpListener::accept(self)
    }

    fn prepare(io: &Self::Io, nodelay: bool) -> io::Result<()> {
        io.set_nodelay(nodelay)
    }

    fn is_inherited(&self) -> bool {
        crate::bind::is_inherited(self)
    }

    fn accept_queued(self) -> Vec<(Self::Io, Self::Addr)> {
        // Through the std listener: tokio's accept sees only the readiness its driver has
        // already polled, and a connection that arrived just now may not be in it yet.
        let Ok(listener) = self.into_std() else {
            return Vec::new();
        };
        take_queued(
            || listener.accept(),
            |stream| {
                stream.set_nonblocking(true)?;
                tokio::net::TcpStream::from_std(stream)
            },
        )
    }
}

#[cfg(unix)]
impl Listener for tokio::net::UnixListener {
    type Io = tokio::net::UnixStream;
    type Addr = tokio::net::unix::SocketAddr;

    fn accept(&mut self) -> impl Future<Output = io::Result<(Self::Io, Self::Addr)>> + Send {
        tokio::net::UnixListener::accept(self)
    }

    fn accept_queued(self) -> Vec<(Self::Io, Self::Addr)> {
        let Ok(listener) = self.into_std() else {
            return Vec::new();
        };
        take_queued(
            || {
                let (stream, _) = listener.accept()?;
                // The peer's address as tokio gives it: a std address cannot be converted.
                let stream = {
                    stream.set_nonblocking(true)?;
                    tokio::net::UnixStream::from_std(stream)?
                };
                let peer = stream.peer_addr()?;
                Ok((stream, peer))
            },
            Ok,
        )
    }
}

/// Accepts until the queue is empty (`WouldBlock`), converting each connection; a connection
/// that fails on its own is skipped, any other error ends the loop.
fn take_queued<Std, Io, Addr>(
    mut accept: impl FnMut() -> io::Result<(Std, Addr)>,
    mut convert: impl FnMut(Std) -> io::Result<Io>,
) -> Vec<(Io, Addr)> {
    let mut queued = Vec::new();
    loop {
        match accept() {
            Ok((stream, peer)) => {
                if let Ok(io) = convert(stream) {
                    queued.push((io, peer));
                }
            }
            Err(error) if super::is_about_one_connection(&error) => {}
            Err(_) => return queued,
        }
    }
}
