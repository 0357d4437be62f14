//! HTTPS for `graceful::serve` (feature `tls`): the configuration a server's handshakes use,
//! read from PEM files and reloaded from them (at every reload, and when the files change), or
//! given whole as a rustls `ServerConfig`. The handshake itself is in `serve::tls`.

mod config;
mod files;
mod load;
mod resolver;
mod watch;
mod x509;

pub use config::TlsConfig;

#[cfg(test)]
mod tests;
