//! Twilio Lookup v2 at enrollment (line types the admin refuses for SMS)
//! and Verify's Programmable Rate Limits, through the real module, smsotp
//! and smsotpctl against the fake Twilio.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use smsotp_tests::daemon::{messaging_config, verify_config};
use smsotp_tests::pam::{Code, typed};
use smsotp_tests::world::{USER, World};

const LANDLINE: &str = "+14155550111";
const VOIP: &str = "+14155550122";

fn refusing() -> World {
    let config = messaging_config("@TWILIO@", "unenrolled = \"enroll\"", "[enrollment]\ncountries = [\"+1\"]")
        + "lookup_refuse = [\"landline\", \"nonFixedVoip\"]\n";
    let w = World::with_config(&config);
    w.twilio.line_type(LANDLINE, "landline");
    w.twilio.line_type(VOIP, "nonFixedVoip");
    w
}

#[test]
fn landline_and_voip_numbers_are_refused_at_enrollment_before_anything_is_sent() {
    let w = refusing();
    let run = w.pam("daemon").run(vec![typed(LANDLINE), typed(VOIP), typed("+14155550177"), w.code_of(1)]);
    assert_eq!(run.code, Code::Success, "{}", run.output);
    let shown = run.shown();
    assert!(
        shown.contains("That number cannot be used: it is a landline number, which cannot receive SMS codes here."),
        "{shown}"
    );
    assert!(shown.contains("it is a nonFixedVoip number"), "{shown}");
    let sms = w.twilio.messages();
    assert_eq!(sms.len(), 1, "only the mobile number got a code: {sms:?}");
    assert_eq!(sms[0].to, "+14155550177");
    let lookups: Vec<_> = w.twilio.requests().into_iter().filter(|r| r.path.starts_with("/v2/PhoneNumbers/")).collect();
    assert_eq!(lookups.len(), 4, "one Lookup per number: root's (the world enrolls it), then these three");
    assert!(lookups[1].path.contains("%2B14155550111?Fields=line_type_intelligence"), "{}", lookups[1].path);
    // The administrator's enrollment and the user's own change are checked too.
    let out = w.daemon.ctl(&["enroll", "daemon", LANDLINE]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be enrolled: it is a landline number"), "{out:?}");
    let (code, text) = smsotp_tests::user_cli::run(&w.bus.address(), 0, &["change-number", VOIP]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("that number cannot be used: it is a nonFixedVoip number"), "{text}");
    assert_eq!(w.twilio.messages().len(), 1, "nothing more was sent");
    assert_eq!(w.twilio.violations(), Vec::<String>::new());
}

#[test]
fn verify_is_given_the_rate_limits_named_in_the_config() {
    let config =
        verify_config("@TWILIO@", "") + "verify_rate_limits = { per_user = \"user\", per_login = \"user@host\" }\n";
    let w = World::with_config(&config);
    let run = w.pam(USER).run(vec![w.code_of(1)]);
    assert_eq!(run.code, Code::Success, "{}", run.output);
    let start = w.twilio.requests().into_iter().find(|r| r.path.ends_with("/Verifications")).unwrap();
    let limits: serde_json::Value = serde_json::from_str(&start.form["RateLimits"]).unwrap();
    assert_eq!(limits["per_user"], USER);
    assert!(limits["per_login"].as_str().unwrap().starts_with("root@"), "{limits}");
}
