//! One login's pending code: how it is made, compared, counted and expired.
//!
//! Nothing here knows about D-Bus, files or providers; the daemon's
//! operations combine these pieces with the store and the provider.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use zeroize::Zeroizing;

use crate::clock::Tick;
use crate::random::fill_random;

/// A code of `len` decimal digits, uniformly distributed: bytes >= 250 are
/// thrown away so that `% 10` has no bias.
pub fn new_code(len: usize) -> std::io::Result<Zeroizing<String>> {
    let mut code = Zeroizing::new(String::with_capacity(len));
    let mut pool = Zeroizing::new([0u8; 32]);
    while code.len() < len {
        fill_random(&mut pool[..])?;
        for &b in pool.iter() {
            if b < 250 && code.len() < len {
                code.push(char::from(b'0' + b % 10));
            }
        }
    }
    Ok(code)
}

/// Compares without an early exit, so timing does not reveal how many
/// leading digits were right. Lengths are public (the code length is).
pub fn codes_equal(expected: &[u8], given: &[u8]) -> bool {
    if expected.len() != given.len() {
        return false;
    }
    let mut diff = 0u8;
    for (a, b) in expected.iter().zip(given) {
        diff |= std::hint::black_box(a ^ b);
    }
    std::hint::black_box(diff) == 0
}

/// Whether `s` could be a code at all: only ASCII digits (never other
/// scripts' digits), of an acceptable length.
pub fn is_code_shaped(s: &str, lengths: std::ops::RangeInclusive<usize>) -> bool {
    lengths.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
}

/// 128 random bits, hex: unguessable, and meaningless outside the daemon.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ChallengeId(String);

impl ChallengeId {
    pub fn new() -> std::io::Result<Self> {
        let mut b = [0u8; 16];
        fill_random(&mut b)?;
        Ok(ChallengeId(hex::encode(b)))
    }

    pub fn from_wire(s: &str) -> Option<Self> {
        (s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))).then(|| ChallengeId(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ChallengeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Half is enough to correlate log lines, and useless to a guesser.
        write!(f, "ChallengeId({}…)", &self.0[..8])
    }
}

/// Who checks the code.
pub enum Secret {
    /// We made it and compare it (Programmable Messaging, outbox).
    Local(Zeroizing<String>),
    /// The provider made it and checks it (Verify); we hold its reference.
    Remote { reference: String },
    /// Nobody was sent anything: unknown or unenrolled user, who must see
    /// the same prompts as everybody else. No answer ever matches.
    Decoy,
    /// No SMS yet: the login asked for the app first (UseFactor sends one).
    NotSent,
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Secret::Local(_) => "Local([redacted])",
            Secret::Remote { .. } => "Remote",
            Secret::Decoy => "Decoy",
            Secret::NotSent => "NotSent",
        })
    }
}

/// The limits one challenge lives under, from the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub expiry: Duration,
    pub attempts: u32,
    pub resend_interval: Duration,
    pub resends: u32,
}

#[derive(Debug)]
pub struct Challenge {
    /// The user as PAM named them (for decoys, possibly not a valid name).
    pub user: String,
    pub secret: Secret,
    pub destination: String,
    pub service: String,
    pub rhost: String,
    expires: Tick,
    attempts_left: u32,
    resends_left: u32,
    last_sent: Tick,
    /// A provider check is under way (Verify); a second must not overlap.
    pub in_flight: bool,
    /// Trust to record (or offer) once the right code is given.
    pub on_success: Option<crate::trust::TrustPlan>,
    /// The user, service and machine of the login: a new round of the same
    /// login (OpenSSH restarts keyboard-interactive after a failure) finds
    /// this challenge instead of sending another SMS.
    pub round: String,
    pub delivery: Delivery,
    /// When the code went out (Sent): for a decoy, when it would have,
    /// which may be ahead (pace.rs). The next call's answer is timed from
    /// here.
    pub sent_at: Tick,
    /// Enrollment at login (`unenrolled = "enroll"`, enroll.rs).
    pub enrolling: Enrolling,
    /// The factor answers are checked against now (UseFactor switches).
    pub factor: smsotp_proto::Factor,
    /// The factors this login may switch to.
    pub factors: Vec<smsotp_proto::Factor>,
    /// A right answer records that the user was told SMS is the weakest
    /// factor (the module shows it after success).
    pub remind: bool,
    /// A failure of this login is in the user's history already.
    pub failure_noted: bool,
    /// The route codes of this login go by: 0 the provider, n the n-th
    /// entry of `failover` (failover.rs).
    pub route: usize,
    /// This login failed over once already (it never does twice).
    pub failed_over: bool,
    limits: Limits,
}

