//! The real pam_sms.so through pamtester against the real smsotpd, asserting
//! both the PAM result and the text the user sees.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::time::Duration;

use smsotp_tests::bus::{Bus, Policy};
use smsotp_tests::daemon::{Daemon, messaging_config, verify_config};
use smsotp_tests::fake_twilio::{Canned, FakeTwilio};
use smsotp_tests::pam::{Code, Pam, typed};
use smsotp_tests::world::{NUMBER, USER, World};

const SENT: &str = "A login code is on its way by SMS to ******0123.\n";
/// After the first successful login of the week of a user with SMS alone.
const REMIND: &str = "SMS is the weakest way to sign in. Add an authenticator app with the command: smsotp totp\n";

#[test]
fn correct_code_logs_in() {
    let w = World::messaging("", "");
    let run = w.pam(USER).run(vec![w.code_of(1)]);
    assert_eq!(run.code, Code::Success, "{}", run.output);
    assert_eq!(run.shown(), format!("{SENT}SMS code: {REMIND}"));
    let sms = w.twilio.messages();
    assert_eq!(sms.len(), 1);
    assert_eq!(sms[0].to, NUMBER);
    assert!(sms[0].body.ends_with("(smsotp-test). It expires in 5 minutes. Do not share it."), "{}", sms[0].body);
    assert_eq!(sms[0].code().len(), 6);
    assert!(
        w.daemon.log_text().contains("event=code-accepted user=root service=smsotp-test"),
        "{}",
        w.daemon.log_text()
    );
    w.assert_clean();
    // Told once a week: the next login is quiet.
    let run = w.pam(USER).run(vec![w.code_of(2)]);
    assert_eq!(run.code, Code::Success, "{}", run.output);
    assert_eq!(run.shown(), format!("{SENT}SMS code: "));
}

#[test]
fn a_code_works_once() {
    let w = World::messaging("", "");
    assert_eq!(w.pam(USER).run(vec![w.code_of(1)]).code, Code::Success);
    let old = w.code(1);
    let run = w.pam(USER).run(vec![typed(&old), typed(&old), typed(&old)]);
    let fresh = w.code(2);
    if fresh != old {
        assert_eq!(run.code, Code::MaxTries, "the first login's code does not open the second: {}", run.output);
    }
}

#[test]
fn wrong_code_three_times() {
    let w = World::messaging("", "");
    let run = w.pam(USER).run(vec![typed("000000x"), typed("١٢٣٤٥٦"), typed(&"7".repeat(4096))]);
    assert_eq!(run.code, Code::MaxTries, "{}", run.output);
    assert_eq!(
        run.shown(),
        format!(
            "{SENT}SMS code: Wrong code. 2 tries left.\nSMS code: Wrong code. 1 try left.\nSMS code: Too many wrong codes.\n"
        )
    );
    let shown = w.daemon.ctl_ok(&["show", USER, "--json"]);
    assert!(shown.contains("\"failures\": 3"), "{shown}");
    w.assert_clean();
}

#[test]
fn resend_on_empty_answer() {
    let w = World::messaging("", "");
    let run = w.pam(USER).run(vec![
        // Too soon: refused, and it costs a try.
        typed(""),
        // 31 s later (on the daemon's clock) a new code is sent.
        Box::new(|| {
            w.set_time_offset(31);
            String::new()
        }),
        // The first code is dead; the second works.
        Box::new(|| w.code(2)),
    ]);
    assert_eq!(run.code, Code::Success, "{}", run.output);
    assert_eq!(
        run.shown(),
        format!(
            "{SENT}SMS code: A new code cannot be sent yet; enter the code you received. 2 tries left.\nSMS code: A new code is on its way by SMS to ******0123.\nSMS code: {REMIND}"
        )
    );
    assert_eq!(w.twilio.messages().len(), 2);
    w.assert_clean();
}

