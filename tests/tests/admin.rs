//! smsotpctl and the daemon's start-up checks, as an administrator meets them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use smsotp_tests::bus::{Bus, Policy};
use smsotp_tests::daemon::messaging_config;
use smsotp_tests::tools::{built, private_tempdir};
use smsotp_tests::world::{NUMBER, USER, World};

fn code(out: &std::process::Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn enroll_list_show_unlock_unenroll() {
    let w = World::messaging("", "");
    assert_eq!(w.daemon.ctl_ok(&["enroll", "daemon", "+4915112345678"]), "daemon enrolled: codes go to ******5678\n");
    let list = w.daemon.ctl_ok(&["list"]);
    assert!(list.starts_with("USER"), "{list}");
    assert!(list.contains("daemon               ******5678   ok        0"), "{list}");
    let json: serde_json::Value = serde_json::from_str(&w.daemon.ctl_ok(&["list", "--json"])).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 2);
    assert_eq!(json[1]["user"], "root");
    assert_eq!(json[1]["number"], "******0123");
    assert_eq!(json[1]["state"], "ok");
    let show: serde_json::Value = serde_json::from_str(&w.daemon.ctl_ok(&["show", USER, "--json"])).unwrap();
    assert_eq!(show["failures"], 0);
    assert_eq!(show["locked_until"], serde_json::Value::Null);
    assert_eq!(w.daemon.ctl_ok(&["unlock", USER]), "root unlocked\n");
    assert_eq!(w.daemon.ctl_ok(&["unenroll", "daemon"]), "daemon unenrolled\n");
    // Nothing shows a full number.
    assert!(!w.daemon.ctl_ok(&["list"]).contains(&NUMBER[1..]));
}

#[test]
fn errors_name_the_problem_and_exit_codes_differ() {
    let w = World::messaging("", "");
    let out = w.daemon.ctl(&["enroll", USER, "0170 1234567"]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("E.164 form"), "{}", stderr(&out));
    let out = w.daemon.ctl(&["enroll", "no-such-user-xyz", NUMBER]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("there is no user no-such-user-xyz"), "{}", stderr(&out));
    let out = w.daemon.ctl(&["show", "daemon"]);
    assert_eq!(code(&out), 4, "not enrolled: {}", stderr(&out));
    let out = w.daemon.ctl(&["frobnicate"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("Usage: smsotpctl"), "{}", stderr(&out));
    let out =
        Command::new(&built().smsotpctl).args(["--bus", "unix:path=/nonexistent/socket", "list"]).output().unwrap();
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(stderr(&out).contains("cannot reach the D-Bus system bus"), "{}", stderr(&out));
    let bus = Bus::start(Policy::Shipped);
    let out = Command::new(&built().smsotpctl).args(["--bus", &bus.address(), "list"]).output().unwrap();
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(stderr(&out).contains("smsotpd is not running"), "{}", stderr(&out));
}

#[test]
fn test_send_goes_through_the_provider() {
    let w = World::messaging("", "");
    assert_eq!(w.daemon.ctl_ok(&["test-send", USER]), "test message sent to ******0123\n");
    let sms = w.twilio.wait_message(1);
    assert!(sms.body.starts_with("smsotp test message from"), "{}", sms.body);
    w.twilio.push(smsotp_tests::fake_twilio::Canned::error(401, 20003));
    let out = w.daemon.ctl(&["test-send", USER]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("rejected our credentials"), "the admin sees why: {}", stderr(&out));
}

#[test]
fn check_config() {
    let dir = private_tempdir();
    let path = dir.path().join("smsotpd.toml");
    let good = messaging_config("https://api.twilio.com", "", "").replace("@STATE@", "/var/lib/smsotpd");
    std::fs::write(&path, &good).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let ctl = |p: &std::path::Path| {
        Command::new(&built().smsotpctl).arg("check-config").arg("--config").arg(p).output().unwrap()
    };
    let out = ctl(&path);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("provider:   twilio-messaging"));
    std::fs::write(&path, good.replace("[twilio]", "[codes]\nlenght = 8\n[twilio]")).unwrap();
    let out = ctl(&path);
    assert_eq!(code(&out), 5);
    let e = stderr(&out);
    assert!(e.contains(&path.display().to_string()) && e.contains("lenght") && e.contains("`length`"), "{e}");
    std::fs::write(&path, &good).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = ctl(&path);
    assert_eq!(code(&out), 5);
    assert!(stderr(&out).contains("chmod 600"), "{}", stderr(&out));
}

