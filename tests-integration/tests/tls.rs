//! `graceful::serve(..).tls(..)` as real clients see it: src/bin/tls_app.rs serves HTTPS with a
//! certificate this file makes at run time (a test CA and two leaves, with the `openssl` CLI; no
//! private key is checked in), driven by curl, nghttp, Python's `ssl` and raw sockets, and sent
//! real signals. The certificate rotates the way a Kubernetes Secret volume does it. Every wait
//! is woken by a line a process prints, or is a bounded poll; the timings asserted are orders of
//! magnitude, and the measured ones are printed for the record.
//!
//! Its helpers are its own (tests/support is shared by the other files).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

/// The longest any single wait may take before the test fails: only reached when broken.
const PATIENCE: Duration = Duration::from_secs(30);

/// The serials of the two leaf certificates, as `openssl x509 -serial` and Python print them.
const FIRST: &str = "1A01";
const SECOND: &str = "1A02";

// ---- what a test needs ----------------------------------------------------------------------

/// Whether every `(program, Debian package)` is on PATH. Under `CI=true` a missing one fails the
/// test; elsewhere the test is skipped, loudly.
fn require(programs: &[(&str, &str)]) -> bool {
    let missing: Vec<String> = programs
        .iter()
        .filter(|(program, _)| which(program).is_none())
        .map(|(program, package)| format!("{program} ({package})"))
        .collect();
    if missing.is_empty() {
        return true;
    }
    let what = format!(
        "{} on PATH (scripts/install-test-clients installs them)",
        missing.join(", ")
    );
    assert!(
        std::env::var("CI").map_or(true, |ci| ci != "true"),
        "this test needs {what}, and CI=true: CI must provide it"
    );
    let message = format!("!!! WARNING: this test needs {what}: test SKIPPED !!!");
    let bar = "!".repeat(message.len());
    let _ = writeln!(std::io::stderr().lock(), "{bar}\n{message}\n{bar}");
    false
}

fn which(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|directory| directory.join(program))
        .find(|candidate| {
            candidate.metadata().is_ok_and(|metadata| {
                metadata.is_file() && metadata.permissions().mode() & 0o111 != 0
            })
        })
}

/// Debian's Python, whose `ssl` module the driver uses.
const PYTHON: &str = "/usr/bin/python3";

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
            "ca.key",
            "-out",
            "ca.crt",
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
                &format!("{serial}.key"),
                "-out",
                &format!("{serial}.csr"),
                "-subj",
                "/CN=localhost",
            ]);
            pki.openssl(&[
                "x509",
                "-req",
                "-in",
                &format!("{serial}.csr"),
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-set_serial",
                &format!("0x{serial}"),
                "-days",
                "2",
                "-extfile",
                "leaf.ext",
                "-out",
                &format!("{serial}.crt"),
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

    fn openssl(&self, args: &[&str]) {
        let output = Command::new("openssl")
            .args(args)
            .current_dir(&self.scratch.0)
            .output()
            .expect("run openssl");
        assert!(
            output.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
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

// ---- the server -----------------------------------------------------------------------------

/// Lines of one stream, each with when the test read it.
type Lines = Vec<(Instant, String)>;

/// What a process printed: stdout, then stderr.
#[derive(Default)]
struct Output {
    lines: Mutex<(Lines, Lines)>,
    grew: Condvar,
}

impl Output {
    fn read(self: &Arc<Self>, stream: impl Read + Send + 'static, stdout: bool) {
        let output = Arc::clone(self);
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                let mut lines = output.lines.lock().unwrap();
                let stream = if stdout { &mut lines.0 } else { &mut lines.1 };
                stream.push((Instant::now(), line));
                output.grew.notify_all();
            }
        });
    }

    /// Waits until a line of stdout (or stderr) contains every one of `needles`; returns it
    /// and when it was read.
    fn wait_for(&self, stdout: bool, needles: &[&str]) -> (Instant, String) {
        let deadline = Instant::now() + PATIENCE;
        let mut lines = self.lines.lock().unwrap();
        loop {
            let stream = if stdout { &lines.0 } else { &lines.1 };
            let found = stream
                .iter()
                .find(|(_, line)| needles.iter().all(|needle| line.contains(needle)));
            if let Some(found) = found {
                return found.clone();
            }
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                panic!(
                    "no line with {needles:?} within {PATIENCE:?}; stdout {:#?}, stderr {:#?}",
                    lines.0, lines.1
                );
            };
            lines = self.grew.wait_timeout(lines, left).unwrap().0;
        }
    }

    fn stderr(&self) -> Vec<String> {
        let lines = self.lines.lock().unwrap();
        lines.1.iter().map(|(_, line)| line.clone()).collect()
    }
}

