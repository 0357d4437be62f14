//! `graceful::serve(..).tls(..)` as real clients see it: src/bin/tls_app.rs (and tls_grpc.rs, for
//! gRPC) serve HTTPS with a certificate this file makes at run time (a test CA and two leaves,
//! with the `openssl` CLI; no private key is checked in), driven by curl, nghttp, Python's `ssl`
//! and grpcio, and raw sockets, and sent real signals. The certificate rotates the way a
//! Kubernetes Secret volume does it. Where graceful claims to do better with stalled handshakes,
//! the same client runs against the contrasts: a TLS `Listener` under `axum::serve`
//! (src/bin/axum_tls_listener.rs) and axum-server (src/bin/axum_server_tls.rs). Every wait is
//! woken by a line a process prints, or is a bounded poll; the timings asserted are orders of
//! magnitude, and the measured ones are printed for the record.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use graceful_tests_integration::clients::{
    self, grpc_python, nghttp_stamp, require_grpc_python, require_programs, require_python_module,
};
use graceful_tests_integration::{Finished, Line, Process, Signal};

/// The serials of the two leaf certificates, as `openssl x509 -serial` and Python print them.
const FIRST: &str = "1A01";
const SECOND: &str = "1A02";

/// The pre-stop of every server here unless a test says otherwise.
const PRE_STOP: Duration = Duration::from_secs(2);

/// `serve`'s default first-request window after stop-accepting.
const FIRST_REQUEST_WINDOW: Duration = Duration::from_secs(1);

// ---- certificates ---------------------------------------------------------------------------

/// A directory of this test's own under the target directory, removed when the test passes.
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Scratch {
        let path = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("graceful-tls-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Scratch(path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A test CA and two leaf certificates for `localhost` and 127.0.0.1, serials [`FIRST`] and
/// [`SECOND`], made with the `openssl` CLI.
struct Pki {
    scratch: Scratch,
}

/// A leaf's chain (the leaf, then the CA) and key, as PEM.
struct Leaf {
    chain: String,
    key: String,
}

impl Pki {
    fn new(test: &str) -> Pki {
        let scratch = Scratch::new(test);
        let pki = Pki { scratch };
        pki.openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "@ca.key",
            "-out",
            "@ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=graceful test CA",
        ]);
        std::fs::write(
            pki.path("leaf.ext"),
            "subjectAltName = DNS:localhost, IP:127.0.0.1\n\
             basicConstraints = CA:FALSE\n\
             keyUsage = digitalSignature\n\
             extendedKeyUsage = serverAuth\n\
             authorityKeyIdentifier = keyid, issuer\n",
        )
        .unwrap();
        for serial in [FIRST, SECOND] {
            pki.openssl(&[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                &format!("@{serial}.key"),
                "-out",
                &format!("@{serial}.csr"),
                "-subj",
                "/CN=localhost",
            ]);
            pki.openssl(&[
                "x509",
                "-req",
                "-in",
                &format!("@{serial}.csr"),
                "-CA",
                "@ca.crt",
                "-CAkey",
                "@ca.key",
                "-set_serial",
                &format!("0x{serial}"),
                "-days",
                "2",
                "-extfile",
                "@leaf.ext",
                "-out",
                &format!("@{serial}.crt"),
            ]);
        }
        pki
    }

    fn path(&self, name: &str) -> PathBuf {
        self.scratch.0.join(name)
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap()
    }

    fn leaf(&self, serial: &str) -> Leaf {
        Leaf {
            chain: self.read(&format!("{serial}.crt")) + &self.read("ca.crt"),
            key: self.read(&format!("{serial}.key")),
        }
    }

    /// Runs `openssl` with `args`, in which `@NAME` stands for the file NAME of this PKI.
    fn openssl(&self, args: &[&str]) {
        let args: Vec<String> = args
            .iter()
            .map(|arg| match arg.strip_prefix('@') {
                Some(name) => self.path(name).display().to_string(),
                None => (*arg).to_owned(),
            })
            .collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Process::start("openssl", "openssl", &args, &[])
            .wait_exit()
            .assert_code(0);
    }

    /// The test CA's certificate, which the clients trust.
    fn ca(&self) -> PathBuf {
        self.path("ca.crt")
    }
}

