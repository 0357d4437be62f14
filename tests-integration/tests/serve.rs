//! `graceful::serve` through a shutdown, as real clients see it: src/bin/serve_app.rs sent a
//! real SIGTERM, driven by curl, nghttp, and Python's http.client, websockets and h2 over
//! loopback. Where `serve` claims to do better than `axum::serve` with `TrackLayer` and
//! `with_graceful_shutdown`, the same checks run against that contrast (`SERVER=axum`) and
//! assert where it falls short. Every wait is woken by a line a process prints; the timings
//! asserted are orders of magnitude, and the measured ones are printed for the record.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use graceful_tests_integration::clients::{self, nghttp_stamp};
use graceful_tests_integration::{Finished, Line, Process, Signal};

/// The pre-stop of every test unless it says otherwise: long enough that "at the signal" and
/// "at stop-accepting" cannot be confused.
const PRE_STOP: Duration = Duration::from_secs(2);

/// `serve`'s default first-request window after stop-accepting.
const FIRST_REQUEST_WINDOW: Duration = Duration::from_secs(1);

/// Which server loop the fixture runs.
#[derive(Debug, Clone, Copy)]
enum Server {
    /// `graceful::serve(listener, app)`.
    Serve,
    /// The contrast: `axum::serve(listener, app.layer(TrackLayer::new()))
    /// .with_graceful_shutdown(graceful::shutdown_signal())`.
    Axum,
}

/// A running serve_app.
struct App {
    process: Process,
    address: SocketAddr,
}

/// How a serve_app ended.
struct Exit {
    finished: Finished,
    /// When its exit was seen (a thread waits on it, so at once).
    at: Instant,
}

