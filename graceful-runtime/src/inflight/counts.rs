//! The report types for in-flight calls: totals by kind, and counts by site name.

/// What was in flight, counted apart by kind: a request handled by a tracked fn is one request
/// and one tracked call, so one total would read as two.
///
/// ```
/// # use graceful_runtime as graceful;
/// graceful::on_report(|report| {
///     let counts = report.in_flight_at_stop;
///     // "1 request, 1 connection": a request and its connection, not "2 in flight"
///     println!("{counts} at stop-accepting ({} in all)", counts.total());
/// });
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
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
