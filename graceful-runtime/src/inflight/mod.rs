//! In-flight accounting: cheap counters per call site (striped across threads), the drain wait that the last guard
//! wakes, and the tracked tasks that a drain timeout aborts.

mod protocol;

/// The atomics the protocol runs on; `tests/loom.rs` swaps in loom's.
mod atomic {
    pub(super) use std::sync::atomic::{AtomicUsize, Ordering};
}

use std::collections::HashMap;
use std::future::Future;
use std::panic::Location;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError, RwLock};

use crate::sync::lock;

use tokio::sync::Notify;
use tokio::task::{AbortHandle, JoinHandle};

pub(crate) use protocol::{Counter, Gate};

/// The process-wide registry that `#[graceful::tracked]` sites and [`crate::track`] count into.
pub(crate) static GLOBAL: InFlight = InFlight::new();

/// A set of call sites and the drain state they report to.
///
/// The process uses [`GLOBAL`]; tests create their own and leak them, so that nothing they do
/// is seen by another test.
pub(crate) struct InFlight {
    gate: Gate,
    drained: Notify,
    sites: Mutex<Vec<&'static Site>>,
    named: RwLock<Option<HashMap<&'static str, &'static Site>>>,
    located: RwLock<Option<HashMap<(&'static str, u32), &'static Site>>>,
    tasks: Mutex<Option<HashMap<u64, AbortHandle>>>,
    next_task: AtomicU64,
}

/// One place in the code whose calls are counted: a `#[graceful::tracked]` fn, a name given to
/// [`crate::track`], or the caller of [`crate::spawn`].
#[doc(hidden)]
pub struct Site {
    name: &'static str,
    registry: &'static InFlight,
    /// One counter per stripe; a thread always counts into the same stripe, so threads calling
    /// one hot fn do not contend on one cache line. A site's count is the stripes' sum.
    stripes: [Counter; STRIPES],
    registered: AtomicBool,
    kind: SiteKind,
}

/// What a site counts, so that progress lines count requests, connections and calls apart:
/// a request handled by a tracked fn counts once at each, and "6 in flight" for 3 requests
/// would mislead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(feature = "serve"), allow(dead_code))] // the servers count requests and connections
pub(crate) enum SiteKind {
    /// Tracked fns, `track` guards, tracked tasks.
    Call,
    /// HTTP requests, counted by `serve` or `TrackLayer`.
    Request,
    /// Connections, counted by `serve`.
    Connection,
}

/// Stripes per site: enough for the cores of a typical service host; more threads share.
const STRIPES: usize = 8;

thread_local! {
    /// This thread's stripe, given out round-robin on first use.
    static STRIPE: std::cell::Cell<usize> = const { std::cell::Cell::new(usize::MAX) };
}

/// The calling thread's stripe.
#[inline]
fn stripe() -> usize {
    STRIPE.with(|stripe| {
        let mine = stripe.get();
        if mine != usize::MAX {
            return mine;
        }
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let assigned = NEXT.fetch_add(1, Ordering::Relaxed) % STRIPES;
        stripe.set(assigned);
        assigned
    })
}

/// Counts one call as in flight until it is dropped.
///
/// Made by [`crate::track`] and by `#[graceful::tracked]`. Dropping it (on return, on unwind,
/// or when the future holding it is dropped) counts the call out.
///
/// ```
/// # extern crate graceful_runtime as graceful;
/// let guard = graceful::track("nightly-export");
/// assert!(graceful::in_flight() >= 1);
/// drop(guard);
/// ```
#[must_use = "the call counts as in flight only while the guard is alive"]
pub struct InFlightGuard {
    counter: &'static Counter,
    registry: &'static InFlight,
}

/// What was in flight, counted apart by kind: a request handled by a tracked fn is one request
/// and one tracked call, so one total would read as two.
///
/// ```
/// # use graceful_runtime as graceful;
/// let counts = graceful::report::InFlightCounts { requests: 1, connections: 1, calls: 0 };
/// assert_eq!(counts.to_string(), "1 request, 1 connection");
/// assert_eq!(counts.total(), 2);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InFlightCounts {
    /// HTTP requests (and gRPC calls) counted by `graceful::serve` or `TrackLayer`.
    pub requests: usize,
    /// Connections counted by `graceful::serve`.
    pub connections: usize,
    /// Tracked calls, `track` guards and tracked tasks.
    pub calls: usize,
}

impl InFlightCounts {
    /// Everything counted, whatever its kind.
    pub fn total(&self) -> usize {
        self.requests + self.connections + self.calls
    }
}

impl std::fmt::Display for InFlightCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts = [
            (self.requests, "request"),
            (self.connections, "connection"),
            (self.calls, "tracked call"),
        ];
        let mut written = false;
        for (count, noun) in parts.into_iter().filter(|(count, _)| *count > 0) {
            let plural = if count == 1 { "" } else { "s" };
            let separator = if written { ", " } else { "" };
            write!(f, "{separator}{count} {noun}{plural}")?;
            written = true;
        }
        if !written {
            f.write_str("nothing")?;
        }
        Ok(())
    }
}

