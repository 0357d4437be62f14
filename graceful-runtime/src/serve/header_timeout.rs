//! `serve`'s per-connection silence limits, kept by the connection's driver instead of hyper.
//!
//! HTTP/1's header read timeout: hyper arms and disarms a timer for every request head, which
//! cost a hello world about 5% of its CPU per request (BENCHMARKS.md); this re-arms one timer per
//! connection eight times per timeout, and reads the connection's request counters when it
//! fires. The promise is hyper's, with a coarser end: from its accept, and from the end of each
//! response, an HTTP/1 connection must deliver a whole request head within the timeout, or it is
//! closed. A client that trickles its head (a slowloris), one that connects and sends nothing,
//! and an idle keep-alive connection are closed between the timeout and an eighth more. A client
//! that keeps sending bytes without ending its head gains nothing: only a request resets the
//! count.
//!
//! HTTP/2's keep-alive: hyper pings an HTTP/2 peer and would close its connection when the ACK
//! is late, but a slow reader's ACK waits behind every DATA frame queued before the PING, so
//! hyper cut live clients reading large responses slowly. hyper still sends the pings (an idle
//! peer answers them), and never times them out; here a connection is closed only when its
//! client sent nothing at all (no ACK, no WINDOW_UPDATE, no frame) and took none of the bytes
//! that waited for it, for the keep-alive interval plus its timeout: silence, not a late answer.
//! A reader with a large flow-control window may send nothing for long; what it reads is seen
//! only while bytes wait for it. When all of a response already sits in the kernel's buffers,
//! nothing shows it reading: it must send something (a WINDOW_UPDATE, a ping's ACK) within the
//! limit, 40 s by default.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

use super::connection::{ConnectionState, GracefulConnection};

/// `connection`, closed when its HTTP/1 client takes longer than the header read timeout to
/// deliver a request head, or its HTTP/2 client is silent for longer than `http2_silence`.
pub(crate) struct HeaderTimeout<C> {
    connection: C,
    /// `None` without a limit for the connection's protocol. Boxed, timer and all: one
    /// allocation per connection, and the connection's task stays small.
    guard: Option<Pin<Box<Guard>>>,
}

impl<C> HeaderTimeout<C> {
    pub(crate) fn new(
        connection: C,
        state: Arc<ConnectionState>,
        timeout: Option<Duration>,
        http2_silence: Option<Duration>,
    ) -> HeaderTimeout<C> {
        let guard = (timeout.is_some() || http2_silence.is_some())
            .then(|| Box::pin(Guard::new(state, timeout, http2_silence)));
        HeaderTimeout { connection, guard }
    }
}

impl<C: Future + Unpin> Future for HeaderTimeout<C> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if Pin::new(&mut this.connection).poll(cx).is_ready() {
            return Poll::Ready(());
        }
        let Some(guard) = &mut this.guard else {
            return Poll::Pending;
        };
        // Polled at every wake-up of the connection: an atomic load, unless the timer fired.
        if guard.armed && !guard.tick.is_elapsed() {
            return Poll::Pending;
        }
        match guard.as_mut().on_tick(cx) {
            // `on_tick` acts on `Http2` itself.
            Verdict::Keep | Verdict::Http2 => Poll::Pending,
            Verdict::Stop => {
                this.guard = None;
                Poll::Pending
            }
            Verdict::Close if guard.http2 => {
                tracing::debug!(
                    target: "graceful",
                    "serve: an HTTP/2 client silent for {:?} (keep-alive interval and \
                     timeout): connection closed",
                    guard.timeout.unwrap_or_default()
                );
                Poll::Ready(())
            }
            Verdict::Close => {
                tracing::debug!(
                    target: "graceful",
                    "serve: no request head within the header read timeout ({:?}): \
                     connection closed",
                    guard.timeout.unwrap_or_default()
                );
                Poll::Ready(())
            }
        }
    }
}

impl<C: GracefulConnection> GracefulConnection for HeaderTimeout<C> {
    fn shut_down_gracefully(&mut self) {
        self.connection.shut_down_gracefully();
    }
}

