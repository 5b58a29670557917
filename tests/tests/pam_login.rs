//! The real pam_sms.so through pamtester against the real smsotpd.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use smsotp_tests::pam::{Code, typed};
use smsotp_tests::world::{USER, World};

#[test]
fn correct_code_logs_in() {
    let w = World::messaging("", "");
    let run = w.pam(USER).run(vec![w.code_of(1)]);
    assert_eq!(run.code, Code::Success, "{}", run.output);
    assert_eq!(
        run.shown(),
        "A login code was sent by SMS to ******0123.\nSMS code: "
    );
    let sms = w.twilio.messages();
    assert_eq!(sms.len(), 1);
    assert_eq!(sms[0].to, "+14155550123");
    w.assert_clean();
}

#[test]
fn wrong_code_three_times() {
    let w = World::messaging("", "");
    let run = w
        .pam(USER)
        .run(vec![typed("000000x"), typed("1"), typed("12345678")]);
    assert_eq!(run.code, Code::MaxTries, "{}", run.output);
    println!("{}", run.output);
}
