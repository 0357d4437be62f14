//! `graceful::serve`: an HTTP/1.1 and HTTP/2 server loop (hyper-util's `auto` builder) that is
//! right through a shutdown by default. From the start of shutdown it keeps accepting and
//! serving while it tells every client to go elsewhere (`Connection: close`, HTTP/2 GOAWAY);
//! at stop-accepting it takes the connections already queued, gives fresh ones a window to
//! send their request, and drops those that never will; each request counts in flight under
//! `http` until its response body ends, each connection under `http-conn`.

mod connection;
mod fd_budget;
mod header_timeout;
mod listener;
mod rpc_sites;
mod service;
#[cfg(feature = "tls")]
mod tls;

use std::future::{Future, IntoFuture};
use std::io;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::sync::Semaphore;

use crate::accept::AcceptErrors;
// `listener` takes the queued connections with the same test.
use crate::accept::is_about_one_connection;
use crate::inflight::SiteKind;
use crate::log::event;
use crate::sequence::Controller;
use connection::{ConnectionState, GracefulConnection, WatchedIo};
use header_timeout::HeaderTimeout;
pub use listener::Listener;
use rpc_sites::RpcSites;
use service::{ConnectionService, CountingService};
pub use service::{HyperService, IntoHttpService, TowerService};

/// Serves `service` on `listener` until stop-accepting, then until its connections are done.
///
/// `service` is a tower service (an axum `Router` as it is, tonic's `Routes`) or a hyper
/// service (`hyper::service::service_fn`). HTTP/1.1 and cleartext HTTP/2 (prior knowledge)
/// share the port; upgrades (WebSocket) and HTTP/2's extended CONNECT work.
///
/// What it does through a shutdown, by phase:
/// - **Pre-stop** (from the first signal): still accepts and serves everything. HTTP/1
///   responses carry `Connection: close` (never a `101 Switching Protocols`), so keep-alive
///   clients reconnect elsewhere on their next request; HTTP/2 connections get GOAWAY at once,
///   or after their first request.
/// - **Stop-accepting**: takes the connections already in the kernel's queue, then closes the
///   listener (a socket inherited from systemd is left open for the next process). Idle
///   connections close; busy ones close after their response; a connection that has not sent
///   its first request gets [`Serve::first_request_window`] to do so, a window that starts
///   again whenever its client's bytes arrive; one silent for a whole window with nothing in
///   progress (no request, no response bytes still to write: a stalled or slowloris client, a
///   silent HTTP/2 peer) is dropped.
/// - **Drain**: each request counts in flight under `http` until its response body has ended
///   (trailers pass through), each connection under `http-conn`. At the drain deadline the
///   connections still open are dropped and named in the report.
///
/// Use `serve` instead of `axum::serve` with [`TrackLayer`](crate::TrackLayer): it counts
/// requests itself, so adding `TrackLayer` would count each request twice under `http`.
/// axum's `ConnectInfo` extractor is not provided (it needs `axum::serve`'s make-service); read
/// the peer address from a proxy header, or use `axum::serve` with `TrackLayer` where you need
/// it. For HTTPS, use `.tls(config)` (feature `tls`): it runs each handshake in its
/// connection's task, under a timeout, never in the accept loop.
///
/// ```no_run
/// # use graceful_runtime as graceful;
/// use std::convert::Infallible;
///
/// # async fn example() -> std::io::Result<()> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
/// let hello = hyper::service::service_fn(|_request| async {
///     Ok::<_, Infallible>(http::Response::new(String::from("hello\n")))
/// });
/// graceful::ready();
/// graceful::serve(listener, hello).await?;
/// # Ok(())
/// # }
/// ```
pub fn serve<L, S, M>(listener: L, service: S) -> Serve<L, S, M>
where
    L: Listener,
    S: IntoHttpService<M>,
{
    Serve {
        listener,
        service,
        settings: Settings::default(),
        #[cfg(feature = "tls")]
        tls: None,
        controller: crate::global::controller(),
        _marker: PhantomData,
    }
}

