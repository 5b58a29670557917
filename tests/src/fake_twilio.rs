//! A fake Twilio: Messages.json, Verifications and VerificationCheck on
//! 127.0.0.1, with HTTP Basic auth and form checks, a record of every
//! request and message, and scripted failures. Also the two GETs
//! `smsotpctl doctor` makes (the account and the Verify service), which
//! send nothing.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

pub const ACCOUNT_SID: &str = "AC0123456789abcdef0123456789abcdef";
pub const AUTH_TOKEN: &str = "f00dfeedf00dfeedf00dfeedf00dfeed";
pub const FROM: &str = "+15005550006";
pub const VERIFY_SID: &str = "VA0123456789abcdef0123456789abcdef";
/// The same server is a fake Plivo under /v1/Account/.
pub const PLIVO_AUTH_ID: &str = "MAFAKEPLIVO000000001";
pub const PLIVO_AUTH_TOKEN: &str = "fakeplivotoken0123456789abcdef0123456789";

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub form: HashMap<String, String>,
}

/// An SMS the fake "delivered", or a call it "placed" (`body` is then
/// what the call says).
#[derive(Debug, Clone)]
pub struct Sms {
    pub to: String,
    pub body: String,
    /// "sms" or "voice".
    pub channel: &'static str,
}

impl Sms {
    /// The code: an SMS's first run of digits; the digits a call reads out
    /// one by one after its last ": " ("... is: 1, 2, 3, 4, 5, 6.").
    pub fn code(&self) -> String {
        if self.channel == "voice" {
            let said = self.body.rsplit(": ").next().unwrap_or_default();
            return said.chars().filter(char::is_ascii_digit).collect();
        }
        let start = self.body.find(|c: char| c.is_ascii_digit()).expect("a code in the SMS");
        self.body[start..].chars().take_while(char::is_ascii_digit).collect()
    }
}

/// The text of the first `<Say>` of a TwiML document, unescaped; None
/// unless it is `<Response>` with the text said twice.
pub fn twiml_say(twiml: &str) -> Option<String> {
    let inner = twiml.strip_prefix("<Response>")?.strip_suffix("</Response>")?;
    let says: Vec<&str> = inner.split("</Say>").filter(|p| p.contains("<Say")).collect();
    let text = |p: &str| p.rsplit_once('>').map(|(_, t)| t.to_owned());
    let first = text(says.first()?)?;
    if says.len() != 2 || text(says[1])? != first {
        return None;
    }
    Some(first.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&amp;", "&"))
}

/// A canned answer, used before the normal behaviour.
#[derive(Debug, Clone)]
pub struct Canned {
    pub status: u16,
    pub body: String,
    pub headers: Vec<(String, String)>,
    /// Wait this long before answering (a slow Twilio)...
    pub delay: Duration,
    /// ...plus a random share of this, different for every request.
    pub jitter: Duration,
    /// Answer every request this way, forever.
    pub forever: bool,
}

impl Canned {
    pub fn error(status: u16, code: u32) -> Canned {
        Canned {
            status,
            body: format!(
                r#"{{"code":{code},"message":"The 'To' number +14155550123 is not valid.","more_info":"https://www.twilio.com/docs/errors/{code}","status":{status}}}"#
            ),
            headers: Vec::new(),
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            forever: false,
        }
    }
    pub fn forever(mut self) -> Canned {
        self.forever = true;
        self
    }
    pub fn slow(delay: Duration) -> Canned {
        Canned { status: 0, body: String::new(), headers: Vec::new(), delay, jitter: Duration::ZERO, forever: false }
    }

    /// A normal answer after `delay` plus up to `jitter` more.
    pub fn jittered(delay: Duration, jitter: Duration) -> Canned {
        Canned { jitter, ..Canned::slow(delay) }
    }
}

pub(crate) struct Verification {
    to: String,
    code: String,
    open: bool,
}

#[derive(Default)]
pub(crate) struct State {
    pub(crate) requests: Vec<Request>,
    pub(crate) messages: Vec<Sms>,
    pub(crate) violations: Vec<String>,
    pub(crate) canned: VecDeque<Canned>,
    pub(crate) verifications: HashMap<String, Verification>,
    pub(crate) next_sid: u32,
    pub(crate) connections: usize,
    /// Requests whose answer has been written (and recorded).
    pub(crate) answered: usize,
    /// Paths (by their end) that always fail with this HTTP status.
    pub(crate) failing: Vec<(String, u16)>,
    /// Numbers whose SMS the Message resource reports "undelivered".
    pub(crate) undeliverable: Vec<String>,
    /// The number of each message SID, for its status.
    pub(crate) sids: HashMap<String, String>,
    /// Lookup v2 line types by number (others are "mobile").
    pub(crate) line_types: HashMap<String, String>,
    /// Plivo calls placed: (request_uuid, call_uuid, to); a call is live
    /// until its words are spoken (fake_plivo.rs).
    pub(crate) calls: Vec<(String, String, String)>,
}

pub struct FakeTwilio {
    port: u16,
    state: Arc<(Mutex<State>, Condvar)>,
}

/// A scripted failure that was never used means the scenario did not run
/// the way its test says (kanidm's test handlers check the same on drop).
impl Drop for FakeTwilio {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let unused: Vec<String> = match self.state.0.lock() {
            Ok(st) => st.canned.iter().filter(|c| !c.forever).map(|c| format!("{c:?}")).collect(),
            Err(_) => return,
        };
        assert!(unused.is_empty(), "the fake Twilio still had scripted answers nobody asked for: {unused:?}");
    }
}