pin_project_lite::pin_project! {
    struct Guard {
        state: Arc<ConnectionState>,
        // The limit of the connection's protocol as known so far: HTTP/1's until it speaks
        // HTTP/2. Ticks still come without one, to find out whether it speaks HTTP/2.
        timeout: Option<Duration>,
        http2_silence: Option<Duration>,
        http2: bool,
        // An eighth of the timeout: how late a deadline can end.
        period: Duration,
        // Fires every `period`, on a grid that starts at the connection's first poll.
        #[pin]
        tick: Sleep,
        // Polled since its last reset, so that its firing wakes the task.
        armed: bool,
        // Since which tick the connection has waited for a request head, if it has.
        waiting: Option<Waiting>,
    }
}

/// A connection waiting on its client, looked at on consecutive ticks with nothing done in
/// between: for HTTP/1, no request in progress, no response going out and none started; for
/// HTTP/2, not a byte read.
#[derive(Debug, Clone, Copy)]
struct Waiting {
    /// What the client had done when first seen waiting (HTTP/1: requests started; HTTP/2:
    /// reads): more ends the wait.
    done: usize,
    /// Ticks since then. The wait began at the most a period before the first of them.
    ticks: u32,
}

/// Ticks in a timeout: a wait is cut between the timeout and a period more.
const TICKS: u32 = 8;

enum Verdict {
    Keep,
    /// Nothing left to guard: an HTTP/2 connection, with no silence limit.
    Stop,
    /// The connection speaks HTTP/2: its silence limit applies from now.
    Http2,
    Close,
}

impl Guard {
    fn new(
        state: Arc<ConnectionState>,
        timeout: Option<Duration>,
        http2_silence: Option<Duration>,
    ) -> Guard {
        Guard {
            state,
            timeout,
            http2_silence,
            http2: false,
            period: period(timeout.or(http2_silence).unwrap_or(Duration::MAX)),
            // Set for real at the first poll, the connection's start.
            tick: tokio::time::sleep(Duration::ZERO),
            armed: false,
            waiting: None,
        }
    }

    /// Looks at the connection at each tick the timer has passed (or at its first poll), then
    /// sets the timer to the next tick.
    fn on_tick(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Verdict {
        let mut this = self.project();
        if !*this.armed {
            // The connection's start: its first head is due a timeout from now, as hyper has
            // it.
            *this.waiting = Some(Waiting {
                done: this.state.requests_started(),
                ticks: 0,
            });
            let Some(first) = Instant::now().checked_add(*this.period) else {
                return Verdict::Stop; // a timeout past any instant
            };
            this.tick.as_mut().reset(first);
            *this.armed = true;
        }
        // Polling registers the task's waker for the next tick, or tells that it has passed.
        while this.tick.as_mut().poll(cx).is_ready() {
            let verdict = if *this.http2 {
                look_http2(this.state, this.waiting)
            } else {
                look_http1(
                    this.state,
                    this.waiting,
                    this.timeout.is_some(),
                    this.http2_silence.is_some(),
                )
            };
            let from = match verdict {
                Verdict::Keep => this.tick.deadline(),
                Verdict::Http2 => {
                    let silence = this.http2_silence.expect("asked for by look_http1");
                    *this.http2 = true;
                    *this.timeout = Some(silence);
                    *this.period = period(silence);
                    *this.waiting = Some(Waiting {
                        done: this.state.signs_of_life(),
                        ticks: 0,
                    });
                    Instant::now()
                }
                verdict => return verdict,
            };
            let Some(next) = from.checked_add(*this.period) else {
                return Verdict::Stop;
            };
            this.tick.as_mut().reset(next);
        }
        Verdict::Keep
    }
}

/// A tick's length: an eighth of `timeout`, how late a wait can end.
fn period(timeout: Duration) -> Duration {
    (timeout / TICKS).max(Duration::from_millis(1))
}

/// One more tick of a wait on `done`: whether it has lasted a whole timeout.
fn wait_on(waiting: &mut Option<Waiting>, done: usize) -> Verdict {
    *waiting = match *waiting {
        Some(since) if since.done == done => {
            if since.ticks + 1 >= TICKS {
                return Verdict::Close;
            }
            Some(Waiting {
                ticks: since.ticks + 1,
                ..since
            })
        }
        _ => Some(Waiting { done, ticks: 0 }),
    };
    Verdict::Keep
}

/// One HTTP/2 tick: whether the client has been silent, and taken nothing that waited for it,
/// for a whole timeout.
fn look_http2(state: &ConnectionState, waiting: &mut Option<Waiting>) -> Verdict {
    wait_on(waiting, state.signs_of_life())
}

/// One HTTP/1 tick: whether the connection has waited a whole timeout for a request head.
fn look_http1(
    state: &ConnectionState,
    waiting: &mut Option<Waiting>,
    header_timeout: bool,
    http2_silence: bool,
) -> Verdict {
    if state.speaks_http2() {
        return if http2_silence {
            Verdict::Http2
        } else {
            Verdict::Stop
        };
    }
    if !header_timeout {
        return Verdict::Keep;
    }
    // Read and cleared at every tick: a response that waited for its client since the last
    // tick means the connection was busy in between.
    let wrote_slowly = state.take_write_waited();
    let started = state.requests_started();
    if state.is_busy() {
        *waiting = None;
        return Verdict::Keep;
    }
    if wrote_slowly {
        // It went idle since the last tick.
        *waiting = Some(Waiting {
            done: started,
            ticks: 0,
        });
        return Verdict::Keep;
    }
    wait_on(waiting, started)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connection that never ends on its own.
    struct Forever;

    impl Future for Forever {
        type Output = ();
        fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
            Poll::Pending
        }
    }

