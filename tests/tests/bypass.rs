//! Break-glass codes through the real module: `smsotpctl bypass USER` prints
//! a code that replaces an SMS code once, also when SMS cannot be sent and
//! for a user who is not enrolled; it works once, expires, and appears in
//! no log.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use smsotp_tests::fake_twilio::Canned;
use smsotp_tests::pam::{Code, typed};
use smsotp_tests::world::{USER, World};

/// Issues a bypass code for `user` and returns it, as the admin reads it.
fn issue(w: &World, user: &str, minutes: &str) -> String {
    let out = w.daemon.ctl_ok(&["bypass", user, "--minutes", minutes]);
    let first = out.lines().next().unwrap();
    let code = first.rsplit(' ').next().unwrap().to_owned();
    assert!(first.starts_with(&format!("Bypass code for {user}: ")), "{out}");
    assert!(code.len() == 12 && code.bytes().all(|b| b.is_ascii_digit()), "{out}");
    assert!(out.contains("It replaces an SMS code once"), "{out}");
    code
}

fn assert_code_never_logged(w: &World, code: &str) {
    let logs = format!("{}\n{}", w.daemon.log_text(), w.syslog.text());
    assert!(!logs.contains(code), "the bypass code reached a log:\n{logs}");
    let state = w.daemon.state_dir();
    for entry in walk(&state) {
        let bytes = std::fs::read(&entry).unwrap_or_default();
        assert!(!String::from_utf8_lossy(&bytes).contains(code), "{} holds the bypass code", entry.display());
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() { out.extend(walk(&p)) } else { out.push(p) }
    }
    out
}

#[test]
fn a_bypass_code_lets_a_user_in_once_when_sms_cannot_be_sent() {
    let w = World::messaging("", "");
    w.twilio.push(Canned::error(500, 20500).forever());
    let code = issue(&w, USER, "10");
    let run = w.pam(USER).run(vec![typed(&code)]);
    assert_eq!(run.code, Code::Success, "{}", run.output);
    let log = w.daemon.log_text();
    assert!(log.contains("event=bypass-issued user=root until="), "{log}");
    assert!(log.contains("event=bypass-used user=root"), "{log}");
    assert!(!log.contains("event=trust-recorded"), "a bypass records no trust: {log}");
    // Used up: the same code is now just a wrong answer, and with SMS down
    // the login cannot succeed.
    let run = w.pam(USER).run(vec![typed(&code), typed(&code), typed(&code)]);
    assert_ne!(run.code, Code::Success, "{}", run.output);
    assert_eq!(w.daemon.log_text().matches("event=bypass-used").count(), 1);
    assert_code_never_logged(&w, &code);
    w.twilio.clear_canned();
}

#[test]
fn a_bypass_code_works_for_an_unenrolled_user_under_deny_and_a_wrong_one_does_not() {
    let w = World::messaging("", "");
    // "daemon" exists on every Debian system and is not enrolled here.
    let run = w.pam("daemon").run(vec![typed("000000000000"), typed("1"), typed("2")]);
    assert_ne!(run.code, Code::Success, "without a bypass, deny holds: {}", run.output);
    let code = issue(&w, "daemon", "5");
    let wrong = if code.starts_with('9') { "1".repeat(12) } else { "9".repeat(12) };
    let run = w.pam("daemon").run(vec![typed(&wrong), typed(&code)]);
    assert_eq!(run.code, Code::Success, "{}", run.output);
    assert!(run.shown().contains("Wrong code. 2 tries left."), "a wrong 12-digit code is a wrong code: {}", run.output);
    assert_code_never_logged(&w, &code);
}

#[test]
fn a_bypass_code_expires_and_a_new_one_replaces_the_old() {
    let w = World::messaging("", "");
    let old = issue(&w, USER, "1");
    let new = issue(&w, USER, "1");
    // The replaced code is gone; the new one is not used by this.
    let run = w.pam(USER).run(vec![typed(&old), w.code_of(1)]);
    assert_eq!(run.code, Code::Success, "{}", run.output);
    assert!(run.shown().contains("Wrong code. 2 tries left."), "{}", run.output);
    // Two minutes later the new one has expired too.
    w.set_time_offset(120);
    let run = w.pam(USER).run(vec![typed(&new), w.code_of(2)]);
    assert_eq!(run.code, Code::Success, "{}", run.output);
    assert!(run.shown().contains("Wrong code. 2 tries left."), "{}", run.output);
    assert!(!w.daemon.log_text().contains("event=bypass-used"));
}

#[test]
fn bypass_refuses_bad_requests_with_the_reason() {
    let w = World::messaging("", "");
    for (args, want) in [
        (vec!["bypass", "no-such-user-xyz"], "is not a user of this system"),
        (vec!["bypass", USER, "--minutes", "0"], "lasts 1 to 1440 minutes"),
        (vec!["bypass", USER, "--minutes", "1441"], "lasts 1 to 1440 minutes"),
    ] {
        let out = w.daemon.ctl(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
}
