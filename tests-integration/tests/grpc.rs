//! examples/grpc through a shutdown, seen by real gRPC clients: Python's grpcio (Google's C core)
//! with its health stubs, and Greeter stubs that grpcio-tools makes from greeter.proto at import
//! time, so nothing gRPC on the client side is written here. Health answers before and after
//! `ready()`, from the first signal, and for unknown names; Watch and Count streams end at
//! stop-accepting; calls during pre-stop succeed; and a rolling restart of two instances under
//! client-side load balancing with health checking fails no call, against tonic's own server and
//! health service (src/bin/plain_tonic.rs) and an instance killed with SIGKILL.
//!
//! Needs the venv of `scripts/python-grpc-env` (`$GRACEFUL_PYTHON`, by default
//! /var/lib/graceful-python/venv/bin/python); without it the tests fail under `CI=true` and are
//! skipped loudly elsewhere.

use std::net::SocketAddr;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use graceful_tests_integration::clients::{grpc_python, require_grpc_python};
use graceful_tests_integration::{free_port, loopback, Finished, Line, Process, Signal};

/// The pre-stop every test runs with (unless it says otherwise).
const PRE_STOP: Duration = Duration::from_secs(2);
/// The drain timeout every test runs with: far above what any drain here should take.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);

/// The Python client: reads commands (`ID OP key=value…`) on stdin, runs each on a thread of its
/// own, and prints what happened as `ID key=value…` lines (`details=` last, spaces and all).
const DRIVER: &str = r#"
import os, sys, threading, time
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

sys.path.insert(0, sys.argv[1])
greeter, greeter_grpc = grpc.protos_and_services("greeter.proto")
SAFETY_NET = 60  # seconds: a deadline on every call, reached only when something is broken
ServingStatus = health_pb2.HealthCheckResponse.ServingStatus
out = threading.Lock()

def emit(id, *fields):
    with out:
        print(id, *fields, flush=True)

channels = {}
def channel(target):
    # One channel per target, kept: calls after the first reuse its connection, as clients do.
    if target not in channels:
        channels[target] = grpc.insecure_channel(target)
    return channels[target]

def health(target):
    return health_pb2_grpc.HealthStub(channel(target))

def check(id, target, service=""):
    try:
        reply = health(target).Check(health_pb2.HealthCheckRequest(service=service), timeout=SAFETY_NET)
        emit(id, "status=" + ServingStatus.Name(reply.status))
    except grpc.RpcError as error:
        emit(id, "code=" + error.code().name, "details=" + str(error.details()))

def check_until(id, target, status, services):
    # Asks again at once until every service answers `status`.
    deadline, attempts, last = time.monotonic() + SAFETY_NET, 0, None
    while time.monotonic() < deadline:
        attempts += 1
        try:
            answers = [health(target).Check(health_pb2.HealthCheckRequest(service=name), timeout=SAFETY_NET).status
                       for name in services.split(",")]
        except grpc.RpcError as error:
            last = error.code().name
            continue
        if all(ServingStatus.Name(answer) == status for answer in answers):
            emit(id, "reached=" + status, "attempts=%d" % attempts)
            return
    emit(id, "gave_up", "attempts=%d" % attempts, "last_error=%s" % last)

def watch(id, target, service=""):
    try:
        for reply in health(target).Watch(health_pb2.HealthCheckRequest(service=service), timeout=SAFETY_NET):
            emit(id, "status=" + ServingStatus.Name(reply.status))
        emit(id, "end=OK")
    except grpc.RpcError as error:
        emit(id, "end=" + error.code().name, "details=" + str(error.details()))

def hello(id, target, name="driver"):
    stub = greeter_grpc.GreeterStub(channel(target))
    try:
        reply = stub.SayHello(greeter.HelloRequest(name=name), timeout=SAFETY_NET)
        emit(id, "server=" + reply.message.rsplit(" ", 1)[1])
    except grpc.RpcError as error:
        emit(id, "code=" + error.code().name, "details=" + str(error.details()))

def count(id, target):
    stub = greeter_grpc.GreeterStub(channel(target))
    received = 0
    try:
        for reply in stub.Count(greeter.CountRequest(start=0), timeout=SAFETY_NET):
            received += 1
            emit(id, "number=%d" % reply.number)
        emit(id, "end=OK", "received=%d" % received)
    except grpc.RpcError as error:
        emit(id, "end=" + error.code().name, "received=%d" % received, "details=" + str(error.details()))

