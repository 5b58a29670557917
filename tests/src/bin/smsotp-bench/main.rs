//! The login-path benchmark (tests/bench.sh runs it; README "Benchmark").
//!
//! Side by side in one run, each round taking every module in turn:
//! pam_permit (the harness floor), pam_google_authenticator, and pam_sms
//! with smsotpd (outbox, and twilio-messaging against the fake Twilio on
//! loopback). Every login is a whole PAM transaction in a worker process
//! (pam_start_confdir .. pam_end, the module loaded anew each time, as in
//! sshd's per-connection child), answered as a person would: the TOTP code,
//! or the code read from the SMS the daemon sent. It prints figures and
//! their ratios to google-authenticator's; it asserts nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a measuring tool
#![allow(clippy::disallowed_methods)] // it measures real time: it is the clock's edge

mod answers;
mod libpam;
mod pending;
mod setup;
mod stats;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use setup::{Bench, Smsotpd};
use stats::{fmt, median, quantile, spread};

const USAGE: &str =
    "usage: smsotp-bench [--rounds N] [--logins N] [--at-once N] [--cold N] [--rss-users N] [--pending N]
  --rounds N     rounds of every measurement, modules interleaved (default 3)
  --logins N     logins in the 1-process run, and per process in the 4-process run (default 200)
  --at-once N    logins started at the same instant, one process each (default 1000)
  --cold N       whole-process logins (exec + one login), one after another (default 30)
  --rss-users N  users enrolled before the daemon's second memory figure (default 100000)
  --pending N    logins left at the code prompt before the third (default 10000)
  --only TEXT    measure only the modules whose label contains TEXT (ratios need a g-a row)
  --console-syslog  no private /dev/log: modules' syslog() goes wherever it goes on this
                 machine (with no /dev/log, google-authenticator's goes to the console)
Runs as root (a private mount namespace; nothing outside it changes).";

struct Options {
    rounds: usize,
    logins: usize,
    at_once: usize,
    cold: usize,
    rss_users: usize,
    pending: usize,
    only: Option<String>,
    console_syslog: bool,
}

impl Options {
    fn parse(args: &[String]) -> Result<Options, String> {
        let mut o = Options {
            rounds: 3,
            logins: 200,
            at_once: 1000,
            cold: 30,
            rss_users: 100_000,
            pending: 10_000,
            only: None,
            console_syslog: false,
        };
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let slot = match flag.as_str() {
                "--only" => {
                    o.only = Some(it.next().ok_or("--only needs a text")?.clone());
                    continue;
                }
                "--console-syslog" => {
                    o.console_syslog = true;
                    continue;
                }
                "--rounds" => &mut o.rounds,
                "--logins" => &mut o.logins,
                "--at-once" => &mut o.at_once,
                "--cold" => &mut o.cold,
                "--rss-users" => &mut o.rss_users,
                "--pending" => &mut o.pending,
                "-h" | "--help" => return Err(String::new()),
                other => return Err(format!("unknown option {other}")),
            };
            let value = it.next().ok_or_else(|| format!("{flag} needs a number"))?;
            *slot = value.parse().map_err(|_| format!("{flag} {value}: not a whole number"))?;
        }
        if o.rounds == 0 || o.logins == 0 || o.at_once == 0 || o.cold == 0 {
            return Err("--rounds, --logins, --at-once and --cold must be at least 1".into());
        }
        Ok(o)
    }

    fn measures(&self, m: Module) -> bool {
        self.only.as_deref().is_none_or(|t| m.label().contains(t))
    }

    /// A user of its own for every login of a module in the whole run:
    /// google-authenticator refuses a code used in the last 90 s
    /// (DISALLOW_REUSE, WINDOW_SIZE 3) and rate-limits per user.
    fn pool(&self) -> usize {
        self.rounds * (5 * self.logins + self.at_once + self.cold)
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Module {
    Permit,
    GoogleAuthenticator,
    GoogleAuthenticatorHardened,
    SmsOutbox,
    SmsTwilio,
    /// The outbox with `[store] kind = "postgresql"` (a cluster of its own
    /// on a Unix socket): the fleet store's cost beside the files'.
    SmsPostgres,
}

const MODULES: [Module; 6] = [
    Module::Permit,
    Module::GoogleAuthenticator,
    Module::GoogleAuthenticatorHardened,
    Module::SmsOutbox,
    Module::SmsTwilio,
    Module::SmsPostgres,
];
/// The baselines the ratios are taken to.
const BASELINES: [usize; 2] = [1, 2];

impl Module {
    fn label(self) -> &'static str {
        match self {
            Module::Permit => "pam_permit",
            Module::GoogleAuthenticator => "g-a (cheapest)",
            Module::GoogleAuthenticatorHardened => "g-a (recommended)",
            Module::SmsOutbox => "pam_sms (outbox)",
            Module::SmsTwilio => "pam_sms (twilio, fake)",
            Module::SmsPostgres => "pam_sms (postgresql)",
        }
    }

    fn service(self) -> &'static str {
        match self {
            Module::Permit => "permit",
            Module::GoogleAuthenticator => "ga",
            Module::GoogleAuthenticatorHardened => "ga-recommended",
            Module::SmsOutbox | Module::SmsTwilio | Module::SmsPostgres => "sms",
        }
    }

    fn answer(self, bench: &Bench) -> String {
        match self {
            Module::Permit => "none".into(),
            Module::GoogleAuthenticator | Module::GoogleAuthenticatorHardened => "totp".into(),
            Module::SmsOutbox | Module::SmsPostgres => format!("sms:{}", bench.outbox.display()),
            Module::SmsTwilio => format!("sms:{}", bench.twilio_log.display()),
        }
    }

    fn daemon(self, bench: &Bench) -> Result<Option<Smsotpd>, String> {
        match self {
            Module::SmsOutbox => Smsotpd::start(bench, "outbox", &bench.outbox_config()).map(Some),
            Module::SmsTwilio => Smsotpd::start(bench, "twilio", &bench.twilio_config()).map(Some),
            Module::SmsPostgres => Smsotpd::start(bench, "postgresql", &bench.postgres_config()?).map(Some),
            _ => Ok(None),
        }
    }
}

