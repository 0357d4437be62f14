//! How one hook runs: where it is started (blocking pool, a task of its own, or in place), and
//! how its end, error or panic becomes a [`HookOutcome`].

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::task::JoinHandle;

use super::abi::{box_hook, BoxHookFuture, HookFn, HookResult, IntoHookResult, StaticHook};
use super::outcome::HookOutcome;

type RegisteredFn = Box<dyn FnOnce() -> BoxHookFuture + Send>;

/// A hook ready to run: static or registered.
pub(crate) struct Hook {
    pub(super) order: i32,
    pub(super) name: Cow<'static, str>,
    pub(super) timeout: Option<Duration>,
    body: HookBody,
}

enum HookBody {
    Static(HookFn),
    Registered(RegisteredFn),
}

impl Hook {
    pub(crate) fn from_static(hook: &StaticHook) -> Hook {
        Hook {
            order: hook.order,
            name: Cow::Borrowed(hook.name),
            timeout: hook.timeout,
            body: HookBody::Static(hook.run),
        }
    }

    pub(crate) fn registered<F, Fut>(order: i32, name: Cow<'static, str>, hook: F) -> Hook
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: IntoHookResult,
    {
        Hook {
            order,
            name,
            timeout: None,
            body: HookBody::Registered(Box::new(move || box_hook(hook()))),
        }
    }

    /// Lower runs first.
    pub(crate) fn order(&self) -> i32 {
        self.order
    }

    /// Starts the hook. A sync hook runs on the blocking pool. An async hook gets a task of its
    /// own on a multi-thread runtime, so that one blocking its thread cannot hold teardown; on a
    /// current-thread runtime a task would share the one thread anyway, so teardown polls it in
    /// place and the hook starts without a spawn's round trip through the scheduler.
    pub(super) fn start(self) -> Started {
        let in_place = tokio::runtime::Handle::current().runtime_flavor()
            == tokio::runtime::RuntimeFlavor::CurrentThread;
        match self.body {
            HookBody::Static(HookFn::Sync(hook)) => {
                Started::Task(tokio::task::spawn_blocking(hook))
            }
            HookBody::Static(HookFn::Async(hook)) if in_place => Started::in_place(hook),
            HookBody::Static(HookFn::Async(hook)) => {
                Started::Task(tokio::spawn(async move { hook().await }))
            }
            HookBody::Registered(hook) if in_place => Started::in_place(hook),
            // Called inside the task, so that a panic while building the future is caught too.
            HookBody::Registered(hook) => Started::Task(tokio::spawn(async move { hook().await })),
        }
    }
}

/// A hook that has started; resolves to how it ended. Dropping it cancels an async hook.
pub(super) enum Started {
    Task(JoinHandle<HookResult>),
    /// Panics are caught at each poll, as a task's would be.
    InPlace(BoxHookFuture),
    /// Building its future panicked.
    Ended(Option<HookOutcome>),
}

impl Started {
    fn in_place(build: impl FnOnce() -> BoxHookFuture) -> Started {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(build)) {
            Ok(future) => Started::InPlace(future),
            Err(payload) => Started::Ended(Some(HookOutcome::Panicked(
                crate::panics::panic_message(payload.as_ref()),
            ))),
        }
    }

    /// Cancels an async hook; a sync one keeps its blocking thread, which the process abandons:
    /// exit never waits for the blocking pool.
    pub(super) fn cancel(self) {
        if let Started::Task(handle) = self {
            handle.abort();
        }
    }
}

impl Future for Started {
    type Output = HookOutcome;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<HookOutcome> {
        let result = match self.get_mut() {
            Started::Task(handle) => match std::task::ready!(Pin::new(handle).poll(cx)) {
                Ok(result) => result,
                Err(join_error) if join_error.is_panic() => {
                    let payload = join_error.into_panic();
                    return Poll::Ready(HookOutcome::Panicked(crate::panics::panic_message(
                        payload.as_ref(),
                    )));
                }
                Err(_cancelled) => Err("cancelled".into()),
            },
            Started::InPlace(future) => match crate::panics::poll_isolated(future.as_mut(), cx) {
                Ok(Poll::Pending) => return Poll::Pending,
                Ok(Poll::Ready(result)) => result,
                Err(message) => return Poll::Ready(HookOutcome::Panicked(message)),
            },
            Started::Ended(outcome) => {
                return Poll::Ready(outcome.take().expect("polled after it ended"))
            }
        };
        Poll::Ready(match result {
            Ok(()) => HookOutcome::Completed,
            Err(error) => HookOutcome::Failed(error),
        })
    }
}
