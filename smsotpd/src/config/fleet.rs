//! `[store]` (where records live: files, or PostgreSQL shared by a fleet)
//! and `phone_source` / `[ldap]` (numbers from the directory).

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;

use super::{ExternalCredentials, Secret, range};

pub const CREDENTIAL_POSTGRESQL_PASSWORD: &str = "postgresql-password";
pub const CREDENTIAL_LDAP_BIND_PASSWORD: &str = "ldap-bind-password";
/// Where Debian's libpq looks for services (PGSYSCONFDIR).
pub const DEFAULT_SERVICE_FILE: &str = "/etc/postgresql-common/pg_service.conf";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawStore {
    pub(crate) kind: String,
    pub(crate) connection: Option<String>,
    pub(crate) service: Option<String>,
    pub(crate) service_file: PathBuf,
    pub(crate) ca_file: Option<PathBuf>,
    pub(crate) client_cert: Option<PathBuf>,
    pub(crate) client_key: Option<PathBuf>,
    pub(crate) connect_timeout_seconds: u64,
    pub(crate) statement_timeout_ms: u64,
    pub(crate) retry_seconds: u64,
    pub(crate) offline: String,
    pub(crate) trust_scope: String,
    pub(crate) sms_per_fleet_per_day: u32,
    pub(crate) connections: usize,
}

impl Default for RawStore {
    fn default() -> Self {
        RawStore {
            kind: "files".into(),
            connection: None,
            service: None,
            service_file: PathBuf::from(DEFAULT_SERVICE_FILE),
            ca_file: None,
            client_cert: None,
            client_key: None,
            connect_timeout_seconds: 2,
            statement_timeout_ms: 2000,
            retry_seconds: 15,
            offline: "deny".into(),
            trust_scope: "host".into(),
            sms_per_fleet_per_day: 5000,
            connections: 2,
        }
    }
}

/// Where records live.
#[derive(Debug, Clone)]
pub enum StoreKind {
    /// Files in the state directory (one host; the default).
    Files,
    Postgresql(Box<Postgresql>),
}

/// `[store] kind = "postgresql"`.
#[derive(Debug, Clone)]
pub struct Postgresql {
    /// How the database is named (never with a password).
    pub connection: Connection,
    /// The systemd credential `postgresql-password`, if any.
    pub password: Option<Secret>,
    /// TLS: the CA that signed the server's certificate. Required over TCP.
    pub ca_file: Option<PathBuf>,
    pub client_cert: Option<(PathBuf, PathBuf)>,
    pub connect_timeout: Duration,
    pub statement_timeout: Duration,
    /// After a failure, calls fail at once for this long (circuit breaker).
    pub retry: Duration,
    /// While the database is down: deny everyone, or let machines this
    /// host saw trusted in (a local copy).
    pub offline_local_trust: bool,
    /// Trust earned on one host opens every host of the fleet.
    pub fleet_trust: bool,
    pub sms_per_fleet_per_day: u32,
    pub connections: usize,
}

pub(crate) fn validate_store(raw: &RawStore, creds: &ExternalCredentials) -> Result<StoreKind, String> {
    match raw.kind.as_str() {
        "files" => {
            if raw.connection.is_some() {
                return Err("store.connection is set but store.kind = \"files\"; write kind = \"postgresql\" to use the database".into());
            }
            Ok(StoreKind::Files)
        }
        "postgresql" => validate_postgresql(raw, creds).map(|p| StoreKind::Postgresql(Box::new(p))),
        other => {
            Err(format!("store.kind = {other:?}: use \"files\" (one host, the default) or \"postgresql\" (a fleet)"))
        }
    }
}

/// How the database is named.
#[derive(Debug, Clone)]
pub enum Connection {
    /// libpq-style "key=value ..." or a postgresql:// URL.
    String(String),
    /// A section of a pg_service.conf, read when connecting.
    Service { name: String, file: PathBuf },
}

impl std::fmt::Display for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Connection::String(s) => f.write_str(s),
            Connection::Service { name, file } => write!(f, "service={name} ({})", file.display()),
        }
    }
}

/// The checks every connection gets, from the file or a service: no
/// password in it, a user named, and TLS over TCP.
pub fn check_connection(text: &str, what: &str, has_ca: bool) -> Result<postgres::Config, String> {
    let parsed = postgres::Config::from_str(text)
        .map_err(|e| format!("{what} cannot be read ({e}); write libpq-style \"host=... dbname=... user=...\""))?;
    if parsed.get_password().is_some() {
        return Err(format!(
            "{what} holds a password; remove it and put it in the systemd credential {CREDENTIAL_POSTGRESQL_PASSWORD} (LoadCredential=)"
        ));
    }
    if parsed.get_user().is_none() {
        return Err(format!("{what} names no user; add user=ROLE (the host's database role)"));
    }
    let tcp = parsed.get_hosts().iter().any(|h| matches!(h, postgres::config::Host::Tcp(_)));
    if tcp && !has_ca {
        return Err(format!(
            "{what} reaches the database over TCP: set store.ca_file (TLS with the CA that signed the server's certificate); only a Unix socket (host=/run/postgresql) goes without"
        ));
    }
    Ok(parsed)
}

