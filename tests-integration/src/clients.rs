//! Clients that no one here wrote (curl, nghttp2's nghttp, Python's http.client, websockets
//! and h2), run as child processes: each line a client prints is timed as it arrives, and the
//! Python drivers take their next step from a line on stdin, so that a test moves on events,
//! never on sleeps. Every wait is bounded by [`PATIENCE`].

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

pub use crate::process::Line;
use crate::process::{Signal, PATIENCE};
use crate::require::{program_on_path, require};

/// Debian's Python, which python3-websockets and python3-h2 install into (a `python3` earlier on
/// `PATH`, pyenv's say, would not see them).
pub const PYTHON: &str = "/usr/bin/python3";

/// Whether `program` is on `PATH`; says so out loud when it is not (see [`require`]).
pub fn require_program(program: &str, package: &str) -> bool {
    require(
        &format!("{program} on PATH (scripts/install-test-clients installs {package})"),
        program_on_path(program).is_some(),
    )
}

/// Whether [`PYTHON`] can import `module`; says so out loud when it cannot.
pub fn require_python_module(module: &str, package: &str) -> bool {
    let importable = Command::new(PYTHON)
        .args(["-c", &format!("import {module}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    require(
        &format!("{PYTHON} with {module} (scripts/install-test-clients installs {package})"),
        importable,
    )
}

#[derive(Default)]
struct Lines {
    stdout: Vec<Line>,
    stderr: Vec<String>,
    streams_closed: usize,
}

#[derive(Default)]
struct Output {
    lines: Mutex<Lines>,
    grew: Condvar,
}

/// A client process: its output read as it comes, its stdin open for commands.
pub struct Client {
    name: String,
    pid: nix::unistd::Pid,
    stdin: Option<ChildStdin>,
    output: Arc<Output>,
    exited: mpsc::Receiver<Option<i32>>,
    reaped: bool,
    /// Just before the process was started: no time the client reports is earlier.
    pub started_at: Instant,
}

/// What a client printed, once it has exited.
#[derive(Debug)]
pub struct ClientOutput {
    /// The exit code; `None` when a signal ended it.
    pub code: Option<i32>,
    /// Every stdout line, timed.
    pub stdout: Vec<Line>,
    /// All of stderr.
    pub stderr: String,
}

impl Client {
    /// Starts `program` with `args`, its stdin a pipe for [`Client::tell`].
    pub fn start(name: &str, program: &str, args: &[&str]) -> Client {
        let started_at = Instant::now();
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {name} ({program}): {error}"));
        let output = Arc::new(Output::default());
        read_lines(child.stdout.take().unwrap(), Arc::clone(&output), true);
        read_lines(child.stderr.take().unwrap(), Arc::clone(&output), false);
        let stdin = child.stdin.take();
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let (exit_tx, exited) = mpsc::channel();
        // Waited for on a thread, so that `finish` can bound its wait.
        std::thread::spawn(move || {
            let status = child.wait().expect("wait for a client");
            let _ = exit_tx.send(status.code());
        });
        Client {
            name: name.to_owned(),
            pid,
            stdin,
            output,
            exited,
            reaped: false,
            started_at,
        }
    }

    /// Runs a Python driver script (unbuffered, so each line arrives when printed).
    pub fn python(name: &str, script: &str, args: &[&str]) -> Client {
        let mut all = vec!["-u", "-c", script];
        all.extend_from_slice(args);
        Client::start(name, PYTHON, &all)
    }

    /// Waits for a stdout line containing `needle`, and returns the first such line.
    pub fn wait_for_line(&self, needle: &str) -> Line {
        let deadline = Instant::now() + PATIENCE;
        let mut lines = self.output.lines.lock().unwrap();
        loop {
            if let Some(line) = lines.stdout.iter().find(|line| line.text.contains(needle)) {
                return line.clone();
            }
            let left = deadline
                .checked_duration_since(Instant::now())
                .filter(|_| lines.streams_closed < 2)
                .unwrap_or_else(|| {
                    panic!(
                        "{} printed no line with {needle:?} (waited up to {PATIENCE:?}); \
                         stdout {:?}, stderr {:?}",
                        self.name,
                        texts(&lines.stdout),
                        lines.stderr
                    )
                });
            lines = self.output.grew.wait_timeout(lines, left).unwrap().0;
        }
    }

    /// The `n`th stdout line (from 1) containing `needle`, once it has arrived.
    pub fn wait_for_nth_line(&self, needle: &str, n: usize) -> Line {
        let deadline = Instant::now() + PATIENCE;
        let mut lines = self.output.lines.lock().unwrap();
        loop {
            let mut matching = lines
                .stdout
                .iter()
                .filter(|line| line.text.contains(needle));
            if let Some(line) = matching.nth(n - 1) {
                return line.clone();
            }
            let left = deadline
                .checked_duration_since(Instant::now())
                .filter(|_| lines.streams_closed < 2)
                .unwrap_or_else(|| {
                    panic!(
                        "{} printed no line {n} with {needle:?} (waited up to {PATIENCE:?}); \
                         stdout {:?}, stderr {:?}",
                        self.name,
                        texts(&lines.stdout),
                        lines.stderr
                    )
                });
            lines = self.output.grew.wait_timeout(lines, left).unwrap().0;
        }
    }

    /// Sends one command line to the client's stdin.
    pub fn tell(&mut self, command: &str) {
        let stdin = self.stdin.as_mut().expect("stdin already closed");
        writeln!(stdin, "{command}")
            .and_then(|()| stdin.flush())
            .unwrap_or_else(|error| panic!("cannot tell {} {command:?}: {error}", self.name));
    }

    /// Closes stdin (the drivers end there) and waits for the exit.
    pub fn finish(mut self) -> ClientOutput {
        self.stdin.take();
        let code = match self.exited.recv_timeout(PATIENCE) {
            Ok(code) => code,
            Err(_) => {
                let lines = self.output.lines.lock().unwrap();
                panic!(
                    "{} did not exit within {PATIENCE:?}; stdout {:?}, stderr {:?}",
                    self.name,
                    texts(&lines.stdout),
                    lines.stderr
                );
            }
        };
        self.reaped = true;
        let mut lines = self
            .output
            .grew
            .wait_timeout_while(self.output.lines.lock().unwrap(), PATIENCE, |lines| {
                lines.streams_closed < 2
            })
            .unwrap()
            .0;
        let lines = std::mem::take(&mut *lines);
        ClientOutput {
            code,
            stdout: lines.stdout,
            stderr: lines.stderr.join("\n"),
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        // A test that failed half-way, or a client meant to hang (the slowloris), must not
        // outlive the test.
        if !self.reaped && self.exited.try_recv().is_err() {
            let _ = nix::sys::signal::kill(self.pid, Signal::SIGKILL);
        }
    }
}

impl ClientOutput {
    /// The first stdout line containing `needle`, or a failure that shows the whole output.
    pub fn line(&self, needle: &str) -> &Line {
        self.stdout
            .iter()
            .find(|line| line.text.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?} in {self:#?}"))
    }

    /// Where the first stdout line containing `needle` is.
    pub fn position(&self, needle: &str) -> Option<usize> {
        self.stdout
            .iter()
            .position(|line| line.text.contains(needle))
    }

    /// All of stdout, one line after another.
    pub fn text(&self) -> String {
        texts(&self.stdout).join("\n")
    }
}

fn texts(lines: &[Line]) -> Vec<&str> {
    lines.iter().map(|line| line.text.as_str()).collect()
}

fn read_lines(stream: impl Read + Send + 'static, output: Arc<Output>, stdout: bool) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(text) = line else { break };
            let at = Instant::now();
            let mut lines = output.lines.lock().unwrap();
            if stdout {
                lines.stdout.push(Line { at, text });
            } else {
                lines.stderr.push(text);
            }
            output.grew.notify_all();
        }
        output.lines.lock().unwrap().streams_closed += 1;
        output.grew.notify_all();
    });
}

/// Runs curl with HTTP/2 over cleartext (prior knowledge) on `url` to the end; stdout is
/// `STATUS HTTP_VERSION` then the body.
pub fn curl_http2(url: &str) -> ClientOutput {
    Client::start(
        "curl",
        "curl",
        &[
            "--http2-prior-knowledge",
            "--silent",
            "--show-error",
            "--max-time",
            "20",
            "--write-out",
            "\nstatus=%{http_code} version=%{http_version}\n",
            url,
        ],
    )
    .finish()
}

/// Starts nghttp with `-v` (every frame, each stamped with seconds since its connection was
/// made) and `args`, its stdout line-buffered through coreutils' `stdbuf`: nghttp would
/// otherwise hold its lines until its exit, and each frame is timed as it arrives.
pub fn nghttp(args: &[&str]) -> Client {
    let mut all = vec!["-oL", "nghttp", "--verbose"];
    all.extend_from_slice(args);
    Client::start("nghttp", "stdbuf", &all)
}

/// The stamp of an nghttp `-v` line (`[  0.498] recv GOAWAY frame ...`), from its connection.
pub fn nghttp_stamp(line: &str) -> Option<Duration> {
    let inside = line.trim_start().strip_prefix('[')?.split(']').next()?;
    inside.trim().parse().ok().map(Duration::from_secs_f64)
}

fn host_and_port(address: SocketAddr) -> [String; 2] {
    [address.ip().to_string(), address.port().to_string()]
}

/// An HTTP/1.1 client on one keep-alive connection (`http.client.HTTPConnection`): connects at
/// once and prints `connected port=P`; each line on stdin is a path to GET on that same
/// connection (it never reconnects), answered by
/// `answer status=S connection=C port=P body=B` or `answer error=TYPE: MESSAGE`.
pub fn http1(address: SocketAddr) -> Client {
    let [host, port] = host_and_port(address);
    Client::python("http.client", HTTP1, &[&host, &port])
}

const HTTP1: &str = r#"
import http.client, sys
connection = http.client.HTTPConnection(sys.argv[1], int(sys.argv[2]), timeout=30)
connection.auto_open = 0  # one connection only: a closed one is an error, not a reconnect
connection.connect()
port = connection.sock.getsockname()[1]
print(f"connected port={port}")
for line in sys.stdin:
    try:
        connection.request("GET", line.strip())
        response = connection.getresponse()
        body = response.read().decode()
        connection_header = response.getheader("Connection")
        print(f"answer status={response.status} connection={connection_header} port={port} body={body!r}")
    except Exception as error:
        print(f"answer error={type(error).__name__}: {error}")
"#;

/// A WebSocket client (Python's `websockets`) on `ws://ADDRESS/ws`: prints `open`, sends each
/// line of stdin as a text message, prints `echo: TEXT` for each message back, and
/// `closed code=C reason=R` when the socket closes.
pub fn websocket(address: SocketAddr) -> Client {
    Client::python("websockets", WEBSOCKET, &[&format!("ws://{address}/ws")])
}

const WEBSOCKET: &str = r#"
import asyncio, sys
import websockets

async def main(url):
    loop = asyncio.get_running_loop()
    commands = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(commands), sys.stdin)
    async with websockets.connect(url) as socket:
        print("open")
        async def send():
            while line := await commands.readline():
                await socket.send(line.decode().strip())
        sender = asyncio.create_task(send())
        try:
            while True:
                print(f"echo: {await socket.recv()}")
        except websockets.ConnectionClosed:
            print(f"closed code={socket.close_code} reason={socket.close_reason!r}")
        sender.cancel()