#[test]
fn the_old_code_dies_when_a_new_one_is_sent() {
    let w = World::messaging("", "");
    let run = w.pam(USER).run(vec![
        Box::new(|| {
            w.set_time_offset(31);
            String::new()
        }),
        w.code_of(1),
        w.code_of(1),
        w.code_of(1),
    ]);
    if w.code(1) != w.code(2) {
        assert_eq!(run.code, Code::MaxTries, "{}", run.output);
    }
}

#[test]
fn expired_code() {
    let w = World::messaging("", "");
    let run = w.pam(USER).run(vec![Box::new(|| {
        let code = w.code(1);
        w.set_time_offset(300);
        code
    })]);
    assert_eq!(run.code, Code::AuthErr, "{}", run.output);
    assert_eq!(run.shown(), format!("{SENT}SMS code: The code has expired. Log in again to get a new one.\n"));
    assert!(w.daemon.log_text().contains("event=code-expired user=root"));
}

#[test]
fn unenrolled_user_with_deny_sees_the_same_prompts_and_never_passes() {
    let w = World::messaging("unenrolled = \"deny\"", "");
    let answers = || vec![typed("123456x"), typed("0000000"), typed("")];
    let enrolled = w.pam(USER).probe().run(answers());
    assert_eq!(enrolled.code, Code::MaxTries);
    // Same text but for the four digits of the (real or made-up) number.
    let blank_digits = |s: String| s.replacen(&s[43..47].to_owned(), "NNNN", 1);
    let expected = blank_digits(enrolled.shown());
    assert_eq!(
        expected,
        "A login code is on its way by SMS to ******NNNN.\nSMS code: Wrong code. 2 tries left.\nSMS code: Wrong code. 1 try left.\nSMS code: Too many wrong codes.\n"
    );
    for user in ["daemon", "no-such-user-xyz"] {
        let run = w.pam(user).probe().run(answers());
        assert_eq!(run.code, Code::MaxTries, "{user}: {}", run.output);
        assert_eq!(blank_digits(run.shown()), expected, "{user}");
        assert!(run.shown()[43..47].bytes().all(|b| b.is_ascii_digit()));
    }
    assert_eq!(w.twilio.messages().len(), 1, "only the enrolled user got an SMS");
    assert!(w.daemon.log_text().contains("event=not-enrolled user=daemon"));
    assert!(w.daemon.log_text().contains("event=unknown-user user=no-such-user-xyz"));
}

#[test]
fn unenrolled_user_with_allow_is_ignored() {
    let w = World::messaging("unenrolled = \"allow\"", "");
    let run = w.pam("daemon").probe().run(vec![]);
    assert_eq!(run.code, Code::Ignore, "{}", run.output);
    assert_eq!(run.prompts, 0);
    // An enrolled user still needs the code.
    let run = w.pam(USER).probe().run(vec![typed("000000"), typed("000000"), typed("000000")]);
    assert_eq!(run.code, Code::MaxTries);
    assert!(w.daemon.log_text().contains("event=unenrolled-allowed user=daemon"));
}

#[test]
fn locked_out_user() {
    let w = World::messaging("", "[lockout]\nfailures = 3\nminutes = 15");
    let run = w.pam(USER).run(vec![typed("1"), typed("2"), typed("3")]);
    assert_eq!(run.code, Code::MaxTries);
    assert!(
        run.shown().ends_with(
            "Too many failed attempts: SMS login is locked for this account. Try again later or ask an administrator.\n"
        ),
        "{}",
        run.output
    );
    let sent = w.twilio.messages().len();
    let run = w.pam(USER).run(vec![]);
    assert_eq!(run.code, Code::MaxTries, "{}", run.output);
    assert_eq!(
        run.shown(),
        "Too many failed attempts: SMS login is locked for this account. Try again later or ask an administrator.\n"
    );
    assert_eq!(w.twilio.messages().len(), sent, "no SMS while locked out");
    assert!(w.daemon.ctl_ok(&["show", USER]).contains("state:      locked until"));
    // The lock survives a restart, and `smsotpctl unlock` lifts it.
    let mut w = w;
    w.daemon.restart();
    assert_eq!(w.pam(USER).run(vec![]).code, Code::MaxTries);
    w.daemon.ctl_ok(&["unlock", USER]);
    let n = w.twilio.messages().len();
    let run = w.pam(USER).run(vec![w.code_of(n + 1)]);
    assert_eq!(run.code, Code::Success, "{}", run.output);
}

