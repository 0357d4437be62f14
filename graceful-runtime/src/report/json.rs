//! The report as one line of JSON, schema version 1 (documented in the README). Field values
//! are part of the schema: `timed_out` and `grace_spent` stay distinct.

use std::time::Duration;

use serde_json::json;

use super::{Cause, Deadline, DrainOutcome, MainStatus, ShutdownReport};
use crate::hooks::HookOutcome;
use crate::inflight::SiteCount;

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn sites_json(list: &[SiteCount]) -> serde_json::Value {
    list.iter()
        .map(|site| serde_json::json!({ "site": site.name, "count": site.count }))
        .collect()
}

impl ShutdownReport {
    /// The report as one line of JSON (schema version 1, documented in the README).
    pub fn to_json(&self) -> String {
        let cause = match &self.cause {
            Cause::Signal(name) => json!({ "kind": "signal", "signal": name }),
            Cause::Requested => json!({ "kind": "shutdown" }),
            Cause::MainReturned => json!({ "kind": "main_returned" }),
            Cause::EssentialTask(failure) => {
                json!({ "kind": "essential_task", "task": failure.task, "error": failure.error() })
            }
            Cause::Fatal { code, reason } => {
                json!({ "kind": "shutdown_with", "code": code, "reason": reason })
            }
        };
        let phases: Vec<_> = self
            .phases
            .iter()
            .map(|(phase, duration)| json!({ "phase": phase.as_str(), "ms": millis(*duration) }))
            .collect();
        let drain = match &self.drain {
            DrainOutcome::Drained => {
                json!({ "outcome": "drained", "abandoned": [], "aborted_tasks": 0, "handed_back": [] })
            }
            DrainOutcome::HandedBack { handed_back, .. } => {
                json!({ "outcome": "handed_back", "abandoned": [], "aborted_tasks": 0, "handed_back": sites_json(handed_back) })
            }
            DrainOutcome::TimedOut {
                deadline,
                abandoned,
                aborted_tasks,
                handed_back,
            } => {
                let outcome = match deadline {
                    Deadline::DrainTimeout => "timed_out",
                    Deadline::Grace => "grace_spent",
                };
                json!({ "outcome": outcome, "abandoned": sites_json(abandoned), "aborted_tasks": aborted_tasks, "handed_back": sites_json(handed_back) })
            }
        };
        let hooks: Vec<_> = self
            .hooks
            .iter()
            .map(|hook| {
                let (outcome, detail) = match &hook.outcome {
                    HookOutcome::Completed => ("ok", None),
                    HookOutcome::Failed(error) => ("failed", Some(error.clone())),
                    HookOutcome::Panicked(message) => ("panicked", Some(message.clone())),
                    HookOutcome::TimedOut(limit) => ("timed_out", Some(crate::log::human(*limit).to_string())),
                    HookOutcome::Skipped => ("skipped", None),
                    HookOutcome::Late => ("late", None),
                    HookOutcome::Interrupted => ("interrupted", None),
                };
                json!({ "order": hook.order, "name": hook.name, "outcome": outcome, "detail": detail, "ms": millis(hook.elapsed) })
            })
            .collect();
        let main = match &self.main {
            MainStatus::Returned => json!({ "status": "returned" }),
            MainStatus::Error(error) => json!({ "status": "error", "detail": error }),
            MainStatus::ExitCode(code) => json!({ "status": "exit_code", "detail": code }),
            MainStatus::Panicked(message) => json!({ "status": "panicked", "detail": message }),
            MainStatus::Dropped(_) => json!({ "status": "dropped" }),
        };
        json!({
            "graceful_report": 1,
            "cause": cause,
            "phases": phases,
            "total_ms": millis(self.total()),
            "in_flight_at_stop": self.in_flight_at_stop.total(),
            "in_flight_at_stop_by_kind": {
                "requests": self.in_flight_at_stop.requests,
                "connections": self.in_flight_at_stop.connections,
                "calls": self.in_flight_at_stop.calls,
            },
            "drain": drain,
            "hooks": hooks,
            "late_calls": sites_json(&self.late_calls),
            "main": main,
            "shutdown_with": self.fatal.as_ref().map(|fatal| json!({ "code": fatal.code, "reason": fatal.reason })),
            "essential_failures": self.essential_failures.iter().map(|failure| json!({ "task": failure.task, "error": failure.error() })).collect::<Vec<_>>(),
            "failed": self.has_failures(),
            "exit_code": self.exit_code,
        })
        .to_string()
    }
}
