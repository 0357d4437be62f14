//! examples/worker_postgres.rs against a real PostgreSQL (Debian's, started by scripts/postgres
//! under /var/lib/graceful-pg-test on a loopback port, destroyed afterwards): restarts under load
//! lose no job, apply none twice and strand none; plain tokio and jobs that ignore the deadline
//! strand leases; a dead server stops each worker with exit 1 naming its consumer, and nothing is
//! lost once it is back. `WORKER_RESTARTS=100` runs the long form (RELIABILITY.md).

#[path = "worker_postgres/postgres.rs"]
mod postgres;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use graceful_tests_integration::{cpu_cgroup, Finished, Process, Signal};
use postgres::{Db, Postgres};

const WORKER: &str = env!("CARGO_BIN_EXE_worker_postgres");
const PLAIN_WORKER: &str = env!("CARGO_BIN_EXE_plain_worker_postgres");

/// The drain's deadline the workers run with; jobs longer than this are handed back.
const DRAIN_MS: i32 = 1000;

/// One test at a time owns the one private server: they would also share its two cores.
static SERVER: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    SERVER
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Starts a worker process called `name`; `extra` adds or overrides settings.
fn start_worker(binary: &str, name: &str, url: &str, extra: &[(&str, &str)]) -> Process {
    let drain = format!("{DRAIN_MS}ms");
    let mut env = vec![
        ("DATABASE_URL", url),
        ("WORKER", name),
        ("CONCURRENCY", "16"),
        ("LEASE_SECONDS", "30"),
        ("POLL_MS", "50"),
        ("GRACEFUL_DRAIN_TIMEOUT", drain.as_str()),
        ("GRACEFUL_ABANDON_TIMEOUT", "1s"),
    ];
    for (key, value) in extra {
        env.retain(|(existing, _)| existing != key);
        env.push((key, value));
    }
    // Under scripts/adverse/starved-cpus, in the CPU-limited cgroup of its slot (a0, a1… in a).
    let slot = name.trim_end_matches(|c: char| c.is_ascii_digit());
    let worker = Process::start_in(name, binary, &[], &env, cpu_cgroup(slot).as_deref());
    worker.wait_for_stderr("ready");
    worker
}

/// A worker's run, as its stderr tells it.
struct Run {
    name: String,
    finished: Finished,
}

impl Run {
    /// The jobs it handed back at the deadline.
    fn handed_back(&self) -> Vec<i64> {
        self.finished
            .stderr
            .lines()
            .filter_map(|line| line.strip_suffix(": handed back")?.strip_prefix("job "))
            .map(|id| id.parse().unwrap())
            .collect()
    }

    /// "leasing" lines written after graceful's "shutdown begun" line: leases taken after the
    /// signal.
    fn leases_after_signal(&self) -> usize {
        let lines: Vec<&str> = self.finished.stderr.lines().collect();
        let Some(begun) = lines
            .iter()
            .position(|line| line.contains("shutdown begun"))
        else {
            return 0;
        };
        lines[begun..]
            .iter()
            .filter(|line| **line == "leasing")
            .count()
    }
}

fn stop(name: &str, mut worker: Process) -> Run {
    worker.signal(Signal::SIGTERM);
    Run {
        name: name.to_owned(),
        finished: worker.wait_exit(),
    }
}

/// Up to five items, then how many more: failures print a sample, never thousands of lines.
fn sample<T: std::fmt::Debug>(items: &[T]) -> String {
    let shown: Vec<String> = items
        .iter()
        .take(5)
        .map(|item| format!("{item:?}"))
        .collect();
    if items.len() > 5 {
        format!("{} and {} more", shown.join(", "), items.len() - 5)
    } else {
        shown.join(", ")
    }
}

/// What the tables say once the work is over.
#[derive(Debug)]
struct Outcome {
    jobs: i64,
    done: i64,
    /// Jobs whose effect was applied more than once, with the count.
    twice: Vec<(i64, i64)>,
    /// Jobs whose effect was never applied.
    lost: Vec<i64>,
    /// Jobs still leased.
    leased: Vec<i64>,
    handed_back: i64,
    leases: i64,
}

