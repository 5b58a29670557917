//! The configuration file as written: serde structs with defaults and
//! `deny_unknown_fields`. mod.rs turns them into a checked [`super::Config`].

use std::path::PathBuf;

use serde::Deserialize;

use super::{DEFAULT_STATE_DIRECTORY, ProviderKind, Secret, Unenrolled};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    pub(crate) version: u32,
    pub(crate) provider: ProviderKind,
    #[serde(default = "default_unenrolled")]
    pub(crate) unenrolled: Unenrolled,
    #[serde(default = "default_state_directory")]
    pub(crate) state_directory: PathBuf,
    #[serde(default)]
    pub(crate) codes: RawCodes,
    #[serde(default)]
    pub(crate) lockout: RawLockout,
    #[serde(default)]
    pub(crate) message: RawMessage,
    pub(crate) twilio: Option<RawTwilio>,
    pub(crate) outbox: Option<RawOutbox>,
    pub(crate) command: Option<RawCommand>,
    pub(crate) plivo: Option<RawPlivo>,
    #[serde(default)]
    pub(crate) policy: RawPolicy,
    pub(crate) enrollment: Option<RawEnrollment>,
    pub(crate) destinations: Option<RawDestinations>,
    #[serde(default)]
    pub(crate) self_service: RawSelfService,
    pub(crate) voice: Option<RawVoice>,
    /// Routes tried in order when the provider fails or a message is not
    /// delivered: "voice" or another provider kind.
    #[serde(default)]
    pub(crate) failover: Vec<String>,
    #[serde(default = "default_failover_poll")]
    pub(crate) failover_poll_seconds: u64,
    #[serde(default)]
    pub(crate) store: super::fleet::RawStore,
    #[serde(default = "default_phone_source")]
    pub(crate) phone_source: super::fleet::PhoneSource,
    pub(crate) ldap: Option<super::fleet::RawLdap>,
    /// Read as plain tables so that an error can name the rule.
    #[serde(default)]
    pub(crate) rule: Vec<toml::Table>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawPolicy {
    pub(crate) mode: String,
    pub(crate) trust_days: u32,
    pub(crate) ask_user: bool,
    pub(crate) max_trusted_machines: usize,
}

