//! `serve`'s HTTP/1 header read timeout, kept by the connection's driver instead of hyper: hyper
//! arms and disarms a timer for every request head, which cost a hello world about 5% of its CPU
//! per request (BENCHMARKS.md); this re-arms one timer per connection eight times per timeout,
//! and reads the connection's request counters when it fires.
//!
//! The promise is hyper's, with a coarser end: from its accept, and from the end of each
//! response, an HTTP/1 connection must deliver a whole request head within the timeout, or it is
//! closed. A client that trickles its head (a slowloris), one that connects and sends nothing,
//! and an idle keep-alive connection are closed between the timeout and an eighth more. A client
//! that keeps sending bytes without ending its head gains nothing: only a request resets the
//! count. HTTP/2 connections are left alone, as hyper leaves them (their pings find dead peers).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

use super::connection::{ConnectionState, GracefulConnection};

/// `connection`, closed when its HTTP/1 client takes longer than the header read timeout to
/// deliver a request head.
pub(crate) struct HeaderTimeout<C> {
    connection: C,
    /// `None` without a timeout, and once the connection speaks HTTP/2. Boxed, timer and all:
    /// one allocation per connection, and the connection's task stays small.
    guard: Option<Pin<Box<Guard>>>,
}

impl<C> HeaderTimeout<C> {
    pub(crate) fn new(
        connection: C,
        state: Arc<ConnectionState>,
        timeout: Option<Duration>,
    ) -> HeaderTimeout<C> {
        HeaderTimeout {
            connection,
            guard: timeout.map(|timeout| Box::pin(Guard::new(state, timeout))),
        }
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
            Verdict::Keep => Poll::Pending,
            Verdict::Stop => {
                this.guard = None;
                Poll::Pending
            }
            Verdict::Close => {
                tracing::debug!(
                    target: "graceful",
                    "serve: no request head within the header read timeout ({:?}): \
                     connection closed",
                    guard.timeout
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
        timeout: Duration,
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

/// A connection with no request in progress and no response still going out, looked at on
/// consecutive ticks with nothing started in between.
#[derive(Debug, Clone, Copy)]
struct Waiting {
    /// Its requests started when it was first seen waiting: another one ends the wait.
    started: usize,
    /// Ticks since then. The wait began at the most a period before the first of them.
    ticks: u32,
}

/// Ticks in a timeout: a wait is cut between the timeout and a period more.
const TICKS: u32 = 8;

enum Verdict {
    Keep,
    /// Nothing left to guard: an HTTP/2 connection.
    Stop,
    Close,
}

impl Guard {
    fn new(state: Arc<ConnectionState>, timeout: Duration) -> Guard {
        Guard {
            state,
            timeout,
            period: (timeout / TICKS).max(Duration::from_millis(1)),
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
                started: this.state.requests_started(),
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
            match look(this.state, this.waiting) {
                Verdict::Keep => {}
                verdict => return verdict,
            }
            let Some(next) = this.tick.deadline().checked_add(*this.period) else {
                return Verdict::Stop;
            };
            this.tick.as_mut().reset(next);
        }
        Verdict::Keep
    }
}

/// One tick: whether the connection has waited a whole timeout for a request head.
fn look(state: &ConnectionState, waiting: &mut Option<Waiting>) -> Verdict {
    if state.speaks_http2() {
        return Verdict::Stop;
    }
    // Read and cleared at every tick: a response that waited for its client since the last
    // tick means the connection was busy in between.
    let wrote_slowly = state.take_write_waited();
    let started = state.requests_started();
    if state.is_busy() {
        *waiting = None;
        return Verdict::Keep;
    }
    *waiting = match *waiting {
        Some(since) if !wrote_slowly && since.started == started => {
            if since.ticks + 1 >= TICKS {
                return Verdict::Close;
            }
            Some(Waiting {
                ticks: since.ticks + 1,
                ..since
            })
        }
        // It went idle since the last tick.
        _ => Some(Waiting { started, ticks: 0 }),
    };
    Verdict::Keep
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
        let mut guarded = HeaderTimeout::new(Forever, state, Some(TIMEOUT));
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
        let mut guarded = HeaderTimeout::new(Forever, state, None);
        assert_eq!(runs_for(&mut guarded, TIMEOUT * 10).await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_in_progress_is_never_cut_and_the_count_starts_at_its_end() {
        let state = Arc::new(ConnectionState::default());
        let request = state.request_started(false, false);
        let mut guarded = HeaderTimeout::new(Forever, Arc::clone(&state), Some(TIMEOUT));
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
        let mut guarded = HeaderTimeout::new(Forever, Arc::clone(&state), Some(TIMEOUT));
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
        let mut guarded = HeaderTimeout::new(Forever, Arc::clone(&state), Some(TIMEOUT));
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

    #[tokio::test(start_paused = true)]
    async fn http2_connections_are_left_alone() {
        let state = Arc::new(ConnectionState::default());
        let mut guarded = HeaderTimeout::new(Forever, Arc::clone(&state), Some(TIMEOUT));
        state.saw_http2_preface();
        assert_eq!(runs_for(&mut guarded, TIMEOUT * 10).await, None);
        assert!(guarded.guard.is_none(), "its timer is gone");
    }
}
