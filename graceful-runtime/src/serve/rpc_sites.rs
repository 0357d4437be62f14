//! gRPC calls counted by method, so that the report says `/pkg.Svc/Method x2` rather than
//! `http x2`. Paths come from clients, so the names kept are bounded: past the limit, calls
//! count under `http` like any request.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use http::Request;

use crate::inflight::{InFlight, Site, SiteKind};

/// Distinct method paths given a site of their own; a service has a few dozen at most.
const MOST_METHODS: usize = 256;

/// Open addressing, at most half full, so that a lookup ends within a few probes. A slot, once
/// set, never changes: a lookup takes no lock, which every gRPC call does.
const SLOTS: usize = 2 * MOST_METHODS;

/// The sites given to gRPC methods so far by one server.
pub(crate) struct RpcSites {
    slots: [OnceLock<&'static Site>; SLOTS],
    named: AtomicUsize,
    /// Seeded per process: paths come from clients, who must not be able to aim at one slot.
    hasher: RandomState,
}

impl RpcSites {
    pub(crate) fn new() -> RpcSites {
        RpcSites {
            slots: [const { OnceLock::new() }; SLOTS],
            named: AtomicUsize::new(0),
            hasher: RandomState::new(),
        }
    }

    /// The site a request counts under: its method path for a gRPC call (`content-type:
    /// application/grpc...`), else `fallback`.
    pub(crate) fn site_for<B>(
        &self,
        request: &Request<B>,
        inflight: &'static InFlight,
        fallback: &'static Site,
    ) -> &'static Site {
        let is_grpc = request
            .headers()
            .get(http::header::CONTENT_TYPE)
            .is_some_and(|value| value.as_bytes().starts_with(b"application/grpc"));
        if !is_grpc {
            return fallback;
        }
        let path = request.uri().path();
        // The remainder is below SLOTS: the cast back cannot truncate.
        let first = (self.hasher.hash_one(path) % SLOTS as u64) as usize;
        for probe in 0..SLOTS {
            let slot = &self.slots[(first + probe) % SLOTS];
            let site = match slot.get() {
                Some(site) => site,
                None => {
                    if self.named.load(Ordering::Relaxed) >= MOST_METHODS {
                        return fallback;
                    }
                    // Two callers may race for this slot with different paths: one wins, and
                    // the other probes on.
                    slot.get_or_init(|| {
                        self.named.fetch_add(1, Ordering::Relaxed);
                        // Leaked once per distinct method, at most about MOST_METHODS times:
                        // sites live for the process.
                        let name: &'static str = Box::leak(path.to_owned().into_boxed_str());
                        inflight.site_of_kind(name, SiteKind::Request)
                    })
                }
            };
            if site.name() == path {
                return site;
            }
        }
        fallback
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(content_type: &str, path: &str) -> Request<()> {
        Request::post(path)
            .header(http::header::CONTENT_TYPE, content_type)
            .body(())
            .unwrap()
    }

    #[test]
    fn grpc_calls_count_under_their_method_and_other_requests_under_http() {
        let inflight = InFlight::leak();
        let sites = Box::leak(Box::new(RpcSites::new()));
        let http = inflight.site_of_kind("http", SiteKind::Request);
        let call = request("application/grpc+proto", "/pkg.Greeter/SayHello");
        let site = sites.site_for(&call, inflight, http);
        assert_eq!(site.name(), "/pkg.Greeter/SayHello");
        assert!(
            std::ptr::eq(site, sites.site_for(&call, inflight, http)),
            "one site per method"
        );
        let page = request("text/html", "/pkg.Greeter/SayHello");
        assert!(std::ptr::eq(sites.site_for(&page, inflight, http), http));
    }

    #[test]
    fn past_the_bound_new_methods_count_under_http_and_known_ones_keep_their_site() {
        let inflight = InFlight::leak();
        let sites = Box::leak(Box::new(RpcSites::new()));
        let http = inflight.site_of_kind("http", SiteKind::Request);
        let known = request("application/grpc", "/pkg.Known/Call");
        let site = sites.site_for(&known, inflight, http);
        for n in 0..2 * MOST_METHODS {
            sites.site_for(
                &request("application/grpc", &format!("/junk.S/M{n}")),
                inflight,
                http,
            );
        }
        assert!(sites.named.load(Ordering::Relaxed) <= MOST_METHODS + 1);
        let late = request("application/grpc", "/pkg.Late/Call");
        assert!(std::ptr::eq(sites.site_for(&late, inflight, http), http));
        assert!(std::ptr::eq(sites.site_for(&known, inflight, http), site));
    }
}
