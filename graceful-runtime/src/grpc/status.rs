//! The services a health server knows, and what it answers for each: graceful's health decides
//! for all of them, and an application's override can only take one out of service.

use std::collections::BTreeMap;

use tonic_health::pb::health_check_response::ServingStatus;

use crate::phase::Health;

/// The overall server's name in `grpc.health.v1`.
pub(super) const SERVER: &str = "";

/// Known service names, each with whether the application marked it NOT_SERVING.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ServiceTable {
    marked_not_serving: BTreeMap<String, bool>,
}

impl ServiceTable {
    /// A table knowing only the overall server.
    pub(super) fn new() -> ServiceTable {
        ServiceTable {
            marked_not_serving: BTreeMap::from([(SERVER.to_owned(), false)]),
        }
    }

    /// Makes `service` known, keeping any override it has. Returns whether the table changed.
    pub(super) fn add(&mut self, service: &str) -> bool {
        if self.marked_not_serving.contains_key(service) {
            return false;
        }
        self.marked_not_serving.insert(service.to_owned(), false);
        true
    }

    /// Marks `service` NOT_SERVING (or lifts the mark), making it known if it was not.
    /// Returns whether the table changed.
    pub(super) fn mark(&mut self, service: &str, not_serving: bool) -> bool {
        match self.marked_not_serving.get_mut(service) {
            Some(marked) if *marked == not_serving => false,
            Some(marked) => {
                *marked = not_serving;
                true
            }
            None => {
                self.marked_not_serving
                    .insert(service.to_owned(), not_serving);
                true
            }
        }
    }

    /// What Check answers for `service` while graceful's health is `health`; `None` when the
    /// service is unknown. Only `Ready` serves, so from the start of shutdown every service is
    /// NOT_SERVING whatever its override, and stays so: draining never ends.
    pub(super) fn status(&self, service: &str, health: Health) -> Option<ServingStatus> {
        let marked_not_serving = *self.marked_not_serving.get(service)?;
        Some(if health == Health::Ready && !marked_not_serving {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        })
    }

    /// The known names, for an error message.
    pub(super) fn names(&self) -> impl Iterator<Item = &str> {
        self.marked_not_serving.keys().map(String::as_str)
    }
}
