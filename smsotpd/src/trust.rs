//! "Trust this machine" records: when they apply, how they are added.
//!
//! A record applies from its creation up to, not including, its expiry: at
//! created + trust_days the code is asked again. A record created in the
//! future (the clock was stepped back) applies to nothing. Arithmetic
//! saturates, so a far-future clock expires records instead of wrapping.

use crate::clock::UnixSeconds;
use crate::machine::Machine;
use serde::{Deserialize, Serialize};

pub const DAY: u64 = 86_400;

/// A "trust this machine" record (stored with the user's record).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustRecord {
    /// What the daemon recognises the machine by (see machine.rs).
    pub machine: String,
    /// "remote" or "local": trust never crosses between the two.
    pub class: String,
    /// The PAM service it was granted for (sshd trust never opens sudo).
    pub service: String,
    pub created: u64,
    pub expires: u64,
    /// The host it opens, "*" for every host of a fleet; empty: the host
    /// whose files hold it (one-host store).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host: String,
}

/// Trust that a login will earn with the right code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustPlan {
    pub machine: Machine,
    pub service: String,
    pub days: u32,
}

pub fn applies(r: &TrustRecord, now: UnixSeconds) -> bool {
    r.created <= now && now < r.expires
}

/// Whether `r` opens logins on `host`.
pub fn opens(r: &TrustRecord, host: &str) -> bool {
    r.host.is_empty() || r.host == "*" || r.host == host
}

/// The record that lets `machine` skip the code for `service` on `host`,
/// if any.
pub fn find<'a>(
    records: &'a [TrustRecord],
    machine: &Machine,
    service: &str,
    host: &str,
    now: UnixSeconds,
) -> Option<&'a TrustRecord> {
    records.iter().find(|r| {
        r.machine == machine.id
            && r.class == machine.class.name()
            && r.service == service
            && opens(r, host)
            && applies(r, now)
    })
}

/// Adds (or renews) trust for `machine` on `host` (see [`TrustRecord::host`]);
/// drops records that no longer apply and, beyond `max`, the oldest.
pub fn add(
    records: &mut Vec<TrustRecord>,
    machine: &Machine,
    service: &str,
    host: &str,
    days: u32,
    now: UnixSeconds,
    max: usize,
) {
    records.retain(|r| {
        applies(r, now)
            && !(r.machine == machine.id && r.class == machine.class.name() && r.service == service && r.host == host)
    });
    records.push(TrustRecord {
        machine: machine.id.clone(),
        class: machine.class.name().to_owned(),
        service: service.to_owned(),
        created: now,
        expires: now.saturating_add(u64::from(days).saturating_mul(DAY)),
        host: host.to_owned(),
    });
    records.sort_by_key(|r| r.created);
    while records.len() > max.max(1) {
        records.remove(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::{Class, identify};

    const NOW: u64 = 1_800_000_000;

    fn m(id: &str) -> Machine {
        Machine { id: id.into(), class: Class::Remote }
    }

    #[test]
    fn thirty_day_boundaries() {
        let mut rs = Vec::new();
        add(&mut rs, &m("addr:192.0.2.1"), "sshd", "", 30, NOW, 20);
        let at = |secs: u64| find(&rs, &m("addr:192.0.2.1"), "sshd", "h", NOW + secs).is_some();
        assert!(at(0));
        assert!(at(29 * DAY + 23 * 3600 + 59 * 60), "29 d 23 h 59 m: still trusted");
        assert!(!at(30 * DAY), "exactly 30 d: the code is asked again");
        assert!(!at(30 * DAY + 1));
    }

    #[test]
    fn clock_stepped_back_and_far_future() {
        let mut rs = Vec::new();
        add(&mut rs, &m("addr:192.0.2.1"), "sshd", "", 30, NOW, 20);
        assert!(find(&rs, &m("addr:192.0.2.1"), "sshd", "h", NOW - 1).is_none(), "created in the future: invalid");
        assert!(find(&rs, &m("addr:192.0.2.1"), "sshd", "h", u64::MAX).is_none());
        let mut far = Vec::new();
        add(&mut far, &m("addr:192.0.2.1"), "sshd", "", 365, u64::MAX - 10, 20);
        assert_eq!(far[0].expires, u64::MAX, "saturates instead of wrapping");
    }

    #[test]
    fn bound_to_machine_class_and_service() {
        let mut rs = Vec::new();
        let remote = identify("sshd", "192.0.2.1", "");
        add(&mut rs, &remote, "sshd", "", 30, NOW, 20);
        assert!(find(&rs, &remote, "sshd", "h", NOW).is_some());
        assert!(find(&rs, &identify("sshd", "192.0.2.2", ""), "sshd", "h", NOW).is_none(), "another address");
        assert!(find(&rs, &remote, "sudo", "h", NOW).is_none(), "another service");
        assert!(find(&rs, &identify("login", "", ""), "sshd", "h", NOW).is_none(), "a local login");
        let mut local = Vec::new();
        add(&mut local, &identify("login", "", ""), "login", "", 30, NOW, 20);
        assert!(find(&local, &remote, "login", "h", NOW).is_none(), "local trust never opens remote logins");
    }

    #[test]
    fn capped_oldest_first_and_renewed_in_place() {
        let mut rs = Vec::new();
        for i in 0..25u64 {
            add(&mut rs, &m(&format!("addr:192.0.2.{i}")), "sshd", "", 30, NOW + i, 20);
        }
        assert_eq!(rs.len(), 20);
        assert!(find(&rs, &m("addr:192.0.2.0"), "sshd", "h", NOW + 30).is_none(), "the oldest went first");
        assert!(find(&rs, &m("addr:192.0.2.24"), "sshd", "h", NOW + 30).is_some());
        add(&mut rs, &m("addr:192.0.2.24"), "sshd", "", 30, NOW + 100, 20);
        assert_eq!(rs.iter().filter(|r| r.machine == "addr:192.0.2.24").count(), 1, "no duplicate rows");
    }
}
