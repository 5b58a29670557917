//! The benchmark's world: a private mount namespace (bench users in
//! /etc/passwd, every file on a tmpfs), a bus with Debian's stock
//! system-bus limits, the fake Twilio on loopback, google-authenticator's
//! secrets, a PAM configuration directory, and smsotpd started directly.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nix::mount::{MsFlags, mount};
use smsotp_tests::bus::{Bus, Policy};
use smsotp_tests::fake_twilio::{ACCOUNT_SID, AUTH_TOKEN, FROM, FakeTwilio};
use smsotp_tests::tools::{poll, require};

use crate::answers::TOTP_SECRET_BASE32;

pub const GA_MODULE: &str = "/usr/lib/x86_64-linux-gnu/security/pam_google_authenticator.so";
/// The address every bench login comes from (one machine, policy "always").
pub const RHOST: &str = "192.0.2.10";

pub fn user(i: usize) -> String {
    format!("bench{i:06}")
}

pub fn number(i: usize) -> String {
    format!("+1415{i:07}")
}

/// Our own mount namespace, so the bench's /etc/passwd and tmpfs are seen
/// by the bench, its workers and its daemons only.
pub fn isolate() -> Result<(), String> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).map_err(|e| format!("unshare(CLONE_NEWNS): {e}"))?;
    mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)
        .map_err(|e| format!("making / private: {e}"))
}

/// What modules logged through the private /dev/log: message -> count.
pub type SyslogTally = std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<String, usize>>>;

pub struct Bench {
    pub syslog: SyslogTally,
    pub dir: PathBuf,
    _tmp: tempfile::TempDir,
    pub confdir: PathBuf,
    pub outbox: PathBuf,
    pub twilio_log: PathBuf,
    pub bin: PathBuf,
    pub bus: Bus,
    pub twilio: std::sync::Arc<FakeTwilio>,
    passwd: PathBuf,
    base_passwd: String,
    /// The PostgreSQL cluster of "pam_sms (postgresql)", once started.
    pub postgres: Option<smsotp_tests::postgres::Postgres>,
}