/// Where an enrollment at login stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enrolling {
    /// An ordinary login.
    No,
    /// Waiting for the number (EnrollNumber).
    AwaitingNumber,
    /// The code went to this number; the right code enrolls it.
    Sent(crate::names::PhoneNumber),
}

/// What a wrong answer did to the challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterWrong {
    TryAgain { attempts_left: u32 },
    NoTriesLeft,
}

/// Whether the code has gone out (see delivery.rs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    Sent,
    /// The provider call is under way.
    Pending,
    /// The provider failed; the next call of the login gets this error.
    Failed(crate::error::LoginError),
}

/// Why a resend is not allowed right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResendRefused {
    TooSoon(Duration),
    NoneLeft,
}

impl Challenge {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        user: String,
        secret: Secret,
        destination: String,
        service: String,
        rhost: String,
        now: Tick,
        limits: Limits,
    ) -> Self {
        Challenge {
            user,
            secret,
            destination,
            service,
            rhost,
            expires: now.saturating_add(limits.expiry),
            attempts_left: limits.attempts,
            resends_left: limits.resends,
            last_sent: now,
            in_flight: false,
            on_success: None,
            round: String::new(),
            delivery: Delivery::Sent,
            sent_at: now,
            enrolling: Enrolling::No,
            factor: smsotp_proto::Factor::Sms,
            factors: vec![smsotp_proto::Factor::Sms],
            remind: false,
            failure_noted: false,
            route: 0,
            failed_over: false,
            limits,
        }
    }

    /// Exactly at the expiry instant the code is dead.
    pub fn is_expired(&self, now: Tick) -> bool {
        now >= self.expires
    }

    pub fn attempts_left(&self) -> u32 {
        self.attempts_left
    }

    /// Compares a locally made code; false for decoys and remote codes.
    /// The length of the code this challenge sent, which a reload that
    /// changes `codes.length` does not change.
    pub fn local_code_len(&self) -> Option<usize> {
        match &self.secret {
            Secret::Local(code) => Some(code.len()),
            Secret::Remote { .. } | Secret::Decoy | Secret::NotSent => None,
        }
    }

    pub fn matches_local(&self, given: &str) -> bool {
        match &self.secret {
            Secret::Local(code) => codes_equal(code.as_bytes(), given.as_bytes()),
            Secret::Remote { .. } | Secret::Decoy | Secret::NotSent => false,
        }
    }

    /// Counts a wrong answer.
    pub fn wrong(&mut self) -> AfterWrong {
        self.attempts_left = self.attempts_left.saturating_sub(1);
        if self.attempts_left == 0 {
            AfterWrong::NoTriesLeft
        } else {
            AfterWrong::TryAgain { attempts_left: self.attempts_left }
        }
    }

    pub fn resend_allowed(&self, now: Tick) -> Result<(), ResendRefused> {
        if self.resends_left == 0 {
            return Err(ResendRefused::NoneLeft);
        }
        let next = self.last_sent.saturating_add(self.limits.resend_interval);
        if now < next {
            return Err(ResendRefused::TooSoon(now.until(next)));
        }
        Ok(())
    }

    /// Replaces the secret for a resend. The old code is dead from this
    /// moment; the attempt count is deliberately kept (NIST SP 800-63B:
    /// a new secret never resets the failure count).
    pub fn resent(&mut self, secret: Secret, now: Tick) {
        self.secret = secret;
        self.resends_left = self.resends_left.saturating_sub(1);
        self.last_sent = now;
        self.expires = now.saturating_add(self.limits.expiry);
    }
}

