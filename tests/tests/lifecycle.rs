//! The daemon's life as systemd drives it (ExecReload= sends SIGHUP,
//! Restart=always starts it again): SIGHUP reloads the configuration, a
//! broken file is refused while the running configuration stays, a login in
//! progress carries over, and after kill -9 a restarted daemon takes logins.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use smsotp_tests::pam::Code;
use smsotp_tests::tools::wait_for;
use smsotp_tests::world::{USER, World};

fn signal(w: &World, s: Signal) {
    kill(Pid::from_raw(w.daemon.pid() as i32), s).unwrap();
}

fn alive(w: &World) -> bool {
    std::fs::read_to_string(format!("/proc/{}/stat", w.daemon.pid())).is_ok_and(|s| !s.contains(") Z "))
}

/// Sends SIGHUP and waits for the daemon to say `what` once more.
fn reload(w: &World, what: &str) {
    let before = w.daemon.log_text().matches(what).count();
    signal(w, Signal::SIGHUP);
    wait_for(what, Duration::from_secs(10), || w.daemon.log_text().matches(what).count() > before);
}

#[test]
fn sighup_reloads_keeps_logins_in_progress_and_refuses_a_broken_file() {
    let w = World::messaging("", "");
    let config = w.daemon.config.clone();
    let original = std::fs::read_to_string(&config).unwrap();
    // While a login waits at the code prompt, codes become 8 digits long.
    let answer = Box::new(|| {
        let code = w.code(1);
        std::fs::write(&config, format!("{original}\n[codes]\nlength = 8\n")).unwrap();
        reload(&w, "configuration reloaded");
        code
    });
    let run = w.pam(USER).run(vec![answer]);
    assert_eq!(run.code, Code::Success, "the code sent before the reload still works: {}", run.output);
    assert_eq!(w.code(1).len(), 6);
    assert!(w.daemon.log_text().contains("event=config-reloaded config="), "{}", w.daemon.log_text());
    let run = w.pam(USER).run(vec![w.code_of(2)]);
    assert_eq!(run.code, Code::Success, "{}", run.output);
    assert_eq!(w.code(2).len(), 8, "the new configuration is in force");

    // A broken file: refused with the reason, the daemon stays up and keeps
    // the configuration it runs.
    std::fs::write(&config, format!("{original}\n[codes]\nlength = \"eight\"\n")).unwrap();
    reload(&w, "reload refused, the running configuration stays");
    assert!(alive(&w), "SIGHUP must never end the daemon");
    let log = w.daemon.log_text();
    assert!(log.contains("length = \"eight\""), "the log shows the bad line: {log}");
    let run = w.pam(USER).run(vec![w.code_of(3)]);
    assert_eq!(run.code, Code::Success, "{}", run.output);
    assert_eq!(w.code(3).len(), 8);
    w.assert_clean();
}

#[test]
fn after_kill_9_the_restarted_daemon_takes_logins() {
    let mut w = World::messaging("", "");
    signal(&w, Signal::SIGKILL);
    wait_for("smsotpd to die", Duration::from_secs(10), || !alive(&w));
    // What Restart=always does: start it again, the same way.
    w.daemon.restart();
    let run = w.pam(USER).run(vec![w.code_of(1)]);
    assert_eq!(run.code, Code::Success, "enrollment and keys survive kill -9: {}", run.output);
}

#[test]
fn the_hourly_sms_budget_survives_a_restart() {
    let mut w = World::messaging("", "[codes]\nsms_per_user_per_hour = 1");
    let run = w.pam(USER).run(vec![w.code_of(1)]);
    assert_eq!(run.code, Code::Success, "{}", run.output);
    w.daemon.restart();
    let run = w.pam(USER).run(vec![]);
    assert_eq!(run.code, Code::AuthErr, "{}", run.output);
    assert!(run.shown().contains("Too many codes were requested for this account."), "{}", run.output);
    assert_eq!(w.twilio.messages().len(), 1, "no second SMS after the restart");
    let doctor = w.daemon.ctl(&["doctor", "--config", w.daemon.config.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&doctor.stdout).into_owned();
    assert!(text.contains("budget: 1 of 10000 SMS (codes.sms_per_host_per_day) in the last 24 hours"), "{text}");
    assert!(text.contains("WARN  destinations: no [destinations] countries: any number in the world"), "{text}");
}
