//! Clients that read slowly, for any restart harness: large responses taken at a bounded rate,
//! and server-sent event streams read behind their producer. Each response is checked whole (its
//! length, and every byte where the body is a known pattern) and each stream against the count
//! its last event gives; a response cut anywhere (at the first-request window's end, at a
//! timeout, by a reset) counts as a failure. Like the load, they run on a thread and runtime of
//! their own, in the clients' network namespace when there is one (see [`crate::netns`]).

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader, ReadBuf};
use tokio::net::{TcpSocket, TcpStream};

use crate::{FIRST_FEW, PATIENCE};

/// The byte at `offset` of a `/big?bytes=N` body of src/bin/restart_service.rs.
pub fn pattern_byte(offset: u64) -> u8 {
    (offset % 251) as u8
}

/// What a large body must be, besides as long as its headers say.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Body {
    /// `/big?bytes=N`: N bytes of [`pattern_byte`].
    Pattern(u64),
    /// A JSON array (`GET /items`): its length and its brackets, the last byte above all.
    JsonArray,
}

/// A read waits at most this long for its next bytes: a live reader far slower than any under
/// test still gets some within it; a stalled one is counted, not waited for.
const READ_LIMIT: Duration = Duration::from_secs(20);

/// Each reader's socket takes at most this much ahead of what it has read, so that a slow
/// reader holds the sender back instead of having its kernel take the whole body at once.
const RECEIVE_BUFFER: u32 = 64 * 1024;

/// A refused or failed connection is tried again this much later: a pause, not a wait.
const RETRY_PAUSE: Duration = Duration::from_millis(50);

/// The counts of slow readers of one kind.
#[derive(Default, Clone)]
pub struct SlowTally {
    /// Requests sent.
    pub sent: usize,
    /// Large responses read whole and right; SSE streams that ended with their last event and
    /// every event it counted.
    pub complete: usize,
    /// Bytes (large) or events (SSE) read in all.
    pub read: u64,
    /// SSE: the events the complete streams' last events said were sent, and those received
    /// on them.
    pub said_sent: u64,
    /// SSE: events those streams received.
    pub received: u64,
    /// Answered with a status other than 200.
    pub non_2xx: usize,
    /// Ended before their end: short, reset, closed, or an SSE stream without its last event or
    /// with fewer events than it said.
    pub cut: usize,
    /// Bytes that differ from what the body must be.
    pub corrupt: usize,
    /// No bytes for `READ_LIMIT` (20 s).
    pub stalled: usize,
    /// Connections that failed (refused or otherwise) before a request went out.
    pub connect_errors: usize,
    /// Cut short by [`SlowReaders::finish`] itself, so no failure.
    pub cut_by_stop: usize,
    /// The longest a complete response or stream took, from the request.
    pub longest: Duration,
    /// The first [`FIRST_FEW`] failures, each `KIND N at SECONDS: WHAT`.
    pub failures: Vec<String>,
}

impl SlowTally {
    /// Failed responses and streams: any of them is a failure of the service under test.
    pub fn failed(&self) -> usize {
        self.non_2xx + self.cut + self.corrupt + self.stalled + self.connect_errors
    }

    fn add(&mut self, part: SlowTally) {
        self.sent += part.sent;
        self.complete += part.complete;
        self.read += part.read;
        self.said_sent += part.said_sent;
        self.received += part.received;
        self.non_2xx += part.non_2xx;
        self.cut += part.cut;
        self.corrupt += part.corrupt;
        self.stalled += part.stalled;
        self.connect_errors += part.connect_errors;
        self.cut_by_stop += part.cut_by_stop;
        self.longest = self.longest.max(part.longest);
        for failure in part.failures {
            self.note(failure);
        }
    }

    fn note(&mut self, failure: String) {
        if self.failures.len() < FIRST_FEW {
            self.failures.push(failure);
        }
    }
}

impl fmt::Display for SlowTally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "sent {}, complete {}, failed {} (non-2xx {}, cut {}, corrupt {}, stalled {}, connect errors {}); read {}, cut by the end of the run {}, longest {:.1?}",
            self.sent,
            self.complete,
            self.failed(),
            self.non_2xx,
            self.cut,
            self.corrupt,
            self.stalled,
            self.connect_errors,
            self.read,
            self.cut_by_stop,
            self.longest
        )?;
        if self.said_sent > 0 || self.received > 0 {
            write!(
                f,
                "; events said sent {}, received {}",
                self.said_sent, self.received
            )?;
        }
        if !self.failures.is_empty() {
            write!(f, "; the first failures: {}", self.failures.join("; "))?;
        }
        Ok(())
    }
}

