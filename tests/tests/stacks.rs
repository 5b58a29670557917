//! Issue 13, finding 3: where pam_sms stands in the stack decides whether a
//! wrong password sends an SMS (and counts toward the victim's lockout).
//! Each shape runs through pamtester with the real pam_unix (root's
//! password replaced in a private /etc/shadow) and the real pam_sms, for
//! right/wrong password x right/wrong code, counting SMS.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use smsotp_tests::pam::{Answer, Code, shadow_with_root_password, typed};
use smsotp_tests::tools::private_tempdir;
use smsotp_tests::world::{USER, World};

const PASSWORD: &str = "correct horse battery";

/// Debian's common-auth, as pam-auth-update writes it.
const DEBIAN: &str = "auth [success=1 default=ignore] pam_unix.so nullok\nauth requisite pam_deny.so\n\
                      auth required pam_permit.so\nauth required @PAM_SMS@\n";
/// The README's Fedora/RHEL shape: the password check stops at once.
const FEDORA: &str = "auth required pam_env.so\nauth requisite pam_unix.so nullok\nauth required @PAM_SMS@\n";
/// Fedora/RHEL's stock sshd with pam_sms added after the substack.
const FEDORA_SUBSTACK: &str = "auth substack password-auth\nauth required @PAM_SMS@\n";
const PASSWORD_AUTH: &str = "auth required pam_env.so\nauth sufficient pam_unix.so nullok\nauth required pam_deny.so\n";
/// pam_sms before the password.
const SMS_FIRST: &str = "auth required @PAM_SMS@\nauth [success=1 default=ignore] pam_unix.so nullok\n\
                         auth requisite pam_deny.so\nauth required pam_permit.so\n";

struct Outcome {
    code: Code,
    sms: usize,
    shown: String,
}

fn login(stack: &str, answers: impl FnOnce(&World) -> Vec<Answer<'_>>) -> Outcome {
    let w = World::messaging("", "");
    let dir = private_tempdir();
    let shadow = shadow_with_root_password(dir.path(), PASSWORD);
    let pam = w.pam(USER).stack(stack).pam_file("password-auth", PASSWORD_AUTH).shadow(&shadow);
    let run = pam.run(answers(&w));
    w.assert_clean();
    Outcome { code: run.code, sms: w.twilio.messages().len(), shown: run.output }
}

fn right_password_right_code(w: &World) -> Vec<Answer<'_>> {
    vec![typed(PASSWORD), w.code_of(1)]
}

fn right_password_wrong_codes(_: &World) -> Vec<Answer<'_>> {
    vec![typed(PASSWORD), typed("000000x"), typed("000000x"), typed("000000x")]
}

fn wrong_password(_: &World) -> Vec<Answer<'_>> {
    // A code prompt after a wrong password gets a wrong code.
    vec![typed("not the password"), typed("000000x"), typed("000000x"), typed("000000x")]
}

#[test]
fn shapes_that_stop_at_a_wrong_password() {
    for (name, stack) in [("debian", DEBIAN), ("fedora", FEDORA)] {
        let ok = login(stack, right_password_right_code);
        assert_eq!((ok.code, ok.sms), (Code::Success, 1), "{name}: {}", ok.shown);
        let bad_code = login(stack, right_password_wrong_codes);
        assert_eq!((bad_code.code, bad_code.sms), (Code::MaxTries, 1), "{name}: {}", bad_code.shown);
        let bad_password = login(stack, wrong_password);
        assert_eq!(bad_password.sms, 0, "{name}: a wrong password sent an SMS: {}", bad_password.shown);
        assert_eq!(bad_password.code, Code::AuthErr, "{name}: {}", bad_password.shown);
        assert!(!bad_password.shown.contains("SMS code: "), "{name}: no code prompt after a wrong password");
    }
}

#[test]
fn shapes_that_text_the_victim_on_a_wrong_password() {
    for (name, stack) in [("fedora substack", FEDORA_SUBSTACK), ("pam_sms first", SMS_FIRST)] {
        let bad_password = login(stack, wrong_password);
        assert_eq!(bad_password.sms, 1, "{name}: what doctor warns about: {}", bad_password.shown);
        assert_ne!(bad_password.code, Code::Success, "{name}");
    }
}
