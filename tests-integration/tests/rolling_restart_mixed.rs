//! The rolling restart with every kind of client at once: two instances of
//! src/bin/restart_service.rs (one `graceful::serve` port each) behind a real HAProxy (active
//! `/readyz` checks, `retries 0`), restarted in turn `ROLLING_RESTARTS` times (default 4) while
//! HTTP/1.1 keep-alive POSTs, HTTP/2 POSTs (h2c to HAProxy, `proto h2` to the backends),
//! WebSocket echo sessions and SSE subscribers go through HAProxy, and gRPC unary calls go
//! straight to both instances on one round-robin channel with client-side health checks. Every
//! request, message, event and call is counted, and every 2xx write is looked for in SQLite.
//! Slow readers go through HAProxy too: large `/big` responses read at a bounded rate and SSE
//! streams read behind their producer, each checked whole (`slow_readers`).
//! Contrasts: pre-stop 0 s, and plain tokio (src/bin/plain_service.rs, HTTP clients only).
//! Under scripts/adverse/slow-network the clients run in a network namespace of their own,
//! behind a `tbf`-shaped veth link (`netns`); the servers and HAProxy stay on this side.
//!
//! Needs HAProxy, Debian's python3-websockets and the venv of `scripts/python-grpc-env`: run
//! `scripts/rolling-restart`. Missing ones fail the test under `CI=true`, else skip it loudly.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use graceful_tests_integration::clients::{
    grpc_python, require_grpc_python, require_python_module,
};
use graceful_tests_integration::haproxy::{self, Haproxy, Server};
use graceful_tests_integration::load::{database_rows, Load, Refusals, Tally};
use graceful_tests_integration::netns::{self, client_netns, server_address, server_ip};
use graceful_tests_integration::process::PYTHON;
use graceful_tests_integration::require::require;
use graceful_tests_integration::slow_readers::{Body, SlowReaders, SlowReads, SlowTally};
use graceful_tests_integration::{cpu_cgroup, free_port, Finished, Process, Signal, FIRST_FEW};

/// Where runs keep their database and HAProxy configuration (never under /tmp).
const STATE_DIR: &str = "/var/lib/graceful-mixed-restart";
const HTTP1_WORKERS: usize = 4;
const HTTP2_WORKERS: usize = 4;
const WEBSOCKET_SESSIONS: usize = 4;
const SSE_SUBSCRIBERS: usize = 2;
const GRPC_WORKERS: usize = 2;
/// Readers of large responses, each read at [`SLOW_LARGE_RATE`]: about 10 s a response, so that
/// responses are in flight at most restarts.
const SLOW_LARGE_READERS: usize = 2;
const SLOW_LARGE_BYTES: u64 = 1024 * 1024;
const SLOW_LARGE_RATE: u64 = 100 * 1024;
/// SSE subscribers reading slower than their stream is written: each tick padded to 1 KB,
/// about 10 KB/s, read at 8 KB/s.
const SLOW_SSE_READERS: usize = 2;
const SLOW_SSE_PAD: usize = 1024;
const SLOW_SSE_RATE: u64 = 8 * 1024;
/// The plain contrast has neither: its slow readers read `GET /items` at this rate.
const SLOW_ITEMS_RATE: u64 = 16 * 1024;

