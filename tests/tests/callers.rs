//! Who may talk to smsotpd, and whom pam_sms trusts: the daemon re-checks
//! every caller itself, and the module only believes a root-owned daemon.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::process::Command;

use smsotp_tests::bus::{Bus, Policy};
use smsotp_tests::daemon::{Daemon, messaging_config};
use smsotp_tests::fake_twilio::FakeTwilio;
use smsotp_tests::pam::{Code, Pam};
use smsotp_tests::syslog::SyslogCapture;
use smsotp_tests::tools::require;
use smsotp_tests::world::{NUMBER, USER, World};

const NOBODY: u32 = 65534;

/// Calls `method` with dbus-send as `uid`; returns (success, output).
fn call_as(uid: u32, bus: &Bus, method: &str, args: &[&str]) -> (bool, String) {
    call_as_group(uid, uid, bus, method, args)
}

/// Like `call_as`, with primary group `gid` and no supplementary groups.
fn call_as_group(uid: u32, gid: u32, bus: &Bus, method: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(require("setpriv", "util-linux"))
        .args([format!("--reuid={uid}"), format!("--regid={gid}"), "--clear-groups".into()])
        .arg(require("dbus-send", "dbus-bin"))
        .arg(format!("--bus={}", bus.address()))
        .args(["--print-reply", "--dest=org.smsotp.SmsOtp1", "/org/smsotp/SmsOtp1"])
        .arg(if method.contains('.') { method.to_owned() } else { format!("org.smsotp.SmsOtp1.{method}") })
        .args(args)
        .output()
        .unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn the_daemon_refuses_non_root_callers_itself() {
    // A bus that lets anybody call anything: only the daemon's check remains.
    let bus = Bus::start(Policy::Permissive);
    let twilio = FakeTwilio::start();
    let daemon = Daemon::start(&bus, &messaging_config(&twilio.url(), "", ""));
    daemon.ctl_ok(&["enroll", USER, NUMBER]);
    for (method, args) in every_method().into_iter().filter(|(m, _)| !m.starts_with(USER_IFACE)) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (ok, out) = call_as(NOBODY, &bus, &method, &args);
        assert!(!ok, "{method} succeeded for nobody: {out}");
        assert!(out.contains("org.smsotp.SmsOtp1.Error.PermissionDenied"), "{method}: {out}");
    }
    assert!(twilio.requests().is_empty(), "nobody made the daemon send anything");
    assert!(daemon.ctl_ok(&["show", USER]).contains("******0123"), "nobody changed the enrollment");
    // Root is served.
    let (ok, out) = call_as(0, &bus, "ListUsers", &[]);
    assert!(ok, "{out}");
    assert!(out.contains("root"));
}

const USER_IFACE: &str = "org.smsotp.User1.";

/// Every method of the interface XML (the contract, so a new method is
/// covered the day it is added) with plausible arguments for dbus-send.
/// Methods of org.smsotp.User1 come with their interface ("org.smsotp.User1.Status").
fn every_method() -> Vec<(String, Vec<String>)> {
    let xml = std::fs::read_to_string(smsotp_tests::tools::workspace_root().join("etc/dbus-1/org.smsotp.SmsOtp1.xml"))
        .unwrap();
    let mut methods: Vec<(String, Vec<String>)> = Vec::new();
    let mut prefix = "";
    for line in xml.lines().map(str::trim) {
        if line.starts_with("<interface name=\"org.smsotp.User1\"") {
            prefix = USER_IFACE;
        } else if let Some(rest) = line.strip_prefix("<method name=\"") {
            methods.push((format!("{prefix}{}", rest.split('"').next().unwrap()), Vec::new()));
        } else if line.starts_with("<arg ") && line.contains("direction=\"in\"") {
            let attr = |k: &str| line.split(&format!("{k}=\"")).nth(1).unwrap().split('"').next().unwrap().to_owned();
            let value = match (attr("type").as_str(), attr("name").as_str()) {
                ("a{ss}", _) => "dict:string:string:service,sshd".to_owned(),
                ("s", "challenge") => "string:00000000000000000000000000000000".to_owned(),
                ("s", "code") => "string:123456".to_owned(),
                ("s", "number") => "string:+15550000666".to_owned(),
                ("s", "machine") => "string:addr:192.0.2.7".to_owned(),
                ("s", "factor") => "string:sms".to_owned(),
                ("s", _) => "string:root".to_owned(),
                ("u", "minutes") => "uint32:5".to_owned(),
                (t, n) => panic!("every_method: no sample value for {n} of type {t}; add one"),
            };
            methods.last_mut().unwrap().1.push(value);
        }
    }
    assert!(methods.len() >= 14, "parsed only {methods:?}");
    assert!(methods.iter().any(|(m, _)| m == "org.smsotp.User1.Status"), "{methods:?}");
    methods
}

