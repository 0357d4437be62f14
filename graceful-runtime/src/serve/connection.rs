//! One connection through a shutdown. hyper serves it; this decides when to ask hyper to close
//! it, around the sharp edges of hyper's `graceful_shutdown`: it drops a connection that has
//! not read its first bytes, closes idle HTTP/1 keep-alive connections at once, and never
//! closes one stuck mid-head.
//!
//! - Before shutdown: hyper alone.
//! - Pre-stop: HTTP/1 responses say `Connection: close` (in the response future); HTTP/2
//!   connections get GOAWAY at once, or after their first request when none came yet. Nothing
//!   is cut: the client moves on its next request.
//! - Stop-accepting: a connection that has served a request is shut down gracefully (idle
//!   ones close now, busy ones after their response). One that has not yet delivered a request
//!   gets the first-request window to do so. The window counts silence, not time: it starts
//!   again whenever the client's bytes arrive, so a slow link's client is never cut mid-head.
//!   When a whole window passes with no request in progress, nothing left to write and not a
//!   byte from the client, the connection is dropped: it is stalled, or silent. One whose
//!   response hyper has not yet written out (its client reads slowly) is busy, and is waited
//!   for.
//! - The drain deadline aborts what is left (the task is tracked under `http-conn`).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

use crate::sequence::Controller;

/// What the requests of one connection tell its driver.
#[derive(Debug, Default)]
pub(crate) struct ConnectionState {
    started: AtomicUsize,
    in_progress: AtomicUsize,
    http2: AtomicBool,
    /// hyper's last write or flush returned `Pending`: it holds bytes the client has not taken
    /// yet. A response's count ends when its body does, which can be before that.
    write_blocked: AtomicBool,
    /// A write or flush returned `Pending` since the header read timeout last looked.
    write_waited: AtomicBool,
    /// The client opened with HTTP/2's preface: the header read timeout leaves it alone.
    http2_preface: AtomicBool,
    /// Reads that brought the client's bytes: the first-request window and HTTP/2's silence
    /// limit tell a live client from a silent one by it.
    reads: AtomicUsize,
    /// Writes that went out after one had waited for the client: a reader too slow to send
    /// anything (its flow-control window is large) still takes bytes.
    writes_taken: AtomicUsize,
    changed: Notify,
}

/// Held by a request until its response body ends.
#[derive(Debug)]
pub(crate) struct RequestOnConnection(Arc<ConnectionState>);

impl ConnectionState {
    /// Called by hyper's call of the service, so from the connection's own task: the driver
    /// sees every change when it next runs. `shutting_down` is whether shutdown has begun, as
    /// that task just read it: only the driver's loops after that wait to hear of a request.
    pub(crate) fn request_started(
        self: &Arc<Self>,
        http2: bool,
        shutting_down: bool,
    ) -> RequestOnConnection {
        // Relaxed throughout: the driver only needs to see each change eventually, and the
        // `Notify` permit orders the wake-up after the store.
        if http2 {
            self.http2.store(true, Ordering::Relaxed);
        }
        // One task counts, so no read-modify-write is needed.
        let started = self.started.load(Ordering::Relaxed);
        self.started
            .store(started.wrapping_add(1), Ordering::Relaxed);
        self.in_progress.fetch_add(1, Ordering::Relaxed);
        if shutting_down {
            self.changed.notify_one();
        }
        RequestOnConnection(Arc::clone(self))
    }

    fn has_served(&self) -> bool {
        self.started.load(Ordering::Relaxed) > 0
    }

    pub(super) fn requests_started(&self) -> usize {
        self.started.load(Ordering::Relaxed)
    }

    pub(super) fn is_busy(&self) -> bool {
        self.in_progress.load(Ordering::Relaxed) > 0 || self.write_blocked.load(Ordering::Relaxed)
    }

    pub(super) fn note_write<T>(&self, poll: &Poll<T>) {
        // Written from the driver's own task, when it polls hyper: read by the same task.
        let pending = poll.is_pending();
        let was_blocked = self.write_blocked.load(Ordering::Relaxed);
        self.write_blocked.store(pending, Ordering::Relaxed);
        if pending {
            self.write_waited.store(true, Ordering::Relaxed);
        } else if was_blocked {
            let taken = self.writes_taken.load(Ordering::Relaxed);
            self.writes_taken
                .store(taken.wrapping_add(1), Ordering::Relaxed);
        }
    }

