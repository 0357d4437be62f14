//! A steady HTTP/1.1 load for the restart and stop tests, and what it proves: keep-alive
//! workers POSTing rows with ids of their own to any address (one service, HAProxy, a
//! container), the tally of what came back, and the rows the database kept.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

use crate::{first_few, FIRST_FEW, PATIENCE};

/// One HTTP/1.1 connection, kept alive until the server says `Connection: close`.
pub struct Connection {
    sender: SendRequest<Full<Bytes>>,
}

/// A complete response: its status, whether it closes the connection, and its body.
pub struct Answer {
    /// The response's status.
    pub status: StatusCode,
    /// Whether it carried `Connection: close`.
    pub closes: bool,
    /// The whole body, as text.
    pub body: String,
}

impl Connection {
    /// Connects to `address` and makes the HTTP/1.1 handshake.
    pub async fn open(address: SocketAddr) -> std::io::Result<Connection> {
        let stream = tokio::net::TcpStream::connect(address).await?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(std::io::Error::other)?;
        tokio::spawn(connection);
        Ok(Connection { sender })
    }

    /// Sends `request` and returns the response as it arrives, its body still to be read.
    pub async fn send_streaming(
        &mut self,
        request: Request<Full<Bytes>>,
    ) -> Result<Response<Incoming>, hyper::Error> {
        self.sender.ready().await?;
        self.sender.send_request(request).await
    }

    /// Sends `request` and reads the whole response.
    pub async fn send(&mut self, request: Request<Full<Bytes>>) -> Result<Answer, hyper::Error> {
        let response = self.send_streaming(request).await?;
        let status = response.status();
        let closes = response
            .headers()
            .get(hyper::header::CONNECTION)
            .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"close"));
        // The whole body, so that "complete response" means complete.
        let body = response.into_body().collect().await?.to_bytes();
        Ok(Answer {
            status,
            closes,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }
}

/// `GET path`, with a `host` header.
pub fn get(path: &str) -> Request<Full<Bytes>> {
    Request::get(path)
        .header("host", "localhost")
        .body(Full::default())
        .unwrap()
}

/// `POST /items`: one row, committed after `work_ms` inside its transaction.
pub fn post_item(id: &str, work_ms: u64) -> Request<Full<Bytes>> {
    Request::post(format!("/items?work_ms={work_ms}"))
        .header("host", "localhost")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(format!(
            r#"{{"id":"{id}","body":"payload {id}"}}"#
        ))))
        .unwrap()
}

/// Polls `/readyz` until it answers `status`; every poll a full round trip, bounded in time.
pub async fn wait_for_readiness(health: SocketAddr, status: u16) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while tokio::time::Instant::now() < deadline {
        if let Ok(mut connection) = Connection::open(health).await {
            if let Ok(answer) = connection.send(get("/readyz")).await {
                if answer.status.as_u16() == status {
                    return;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{health}/readyz never answered {status}");
}

/// What happened to each request of a load: counts, and the first few failures.
#[derive(Default)]
pub struct Tally {
    /// Requests written to a connection.
    pub sent: usize,
    /// The ids of the requests answered 2xx.
    pub ok_ids: BTreeSet<String>,
    /// Requests answered with a status other than 2xx.
    pub non_2xx: usize,
    /// Requests sent that got no complete response.
    pub errors: usize,
    /// Connections refused: no request was sent. A worker stops at its first, which is how a
    /// load straight at one service ends once the service stops accepting.
    pub refused: usize,
    /// The first [`FIRST_FEW`] failed requests, for the record.
    pub failures: Vec<String>,
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "sent {}, 2xx {}, non-2xx {}, errors {}, refused {}; failed: {}",
            self.sent,
            self.ok_ids.len(),
            self.non_2xx,
            self.errors,
            self.refused,
            if self.failed() == 0 {
                "none".to_owned()
            } else {
                format!("{}, the first: {}", self.failed(), self.failures.join("; "))
            }
        )
    }
}

/// The same as Display: never the thousands of ids.
impl std::fmt::Debug for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl Tally {
    /// Requests sent and lost: answered with an error status, or not answered at all.
    pub fn failed(&self) -> usize {
        self.non_2xx + self.errors
    }

    fn add(&mut self, part: Tally) {
        self.sent += part.sent;
        self.ok_ids.extend(part.ok_ids);
        self.non_2xx += part.non_2xx;
        self.errors += part.errors;
        self.refused += part.refused;
        let room = FIRST_FEW.saturating_sub(self.failures.len());
        self.failures.extend(part.failures.into_iter().take(room));
    }

    fn record(&mut self, failure: String) {
        if self.failures.len() < FIRST_FEW {
            self.failures.push(failure);
        }
    }
}

/// A steady load of `POST /items` from keep-alive workers, each request with an id of its own.
pub struct Load {
    stop: Arc<AtomicBool>,
    completed: Arc<AtomicUsize>,
    workers: Vec<tokio::task::JoinHandle<Tally>>,
}

impl Load {
    /// Starts `workers` workers on the current runtime, POSTing rows `TAG-wN-I` with `work_ms` of
    /// work in each transaction.
    pub fn start(address: SocketAddr, workers: usize, tag: &str, work_ms: u64) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let completed = Arc::new(AtomicUsize::new(0));
        let workers = (0..workers)
            .map(|index| {
                let id_prefix = format!("{tag}-w{index}");
                let (stop, completed) = (stop.clone(), completed.clone());
                tokio::spawn(worker(address, id_prefix, work_ms, stop, completed))
            })
            .collect();
        Load {
            stop,
            completed,
            workers,
        }
    }

    /// Waits until `count` requests have completed, whatever their outcome.
    pub async fn wait_for_completed(&self, count: usize) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while self.completed.load(Ordering::Relaxed) < count {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the load never got going"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Tells the workers to stop after their current request, and adds up what they saw.
    pub async fn finish(self) -> Tally {
        self.stop.store(true, Ordering::Relaxed);
        let mut tally = Tally::default();
        for worker in self.workers {
            let part = tokio::time::timeout(PATIENCE, worker)
                .await
                .expect("a load worker hung")
                .unwrap();
            tally.add(part);
        }
        tally
    }
}

async fn worker(
    address: SocketAddr,
    id_prefix: String,
    work_ms: u64,
    stop: Arc<AtomicBool>,
    completed: Arc<AtomicUsize>,
) -> Tally {
    let mut tally = Tally::default();
    let mut connection: Option<Connection> = None;
    while !stop.load(Ordering::Relaxed) {
        if connection.is_none() {
            match Connection::open(address).await {
                Ok(opened) => connection = Some(opened),
                Err(_) => {
                    tally.refused += 1;
                    break;
                }
            }
        }
        let id = format!("{id_prefix}-{}", tally.sent);
        tally.sent += 1;
        let outcome = connection
            .as_mut()
            .unwrap()
            .send(post_item(&id, work_ms))
            .await;
        match outcome {
            Ok(answer) => {
                if answer.closes {
                    connection = None;
                }
                if answer.status.is_success() {
                    tally.ok_ids.insert(id);
                } else {
                    tally.non_2xx += 1;
                    tally.record(format!("{id}: {}", answer.status));
                }
            }
            Err(error) => {
                connection = None;
                tally.errors += 1;
                tally.record(format!("{id}: {error}"));
            }
        }
        completed.fetch_add(1, Ordering::Relaxed);
    }
    tally
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

/// The ids in the database at `path`, after `PRAGMA integrity_check` has passed.
pub async fn database_rows(path: &Path) -> BTreeSet<String> {
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
    ids.into_iter().collect()
}