#[test]
fn daemon_not_running_fail_mode_secure() {
    let bus = Bus::start(Policy::Shipped);
    let syslog = smsotp_tests::syslog::SyslogCapture::start();
    let mut pam = Pam::new(&bus.address(), USER).probe().arg("timeout=5");
    pam.syslog = Some(syslog.path.clone());
    let run = pam.run(vec![]);
    assert_eq!(run.code, Code::AuthinfoUnavail, "{}", run.output);
    assert_eq!(run.shown(), "The SMS login service is not available.\n");
    let log = syslog.text_with("smsotpd is unreachable");
    assert!(log.contains("smsotpd is unreachable"), "{log}");
    // No bus at all: the same.
    let mut pam = Pam::new("unix:path=/nonexistent/bus", USER).probe();
    pam.syslog = Some(syslog.path.clone());
    assert_eq!(pam.run(vec![]).code, Code::AuthinfoUnavail);
}

#[test]
fn daemon_not_running_fail_mode_safe() {
    let bus = Bus::start(Policy::Shipped);
    let syslog = smsotp_tests::syslog::SyslogCapture::start();
    let mut pam = Pam::new(&bus.address(), USER).probe().arg("fail_mode=safe");
    pam.syslog = Some(syslog.path.clone());
    let run = pam.run(vec![]);
    assert_eq!(run.code, Code::Ignore, "{}", run.output);
    assert_eq!(run.prompts, 0);
    let log = syslog.text_with("returning PAM_IGNORE because fail_mode=safe");
    assert!(log.contains("returning PAM_IGNORE because fail_mode=safe"), "the bypass is logged every time: {log}");
}

#[test]
fn the_daemon_dying_mid_login_fails_closed_even_in_safe_mode() {
    let mut w = World::messaging("", "");
    let run = w.pam(USER).probe().arg("fail_mode=safe").run(vec![Box::new(|| {
        let code = w.code(1);
        w.daemon.stop();
        code
    })]);
    assert_eq!(run.code, Code::AuthinfoUnavail, "{}", run.output);
    assert_eq!(run.shown(), format!("{SENT}SMS code: The SMS login service is not available.\n"));
}

#[test]
fn twilio_rejects_our_credentials() {
    let w = World::messaging("", "");
    w.twilio.push(Canned::error(401, 20003));
    // The prompt comes before the provider answers (issue 13, finding 1);
    // the failure is reported at the answer.
    let run = w.pam(USER).run(vec![typed("123456")]);
    assert_eq!(run.code, Code::AuthinfoUnavail, "{}", run.output);
    assert_eq!(run.shown(), format!("{SENT}SMS code: The login code could not be sent. Try again later.\n"));
    assert_eq!(w.twilio.requests().len(), 1, "no retry");
    let log = w.daemon.log_text();
    assert!(log.contains("rejected our credentials (HTTP 401, error 20003)"), "{log}");
    assert!(log.contains("event=provider-failure user=root"), "{log}");
    w.assert_clean();
}

#[test]
fn twilio_invalid_number_is_permanent() {
    let w = World::messaging("", "");
    w.twilio.push(Canned::error(400, 21211));
    let run = w.pam(USER).run(vec![typed("123456")]);
    assert_eq!(run.code, Code::AuthinfoUnavail, "{}", run.output);
    assert_eq!(w.twilio.requests().len(), 1, "no retry");
    let log = w.daemon.log_text();
    assert!(log.contains("error 21211: invalid 'To' phone number"), "{log}");
    assert!(!log.contains("4155550123"), "Twilio's message echoes the number; it is never logged");
}