/// Restarts in all (alternating between the two instances).
fn restarts() -> usize {
    std::env::var("ROLLING_RESTARTS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(4)
}

/// Seconds of load after each restart, once the new instance is in rotation everywhere.
fn settle() -> Duration {
    let seconds: f64 = std::env::var("ROLLING_SETTLE_SECONDS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(0.5);
    Duration::from_secs_f64(seconds)
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Variant {
    Graceful,
    GracefulWithoutPreStop,
    /// src/bin/plain_service.rs: HTTP only, so only the HTTP clients run.
    Plain,
}

impl Variant {
    fn binary(self) -> &'static str {
        match self {
            Variant::Plain => "plain_service",
            _ => "restart_service",
        }
    }

    fn all_clients(self) -> bool {
        self != Variant::Plain
    }

    fn tag(self) -> &'static str {
        match self {
            Variant::Graceful => "graceful",
            Variant::GracefulWithoutPreStop => "nopre",
            Variant::Plain => "plain",
        }
    }
}

struct Instance {
    name: &'static str,
    port: u16,
    /// The plain service answers `/readyz` on a port of its own; restart_service on its own port.
    health_port: Option<u16>,
    process: Option<Process>,
    pid: String,
}

impl Instance {
    fn new(name: &'static str, variant: Variant) -> Instance {
        Instance {
            name,
            port: free_port(),
            health_port: (variant == Variant::Plain).then(free_port),
            process: None,
            pid: String::new(),
        }
    }

    fn address(&self) -> SocketAddr {
        server_address(self.port)
    }

    fn start(&mut self, variant: Variant, database: &Path) {
        let listen = self.address().to_string();
        let health = self
            .health_port
            .map(|port| server_address(port).to_string());
        let database_url = format!("sqlite://{}", database.display());
        let mut env = vec![
            ("LISTEN_ADDR", listen.as_str()),
            ("DATABASE_URL", database_url.as_str()),
        ];
        if let Some(health) = &health {
            env.push(("GRACEFUL_HEALTH_ADDR", health.as_str()));
        }
        match variant {
            Variant::Graceful => env.push(("GRACEFUL_PRE_STOP", "1s")),
            Variant::GracefulWithoutPreStop => env.push(("GRACEFUL_PRE_STOP", "0s")),
            Variant::Plain => {}
        }
        let process = Process::fixture_in(variant.binary(), &env, cpu_cgroup(self.name).as_deref());
        process.wait_for_stdout("listening");
        if variant.all_clients() {
            let line = process.wait_for_stdout("pid ");
            self.pid = line.text.trim_start_matches("pid ").trim().to_owned();
        }
        self.process = Some(process);
    }

    fn stop(&mut self) {
        self.process.take().unwrap().stop_instance(self.name);
    }
}

/// WebSocket sessions and SSE subscribers through HAProxy, in one Python process (Debian's
/// python3-websockets). Runs until stdin closes, then lets each socket collect its outstanding
/// echoes (at most 5 s), closes it with 1000, and prints one `result` line per kind.
const STREAMS: &str = r#"
import asyncio, http.client, sys, threading, time
import websockets

host, port, sessions, subscribers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
started = time.monotonic()
stopping = threading.Event()
failures = []
lock = threading.Lock()

def failure(text):
    with lock:
        failures.append("%s at %.1fs" % (text, time.monotonic() - started))

ws = {"sent": 0, "echoed": 0, "resent": 0, "connects": 0, "connect_errors": 0, "clean_closes": 0,
      "abnormal_closes": 0, "lost": 0}

async def session(n):
    loop = asyncio.get_running_loop()
    seq, pending, done = 0, {}, False
    while not done:
        try:
            async with websockets.connect(f"ws://{host}:{port}/ws", open_timeout=5, close_timeout=5,
                                          ping_interval=None) as socket:
                ws["connects"] += 1
                # What was sent and never echoed goes again, in order, on the new connection.
                for key in sorted(pending):
                    await socket.send(pending[key])
                    ws["resent"] += 1
                next_send, stop_since = loop.time(), None
                while True:
                    now = loop.time()
                    if stopping.is_set():
                        stop_since = stop_since or now
                        if not pending or now - stop_since > 5:
                            await socket.close(1000)
                            done = True
                            break
                        timeout = 0.1
                    else:
                        if now >= next_send:
                            pending[seq] = "%d-%d" % (n, seq)
                            await socket.send(pending[seq])
                            seq += 1
                            ws["sent"] += 1
                            next_send = now + 0.1
                        timeout = max(0.0, next_send - loop.time())
                    try:
                        message = await asyncio.wait_for(socket.recv(), timeout)
                    except asyncio.TimeoutError:
                        continue
                    if pending.pop(int(message.split("-")[1]), None) is not None:
                        ws["echoed"] += 1
        except websockets.ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd else None
            if code in (1000, 1001):
                ws["clean_closes"] += 1
            else:
                ws["abnormal_closes"] += 1
                failure("ws session %d: abnormal close %s (%s)" % (n, code, closed))
        except Exception as error:
            ws["connect_errors"] += 1
            failure("ws session %d: %s: %s" % (n, type(error).__name__, error))
            if stopping.is_set():
                break
            await asyncio.sleep(0.05)  # pacing a reconnect, not waiting for anything
    ws["lost"] += len(pending)
    for key in sorted(pending)[:5]:
        failure("ws session %d: message %d never echoed" % (n, key))

sse = {"streams": 0, "complete": 0, "events": 0, "complete_events": 0, "server_sent": 0, "lost": 0, "abnormal_ends": 0,
       "non_2xx": 0, "connect_errors": 0, "cut_by_stop": 0}

def subscriber(n):
    while not stopping.is_set():
        try:
            connection = http.client.HTTPConnection(host, port, timeout=10)
            connection.request("GET", "/events", headers={"Accept": "text/event-stream"})
            response = connection.getresponse()
        except Exception as error:
            with lock:
                sse["connect_errors"] += 1
            failure("sse %d: %s: %s" % (n, type(error).__name__, error))
            time.sleep(0.05)
            continue
        if response.status != 200:
            with lock:
                sse["non_2xx"] += 1
            failure("sse %d: status %d" % (n, response.status))
            connection.close()
            continue
        with lock:
            sse["streams"] += 1
        received, event, server_sent = 0, None, None
        try:
            while not stopping.is_set():
                line = response.readline()
                if not line:
                    break
                line = line.decode().rstrip("\r\n")
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data = line[5:].strip()
                    if event == "shutdown":
                        server_sent = int(data.split()[1])
                    else:
                        received += 1
                elif line == "":
                    event = None
        except Exception as error:
            failure("sse %d: %s: %s" % (n, type(error).__name__, error))
        connection.close()
        with lock:
            sse["events"] += received
            if server_sent is not None:
                sse["complete"] += 1
                sse["complete_events"] += received
                sse["server_sent"] += server_sent
                if received != server_sent:
                    sse["lost"] += abs(server_sent - received)
                    failure("sse %d: received %d of %d events" % (n, received, server_sent))
            elif stopping.is_set():
                sse["cut_by_stop"] += 1
            else:
                sse["abnormal_ends"] += 1
                failure("sse %d: stream ended after %d events without its last event" % (n, received))

async def main():
    threads = [threading.Thread(target=subscriber, args=(n,)) for n in range(subscribers)]
    for thread in threads:
        thread.start()
    loop = asyncio.get_running_loop()
    tasks = [asyncio.create_task(session(n)) for n in range(sessions)]
    print("started", flush=True)
    await loop.run_in_executor(None, sys.stdin.read)
    stopping.set()
    await asyncio.gather(*tasks)
    for thread in threads:
        thread.join()
    print("result ws " + " ".join("%s=%d" % pair for pair in ws.items()), flush=True)
    print("result sse " + " ".join("%s=%d" % pair for pair in sse.items()), flush=True)
    for text in failures[:5]:
        print("failure " + text, flush=True)

asyncio.run(main())
"#;

/// gRPC unary calls on one round-robin channel with client-side health checks, straight to both
/// instances (grpcio, in the venv of scripts/python-grpc-env). Commands on stdin:
/// `serving ADDRESS PID` answers `serving PID` once ADDRESS's health says SERVING and the load
/// has been answered by process PID; EOF stops the load and prints the `result` line.
const GRPC: &str = r#"
import sys, threading, time
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

sys.path.insert(0, sys.argv[1])
greeter, greeter_grpc = grpc.protos_and_services("greeter.proto")
target, workers = sys.argv[2], int(sys.argv[3])
started = time.monotonic()
config = '{"loadBalancingConfig":[{"round_robin":{}}],"healthCheckConfig":{"serviceName":""}}'
channel = grpc.insecure_channel(target, options=[
    ("grpc.service_config", config),
    ("grpc.default_authority", "localhost"),
    ("grpc.initial_reconnect_backoff_ms", 100),
    # gRPC core also takes this as the connect attempt's deadline (its default is 20 s): at
    # 100 ms, handshakes over the slow link timed out before SETTINGS, 2,688 calls UNAVAILABLE.
    ("grpc.min_reconnect_backoff_ms", 2000),
    ("grpc.max_reconnect_backoff_ms", 500),
])
stub = greeter_grpc.GreeterStub(channel)
state = {"made": 0, "ok": 0, "failed": 0, "codes": {}, "servers": set(), "failures": []}
lock, answered, stop = threading.Lock(), threading.Condition(threading.Lock()), threading.Event()

def worker():
    while not stop.is_set():
        try:
            reply = stub.SayHello(greeter.HelloRequest(name="mixed"), timeout=10)
            server = reply.message.rsplit(" ", 1)[1]
            with lock:
                state["made"] += 1
                state["ok"] += 1
            with answered:
                if server not in state["servers"]:
                    state["servers"].add(server)
                    answered.notify_all()
        except grpc.RpcError as error:
            code = error.code().name
            with lock:
                state["made"] += 1
                state["failed"] += 1
                state["codes"][code] = state["codes"].get(code, 0) + 1
                state["failures"].append("%s at %.1fs: %s" % (code, time.monotonic() - started, error.details()))

threads = [threading.Thread(target=worker) for _ in range(workers)]
for thread in threads:
    thread.start()
print("started", flush=True)
for line in sys.stdin:
    _, address, pid = line.split()
    deadline = time.monotonic() + 30
    with grpc.insecure_channel(address) as own:
        health = health_pb2_grpc.HealthStub(own)
        while time.monotonic() < deadline:
            try:
                status = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=2, wait_for_ready=True).status
                if status == health_pb2.HealthCheckResponse.SERVING:
                    break
            except grpc.RpcError:
                pass
    with answered:
        answered.wait_for(lambda: pid in state["servers"], timeout=max(0, deadline - time.monotonic()))
        back = pid in state["servers"]
    print("serving %s %s" % (pid, "yes" if back else "timeout"), flush=True)
