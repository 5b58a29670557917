//! The .deb and the .rpm as built by packaging/build.sh: exact file lists
//! and modes, conffiles, dependencies, lintian and rpmlint clean, and the
//! systemd unit's exposure score. Installing, upgrading and removing the
//! .deb is in tests/tests/container.rs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use smsotp_tests::container::packages;
use smsotp_tests::tools::{require, workspace_root};
use std::collections::BTreeSet;
use std::process::Command;

fn output(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
}

/// "mode path" for every regular file, from `ls -l`-style listings.
fn files(listing: &str, path_column: usize) -> BTreeSet<String> {
    listing
        .lines()
        .filter(|l| l.starts_with('-'))
        .map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            format!("{} {}", &cols[0][..10], cols[path_column].trim_start_matches('.'))
        })
        .collect()
}

const COMMON: &[&str] = &[
    "-rwxr-xr-x /usr/sbin/smsotpd",
    "-rwxr-xr-x /usr/sbin/smsotpctl",
    "-rwxr-xr-x /usr/bin/smsotp",
    "-rw------- /etc/smsotpd/smsotpd.toml",
    "-rw-r--r-- /usr/share/dbus-1/system.d/org.smsotp.SmsOtp1.conf",
    "-rw-r--r-- /usr/share/dbus-1/system-services/org.smsotp.SmsOtp1.service",
    "-rw-r--r-- /usr/share/dbus-1/interfaces/org.smsotp.SmsOtp1.xml",
    "-rw-r--r-- /usr/lib/systemd/system/smsotpd.service",
    "-rw-r--r-- /usr/share/man/man8/pam_sms.8.gz",
    "-rw-r--r-- /usr/share/man/man8/smsotpd.8.gz",
    "-rw-r--r-- /usr/share/man/man8/smsotpctl.8.gz",
    "-rw-r--r-- /usr/share/man/man5/smsotpd.toml.5.gz",
    "-rw-r--r-- /usr/share/man/man1/smsotp.1.gz",
    "-rw-r--r-- /usr/share/doc/smsotp/README.md",
];

#[test]
fn deb_files_modes_conffiles_and_depends() {
    let (deb, _) = packages();
    let (ok, listing) = output(Command::new("dpkg-deb").arg("-c").arg(deb));
    assert!(ok, "{listing}");
    let mut want: BTreeSet<String> = COMMON.iter().map(|s| (*s).to_owned()).collect();
    for extra in [
        "-rw-r--r-- /usr/lib/x86_64-linux-gnu/security/pam_sms.so",
        "-rw-r--r-- /usr/share/pam-configs/smsotp",
        "-rw-r--r-- /usr/share/lintian/overrides/smsotp",
        "-rw-r--r-- /usr/share/doc/smsotp/copyright",
        "-rw-r--r-- /usr/share/doc/smsotp/changelog.Debian.gz",
    ] {
        want.insert(extra.to_owned());
    }
    assert_eq!(files(&listing, 5), want, "{listing}");
    for line in listing.lines() {
        assert!(line.contains(" 0/0 "), "not owned by root: {line}");
    }

    let (ok, conffiles) = output(Command::new("dpkg-deb").arg("--info").arg(deb).arg("conffiles"));
    assert!(ok);
    assert_eq!(conffiles.trim(), "/etc/smsotpd/smsotpd.toml");
    let (_, depends) = output(Command::new("dpkg-deb").args(["-f"]).arg(deb).arg("Depends"));
    for dep in ["dbus", "libpam-runtime", "ca-certificates", "libpam0g"] {
        assert!(depends.contains(dep), "Depends lacks {dep}: {depends}");
    }
    // The PAM profile never switches itself on.
    let (_, profile) = output(
        Command::new("sh")
            .arg("-c")
            .arg(format!("dpkg-deb --fsys-tarfile {} | tar -xO ./usr/share/pam-configs/smsotp", deb.display())),
    );
    assert!(profile.contains("Default: no"), "{profile}");
    assert!(profile.contains("pam_sms.so"), "{profile}");
}

#[test]
fn rpm_files_modes_and_config() {
    let (_, rpm) = packages();
    let rpm_bin = require("rpm", "rpm");
    let (ok, listing) = output(Command::new(&rpm_bin).arg("-qlvp").arg(rpm));
    assert!(ok, "{listing}");
    let mut want: BTreeSet<String> = COMMON.iter().map(|s| (*s).to_owned()).collect();
    want.insert("-rwxr-xr-x /usr/lib64/security/pam_sms.so".to_owned());
    want.insert("-rw-r--r-- /usr/share/licenses/smsotp/LICENSE".to_owned());
    assert_eq!(files(&listing, 8), want, "{listing}");
    for line in listing.lines() {
        assert!(line.contains(" root     root "), "not owned by root: {line}");
    }
    let (_, config) = output(Command::new(&rpm_bin).args(["-qp", "--configfiles"]).arg(rpm));
    assert_eq!(config.trim(), "/etc/smsotpd/smsotpd.toml");
    let (_, flags) =
        output(Command::new(&rpm_bin).args(["-qp", "--qf", "[%{FILENAMES} %{FILEFLAGS:fflags}\n]"]).arg(rpm));
    assert!(flags.contains("/etc/smsotpd/smsotpd.toml cn"), "config(noreplace) expected:\n{flags}");
    let (_, requires) = output(Command::new(&rpm_bin).args(["-qp", "--requires"]).arg(rpm));
    for dep in ["dbus", "pam", "ca-certificates", "libpam.so.0()(64bit)"] {
        assert!(requires.lines().any(|l| l.trim() == dep), "Requires lacks {dep}: {requires}");
    }
}

