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

/// The longest strings the daemon accepts from the module, in bytes. The
/// module caps the user name itself; the daemon checks everything again.
pub mod limits {
    /// A user name longer than this is treated as an unknown user.
    pub const USER: usize = 256;
    pub const SERVICE: usize = 256;
    pub const RHOST: usize = 1024;
    pub const TTY: usize = 256;
    pub const AUTH_INFO: usize = 16 * 1024;
    pub const CONTEXT_ENTRIES: usize = 32;
}

/// `s` cut to at most `max` bytes, at a character boundary.
pub fn truncate_bytes(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_keeps_characters_whole() {
        assert_eq!(truncate_bytes("abc", 5), "abc");
        assert_eq!(truncate_bytes("abcdef", 3), "abc");
        assert_eq!(truncate_bytes("aé", 2), "a", "é is two bytes");
        assert_eq!(truncate_bytes(&"x".repeat(60_000), limits::USER).len(), limits::USER);
    }
}