/// One module's figures in one round. Times in ms.
#[derive(Default)]
struct Round {
    seq_ms: Vec<f64>,
    seq_rate: f64,
    par_rate: f64,
    at_once_ms: Vec<f64>,
    at_once_failed: usize,
    /// PAM codes of the failed logins (-1: the worker died), for the progress lines.
    failure_codes: std::collections::BTreeMap<i32, usize>,
    cold_ms: Vec<f64>,
    /// Logins that failed outside the at-once run (each should be 0).
    failed: usize,
}

/// One worker's logins: (PAM code, start, end) in CLOCK_MONOTONIC ns.
type Logins = Vec<(i32, u64, u64)>;

fn monotonic_ns() -> u64 {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).expect("CLOCK_MONOTONIC");
    t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64
}

/// What a worker is told: module, first user, how many logins, pool size.
struct Job {
    module: Module,
    first: usize,
    count: usize,
}

fn worker_command(bench: &Bench, pool: usize, job: &Job) -> Command {
    let mut c = Command::new(std::env::current_exe().expect("own path"));
    c.arg("worker")
        .arg(&bench.confdir)
        .arg(job.module.service())
        .arg(job.module.answer(bench))
        .arg(job.first.to_string())
        .arg(job.count.to_string())
        .arg(pool.to_string());
    c
}

/// Starts every job's process, lets them all begin at one instant (a pipe
/// they all wait on is closed), and returns the instant and their logins
/// (None for a worker that died).
fn run_together(bench: &Bench, pool: usize, jobs: &[Job]) -> (u64, Vec<Option<Logins>>) {
    let (gun_r, gun_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("pipe");
    let out_dir = bench.dir.join("out");
    let _ = std::fs::remove_dir_all(&out_dir);
    std::fs::create_dir(&out_dir).unwrap();
    let mut children = Vec::new();
    for (n, job) in jobs.iter().enumerate() {
        let out = out_dir.join(n.to_string());
        let child = worker_command(bench, pool, job)
            .stdin(Stdio::from(gun_r.try_clone().unwrap()))
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start a worker");
        children.push((child, out));
    }
    drop(gun_r);
    let gun = monotonic_ns();
    drop(gun_w);
    let results = children
        .into_iter()
        .map(|(mut child, out)| {
            let ok = child.wait().map(|s| s.success()).unwrap_or(false);
            let text = std::fs::read_to_string(out).unwrap_or_default();
            ok.then(|| parse_logins(&text))
        })
        .collect();
    (gun, results)
}

fn parse_logins(text: &str) -> Logins {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace().map(|x| x.parse::<i64>().ok());
            Some((f.next()?? as i32, f.next()?? as u64, f.next()?? as u64))
        })
        .collect()
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

