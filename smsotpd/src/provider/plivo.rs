//! Plivo's Message API: SMS with our code, `POST /v1/Account/{auth_id}/Message/`
//! (JSON, HTTP Basic auth_id:auth_token), and the message's state for
//! failover. Errors are classified like Twilio's: 401 the credentials, 429
//! and 5xx worth a retry, other 4xx permanent.
//!
//! Calls (`[voice]`): Plivo reads a call's words from an `answer_url` it
//! fetches, and smsotpd serves no web page. So the call is placed with the
//! administrator's `plivo.answer_url`, a static page that only waits
//! (`<Response><Wait length="60"/></Response>`), and once the call is live
//! the code is spoken into it with the Speak API
//! (`POST .../Call/{call_uuid}/Speak/`): the code never appears in a URL or
//! on anybody's web server.

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
    pub answer_url: Option<String>,
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
    let answer_url = match p.answer_url {
        Some(u) => Some(crate::provider::twilio_config::validate_base("plivo.answer_url", &u)?),
        None => None,
    };
    Ok(PlivoConfig {
        auth_id: p.auth_id,
        auth_token: token,
        sender,
        api_base,
        request_timeout: Duration::from_secs(request_timeout),
        discard_content: p.discard_content,
        answer_url,
    })
}

pub struct Plivo {
    cfg: PlivoConfig,
    voice: Option<crate::config::Voice>,
    client: reqwest::Client,
    clock: Arc<dyn Clock>,
}

/// How long a placed call may take to be answered before its words are
/// given up (Plivo's ring_timeout is shorter).
const ANSWER_WAIT: Duration = Duration::from_secs(60);
/// How often a placed call is looked for among the live ones.
const LIVE_POLL: Duration = Duration::from_secs(1);