/// A running tls_app.
struct App {
    pid: nix::unistd::Pid,
    /// Its exit code, sent by a thread that waits for it: the exit wakes the test.
    exited: mpsc::Receiver<Option<i32>>,
    reaped: bool,
    output: Arc<Output>,
    address: SocketAddr,
    signalled: Option<Instant>,
}

impl App {
    /// Starts tls_app on `volume`'s files, with a 2 s pre-stop and a 20 s drain timeout unless
    /// `env` says otherwise.
    fn start(volume: &Volume, env: &[(&str, &str)]) -> App {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tls_app"));
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env_remove("RUST_LOG")
            .env("TLS_CERT", volume.cert())
            .env("TLS_KEY", volume.key())
            .env("GRACEFUL_PRE_STOP", "2s")
            .env("GRACEFUL_DRAIN_TIMEOUT", "20s")
            .envs(env.iter().copied());
        let mut child = command.spawn().expect("start tls_app");
        let output = Arc::new(Output::default());
        output.read(child.stdout.take().unwrap(), true);
        output.read(child.stderr.take().unwrap(), false);
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let (sender, exited) = mpsc::channel();
        std::thread::spawn(move || {
            let status = child.wait().expect("wait for tls_app");
            let _ = sender.send(status.code());
        });
        let (_, line) = output.wait_for(true, &["listening on"]);
        let address = line.trim_start_matches("listening on ").parse().unwrap();
        App {
            pid,
            exited,
            reaped: false,
            output,
            address,
            signalled: None,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.address)
    }

    fn signal(&mut self, signal: Signal) -> Instant {
        nix::sys::signal::kill(self.pid, signal).expect("signal tls_app");
        let at = Instant::now();
        self.signalled = Some(at);
        at
    }

    fn stdout(&self, needle: &str) -> Instant {
        self.output.wait_for(true, &[needle]).0
    }

    fn stderr(&self, needles: &[&str]) -> (Instant, String) {
        self.output.wait_for(false, needles)
    }

    /// SIGTERM, then its exit code and how long after the signal it came.
    fn terminate(mut self) -> (Option<i32>, Duration) {
        self.signal(Signal::SIGTERM);
        self.wait_exit()
    }

    fn wait_exit(mut self) -> (Option<i32>, Duration) {
        let code = self.exited.recv_timeout(PATIENCE).unwrap_or_else(|_| {
            panic!(
                "tls_app did not exit within {PATIENCE:?}; stderr {:#?}",
                self.output.stderr()
            )
        });
        self.reaped = true;
        (code, self.signalled.expect("a signal was sent").elapsed())
    }
}

impl Drop for App {
    fn drop(&mut self) {
        // A test that failed half-way must not leave its server running.
        if !self.reaped && self.exited.try_recv().is_err() {
            let _ = nix::sys::signal::kill(self.pid, Signal::SIGKILL);
        }
    }
}

// ---- clients --------------------------------------------------------------------------------

/// curl over HTTPS with `version` (`--http2` or `--http1.1`), trusting the test CA: the body,
/// then a line `VERSION STATUS`.
fn curl(pki: &Pki, version: &str, url: &str) -> String {
    let output = Command::new("curl")
        .args(["-sS", "--max-time", "20", version, "--cacert"])
        .arg(pki.path("ca.crt"))
        .args(["-w", "\n%{http_version} %{http_code}", url])
        .output()
        .expect("run curl");
    String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr)
}

