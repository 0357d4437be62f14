//! The certificate files as an operator gets them wrong, and as they rotate: each error names
//! the file and the fault, a bad reload keeps the last good certificate, and the watch follows
//! a directory that is replaced. Certificates are made here, at test time.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::files::{CertificateFiles, Trigger};
use super::load::PemFiles;
use super::resolver::Current;
use super::{watch, TlsConfig};

/// A leaf certificate for `localhost` with its own key and `serial`.
struct Pair {
    cert: String,
    key: String,
    der: Vec<u8>,
}

fn pair(serial: u8) -> Pair {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params.serial_number = Some(rcgen::SerialNumber::from(vec![0x7e, serial]));
    let cert = params.self_signed(&key).unwrap();
    Pair {
        cert: cert.pem(),
        key: key.serialize_pem(),
        der: cert.der().to_vec(),
    }
}

/// A fresh directory under the target directory (never /tmp), for one test; removed when the
/// test is done with it.
struct Scratch(PathBuf);

impl std::ops::Deref for Scratch {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn directory(name: &str) -> Scratch {
    static COUNT: AtomicUsize = AtomicUsize::new(0);
    let exe = std::env::current_exe().unwrap();
    let target = exe.parent().and_then(Path::parent).unwrap();
    let path = target.join("graceful-tls-unit").join(format!(
        "{name}-{}-{}",
        std::process::id(),
        COUNT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&path);
    std::fs::create_dir_all(&path).unwrap();
    Scratch(path)
}

fn write(directory: &Path, cert: &str, key: &str) -> (PathBuf, PathBuf) {
    let (cert_path, key_path) = (directory.join("tls.crt"), directory.join("tls.key"));
    std::fs::write(&cert_path, cert).unwrap();
    std::fs::write(&key_path, key).unwrap();
    (cert_path, key_path)
}

fn error_of(cert: &str, key: &str) -> std::io::Error {
    let directory = directory("error");
    let (cert, key) = write(&directory, cert, key);
    TlsConfig::from_pem_files(cert, key).unwrap_err()
}

#[test]
fn a_good_pair_loads_and_the_question_mark_hands_its_error_on() {
    fn main_like(cert: &Path, key: &Path) -> Result<TlsConfig, Box<dyn std::error::Error>> {
        Ok(TlsConfig::from_pem_files(cert, key)?)
    }
    let good = pair(1);
    let directory = directory("good");
    let (cert, key) = write(&directory, &good.cert, &good.key);
    let config = main_like(&cert, &key).unwrap();
    assert_eq!(
        config.server_config().alpn_protocols,
        [b"h2".to_vec(), b"http/1.1".to_vec()]
    );
    assert!(format!("{config:?}").contains("tls.crt"));
}

#[test]
fn each_fault_is_named_with_its_file() {
    let good = pair(1);
    let other = pair(2);

    let error = error_of(&good.key, &good.key);
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
    let text = error.to_string();
    assert!(
        text.contains("tls.crt") && text.contains("no certificate"),
        "{text}"
    );

    let text = error_of(&good.cert, &good.cert).to_string();
    assert!(
        text.contains("tls.key") && text.contains("no private key"),
        "{text}"
    );

    let encrypted =
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n";
    let text = error_of(&good.cert, encrypted).to_string();
    assert!(
        text.contains("tls.key") && text.contains("encrypted"),
        "{text}"
    );
    let legacy = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nMIIB\n-----END RSA PRIVATE KEY-----\n";
    let text = error_of(&good.cert, legacy).to_string();
    assert!(text.contains("encrypted"), "{text}");

    let text = error_of(&good.cert, &other.key).to_string();
    assert!(
        text.contains("tls.key") && text.contains("does not match") && text.contains("tls.crt"),
        "{text}"
    );

    let truncated = &good.cert[..good.cert.len() / 2];
    let text = error_of(truncated, &good.key).to_string();
    assert!(
        text.contains("tls.crt") && text.contains("not valid PEM"),
        "{text}"
    );

    let directory = directory("missing");
    let error =
        TlsConfig::from_pem_files(directory.join("absent.crt"), directory.join("k")).unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::NotFound);
    assert!(error.to_string().contains("absent.crt"), "{error}");
}

/// A certificate served from files in `directory`, as `from_pem_files` sets it up.
fn served_from(directory: &Path, first: &Pair) -> (Arc<CertificateFiles>, Arc<Current>) {
    let (cert_chain, key) = write(directory, &first.cert, &first.key);
    let files = PemFiles { cert_chain, key };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let loaded = files.parse(files.read().unwrap(), &provider).unwrap();
    let current = Arc::new(Current::new(Arc::clone(&loaded.certified)));
    let certificate = CertificateFiles::new(files, provider, Arc::clone(&current), &loaded);
    (Arc::new(certificate), current)
}

fn serving(current: &Current) -> Vec<u8> {
    current.now().cert[0].to_vec()
}

#[test]
fn a_reload_serves_new_files_and_keeps_the_last_good_ones_over_bad_ones() {
    let (first, second) = (pair(1), pair(2));
    let directory = directory("reload");
    let (certificate, current) = served_from(&directory, &first);
    assert_eq!(certificate.reload(Trigger::Reload), Ok(()), "unchanged");
    assert_eq!(serving(&current), first.der);

    write(&directory, &second.cert, &second.key);
    assert_eq!(certificate.reload(Trigger::Reload), Ok(()));
    assert_eq!(serving(&current), second.der);

    write(&directory, &first.cert, &second.key);
    let error = certificate.reload(Trigger::Reload).unwrap_err();
    assert!(error.contains("does not match"), "{error}");
    assert_eq!(serving(&current), second.der, "the last good one stays");

    std::fs::write(
        directory.join("tls.crt"),
        "-----BEGIN CERTIFICATE-----\nnot base64!\n",
    )
    .unwrap();
    let error = certificate.reload(Trigger::Reload).unwrap_err();
    assert!(error.contains("tls.crt"), "{error}");
    assert_eq!(serving(&current), second.der);
}

/// Waits, bounded, until `current` serves `der`.
fn until_serving(current: &Current, der: &[u8]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while serving(current) != der {
        assert!(
            Instant::now() < deadline,
            "the watch did not reload within 10 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_watch_follows_changes_and_a_directory_that_is_replaced() {
    let (first, second, third) = (pair(1), pair(2), pair(3));
    let parent = directory("watch");
    let directory = parent.join("tls");
    std::fs::create_dir(&directory).unwrap();
    let (certificate, current) = served_from(&directory, &first);
    let _watch = watch::start(&certificate).expect("a watch");

    write(&directory, &second.cert, &second.key);
    until_serving(&current, &second.der);

    // The directory itself replaced: the old one renamed away, a new one renamed in.
    let staging = parent.join("staging");
    std::fs::create_dir(&staging).unwrap();
    write(&staging, &third.cert, &third.key);
    std::fs::rename(&directory, parent.join("old")).unwrap();
    std::fs::rename(&staging, &directory).unwrap();
    until_serving(&current, &third.der);

    // And the new directory is watched in turn.
    write(&directory, &first.cert, &first.key);
    until_serving(&current, &first.der);
}