stop.set()
for thread in threads:
    thread.join()
codes = ",".join("%s:%d" % pair for pair in sorted(state["codes"].items())) or "none"
print("result grpc made=%d ok=%d failed=%d codes=%s" % (state["made"], state["ok"], state["failed"], codes), flush=True)
for text in state["failures"][:5]:
    print("failure " + text, flush=True)
"#;

/// The numbers of the `result KIND key=value…` line of a client's output.
fn result_fields(output: &Finished, kind: &str) -> Vec<(String, String)> {
    let line = output.line(&format!("result {kind} "));
    line.text
        .split(' ')
        .skip(2)
        .filter_map(|pair| pair.split_once('='))
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect()
}

fn number(fields: &[(String, String)], key: &str) -> usize {
    fields
        .iter()
        .find(|(name, _)| name == key)
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {fields:?}"))
}

/// One run's counts, per kind of client.
#[derive(Debug, Default)]
struct Run {
    http1: Tally,
    http2: Tally,
    rows: usize,
    missing_rows: usize,
    websocket: Vec<(String, String)>,
    sse: Vec<(String, String)>,
    grpc: Vec<(String, String)>,
    client_failures: Vec<String>,
    slow: SlowReads,
    restarts: usize,
    wall: Duration,
    /// What HAProxy's stats page said about each server at the end of the run.
    haproxy: String,
}