#[test]
fn twilio_throttles_once_then_sends() {
    let w = World::messaging("", "");
    w.twilio.push(Canned::error(429, 20429));
    let run = w.pam(USER).run(vec![w.code_of(1)]);
    assert_eq!(run.code, Code::Success, "{}", run.output);
    assert_eq!(w.twilio.requests().len(), 2);
    assert_eq!(w.twilio.messages().len(), 1, "one SMS");
    w.assert_clean();
}

#[test]
fn twilio_failing_forever() {
    let w = World::messaging("", "[codes]\ndeadline_seconds = 3");
    w.twilio.push(Canned::error(500, 20500).forever());
    let run = w.pam(USER).run(vec![typed("123456")]);
    assert_eq!(run.code, Code::AuthinfoUnavail, "{}", run.output);
    assert!(run.shown().ends_with("The login code could not be sent. Try again later.\n"), "{}", run.shown());
    let tries = w.twilio.requests().len();
    assert!((2..=4).contains(&tries), "bounded retries, got {tries}");
    assert!(w.twilio.messages().is_empty());
}

#[test]
fn twilio_slower_than_the_deadline() {
    let w = World::messaging("", "");
    w.twilio.push(Canned::slow(Duration::from_secs(3)));
    // The request went out but was not answered in time: never repeated,
    // and the code it carried still works when the SMS comes late.
    let run = w.pam(USER).run(vec![w.code_of(1)]);
    assert_eq!(run.code, Code::Success, "{}", run.output);
    assert_eq!(w.twilio.requests().len(), 1, "a request that may have been delivered is never repeated");
    assert!(w.daemon.log_text().contains("did not answer in time"), "{}", w.daemon.log_text());
}

#[test]
fn bad_module_arguments() {
    let w = World::messaging("", "");
    for (arg, named) in [
        ("fail_mode=secur", "fail_mode=\"secur\""),
        ("nosuchoption", "unknown argument \"nosuchoption\""),
        ("timeout=0", "timeout=0"),
    ] {
        let run = w.pam(USER).probe().arg(arg).run(vec![]);
        assert_eq!(run.code, Code::ServiceErr, "{arg}: {}", run.output);
        assert_eq!(run.prompts, 0);
        let log = w.syslog.text_with(named);
        assert!(log.contains("bad module arguments") && log.contains(named), "{arg}: {log}");
    }
    assert!(w.twilio.requests().is_empty());
}

#[test]
fn verify_provider() {
    let bus = Bus::start(Policy::Shipped);
    let twilio = FakeTwilio::start();
    let daemon = Daemon::start(&bus, &verify_config(&twilio.url(), ""));
    daemon.ctl_ok(&["enroll", USER, NUMBER]);
    let pam = || Pam::new(&bus.address(), USER);
    // approved
    let run = pam().run(vec![Box::new(|| twilio.wait_message(1).code())]);
    assert_eq!(run.code, Code::Success, "{}", run.output);
    // pending (wrong), then approved
    let run = pam().run(vec![typed("000001"), Box::new(|| twilio.wait_message(2).code())]);
    assert_eq!(run.code, Code::Success, "{}", run.output);
    assert_eq!(run.shown(), format!("{SENT}SMS code: Wrong code. 2 tries left.\nSMS code: "));
    // 404: the verification is gone on Twilio's side
    let run = pam().run(vec![Box::new(|| {
        let code = twilio.wait_message(3).code();
        twilio.expire_verifications();
        code
    })]);
    assert_eq!(run.code, Code::AuthErr, "{}", run.output);
    assert!(run.shown().ends_with("The code has expired. Log in again to get a new one.\n"));
    assert_eq!(twilio.violations(), Vec::<String>::new());
}

