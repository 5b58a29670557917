//! HTTP for the providers (Twilio, Plivo): one retry loop.
//!
//! Retries only where no message can have gone out: a connection that never
//! opened, HTTP 429 and 5xx (as each provider's interpreter says), with
//! jittered backoff while the deadline allows. A request that was sent but
//! got no answer is not retried: the provider may have queued it, and one
//! login must never send two messages.

use std::time::Duration;

use super::ProviderError;
use crate::clock::{Clock, Tick};

/// What a response means for the retry loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome<T> {
    Done(T),
    Retry { reason: String, after: Option<Duration> },
    Fail(ProviderError),
}

/// One GET with Basic auth, no retry (a question, never a message): the
/// HTTP status and the body, capped.
pub(crate) async fn get(
    client: &reqwest::Client,
    url: &str,
    (user, pass): (&str, &str),
    timeout: Duration,
) -> Result<(u16, Vec<u8>), ProviderError> {
    let resp = client
        .get(url)
        .basic_auth(user, Some(pass))
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| ProviderError::Unavailable { detail: error_chain(&e) })?;
    let status = resp.status().as_u16();
    let body = read_capped(resp).await.map_err(|e| ProviderError::Malformed { detail: e.to_string() })?;
    Ok((status, body))
}

pub(crate) const MAX_BODY: usize = 64 * 1024;
const MAX_TRIES: u32 = 4;

/// Runs `send` (given the time left for one request) until `interpret`
/// says done or fail, the tries run out, or the deadline comes.
pub(crate) async fn with_retries<T, F>(
    name: &str,
    clock: &dyn Clock,
    deadline: Tick,
    request_timeout: Duration,
    send: impl Fn(Duration) -> F,
    interpret: impl Fn(u16, &[u8], Option<Duration>) -> Outcome<T>,
) -> Result<T, ProviderError>
where
    F: std::future::Future<Output = Result<reqwest::Response, reqwest::Error>>,
{
    let mut last = String::from("no attempt fitted in the deadline");
    for attempt in 0..MAX_TRIES {
        let remaining = clock.tick().until(deadline);
        if remaining < Duration::from_millis(200) {
            break;
        }
        let outcome = match send(remaining.min(request_timeout)).await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let retry_after = resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                match read_capped(resp).await {
                    Ok(body) => interpret(status, &body, retry_after),
                    Err(e) if e.is_timeout() => Outcome::Fail(ProviderError::NoAnswer),
                    Err(e) => Outcome::Fail(ProviderError::Malformed { detail: e.to_string() }),
                }
            }
            Err(e) if e.is_connect() => {
                Outcome::Retry { reason: format!("cannot connect: {}", error_chain(&e)), after: None }
            }
            Err(e) if e.is_timeout() => Outcome::Fail(ProviderError::NoAnswer),
            Err(e) => Outcome::Fail(ProviderError::Unavailable { detail: error_chain(&e) }),
        };
        match outcome {
            Outcome::Done(v) => return Ok(v),
            Outcome::Fail(e) => return Err(e),
            Outcome::Retry { reason, after } => {
                last = reason;
                if attempt + 1 == MAX_TRIES {
                    break;
                }
                let wait = after.unwrap_or_else(|| backoff(attempt));
                let remaining = clock.tick().until(deadline);
                if wait + Duration::from_millis(200) >= remaining {
                    break;
                }
                tracing::info!("{name}: attempt {} failed ({last}); retrying in {} ms", attempt + 1, wait.as_millis());
                clock.sleep(wait).await;
            }
        }
    }
    Err(ProviderError::Unavailable { detail: last })
}

/// 250 ms, 500 ms, 1 s ... with up to 50% random jitter so that many
/// daemons throttled together do not retry together.
pub(crate) fn backoff(attempt: u32) -> Duration {
    let base = Duration::from_millis(250u64 << attempt.min(5));
    let mut b = [0u8; 1];
    let jitter = if crate::random::fill_random(&mut b).is_ok() { u32::from(b[0]) } else { 0 };
    base + base * jitter / 512
}

pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        cur = inner.source();
    }
    s
}

pub(crate) async fn read_capped(mut resp: reqwest::Response) -> Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        let room = MAX_BODY.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if room <= chunk.len() {
            break;
        }
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_bounded_jitter() {
        for attempt in 0..4 {
            let base = Duration::from_millis(250 << attempt);
            let b = backoff(attempt);
            assert!(b >= base && b < base * 3 / 2, "{attempt}: {b:?}");
        }
    }
}
