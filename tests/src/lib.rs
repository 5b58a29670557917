//! Harness for tests that run the real programs: a private dbus-daemon, the
//! real smsotpd, a fake Twilio, and the real pam_sms.so loaded by pamtester
//! under bwrap with a temporary /etc/pam.d. Nothing touches the system bus,
//! the real /etc/pam.d or the internet.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

pub mod bus;
pub mod container;
pub mod daemon;
pub mod fake_plivo;
pub mod fake_twilio;
pub mod pam;
pub mod postgres;
pub mod slapd;
pub mod syslog;
pub mod tools;
pub mod totp;
pub mod user_cli;
pub mod world;

/// The code prompt pam_sms shows.
pub const PROMPT: &str = "SMS code: ";
/// How the "Trust this machine for N days? [y/N] " question ends.
pub const TRUST_PROMPT_END: &str = "[y/N] ";
/// pam_unix's prompt.
pub const PASSWORD_PROMPT: &str = "Password: ";
/// How pam_sms's question for an enrolling user's number ends.
pub const NUMBER_PROMPT_END: &str = "(+ and country code): ";
/// What every prompt that offers another factor holds once
/// ("SMS code (or 't' for your authenticator app): ").
pub const FACTOR_PROMPT_MARK: &str = " (or '";