impl App {
    /// Starts serve_app with a 2 s pre-stop and a 20 s drain timeout; `env` may override them.
    fn start(server: Server, env: &[(&str, &str)]) -> App {
        let server = match server {
            Server::Serve => "serve",
            Server::Axum => "axum",
        };
        let mut all = vec![
            ("SERVER", server),
            ("GRACEFUL_PRE_STOP", "2s"),
            ("GRACEFUL_DRAIN_TIMEOUT", "20s"),
        ];
        // Later entries win: a test's own settings override the defaults above.
        all.extend_from_slice(env);
        let process = Process::fixture("serve_app", &all);
        let address = process.listening_address();
        App { process, address }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Sends SIGTERM; returns when it was sent.
    fn sigterm(&mut self) -> Instant {
        self.process.signal(Signal::SIGTERM);
        self.process.last_signal_at.unwrap()
    }

    /// Waits for a line of graceful's (stderr) containing `needle`; returns when it was read.
    fn seen(&self, needle: &str) -> Instant {
        self.process.wait_for_stderr(needle).at
    }

    /// Waits for a line of the app's (stdout) containing `needle`; returns when it was read.
    fn printed(&self, needle: &str) -> Instant {
        self.process.wait_for_stdout(needle).at
    }

    fn wait_exit(self) -> Exit {
        let signalled = self.process.last_signal_at.expect("no signal was sent");
        let finished = self.process.wait_exit();
        let at = signalled + finished.after_signal.unwrap();
        Exit { finished, at }
    }
}

/// `later - earlier`, or zero when `later` came first.
fn since(later: Instant, earlier: Instant) -> Duration {
    later.saturating_duration_since(earlier)
}

/// Needs every `(program, Debian package)`; false (after a loud skip) when one is missing.
fn require_programs(programs: &[(&str, &str)]) -> bool {
    programs
        .iter()
        .all(|(program, package)| clients::require_program(program, package))
}

/// Needs every `(module, Debian package)` importable by Debian's python3.
fn require_python(modules: &[(&str, &str)]) -> bool {
    modules
        .iter()
        .all(|(module, package)| clients::require_python_module(module, package))
}

// ---- HTTP/2 GOAWAY --------------------------------------------------------------------------

/// When an HTTP/2 client with a slow request open saw GOAWAY, from the signal.
struct GoawayTiming {
    /// At the earliest: nghttp stamps its lines from its connection, which was made after the
    /// test started it.
    at_least: Duration,
    /// At the latest: when the test read nghttp's GOAWAY line, which nghttp prints as the frame
    /// arrives.
    at_most: Duration,
    /// When the test read graceful's `stop accepting` line, from the signal.
    stop_accepting: Duration,
    nghttp: Finished,
    exit: Exit,
}

/// `nghttp -v` holds one HTTP/2 connection with `/slow?ms=4000` in flight; SIGTERM once the
/// handler has started.
fn goaway_after_signal(server: Server) -> GoawayTiming {
    let mut app = App::start(server, &[]);
    let nghttp = clients::nghttp(&["--null-out", &app.url("/slow?ms=4000")]);
    let started = nghttp.started_at;
    app.printed("slow request started");
    let signal = app.sigterm();
    let goaway = nghttp.wait_for_stdout("recv GOAWAY frame");
    let stop_accepting = since(app.seen("stop accepting"), signal);
    let output = nghttp.wait_exit();
    let exit = app.wait_exit();
    let stamp = nghttp_stamp(&goaway.text)
        .unwrap_or_else(|| panic!("no stamp on nghttp's GOAWAY line: {output:#?}"));
    GoawayTiming {
        at_least: since(started + stamp, signal),
        at_most: since(goaway.at, signal),
        stop_accepting,
        nghttp: output,
        exit,
    }
}

#[test]
fn http2_clients_get_goaway_within_a_second_of_the_signal() {
    if !require_programs(&[("nghttp", "nghttp2-client")]) {
        return;
    }
    let timing = goaway_after_signal(Server::Serve);
    eprintln!(
        "serve: GOAWAY between {:?} and {:?} after SIGTERM; stop accepting seen {:?} after it",
        timing.at_least, timing.at_most, timing.stop_accepting
    );
    // The order: the client had GOAWAY during pre-stop, while graceful was still accepting.
    assert!(
        timing.at_most < timing.stop_accepting,
        "GOAWAY (read {:?} after the signal) came after stop-accepting (read {:?} after it)",
        timing.at_most,
        timing.stop_accepting
    );
    // The README's promise, GOAWAY at once: a ceiling of half the pre-stop, so that GOAWAY at
    // stop-accepting (the axum contrast) cannot pass for it.
    assert!(
        timing.at_most < PRE_STOP / 2,
        "GOAWAY came up to {:?} after the signal, not at once (pre-stop {PRE_STOP:?})",
        timing.at_most
    );
    assert!(
        timing.nghttp.position(":status: 200").is_some(),
        "the slow request did not complete: {}",
        timing.nghttp.text()
    );
    assert_eq!(timing.nghttp.code, Some(0), "{:#?}", timing.nghttp);
    timing.exit.finished.assert_code(0);
}

#[test]
fn axum_contrast_sends_goaway_only_at_stop_accepting() {
    if !require_programs(&[("nghttp", "nghttp2-client")]) {
        return;
    }
    let timing = goaway_after_signal(Server::Axum);
    eprintln!(
        "axum + TrackLayer: GOAWAY between {:?} and {:?} after SIGTERM; stop accepting seen \
         {:?} after it",
        timing.at_least, timing.at_most, timing.stop_accepting
    );
    assert!(
        timing.at_least > PRE_STOP - Duration::from_millis(500),
        "axum sent GOAWAY {:?} after the signal, before stop-accepting: the contrast is gone",
        timing.at_least
    );
    assert!(
        timing.nghttp.position(":status: 200").is_some(),
        "{}",
        timing.nghttp.text()
    );
}

#[test]
fn a_new_http2_connection_during_pre_stop_is_served() {
    if !require_programs(&[("curl", "curl")]) {
        return;
    }
    let mut app = App::start(Server::Serve, &[]);
    app.sigterm();
    app.seen("pre-stop");
    let curl = clients::curl_http2(&app.url("/"));
    let answered = curl.line("status=").at;
    let stop_accepting = app.seen("stop accepting");
    let exit = app.wait_exit();
    assert!(
        curl.line("status=").text.contains("status=200 version=2"),
        "{curl:#?}"
    );
    assert!(curl.position("hello").is_some(), "{curl:#?}");
    assert!(
        answered < stop_accepting,
        "curl was answered after stop-accepting, not during pre-stop"
    );
    exit.finished.assert_code(0);
}

/// nghttp opens a new HTTP/2 connection during pre-stop and GETs `/` on it.
fn first_http2_request_during_pre_stop(server: Server) -> Finished {
    let mut app = App::start(server, &[]);
    app.sigterm();
    app.seen("pre-stop");
    let nghttp = clients::nghttp(&[&app.url("/")]).wait_exit();
    app.wait_exit().finished.assert_code(0);
    assert!(
        nghttp.position(":status: 200").is_some(),
        "{}",
        nghttp.text()
    );
    nghttp
}

#[test]
fn a_new_http2_connection_during_pre_stop_gets_goaway_after_its_first_request() {
    if !require_programs(&[("nghttp", "nghttp2-client")]) {
        return;
    }
    let nghttp = first_http2_request_during_pre_stop(Server::Serve);
    assert!(
        nghttp.position("recv GOAWAY frame").is_some(),
        "no GOAWAY on a connection made during pre-stop:\n{}",
        nghttp.text()
    );
}

#[test]
fn axum_contrast_sends_no_goaway_to_a_connection_made_during_pre_stop() {
    if !require_programs(&[("nghttp", "nghttp2-client")]) {
        return;
    }
    let nghttp = first_http2_request_during_pre_stop(Server::Axum);
    assert!(
        nghttp.position("recv GOAWAY frame").is_none(),
        "axum sent GOAWAY during pre-stop: the contrast is gone\n{}",
        nghttp.text()
    );
}

// ---- HTTP/1.1 keep-alive --------------------------------------------------------------------

#[test]
fn a_keep_alive_connection_gets_connection_close_on_its_first_request_after_the_signal() {
    if !require_python(&[("http.client", "python3")]) {
        return;
    }
    let mut app = App::start(Server::Serve, &[]);
    let mut client = clients::http1(app.address);
    client.wait_for_stdout("connected");
    client.tell("/");
    let before = client.wait_for_nth_stdout("answer", 1);
    app.sigterm();
    app.seen("pre-stop");
    client.tell("/");
    let after = client.wait_for_nth_stdout("answer", 2);
    let exit = app.wait_exit();
    assert!(
        before.text.contains("status=200 connection=None"),
        "before the signal: {}",
        before.text
    );
    // The client never reconnects: this answer came on the connection of the first.
    assert!(
        after.text.contains("status=200 connection=close"),
        "during pre-stop: {}",
        after.text
    );
    exit.finished.assert_code(0);
}

// ---- WebSocket ------------------------------------------------------------------------------

#[test]
fn websockets_get_close_1001_at_stop_accepting_and_the_exit_follows_within_seconds() {
    if !require_python(&[("websockets", "python3-websockets")]) {
        return;
    }
    let mut app = App::start(Server::Serve, &[("GRACEFUL_DRAIN_TIMEOUT", "20s")]);
    let mut socket = clients::websocket(app.address);
    socket.wait_for_stdout("open");
    socket.tell("before the signal");
    socket.wait_for_stdout("echo: before the signal");
    let signal = app.sigterm();
    app.seen("pre-stop");
    // Still open and echoing after the signal.
    socket.tell("during pre-stop");
    socket.wait_for_stdout("echo: during pre-stop");
    let stop_accepting = app.seen("stop accepting");
    let closed = socket.wait_for_stdout("closed");
    let exit = app.wait_exit();
    eprintln!(
        "serve: WebSocket close {:?} after SIGTERM; stop accepting seen {:?} after it; \
         exit {:?} after stop accepting",
        since(closed.at, signal),
        since(stop_accepting, signal),
        since(exit.at, stop_accepting)
    );
    assert!(closed.text.contains("code=1001"), "{}", closed.text);
    assert!(
        since(closed.at, signal) > PRE_STOP / 2,
        "the socket closed {:?} after the signal, during pre-stop",
        since(closed.at, signal)
    );
    // graceful prints `stop accepting` just after it tells the sockets: either may be seen first.
    let gap = since(closed.at, stop_accepting).max(since(stop_accepting, closed.at));
    assert!(
        gap < Duration::from_secs(1),
        "the close came {gap:?} away from stop-accepting"
    );
    exit.finished.assert_code(0);
    assert!(
        since(exit.at, stop_accepting) < Duration::from_secs(5),
        "the exit came {:?} after stop-accepting (drain timeout 20 s)",
        since(exit.at, stop_accepting)
    );
}

// ---- Slowloris ------------------------------------------------------------------------------

/// A slowloris has sent half a request head; SIGTERM. Returns the exit and when the test saw
/// `stop accepting`.
fn exit_with_a_slowloris(server: Server) -> (Exit, Instant) {
    let mut app = App::start(server, &[("GRACEFUL_DRAIN_TIMEOUT", "6s")]);
    let slowloris = clients::slowloris(app.address);
    slowloris.wait_for_stdout("half a head sent");
    app.sigterm();
    let stop_accepting = app.seen("stop accepting");
    let exit = app.wait_exit();
    drop(slowloris);
    (exit, stop_accepting)
}

#[test]
fn a_slowloris_does_not_hold_the_exit_past_the_first_request_window() {
    if !require_python(&[("socket", "python3")]) {
        return;
    }
    let (exit, stop_accepting) = exit_with_a_slowloris(Server::Serve);
    let after = since(exit.at, stop_accepting);
    eprintln!("serve: exit {after:?} after stop accepting, with a slowloris connected");
    exit.finished.assert_code(0);
    // It was a connection of serve's, counted at stop-accepting, and still not waited for.
    exit.finished
        .assert_stderr_has("stop accepting: 1 connection in flight");
    assert!(
        after < FIRST_REQUEST_WINDOW + Duration::from_secs(1),
        "the exit came {after:?} after stop-accepting (window 1 s, drain timeout 6 s)"
    );
}

/// A client on a slow link whose head arrives a line every 300 ms, across three first-request
/// windows after stop-accepting: the window counts silence, so it is served; a silent one (the
/// slowloris above) is not waited for.
#[test]
fn a_head_still_arriving_after_stop_accepting_is_served_not_cut_at_the_window() {
    if !require_python(&[("socket", "python3")]) {
        return;
    }
    let mut app = App::start(Server::Serve, &[]);
    let mut client = clients::trickling_slowloris(app.address, Duration::from_millis(300));
    client.wait_for_stdout("half a head sent");
    app.sigterm();
    let stop_accepting = app.seen("stop accepting");
    // The line that arrives three windows after stop-accepting, then the end of the head.
    let mut line = 1;
    while since(client.wait_for_nth_stdout("line ", line).at, stop_accepting)
        < 3 * FIRST_REQUEST_WINDOW
    {
        line += 1;
    }
    client.tell("end");
    let status = client.wait_for_stdout("status: ");
    let exit = app.wait_exit();
    eprintln!(
        "serve: a head sent over {line} lines, the last {:?} after stop accepting: {}",
        since(status.at, stop_accepting),
        status.text
    );
    assert_eq!(status.text, "status: HTTP/1.1 200 OK");
    exit.finished.assert_code(0);
}

#[test]
fn axum_contrast_is_held_by_a_slowloris_until_the_drain_timeout_and_exits_1() {
    if !require_python(&[("socket", "python3")]) {
        return;
    }
    let (exit, stop_accepting) = exit_with_a_slowloris(Server::Axum);
    let after = since(exit.at, stop_accepting);
    eprintln!("axum + TrackLayer: exit {after:?} after stop accepting, with a slowloris connected");
    exit.finished.assert_code(1);
    exit.finished
        .assert_stderr_has("main: still running when the drain timed out");
    assert!(
        after > Duration::from_secs(5),
        "axum exited {after:?} after stop-accepting, before its 6 s drain timeout"
    );
}

#[test]
fn while_running_a_slowloris_is_closed_at_the_header_read_timeout_and_others_are_served() {
    if !require_python(&[("socket", "python3")]) {
        return;
    }
    let app = App::start(Server::Serve, &[("SERVE_HEADER_READ_TIMEOUT", "500ms")]);
    let slowloris = clients::slowloris(app.address);
    let sent = slowloris.wait_for_stdout("half a head sent");
    let closed = slowloris.wait_for_stdout("closed");
    let held = since(closed.at, sent.at);
    eprintln!("serve: a slowloris closed {held:?} after its half head (timeout 500 ms)");
    assert!(
        held >= Duration::from_millis(400) && held < Duration::from_secs(5),
        "closed {held:?} after its half head, with a 500 ms header read timeout"
    );
    let page = clients::curl(&app.url("/"));
    assert_eq!(page.text().trim(), "hello");
}

#[test]
fn while_running_a_slowloris_that_keeps_sending_header_lines_is_closed_at_the_header_read_timeout()
{
    if !require_python(&[("socket", "python3")]) {
        return;
    }
    let app = App::start(Server::Serve, &[("SERVE_HEADER_READ_TIMEOUT", "500ms")]);
    // A line every 100 ms: the connection is never quiet for long, yet its head never ends.
    let slowloris = clients::trickling_slowloris(app.address, Duration::from_millis(100));
    let sent = slowloris.wait_for_stdout("half a head sent");
    let closed = slowloris.wait_for_stdout("closed");
    let held = since(closed.at, sent.at);
    eprintln!(
        "serve: a trickling slowloris closed {held:?} after its half head (timeout 500 ms): {}",
        closed.text
    );
    assert!(
        held >= Duration::from_millis(400) && held < Duration::from_secs(5),
        "closed {held:?} after its half head, with a 500 ms header read timeout"
    );
    let page = clients::curl(&app.url("/"));
    assert_eq!(page.text().trim(), "hello");
}

// ---- Fresh connections at stop-accepting ----------------------------------------------------

#[test]
fn a_connection_made_during_pre_stop_is_served_a_request_sent_after_stop_accepting() {
    if !require_python(&[("http.client", "python3")]) {
        return;
    }
    let mut app = App::start(Server::Serve, &[]);
    app.sigterm();
    app.seen("pre-stop");
    let mut client = clients::http1(app.address);
    client.wait_for_stdout("connected");
    app.seen("stop accepting");
    client.tell("/");
    let answer = client.wait_for_stdout("answer");
    let exit = app.wait_exit();
    assert!(
        answer.text.contains("status=200 connection=close"),
        "{}",
        answer.text
    );
    exit.finished.assert_code(0);
}

#[test]
fn a_connection_queued_behind_max_connections_is_served_after_stop_accepting() {
    if !require_python(&[("http.client", "python3")]) {
        return;
    }
    let mut app = App::start(Server::Serve, &[("SERVE_MAX_CONNECTIONS", "1")]);
    let mut busy = clients::http1(app.address);
    busy.wait_for_stdout("connected");
    busy.tell("/slow?ms=3000");
    app.printed("slow request started");
    // The kernel completes the handshake; serve, at its limit, leaves it in the accept queue.
    let mut queued = clients::http1(app.address);
    queued.wait_for_stdout("connected");
    app.sigterm();
    app.seen("stop accepting");
    queued.tell("/");
    let answer = queued.wait_for_stdout("answer");
    let slow = busy.wait_for_stdout("answer");
    let exit = app.wait_exit();
    // One connection at stop-accepting: the queued one had not been accepted.
    exit.finished
        .assert_stderr_has("stop accepting: 1 request, 1 connection in flight");
    assert!(answer.text.contains("status=200"), "{}", answer.text);
    assert!(answer.text.contains("hello"), "{}", answer.text);
    assert!(
        slow.text.contains("status=200") && slow.text.contains("slow done"),
        "{}",
        slow.text
    );
    exit.finished.assert_code(0);
}

// ---- Trailers -------------------------------------------------------------------------------

#[test]
fn http2_response_trailers_reach_the_client() {
    if !require_programs(&[("nghttp", "nghttp2-client")]) {
        return;
    }
    let mut app = App::start(Server::Serve, &[("GRACEFUL_PRE_STOP", "0s")]);
    let nghttp = clients::nghttp(&[&app.url("/trailers")]).wait_exit();
    app.sigterm();
    let exit = app.wait_exit();
    assert_eq!(nghttp.code, Some(0), "{nghttp:#?}");
    assert!(
        nghttp.position(":status: 200").is_some(),
        "{}",
        nghttp.text()
    );
    let data = nghttp.position("recv DATA frame");
    let trailer = nghttp.position("x-checksum: 42");
    assert!(
        matches!((data, trailer), (Some(data), Some(trailer)) if data < trailer),
        "no x-checksum trailer after the data:\n{}",
        nghttp.text()
    );
    exit.finished.assert_code(0);
}

// ---- Upgrades during pre-stop ---------------------------------------------------------------

/// Opens a WebSocket during pre-stop and has it echo; it then closes with 1001 at
/// stop-accepting, and the process exits 0.
fn websocket_opened_during_pre_stop_echoes(server: Server) {
    let mut app = App::start(server, &[]);
    app.sigterm();
    app.seen("pre-stop");
    let mut socket = clients::websocket(app.address);
    socket.wait_for_stdout("open");
    socket.tell("opened during pre-stop");
    socket.wait_for_stdout("echo: opened during pre-stop");
    let closed = socket.wait_for_stdout("closed");
    let exit = app.wait_exit();
    assert!(closed.text.contains("code=1001"), "{}", closed.text);
    exit.finished.assert_code(0);
}

#[test]
fn a_websocket_opened_during_pre_stop_is_accepted_and_echoes() {
    if !require_python(&[("websockets", "python3-websockets")]) {
        return;
    }
    websocket_opened_during_pre_stop_echoes(Server::Serve);
}

#[test]
fn a_websocket_opened_during_pre_stop_is_accepted_through_axum_and_track_layer() {
    if !require_python(&[("websockets", "python3-websockets")]) {
        return;
    }
    websocket_opened_during_pre_stop_echoes(Server::Axum);
}

// ---- An HTTP/2 connection that never sends a request ----------------------------------------

/// An HTTP/2 client that sent its preface and nothing more is connected; SIGTERM. Returns when
/// its connection closed, when the test saw `stop accepting`, and the exit.
fn silent_http2_through_a_shutdown(server: Server) -> (Line, Instant, Exit) {
    let mut app = App::start(server, &[("GRACEFUL_DRAIN_TIMEOUT", "6s")]);
    let client = clients::silent_http2(app.address);
    // The server's SETTINGS: it took the connection as HTTP/2.
    client.wait_for_stdout("frame: RemoteSettingsChanged");
    app.sigterm();
    let stop_accepting = app.seen("stop accepting");
    let closed = client.wait_for_stdout("closed");
    (closed, stop_accepting, app.wait_exit())
}

#[test]
fn a_silent_http2_connection_is_closed_within_the_first_request_window() {
    if !require_python(&[("h2", "python3-h2")]) {
        return;
    }
    let (closed, stop_accepting, exit) = silent_http2_through_a_shutdown(Server::Serve);
    let after = since(closed.at, stop_accepting);
    eprintln!(
        "serve: silent HTTP/2 connection {} {after:?} after stop accepting; exit {:?} after it",
        closed.text,
        since(exit.at, stop_accepting)
    );
    // It was a connection of serve's, counted at stop-accepting, and closed by serve: had it
    // been left to the exit, the drain would have timed out (exit 1).
    exit.finished
        .assert_stderr_has("stop accepting: 1 connection in flight");
    exit.finished.assert_code(0);
    assert!(
        after < FIRST_REQUEST_WINDOW + Duration::from_secs(1),
        "the silent connection was closed {after:?} after stop-accepting (window 1 s)"
    );
}

#[test]
fn axum_contrast_is_held_by_a_silent_http2_connection_until_the_drain_timeout() {
    if !require_python(&[("h2", "python3-h2")]) {
        return;
    }
    let (closed, stop_accepting, exit) = silent_http2_through_a_shutdown(Server::Axum);
    let after = since(exit.at, stop_accepting);
    eprintln!(
        "axum + TrackLayer: silent HTTP/2 connection {} {:?} after stop accepting; exit {after:?} \
         after it",
        closed.text,
        since(closed.at, stop_accepting)
    );
    exit.finished.assert_code(1);
    assert!(
        after > Duration::from_secs(5),
        "axum exited {after:?} after stop-accepting, before its 6 s drain timeout"
    );
}

// ---- A stuck request ------------------------------------------------------------------------

#[test]
fn a_stuck_request_is_named_in_the_report_and_the_exit_is_1() {
    if !require_python(&[("http.client", "python3")]) {
        return;
    }
    let mut app = App::start(Server::Serve, &[("GRACEFUL_DRAIN_TIMEOUT", "2s")]);
    let mut client = clients::http1(app.address);
    client.wait_for_stdout("connected");
    client.tell("/stuck");
    app.printed("stuck request started");
    app.sigterm();
    let exit = app.wait_exit();
    exit.finished.assert_code(1);
    exit.finished.assert_stderr_has("drain timed out");
    exit.finished.assert_stderr_has("serve_app::stuck x1");
    exit.finished.assert_stderr_has("http x1");
    let answer = client.wait_for_stdout("answer");
    assert!(answer.text.contains("error="), "{}", answer.text);
}