/// The server [`serve`] builds: set what you need, then `.await` it.
///
/// ```no_run
/// # use graceful_runtime as graceful;
/// # use std::convert::Infallible;
/// use std::time::Duration;
///
/// # async fn example() -> std::io::Result<()> {
/// # let app = hyper::service::service_fn(|_request| async {
/// #     Ok::<_, Infallible>(http::Response::new(String::new()))
/// # });
/// let listener = tokio::net::TcpListener::bind("0.0.0.0:3000").await?;
/// graceful::serve(listener, app)
///     .first_request_window(Duration::from_millis(500))
///     .http1_header_read_timeout(Some(Duration::from_secs(10)))
///     .http2_keep_alive_interval(Some(Duration::from_secs(10)))
///     .http2_keep_alive_timeout(Duration::from_secs(5))
///     .max_connections(20_000)
///     .tcp_nodelay(true)
///     .await
/// # }
/// ```
#[must_use = "a Serve does nothing until it is awaited"]
pub struct Serve<L, S, M> {
    listener: L,
    service: S,
    settings: Settings,
    #[cfg(feature = "tls")]
    tls: Option<crate::TlsConfig>,
    /// Whose shutdown it follows, and where its requests count.
    controller: &'static Controller,
    _marker: PhantomData<fn() -> M>,
}

#[derive(Debug, Clone, Copy)]
struct Settings {
    first_request_window: Duration,
    http1_header_read_timeout: Option<Duration>,
    http2_keep_alive_interval: Option<Duration>,
    http2_keep_alive_timeout: Duration,
    /// `None`: from the limit of open files (`fd_budget`), read when `serve` starts.
    max_connections: Option<usize>,
    tcp_nodelay: bool,
    #[cfg(feature = "tls")]
    tls_handshake_timeout: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            first_request_window: Duration::from_secs(1),
            http1_header_read_timeout: Some(Duration::from_secs(30)),
            http2_keep_alive_interval: Some(Duration::from_secs(20)),
            http2_keep_alive_timeout: Duration::from_secs(20),
            max_connections: None,
            tcp_nodelay: true,
            #[cfg(feature = "tls")]
            tls_handshake_timeout: Duration::from_secs(10),
        }
    }
}

