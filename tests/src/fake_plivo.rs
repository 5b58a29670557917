//! The fake Plivo (served by the fake Twilio's server under /v1/Account/):
//! Message and Call requests checked against Plivo's API reference, and
//! the answers Plivo would give.

use crate::fake_twilio::{PLIVO_AUTH_ID, PLIVO_AUTH_TOKEN, Request, Sms, State, base64};

/// What Plivo would answer (plivo.com/docs/sms/api/message/send-a-message):
/// Calls go to [`call`].
/// POST .../Message/ with a JSON body of `dst`, `text` and exactly one of
/// `src` / `powerpack_uuid` (optional `type`, `url`, `method`, `log`,
/// `trackable`), Basic auth; 202 with `message_uuid`. GET .../Message/{uuid}/
/// gives `message_state`.
pub(crate) fn answer(req: &Request, auth: &str, st: &mut State) -> (u16, String, Vec<(String, String)>) {
    if auth != format!("Basic {}", base64(format!("{PLIVO_AUTH_ID}:{PLIVO_AUTH_TOKEN}").as_bytes())) {
        st.violations.push(format!("Plivo: bad or missing Basic auth on {}", req.path));
        return (401, r#"{"api_id":"x","error":"authentication failed"}"#.into(), vec![]);
    }
    let messages = format!("/v1/Account/{PLIVO_AUTH_ID}/Message/");
    if let Some((_, status)) = st.failing.iter().find(|(p, _)| req.path.ends_with(p.as_str())) {
        return (*status, r#"{"api_id":"x","error":"server error"}"#.into(), vec![]);
    }
    if req.method == "GET" && req.path == format!("/v1/Account/{PLIVO_AUTH_ID}/") {
        return (200, format!(r#"{{"auth_id":"{PLIVO_AUTH_ID}","account_type":"standard"}}"#), vec![]);
    }
    if req.method == "GET"
        && let Some(uuid) = req.path.strip_prefix(&messages).and_then(|p| p.strip_suffix('/'))
    {
        let Some(to) = st.sids.get(uuid).cloned() else {
            return (404, r#"{"api_id":"x","error":"not found"}"#.into(), vec![]);
        };
        let state = if st.undeliverable.contains(&to) { "undelivered" } else { "delivered" };
        return (200, format!(r#"{{"message_uuid":"{uuid}","message_state":"{state}"}}"#), vec![]);
    }
    let calls = format!("/v1/Account/{PLIVO_AUTH_ID}/Call/");
    if let Some(rest) = req.path.strip_prefix(&calls) {
        return call(req, rest, st);
    }
    if req.method != "POST" || req.path != messages {
        st.violations.push(format!("Plivo: {} {}", req.method, req.path));
        return (404, r#"{"api_id":"x","error":"not found"}"#.into(), vec![]);
    }
    let ct = req.headers.iter().find(|(k, _)| k == "content-type").map(|(_, v)| v.as_str()).unwrap_or("");
    if !ct.starts_with("application/json") {
        st.violations.push(format!("Plivo: Content-Type {ct:?}, not JSON"));
    }
    let doc: serde_json::Value = match serde_json::from_str(&req.body) {
        Ok(v) => v,
        Err(e) => {
            st.violations.push(format!("Plivo: body is not JSON: {e}"));
            return (400, r#"{"api_id":"x","error":"invalid json"}"#.into(), vec![]);
        }
    };
    let known = ["src", "dst", "text", "type", "url", "method", "log", "trackable", "powerpack_uuid"];
    for key in doc.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()).unwrap_or_default() {
        if !known.contains(&key.as_str()) {
            st.violations.push(format!("Plivo: unknown parameter {key}"));
        }
    }
    if doc.get("src").is_some() == doc.get("powerpack_uuid").is_some() {
        st.violations.push("Plivo: exactly one of src / powerpack_uuid".into());
    }
    let (Some(dst), Some(text)) = (doc["dst"].as_str(), doc["text"].as_str()) else {
        st.violations.push("Plivo: dst and text are required".into());
        return (400, r#"{"api_id":"x","error":"missing dst or text"}"#.into(), vec![]);
    };
    if doc.get("type").is_some_and(|t| t != "sms" && t != "mms") {
        st.violations.push(format!("Plivo: type {}", doc["type"]));
    }
    st.next_sid += 1;
    let uuid = format!("{:08x}-0000-4000-8000-{:012x}", st.next_sid, st.next_sid);
    st.sids.insert(uuid.clone(), dst.to_owned());
    st.messages.push(Sms { to: dst.to_owned(), body: text.to_owned(), channel: "sms" });
    (202, format!(r#"{{"api_id":"x","message":"message(s) queued","message_uuid":["{uuid}"]}}"#), vec![])
}

fn json_body(req: &Request, st: &mut State, what: &str) -> Option<serde_json::Value> {
    let ct = req.headers.iter().find(|(k, _)| k == "content-type").map(|(_, v)| v.as_str()).unwrap_or("");
    if !ct.starts_with("application/json") {
        st.violations.push(format!("Plivo {what}: Content-Type {ct:?}, not JSON"));
    }
    match serde_json::from_str::<serde_json::Value>(&req.body) {
        Ok(v) if v.is_object() => Some(v),
        _ => {
            st.violations.push(format!("Plivo {what}: body is not a JSON object"));
            None
        }
    }
}

fn only_known(doc: &serde_json::Value, known: &[&str], st: &mut State, what: &str) {
    for key in doc.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()).unwrap_or_default() {
        if !known.contains(&key.as_str()) {
            st.violations.push(format!("Plivo {what}: unknown parameter {key}"));
        }
    }
}

/// Plivo's Call API (plivo.com/docs/voice/api/call): `POST .../Call/` makes
/// a call (JSON: from, to, answer_url required; answer_method, ring_timeout,
/// time_limit and others optional), 201 "call fired" with a request_uuid;
/// `GET .../Call/?status=live` lists live calls' uuids; `GET
/// .../Call/{uuid}/?status=live` one live call, with its request_uuid;
/// `POST .../Call/{uuid}/Speak/` (text required; voice, language, legs,
/// loop, mix) speaks into it, 202. Here every placed call is answered at
/// once, and the words spoken are what the fake "delivered".
fn call(req: &Request, rest: &str, st: &mut State) -> (u16, String, Vec<(String, String)>) {
    let not_found = (404, r#"{"api_id":"x","error":"not found"}"#.to_owned(), vec![]);
    match (req.method.as_str(), rest) {
        ("POST", "") => {
            let Some(doc) = json_body(req, st, "Call") else {
                return (400, r#"{"api_id":"x","error":"invalid json"}"#.into(), vec![]);
            };
            let known = [
                "from",
                "to",
                "answer_url",
                "answer_method",
                "ring_url",
                "ring_method",
                "hangup_url",
                "hangup_method",
                "fallback_url",
                "fallback_method",
                "caller_name",
                "send_digits",
                "send_on_preanswer",
                "time_limit",
                "hangup_on_ring",
                "machine_detection",
                "machine_detection_time",
                "sip_headers",
                "ring_timeout",
                "parent_call_uuid",
                "error_if_parent_not_found",
            ];
            only_known(&doc, &known, st, "Call");
            let (Some(from), Some(to), Some(answer_url)) =
                (doc["from"].as_str(), doc["to"].as_str(), doc["answer_url"].as_str())
            else {
                st.violations.push("Plivo Call: from, to and answer_url are required".into());
                return (400, r#"{"api_id":"x","error":"missing from, to or answer_url"}"#.into(), vec![]);
            };
            if !answer_url.starts_with("http") || answer_url.contains(char::is_whitespace) {
                st.violations.push(format!("Plivo Call: answer_url {answer_url:?}"));
            }
            if doc.get("answer_method").is_some_and(|m| m != "GET" && m != "POST") {
                st.violations.push(format!("Plivo Call: answer_method {}", doc["answer_method"]));
            }
            let _ = from;
            st.next_sid += 1;
            let request_uuid = format!("{:08x}-1111-4000-8000-{:012x}", st.next_sid, st.next_sid);
            let call_uuid = format!("{:08x}-2222-4000-8000-{:012x}", st.next_sid, st.next_sid);
            st.calls.push((request_uuid.clone(), call_uuid, to.to_owned()));
            (201, format!(r#"{{"api_id":"x","message":"call fired","request_uuid":"{request_uuid}"}}"#), vec![])
        }
        ("GET", "?status=live") => {
            let live: Vec<String> = st.calls.iter().map(|(_, c, _)| format!("\"{c}\"")).collect();
            (200, format!(r#"{{"api_id":"x","calls":[{}]}}"#, live.join(",")), vec![])
        }
        ("GET", r) => {
            let Some(uuid) = r.strip_suffix("/?status=live") else {
                st.violations.push(format!("Plivo: GET .../Call/{r}"));
                return not_found;
            };
            match st.calls.iter().find(|(_, c, _)| c == uuid) {
                Some((request_uuid, call_uuid, to)) => (
                    200,
                    format!(
                        r#"{{"api_id":"x","call_status":"in-progress","call_uuid":"{call_uuid}","request_uuid":"{request_uuid}","to":"{}","direction":"outbound"}}"#,
                        &to[1..]
                    ),
                    vec![],
                ),
                None => not_found,
            }
        }
        ("POST", r) => {
            let Some(uuid) = r.strip_suffix("/Speak/") else {
                st.violations.push(format!("Plivo: POST .../Call/{r}"));
                return not_found;
            };
            let Some(i) = st.calls.iter().position(|(_, c, _)| c == uuid) else { return not_found };
            let Some(doc) = json_body(req, st, "Speak") else {
                return (400, r#"{"api_id":"x","error":"invalid json"}"#.into(), vec![]);
            };
            only_known(
                &doc,
                &["text", "voice", "language", "legs", "loop", "mix", "type", "callback_url", "callback_method"],
                st,
                "Speak",
            );
            let Some(text) = doc["text"].as_str() else {
                st.violations.push("Plivo Speak: text is required".into());
                return (400, r#"{"api_id":"x","error":"text is required"}"#.into(), vec![]);
            };
            if doc.get("voice").is_some_and(|v| v != "WOMAN" && v != "MAN") {
                st.violations.push(format!("Plivo Speak: voice {}", doc["voice"]));
            }
            let (_, _, to) = st.calls.remove(i);
            st.messages.push(Sms { to, body: text.to_owned(), channel: "voice" });
            (202, r#"{"api_id":"x","message":"speak started"}"#.into(), vec![])
        }
        _ => {
            st.violations.push(format!("Plivo: {} .../Call/{rest}", req.method));
            not_found
        }
    }
}