impl FakeTwilio {
    pub fn start() -> FakeTwilio {
        FakeTwilio::start_on("127.0.0.1:0")
    }

    /// Listens on `addr` (the container's fake uses a fixed port).
    pub fn start_on(addr: &str) -> FakeTwilio {
        let listener = TcpListener::bind(addr).unwrap_or_else(|e| panic!("fake Twilio cannot listen on {addr}: {e}"));
        let port = listener.local_addr().unwrap().port();
        let state: Arc<(Mutex<State>, Condvar)> = Arc::default();
        let s = state.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let s = s.clone();
                s.0.lock().unwrap().connections += 1;
                std::thread::spawn(move || serve(conn, &s));
            }
        });
        FakeTwilio { port, state }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn push(&self, c: Canned) {
        self.state.0.lock().unwrap().canned.push_back(c);
    }

    /// Every request to a path ending in `suffix` fails with `status`
    /// (Twilio's error body with code 20500).
    pub fn fail_path(&self, suffix: &str, status: u16) {
        self.state.0.lock().unwrap().failing.push((suffix.to_owned(), status));
    }

    /// Lookup v2 says `number` is of `line_type` ("landline", "nonFixedVoip", ...).
    pub fn line_type(&self, number: &str, line_type: &str) {
        self.state.0.lock().unwrap().line_types.insert(number.to_owned(), line_type.to_owned());
    }

    /// SMS to `number` are accepted, and their Message resource says
    /// "undelivered" when asked.
    pub fn undeliverable(&self, number: &str) {
        self.state.0.lock().unwrap().undeliverable.push(number.to_owned());
    }

    pub fn requests(&self) -> Vec<Request> {
        self.state.0.lock().unwrap().requests.clone()
    }

    pub fn messages(&self) -> Vec<Sms> {
        self.state.0.lock().unwrap().messages.clone()
    }

    /// The SMS from the n-th on (0-based), without copying the earlier ones.
    pub fn messages_from(&self, n: usize) -> Vec<Sms> {
        let st = self.state.0.lock().unwrap();
        st.messages.get(n..).map(<[Sms]>::to_vec).unwrap_or_default()
    }

    /// Requests answered so far.
    pub fn answered(&self) -> usize {
        self.state.0.lock().unwrap().answered
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.state.0.lock().unwrap().connections
    }

    pub fn violations(&self) -> Vec<String> {
        self.state.0.lock().unwrap().violations.clone()
    }

    /// Waits up to `limit` until `n` requests have been answered; what they
    /// did is then in `messages()` and `violations()`.
    pub fn wait_requests(&self, n: usize, limit: Duration) -> bool {
        let (lock, cv) = &*self.state;
        let st = lock.lock().unwrap();
        let (st, _) = cv.wait_timeout_while(st, limit, |st| st.answered < n).unwrap();
        st.answered >= n
    }

    /// Waits until `n` SMS have been "delivered" and returns the n-th.
    pub fn wait_message(&self, n: usize) -> Sms {
        let (lock, cv) = &*self.state;
        let mut st = lock.lock().unwrap();
        let deadline = Duration::from_secs(20);
        loop {
            if st.messages.len() >= n {
                return st.messages[n - 1].clone();
            }
            let (g, timeout) = cv.wait_timeout(st, deadline).unwrap();
            st = g;
            if timeout.timed_out() && st.messages.len() < n {
                panic!("no SMS number {n} arrived within {deadline:?}; got {}", st.messages.len());
            }
        }
    }

    /// Forgets every scripted answer (a `forever` one included).
    pub fn clear_canned(&self) {
        self.state.0.lock().unwrap().canned.clear();
    }

    /// Expires every open verification (what Twilio does after 10 minutes).
    pub fn expire_verifications(&self) {
        for v in self.state.0.lock().unwrap().verifications.values_mut() {
            v.open = false;
        }
    }
}

fn read_request(r: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
    let len: usize = headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).ok()?;
    let body = String::from_utf8(body).ok()?;
    let form = parse_form(&body);
    Some(Request { method, path, headers, body, form })
}