fn measure(bench: &Bench, o: &Options, module: Module, offset: &mut usize) -> Round {
    let pool = o.pool();
    let mut r = Round::default();
    let mut next = |n: usize| {
        let first = *offset;
        *offset = (*offset + n) % pool;
        first
    };
    let known = |jobs: &[Job]| {
        let users = jobs.iter().flat_map(|j| (0..j.count).map(move |k| (j.first + k) % pool));
        bench.passwd_only(users).expect("cannot write the bench's /etc/passwd");
    };

    // One process, logins one after another.
    let job = Job { module, first: next(o.logins), count: o.logins };
    known(std::slice::from_ref(&job));
    let (_, res) = run_together(bench, pool, &[job]);
    match res.into_iter().next().flatten() {
        Some(logins) => {
            r.failed += logins.iter().filter(|l| l.0 != 0).count() + o.logins - logins.len();
            r.seq_ms = logins.iter().map(|l| ms(l.2 - l.1)).collect();
            if let (Some(a), Some(b)) = (logins.first(), logins.last()) {
                r.seq_rate = logins.len() as f64 / (ms(b.2 - a.1) / 1e3);
            }
        }
        None => r.failed += o.logins,
    }

    // Four processes at once.
    let jobs: Vec<Job> = (0..4).map(|_| Job { module, first: next(o.logins), count: o.logins }).collect();
    known(&jobs);
    let (gun, res) = run_together(bench, pool, &jobs);
    let mut end = gun;
    let mut done = 0;
    for logins in res {
        let logins = logins.unwrap_or_default();
        r.failed += o.logins - logins.iter().filter(|l| l.0 == 0).count();
        done += logins.iter().filter(|l| l.0 == 0).count();
        end = end.max(logins.iter().map(|l| l.2).max().unwrap_or(gun));
    }
    r.par_rate = done as f64 / (ms(end - gun) / 1e3);

    // N logins started at the same instant, one process each.
    let jobs: Vec<Job> = (0..o.at_once).map(|_| Job { module, first: next(1), count: 1 }).collect();
    known(&jobs);
    let (gun, res) = run_together(bench, pool, &jobs);
    for logins in res {
        match logins.as_deref() {
            Some([(0, _, end)]) => r.at_once_ms.push(ms(end - gun)),
            other => {
                r.at_once_failed += 1;
                *r.failure_codes.entry(other.and_then(|l| l.first()).map_or(-1, |l| l.0)).or_default() += 1;
            }
        }
    }

    // Whole processes, one after another: what sshd pays per connection.
    let jobs: Vec<Job> = (0..o.cold).map(|_| Job { module, first: next(1), count: 1 }).collect();
    known(&jobs);
    for job in &jobs {
        let start = Instant::now();
        let out = worker_command(bench, pool, job).stdin(Stdio::null()).stderr(Stdio::null()).output();
        let elapsed = start.elapsed();
        let ok = out.is_ok_and(|out| {
            out.status.success()
                && parse_logins(&String::from_utf8_lossy(&out.stdout)).first().is_some_and(|l| l.0 == 0)
        });
        if ok {
            r.cold_ms.push(elapsed.as_secs_f64() * 1e3);
        } else {
            r.failed += 1;
        }
    }
    r
}

/// `worker CONFDIR SERVICE ANSWER FIRST COUNT POOL`: waits for its stdin to
/// close, makes COUNT logins as users FIRST.. (mod POOL), and prints
/// `pam-code start-ns end-ns` per login.
fn worker(args: &[String]) -> i32 {
    let [confdir, service, answer, first, count, pool] = args else {
        return 2;
    };
    let (Ok(first), Ok(count), Ok(pool)) = (first.parse::<usize>(), count.parse::<usize>(), pool.parse::<usize>())
    else {
        return 2;
    };
    let mut gun = [0u8; 1];
    while std::io::Read::read(&mut std::io::stdin(), &mut gun).is_ok_and(|n| n > 0) {}
    let sms_file = answer.strip_prefix("sms:").map(PathBuf::from);
    let mut lines = String::new();
    for k in 0..count {
        let i = (first + k) % pool;
        let user = setup::user(i);
        let number = setup::number(i);
        let start = monotonic_ns();
        let mark = sms_file.as_deref().map(answers::sms_mark).unwrap_or(0);
        let mut respond = |_prompt: &str| -> Option<String> {
            match (answer.as_str(), &sms_file) {
                ("totp", _) => Some(answers::totp(std::time::SystemTime::UNIX_EPOCH.elapsed().ok()?.as_secs())),
                (_, Some(file)) => answers::sms_code(file, mark, &number, Duration::from_secs(30)),
                _ => None,
            }
        };
        let rc = libpam::login(confdir, service, &user, setup::RHOST, &mut respond);
        lines.push_str(&format!("{rc} {start} {}\n", monotonic_ns()));
    }
    print!("{lines}");
    0
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("worker") {
        std::process::exit(worker(&args[1..]));
    }
    let o = match Options::parse(&args) {
        Ok(o) => o,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("smsotp-bench: {e}");
            }
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    };
    if !nix::unistd::geteuid().is_root() {
        eprintln!("smsotp-bench: run it as root (it uses a private mount namespace); e.g. sudo tests/bench.sh");
        std::process::exit(2);
    }
    if let Err(e) = run(&o) {
        eprintln!("smsotp-bench: {e}");
        std::process::exit(1);
    }
}

