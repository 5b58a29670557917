//! The real smsotpd, started against a private bus, with its clock under
//! the test's control through libfaketime (so no test sleeps).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use crate::bus::Bus;
use crate::tools::{built, require, wait_for};

pub const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

pub struct Daemon {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub log: PathBuf,
    faketime: PathBuf,
    bus_address: String,
    run_as: Option<u32>,
    /// `$CREDENTIALS_DIRECTORY`, as systemd's LoadCredential= gives it.
    credentials: Option<PathBuf>,
}

impl Daemon {
    /// Starts smsotpd with `config` (TOML) on `bus`.
    pub fn start(bus: &Bus, config: &str) -> Daemon {
        Daemon::start_with(bus, config, None)
    }

    /// Starts it with `$CREDENTIALS_DIRECTORY` set to `dir`.
    pub fn start_with_credentials(bus: &Bus, config: &str, dir: &Path) -> Daemon {
        let mut d = Daemon::prepare(bus, config, None);
        d.credentials = Some(dir.to_owned());
        d.spawn();
        d
    }

    /// Starts it as another uid (an impostor, or the daemon-uid checks).
    pub fn start_with(bus: &Bus, config: &str, run_as: Option<u32>) -> Daemon {
        let mut d = Daemon::prepare(bus, config, run_as);
        d.spawn();
        d
    }

    fn prepare(bus: &Bus, config: &str, run_as: Option<u32>) -> Daemon {
        let dir = crate::tools::private_tempdir();
        let config_path = dir.path().join("smsotpd.toml");
        let text = config
            .replace("@STATE@", &dir.path().join("state").display().to_string())
            .replace("@DIR@", &dir.path().display().to_string());
        std::fs::write(&config_path, text).unwrap();
        std::fs::set_permissions(&config_path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let faketime = dir.path().join("faketime");
        std::fs::write(&faketime, "+0\n").unwrap();
        if let Some(uid) = run_as {
            let owner = Some(nix::unistd::Uid::from_raw(uid));
            nix::unistd::chown(dir.path(), owner, None).unwrap();
            nix::unistd::chown(&config_path, owner, None).unwrap();
            nix::unistd::chown(&faketime, owner, None).unwrap();
        }
        Daemon {
            child: None,
            config: config_path,
            log: dir.path().join("smsotpd.log"),
            faketime,
            dir,
            bus_address: bus.address(),
            run_as,
            credentials: None,
        }
    }

    fn spawn(&mut self) {
        assert!(Path::new(LIBFAKETIME).exists(), "libfaketime is missing; install it with: apt-get install faketime");
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).unwrap();
        let before = std::fs::read_to_string(&self.log).unwrap_or_default().matches("ready on").count();
        let mut cmd = match self.run_as {
            Some(uid) => {
                let mut c = Command::new(require("setpriv", "util-linux"));
                c.args([format!("--reuid={uid}"), format!("--regid={uid}"), "--clear-groups".into()])
                    .arg(&built().smsotpd);
                c
            }
            None => Command::new(&built().smsotpd),
        };
        cmd.arg("--config")
            .arg(&self.config)
            .arg("--bus")
            .arg(&self.bus_address)
            .arg("--log")
            .arg("stderr")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        match &self.credentials {
            Some(dir) => cmd.env("CREDENTIALS_DIRECTORY", dir),
            None => cmd.env_remove("CREDENTIALS_DIRECTORY"),
        };
        if self.run_as.is_none() {
            // libfaketime's shared memory is root's here; others keep real time.
            cmd.env("LD_PRELOAD", LIBFAKETIME)
                .env("FAKETIME_TIMESTAMP_FILE", &self.faketime)
                .env("FAKETIME_NO_CACHE", "1");
        }
        self.child = Some(cmd.spawn().unwrap());
        let path = self.log.clone();
        let child = self.child.as_mut().unwrap();
        wait_for("smsotpd to be ready", Duration::from_secs(20), || {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("smsotpd exited with {status}:\n{}", std::fs::read_to_string(&path).unwrap_or_default());
            }
            std::fs::read_to_string(&path).unwrap_or_default().matches("ready on").count() > before
        });
    }

    /// Moves the daemon's clocks once its log shows `event` (e.g. the first
    /// code sent): a clock that jumps while a request is under way makes
    /// the request look unanswered.
    pub fn set_time_offset_after(&self, event: &str, seconds: i64) {
        crate::tools::wait_for(&format!("{event} in the daemon's log"), Duration::from_secs(20), || {
            self.log_text().contains(event)
        });
        self.set_time_offset(seconds);
    }

    /// Moves the daemon's clocks to `seconds` after real time.
    pub fn set_time_offset(&self, seconds: i64) {
        std::fs::write(&self.faketime, format!("{seconds:+}\n")).unwrap();
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(c.id() as i32), nix::sys::signal::Signal::SIGTERM);
            let _ = c.wait();
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Runs smsotpctl against this daemon's bus.
    pub fn ctl(&self, args: &[&str]) -> Output {
        Command::new(&built().smsotpctl).arg("--bus").arg(&self.bus_address).args(args).output().unwrap()
    }

    /// Runs smsotpctl and insists it succeeds.
    pub fn ctl_ok(&self, args: &[&str]) -> String {
        let out = self.ctl(args);
        assert!(out.status.success(), "smsotpctl {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A config for Programmable Messaging against `twilio_url`.
pub fn messaging_config(twilio_url: &str, extra_top: &str, extra_tables: &str) -> String {
    use crate::fake_twilio::{ACCOUNT_SID, AUTH_TOKEN, FROM};
    format!(
        "version = 1\nprovider = \"twilio-messaging\"\nstate_directory = \"@STATE@\"\n{extra_top}\n{extra_tables}\n\
         [twilio]\naccount_sid = \"{ACCOUNT_SID}\"\nauth_token = \"{AUTH_TOKEN}\"\nfrom = \"{FROM}\"\n\
         api_base = \"{twilio_url}\"\nverify_api_base = \"{twilio_url}\"\nlookup_api_base = \"{twilio_url}\"\n\
         request_timeout_seconds = 1\n"
    )
}

/// A config for Verify against `twilio_url`.
pub fn verify_config(twilio_url: &str, extra_top: &str) -> String {
    use crate::fake_twilio::{ACCOUNT_SID, AUTH_TOKEN, VERIFY_SID};
    format!(
        "version = 1\nprovider = \"twilio-verify\"\nstate_directory = \"@STATE@\"\n{extra_top}\n\
         [twilio]\naccount_sid = \"{ACCOUNT_SID}\"\nauth_token = \"{AUTH_TOKEN}\"\nverify_service_sid = \"{VERIFY_SID}\"\n\
         api_base = \"{twilio_url}\"\nverify_api_base = \"{twilio_url}\"\nrequest_timeout_seconds = 1\n"
    )
}