#[test]
fn the_environment_cannot_redirect_the_module() {
    // The real daemon is on bus A, seen at the fixed system bus path inside
    // the sandbox. An attacker's daemon is on bus B, named by
    // DBUS_SYSTEM_BUS_ADDRESS, with the attacker's number enrolled.
    let w = World::messaging("", "");
    let evil_bus = Bus::start(Policy::Shipped);
    let evil_twilio = FakeTwilio::start();
    let evil = Daemon::start(&evil_bus, &messaging_config(&evil_twilio.url(), "", ""));
    evil.ctl_ok(&["enroll", USER, "+15550000666"]);
    let mut pam = Pam::new("", USER);
    pam.args.clear();
    pam.env.push(("DBUS_SYSTEM_BUS_ADDRESS".into(), evil_bus.address()));
    pam.tmpfs.push("/run/dbus".into());
    pam.binds.push((w.bus.socket().to_owned(), "/run/dbus/system_bus_socket".into()));
    let run = pam.run(vec![w.code_of(1)]);
    assert_eq!(run.code, Code::Success, "{}", run.output);
    assert!(evil_twilio.requests().is_empty(), "the attacker's daemon was never asked");
}

#[test]
fn connections_to_twilio_are_reused() {
    let w = World::messaging("", "");
    for n in 1..=3 {
        assert_eq!(w.pam(USER).run(vec![w.code_of(n)]).code, Code::Success);
    }
    assert_eq!(w.twilio.requests().len(), 3);
    assert_eq!(w.twilio.connections(), 1, "one kept-alive connection for three SMS");
}

/// Issue 13, findings 4 and 6: a 60 KB name costs the daemon no more than
/// any unknown name and gets the same answers; names that would reorder or
/// split a log line are escaped in the audit trail.
#[test]
fn hostile_user_names_are_unknown_users_and_logged_escaped() {
    let w = World::messaging("unenrolled = \"deny\"", "");
    let answers = || vec![typed("111111"), typed("222222"), typed("333333")];
    let blank_digits = |s: String| s.replacen(&s[43..47].to_owned(), "NNNN", 1);
    let plain = w.pam("no-such-user-xyz").probe().run(answers());
    let long = "x".repeat(60_000);
    let bidi = "alice\u{202e}nimda\u{2028}event=code-accepted";
    for user in [long.as_str(), bidi] {
        let run = w.pam(user).probe().run(answers());
        assert_eq!(run.code, Code::MaxTries, "{}", run.output);
        assert_eq!(blank_digits(run.shown()), blank_digits(plain.shown()), "the same answers as any unknown user");
    }
    let log = w.daemon.log_text();
    assert!(!log.contains(&"x".repeat(300)), "the long name was not kept whole");
    assert!(log.contains("event=unknown-user user=too-long:"), "{log}");
    assert!(!log.contains('\u{202e}') && !log.contains('\u{2028}'), "raw bidi/line-separator characters in the log");
    assert!(log.contains("alice\\u{202e}nimda\\u{2028}event=code-accepted"), "{log}");
    // Lines carry a "<6>" priority prefix; a forged event would follow it.
    let forged =
        log.lines().any(|l| l.split_once('>').is_some_and(|(_, rest)| rest.starts_with("event=code-accepted")));
    assert!(!forged, "no forged line");
    assert!(
        log.lines().any(|l| l.split_once('>').is_some_and(|(_, rest)| rest.starts_with("event=unknown-user"))),
        "{log}"
    );
    assert_eq!(w.twilio.messages().len(), 0);
    w.assert_clean();
}

