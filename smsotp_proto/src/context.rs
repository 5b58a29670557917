//! StartLogin's and Explain's `a{ss}` context: what PAM knows of a login.

use std::collections::HashMap;

/// The keys of the context map. Unknown keys are ignored by the daemon, so
/// a newer module works with an older daemon.
pub mod context_key {
    pub const SERVICE: &str = "service";
    pub const RHOST: &str = "rhost";
    pub const TTY: &str = "tty";
    /// sshd's SSH_AUTH_INFO_0 (with `ExposeAuthInfo yes`).
    pub const AUTH_INFO: &str = "auth_info";
    pub const ALL: &[&str] = &[SERVICE, RHOST, TTY, AUTH_INFO];
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoginContext {
    pub service: String,
    pub rhost: String,
    pub tty: String,
    pub auth_info: String,
}

impl LoginContext {
    /// The map sent on the bus; empty values are left out.
    pub fn to_wire(&self) -> HashMap<&'static str, &str> {
        [
            (context_key::SERVICE, self.service.as_str()),
            (context_key::RHOST, self.rhost.as_str()),
            (context_key::TTY, self.tty.as_str()),
            (context_key::AUTH_INFO, self.auth_info.as_str()),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .collect()
    }
}
