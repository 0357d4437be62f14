//! The process-wide instances: the controller behind the free functions and
//! `#[graceful::main]`, and what follows it once per process. The integrations take the
//! controller they serve as a value; only their public constructors reach for this one.

use std::sync::LazyLock;

use crate::sequence::Controller;

static CONTROLLER: LazyLock<Controller> =
    LazyLock::new(|| Controller::new(&crate::inflight::GLOBAL));

/// The controller of the process.
pub(crate) fn controller() -> &'static Controller {
    &CONTROLLER
}

/// The process controller's health as a channel, subscribed on first use: once per process,
/// since each subscription lasts as long as the controller.
#[cfg(feature = "grpc")]
pub(crate) fn grpc_health_feed() -> crate::grpc::HealthFeed {
    static FEED: std::sync::OnceLock<crate::grpc::HealthFeed> = std::sync::OnceLock::new();
    FEED.get_or_init(|| crate::grpc::HealthFeed::follow(controller()))
        .clone()
}