/// Issue 13, finding 9: sudo passes PAM_SILENT, which drops the info line;
/// the prompt itself then says where the code went and that an empty
/// answer asks for a new one.
#[test]
fn under_pam_silent_the_prompt_carries_the_destination() {
    let w = World::messaging("", "");
    let run = w.pam(USER).silent().run(vec![
        // 31 s later (on the daemon's clock), so the resend is allowed.
        Box::new(|| {
            w.set_time_offset(31);
            String::new()
        }),
        Box::new(|| w.code(2)),
    ]);
    assert_eq!(run.code, Code::Success, "{}", run.output);
    let prompt = "Code sent by SMS to ******0123 (empty answer: a new code). SMS code: ";
    assert_eq!(run.shown(), format!("{prompt}{prompt}"), "no info or error lines, only the prompts");
    assert_eq!(w.twilio.messages().len(), 2, "the empty answer sent a new code");
    w.assert_clean();
}

/// Issue 13, finding 8: with Verify, a failure while checking the typed
/// code says so (not "could not be sent"), and Verify's per-number limit
/// (60203, sent as HTTP 429) is not retried like throttling.
#[test]
fn verify_check_failures_and_send_limits() {
    let bus = Bus::start(Policy::Shipped);
    let twilio = FakeTwilio::start();
    let daemon = Daemon::start(&bus, &verify_config(&twilio.url(), ""));
    daemon.ctl_ok(&["enroll", USER, NUMBER]);
    let pam = || Pam::new(&bus.address(), USER);
    let run = pam().run(vec![Box::new(|| {
        let code = twilio.wait_message(1).code();
        twilio.push(Canned::error(503, 20500).forever());
        code
    })]);
    assert_eq!(run.code, Code::AuthinfoUnavail, "{}", run.output);
    assert!(run.shown().ends_with("SMS code: The code could not be checked. Try again later.\n"), "{}", run.shown());
    twilio.clear_canned();
    let before = twilio.requests().len();
    twilio.push(Canned::error(429, 60203));
    let run = pam().run(vec![typed("123456")]);
    assert_eq!(run.code, Code::AuthErr, "{}", run.output);
    assert_eq!(
        run.shown(),
        format!("{SENT}SMS code: Too many codes were requested for this account. Try again later.\n")
    );
    assert_eq!(twilio.requests().len(), before + 1, "60203 is not retried");
    assert!(daemon.log_text().contains("error 60203"), "the operator sees Twilio's code");
}

/// Issue 13: the module holds no bus connection while the person types, so
/// the system bus's 256-connections-per-uid limit cannot refuse logins when
/// many people sit at the code prompt; the login still completes on a new
/// connection per call.
#[test]
fn nothing_is_held_on_the_bus_while_the_code_is_typed() {
    let w = World::messaging("", "");
    let idle = w.bus.connections();
    assert!(idle >= 2, "the daemon and this question are connected: {idle}");
    let at_prompt = std::cell::Cell::new(0);
    let run = w.pam(USER).run(vec![
        typed("000000x"),
        Box::new(|| {
            at_prompt.set(w.bus.connections());
            w.code(1)
        }),
    ]);
    assert_eq!(run.code, Code::Success, "{}", run.output);
    assert_eq!(at_prompt.get(), idle, "pamtester holds a bus connection at the prompt");
    w.assert_clean();
}

/// Issue 13, finding 7: OpenSSH starts keyboard-interactive again after a
/// failed round (each round is a pam_authenticate, as pamtester's run is).
/// A failing Twilio is asked for one round's worth, not once per round.
/// (A slow one: twilio_slower_than_the_deadline; reuse of a live code by a
/// new round: smsotpd's unit tests.)
#[test]
fn new_rounds_of_one_login_send_no_more_sms() {
    let w = World::messaging("", "[codes]\ndeadline_seconds = 3");
    w.twilio.push(Canned::error(500, 20500).forever());
    for round in 1..=3 {
        let run = w.pam(USER).run(vec![typed("123456")]);
        assert_eq!(run.code, Code::AuthinfoUnavail, "round {round}: {}", run.output);
    }
    let tries = w.twilio.requests().len();
    assert!((2..=4).contains(&tries), "three rounds, one round's requests: {tries}");
    w.twilio.clear_canned();
}
