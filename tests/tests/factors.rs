//! A user's own second factors, through the real `smsotp`, the real daemon
//! and the real pam_sms.so: an authenticator app (right, replayed, skewed,
//! wrong), recovery codes (each works once), switching at the prompt, a
//! number change (proof, notice to the old number, trust revoked,
//! cool-down), and users acting only on their own account.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use smsotp_tests::pam::{Code, typed};
use smsotp_tests::totp::{code_at, key_from_base32};
use smsotp_tests::user_cli;
use smsotp_tests::world::{NUMBER, USER, World};

const NOBODY: u32 = 65534;

/// Sets the daemon's clock 2 s into a 30 s step, a day ahead of real time,
/// and returns that instant: the test has 28 s before the step changes.
fn align_daemon_clock(w: &World) -> u64 {
    #[allow(clippy::disallowed_methods)] // the daemon runs on real time plus an offset
    let real = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let target = (real / 30 + 2881) * 30 + 2;
    w.daemon.set_time_offset(i64::try_from(target - real).unwrap());
    target
}

/// `smsotp totp` as root, answered with the app's code at `now`; the key.
fn add_app(w: &World, now: u64) -> Vec<u8> {
    let mut s = user_cli::start(&w.bus.address(), 0, &["totp"]);
    let shown = s.wait_for("Code the app shows now: ");
    assert!(shown.contains("Scan this QR code") && shown.contains('█'), "{shown}");
    let b32 = shown.split("30 s): ").nth(1).unwrap().lines().next().unwrap().trim().to_owned();
    let key = key_from_base32(&b32);
    s.answer("000000x");
    s.wait_for("Wrong code. 2 tries left.");
    s.answer(&code_at(&key, now));
    let (code, out) = s.finish();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Your authenticator app is added and is asked first at login"), "{out}");
    key
}

#[test]
fn an_app_is_asked_first_and_refuses_replayed_and_far_off_codes() {
    let w = World::messaging("", "");
    let now = align_daemon_clock(&w);
    let key = add_app(&w, now);
    let at = |steps: i64| code_at(&key, now.checked_add_signed(steps * 30).unwrap());
    // The confirming code is used; two steps ahead is too far; one ahead
    // (a phone 30 s fast) is fine.
    let run = w.pam(USER).run(vec![typed(&at(0)), typed(&at(2)), typed(&at(1))]);
    assert_eq!(run.code, Code::Success, "{}", run.output);
    let app_prompt = "Authenticator app code (or 's' for SMS): ";
    assert_eq!(
        run.shown(),
        format!("{app_prompt}Wrong code. 2 tries left.\n{app_prompt}Wrong code. 1 try left.\n{app_prompt}")
    );
    assert!(w.twilio.messages().is_empty(), "no SMS when the app answers");
    // That step is used now too; 's' sends the first SMS of this login.
    let run = w.pam(USER).run(vec![typed(&at(1)), typed(&at(-2)), typed("s"), w.code_of(1)]);
    assert_eq!(run.code, Code::Success, "{}", run.output);
    assert_eq!(
        run.shown(),
        format!(
            "{app_prompt}Wrong code. 2 tries left.\n{app_prompt}Wrong code. 1 try left.\n{app_prompt}A login code is on its way by SMS to ******0123.\nSMS code (or 't' for your authenticator app): "
        ),
        "switching keeps the tries: one left"
    );
    assert_eq!(w.twilio.messages().len(), 1);
    let log = w.daemon.log_text();
    assert!(log.contains("event=code-accepted user=root") && log.contains("factor=totp"), "{log}");
    assert!(log.contains("event=factor-switched user=root service=smsotp-test rhost=- factor=sms"), "{log}");
    assert!(log.matches("event=code-wrong user=root").count() == 4, "{log}");
    let show = w.daemon.ctl_ok(&["show", USER]);
    assert!(show.contains("factors:    totp, sms (asked first: totp)"), "{show}");
    w.assert_clean();
    for step in -2..=2 {
        assert!(!log.contains(&at(step)), "an app code reached the log");
    }
}