#[test]
fn the_daemon_refuses_to_start_with_readable_secrets() {
    let dir = private_tempdir();
    let path = dir.path().join("smsotpd.toml");
    std::fs::write(
        &path,
        messaging_config("https://api.twilio.com", "", "")
            .replace("@STATE@", &dir.path().join("s").display().to_string()),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    let out = Command::new(&built().smsotpd)
        .args(["--log", "stderr", "--bus", "unix:path=/nonexistent", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let e = stderr(&out);
    assert!(e.contains("holds Twilio credentials but is readable by group or others (mode 0640)"), "{e}");
    assert!(!e.contains(smsotp_tests::fake_twilio::AUTH_TOKEN));
}

#[test]
fn the_outbox_warns_at_every_start() {
    let bus = Bus::start(Policy::Shipped);
    let mut d = smsotp_tests::daemon::Daemon::start(
        &bus,
        "version = 1\nprovider = \"outbox\"\nstate_directory = \"@STATE@\"\n[outbox]\npath = \"@DIR@/outbox\"\n",
    );
    d.restart();
    assert_eq!(d.log_text().matches("provider \"outbox\": codes are written to").count(), 2, "{}", d.log_text());
}

#[test]
fn the_daemon_runs_hardened() {
    let w = World::messaging("", "");
    let pid = w.daemon.pid();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(status.lines().any(|l| l == "Umask:\t0077"), "{status}");
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let core = limits.lines().find(|l| l.starts_with("Max core file size")).unwrap();
    assert_eq!(core.split_whitespace().collect::<Vec<_>>()[4..6], ["0", "0"], "{core}");
    // State files are private.
    let users = w.daemon.state_dir().join("users");
    assert_eq!(std::fs::metadata(&users).unwrap().permissions().mode() & 0o777, 0o700);
    assert_eq!(std::fs::metadata(users.join(USER)).unwrap().permissions().mode() & 0o777, 0o600);
}

/// Issue 13, finding 5: a write killed halfway leaves a temp file holding
/// a full number; the daemon removes such files when it starts.
#[test]
fn interrupted_writes_do_not_outlive_a_restart() {
    let mut w = World::messaging("", "");
    let users = w.daemon.state_dir().join("users");
    let stale = users.join(format!(".{USER}.5e1f0a.tmp"));
    std::fs::write(&stale, format!("version = 1\nphone = \"{NUMBER}\"\n")).unwrap();
    w.daemon.restart();
    assert!(!stale.exists(), "the temp file of an interrupted write survived a restart");
    assert!(users.join(USER).exists(), "the real record stays");
    assert!(w.daemon.log_text().contains("removed 1 temp file(s) of interrupted writes"), "{}", w.daemon.log_text());
}

/// Issue 13, finding 10: with the README's set-up (the token in its own
/// file, `LoadCredential=` in a drop-in), check-config finds the token
/// where the unit loads it, as the daemon would.
#[test]
fn check_config_finds_the_credential_the_unit_loads() {
    let dir = private_tempdir();
    let path = dir.path().join("smsotpd.toml");
    let without_token: String = messaging_config("https://api.twilio.com", "", "")
        .replace("@STATE@", "/var/lib/smsotpd")
        .lines()
        .filter(|l| !l.starts_with("auth_token"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&path, without_token).unwrap();
    let token = dir.path().join("twilio-auth-token");
    std::fs::write(&token, format!("{}\n", smsotp_tests::fake_twilio::AUTH_TOKEN)).unwrap();
    for f in [&path, &token] {
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let units = dir.path().join("units");
    std::fs::create_dir_all(units.join("smsotpd.service.d")).unwrap();
    let bwrap = smsotp_tests::tools::require("bwrap", "bubblewrap");
    // The machine's /etc/systemd/system is replaced by `units` for smsotpctl.
    let check = || {
        Command::new(&bwrap)
            .args(["--bind", "/", "/", "--bind"])
            .arg(&units)
            .arg("/etc/systemd/system")
            .arg(&built().smsotpctl)
            .args(["check-config", "--config"])
            .arg(&path)
            .env_remove("CREDENTIALS_DIRECTORY")
            .output()
            .unwrap()
    };
    let out = check();
    assert_eq!(code(&out), 5, "no token anywhere: {}", stderr(&out));
    assert!(stderr(&out).contains("no Twilio credentials"), "{}", stderr(&out));
    std::fs::write(
        units.join("smsotpd.service.d/credentials.conf"),
        format!("[Service]\nLoadCredential=twilio-auth-token:{}\n", token.display()),
    )
    .unwrap();
    let out = check();
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(&format!("twilio-auth-token from {}", token.display())), "{stdout}");
    assert!(!stdout.contains(smsotp_tests::fake_twilio::AUTH_TOKEN), "the token itself is never shown");
}

#[test]
fn rollout_lists_root_until_root_has_a_number() {
    let w = smsotp_tests::world::World::messaging("", "");
    let out = w.daemon.ctl_ok(&["rollout"]);
    assert!(!out.lines().any(|l| l.trim_start().starts_with("root ")), "root is enrolled here:\n{out}");
    w.daemon.ctl_ok(&["unenroll", "root"]);
    let out = w.daemon.ctl_ok(&["rollout"]);
    let first = out.lines().nth(1).unwrap_or_default();
    assert_eq!(first.split_whitespace().collect::<Vec<_>>(), ["root", "root"], "root comes first:\n{out}");
    assert!(out.contains("enroll them with: smsotpctl enroll USER +NUMBER"), "{out}");
}