/// A mounted Kubernetes Secret, as the kubelet lays it out: `tls.crt` and `tls.key` are symlinks
/// into `..data`, itself a symlink to a `..<timestamp>` directory.
struct Volume {
    directory: PathBuf,
    generation: u32,
}

impl Volume {
    fn new(pki: &Pki, leaf: &Leaf) -> Volume {
        let directory = pki.path("secret");
        std::fs::create_dir(&directory).unwrap();
        let mut volume = Volume {
            directory,
            generation: 0,
        };
        volume.swap(leaf);
        for name in ["tls.crt", "tls.key"] {
            std::os::unix::fs::symlink(format!("..data/{name}"), volume.directory.join(name))
                .unwrap();
        }
        volume
    }

    /// Swaps the files in as the kubelet's atomic writer does: a new timestamped directory, a
    /// `..data_tmp` symlink to it renamed over `..data`, the old directory removed.
    fn swap(&mut self, leaf: &Leaf) {
        self.swap_files(&leaf.chain, &leaf.key);
    }

    fn swap_files(&mut self, chain: &str, key: &str) {
        let old = self.timestamped();
        self.generation += 1;
        let new = self.timestamped();
        std::fs::create_dir(self.directory.join(&new)).unwrap();
        std::fs::write(self.directory.join(&new).join("tls.crt"), chain).unwrap();
        std::fs::write(self.directory.join(&new).join("tls.key"), key).unwrap();
        let staging = self.directory.join("..data_tmp");
        std::os::unix::fs::symlink(&new, &staging).unwrap();
        std::fs::rename(&staging, self.directory.join("..data")).unwrap();
        if self.generation > 1 {
            std::fs::remove_dir_all(self.directory.join(old)).unwrap();
        }
    }

    fn timestamped(&self) -> String {
        format!(
            "..2026_01_01_00_00_0{}.{}",
            self.generation, self.generation
        )
    }

    fn cert(&self) -> String {
        self.directory.join("tls.crt").display().to_string()
    }

    fn key(&self) -> String {
        self.directory.join("tls.key").display().to_string()
    }
}

/// A PKI for `test`, and its first leaf mounted as a Secret volume.
fn mounted(test: &str) -> (Pki, Volume) {
    let pki = Pki::new(test);
    let volume = Volume::new(&pki, &pki.leaf(FIRST));
    (pki, volume)
}

// ---- servers and clients --------------------------------------------------------------------

/// Starts `fixture` (tls_app, tls_grpc or a contrast) on `volume`'s files, with a 2 s pre-stop and
/// a 20 s drain timeout unless `env` says otherwise, and waits until it listens.
fn start(fixture: &str, volume: &Volume, env: &[(&str, &str)]) -> Process {
    let (cert, key) = (volume.cert(), volume.key());
    let mut all = vec![
        ("TLS_CERT", cert.as_str()),
        ("TLS_KEY", key.as_str()),
        ("GRACEFUL_PRE_STOP", "2s"),
        ("GRACEFUL_DRAIN_TIMEOUT", "20s"),
    ];
    // Later entries win.
    all.extend_from_slice(env);
    let server = Process::fixture(fixture, &all);
    // Listening, so its signal handlers are in place: a SIGHUP before them would kill it.
    server.listening_address();
    server
}

fn url(address: SocketAddr, path: &str) -> String {
    format!("https://{address}{path}")
}

/// SIGTERM, then the exit.
fn stop(mut server: Process) -> Finished {
    server.signal(Signal::SIGTERM);
    server.wait_exit()
}

/// One field of a client's answer: `serial` of `answer status=200 serial=1A01 port=5`.
fn field<'a>(answer: &'a Line, name: &str) -> &'a str {
    answer
        .text
        .split_whitespace()
        .find_map(|part| part.strip_prefix(name)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {name} in {answer:?}"))
}

/// Needs the openssl CLI (for the certificates) and `programs`.
fn require_openssl_and(programs: &[(&str, &str)]) -> bool {
    require_programs(&[("openssl", "openssl")]) && require_programs(programs)
}

/// Needs the openssl CLI and Python's `ssl`.
fn require_openssl_and_python_ssl() -> bool {
    require_programs(&[("openssl", "openssl")]) && require_python_module("ssl", "python3")
}

// ---- protocols ------------------------------------------------------------------------------

