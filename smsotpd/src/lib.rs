//! smsotpd: SMS one-time codes for Linux logins.
//!
//! The daemon holds the provider credentials, the enrollments and every
//! pending code; `pam_sms.so` only relays between the user and this daemon.

pub mod audit;
pub mod challenge;
pub mod clock;
pub mod config;
pub mod ctl;
pub mod dbus;
pub mod doctor;
pub mod error;
pub mod harden;
pub mod logging;
pub mod login;
pub mod machine;
pub mod names;
pub mod policy;
pub mod provider;
pub mod server;
pub mod store;
pub mod template;
pub mod trust;
