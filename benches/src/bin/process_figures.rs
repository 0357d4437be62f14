//! Whole-process figures, interleaved so the machine's noise hits both sides alike:
//! start-up to READY and SIGTERM to exit for `stop_graceful` against `stop_plain`, and the drain
//! wake-up latency from `drain_wakeup`. Run `benches/process.sh` (release build).
//! `PROCESS_RUNS` sets the number of runs of each (default 40).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn sibling(name: &str) -> PathBuf {
    std::env::current_exe().unwrap().with_file_name(name)
}

/// Starts `name`, waits for READY, sends SIGTERM, waits for the exit: (start-up, stop).
fn start_and_stop(name: &str) -> (Duration, Duration) {
    let started = Instant::now();
    let mut child = Command::new(sibling(name))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|error| panic!("start {name}: {error}"));
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "READY", "{name} said {line:?}");
    let startup = started.elapsed();
    let signalled = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = child.wait().unwrap();
    let stop = signalled.elapsed();
    assert!(status.success(), "{name} exited with {status}");
    (startup, stop)
}

/// One run of `drain_wakeup` on `flavor`, the guard dropped by `dropper` (`thread` or `task`):
/// (the waker alone, the whole path to the first hook).
fn wakeup(flavor: &str, dropper: &str) -> (Duration, Duration) {
    let output = Command::new(sibling("drain_wakeup"))
        .env("FLAVOR", flavor)
        .env("DROPPER", dropper)
        .stderr(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    let figure = |label: &str| {
        let nanos: u64 = text
            .lines()
            .find_map(|line| line.strip_prefix(label))
            .unwrap_or_else(|| panic!("no {label} in {text:?}"))
            .trim()
            .parse()
            .unwrap();
        Duration::from_nanos(nanos)
    };
    (figure("WAKER_NS"), figure("WAKEUP_NS"))
}

/// Median, 10th and 90th percentile.
fn summary(samples: &mut [Duration]) -> (Duration, Duration, Duration) {
    samples.sort();
    let at = |fraction: f64| samples[((samples.len() - 1) as f64 * fraction).round() as usize];
    (at(0.5), at(0.1), at(0.9))
}

fn show(label: &str, samples: &mut [Duration]) -> Duration {
    let (median, p10, p90) = summary(samples);
    let micros = |duration: Duration| duration.as_secs_f64() * 1e6;
    println!(
        "{label:<48} median {:>8.1} µs   p10 {:>8.1} µs   p90 {:>8.1} µs",
        micros(median),
        micros(p10),
        micros(p90)
    );
    median
}

fn main() {
    let runs: usize = std::env::var("PROCESS_RUNS")
        .ok()
        .and_then(|runs| runs.parse().ok())
        .unwrap_or(40);
    let (mut graceful_start, mut graceful_stop, mut plain_start, mut plain_stop) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut startup_ratios = Vec::new();
    for run in 0..runs {
        // Each side goes first in every other pair, so that neither always runs on a warmer
        // machine.
        let ((graceful_up, graceful_down), (plain_up, plain_down)) = if run % 2 == 0 {
            let graceful = start_and_stop("stop_graceful");
            (graceful, start_and_stop("stop_plain"))
        } else {
            let plain = start_and_stop("stop_plain");
            (start_and_stop("stop_graceful"), plain)
        };
        graceful_start.push(graceful_up);
        graceful_stop.push(graceful_down);
        plain_start.push(plain_up);
        plain_stop.push(plain_down);
        startup_ratios.push(graceful_up.as_secs_f64() / plain_up.as_secs_f64());
        let first = if run % 2 == 0 { "graceful" } else { "plain" };
        println!(
            "pair {run:>2} ({first} first): start-up graceful {:.1} µs, plain {:.1} µs",
            graceful_up.as_secs_f64() * 1e6,
            plain_up.as_secs_f64() * 1e6
        );
    }
    // Apart from the pairs: a start right after one of these ran 0.2-0.3 ms slower.
    const WAKEUPS: [(&str, &str); 4] = [
        ("current_thread", "thread"),
        ("current_thread", "task"),
        ("multi_thread", "thread"),
        ("multi_thread", "task"),
    ];
    let mut wakeups: Vec<Vec<(Duration, Duration)>> = vec![Vec::new(); WAKEUPS.len()];
    for _ in 0..runs {
        for (figures, (flavor, dropper)) in wakeups.iter_mut().zip(WAKEUPS) {
            figures.push(wakeup(flavor, dropper));
        }
    }
    println!("{runs} interleaved runs each");
    let plain_startup = show("start-up to READY, plain #[tokio::main]", &mut plain_start);
    let graceful_startup = show("start-up to READY, #[graceful::main]", &mut graceful_start);
    let plain_exit = show("SIGTERM to exit, plain #[tokio::main]", &mut plain_stop);
    let graceful_exit = show("SIGTERM to exit, #[graceful::main]", &mut graceful_stop);
    startup_ratios.sort_by(f64::total_cmp);
    let ratio_at = |fraction: f64| {
        startup_ratios[((startup_ratios.len() - 1) as f64 * fraction).round() as usize]
    };
    println!(
        "start-up ratio graceful/plain: {:.3} (of the medians); per pair: median {:.3}, p10 {:.3}, p90 {:.3}",
        graceful_startup.as_secs_f64() / plain_startup.as_secs_f64(),
        ratio_at(0.5),
        ratio_at(0.1),
        ratio_at(0.9),
    );
    println!(
        "stop difference graceful - plain: {:.3} ms",
        (graceful_exit.as_secs_f64() - plain_exit.as_secs_f64()) * 1e3
    );
    for (figures, (flavor, dropper)) in wakeups.iter().zip(WAKEUPS) {
        let mut whole: Vec<Duration> = figures.iter().map(|figure| figure.1).collect();
        show(
            &format!("{flavor}: guard dropped by a {dropper} to first hook"),
            &mut whole,
        );
        if dropper == "thread" {
            let mut waker: Vec<Duration> = figures.iter().map(|figure| figure.0).collect();
            let mut added: Vec<Duration> = figures
                .iter()
                .map(|(waker, whole)| whole.saturating_sub(*waker))
                .collect();
            show(
                &format!("{flavor}: waker alone (Notify, from a thread)"),
                &mut waker,
            );
            show(
                &format!("{flavor}: graceful's part (difference, per run)"),
                &mut added,
            );
        }
    }
}