impl<L, S, M> std::fmt::Debug for Serve<L, S, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Serve")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl<L, S, M> Serve<L, S, M> {
    /// How long a connection that has not delivered its first request may take to do so after
    /// stop-accepting (default 1 s). Its client has a request on the way: it is served, then
    /// the connection closes. The window counts silence: it starts again whenever the client's
    /// bytes arrive, so a head crossing a slow link is never cut. After a whole window with
    /// not a byte from the client and nothing in progress (no request being served, no
    /// response bytes still waiting for a slow reader), the connection is dropped.
    ///
    /// ```no_run
    /// # use graceful_runtime as graceful;
    /// # use std::convert::Infallible;
    /// use std::time::Duration;
    ///
    /// # async fn example() -> std::io::Result<()> {
    /// # let app = hyper::service::service_fn(|_request| async {
    /// #     Ok::<_, Infallible>(http::Response::new(String::new()))
    /// # });
    /// let listener = tokio::net::TcpListener::bind("0.0.0.0:3000").await?;
    /// graceful::serve(listener, app)
    ///     .first_request_window(Duration::from_millis(500))
    ///     .await
    /// # }
    /// ```
    pub fn first_request_window(mut self, window: Duration) -> Self {
        self.settings.first_request_window = window;
        self
    }

    /// How long an HTTP/1 connection may go without delivering a request head (default 30 s,
    /// as hyper's): from its accept, and from the end of each response (its body ended and
    /// written out), a whole request head must arrive within this time, or the connection is
    /// closed, shutdown or not. A client trickling its headers (a slowloris), however steadily,
    /// one that connects and sends nothing, and an idle keep-alive connection cannot hold one
    /// of the [`max_connections`](Serve::max_connections) slots longer. A request in progress,
    /// a request body being read and a response that a slow client reads are never cut.
    /// HTTP/2 connections are not concerned: pings find their dead peers
    /// ([`http2_keep_alive_interval`](Serve::http2_keep_alive_interval)).
    ///
    /// The connection is closed between this time and an eighth more: it is checked by one
    /// timer per connection that fires eight times per timeout, not by a timer for every
    /// request head as hyper's own (which cost a hello world about 5% of its CPU per request,
    /// BENCHMARKS.md). `None` turns it off, as `axum::serve` has it.
    ///
    /// ```no_run
    /// # use graceful_runtime as graceful;
    /// # use std::convert::Infallible;
    /// use std::time::Duration;
    ///
    /// # async fn example() -> std::io::Result<()> {
    /// # let app = hyper::service::service_fn(|_request| async {
    /// #     Ok::<_, Infallible>(http::Response::new(String::new()))
    /// # });
    /// let listener = tokio::net::TcpListener::bind("0.0.0.0:3000").await?;
    /// graceful::serve(listener, app)
    ///     .http1_header_read_timeout(Some(Duration::from_secs(10)))
    ///     .await
    /// # }
    /// ```
    pub fn http1_header_read_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.settings.http1_header_read_timeout = timeout;
        self
    }

    /// How often HTTP/2 connections are pinged to find dead peers (default every 20 s);
    /// `None` turns the pings off, and with them the close of silent HTTP/2 clients
    /// ([`http2_keep_alive_timeout`](Serve::http2_keep_alive_timeout)).
    ///
    /// ```no_run
    /// # use graceful_runtime as graceful;
    /// # use std::convert::Infallible;
    /// use std::time::Duration;
    ///
    /// # async fn example() -> std::io::Result<()> {
    /// # let app = hyper::service::service_fn(|_request| async {
    /// #     Ok::<_, Infallible>(http::Response::new(String::new()))
    /// # });
    /// let listener = tokio::net::TcpListener::bind("0.0.0.0:3000").await?;
    /// graceful::serve(listener, app)
    ///     .http2_keep_alive_interval(None)
    ///     .await
    /// # }
    /// ```
    pub fn http2_keep_alive_interval(mut self, interval: Option<Duration>) -> Self {
        self.settings.http2_keep_alive_interval = interval;
        self
    }

    /// With the pings on: how much longer than the ping interval an HTTP/2 client may stay
    /// silent before its connection is closed (default 20 s). Silent means not a byte: no
    /// ping's ACK, no WINDOW_UPDATE, no frame. A slow reader, whose ACK waits behind the DATA
    /// queued before the ping, is never cut while it reads: its WINDOW_UPDATEs count.
    ///
    /// ```no_run
    /// # use graceful_runtime as graceful;
    /// # use std::convert::Infallible;
    /// use std::time::Duration;
    ///
    /// # async fn example() -> std::io::Result<()> {
    /// # let app = hyper::service::service_fn(|_request| async {
    /// #     Ok::<_, Infallible>(http::Response::new(String::new()))
    /// # });
    /// let listener = tokio::net::TcpListener::bind("0.0.0.0:3000").await?;
    /// graceful::serve(listener, app)
    ///     .http2_keep_alive_timeout(Duration::from_secs(5))
    ///     .await
    /// # }
    /// ```
    pub fn http2_keep_alive_timeout(mut self, timeout: Duration) -> Self {
        self.settings.http2_keep_alive_timeout = timeout;
        self
    }

    /// The most connections served at once; more wait in the kernel's queue until one closes
    /// (the accept loop waits for a free slot, it does not poll).
    ///
    /// The default keeps connections from filling the file-descriptor table, where `accept`
    /// fails with `EMFILE` and so does everything else that opens a file: the health port's next
    /// probe, a database pool's reconnect, a hook. It is the soft limit of open files
    /// (`ulimit -n`, `LimitNOFILE=`) less a reserve of a tenth of it or 64, whichever is larger,
    /// at least 1 and at most 10,000: 922 under the common limit of 1,024, 10,000 from a limit
    /// of 11,112 up (and where no limit can be read: not Unix, or unlimited). It is read when
    /// `serve` first starts, and logged then if it is below 10,000. Each `serve` of a process has
    /// a budget of its own: with several, set each one's.
    ///
    /// Clamped to at least 1 and at most `u32::MAX` (on 32-bit targets, tokio's
    /// `Semaphore::MAX_PERMITS`, which is lower).
    ///
    /// ```no_run
    /// # use graceful_runtime as graceful;
    /// # use std::convert::Infallible;
    /// use std::time::Duration;
    ///
    /// # async fn example() -> std::io::Result<()> {
    /// # let app = hyper::service::service_fn(|_request| async {
    /// #     Ok::<_, Infallible>(http::Response::new(String::new()))
    /// # });
    /// let listener = tokio::net::TcpListener::bind("0.0.0.0:3000").await?;
    /// graceful::serve(listener, app)
    ///     .max_connections(20_000)
    ///     .await
    /// # }
    /// ```
    pub fn max_connections(mut self, max: usize) -> Self {
        // At the end `serve` waits for every permit back in one `acquire_many`, which counts
        // in u32: a larger limit would let it return while connections still hold theirs.
        const MOST: usize = if (u32::MAX as usize) < Semaphore::MAX_PERMITS {
            u32::MAX as usize
        } else {
            Semaphore::MAX_PERMITS
        };
        self.settings.max_connections = Some(max.clamp(1, MOST));
        self
    }

    /// Whether accepted TCP connections set `TCP_NODELAY` (default `true`: responses go out
    /// at once instead of waiting for Nagle's algorithm).
    ///
    /// ```no_run
    /// # use graceful_runtime as graceful;
    /// # use std::convert::Infallible;
    /// use std::time::Duration;
    ///
    /// # async fn example() -> std::io::Result<()> {
    /// # let app = hyper::service::service_fn(|_request| async {
    /// #     Ok::<_, Infallible>(http::Response::new(String::new()))
    /// # });
    /// let listener = tokio::net::TcpListener::bind("0.0.0.0:3000").await?;
    /// graceful::serve(listener, app)
    ///     .tcp_nodelay(false)
    ///     .await
    /// # }
    /// ```
    pub fn tcp_nodelay(mut self, nodelay: bool) -> Self {
        self.settings.tcp_nodelay = nodelay;
        self
    }

    /// Serves HTTPS with `config` (feature `tls`): HTTP/1.1 and HTTP/2, negotiated by ALPN,
    /// with everything `serve` does through a shutdown (GOAWAY and `Connection: close` from the
    /// first signal, upgrades, counting until the body ends).
    ///
    /// Each connection's handshake runs in that connection's own task, never in the accept
    /// loop: a client that stalls mid-handshake delays no one else. It has
    /// [`tls_handshake_timeout`](Serve::tls_handshake_timeout) at all times, and one still
    /// handshaking at stop-accepting has not delivered a request: it gets the
    /// [`first_request_window`](Serve::first_request_window), then is dropped, so it cannot
    /// hold the drain.
    ///
    /// ```no_run
    /// # use graceful_runtime as graceful;
    /// # use std::convert::Infallible;
    /// # async fn example() -> std::io::Result<()> {
    /// # let app = hyper::service::service_fn(|_request| async {
    /// #     Ok::<_, Infallible>(http::Response::new(String::new()))
    /// # });
    /// let tls = graceful::TlsConfig::from_pem_files("/etc/tls/tls.crt", "/etc/tls/tls.key")?;
    /// let listener = graceful::bind("0.0.0.0:443").await?;
    /// graceful::ready();
    /// graceful::serve(listener, app).tls(tls).await
    /// # }
    /// ```
    #[cfg(feature = "tls")]
    pub fn tls(mut self, config: crate::TlsConfig) -> Self {
        self.tls = Some(config);
        self
    }

    /// How long a TLS handshake may take (default 10 s), from the accept: a client that
    /// connects and never finishes its handshake is dropped then, shutdown or not. After
    /// stop-accepting, the [`first_request_window`](Serve::first_request_window) cuts it
    /// shorter. Only used with [`tls`](Serve::tls).
    ///
    /// ```no_run
    /// # use graceful_runtime as graceful;
    /// # use std::convert::Infallible;
    /// use std::time::Duration;
    ///
    /// # async fn example() -> std::io::Result<()> {
    /// # let app = hyper::service::service_fn(|_request| async {
    /// #     Ok::<_, Infallible>(http::Response::new(String::new()))
    /// # });
    /// let tls = graceful::TlsConfig::from_pem_files("tls.crt", "tls.key")?;
    /// let listener = tokio::net::TcpListener::bind("0.0.0.0:3443").await?;
    /// graceful::serve(listener, app)
    ///     .tls(tls)
    ///     .tls_handshake_timeout(Duration::from_secs(5))
    ///     .await
    /// # }
    /// ```
    #[cfg(feature = "tls")]
    pub fn tls_handshake_timeout(mut self, timeout: Duration) -> Self {
        self.settings.tls_handshake_timeout = timeout;
        self
    }
}

