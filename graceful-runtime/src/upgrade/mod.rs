//! Upgrades in place, as nginx, HAProxy and Envoy do them: the upgrade signal (SIGUSR2) or
//! `graceful::upgrade()` starts this binary again, re-read from disk, with every listener
//! graceful handed out passed as `LISTEN_FDS`; the new process takes them through `bind`'s own
//! socket-activation path, and this one drains once the new one calls `graceful::ready()`. If
//! the new one exits or is not ready in time, this one goes on serving.
//!
//! Files: `outcome.rs` the public result; `requests.rs` one upgrade at a time; `launch.rs` the
//! new process's command line, environment and sockets; `watch.rs` waiting for it, and stopping
//! it; `readiness.rs` the new process's side of the readiness pipe.

#[cfg(all(unix, feature = "upgrade"))]
mod launch;
mod outcome;
#[cfg(all(unix, feature = "upgrade"))]
mod readiness;
#[cfg(all(unix, feature = "upgrade"))]
mod requests;
#[cfg(all(unix, feature = "upgrade"))]
mod watch;

use std::time::Duration;

pub use outcome::{UpgradeError, Upgraded};
#[cfg(all(unix, feature = "upgrade"))]
pub(crate) use requests::Upgrades;

/// How long the old process serves its open connections with `Connection: close` and HTTP/2
/// GOAWAY once the new one is ready, before stop-accepting closes the idle ones: keep-alive
/// clients move over on their next request instead of racing a connection that closes. A
/// pre-stop of its own, whatever `pre_stop` says: there is no load balancer to wait for.
pub(crate) const HANDOVER_PRE_STOP: Duration = Duration::from_secs(1);

/// Names the write end of the readiness pipe in the new process's environment.
#[cfg_attr(not(all(unix, feature = "upgrade")), allow(dead_code))]
const READY_FD_VARIABLE: &str = "GRACEFUL_UPGRADE_READY_FD";

/// The process that started the new one: the readiness pipe is the new process's only while its
/// parent is that process, not in a process the application starts in turn.
#[cfg_attr(not(all(unix, feature = "upgrade")), allow(dead_code))]
const FROM_VARIABLE: &str = "GRACEFUL_UPGRADE_FROM";

/// `upgrade_signal` as `SignalRoles::resolve` takes it: off without upgrades.
pub(crate) fn signal_key(config: &crate::config::Config) -> Option<Option<crate::Signal>> {
    if cfg!(all(unix, feature = "upgrade")) {
        config.upgrade_signal
    } else {
        Some(None)
    }
}

/// Whether this process has handed over to a new one: its shutdown's cause is an upgrade.
#[cfg_attr(not(any(feature = "health", feature = "serve")), allow(dead_code))]
pub(crate) fn handed_over() -> bool {
    #[cfg(all(unix, feature = "upgrade"))]
    return matches!(
        crate::global::controller().shutdown_cause(),
        Some(crate::report::Cause::Upgrade { .. })
    );
    #[cfg(not(all(unix, feature = "upgrade")))]
    false
}

/// Resolves once this process has handed over to a new one; never without upgrades.
#[cfg_attr(not(feature = "health"), allow(dead_code))]
pub(crate) async fn handover() {
    #[cfg(all(unix, feature = "upgrade"))]
    {
        crate::global::controller().shutdown_started().await;
        if handed_over() {
            return;
        }
    }
    std::future::pending::<()>().await;
}

/// The upgrade signal arrived: an upgrade runs, and logs its outcome; nobody waits for it.
pub(crate) fn on_signal(name: &'static str) {
    #[cfg(all(unix, feature = "upgrade"))]
    drop(crate::global::upgrades().request(name));
    #[cfg(not(all(unix, feature = "upgrade")))]
    let _ = name;
}

/// `graceful::upgrade()`.
pub(crate) async fn request() -> Result<Upgraded, UpgradeError> {
    #[cfg(all(unix, feature = "upgrade"))]
    return crate::global::upgrades()
        .request("graceful::upgrade()")
        .await;
    #[cfg(not(all(unix, feature = "upgrade")))]
    Err(UpgradeError::Unsupported)
}

/// At start-up, once the runtime exists: lets upgrades run, and, in a process an upgrade
/// started, arms the readiness pipe. A start-up without upgrades costs one environment look-up
/// and one `getcwd`.
pub(crate) fn install(
    controller: &'static crate::sequence::Controller,
    runtime: &tokio::runtime::Handle,
    config: &crate::config::Config,
) {
    #[cfg(all(unix, feature = "upgrade"))]
    {
        crate::bind::handout::enable();
        readiness::install(controller);
        // Without the health feature nothing takes the previous process's health socket: close
        // it, so that `bind`'s rule never sees it.
        #[cfg(not(feature = "health"))]
        drop(crate::bind::take_health(None));
        controller.subscribe(|event| {
            if let crate::observe::Event::ShutdownBegun { .. } = event {
                crate::bind::handout::release();
            }
        });
        crate::global::upgrades().start(runtime.clone(), config.upgrade_timeout, config.grace);
    }
    #[cfg(not(all(unix, feature = "upgrade")))]
    let _ = (controller, runtime, config);
}
