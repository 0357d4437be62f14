//! One counted place in the code, its counter striped across threads so that callers of one
//! hot fn do not contend on a cache line; entering it is the hot path.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::guard::InFlightGuard;
use super::protocol::Counter;
use super::registry::InFlight;
use crate::sync::lock;

/// One place in the code whose calls are counted: a `#[graceful::tracked]` fn, a name given to
/// [`crate::track`], or the caller of [`crate::spawn`].
#[doc(hidden)]
pub struct Site {
    pub(super) name: &'static str,
    pub(super) registry: &'static InFlight,
    /// One counter per stripe; a thread always counts into the same stripe, so threads calling
    /// one hot fn do not contend on one cache line. A site's count is the stripes' sum.
    pub(super) stripes: [Counter; STRIPES],
    registered: AtomicBool,
    pub(super) kind: SiteKind,
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

impl std::fmt::Debug for Site {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Site")
            .field("name", &self.name)
            .field("in_flight", &self.in_flight())
            .finish()
    }
}

impl Site {
    pub(crate) const fn in_registry(name: &'static str, registry: &'static InFlight) -> Site {
        Site::of_kind(name, registry, SiteKind::Call)
    }

    pub(super) const fn of_kind(
        name: &'static str,
        registry: &'static InFlight,
        kind: SiteKind,
    ) -> Site {
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
    pub(super) fn in_flight(&self) -> usize {
        self.stripes.iter().map(Counter::in_flight).sum()
    }

    /// Calls of this site that started after teardown had begun.
    pub(super) fn late(&self) -> usize {
        self.stripes.iter().map(Counter::late).sum()
    }

    /// The site's name in reports.
    pub fn name(&self) -> &'static str {
        self.name
    }
}
