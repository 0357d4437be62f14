//! What the registry can say about its sites: totals by kind, and counts merged by site name
//! for progress lines, the report and the metrics gauge.

use super::counts::{InFlightCounts, SiteCount};
use super::registry::InFlight;
use super::site::{Site, SiteKind};
use crate::sync::lock;

impl InFlight {
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
        self.merge_by_name(Site::in_flight)
    }

    /// Sites with calls that started after teardown had begun.
    pub(crate) fn late_sites(&self) -> Vec<SiteCount> {
        self.count_by_name(Site::late)
    }

    /// The names with a count above zero, busiest first, ties by name so that reports are
    /// stable.
    fn count_by_name(&self, count_of: impl Fn(&Site) -> usize) -> Vec<SiteCount> {
        let mut counted: Vec<SiteCount> = self
            .merge_by_name(count_of)
            .into_iter()
            .filter(|&(_, count)| count > 0)
            .map(|(name, count)| SiteCount {
                name: name.to_owned(),
                count,
            })
            .collect();
        counted.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
        counted
    }

    /// Every name with the sum of `count_of` over its sites, in the order the names were first
    /// registered. Sites share a name when tracked fns and `track` calls are given the same
    /// one, and a reader wants one line per name.
    fn merge_by_name(&self, count_of: impl Fn(&Site) -> usize) -> Vec<(&'static str, usize)> {
        let mut merged: Vec<(&'static str, usize)> = Vec::new();
        for site in lock(&self.sites).iter() {
            let count = count_of(site);
            match merged.iter_mut().find(|(name, _)| *name == site.name) {
                Some((_, total)) => *total += count,
                None => merged.push((site.name, count)),
            }
        }
        merged
    }
}

#[cfg(test)]
mod tests {
    use crate::inflight::{InFlight, SiteCount};

    #[test]
    fn sites_of_one_name_merge_in_reports() {
        let registry = InFlight::leak();
        let _a = registry.site_named("export").enter();
        let _b = registry.site_named("export").enter();
        let _c = registry.leak_site("export").enter();
        let _d = registry.leak_site("import").enter();
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
    fn every_site_is_listed_merged_by_name_with_idle_ones_at_zero() {
        let registry = InFlight::leak();
        let _a = registry.site_named("export").enter();
        drop(registry.leak_site("idle").enter());
        let _b = registry.leak_site("export").enter();
        assert_eq!(registry.all_sites(), vec![("export", 2), ("idle", 0)]);
        assert_eq!(
            registry.busy_sites(),
            vec![SiteCount {
                name: "export".into(),
                count: 2
            }]
        );
    }
}