fn parse_form(body: &str) -> HashMap<String, String> {
    body.split('&')
        .filter(|kv| !kv.is_empty())
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (percent_decode(k), percent_decode(v)))
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("00");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(crate) fn base64(input: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(T[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[allow(clippy::disallowed_methods)] // a slow Twilio is slow in real time
fn serve(conn: TcpStream, state: &Arc<(Mutex<State>, Condvar)>) {
    // Twilio answers at once; without this, Nagle and the client's delayed
    // ACK add 40 ms to every answer written in more than one piece.
    let _ = conn.set_nodelay(true);
    let mut writer = conn.try_clone().unwrap();
    let mut reader = BufReader::new(conn);
    while let Some(req) = read_request(&mut reader) {
        let canned = {
            let mut st = state.0.lock().unwrap();
            st.requests.push(req.clone());
            match st.canned.front().cloned() {
                Some(c) if c.forever => Some(c),
                Some(_) => st.canned.pop_front(),
                None => None,
            }
        };
        let (status, body, headers) = match canned {
            Some(c) => {
                let share = std::hash::BuildHasher::hash_one(&std::collections::hash_map::RandomState::new(), 0u8);
                std::thread::sleep(c.delay + c.jitter.mul_f64((share % 10_000) as f64 / 10_000.0));
                if c.status == 0 {
                    // A slow answer that is otherwise normal.
                    answer(&req, state)
                } else {
                    (c.status, c.body, c.headers)
                }
            }
            None => answer(&req, state),
        };
        let reason = match status {
            200 => "OK",
            201 => "Created",
            400 => "Bad Request",
            401 => "Unauthorized",
            404 => "Not Found",
            429 => "Too Many Requests",
            _ => "Whatever",
        };
        let mut head = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let written = writer.write_all(head.as_bytes()).and_then(|()| writer.write_all(body.as_bytes()));
        state.0.lock().unwrap().answered += 1;
        state.1.notify_all();
        if written.is_err() {
            return;
        }
    }
}

/// What Twilio would answer to a well-formed request.
fn answer(req: &Request, state: &Arc<(Mutex<State>, Condvar)>) -> (u16, String, Vec<(String, String)>) {
    let mut st = state.0.lock().unwrap();
    let auth = req.headers.iter().find(|(k, _)| k == "authorization").map(|(_, v)| v.clone()).unwrap_or_default();
    if req.path.starts_with("/v1/Account/") {
        return crate::fake_plivo::answer(req, &auth, &mut st);
    }
    if auth != format!("Basic {}", base64(format!("{ACCOUNT_SID}:{AUTH_TOKEN}").as_bytes())) {
        st.violations.push(format!("bad or missing Basic auth on {}", req.path));
        return (401, r#"{"code":20003,"message":"Authenticate","more_info":"https://www.twilio.com/docs/errors/20003","status":401}"#.into(), vec![]);
    }
    let need = |st: &mut State, key: &str| -> String {
        match req.form.get(key) {
            Some(v) if !v.is_empty() => v.clone(),
            _ => {
                st.violations.push(format!("{} without {key}", req.path));
                String::new()
            }
        }
    };
    if let Some((_, status)) = st.failing.iter().find(|(p, _)| req.path.ends_with(p.as_str())) {
        let status = *status;
        return (
            status,
            format!(
                r#"{{"code":20500,"message":"Internal Server Error","more_info":"https://www.twilio.com/docs/errors/20500","status":{status}}}"#
            ),
            vec![],
        );
    }
    st.next_sid += 1;
    let n = st.next_sid;
    let messages_path = format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json");
    let calls_path = format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json");
    let verifications = format!("/v2/Services/{VERIFY_SID}/Verifications");
    let check = format!("/v2/Services/{VERIFY_SID}/VerificationCheck");
    if req.method == "GET" && req.path == format!("/2010-04-01/Accounts/{ACCOUNT_SID}.json") {
        return (200, format!(r#"{{"sid":"{ACCOUNT_SID}","status":"active","type":"Full"}}"#), vec![]);
    }
    if req.method == "GET" && req.path == format!("/v2/Services/{VERIFY_SID}") {
        return (200, format!(r#"{{"sid":"{VERIFY_SID}","account_sid":"{ACCOUNT_SID}","code_length":6}}"#), vec![]);
    }
    if req.method == "GET"
        && let Some(rest) = req.path.strip_prefix("/v2/PhoneNumbers/")
    {
        let (number, query) = rest.split_once('?').unwrap_or((rest, ""));
        let number = percent_decode(number);
        if query != "Fields=line_type_intelligence" {
            st.violations.push(format!("Lookup with query {query:?}"));
        }
        let kind = st.line_types.get(&number).cloned().unwrap_or_else(|| "mobile".into());
        return (
            200,
            format!(
                r#"{{"phone_number":"{number}","valid":true,"line_type_intelligence":{{"type":"{kind}","carrier_name":"Fake","error_code":null}}}}"#
            ),
            vec![],
        );
    }
    let message_prefix = format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/");
    if req.method == "GET"
        && let Some(sid) = req.path.strip_prefix(&message_prefix).and_then(|p| p.strip_suffix(".json"))
    {
        let Some(to) = st.sids.get(sid).cloned() else {
            return (404, r#"{"code":20404,"message":"not found","status":404}"#.into(), vec![]);
        };
        let status = if st.undeliverable.contains(&to) { "undelivered" } else { "delivered" };
        let code = if status == "undelivered" { "30003" } else { "null" };
        return (200, format!(r#"{{"sid":"{sid}","status":"{status}","to":"{to}","error_code":{code}}}"#), vec![]);
    }
    if req.method != "POST" {
        st.violations.push(format!("{} {}", req.method, req.path));
        return (405, "{}".into(), vec![]);
    }
    if req.path == messages_path {
        let to = need(&mut st, "To");
        let body = need(&mut st, "Body");
        if !req.form.contains_key("From") && !req.form.contains_key("MessagingServiceSid") {
            st.violations.push("Messages.json without From or MessagingServiceSid".into());
        }
        match req.form.get("ValidityPeriod").map(|v| v.parse::<u32>()) {
            Some(Ok(1..=36000)) => {}
            other => st.violations.push(format!("ValidityPeriod {other:?}")),
        }
        st.messages.push(Sms { to: to.clone(), body, channel: "sms" });
        let sid = format!("SM{n:032x}");
        st.sids.insert(sid.clone(), to.clone());
        (201, format!(r#"{{"sid":"{sid}","status":"queued","to":"{to}","num_segments":"1"}}"#), vec![])
    } else if req.path == calls_path {
        let to = need(&mut st, "To");
        need(&mut st, "From");
        let twiml = need(&mut st, "Twiml");
        let Some(said) = twiml_say(&twiml) else {
            st.violations.push(format!("Calls.json with TwiML that does not say one text twice: {twiml}"));
            return (400, r#"{"code":21205,"message":"bad TwiML","status":400}"#.into(), vec![]);
        };
        st.messages.push(Sms { to: to.clone(), body: said, channel: "voice" });
        let sid = format!("CA{n:032x}");
        (201, format!(r#"{{"sid":"{sid}","status":"queued","to":"{to}"}}"#), vec![])
    } else if req.path == verifications {
        let to = need(&mut st, "To");
        let channel = match req.form.get("Channel").map(String::as_str) {
            Some("sms") => "sms",
            Some("call") => "voice",
            other => {
                st.violations.push(format!("Verifications with Channel {other:?}"));
                "sms"
            }
        };
        let sid = format!("VE{n:032x}");
        let code = format!("{:06}", (u64::from(n) * 7_919_123 + 424_242) % 1_000_000);
        let body = if channel == "voice" {
            let digits: Vec<String> = code.chars().map(String::from).collect();
            format!("Your verification code is: {}.", digits.join(", "))
        } else {
            format!("Your verification code is: {code}")
        };
        st.messages.push(Sms { to: to.clone(), body, channel });
        st.verifications.insert(sid.clone(), Verification { to: to.clone(), code, open: true });
        (201, format!(r#"{{"sid":"{sid}","status":"pending","to":"{to}","channel":"sms","valid":false}}"#), vec![])
    } else if req.path == check {
        let sid = need(&mut st, "VerificationSid");
        let code = need(&mut st, "Code");
        match st.verifications.get_mut(&sid) {
            Some(v) if v.open => {
                if v.code == code {
                    v.open = false;
                    (200, format!(r#"{{"sid":"{sid}","status":"approved","valid":true,"to":"{}"}}"#, v.to), vec![])
                } else {
                    (200, format!(r#"{{"sid":"{sid}","status":"pending","valid":false,"to":"{}"}}"#, v.to), vec![])
                }
            }
            _ => (404, r#"{"code":20404,"message":"The requested resource was not found","more_info":"https://www.twilio.com/docs/errors/20404","status":404}"#.into(), vec![]),
        }
    } else {
        st.violations.push(format!("unexpected path {}", req.path));
        (404, r#"{"code":20404,"message":"not found","status":404}"#.into(), vec![])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(base64(b"AC:tok"), "QUM6dG9r");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(percent_decode("%2B1415+x"), "+1415 x");
        assert_eq!(percent_decode("100%"), "100%");
        let m = parse_form("To=%2B14155550123&Body=123456+is+your+code");
        assert_eq!(m["To"], "+14155550123");
        assert_eq!(m["Body"], "123456 is your code");
    }
}
