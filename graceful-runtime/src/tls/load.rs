//! Reading a PEM certificate chain and its private key into what rustls serves, with errors that
//! name the file and what is wrong with it: the same check at start-up and at every reload.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

use super::x509::{self, Summary};

/// Where a certificate chain and its key are read from.
#[derive(Debug, Clone)]
pub(crate) struct PemFiles {
    pub(crate) cert_chain: PathBuf,
    pub(crate) key: PathBuf,
}

/// A chain and key that belong together, ready to serve.
#[derive(Debug)]
pub(crate) struct Loaded {
    pub(crate) certified: Arc<CertifiedKey>,
    /// Each certificate of the chain, leaf first.
    pub(crate) summaries: Vec<Summary>,
    /// The files' bytes, hashed: what a later reload compares to, to tell a change.
    pub(crate) fingerprint: u64,
}

impl Loaded {
    /// `#1 serial 1A2B, notAfter 2027-01-01T00:00:00Z; #2 ..`, for the log.
    pub(crate) fn describe(&self) -> String {
        let mut text = String::new();
        for (index, summary) in self.summaries.iter().enumerate() {
            let separator = if index == 0 { "" } else { "; " };
            text.push_str(&format!("{separator}#{} {summary}", index + 1));
        }
        text
    }
}

/// The two files read, before they are parsed: a reload that finds them unchanged stops here.
pub(crate) struct Read {
    cert_chain: Vec<u8>,
    key: Vec<u8>,
    pub(crate) fingerprint: u64,
}

impl PemFiles {
    /// Reads both files.
    pub(crate) fn read(&self) -> io::Result<Read> {
        let read = |path: &Path, what: &str| {
            std::fs::read(path).map_err(|error| {
                io::Error::new(
                    error.kind(),
                    format!("cannot read the {what} {}: {error}", path.display()),
                )
            })
        };
        let cert_chain = read(&self.cert_chain, "certificate chain")?;
        let key = read(&self.key, "private key")?;
        let fingerprint = {
            use std::hash::{Hash, Hasher};
            let mut hasher = std::hash::DefaultHasher::new();
            (&cert_chain, &key).hash(&mut hasher);
            hasher.finish()
        };
        Ok(Read {
            cert_chain,
            key,
            fingerprint,
        })
    }

    /// Parses what [`read`](Self::read) returned and checks that the key is the certificate's.
    pub(crate) fn parse(&self, read: Read, provider: &CryptoProvider) -> io::Result<Loaded> {
        let chain = self.chain(&read.cert_chain)?;
        let summaries = chain
            .iter()
            .enumerate()
            .map(|(index, certificate)| {
                x509::summary(certificate).ok_or_else(|| {
                    self.invalid_chain(format_args!(
                        "certificate #{} is not an X.509 certificate",
                        index + 1
                    ))
                })
            })
            .collect::<io::Result<Vec<_>>>()?;
        let key = self.key(&read.key)?;
        let certified = CertifiedKey::from_der(chain, key, provider)
            .and_then(|certified| certified.keys_match().map(|()| certified))
            .map_err(|error| self.unusable(error))?;
        Ok(Loaded {
            certified: Arc::new(certified),
            summaries,
            fingerprint: read.fingerprint,
        })
    }

    fn chain(&self, pem: &[u8]) -> io::Result<Vec<CertificateDer<'static>>> {
        let chain = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| {
                self.invalid_chain(format_args!("not valid PEM: {}", pem_fault(&error)))
            })?;
        if chain.is_empty() {
            return Err(self.invalid_chain(format_args!(
                "no certificate in it (no -----BEGIN CERTIFICATE----- section)"
            )));
        }
        Ok(chain)
    }

    fn key(&self, pem: &[u8]) -> io::Result<PrivateKeyDer<'static>> {
        // PKCS #8's `ENCRYPTED PRIVATE KEY`, which the PEM reader skips as unknown, and
        // OpenSSL's legacy `Proc-Type: 4,ENCRYPTED` header, which it reads as bad base64.
        let encrypted = |needle: &[u8]| pem.windows(needle.len()).any(|window| window == needle);
        if encrypted(b"-----BEGIN ENCRYPTED PRIVATE KEY-----") || encrypted(b"4,ENCRYPTED") {
            return Err(self.invalid_key(format_args!(
                "the private key is encrypted; give it unencrypted \
                 (`openssl pkey -in KEY -out PLAIN` asks for the passphrase once)"
            )));
        }
        PrivateKeyDer::from_pem_slice(pem).map_err(|error| match error {
            pem::Error::NoItemsFound => self.invalid_key(format_args!(
                "no private key in it (no PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY section)"
            )),
            error => self.invalid_key(format_args!("not valid PEM: {}", pem_fault(&error))),
        })
    }

    /// What rustls found wrong with the pair, said of the file at fault.
    fn unusable(&self, error: rustls::Error) -> io::Error {
        use rustls::{Error, InconsistentKeys};
        match error {
            Error::InconsistentKeys(InconsistentKeys::KeyMismatch) => invalid(format_args!(
                "the private key {} does not match the certificate {} (the first in the chain \
                 must be the key's own)",
                self.key.display(),
                self.cert_chain.display()
            )),
            Error::InvalidCertificate(error) => self.invalid_chain(format_args!(
                "the first certificate cannot be used: {error}"
            )),
            error => self.invalid_key(format_args!("the private key cannot be used: {error}")),
        }
    }

    fn invalid_chain(&self, what: fmt::Arguments<'_>) -> io::Error {
        invalid(format_args!(
            "certificate chain {}: {what}",
            self.cert_chain.display()
        ))
    }

    fn invalid_key(&self, what: fmt::Arguments<'_>) -> io::Error {
        invalid(format_args!("private key {}: {what}", self.key.display()))
    }
}

/// A PEM error as text, its markers spelled out rather than given as bytes.
fn pem_fault(error: &pem::Error) -> String {
    match error {
        pem::Error::MissingSectionEnd { end_marker } => format!(
            "no -----END {}----- line (is the file cut short?)",
            String::from_utf8_lossy(end_marker)
        ),
        pem::Error::IllegalSectionStart { line } => format!(
            "a malformed BEGIN line: {:?}",
            String::from_utf8_lossy(line).trim_end()
        ),
        error => error.to_string(),
    }
}

fn invalid(message: fmt::Arguments<'_>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_string())
}
