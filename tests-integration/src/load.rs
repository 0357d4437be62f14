//! The one load of the stop and restart tests, and what it proves: workers POSTing rows with ids
//! of their own to any address (one service, HAProxy, a container, a systemd unit), the tally of
//! what came back, and the rows the database kept. Options say what each caller needs:
//! HTTP/1.1 or HTTP/2, a kept-alive connection or a new one per request, a refused connection
//! ending the worker or retried, a bounded count. The workers run on a thread and runtime of
//! their own, so that a test with no runtime (systemd's) drives the load as one with a runtime
//! does; a test on a runtime calls the blocking methods inside `tokio::task::block_in_place`.

use std::collections::BTreeSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::http::{post_item, Connection};
use crate::{first_few, FIRST_FEW, PATIENCE};

/// What happened to the requests of a load: counts, and the first few failures.
#[derive(Default)]
pub struct Tally {
    /// Requests written to a connection.
    pub sent: usize,
    /// The ids of the requests answered 2xx.
    pub ok_ids: BTreeSet<String>,
    /// Requests answered with a status other than 2xx.
    pub non_2xx: usize,
    /// Requests sent that got no complete response (reset, closed, no answer in time), and
    /// connections that failed other than by a refusal.
    pub errors: usize,
    /// Connections refused: nothing listened, and no request was sent.
    pub refused: usize,
    /// The first [`FIRST_FEW`] failures, each `ID at SECONDS: WHAT` from the load's start.
    pub failures: Vec<String>,
}

impl Tally {
    /// Requests lost: answered with an error status, or not answered at all.
    pub fn failed(&self) -> usize {
        self.non_2xx + self.errors
    }

    fn add(&mut self, part: Tally) {
        self.sent += part.sent;
        self.ok_ids.extend(part.ok_ids);
        self.non_2xx += part.non_2xx;
        self.errors += part.errors;
        self.refused += part.refused;
        for failure in part.failures {
            self.note(failure);
        }
    }

    /// Keeps `failure` for the record while there are fewer than [`FIRST_FEW`]; the counts say
    /// the rest.
    fn note(&mut self, failure: String) {
        if self.failures.len() < FIRST_FEW {
            self.failures.push(failure);
        }
    }
}

/// Counts, then the first failures: never every failed request, nor the thousands of ids.
impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "sent {}, 2xx {}, non-2xx {}, errors {}, refused {}",
            self.sent,
            self.ok_ids.len(),
            self.non_2xx,
            self.errors,
            self.refused
        )?;
        if !self.failures.is_empty() {
            write!(f, "; the first failures: {}", self.failures.join("; "))?;
        }
        Ok(())
    }
}

/// The same as Display, so that `{tally:?}` in a message is as short.
impl fmt::Debug for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// What a worker does when a connection is refused.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Refusals {
    /// The worker ends: a load straight at one service ends this way once the service has
    /// stopped accepting.
    EndTheWorker,
    /// The worker tries again a moment later: across restarts, where the next process (or the
    /// socket systemd holds) will answer.
    Retry,
}

/// How a load behaves; [`Load::to`] starts one with its defaults.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    address: SocketAddr,
    tag: String,
    workers: usize,
    work_ms: u64,
    http2: bool,
    connection_per_request: bool,
    refusals: Refusals,
    at_most: Option<usize>,
    netns: Option<String>,
    get: Option<String>,
}

impl LoadOptions {
    /// How many workers, each with one request in flight at a time (8 unless told).
    pub fn workers(mut self, workers: usize) -> LoadOptions {
        self.workers = workers;
        self
    }

    /// How long each write's transaction works before it commits (5 ms unless told).
    pub fn work_ms(mut self, work_ms: u64) -> LoadOptions {
        self.work_ms = work_ms;
        self
    }

    /// HTTP/2 over cleartext (prior knowledge) instead of HTTP/1.1.
    pub fn http2(mut self) -> LoadOptions {
        self.http2 = true;
        self
    }

    /// A new connection for each request (`Connection: close`), as clients without a pool do,
    /// instead of one kept alive until the server closes it.
    pub fn connection_per_request(mut self) -> LoadOptions {
        self.connection_per_request = true;
        self
    }

    /// What a worker does when a connection is refused ([`Refusals::EndTheWorker`] unless told).
    pub fn on_refusal(mut self, refusals: Refusals) -> LoadOptions {
        self.refusals = refusals;
        self
    }

    /// `GET path` instead of POSTing rows: reads, which SQLite serves while a writer holds its
    /// lock. Their ids have no rows.
    pub fn gets(mut self, path: &str) -> LoadOptions {
        self.get = Some(path.to_owned());
        self
    }

    /// Stops once `count` requests have been begun, across all workers.
    pub fn at_most(mut self, count: usize) -> LoadOptions {
        self.at_most = Some(count);
        self
    }