/// Python's `http.client` over `ssl`, trusting the test CA, taking one command a line:
/// - `new`: a new connection, and GET / on it;
/// - `again`: GET / on the connection of the last `new` (never a reconnect);
/// - `wait SERIAL SECONDS`: new connections, one after the other, until one presents SERIAL.
///
/// Each GET answers `answer status=S serial=SERIAL port=P` (P: the client's port, the
/// connection's identity); `wait` answers `answer after=SECONDS` or `answer timeout last=SERIAL`.
const DRIVER: &str = r#"
import http.client, ssl, sys, time
host, port, cafile = sys.argv[1], int(sys.argv[2]), sys.argv[3]
context = ssl.create_default_context(cafile=cafile)

def connect():
    connection = http.client.HTTPSConnection(host, port, context=context, timeout=30)
    connection.auto_open = 0
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
                time.sleep(0.05)
    except Exception as error:
        print(f"answer error={type(error).__name__}: {error}")
"#;

struct Driver {
    child: Child,
    stdin: ChildStdin,
    answers: mpsc::Receiver<String>,
}

impl Driver {
    fn start(pki: &Pki, address: SocketAddr) -> Driver {
        let mut child = Command::new(PYTHON)
            .args(["-u", "-c", DRIVER])
            .arg(address.ip().to_string())
            .arg(address.port().to_string())
            .arg(pki.path("ca.crt"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start python3");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (sender, answers) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    return;
                }
            }
        });
        Driver {
            child,
            stdin,
            answers,
        }
    }

    fn ask(&mut self, command: &str) -> String {
        writeln!(self.stdin, "{command}").unwrap();
        let answer = self
            .answers
            .recv_timeout(PATIENCE)
            .unwrap_or_else(|_| panic!("no answer to {command:?} within {PATIENCE:?}"));
        answer.trim_start_matches("answer ").to_owned()
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One field of a driver's answer: `serial` of `status=200 serial=1A01 port=5`.
fn field<'a>(answer: &'a str, name: &str) -> &'a str {
    answer
        .split_whitespace()
        .find_map(|part| part.strip_prefix(name)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {name} in {answer:?}"))
}

/// The time nghttp stamps a line with (`[  0.012] recv GOAWAY frame`), from its start.
fn nghttp_stamp(output: &str, needle: &str) -> Duration {
    let line = output
        .lines()
        .find(|line| line.contains(needle))
        .unwrap_or_else(|| panic!("nghttp printed no {needle:?}: {output}"));
    let inside = line.trim_start().trim_start_matches('[');
    let stamp = inside.split(']').next().unwrap().trim();
    Duration::from_secs_f64(stamp.parse().unwrap())
}

/// Waits for a child process's output, bounded.
fn finish(child: Child) -> std::process::Output {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(child.wait_with_output());
    });
    receiver
        .recv_timeout(PATIENCE)
        .expect("a client did not finish in time")
        .unwrap()
}

// ---- the tests ------------------------------------------------------------------------------

#[test]
fn curl_gets_200_over_http2_negotiated_by_alpn_and_over_http1() {
    if !require(&[("openssl", "openssl"), ("curl", "curl")]) {
        return;
    }
    let pki = Pki::new("protocols");
    let volume = Volume::new(&pki, &pki.leaf(FIRST));
    let app = App::start(&volume, &[]);
    let loaded = app.stderr(&["tls: serving", "tls.crt"]).1;
    assert!(
        loaded.contains("#1 serial 1A01, notAfter ") && loaded.contains("#2 serial "),
        "the log names each certificate's serial and notAfter: {loaded}"
    );

    let http2 = curl(&pki, "--http2", &app.url("/"));
    assert!(http2.ends_with("hello\n\n2 200"), "{http2:?}");
    let http1 = curl(&pki, "--http1.1", &app.url("/"));
    assert!(http1.ends_with("hello\n\n1.1 200"), "{http1:?}");

    let (code, _) = app.terminate();
    assert_eq!(code, Some(0));
}

