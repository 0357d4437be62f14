//! Reloading a certificate when its files change, without a signal. Watches the directory of
//! each file, not the file: a Kubernetes Secret volume never writes `tls.crt` (a symlink into
//! `..data`); it writes a new `..<timestamp>` directory and renames a `..data_tmp` symlink over
//! `..data`. So any event in the directory counts. The directory above is watched too, for the
//! directory itself being replaced (deleted and made again, or a symlink to it swapped): then
//! the watch is armed again on what the path names now.
//!
//! Events are debounced on a thread of its own (no runtime needed), and the reload they lead to
//! touches only the certificate: no hooks, nothing sent to systemd.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use notify::event::{AccessKind, EventKind};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};

use super::files::{CertificateFiles, Trigger};
use crate::log::event;
use crate::sync::lock;

/// How long the directory must stay quiet before the files are read: a swap is several events.
const QUIET: Duration = Duration::from_millis(300);
/// The longest a stream of events delays the read.
const MOST: Duration = Duration::from_secs(2);
/// How often a directory that could not be watched is tried again.
const RETRY: Duration = Duration::from_secs(1);

type Events = Receiver<notify::Result<notify::Event>>;

/// Watches while it lives; dropping it stops the watch and its thread.
#[derive(Debug)]
pub(crate) struct Watch {
    _watcher: Arc<Mutex<RecommendedWatcher>>,
}

/// Starts watching the directories of `certificate`'s files; `None` (after a warning) when the
/// platform's watcher cannot be had, and reloads then follow SIGHUP and `graceful::reload()`.
pub(crate) fn start(certificate: &Arc<CertificateFiles>) -> Option<Watch> {
    let files = &certificate.files;
    let mut directories: Vec<Directory> = Vec::new();
    for file in [&files.cert_chain, &files.key] {
        let Some(path) = file.parent() else { continue };
        if !directories.iter().any(|known| known.path == path) {
            directories.push(Directory::new(path.to_path_buf()));
        }
    }
    let (sender, events) = std::sync::mpsc::channel();
    let watcher = match notify::recommended_watcher(sender) {
        Ok(watcher) => Arc::new(Mutex::new(watcher)),
        Err(error) => {
            event!(
                Warn,
                "tls: cannot watch {} for changes ({error}): it reloads on SIGHUP and \
                 graceful::reload() only",
                files.cert_chain.display()
            );
            return None;
        }
    };
    {
        let mut watching = lock(&watcher);
        for directory in &mut directories {
            directory.arm(&mut watching, true);
        }
    }
    let names: Vec<String> = directories
        .iter()
        .map(|directory| directory.path.display().to_string())
        .collect();
    event!(
        Info,
        "tls: watching {} for certificate changes",
        names.join(" and ")
    );
    let thread = WatchThread {
        events,
        watcher: Arc::downgrade(&watcher),
        certificate: Arc::downgrade(certificate),
        directories,
    };
    let spawned = std::thread::Builder::new()
        .name("graceful-tls-watch".into())
        .spawn(move || thread.run());
    if let Err(error) = spawned {
        event!(
            Warn,
            "tls: cannot start the certificate watch ({error}): it reloads on SIGHUP only"
        );
        return None;
    }
    Some(Watch { _watcher: watcher })
}

/// A directory watched for its entries, and its parent watched for it.
struct Directory {
    path: PathBuf,
    /// What the path named when it was watched; another identity means it was replaced.
    identity: Option<Identity>,
    /// Whether its own watch is in place.
    armed: bool,
}

impl Directory {
    fn new(path: PathBuf) -> Directory {
        Directory {
            path,
            identity: None,
            armed: false,
        }
    }

    /// Watches it (again) when it is not watched or was replaced. `first` warns on failure;
    /// later failures are retried quietly.
    fn arm(&mut self, watcher: &mut RecommendedWatcher, first: bool) -> bool {
        let identity = Identity::of(&self.path);
        if self.armed && identity == self.identity {
            return false;
        }
        if first {
            // The parent's watch sees this directory replaced; best effort (it may be `/`, or
            // not readable), and kept for good: its events are filtered.
            if let Some(parent) = self.path.parent() {
                let _ = watcher.watch(parent, RecursiveMode::NonRecursive);
            }
        } else {
            let _ = watcher.unwatch(&self.path);
        }
        match watcher.watch(&self.path, RecursiveMode::NonRecursive) {
            Ok(()) => {
                self.armed = true;
                self.identity = identity;
            }
            Err(error) => {
                if first || self.armed {
                    event!(
                        Warn,
                        "tls: cannot watch {} ({error}); trying again every {}s",
                        self.path.display(),
                        RETRY.as_secs()
                    );
                }
                self.armed = false;
            }
        }
        self.armed
    }
}