/// The shipped bus policy, method by method: root (smsotpd's own user; the
/// unit runs it as root) gets through to the daemon, an unprivileged user
/// and a user whose group is root are stopped by the bus with AccessDenied
/// before the daemon sees them.
#[test]
fn the_shipped_policy_matrix() {
    let World { bus, twilio, .. } = &World::messaging("", "");
    for (method, args) in every_method() {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        if method.starts_with(USER_IFACE) {
            // Anyone reaches the daemon, which acts on the caller's own
            // account only: nobody has none enrolled.
            let (ok, out) = call_as(NOBODY, bus, &method, &args);
            assert!(!out.contains("AccessDenied"), "{method} as nobody: {out}");
            if method.ends_with(".Status") {
                assert!(ok && out.contains("\"nobody\"") && out.contains("boolean false"), "{out}");
            } else {
                assert!(!ok && out.contains("org.smsotp.SmsOtp1.Error."), "{method} as nobody: {out}");
            }
            continue;
        }
        for (who, uid, gid) in [("nobody", NOBODY, NOBODY), ("uid 1000 in group root", 1000, 0)] {
            let (ok, err) = call_as_group(uid, gid, bus, &method, &args);
            assert!(!ok, "{method} succeeded for {who}");
            assert!(err.contains("org.freedesktop.DBus.Error.AccessDenied"), "{method} as {who}: {err}");
        }
        let (_, out) = call_as(0, bus, &method, &args);
        assert!(!out.contains("AccessDenied") && !out.contains("PermissionDenied"), "{method} as root: {out}");
    }
    // The refused calls never reached the daemon: the only SMS are root's,
    // the code of its StartLogin, the notice its Enroll (a new number)
    // sends to the old number, and the one its Unenroll sends to the new.
    let sms = twilio.messages();
    assert_eq!(sms.len(), 3, "{sms:?}");
    assert_eq!(sms.iter().filter(|m| m.body.contains("is your login code")).count(), 1, "{sms:?}");
    assert_eq!(sms.iter().filter(|m| m.body.starts_with("The number for SMS login codes of root")).count(), 1);
    assert_eq!(sms.iter().filter(|m| m.body.starts_with("SMS login for root on ")).count(), 1);
}

#[test]
fn the_shipped_policy_lets_only_root_own_the_name() {
    let bus = Bus::start(Policy::Shipped);
    let twilio = FakeTwilio::start();
    let config = messaging_config(&twilio.url(), "", "");
    let result = std::panic::catch_unwind(|| Daemon::start_with(&bus, &config, Some(NOBODY)));
    let message = match result {
        Ok(_) => panic!("smsotpd running as nobody owned the name under the shipped policy"),
        Err(e) => e.downcast_ref::<String>().cloned().unwrap_or_default(),
    };
    assert!(message.contains("cannot own org.smsotp.SmsOtp1"), "{message}");
}

#[test]
fn the_module_refuses_a_daemon_that_is_not_root() {
    // On a permissive bus, an unprivileged process owns the daemon's name.
    let bus = Bus::start(Policy::Permissive);
    let twilio = FakeTwilio::start();
    let impostor = Daemon::start_with(&bus, &messaging_config(&twilio.url(), "", ""), Some(NOBODY));
    // Enrolled there, so a StartLogin the impostor answered would send an SMS.
    impostor.ctl_ok(&["enroll", USER, NUMBER]);
    let syslog = SyslogCapture::start();
    let mut pam = Pam::new(&bus.address(), USER).probe().arg("fail_mode=safe");
    pam.syslog = Some(syslog.path.clone());
    let run = pam.run(vec![]);
    assert_eq!(run.code, Code::AuthinfoUnavail, "never IGNORE, whatever the fail mode: {}", run.output);
    assert_eq!(run.prompts, 0);
    let log = syslog.text_with("with uid 65534, not root");
    assert!(log.contains("with uid 65534, not root"), "{log}");
    assert!(twilio.messages().is_empty(), "the impostor was never asked: {:?}", twilio.messages());
    // An admin who runs the daemon as that user says so explicitly.
    let mut pam = Pam::new(&bus.address(), USER).probe().arg("daemon_user=nobody");
    pam.syslog = Some(syslog.path.clone());
    let run =
        pam.run(vec![smsotp_tests::pam::typed("1"), smsotp_tests::pam::typed("2"), smsotp_tests::pam::typed("3")]);
    assert!(run.output.contains("A login code is on its way by SMS to ******0123"), "{}", run.output);
    assert_eq!(twilio.messages().len(), 1, "this time the daemon was asked, and sent the code");
}

#[test]
fn later_calls_of_a_login_go_only_to_the_daemon_that_was_checked() {
    let w = World::messaging("", "");
    let second: std::cell::RefCell<Option<Daemon>> = std::cell::RefCell::new(None);
    let answer: smsotp_tests::pam::Answer<'_> = Box::new(|| {
        let code = w.code(1);
        // While the person types, the daemon stops and another process
        // takes the name (here a second smsotpd: same name, new unique name).
        let pid = nix::unistd::Pid::from_raw(w.daemon.pid() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        smsotp_tests::tools::wait_for("the first daemon to exit", std::time::Duration::from_secs(10), || {
            !std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
        });
        *second.borrow_mut() = Some(Daemon::start(&w.bus, &messaging_config(&w.twilio.url(), "", "")));
        code
    });
    let run = w.pam(USER).run(vec![answer]);
    assert_eq!(run.code, Code::AuthinfoUnavail, "{}", run.output);
    assert!(run.shown().ends_with("SMS code: The SMS login service is not available.\n"), "{}", run.output);
    let log = w.syslog.text_with("lost smsotpd during the login");
    assert!(log.contains("lost smsotpd during the login"), "{log}");
    let second = second.borrow();
    let newcomer = second.as_ref().expect("the second daemon started").log_text();
    assert!(!newcomer.contains("CheckCode") && !newcomer.contains("event="), "the new owner was asked: {newcomer}");
}
