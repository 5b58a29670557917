//! Codes by phone call through the real module and daemon: Twilio
//! Programmable Voice (Calls.json with TwiML that says the code digit by
//! digit, twice) and Verify's `call` channel; 'v' at the prompt, the
//! user's own choice of calls, and a call counted as a resend.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use smsotp_tests::pam::{Code, typed};
use smsotp_tests::user_cli;
use smsotp_tests::world::{NUMBER, USER, World};

const VOICE: &str = "[voice]\nlanguage = \"en-GB\"";
const SMS_PROMPT: &str = "SMS code (or 'v' for a voice call): ";
const CALL_PROMPT: &str = "Code from the call (or 's' for SMS): ";
const REMIND: &str = "SMS is the weakest way to sign in. Add an authenticator app with the command: smsotp totp\n";

#[test]
fn v_at_the_prompt_calls_with_a_new_code_when_a_resend_is_allowed() {
    let w = World::messaging("", VOICE);
    let run = w.pam(USER).run(vec![
        // Right after the SMS: a call is a resend, refused as too soon.
        typed("v"),
        Box::new(|| {
            w.set_time_offset(31);
            "v".to_owned()
        }),
        Box::new(|| w.code(2)),
    ]);
    assert_eq!(run.code, Code::Success, "{}", run.output);
    assert_eq!(
        run.shown(),
        format!(
            "A login code is on its way by SMS to ******0123.\n{SMS_PROMPT}A new code cannot be sent yet; enter the code you received. 2 tries left.\n{SMS_PROMPT}A call with a new code is on its way to ******0123.\n{CALL_PROMPT}{REMIND}"
        )
    );
    let sent = w.twilio.messages();
    assert_eq!((sent.len(), sent[1].channel, sent[1].to.as_str()), (2, "voice", NUMBER));
    assert!(sent[1].body.starts_with("Your login code for ") && sent[1].body.contains(", "), "{}", sent[1].body);
    let call = w.twilio.requests().into_iter().find(|r| r.path.ends_with("/Calls.json")).unwrap();
    assert!(call.form["Twiml"].contains("<Say language=\"en-GB\">"), "{}", call.form["Twiml"]);
    assert_eq!(call.form["From"], smsotp_tests::fake_twilio::FROM);
    let log = w.daemon.log_text();
    assert!(log.contains("event=code-resent user=root") && log.contains("channel=voice"), "{log}");
    w.assert_clean();
}

#[test]
fn a_user_who_prefers_calls_is_called_first() {
    let w = World::messaging("", VOICE);
    let (code, out) = user_cli::run(&w.bus.address(), 0, &["default", "voice"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Logins now ask for your voice call first."), "{out}");
    let run = w.pam(USER).run(vec![w.code_of(1)]);
    assert_eq!(run.code, Code::Success, "{}", run.output);
    assert_eq!(
        run.shown(),
        format!("A call with your login code is on its way to ******0123.\n{CALL_PROMPT}{REMIND}"),
        "(calls are the phone network too: the word about the app comes)"
    );
    assert_eq!(w.twilio.messages()[0].channel, "voice");
    // Without [voice], the choice is refused with the reason.
    let plain = World::messaging("", "");
    let (code, out) = user_cli::run(&plain.bus.address(), 0, &["default", "voice"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("places no calls"), "{out}");
}

#[test]
fn verify_calls_through_its_call_channel() {
    let (twilio, run, log) = smsotp_tests::world::verify_login_by_call();
    assert_eq!(run.code, Code::Success, "{}\n{log}", run.output);
    let verifications: Vec<_> = twilio.requests().into_iter().filter(|r| r.path.ends_with("/Verifications")).collect();
    let channels: Vec<&str> = verifications.iter().map(|r| r.form["Channel"].as_str()).collect();
    assert_eq!(channels, ["sms", "call"]);
    assert_eq!(verifications[1].form["Locale"], "en");
    assert_eq!(twilio.violations(), Vec::<String>::new());
}