#[test]
fn curl_gets_200_over_http2_negotiated_by_alpn_and_over_http1() {
    if !require_openssl_and(&[("curl", "curl")]) {
        return;
    }
    let (pki, volume) = mounted("protocols");
    let app = start("tls_app", &volume, &[]);
    let address = app.listening_address();
    let loaded = app.wait_for_stderr("tls: serving").text;
    assert!(
        loaded.contains("tls.crt")
            && loaded.contains("#1 serial 1A01, notAfter ")
            && loaded.contains("#2 serial "),
        "the log names each certificate's serial and notAfter: {loaded}"
    );

    for (option, version) in [("--http2", "2"), ("--http1.1", "1.1")] {
        let curl = clients::curl_https(&pki.ca(), &[option], &url(address, "/")).wait_exit();
        curl.assert_code(0);
        assert_eq!(
            curl.text(),
            format!("hello\n\nstatus=200 version={version}"),
            "curl {option}"
        );
    }
    stop(app).assert_code(0);
}

#[test]
fn nghttp_over_tls_gets_goaway_before_stop_accepting_and_its_slow_request_completes() {
    if !require_openssl_and(&[("nghttp", "nghttp2-client")]) {
        return;
    }
    let (_pki, volume) = mounted("goaway");
    let mut app = start("tls_app", &volume, &[]);
    let address = app.listening_address();
    let nghttp = clients::nghttp(&["--null-out", &url(address, "/slow?ms=4000")]);
    app.wait_for_stdout("slow request started");
    app.signal(Signal::SIGTERM);
    let signal = app.last_signal_at.unwrap();
    let goaway = nghttp.wait_for_stdout("recv GOAWAY frame");
    let stop_accepting = app.wait_for_stderr("stop accepting").at - signal;
    let started = nghttp.started_at;
    let output = nghttp.wait_exit();
    let text = output.text();
    output.assert_code(0);
    assert!(text.contains("protocol: h2"), "ALPN chose h2: {text}");
    assert!(
        output.position(":status: 200").is_some(),
        "the slow request completed: {text}"
    );

    // nghttp stamps its lines from its connection, made after it started; the test read the
    // GOAWAY line as nghttp printed it.
    let stamp = nghttp_stamp(&goaway.text).expect("a stamp on nghttp's GOAWAY line");
    let at_least = (started + stamp).saturating_duration_since(signal);
    let at_most = goaway.at - signal;
    eprintln!(
        "tls: GOAWAY {at_least:?}..{at_most:?} after SIGTERM; stop accepting seen \
         {stop_accepting:?} after it"
    );
    assert!(
        at_most < stop_accepting,
        "GOAWAY (up to {at_most:?} after the signal) did not come before stop-accepting \
         ({stop_accepting:?})"
    );
    assert!(
        at_most < PRE_STOP * 3 / 4,
        "GOAWAY came up to {at_most:?} after the signal, with a {PRE_STOP:?} pre-stop"
    );
    app.wait_exit().assert_code(0);
}

/// A grpcio client (Google's C core) with TLS credentials that trust the test CA only, on one
/// channel to `argv[2]`: each line of stdin is a name for `SayHello`, answered in order by
/// `answer code=OK message=M` or `answer code=CODE details=D`.
const GRPC_CLIENT: &str = r#"
import sys
import grpc

sys.path.insert(0, sys.argv[1])
greeter, greeter_grpc = grpc.protos_and_services("greeter.proto")
credentials = grpc.ssl_channel_credentials(root_certificates=open(sys.argv[3], "rb").read())
stub = greeter_grpc.GreeterStub(grpc.secure_channel(sys.argv[2], credentials))
for line in sys.stdin:
    try:
        # A deadline reached only when something is broken.
        reply = stub.SayHello(greeter.HelloRequest(name=line.strip()), timeout=60)
        print("answer code=OK message=" + reply.message.replace(" ", "_"))
    except grpc.RpcError as error:
        print(f"answer code={error.code().name} details={error.details()}")
"#;

