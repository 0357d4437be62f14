//! `graceful::TlsConfig`: what [`Serve::tls`](crate::Serve::tls) serves HTTPS with, read from
//! PEM files (and reloaded from them) or given as a rustls `ServerConfig`.

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::ServerConfig;

use super::files::{self, CertificateFiles, Trigger};
use super::load::PemFiles;
use super::resolver::Current;
use super::watch::{self, Watch};
use crate::log::event;

/// A TLS configuration for [`Serve::tls`](crate::Serve::tls): rustls with the ring provider, no
/// OpenSSL. Cloning it is cheap, and clones share the certificate and its reloads.
///
/// - [`TlsConfig::from_pem_files`]: a certificate chain and a private key in PEM files,
///   reloaded at every reload (SIGHUP, [`reload()`](crate::reload())) and when the files
///   change, with TLS 1.2 and 1.3 and ALPN `h2`, `http/1.1`.
/// - [`TlsConfig::from_rustls`]: a rustls `ServerConfig` of your own, served as it is.
///
/// ```no_run
/// # use graceful_runtime as graceful;
/// # async fn example() -> std::io::Result<()> {
/// # let app = hyper::service::service_fn(|_request| async {
/// #     Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
/// # });
/// let tls = graceful::TlsConfig::from_pem_files("/etc/tls/tls.crt", "/etc/tls/tls.key")?;
/// let listener = graceful::bind("0.0.0.0:443").await?;
/// graceful::ready();
/// graceful::serve(listener, app).tls(tls).await
/// # }
/// ```
#[derive(Clone)]
pub struct TlsConfig {
    server: Arc<ServerConfig>,
    /// Set when read from files; kept alive by the config, and with it the files' watch.
    files: Option<Arc<FromFiles>>,
}

#[derive(Debug)]
struct FromFiles {
    certificate: Arc<CertificateFiles>,
    _watch: Option<Watch>,
}

