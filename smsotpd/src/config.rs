//! smsotpd.toml: parsing (pure, from a string) apart from loading (a file,
//! its permissions, systemd credentials).
//!
//! Every error names the file, the key and what to write instead; unknown
//! keys are errors, so a typo never silently leaves a default in force.

use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use zeroize::Zeroizing;

use crate::names::PhoneNumber;
use crate::policy::{Action, Cidr, Policy, Rule};
use crate::template::Template;

pub const DEFAULT_PATH: &str = "/etc/smsotpd/smsotpd.toml";
pub const DEFAULT_STATE_DIRECTORY: &str = "/var/lib/smsotpd";
/// The module's default `timeout=`; the daemon's provider deadline must stay
/// below it so that PAM hears the daemon's answer rather than a timeout.
pub const PAM_DEFAULT_TIMEOUT_SECONDS: u64 = 30;

/// A secret held in zeroizing memory that never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    pub fn new(s: String) -> Self {
        Secret(Zeroizing::new(s))
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret::new)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProviderKind {
    TwilioMessaging,
    TwilioVerify,
    Outbox,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Unenrolled {
    Deny,
    Allow,
}

/// The file as written, before validation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    version: u32,
    provider: ProviderKind,
    #[serde(default = "default_unenrolled")]
    unenrolled: Unenrolled,
    #[serde(default = "default_state_directory")]
    state_directory: PathBuf,
    #[serde(default)]
    codes: RawCodes,
    #[serde(default)]
    lockout: RawLockout,
    #[serde(default)]
    message: RawMessage,
    twilio: Option<RawTwilio>,
    outbox: Option<RawOutbox>,
    #[serde(default)]
    policy: RawPolicy,
    /// Read as plain tables so that an error can name the rule.
    #[serde(default)]
    rule: Vec<toml::Table>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawPolicy {
    mode: String,
    trust_days: u32,
    ask_user: bool,
    max_trusted_machines: usize,
}

impl Default for RawPolicy {
    fn default() -> Self {
        RawPolicy { mode: "always".into(), trust_days: 30, ask_user: false, max_trusted_machines: 20 }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    /// Read from the table directly, for the rule's label.
    #[allow(dead_code)]
    name: Option<String>,
    from: Option<Vec<String>>,
    service: Option<Vec<String>>,
    user: Option<Vec<String>>,
    group: Option<Vec<String>>,
    local: Option<bool>,
    action: String,
    trust_days: Option<u32>,
}

fn default_unenrolled() -> Unenrolled {
    Unenrolled::Deny
}
fn default_state_directory() -> PathBuf {
    PathBuf::from(DEFAULT_STATE_DIRECTORY)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawCodes {
    length: u32,
    expiry_seconds: u64,
    attempts: u32,
    resend_interval_seconds: u64,
    resends: u32,
    max_pending: usize,
    sms_per_user_per_hour: u32,
    deadline_seconds: u64,
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
            deadline_seconds: 10,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawLockout {
    failures: u32,
    minutes: u64,
}

impl Default for RawLockout {
    fn default() -> Self {
        RawLockout { failures: 10, minutes: 15 }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawMessage {
    template: String,
    hostname: Option<String>,
}

pub const DEFAULT_TEMPLATE: &str =
    "{code} is your login code for {host} ({service}). It expires in {minutes} minutes. Do not share it.";

impl Default for RawMessage {
    fn default() -> Self {
        RawMessage { template: DEFAULT_TEMPLATE.to_owned(), hostname: None }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTwilio {
    account_sid: String,
    auth_token: Option<Secret>,
    api_key_sid: Option<String>,
    api_key_secret: Option<Secret>,
    from: Option<String>,
    messaging_service_sid: Option<String>,
    verify_service_sid: Option<String>,
    #[serde(default = "default_api_base")]
    api_base: String,
    #[serde(default = "default_verify_api_base")]
    verify_api_base: String,
    #[serde(default = "default_request_timeout")]
    request_timeout_seconds: u64,
    #[serde(default)]
    discard_content: bool,
    proxy: Option<String>,
}

fn default_api_base() -> String {
    "https://api.twilio.com".to_owned()
}
fn default_verify_api_base() -> String {
    "https://verify.twilio.com".to_owned()
}
fn default_request_timeout() -> u64 {
    5
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOutbox {
    path: PathBuf,
}

/// Validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub provider: Provider,
    pub unenrolled: Unenrolled,
    pub state_directory: PathBuf,
    pub codes: Codes,
    pub lockout: Lockout,
    pub template: Template,
    /// `{host}` in messages; None means the machine's hostname.
    pub hostname: Option<String>,
    pub policy: Policy,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Codes {
    pub length: usize,
    pub expiry: Duration,
    pub attempts: u32,
    pub resend_interval: Duration,
    pub resends: u32,
    pub max_pending: usize,
    pub sms_per_user_per_hour: u32,
    /// The most one provider step (send or check, retries included) may take.
    pub deadline: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lockout {
    pub failures: u32,
    pub duration: Duration,
}

#[derive(Debug, Clone)]
pub enum Provider {
    TwilioMessaging(Twilio),
    TwilioVerify(Twilio),
    Outbox { path: PathBuf },
}

#[derive(Debug, Clone)]
pub struct Twilio {
    pub account_sid: String,
    pub auth: TwilioAuth,
    /// Programmable Messaging: who the SMS comes from.
    pub sender: Option<Sender>,
    pub verify_service_sid: Option<String>,
    pub api_base: String,
    pub verify_api_base: String,
    pub request_timeout: Duration,
    /// Ask Twilio not to keep the message text (`ContentRetention=discard`;
    /// needs Message Redaction on the account).
    pub discard_content: bool,
    /// An outbound HTTP(S) proxy; None means a direct connection.
    pub proxy: Option<String>,
}

#[derive(Debug, Clone)]
pub enum TwilioAuth {
    /// Account SID + Auth Token (what Twilio suggests for trying things out).
    AuthToken(Secret),
    /// API key SID + secret (what Twilio suggests for production).
    ApiKey { sid: String, secret: Secret },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sender {
    From(String),
    MessagingService(String),
}

/// What went wrong, with where and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub origin: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.origin, self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Secrets found outside the file (systemd `LoadCredential=`).
#[derive(Debug, Default, Clone)]
pub struct ExternalCredentials {
    pub auth_token: Option<Secret>,
    pub api_key_secret: Option<Secret>,
}

/// File names under `$CREDENTIALS_DIRECTORY`.
pub const CREDENTIAL_AUTH_TOKEN: &str = "twilio-auth-token";
pub const CREDENTIAL_API_KEY_SECRET: &str = "twilio-api-key-secret";

impl Config {
    /// Parses and validates `text`; `origin` names the file in errors.
    pub fn parse(text: &str, origin: &str, creds: &ExternalCredentials) -> Result<Config, ConfigError> {
        let err = |message: String| ConfigError { origin: origin.to_owned(), message };
        let raw: RawConfig = toml::from_str(text).map_err(|e| err(describe_toml_error(&e)))?;
        if raw.version != 1 {
            return Err(err(format!("version = {} is not supported by this smsotpd; write version = 1", raw.version)));
        }
        let codes = validate_codes(&raw.codes).map_err(err)?;
        let lockout = validate_lockout(&raw.lockout).map_err(err)?;
        let template = Template::parse(&raw.message.template).map_err(|e| err(format!("message.template: {e}")))?;
        if let Some(h) = &raw.message.hostname
            && (h.is_empty() || h.len() > 64 || h.chars().any(char::is_control))
        {
            return Err(err(
                "message.hostname must be 1 to 64 printable characters (or left out to use the machine's hostname)"
                    .to_owned(),
            ));
        }
        if !raw.state_directory.is_absolute() {
            return Err(err(format!(
                "state_directory = {:?} must be an absolute path, e.g. \"{DEFAULT_STATE_DIRECTORY}\"",
                raw.state_directory
            )));
        }
        let provider = match raw.provider {
            ProviderKind::Outbox => {
                if raw.twilio.is_some() {
                    // Allowed: switching to the outbox for a test keeps the Twilio keys.
                }
                let outbox = raw.outbox.ok_or_else(|| {
                    err("provider = \"outbox\" needs an [outbox] table with path = \"/var/lib/smsotpd/outbox\""
                        .to_owned())
                })?;
                if !outbox.path.is_absolute() {
                    return Err(err("outbox.path must be an absolute path".to_owned()));
                }
                Provider::Outbox { path: outbox.path }
            }
            kind @ (ProviderKind::TwilioMessaging | ProviderKind::TwilioVerify) => {
                let tw = raw.twilio.ok_or_else(|| {
                    err(format!(
                        "provider = \"{}\" needs a [twilio] table (account_sid, credentials, {})",
                        kind.name(),
                        if kind == ProviderKind::TwilioVerify {
                            "verify_service_sid"
                        } else {
                            "from or messaging_service_sid"
                        }
                    ))
                })?;
                let t = validate_twilio(tw, kind, creds).map_err(err)?;
                if t.request_timeout > codes.deadline {
                    return Err(err(format!(
                        "twilio.request_timeout_seconds ({}) is longer than codes.deadline_seconds ({}); make it shorter so a retry fits",
                        t.request_timeout.as_secs(),
                        codes.deadline.as_secs()
                    )));
                }
                if kind == ProviderKind::TwilioVerify {
                    Provider::TwilioVerify(t)
                } else {
                    Provider::TwilioMessaging(t)
                }
            }
        };
        let policy = validate_policy(&raw.policy, &raw.rule).map_err(err)?;
        Ok(Config {
            provider,
            policy,
            unenrolled: raw.unenrolled,
            state_directory: raw.state_directory,
            codes,
            lockout,
            template,
            hostname: raw.message.hostname,
        })
    }

    /// Whether any secret came from the file itself (which then must be private).
    fn file_holds_secrets(text: &str) -> bool {
        #[derive(Deserialize)]
        struct Peek {
            twilio: Option<PeekTwilio>,
        }
        #[derive(Deserialize)]
        struct PeekTwilio {
            auth_token: Option<toml::Value>,
            api_key_secret: Option<toml::Value>,
        }
        match toml::from_str::<Peek>(text) {
            Ok(Peek { twilio: Some(t) }) => t.auth_token.is_some() || t.api_key_secret.is_some(),
            Ok(_) => false,
            // Unparseable: be strict about who may read it.
            Err(_) => true,
        }
    }

    /// Reads `path`, checks its owner and mode, and parses it.
    pub fn load(path: &Path, credentials_directory: Option<&Path>) -> Result<Config, ConfigError> {
        let origin = path.display().to_string();
        let err = |message: String| ConfigError { origin: origin.clone(), message };
        let file = std::fs::File::open(path).map_err(|e| {
            err(format!(
                "cannot read the configuration ({e}); create it from /usr/share/doc/smsotpd/smsotpd.toml.example or pass --config PATH"
            ))
        })?;
        let meta = file.metadata().map_err(|e| err(format!("cannot stat the configuration: {e}")))?;
        if !meta.is_file() {
            return Err(err("is not a regular file".to_owned()));
        }
        let text = Zeroizing::new(read_limited(file, 1 << 20).map_err(|e| err(format!("cannot read: {e}")))?);
        check_owner_and_mode(&meta, Config::file_holds_secrets(&text), "the configuration").map_err(err)?;
        let creds = match credentials_directory {
            Some(dir) => read_credentials(dir)?,
            None => ExternalCredentials::default(),
        };
        Config::parse(&text, &origin, &creds)
    }

    /// The longest a login waits for one daemon call; shown to admins.
    pub fn provider_deadline(&self) -> Duration {
        self.codes.deadline
    }
}

impl ProviderKind {
    fn name(self) -> &'static str {
        match self {
            ProviderKind::TwilioMessaging => "twilio-messaging",
            ProviderKind::TwilioVerify => "twilio-verify",
            ProviderKind::Outbox => "outbox",
        }
    }
}

fn read_limited(file: std::fs::File, limit: u64) -> std::io::Result<String> {
    use std::io::Read;
    let mut s = String::new();
    file.take(limit + 1).read_to_string(&mut s)?;
    if s.len() as u64 > limit {
        return Err(std::io::Error::other("larger than 1 MiB"));
    }
    Ok(s)
}

/// A file that holds secrets or decides who logs in must be root's and must
/// not be writable by others; a secret-holding one must not be readable either.
pub fn check_owner_and_mode(meta: &std::fs::Metadata, holds_secrets: bool, what: &str) -> Result<(), String> {
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != 0 && meta.uid() != me {
        return Err(format!("{what} is owned by uid {}, not root; fix with: chown root:root FILE", meta.uid()));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(format!("{what} is writable by group or others (mode {mode:04o}); fix with: chmod 600 FILE"));
    }
    if holds_secrets && mode & 0o077 != 0 {
        return Err(format!(
            "{what} holds Twilio credentials but is readable by group or others (mode {mode:04o}); fix with: chmod 600 FILE"
        ));
    }
    Ok(())
}

/// Reads Twilio secrets passed by systemd's `LoadCredential=`.
pub fn read_credentials(dir: &Path) -> Result<ExternalCredentials, ConfigError> {
    let read = |name: &str| -> Result<Option<Secret>, ConfigError> {
        let path = dir.join(name);
        let origin = path.display().to_string();
        match std::fs::File::open(&path) {
            Ok(f) => {
                let text = Zeroizing::new(
                    read_limited(f, 4096)
                        .map_err(|e| ConfigError { origin: origin.clone(), message: format!("cannot read: {e}") })?,
                );
                let value = text.trim();
                if value.is_empty() {
                    return Err(ConfigError { origin, message: "the credential is empty".to_owned() });
                }
                Ok(Some(Secret::new(value.to_owned())))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ConfigError { origin, message: format!("cannot read: {e}") }),
        }
    };
    Ok(ExternalCredentials {
        auth_token: read(CREDENTIAL_AUTH_TOKEN)?,
        api_key_secret: read(CREDENTIAL_API_KEY_SECRET)?,
    })
}

fn describe_toml_error(e: &toml::de::Error) -> String {
    // toml's message already names the line, the key and the expected keys;
    // keep it on one line for logs.
    let msg = e.to_string();
    let mut lines = msg.lines().filter(|l| !l.trim().is_empty()).map(str::trim).collect::<Vec<_>>().join(" | ");
    if lines.contains("missing field `provider`") {
        lines.push_str(
            " | choose a provider explicitly: provider = \"twilio-messaging\", \"twilio-verify\" or \"outbox\"",
        );
    }
    lines
}

fn range<T: PartialOrd + fmt::Display + Copy>(key: &str, v: T, lo: T, hi: T, why: &str) -> Result<T, String> {
    if v < lo || v > hi {
        return Err(format!("{key} = {v} is out of range: use {lo} to {hi}{why}"));
    }
    Ok(v)
}

fn validate_codes(c: &RawCodes) -> Result<Codes, String> {
    let length = range("codes.length", c.length, 6, 10, " (NIST SP 800-63B asks for at least 6 digits)")?;
    let expiry = range("codes.expiry_seconds", c.expiry_seconds, 60, 600, " (NIST SP 800-63B: at most 10 minutes)")?;
    let attempts = range("codes.attempts", c.attempts, 1, 10, "")?;
    let resend_interval = range("codes.resend_interval_seconds", c.resend_interval_seconds, 10, 600, "")?;
    let resends = range("codes.resends", c.resends, 0, 10, "")?;
    let max_pending = range("codes.max_pending", c.max_pending, 1, 1_000_000, "")?;
    let sms = range("codes.sms_per_user_per_hour", c.sms_per_user_per_hour, 1, 100, "")?;
    let deadline = range(
        "codes.deadline_seconds",
        c.deadline_seconds,
        2,
        PAM_DEFAULT_TIMEOUT_SECONDS - 5,
        " (it must stay below pam_sms's default timeout of 30 seconds)",
    )?;
    Ok(Codes {
        length: length as usize,
        expiry: Duration::from_secs(expiry),
        attempts,
        resend_interval: Duration::from_secs(resend_interval),
        resends,
        max_pending,
        sms_per_user_per_hour: sms,
        deadline: Duration::from_secs(deadline),
    })
}

fn validate_lockout(l: &RawLockout) -> Result<Lockout, String> {
    let failures =
        range("lockout.failures", l.failures, 1, 100, " (NIST SP 800-63B allows at most 100 consecutive failures)")?;
    let minutes = range("lockout.minutes", l.minutes, 1, 7 * 24 * 60, "")?;
    Ok(Lockout { failures, duration: Duration::from_secs(minutes * 60) })
}

fn trust_days(key: &str, days: u32) -> Result<u32, String> {
    range(key, days, 1, 365, "")
}

fn validate_policy(p: &RawPolicy, rules: &[toml::Table]) -> Result<Policy, String> {
    let days = trust_days("policy.trust_days", p.trust_days)?;
    let default = match p.mode.as_str() {
        "always" => Action::Always,
        "trust" => Action::Trust { days },
        other => {
            return Err(format!(
                "policy.mode = {other:?}: use \"always\" (a code at every login) or \"trust\" (trust the machine for trust_days after a correct code)"
            ));
        }
    };
    let max_trusted = range("policy.max_trusted_machines", p.max_trusted_machines, 1, 1000, "")?;
    let mut parsed = Vec::new();
    for (i, table) in rules.iter().enumerate() {
        let name = table.get("name").and_then(|v| v.as_str()).map(str::to_owned);
        let label = match &name {
            Some(n) => format!("rule {} ({n})", i + 1),
            None => format!("rule {}", i + 1),
        };
        let rule = parse_rule(table, &label, days).map_err(|e| {
            format!("[[rule]] number {} {}: {e}", i + 1, name.map(|n| format!("({n})")).unwrap_or_default())
        })?;
        parsed.push(rule);
    }
    Ok(Policy { default, rules: parsed, ask_user: p.ask_user, max_trusted })
}

fn parse_rule(table: &toml::Table, label: &str, default_days: u32) -> Result<Rule, String> {
    let raw = RawRule::deserialize(toml::Value::Table(table.clone())).map_err(|e| e.message().to_owned())?;
    let list = |key: &str, v: &Option<Vec<String>>| -> Result<Vec<String>, String> {
        match v {
            Some(items) if items.is_empty() => Err(format!("{key} = [] matches nothing; remove the key to match any")),
            Some(items) => Ok(items.clone()),
            None => Ok(Vec::new()),
        }
    };
    let from = list("from", &raw.from)?
        .iter()
        .map(|c| Cidr::parse(c).map_err(|e| format!("from: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    if !from.is_empty() && raw.local == Some(true) {
        return Err("from and local = true can never both hold (local logins have no address)".to_owned());
    }
    let action = match (raw.action.as_str(), raw.trust_days) {
        ("always", None) => Action::Always,
        ("skip", None) => Action::Skip,
        ("deny", None) => Action::Deny,
        ("trust", days) => Action::Trust { days: trust_days("trust_days", days.unwrap_or(default_days))? },
        ("always" | "skip" | "deny", Some(_)) => return Err("trust_days only goes with action = \"trust\"".to_owned()),
        (other, _) => return Err(format!("action = {other:?}: use \"always\", \"trust\", \"skip\" or \"deny\"")),
    };
    Ok(Rule {
        label: label.to_owned(),
        from,
        services: list("service", &raw.service)?,
        users: list("user", &raw.user)?,
        groups: list("group", &raw.group)?,
        local: raw.local,
        action,
    })
}

fn is_sid(s: &str, prefix: &str) -> bool {
    s.len() == 34 && s.starts_with(prefix) && s[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

fn validate_twilio(t: RawTwilio, kind: ProviderKind, creds: &ExternalCredentials) -> Result<Twilio, String> {
    if !is_sid(&t.account_sid, "AC") {
        return Err(
            "twilio.account_sid must be your Account SID: \"AC\" and 32 hex digits (Twilio console, Account Info)"
                .to_owned(),
        );
    }
    let auth_token = pick_secret("twilio.auth_token", t.auth_token, creds.auth_token.clone(), CREDENTIAL_AUTH_TOKEN)?;
    let api_key_secret = pick_secret(
        "twilio.api_key_secret",
        t.api_key_secret,
        creds.api_key_secret.clone(),
        CREDENTIAL_API_KEY_SECRET,
    )?;
    if let Some(tok) = &auth_token
        && !(tok.expose().len() == 32 && tok.expose().bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err(
            "twilio.auth_token must be the 32-hex-digit Auth Token from the Twilio console (Account Info)".to_owned()
        );
    }
    if let Some(sec) = &api_key_secret
        && !(sec.expose().len() == 32 && sec.expose().bytes().all(|b| b.is_ascii_alphanumeric()))
    {
        return Err(
            "twilio.api_key_secret must be the 32-character secret shown when the API key was created".to_owned()
        );
    }
    let auth = match (auth_token, t.api_key_sid, api_key_secret) {
        (Some(token), None, None) => TwilioAuth::AuthToken(token),
        (None, Some(sid), Some(secret)) => {
            if !is_sid(&sid, "SK") {
                return Err("twilio.api_key_sid must be an API key SID: \"SK\" and 32 hex digits".to_owned());
            }
            TwilioAuth::ApiKey { sid, secret }
        }
        (None, Some(_), None) => {
            return Err(format!(
                "twilio.api_key_sid is set but its secret is missing: set twilio.api_key_secret or the {CREDENTIAL_API_KEY_SECRET} credential"
            ));
        }
        (None, None, Some(_)) => {
            return Err("twilio.api_key_secret is set but twilio.api_key_sid is missing".to_owned());
        }
        (None, None, None) => {
            return Err(format!(
                "no Twilio credentials: set twilio.auth_token (or the {CREDENTIAL_AUTH_TOKEN} credential), or twilio.api_key_sid with twilio.api_key_secret"
            ));
        }
        (Some(_), _, _) => {
            return Err(
                "set either twilio.auth_token or the API key pair (api_key_sid, api_key_secret), not both".to_owned()
            );
        }
    };
    let sender = match (t.from, t.messaging_service_sid) {
        (Some(_), Some(_)) => {
            return Err("set either twilio.from or twilio.messaging_service_sid, not both".to_owned());
        }
        (Some(from), None) => {
            validate_sender(&from)?;
            Some(Sender::From(from))
        }
        (None, Some(mg)) => {
            if !is_sid(&mg, "MG") {
                return Err("twilio.messaging_service_sid must be \"MG\" and 32 hex digits".to_owned());
            }
            Some(Sender::MessagingService(mg))
        }
        (None, None) => None,
    };
    match kind {
        ProviderKind::TwilioMessaging if sender.is_none() => {
            return Err(
                "provider = \"twilio-messaging\" needs twilio.from (your Twilio number, e.g. \"+14155550100\") or twilio.messaging_service_sid"
                    .to_owned(),
            );
        }
        ProviderKind::TwilioVerify => match &t.verify_service_sid {
            Some(va) if is_sid(va, "VA") => {}
            Some(_) => {
                return Err("twilio.verify_service_sid must be \"VA\" and 32 hex digits".to_owned());
            }
            None => {
                return Err(
                    "provider = \"twilio-verify\" needs twilio.verify_service_sid (Twilio console, Verify, Services)"
                        .to_owned(),
                );
            }
        },
        _ => {}
    }
    let api_base = validate_base("twilio.api_base", &t.api_base)?;
    let verify_api_base = validate_base("twilio.verify_api_base", &t.verify_api_base)?;
    let request_timeout = range("twilio.request_timeout_seconds", t.request_timeout_seconds, 1, 20, "")?;
    if let Some(p) = &t.proxy {
        let url = reqwest::Url::parse(p)
            .map_err(|e| format!("twilio.proxy = {p:?} is not a URL ({e}); e.g. \"http://proxy.example:3128\""))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("twilio.proxy = {p:?} must be an http:// or https:// URL"));
        }
    }
    Ok(Twilio {
        account_sid: t.account_sid,
        auth,
        sender,
        verify_service_sid: t.verify_service_sid,
        api_base,
        verify_api_base,
        request_timeout: Duration::from_secs(request_timeout),
        discard_content: t.discard_content,
        proxy: t.proxy,
    })
}

fn pick_secret(
    key: &str,
    in_file: Option<Secret>,
    external: Option<Secret>,
    cred: &str,
) -> Result<Option<Secret>, String> {
    match (in_file, external) {
        (Some(_), Some(_)) => Err(format!(
            "{key} is set both in the file and as the {cred} credential; keep one (the credential is safer)"
        )),
        (Some(s), None) | (None, Some(s)) => {
            if s.expose().is_empty() {
                Err(format!("{key} is empty"))
            } else {
                Ok(Some(s))
            }
        }
        (None, None) => Ok(None),
    }
}

fn validate_sender(from: &str) -> Result<(), String> {
    if from.starts_with('+') {
        PhoneNumber::parse(from).map_err(|e| format!("twilio.from: {e}"))?;
        return Ok(());
    }
    let short_code = (3..=8).contains(&from.len()) && from.bytes().all(|b| b.is_ascii_digit());
    let alphanumeric = (1..=11).contains(&from.len())
        && from.bytes().all(|b| b.is_ascii_alphanumeric() || b == b' ')
        && from.bytes().any(|b| b.is_ascii_alphabetic());
    if short_code || alphanumeric {
        Ok(())
    } else {
        Err("twilio.from must be a Twilio number in E.164 form (\"+14155550100\"), a short code, or an alphanumeric sender ID of up to 11 letters and digits".to_owned())
    }
}

/// Twilio is only ever spoken to over TLS; plain http is allowed for a
/// loopback address so tests and local relays can stand in for it.
fn validate_base(key: &str, base: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(base)
        .map_err(|e| format!("{key} = {base:?} is not a URL ({e}); e.g. \"https://api.twilio.com\""))?;
    let host = url.host_str().unwrap_or("").trim_start_matches('[').trim_end_matches(']');
    let loopback = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|a| a.is_loopback());
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => {
            return Err(format!(
                "{key} = {base:?} must use https:// (plain http is only accepted for 127.0.0.1, ::1 or localhost)"
            ));
        }
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(format!("{key} = {base:?} must be a bare base URL such as \"https://api.twilio.com\""));
    }
    Ok(base.trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SID: &str = "AC0123456789abcdef0123456789abcdef";
    const TOKEN: &str = "f00dfeedf00dfeedf00dfeedf00dfeed";

    fn messaging(extra: &str) -> String {
        format!(
            "version = 1\nprovider = \"twilio-messaging\"\n{extra}\n[twilio]\naccount_sid = \"{SID}\"\nauth_token = \"{TOKEN}\"\nfrom = \"+14155550100\"\n"
        )
    }

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, "/etc/smsotpd/smsotpd.toml", &ExternalCredentials::default())
    }

    fn parse_err(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let c = parse(&messaging("")).unwrap();
        assert_eq!(c.codes.length, 6);
        assert_eq!(c.codes.expiry, Duration::from_secs(300));
        assert_eq!(c.codes.attempts, 3);
        assert_eq!(c.codes.resend_interval, Duration::from_secs(30));
        assert_eq!(c.codes.resends, 3);
        assert_eq!(c.codes.max_pending, 10_000);
        assert_eq!(c.lockout.failures, 10);
        assert_eq!(c.lockout.duration, Duration::from_secs(15 * 60));
        assert_eq!(c.unenrolled, Unenrolled::Deny);
        assert_eq!(c.state_directory, PathBuf::from("/var/lib/smsotpd"));
        assert!(c.codes.deadline < Duration::from_secs(PAM_DEFAULT_TIMEOUT_SECONDS));
    }

    #[test]
    fn unknown_key_names_file_key_and_choices() {
        let e = parse_err(&messaging("[codes]\nlenght = 8"));
        assert!(e.starts_with("/etc/smsotpd/smsotpd.toml: "), "{e}");
        assert!(e.contains("lenght"), "{e}");
        assert!(e.contains("length"), "names the right key: {e}");
    }

    #[test]
    fn out_of_range_values_say_the_range() {
        let e = parse_err(&messaging("[codes]\nlength = 4"));
        assert!(e.contains("codes.length = 4 is out of range: use 6 to 10"), "{e}");
        let e = parse_err(&messaging("[codes]\nexpiry_seconds = 900"));
        assert!(e.contains("codes.expiry_seconds = 900"), "{e}");
        let e = parse_err(&messaging("[lockout]\nfailures = 1000"));
        assert!(e.contains("at most 100"), "{e}");
        let e = parse_err(&messaging("[codes]\ndeadline_seconds = 40"));
        assert!(e.contains("below pam_sms's default timeout"), "{e}");
    }

    #[test]
    fn wrong_type_is_an_error() {
        let e = parse_err(&messaging("[codes]\nlength = \"six\""));
        assert!(e.contains("length"), "{e}");
    }

    #[test]
    fn provider_must_be_chosen() {
        let e = parse_err("version = 1\n");
        assert!(e.contains("choose a provider explicitly"), "{e}");
        let e = parse_err("version = 1\nprovider = \"carrier-pigeon\"\n");
        assert!(e.contains("carrier-pigeon") && e.contains("twilio-messaging"), "{e}");
    }

    #[test]
    fn version_is_checked() {
        let e = parse_err(&messaging("").replace("version = 1", "version = 2"));
        assert!(e.contains("write version = 1"), "{e}");
    }

    #[test]
    fn twilio_fields_are_checked() {
        let bad_sid = messaging("").replace(SID, "AC123");
        assert!(parse_err(&bad_sid).contains("twilio.account_sid"));
        let no_from = messaging("").replace("from = \"+14155550100\"\n", "");
        assert!(parse_err(&no_from).contains("twilio.from"));
        let both = messaging("").replace(
            "from = \"+14155550100\"",
            "from = \"+14155550100\"\nmessaging_service_sid = \"MG0123456789abcdef0123456789abcdef\"",
        );
        assert!(parse_err(&both).contains("not both"));
        let plain_http = messaging("").replace("[twilio]", "[twilio]\napi_base = \"http://api.twilio.com\"");
        assert!(parse_err(&plain_http).contains("must use https://"));
        let loopback = messaging("").replace("[twilio]", "[twilio]\napi_base = \"http://127.0.0.1:8080/\"");
        match parse(&loopback).unwrap().provider {
            Provider::TwilioMessaging(t) => assert_eq!(t.api_base, "http://127.0.0.1:8080"),
            other => panic!("{other:?}"),
        }
        let no_creds = messaging("").replace(&format!("auth_token = \"{TOKEN}\"\n"), "");
        let placeholder = messaging("").replace(TOKEN, "your-auth-token");
        assert!(parse_err(&placeholder).contains("32-hex-digit Auth Token"));
        assert!(parse_err(&no_creds).contains("no Twilio credentials"));
    }

    #[test]
    fn verify_needs_a_service() {
        let v = messaging("").replace("twilio-messaging", "twilio-verify");
        assert!(parse_err(&v).contains("verify_service_sid"));
        let ok = v.replace("[twilio]", "[twilio]\nverify_service_sid = \"VA0123456789abcdef0123456789abcdef\"");
        assert!(matches!(parse(&ok).unwrap().provider, Provider::TwilioVerify(_)));
    }

    #[test]
    fn credentials_can_come_from_systemd() {
        let text = messaging("").replace(&format!("auth_token = \"{TOKEN}\"\n"), "");
        let creds = ExternalCredentials {
            auth_token: Some(Secret::new("fedcba9876543210fedcba9876543210".into())),
            api_key_secret: None,
        };
        let c = Config::parse(&text, "x", &creds).unwrap();
        match c.provider {
            Provider::TwilioMessaging(Twilio { auth: TwilioAuth::AuthToken(t), .. }) => {
                assert_eq!(t.expose(), "fedcba9876543210fedcba9876543210")
            }
            other => panic!("{other:?}"),
        }
        let e = Config::parse(&messaging(""), "x", &creds).unwrap_err().to_string();
        assert!(e.contains("both in the file and as the twilio-auth-token credential"), "{e}");
    }

    #[test]
    fn credentials_directory_files() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_credentials(dir.path()).unwrap().auth_token.is_none());
        std::fs::write(dir.path().join(CREDENTIAL_AUTH_TOKEN), format!("{TOKEN}\n")).unwrap();
        std::fs::write(dir.path().join(CREDENTIAL_API_KEY_SECRET), "").unwrap();
        let e = read_credentials(dir.path()).unwrap_err().to_string();
        assert!(e.contains("twilio-api-key-secret: the credential is empty"), "{e}");
        std::fs::remove_file(dir.path().join(CREDENTIAL_API_KEY_SECRET)).unwrap();
        let creds = read_credentials(dir.path()).unwrap();
        assert_eq!(creds.auth_token.unwrap().expose(), TOKEN, "trailing newline trimmed");
    }

    #[test]
    fn policy_and_rules() {
        let c = parse(&messaging(
            "[policy]\nmode = \"trust\"\ntrust_days = 14\n\n[[rule]]\nname = \"office\"\nfrom = [\"10.0.0.0/8\", \"2001:db8::/32\"]\naction = \"trust\"\n\n[[rule]]\nservice = [\"sudo\"]\naction = \"always\"\n\n[[rule]]\ngroup = [\"svc\"]\naction = \"skip\"",
        ))
        .unwrap();
        assert_eq!(c.policy.default, Action::Trust { days: 14 });
        assert_eq!(c.policy.rules.len(), 3);
        assert_eq!(c.policy.rules[0].label, "rule 1 (office)");
        assert_eq!(c.policy.rules[0].action, Action::Trust { days: 14 }, "a trust rule defaults to policy.trust_days");
        assert_eq!(c.policy.rules[1].label, "rule 2");
        assert_eq!(parse(&messaging("")).unwrap().policy.default, Action::Always);
    }

    #[test]
    fn bad_rules_are_named() {
        let cases = [
            (
                "[[rule]]\nname = \"office\"\nfrom = [\"10.0.0.0/33\"]\naction = \"trust\"",
                "[[rule]] number 1 (office): from: \"10.0.0.0/33\"",
            ),
            ("[[rule]]\nfrom = [\"vpn.example.com\"]\naction = \"skip\"", "never resolved"),
            ("[[rule]]\naction = \"allow\"", "[[rule]] number 1 : action = \"allow\""),
            ("[[rule]]\nfrom = []\naction = \"skip\"", "matches nothing"),
            ("[[rule]]\nservce = [\"sshd\"]\naction = \"skip\"", "unknown field `servce`"),
            ("[[rule]]\naction = \"skip\"\ntrust_days = 3", "trust_days only goes with action = \"trust\""),
            ("[[rule]]\naction = \"trust\"\ntrust_days = 0", "trust_days = 0 is out of range"),
            ("[[rule]]\nservice = [\"sshd\"]", "missing field `action`"),
            ("[[rule]]\nfrom = [\"10.0.0.0/8\"]\nlocal = true\naction = \"skip\"", "can never both hold"),
            ("[policy]\nmode = \"sometimes\"", "policy.mode = \"sometimes\""),
        ];
        for (text, want) in cases {
            let e = parse_err(&messaging(text));
            assert!(e.contains(want), "{text}\n=> {e}");
        }
        let e = parse_err(&messaging("[[rule]]\naction = \"skip\"\n[[rule]]\nname = \"second\"\naction = \"nope\""));
        assert!(e.contains("number 2 (second)"), "{e}");
    }

    #[test]
    fn secrets_never_print() {
        let c = parse(&messaging("")).unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains(TOKEN), "{dbg}");
        assert!(dbg.contains("[redacted]"));
    }

    #[test]
    fn outbox_must_be_explicit_and_absolute() {
        let e = parse_err("version = 1\nprovider = \"outbox\"\n");
        assert!(e.contains("[outbox]"), "{e}");
        let e = parse_err("version = 1\nprovider = \"outbox\"\n[outbox]\npath = \"outbox\"\n");
        assert!(e.contains("absolute"), "{e}");
        let c = parse("version = 1\nprovider = \"outbox\"\n[outbox]\npath = \"/tmp/o\"\n").unwrap();
        assert!(matches!(c.provider, Provider::Outbox { .. }));
    }

    #[test]
    fn template_errors_are_reported_with_key() {
        let e = parse_err(&messaging("[message]\ntemplate = \"no code here\""));
        assert!(e.contains("message.template"), "{e}");
    }

    #[test]
    fn every_shipped_example_parses() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../etc");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                let text = std::fs::read_to_string(&path).unwrap();
                // As shipped, the placeholders must be refused with a clear message...
                let e = Config::parse(&text, "x", &ExternalCredentials::default()).unwrap_err().to_string();
                assert!(e.contains("twilio.account_sid must be your Account SID"), "{e}");
                // ...and once filled in, the rest of the file must be valid.
                let text = text
                    .replace("ACxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", SID)
                    .replace("your-32-hex-digit-auth-token-here", TOKEN)
                    .replace("+1XXXXXXXXXX", "+14155550100");
                Config::parse(&text, &path.display().to_string(), &ExternalCredentials::default())
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                // Every commented-out key is a real key with a valid value.
                let uncommented: String = text
                    .lines()
                    .map(|l| match l.strip_prefix("# ") {
                        Some(table) if table.starts_with('[') => table,
                        Some(rest)
                            if rest
                                .split_once(" = ")
                                .is_some_and(|(k, _)| k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
                                && !rest.starts_with("api_key")
                                && !rest.starts_with("messaging_service") =>
                        {
                            rest
                        }
                        _ => l,
                    })
                    .collect::<Vec<_>>()
                    .join("\n");
                let uncommented =
                    uncommented.replace("\nprovider = \"twilio-messaging\"", "\nprovider = \"twilio-verify\"");
                let uncommented =
                    uncommented.replace("VAxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "VA0123456789abcdef0123456789abcdef");
                Config::parse(&uncommented, "uncommented", &ExternalCredentials::default())
                    .unwrap_or_else(|e| panic!("{} with every option uncommented: {e}", path.display()));
                seen += 1;
            }
        }
        assert!(seen >= 1, "no example configs found in {}", dir.display());
    }

    #[test]
    fn permission_rules() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, messaging("")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = Config::load(&p, None).unwrap_err().to_string();
        assert!(e.contains("readable by group or others (mode 0644)") && e.contains("chmod 600"), "{e}");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        Config::load(&p, None).unwrap();
        // Without secrets, a world-readable file is fine, a world-writable one is not.
        std::fs::write(&p, "version = 1\nprovider = \"outbox\"\n[outbox]\npath = \"/tmp/o\"\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        Config::load(&p, None).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(Config::load(&p, None).unwrap_err().to_string().contains("writable"));
        let e = Config::load(&dir.path().join("missing.toml"), None).unwrap_err().to_string();
        assert!(e.contains("--config"), "{e}");
    }
}
