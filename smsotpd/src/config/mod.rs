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

use crate::policy::Policy;
use crate::template::Template;

pub mod credentials;
pub mod fleet;
pub(crate) mod raw;
pub use raw::DEFAULT_TEMPLATE;
mod validate;

use raw::RawConfig;
use validate::{provider_config, validate_codes, validate_lockout, validate_policy};

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
    Command,
    Plivo,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Unenrolled {
    Deny,
    Allow,
    /// Ask for a number at login and enroll it once its code is typed.
    Enroll,
}

/// Enrollment at login (`unenrolled = "enroll"`).
#[derive(Debug, Clone)]
pub struct Enrollment {
    /// Calling codes a number may start with, e.g. "+1", "+44".
    pub countries: Vec<String>,
    pub template: Template,
    /// A number proven at login waits for `smsotpctl approve`.
    pub approval: bool,
}

/// `[voice]`: codes read out by a phone call (Twilio Programmable Voice,
/// Verify's `call` channel, or the command provider's "voice" channel).
#[derive(Debug, Clone)]
pub struct Voice {
    /// Caller ID for Programmable Voice; None: twilio.from.
    pub from: Option<String>,
    /// BCP 47, as Twilio's `<Say language>` reads it, e.g. "en-US".
    pub language: String,
    /// What is said, twice; `{code}` is read digit by digit.
    pub template: Template,
    /// Call first, for users who chose nothing (`smsotp default`).
    pub first: bool,
}

/// `[self_service]`: what users may do with `smsotp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelfService {
    pub status: bool,
    pub change_number: bool,
    pub trust: bool,
    pub totp: bool,
    pub recovery_codes: bool,
    /// How long a proven new number waits before it alone signs in.
    pub cooldown: Duration,
}

/// The file as written, before validation.
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
    /// Set when `unenrolled = "enroll"`.
    pub enrollment: Option<Enrollment>,
    /// Calling codes any SMS may go to; None: anywhere.
    pub destinations: Option<Vec<String>>,
    pub self_service: SelfService,
    /// Set when the file has a `[voice]` table.
    pub voice: Option<Voice>,
    /// Where a code goes when the provider fails or the message is not
    /// delivered, in order; once per login.
    pub failover: Vec<Route>,
    /// How often a sent SMS's delivery status is asked (with failover).
    pub failover_poll: Duration,
    /// Where records live (`[store]`).
    pub store: fleet::StoreKind,
    /// Set when `phone_source = "ldap"`: numbers come from the directory.
    pub ldap: Option<fleet::Ldap>,
}

/// A failover step.
#[derive(Debug, Clone)]
pub enum Route {
    /// A call from the primary provider (`[voice]`).
    Voice,
    /// Another provider, by SMS.
    Provider(Box<Provider>),
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
    /// Every SMS of this host in 24 hours (a spending cap; toll fraud).
    pub sms_per_host_per_day: u32,
    pub sms_per_host_per_hour: u32,
    pub sms_per_user_per_day: u32,
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
    Outbox {
        path: PathBuf,
    },
    /// Plivo's Message API (provider/plivo.rs).
    Plivo(crate::provider::plivo::PlivoConfig),
    /// A program of the administrator's (provider/command.rs).
    Command {
        path: PathBuf,
        timeout: Duration,
    },
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
    /// Verify's `RateLimits`: (unique name, what it counts).
    pub verify_rate_limits: Vec<(String, RateKey)>,
    /// Lookup v2 line types a new number must not have; empty: no lookup.
    pub lookup_refuse: Vec<String>,
    pub lookup_api_base: String,
}

/// What a Verify rate limit counts per.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateKey {
    User,
    Host,
    UserAtHost,
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
    pub plivo_auth_token: Option<Secret>,
    pub postgresql_password: Option<Secret>,
    pub ldap_bind_password: Option<Secret>,
}

