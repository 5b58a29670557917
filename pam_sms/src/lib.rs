//! pam_sms.so: asks smsotpd for an SMS one-time code.
//!
//! A thin relay: it reads the PAM items, asks the daemon what to do, runs
//! the conversation the daemon asks for, and maps the outcome to a PAM code.
//! No secrets, no network, no policy, no global state, no output of its own.
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod adapter;
pub mod client;
pub mod flow;
pub mod log;
pub mod options;

pub use adapter::PamSms;