loads = {}
def load(id, target, workers):
    # Unary calls without pause on one channel over every address of `target`, round robin,
    # each address in the rotation only while its health says SERVING; until `stop_load`.
    config = '{"loadBalancingConfig":[{"round_robin":{}}],"healthCheckConfig":{"serviceName":""}}'
    balanced = grpc.insecure_channel(target, options=[
        ("grpc.service_config", config),
        # Else the authority is the target's path, "127.0.0.1:P1,127.0.0.1:P2", which hyper (under
        # tonic and graceful::serve alike) refuses as a malformed :authority: INTERNAL.
        ("grpc.default_authority", "localhost"),
        ("grpc.initial_reconnect_backoff_ms", 100),
        ("grpc.min_reconnect_backoff_ms", 100),
        ("grpc.max_reconnect_backoff_ms", 500),
    ])
    stub = greeter_grpc.GreeterStub(balanced)
    state = {"made": 0, "failed": 0, "codes": {}, "servers": set(), "stop": threading.Event(),
             "lock": threading.Lock()}
    loads[id] = state
    def worker():
        # Bounded: stops when told, or after SAFETY_NET seconds whatever happens.
        end = time.monotonic() + SAFETY_NET
        while not state["stop"].is_set() and time.monotonic() < end:
            try:
                reply = stub.SayHello(greeter.HelloRequest(name="load"), timeout=5)
                server = reply.message.rsplit(" ", 1)[1]
                with state["lock"]:
                    state["made"] += 1
                    new = server not in state["servers"]
                    state["servers"].add(server)
                if new:
                    emit(id, "new_server=" + server)
            except grpc.RpcError as error:
                code = error.code().name
                with state["lock"]:
                    state["made"] += 1
                    state["failed"] += 1
                    state["codes"][code] = state["codes"].get(code, 0) + 1
                    first = state["failed"] <= 5
                if first:
                    emit(id, "failure=" + code, "details=" + str(error.details()))
    state["threads"] = [threading.Thread(target=worker, daemon=True) for _ in range(int(workers))]
    for thread in state["threads"]:
        thread.start()

def stop_load(id, load):
    state = loads[load]
    state["stop"].set()
    for thread in state["threads"]:
        thread.join()
    codes = ",".join("%s:%d" % pair for pair in sorted(state["codes"].items())) or "none"
    emit(id, "made=%d" % state["made"], "failed=%d" % state["failed"], "codes=" + codes)

OPS = {"check": check, "check_until": check_until, "watch": watch, "hello": hello,
       "count": count, "load": load, "stop_load": stop_load}
emit("driver", "ready")
for line in sys.stdin:
    id, op, *args = line.split()
    kwargs = dict(arg.split("=", 1) for arg in args)
    threading.Thread(target=OPS[op], args=(id,), kwargs=kwargs, daemon=True).start()
os._exit(0)
"#;

// ---------------------------------------------------------------------------------------------
// Health: Check and Watch.

#[test]
fn check_is_not_serving_before_ready_and_serving_after() {
    let _machine = shared_machine();
    let Some(mut client) = GrpcClient::start() else {
        return;
    };
    let mut server = Process::fixture("grpc_late_ready", &[("LISTEN_ADDR", "127.0.0.1:0")]);
    let address = server.listening_address();

    let before = client.check(address, "");
    let greeter_before = client.check(address, "greeter.Greeter");
    server.signal(Signal::SIGUSR1);
    server.wait_for_stdout("READY");
    let after = client.check(address, "");
    let greeter_after = client.check(address, "greeter.Greeter");

    let texts = [&before, &greeter_before, &after, &greeter_after].map(|line| &line.text);
    println!("Check before ready(), then after: {texts:?}");
    assert_eq!(field(&before, "status"), Some("NOT_SERVING"), "{before:?}");
    assert_eq!(field(&greeter_before, "status"), Some("NOT_SERVING"));
    assert_eq!(field(&after, "status"), Some("SERVING"), "{after:?}");
    assert_eq!(field(&greeter_after, "status"), Some("SERVING"));
    stop(server).assert_code(0);
}