#[test]
fn recovery_codes_work_once_and_a_new_set_voids_the_old_one() {
    let w = World::messaging("", "");
    let (code, out) = user_cli::run(&w.bus.address(), 0, &["recovery-codes"]);
    assert_eq!(code, 0, "{out}");
    let codes: Vec<String> = out.lines().filter_map(|l| l.strip_prefix("  ")).map(str::to_owned).collect();
    assert_eq!(codes.len(), 10, "{out}");
    let state = std::fs::read_to_string(w.daemon.state_dir().join("users/root")).unwrap();
    assert!(!codes.iter().any(|c| state.contains(c) || state.contains(&c.replace('-', ""))), "stored hashed");
    let recovery_prompt = "Recovery code (or 's' for SMS): ";
    let run = w.pam(USER).run(vec![typed("r"), typed(&codes[0].to_uppercase())]);
    assert_eq!(run.code, Code::Success, "{}", run.output);
    assert!(
        run.shown().contains(&format!("SMS code (or 'r' for a recovery code): {recovery_prompt}")),
        "{}",
        run.output
    );
    let run = w.pam(USER).run(vec![typed("r"), typed(&codes[0]), typed(&codes[1])]);
    assert_eq!(run.code, Code::Success, "{}", run.output);
    assert!(
        run.shown().contains(&format!("{recovery_prompt}Wrong code. 2 tries left.\n{recovery_prompt}")),
        "used once: {}",
        run.output
    );
    let (_, status) = user_cli::run(&w.bus.address(), 0, &["status"]);
    assert!(status.contains("recovery:    8 codes left"), "{status}");
    assert!(status.contains("sign-in  smsotp-test from this machine"), "{status}");
    // Right away, a new set is refused: ten Argon2id hashes, once a minute.
    let (code, out) = user_cli::run(&w.bus.address(), 0, &["recovery-codes"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("once a minute"), "{out}");
    // A minute later, a new set: the old codes are void.
    w.set_time_offset(61);
    let (code, out) = user_cli::run(&w.bus.address(), 0, &["recovery-codes"]);
    assert_eq!(code, 0, "{out}");
    let fresh: Vec<&str> = out.lines().filter_map(|l| l.strip_prefix("  ")).collect();
    let run = w.pam(USER).run(vec![typed("r"), typed(&codes[2]), typed(fresh[0])]);
    assert_eq!(run.code, Code::Success, "{}", run.output);
    assert!(run.shown().contains("Wrong code. 2 tries left."), "{}", run.output);
    let log = format!("{}{}", w.daemon.log_text(), w.syslog.text());
    assert!(!codes.iter().any(|c| log.contains(c)) && !log.contains(fresh[0]), "a recovery code reached a log");
    assert!(log.contains("event=recovery-codes-issued user=root uid=0 replaced=yes"), "{log}");
}

#[test]
fn a_new_number_is_proven_the_old_one_told_trust_revoked_and_it_waits_its_cooldown() {
    let w = World::messaging("", "[destinations]\ncountries = [\"+1\"]\n[policy]\nmode = \"trust\"");
    let run = w.pam(USER).from("192.0.2.8").run(vec![w.code_of(1)]);
    assert_eq!(run.code, Code::Success, "{}", run.output);
    let run = w.pam(USER).from("192.0.2.8").run(vec![]);
    assert_eq!((run.code, run.prompts), (Code::Success, 0), "trusted: {}", run.output);
    let mut s = user_cli::start(&w.bus.address(), 0, &["change-number", "+1 (415) 555-0199"]);
    s.wait_for("Code from that SMS: ");
    assert_eq!(w.twilio.wait_message(2).to, "+14155550199");
    s.answer(&w.code(2));
    let (code, out) = s.finish();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("A code is on its way by SMS to ******0199."), "{out}");
    assert!(out.contains("until then they go to your old number, which was told of the change"), "{out}");
    let notice = w.twilio.wait_message(3);
    assert_eq!(notice.to, NUMBER, "the old number is told");
    assert!(notice.body.contains("root on") && notice.body.contains("will change to ******0199"), "{}", notice.body);
    assert!(notice.body.contains("If this was not you, tell your administrator now."), "{}", notice.body);
    // Trust is gone, and the old number still gets the codes.
    let run = w.pam(USER).from("192.0.2.8").run(vec![w.code_of(4)]);
    assert_eq!(run.code, Code::Success, "{}", run.output);
    assert!(run.shown().starts_with("A login code is on its way by SMS to ******0123."), "{}", run.output);
    assert_eq!(w.twilio.messages()[3].to, NUMBER);
    let (_, status) = user_cli::run(&w.bus.address(), 0, &["status"]);
    assert!(status.contains("number:      ******0123") && status.contains("new number:  ******0199 from "), "{status}");
    // A day later the new number takes over.
    w.daemon.set_time_offset(24 * 3600 + 60);
    let run = w.pam(USER).run(vec![w.code_of(5)]);
    assert_eq!(run.code, Code::Success, "{}", run.output);
    assert_eq!(w.twilio.messages()[4].to, "+14155550199");
    let log = w.daemon.log_text();
    assert!(log.contains("event=number-changed user=root uid=0 from_number=******0123 to=******0199"), "{log}");
    assert!(log.contains("trust_revoked=1"), "{log}");
    w.assert_clean();
}

#[test]
fn users_act_only_on_their_own_account() {
    let w = World::messaging("", "[self_service]\nrecovery_codes = false");
    let bus = w.bus.address();
    let (code, out) = user_cli::run(&bus, NOBODY, &["status"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("nobody: SMS login is not set up yet"), "nobody sees nobody's account: {out}");
    let (code, out) = user_cli::run(&bus, NOBODY, &["trust", "revoke", "--all"]);
    assert_eq!(code, 4, "{out}");
    let (code, out) = user_cli::run(&bus, NOBODY, &["totp"]);
    assert_eq!(code, 4, "{out}");
    assert!(out.contains("SMS login is not set up for you yet"), "{out}");
    w.daemon.ctl_ok(&["enroll", "nobody", "+14155550142"]);
    let (code, out) = user_cli::run(&bus, NOBODY, &["status", "--json"]);
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!((v["user"].as_str(), v["number"].as_str()), (Some("nobody"), Some("******0142")), "{out}");
    let (code, out) = user_cli::run(&bus, NOBODY, &["recovery-codes"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("self_service.recovery_codes = false"), "{out}");
    let (code, out) = user_cli::run(&bus, NOBODY, &["default", "totp"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("no authenticator app yet"), "{out}");
    // Root's account is untouched by all of that.
    let show = w.daemon.ctl_ok(&["show", USER]);
    assert!(show.contains("******0123") && show.contains("factors:    sms"), "{show}");
    assert!(w.twilio.messages().is_empty());
}