impl Outcome {
    fn read(db: &Db) -> Outcome {
        let effects: Vec<(i64, i64)> = db.rows(
            "SELECT j.id, count(e.job_id) FROM jobs j LEFT JOIN effects e ON e.job_id = j.id
              GROUP BY j.id HAVING count(e.job_id) <> 1 ORDER BY j.id",
        );
        Outcome {
            jobs: db.count("SELECT count(*) FROM jobs"),
            done: db.count("SELECT count(*) FROM jobs WHERE state = 'done'"),
            twice: effects.iter().copied().filter(|(_, n)| *n > 1).collect(),
            lost: effects
                .iter()
                .filter(|(_, n)| *n == 0)
                .map(|(id, _)| *id)
                .collect(),
            leased: db.ids("SELECT id FROM jobs WHERE lease_token IS NOT NULL ORDER BY id"),
            handed_back: db.count("SELECT coalesce(sum(handed_back), 0) FROM jobs"),
            leases: db.count("SELECT count(*) FROM leases"),
        }
    }

    fn line(&self) -> String {
        format!(
            "jobs {}, done {}, done twice {}, lost {}, stranded {}, handed back {}, leases {}",
            self.jobs,
            self.done,
            self.twice.len(),
            self.lost.len(),
            self.leased.len(),
            self.handed_back,
            self.leases
        )
    }

    /// Every job done, its effect applied exactly once, none left leased.
    fn assert_exactly_once(&self, what: &str) {
        assert!(
            self.twice.is_empty() && self.lost.is_empty() && self.leased.is_empty(),
            "{what}: {}\n  done twice (job, effects): {}\n  never done: {}\n  still leased: {}",
            self.line(),
            sample(&self.twice),
            sample(&self.lost),
            sample(&self.leased)
        );
        assert_eq!(self.done, self.jobs, "{what}: {}", self.line());
    }
}

/// Job lengths for the producer: mostly short (50-400 ms), one in eight long (1.5-3 s, longer
/// than the drain), from a fixed seed so that runs are alike.
struct Lengths(u64);

impl Iterator for Lengths {
    type Item = i32;
    fn next(&mut self) -> Option<i32> {
        // xorshift64: good enough to mix lengths, no dependency.
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        // The high bits: xorshift's low ones are the weakest.
        let bits = self.0 >> 32;
        let spread = i32::try_from(bits % 1000).unwrap();
        Some(if bits % 8 == 0 {
            1500 + spread * 3 / 2
        } else {
            50 + spread * 7 / 20
        })
    }
}

/// Jobs leased by the worker $1 that will still run 1.5 s from now (the lease is 30 s).
const HOLDS_A_LONG_JOB: &str = "
    SELECT count(*) FROM jobs
     WHERE leased_by = $1 AND state = 'queued' AND lease_token IS NOT NULL
       AND leased_until - interval '30 s' + duration_ms * interval '1 ms' > now() + interval '1.5 s'";

const NOT_DONE_OF: &str = "SELECT count(*) FROM jobs WHERE id = ANY($1) AND state <> 'done'";