impl Default for RawPolicy {
    fn default() -> Self {
        RawPolicy { mode: "always".into(), trust_days: 30, ask_user: false, max_trusted_machines: 20 }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRule {
    /// Read from the table directly, for the rule's label.
    #[allow(dead_code)]
    pub(crate) name: Option<String>,
    pub(crate) from: Option<Vec<String>>,
    pub(crate) service: Option<Vec<String>>,
    pub(crate) user: Option<Vec<String>>,
    pub(crate) group: Option<Vec<String>>,
    pub(crate) local: Option<bool>,
    pub(crate) action: String,
    pub(crate) trust_days: Option<u32>,
    pub(crate) unenrolled: Option<String>,
}

fn default_failover_poll() -> u64 {
    5
}

pub(crate) fn default_unenrolled() -> Unenrolled {
    Unenrolled::Deny
}
pub(crate) fn default_state_directory() -> PathBuf {
    PathBuf::from(DEFAULT_STATE_DIRECTORY)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawCodes {
    pub(crate) length: u32,
    pub(crate) expiry_seconds: u64,
    pub(crate) attempts: u32,
    pub(crate) resend_interval_seconds: u64,
    pub(crate) resends: u32,
    pub(crate) max_pending: usize,
    pub(crate) sms_per_user_per_hour: u32,
    pub(crate) sms_per_host_per_day: u32,
    pub(crate) sms_per_host_per_hour: u32,
    pub(crate) sms_per_user_per_day: u32,
    pub(crate) deadline_seconds: u64,
}

impl Default for RawCodes {
    fn default() -> Self {
        RawCodes {
            length: 6,
            expiry_seconds: 300,
            attempts: 3,
            resend_interval_seconds: 30,
            resends: 3,
            max_pending: 10_000,
            sms_per_user_per_hour: 10,
            sms_per_host_per_day: 10_000,
            sms_per_host_per_hour: 2_000,
            sms_per_user_per_day: 30,
            deadline_seconds: 10,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawLockout {
    pub(crate) failures: u32,
    pub(crate) minutes: u64,
}

impl Default for RawLockout {
    fn default() -> Self {
        RawLockout { failures: 10, minutes: 15 }
    }
}

/// Codes read out by a phone call (`[voice]`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawVoice {
    /// The caller ID (twilio-messaging); defaults to twilio.from.
    pub(crate) from: Option<String>,
    #[serde(default = "default_voice_language")]
    pub(crate) language: String,
    #[serde(default = "default_voice_template")]
    pub(crate) template: String,
    #[serde(default)]
    pub(crate) first: bool,
}

pub const DEFAULT_VOICE_TEMPLATE: &str = "Your login code for {host} is: {code}.";

fn default_voice_language() -> String {
    "en-US".to_owned()
}

fn default_voice_template() -> String {
    DEFAULT_VOICE_TEMPLATE.to_owned()
}

/// What users may do themselves with `smsotp` (each on by default).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawSelfService {
    pub(crate) status: bool,
    pub(crate) change_number: bool,
    pub(crate) trust: bool,
    pub(crate) totp: bool,
    pub(crate) recovery_codes: bool,
    pub(crate) number_change_cooldown_hours: u32,
}

impl Default for RawSelfService {
    fn default() -> Self {
        RawSelfService {
            status: true,
            change_number: true,
            trust: true,
            totp: true,
            recovery_codes: true,
            number_change_cooldown_hours: 24,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDestinations {
    pub(crate) countries: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEnrollment {
    pub(crate) countries: Vec<String>,
    #[serde(default)]
    pub(crate) approval: bool,
    #[serde(default = "default_enrollment_template")]
    pub(crate) template: String,
}

pub const DEFAULT_ENROLLMENT_TEMPLATE: &str = "{code} is your code to set up SMS login on {host}. It expires in {minutes} minutes. If you did not ask for it, ignore this message.";

fn default_enrollment_template() -> String {
    DEFAULT_ENROLLMENT_TEMPLATE.to_owned()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawMessage {
    pub(crate) template: String,
    pub(crate) hostname: Option<String>,
}

pub const DEFAULT_TEMPLATE: &str =
    "{code} is your login code for {host} ({service}). It expires in {minutes} minutes. Do not share it.";

impl Default for RawMessage {
    fn default() -> Self {
        RawMessage { template: DEFAULT_TEMPLATE.to_owned(), hostname: None }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTwilio {
    pub(crate) account_sid: String,
    pub(crate) auth_token: Option<Secret>,
    pub(crate) api_key_sid: Option<String>,
    pub(crate) api_key_secret: Option<Secret>,
    pub(crate) from: Option<String>,
    pub(crate) messaging_service_sid: Option<String>,
    pub(crate) verify_service_sid: Option<String>,
    #[serde(default = "default_api_base")]
    pub(crate) api_base: String,
    #[serde(default = "default_verify_api_base")]
    pub(crate) verify_api_base: String,
    #[serde(default = "default_request_timeout")]
    pub(crate) request_timeout_seconds: u64,
    #[serde(default)]
    pub(crate) discard_content: bool,
    pub(crate) proxy: Option<String>,
    /// Verify's Programmable Rate Limits: unique name -> "user", "host"
    /// or "user@host".
    pub(crate) verify_rate_limits: Option<std::collections::BTreeMap<String, String>>,
    /// Lookup v2 line types refused for new numbers, e.g. ["landline", "nonFixedVoip"].
    pub(crate) lookup_refuse: Option<Vec<String>>,
    #[serde(default = "default_lookup_api_base")]
    pub(crate) lookup_api_base: String,
}

fn default_lookup_api_base() -> String {
    "https://lookups.twilio.com".to_owned()
}

pub(crate) fn default_api_base() -> String {
    "https://api.twilio.com".to_owned()
}
pub(crate) fn default_verify_api_base() -> String {
    "https://verify.twilio.com".to_owned()
}
pub(crate) fn default_request_timeout() -> u64 {
    5
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCommand {
    pub(crate) path: PathBuf,
    #[serde(default = "default_command_timeout")]
    pub(crate) timeout_seconds: u64,
}

fn default_command_timeout() -> u64 {
    8
}

/// `[plivo]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPlivo {
    pub(crate) auth_id: String,
    pub(crate) auth_token: Option<Secret>,
    pub(crate) src: Option<String>,
    pub(crate) powerpack_uuid: Option<String>,
    #[serde(default = "default_plivo_api_base")]
    pub(crate) api_base: String,
    #[serde(default = "default_request_timeout")]
    pub(crate) request_timeout_seconds: u64,
    /// `log: false`: Plivo keeps neither the text nor the whole number.
    #[serde(default)]
    pub(crate) discard_content: bool,
    /// For calls: a page of the administrator's that answers
    /// `<Response><Wait length="60"/></Response>`; the code is spoken into
    /// the answered call with Plivo's Speak API, never put in a URL.
    pub(crate) answer_url: Option<String>,
}

fn default_plivo_api_base() -> String {
    "https://api.plivo.com".to_owned()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOutbox {
    pub(crate) path: PathBuf,
}

fn default_phone_source() -> super::fleet::PhoneSource {
    super::fleet::PhoneSource::Store
}
