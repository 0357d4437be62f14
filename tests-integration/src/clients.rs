//! Clients that no one here wrote (curl, nghttp2's nghttp, Python's http.client, ssl,
//! websockets, h2 and grpcio), run as [`Process`]es: each line a client prints is timed as it
//! arrives, and the Python drivers take their next step from a line on stdin, so that a test
//! moves on events, never on sleeps.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::process::{Finished, Process, PYTHON};
use crate::require::{program_on_path, require};

/// Whether `program` is on `PATH`; says so out loud when it is not (see [`require`]).
pub fn require_program(program: &str, package: &str) -> bool {
    require(
        &format!("{program} on PATH (scripts/install-test-clients installs {package})"),
        program_on_path(program).is_some(),
    )
}

/// Whether every `(program, Debian package)` is on `PATH`; says so out loud for the first
/// missing one.
pub fn require_programs(programs: &[(&str, &str)]) -> bool {
    programs
        .iter()
        .all(|(program, package)| require_program(program, package))
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

/// The Python of the venv that scripts/python-grpc-env makes (`$GRACEFUL_PYTHON`, by default
/// /var/lib/graceful-python/venv/bin/python).
pub fn grpc_python() -> String {
    std::env::var("GRACEFUL_PYTHON")
        .unwrap_or_else(|_| "/var/lib/graceful-python/venv/bin/python".to_owned())
}

/// Whether [`grpc_python`] has grpcio, its health stubs and grpcio-tools; says so out loud when
/// it has not (see [`require`]).
pub fn require_grpc_python() -> bool {
    let python = grpc_python();
    let available = Command::new(&python)
        .args([
            "-c",
            "import grpc, grpc_health.v1.health_pb2_grpc, grpc_tools",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    require(
        &format!("{python} with grpcio, grpcio-health-checking and grpcio-tools (scripts/python-grpc-env makes it)"),
        available,
    )
}

/// Runs curl to its end: a plain GET of `url`, its body on stdout.
pub fn curl(url: &str) -> Finished {
    Process::start(
        "curl",
        "curl",
        &["--silent", "--show-error", "--max-time", "20", url],
        &[],
    )
    .wait_exit()
}

/// Runs curl with HTTP/2 over cleartext (prior knowledge) on `url` to the end; stdout is
/// the body, then `status=S version=V`.
pub fn curl_http2(url: &str) -> Finished {
    curl_with_status(&["--http2-prior-knowledge"], url).wait_exit()
}

/// Starts curl over HTTPS on `url`, trusting only the CA certificate in the file `ca`, with
/// `args` (`--http2` or `--http1.1`; a `--max-time` of their own overrides the 20 s); stdout is
/// the body, then `status=S version=V`. A timeout is exit code 28 and `status=000`.
pub fn curl_https(ca: &Path, args: &[&str], url: &str) -> Process {
    let ca = ca.to_str().expect("a UTF-8 path");
    let mut all = vec!["--cacert", ca];
    all.extend_from_slice(args);
    curl_with_status(&all, url)
}

/// curl with `args` on `url`, silent but for errors, 20 s at most, its stdout closed by
/// `status=S version=V`.
fn curl_with_status(args: &[&str], url: &str) -> Process {
    let mut all = vec!["--silent", "--show-error", "--max-time", "20"];
    all.extend_from_slice(args);
    all.extend_from_slice(&[
        "--write-out",
        "\nstatus=%{http_code} version=%{http_version}\n",
        url,
    ]);
    Process::start("curl", "curl", &all, &[])
}

/// Starts nghttp with `-v` (every frame, each stamped with seconds since its connection was
/// made) and `args`, its stdout line-buffered through coreutils' `stdbuf`: nghttp would
/// otherwise hold its lines until its exit, and each frame is timed as it arrives.
pub fn nghttp(args: &[&str]) -> Process {
    let mut all = vec!["-oL", "nghttp", "--verbose"];
    all.extend_from_slice(args);
    Process::start("nghttp", "stdbuf", &all, &[])
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
pub fn http1(address: SocketAddr) -> Process {
    let [host, port] = host_and_port(address);
    Process::python("http.client", HTTP1, &[&host, &port])
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

/// An HTTPS/1.1 client (`http.client.HTTPSConnection` over `ssl`) that trusts only the CA
/// certificate in the file `ca` and takes one command a line, each answered by one `answer`
/// line (see [`Process::ask`]):
/// - `new`: a new connection, and GET / on it;
/// - `again`: GET / on the connection of the last `new` (never a reconnect);
/// - `wait SERIAL SECONDS`: new connections, one after the other, until one presents the
///   certificate with serial SERIAL (hex, as `openssl x509 -serial` prints it).
///
/// A GET answers `answer status=S serial=SERIAL port=P` (P: the client's port, the connection's
/// identity); `wait` answers `answer after=SECONDS` or `answer timeout last=SERIAL`; a failure
/// `answer error=TYPE: MESSAGE`.
pub fn https(address: SocketAddr, ca: &Path) -> Process {
    let [host, port] = host_and_port(address);
    let ca = ca.to_str().expect("a UTF-8 path");
    Process::python("https", HTTPS, &[&host, &port, ca])
}

const HTTPS: &str = r#"
import http.client, ssl, sys, time
host, port, cafile = sys.argv[1], int(sys.argv[2]), sys.argv[3]
context = ssl.create_default_context(cafile=cafile)

def connect():
    connection = http.client.HTTPSConnection(host, port, context=context, timeout=30)
    connection.auto_open = 0  # a closed connection is an error, not a reconnect
    connection.connect()
    return connection

def get(connection):
    connection.request("GET", "/")
    response = connection.getresponse()
    response.read()
    serial = connection.sock.getpeercert()["serialNumber"]
    return f"status={response.status} serial={serial} port={connection.sock.getsockname()[1]}"

kept = None
for line in sys.stdin:
    command = line.split()
    try:
        if command[0] == "new":
            kept = connect()
            print("answer " + get(kept))
        elif command[0] == "again":
            print("answer " + get(kept))
        elif command[0] == "wait":
            began = time.monotonic()
            while True:
                connection = connect()
                seen = connection.sock.getpeercert()["serialNumber"]
                connection.close()
                if seen == command[1]:
                    print(f"answer after={time.monotonic() - began:.3f}")
                    break
                if time.monotonic() - began > float(command[2]):
                    print(f"answer timeout last={seen}")
                    break
                # Bounded polling of the server's certificate, not a synchronisation.
                time.sleep(0.05)
    except Exception as error:
        print(f"answer error={type(error).__name__}: {error}")
"#;

/// A WebSocket client (Python's `websockets`) on `ws://ADDRESS/ws`: prints `open`, sends each
/// line of stdin as a text message, prints `echo: TEXT` for each message back, and
/// `closed code=C reason=R` when the socket closes.
pub fn websocket(address: SocketAddr) -> Process {
    Process::python("websockets", WEBSOCKET, &[&format!("ws://{address}/ws")])
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
pub fn slowloris(address: SocketAddr) -> Process {
    let [host, port] = host_and_port(address);
    Process::python("slowloris", SLOWLORIS, &[&host, &port])
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

/// A client that sends its request head a line at a time: half a head, then `half a head
/// sent`, then one more header line every `every`, each printed as `line N`. Told `end` on
/// stdin, it sends the blank line that ends the head and prints `head ended`; it prints the
/// response's status line as `status: ...`, and `closed: eof` (or the error) when the server
/// closes the connection, with the number of lines it added. Never told, it is a slowloris.
pub fn trickling_slowloris(address: SocketAddr, every: Duration) -> Process {
    let [host, port] = host_and_port(address);
    let every = format!("{}", every.as_secs_f64());
    Process::python("slowloris", TRICKLING_SLOWLORIS, &[&host, &port, &every])
}

const TRICKLING_SLOWLORIS: &str = r#"
import socket, sys, threading, time
sock = socket.create_connection((sys.argv[1], int(sys.argv[2])))
sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
print("half a head sent")
added = 0
ended = False
sending = threading.Lock()
def trickle():
    global added
    try:
        while True:
            time.sleep(float(sys.argv[3]))
            with sending:
                if ended:
                    return
                sock.sendall(b"X-Trickle: 1\r\n")
                added += 1
            print(f"line {added}")
    except OSError:
        pass
def end_on_stdin():
    global ended
    for command in sys.stdin:
        if command.strip() == "end":
            with sending:
                ended = True
                sock.sendall(b"\r\n")
            print("head ended")
            return
threading.Thread(target=trickle, daemon=True).start()
threading.Thread(target=end_on_stdin, daemon=True).start()
answered = False
try:
    while data := sock.recv(65536):
        if not answered:
            answered = True
            print("status: " + data.split(b"\r\n")[0].decode())
    print(f"closed: eof after {added} more lines")
except OSError as error:
    print(f"closed: {type(error).__name__} after {added} more lines")
"#;

/// An HTTP/2 client (Python's `h2`) that sends its connection preface and SETTINGS, prints
/// `preface sent`, and never sends anything more: no request, not even a SETTINGS ack. Prints
/// `frame: EVENT` for what it receives, `goaway: ...` on GOAWAY, and `closed: eof` (or the
/// error) when the server closes the connection.
pub fn silent_http2(address: SocketAddr) -> Process {
    let [host, port] = host_and_port(address);
    crate::netns::client_python(crate::process::PYTHON, "h2", SILENT_HTTP2, &[&host, &port])
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