impl fmt::Debug for SlowTally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// What [`SlowReaders::finish`] gives: large responses and SSE streams apart.
#[derive(Debug, Default, Clone)]
pub struct SlowReads {
    /// The readers of large responses.
    pub large: SlowTally,
    /// The slow SSE subscribers.
    pub sse: SlowTally,
}

impl SlowReads {
    /// Failures of both kinds.
    pub fn failed(&self) -> usize {
        self.large.failed() + self.sse.failed()
    }
}

/// How the slow readers behave; [`SlowReaders::to`] starts with none of either kind.
#[derive(Clone, Debug)]
pub struct SlowReaderOptions {
    address: SocketAddr,
    netns: Option<String>,
    large: usize,
    large_path: String,
    body: Body,
    large_rate: u64,
    sse: usize,
    sse_path: String,
    sse_rate: u64,
}

impl SlowReaderOptions {
    /// `readers` clients, each asking `path` (answered with `body`) again and again on a new
    /// connection, and reading each answer at `bytes_per_second`.
    pub fn large(
        mut self,
        readers: usize,
        path: &str,
        body: Body,
        bytes_per_second: u64,
    ) -> SlowReaderOptions {
        self.large = readers;
        self.large_path = path.to_owned();
        self.body = body;
        self.large_rate = bytes_per_second;
        self
    }

    /// `subscribers` clients, each reading the SSE stream at `path` (numbered `data: tick N`
    /// events, and a last `event: shutdown` with `data: sent N`) at `bytes_per_second`, and
    /// subscribing again when it ends.
    pub fn sse(mut self, subscribers: usize, path: &str, bytes_per_second: u64) -> Self {
        self.sse = subscribers;
        self.sse_path = path.to_owned();
        self.sse_rate = bytes_per_second;
        self
    }

    /// In the network namespace `netns`, when there is one.
    pub fn clients_in(mut self, netns: Option<String>) -> SlowReaderOptions {
        self.netns = netns;
        self
    }

    /// Starts the readers.
    pub fn start(self) -> SlowReaders {
        let stop = Arc::new(AtomicBool::new(false));
        let (done, reads) = mpsc::channel();
        let options = Arc::new(self);
        let thread_stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            crate::netns::enter_if(options.netns.as_deref());
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let reads = runtime.block_on(async move {
                let started = Instant::now();
                let reader = |sse: bool, index: usize| Reader {
                    options: Arc::clone(&options),
                    stop: Arc::clone(&thread_stop),
                    name: format!("{}{index}", if sse { "sse" } else { "large" }),
                    started,
                };
                let large: Vec<_> = (0..options.large)
                    .map(|index| tokio::spawn(reader(false, index).run(false)))
                    .collect();
                let sse: Vec<_> = (0..options.sse)
                    .map(|index| tokio::spawn(reader(true, index).run(true)))
                    .collect();
                let mut reads = SlowReads::default();
                for task in large {
                    reads.large.add(task.await.expect("a slow reader panicked"));
                }
                for task in sse {
                    reads.sse.add(task.await.expect("a slow reader panicked"));
                }
                reads
            });
            let _ = done.send(reads);
        });
        SlowReaders { stop, reads }
    }
}

/// Running slow readers.
pub struct SlowReaders {
    stop: Arc<AtomicBool>,
    reads: mpsc::Receiver<SlowReads>,
}

impl SlowReaders {
    /// Readers at `address`, none yet: add them with [`SlowReaderOptions::large`] and
    /// [`SlowReaderOptions::sse`].
    pub fn to(address: SocketAddr) -> SlowReaderOptions {
        SlowReaderOptions {
            address,
            netns: None,
            large: 0,
            large_path: String::new(),
            body: Body::JsonArray,
            large_rate: 1,
            sse: 0,
            sse_path: String::new(),
            sse_rate: 1,
        }
    }