/// All pending challenges, capped.
#[derive(Debug)]
pub struct Challenges {
    map: HashMap<ChallengeId, Challenge>,
    max: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

impl Challenges {
    pub fn new(max: usize) -> Self {
        Challenges { map: HashMap::new(), max }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// A new cap (after a reload); challenges beyond it stay until they end.
    pub fn set_max(&mut self, max: usize) {
        self.max = max;
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Drops expired challenges; returns them for the audit log.
    pub fn sweep(&mut self, now: Tick) -> Vec<Challenge> {
        let dead: Vec<ChallengeId> =
            self.map.iter().filter(|(_, c)| c.is_expired(now)).map(|(k, _)| k.clone()).collect();
        dead.into_iter().filter_map(|k| self.map.remove(&k)).collect()
    }

    pub fn insert(&mut self, id: ChallengeId, c: Challenge) -> Result<(), Full> {
        if self.map.len() >= self.max {
            return Err(Full);
        }
        self.map.insert(id, c);
        Ok(())
    }

    /// A challenge is found by its 128-bit random id alone (and only root
    /// may ask): the module connects for each call and holds nothing while
    /// the person types, so no connection can own it.
    pub fn get_mut(&mut self, id: &ChallengeId) -> Option<&mut Challenge> {
        self.map.get_mut(id)
    }

    pub fn remove(&mut self, id: &ChallengeId) -> Option<Challenge> {
        self.map.remove(id)
    }

    /// A live challenge of the same round whose code went out less than
    /// `within` ago: its id and masked destination. Its counts stay as they
    /// are (a new round never resets them).
    pub fn live_round(
        &self,
        round: &str,
        now: Tick,
        within: Duration,
    ) -> Option<(ChallengeId, String, Vec<smsotp_proto::Factor>)> {
        self.map
            .iter()
            .find(|(_, c)| {
                !c.round.is_empty()
                    && c.round == round
                    && !c.in_flight
                    && !matches!(c.delivery, Delivery::Failed(_))
                    && !c.is_expired(now)
                    && now < c.last_sent.saturating_add(within)
                    // A login whose number is still to come starts over.
                    && c.enrolling != Enrolling::AwaitingNumber
                    // Switched to another factor: the SMS prompt would lie.
                    && c.factor == smsotp_proto::Factor::Sms
            })
            .map(|(id, c)| (id.clone(), c.destination.clone(), c.factors.clone()))
    }

    /// Removes every challenge of `user` (unenroll, number change).
    pub fn remove_user(&mut self, user: &str) -> usize {
        let before = self.map.len();
        self.map.retain(|_, c| c.user != user);
        before - self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits { expiry: Duration::from_secs(300), attempts: 3, resend_interval: Duration::from_secs(30), resends: 3 }
    }

    fn t(secs: u64) -> Tick {
        Tick::from_duration(Duration::from_secs(secs))
    }

    fn local(code: &str, now: Tick) -> Challenge {
        Challenge::new(
            "alice".into(),
            Secret::Local(Zeroizing::new(code.into())),
            "******0123".into(),
            "sshd".into(),
            "192.0.2.1".into(),
            now,
            limits(),
        )
    }

    #[test]
    fn codes_have_the_right_shape_and_vary() {
        for len in 6..=10 {
            let c = new_code(len).unwrap();
            assert_eq!(c.len(), len);
            assert!(c.bytes().all(|b| b.is_ascii_digit()));
        }
        let a = new_code(10).unwrap();
        let b = new_code(10).unwrap();
        assert_ne!(*a, *b, "two 10-digit codes collided: the RNG is broken");
    }

    #[test]
    fn digits_are_roughly_uniform() {
        let mut counts = [0u32; 10];
        for _ in 0..2_000 {
            for b in new_code(10).unwrap().bytes() {
                counts[usize::from(b - b'0')] += 1;
            }
        }
        // 20,000 digits: each expected 2,000; 6 sigma is about 255.
        for (digit, n) in counts.iter().enumerate() {
            assert!((1_700..=2_300).contains(n), "digit {digit} seen {n} times: {counts:?}");
        }
    }

    #[test]
    fn comparison() {
        assert!(codes_equal(b"123456", b"123456"));
        assert!(!codes_equal(b"123456", b"123457"));
        assert!(!codes_equal(b"123456", b"12345"));
        assert!(!codes_equal(b"123456", b"1234567"));
        assert!(!codes_equal(b"123456", b""));
    }

    #[test]
    fn code_shape() {
        assert!(is_code_shaped("123456", 6..=6));
        for bad in ["", "12345", "1234567", "１２３４５６", "١٢٣٤٥٦", "12345a", " 12345", "12 456"] {
            assert!(!is_code_shaped(bad, 6..=6), "{bad:?}");
        }
    }

    #[test]
    fn ids_are_128_bit_hex() {
        let id = ChallengeId::new().unwrap();
        assert_eq!(id.as_str().len(), 32);
        assert_eq!(ChallengeId::from_wire(id.as_str()), Some(id.clone()));
        assert_eq!(ChallengeId::from_wire("../etc"), None);
        assert_eq!(ChallengeId::from_wire(&id.as_str().to_uppercase()), None);
        assert!(!format!("{id:?}").contains(id.as_str()));
    }

    #[test]
    fn expiry_is_exact() {
        let c = local("123456", t(0));
        assert!(!c.is_expired(t(299)));
        assert!(c.is_expired(t(300)));
    }

    #[test]
    fn attempts_run_out() {
        let mut c = local("123456", t(0));
        assert_eq!(c.wrong(), AfterWrong::TryAgain { attempts_left: 2 });
        assert_eq!(c.wrong(), AfterWrong::TryAgain { attempts_left: 1 });
        assert_eq!(c.wrong(), AfterWrong::NoTriesLeft);
        assert_eq!(c.wrong(), AfterWrong::NoTriesLeft);
    }

    #[test]
    fn resend_rules() {
        let mut c = local("111111", t(0));
        assert_eq!(c.resend_allowed(t(10)), Err(ResendRefused::TooSoon(Duration::from_secs(20))));
        assert_eq!(c.resend_allowed(t(30)), Ok(()));
        c.wrong();
        c.resent(Secret::Local(Zeroizing::new("222222".into())), t(30));
        assert!(!c.matches_local("111111"), "the old code dies at once");
        assert!(c.matches_local("222222"));
        assert_eq!(c.attempts_left(), 2, "a resend never resets the failure count");
        assert!(!c.is_expired(t(329)), "the new code has its own lifetime");
        c.resent(Secret::Local(Zeroizing::new("3".into())), t(60));
        c.resent(Secret::Local(Zeroizing::new("4".into())), t(90));
        assert_eq!(c.resend_allowed(t(1000)), Err(ResendRefused::NoneLeft));
    }

    #[test]
    fn decoys_never_match() {
        let mut c = local("123456", t(0));
        c.secret = Secret::Decoy;
        assert!(!c.matches_local(""));
        assert!(!c.matches_local("123456"));
    }

    #[test]
    fn table_is_capped_and_keyed_by_id() {
        let mut table = Challenges::new(2);
        let a = ChallengeId::new().unwrap();
        let b = ChallengeId::new().unwrap();
        table.insert(a.clone(), local("1", t(0))).unwrap();
        table.insert(b.clone(), local("2", t(100))).unwrap();
        assert_eq!(table.insert(ChallengeId::new().unwrap(), local("3", t(0))), Err(Full));
        assert!(table.get_mut(&ChallengeId::new().unwrap()).is_none(), "an unknown id finds nothing");
        assert!(table.get_mut(&a).is_some());
        let swept = table.sweep(t(300));
        assert_eq!(swept.len(), 1);
        assert_eq!(table.len(), 1);
        assert!(table.remove(&b).is_some());
        assert!(table.remove(&b).is_none(), "removed once");
        assert!(table.is_empty());
    }
}