/// File names under `$CREDENTIALS_DIRECTORY`.
pub const CREDENTIAL_AUTH_TOKEN: &str = "twilio-auth-token";
pub const CREDENTIAL_API_KEY_SECRET: &str = "twilio-api-key-secret";
pub const CREDENTIAL_PLIVO_AUTH_TOKEN: &str = "plivo-auth-token";

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
        let provider = provider_config(raw.provider, &raw, &codes, creds).map_err(err)?;
        let failover = validate::validate_failover(&raw, &codes, creds, &provider).map_err(err)?;
        let policy = validate_policy(&raw.policy, &raw.rule).map_err(err)?;
        let enrollment =
            validate::validate_enrollment(raw.unenrolled, &policy, raw.enrollment.as_ref()).map_err(err)?;
        let destinations = validate::validate_destinations(raw.destinations.as_ref()).map_err(err)?;
        let self_service = validate::validate_self_service(&raw.self_service).map_err(err)?;
        let voice = validate::validate_voice(raw.voice.as_ref(), &provider).map_err(err)?;
        if failover.iter().any(|r| matches!(r, Route::Voice)) && voice.is_none() {
            return Err(err("failover lists \"voice\", which needs a [voice] table".to_owned()));
        }
        let failover_poll =
            Duration::from_secs(range("failover_poll_seconds", raw.failover_poll_seconds, 1, 60, "").map_err(err)?);
        let store = fleet::validate_store(&raw.store, creds).map_err(err)?;
        let ldap = fleet::validate_ldap(raw.phone_source, raw.ldap.as_ref(), creds).map_err(err)?;
        Ok(Config {
            store,
            ldap,
            failover,
            failover_poll,
            voice,
            self_service,
            destinations,
            enrollment,
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
            twilio: Option<PeekSecrets>,
            plivo: Option<PeekSecrets>,
        }
        #[derive(Deserialize)]
        struct PeekSecrets {
            auth_token: Option<toml::Value>,
            api_key_secret: Option<toml::Value>,
        }
        let holds = |t: &PeekSecrets| t.auth_token.is_some() || t.api_key_secret.is_some();
        match toml::from_str::<Peek>(text) {
            Ok(p) => p.twilio.as_ref().is_some_and(holds) || p.plivo.as_ref().is_some_and(holds),
            // Unparseable: be strict about who may read it.
            Err(_) => true,
        }
    }

    /// Reads `path`, checks its owner and mode, and parses it.
    pub fn load(path: &Path, credentials_directory: Option<&Path>) -> Result<Config, ConfigError> {
        let creds = match credentials_directory {
            Some(dir) => read_credentials(dir)?,
            None => ExternalCredentials::default(),
        };
        Config::load_with(path, &creds)
    }

    /// Reads and checks the file, with credentials found elsewhere.
    pub fn load_with(path: &Path, creds: &ExternalCredentials) -> Result<Config, ConfigError> {
        let origin = path.display().to_string();
        let err = |message: String| ConfigError { origin: origin.clone(), message };
        let file = std::fs::File::open(path).map_err(|e| {
            err(format!(
                "cannot read the configuration ({e}); the package installs one at /etc/smsotpd/smsotpd.toml (in the source tree: etc/smsotpd.toml; reference: smsotpd.toml(5)), or pass --config PATH"
            ))
        })?;
        let meta = file.metadata().map_err(|e| err(format!("cannot stat the configuration: {e}")))?;
        if !meta.is_file() {
            return Err(err("is not a regular file".to_owned()));
        }
        let text = Zeroizing::new(read_limited(file, 1 << 20).map_err(|e| err(format!("cannot read: {e}")))?);
        check_owner_and_mode(&meta, Config::file_holds_secrets(&text), "the configuration").map_err(err)?;
        Config::parse(&text, &origin, creds)
    }

    /// The longest a login waits for one daemon call; shown to admins.
    pub fn provider_deadline(&self) -> Duration {
        self.codes.deadline
    }
}

impl ProviderKind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            ProviderKind::TwilioMessaging => "twilio-messaging",
            ProviderKind::TwilioVerify => "twilio-verify",
            ProviderKind::Outbox => "outbox",
            ProviderKind::Command => "command",
            ProviderKind::Plivo => "plivo",
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
    Ok(ExternalCredentials {
        auth_token: read_credential(&dir.join(CREDENTIAL_AUTH_TOKEN))?,
        api_key_secret: read_credential(&dir.join(CREDENTIAL_API_KEY_SECRET))?,
        plivo_auth_token: read_credential(&dir.join(CREDENTIAL_PLIVO_AUTH_TOKEN))?,
        postgresql_password: read_credential(&dir.join(fleet::CREDENTIAL_POSTGRESQL_PASSWORD))?,
        ldap_bind_password: read_credential(&dir.join(fleet::CREDENTIAL_LDAP_BIND_PASSWORD))?,
    })
}

/// One credential file; `Ok(None)` when it does not exist.
pub fn read_credential(path: &Path) -> Result<Option<Secret>, ConfigError> {
    {
        let origin = path.display().to_string();
        match std::fs::File::open(path) {
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
    }
}

/// toml's own report, kept as it is laid out (the line, a caret under the
/// bad value), with Rust's type names in words and, for a misspelled key,
/// the key that was probably meant.
fn describe_toml_error(e: &toml::de::Error) -> String {
    let msg = e.to_string();
    let mut out: Vec<String> = msg.trim_end().lines().map(plain_types).collect();
    if let Some(hint) = suggestion(&msg) {
        out.push(hint);
    }
    if msg.contains("missing field `provider`") {
        out.push(
            "choose a provider explicitly: provider = \"twilio-messaging\", \"twilio-verify\" or \"outbox\"".into(),
        );
    }
    out.join("\n")
}

/// "expected u32" means nothing to an administrator.
pub(crate) fn plain_types(line: &str) -> String {
    let mut l = line.to_owned();
    for (rust, words) in [
        ("expected u32", "expected a whole number"),
        ("expected u64", "expected a whole number"),
        ("expected usize", "expected a whole number"),
        ("expected i64", "expected a whole number"),
        ("expected a boolean", "expected true or false"),
        ("expected a sequence", "expected a list, e.g. [\"a\", \"b\"]"),
    ] {
        l = l.replace(rust, words);
    }
    l
}

/// "unknown field `lenght`, expected one of `length`, ...": the nearest
/// expected key, when one is close enough to be a typo.
pub(crate) fn suggestion(msg: &str) -> Option<String> {
    let rest = msg.split("unknown field `").nth(1)?;
    let (typed, rest) = rest.split_once('`')?;
    let expected = rest.split_once("expected ")?.1.lines().next()?;
    let best = expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|k| (edit_distance(&typed.to_lowercase(), &k.to_lowercase()), k))
        .min()?;
    (best.0 <= 2 || best.1.contains(typed) || typed.contains(best.1)).then(|| format!("did you mean `{}`?", best.1))
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

pub(crate) fn range<T: PartialOrd + fmt::Display + Copy>(
    key: &str,
    v: T,
    lo: T,
    hi: T,
    why: &str,
) -> Result<T, String> {
    if v < lo || v > hi {
        return Err(format!("{key} = {v} is out of range: use {lo} to {hi}{why}"));
    }
    Ok(v)
}

#[cfg(test)]
mod tests;