    /// Runs the workers in the network namespace `netns` when there is one (see
    /// [`crate::netns`]): their sockets cross the link to reach `address`.
    pub fn clients_in(mut self, netns: Option<String>) -> LoadOptions {
        self.netns = netns;
        self
    }

    /// Starts the workers.
    pub fn start(self) -> Load {
        let shared = Arc::new(Shared::default());
        let (done, tally) = mpsc::channel();
        let options = Arc::new(self);
        let thread_shared = Arc::clone(&shared);
        std::thread::spawn(move || {
            crate::netns::enter_if(options.netns.as_deref());
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let total = runtime.block_on(async move {
                let started = Instant::now();
                let workers: Vec<_> = (0..options.workers)
                    .map(|index| {
                        let worker = Worker {
                            options: Arc::clone(&options),
                            shared: Arc::clone(&thread_shared),
                            id_prefix: format!("{}-w{index}", options.tag),
                            started,
                        };
                        tokio::spawn(worker.run())
                    })
                    .collect();
                let mut total = Tally::default();
                for worker in workers {
                    total.add(worker.await.expect("a load worker panicked"));
                }
                total
            });
            let _ = done.send(total);
        });
        Load { shared, tally }
    }
}

#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    begun: AtomicUsize,
    completed: Mutex<usize>,
    completed_grew: Condvar,
}

/// A running load of `POST /items`, each request with an id of its own (`TAG-wN-I`).
pub struct Load {
    shared: Arc<Shared>,
    tally: mpsc::Receiver<Tally>,
}

impl Load {
    /// A load at `address` whose ids start with `tag`: 8 workers, HTTP/1.1 kept alive, 5 ms of
    /// work per write, a refused connection ending its worker. Change any with [`LoadOptions`].
    pub fn to(address: SocketAddr, tag: &str) -> LoadOptions {
        LoadOptions {
            address,
            tag: tag.to_owned(),
            workers: 8,
            work_ms: 5,
            http2: false,
            connection_per_request: false,
            refusals: Refusals::EndTheWorker,
            at_most: None,
            netns: None,
            get: None,
        }
    }

    /// Waits until `count` requests have completed, whatever their outcome.
    pub fn wait_for_completed(&self, count: usize) {
        let (completed, _) = self
            .shared
            .completed_grew
            .wait_timeout_while(self.shared.completed.lock().unwrap(), PATIENCE, |done| {
                *done < count
            })
            .unwrap();
        assert!(
            *completed >= count,
            "the load never got going: {} of {count} requests completed within {PATIENCE:?}",
            *completed
        );
    }

    /// Tells the workers to stop after their current request, and adds up what they saw.
    pub fn finish(self) -> Tally {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.join()
    }

    /// Waits for the workers to end by themselves (refused, or [`LoadOptions::at_most`]
    /// reached), and adds up what they saw.
    pub fn join(self) -> Tally {
        self.tally
            .recv_timeout(PATIENCE)
            .unwrap_or_else(|_| panic!("the load's workers did not end within {PATIENCE:?}"))
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        // A test that failed half-way must not leave its load running.
        self.shared.stop.store(true, Ordering::Relaxed);
    }
}

/// How long one request may take, connecting included: far above any answer under test, and
/// below [`PATIENCE`], so that a stuck request is counted rather than hanging the load.
const REQUEST_LIMIT: Duration = Duration::from_secs(20);

/// A refused connection is tried again this much later: a pause, not a wait for anything.
const RETRY_PAUSE: Duration = Duration::from_millis(5);

/// A failed request (a 503 from a balancer with no server up, a reset) is followed by this pause
/// before the worker's next: a balancer answers 503 at once, and a worker that sent again at once
/// would spin, counting tens of thousands of 503s a minute (67,705 in one Docker run with both
/// servers down). 20 ms bounds it to 50 a second per worker.
const FAILURE_PAUSE: Duration = Duration::from_millis(20);

struct Worker {
    options: Arc<LoadOptions>,
    shared: Arc<Shared>,
    id_prefix: String,
    started: Instant,
}

