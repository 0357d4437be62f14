//! Reloading a certificate from its files: at every reload (SIGHUP, `graceful::reload()`) and
//! when the files change. Bad new files leave the last good certificate served.

use std::sync::{Arc, Mutex};

use rustls::crypto::CryptoProvider;

use super::load::{Loaded, PemFiles};
use super::resolver::Current;
use crate::log::event;
use crate::sync::lock;

/// Why the files are read again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Trigger {
    /// A reload of the process: its report gives the outcome.
    Reload,
    /// The watch saw the files' directory change.
    FilesChanged,
}

/// A certificate served from files, and what reloading them needs.
#[derive(Debug)]
pub(crate) struct CertificateFiles {
    pub(crate) files: PemFiles,
    provider: Arc<CryptoProvider>,
    current: Arc<Current>,
    /// Held through a whole reload, so that a SIGHUP and the watch never interleave.
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// The files' fingerprint when the certificate served now was read from them.
    served: u64,
    /// How the log names the certificate served now.
    serving: String,
    /// The fingerprint of the last files read, good or bad, or `None` when they could not be
    /// read: what the watch already reported is not reported again.
    last_read: Option<u64>,
}

impl CertificateFiles {
    pub(crate) fn new(
        files: PemFiles,
        provider: Arc<CryptoProvider>,
        current: Arc<Current>,
        loaded: &Loaded,
    ) -> CertificateFiles {
        CertificateFiles {
            files,
            provider,
            current,
            state: Mutex::new(State {
                served: loaded.fingerprint,
                serving: loaded.describe(),
                last_read: Some(loaded.fingerprint),
            }),
        }
    }

    /// Reads the files again; serves what they hold from the next handshake on when it is a
    /// good pair, else keeps the certificate served now and says why, naming the file.
    pub(crate) fn reload(&self, trigger: Trigger) -> Result<(), String> {
        let mut state = lock(&self.state);
        let cert_chain = self.files.cert_chain.display();
        let read = self.files.read();
        let fingerprint = read.as_ref().ok().map(|read| read.fingerprint);
        let seen = trigger == Trigger::FilesChanged && fingerprint == state.last_read;
        state.last_read = fingerprint;
        let read = match read {
            Ok(read) => read,
            Err(error) => return Err(self.keep(&state, seen, error)),
        };
        if read.fingerprint == state.served || seen {
            if trigger == Trigger::Reload {
                event!(
                    Info,
                    "tls: {cert_chain} unchanged: still serving {}",
                    state.serving
                );
            }
            return Ok(());
        }
        match self.files.parse(read, &self.provider) {
            Ok(loaded) => {
                self.current.replace(Arc::clone(&loaded.certified));
                state.served = loaded.fingerprint;
                state.serving = loaded.describe();
                let why = match trigger {
                    Trigger::Reload => "reloaded",
                    Trigger::FilesChanged => "files changed",
                };
                event!(
                    Info,
                    "tls: {why}: new connections get {cert_chain}: {}",
                    state.serving
                );
                warn_if_expired(&self.files, &loaded);
                Ok(())
            }
            Err(error) => Err(self.keep(&state, false, error)),
        }
    }

    /// Logs why the files cannot be served (unless the watch already said so) and that the
    /// last good certificate still is.
    fn keep(&self, state: &State, seen: bool, error: std::io::Error) -> String {
        let message = error.to_string();
        if !seen {
            event!(
                Error,
                "tls: {message}; still serving the last good certificate, {}",
                state.serving
            );
        }
        message
    }
}

/// Warns about each certificate of the chain whose notAfter has passed: clients reject it.
pub(crate) fn warn_if_expired(files: &PemFiles, loaded: &Loaded) {
    for (index, summary) in loaded.summaries.iter().enumerate() {
        if summary.not_after.is_past() {
            event!(
                Warn,
                "tls: certificate #{} of {} expired at {}: clients will refuse it",
                index + 1,
                files.cert_chain.display(),
                summary.not_after
            );
        }
    }
}
