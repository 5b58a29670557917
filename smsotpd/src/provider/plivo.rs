//! Plivo's Message API: SMS with our code, `POST /v1/Account/{auth_id}/Message/`
//! (JSON, HTTP Basic auth_id:auth_token), and the message's state for
//! failover. Errors are classified like Twilio's: 401 the credentials, 429
//! and 5xx worth a retry, other 4xx permanent. Calls are not offered: Plivo
//! reads a call's words from an `answer_url` it fetches, which would need a
//! web server of ours reachable from Plivo.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::http::{self, Outcome, error_chain};
use super::{Channel, DeliveryStatus, Outgoing, Provider, ProviderError, RemoteVerdict};
use crate::clock::{Clock, Tick};
use crate::config::raw::RawPlivo;
use crate::config::{CREDENTIAL_PLIVO_AUTH_TOKEN, ExternalCredentials, Secret, range};
use crate::names::PhoneNumber;

/// `[plivo]`, checked.
#[derive(Debug, Clone)]
pub struct PlivoConfig {
    pub auth_id: String,
    pub auth_token: Secret,
    pub sender: PlivoSender,
    pub api_base: String,
    pub request_timeout: Duration,
    pub discard_content: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlivoSender {
    Src(String),
    Powerpack(String),
}

pub(crate) fn validate(p: RawPlivo, creds: &ExternalCredentials) -> Result<PlivoConfig, String> {
    let id_ok = p.auth_id.len() == 20 && p.auth_id.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    if !id_ok {
        return Err(
            "plivo.auth_id must be your Auth ID: 20 capital letters and digits (Plivo console, Overview)".into()
        );
    }
    let token = crate::provider::twilio_config::pick_secret(
        "plivo.auth_token",
        p.auth_token,
        creds.plivo_auth_token.clone(),
        CREDENTIAL_PLIVO_AUTH_TOKEN,
    )?
    .ok_or_else(|| {
        format!("no Plivo credentials: set plivo.auth_token or the {CREDENTIAL_PLIVO_AUTH_TOKEN} credential")
    })?;
    let t = token.expose();
    if !(20..=64).contains(&t.len()) || !t.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err("plivo.auth_token must be the Auth Token from the Plivo console (letters and digits)".into());
    }
    let sender = match (p.src, p.powerpack_uuid) {
        (Some(src), None) => {
            PhoneNumber::parse(&src).map_err(|e| format!("plivo.src: {e}"))?;
            PlivoSender::Src(src)
        }
        (None, Some(uuid)) => {
            let ok = uuid.len() == 36 && uuid.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
            if !ok {
                return Err("plivo.powerpack_uuid must be a Powerpack's UUID".into());
            }
            PlivoSender::Powerpack(uuid)
        }
        (Some(_), Some(_)) => return Err("set either plivo.src or plivo.powerpack_uuid, not both".into()),
        (None, None) => {
            return Err("provider = \"plivo\" needs plivo.src (a Plivo number) or plivo.powerpack_uuid".into());
        }
    };
    let api_base = crate::provider::twilio_config::validate_base("plivo.api_base", &p.api_base)?;
    let request_timeout = range("plivo.request_timeout_seconds", p.request_timeout_seconds, 1, 20, "")?;
    Ok(PlivoConfig {
        auth_id: p.auth_id,
        auth_token: token,
        sender,
        api_base,
        request_timeout: Duration::from_secs(request_timeout),
        discard_content: p.discard_content,
    })
}

pub struct Plivo {
    cfg: PlivoConfig,
    client: reqwest::Client,
    clock: Arc<dyn Clock>,
}

impl Plivo {
    pub fn new(cfg: PlivoConfig, clock: Arc<dyn Clock>) -> Result<Self, ProviderError> {
        let client = reqwest::Client::builder()
            .connect_timeout(cfg.request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent(concat!("smsotpd/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ProviderError::Local {
                detail: format!("cannot build the HTTP client: {}", error_chain(&e)),
            })?;
        Ok(Plivo { cfg, client, clock })
    }

    fn messages_url(&self) -> String {
        format!("{}/v1/Account/{}/Message/", self.cfg.api_base, self.cfg.auth_id)
    }

    /// Checks the credentials without sending anything (doctor).
    pub async fn check_credentials(&self) -> Result<String, ProviderError> {
        let url = format!("{}/v1/Account/{}/", self.cfg.api_base, self.cfg.auth_id);
        let credentials = (self.cfg.auth_id.as_str(), self.cfg.auth_token.expose());
        let (status, _) = http::get(&self.client, &url, credentials, self.cfg.request_timeout).await?;
        match status {
            200 => Ok(format!("Plivo account {} accepts our credentials", self.cfg.auth_id)),
            401 => Err(ProviderError::Credentials { status: 401, code: None }),
            s => Err(ProviderError::Unavailable { detail: format!("HTTP {s}") }),
        }
    }
}

#[derive(Deserialize)]
struct Queued {
    message_uuid: Vec<String>,
}

#[derive(Deserialize)]
struct MessageState {
    message_state: String,
}

/// Plivo's answer to a Message request. Its error texts are dropped: they
/// can echo the number.
pub fn interpret_queued(status: u16, body: &[u8], retry_after: Option<Duration>) -> Outcome<String> {
    match status {
        200..=299 => match serde_json::from_slice::<Queued>(body) {
            Ok(q) => match q.message_uuid.first() {
                Some(u) if !u.is_empty() && u.len() <= 64 && u.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') => {
                    Outcome::Done(u.clone())
                }
                _ => Outcome::Fail(ProviderError::Malformed { detail: "no message_uuid in Plivo's answer".into() }),
            },
            Err(e) => Outcome::Fail(ProviderError::Malformed { detail: format!("HTTP {status}, not Plivo JSON: {e}") }),
        },
        401 => Outcome::Fail(ProviderError::Credentials { status, code: None }),
        429 => Outcome::Retry { reason: "throttled (HTTP 429)".into(), after: retry_after },
        500..=599 => Outcome::Retry { reason: format!("HTTP {status}"), after: retry_after },
        _ => Outcome::Fail(ProviderError::Permanent { status, code: None }),
    }
}