    /// Whether a write waited for the client since the last call.
    pub(super) fn take_write_waited(&self) -> bool {
        self.write_waited.swap(false, Ordering::Relaxed)
    }

    /// A read brought the client's bytes.
    pub(super) fn note_read(&self) {
        // Written and read by the connection's own task: no read-modify-write needed.
        let reads = self.reads.load(Ordering::Relaxed);
        self.reads.store(reads.wrapping_add(1), Ordering::Relaxed);
    }

    /// What the client has done so far: reads of its bytes, and writes it took after making one
    /// wait. Unchanged over a while, the client was silent and took nothing.
    pub(super) fn signs_of_life(&self) -> usize {
        self.reads()
            .wrapping_add(self.writes_taken.load(Ordering::Relaxed))
    }

    /// How many reads have brought the client's bytes so far.
    pub(super) fn reads(&self) -> usize {
        self.reads.load(Ordering::Relaxed)
    }

    pub(super) fn saw_http2_preface(&self) {
        self.http2_preface.store(true, Ordering::Relaxed);
    }

    /// The client opened with HTTP/2's preface, or made an HTTP/2 request.
    pub(super) fn speaks_http2(&self) -> bool {
        self.http2_preface.load(Ordering::Relaxed) || self.is_http2()
    }

    fn is_http2(&self) -> bool {
        self.http2.load(Ordering::Relaxed)
    }
}

impl Drop for RequestOnConnection {
    fn drop(&mut self) {
        // No wake-up: the driver waits on nothing that a request's end changes. It reads
        // `is_busy` once, when the first-request window ends.
        self.0.in_progress.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What a client that speaks HTTP/2 with prior knowledge sends first.
const HTTP2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// A connection's IO as hyper sees it, telling the driver whether hyper still has bytes to
/// write, and whether the client opened with HTTP/2's preface.
pub(crate) struct WatchedIo<Io> {
    io: Io,
    state: Arc<ConnectionState>,
    /// How much of HTTP/2's preface the first bytes matched, until they settle the protocol:
    /// `None` then.
    preface_matched: Option<usize>,
}

impl<Io> WatchedIo<Io> {
    pub(crate) fn new(io: Io, state: Arc<ConnectionState>) -> Self {
        WatchedIo {
            io,
            state,
            preface_matched: Some(0),
        }
    }

    /// The test hyper-util's `auto` builder makes on the same bytes to pick the protocol.
    fn sniff(&mut self, read: &[u8], matched: usize) {
        let more = read.len().min(HTTP2_PREFACE.len() - matched);
        if read[..more] != HTTP2_PREFACE[matched..matched + more] {
            self.preface_matched = None;
        } else if matched + more == HTTP2_PREFACE.len() {
            self.preface_matched = None;
            self.state.saw_http2_preface();
        } else {
            self.preface_matched = Some(matched + more);
        }
    }
}

impl<Io: AsyncRead + Unpin> AsyncRead for WatchedIo<Io> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.io).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.state.note_read();
            if let Some(matched) = self.preface_matched {
                self.sniff(&buf.filled()[before..], matched);
            }
        }
        poll
    }
}

impl<Io: AsyncWrite + Unpin> AsyncWrite for WatchedIo<Io> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.io).poll_write(cx, buf);
        self.state.note_write(&poll);
        poll
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.state.note_write(&poll);
        poll
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.io).poll_flush(cx);
        self.state.note_write(&poll);
        poll
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.io).poll_shutdown(cx);
        self.state.note_write(&poll);
        poll
    }
}

/// A hyper connection that can be asked to close gracefully.
pub(crate) trait GracefulConnection: std::future::Future + Unpin {
    fn shut_down_gracefully(&mut self);
}