#[test]
fn a_grpcio_call_over_tls_in_flight_at_sigterm_completes_ok() {
    if !require_openssl_and(&[]) || !require_grpc_python() {
        return;
    }
    let (pki, volume) = mounted("grpc");
    let mut app = start("tls_grpc", &volume, &[("GRACEFUL_PRE_STOP", "1s")]);
    let address = app.listening_address().to_string();
    let proto_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/grpc");
    let ca = pki.ca().display().to_string();
    let mut client = Process::python_with(
        &grpc_python(),
        "grpcio over TLS",
        GRPC_CLIENT,
        &[proto_dir, &address, &ca],
    );
    let before = client.ask("before", "answer");
    assert_eq!(field(&before, "code"), "OK", "{before:?}");

    client.tell("sleep-2000");
    app.wait_for_stdout("call started");
    app.signal(Signal::SIGTERM);
    let signal = app.last_signal_at.unwrap();
    let stop_accepting = app.wait_for_stderr("stop accepting");
    let during = client.wait_for_nth_stdout("answer", 2);
    let finished = app.wait_exit();
    eprintln!(
        "tls: a 2 s SayHello begun before SIGTERM answered {:?} after it ({}); stop accepting \
         seen {:?} after it; exit {:?} after it",
        during.at - signal,
        during.text,
        stop_accepting.at - signal,
        finished.after_signal.unwrap()
    );
    assert_eq!(field(&during, "code"), "OK", "{during:?}");
    assert!(
        field(&during, "message").starts_with("hello_sleep-2000_from_"),
        "{during:?}"
    );
    // Through the whole sequence: the call was still in flight at stop-accepting.
    assert!(
        during.at > stop_accepting.at,
        "the call answered before stop-accepting: it did not span the shutdown"
    );
    finished.assert_code(0);
}

// ---- rotation -------------------------------------------------------------------------------

#[test]
fn after_a_kubernetes_style_swap_and_sighup_new_connections_get_the_new_certificate() {
    if !require_openssl_and_python_ssl() {
        return;
    }
    let (pki, mut volume) = mounted("sighup");
    let mut app = start("tls_app", &volume, &[]);
    let mut client = clients::https(app.listening_address(), &pki.ca());
    let before = client.ask("new", "answer");
    assert_eq!(
        (field(&before, "status"), field(&before, "serial")),
        ("200", FIRST),
        "{before:?}"
    );

    volume.swap(&pki.leaf(SECOND));
    app.signal(Signal::SIGHUP);
    let sighup = app.last_signal_at.unwrap();
    let report = app.wait_for_stderr("reload in");
    assert!(
        report
            .text
            .contains(&format!("tls certificate {} ok", volume.cert())),
        "{report:?}"
    );
    eprintln!(
        "tls: reload report {:?} after SIGHUP: {}",
        report.at - sighup,
        report.text
    );

    let kept = client.ask("again", "answer");
    assert_eq!(
        (
            field(&kept, "status"),
            field(&kept, "port"),
            field(&kept, "serial")
        ),
        ("200", field(&before, "port"), FIRST),
        "the keep-alive connection goes on, with the certificate it was given: {kept:?}"
    );
    let after = client.ask("new", "answer");
    assert_eq!(
        (field(&after, "status"), field(&after, "serial")),
        ("200", SECOND),
        "{after:?}"
    );
    stop(app).assert_code(0);
}

#[test]
fn the_same_swap_with_no_signal_is_picked_up_by_the_watch_within_5_s() {
    if !require_openssl_and_python_ssl() {
        return;
    }
    let (pki, mut volume) = mounted("watch");
    let app = start("tls_app", &volume, &[]);
    let watching = app.wait_for_stderr("tls: watching").text;
    assert!(watching.contains("secret"), "{watching}");
    let mut client = clients::https(app.listening_address(), &pki.ca());
    let before = client.ask("new", "answer");
    assert_eq!(field(&before, "serial"), FIRST, "{before:?}");

    volume.swap(&pki.leaf(SECOND));
    let waited = client.ask(&format!("wait {SECOND} 5"), "answer");
    let after: f64 = field(&waited, "after").parse().unwrap();
    eprintln!("tls: the watch served the new certificate {after} s after the swap");
    assert!(after <= 5.0, "{waited:?}");
    let changed = app.wait_for_stderr("tls: files changed").text;
    assert!(
        changed.contains("serial 1A02") && changed.contains(&volume.cert()),
        "{changed}"
    );
    assert_eq!(
        app.count_stderr("reload in"),
        0,
        "a change of files runs no reload (no hooks, nothing to systemd)"
    );
    stop(app).assert_code(0);
}

