//! Essential tasks: background work the service cannot run without (a consumer loop, a cache
//! refresher, a replication stream). Counted in flight like a tracked task; one that fails,
//! panics, or ends while the service runs begins the shutdown, and the report and the exit code
//! say so. Nothing restarts it: restarting the process is the supervisor's job.

use std::future::Future;
use std::task::Poll;

use crate::hooks::IntoHookResult;
use crate::panics::poll_isolated;
use crate::report::{EssentialEnd, EssentialFailure};
use crate::sequence::Controller;

/// Spawns `task` as the essential task `name` of `controller`.
pub(crate) fn spawn<F>(controller: &'static Controller, name: &'static str, task: F)
where
    F: Future + Send + 'static,
    F::Output: IntoHookResult,
{
    let site = controller.inflight().site_named(name);
    controller.spawn(site, async move {
        let mut task = std::pin::pin!(task);
        // Caught here rather than by tokio, so that a panic is told apart from an abort at the
        // drain deadline (which drops this future and reports nothing: it is aborted work).
        let ended = std::future::poll_fn(|cx| match poll_isolated(task.as_mut(), cx) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output.into_hook_result())),
            Err(message) => Poll::Ready(Err(message)),
        })
        .await;
        let end = match ended {
            Ok(Ok(())) if controller.is_shutting_down() => return,
            Ok(Ok(())) => EssentialEnd::EndedEarly,
            Ok(Err(error)) => EssentialEnd::Failed(error),
            Err(message) => EssentialEnd::Panicked(message),
        };
        controller.essential_task_failed(EssentialFailure::new(name, end));
    });
}