impl Run {
    /// Failures of every kind: non-2xx, resets and refused connections, lost or abnormally
    /// closed WebSocket messages, lost or cut SSE events, failed RPCs, and 2xx writes without
    /// their row.
    fn failures(&self) -> usize {
        let mut failures = self.http1.failed()
            + self.slow.failed()
            + self.http1.refused
            + self.http2.failed()
            + self.http2.refused
            + self.missing_rows;
        if !self.websocket.is_empty() {
            failures += ["lost", "abnormal_closes", "connect_errors"]
                .iter()
                .map(|key| number(&self.websocket, key))
                .sum::<usize>();
            failures += ["lost", "abnormal_ends", "non_2xx", "connect_errors"]
                .iter()
                .map(|key| number(&self.sse, key))
                .sum::<usize>();
            failures += number(&self.grpc, "failed");
        }
        failures
    }

    fn print(&self, variant: Variant) {
        println!(
            "MIXED {variant:?}: {} restarts in {:.1?}; {}",
            self.restarts,
            self.wall,
            netns::describe()
        );
        println!(
            "  {:<10} {:>8} {:>8} {:>8}  details",
            "client", "sent", "ok", "failed"
        );
        for (name, tally) in [("http/1.1", &self.http1), ("http/2", &self.http2)] {
            println!(
                "  {name:<10} {:>8} {:>8} {:>8}  non-2xx {}, resets/errors {}, refused {}",
                tally.sent,
                tally.ok_ids.len(),
                tally.failed() + tally.refused,
                tally.non_2xx,
                tally.errors,
                tally.refused
            );
        }
        println!(
            "  {:<10} {:>8} {:>8} {:>8}  rows for the 2xx writes; missing {}",
            "sqlite",
            self.http1.ok_ids.len() + self.http2.ok_ids.len(),
            self.rows,
            self.missing_rows,
            self.missing_rows
        );
        if !self.websocket.is_empty() {
            let ws = |key| number(&self.websocket, key);
            println!(
                "  {:<10} {:>8} {:>8} {:>8}  never echoed {}, resent {}, connects {}, clean closes {}, abnormal closes {}, connect errors {}",
                "websocket",
                ws("sent"),
                ws("echoed"),
                ws("lost") + ws("abnormal_closes") + ws("connect_errors"),
                ws("lost"),
                ws("resent"),
                ws("connects"),
                ws("clean_closes"),
                ws("abnormal_closes"),
                ws("connect_errors")
            );
            let sse = |key| number(&self.sse, key);
            println!(
                "  {:<10} {:>8} {:>8} {:>8}  sent: what the last events said, on {} complete streams of {} (events received in all {}); cut by the end of the run {}, abnormal ends {}, non-2xx {}, connect errors {}",
                "sse",
                sse("server_sent"),
                sse("complete_events"),
                sse("lost") + sse("abnormal_ends") + sse("non_2xx") + sse("connect_errors"),
                sse("complete"),
                sse("streams"),
                sse("events"),
                sse("cut_by_stop"),
                sse("abnormal_ends"),
                sse("non_2xx"),
                sse("connect_errors")
            );
            let grpc = |key| number(&self.grpc, key);
            let codes = self
                .grpc
                .iter()
                .find(|(key, _)| key == "codes")
                .map(|(_, value)| value.as_str())
                .unwrap_or("");
            println!(
                "  {:<10} {:>8} {:>8} {:>8}  codes {codes}",
                "grpc",
                grpc("made"),
                grpc("ok"),
                grpc("failed")
            );
        }
        for (name, tally) in [
            ("slow large", &self.slow.large),
            ("slow sse", &self.slow.sse),
        ] {
            print_slow(name, tally);
        }
        if self.failures() > 0 {
            println!("  the first failures: {}", self.first_failures());
            println!("{}", self.haproxy);
        }
    }