/// The `name` section of a pg_service.conf's text as one libpq-style
/// string ("key='value' ..."), or why not.
pub fn service_connection(text: &str, name: &str) -> Result<String, String> {
    let mut inside = false;
    let mut found = false;
    let mut parts = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = section.trim() == name;
            found |= inside;
            continue;
        }
        if !inside {
            continue;
        }
        let (key, value) = line.split_once('=').ok_or_else(|| format!("service {name}: {line:?} is not key=value"))?;
        let value = value.trim().replace('\\', "\\\\").replace('\'', "\\'");
        parts.push(format!("{}='{value}'", key.trim()));
    }
    if !found {
        return Err(format!("there is no [{name}] in the service file"));
    }
    Ok(parts.join(" "))
}

fn validate_postgresql(raw: &RawStore, creds: &ExternalCredentials) -> Result<Postgresql, String> {
    let connection = match (&raw.connection, &raw.service) {
        (Some(c), None) => {
            check_connection(c, "store.connection", raw.ca_file.is_some())?;
            Connection::String(c.clone())
        }
        (None, Some(name)) => {
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
                return Err(format!("store.service = {name:?} is not a service name"));
            }
            if !raw.service_file.is_absolute() {
                return Err(format!("store.service_file = {:?} must be an absolute path", raw.service_file));
            }
            Connection::Service { name: name.clone(), file: raw.service_file.clone() }
        }
        (Some(_), Some(_)) => return Err("set store.connection or store.service, not both".into()),
        (None, None) => {
            return Err("store.kind = \"postgresql\" needs store.connection, e.g. \"host=db.example.org dbname=smsotp user=smsotp_web1\", or store.service (a pg_service.conf section)".into());
        }
    };
    let client_cert = tls_files("store", &raw.ca_file, &raw.client_cert, &raw.client_key)?;
    let offline_local_trust = match raw.offline.as_str() {
        "deny" => false,
        "local-trust" => true,
        other => {
            return Err(format!(
                "store.offline = {other:?}: use \"deny\" (the default: no login while the database is down) or \"local-trust\""
            ));
        }
    };
    let fleet_trust = match raw.trust_scope.as_str() {
        "host" => false,
        "fleet" => true,
        other => return Err(format!("store.trust_scope = {other:?}: use \"host\" (the default) or \"fleet\"")),
    };
    Ok(Postgresql {
        connection,
        password: creds.postgresql_password.clone(),
        ca_file: raw.ca_file.clone(),
        client_cert,
        connect_timeout: Duration::from_secs(range(
            "store.connect_timeout_seconds",
            raw.connect_timeout_seconds,
            1,
            10,
            " (a login waits this long for a database that is down)",
        )?),
        statement_timeout: Duration::from_millis(range(
            "store.statement_timeout_ms",
            raw.statement_timeout_ms,
            100,
            10_000,
            "",
        )?),
        retry: Duration::from_secs(range("store.retry_seconds", raw.retry_seconds, 1, 600, "")?),
        offline_local_trust,
        fleet_trust,
        sms_per_fleet_per_day: range("store.sms_per_fleet_per_day", raw.sms_per_fleet_per_day, 1, 10_000_000, "")?,
        connections: range("store.connections", raw.connections, 1, 16, "")?,
    })
}

