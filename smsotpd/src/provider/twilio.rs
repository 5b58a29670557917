//! Twilio Programmable Messaging and Verify v2 over one HTTP client.
//!
//! Retries: only where no SMS can have gone out. A connection that never
//! opened, HTTP 429/20429 and 5xx are retried with jittered backoff while the
//! deadline allows; a request that was sent but got no answer is not, because
//! Twilio may have queued it and one login must never send two SMS.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::http::{self, Outcome, error_chain};
use super::{Channel, DeliveryStatus, Outgoing, Provider, ProviderError, RemoteVerdict};
use crate::clock::{Clock, Tick};
use crate::config::{self, Sender, TwilioAuth};
use crate::names::PhoneNumber;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    Messaging,
    Verify,
}

pub struct Twilio {
    api: Api,
    /// `host` of Verify's rate limits.
    host: String,
    cfg: config::Twilio,
    voice: Option<config::Voice>,
    client: reqwest::Client,
    clock: Arc<dyn Clock>,
    content_retention_discard: bool,
}

/// Twilio's error body: `{"code": 21211, "message": ..., "more_info": ..., "status": 400}`.
/// `message` is never kept: it can contain the phone number.
#[derive(Debug, Deserialize)]
struct ErrorBody {
    code: Option<u32>,
}

#[derive(Debug, Deserialize)]
struct Created {
    sid: String,
}

#[derive(Debug, Deserialize)]
struct CheckBody {
    status: String,
}

/// One-line meanings of the Twilio codes operators meet most.
pub fn describe_code(code: u32) -> &'static str {
    match code {
        20003 => "authentication failed",
        20404 => "resource not found",
        20429 => "too many requests",
        21211 => "invalid 'To' phone number",
        21408 => "sending to this region is not enabled (Messaging Geo Permissions)",
        21610 => "the recipient has opted out (replied STOP)",
        21614 => "the number is not a mobile number",
        21606 => "the 'From' number cannot send SMS",
        60200 => "invalid parameter",
        60202 => "maximum check attempts reached",
        60203 => "maximum send attempts reached",
        60212 => "too many concurrent requests for this phone number",
        60410 => "blocked by Verify Fraud Guard",
        60605 => "blocked by Verify Geo Permissions",
        _ => "see Twilio's error reference",
    }
}

impl Twilio {
    pub fn new(
        api: Api,
        cfg: config::Twilio,
        voice: Option<config::Voice>,
        host: String,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ProviderError> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(cfg.request_timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("smsotpd/", env!("CARGO_PKG_VERSION")));
        builder = match &cfg.proxy {
            Some(p) => builder.proxy(
                reqwest::Proxy::all(p).map_err(|e| ProviderError::Local { detail: format!("twilio.proxy: {e}") })?,
            ),
            None => builder.no_proxy(),
        };
        let client = builder.build().map_err(|e| ProviderError::Local {
            detail: format!("cannot build the HTTP client: {}", error_chain(&e)),
        })?;
        let content_retention_discard = cfg.discard_content;
        Ok(Twilio { api, host, cfg, voice, client, clock, content_retention_discard })
    }

    fn credentials(&self) -> (&str, &str) {
        match &self.cfg.auth {
            TwilioAuth::AuthToken(t) => (self.cfg.account_sid.as_str(), t.expose()),
            TwilioAuth::ApiKey { sid, secret } => (sid.as_str(), secret.expose()),
        }
    }

    fn verify_service(&self) -> &str {
        self.cfg.verify_service_sid.as_deref().unwrap_or_default()
    }

    /// POSTs `form` to `url`, retrying as the module doc says.
    async fn post<T>(
        &self,
        url: &str,
        form: &[(&str, &str)],
        deadline: Tick,
        interpret: impl Fn(u16, &[u8], Option<Duration>) -> Outcome<T>,
    ) -> Result<T, ProviderError> {
        let (user, pass) = self.credentials();
        let send =
            |timeout: Duration| self.client.post(url).basic_auth(user, Some(pass)).form(form).timeout(timeout).send();
        http::with_retries("twilio", &*self.clock, deadline, self.cfg.request_timeout, send, interpret).await
    }
}

