//! A user's record: what the daemon knows of one user (number, factors,
//! counters, trust, history) and its file format (TOML, version 1). An
//! unreadable or inconsistent file is an error, never "not enrolled".
//! store.rs keeps the files.

use std::fmt;

use serde::{Deserialize, Serialize};
use smsotp_proto::{Factor, WireEnum};
use zeroize::Zeroizing;

use crate::names::PhoneNumber;
use crate::recovery::RecoverySet;
use crate::trust::TrustRecord;

/// A user's persisted state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub phone: PhoneNumber,
    /// Consecutive wrong codes across challenges and factors; a right
    /// answer clears it.
    pub failures: u32,
    /// Unix seconds until which logins are refused; 0 when not locked.
    pub locked_until: u64,
    pub trust: Vec<TrustRecord>,
    /// The authenticator app, once its first code confirmed it.
    pub totp: Option<TotpFactor>,
    pub recovery: Option<RecoverySet>,
    /// The factor a login asks for first, as the user chose it; None: no
    /// choice (SMS, or a call where `voice.first` says so).
    pub default_factor: Option<Factor>,
    /// A number the user proved, taking over from `phone` after the
    /// cool-down (self-service change; the old number was told).
    pub pending_phone: Option<PendingPhone>,
    /// When the user was last told that SMS is the weakest factor (Unix s).
    pub reminded: u64,
    /// Recent sign-ins and failures, newest last (`smsotp status`).
    pub history: Vec<HistoryEntry>,
    /// Enrolled at login while `enrollment.approval` is on, and not yet
    /// approved by an administrator: no login succeeds.
    pub awaiting_approval: bool,
    /// The shared store's revision this was read at: a write over a newer
    /// one is refused (postgres.rs). Files: always 0. Not in the file.
    pub revision: u64,
}

/// An authenticator app's secret (base32) and the last step it answered
/// with: a step is good once.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TotpFactor {
    pub secret: String,
    #[serde(default)]
    pub last_step: u64,
    #[serde(default)]
    pub created: u64,
}

impl fmt::Debug for TotpFactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TotpFactor([redacted], last_step {})", self.last_step)
    }
}

impl Drop for TotpFactor {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.secret);
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingPhone {
    pub phone: PhoneNumber,
    /// Unix seconds from which it replaces the current number.
    pub from: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryEntry {
    pub at: u64,
    /// "sign-in" or "failure".
    pub what: String,
    pub service: String,
    pub rhost: String,
}

/// Entries of [`UserRecord::history`] kept.
pub const HISTORY: usize = 10;

impl UserRecord {
    pub fn new(phone: PhoneNumber) -> Self {
        UserRecord {
            phone,
            failures: 0,
            locked_until: 0,
            trust: Vec::new(),
            totp: None,
            recovery: None,
            default_factor: None,
            pending_phone: None,
            reminded: 0,
            history: Vec::new(),
            awaiting_approval: false,
            revision: 0,
        }
    }

    /// The number codes go to at `now`: a proven new number once its
    /// cool-down is over.
    pub fn phone_at(&self, now: u64) -> &PhoneNumber {
        match &self.pending_phone {
            Some(p) if now >= p.from => &p.phone,
            _ => &self.phone,
        }
    }

    /// Makes a due number change permanent (before a save).
    pub fn settle(&mut self, now: u64) {
        if let Some(p) = self.pending_phone.take_if(|p| now >= p.from) {
            self.phone = p.phone;
        }
    }

    /// The factors this user can answer with, the default first.
    pub fn factors(&self) -> Vec<Factor> {
        let mut all = vec![Factor::Sms];
        if self.totp.is_some() {
            all.push(Factor::Totp);
        }
        if self.recovery.as_ref().is_some_and(|r| !r.hashes.is_empty()) {
            all.push(Factor::Recovery);
        }
        if let Some(i) = all.iter().position(|f| Some(*f) == self.default_factor) {
            all[..=i].rotate_right(1);
        }
        all
    }

    pub fn remember(&mut self, entry: HistoryEntry) {
        self.history.push(entry);
        if self.history.len() > HISTORY {
            let extra = self.history.len() - HISTORY;
            self.history.drain(..extra);
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OnDisk {
    version: u32,
    phone: String,
    #[serde(default)]
    failures: u32,
    #[serde(default)]
    locked_until: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    default_factor: Option<Factor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pending_phone: Option<String>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pending_from: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    reminded: u64,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    awaiting_approval: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    totp: Option<TotpFactor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    recovery: Option<RecoverySet>,
    #[serde(default)]
    trust: Vec<TrustRecord>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    history: Vec<HistoryEntry>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

pub fn parse_record(text: &str) -> Result<UserRecord, String> {
    let d: OnDisk = toml::from_str(text).map_err(|e| e.message().to_owned())?;
    if d.version != 1 {
        return Err(format!("unsupported record version {}", d.version));
    }
    let phone = PhoneNumber::parse(&d.phone).map_err(|e| format!("bad phone number: {e}"))?;
    for t in &d.trust {
        if t.class != "remote" && t.class != "local" {
            return Err(format!("bad trust class {:?}", t.class));
        }
    }
    let pending_phone = match d.pending_phone {
        Some(p) => Some(PendingPhone {
            phone: PhoneNumber::parse(&p).map_err(|e| format!("bad pending phone number: {e}"))?,
            from: d.pending_from,
        }),
        None => None,
    };
    if let Some(t) = &d.totp
        && crate::totp::from_base32(&t.secret).is_none_or(|s| s.len() < 10)
    {
        return Err("bad authenticator secret".into());
    }
    if let Some(f @ (Factor::Recovery | Factor::Totp)) = d.default_factor
        && (f == Factor::Recovery || d.totp.is_none())
    {
        return Err(format!("default_factor {:?} is not a factor this user has", f.wire()));
    }
    Ok(UserRecord {
        phone,
        failures: d.failures,
        locked_until: d.locked_until,
        trust: d.trust,
        totp: d.totp,
        recovery: d.recovery,
        default_factor: d.default_factor,
        pending_phone,
        reminded: d.reminded,
        history: d.history,
        awaiting_approval: d.awaiting_approval,
        revision: 0,
    })
}

/// The file's text; it holds the authenticator secret, so it is wiped
/// when dropped.
pub(crate) fn render_record(r: &UserRecord) -> Result<Zeroizing<String>, String> {
    let d = OnDisk {
        version: 1,
        phone: r.phone.e164().to_owned(),
        failures: r.failures,
        locked_until: r.locked_until,
        default_factor: r.default_factor,
        pending_phone: r.pending_phone.as_ref().map(|p| p.phone.e164().to_owned()),
        pending_from: r.pending_phone.as_ref().map_or(0, |p| p.from),
        reminded: r.reminded,
        awaiting_approval: r.awaiting_approval,
        totp: r.totp.clone(),
        recovery: r.recovery.clone(),
        trust: r.trust.clone(),
        history: r.history.clone(),
    };
    toml::to_string(&d).map(Zeroizing::new).map_err(|e| e.to_string())
}
