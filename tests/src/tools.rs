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

/// Runs `c` (`what` names it in failures), writing `stdin` to it; fails
/// the test unless it succeeds. Its standard output.
pub fn run_checked(mut c: Command, what: &str, stdin: Option<&str>) -> String {
    use std::io::Write;
    use std::process::Stdio;
    c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    if let Some(text) = stdin {
        child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A client certificate with common name `cn` signed by the CA that
/// [`make_certificates`] made in `dir`: `dir/{cn}.pem` and `dir/{cn}.key`.
pub fn make_client_certificate(dir: &Path, cn: &str) -> (PathBuf, PathBuf) {
    let openssl = require("openssl", "openssl");
    let (pem, key, csr, ext) = (format!("{cn}.pem"), format!("{cn}.key"), format!("{cn}.csr"), format!("{cn}.ext"));
    let mut c = Command::new(&openssl);
    c.current_dir(dir).args(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]).args([
        "-keyout",
        &key,
        "-out",
        &csr,
        "-subj",
        &format!("/CN={cn}"),
    ]);
    run_checked(c, "openssl req (client)", None);
    std::fs::write(dir.join(&ext), "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n").unwrap();
    let mut c = Command::new(&openssl);
    c.current_dir(dir)
        .args(["x509", "-req", "-in", &csr, "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial"])
        .args(["-out", &pem, "-days", "2", "-extfile", &ext]);
    run_checked(c, "openssl x509 (client)", None);
    (dir.join(pem), dir.join(key))
}

/// A CA (ca.pem) and a certificate for localhost and 127.0.0.1 signed by
/// it (server.pem, server.key), made with openssl in `dir`.
pub fn make_certificates(dir: &Path) {
    let openssl = require("openssl", "openssl");
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
    let mut c = Command::new(&openssl);
    c.current_dir(dir).args(["req", "-x509"]).args(ec).args([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=smsotp test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    run_checked(c, "openssl req (CA)", None);
    let mut c = Command::new(&openssl);
    c.current_dir(dir).arg("req").args(ec).args([
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    run_checked(c, "openssl req (server)", None);
    std::fs::write(
        dir.join("ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    let mut c = Command::new(&openssl);
    c.current_dir(dir).args([
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext",
    ]);
    run_checked(c, "openssl x509 (server)", None);
}
