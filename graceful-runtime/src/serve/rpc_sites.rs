//! gRPC calls counted by method, so that the report says `/pkg.Svc/Method x2` rather than
//! `http x2`. Paths come from clients, so the names kept are bounded: past the limit, calls
//! count under `http` like any request.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use http::Request;

use crate::inflight::{InFlight, Site, SiteKind};
use crate::sync::lock;

/// Distinct method paths given a site of their own; a service has a few dozen at most.
const MOST_METHODS: usize = 256;

/// The site a request counts under: its method path for a gRPC call (`content-type:
/// application/grpc...`), else `fallback`.
pub(crate) fn site_for<B>(
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
    static METHODS: OnceLock<Mutex<HashMap<String, &'static Site>>> = OnceLock::new();
    let mut methods = lock(METHODS.get_or_init(Mutex::default));
    let path = request.uri().path();
    if let Some(site) = methods.get(path) {
        return site;
    }
    if methods.len() >= MOST_METHODS {
        return fallback;
    }
    // Leaked once per distinct method, at most MOST_METHODS times: sites live for the process.
    let name: &'static str = Box::leak(path.to_owned().into_boxed_str());
    let site = inflight.site_of_kind(name, SiteKind::Request);
    methods.insert(path.to_owned(), site);
    site
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
        let http = inflight.site_of_kind("http", SiteKind::Request);
        let call = request("application/grpc+proto", "/pkg.Greeter/SayHello");
        let site = site_for(&call, inflight, http);
        assert_eq!(site.name(), "/pkg.Greeter/SayHello");
        assert!(
            std::ptr::eq(site, site_for(&call, inflight, http)),
            "one site per method"
        );
        let page = request("text/html", "/pkg.Greeter/SayHello");
        assert!(std::ptr::eq(site_for(&page, inflight, http), http));
    }
}