impl<L, S, M> IntoFuture for Serve<L, S, M>
where
    L: Listener,
    S: IntoHttpService<M>,
    M: 'static,
{
    type Output = io::Result<()>;
    type IntoFuture = Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(run(
            self.listener,
            self.service.into_hyper(),
            self.settings,
            #[cfg(feature = "tls")]
            self.tls.map(tls::Tls::new),
            self.controller,
        ))
    }
}

/// The protocol builder every connection shares.
fn protocols(settings: &Settings) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // The header read timeout is kept by each connection's driver (`HeaderTimeout`): hyper's
    // would arm a timer for every request head, and its default is 30 s once it has a timer.
    builder.http1().header_read_timeout(None);
    builder
        .http2()
        .timer(TokioTimer::new())
        .enable_connect_protocol()
        .keep_alive_interval(settings.http2_keep_alive_interval)
        // hyper's pings still go out, so that an idle peer answers; the connection's driver
        // (`HeaderTimeout`) closes it only after `http2_silence` without a byte from the peer.
        // hyper would time out the ACK, which a slow reader sends only once it has read the
        // DATA queued before the PING: a live client cut.
        .keep_alive_timeout(NEVER);
    builder
}

/// A timeout hyper never reaches.
const NEVER: Duration = Duration::from_secs(365 * 24 * 3600);

