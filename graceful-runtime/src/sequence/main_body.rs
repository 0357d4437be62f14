//! The user's main body: what it may return ([`MainOutput`]), and how the sequence polls it
//! beside the shutdown, isolating a panic so that the hooks still run.

use std::future::Future;
use std::pin::Pin;
use std::process::ExitCode;
use std::task::{Context, Poll};

use crate::log::event;
use crate::panics::poll_isolated;
use crate::report::{Deadline, MainStatus};

/// What a graceful main body may return: `()`, `Result<(), E>` where `E: Debug`, or
/// [`ExitCode`]. It bounds [`Builder::run`](crate::Builder::run) and `#[graceful::main]` fns.
///
/// The trait is sealed: the three shapes above are the whole list, because each maps to a
/// documented exit code (0, 1 for an error, or your own `ExitCode`).
///
/// ```
/// # use graceful_runtime as graceful;
/// fn takes_a_main_output<T: graceful::MainOutput>(_: T) {}
/// takes_a_main_output(());
/// takes_a_main_output(Ok::<(), std::io::Error>(()));
/// takes_a_main_output(std::process::ExitCode::from(7));
/// ```
#[diagnostic::on_unimplemented(
    message = "`#[graceful::main]` fns must return `()`, `Result<(), E>` where `E: Debug`, or `std::process::ExitCode`, not `{Self}`",
    label = "this return type is not allowed for a graceful main"
)]
pub trait MainOutput: sealed::Sealed {}

pub(crate) mod sealed {
    /// How the body ended, for the report and the exit code. Public only in a private module:
    /// users can name [`MainOutput`](super::MainOutput) but not implement it.
    pub trait Sealed {
        /// Converts the output into what the sequence records.
        fn into_outcome(self) -> super::MainOutcome;
    }
}

/// A main body's result, as the sequence uses it.
#[derive(Debug)]
#[doc(hidden)]
pub struct MainOutcome {
    pub(crate) status: MainStatus,
    /// The user's own non-success `ExitCode`, kept as it is.
    pub(crate) code: Option<ExitCode>,
}

impl MainOutcome {
    fn with_status(status: MainStatus) -> MainOutcome {
        MainOutcome { status, code: None }
    }
}

impl MainOutput for () {}
impl sealed::Sealed for () {
    fn into_outcome(self) -> MainOutcome {
        MainOutcome::with_status(MainStatus::Returned)
    }
}

impl<E: std::fmt::Debug> MainOutput for Result<(), E> {}
impl<E: std::fmt::Debug> sealed::Sealed for Result<(), E> {
    fn into_outcome(self) -> MainOutcome {
        match self {
            Ok(()) => ().into_outcome(),
            Err(error) => MainOutcome::with_status(MainStatus::Error(format!("{error:?}"))),
        }
    }
}

impl MainOutput for ExitCode {}
impl sealed::Sealed for ExitCode {
    fn into_outcome(self) -> MainOutcome {
        if self == ExitCode::SUCCESS {
            ().into_outcome()
        } else {
            MainOutcome {
                status: MainStatus::ExitCode(format!("{self:?}")),
                code: Some(self),
            }
        }
    }
}

/// Lets generated code point a type error at main's return type.
pub fn assert_main_output<T: MainOutput>() {}

/// The body, polled by the sequence until it returns, panics or is dropped at a deadline.
pub(crate) struct MainBody<F: Future> {
    running: Option<Pin<Box<F>>>,
    finished: Option<MainOutcome>,
}

impl<F: Future<Output: MainOutput>> MainBody<F> {
    pub(crate) fn new(body: F) -> Self {
        MainBody {
            running: Some(Box::pin(body)),
            finished: None,
        }
    }

    pub(crate) fn is_done(&self) -> bool {
        self.running.is_none()
    }

    /// Polls the body to completion; pending forever once it is done, so that `select!` arms
    /// built on it never fire twice.
    pub(crate) async fn run(&mut self) {
        std::future::poll_fn(|cx| self.poll_body(cx)).await
    }

    fn poll_body(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(body) = self.running.as_mut() else {
            return Poll::Pending;
        };
        // The panic is reported and the sequence still runs: exit 101 after teardown.
        let outcome = match poll_isolated(body.as_mut(), cx) {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(output)) => sealed::Sealed::into_outcome(output),
            Err(message) => {
                event!(Error, "main body panicked: {message}");
                MainOutcome::with_status(MainStatus::Panicked(message))
            }
        };
        self.running = None;
        self.finished = Some(outcome);
        Poll::Ready(())
    }

    /// Drops a body still running when `deadline` fired.
    pub(crate) fn abandon(&mut self, deadline: Deadline) {
        if self.running.take().is_some() {
            self.finished = Some(MainOutcome::with_status(MainStatus::Dropped(deadline)));
        }
    }

    pub(crate) fn into_outcome(self) -> MainOutcome {
        // A body the drain never had to abandon, yet never finished: only possible when the
        // grace period cut the sequence short before the drain.
        self.finished
            .unwrap_or(MainOutcome::with_status(MainStatus::Dropped(
                Deadline::Grace,
            )))
    }
}
