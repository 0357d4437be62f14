//! The shutdown budget: the longest the sequence can take (pre-stop, the drain timeout, the
//! abandon timeout where work hands itself back, then the longest hook timeout of each order
//! group, one group after the other), checked against
//! `grace` at start-up and again whenever a registered hook makes it longer; and the stop
//! timeout the platform must allow before it sends SIGKILL.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use crate::config::Config;
use crate::hooks::StaticHook;
use crate::log::human;

/// How long the watchdog lets the sequence overrun `grace` before it forces the exit. The
/// sequence enforces `grace` itself; this only catches a runtime that is blocked.
pub(crate) const WATCHDOG_MARGIN: Duration = Duration::from_millis(500);

/// How late a deadline may be noticed before the lateness is taken for a process that was
/// stopped (SIGSTOP, a frozen cgroup, a debugger, a paused VM) rather than a busy machine. The
/// monotonic clock runs on while a process is stopped, so its deadlines all pass at once.
pub(crate) const PAUSE_TOLERANCE: Duration = Duration::from_millis(100);

/// What the sequence may spend, phase by phase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Budget {
    pre_stop: Duration,
    drain_timeout: Duration,
    hook_timeout: Duration,
    grace: Duration,
    abandon_timeout: Duration,
    /// Whether `deadline_token()` has been called: only then does the drain wait
    /// `abandon_timeout` for work to hand itself back.
    abandon_counted: bool,
    /// The longest hook timeout of each order: groups run one after the other.
    groups: BTreeMap<i32, Duration>,
}

impl Budget {
    /// The budget of `config` with the `#[graceful::on_shutdown]` hooks linked in.
    pub(crate) fn new(config: &Config, static_hooks: &[StaticHook]) -> Budget {
        let mut budget = Budget {
            pre_stop: config.pre_stop,
            drain_timeout: config.drain_timeout,
            hook_timeout: config.hook_timeout,
            grace: config.grace,
            abandon_timeout: config.abandon_timeout,
            abandon_counted: false,
            groups: BTreeMap::new(),
        };
        for hook in static_hooks {
            budget.add_hook(hook.order, hook.timeout);
        }
        budget
    }

    /// Counts one more hook; returns whether the worst case grew.
    pub(crate) fn add_hook(&mut self, order: i32, timeout: Option<Duration>) -> bool {
        let timeout = timeout.unwrap_or(self.hook_timeout);
        let longest = self.groups.entry(order).or_default();
        let grew = timeout > *longest;
        *longest = (*longest).max(timeout);
        grew
    }

    /// Counts `abandon_timeout` from now on: the deadline token is in use. Returns whether
    /// the worst case grew.
    pub(crate) fn count_abandon(&mut self) -> bool {
        let grew = !self.abandon_counted && !self.abandon_timeout.is_zero();
        self.abandon_counted = true;
        grew
    }

    fn abandon(&self) -> Duration {
        if self.abandon_counted {
            self.abandon_timeout
        } else {
            Duration::ZERO
        }
    }

    fn hooks(&self) -> Duration {
        self.groups.values().sum()
    }

    /// The longest the sequence can take when every phase runs to its timeout.
    pub(crate) fn worst_case(&self) -> Duration {
        self.pre_stop + self.drain_timeout + self.abandon() + self.hooks()
    }

    /// How long the platform must wait between its stop signal and SIGKILL: `grace`, plus the
    /// watchdog's margin for a blocked runtime, rounded up to whole seconds as platforms take it.
    pub(crate) fn platform_stop_timeout(&self) -> Duration {
        let needed = self.grace + WATCHDOG_MARGIN;
        Duration::from_secs(needed.as_secs() + u64::from(needed.subsec_nanos() > 0))
    }

