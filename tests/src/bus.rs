//! A private dbus-daemon with a config from tests/dbus/.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::tools::{require, wait_for, workspace_root};

pub struct Bus {
    child: Child,
    pub socket: PathBuf,
    _dir: tempfile::TempDir,
}

/// Which bus configuration to run.
#[derive(Debug, Clone, Copy)]
pub enum Policy {
    /// The policy we ship (etc/dbus-1/org.smsotp.SmsOtp1.conf) on a
    /// system-bus-like config.
    Shipped,
    /// Anyone may own and call anything, to show the daemon checks callers
    /// itself.
    Permissive,
}

impl Bus {
    pub fn start(policy: Policy) -> Bus {
        Bus::start_limited(policy, &[])
    }

    /// A bus with some of dbus-daemon's `<limit>`s set (name, value), to
    /// meet the limits with a handful of callers instead of a thousand.
    pub fn start_limited(policy: Policy, limits: &[(&str, u32)]) -> Bus {
        let dbus_daemon = require("dbus-daemon", "dbus-daemon");
        let dir = crate::tools::private_tempdir();
        // Other users must reach the socket (the caller tests run as nobody).
        std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let socket = dir.path().join("bus");
        let template = match policy {
            Policy::Shipped => "system.conf",
            Policy::Permissive => "permissive.conf",
        };
        let limits: String = limits.iter().map(|(name, v)| format!("  <limit name=\"{name}\">{v}</limit>\n")).collect();
        let text = std::fs::read_to_string(workspace_root().join("tests/dbus").join(template))
            .unwrap()
            .replace("</busconfig>", &format!("{limits}</busconfig>"))
            .replace("@SOCKET@", &socket.display().to_string())
            .replace("@POLICY@", &workspace_root().join("etc/dbus-1/org.smsotp.SmsOtp1.conf").display().to_string());
        let conf = dir.path().join("bus.conf");
        std::fs::write(&conf, text).unwrap();
        let child = Command::new(dbus_daemon)
            .arg("--nofork")
            .arg(format!("--config-file={}", conf.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("bus.log")).unwrap())
            .spawn()
            .unwrap();
        let bus = Bus { child, socket, _dir: dir };
        let s = bus.socket.clone();
        wait_for("dbus-daemon's socket", Duration::from_secs(10), || s.exists());
        bus
    }

    /// How many connections the bus has now (unique names), this
    /// question's own included.
    pub fn connections(&self) -> usize {
        let out = std::process::Command::new(crate::tools::require("dbus-send", "dbus-bin"))
            .arg(format!("--bus={}", self.address()))
            .args([
                "--print-reply",
                "--dest=org.freedesktop.DBus",
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus.ListNames",
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "ListNames: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).matches("string \":").count()
    }

    pub fn address(&self) -> String {
        format!("unix:path={}", self.socket.display())
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
