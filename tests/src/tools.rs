//! Finding programs and building ours once per test run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

/// Fails the test (never skips it) when a tool is missing, saying how to
/// install it.
pub fn require(program: &str, debian_package: &str) -> PathBuf {
    for dir in std::env::var("PATH").unwrap_or_default().split(':').chain(["/usr/sbin", "/sbin"]) {
        let p = Path::new(dir).join(program);
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "{program} is not installed; install it with: apt-get install {debian_package} (or run tests/run.sh, which installs everything)"
    );
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

pub struct Built {
    pub smsotpd: PathBuf,
    pub smsotpctl: PathBuf,
    pub smsotp: PathBuf,
    pub pam_sms: PathBuf,
}

/// Builds smsotpd, smsotpctl and pam_sms.so (debug) once, so tests never
/// run stale binaries.
pub fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let root = workspace_root();
        let status = Command::new(cargo)
            .args(["build", "--quiet", "-p", "smsotpd", "-p", "pam_sms"])
            .current_dir(&root)
            .status()
            .expect("cannot run cargo");
        assert!(status.success(), "cargo build -p smsotpd -p pam_sms failed");
        let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
        let dir = target.join("debug");
        let b = Built {
            smsotpd: dir.join("smsotpd"),
            smsotpctl: dir.join("smsotpctl"),
            smsotp: dir.join("smsotp"),
            pam_sms: dir.join("libpam_sms.so"),
        };
        for p in [&b.smsotpd, &b.smsotpctl, &b.smsotp, &b.pam_sms] {
            assert!(p.is_file(), "{} was not built", p.display());
        }
        b
    })
}

/// Waits for `cond` to hold, checking every 20 ms, up to `limit`; fails the
/// test on timeout. For waiting on other processes, not for measuring anything.
pub fn wait_for(what: &str, limit: Duration, cond: impl FnMut() -> bool) {
    assert!(poll(limit, cond), "timed out after {limit:?} waiting for {what}");
}

/// Checks `cond` every 20 ms for up to `limit`; whether it came to hold.
#[allow(clippy::disallowed_methods)] // the harness waits for real processes
pub fn poll(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = std::time::Instant::now();
    while !cond() {
        if start.elapsed() >= limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// A private temporary directory (mode 0700, as smsotpd insists).
pub fn private_tempdir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::Builder::new().prefix("smsotp-test.").tempdir().unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    d
}
