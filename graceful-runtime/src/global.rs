//! The process-wide instances: the in-flight registry and the controller behind the free
//! functions, `#[graceful::tracked]` and `#[graceful::main]`, and what follows them once per
//! process. The integrations take the
//! controller they serve as a value; only their public constructors reach for this one.

use std::sync::LazyLock;

use crate::inflight::{InFlight, Site};
use crate::reload::Reloads;
use crate::sequence::Controller;

/// The registry that `#[graceful::tracked]` sites, `track` and `spawn` count into: a static, so
/// that the macro's sites can be statics too.
static IN_FLIGHT: InFlight = InFlight::new();

static CONTROLLER: LazyLock<Controller> = LazyLock::new(|| Controller::new(&IN_FLIGHT));

impl Site {
    /// A site counting into the process-wide registry; `#[graceful::tracked]` makes one static
    /// per annotated fn.
    pub const fn new(name: &'static str) -> Site {
        Site::in_registry(name, &IN_FLIGHT)
    }
}

/// The controller of the process.
pub(crate) fn controller() -> &'static Controller {
    &CONTROLLER
}

static RELOADS: LazyLock<Reloads> =
    LazyLock::new(|| Reloads::new(controller(), &crate::hooks::RELOAD_HOOKS));

/// The reloads of the process: SIGHUP, `graceful::reload()`, the reload hooks.
pub(crate) fn reloads() -> &'static Reloads {
    &RELOADS
}

/// The process controller's health as a channel, subscribed on first use: once per process,
/// since each subscription lasts as long as the controller.
#[cfg(feature = "grpc")]
pub(crate) fn grpc_health_feed() -> crate::grpc::HealthFeed {
    static FEED: std::sync::OnceLock<crate::grpc::HealthFeed> = std::sync::OnceLock::new();
    FEED.get_or_init(|| crate::grpc::HealthFeed::follow(controller()))
        .clone()
}