#[test]
fn nghttp_over_tls_gets_goaway_before_stop_accepting_and_its_slow_request_completes() {
    if !require(&[("openssl", "openssl"), ("nghttp", "nghttp2-client")]) {
        return;
    }
    let pki = Pki::new("goaway");
    let volume = Volume::new(&pki, &pki.leaf(FIRST));
    let mut app = App::start(&volume, &[]);
    let started = Instant::now();
    let nghttp = Command::new("nghttp")
        .args(["-v", "--null-out", &app.url("/slow?ms=4000")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run nghttp");
    let request_seen = app.stdout("slow request started");
    let signal = app.signal(Signal::SIGTERM);
    let (stop_accepting, _) = app.stderr(&["stop accepting"]);
    let output = finish(nghttp);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "nghttp: {text}");
    assert!(text.contains("protocol: h2"), "ALPN chose h2: {text}");
    assert!(
        text.contains(":status: 200"),
        "the slow request completed: {text}"
    );

    // nghttp stamps from its own start, which is after `started`; it sent the request before
    // the server printed that it started.
    let sent = nghttp_stamp(&text, "send HEADERS frame");
    let goaway = nghttp_stamp(&text, "recv GOAWAY frame");
    let at_least = (started + goaway).saturating_duration_since(signal);
    let at_most = (request_seen + goaway - sent).saturating_duration_since(signal);
    let stop = stop_accepting - signal;
    eprintln!("tls: GOAWAY {at_least:?}..{at_most:?} after SIGTERM; stop accepting seen {stop:?} after it");
    assert!(
        at_most < stop,
        "GOAWAY (up to {at_most:?} after the signal) did not come before stop-accepting ({stop:?})"
    );
    assert!(
        at_most < Duration::from_millis(1500),
        "GOAWAY came up to {at_most:?} after the signal, with a 2 s pre-stop"
    );
    let (code, _) = app.wait_exit();
    assert_eq!(code, Some(0));
}

#[test]
fn after_a_kubernetes_style_swap_and_sighup_new_connections_get_the_new_certificate() {
    if !require(&[("openssl", "openssl"), (PYTHON, "python3")]) {
        return;
    }
    let pki = Pki::new("sighup");
    let mut volume = Volume::new(&pki, &pki.leaf(FIRST));
    let mut app = App::start(&volume, &[]);
    let mut client = Driver::start(&pki, app.address);
    let before = client.ask("new");
    assert_eq!(
        (field(&before, "status"), field(&before, "serial")),
        ("200", FIRST),
        "{before}"
    );

    volume.swap(&pki.leaf(SECOND));
    let sighup = app.signal(Signal::SIGHUP);
    let (reloaded, report) = app.stderr(&["reload in", "tls certificate"]);
    assert!(
        report.contains(&format!("tls certificate {} ok", volume.cert())),
        "{report}"
    );
    eprintln!(
        "tls: reload report {:?} after SIGHUP: {report}",
        reloaded - sighup
    );

    let kept = client.ask("again");
    assert_eq!(
        (
            field(&kept, "status"),
            field(&kept, "port"),
            field(&kept, "serial")
        ),
        ("200", field(&before, "port"), FIRST),
        "the keep-alive connection goes on, with the certificate it was given: {kept}"
    );
    let after = client.ask("new");
    assert_eq!(
        (field(&after, "status"), field(&after, "serial")),
        ("200", SECOND),
        "{after}"
    );

    let (code, _) = app.terminate();
    assert_eq!(code, Some(0));
}

#[test]
fn the_same_swap_with_no_signal_is_picked_up_by_the_watch_within_5_s() {
    if !require(&[("openssl", "openssl"), (PYTHON, "python3")]) {
        return;
    }
    let pki = Pki::new("watch");
    let mut volume = Volume::new(&pki, &pki.leaf(FIRST));
    let app = App::start(&volume, &[]);
    app.stderr(&["tls: watching", "secret"]);
    let mut client = Driver::start(&pki, app.address);
    let before = client.ask("new");
    assert_eq!(field(&before, "serial"), FIRST, "{before}");

    volume.swap(&pki.leaf(SECOND));
    let waited = client.ask(&format!("wait {SECOND} 5"));
    let after: f64 = field(&waited, "after").parse().unwrap();
    eprintln!("tls: the watch served the new certificate {after} s after the swap");
    assert!(after <= 5.0, "{waited}");
    let (_, line) = app.stderr(&["tls: files changed", "serial 1A02"]);
    assert!(line.contains(&volume.cert()), "{line}");
    assert!(
        !app.output
            .stderr()
            .iter()
            .any(|line| line.contains("reload in")),
        "a change of files runs no reload (no hooks, nothing to systemd)"
    );

    let (code, _) = app.terminate();
    assert_eq!(code, Some(0));
}

#[test]
fn a_broken_certificate_leaves_the_last_good_one_served_and_names_the_file() {
    if !require(&[("openssl", "openssl"), (PYTHON, "python3")]) {
        return;
    }
    let pki = Pki::new("broken");
    let mut volume = Volume::new(&pki, &pki.leaf(FIRST));
    let mut app = App::start(&volume, &[]);

    let second = pki.leaf(SECOND);
    let cut_short = &second.chain[..second.chain.len() / 3];
    volume.swap_files(cut_short, &second.key);
    app.signal(Signal::SIGHUP);
    let (_, report) = app.stderr(&["reload in", "tls certificate"]);
    assert!(
        report.contains("failed: certificate chain") && report.contains(&volume.cert()),
        "the reload's report names the file: {report}"
    );
    let (_, error) = app.stderr(&["still serving the last good certificate"]);
    assert!(
        error.contains(&volume.cert()) && error.contains("serial 1A01"),
        "{error}"
    );

    let mut client = Driver::start(&pki, app.address);
    let served = client.ask("new");
    assert_eq!(
        (field(&served, "status"), field(&served, "serial")),
        ("200", FIRST),
        "{served}"
    );
    let (code, _) = app.terminate();
    assert_eq!(code, Some(0), "the process stayed up and shut down cleanly");
}

/// The first bytes of a TLS ClientHello: a record header announcing 200 bytes, the handshake
/// header, the version and half the random. The server waits for the rest.
const HALF_CLIENT_HELLO: [u8; 27] = [
    0x16, 0x03, 0x01, 0x00, 0xc8, // record: handshake, 200 bytes
    0x01, 0x00, 0x00, 0xc4, // ClientHello, 196 bytes
    0x03, 0x03, // TLS 1.2
    0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a,
    0x5a, // 16 of the 32 random bytes
];

#[test]
fn stalled_handshakes_delay_no_one_and_do_not_hold_the_drain() {
    if !require(&[("openssl", "openssl"), ("curl", "curl")]) {
        return;
    }
    const PRE_STOP: Duration = Duration::from_secs(1);
    const FIRST_REQUEST_WINDOW: Duration = Duration::from_secs(1);
    let pki = Pki::new("stalled");
    let volume = Volume::new(&pki, &pki.leaf(FIRST));
    let mut app = App::start(&volume, &[("GRACEFUL_PRE_STOP", "1s")]);

    let _silent = TcpStream::connect(app.address).unwrap();
    let mut half = TcpStream::connect(app.address).unwrap();
    half.write_all(&HALF_CLIENT_HELLO).unwrap();

    // Others are accepted and served while both stall.
    let served_at = Instant::now();
    let other = curl(&pki, "--http1.1", &app.url("/"));
    assert!(other.ends_with("1.1 200"), "{other:?}");
    eprintln!(
        "tls: a request served in {:?} while two handshakes stall",
        served_at.elapsed()
    );

    let slow = Command::new("curl")
        .args(["-sS", "--max-time", "20", "--http2", "--cacert"])
        .arg(pki.path("ca.crt"))
        .args(["-w", "\n%{http_code}", &app.url("/slow?ms=1500")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run curl");
    app.stdout("slow request started");
    app.signal(Signal::SIGTERM);
    let (code, after) = app.wait_exit();
    let slow = finish(slow);
    let slow = String::from_utf8_lossy(&slow.stdout);
    eprintln!("tls: exit {code:?} {after:?} after SIGTERM, with two handshakes stalled");
    assert_eq!(code, Some(0));
    assert!(
        slow.ends_with("slow done\n\n200"),
        "the request in flight completed: {slow:?}"
    );
    let ceiling = PRE_STOP + FIRST_REQUEST_WINDOW + Duration::from_secs(2);
    assert!(
        after < ceiling,
        "the stalled handshakes held the exit {after:?} after SIGTERM (ceiling {ceiling:?}; the \
         handshake timeout is 10 s)"
    );
}