#[test]
fn a_broken_certificate_leaves_the_last_good_one_served_and_names_the_file() {
    if !require_openssl_and_python_ssl() {
        return;
    }
    let (pki, mut volume) = mounted("broken");
    let mut app = start("tls_app", &volume, &[]);

    let second = pki.leaf(SECOND);
    let cut_short = &second.chain[..second.chain.len() / 3];
    volume.swap_files(cut_short, &second.key);
    app.signal(Signal::SIGHUP);
    let report = app.wait_for_stderr("reload in").text;
    assert!(
        report.contains("failed: certificate chain") && report.contains(&volume.cert()),
        "the reload's report names the file: {report}"
    );
    let error = app
        .wait_for_stderr("still serving the last good certificate")
        .text;
    assert!(
        error.contains(&volume.cert()) && error.contains("serial 1A01"),
        "{error}"
    );

    let mut client = clients::https(app.listening_address(), &pki.ca());
    let served = client.ask("new", "answer");
    assert_eq!(
        (field(&served, "status"), field(&served, "serial")),
        ("200", FIRST),
        "{served:?}"
    );
    let finished = stop(app);
    assert_eq!(
        finished.code,
        Some(0),
        "the process stayed up and shut down cleanly: {}",
        finished.stderr
    );
}

// ---- stalled handshakes ---------------------------------------------------------------------

/// The first bytes of a TLS ClientHello: a record header announcing 200 bytes, the handshake
/// header, the version and half the random. The server waits for the rest.
const HALF_CLIENT_HELLO: [u8; 27] = [
    0x16, 0x03, 0x01, 0x00, 0xc8, // record: handshake, 200 bytes
    0x01, 0x00, 0x00, 0xc4, // ClientHello, 196 bytes
    0x03, 0x03, // TLS 1.2
    0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a,
    0x5a, // 16 of the 32 random bytes
];

/// GET / over HTTPS/1.1 with curl, given at most `max_time` seconds: what it got, and how long
/// it took from its start.
fn timed_get(pki: &Pki, address: SocketAddr, max_time: &str) -> (Finished, Duration) {
    let curl = clients::curl_https(
        &pki.ca(),
        &["--http1.1", "--max-time", max_time],
        &url(address, "/"),
    );
    let started = curl.started_at;
    let finished = curl.wait_exit();
    let took = finished.exited_at - started;
    (finished, took)
}

#[test]
fn stalled_handshakes_delay_no_one_and_do_not_hold_the_drain() {
    if !require_openssl_and(&[("curl", "curl")]) {
        return;
    }
    let pre_stop = Duration::from_secs(1);
    let (pki, volume) = mounted("stalled");
    let mut app = start("tls_app", &volume, &[("GRACEFUL_PRE_STOP", "1s")]);
    let address = app.listening_address();

    let _silent = TcpStream::connect(address).unwrap();
    let mut half = TcpStream::connect(address).unwrap();
    half.write_all(&HALF_CLIENT_HELLO).unwrap();

    // Others are accepted and served while both stall.
    let (other, took) = timed_get(&pki, address, "20");
    other.assert_code(0);
    assert_eq!(other.text(), "hello\n\nstatus=200 version=1.1");
    eprintln!("tls: a request served in {took:?} while two handshakes stall");

    let slow = clients::curl_https(&pki.ca(), &["--http2"], &url(address, "/slow?ms=1500"));
    app.wait_for_stdout("slow request started");
    app.signal(Signal::SIGTERM);
    let finished = app.wait_exit();
    let slow = slow.wait_exit();
    let after = finished.after_signal.unwrap();
    eprintln!(
        "tls: exit {:?} {after:?} after SIGTERM, with two handshakes stalled",
        finished.code
    );
    finished.assert_code(0);
    assert_eq!(
        slow.text(),
        "slow done\n\nstatus=200 version=2",
        "the request in flight completed"
    );
    let ceiling = pre_stop + FIRST_REQUEST_WINDOW + Duration::from_secs(2);
    assert!(
        after < ceiling,
        "the stalled handshakes held the exit {after:?} after SIGTERM (ceiling {ceiling:?}; the \
         handshake timeout is 10 s)"
    );
}