fn error_code(body: &[u8]) -> Option<u32> {
    serde_json::from_slice::<ErrorBody>(body).ok().and_then(|b| b.code)
}

/// Verify's `RateLimits` form value: `{"unique_name": "value", ...}`.
pub fn rate_limits(limits: &[(String, config::RateKey)], user: &str, host: &str) -> Option<String> {
    if limits.is_empty() || user.is_empty() {
        return None;
    }
    let map: serde_json::Map<String, serde_json::Value> = limits
        .iter()
        .map(|(name, key)| {
            let value = match key {
                config::RateKey::User => user.to_owned(),
                config::RateKey::Host => host.to_owned(),
                config::RateKey::UserAtHost => format!("{user}@{host}"),
            };
            (name.clone(), serde_json::Value::String(value))
        })
        .collect();
    Some(serde_json::Value::Object(map).to_string())
}

/// The line type a Lookup v2 answer gives (`line_type_intelligence.type`).
pub fn line_type(body: &[u8]) -> Result<Option<String>, ProviderError> {
    #[derive(Deserialize)]
    struct Answer {
        line_type_intelligence: Option<Intelligence>,
    }
    #[derive(Deserialize)]
    struct Intelligence {
        #[serde(rename = "type")]
        kind: Option<String>,
    }
    serde_json::from_slice::<Answer>(body)
        .map(|a| a.line_type_intelligence.and_then(|i| i.kind))
        .map_err(|e| ProviderError::Malformed { detail: format!("a Lookup answer: {e}") })
}

/// A Message resource's `status`: delivered, on its way, or never arriving.
pub fn interpret_status(body: &[u8]) -> Result<DeliveryStatus, ProviderError> {
    match serde_json::from_slice::<CheckBody>(body) {
        Ok(m) => Ok(match m.status.as_str() {
            "delivered" | "read" => DeliveryStatus::Delivered,
            "undelivered" | "failed" | "canceled" => DeliveryStatus::Undelivered,
            _ => DeliveryStatus::Pending,
        }),
        Err(e) => Err(ProviderError::Malformed { detail: format!("a message's status: {e}") }),
    }
}

/// What a call says: the text twice, a pause between, in `language`.
pub fn twiml(text: &str, language: &str) -> String {
    let escaped = text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;");
    let say = format!("<Say language=\"{language}\">{escaped}</Say>");
    format!("<Response>{say}<Pause length=\"1\"/>{say}</Response>")
}

/// Shared meaning of non-success statuses for both APIs.
fn classify_error<T>(status: u16, body: &[u8], retry_after: Option<Duration>) -> Outcome<T> {
    let code = error_code(body);
    match (status, code) {
        (401, _) | (_, Some(20003)) => Outcome::Fail(ProviderError::Credentials { status, code }),
        // Verify says "no more for this number now" with HTTP 429: retrying
        // inside the deadline only adds requests.
        (_, Some(c @ (60203 | 60212))) => Outcome::Fail(ProviderError::Limited { status, code: c }),
        (429, _) | (_, Some(20429)) => Outcome::Retry {
            reason: format!("throttled (HTTP {status}{})", code.map(|c| format!(", error {c}")).unwrap_or_default()),
            after: retry_after,
        },
        (500..=599, _) => Outcome::Retry { reason: format!("HTTP {status}"), after: retry_after },
        _ => Outcome::Fail(ProviderError::Permanent { status, code }),
    }
}