/// What a directory path resolves to: its target, and on Unix its inode.
#[derive(Debug, PartialEq, Eq)]
struct Identity {
    resolved: PathBuf,
    #[cfg(unix)]
    inode: (u64, u64),
}

impl Identity {
    fn of(path: &Path) -> Option<Identity> {
        let resolved = std::fs::canonicalize(path).ok()?;
        #[cfg(unix)]
        let inode = {
            use std::os::unix::fs::MetadataExt;
            let metadata = std::fs::metadata(&resolved).ok()?;
            (metadata.dev(), metadata.ino())
        };
        Some(Identity {
            resolved,
            #[cfg(unix)]
            inode,
        })
    }
}

struct WatchThread {
    events: Events,
    watcher: Weak<Mutex<RecommendedWatcher>>,
    certificate: Weak<CertificateFiles>,
    directories: Vec<Directory>,
}

enum Next {
    Changed,
    Retry,
    Stop,
}

impl WatchThread {
    /// Until the [`Watch`] is dropped (its watcher's end of the channel closes).
    fn run(mut self) {
        loop {
            match self.next_change() {
                Next::Stop => return,
                Next::Retry => {
                    if !self.rearm() {
                        continue;
                    }
                }
                Next::Changed => {
                    if !self.settle() {
                        return;
                    }
                    self.rearm();
                }
            }
            let Some(certificate) = self.certificate.upgrade() else {
                return;
            };
            // Its outcome is logged by the reload itself.
            let _ = certificate.reload(Trigger::FilesChanged);
        }
    }

    /// Waits for an event about the files' directories; while one of them is not watched,
    /// wakes up every [`RETRY`] to try again.
    fn next_change(&self) -> Next {
        loop {
            let event = if self.directories.iter().all(|directory| directory.armed) {
                self.events
                    .recv()
                    .map_err(|_| RecvTimeoutError::Disconnected)
            } else {
                self.events.recv_timeout(RETRY)
            };
            match event {
                Ok(event) if self.is_about_files(&event) => return Next::Changed,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => return Next::Retry,
                Err(RecvTimeoutError::Disconnected) => return Next::Stop,
            }
        }
    }

    /// Waits until the directories have been quiet for [`QUIET`], or [`MOST`] has passed;
    /// false when the watch has ended.
    fn settle(&self) -> bool {
        let began = Instant::now();
        let mut quiet_from = began;
        loop {
            let until = (quiet_from + QUIET).min(began + MOST);
            let Some(left) = until.checked_duration_since(Instant::now()) else {
                return true;
            };
            match self.events.recv_timeout(left) {
                Ok(event) if self.is_about_files(&event) => quiet_from = Instant::now(),
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => return true,
                Err(RecvTimeoutError::Disconnected) => return false,
            }
        }
    }

    /// Arms again each directory that was replaced or is not watched; whether one was.
    fn rearm(&mut self) -> bool {
        let Some(watcher) = self.watcher.upgrade() else {
            return false;
        };
        let mut watcher = lock(&watcher);
        let mut armed = false;
        for directory in &mut self.directories {
            armed |= directory.arm(&mut watcher, false);
        }
        armed
    }

    /// Whether `event` may change what the files hold: anything in their directories, or
    /// happening to a directory itself, except opening a file (the reload's own reads).
    fn is_about_files(&self, event: &notify::Result<notify::Event>) -> bool {
        let Ok(event) = event else {
            // An overflowed queue, say: read the files to be sure.
            return true;
        };
        if matches!(event.kind, EventKind::Access(AccessKind::Open(_))) {
            return false;
        }
        event.paths.is_empty()
            || event.paths.iter().any(|path| {
                self.directories
                    .iter()
                    .any(|directory| path.starts_with(&directory.path))
            })
    }
}
