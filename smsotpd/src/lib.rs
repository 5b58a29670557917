//! smsotpd: SMS one-time codes for Linux logins.
//!
//! The daemon holds the provider credentials, the enrollments and every
//! pending code; `pam_sms.so` only relays between the user and this daemon.

pub mod account;
pub mod admin;
pub mod alarm;
pub mod answer;
pub mod audit;
pub mod authz;
pub mod bypass;
pub mod challenge;
pub mod cli;
pub mod clock;
pub mod config;
pub mod ctl;
pub mod ctl_checks;
pub mod ctl_store;
pub mod daemon;
pub mod dbus;
pub mod dbus_user;
pub mod decoy;
pub mod delivery;
pub mod directory;
pub mod doctor;
pub mod enroll;
pub mod error;
pub mod explain;
pub mod factor;
pub mod failover;
pub mod harden;
pub mod limits;
pub mod logging;
pub mod login;
pub mod machine;
pub mod names;
pub mod nss;
pub mod offers;
pub mod pace;
pub mod policy;
pub mod provider;
pub mod random;
pub mod record;
pub mod recovery;
pub mod resend;
pub mod rollout;
pub mod server;
pub mod store;
pub mod template;
pub mod totp;
pub mod trust;
pub mod turn;
pub mod user_cli;

#[cfg(test)]
mod login_tests;
