//! Range and shape checks of the [codes], [lockout], [policy], [[rule]] and provider
//! sections: each error names the key and the fix.

use std::time::Duration;

use serde::Deserialize;

use super::raw::{RawCodes, RawLockout, RawPolicy, RawRule};
use super::{Codes, Lockout, PAM_DEFAULT_TIMEOUT_SECONDS, Provider, ProviderKind, range};
use crate::policy::{Action, Cidr, Policy, Rule};

/// `unenrolled = "enroll"` needs the countries numbers may come from:
/// without that list a stranger's script could make us text premium ranges.
pub(crate) fn validate_enrollment(
    unenrolled: super::Unenrolled,
    policy: &Policy,
    raw: Option<&super::raw::RawEnrollment>,
) -> Result<Option<super::Enrollment>, String> {
    let Some(raw) = raw else {
        if unenrolled == super::Unenrolled::Enroll {
            return Err("unenrolled = \"enroll\" needs an [enrollment] table with countries = [\"+1\", ...]: the calling codes a number may start with".into());
        }
        if let Some(r) = policy.rules.iter().find(|r| r.unenrolled == Some(super::Unenrolled::Enroll)) {
            return Err(format!(
                "{} has unenrolled = \"enroll\", which needs an [enrollment] table with countries = [\"+1\", ...]",
                r.label
            ));
        }
        return Ok(None);
    };
    if raw.countries.is_empty() {
        return Err(
            "enrollment.countries is empty: list the calling codes numbers may start with, e.g. [\"+1\", \"+44\"]"
                .into(),
        );
    }
    calling_codes("enrollment.countries", &raw.countries)?;
    let template = crate::template::Template::parse(&raw.template).map_err(|e| format!("enrollment.template: {e}"))?;
    Ok(Some(super::Enrollment { countries: raw.countries.clone(), template, approval: raw.approval }))
}

/// `failover = [...]`: "voice" or provider kinds other than the primary,
/// each configured by its own table; only behind a provider that carries
/// our code (Verify makes its own, which no other route could send).
pub(crate) fn validate_failover(
    raw: &super::raw::RawConfig,
    codes: &super::Codes,
    creds: &super::ExternalCredentials,
    primary: &super::Provider,
) -> Result<Vec<super::Route>, String> {
    if raw.failover.is_empty() {
        return Ok(Vec::new());
    }
    if matches!(primary, super::Provider::TwilioVerify(_)) {
        return Err("failover does not work with provider = \"twilio-verify\": Verify makes the code, and no other route could send it".into());
    }
    let mut routes = Vec::new();
    let mut seen = vec![raw.provider.name().to_owned()];
    for entry in &raw.failover {
        if seen.contains(entry) {
            return Err(format!("failover lists {entry:?} twice, or the provider itself"));
        }
        seen.push(entry.clone());
        let route = match entry.as_str() {
            "voice" => super::Route::Voice,
            "twilio-messaging" => super::Route::Provider(Box::new(provider_config(
                super::ProviderKind::TwilioMessaging,
                raw,
                codes,
                creds,
            )?)),
            "command" => {
                super::Route::Provider(Box::new(provider_config(super::ProviderKind::Command, raw, codes, creds)?))
            }
            "plivo" => {
                super::Route::Provider(Box::new(provider_config(super::ProviderKind::Plivo, raw, codes, creds)?))
            }
            "outbox" => {
                super::Route::Provider(Box::new(provider_config(super::ProviderKind::Outbox, raw, codes, creds)?))
            }
            other => {
                return Err(format!(
                    "failover = [... {other:?} ...]: use \"voice\", \"twilio-messaging\", \"plivo\", \"command\" or \"outbox\""
                ));
            }
        };
        routes.push(route);
    }
    Ok(routes)
}