/// Calls in flight at one site, or late calls, by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteCount {
    /// The site's name: `module::fn`, the name given to `track`, or `file:line` of a spawn.
    pub name: String,
    /// How many calls.
    pub count: usize,
}

impl std::fmt::Display for SiteCount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} x{}", self.name, self.count)
    }
}

impl std::fmt::Debug for InFlightGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InFlightGuard").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Site {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Site")
            .field("name", &self.name)
            .field("in_flight", &self.in_flight())
            .finish()
    }
}

impl Site {
    /// A site counting into the process-wide registry; `#[graceful::tracked]` makes one static
    /// per annotated fn.
    pub const fn new(name: &'static str) -> Site {
        Site::in_registry(name, &GLOBAL)
    }

    pub(crate) const fn in_registry(name: &'static str, registry: &'static InFlight) -> Site {
        Site::of_kind(name, registry, SiteKind::Call)
    }

    const fn of_kind(name: &'static str, registry: &'static InFlight, kind: SiteKind) -> Site {
        Site {
            name,
            registry,
            kind,
            stripes: [const {
                Counter {
                    word: AtomicUsize::new(0),
                    late: AtomicUsize::new(0),
                }
            }; STRIPES],
            registered: AtomicBool::new(false),
        }
    }

    /// Counts a call in; the returned guard counts it out.
    #[inline]
    pub fn enter(&'static self) -> InFlightGuard {
        // Acquire pairs with the Release in `register`: once we see `true`, the registry's list
        // holds this site, so a drain scan that sees our increment also sees the site.
        if !self.registered.load(Ordering::Acquire) {
            self.register();
        }
        let counter = &self.stripes[stripe()];
        counter.enter(&self.registry.gate);
        InFlightGuard {
            counter,
            registry: self.registry,
        }
    }

    #[cold]
    #[inline(never)]
    fn register(&'static self) {
        let mut sites = lock(&self.registry.sites);
        if !self.registered.load(Ordering::Relaxed) {
            for counter in &self.stripes {
                counter.join(&self.registry.gate);
            }
            sites.push(self);
            self.registered.store(true, Ordering::Release);
        }
    }

    /// Calls of this site in flight now, over every stripe.
    fn in_flight(&self) -> usize {
        self.stripes.iter().map(Counter::in_flight).sum()
    }

    /// Calls of this site that started after teardown had begun.
    fn late(&self) -> usize {
        self.stripes.iter().map(Counter::late).sum()
    }

    /// The site's name in reports.
    pub fn name(&self) -> &'static str {
        self.name
    }
}

impl Drop for InFlightGuard {
    #[inline]
    fn drop(&mut self) {
        if self.counter.exit() {
            self.registry.wake_drain();
        }
    }
}

impl InFlight {
    pub(crate) const fn new() -> InFlight {
        InFlight {
            gate: Gate {
                phase: AtomicUsize::new(0),
                entered_while_draining: AtomicUsize::new(0),
            },
            drained: Notify::const_new(),
            sites: Mutex::new(Vec::new()),
            named: RwLock::new(None),
            located: RwLock::new(None),
            tasks: Mutex::new(None),
            next_task: AtomicU64::new(0),
        }
    }