    impl GracefulConnection for Forever {
        fn shut_down_gracefully(&mut self) {}
    }

    const TIMEOUT: Duration = Duration::from_secs(8);

    /// Polls `guarded` until it ends, or for `most` of (paused) time; returns how long it ran.
    async fn runs_for(guarded: &mut HeaderTimeout<Forever>, most: Duration) -> Option<Duration> {
        let began = Instant::now();
        tokio::time::timeout(most, guarded).await.ok()?;
        Some(began.elapsed())
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_that_sends_no_request_is_closed_at_the_timeout() {
        let state = Arc::new(ConnectionState::default());
        let mut guarded = HeaderTimeout::new(Forever, state, Some(TIMEOUT), None);
        let ran = runs_for(&mut guarded, TIMEOUT * 2).await;
        let ran = ran.expect("still open at twice the timeout");
        assert!(
            ran >= TIMEOUT && ran <= TIMEOUT + TIMEOUT / 8,
            "closed after {ran:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_timeout_nothing_is_closed() {
        let state = Arc::new(ConnectionState::default());
        let mut guarded = HeaderTimeout::new(Forever, state, None, None);
        assert_eq!(runs_for(&mut guarded, TIMEOUT * 10).await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_in_progress_is_never_cut_and_the_count_starts_at_its_end() {
        let state = Arc::new(ConnectionState::default());
        let request = state.request_started(false, false);
        let mut guarded = HeaderTimeout::new(Forever, Arc::clone(&state), Some(TIMEOUT), None);
        assert_eq!(runs_for(&mut guarded, TIMEOUT * 5).await, None);
        drop(request);
        let ran = runs_for(&mut guarded, TIMEOUT * 2).await;
        let ran = ran.expect("still open at twice the timeout after its response");
        assert!(
            ran >= TIMEOUT && ran <= TIMEOUT + TIMEOUT / 8,
            "closed after {ran:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn each_request_restarts_the_count() {
        let state = Arc::new(ConnectionState::default());
        let mut guarded = HeaderTimeout::new(Forever, Arc::clone(&state), Some(TIMEOUT), None);
        for _ in 0..4 {
            // A request every three quarters of the timeout: never one timeout without.
            assert_eq!(runs_for(&mut guarded, TIMEOUT * 3 / 4).await, None);
            drop(state.request_started(false, false));
        }
        let ran = runs_for(&mut guarded, TIMEOUT * 3).await;
        let ran = ran.expect("still open long after its last request");
        // Its last request was seen a probe interval late at the most.
        assert!(
            ran >= TIMEOUT && ran <= TIMEOUT + TIMEOUT / 4,
            "closed {ran:?} after its last request"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_response_waiting_for_a_slow_reader_is_not_cut() {
        let state = Arc::new(ConnectionState::default());
        let mut guarded = HeaderTimeout::new(Forever, Arc::clone(&state), Some(TIMEOUT), None);
        state.note_write(&Poll::<()>::Pending);
        assert_eq!(runs_for(&mut guarded, TIMEOUT * 5).await, None);
        state.note_write(&Poll::Ready(()));
        let ran = runs_for(&mut guarded, TIMEOUT * 3).await;
        let ran = ran.expect("still open long after its response was out");
        assert!(
            ran >= TIMEOUT && ran <= TIMEOUT + TIMEOUT / 4,
            "closed {ran:?} after its response was out"
        );
    }

    const SILENCE: Duration = Duration::from_secs(40);

    #[tokio::test(start_paused = true)]
    async fn an_http2_client_that_sends_anything_within_each_silence_is_kept() {
        let state = Arc::new(ConnectionState::default());
        let mut guarded =
            HeaderTimeout::new(Forever, Arc::clone(&state), Some(TIMEOUT), Some(SILENCE));
        state.saw_http2_preface();
        // A slow reader's WINDOW_UPDATE now and then, long past the header read timeout.
        for _ in 0..6 {
            assert_eq!(runs_for(&mut guarded, SILENCE * 3 / 4).await, None);
            state.note_read();
        }
        let ran = runs_for(&mut guarded, SILENCE * 3).await;
        let ran = ran.expect("still open long after its client went silent");
        assert!(
            ran >= SILENCE && ran <= SILENCE + SILENCE / 4,
            "closed {ran:?} after its client's last bytes"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_http2_client_that_only_takes_bytes_that_waited_for_it_is_kept() {
        let state = Arc::new(ConnectionState::default());
        let mut guarded = HeaderTimeout::new(Forever, Arc::clone(&state), None, Some(SILENCE));
        state.saw_http2_preface();
        // A slow reader with a large window: it sends nothing, but takes what waits for it.
        for _ in 0..6 {
            state.note_write(&Poll::<()>::Pending);
            assert_eq!(runs_for(&mut guarded, SILENCE * 3 / 4).await, None);
            state.note_write(&Poll::Ready(()));
        }
        // Writes that never waited say nothing of the client: a dead peer's kernel takes them.
        for _ in 0..100 {
            state.note_write(&Poll::Ready(()));
        }
        let ran = runs_for(&mut guarded, SILENCE * 3).await;
        let ran = ran.expect("still open long after its client took its last bytes");
        assert!(
            ran >= SILENCE && ran <= SILENCE + SILENCE / 4,
            "closed {ran:?} after its client took its last bytes"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_http2_client_is_closed_without_a_header_read_timeout() {
        let state = Arc::new(ConnectionState::default());
        let mut guarded = HeaderTimeout::new(Forever, Arc::clone(&state), None, Some(SILENCE));
        state.saw_http2_preface();
        let ran = runs_for(&mut guarded, SILENCE * 3).await;
        let ran = ran.expect("a silent HTTP/2 client still open");
        assert!(
            ran >= SILENCE && ran <= SILENCE + SILENCE / 4,
            "closed after {ran:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_silence_limit_http2_connections_are_left_alone() {
        let state = Arc::new(ConnectionState::default());
        let mut guarded = HeaderTimeout::new(Forever, Arc::clone(&state), Some(TIMEOUT), None);
        state.saw_http2_preface();
        assert_eq!(runs_for(&mut guarded, TIMEOUT * 10).await, None);
        assert!(guarded.guard.is_none(), "its timer is gone");
    }
}