impl Settings {
    /// How long an HTTP/2 client may send nothing at all, not even a ping's ACK, before its
    /// connection is closed: the keep-alive interval, then its timeout.
    fn http2_silence(&self) -> Option<Duration> {
        self.http2_keep_alive_interval
            .map(|interval| interval.saturating_add(self.http2_keep_alive_timeout))
    }
}

async fn run<L: Listener, S: ConnectionService>(
    mut listener: L,
    service: S,
    settings: Settings,
    #[cfg(feature = "tls")] tls: Option<tls::Tls>,
    controller: &'static Controller,
) -> io::Result<()> {
    let max_connections = settings
        .max_connections
        .unwrap_or_else(fd_budget::default_max_connections);
    let server = Server {
        protocols: Arc::new(protocols(&settings)),
        service,
        settings,
        #[cfg(feature = "tls")]
        tls,
        controller,
        limit: Arc::new(Semaphore::new(max_connections)),
        rpc_sites: Arc::new(RpcSites::new()),
    };
    let stop_accepting = controller.stop_accepting().clone();
    let mut errors = AcceptErrors::new("serve");
    loop {
        let permit = tokio::select! {
            biased;
            _ = stop_accepting.cancelled() => break,
            permit = Arc::clone(&server.limit).acquire_owned() => permit,
        };
        let Ok(permit) = permit else { break };
        let accepted = tokio::select! {
            biased;
            _ = stop_accepting.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((io, _peer)) => {
                errors.accepted();
                if let Err(error) = L::prepare(&io, settings.tcp_nodelay) {
                    event!(Warn, "serve: cannot set up an accepted connection: {error}");
                }
                server.spawn(io, Some(permit));
            }
            Err(error) => {
                tokio::select! {
                    _ = stop_accepting.cancelled() => break,
                    _ = errors.pause_after(&error) => {}
                }
            }
        }
    }
    if !listener.is_inherited() {
        // Queued clients have a request on the way: serve them, whatever the limit, rather
        // than reset them by closing the listener.
        for (io, _peer) in listener.accept_queued() {
            if let Err(error) = L::prepare(&io, settings.tcp_nodelay) {
                event!(Warn, "serve: cannot set up a queued connection: {error}");
            }
            // Counted against the limit when a permit is free, so that `serve` waits for it;
            // otherwise its `http-conn` count still holds the drain.
            server.spawn(io, Arc::clone(&server.limit).try_acquire_owned().ok());
        }
    }
    // Every connection holds a permit until it ends: all permits back means all done.
    let all = u32::try_from(max_connections)
        .expect("max_connections is clamped to u32::MAX by its setter, its default far below");
    let _ = server.limit.acquire_many(all).await;
    Ok(())
}