#[test]
fn check_answers_not_serving_from_the_signal_before_stop_accepting() {
    let _machine = shared_machine();
    let Some(mut client) = GrpcClient::start() else {
        return;
    };
    let mut server = start_example();
    let address = server.listening_address();
    // The channel is connected and the server serving before the signal.
    assert_eq!(field(&client.check(address, ""), "status"), Some("SERVING"));

    server.signal(Signal::SIGTERM);
    let signalled = server.last_signal_at.unwrap();
    let id = client.send(
        "check_until",
        &[
            ("target", &address.to_string()),
            ("status", "NOT_SERVING"),
            ("services", ",greeter.Greeter"),
        ],
    );
    let reached = client.wait(&id, "reached=NOT_SERVING");
    let stop_accepting = server.wait_for_stderr("graceful: stop accepting");

    let took = reached.at - signalled;
    println!(
        "Check: NOT_SERVING for \"\" and greeter.Greeter {took:?} after SIGTERM ({}); stop \
         accepting read {:?} after it",
        reached.text,
        stop_accepting.at - signalled
    );
    // The order: a balancer that asks during pre-stop hears NOT_SERVING, before the port closes.
    assert!(
        reached.at < stop_accepting.at,
        "NOT_SERVING came {took:?} after SIGTERM, after stop-accepting"
    );
    // At once from the signal (README): a ceiling of half the pre-stop.
    assert!(
        took < PRE_STOP / 2,
        "NOT_SERVING came {took:?} after SIGTERM, not at once"
    );
    let finished = server.wait_exit();
    finished.assert_code(0);
}

#[test]
fn watch_opened_before_sigterm_gets_not_serving_then_ends_at_stop_accepting() {
    let _machine = shared_machine();
    let Some(mut client) = GrpcClient::start() else {
        return;
    };
    let mut server = start_example();
    let address = server.listening_address();
    let watch = client.send("watch", &[("target", &address.to_string())]);
    client.wait(&watch, "status=SERVING");

    server.signal(Signal::SIGTERM);
    let signalled = server.last_signal_at.unwrap();
    let not_serving = client.wait(&watch, "status=NOT_SERVING");
    let stop_accepting = server.wait_for_stderr("graceful: stop accepting");
    let end = client.wait(&watch, "end=");

    let told = not_serving.at - signalled;
    let ended = end.at - signalled;
    println!(
        "Watch: NOT_SERVING {told:?} after SIGTERM, stop accepting read {:?} after, stream \
         ended {ended:?} after ({})",
        stop_accepting.at - signalled,
        end.text
    );
    // The order: the watcher is told during pre-stop, before the port closes.
    assert!(
        not_serving.at < stop_accepting.at,
        "NOT_SERVING came {told:?} after SIGTERM, after stop-accepting"
    );
    // At once from the signal: a ceiling of half the pre-stop.
    assert!(
        told < PRE_STOP / 2,
        "NOT_SERVING came {told:?} after SIGTERM, not at once"
    );
    assert_eq!(field(&end, "end"), Some("OK"), "{end:?}");
    // Ended at stop-accepting: not at the signal, not at the exit (pre-stop 2 s, then nothing
    // holds the drain).
    assert!(
        ended > PRE_STOP * 3 / 4,
        "the stream ended {ended:?} after SIGTERM, in pre-stop"
    );
    assert!(
        ended < PRE_STOP * 2,
        "the stream ended {ended:?} after SIGTERM"
    );
    server.wait_exit().assert_code(0);
}

#[test]
fn check_of_an_unknown_service_is_not_found() {
    let _machine = shared_machine();
    let Some(mut client) = GrpcClient::start() else {
        return;
    };
    let server = start_example();
    let address = server.listening_address();

    let answer = client.check(address, "no.such.Service");

    assert_eq!(field(&answer, "code"), Some("NOT_FOUND"), "{answer:?}");
    stop(server).assert_code(0);
}

// ---------------------------------------------------------------------------------------------
// Greeter calls through a shutdown.