/// Interprets a Messages.json or Verifications answer.
pub fn interpret_created(status: u16, body: &[u8], retry_after: Option<Duration>) -> Outcome<String> {
    if (200..300).contains(&status) {
        return match serde_json::from_slice::<Created>(body) {
            Ok(c) if !c.sid.is_empty() && c.sid.len() <= 64 && c.sid.bytes().all(|b| b.is_ascii_alphanumeric()) => {
                Outcome::Done(c.sid)
            }
            Ok(_) => Outcome::Fail(ProviderError::Malformed { detail: "the answer's sid is not a Twilio SID".into() }),
            Err(e) => Outcome::Fail(ProviderError::Malformed {
                detail: format!("HTTP {status} with a body that is not Twilio JSON: {e}"),
            }),
        };
    }
    classify_error(status, body, retry_after)
}

/// Interprets a VerificationCheck answer. A wrong code is HTTP 200 with
/// status "pending"; 404/20404 (or 60202, out of checks) means the
/// verification is gone.
pub fn interpret_check(status: u16, body: &[u8], retry_after: Option<Duration>) -> Outcome<RemoteVerdict> {
    if (200..300).contains(&status) {
        return match serde_json::from_slice::<CheckBody>(body) {
            Ok(c) => match c.status.as_str() {
                "approved" => Outcome::Done(RemoteVerdict::Approved),
                "pending" => Outcome::Done(RemoteVerdict::Wrong),
                "canceled" | "max_attempts_reached" | "expired" | "deleted" | "failed" => {
                    Outcome::Done(RemoteVerdict::Gone)
                }
                _ => Outcome::Fail(ProviderError::Malformed { detail: "unknown verification status".into() }),
            },
            Err(e) => Outcome::Fail(ProviderError::Malformed {
                detail: format!("HTTP {status} with a body that is not Twilio JSON: {e}"),
            }),
        };
    }
    let code = error_code(body);
    if status == 404 || code == Some(20404) || code == Some(60202) {
        return Outcome::Done(RemoteVerdict::Gone);
    }
    classify_error(status, body, retry_after)
}

impl Twilio {
    /// Checks the credentials without sending anything: fetches the account
    /// (Messaging) or the Verify service.
    pub async fn check_credentials(&self) -> Result<String, ProviderError> {
        let url = match self.api {
            Api::Messaging => format!("{}/2010-04-01/Accounts/{}.json", self.cfg.api_base, self.cfg.account_sid),
            Api::Verify => format!("{}/v2/Services/{}", self.cfg.verify_api_base, self.verify_service()),
        };
        let (status, body) = http::get(&self.client, &url, self.credentials(), self.cfg.request_timeout).await?;
        match status {
            200 => Ok(match self.api {
                Api::Messaging => format!("Twilio account {} accepts our credentials", self.cfg.account_sid),
                Api::Verify => format!("Twilio Verify service {} accepts our credentials", self.verify_service()),
            }),
            _ => match classify_error::<()>(status, &body, None) {
                Outcome::Fail(e) => Err(e),
                _ => Err(ProviderError::Unavailable { detail: format!("HTTP {status}") }),
            },
        }
    }
}