impl Bench {
    /// Everything but the daemon, with `users` bench users known to NSS.
    pub fn prepare(users: usize, own_syslog: bool) -> Result<Bench, String> {
        let bin = std::env::current_exe().map_err(|e| e.to_string())?.parent().ok_or("no exe dir")?.to_owned();
        for b in ["smsotpd", "smsotpctl", "libpam_sms.so"] {
            if !bin.join(b).is_file() {
                return Err(format!("{} is missing; build it with: cargo build --release -p smsotpd -p pam_sms", b));
            }
        }
        if !Path::new(GA_MODULE).is_file() {
            return Err(format!(
                "{GA_MODULE} is missing; install it with: apt-get install libpam-google-authenticator"
            ));
        }
        require("dbus-daemon", "dbus-daemon");
        let tmp = tempfile::Builder::new().prefix("smsotp-bench.").tempdir().map_err(|e| e.to_string())?;
        let dir = tmp.path().to_owned();
        mount(Some("tmpfs"), &dir, Some("tmpfs"), MsFlags::empty(), Some("mode=0700"))
            .map_err(|e| format!("tmpfs on {}: {e}", dir.display()))?;

        let syslog = SyslogTally::default();
        if own_syslog {
            private_syslog(&dir, syslog.clone())?;
        }
        let base_passwd = std::fs::read_to_string("/etc/passwd").map_err(|e| e.to_string())?;
        let passwd = dir.join("passwd");
        let group = dir.join("group");
        let base_group = std::fs::read_to_string("/etc/group").map_err(|e| e.to_string())?;
        std::fs::write(&group, format!("{base_group}bench:x:990000:\n")).map_err(|e| e.to_string())?;
        write_passwd(&passwd, &base_passwd, 0..users)?;
        for (file, target) in [(&passwd, "/etc/passwd"), (&group, "/etc/group")] {
            std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o644)).map_err(|e| e.to_string())?;
            mount(Some(file.as_path()), target, None::<&str>, MsFlags::MS_BIND, None::<&str>)
                .map_err(|e| format!("bind {} on {target}: {e}", file.display()))?;
        }

        // google-authenticator: one secret file per user, root's, 0400;
        // its cheapest setting, and what its set-up tool writes when every
        // question it recommends is answered yes.
        let ga = dir.join("ga");
        let ga_recommended = dir.join("ga-recommended");
        let recommended = "\" RATE_LIMIT 3 30\n\" WINDOW_SIZE 3\n\" DISALLOW_REUSE\n\" TOTP_AUTH\n";
        for (d, options) in [(&ga, "\" TOTP_AUTH\n"), (&ga_recommended, recommended)] {
            std::fs::create_dir(d).map_err(|e| e.to_string())?;
            for i in 0..users {
                let f = d.join(user(i));
                std::fs::write(&f, format!("{TOTP_SECRET_BASE32}\n{options}")).map_err(|e| e.to_string())?;
                std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o400)).map_err(|e| e.to_string())?;
            }
        }

        let bus = Bus::start(Policy::Shipped);
        let module = bin.join("libpam_sms.so");
        let confdir = dir.join("pam.d");
        std::fs::create_dir(&confdir).map_err(|e| e.to_string())?;
        let services = [
            ("permit", "auth required pam_permit.so".to_owned()),
            ("ga", format!("auth required {GA_MODULE} secret={}/${{USER}} user=root", ga.display())),
            (
                "ga-recommended",
                format!("auth required {GA_MODULE} secret={}/${{USER}} user=root", ga_recommended.display()),
            ),
            ("sms", format!("auth required {} bus={}", module.display(), bus.address())),
        ];
        // libpam reads "other" when a service has no file; without it every
        // pam_start logs a line.
        let services = services.into_iter().chain([("other", "auth required pam_deny.so".to_owned())]);
        for (name, line) in services {
            std::fs::write(confdir.join(name), format!("{line}\n")).map_err(|e| e.to_string())?;
        }

        let twilio = std::sync::Arc::new(FakeTwilio::start());
        let twilio_log = dir.join("twilio-sms.log");
        copy_sms_to_file(twilio.clone(), twilio_log.clone())?;
        let outbox = dir.join("outbox");
        Ok(Bench {
            syslog,
            dir,
            _tmp: tmp,
            confdir,
            outbox,
            twilio_log,
            bin,
            bus,
            twilio,
            passwd,
            base_passwd,
            postgres: None,
        })
    }

    /// Puts bench users `range` at the top of /etc/passwd (lookups of
    /// users being enrolled stay short with 100k entries).
    pub fn passwd_first(&self, range: std::ops::Range<usize>) -> Result<(), String> {
        write_passwd(&self.passwd, &self.base_passwd, range)
    }

    /// /etc/passwd as on a server: the system's accounts and just the bench
    /// users of the next measurement. google-authenticator looks each user
    /// up, and a lookup reads the file line by line: thousands of bench
    /// users would bill it for a file no real host has (pam_sms and an
    /// enrolled user's login make no lookup).
    pub fn passwd_only(&self, users: impl IntoIterator<Item = usize>) -> Result<(), String> {
        let mut text = self.base_passwd.clone();
        for i in users {
            text.push_str(&passwd_line(i));
        }
        std::fs::write(&self.passwd, text).map_err(|e| format!("{}: {e}", self.passwd.display()))
    }

    pub fn outbox_config(&self) -> String {
        format!(
            "version = 1\nprovider = \"outbox\"\nstate_directory = \"{}\"\n{}\n[outbox]\npath = \"{}\"\n",
            self.dir.join("state").display(),
            CODES,
            self.outbox.display()
        )
    }

    /// A cluster of its own (initdb in a temporary directory) with the
    /// schema made by `smsotpctl db migrate`.
    pub fn start_postgres(&mut self) -> Result<(), String> {
        let pg = smsotp_tests::postgres::Postgres::start();
        self.postgres = Some(pg);
        let path = self.dir.join("migrate.toml");
        std::fs::write(&path, self.postgres_config()?).map_err(|e| e.to_string())?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(|e| e.to_string())?;
        let out = Command::new(self.bin.join("smsotpctl"))
            .args(["db", "migrate", "--config"])
            .arg(&path)
            .output()
            .map_err(|e| format!("smsotpctl: {e}"))?;
        if !out.status.success() {
            return Err(format!("smsotpctl db migrate: {}", String::from_utf8_lossy(&out.stderr)));
        }
        Ok(())
    }

    /// The outbox, with records in the bench's PostgreSQL.
    pub fn postgres_config(&self) -> Result<String, String> {
        let pg = self.postgres.as_ref().ok_or("PostgreSQL is not started")?;
        Ok(format!(
            "version = 1\nprovider = \"outbox\"\nstate_directory = \"{}\"\n{}\n{}\n[outbox]\npath = \"{}\"\n",
            self.dir.join("state-pg").display(),
            CODES,
            pg.store_table("connections = 4\nsms_per_fleet_per_day = 10000000"),
            self.outbox.display()
        ))
    }

    pub fn twilio_config(&self) -> String {
        format!(
            "version = 1\nprovider = \"twilio-messaging\"\nstate_directory = \"{}\"\n{}\n\
             [twilio]\naccount_sid = \"{ACCOUNT_SID}\"\nauth_token = \"{AUTH_TOKEN}\"\nfrom = \"{FROM}\"\n\
             api_base = \"{url}\"\nverify_api_base = \"{url}\"\n",
            self.dir.join("state").display(),
            CODES,
            url = self.twilio.url()
        )
    }
}

