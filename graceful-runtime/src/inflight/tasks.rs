//! Tracked tasks: spawned tasks counted in flight until they end, kept abortable so that a
//! drain timeout can stop them.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::Ordering;

use tokio::task::{AbortHandle, JoinHandle};

use super::registry::InFlight;
use super::site::Site;
use crate::sync::lock;

impl InFlight {
    /// Spawns `future` counted in flight at `site` until it finishes; [`InFlight::abort_tasks`]
    /// aborts it.
    pub(crate) fn spawn<F>(&'static self, site: &'static Site, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        // Counted from the spawn, not the first poll, so a drain cannot miss a task that has
        // been spawned but not yet scheduled.
        let guard = site.enter();
        let key = self.next_task.fetch_add(1, Ordering::Relaxed);
        let forget = ForgetTask {
            registry: self,
            key,
        };
        // Holding the lock across spawn: the task forgets itself under the same lock, so its
        // entry can never be inserted after it was removed.
        let mut tasks = lock(&self.tasks);
        let handle = tokio::spawn(async move {
            let _forget = forget;
            let _guard = guard;
            future.await
        });
        tasks
            .get_or_insert_with(HashMap::new)
            .insert(key, handle.abort_handle());
        handle
    }

    /// Aborts every tracked task still running. Returns how many were aborted.
    pub(crate) fn abort_tasks(&self) -> usize {
        let running: Vec<AbortHandle> = lock(&self.tasks)
            .as_mut()
            .map(|tasks| tasks.drain().map(|(_, handle)| handle).collect())
            .unwrap_or_default();
        running.iter().for_each(AbortHandle::abort);
        running.len()
    }
}

/// Removes a tracked task's abort handle when the task ends, however it ends.
struct ForgetTask {
    registry: &'static InFlight,
    key: u64,
}

impl Drop for ForgetTask {
    fn drop(&mut self) {
        if let Some(tasks) = lock(&self.registry.tasks).as_mut() {
            tasks.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::inflight::InFlight;

    #[tokio::test]
    async fn aborted_tasks_count_out() {
        let registry = InFlight::leak();
        let here = registry.leak_site("task");
        let handle = registry.spawn(here, std::future::pending::<()>());
        assert_eq!(registry.total(), 1);
        assert_eq!(registry.abort_tasks(), 1);
        assert!(handle.await.unwrap_err().is_cancelled());
        assert_eq!(registry.total(), 0);
        assert_eq!(
            registry.abort_tasks(),
            0,
            "a finished task was still listed"
        );
    }
}