/// `section`'s ca_file, client_cert and client_key: absolute paths, the
/// certificate and its key together, and only over TLS with a CA.
fn tls_files(
    section: &str,
    ca_file: &Option<PathBuf>,
    cert: &Option<PathBuf>,
    key: &Option<PathBuf>,
) -> Result<Option<(PathBuf, PathBuf)>, String> {
    for (name, p) in [("ca_file", ca_file), ("client_cert", cert), ("client_key", key)] {
        if let Some(p) = p
            && !p.is_absolute()
        {
            return Err(format!("{section}.{name} = {p:?} must be an absolute path"));
        }
    }
    match (cert, key, ca_file) {
        (Some(c), Some(k), Some(_)) => Ok(Some((c.clone(), k.clone()))),
        (Some(_), Some(_), None) => Err(format!(
            "{section}.client_cert goes over TLS checked against {section}.ca_file: set {section}.ca_file to the CA that signed the server's certificate"
        )),
        (None, None, _) => Ok(None),
        _ => Err(format!("{section}.client_cert and {section}.client_key go together: set both or neither")),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PhoneSource {
    /// Numbers enrolled with smsotpctl, smsotp or at login.
    Store,
    /// The user's directory entry (`[ldap]`).
    Ldap,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLdap {
    pub(crate) url: String,
    #[serde(default)]
    pub(crate) starttls: bool,
    pub(crate) base: String,
    #[serde(default = "default_filter")]
    pub(crate) filter: String,
    #[serde(default = "default_attribute")]
    pub(crate) attribute: String,
    pub(crate) bind_dn: Option<String>,
    #[serde(default)]
    pub(crate) sasl_external: bool,
    pub(crate) ca_file: Option<PathBuf>,
    pub(crate) client_cert: Option<PathBuf>,
    pub(crate) client_key: Option<PathBuf>,
    #[serde(default = "default_cache")]
    pub(crate) cache_seconds: u64,
    #[serde(default = "default_ldap_timeout")]
    pub(crate) timeout_seconds: u64,
    #[serde(default = "default_on_change")]
    pub(crate) on_change: String,
}

fn default_filter() -> String {
    "(&(objectClass=*)(uid={user}))".into()
}
fn default_attribute() -> String {
    "mobile".into()
}
fn default_cache() -> u64 {
    300
}
fn default_ldap_timeout() -> u64 {
    3
}
fn default_on_change() -> String {
    "notify".into()
}

/// `[ldap]`: where users' numbers are read.
#[derive(Debug, Clone)]
pub struct Ldap {
    pub url: String,
    pub starttls: bool,
    pub base: String,
    /// `{user}` is replaced by the escaped user name.
    pub filter: String,
    pub attribute: String,
    pub bind: LdapBind,
    pub ca_file: Option<PathBuf>,
    /// A client certificate and its key (SASL EXTERNAL over TLS).
    pub client_cert: Option<(PathBuf, PathBuf)>,
    pub cache: Duration,
    pub timeout: Duration,
    /// A changed number waits for `smsotpctl approve` (users may be able to
    /// edit their own entry).
    pub approve_changes: bool,
}

#[derive(Debug, Clone)]
pub enum LdapBind {
    Anonymous,
    Simple { dn: String, password: Secret },
    SaslExternal,
}

pub(crate) fn validate_ldap(
    source: PhoneSource,
    raw: Option<&RawLdap>,
    creds: &ExternalCredentials,
) -> Result<Option<Ldap>, String> {
    let raw = match (source, raw) {
        (PhoneSource::Store, _) => return Ok(None),
        (PhoneSource::Ldap, None) => {
            return Err("phone_source = \"ldap\" needs an [ldap] table (url, base, attribute)".into());
        }
        (PhoneSource::Ldap, Some(r)) => r,
    };
    let scheme = raw.url.split("://").next().unwrap_or_default();
    match scheme {
        "ldaps" | "ldapi" => {}
        "ldap" if raw.starttls => {}
        "ldap" => {
            return Err(format!(
                "ldap.url = {:?} is plain text: use ldaps://, or set ldap.starttls = true, or ldapi:// on this host",
                raw.url
            ));
        }
        _ => {
            return Err(format!(
                "ldap.url = {:?}: use ldaps://HOST, ldap://HOST with starttls = true, or ldapi://",
                raw.url
            ));
        }
    }
    if !raw.filter.contains("{user}") {
        return Err(format!("ldap.filter = {:?} must contain {{user}}, e.g. \"(uid={{user}})\"", raw.filter));
    }
    if raw.attribute.is_empty() || !raw.attribute.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ';') {
        return Err(format!("ldap.attribute = {:?} is not an attribute name, e.g. \"mobile\"", raw.attribute));
    }
    let bind = match (&raw.bind_dn, raw.sasl_external) {
        (Some(_), true) => return Err("ldap.bind_dn and ldap.sasl_external = true exclude each other".into()),
        (Some(dn), false) => LdapBind::Simple {
            dn: dn.clone(),
            password: creds.ldap_bind_password.clone().ok_or(format!(
                "ldap.bind_dn is set but there is no password: put it in the systemd credential {CREDENTIAL_LDAP_BIND_PASSWORD} (LoadCredential=)"
            ))?,
        },
        (None, true) => LdapBind::SaslExternal,
        (None, false) => LdapBind::Anonymous,
    };
    let client_cert = tls_files("ldap", &raw.ca_file, &raw.client_cert, &raw.client_key)?;
    match (scheme, &bind, &client_cert) {
        ("ldapi", _, Some(_)) => {
            return Err("ldap.client_cert is for TLS, and ldapi:// has none: there SASL EXTERNAL (ldap.sasl_external = true) is the daemon's uid".into());
        }
        ("ldaps" | "ldap", LdapBind::SaslExternal, None) => {
            return Err("ldap.sasl_external = true over TLS binds as the client certificate: set ldap.client_cert and ldap.client_key (over ldapi:// it binds as the daemon's uid)".into());
        }
        _ => {}
    }
    let on_change = match raw.on_change.as_str() {
        "notify" => false,
        "approve" => true,
        other => return Err(format!("ldap.on_change = {other:?}: use \"notify\" or \"approve\"")),
    };
    Ok(Some(Ldap {
        url: raw.url.clone(),
        starttls: raw.starttls,
        base: raw.base.clone(),
        filter: raw.filter.clone(),
        attribute: raw.attribute.clone(),
        bind,
        ca_file: raw.ca_file.clone(),
        client_cert,
        cache: Duration::from_secs(range("ldap.cache_seconds", raw.cache_seconds, 0, 86_400, "")?),
        timeout: Duration::from_secs(range("ldap.timeout_seconds", raw.timeout_seconds, 1, 10, "")?),
        approve_changes: on_change,
    }))
}