asyncio.run(main(sys.argv[1]))
"#;

/// A slowloris: sends half a request head (`GET / HTTP/1.1`, `Host: x`, no blank line) on a
/// raw socket, prints `half a head sent`, and stalls; prints `closed: eof` (or the error) when
/// the server closes the connection.
pub fn slowloris(address: SocketAddr) -> Client {
    let [host, port] = host_and_port(address);
    Client::python("slowloris", SLOWLORIS, &[&host, &port])
}

const SLOWLORIS: &str = r#"
import socket, sys
sock = socket.create_connection((sys.argv[1], int(sys.argv[2])))
sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
print("half a head sent")
try:
    while sock.recv(65536):
        pass
    print("closed: eof")
except OSError as error:
    print(f"closed: {type(error).__name__}")
"#;

/// An HTTP/2 client (Python's `h2`) that sends its connection preface and SETTINGS, prints
/// `preface sent`, and never sends anything more: no request, not even a SETTINGS ack. Prints
/// `frame: EVENT` for what it receives, `goaway: ...` on GOAWAY, and `closed: eof` (or the
/// error) when the server closes the connection.
pub fn silent_http2(address: SocketAddr) -> Client {
    let [host, port] = host_and_port(address);
    Client::python("h2", SILENT_HTTP2, &[&host, &port])
}

const SILENT_HTTP2: &str = r#"
import socket, sys
import h2.config, h2.connection, h2.events, h2.exceptions
sock = socket.create_connection((sys.argv[1], int(sys.argv[2])))
connection = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True))
connection.initiate_connection()
sock.sendall(connection.data_to_send())
print("preface sent")
while True:
    try:
        data = sock.recv(65536)
    except OSError as error:
        print(f"closed: {type(error).__name__}")
        break
    if not data:
        print("closed: eof")
        break
    try:
        events = connection.receive_data(data)
    except h2.exceptions.ProtocolError as error:
        # Frames after GOAWAY (the server's last ping, say): h2 refuses them, the socket is read on.
        print(f"frame after close: {error}")
        continue
    for event in events:
        if isinstance(event, h2.events.ConnectionTerminated):
            print(f"goaway: error_code={event.error_code} last_stream_id={event.last_stream_id}")
        else:
            print(f"frame: {type(event).__name__}")
"#;