fn restarts() -> usize {
    std::env::var("WORKER_RESTARTS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(10)
}

#[test]
fn restarts_under_load_do_every_job_exactly_once_and_strand_none() {
    let _turn = one_at_a_time();
    let Some(server) = Postgres::start() else {
        return;
    };
    let url = server.url.clone();
    let db = Db::connect(&url);
    let began = Instant::now();

    let mut workers = [
        Some(start_worker(WORKER, "a0", &url, &[])),
        Some(start_worker(WORKER, "b0", &url, &[])),
    ];
    let mut names = [String::from("a0"), String::from("b0")];
    // 20 jobs a second keep about 10 of the 32 slots busy, and a long job in flight on each
    // worker most of the time.
    let producer = db.produce(Duration::from_millis(50), Lengths(0x9e37_79b9_7f4a_7c15));
    db.wait_until("the first jobs are done", Duration::from_secs(30), || {
        db.count("SELECT count(*) FROM jobs WHERE state = 'done'") >= 20
    });

    let mut runs = Vec::new();
    // (job, the process that handed it back)
    let mut hand_backs: Vec<(i64, String)> = Vec::new();
    let restarts = restarts();
    for restart in 1..=restarts {
        let slot = (restart - 1) % 2;
        // Each restart lands while the worker holds work that will outlast its drain.
        db.wait_until(
            "the worker holds a job that outlasts the drain",
            Duration::from_secs(30),
            || db.count_with(HOLDS_A_LONG_JOB, names[slot].as_str()) > 0,
        );
        let run = stop(&names[slot], workers[slot].take().unwrap());
        let handed: Vec<i64> = run.handed_back();
        hand_backs.extend(handed.iter().map(|id| (*id, run.name.clone())));
        runs.push(run);
        names[slot] = format!("{}{restart}", ["a", "b"][slot]);
        let worker = start_worker(WORKER, &names[slot], &url, &[]);
        worker.wait_for_stderr("leasing");
        workers[slot] = Some(worker);
        // Spacing: the next restart stops the other worker, which may hold these jobs now.
        db.wait_until(
            "the jobs handed back are done elsewhere",
            Duration::from_secs(30),
            || db.count_with(NOT_DONE_OF, handed.as_slice()) == 0,
        );
    }
    let produced = db.stop_producing(producer);
    db.wait_until("every job is done", Duration::from_secs(60), || {
        db.count("SELECT count(*) FROM jobs WHERE state <> 'done'") == 0
    });
    for slot in 0..2 {
        runs.push(stop(&names[slot], workers[slot].take().unwrap()));
    }
    let took = began.elapsed();

    let outcome = Outcome::read(&db);
    let done_by: BTreeMap<i64, (i32, String)> = db
        .rows::<(i64, i32, String)>(
            "SELECT id, duration_ms, done_by FROM jobs WHERE handed_back > 0 ORDER BY id",
        )
        .into_iter()
        .map(|(id, duration, by)| (id, (duration, by)))
        .collect();
    let finished_elsewhere: Vec<i64> = hand_backs
        .iter()
        .filter(|(id, by)| done_by.get(id).is_some_and(|(_, done)| done != by))
        .map(|(id, _)| *id)
        .collect();
    let long_finished_elsewhere = finished_elsewhere
        .iter()
        .filter(|id| done_by[id].0 > DRAIN_MS)
        .count();
    let after_signal: Vec<(String, usize)> = runs
        .iter()
        .map(|run| (run.name.clone(), run.leases_after_signal()))
        .filter(|(_, count)| *count > 0)
        .collect();
    let failed_exits: Vec<(String, Option<i32>)> = runs
        .iter()
        .filter(|run| run.finished.code != Some(0))
        .map(|run| (run.name.clone(), run.finished.code))
        .collect();
    println!(
        "WORKER_POSTGRES restarts {restarts}: produced {produced}, {}; handed back by a \
         stopping worker {}, of which finished by another worker {} (long {}); leases after a \
         signal {}; exits not 0: {}; took {took:.1?}",
        outcome.line(),
        hand_backs.len(),
        finished_elsewhere.len(),
        long_finished_elsewhere,
        after_signal.len(),
        failed_exits.len(),
    );

    assert!(
        failed_exits.is_empty(),
        "exits not 0: {}\nfirst one's stderr:\n{}",
        sample(&failed_exits),
        runs.iter()
            .find(|run| run.finished.code != Some(0))
            .map(|run| run.finished.stderr.as_str())
            .unwrap_or_default()
    );
    assert_eq!(outcome.jobs, i64::try_from(produced).unwrap());
    outcome.assert_exactly_once("restarts under load");
    assert!(
        after_signal.is_empty(),
        "workers leased after their signal (worker, leases): {}",
        sample(&after_signal)
    );
    // Every lease ended in its job's completion or its hand-back: none expired, none was
    // taken over.
    assert_eq!(
        outcome.leases,
        outcome.done + outcome.handed_back,
        "leases that neither completed nor were handed back: {}",
        outcome.line()
    );
    assert_eq!(
        outcome.handed_back,
        i64::try_from(hand_backs.len()).unwrap()
    );
    assert!(
        long_finished_elsewhere > 0,
        "no long job was handed back and finished by another worker: {}",
        outcome.line()
    );
}

/// What a SIGTERM leaves behind while a worker holds four jobs of 10 s (the drain is 1 s).
struct Interrupted {
    code: Option<i32>,
    stranded: i64,
    handed_back: i64,
    /// The least time left on a stranded lease, in seconds: until then no worker may take it.
    held_for: f64,
}

fn interrupt(db: &Db, url: &str, binary: &str, extra: &[(&str, &str)]) -> Interrupted {
    db.execute("DROP TABLE IF EXISTS jobs, effects, leases"); // the worker makes them afresh
    let worker = start_worker(binary, "w", url, &[&[("CONCURRENCY", "4")], extra].concat());
    db.execute("INSERT INTO jobs (duration_ms) SELECT 10000 FROM generate_series(1, 8)");
    db.wait_until(
        "the worker holds four jobs",
        Duration::from_secs(30),
        || db.count("SELECT count(*) FROM jobs WHERE lease_token IS NOT NULL") == 4,
    );
    let run = stop("w", worker);
    Interrupted {
        code: run.finished.code,
        stranded: db.count(
            "SELECT count(*) FROM jobs WHERE state = 'queued' AND lease_token IS NOT NULL
                AND leased_until > now()",
        ),
        handed_back: db.count("SELECT coalesce(sum(handed_back), 0) FROM jobs"),
        held_for: db.seconds(
            "SELECT coalesce(extract(epoch FROM min(leased_until) - now())::float8, 0)
               FROM jobs WHERE lease_token IS NOT NULL",
        ),
    }
}

#[test]
fn plain_tokio_and_jobs_that_ignore_the_deadline_strand_their_leases() {
    let _turn = one_at_a_time();
    let Some(server) = Postgres::start() else {
        return;
    };
    let db = Db::connect(&server.url);
    let graceful = interrupt(&db, &server.url, WORKER, &[]);
    let plain = interrupt(&db, &server.url, PLAIN_WORKER, &[]);
    let ignoring = interrupt(&db, &server.url, WORKER, &[("IGNORE_DEADLINE", "1")]);
    for (what, run) in [
        ("graceful", &graceful),
        ("plain tokio", &plain),
        ("graceful, jobs ignore the deadline", &ignoring),
    ] {
        println!(
            "WORKER_POSTGRES contrast, {what}: 4 jobs of 10 s held at SIGTERM; exit {:?}, \
             stranded {} (leased for {:.0} s more), handed back {}",
            run.code, run.stranded, run.held_for, run.handed_back
        );
    }
    assert_eq!(
        (graceful.code, graceful.stranded, graceful.handed_back),
        (Some(0), 0, 4)
    );
    // Killed by the signal where it stood: its jobs stay leased until the lease runs out.
    assert_eq!(
        (plain.code, plain.stranded, plain.handed_back),
        (None, 4, 0)
    );
    assert!(plain.held_for > 20.0, "{}", plain.held_for);
    // Aborted after abandon_timeout without releasing: the same, and the exit says so.
    assert_eq!(
        (ignoring.code, ignoring.stranded, ignoring.handed_back),
        (Some(1), 4, 0)
    );
}

#[test]
fn a_dead_server_stops_each_worker_with_exit_1_and_nothing_is_lost() {
    let _turn = one_at_a_time();
    let Some(server) = Postgres::start() else {
        return;
    };
    let db = Db::connect(&server.url);
    // A short lease: the jobs the dead workers held come back once it expires.
    let lease = [("CONCURRENCY", "8"), ("LEASE_SECONDS", "3")];
    let a = start_worker(WORKER, "a0", &server.url, &lease);
    let b = start_worker(WORKER, "b0", &server.url, &lease);
    db.execute(
        "INSERT INTO jobs (duration_ms) SELECT 100 + (g * 37) % 400 FROM generate_series(1, 300) g",
    );
    db.wait_until(
        "both workers have done jobs",
        Duration::from_secs(30),
        || db.count("SELECT count(DISTINCT done_by) FROM jobs WHERE state = 'done'") == 2,
    );

    let stopped = Instant::now();
    server.stop("fast");
    let mut exits = Vec::new();
    for (name, worker) in [("a0", a), ("b0", b)] {
        let finished = worker.wait_exit();
        let took = stopped.elapsed();
        let line = |needle: &str| {
            let last = finished
                .stderr
                .lines()
                .rev()
                .find(|line| line.contains(needle));
            last.unwrap_or_default().trim().to_owned()
        };
        println!(
            "WORKER_POSTGRES server stopped: {name} exited {:?} {took:.1?} later: {}; {}",
            finished.code,
            line("essential task"),
            line("drain:")
        );
        exits.push((name, finished, took));
    }
    for (name, finished, took) in &exits {
        assert_eq!(finished.code, Some(1), "{name}:\n{}", finished.stderr);
        finished.assert_stderr_has("essential task \"consumer\" failed: leasing jobs: ");
        // acquire_timeout 3 s, then the drain (1 s) and abandon_timeout (1 s): an order of
        // magnitude above that.
        assert!(*took < Duration::from_secs(30), "{name} took {took:?}");
    }

    server.start_again();
    let a = start_worker(WORKER, "a1", &server.url, &lease);
    let b = start_worker(WORKER, "b1", &server.url, &lease);
    db.wait_until("every job is done", Duration::from_secs(60), || {
        db.count("SELECT count(*) FROM jobs WHERE state <> 'done'") == 0
    });
    let runs = [stop("a1", a), stop("b1", b)];
    let outcome = Outcome::read(&db);
    let recovered = db.count(
        "SELECT count(*) FROM (SELECT job_id FROM leases GROUP BY job_id HAVING count(*) > 1) l",
    );
    println!(
        "WORKER_POSTGRES after the server came back: {}; leased again after their lease \
         expired {recovered}",
        outcome.line()
    );
    for run in &runs {
        assert_eq!(
            run.finished.code,
            Some(0),
            "{}:\n{}",
            run.name,
            run.finished.stderr
        );
    }
    assert_eq!(outcome.jobs, 300);
    outcome.assert_exactly_once("after the server came back");
}

#[test]
fn a_bad_database_url_is_exit_78_naming_it() {
    let worker = Process::start("worker", WORKER, &[], &[("DATABASE_URL", "mysql:/nowhere")]);
    let finished = worker.wait_exit();
    finished.assert_code(78);
    finished.assert_stderr_has("DATABASE_URL=\"mysql:/nowhere\"");
}

/// The plain worker of the contrast and the bench runs the example's statements, word for word.
#[test]
fn the_plain_worker_runs_the_examples_statements() {
    let example = include_str!("../../examples/worker_postgres.rs");
    let plain = include_str!("../src/bin/plain_worker_postgres.rs");
    for name in ["SCHEMA", "LEASE", "COMPLETE", "EFFECT", "ACQUIRE_TIMEOUT"] {
        // A string ends at its closing quote; SCHEMA's statements end in `;` too.
        let end = if name == "ACQUIRE_TIMEOUT" {
            ";\n"
        } else {
            "\";\n"
        };
        let statement = |source: &str| {
            let start = source
                .find(&format!("const {name}: "))
                .unwrap_or_else(|| panic!("no const {name}"));
            source[start..].split(end).next().unwrap().to_owned()
        };
        assert_eq!(statement(example), statement(plain), "{name} differs");
    }
}

/// SIGKILL mid-drain (issue 22), run by scripts/adverse/sigkill-mid-drain: the lease a killed
/// worker held, its jobs' length, and the drain's line the kill waits for.
const KILL_LEASE_SECONDS: f64 = 3.0;
const KILL_JOB_MS: i32 = 2000;
const KILL_POLL_MS: f64 = 50.0;

fn sigkill_runs() -> usize {
    std::env::var("SIGKILL_RUNS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(10)
}

/// What one worker's four cut jobs cost: the drain's word on them, and how long after their
/// first lease another worker leased them again (PostgreSQL's clock, both ends).
struct Cut {
    drain_line: String,
    code: Option<i32>,
    /// Seconds from each job's first lease to its second, least and most.
    leased_again_after: (f64, f64),
    outcome: Outcome,
    /// Effects the first worker applied (the jobs were cut before their end: none).
    applied_by_first: i64,
}

/// A worker ("first") holds four jobs of 2 s on a 3 s lease when it gets SIGTERM; once its drain
/// has begun (its `stop accepting:` line), it is SIGKILLed when `kill`, else left to its drain
/// (1 s, then it hands them back). A second worker, started once the first holds every job, takes
/// them over; the tables then say what was done, twice or never.
fn cut_jobs(db: &Db, url: &str, kill: bool, cycle: usize) -> Cut {
    db.execute("DROP TABLE IF EXISTS jobs, effects, leases"); // the worker makes them afresh
    let lease = KILL_LEASE_SECONDS.to_string();
    let settings = [("CONCURRENCY", "4"), ("LEASE_SECONDS", lease.as_str())];
    let first_name = format!("killed{cycle}");
    let mut first = start_worker(WORKER, &first_name, url, &settings);
    db.execute(&format!(
        "INSERT INTO jobs (duration_ms) SELECT {KILL_JOB_MS} FROM generate_series(1, 4)"
    ));
    db.wait_until(
        "the first worker holds the four jobs",
        Duration::from_secs(30),
        || db.count("SELECT count(*) FROM jobs WHERE lease_token IS NOT NULL") == 4,
    );
    let second = start_worker(WORKER, &format!("next{cycle}"), url, &settings);
    first.signal(Signal::SIGTERM);
    let drain_line = first.wait_for_stderr("stop accepting:").text;
    if kill {
        first.signal(Signal::SIGKILL);
    }
    let code = first.wait_exit().code;
    db.wait_until("every job is done", Duration::from_secs(30), || {
        db.count("SELECT count(*) FROM jobs WHERE state <> 'done'") == 0
    });
    let run = stop("next", second);
    assert_eq!(run.finished.code, Some(0), "{}", run.finished.stderr);
    // From each job's first lease to its second (0 when it had one).
    let gaps: Vec<f64> = db
        .rows::<(f64,)>(
            "SELECT coalesce(extract(epoch FROM (array_agg(at ORDER BY at))[2] - min(at)), 0)::float8
               FROM leases GROUP BY job_id ORDER BY job_id",
        )
        .into_iter()
        .map(|(gap,)| gap)
        .collect();
    let least = gaps.iter().copied().fold(f64::INFINITY, f64::min);
    let most = gaps.iter().copied().fold(0.0, f64::max);
    Cut {
        drain_line: drain_line.trim().to_owned(),
        code,
        leased_again_after: (least, most),
        outcome: Outcome::read(db),
        applied_by_first: db.count_with(
            "SELECT count(*) FROM effects WHERE worker = $1",
            first_name.as_str(),
        ),
    }
}

impl Cut {
    /// The tracked calls in flight at the drain's start, per its `stop accepting:` line.
    fn tracked_at_drain(&self) -> usize {
        self.drain_line
            .split(" tracked call")
            .next()
            .and_then(|before| before.rsplit(' ').next())
            .and_then(|count| count.parse().ok())
            .unwrap_or(0)
    }

    fn line(&self) -> String {
        format!(
            "exit {:?}; {}; leased again after {:.2}-{:.2} s (lease {KILL_LEASE_SECONDS} s); \
             effects by the first worker {}; drain said {:?}",
            self.code,
            self.outcome.line(),
            self.leased_again_after.0,
            self.leased_again_after.1,
            self.applied_by_first,
            self.drain_line
        )
    }
}

#[test]
#[ignore = "run by scripts/adverse/sigkill-mid-drain"]
fn sigkill_mid_drain_strands_leases_until_they_expire_and_applies_nothing_twice() {
    let _turn = one_at_a_time();
    let Some(server) = Postgres::start() else {
        return;
    };
    let db = Db::connect(&server.url);
    let runs = sigkill_runs();
    let began = Instant::now();
    let kills: Vec<Cut> = (0..runs)
        .map(|cycle| cut_jobs(&db, &server.url, true, cycle))
        .collect();
    let took = began.elapsed();
    // The SIGTERM path under the same settings: the drain's deadline hands the jobs back.
    let handed = cut_jobs(&db, &server.url, false, runs);
    for (cycle, cut) in kills.iter().enumerate() {
        println!("WORKER_POSTGRES SIGKILL {cycle}: {}", cut.line());
    }
    println!("WORKER_POSTGRES SIGTERM alone: {}", handed.line());
    let least = kills
        .iter()
        .map(|cut| cut.leased_again_after.0)
        .fold(f64::INFINITY, f64::min);
    let most = kills
        .iter()
        .map(|cut| cut.leased_again_after.1)
        .fold(0.0, f64::max);
    println!(
        "WORKER_POSTGRES SIGKILL mid-drain: {runs} kills in {took:.1?}, jobs {}, done {}, twice \
         {}, lost {}, left leased {}, leases {}; leased again {least:.2}-{most:.2} s after \
         their first lease (lease {KILL_LEASE_SECONDS} s); SIGTERM alone: leased again after \
         {:.2}-{:.2} s, handed back {}",
        kills.iter().map(|cut| cut.outcome.jobs).sum::<i64>(),
        kills.iter().map(|cut| cut.outcome.done).sum::<i64>(),
        kills
            .iter()
            .map(|cut| cut.outcome.twice.len())
            .sum::<usize>(),
        kills
            .iter()
            .map(|cut| cut.outcome.lost.len())
            .sum::<usize>(),
        kills
            .iter()
            .map(|cut| cut.outcome.leased.len())
            .sum::<usize>(),
        kills.iter().map(|cut| cut.outcome.leases).sum::<i64>(),
        handed.leased_again_after.0,
        handed.leased_again_after.1,
        handed.outcome.handed_back,
    );

    // At most the lease, one poll of the second worker, and slack for a busy machine: an order
    // of magnitude, not a timing.
    let ceiling = KILL_LEASE_SECONDS + KILL_POLL_MS / 1000.0 + 2.0;
    for (cycle, cut) in kills.iter().enumerate() {
        let what = format!("kill {cycle}: {}", cut.line());
        assert_eq!(cut.code, None, "{what}");
        // The four jobs, and the consumer's own task while it returns.
        assert!(
            cut.tracked_at_drain() >= 4,
            "the kill did not land with the jobs running: {what}"
        );
        cut.outcome.assert_exactly_once(&what);
        assert_eq!(
            (
                cut.outcome.jobs,
                cut.outcome.handed_back,
                cut.applied_by_first
            ),
            (4, 0, 0),
            "{what}"
        );
        // Each job leased again once the killed worker's lease expired; never before (the lease
        // holds), nor long after. More than twice only where the next worker's own run of a job
        // outlasted its lease on a stalled machine and it leased the job again; its guarded
        // completion then applies the effect once all the same.
        assert!(cut.outcome.leases >= 8, "{what}");
        assert!(cut.leased_again_after.0 >= KILL_LEASE_SECONDS, "{what}");
        assert!(cut.leased_again_after.1 <= ceiling, "{what}");
    }
    // The contrast: SIGTERM alone hands the jobs back at the drain's deadline (1 s), long
    // before their lease would have expired.
    let what = format!("SIGTERM alone: {}", handed.line());
    assert_eq!(handed.code, Some(0), "{what}");
    handed.outcome.assert_exactly_once(&what);
    assert_eq!(handed.outcome.handed_back, 4, "{what}");
    assert!(handed.leased_again_after.1 < KILL_LEASE_SECONDS, "{what}");
}
