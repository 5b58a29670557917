//! The structs that ListUsers, ShowUser, ListTrust and Explain return.

use serde::{Deserialize, Serialize};
use zbus::zvariant::Type;

use crate::wire::wire_enum;

wire_enum! {
    /// A user's state in ListUsers/ShowUser.
    UserState {
        Ok = "ok",
        Locked = "locked",
        /// The record cannot be read; the user cannot log in.
        Unusable = "unusable",
        /// Enrolled at login under enrollment.approval; no login until
        /// an administrator approves (Approve).
        AwaitingApproval = "awaiting-approval",
    }
}

wire_enum! {
    /// The ways a user can answer a login.
    Factor {
        Sms = "sms",
        /// The same kind of code as "sms", read out by a phone call to the
        /// enrolled number (where the daemon has [voice]).
        Voice = "voice",
        /// An authenticator app (RFC 6238).
        Totp = "totp",
        /// One of the user's single-use recovery codes.
        Recovery = "recovery",
    }
}

wire_enum! {
    /// What an entry of an account's recent history records.
    Happening {
        SignIn = "sign-in",
        Failure = "failure",
    }
}

wire_enum! {
    /// Where a trusted login came from.
    TrustClass {
        Remote = "remote",
        /// Console, su, sudo: logins without a remote host.
        Local = "local",
    }
}

wire_enum! {
    /// The keys of Explain's answer, in the order they are given.
    ExplainKey {
        Decision = "decision",
        Rule = "rule",
        Groups = "groups",
        Machine = "machine",
        Enrolled = "enrolled",
        Outcome = "outcome",
    }
}

/// `(ssutsu)`: one enrolled user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct UserRow {
    pub user: String,
    /// The masked number, e.g. `******1234`.
    pub destination: String,
    /// Consecutive wrong codes.
    pub failures: u32,
    /// Unix seconds; 0 when not locked.
    pub locked_until: u64,
    pub state: UserState,
    pub trusted_machines: u32,
}

/// `(ssstt)`: one trust record that still applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct TrustRow {
    /// `key:SHA256:<fingerprint>@<network>`, `addr:<address>`, `host:<name>` or `local`.
    pub machine: String,
    pub class: TrustClass,
    /// The PAM service the trust was earned for.
    pub service: String,
    /// Unix seconds.
    pub created: u64,
    /// Unix seconds.
    pub expires: u64,
}

/// `(tsss)`: one sign-in or failure of the caller's account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct HistoryRow {
    /// Unix seconds.
    pub at: u64,
    pub what: Happening,
    pub service: String,
    pub rhost: String,
}

/// The caller's own account, for `smsotp status` (User1.Status).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct AccountStatus {
    pub user: String,
    /// False: nothing else is filled in.
    pub enrolled: bool,
    /// The masked number codes go to now.
    pub destination: String,
    /// A proven new number waiting out its cool-down ("" if none).
    pub pending_destination: String,
    /// Unix seconds from which it replaces `destination` (0 if none).
    pub pending_from: u64,
    /// Default first.
    pub factors: Vec<Factor>,
    pub recovery_codes_left: u32,
    pub failures: u32,
    /// Unix seconds; 0 when not locked.
    pub locked_until: u64,
    pub awaiting_approval: bool,
    pub trusted: Vec<TrustRow>,
    /// Newest last.
    pub recent: Vec<HistoryRow>,
}

/// `(asust)`: an account's factors, for `smsotpctl show` (ShowFactors).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct FactorsRow {
    /// Default first.
    pub factors: Vec<Factor>,
    pub recovery_codes_left: u32,
    pub pending_destination: String,
    pub pending_from: u64,
}

/// `(ss)`: one line of Explain's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct ExplainLine {
    pub key: ExplainKey,
    pub text: String,
}
