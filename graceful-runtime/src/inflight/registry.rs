//! The registry a site counts into: the list of sites a drain scans, and the maps that give
//! each name or spawn location one site, made on first use.

use std::collections::HashMap;
use std::panic::Location;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Mutex, PoisonError, RwLock};

use tokio::sync::Notify;
use tokio::task::AbortHandle;

use super::protocol::Gate;
use super::site::{Site, SiteKind};

/// A set of call sites and the drain state they report to.
///
/// The process uses the one in `global.rs`; tests create their own and leak them, so that nothing they do
/// is seen by another test.
pub(crate) struct InFlight {
    pub(super) gate: Gate,
    pub(super) drained: Notify,
    pub(super) sites: Mutex<Vec<&'static Site>>,
    named: RwLock<Option<HashMap<&'static str, &'static Site>>>,
    located: RwLock<Option<HashMap<(&'static str, u32), &'static Site>>>,
    pub(super) tasks: Mutex<Option<HashMap<u64, AbortHandle>>>,
    pub(super) next_task: AtomicU64,
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

    /// A site of this registry for a test, apart from the interned ones even when it shares
    /// their name; it lives until the process exits.
    #[cfg(test)]
    pub(super) fn leak_site(&'static self, name: &'static str) -> &'static Site {
        Box::leak(Box::new(Site::in_registry(name, self)))
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
