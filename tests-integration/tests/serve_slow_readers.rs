//! `graceful::serve` and clients that read nothing until the first-request window has ended:
//! every streamed body must still arrive whole. Body sizes are swept, since which one would be
//! cut depends on how much the kernel's socket buffers and hyper's own buffer hold.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use graceful_tests_integration::{Process, Signal, PATIENCE};

/// `serve`'s default first-request window, which serve_app keeps.
const FIRST_REQUEST_WINDOW: Duration = Duration::from_secs(1);

const KIB: usize = 1024;

/// What one client read of its `/bytes` response.
#[derive(Debug)]
struct Received {
    asked: usize,
    status: Option<u16>,
    body: usize,
    /// The last (zero-size) chunk arrived.
    ended: bool,
    error: Option<String>,
}

impl Received {
    fn is_whole(&self) -> bool {
        self.status == Some(200) && self.ended && self.body == self.asked && self.error.is_none()
    }
}

/// Connects and sends `GET /bytes?n=N`, reading nothing.
fn ask(address: SocketAddr, asked: usize) -> TcpStream {
    let mut stream = TcpStream::connect(address).expect("connect to serve_app");
    write!(
        stream,
        "GET /bytes?n={asked} HTTP/1.1\r\nHost: serve-app\r\n\r\n"
    )
    .expect("send the request");
    stream
}

/// Reads the whole response, decoding chunked encoding, and counts the body's bytes.
fn read_response(stream: TcpStream, asked: usize) -> Received {
    let mut received = Received {
        asked,
        status: None,
        body: 0,
        ended: false,
        error: None,
    };
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut reader = BufReader::new(stream);
    if let Err(error) = read_into(&mut reader, &mut received) {
        received.error = Some(error.to_string());
    }
    received
}

fn read_into(reader: &mut impl BufRead, received: &mut Received) -> io::Result<()> {
    let truncated = || io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed");
    let mut line = String::new();
    let mut next_line = |reader: &mut dyn BufRead| -> io::Result<String> {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Err(truncated());
        }
        Ok(line.trim_end().to_owned())
    };
    let status_line = next_line(reader)?;
    received.status = status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok());
    let mut chunked = false;
    loop {
        let header = next_line(reader)?;
        if header.is_empty() {
            break;
        }
        chunked |= header.eq_ignore_ascii_case("transfer-encoding: chunked");
    }
    if !chunked {
        return Err(io::Error::other(format!(
            "expected a chunked body after {status_line:?}"
        )));
    }
    loop {
        let size_line = next_line(reader)?;
        let size = usize::from_str_radix(size_line.split(';').next().unwrap_or(""), 16)
            .map_err(|error| io::Error::other(format!("chunk size {size_line:?}: {error}")))?;
        if size == 0 {
            received.ended = true;
            return Ok(());
        }
        let copied = io::copy(&mut reader.by_ref().take(size as u64), &mut io::sink())?;
        received.body += copied as usize;
        if copied < size as u64 {
            return Err(truncated());
        }
        next_line(reader)?;
    }
}

/// The case of issue 18: 28 clients ask for 1 MiB to 7.75 MiB, 256 KiB apart, and read nothing;
/// SIGTERM with no pre-stop; they read only once the first-request window has passed. Each body
/// must arrive whole, and the server exit 0.
#[test]
fn bodies_read_after_the_first_request_window_arrive_whole() {
    let sizes: Vec<usize> = (0..28).map(|step| 1024 * KIB + step * 256 * KIB).collect();
    let mut app = Process::fixture(
        "serve_app",
        &[
            ("SERVER", "serve"),
            ("GRACEFUL_PRE_STOP", "0s"),
            ("GRACEFUL_DRAIN_TIMEOUT", "20s"),
        ],
    );
    let address = app.listening_address();
    let clients: Vec<(usize, TcpStream)> = sizes
        .iter()
        .map(|&asked| (asked, ask(address, asked)))
        .collect();
    for asked in &sizes {
        app.wait_for_stdout(&format!("bytes request started n={asked}"));
    }

    app.signal(Signal::SIGTERM);
    app.wait_for_stderr("stop accepting");
    // The clients' part of the scenario: they read nothing until the window is over.
    std::thread::sleep(FIRST_REQUEST_WINDOW + Duration::from_millis(500));

    let readers: Vec<_> = clients
        .into_iter()
        .map(|(asked, stream)| std::thread::spawn(move || read_response(stream, asked)))
        .collect();
    let received: Vec<Received> = readers
        .into_iter()
        .map(|reader| reader.join().expect("a reader panicked"))
        .collect();
    let finished = app.wait_exit();

    let cut: Vec<&Received> = received.iter().filter(|r| !r.is_whole()).collect();
    println!(
        "{} bodies of {} to {} bytes: {} whole, {} not; server exit {:?}",
        received.len(),
        sizes[0],
        sizes[sizes.len() - 1],
        received.len() - cut.len(),
        cut.len(),
        finished.code
    );
    for r in cut.iter().take(5) {
        println!(
            "  asked {} bytes: status {:?}, got {} ({} short), last chunk {}, error {:?}",
            r.asked,
            r.status,
            r.body,
            r.asked.saturating_sub(r.body),
            if r.ended { "seen" } else { "missing" },
            r.error
        );
    }
    assert!(cut.is_empty(), "{} of the bodies were not whole", cut.len());
    finished.assert_code(0);
}