#[test]
fn unary_call_during_pre_stop_succeeds() {
    let _machine = shared_machine();
    let Some(mut client) = GrpcClient::start() else {
        return;
    };
    let mut server = start_example();
    let address = server.listening_address();
    // The same channel before and during pre-stop: its connection gets GOAWAY at the signal.
    let before = client.hello(address);

    server.signal(Signal::SIGTERM);
    let signalled = server.last_signal_at.unwrap();
    server.wait_for_stderr("graceful: pre-stop");
    let during = client.hello(address);

    let took = during.at - signalled;
    println!(
        "SayHello answered {took:?} after SIGTERM, in pre-stop ({})",
        during.text
    );
    assert!(field(&during, "server").is_some(), "{during:?}");
    assert_eq!(field(&during, "server"), field(&before, "server"));
    assert!(
        took < PRE_STOP,
        "answered {took:?} after SIGTERM, after pre-stop"
    );
    server.wait_exit().assert_code(0);
}

#[test]
fn stream_open_at_stop_accepting_ends_with_unavailable() {
    let _machine = shared_machine();
    let Some(mut client) = GrpcClient::start() else {
        return;
    };
    let mut server = start_example();
    let address = server.listening_address();
    let count = client.send("count", &[("target", &address.to_string())]);
    client.wait(&count, "number=0");

    server.signal(Signal::SIGTERM);
    let signalled = server.last_signal_at.unwrap();
    let end = client.wait(&count, "end=");

    let ended = end.at - signalled;
    let received: u64 = field(&end, "received").unwrap().parse().unwrap();
    println!(
        "Count: {received} numbers, then {:?} {ended:?} after SIGTERM",
        end.text
    );
    assert_eq!(field(&end, "end"), Some("UNAVAILABLE"), "{end:?}");
    assert_eq!(field(&end, "details"), Some("server shutting down"));
    assert!(ended > PRE_STOP * 3 / 4, "ended {ended:?} after SIGTERM");
    // One every 100 ms through the 2 s pre-stop (the signal followed the first): the stream
    // kept going until stop-accepting.
    assert!(received >= 10, "{received} numbers");
    server.wait_exit().assert_code(0);
}

#[test]
fn exits_0_well_before_drain_timeout_with_streams_open() {
    let _machine = shared_machine();
    let Some(mut client) = GrpcClient::start() else {
        return;
    };
    let mut server = start_example();
    let address = server.listening_address();
    let target = address.to_string();
    let count = client.send("count", &[("target", &target)]);
    let watch = client.send("watch", &[("target", &target)]);
    client.wait(&count, "number=0");
    client.wait(&watch, "status=SERVING");

    server.signal(Signal::SIGTERM);
    let finished = server.wait_exit();

    let took = finished.after_signal.unwrap();
    println!(
        "exit {:?} {took:?} after SIGTERM (pre-stop {PRE_STOP:?}, drain_timeout {DRAIN_TIMEOUT:?})",
        finished.code
    );
    finished.assert_code(0);
    finished.assert_stderr_has("all finished");
    // Pre-stop, then a drain of a few milliseconds: nowhere near pre-stop + drain_timeout.
    finished.assert_exited_within(PRE_STOP + Duration::from_secs(3), "exit with streams open");
    client.wait(&count, "end=UNAVAILABLE");
    client.wait(&watch, "end=OK");
}

// ---------------------------------------------------------------------------------------------
// Rolling restarts under client-side load balancing.

/// Threads making calls on the load client's one channel: about half of them have a call on
/// each instance at any moment, so an instance that dies takes several calls with it.
const LOAD_WORKERS: &str = "16";

/// What the load client counted over a run.
struct Calls {
    made: u64,
    failed: u64,
    /// The status codes of the failed calls with their counts (`UNAVAILABLE:3`), or `none`.
    codes: String,
}

impl std::fmt::Display for Calls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Calls {
            made,
            failed,
            codes,
        } = self;
        write!(f, "{made} calls, {failed} failed (codes: {codes})")
    }
}

#[test]
fn rolling_restart_with_client_side_health_checks_fails_no_call() {
    let _machine = exclusive_machine();
    let Some(client) = GrpcClient::start() else {
        return;
    };
    let calls = rolling_restart(client, Server::Graceful, Signal::SIGTERM);

    println!("graceful rolling restart: {calls}");
    assert_eq!(calls.failed, 0, "{calls}");
    assert!(calls.made > 100, "{calls}");
}