pub(crate) fn validate_voice(
    raw: Option<&super::raw::RawVoice>,
    provider: &super::Provider,
) -> Result<Option<super::Voice>, String> {
    let Some(raw) = raw else { return Ok(None) };
    let l = raw.language.as_bytes();
    let language_ok = match l.len() {
        2 => l.iter().all(u8::is_ascii_lowercase),
        5 => l[..2].iter().all(u8::is_ascii_lowercase) && l[2] == b'-' && l[3..].iter().all(u8::is_ascii_uppercase),
        _ => false,
    };
    if !language_ok {
        return Err(format!(
            "voice.language = {:?}: use a language tag such as \"en-US\", \"de-DE\" or \"fr\"",
            raw.language
        ));
    }
    if let Some(from) = &raw.from {
        crate::names::PhoneNumber::parse(from).map_err(|e| format!("voice.from: {e}"))?;
    }
    if let super::Provider::Plivo(p) = provider {
        if p.answer_url.is_none() {
            return Err("[voice] with provider = \"plivo\" needs plivo.answer_url: an https page of yours that answers <Response><Wait length=\"60\"/></Response> (smsotpd speaks the code into the answered call)".into());
        }
        if raw.from.is_none() && !matches!(p.sender, crate::provider::plivo::PlivoSender::Src(_)) {
            return Err(
                "[voice] with plivo.powerpack_uuid needs voice.from: a Plivo number that can place calls".into()
            );
        }
    }
    if let super::Provider::TwilioMessaging(t) = provider
        && raw.from.is_none()
        && !matches!(t.sender, Some(super::Sender::From(_)))
    {
        return Err("[voice] with a Messaging Service needs voice.from: a Twilio number that can place calls".into());
    }
    let template = crate::template::Template::parse(&raw.template).map_err(|e| format!("voice.template: {e}"))?;
    Ok(Some(super::Voice { from: raw.from.clone(), language: raw.language.clone(), template, first: raw.first }))
}

pub(crate) fn validate_self_service(raw: &super::raw::RawSelfService) -> Result<super::SelfService, String> {
    if raw.number_change_cooldown_hours > 720 {
        return Err(format!(
            "self_service.number_change_cooldown_hours is {}; at most 720 (30 days), 0 for none",
            raw.number_change_cooldown_hours
        ));
    }
    Ok(super::SelfService {
        status: raw.status,
        change_number: raw.change_number,
        trust: raw.trust,
        totp: raw.totp,
        recovery_codes: raw.recovery_codes,
        cooldown: std::time::Duration::from_secs(u64::from(raw.number_change_cooldown_hours) * 3600),
    })
}

/// Each entry is "+" and 1 to 4 digits (a country's calling code or a
/// longer prefix of it).
pub(crate) fn calling_codes(key: &str, list: &[String]) -> Result<(), String> {
    for c in list {
        let digits = c.strip_prefix('+').unwrap_or_default();
        if digits.is_empty()
            || digits.len() > 4
            || !digits.bytes().all(|b| b.is_ascii_digit())
            || digits.starts_with('0')
        {
            return Err(format!("{key}: {c:?} is not a calling code; write \"+\" and 1 to 4 digits, e.g. \"+44\""));
        }
    }
    Ok(())
}

/// `[destinations] countries`: where any SMS may go (toll fraud). An empty
/// list would stop every SMS and is refused as a typo: leave the table out.
pub(crate) fn validate_destinations(raw: Option<&super::raw::RawDestinations>) -> Result<Option<Vec<String>>, String> {
    let Some(raw) = raw else { return Ok(None) };
    if raw.countries.is_empty() {
        return Err("destinations.countries is empty, so no SMS could go anywhere; list calling codes (e.g. [\"+1\"]) or remove the table".into());
    }
    calling_codes("destinations.countries", &raw.countries)?;
    Ok(Some(raw.countries.clone()))
}

pub(crate) fn validate_codes(c: &RawCodes) -> Result<Codes, String> {
    let length = range("codes.length", c.length, 6, 10, " (NIST SP 800-63B asks for at least 6 digits)")?;
    let expiry = range("codes.expiry_seconds", c.expiry_seconds, 60, 600, " (NIST SP 800-63B: at most 10 minutes)")?;
    let attempts = range("codes.attempts", c.attempts, 1, 10, "")?;
    let resend_interval = range("codes.resend_interval_seconds", c.resend_interval_seconds, 10, 600, "")?;
    let resends = range("codes.resends", c.resends, 0, 10, "")?;
    let max_pending = range("codes.max_pending", c.max_pending, 1, 1_000_000, "")?;
    let sms = range("codes.sms_per_user_per_hour", c.sms_per_user_per_hour, 1, 100, "")?;
    let per_day = range("codes.sms_per_host_per_day", c.sms_per_host_per_day, 1, 1_000_000, "")?;
    let host_hour = range("codes.sms_per_host_per_hour", c.sms_per_host_per_hour, 1, 1_000_000, "")?;
    let user_day = range("codes.sms_per_user_per_day", c.sms_per_user_per_day, 1, 1_000, "")?;
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
        sms_per_host_per_day: per_day,
        sms_per_host_per_hour: host_hour,
        sms_per_user_per_day: user_day,
        deadline: Duration::from_secs(deadline),
    })
}

