//! The order hooks run in: ascending `order`, equal orders together, each under its own
//! timeout and all under the grace deadline.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use super::outcome::{HookOutcome, HookReport};
use super::run::Hook;

/// Runs `hooks` in ascending order, equal orders concurrently, each under its own timeout
/// (`default_timeout` unless the hook has one) and all under `grace_deadline`. A failure does
/// not stop the hooks after it.
pub(crate) async fn run_all(
    mut hooks: Vec<Hook>,
    default_timeout: Duration,
    grace_deadline: Instant,
) -> Vec<HookReport> {
    // Stable: hooks of one order keep their table order in the report.
    hooks.sort_by_key(|hook| hook.order);
    let mut reports = Vec::with_capacity(hooks.len());
    let mut remaining = hooks.into_iter().peekable();
    while let Some(first) = remaining.next() {
        let order = first.order;
        let mut group = vec![first];
        while let Some(next) = remaining.next_if(|hook| hook.order == order) {
            group.push(next);
        }
        if Instant::now() >= grace_deadline {
            reports.extend(
                group
                    .into_iter()
                    .map(|hook| not_run(hook, HookOutcome::Skipped)),
            );
            continue;
        }
        let running: Vec<_> = group
            .into_iter()
            .map(|hook| run_one(hook, default_timeout, grace_deadline))
            .collect();
        reports.extend(join_all(running).await);
    }
    reports
}

/// The report line of a hook that did not run, and why.
pub(crate) fn not_run(hook: Hook, outcome: HookOutcome) -> HookReport {
    HookReport {
        order: hook.order,
        name: hook.name.into_owned(),
        outcome,
        elapsed: Duration::ZERO,
    }
}

async fn run_one(hook: Hook, default_timeout: Duration, grace_deadline: Instant) -> HookReport {
    let limit = hook.timeout.unwrap_or(default_timeout);
    let started = Instant::now();
    let own_deadline = started + limit;
    let deadline = own_deadline.min(grace_deadline);
    let order = hook.order;
    let name = hook.name.to_string();
    let mut running = hook.start();
    let outcome = match tokio::time::timeout_at(deadline, &mut running).await {
        Ok(outcome) => outcome,
        Err(_elapsed) => {
            running.cancel();
            if own_deadline <= grace_deadline {
                HookOutcome::TimedOut(limit)
            } else {
                HookOutcome::Skipped
            }
        }
    };
    HookReport {
        order,
        name,
        outcome,
        elapsed: started.elapsed(),
    }
}

/// Awaits every future, concurrently, keeping their order.
///
/// Written here rather than taken from `futures-util`'s `join_all`: the runtime depends on no
/// futures crate (only `futures-core`, for gRPC), and this loop does not justify one. A group of
/// hooks is a handful, so polling every unfinished one on each wake costs nothing worth saving.
async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => *output = Some(value),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}