/// The contrast: tonic's own server and health service, restarted the same way. It has failed
/// no call either in every run so far, so that is recorded, not asserted: at SIGTERM tonic
/// closes its listener and sends GOAWAY on every connection while it finishes the calls it has
/// taken, and grpc's channel stops picking a connection once it has GOAWAY and moves its calls
/// to the other instance, which is READY. With a client that balances by itself over live
/// connections, GOAWAY is enough. What graceful adds is for the rest: NOT_SERVING from the
/// signal on (for balancers that read health, not connections), pre-stop, and streams that end
/// by themselves at stop-accepting (tonic waits for an endless stream for ever).
#[test]
fn plain_tonic_rolling_restart_is_recorded_for_contrast() {
    let _machine = exclusive_machine();
    let Some(client) = GrpcClient::start() else {
        return;
    };
    let calls = rolling_restart(client, Server::PlainTonic, Signal::SIGTERM);

    println!("plain tonic rolling restart: {calls}");
    assert!(calls.made > 100, "{calls}");
}

/// The harness counts what fails: the same rolling restart with SIGKILL instead of SIGTERM
/// costs the calls the killed instances had taken.
#[test]
fn rolling_restart_by_sigkill_fails_calls() {
    let _machine = exclusive_machine();
    let Some(client) = GrpcClient::start() else {
        return;
    };
    let calls = rolling_restart(client, Server::PlainTonic, Signal::SIGKILL);

    println!("rolling restart by SIGKILL: {calls}");
    assert!(calls.failed > 0, "{calls}");
}

#[derive(Clone, Copy, Debug)]
enum Server {
    Graceful,
    PlainTonic,
}

/// One instance of a load-balanced pair: its port outlives its processes.
struct Instance {
    server: Server,
    address: SocketAddr,
    process: Option<Process>,
}

impl Instance {
    fn start(server: Server) -> Instance {
        let mut instance = Instance {
            server,
            address: loopback(free_port()),
            process: None,
        };
        instance.start_process();
        instance
    }

    /// Starts the server on the instance's port, with pre-stop 2 s and drain timeout 20 s.
    fn start_process(&mut self) {
        let listen = self.address.to_string();
        let binary = match self.server {
            Server::Graceful => "grpc",
            Server::PlainTonic => "plain_tonic",
        };
        let process = Process::fixture(binary, &with_timeouts(&[("LISTEN_ADDR", &listen)]));
        assert_eq!(process.listening_address(), self.address);
        self.process = Some(process);
    }

    /// Sends `signal`, waits for the exit, and starts the server again on the same port.
    fn restart_after(&mut self, signal: Signal) -> Finished {
        let mut process = self.process.take().expect("a running process");
        process.signal(signal);
        let finished = process.wait_exit();
        self.start_process();
        finished
    }
}

/// Two instances of `server` behind one round-robin channel with health checks, under load
/// while each is restarted in turn: `signal`, exit, start on the same port, SERVING again.
fn rolling_restart(mut client: GrpcClient, server: Server, signal: Signal) -> Calls {
    let mut instances = [Instance::start(server), Instance::start(server)];
    let target = balanced_target(&instances);
    let load = client.send("load", &[("target", &target), ("workers", LOAD_WORKERS)]);
    // Both in the rotation: each has answered a call of the load.
    client.wait_nth(&load, "new_server=", 2);

    for (turn, instance) in instances.iter_mut().enumerate() {
        let started = Instant::now();
        let finished = instance.restart_after(signal);
        if signal == Signal::SIGTERM {
            assert_eq!(finished.code, Some(0), "{server:?}: {}", finished.stderr);
        }
        let id = client.send(
            "check_until",
            &[
                ("target", &instance.address.to_string()),
                ("status", "SERVING"),
                ("services", ""),
            ],
        );
        client.wait(&id, "reached=SERVING");
        // The new process is back in the channel's rotation before the next one stops, as an
        // orchestrator waits for a new instance's readiness: the one it answered a call of the
        // load. (Check on a channel of its own says SERVING up to one reconnect backoff earlier.)
        client.wait_nth(&load, "new_server=", 3 + turn);
        println!(
            "{server:?}: instance {turn} restarted and back in rotation in {:?} (exit {:?} {:?} after {signal})",
            started.elapsed(),
            finished.code,
            finished.after_signal.unwrap()
        );
    }
    client.stop_load(&load)
}