pub(crate) fn validate_lockout(l: &RawLockout) -> Result<Lockout, String> {
    let failures =
        range("lockout.failures", l.failures, 1, 100, " (NIST SP 800-63B allows at most 100 consecutive failures)")?;
    let minutes = range("lockout.minutes", l.minutes, 1, 7 * 24 * 60, "")?;
    Ok(Lockout { failures, duration: Duration::from_secs(minutes * 60) })
}

pub(crate) fn trust_days(key: &str, days: u32) -> Result<u32, String> {
    range(key, days, 1, 365, "")
}

pub(crate) fn validate_policy(p: &RawPolicy, rules: &[toml::Table]) -> Result<Policy, String> {
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

pub(crate) fn parse_rule(table: &toml::Table, label: &str, default_days: u32) -> Result<Rule, String> {
    let raw = RawRule::deserialize(toml::Value::Table(table.clone())).map_err(|e| {
        let msg = super::plain_types(e.message());
        match super::suggestion(&msg) {
            Some(hint) => format!("{msg}; {hint}"),
            None => msg,
        }
    })?;
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
        unenrolled: match raw.unenrolled.as_deref() {
            None => None,
            Some("deny") => Some(super::Unenrolled::Deny),
            Some("allow") => Some(super::Unenrolled::Allow),
            Some("enroll") => Some(super::Unenrolled::Enroll),
            Some(other) => {
                return Err(format!(
                    "unenrolled = {other:?}: use \"deny\", \"allow\" or \"enroll\" (or leave it out for the top-level setting)"
                ));
            }
        },
    })
}

/// The provider of `kind`, from its table (`[twilio]`, `[command]`, `[outbox]`).
pub(crate) fn provider_config(
    kind: ProviderKind,
    raw: &super::raw::RawConfig,
    codes: &Codes,
    creds: &super::ExternalCredentials,
) -> Result<Provider, String> {
    Ok(match kind {
        ProviderKind::Outbox => {
            if raw.twilio.is_some() {
                // Allowed: switching to the outbox for a test keeps the Twilio keys.
            }
            let outbox = raw.outbox.as_ref().ok_or_else(|| {
                "provider = \"outbox\" needs an [outbox] table with path = \"/var/lib/smsotpd/outbox\"".to_owned()
            })?;
            if !outbox.path.is_absolute() {
                return Err("outbox.path must be an absolute path".to_owned());
            }
            Provider::Outbox { path: outbox.path.clone() }
        }
        ProviderKind::Plivo => {
            let p = raw.plivo.clone().ok_or_else(|| {
                "provider = \"plivo\" needs a [plivo] table (auth_id, auth_token, src or powerpack_uuid)".to_owned()
            })?;
            let p = crate::provider::plivo::validate(p, creds)?;
            if p.request_timeout > codes.deadline {
                return Err(format!(
                    "plivo.request_timeout_seconds ({}) is longer than codes.deadline_seconds ({}); make it shorter so a retry fits",
                    p.request_timeout.as_secs(),
                    codes.deadline.as_secs()
                ));
            }
            Provider::Plivo(p)
        }
        ProviderKind::Command => {
            let c = raw.command.as_ref().ok_or_else(|| {
                "provider = \"command\" needs a [command] table with path = \"/usr/local/lib/smsotp/send-sms\""
                    .to_owned()
            })?;
            if !c.path.is_absolute() {
                return Err("command.path must be an absolute path (no search through PATH)".to_owned());
            }
            let timeout = range(
                "command.timeout_seconds",
                c.timeout_seconds,
                1,
                codes.deadline.as_secs(),
                " (at most codes.deadline_seconds)",
            )?;
            Provider::Command { path: c.path.clone(), timeout: Duration::from_secs(timeout) }
        }
        kind @ (ProviderKind::TwilioMessaging | ProviderKind::TwilioVerify) => {
            let tw = raw.twilio.clone().ok_or_else(|| {
                format!(
                    "provider = \"{}\" needs a [twilio] table (account_sid, credentials, {})",
                    kind.name(),
                    if kind == ProviderKind::TwilioVerify {
                        "verify_service_sid"
                    } else {
                        "from or messaging_service_sid"
                    }
                )
            })?;
            let t = crate::provider::twilio_config::validate_twilio(tw, kind, creds)?;
            if t.request_timeout > codes.deadline {
                return Err(format!(
                    "twilio.request_timeout_seconds ({}) is longer than codes.deadline_seconds ({}); make it shorter so a retry fits",
                    t.request_timeout.as_secs(),
                    codes.deadline.as_secs()
                ));
            }
            if kind == ProviderKind::TwilioVerify { Provider::TwilioVerify(t) } else { Provider::TwilioMessaging(t) }
        }
    })
}