    /// A fresh registry for a test; it lives until the process exits.
    #[cfg(test)]
    pub(crate) fn leak() -> &'static InFlight {
        Box::leak(Box::new(InFlight::new()))
    }

    #[cold]
    #[inline(never)]
    fn wake_drain(&self) {
        self.drained.notify_waiters();
    }

    /// The one site of this name, made on first use.
    pub(crate) fn site_named(&'static self, name: &'static str) -> &'static Site {
        self.site_of_kind(name, SiteKind::Call)
    }

    /// The one site of this name, made on first use with `kind`.
    pub(crate) fn site_of_kind(&'static self, name: &'static str, kind: SiteKind) -> &'static Site {
        intern(&self.named, name, || Site::of_kind(name, self, kind))
    }

    /// The one site of a `spawn` call's location, named `file:line`.
    pub(crate) fn site_at(&'static self, location: &'static Location<'static>) -> &'static Site {
        intern(&self.located, (location.file(), location.line()), || {
            let name = format!("{}:{}", location.file(), location.line());
            Site::in_registry(Box::leak(name.into_boxed_str()), self)
        })
    }

    /// What is in flight now, requests, connections and other calls counted apart.
    pub(crate) fn counts(&self) -> InFlightCounts {
        let mut counts = InFlightCounts::default();
        for site in lock(&self.sites).iter() {
            let count = site.in_flight();
            match site.kind {
                SiteKind::Call => counts.calls += count,
                SiteKind::Request => counts.requests += count,
                SiteKind::Connection => counts.connections += count,
            }
        }
        counts
    }

    /// Calls now in flight, over every site.
    pub(crate) fn total(&self) -> usize {
        lock(&self.sites).iter().map(|site| site.in_flight()).sum()
    }

    /// Sites with calls in flight, merged by name, busiest first.
    pub(crate) fn busy_sites(&self) -> Vec<SiteCount> {
        self.count_by_name(Site::in_flight)
    }

    /// Every site with its count, zeros included, merged by name (for the metrics gauge).
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) fn all_sites(&self) -> Vec<(&'static str, usize)> {
        let mut merged: Vec<(&'static str, usize)> = Vec::new();
        for site in lock(&self.sites).iter() {
            let count = site.in_flight();
            match merged.iter_mut().find(|(name, _)| *name == site.name) {
                Some((_, total)) => *total += count,
                None => merged.push((site.name, count)),
            }
        }
        merged
    }

    /// Sites with calls that started after teardown had begun.
    pub(crate) fn late_sites(&self) -> Vec<SiteCount> {
        self.count_by_name(Site::late)
    }

    fn count_by_name(&self, count_of: impl Fn(&Site) -> usize) -> Vec<SiteCount> {
        let mut merged: Vec<SiteCount> = Vec::new();
        for site in lock(&self.sites).iter() {
            let count = count_of(site);
            if count == 0 {
                continue;
            }
            match merged.iter_mut().find(|entry| entry.name == site.name) {
                Some(entry) => entry.count += count,
                None => merged.push(SiteCount {
                    name: site.name.to_owned(),
                    count,
                }),
            }
        }
        merged.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
        merged
    }

    /// From now on, a site reaching zero wakes [`InFlight::wait_idle`].
    pub(crate) fn begin_drain(&self) {
        self.advance(protocol::DRAINING);
    }

    /// From now on, calls that start are counted as late.
    pub(crate) fn begin_teardown(&self) {
        self.advance(protocol::TEARDOWN);
    }

    fn advance(&self, bit: usize) {
        let sites = lock(&self.sites);
        self.gate
            .advance(bit, sites.iter().flat_map(|site| &site.stripes));
    }

    /// Resolves once no call is in flight. Event-driven: the guard that brings a site to zero
    /// wakes it; there is no polling. Call after [`InFlight::begin_drain`].
    pub(crate) async fn wait_idle(&self) {
        loop {
            let woken = self.drained.notified();
            let mut woken = std::pin::pin!(woken);
            // Register before scanning, so that a guard dropping between the scan and the await
            // still wakes us (`notify_waiters` stores no permit).
            woken.as_mut().enable();
            if self.is_idle() {
                return;
            }
            woken.await;
        }
    }

    fn is_idle(&self) -> bool {
        let sites = lock(&self.sites);
        self.gate
            .is_idle(sites.iter().flat_map(|site| &site.stripes))
    }

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

/// Looks `key` up in a lazily made map of sites, making and leaking the site on first use.
fn intern<K: std::hash::Hash + Eq + Copy>(
    map: &RwLock<Option<HashMap<K, &'static Site>>>,
    key: K,
    make: impl FnOnce() -> Site,
) -> &'static Site {
    if let Some(site) = map
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()
        .and_then(|sites| sites.get(&key))
    {
        return site;
    }
    let mut sites = map.write().unwrap_or_else(PoisonError::into_inner);
    sites
        .get_or_insert_with(HashMap::new)
        .entry(key)
        .or_insert_with(|| Box::leak(Box::new(make())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn site(registry: &'static InFlight, name: &'static str) -> &'static Site {
        Box::leak(Box::new(Site::in_registry(name, registry)))
    }

    #[test]
    fn guard_counts_in_and_out() {
        let registry = InFlight::leak();
        let upload = site(registry, "app::upload");
        let first = upload.enter();
        let second = upload.enter();
        assert_eq!(registry.total(), 2);
        drop(first);
        assert_eq!(registry.total(), 1);
        drop(second);
        assert_eq!(registry.total(), 0);
    }

    #[test]
    fn sites_of_one_name_merge_in_reports() {
        let registry = InFlight::leak();
        let _a = registry.site_named("export").enter();
        let _b = registry.site_named("export").enter();
        let _c = site(registry, "export").enter();
        let _d = site(registry, "import").enter();
        assert_eq!(
            registry.busy_sites(),
            vec![
                SiteCount {
                    name: "export".into(),
                    count: 3
                },
                SiteCount {
                    name: "import".into(),
                    count: 1
                },
            ]
        );
    }

    #[test]
    fn calls_entered_during_teardown_are_late() {
        let registry = InFlight::leak();
        let hook_side = site(registry, "app::late");
        let before = hook_side.enter();
        registry.begin_drain();
        registry.begin_teardown();
        let late = hook_side.enter();
        assert_eq!(
            registry.late_sites(),
            vec![SiteCount {
                name: "app::late".into(),
                count: 1
            }]
        );
        drop((before, late));
    }

    #[tokio::test(start_paused = true)]
    async fn wait_idle_returns_when_the_last_guard_drops() {
        let registry = InFlight::leak();
        let guard = site(registry, "app::slow").enter();
        registry.begin_drain();
        let waiter = tokio::spawn(registry.wait_idle());
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "drained while a call was in flight");
        drop(guard);
        tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .expect("the last guard did not wake the drain")
            .unwrap();
    }

    #[tokio::test]
    async fn aborted_tasks_count_out() {
        let registry = InFlight::leak();
        let here = site(registry, "task");
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
