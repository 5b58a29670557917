//! Break-glass: a one-time code an administrator issues (`smsotpctl bypass
//! USER`) for a user whom SMS cannot reach (a lost phone, a carrier or the
//! provider down, an account not enrolled yet). The user types it at the
//! "SMS code:" prompt instead of an SMS code. It is shown to the
//! administrator once, kept only as an HMAC under a key of the state
//! directory, used at most once, expires, and both issuing and using it are
//! audited. It is longer than any SMS code, so the two never meet.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::audit::{self, Event};
use crate::authz::Root;
use crate::challenge;
use crate::daemon::Daemon;
use crate::error::LoginError;
use crate::names::UserName;
use crate::nss;
use crate::provider::Provider;

/// Digits of a bypass code: 12, against at most 10 for an SMS code.
pub const LENGTH: usize = 12;
pub const MAX_MINUTES: u32 = 24 * 60;

fn mac(key: &[u8; 32], user: &str, code: &str) -> Option<[u8; 32]> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).ok()?;
    m.update(user.as_bytes());
    m.update(&[0]);
    m.update(code.as_bytes());
    Some(m.finalize().into_bytes().into())
}

/// "until=UNIX\nmac=HEX\n"
fn render(until: u64, mac: &[u8; 32]) -> String {
    format!("until={until}\nmac={}\n", hex::encode(mac))
}

fn parse(text: &str) -> Option<(u64, [u8; 32])> {
    let mut until = None;
    let mut mac = None;
    for line in text.lines() {
        match line.split_once('=') {
            Some(("until", v)) => until = v.parse().ok(),
            Some(("mac", v)) => mac = hex::decode(v).ok().and_then(|b| <[u8; 32]>::try_from(b).ok()),
            _ => return None,
        }
    }
    Some((until?, mac?))
}

impl<P: Provider> Daemon<P> {
    /// Issues USER's bypass code, valid `minutes`, replacing any earlier
    /// one. The code is returned once and kept nowhere.
    pub fn issue_bypass(
        &self,
        _root: &Root,
        user: &str,
        minutes: u32,
    ) -> Result<(zeroize::Zeroizing<String>, u64), LoginError> {
        let name = UserName::parse(user).map_err(|e| LoginError::InvalidArgument(e.to_string()))?;
        if !nss::user_exists(name.as_str()) {
            return Err(LoginError::InvalidArgument(format!(
                "{name} is not a user of this system (getent passwd {name} finds nothing)"
            )));
        }
        if !(1..=MAX_MINUTES).contains(&minutes) {
            return Err(LoginError::InvalidArgument(format!(
                "--minutes {minutes}: a bypass code lasts 1 to {MAX_MINUTES} minutes"
            )));
        }
        let code = challenge::new_code(LENGTH).map_err(|e| LoginError::Internal(e.to_string()))?;
        let mac = mac(&self.bypass_key, name.as_str(), &code).ok_or(LoginError::Internal("no HMAC".into()))?;
        let until = self.clock.unix_now().saturating_add(u64::from(minutes) * 60);
        self.store.save_bypass(&name, &render(until, &mac)).map_err(LoginError::from)?;
        audit::event(Event::BypassIssued)
            .field("user", name.as_str())
            .field("until", &crate::clock::format_utc(until))
            .log();
        Ok((code, until))
    }

    /// Whether `code` is `user`'s live bypass code; a match is used up (and
    /// refused if it cannot be removed: single use must hold).
    pub(crate) fn take_bypass(&self, user: &str, code: &str) -> bool {
        if code.len() != LENGTH {
            return false;
        }
        let Ok(name) = UserName::parse(user) else { return false };
        let stored = match self.store.load_bypass(&name) {
            Ok(Some(text)) => parse(&text),
            Ok(None) => return false,
            Err(e) => {
                tracing::error!("{e}; ignoring it (smsotpctl bypass issues a new one)");
                return false;
            }
        };
        let Some((until, expected)) = stored else {
            tracing::error!("the bypass record of {name} is unreadable; ignoring it");
            return false;
        };
        if until <= self.clock.unix_now() {
            let _ = self.store.remove_bypass(&name);
            return false;
        }
        let Some(given) = mac(&self.bypass_key, name.as_str(), code) else { return false };
        if !challenge::codes_equal(&expected, &given) {
            return false;
        }
        match self.store.remove_bypass(&name) {
            Ok(true) => {
                audit::event(Event::BypassUsed).field("user", name.as_str()).log();
                true
            }
            Ok(false) => false,
            Err(e) => {
                tracing::error!("{e}; the bypass code of {name} is refused, since it could not be used up");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_junk_is_no_record() {
        let m = [7u8; 32];
        assert_eq!(parse(&render(42, &m)), Some((42, m)));
        assert_eq!(parse("until=42\n"), None);
        assert_eq!(parse("until=42\nmac=00\n"), None);
        assert_eq!(parse("until=x\nmac=00\n"), None);
        assert_eq!(parse(&format!("{}extra=1\n", render(42, &m))), None);
    }

    #[test]
    fn the_mac_binds_the_user_and_the_key() {
        let k = [1u8; 32];
        assert_ne!(mac(&k, "alice", "123456789012"), mac(&k, "bob", "123456789012"));
        assert_ne!(mac(&k, "alice", "123456789012"), mac(&[2u8; 32], "alice", "123456789012"));
        assert_eq!(mac(&k, "alice", "123456789012"), mac(&k, "alice", "123456789012"));
    }
}