    /// Each figure and its sum: `pre_stop 2s + drain_timeout 15s + hooks 5s (order 10: 5s) = 22s`.
    pub(crate) fn breakdown(&self) -> String {
        let mut text = format!(
            "pre_stop {} + drain_timeout {} + ",
            human(self.pre_stop),
            human(self.drain_timeout),
        );
        if self.abandon_counted {
            let _ = write!(text, "abandon_timeout {} + ", human(self.abandon_timeout));
        }
        let _ = write!(text, "hooks {}", human(self.hooks()));
        if !self.groups.is_empty() {
            let groups: Vec<String> = self
                .groups
                .iter()
                .map(|(order, longest)| format!("order {order}: {}", human(*longest)))
                .collect();
            let _ = write!(text, " ({})", groups.join(", "));
        }
        let _ = write!(text, " = {}", human(self.worst_case()));
        text
    }

    /// A warning when the worst case does not fit in `grace`: then grace cuts the sequence
    /// short and the hooks after the cut are skipped.
    pub(crate) fn warning(&self) -> Option<String> {
        (self.worst_case() > self.grace).then(|| {
            format!(
                "the shutdown can take {}, more than grace ({}): when every phase runs long, grace cuts the sequence and the hooks after the cut are skipped; lower the timings together or raise grace",
                self.breakdown(),
                human(self.grace)
            )
        })
    }

    /// The start-up line: the budget, and the stop timeout it needs from the platform.
    pub(crate) fn summary(&self) -> String {
        let stop = self.platform_stop_timeout().as_secs();
        format!(
            "shutdown budget: {} within grace {}; give the platform at least {stop}s between its stop signal and SIGKILL (docker stop -t {stop} or stop_grace_period: {stop}s, terminationGracePeriodSeconds: {stop}, TimeoutStopSec={stop}s)",
            self.breakdown(),
            human(self.grace)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pre_stop: u64, drain_timeout: u64, hook_timeout: u64, grace: u64) -> Config {
        Config {
            pre_stop: Duration::from_secs(pre_stop),
            drain_timeout: Duration::from_secs(drain_timeout),
            hook_timeout: Duration::from_secs(hook_timeout),
            grace: Duration::from_secs(grace),
            ..Config::default()
        }
    }

    #[test]
    fn hooks_count_the_longest_timeout_of_each_order_group() {
        let mut budget = Budget::new(&config(2, 15, 5, 28), &[]);
        assert!(budget.warning().is_none());
        assert!(budget.add_hook(10, None));
        assert!(
            !budget.add_hook(10, Some(Duration::from_secs(1))),
            "a shorter hook of the same order runs alongside"
        );
        assert!(budget.add_hook(20, Some(Duration::from_secs(3))));
        assert_eq!(budget.worst_case(), Duration::from_secs(2 + 15 + 5 + 3));
        assert_eq!(
            budget.breakdown(),
            "pre_stop 2s + drain_timeout 15s + hooks 8s (order 10: 5s, order 20: 3s) = 25s"
        );
        assert!(budget.warning().is_none());
        assert!(budget.add_hook(30, None));
        let warning = budget.warning().expect("30s does not fit in 28s");
        assert!(
            warning.contains("= 30s, more than grace (28s)"),
            "{warning}"
        );
    }

    #[test]
    fn abandon_timeout_counts_once_the_deadline_token_is_used() {
        let mut budget = Budget::new(&config(2, 15, 5, 28), &[]);
        assert!(!budget.breakdown().contains("abandon_timeout"));
        assert!(budget.count_abandon());
        assert!(!budget.count_abandon(), "counted once");
        assert_eq!(
            budget.breakdown(),
            "pre_stop 2s + drain_timeout 15s + abandon_timeout 1s + hooks 0s = 18s"
        );
    }

    #[test]
    fn the_platform_must_wait_grace_plus_the_watchdog_margin_in_whole_seconds() {
        let budget = Budget::new(&config(5, 15, 5, 28), &[]);
        assert_eq!(budget.platform_stop_timeout(), Duration::from_secs(29));
        assert!(
            budget.summary().contains("docker stop -t 29"),
            "{}",
            budget.summary()
        );
    }
}