/// A message's `message_state`.
pub fn interpret_state(body: &[u8]) -> Result<DeliveryStatus, ProviderError> {
    let m = serde_json::from_slice::<MessageState>(body)
        .map_err(|e| ProviderError::Malformed { detail: format!("a message's state: {e}") })?;
    Ok(match m.message_state.as_str() {
        "delivered" => DeliveryStatus::Delivered,
        "undelivered" | "failed" | "rejected" => DeliveryStatus::Undelivered,
        _ => DeliveryStatus::Pending,
    })
}

impl Provider for Plivo {
    fn name(&self) -> &'static str {
        "plivo"
    }

    fn makes_codes(&self) -> bool {
        false
    }

    async fn send(&self, msg: &Outgoing<'_>, deadline: Tick) -> Result<String, ProviderError> {
        if msg.channel == Channel::Voice {
            return Err(ProviderError::Local { detail: "calls through Plivo are not offered (answer_url)".into() });
        }
        let mut doc = serde_json::json!({ "dst": msg.to.e164(), "text": msg.body, "type": "sms" });
        match &self.cfg.sender {
            PlivoSender::Src(src) => doc["src"] = serde_json::json!(src),
            PlivoSender::Powerpack(uuid) => doc["powerpack_uuid"] = serde_json::json!(uuid),
        }
        if self.cfg.discard_content {
            doc["log"] = serde_json::json!(false);
        }
        let body = zeroize::Zeroizing::new(doc.to_string());
        let url = self.messages_url();
        let send = |timeout: Duration| {
            self.client
                .post(&url)
                .basic_auth(&self.cfg.auth_id, Some(self.cfg.auth_token.expose()))
                .header("content-type", "application/json")
                .body(body.as_bytes().to_vec())
                .timeout(timeout)
                .send()
        };
        http::with_retries("plivo", &*self.clock, deadline, self.cfg.request_timeout, send, interpret_queued).await
    }

    async fn check(&self, _reference: &str, _code: &str, _deadline: Tick) -> Result<RemoteVerdict, ProviderError> {
        Err(ProviderError::Local { detail: "Plivo does not check codes".into() })
    }

    async fn status(&self, reference: &str, deadline: Tick) -> Result<DeliveryStatus, ProviderError> {
        if !reference.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
            return Ok(DeliveryStatus::Unknown);
        }
        let url = format!("{}{reference}/", self.messages_url());
        let timeout = self.clock.tick().until(deadline).min(self.cfg.request_timeout);
        let credentials = (self.cfg.auth_id.as_str(), self.cfg.auth_token.expose());
        let (status, body) = http::get(&self.client, &url, credentials, timeout).await?;
        if status != 200 {
            return Err(ProviderError::Unavailable { detail: format!("HTTP {status} asking a message's state") });
        }
        interpret_state(&body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_classified_like_twilios() {
        let queued =
            br#"{"api_id":"x","message":"message(s) queued","message_uuid":["db3ce55a-7f1d-11e1-8ea7-1231380bc196"]}"#;
        assert_eq!(interpret_queued(202, queued, None), Outcome::Done("db3ce55a-7f1d-11e1-8ea7-1231380bc196".into()));
        let error = br#"{"api_id":"x","error":"invalid dst +14155550123"}"#;
        assert_eq!(
            interpret_queued(400, error, None),
            Outcome::Fail(ProviderError::Permanent { status: 400, code: None })
        );
        assert_eq!(
            interpret_queued(401, error, None),
            Outcome::Fail(ProviderError::Credentials { status: 401, code: None })
        );
        assert!(matches!(interpret_queued(429, error, None), Outcome::Retry { .. }));
        assert!(matches!(interpret_queued(503, b"", None), Outcome::Retry { .. }));
        assert!(matches!(interpret_queued(202, b"{}", None), Outcome::Fail(ProviderError::Malformed { .. })));
        let Outcome::Fail(e) = interpret_queued(400, error, None) else { panic!() };
        assert!(!e.to_string().contains("4155550123"), "Plivo's text is dropped: {e}");
        assert_eq!(interpret_state(br#"{"message_state":"undelivered"}"#).unwrap(), DeliveryStatus::Undelivered);
        assert_eq!(interpret_state(br#"{"message_state":"queued"}"#).unwrap(), DeliveryStatus::Pending);
        assert_eq!(interpret_state(br#"{"message_state":"delivered"}"#).unwrap(), DeliveryStatus::Delivered);
    }
}
