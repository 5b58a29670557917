//! Enrollment at login through the real module and daemon
//! (`unenrolled = "enroll"`): the number, the code sent there, and only
//! then the enrollment; numbers outside the allowed countries are refused
//! before anything is sent.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use smsotp_tests::pam::{Code, typed};
use smsotp_tests::world::World;

const CONFIG: (&str, &str) = ("unenrolled = \"enroll\"", "[enrollment]\ncountries = [\"+1\"]");

#[test]
fn a_user_without_a_number_enrolls_at_login_with_proof_of_possession() {
    let w = World::messaging(CONFIG.0, CONFIG.1);
    // "daemon" exists on every Debian system and is not enrolled here.
    let run = w.pam("daemon").run(vec![typed("+33 6 12 34 56 78"), typed("+1 (415) 555-0177"), w.code_of(1)]);
    assert_eq!(run.code, Code::Success, "{}", run.output);
    let shown = run.shown();
    for line in [
        "SMS login is not set up for this account yet.",
        "Mobile number for login codes (+ and country code): ",
        "That number cannot be used: numbers from that country cannot be used here (allowed: +1).",
        "A login code is on its way by SMS to ******0177.",
        "SMS code: ",
    ] {
        assert!(shown.contains(line), "missing {line:?} in:\n{shown}");
    }
    let sms = w.twilio.messages();
    assert_eq!(sms.len(), 1, "nothing went to the refused number: {sms:?}");
    assert_eq!(sms[0].to, "+14155550177");
    assert!(sms[0].body.contains("to set up SMS login on"), "{}", sms[0].body);
    let show = w.daemon.ctl_ok(&["show", "daemon"]);
    assert!(show.contains("******0177"), "enrolled: {show}");
    assert!(w.daemon.log_text().contains("event=enrolled-at-login user=daemon to=******0177"));
    // The next login is an ordinary one.
    let run = w.pam("daemon").run(vec![w.code_of(2)]);
    assert_eq!(run.code, Code::Success, "{}", run.output);
    assert!(!run.shown().contains("Mobile number"), "{}", run.output);
    w.assert_clean();
}

#[test]
fn a_wrong_code_enrolls_nobody() {
    let w = World::messaging(CONFIG.0, CONFIG.1);
    let run = w.pam("daemon").run(vec![typed("+14155550166"), typed("000000"), typed("000001"), typed("000002")]);
    assert_ne!(run.code, Code::Success, "{}", run.output);
    let out = w.daemon.ctl(&["show", "daemon"]);
    assert_eq!(out.status.code(), Some(4), "not enrolled: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn three_numbers_that_cannot_be_used_end_the_login_with_nothing_sent() {
    let w = World::messaging(CONFIG.0, CONFIG.1);
    let run = w.pam("daemon").run(vec![typed("+33612345678"), typed("0044 20 7946 0958"), typed("415 555 0123")]);
    assert_eq!(run.code, Code::MaxTries, "{}", run.output);
    let shown = run.shown();
    assert!(shown.contains("write the number with + and the country code"), "{shown}");
    assert!(shown.contains("Too many numbers that cannot be used."), "{shown}");
    assert!(w.twilio.messages().is_empty());
    assert_eq!(w.daemon.log_text().matches("event=enroll-number-refused user=daemon").count(), 3);
}

#[test]
fn with_approval_a_proven_number_waits_for_the_administrator() {
    let w = World::messaging(CONFIG.0, "[enrollment]\ncountries = [\"+1\"]\napproval = true");
    let run = w.pam("daemon").run(vec![typed("+14155550177"), w.code_of(1)]);
    assert_eq!(run.code, Code::PermDenied, "{}", run.output);
    assert!(run.shown().contains("An administrator must approve it before you can log in with it."), "{}", run.output);
    let pending = w.daemon.ctl_ok(&["pending"]);
    assert!(pending.contains("daemon") && pending.contains("******0177"), "{pending}");
    // Until approved, no login gets to a code.
    let run = w.pam("daemon").run(vec![]);
    assert_eq!((run.code, w.twilio.messages().len()), (Code::PermDenied, 1), "{}", run.output);
    w.daemon.ctl_ok(&["approve", "daemon"]);
    assert!(w.daemon.ctl_ok(&["pending"]).contains("no number waits"));
    let run = w.pam("daemon").run(vec![w.code_of(2)]);
    assert_eq!(run.code, Code::Success, "{}", run.output);
    let log = w.daemon.log_text();
    assert!(log.contains("event=awaiting-approval user=daemon to=******0177"), "{log}");
    assert!(log.contains("event=approved user=daemon to=******0177"), "{log}");
}

#[test]
fn a_reset_user_is_told_and_enrolls_again_whatever_unenrolled_says() {
    // unenrolled = "deny", but an [enrollment] table for reset users.
    let w = World::messaging("", CONFIG.1);
    w.daemon.ctl_ok(&["enroll", "daemon", "+14155550166"]);
    let out = w.daemon.ctl_ok(&["reset", "daemon"]);
    assert!(out.contains("daemon enrolls again at the next login"), "{out}");
    let notice = w.twilio.wait_message(1);
    assert_eq!(notice.to, "+14155550166");
    assert!(notice.body.contains("was reset by an administrator"), "{}", notice.body);
    let run = w.pam("daemon").run(vec![typed("+14155550188"), w.code_of(2)]);
    assert_eq!(run.code, Code::Success, "{}", run.output);
    assert!(run.shown().contains("Mobile number for login codes"), "{}", run.output);
    assert!(w.daemon.ctl_ok(&["show", "daemon"]).contains("******0188"));
    // The reset was for one enrollment: an unenrolled user meets "deny" again.
    w.daemon.ctl_ok(&["unenroll", "daemon"]);
    let removed = w.twilio.wait_message(3);
    assert_eq!(removed.to, "+14155550188", "the number that stops getting codes is told");
    assert!(removed.body.contains("was removed by an administrator"), "{}", removed.body);
    let run = w.pam("daemon").run(vec![typed("+14155550188")]);
    assert!(!run.shown().contains("Mobile number"), "{}", run.output);
    let log = w.daemon.log_text();
    assert!(log.contains("event=user-reset user=daemon from_number=******0166"), "{log}");
}
