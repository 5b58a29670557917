//! Delivery of codes.
//!
//! One trait covers both kinds of provider: those that carry a code we made
//! (Programmable Messaging, the outbox) and those that make and check the
//! code themselves (Verify). [`Provider::makes_codes`] tells them apart.

pub mod command;
pub mod http;
pub mod outbox;
pub mod plivo;
pub mod twilio;
pub mod twilio_config;

use std::fmt;
use std::future::Future;
use std::time::Duration;

use crate::clock::Tick;
use crate::names::PhoneNumber;

/// How a message reaches the phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Sms,
    /// A phone call that reads the text out (twice).
    Voice,
}

impl Channel {
    pub fn name(self) -> &'static str {
        match self {
            Channel::Sms => "sms",
            Channel::Voice => "voice",
        }
    }
}

/// One message to send.
pub struct Outgoing<'a> {
    pub to: &'a PhoneNumber,
    /// The rendered text (for a call, what is said), for providers that
    /// carry our code.
    pub body: &'a str,
    /// How long the code is good for; the provider may drop the SMS after.
    pub validity: Duration,
    pub channel: Channel,
    /// Whose login it is ("" for notices): Verify's rate limits count it.
    pub user: &'a str,
}

/// The provider's answer to a code it made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteVerdict {
    Approved,
    /// Wrong code; the verification is still open.
    Wrong,
    /// Expired, used, or out of attempts on the provider's side.
    Gone,
}

/// How a sent message fared, as far as the provider knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    Delivered,
    /// Queued or sent, not known yet.
    Pending,
    /// Undelivered or failed: it will not arrive.
    Undelivered,
    /// This provider cannot tell.
    Unknown,
}

/// Why a provider call failed. None of these carry a number, a code or a
/// secret; provider error texts are dropped because they echo the number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderError {
    /// Rejected credentials (Twilio 401/20003): only an operator can fix it.
    Credentials { status: u16, code: Option<u32> },
    /// The provider will never deliver this (21211 invalid number, 21408
    /// region disabled, 21610 opted out, 21614 not mobile, other 4xx).
    Permanent { status: u16, code: Option<u32> },
    /// The provider refuses more codes to this number for now (Verify's
    /// 60203 max send attempts, 60212 too many concurrent requests): a
    /// retry cannot help, and the user is told to wait.
    Limited { status: u16, code: u32 },
    /// Throttled or failing (429, 5xx, connection errors) after every retry
    /// the deadline allowed.
    Unavailable { detail: String },
    /// A request was sent but no answer came in time. It is not retried:
    /// the SMS may be on its way and one login must not send two.
    NoAnswer,
    /// The provider answered something we cannot read.
    Malformed { detail: String },
    /// Local trouble (the outbox file, randomness).
    Local { detail: String },
}

impl ProviderError {
    /// Twilio's error page for the code, for operators.
    fn more_info(code: Option<u32>) -> String {
        code.map(|c| format!(" (https://www.twilio.com/docs/errors/{c})")).unwrap_or_default()
    }
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProviderError::Credentials { status, code } => write!(
                f,
                "the provider rejected our credentials (HTTP {status}{}){}; check the account SID and token or API key in the config",
                code.map(|c| format!(", error {c}")).unwrap_or_default(),
                ProviderError::more_info(*code)
            ),
            ProviderError::Permanent { status, code } => write!(
                f,
                "the provider refused the message (HTTP {status}{}){}",
                code.map(|c| format!(", error {c}: {}", twilio::describe_code(c))).unwrap_or_default(),
                ProviderError::more_info(*code)
            ),
            ProviderError::Limited { status, code } => write!(
                f,
                "the provider refuses more codes to this number for now (HTTP {status}, error {code}: {}){}",
                twilio::describe_code(*code),
                ProviderError::more_info(Some(*code))
            ),
            ProviderError::Unavailable { detail } => write!(f, "the provider is unavailable: {detail}"),
            ProviderError::NoAnswer => f.write_str(
                "the provider did not answer in time after the request was sent (not retried, so no second SMS)",
            ),
            ProviderError::Malformed { detail } => write!(f, "the provider's answer could not be read: {detail}"),
            ProviderError::Local { detail } => f.write_str(detail),
        }
    }
}