fn balanced_target(instances: &[Instance]) -> String {
    let addresses: Vec<String> = instances
        .iter()
        .map(|instance| instance.address.to_string())
        .collect();
    format!("ipv4:{}", addresses.join(","))
}

// ---------------------------------------------------------------------------------------------
// Plumbing.

/// The Python client driving [`DRIVER`], and the ids of the commands sent to it.
struct GrpcClient {
    client: Process,
    sent: usize,
}

impl GrpcClient {
    /// Starts the driver, or says loudly that the venv is missing and returns `None`.
    fn start() -> Option<GrpcClient> {
        if !require_grpc_python() {
            return None;
        }
        let proto_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/grpc");
        let client = Process::python_with(&grpc_python(), "grpc client", DRIVER, &[proto_dir]);
        client.wait_for_stdout("driver ready");
        Some(GrpcClient { client, sent: 0 })
    }

    /// Sends `op` with `args`, and returns the id its lines will carry.
    fn send(&mut self, op: &str, args: &[(&str, &str)]) -> String {
        self.sent += 1;
        let id = format!("{op}#{}", self.sent);
        let mut command = format!("{id} {op}");
        for (key, value) in args {
            command.push_str(&format!(" {key}={value}"));
        }
        self.client.tell(&command);
        id
    }

    /// The first line of command `id` that contains `needle`, once it has arrived.
    fn wait(&self, id: &str, needle: &str) -> Line {
        self.wait_nth(id, needle, 1)
    }

    /// The `n`th line (from 1) of command `id` that contains `needle`, once it has arrived.
    fn wait_nth(&self, id: &str, needle: &str, n: usize) -> Line {
        // The driver prints the id, a space, then the fields: `check#3 status=SERVING`.
        self.client
            .wait_for_nth_stdout(&format!("{id} {needle}"), n)
    }

    fn check(&mut self, address: SocketAddr, service: &str) -> Line {
        let id = self.send(
            "check",
            &[("target", &address.to_string()), ("service", service)],
        );
        self.wait(&id, "")
    }

    fn hello(&mut self, address: SocketAddr) -> Line {
        let id = self.send("hello", &[("target", &address.to_string())]);
        self.wait(&id, "")
    }

    /// Stops the load `load` and returns its counts.
    fn stop_load(&mut self, load: &str) -> Calls {
        let id = self.send("stop_load", &[("load", load)]);
        let counts = self.wait(&id, "made=");
        let number = |key| {
            field(&counts, key)
                .and_then(|value| value.parse().ok())
                .unwrap()
        };
        Calls {
            made: number("made"),
            failed: number("failed"),
            codes: field(&counts, "codes").unwrap().to_owned(),
        }
    }
}

/// The value of `key=` in a driver line: up to the next space, or to the end for `details`.
fn field<'a>(line: &'a Line, key: &str) -> Option<&'a str> {
    let start = line.text.find(&format!(" {key}="))? + key.len() + 2;
    let rest = &line.text[start..];
    if key == "details" {
        return Some(rest);
    }
    Some(rest.split(' ').next().unwrap_or(rest))
}

/// The example with pre-stop 2 s and drain timeout 20 s, on a port of its own.
fn start_example() -> Process {
    Process::fixture("grpc", &with_timeouts(&[("LISTEN_ADDR", "127.0.0.1:0")]))
}

/// `env` with [`PRE_STOP`] and [`DRAIN_TIMEOUT`] as every test has them.
fn with_timeouts<'a>(env: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut all = vec![
        ("GRACEFUL_PRE_STOP", "2s"),
        ("GRACEFUL_DRAIN_TIMEOUT", "20s"),
    ];
    all.extend_from_slice(env);
    all
}

/// SIGTERM, then the exit.
fn stop(mut server: Process) -> Finished {
    server.signal(Signal::SIGTERM);
    server.wait_exit()
}

/// The load tests saturate this machine's two cores; the others measure times. Each load test
/// runs alone; the others run together.
static MACHINE: RwLock<()> = RwLock::new(());

fn shared_machine() -> RwLockReadGuard<'static, ()> {
    MACHINE
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn exclusive_machine() -> RwLockWriteGuard<'static, ()> {
    MACHINE
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