#[test]
fn lintian_finds_no_errors_or_warnings() {
    let (deb, _) = packages();
    let (ok, out) = output(
        Command::new(require("lintian", "lintian"))
            .args(["--fail-on", "error,warning", "--no-tag-display-limit"])
            .arg(deb),
    );
    let findings: Vec<&str> = out.lines().filter(|l| l.starts_with("E: ") || l.starts_with("W: ")).collect();
    assert!(ok && findings.is_empty(), "lintian:\n{out}");
}

/// The RPM's scriptlets as `rpm -qp --scripts` prints them, by kind.
fn rpm_scripts(rpm: &std::path::Path) -> std::collections::BTreeMap<String, String> {
    let (ok, text) = output(Command::new(require("rpm", "rpm")).args(["-qp", "--scripts"]).arg(rpm));
    assert!(ok, "{text}");
    let mut scripts = std::collections::BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        // "postinstall scriptlet:" or "postinstall scriptlet (using /bin/sh):"
        let header = line.split_once(" scriptlet (using ").map(|(k, _)| k).or_else(|| line.strip_suffix(" scriptlet:"));
        if let Some(kind) = header {
            current = Some(kind.to_owned());
            scripts.insert(kind.to_owned(), String::new());
        } else if let Some(kind) = &current {
            let s: &mut String = scripts.get_mut(kind).unwrap();
            s.push_str(line);
            s.push('\n');
        }
    }
    scripts
}

/// Runs a scriptlet with rpm's first argument and a systemctl that only
/// records its arguments; what systemctl was asked.
fn systemctl_calls(script: &str, arg: &str) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("calls");
    let fake = dir.path().join("systemctl");
    std::fs::write(&fake, format!("#!/bin/sh\necho \"$*\" >> {}\n", log.display())).unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let status = Command::new("/bin/sh")
        .args(["-c", script, "scriptlet", arg])
        .env("PATH", format!("{}:/usr/bin:/bin", dir.path().display()))
        .status()
        .unwrap();
    assert!(status.success(), "the scriptlet failed with {arg}:\n{script}");
    std::fs::read_to_string(&log).unwrap_or_default().lines().map(str::to_owned).collect()
}

#[test]
fn rpm_scriptlets_install_enable_and_remove_the_unit_as_fedoras_macros_do() {
    let (_, rpm) = packages();
    let scripts = rpm_scripts(rpm);
    let post = scripts.get("postinstall").expect("a postinstall scriptlet");
    // Running postinstall would touch /etc and /var here; its text is checked.
    for line in
        ["install -d -m 0700 /var/lib/smsotpd", "chmod 0600 /etc/smsotpd/smsotpd.toml", "if [ \"$1\" -eq 1 ]; then"]
    {
        assert!(post.contains(line), "postinstall lacks {line}:\n{post}");
    }
    assert!(post.contains("systemctl --no-reload preset smsotpd.service"), "{post}");
    let preun = scripts.get("preuninstall").expect("a preuninstall scriptlet");
    let postun = scripts.get("postuninstall").expect("a postuninstall scriptlet");
    // rpm passes how many copies remain: 0 on erase, 1 on upgrade.
    assert_eq!(systemctl_calls(preun, "0"), ["--no-reload disable --now smsotpd.service"]);
    assert_eq!(systemctl_calls(preun, "1"), Vec::<String>::new(), "an upgrade keeps it enabled and running");
    let restart: Vec<String> = systemctl_calls(postun, "1").into_iter().filter(|c| c != "daemon-reload").collect();
    assert_eq!(restart, ["try-restart smsotpd.service"], "an upgrade restarts the daemon");
    let erase: Vec<String> = systemctl_calls(postun, "0").into_iter().filter(|c| c != "daemon-reload").collect();
    assert_eq!(erase, Vec::<String>::new());
}

#[test]
fn rpmlint_finds_no_errors_or_warnings() {
    let (_, rpm) = packages();
    let config = workspace_root().join("packaging/rpmlint.toml");
    let (ok, out) = output(Command::new(require("rpmlint", "rpmlint")).arg("-c").arg(config).arg(rpm));
    assert!(ok, "rpmlint:\n{out}");
    assert!(out.contains("0 errors, 0 warnings"), "rpmlint:\n{out}");
}

#[test]
fn the_unit_is_rated_2_0_or_lower() {
    let unit = workspace_root().join("packaging/smsotpd.service");
    let (_, out) =
        output(Command::new(require("systemd-analyze", "systemd")).args(["security", "--offline=yes"]).arg(&unit));
    let score: f64 = out
        .lines()
        .find_map(|l| l.split("Overall exposure level for smsotpd.service: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{out}"));
    assert!(score <= 2.0, "exposure {score} > 2.0:\n{out}");
    let text = std::fs::read_to_string(&unit).unwrap();
    // Reload is SIGHUP (the daemon keeps running; tests/tests/lifecycle.rs),
    // and any exit the unit did not ask for is followed by a restart: with
    // on-failure, systemd counted a SIGHUP death as clean and left every SMS
    // login failing.
    for line in [
        "Type=dbus",
        "BusName=org.smsotp.SmsOtp1",
        "ExecStart=/usr/sbin/smsotpd",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Restart=always",
    ] {
        assert!(text.lines().any(|l| l == line), "the unit lacks {line}");
    }
}