fn run(o: &Options) -> Result<(), String> {
    raise_open_files();
    setup::isolate()?;
    let pool = o.pool();
    let mut bench = Bench::prepare(pool, !o.console_syslog)?;
    {
        let _d = Smsotpd::start(&bench, "outbox", &bench.outbox_config())?;
        enroll(&bench, 0..pool)?;
        bench.passwd_first(0..pool)?;
    }
    if o.measures(Module::SmsPostgres) {
        bench.start_postgres()?;
        let _d = Smsotpd::start(&bench, "postgresql", &bench.postgres_config()?)?;
        enroll(&bench, 0..pool)?;
    }
    println!(
        "smsotp login benchmark: {} rounds, modules interleaved in each; {} logins in 1 process, {} per process in 4, \
         {} started at once, {} whole-process logins",
        o.rounds, o.logins, o.logins, o.at_once, o.cold
    );
    println!(
        "syslog: {}",
        if o.console_syslog {
            "as this machine has it (--console-syslog)"
        } else {
            "a private /dev/log that drops every line, as journald or rsyslog would take it"
        }
    );
    println!(
        "files on tmpfs; bus: dbus-daemon with Debian's stock system-bus limits (64 unauthenticated connections, 256 per uid); \
         g-a (cheapest): TOTP only; g-a (recommended): what `google-authenticator -t -d -r 3 -R 30 -w 3` writes \
         (DISALLOW_REUSE, RATE_LIMIT 3 30, WINDOW_SIZE 3: the file is rewritten at every login)"
    );
    let mut results: Vec<Vec<Round>> = MODULES.iter().map(|_| Vec::new()).collect();
    let mut offsets = [0usize; MODULES.len()];
    for round in 1..=o.rounds {
        for (m, module) in MODULES.iter().enumerate() {
            if !o.measures(*module) {
                continue;
            }
            let daemon = module.daemon(&bench)?;
            let r = measure(&bench, o, *module, &mut offsets[m]);
            eprintln!(
                "round {round} {:<24} p50 {} ms, {:.0}/s at 4, at once: {} failed {:?}, p99 {} ms, cold p50 {} ms, other failures {}",
                module.label(),
                fmt(median(&r.seq_ms), 2),
                r.par_rate,
                r.at_once_failed,
                r.failure_codes,
                fmt(quantile(&r.at_once_ms, 0.99), 0),
                fmt(median(&r.cold_ms), 2),
                r.failed
            );
            let tally = std::mem::take(&mut *bench.syslog.lock().unwrap());
            if r.failed + r.at_once_failed > 0 {
                let mut lines: Vec<(usize, String)> = tally.into_iter().map(|(k, n)| (n, k)).collect();
                lines.sort_by(|a, b| b.cmp(a));
                for (n, line) in lines.iter().take(6) {
                    eprintln!("  syslog x{n}: {line}");
                }
                if let Some(d) = &daemon {
                    let log = std::fs::read_to_string(&d.log).unwrap_or_default();
                    for l in log.lines().filter(|l| l.contains("WARN") || l.contains("ERROR")).take(4) {
                        eprintln!("  daemon: {l}");
                    }
                }
            }
            drop(daemon);
            results[m].push(r);
        }
    }
    report(o, &results);
    memory(&bench, o)
}

