//! Exposes in-flight counts and phase durations through the `metrics` facade (feature
//! `metrics`), as an observer of the sequence. The gauge is sampled on a tick and at each phase
//! change, never per call, so the hot path stays a single atomic operation.

#[cfg(feature = "metrics")]
use std::time::Duration;

use crate::sequence::Controller;
#[cfg(feature = "metrics")]
use crate::{inflight::InFlight, phase::Phase};

#[cfg(feature = "metrics")]
mod imp {
    use super::*;
    use crate::observe::Event;

    /// How often the in-flight gauge is sampled while the process runs.
    const SAMPLE_EVERY: Duration = Duration::from_secs(1);

    /// Sets `graceful_in_flight{site}` for every site, zeros included, so a site that drained
    /// shows 0 rather than its last busy value.
    pub(crate) fn sample(inflight: &InFlight) {
        for (site, count) in inflight.all_sites() {
            metrics::gauge!("graceful_in_flight", "site" => site).set(count as f64);
        }
    }

    /// Records one finished phase in `graceful_shutdown_phase_seconds{phase}`.
    pub(crate) fn record_phase(phase: Phase, duration: Duration) {
        metrics::histogram!("graceful_shutdown_phase_seconds", "phase" => phase.as_str())
            .record(duration.as_secs_f64());
    }

    /// Subscribes to phase changes, and samples the gauge every [`SAMPLE_EVERY`] until the
    /// process exits. Call inside the application's runtime.
    pub(crate) fn install(controller: &'static Controller) {
        let inflight = controller.inflight();
        controller.subscribe(move |event| match event {
            Event::PhaseEntered(_) => sample(inflight),
            Event::PhaseEnded(phase, duration) => record_phase(*phase, *duration),
            _ => {}
        });
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(SAMPLE_EVERY);
            loop {
                ticks.tick().await;
                sample(inflight);
            }
        });
    }
}

#[cfg(feature = "metrics")]
pub(crate) use imp::install;

/// Without the `metrics` feature there is nothing to record.
#[cfg(not(feature = "metrics"))]
pub(crate) fn install(_controller: &'static Controller) {}

#[cfg(all(test, feature = "metrics"))]
mod tests {
    use super::imp::{record_phase, sample};
    use super::*;
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    #[test]
    fn the_gauge_reports_each_site_and_zeros_after_draining() {
        let registry: &'static InFlight = Box::leak(Box::new(InFlight::new()));
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let guard = registry.site_named("app::upload").enter();
        let _other = registry.site_named("app::export").enter();
        metrics::with_local_recorder(&recorder, || sample(registry));
        drop(guard);
        metrics::with_local_recorder(&recorder, || {
            sample(registry);
            record_phase(Phase::Drain, Duration::from_millis(250));
        });
        // (metric name, labels as "key=value,..", value)
        let values: Vec<(String, String, DebugValue)> = snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .map(|(key, _, _, value)| {
                let labels: Vec<String> = key
                    .key()
                    .labels()
                    .map(|label| format!("{}={}", label.key(), label.value()))
                    .collect();
                (key.key().name().to_owned(), labels.join(","), value)
            })
            .collect();
        let find = |name: &str, labels: &str| {
            values.iter().find_map(|(metric, metric_labels, value)| {
                (metric == name && metric_labels == labels).then_some(value)
            })
        };
        assert_eq!(
            find("graceful_in_flight", "site=app::upload"),
            Some(&DebugValue::Gauge(0.0.into()))
        );
        assert_eq!(
            find("graceful_in_flight", "site=app::export"),
            Some(&DebugValue::Gauge(1.0.into()))
        );
        assert!(find("graceful_shutdown_phase_seconds", "phase=drain").is_some());
    }
}