impl Worker {
    async fn run(self) -> Tally {
        let options = &*self.options;
        let mut tally = Tally::default();
        let mut connection: Option<Connection> = None;
        while !self.shared.stop.load(Ordering::Relaxed) {
            if options
                .at_most
                .is_some_and(|most| self.shared.begun.fetch_add(1, Ordering::Relaxed) >= most)
            {
                break;
            }
            let id = format!("{}-{}", self.id_prefix, tally.sent);
            if connection.is_none() {
                let opened = if options.http2 {
                    Connection::open_http2(options.address).await
                } else {
                    Connection::open(options.address).await
                };
                match opened {
                    Ok(opened) => connection = Some(opened),
                    Err(error) => {
                        if error.kind() == std::io::ErrorKind::ConnectionRefused {
                            tally.refused += 1;
                        } else {
                            tally.errors += 1;
                            tally.note(self.failure(&id, &format!("connect: {error}")));
                        }
                        match options.refusals {
                            Refusals::EndTheWorker => break,
                            Refusals::Retry => {
                                tokio::time::sleep(RETRY_PAUSE).await;
                                continue;
                            }
                        }
                    }
                }
            }
            let mut request = match &options.get {
                Some(path) => crate::http::get(path),
                None => post_item(&id, options.work_ms),
            };
            if options.connection_per_request && !options.http2 {
                request.headers_mut().insert(
                    hyper::header::CONNECTION,
                    hyper::header::HeaderValue::from_static("close"),
                );
            }
            tally.sent += 1;
            let failed_before = tally.failed();
            let sending = connection.as_mut().unwrap().send(request);
            match tokio::time::timeout(REQUEST_LIMIT, sending).await {
                Ok(Ok(answer)) => {
                    if answer.closes || options.connection_per_request {
                        connection = None;
                    }
                    if answer.status.is_success() {
                        tally.ok_ids.insert(id);
                    } else {
                        tally.non_2xx += 1;
                        tally.note(self.failure(&id, answer.status.as_str()));
                    }
                }
                Ok(Err(error)) => {
                    connection = None;
                    tally.errors += 1;
                    tally.note(self.failure(&id, &error.to_string()));
                }
                Err(_) => {
                    connection = None;
                    tally.errors += 1;
                    let what = format!("no answer within {REQUEST_LIMIT:?}");
                    tally.note(self.failure(&id, &what));
                }
            }
            *self.shared.completed.lock().unwrap() += 1;
            self.shared.completed_grew.notify_all();
            if tally.failed() > failed_before {
                tokio::time::sleep(FAILURE_PAUSE).await;
            }
        }
        tally
    }

    fn failure(&self, id: &str, what: &str) -> String {
        format!("{id} at {:.1?}: {what}", self.started.elapsed())
    }
}

/// Panics unless every id answered 2xx has its row in `rows`; names how many are missing, and
/// the first few.
pub fn assert_every_2xx_has_its_row(
    what: &str,
    ok_ids: &BTreeSet<String>,
    rows: &BTreeSet<String>,
) {
    let missing: Vec<_> = ok_ids.difference(rows).collect();
    assert!(
        missing.is_empty(),
        "{what}: answered 2xx without a row: {}",
        first_few(missing)
    );
}

/// [`assert_every_2xx_has_its_row`], and every row was answered 2xx: `rows` must hold only
/// this load's ids.
pub fn assert_rows_match(what: &str, ok_ids: &BTreeSet<String>, rows: &BTreeSet<String>) {
    assert_every_2xx_has_its_row(what, ok_ids, rows);
    let unanswered: Vec<_> = rows.difference(ok_ids).collect();
    assert!(
        unanswered.is_empty(),
        "{what}: rows written for requests that got no 2xx: {}",
        first_few(unanswered)
    );
}

/// The ids in the database at `path` that start with `tag`, after `PRAGMA integrity_check` has
/// passed.
pub async fn database_rows(path: &Path, tag: &str) -> BTreeSet<String> {
    use sqlx::Connection as _;
    let mut connection = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let integrity: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut connection)
        .await
        .unwrap();
    assert_eq!(integrity, "ok");
    let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM items")
        .fetch_all(&mut connection)
        .await
        .unwrap();
    ids.into_iter().filter(|id| id.starts_with(tag)).collect()
}

/// [`database_rows`] from a test without a runtime.
pub fn blocking_database_rows(path: &Path, tag: &str) -> BTreeSet<String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(database_rows(path, tag))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Docker rolling restart once printed 67,705 failed requests in one message.
    #[test]
    fn a_tally_of_many_failures_keeps_their_count_and_shows_the_first_five() {
        let mut total = Tally::default();
        for worker in 0..8 {
            let mut part = Tally {
                sent: 10_000,
                non_2xx: 10_000,
                ..Tally::default()
            };
            for request in 0..10_000 {
                part.note(format!(
                    "w{worker}-{request} at 1.0s: 503 Service Unavailable"
                ));
            }
            total.add(part);
        }
        assert_eq!((total.sent, total.failed()), (80_000, 80_000));
        assert_eq!(total.failures.len(), FIRST_FEW);
        let message = format!("{total:?}");
        assert_eq!(message.matches("503").count(), FIRST_FEW, "{message}");
        assert!(
            message.starts_with("sent 80000, 2xx 0, non-2xx 80000"),
            "{message}"
        );
    }

    #[test]
    fn first_few_says_how_many_and_shows_five() {
        assert_eq!(first_few(Vec::<u32>::new()), "none");
        assert_eq!(first_few([1, 2]), "2: 1; 2");
        assert_eq!(first_few(1..=9), "9, the first 5: 1; 2; 3; 4; 5");
    }
}