/// Drives `connection` to its end through the phases of a shutdown.
pub(crate) async fn drive<C: GracefulConnection>(
    mut connection: C,
    state: Arc<ConnectionState>,
    controller: &'static Controller,
    first_request_window: Duration,
) {
    // Asks hyper once, and never before the connection has delivered a request: hyper would
    // drop it unread.
    let mut shut = false;
    let mut shut_down_once_served = |connection: &mut C| {
        if !shut && state.has_served() {
            connection.shut_down_gracefully();
            shut = true;
        }
    };

    // Before shutdown: hyper alone.
    if let Served::Completely = until_shutdown(&mut connection, controller).await {
        return;
    }

    // Pre-stop: HTTP/2 connections get GOAWAY now, or after their first request.
    let stop_accepting = controller.stop_accepting().clone();
    loop {
        if state.is_http2() {
            shut_down_once_served(&mut connection);
        }
        tokio::select! {
            biased;
            _ = &mut connection => return,
            _ = stop_accepting.cancelled() => break,
            _ = state.changed.notified() => {}
        }
    }

    // Stop-accepting: the first-request window, started again while the client's bytes
    // arrive, so that only silence ends it.
    loop {
        let reads = state.reads();
        let window = tokio::time::sleep(first_request_window);
        tokio::pin!(window);
        loop {
            shut_down_once_served(&mut connection);
            tokio::select! {
                biased;
                _ = &mut connection => return,
                _ = state.changed.notified() => {}
                _ = &mut window => break,
            }
        }
        if state.is_busy() {
            // A request in progress, or a response not yet written out to a client that reads
            // slowly: it closes once its response is out; the drain deadline bounds the wait.
            connection.await;
            return;
        }
        if state.reads() == reads {
            // Silent for a whole window: it never sent a request, is stalled mid-head, or is an
            // HTTP/2 peer that ignores GOAWAY. Nothing of it may hold the drain.
            return;
        }
    }
}

enum Served {
    Completely,
    UntilShutdown,
}

/// Drives `connection` until it ends or shutdown begins. Checked at every wake-up of the
/// connection, so cheaply: an atomic load, and the shutdown future polled only once, to
/// register this task's waker (a task's waker does not change), since polling it again takes a
/// mutex.
async fn until_shutdown<C: GracefulConnection>(
    connection: &mut C,
    controller: &'static Controller,
) -> Served {
    let mut shutdown = std::pin::pin!(controller.shutdown_started());
    let mut registered = false;
    std::future::poll_fn(|cx| {
        if std::pin::Pin::new(&mut *connection).poll(cx).is_ready() {
            return std::task::Poll::Ready(Served::Completely);
        }
        if controller.is_shutting_down() {
            return std::task::Poll::Ready(Served::UntilShutdown);
        }
        if !registered {
            registered = true;
            if shutdown.as_mut().poll(cx).is_ready() {
                return std::task::Poll::Ready(Served::UntilShutdown);
            }
        }
        std::task::Poll::Pending
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn bytes_the_client_has_not_taken_keep_the_connection_busy() {
        let (ours, mut client) = tokio::io::duplex(16);
        let state = Arc::new(ConnectionState::default());
        let mut io = WatchedIo::new(ours, Arc::clone(&state));
        io.write_all(&[1; 16]).await.unwrap();
        assert!(!state.is_busy(), "everything written fits");

        let mut more = std::pin::pin!(io.write_all(&[2; 8]));
        let first_poll = std::future::poll_fn(|cx| Poll::Ready(more.as_mut().poll(cx))).await;
        assert!(first_poll.is_pending(), "the client's buffer is full");
        assert!(state.is_busy(), "a write that could not go out");

        let mut taken = [0; 16];
        client.read_exact(&mut taken).await.unwrap();
        more.await.unwrap();
        assert!(!state.is_busy(), "the client took it all");
    }

    /// Reads everything `client` sends through a `WatchedIo`, one write at a time; returns
    /// whether the state then says the client speaks HTTP/2.
    async fn speaks_http2_after(writes: &[&[u8]]) -> bool {
        let (ours, mut client) = tokio::io::duplex(64);
        let state = Arc::new(ConnectionState::default());
        let mut io = WatchedIo::new(ours, Arc::clone(&state));
        for write in writes {
            client.write_all(write).await.unwrap();
            let mut read = vec![0; write.len()];
            io.read_exact(&mut read).await.unwrap();
        }
        state.speaks_http2()
    }

    #[tokio::test]
    async fn the_http2_preface_is_recognised_however_it_is_split() {
        assert!(speaks_http2_after(&[HTTP2_PREFACE]).await);
        assert!(speaks_http2_after(&[b"PRI * HTTP", b"/2.0\r\n\r\nSM\r", b"\n\r\n\0\0"]).await);
        assert!(!speaks_http2_after(&[b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"]).await);
        assert!(!speaks_http2_after(&[b"PRI * HTTP/1.1\r\n", b"\r\nSM\r\n\r\n"]).await);
        assert!(
            !speaks_http2_after(&[b"PRI * HTTP/2"]).await,
            "not all of it yet"
        );
    }
}