    /// Tells the readers to begin nothing new (before the servers stop, so that no reader asks
    /// a server that has gone); what they are reading they read to its end.
    pub fn begin_nothing_new(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Tells the readers to begin nothing new, waits until each has read what it is reading to
    /// its end, and adds up what they saw. An SSE stream ends when its server stops: call this
    /// once the servers are stopping or stopped, or its stream is counted as cut by the stop.
    pub fn finish(self) -> SlowReads {
        self.stop.store(true, Ordering::Relaxed);
        self.reads
            .recv_timeout(PATIENCE + READ_LIMIT)
            .unwrap_or_else(|_| panic!("the slow readers did not end within {PATIENCE:?}"))
    }
}

impl Drop for SlowReaders {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

struct Reader {
    options: Arc<SlowReaderOptions>,
    stop: Arc<AtomicBool>,
    name: String,
    started: Instant,
}

/// How one response or stream ended, when not whole.
enum Outcome {
    Complete,
    NonSuccess(u16),
    Cut(String),
    Corrupt(String),
    Stalled(String),
    StoppedByUs,
}

impl Reader {
    async fn run(self, sse: bool) -> SlowTally {
        let mut tally = SlowTally::default();
        let (path, rate) = if sse {
            (&self.options.sse_path, self.options.sse_rate)
        } else {
            (&self.options.large_path, self.options.large_rate)
        };
        while !self.stop.load(Ordering::Relaxed) {
            let stream = match connect(self.options.address).await {
                Ok(stream) => stream,
                Err(error) => {
                    tally.connect_errors += 1;
                    let failure = self.failure(&tally, &format!("connect: {error}"));
                    tally.note(failure);
                    tokio::time::sleep(RETRY_PAUSE).await;
                    continue;
                }
            };
            tally.sent += 1;
            let asked = Instant::now();
            let outcome = if sse {
                self.read_events(stream, path, rate, &mut tally).await
            } else {
                self.read_large(stream, path, rate, &mut tally).await
            };
            let failure = match outcome {
                Outcome::Complete => {
                    tally.complete += 1;
                    tally.longest = tally.longest.max(asked.elapsed());
                    None
                }
                Outcome::StoppedByUs => {
                    tally.cut_by_stop += 1;
                    None
                }
                Outcome::NonSuccess(status) => {
                    tally.non_2xx += 1;
                    Some(format!("status {status}"))
                }
                Outcome::Cut(what) => {
                    tally.cut += 1;
                    Some(format!("cut after {:.1?}: {what}", asked.elapsed()))
                }
                Outcome::Corrupt(what) => {
                    tally.corrupt += 1;
                    Some(what)
                }
                Outcome::Stalled(what) => {
                    tally.stalled += 1;
                    Some(format!("stalled after {:.1?}: {what}", asked.elapsed()))
                }
            };
            if let Some(failure) = failure {
                let failure = self.failure(&tally, &failure);
                tally.note(failure);
            }
        }
        tally
    }

    fn failure(&self, tally: &SlowTally, what: &str) -> String {
        format!(
            "{} request {} at {:.1?}: {what}",
            self.name,
            tally.sent,
            self.started.elapsed()
        )
    }

    /// Reads one large response at `rate`, checking each byte as it comes.
    async fn read_large(
        &self,
        stream: TcpStream,
        path: &str,
        rate: u64,
        tally: &mut SlowTally,
    ) -> Outcome {
        let mut body = match request(stream, path, rate, "*/*").await {
            Ok(Answer::Body(body)) => body,
            Ok(Answer::Status(status)) => return Outcome::NonSuccess(status),
            Err(outcome) => return outcome,
        };
        let mut offset = 0u64;
        let mut last = 0u8;
        loop {
            match body.next().await {
                Ok(Some(bytes)) => {
                    if offset == 0 && self.options.body == Body::JsonArray && bytes[0] != b'[' {
                        return Outcome::Corrupt(format!("a body that starts with {}", bytes[0]));
                    }
                    if let Body::Pattern(_) = self.options.body {
                        if let Some(at) = (0..bytes.len())
                            .find(|&at| bytes[at] != pattern_byte(offset + at as u64))
                        {
                            return Outcome::Corrupt(format!(
                                "byte {} differs",
                                offset + at as u64
                            ));
                        }
                    }
                    offset += bytes.len() as u64;
                    tally.read += bytes.len() as u64;
                    last = *bytes.last().unwrap();
                }
                Ok(None) => break,
                Err(outcome) => {
                    return match outcome {
                        Outcome::Cut(what) => Outcome::Cut(format!("after {offset} bytes: {what}")),
                        other => other,
                    }
                }
            }
        }
        match self.options.body {
            Body::Pattern(length) if offset != length => {
                Outcome::Cut(format!("{offset} of {length} bytes"))
            }
            Body::JsonArray if last != b']' => {
                Outcome::Corrupt(format!("a JSON array of {offset} bytes without its ']'"))
            }
            _ => Outcome::Complete,
        }
    }