impl Plivo {
    pub fn new(
        cfg: PlivoConfig,
        voice: Option<crate::config::Voice>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ProviderError> {
        let client = reqwest::Client::builder()
            .connect_timeout(cfg.request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent(concat!("smsotpd/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ProviderError::Local {
                detail: format!("cannot build the HTTP client: {}", error_chain(&e)),
            })?;
        Ok(Plivo { cfg, voice, client, clock })
    }

    fn messages_url(&self) -> String {
        format!("{}/v1/Account/{}/Message/", self.cfg.api_base, self.cfg.auth_id)
    }

    fn calls_url(&self) -> String {
        format!("{}/v1/Account/{}/Call/", self.cfg.api_base, self.cfg.auth_id)
    }

    /// Places a call that waits on the administrator's answer_url, and
    /// speaks `msg.body` into it once it is answered (in the background;
    /// the login goes on). The reference is the call's request_uuid.
    async fn call(&self, msg: &Outgoing<'_>, deadline: Tick) -> Result<String, ProviderError> {
        let (Some(voice), Some(answer_url)) = (&self.voice, &self.cfg.answer_url) else {
            return Err(ProviderError::Local {
                detail: "calls through Plivo need [voice] and plivo.answer_url".into(),
            });
        };
        let from = match (&voice.from, &self.cfg.sender) {
            (Some(f), _) | (None, PlivoSender::Src(f)) => f.clone(),
            (None, PlivoSender::Powerpack(_)) => {
                return Err(ProviderError::Local { detail: "calls need voice.from or plivo.src".into() });
            }
        };
        let doc = serde_json::json!({
            "from": from,
            "to": msg.to.e164(),
            "answer_url": answer_url,
            "answer_method": "GET",
            "ring_timeout": 45,
            "time_limit": 120,
        });
        let body = doc.to_string();
        let url = self.calls_url();
        let credentials = (self.cfg.auth_id.as_str(), self.cfg.auth_token.expose());
        let send = |timeout: Duration| json_post(&self.client, &url, credentials, body.as_bytes(), timeout).send();
        let request_uuid =
            http::with_retries("plivo", &*self.clock, deadline, self.cfg.request_timeout, send, interpret_fired)
                .await?;
        let speaker = Speaker {
            calls: url,
            client: self.client.clone(),
            credentials: (self.cfg.auth_id.clone(), self.cfg.auth_token.clone()),
            timeout: self.cfg.request_timeout,
            clock: self.clock.clone(),
            text: zeroize::Zeroizing::new(msg.body.to_owned()),
            language: voice.language.clone(),
        };
        // "call:": a call, in the log and for status(), which asks only
        // messages' uuids.
        let reference = format!("call:{request_uuid}");
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move { speaker.speak_when_answered(&request_uuid).await });
            }
            Err(_) => return Err(ProviderError::Local { detail: "no event loop to speak into the call".into() }),
        }
        Ok(reference)
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

/// A POST of a JSON body with Plivo's Basic auth.
fn json_post(
    client: &reqwest::Client,
    url: &str,
    (id, token): (&str, &str),
    body: &[u8],
    timeout: Duration,
) -> reqwest::RequestBuilder {
    client
        .post(url)
        .basic_auth(id, Some(token))
        .header("content-type", "application/json")
        .body(body.to_vec())
        .timeout(timeout)
}

/// What speaks the code into a placed call once it is answered.
struct Speaker {
    calls: String,
    client: reqwest::Client,
    credentials: (String, Secret),
    timeout: Duration,
    clock: Arc<dyn Clock>,
    text: zeroize::Zeroizing<String>,
    language: String,
}

#[derive(Deserialize)]
struct LiveCalls {
    #[serde(default)]
    calls: Vec<String>,
}

#[derive(Deserialize)]
struct LiveCall {
    #[serde(default)]
    request_uuid: String,
}

fn is_uuid(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

impl Speaker {
    async fn get(&self, url: &str) -> Result<(u16, Vec<u8>), ProviderError> {
        let credentials = (self.credentials.0.as_str(), self.credentials.1.expose());
        http::get(&self.client, url, credentials, self.timeout).await
    }

    /// The live call that `request_uuid` placed, if it is answered yet.
    async fn find_live(&self, request_uuid: &str, seen: &mut Vec<String>) -> Result<Option<String>, ProviderError> {
        let (status, body) = self.get(&format!("{}?status=live", self.calls)).await?;
        if status != 200 {
            return Err(ProviderError::Unavailable { detail: format!("HTTP {status} listing live calls") });
        }
        let live = serde_json::from_slice::<LiveCalls>(&body)
            .map_err(|e| ProviderError::Malformed { detail: format!("live calls: {e}") })?;
        for uuid in live.calls.into_iter().filter(|u| is_uuid(u)) {
            if seen.contains(&uuid) {
                continue;
            }
            let (status, body) = self.get(&format!("{}{uuid}/?status=live", self.calls)).await?;
            if status != 200 {
                continue;
            }
            let call = serde_json::from_slice::<LiveCall>(&body)
                .map_err(|e| ProviderError::Malformed { detail: format!("a live call: {e}") })?;
            if call.request_uuid == request_uuid {
                return Ok(Some(uuid));
            }
            seen.push(uuid);
        }
        Ok(None)
    }

    async fn speak(&self, call_uuid: &str) -> Result<(), ProviderError> {
        let doc = serde_json::json!({
            "text": self.text.as_str(),
            "voice": "WOMAN",
            "language": self.language,
            "loop": 2,
        });
        let body = zeroize::Zeroizing::new(doc.to_string());
        let url = format!("{}{call_uuid}/Speak/", self.calls);
        let credentials = (self.credentials.0.as_str(), self.credentials.1.expose());
        let answer = json_post(&self.client, &url, credentials, body.as_bytes(), self.timeout)
            .send()
            .await
            .map_err(|e| ProviderError::Unavailable { detail: error_chain(&e) })?;
        match answer.status().as_u16() {
            200..=299 => Ok(()),
            401 => Err(ProviderError::Credentials { status: 401, code: None }),
            s => Err(ProviderError::Permanent { status: s, code: None }),
        }
    }

    /// Polls for the answered call and speaks into it; gives up after
    /// [`ANSWER_WAIT`]. Logged either way (never the code or the number).
    async fn speak_when_answered(self, request_uuid: &str) {
        let until = self.clock.tick().saturating_add(ANSWER_WAIT);
        let mut seen = Vec::new();
        while self.clock.tick() < until {
            match self.find_live(request_uuid, &mut seen).await {
                Ok(Some(call_uuid)) => {
                    match self.speak(&call_uuid).await {
                        Ok(()) => tracing::info!("plivo: the code is spoken into call {call_uuid}"),
                        Err(e) => tracing::warn!("plivo: cannot speak into call {call_uuid}: {e}"),
                    }
                    return;
                }
                Ok(None) => {}
                Err(e) => tracing::warn!("plivo: looking for the call {request_uuid}: {e}"),
            }
            self.clock.sleep(LIVE_POLL).await;
        }
        tracing::warn!("plivo: the call {request_uuid} was not answered within {} s", ANSWER_WAIT.as_secs());
    }
}

#[derive(Deserialize)]
struct Fired {
    request_uuid: String,
}

/// Plivo's answer to a Call request: 201 "call fired" with request_uuid.
pub fn interpret_fired(status: u16, body: &[u8], retry_after: Option<Duration>) -> Outcome<String> {
    match status {
        200..=299 => match serde_json::from_slice::<Fired>(body) {
            Ok(f) if is_uuid(&f.request_uuid) => Outcome::Done(f.request_uuid),
            Ok(_) => Outcome::Fail(ProviderError::Malformed { detail: "no request_uuid in Plivo's answer".into() }),
            Err(e) => Outcome::Fail(ProviderError::Malformed { detail: format!("HTTP {status}, not Plivo JSON: {e}") }),
        },
        _ => interpret_queued(status, body, retry_after),
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
            return self.call(msg, deadline).await;
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
        let credentials = (self.cfg.auth_id.as_str(), self.cfg.auth_token.expose());
        let send = |timeout: Duration| json_post(&self.client, &url, credentials, body.as_bytes(), timeout).send();
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
