//! Checks of the [twilio] section, beside the provider that uses it:
//! SIDs, credentials (from the file or systemd's credentials), the sender,
//! and base URLs.

use std::time::Duration;

use crate::config::raw::RawTwilio;
use crate::config::{
    CREDENTIAL_API_KEY_SECRET, CREDENTIAL_AUTH_TOKEN, ExternalCredentials, ProviderKind, RateKey, Secret, Sender,
    Twilio, TwilioAuth, range,
};
use crate::names::PhoneNumber;

fn is_sid(s: &str, prefix: &str) -> bool {
    s.len() == 34 && s.starts_with(prefix) && s[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

pub(crate) fn validate_twilio(t: RawTwilio, kind: ProviderKind, creds: &ExternalCredentials) -> Result<Twilio, String> {
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
    let mut verify_rate_limits = Vec::new();
    for (name, key) in t.verify_rate_limits.iter().flatten() {
        if name.is_empty()
            || name.len() > 64
            || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(format!(
                "twilio.verify_rate_limits: {name:?} is not a rate limit's unique name (letters, digits, _ and -)"
            ));
        }
        let key = match key.as_str() {
            "user" => RateKey::User,
            "host" => RateKey::Host,
            "user@host" => RateKey::UserAtHost,
            other => {
                return Err(format!(
                    "twilio.verify_rate_limits.{name} = {other:?}: use \"user\", \"host\" or \"user@host\""
                ));
            }
        };
        verify_rate_limits.push((name.clone(), key));
    }
    if !verify_rate_limits.is_empty() && kind != ProviderKind::TwilioVerify {
        return Err("twilio.verify_rate_limits is for provider = \"twilio-verify\"".into());
    }
    const LINE_TYPES: &[&str] = &[
        "landline",
        "mobile",
        "fixedVoip",
        "nonFixedVoip",
        "personal",
        "tollFree",
        "premium",
        "sharedCost",
        "uan",
        "voicemail",
        "pager",
        "unknown",
    ];
    let lookup_refuse = t.lookup_refuse.clone().unwrap_or_default();
    if let Some(bad) = lookup_refuse.iter().find(|l| !LINE_TYPES.contains(&l.as_str())) {
        return Err(format!(
            "twilio.lookup_refuse: {bad:?} is not a Lookup line type; use some of {}",
            LINE_TYPES.join(", ")
        ));
    }
    if lookup_refuse.iter().any(|l| l == "mobile") {
        return Err("twilio.lookup_refuse lists \"mobile\": no number could receive SMS codes".into());
    }
    let lookup_api_base = validate_base("twilio.lookup_api_base", &t.lookup_api_base)?;
    Ok(Twilio {
        verify_rate_limits,
        lookup_refuse,
        lookup_api_base,
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

pub(crate) fn pick_secret(
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
pub(crate) fn validate_base(key: &str, base: &str) -> Result<String, String> {
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