/// Budgets wide enough that the bench never meets them (it measures the
/// login path, not the limits).
const CODES: &str = "[codes]\nsms_per_user_per_hour = 100\nsms_per_user_per_day = 1000\n\
                     sms_per_host_per_hour = 1000000\nsms_per_host_per_day = 1000000\nmax_pending = 1000000\n";

fn passwd_line(i: usize) -> String {
    format!("{}:x:{}:990000::/nonexistent:/usr/sbin/nologin\n", user(i), 1_000_000 + i)
}

fn write_passwd(file: &Path, base: &str, first: std::ops::Range<usize>) -> Result<(), String> {
    let mut text = String::with_capacity(base.len() + first.len() * 64);
    for i in first {
        text.push_str(&passwd_line(i));
    }
    text.push_str(base);
    std::fs::write(file, text).map_err(|e| format!("{}: {e}", file.display()))
}

/// A /dev/log of the bench's own that reads and drops every line, as a
/// server's journald or rsyslog would take them. Without one, glibc's
/// syslog() in a module opened with LOG_CONS (google-authenticator) writes
/// to the console, on these machines a serial port: milliseconds per line
/// that no real server pays. /dev is overlaid (upper layer on the tmpfs) so
/// the socket never appears outside the namespace.
fn private_syslog(dir: &Path, tally: SyslogTally) -> Result<(), String> {
    let keep = |sub: &str| dir.join(format!("dev-{sub}"));
    let submounts: Vec<&str> =
        ["pts", "shm", "mqueue"].into_iter().filter(|sub| Path::new("/dev").join(sub).is_dir()).collect();
    for sub in &submounts {
        std::fs::create_dir(keep(sub)).map_err(|e| e.to_string())?;
        mount(Some(Path::new("/dev").join(sub).as_path()), &keep(sub), None::<&str>, MsFlags::MS_BIND, None::<&str>)
            .map_err(|e| format!("keeping /dev/{sub}: {e}"))?;
    }
    let (upper, work) = (dir.join("dev-upper"), dir.join("dev-work"));
    for d in [&upper, &work] {
        std::fs::create_dir(d).map_err(|e| e.to_string())?;
    }
    let options = format!("lowerdir=/dev,upperdir={},workdir={}", upper.display(), work.display());
    mount(Some("overlay"), "/dev", Some("overlay"), MsFlags::empty(), Some(options.as_str()))
        .map_err(|e| format!("overlay on /dev: {e}"))?;
    for sub in &submounts {
        mount(Some(keep(sub).as_path()), &Path::new("/dev").join(sub), None::<&str>, MsFlags::MS_BIND, None::<&str>)
            .map_err(|e| format!("putting back /dev/{sub}: {e}"))?;
    }
    let _ = std::fs::remove_file("/dev/log");
    let sink = std::os::unix::net::UnixDatagram::bind("/dev/log").map_err(|e| format!("/dev/log: {e}"))?;
    std::fs::set_permissions("/dev/log", std::fs::Permissions::from_mode(0o666)).map_err(|e| e.to_string())?;
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = sink.recv(&mut buf) {
            // "<pri>Mmm dd hh:mm:ss ident[pid]: text": keep the ident and text.
            let line = String::from_utf8_lossy(&buf[..n]);
            let text = line.split_once("]: ").map_or(&*line, |(_, t)| t);
            let ident = line.get(20..).and_then(|l| l.split('[').next()).unwrap_or("");
            let key = format!("{ident}: {}", text.chars().take(160).collect::<String>());
            if let Ok(mut t) = tally.lock()
                && (t.len() < 500 || t.contains_key(&key))
            {
                *t.entry(key).or_default() += 1;
            }
        }
    });
    Ok(())
}