/// What every connection of one `serve` shares.
struct Server<S> {
    protocols: Arc<auto::Builder<TokioExecutor>>,
    service: S,
    settings: Settings,
    /// Set by `.tls(..)`: each connection's task runs its handshake first.
    #[cfg(feature = "tls")]
    tls: Option<tls::Tls>,
    controller: &'static Controller,
    limit: Arc<Semaphore>,
    rpc_sites: Arc<RpcSites>,
}

impl<S: ConnectionService> Server<S> {
    fn spawn<Io>(&self, io: Io, permit: Option<tokio::sync::OwnedSemaphorePermit>)
    where
        Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            return self.spawn_tls(tls, io, permit);
        }
        let state = Arc::new(ConnectionState::default());
        let service = self.counting_service(&state);
        let connection = serve_connection(&self.protocols, io, service, &state);
        let connection = HeaderTimeout::new(
            connection,
            Arc::clone(&state),
            self.settings.http1_header_read_timeout,
            self.settings.http2_silence(),
        );
        let controller = self.controller;
        let window = self.settings.first_request_window;
        controller.spawn(connection_site(controller), async move {
            let _permit = permit;
            connection::drive(connection, state, controller, window).await;
        });
    }

    /// Spawns a TLS connection's task: its handshake, then hyper on the TLS stream.
    #[cfg(feature = "tls")]
    fn spawn_tls<Io>(
        &self,
        tls: &tls::Tls,
        io: Io,
        permit: Option<tokio::sync::OwnedSemaphorePermit>,
    ) where
        Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let state = Arc::new(ConnectionState::default());
        let service = self.counting_service(&state);
        let protocols = Arc::clone(&self.protocols);
        let acceptor = tls.acceptor().clone();
        let controller = self.controller;
        let window = self.settings.first_request_window;
        let timeout = self.settings.tls_handshake_timeout;
        let header_read_timeout = self.settings.http1_header_read_timeout;
        let http2_silence = self.settings.http2_silence();
        controller.spawn(connection_site(controller), async move {
            let _permit = permit;
            let handshake = tls::handshake(&acceptor, io, timeout, controller, window);
            let Some(handshaken) = handshake.await else {
                return;
            };
            let connection = serve_connection(&protocols, handshaken.stream, service, &state);
            let connection = HeaderTimeout::new(
                connection,
                Arc::clone(&state),
                header_read_timeout,
                http2_silence,
            );
            // What the handshake left of the first-request window, if it ran into it.
            let window = match handshaken.window_began {
                Some(began) => window.saturating_sub(began.elapsed()),
                None => window,
            };
            connection::drive(connection, state, controller, window).await;
        });
    }

    fn counting_service(&self, state: &Arc<ConnectionState>) -> CountingService<S> {
        CountingService {
            inner: self.service.clone(),
            controller: self.controller,
            site: self
                .controller
                .inflight()
                .site_of_kind("http", SiteKind::Request),
            rpc_sites: Arc::clone(&self.rpc_sites),
            connection: Arc::clone(state),
        }
    }
}

/// Where a connection's task counts: `http-conn`.
fn connection_site(controller: &'static Controller) -> &'static crate::inflight::Site {
    controller
        .inflight()
        .site_of_kind("http-conn", SiteKind::Connection)
}

/// hyper serving `io` with `service`, its writes watched for the connection's driver.
fn serve_connection<Io, S>(
    protocols: &auto::Builder<TokioExecutor>,
    io: Io,
    service: CountingService<S>,
    state: &Arc<ConnectionState>,
) -> Pin<Box<HyperConnection<Io, S>>>
where
    Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: ConnectionService,
{
    Box::pin(
        protocols
            .serve_connection_with_upgrades(
                TokioIo::new(WatchedIo::new(io, Arc::clone(state))),
                service,
            )
            .into_owned(),
    )
}

type HyperConnection<Io, S> =
    auto::UpgradeableConnection<'static, TokioIo<WatchedIo<Io>>, CountingService<S>, TokioExecutor>;

impl<I, S> GracefulConnection
    for Pin<Box<auto::UpgradeableConnection<'static, I, CountingService<S>, TokioExecutor>>>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: ConnectionService,
{
    fn shut_down_gracefully(&mut self) {
        self.as_mut().graceful_shutdown();
    }
}

#[cfg(test)]
mod tests;