pub trait Provider: Send + Sync + 'static {
    fn name(&self) -> &'static str;

    /// True when the provider makes and checks the code (Verify).
    fn makes_codes(&self) -> bool;

    /// Sends one SMS (or, for Verify, starts or repeats a verification) and
    /// returns the provider's reference. Must give up by `deadline`.
    fn send(&self, msg: &Outgoing<'_>, deadline: Tick) -> impl Future<Output = Result<String, ProviderError>> + Send;

    /// Checks `code` against a verification the provider made.
    fn check(
        &self,
        reference: &str,
        code: &str,
        deadline: Tick,
    ) -> impl Future<Output = Result<RemoteVerdict, ProviderError>> + Send;

    /// Why `number` must not be enrolled (Lookup v2's line type), or None.
    /// Providers that cannot tell say None.
    fn refuses_number(
        &self,
        _number: &PhoneNumber,
        _deadline: Tick,
    ) -> impl Future<Output = Result<Option<String>, ProviderError>> + Send {
        async { Ok(None) }
    }

    /// How the message `reference` fared (failover watches SMS with it).
    fn status(
        &self,
        _reference: &str,
        _deadline: Tick,
    ) -> impl Future<Output = Result<DeliveryStatus, ProviderError>> + Send {
        async { Ok(DeliveryStatus::Unknown) }
    }
}

/// The providers a config can choose, behind one type.
pub enum AnyProvider {
    Twilio(Box<twilio::Twilio>),
    Outbox(outbox::Outbox),
    Command(command::Command),
    Plivo(plivo::Plivo),
}

impl Provider for AnyProvider {
    fn name(&self) -> &'static str {
        match self {
            AnyProvider::Twilio(t) => t.name(),
            AnyProvider::Outbox(o) => o.name(),
            AnyProvider::Command(c) => c.name(),
            AnyProvider::Plivo(p) => p.name(),
        }
    }

    fn makes_codes(&self) -> bool {
        match self {
            AnyProvider::Twilio(t) => t.makes_codes(),
            AnyProvider::Outbox(o) => o.makes_codes(),
            AnyProvider::Command(c) => c.makes_codes(),
            AnyProvider::Plivo(p) => p.makes_codes(),
        }
    }

    async fn send(&self, msg: &Outgoing<'_>, deadline: Tick) -> Result<String, ProviderError> {
        match self {
            AnyProvider::Twilio(t) => t.send(msg, deadline).await,
            AnyProvider::Outbox(o) => o.send(msg, deadline).await,
            AnyProvider::Command(c) => c.send(msg, deadline).await,
            AnyProvider::Plivo(p) => p.send(msg, deadline).await,
        }
    }

    async fn check(&self, reference: &str, code: &str, deadline: Tick) -> Result<RemoteVerdict, ProviderError> {
        match self {
            AnyProvider::Twilio(t) => t.check(reference, code, deadline).await,
            AnyProvider::Outbox(o) => o.check(reference, code, deadline).await,
            AnyProvider::Command(c) => c.check(reference, code, deadline).await,
            AnyProvider::Plivo(p) => p.check(reference, code, deadline).await,
        }
    }

    async fn refuses_number(&self, number: &PhoneNumber, deadline: Tick) -> Result<Option<String>, ProviderError> {
        match self {
            AnyProvider::Twilio(t) => t.refuses_number(number, deadline).await,
            AnyProvider::Outbox(o) => o.refuses_number(number, deadline).await,
            AnyProvider::Command(c) => c.refuses_number(number, deadline).await,
            AnyProvider::Plivo(p) => p.refuses_number(number, deadline).await,
        }
    }

    async fn status(&self, reference: &str, deadline: Tick) -> Result<DeliveryStatus, ProviderError> {
        match self {
            AnyProvider::Twilio(t) => t.status(reference, deadline).await,
            AnyProvider::Outbox(o) => o.status(reference, deadline).await,
            AnyProvider::Command(c) => c.status(reference, deadline).await,
            AnyProvider::Plivo(p) => p.status(reference, deadline).await,
        }
    }
}