/// The fake Twilio "delivers" by appending `<to>\t<body>` lines here.
fn copy_sms_to_file(twilio: std::sync::Arc<FakeTwilio>, path: PathBuf) -> Result<(), String> {
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&path).map_err(|e| e.to_string())?;
    std::thread::spawn(move || {
        let (mut answered, mut written) = (0, 0);
        loop {
            if !twilio.wait_requests(answered + 1, Duration::from_secs(3600)) {
                continue;
            }
            answered = twilio.answered();
            let new = twilio.messages_from(written);
            written += new.len();
            let mut text = String::new();
            for sms in new {
                text.push_str(&format!("{}\t{}\n", sms.to, sms.body.replace('\n', " ")));
            }
            if file.write_all(text.as_bytes()).is_err() {
                return;
            }
        }
    });
    Ok(())
}

/// smsotpd, started directly (no libfaketime: real clocks, real speed).
pub struct Smsotpd {
    child: Child,
    pub log: PathBuf,
}

impl Smsotpd {
    pub fn start(bench: &Bench, name: &str, config: &str) -> Result<Smsotpd, String> {
        let path = bench.dir.join(format!("{name}.toml"));
        std::fs::write(&path, config).map_err(|e| e.to_string())?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(|e| e.to_string())?;
        let log = bench.dir.join(format!("{name}.log"));
        let before = std::fs::read_to_string(&log).unwrap_or_default().matches("ready on").count();
        let err = std::fs::OpenOptions::new().create(true).append(true).open(&log).map_err(|e| e.to_string())?;
        let mut child = Command::new(bench.bin.join("smsotpd"))
            .arg("--config")
            .arg(&path)
            .arg("--bus")
            .arg(bench.bus.address())
            .args(["--log", "stderr"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot start smsotpd: {e}"))?;
        let ready = poll(Duration::from_secs(20), || {
            matches!(child.try_wait(), Ok(None))
                && std::fs::read_to_string(&log).unwrap_or_default().matches("ready on").count() > before
        });
        if !ready {
            let _ = child.kill();
            return Err(format!("smsotpd did not start:\n{}", std::fs::read_to_string(&log).unwrap_or_default()));
        }
        Ok(Smsotpd { child, log })
    }

    /// Resident memory now, in MiB (VmRSS).
    pub fn rss_mib(&self) -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let kib: f64 = status.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib / 1024.0)
    }
}

impl Drop for Smsotpd {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
    }
}
