//! The certificate a new handshake gets: swapped whole when the files reload, so that new
//! connections present the new one while open connections keep the one they were given.

use std::sync::{Arc, PoisonError, RwLock};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// The certificate being served now.
#[derive(Debug)]
pub(crate) struct Current(RwLock<Arc<CertifiedKey>>);

impl Current {
    pub(crate) fn new(certified: Arc<CertifiedKey>) -> Current {
        Current(RwLock::new(certified))
    }

    /// The certificate the next handshake gets.
    pub(crate) fn now(&self) -> Arc<CertifiedKey> {
        Arc::clone(&self.0.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// From the next handshake on, serve `certified`.
    pub(crate) fn replace(&self, certified: Arc<CertifiedKey>) {
        // A poisoned lock still holds a whole `Arc`: nothing can be half-written.
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = certified;
    }
}

impl ResolvesServerCert for Current {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.now())
    }
}
