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

/// `(ss)`: one line of Explain's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct ExplainLine {
    pub key: ExplainKey,
    pub text: String,
}
