//! Real OpenSSH logins into a Debian 12 container with our .deb installed
//! (see tests/src/container.rs): the host's ssh client against the
//! container's sshd, pam_sms.so from the package, smsotpd started with the
//! unit's command line, a fake Twilio on the container's loopback.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use smsotp_tests::container::{Answer, Container, NUMBER, SshSetup, USER};

const FAKE_TWILIO: &str = env!("CARGO_BIN_EXE_fake-twilio");

fn start(setup: SshSetup, tables: &str) -> Container {
    Container::start(FAKE_TWILIO, setup, "", tables)
}

#[test]
fn password_and_sms_over_ssh() {
    let ct = start(SshSetup::PasswordAndSms, "");
    let login = ct.ssh("id -un", Answer::Right);
    assert!(login.succeeded(), "login failed: {}\n{}", login.stderr, ct.diagnostics());
    assert_eq!(login.stdout, format!("{USER}\n"));
    eprintln!("prompts: {:?}\nstderr: {}", login.prompts, login.stderr);
    let sms = ct.sms();
    assert_eq!(sms.len(), 1, "{sms:?}");
    assert!(sms[0].starts_with(&format!("{NUMBER}\t")), "{sms:?}");
}