/// The contrast: under `axum::serve`, a `Listener` whose `accept` does the handshake takes no
/// other connection while one client stalls in it. The same request, behind the same silent
/// client, that graceful answers at once gets nothing in 2 s.
#[test]
fn under_axum_serve_a_handshake_in_the_accept_loop_serves_no_one_else_while_one_stalls() {
    if !require_openssl_and(&[("curl", "curl")]) {
        return;
    }
    let (pki, volume) = mounted("accept-loop");
    let servers = [
        start("tls_app", &volume, &[]),
        start("axum_tls_listener", &volume, &[]),
    ];
    let [(served, served_in), (held, held_for)] = [&servers[0], &servers[1]].map(|server| {
        let address = server.listening_address();
        // Accepted first: the accept queue is in order.
        let _silent = TcpStream::connect(address).unwrap();
        timed_get(&pki, address, "2")
    });
    eprintln!(
        "tls: behind a silent client, graceful answered in {served_in:?}; axum::serve with the \
         handshake in its accept loop: curl exit {:?} after {held_for:?} ({})",
        held.code,
        held.line("status=").text
    );
    served.assert_code(0);
    assert_eq!(served.text(), "hello\n\nstatus=200 version=1.1");
    assert_eq!(
        held.code,
        Some(28),
        "curl did not time out against the contrast: the contrast is gone: {held:?}"
    );
    assert!(held.text().ends_with("status=000 version=0"), "{held:?}");
    for server in servers {
        stop(server).assert_code(0);
    }
}

/// Starts `fixture` and holds a silent client on it that the server has accepted: a request made
/// after it connected has been answered, and the accept queue is in order.
fn with_a_silent_client(
    pki: &Pki,
    volume: &Volume,
    fixture: &str,
    env: &[(&str, &str)],
) -> (Process, TcpStream) {
    let server = start(fixture, volume, env);
    let address = server.listening_address();
    let silent = TcpStream::connect(address).unwrap();
    let (answered, _) = timed_get(pki, address, "20");
    answered.assert_code(0);
    (server, silent)
}

/// The contrast of axum#2611: axum-server stopped as axum's `tls-graceful-shutdown` example does
/// (`Handle::graceful_shutdown(Some(10 s))`) waited, up to 0.8.0, for a client that never began
/// its handshake: until its handshake timeout (10 s, like the grace period). Since 0.9.0
/// axum-server cancels handshakes at shutdown: its figure is recorded beside the others.
#[test]
fn a_silent_client_held_axum_server_0_8_for_its_grace_period_and_holds_graceful_for_none() {
    if !require_openssl_and(&[("curl", "curl")]) {
        return;
    }
    let pre_stop = Duration::from_secs(1);
    let (pki, volume) = mounted("grace");
    let servers = [
        ("graceful", "tls_app", "0"),
        ("axum-server 0.8.0", "axum_server_tls", "0.8"),
        ("axum-server 0.9", "axum_server_tls", "0.9"),
    ]
    .map(|(name, fixture, version)| {
        let env = [("GRACEFUL_PRE_STOP", "1s"), ("AXUM_SERVER", version)];
        (name, with_a_silent_client(&pki, &volume, fixture, &env))
    });
    // Signalled together, so the 10 s run once.
    let [graceful, old, current] = servers
        .map(|(name, (mut server, silent))| {
            server.signal(Signal::SIGTERM);
            (name, server, silent)
        })
        .map(|(name, server, _silent)| (name, server.wait_exit()));
    for (name, finished) in [&graceful, &old, &current] {
        eprintln!(
            "tls: {name}: exit {:?} {:?} after SIGTERM, with a silent client",
            finished.code,
            finished.after_signal.unwrap()
        );
    }
    graceful.1.assert_code(0);
    let ceiling = pre_stop + FIRST_REQUEST_WINDOW + Duration::from_secs(2);
    graceful
        .1
        .assert_exited_within(ceiling, "graceful with a silent client");
    old.1.assert_code(0);
    let held = old.1.after_signal.unwrap();
    assert!(
        held > Duration::from_secs(8),
        "axum-server 0.8.0 exited {held:?} after SIGTERM with a silent client: the contrast is \
         gone"
    );
    current.1.assert_code(0);
}