fn report(o: &Options, results: &[Vec<Round>]) {
    println!();
    println!(
        "{:<24} {:>7} {:>7} {:>7} {:>9} {:>9} {:>12} {:>10} {:>10} {:>9} {:>7}",
        "module (median of rounds)",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "logins/s",
        "logins/s",
        "at once",
        "at once",
        "at once",
        "cold",
        "other"
    );
    println!(
        "{:<24} {:>7} {:>7} {:>7} {:>9} {:>9} {:>12} {:>10} {:>10} {:>9} {:>7}",
        "", "1 proc", "1 proc", "1 proc", "1 proc", "4 procs", "failed", "p50 ms", "p99 ms", "p50 ms", "failed"
    );
    for (m, module) in MODULES.iter().enumerate() {
        let rounds = &results[m];
        if rounds.is_empty() {
            continue;
        }
        let per = |f: &dyn Fn(&Round) -> Option<f64>| median(&rounds.iter().filter_map(f).collect::<Vec<_>>());
        println!(
            "{:<24} {:>7} {:>7} {:>7} {:>9} {:>9} {:>12} {:>10} {:>10} {:>9} {:>7}",
            module.label(),
            fmt(per(&|r| median(&r.seq_ms)), 2),
            fmt(per(&|r| quantile(&r.seq_ms, 0.9)), 2),
            fmt(per(&|r| quantile(&r.seq_ms, 0.99)), 2),
            fmt(per(&|r| Some(r.seq_rate)), 0),
            fmt(per(&|r| Some(r.par_rate)), 0),
            format!("{} of {}", rounds.iter().map(|r| r.at_once_failed).sum::<usize>(), o.at_once * rounds.len()),
            fmt(per(&|r| median(&r.at_once_ms)), 0),
            fmt(per(&|r| quantile(&r.at_once_ms, 0.99)), 0),
            fmt(per(&|r| median(&r.cold_ms)), 2),
            rounds.iter().map(|r| r.failed).sum::<usize>(),
        );
    }
    println!();
    type Figure = fn(&Round) -> Option<f64>;
    let figures: [(&str, Figure, &str); 5] = [
        ("p50, 1 process", |r| median(&r.seq_ms), "<= 0.5"),
        ("logins/s, 1 process", |r| Some(r.seq_rate), ""),
        ("logins/s, 4 processes", |r| Some(r.par_rate), ">= 3"),
        ("p99, at once", |r| quantile(&r.at_once_ms, 0.99), "<= 1.0"),
        ("whole-process login p50", |r| median(&r.cold_ms), "<= 1.0"),
    ];
    for base in BASELINES {
        if results[base].is_empty() {
            continue;
        }
        println!(
            "ratio to {}: median of the per-round ratios (min..max); the issue's goal in brackets",
            MODULES[base].label()
        );
        for (m, module) in MODULES.iter().enumerate() {
            if BASELINES.contains(&m) || results[m].is_empty() {
                continue;
            }
            let mut cells = Vec::new();
            for (name, f, goal) in figures {
                let ratios: Vec<f64> = results[m]
                    .iter()
                    .zip(&results[base])
                    .filter_map(|(r, g)| Some(f(r)? / f(g)?))
                    .filter(|x| x.is_finite())
                    .collect();
                let goal = if goal.is_empty() || m == 0 { String::new() } else { format!(" [{goal}]") };
                cells.push(format!("{name} {}x ({}){goal}", fmt(median(&ratios), 2), spread(&ratios, 2)));
            }
            println!("  {:<24} {}", module.label(), cells.join("; "));
        }
    }
}

/// smsotpd's resident memory: idle, with many users enrolled, with many
/// logins waiting at the code prompt.
fn memory(bench: &Bench, o: &Options) -> Result<(), String> {
    let d = Smsotpd::start(bench, "outbox", &bench.outbox_config())?;
    std::thread::sleep(Duration::from_millis(200));
    let idle = d.rss_mib();
    let enrolled = o.rss_users.max(o.pool());
    let started = Instant::now();
    enroll(bench, o.pool()..enrolled)?;
    let enroll_s = started.elapsed().as_secs_f64();
    let with_users = d.rss_mib();
    let started = Instant::now();
    let waiting = pending::start_logins(bench, o.pending, o.pool())?;
    let pending_s = started.elapsed().as_secs_f64();
    let with_pending = d.rss_mib();
    println!();
    println!(
        "smsotpd resident memory: idle {} MiB; {enrolled} users enrolled {} MiB ({enroll_s:.1} s to enroll); \
         {waiting} logins at the code prompt {} MiB ({pending_s:.1} s to start)",
        fmt(idle, 1),
        fmt(with_users, 1),
        fmt(with_pending, 1)
    );
    Ok(())
}

/// Enrolls users `range` a batch at a time, each batch at the top of
/// /etc/passwd: the daemon checks each name through NSS, and a lookup in a
/// file of 100,000 entries would otherwise read half of it.
fn enroll(bench: &Bench, range: std::ops::Range<usize>) -> Result<(), String> {
    let batch = 2_000;
    let mut from = range.start;
    while from < range.end {
        let to = (from + batch).min(range.end);
        bench.passwd_first(from..to)?;
        pending::enroll(bench, from..to)?;
        from = to;
    }
    Ok(())
}

/// A thousand workers and their files need more than the usual 1,024.
fn raise_open_files() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard.min(65_536), hard);
    }
}
