//! The audit trail: one syslog line (facility authpriv) per login event.
//!
//! Lines carry the user, service, remote host and the masked number, never a
//! code, a token, a full number or anything a user typed. Fields from
//! outside are escaped so that they cannot forge a second line.

use std::fmt::Write;

use crate::names::sanitize_for_log;

/// What happened; the names are stable for log parsers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    CodeSent,
    CodeResent,
    /// SIGHUP: a new configuration (policy, limits, provider) is in force.
    ConfigReloaded,
    /// The old number was told that it no longer receives the codes.
    NumberChangeNotified,
    /// codes.sms_per_host_per_day is reached (said at most hourly).
    DailyCapReached,
    /// An SMS was not sent: its number is outside destinations.countries.
    /// `phone_source = "ldap"`: a first number from the directory.
    EnrolledFromDirectory,
    /// The directory's number is not the one pinned: a number change.
    DirectoryNumberChanged,
    /// An enrolled user's entry has no number any more: no login.
    DirectoryNumberMissing,
    /// The directory did not answer: directory users fail closed.
    DirectoryUnavailable,
    DestinationRefused,
    /// An enrolling user's code went to the number they gave.
    EnrollCodeSent,
    /// An enrolling user typed the right code: enrolled with that number.
    EnrolledAtLogin,
    /// The number an enrolling user typed was refused (why, never the number).
    EnrollNumberRefused,
    /// An administrator issued a break-glass code (never logged itself).
    BypassIssued,
    /// A break-glass code let a login in instead of an SMS code.
    BypassUsed,
    /// A new round of the same login got the code already sent (no SMS).
    CodeReused,
    /// A user's code to prove a new number went to it (smsotp change-number).
    NumberCheckSent,
    /// A user proved a new number; it signs in from `from` (after the cool-down).
    NumberChanged,
    /// A user added an authenticator app, confirmed by its first code.
    AppAdded,
    /// A user made a new set of recovery codes (the old set is void).
    RecoveryCodesIssued,
    /// A user chose the factor a login asks for first.
    DefaultFactorSet,
    /// A login switched factor at the prompt (the failure count goes on).
    FactorSwitched,
    /// A login's code goes by the next failover route (provider, channel, reason).
    Failover,
    /// An administrator reset a user: enrollment again at the next login.
    UserReset,
    /// An administrator approved a number enrolled at login.
    Approved,
    /// A number was proven at login and waits for an administrator.
    AwaitingApproval,
    Accepted,
    Wrong,
    TooManyTries,
    Expired,
    LockedOut,
    StillLockedOut,
    ProviderFailure,
    NotEnrolled,
    UnknownUser,
    UnenrolledAllowed,
    RecordUnusable,
    /// The shared database could not answer: the login failed closed.
    StoreUnavailable,
    /// The database was down; this host's copy of the user's trust let a
    /// trusted machine in (`store.offline = "local-trust"`).
    TrustedOffline,
    RateLimited,
    Busy,
    Cancelled,
    Enrolled,
    Unenrolled,
    Unlocked,
    TestSent,
    PolicySkip,
    PolicyDeny,
    Trusted,
    TrustRecorded,
    TrustRevoked,
}

impl Event {
    pub fn name(self) -> &'static str {
        match self {
            Event::CodeSent => "code-sent",
            Event::CodeResent => "code-resent",
            Event::CodeReused => "code-reused",
            Event::Accepted => "code-accepted",
            Event::Wrong => "code-wrong",
            Event::TooManyTries => "too-many-tries",
            Event::Expired => "code-expired",
            Event::LockedOut => "locked-out",
            Event::StillLockedOut => "login-while-locked-out",
            Event::ProviderFailure => "provider-failure",
            Event::NotEnrolled => "not-enrolled",
            Event::UnknownUser => "unknown-user",
            Event::UnenrolledAllowed => "unenrolled-allowed",
            Event::RecordUnusable => "record-unusable",
            Event::StoreUnavailable => "store-unavailable",
            Event::TrustedOffline => "trusted-offline",
            Event::RateLimited => "rate-limited",
            Event::Busy => "busy",
            Event::Cancelled => "cancelled",
            Event::Enrolled => "enrolled",
            Event::Unenrolled => "unenrolled",
            Event::Unlocked => "unlocked",
            Event::TestSent => "test-sent",
            Event::PolicySkip => "policy-skip",
            Event::PolicyDeny => "policy-deny",
            Event::ConfigReloaded => "config-reloaded",
            Event::BypassIssued => "bypass-issued",
            Event::EnrollCodeSent => "enroll-code-sent",
            Event::DestinationRefused => "destination-refused",
            Event::EnrolledFromDirectory => "enrolled-from-directory",
            Event::DirectoryNumberChanged => "directory-number-changed",
            Event::DirectoryNumberMissing => "directory-number-missing",
            Event::DirectoryUnavailable => "directory-unavailable",
            Event::DailyCapReached => "daily-cap-reached",
            Event::NumberChangeNotified => "number-change-notified",
            Event::EnrolledAtLogin => "enrolled-at-login",
            Event::EnrollNumberRefused => "enroll-number-refused",
            Event::BypassUsed => "bypass-used",
            Event::Trusted => "trusted-machine",
            Event::TrustRecorded => "trust-recorded",
            Event::TrustRevoked => "trust-revoked",
            Event::NumberCheckSent => "number-check-sent",
            Event::NumberChanged => "number-changed",
            Event::AppAdded => "app-added",
            Event::RecoveryCodesIssued => "recovery-codes-issued",
            Event::DefaultFactorSet => "default-factor-set",
            Event::FactorSwitched => "factor-switched",
            Event::UserReset => "user-reset",
            Event::Failover => "failover",
            Event::Approved => "approved",
            Event::AwaitingApproval => "awaiting-approval",
        }
    }

    fn is_warning(self) -> bool {
        matches!(
            self,
            Event::Wrong
                | Event::TooManyTries
                | Event::LockedOut
                | Event::StillLockedOut
                | Event::ProviderFailure
                | Event::RecordUnusable
                | Event::StoreUnavailable
                | Event::DirectoryNumberChanged
                | Event::DirectoryNumberMissing
                | Event::DirectoryUnavailable
                | Event::RateLimited
                | Event::Busy
                | Event::PolicyDeny
        )
    }
}

/// Builds one audit line; `log()` sends it.
#[must_use]
pub struct Line {
    event: Event,
    text: String,
}

pub fn event(event: Event) -> Line {
    Line { event, text: format!("event={}", event.name()) }
}

impl Line {
    /// Adds `key=value`, escaping the value. Only ever pass masked numbers.
    pub fn field(mut self, key: &str, value: &str) -> Self {
        let v = sanitize_for_log(value);
        if v.is_empty() {
            let _ = write!(self.text, " {key}=-");
        } else if v.contains([' ', '"', '=']) {
            let _ = write!(self.text, " {key}=\"{}\"", v.replace('"', "'"));
        } else {
            let _ = write!(self.text, " {key}={v}");
        }
        self
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn log(self) {
        if self.event.is_warning() {
            tracing::warn!(target: "audit", "{}", self.text);
        } else {
            tracing::info!(target: "audit", "{}", self.text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_escaped() {
        let l = event(Event::Wrong).field("user", "bob\nevent=accepted").field("rhost", "").field("svc", "a b");
        assert_eq!(l.text(), "event=code-wrong user=\"bob\\x0aevent=accepted\" rhost=- svc=\"a b\"");
    }
}