    /// Reads one SSE stream at `rate` to its last event, or until told to stop.
    async fn read_events(
        &self,
        stream: TcpStream,
        path: &str,
        rate: u64,
        tally: &mut SlowTally,
    ) -> Outcome {
        let mut body = match request(stream, path, rate, "text/event-stream").await {
            Ok(Answer::Body(body)) => body,
            Ok(Answer::Status(status)) => return Outcome::NonSuccess(status),
            Err(outcome) => return outcome,
        };
        let (mut line, mut received, mut event) = (Vec::new(), 0u64, String::new());
        loop {
            let bytes = match body.next().await {
                Ok(Some(bytes)) => bytes,
                Ok(None) if self.stop.load(Ordering::Relaxed) => return Outcome::StoppedByUs,
                Ok(None) => {
                    return Outcome::Cut(format!(
                        "the stream ended after {received} events without its last"
                    ))
                }
                Err(_) if self.stop.load(Ordering::Relaxed) => return Outcome::StoppedByUs,
                Err(Outcome::Cut(what)) => {
                    return Outcome::Cut(format!("after {received} events: {what}"))
                }
                Err(other) => return other,
            };
            for byte in bytes {
                if byte != b'\n' {
                    line.push(byte);
                    continue;
                }
                let text = String::from_utf8_lossy(&line)
                    .trim_end_matches('\r')
                    .to_owned();
                line.clear();
                if let Some(name) = text.strip_prefix("event:") {
                    event = name.trim().to_owned();
                } else if let Some(data) = text.strip_prefix("data:") {
                    let mut words = data.split_whitespace();
                    let (word, number) = (words.next(), words.next());
                    let number: Option<u64> = number.and_then(|number| number.parse().ok());
                    match (event.as_str(), word, number) {
                        ("shutdown", Some("sent"), Some(sent)) => {
                            tally.said_sent += sent;
                            tally.received += received;
                            return if sent == received {
                                Outcome::Complete
                            } else {
                                Outcome::Cut(format!("received {received} of {sent} events"))
                            };
                        }
                        (_, Some("tick"), Some(tick)) if tick == received => {
                            received += 1;
                            tally.read += 1;
                        }
                        _ => {
                            return Outcome::Corrupt(format!(
                                "event {received}: unexpected data {data:?}"
                            ))
                        }
                    }
                } else if text.is_empty() {
                    event.clear();
                }
            }
        }
    }
}

async fn connect(address: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = if address.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_recv_buffer_size(RECEIVE_BUFFER)?;
    tokio::time::timeout(READ_LIMIT, socket.connect(address))
        .await
        .map_err(|_| std::io::Error::other("no connection within the read limit"))?
}

enum Answer {
    Status(u16),
    Body(BodyReader),
}

/// Sends `GET path` (the connection closes after it) and reads the head of the answer.
async fn request(
    mut stream: TcpStream,
    path: &str,
    rate: u64,
    accept: &str,
) -> Result<Answer, Outcome> {
    let head = format!(
        "GET {path} HTTP/1.1\r\nHost: slow-reader\r\nAccept: {accept}\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(head.as_bytes())
        .await
        .map_err(|error| Outcome::Cut(format!("sending the request: {error}")))?;
    let mut reader = BufReader::with_capacity(4096, Paced::new(stream, rate));
    let mut status = None;
    let mut length = None;
    let mut chunked = false;
    loop {
        let mut line = String::new();
        let read = within(reader.read_line(&mut line)).await?;
        if read == 0 {
            return Err(Outcome::Cut("the connection closed before the head".into()));
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if status.is_none() {
            status = line.split(' ').nth(1).and_then(|code| code.parse().ok());
            continue;
        }
        let (name, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = value.parse().ok();
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.eq_ignore_ascii_case("chunked");
        }
    }
    let status = status.ok_or_else(|| Outcome::Cut("no status line".into()))?;
    if status != 200 {
        return Ok(Answer::Status(status));
    }
    let left = match (chunked, length) {
        (true, _) => Left::ChunkHead,
        (false, Some(length)) => Left::Bytes(length, false),
        (false, None) => Left::UntilClose,
    };
    Ok(Answer::Body(BodyReader { reader, left }))
}

/// Awaits one read, bounded by [`READ_LIMIT`].
async fn within<T>(
    read: impl std::future::Future<Output = std::io::Result<T>>,
) -> Result<T, Outcome> {
    match tokio::time::timeout(READ_LIMIT, read).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(Outcome::Cut(error.to_string())),
        Err(_) => Err(Outcome::Stalled(format!("no bytes for {READ_LIMIT:?}"))),
    }
}

enum Left {
    /// Bytes of the body (or of the current chunk, then its CRLF when `true`).
    Bytes(u64, bool),
    ChunkHead,
    UntilClose,
    Done,
}

/// A response body, decoded from its length or its chunks, in the pieces it arrives in.
struct BodyReader {
    reader: BufReader<Paced>,
    left: Left,
}

impl BodyReader {
    /// The next piece of the body; `None` at its end; a cut, a stall or an error otherwise.
    async fn next(&mut self) -> Result<Option<Vec<u8>>, Outcome> {
        loop {
            match self.left {
                Left::Done => return Ok(None),
                Left::ChunkHead => {
                    let mut line = String::new();
                    if within(self.reader.read_line(&mut line)).await? == 0 {
                        return Err(Outcome::Cut("closed before the next chunk".into()));
                    }
                    let size = line.trim().split(';').next().unwrap_or("");
                    let size = u64::from_str_radix(size, 16)
                        .map_err(|_| Outcome::Cut(format!("a chunk head {line:?}")))?;
                    self.left = if size == 0 {
                        Left::Done
                    } else {
                        Left::Bytes(size, true)
                    };
                }
                Left::Bytes(0, chunked) => {
                    if !chunked {
                        self.left = Left::Done;
                        continue;
                    }
                    let mut crlf = [0; 2];
                    within(self.reader.read_exact(&mut crlf)).await?;
                    self.left = Left::ChunkHead;
                }
                Left::Bytes(left, chunked) => {
                    let mut buffer = vec![0; left.min(4096) as usize];
                    let read = within(self.reader.read(&mut buffer)).await?;
                    if read == 0 {
                        return Err(Outcome::Cut(format!("closed with {left} bytes to come")));
                    }
                    buffer.truncate(read);
                    self.left = Left::Bytes(left - read as u64, chunked);
                    return Ok(Some(buffer));
                }
                Left::UntilClose => {
                    let mut buffer = vec![0; 4096];
                    let read = within(self.reader.read(&mut buffer)).await?;
                    if read == 0 {
                        self.left = Left::Done;
                        continue;
                    }
                    buffer.truncate(read);
                    return Ok(Some(buffer));
                }
            }
        }
    }
}

/// A stream read no faster than `rate` bytes a second, in reads of at most a few KB: the pacing
/// is the condition under test, not a wait for anything.
struct Paced {
    stream: TcpStream,
    rate: u64,
    began: Instant,
    taken: u64,
    pause: Option<Pin<Box<tokio::time::Sleep>>>,
    scratch: Vec<u8>,
}

impl Paced {
    fn new(stream: TcpStream, rate: u64) -> Paced {
        Paced {
            stream,
            rate: rate.max(1),
            began: Instant::now(),
            taken: 0,
            pause: None,
            scratch: vec![0; 4096],
        }
    }
}

impl AsyncRead for Paced {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        loop {
            if let Some(pause) = &mut this.pause {
                ready!(pause.as_mut().poll(cx));
                this.pause = None;
            }
            let due = this.began + Duration::from_secs_f64(this.taken as f64 / this.rate as f64);
            if due > Instant::now() {
                this.pause = Some(Box::pin(tokio::time::sleep_until(due.into())));
                continue;
            }
            let most = buf.remaining().min(this.scratch.len());
            let mut scratch = ReadBuf::new(&mut this.scratch[..most]);
            ready!(Pin::new(&mut this.stream).poll_read(cx, &mut scratch))?;
            let read = scratch.filled().len();
            buf.put_slice(scratch.filled());
            this.taken += read as u64;
            return Poll::Ready(Ok(()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pacing holds a reader to its rate: 48 KB at 64 KB/s takes about 0.75 s, never less
    /// than half of it, whatever the sender's speed.
    #[tokio::test]
    async fn a_paced_reader_takes_its_time() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            socket.write_all(&[7; 48 * 1024]).await.unwrap();
        });
        let began = Instant::now();
        let mut paced = Paced::new(TcpStream::connect(address).await.unwrap(), 64 * 1024);
        let mut all = Vec::new();
        paced.read_to_end(&mut all).await.unwrap();
        assert_eq!(all.len(), 48 * 1024);
        assert!(
            began.elapsed() > Duration::from_millis(350),
            "{:?}",
            began.elapsed()
        );
    }
}