impl Provider for Twilio {
    fn name(&self) -> &'static str {
        match self.api {
            Api::Messaging => "twilio-messaging",
            Api::Verify => "twilio-verify",
        }
    }

    fn makes_codes(&self) -> bool {
        self.api == Api::Verify
    }

    async fn send(&self, msg: &Outgoing<'_>, deadline: Tick) -> Result<String, ProviderError> {
        match (self.api, msg.channel) {
            (Api::Messaging, Channel::Voice) => {
                let Some(voice) = &self.voice else {
                    return Err(ProviderError::Local { detail: "no [voice] table: calls are off".into() });
                };
                let from = match (&voice.from, &self.cfg.sender) {
                    (Some(f), _) | (None, Some(Sender::From(f))) => f.as_str(),
                    _ => return Err(ProviderError::Local { detail: "no caller ID (voice.from)".into() }),
                };
                let url = format!("{}/2010-04-01/Accounts/{}/Calls.json", self.cfg.api_base, self.cfg.account_sid);
                let twiml = zeroize::Zeroizing::new(twiml(msg.body, &voice.language));
                let form = [("To", msg.to.e164()), ("From", from), ("Twiml", twiml.as_str())];
                self.post(&url, &form, deadline, interpret_created).await
            }
            (Api::Messaging, Channel::Sms) => {
                let url = format!("{}/2010-04-01/Accounts/{}/Messages.json", self.cfg.api_base, self.cfg.account_sid);
                let validity = msg.validity.as_secs().clamp(1, 36_000).to_string();
                let mut form: Vec<(&str, &str)> =
                    vec![("To", msg.to.e164()), ("Body", msg.body), ("ValidityPeriod", &validity)];
                match &self.cfg.sender {
                    Some(Sender::From(f)) => form.push(("From", f)),
                    Some(Sender::MessagingService(mg)) => form.push(("MessagingServiceSid", mg)),
                    None => {
                        return Err(ProviderError::Local { detail: "no sender configured".into() });
                    }
                }
                if self.content_retention_discard {
                    form.push(("ContentRetention", "discard"));
                }
                self.post(&url, &form, deadline, interpret_created).await
            }
            (Api::Verify, channel) => {
                let url = format!("{}/v2/Services/{}/Verifications", self.cfg.verify_api_base, self.verify_service());
                let channel = match channel {
                    Channel::Sms => "sms",
                    Channel::Voice => "call",
                };
                let mut form = vec![("To", msg.to.e164()), ("Channel", channel)];
                if let (Channel::Voice, Some(v)) = (msg.channel, &self.voice) {
                    form.push(("Locale", v.language.split('-').next().unwrap_or("en")));
                }
                let limits = rate_limits(&self.cfg.verify_rate_limits, msg.user, &self.host);
                if let Some(limits) = &limits {
                    form.push(("RateLimits", limits));
                }
                self.post(&url, &form, deadline, interpret_created).await
            }
        }
    }

    async fn refuses_number(&self, number: &PhoneNumber, deadline: Tick) -> Result<Option<String>, ProviderError> {
        if self.cfg.lookup_refuse.is_empty() {
            return Ok(None);
        }
        let url = format!(
            "{}/v2/PhoneNumbers/{}?Fields=line_type_intelligence",
            self.cfg.lookup_api_base,
            number.e164().replace('+', "%2B")
        );
        let timeout = self.clock.tick().until(deadline).min(self.cfg.request_timeout);
        let (status, body) = http::get(&self.client, &url, self.credentials(), timeout).await?;
        if status != 200 {
            return match classify_error::<()>(status, &body, None) {
                Outcome::Fail(e) => Err(e),
                _ => Err(ProviderError::Unavailable { detail: format!("Lookup answered HTTP {status}") }),
            };
        }
        Ok(line_type(&body)?
            .filter(|t| self.cfg.lookup_refuse.contains(t))
            .map(|t| format!("it is a {t} number, which cannot receive SMS codes here")))
    }

    async fn status(&self, reference: &str, deadline: Tick) -> Result<DeliveryStatus, ProviderError> {
        // Messages only (SM...): a call's fate is not watched.
        let is_sid = reference.len() == 34 && reference.bytes().all(|b| b.is_ascii_alphanumeric());
        if self.api != Api::Messaging || !reference.starts_with("SM") || !is_sid {
            return Ok(DeliveryStatus::Unknown);
        }
        let url =
            format!("{}/2010-04-01/Accounts/{}/Messages/{reference}.json", self.cfg.api_base, self.cfg.account_sid);
        let timeout = self.clock.tick().until(deadline).min(self.cfg.request_timeout);
        let (status, body) = http::get(&self.client, &url, self.credentials(), timeout).await?;
        if status != 200 {
            return Err(ProviderError::Unavailable { detail: format!("HTTP {status} asking a message's status") });
        }
        interpret_status(&body)
    }

    async fn check(&self, reference: &str, code: &str, deadline: Tick) -> Result<RemoteVerdict, ProviderError> {
        if self.api != Api::Verify {
            return Err(ProviderError::Local { detail: "Programmable Messaging does not check codes".into() });
        }
        let url = format!("{}/v2/Services/{}/VerificationCheck", self.cfg.verify_api_base, self.verify_service());
        let form = [("VerificationSid", reference), ("Code", code)];
        self.post(&url, &form, deadline, interpret_check).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(code: u32, status: u16) -> Vec<u8> {
        format!(r#"{{"code":{code},"message":"The 'To' number +14155550123 is not valid","more_info":"x","status":{status}}}"#).into_bytes()
    }

    #[test]
    fn created_answers() {
        assert_eq!(
            interpret_created(201, br#"{"sid":"SM0123","status":"queued"}"#, None),
            Outcome::Done("SM0123".into())
        );
        assert!(matches!(interpret_created(201, b"<html>", None), Outcome::Fail(ProviderError::Malformed { .. })));
        assert!(matches!(
            interpret_created(201, br#"{"sid":"../x"}"#, None),
            Outcome::Fail(ProviderError::Malformed { .. })
        ));
    }

    #[test]
    fn error_classes() {
        assert_eq!(
            interpret_created(401, &body(20003, 401), None),
            Outcome::Fail(ProviderError::Credentials { status: 401, code: Some(20003) })
        );
        for code in [21211, 21408, 21610, 21614] {
            assert_eq!(
                interpret_created(400, &body(code, 400), None),
                Outcome::Fail(ProviderError::Permanent { status: 400, code: Some(code) }),
                "{code} is permanent"
            );
        }
        assert!(matches!(
            interpret_created(429, &body(20429, 429), Some(Duration::from_secs(1))),
            Outcome::Retry { after: Some(_), .. }
        ));
        assert!(matches!(interpret_created(500, b"", None), Outcome::Retry { .. }));
        assert!(matches!(interpret_created(503, b"oops", None), Outcome::Retry { .. }));
        assert!(matches!(
            interpret_created(400, b"not json", None),
            Outcome::Fail(ProviderError::Permanent { code: None, .. })
        ));
    }

    #[test]
    fn error_texts_never_carry_the_number() {
        let Outcome::Fail(e) = interpret_created(400, &body(21211, 400), None) else { panic!() };
        let text = e.to_string();
        assert!(!text.contains("4155550123"), "{text}");
        assert!(text.contains("21211") && text.contains("invalid 'To'"), "{text}");
    }

    #[test]
    fn verify_check_answers() {
        assert_eq!(interpret_check(200, br#"{"status":"approved"}"#, None), Outcome::Done(RemoteVerdict::Approved));
        assert_eq!(interpret_check(200, br#"{"status":"pending"}"#, None), Outcome::Done(RemoteVerdict::Wrong));
        assert_eq!(interpret_check(404, &body(20404, 404), None), Outcome::Done(RemoteVerdict::Gone));
        assert_eq!(interpret_check(429, &body(60202, 429), None), Outcome::Done(RemoteVerdict::Gone));
        assert!(matches!(interpret_check(429, &body(20429, 429), None), Outcome::Retry { .. }));
        // Verify's per-number limits are not throttling: no retry.
        assert_eq!(
            interpret_created(429, &body(60203, 429), None),
            Outcome::Fail(ProviderError::Limited { status: 429, code: 60203 })
        );
        assert_eq!(
            interpret_check(429, &body(60212, 429), None),
            Outcome::Fail(ProviderError::Limited { status: 429, code: 60212 })
        );
        assert_eq!(
            interpret_created(400, &body(60200, 400), None),
            Outcome::Fail(ProviderError::Permanent { status: 400, code: Some(60200) })
        );
        assert!(matches!(interpret_check(200, br#"{"status":"weird"}"#, None), Outcome::Fail(_)));
    }
}