    /// The first few failures of HTTP clients, then of the others, for a message.
    fn first_failures(&self) -> String {
        let first: Vec<&str> = (self.http1.failures.iter())
            .chain(&self.http2.failures)
            .chain(&self.client_failures)
            .chain(&self.slow.large.failures)
            .chain(&self.slow.sse.failures)
            .take(FIRST_FEW)
            .map(String::as_str)
            .collect();
        first.join("; ")
    }
}

/// One line of the table for slow readers: sent, complete, failed, then the details.
fn print_slow(name: &str, tally: &SlowTally) {
    if tally.sent == 0 {
        return;
    }
    println!(
        "  {name:<10} {:>8} {:>8} {:>8}  {tally}",
        tally.sent,
        tally.complete,
        tally.failed()
    );
}

async fn rolling_restart(haproxy: &Path, variant: Variant, restarts: usize) -> Run {
    let began = Instant::now();
    let tag = variant.tag();
    let directory = Path::new(STATE_DIR).join(format!("{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&directory);
    std::fs::create_dir_all(&directory)
        .unwrap_or_else(|error| panic!("cannot make {}: {error}", directory.display()));
    let database = directory.join("items.db");
    let mut instances = [Instance::new("a", variant), Instance::new("b", variant)];
    for instance in &mut instances {
        tokio::task::block_in_place(|| instance.start(variant, &database));
    }
    let servers = instances.each_ref().map(|instance| Server {
        name: instance.name,
        port: instance.port,
        health_port: instance.health_port,
    });
    let haproxy = Haproxy::start_at(server_ip(), haproxy, &directory, &servers, true);
    for instance in &instances {
        haproxy.wait_until_up(instance.name).await;
    }

    // A connection refused by HAProxy is a failure here, and tried again like any other.
    let http1 = Load::to(haproxy.address(), &format!("{tag}-h1"))
        .workers(HTTP1_WORKERS)
        .on_refusal(Refusals::Retry)
        .clients_in(client_netns())
        .start();
    let http2 = Load::to(haproxy.h2_address(), &format!("{tag}-h2"))
        .workers(HTTP2_WORKERS)
        .http2()
        .on_refusal(Refusals::Retry)
        .clients_in(client_netns())
        .start();
    let slow = SlowReaders::to(haproxy.address()).clients_in(client_netns());
    let slow = if variant.all_clients() {
        let large = format!("/big?bytes={SLOW_LARGE_BYTES}");
        let sse = format!("/events?pad={SLOW_SSE_PAD}");
        slow.large(
            SLOW_LARGE_READERS,
            &large,
            Body::Pattern(SLOW_LARGE_BYTES),
            SLOW_LARGE_RATE,
        )
        .sse(SLOW_SSE_READERS, &sse, SLOW_SSE_RATE)
    } else {
        slow.large(
            SLOW_LARGE_READERS,
            "/items",
            Body::JsonArray,
            SLOW_ITEMS_RATE,
        )
    }
    .start();
    let mut streams = None;
    let mut grpc = None;
    if variant.all_clients() {
        let port = haproxy.port.to_string();
        let host = server_ip().to_string();
        let client = netns::client_python(
            PYTHON,
            "websocket and sse clients",
            STREAMS,
            &[
                &host,
                &port,
                &WEBSOCKET_SESSIONS.to_string(),
                &SSE_SUBSCRIBERS.to_string(),
            ],
        );
        client.wait_for_stdout("started");
        streams = Some(client);
        let proto_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/grpc");
        let target = format!("ipv4:{},{}", instances[0].address(), instances[1].address());
        let workers = GRPC_WORKERS.to_string();
        let client = netns::client_python(
            &grpc_python(),
            "grpc client",
            GRPC,
            &[proto_dir, &target, &workers],
        );
        client.wait_for_stdout("started");
        grpc = Some(client);
    }

    // Load on both instances before the first restart.
    tokio::time::sleep(settle()).await;
    for turn in 0..restarts {
        let instance = &mut instances[turn % 2];
        // As an orchestrator does: SIGTERM, wait for the exit, start again on the same port,
        // and go on once every balancer has the new process in rotation.
        tokio::task::block_in_place(|| instance.stop());
        tokio::task::block_in_place(|| instance.start(variant, &database));
        haproxy.wait_until_up(instance.name).await;
        if let Some(grpc) = &mut grpc {
            grpc.tell(&format!("serving {} {}", instance.address(), instance.pid));
            let answer =
                tokio::task::block_in_place(|| grpc.wait_for_nth_stdout("serving ", turn + 1));
            assert!(
                answer.text.ends_with(&format!("{} yes", instance.pid)),
                "restart {turn}: gRPC never had {} in rotation: {answer:?}",
                instance.name
            );
        }
        tokio::time::sleep(settle()).await;
    }
    let mut run = Run {
        restarts,
        http1: tokio::task::block_in_place(|| http1.finish()),
        http2: tokio::task::block_in_place(|| http2.finish()),
        ..Run::default()
    };
    for (client, kinds) in [(streams, &["ws", "sse"][..]), (grpc, &["grpc"][..])] {
        let Some(client) = client else { continue };
        let output = tokio::task::block_in_place(|| client.wait_exit());
        for kind in kinds {
            let fields = result_fields(&output, kind);
            match *kind {
                "ws" => run.websocket = fields,
                "sse" => run.sse = fields,
                _ => run.grpc = fields,
            }
        }
        run.client_failures.extend(
            output
                .stdout
                .iter()
                .filter_map(|line| line.text.strip_prefix("failure "))
                .map(str::to_owned),
        );
    }
    run.haproxy = haproxy.servers().await;
    slow.begin_nothing_new();
    for instance in &mut instances {
        tokio::task::block_in_place(|| instance.stop());
    }
    // Once the servers have stopped, every SSE stream has had its last event: what is still
    // being read is read to its end.
    run.slow = tokio::task::block_in_place(|| slow.finish());
    drop(haproxy);

    let rows = database_rows(&database, tag).await;
    run.rows = rows.len();
    run.missing_rows = run
        .http1
        .ok_ids
        .iter()
        .chain(&run.http2.ok_ids)
        .filter(|id| !rows.contains(*id))
        .count();
    let _ = std::fs::remove_dir_all(&directory);
    run.wall = began.elapsed();
    run
}

/// Everything the harness needs from the machine, said out loud when missing.
fn requirements() -> Option<PathBuf> {
    let haproxy = haproxy::program();
    let need = "HAProxy ($HAPROXY or haproxy on PATH; scripts/rolling-restart installs it)";
    if !require(need, haproxy.is_some()) {
        return None;
    }
    if !require_python_module("websockets", "python3-websockets") || !require_grpc_python() {
        return None;
    }
    haproxy
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs HAProxy, python3-websockets and the grpc venv: run scripts/rolling-restart"]
async fn rolling_restarts_with_every_kind_of_client_fail_nothing() {
    let Some(haproxy) = requirements() else {
        return;
    };
    let restarts = restarts();
    let graceful = rolling_restart(&haproxy, Variant::Graceful, restarts).await;
    graceful.print(Variant::Graceful);
    // The contrasts need only show that the harness sees failures: two restarts each.
    let contrast_restarts = restarts.min(2);
    let no_pre_stop =
        rolling_restart(&haproxy, Variant::GracefulWithoutPreStop, contrast_restarts).await;
    no_pre_stop.print(Variant::GracefulWithoutPreStop);
    let plain = rolling_restart(&haproxy, Variant::Plain, contrast_restarts).await;
    plain.print(Variant::Plain);

    for (name, tally) in [("http/1.1", &graceful.http1), ("http/2", &graceful.http2)] {
        assert!(
            tally.ok_ids.len() > 50,
            "too little {name} load to mean anything"
        );
    }
    assert!(number(&graceful.websocket, "echoed") > 0);
    assert!(number(&graceful.sse, "complete") > 0);
    assert!(number(&graceful.grpc, "ok") > 0);
    assert!(graceful.slow.large.complete > 0 && graceful.slow.sse.complete > 0);
    assert_eq!(
        graceful.failures(),
        0,
        "graceful failed (the table above has the counts); the first failures: {}\n{}",
        graceful.first_failures(),
        graceful.haproxy
    );
    assert_eq!(
        graceful.rows,
        graceful.http1.ok_ids.len() + graceful.http2.ok_ids.len()
    );
    // The harness can fail: without pre-stop HAProxy still sends to an instance that has
    // stopped accepting, and a service killed where it stands fails requests under this load.
    assert!(
        no_pre_stop.failures() > 0,
        "the pre-stop 0 s contrast failed nothing: the harness proves nothing"
    );
    assert!(
        plain.failures() > 0,
        "the plain contrast failed nothing: the harness proves nothing"
    );
}

/// restart_service as `instance`, on `database`, with `env` on top; once it listens.
fn start_restart_service(instance: &Instance, database: &Path, env: &[(&str, &str)]) -> Process {
    let listen = instance.address().to_string();
    let database_url = format!("sqlite://{}", database.display());
    let mut all = vec![
        ("LISTEN_ADDR", listen.as_str()),
        ("DATABASE_URL", database_url.as_str()),
    ];
    all.extend_from_slice(env);
    let process = Process::fixture("restart_service", &all);
    process.wait_for_stdout("listening");
    process
}

/// How one slow curl ended: its exit code, and what it printed last (`done STATUS BYTES SECONDS`).
struct Curled {
    protocol: &'static str,
    code: Option<i32>,
    done: String,
    bytes: u64,
    seconds: f64,
}

/// curl's arguments to read `/big?bytes=BYTES` of `address` at `rate` (curl's `--limit-rate`),
/// over HTTP/1.1 or HTTP/2 (prior knowledge), verbose so that the response's head shows on
/// stderr as it arrives.
fn slow_curl_args(address: SocketAddr, http2: bool, bytes: u64, rate: &str) -> Vec<String> {
    let url = format!("http://{address}/big?bytes={bytes}");
    let mut args = vec![
        "-sS",
        "-v",
        "--max-time",
        "300",
        "--limit-rate",
        rate,
        "-o",
        "/dev/null",
        "-w",
        "done %{http_code} %{size_download} %{time_total}\n",
    ];
    if http2 {
        args.push("--http2-prior-knowledge");
    }
    args.push(&url);
    args.into_iter().map(str::to_owned).collect()
}

/// [`slow_curl_args`] as a [`Process`], for a read shorter than its patience.
fn slow_curl(address: SocketAddr, http2: bool, bytes: u64, rate: &str) -> Process {
    let args = slow_curl_args(address, http2, bytes, rate);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    netns::client_program(if http2 { "curl h2" } else { "curl h1" }, "curl", &args)
}

/// A curl that reads for longer than a [`Process`] waits, bounded by its own `--max-time`.
fn long_curl(address: SocketAddr, http2: bool, bytes: u64, rate: &str) -> std::process::Child {
    let args = slow_curl_args(address, http2, bytes, rate);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    netns::client_command("curl", &args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start curl")
}

fn long_curled(protocol: &'static str, curl: std::process::Child) -> Curled {
    let output = curl.wait_with_output().expect("wait for curl");
    let stdout: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    let stderr = String::from_utf8_lossy(&output.stderr);
    described(protocol, output.status.code(), &stdout, &stderr)
}

fn curled(protocol: &'static str, curl: Process) -> Curled {
    let finished = curl.wait_exit();
    let stdout: Vec<String> = finished
        .stdout
        .iter()
        .map(|line| line.text.clone())
        .collect();
    described(protocol, finished.code, &stdout, &finished.stderr)
}

fn described(protocol: &'static str, code: Option<i32>, stdout: &[String], stderr: &str) -> Curled {
    let done = stdout
        .iter()
        .find(|line| line.starts_with("done "))
        .cloned()
        .unwrap_or_default();
    let fields: Vec<&str> = done.split(' ').collect();
    Curled {
        protocol,
        code,
        bytes: fields
            .get(2)
            .and_then(|bytes| bytes.parse().ok())
            .unwrap_or(0),
        seconds: fields.get(3).and_then(|s| s.parse().ok()).unwrap_or(0.0),
        done: format!("{done} (curl exit {code:?}; {})", last_words(stderr)),
    }
}

/// curl's last lines of stderr: where it says why it stopped.
fn last_words(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|line| !line.starts_with('{') && !line.starts_with('}'))
        .collect();
    lines[lines.len().saturating_sub(2)..].join(" | ")
}

/// Slow but live readers straight to one `graceful::serve` instance, across the slow link
/// under scripts/adverse/slow-network (else on loopback), with curl: does a timeout of serve's
/// cut them? 3 MB at 48 KB/s (about 65 s) outlasts the HTTP/1 header read timeout (30 s) and an
/// HTTP/2 keep-alive ping's interval and timeout (20 s + 20 s), whose ACK comes back only once
/// the reader has taken the DATA queued before the PING. Then a SIGTERM while 1 MB is read at
/// 96 KB/s (about 11 s): the pre-stop and the first-request window (1 s each) end long before
/// the responses, which must still arrive whole. The contrast, a cut the check sees under the
/// same link: with the keep-alive at 2 s + 2 s, a silent HTTP/2 peer (a preface, then not a byte)
/// is closed. (A slow reader at that setting is not promised anything: a whole 1 MB response sits
/// in the kernel's buffers, and curl, with its large window, sends nothing for longer than 4 s.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a minute of slow reading: run scripts/adverse/slow-network"]
async fn slow_readers_straight_to_serve_are_not_cut_by_its_timeouts() {
    if !graceful_tests_integration::clients::require_program("curl", "curl") {
        return;
    }
    let directory = Path::new(STATE_DIR).join(format!("timeouts-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&directory);
    std::fs::create_dir_all(&directory).unwrap();
    let database = directory.join("items.db");
    println!("SLOW READERS straight to serve ({})", netns::describe());

    // No signal: only serve's own timeouts could end these.
    const LONG: u64 = 3 * 1024 * 1024;
    let mut instance = Instance::new("a", Variant::Graceful);
    tokio::task::block_in_place(|| instance.start(Variant::Graceful, &database));
    let (h1, h2) = (
        long_curl(instance.address(), false, LONG, "48k"),
        long_curl(instance.address(), true, LONG, "48k"),
    );
    let long =
        tokio::task::block_in_place(|| [long_curled("http/1.1", h1), long_curled("http/2", h2)]);
    for curl in &long {
        println!(
            "  {} {LONG} bytes at 48 KB/s, no signal: {} of {LONG} bytes in {:.1} s: {}",
            curl.protocol, curl.bytes, curl.seconds, curl.done
        );
    }

    // A SIGTERM while the responses are read.
    const SHORT: u64 = 1024 * 1024;
    let mut stopping = Instance::new("b", Variant::Graceful);
    let process = start_restart_service(&stopping, &database, &[("GRACEFUL_PRE_STOP", "1s")]);
    let curls = [
        slow_curl(stopping.address(), false, SHORT, "96k"),
        slow_curl(stopping.address(), true, SHORT, "96k"),
    ];
    for (curl, head) in curls.iter().zip(["< HTTP/1.1 200", "< HTTP/2 200"]) {
        tokio::task::block_in_place(|| curl.wait_for_stderr(head));
    }
    let mut process = process;
    process.signal(Signal::SIGTERM);
    let finished = tokio::task::block_in_place(|| process.wait_exit());
    assert_eq!(finished.code, Some(0), "{}", finished.stderr);
    let [h1, h2] = curls;
    let during_stop =
        tokio::task::block_in_place(|| [curled("http/1.1", h1), curled("http/2", h2)]);
    for curl in &during_stop {
        println!(
            "  {} {SHORT} bytes at 96 KB/s, SIGTERM once the head arrived: {} of {SHORT} bytes in {:.1} s: {}",
            curl.protocol, curl.bytes, curl.seconds, curl.done
        );
    }

    // The contrast: the keep-alive at 2 s + 2 s closes a silent peer.
    stopping.port = graceful_tests_integration::free_port();
    let mut short =
        start_restart_service(&stopping, &database, &[("SERVE_HTTP2_KEEP_ALIVE", "2s")]);
    let silent = graceful_tests_integration::clients::silent_http2(stopping.address());
    let sent = tokio::task::block_in_place(|| silent.wait_for_stdout("preface sent"));
    let closed = tokio::task::block_in_place(|| silent.wait_for_stdout("closed"));
    let silent_for = closed.at.saturating_duration_since(sent.at);
    println!(
        "  keep-alive 2 s + 2 s: a silent HTTP/2 peer closed after {silent_for:.1?} ({})",
        closed.text
    );
    short.signal(Signal::SIGTERM);
    tokio::task::block_in_place(|| short.wait_exit());
    tokio::task::block_in_place(|| instance.stop());
    let _ = std::fs::remove_dir_all(&directory);

    for curl in long.iter().chain(&during_stop) {
        assert!(
            curl.code == Some(0) && (curl.bytes == LONG || curl.bytes == SHORT),
            "{} slow reader cut: {}",
            curl.protocol,
            curl.done
        );
    }
    // The contrast: under the same link, the same limit closes a peer that sends nothing, in
    // the order of its 4 s (an eighth later at most, plus the link).
    assert!(
        silent_for >= Duration::from_secs(3) && silent_for < Duration::from_secs(20),
        "a silent HTTP/2 peer closed after {silent_for:?} with a 2 s + 2 s keep-alive"
    );
}