impl TlsConfig {
    /// Reads a PEM certificate chain (the server's certificate first, then its intermediates)
    /// and its PEM private key (PKCS #8, PKCS #1 or SEC1, unencrypted), and checks that the key
    /// is the certificate's. Logs each certificate's serial and notAfter, and warns about one
    /// that has expired.
    ///
    /// The error is an `io::Error` that names the file and what is wrong with it: unreadable, no
    /// certificate, no key, an encrypted key, a key that does not match the certificate; `?`
    /// hands it on from a `main` returning `std::io::Result` or `Box<dyn Error>`.
    ///
    /// **Reloads.** The files are read again at every reload of the process (SIGHUP,
    /// [`graceful::reload()`](crate::reload())), before the reload hooks, and the outcome is in
    /// the reload's report. They are also read again when their directory changes, once it has
    /// been quiet for 0.3 s (2 s at most): a Kubernetes Secret or cert-manager renewal is
    /// picked up with no signal (that
    /// reload touches only the certificate: no hooks, nothing sent to systemd). New
    /// connections get the new certificate; open ones keep theirs. New files that are not a
    /// good pair are logged as an error naming the file, and the last good certificate stays
    /// served. A Secret mounted with `subPath` never changes in the container: mount the whole
    /// volume.
    ///
    /// ```no_run
    /// # use graceful_runtime as graceful;
    /// # fn example() -> Result<(), Box<dyn std::error::Error>> {
    /// let tls = graceful::TlsConfig::from_pem_files("certs/tls.crt", "certs/tls.key")?;
    /// # let _ = tls;
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_pem_files(
        cert_chain: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> io::Result<TlsConfig> {
        // Absolute, so that the directory watched is the one named (a relative path has an
        // empty parent), and not resolved: the symlinks are what rotates.
        let files = PemFiles {
            cert_chain: std::path::absolute(cert_chain.as_ref())?,
            key: std::path::absolute(key.as_ref())?,
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let loaded = files.parse(files.read()?, &provider)?;
        event!(
            Info,
            "tls: serving {} with key {}: {}",
            files.cert_chain.display(),
            files.key.display(),
            loaded.describe()
        );
        files::warn_if_expired(&files, &loaded);

        let current = Arc::new(Current::new(Arc::clone(&loaded.certified)));
        let server = builder(&provider)?.with_cert_resolver(Arc::clone(&current) as _);
        let certificate = Arc::new(CertificateFiles::new(
            files,
            Arc::clone(&provider),
            current,
            &loaded,
        ));
        let name = format!("tls certificate {}", certificate.files.cert_chain.display());
        let reloading = Arc::downgrade(&certificate);
        crate::global::reloads().reload_first(name, move || match reloading.upgrade() {
            Some(certificate) => certificate.reload(Trigger::Reload),
            None => Ok(()), // the config is gone, and nothing serves it
        });
        let watch = watch::start(&certificate);
        Ok(TlsConfig {
            server: Arc::new(with_alpn(server)),
            files: Some(Arc::new(FromFiles {
                certificate,
                _watch: watch,
            })),
        })
    }

    /// Serves with a rustls `ServerConfig` of your own (rustls 0.23), for full control: client
    /// certificates, a resolver by SNI, other protocol versions. Build it with
    /// `ServerConfig::builder_with_provider`: `ServerConfig::builder()` panics when more than one
    /// crypto provider is compiled in, and graceful brings ring. When its ALPN list is empty,
    /// `h2` and `http/1.1` are offered; a list you set is kept.
    ///
    /// Such a config is served as it is and **does not reload**: rotate its certificates with a
    /// resolver of your own (`ResolvesServerCert`).
    ///
    /// ```
    /// # use graceful_runtime as graceful;
    /// use std::sync::Arc;
    ///
    /// #[derive(Debug)]
    /// struct MyCertificates; // picks a certificate per server name, say
    /// impl rustls::server::ResolvesServerCert for MyCertificates {
    ///     fn resolve(
    ///         &self,
    ///         _hello: rustls::server::ClientHello<'_>,
    ///     ) -> Option<Arc<rustls::sign::CertifiedKey>> {
    ///         None
    ///     }
    /// }
    ///
    /// let provider = Arc::new(rustls::crypto::ring::default_provider());
    /// let config = rustls::ServerConfig::builder_with_provider(provider)
    ///     .with_safe_default_protocol_versions()
    ///     .unwrap()
    ///     .with_no_client_auth()
    ///     .with_cert_resolver(Arc::new(MyCertificates));
    /// let tls = graceful::TlsConfig::from_rustls(Arc::new(config));
    /// # let _ = tls;
    /// ```
    pub fn from_rustls(config: Arc<ServerConfig>) -> TlsConfig {
        let server = if config.alpn_protocols.is_empty() {
            Arc::new(with_alpn(ServerConfig::clone(&config)))
        } else {
            config
        };
        TlsConfig {
            server,
            files: None,
        }
    }

    /// The rustls configuration each handshake uses.
    pub(crate) fn server_config(&self) -> &Arc<ServerConfig> {
        &self.server
    }
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("TlsConfig");
        match &self.files {
            Some(files) => debug
                .field("cert_chain", &files.certificate.files.cert_chain)
                .field("key", &files.certificate.files.key),
            None => debug.field("server", &"rustls::ServerConfig"),
        };
        debug.finish()
    }
}

fn builder(
    provider: &Arc<CryptoProvider>,
) -> io::Result<rustls::ConfigBuilder<ServerConfig, rustls::server::WantsServerCert>> {
    let builder = ServerConfig::builder_with_provider(Arc::clone(provider))
        .with_safe_default_protocol_versions()
        .map_err(|error| io::Error::other(format!("tls: {error}")))?;
    Ok(builder.with_no_client_auth())
}

/// Offers HTTP/2 first, then HTTP/1.1: both are served on the connection either way.
fn with_alpn(mut config: ServerConfig) -> ServerConfig {
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    config
}
