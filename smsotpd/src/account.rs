//! What users do for themselves (`smsotp`, interface org.smsotp.User1):
//! always on their own account, the one the bus says the caller runs as.
//! Each action can be switched off (`[self_service]`); each change is one
//! audit line. Proofs in progress (a code sent to a new number, an app's
//! secret waiting for its first code) live only in memory.

use std::sync::Arc;
use std::time::Duration;

use smsotp_proto::{AccountStatus, Factor, Happening, HistoryRow, LoginContext, Status, TrustRow, WireEnum};
use zeroize::Zeroizing;

use crate::audit::{self, Event};
use crate::authz::Caller;
use crate::challenge::{self, codes_equal};
use crate::clock::Tick;
use crate::daemon::{Daemon, VOLATILE_CAP};
use crate::error::LoginError;
use crate::names::{PhoneNumber, UserName};
use crate::provider::{Channel, Provider, RemoteVerdict};
use crate::store::{TotpFactor, UserRecord};
use crate::{recovery, totp};

/// A proof in progress, one per user and kind.
pub(crate) struct Proof {
    kind: ProofKind,
    expires: Tick,
    attempts_left: u32,
}

enum ProofKind {
    /// A code went to a new number (smsotp change-number).
    Number { phone: PhoneNumber, secret: NumberSecret },
    /// An app's secret, shown to the user, waiting for its first code.
    App { secret: Zeroizing<Vec<u8>> },
}

enum NumberSecret {
    Local(Zeroizing<String>),
    /// Twilio Verify made the code; it checks it.
    Remote(String),
}

/// Proofs in progress, by (user, kind).
pub(crate) type Proofs = std::collections::HashMap<(String, &'static str), Proof>;

const NUMBER: &str = "number";
const APP: &str = "app";
/// A user makes recovery codes at most this often.
const RECOVERY_INTERVAL: Duration = Duration::from_secs(60);
/// An app's secret waits this long for its first code.
const APP_PROOF_LIFE: Duration = Duration::from_secs(600);

/// What a history entry records, from the login's outcome.
pub(crate) fn history_row(e: &crate::store::HistoryEntry) -> HistoryRow {
    HistoryRow {
        at: e.at,
        what: Happening::from_wire(&e.what).unwrap_or(Happening::Failure),
        service: e.service.clone(),
        rhost: e.rhost.clone(),
    }
}

impl<P: Provider> Daemon<P> {
    fn self_service_on(&self, on: bool, key: &str) -> Result<(), LoginError> {
        if on {
            Ok(())
        } else {
            Err(LoginError::PermissionDenied(format!(
                "the administrator switched this off (self_service.{key} = false in smsotpd.toml)"
            )))
        }
    }

    /// The caller's record; refused when not enrolled or not approved yet.
    fn own_record(&self, user: &UserName) -> Result<UserRecord, LoginError> {
        match self.store.load(user) {
            Ok(Some(r)) if r.awaiting_approval => Err(LoginError::PermissionDenied(
                "your number waits for an administrator's approval (smsotpctl approve)".into(),
            )),
            Ok(Some(r)) => Ok(r),
            Ok(None) => Err(LoginError::NotEnrolled(format!(
                "{user} (SMS login is set up at your next login, or by an administrator)"
            ))),
            Err(e) => Err(LoginError::Storage(e.to_string())),
        }
    }

    /// Reads, changes and writes the caller's record in the user's turn,
    /// so that no login of theirs writes it in between.
    async fn change_own<T>(
        &self,
        user: &UserName,
        change: impl FnOnce(&mut UserRecord) -> Result<T, LoginError>,
    ) -> Result<T, LoginError> {
        let _turn = self.user_turn(user.as_str()).await;
        let mut record = self.own_record(user)?;
        let out = change(&mut record)?;
        record.settle(self.clock.unix_now());
        self.store.save(user, &record).map_err(LoginError::from)?;
        Ok(out)
    }

    pub fn account_status(&self, caller: &Caller) -> Result<AccountStatus, LoginError> {
        self.self_service_on(self.cfg.self_service.status, "status")?;
        let user = caller.user();
        let now = self.clock.unix_now();
        let r = match self.store.load(user) {
            Ok(Some(r)) => r,
            Ok(None) => {
                return Ok(AccountStatus {
                    user: user.to_string(),
                    enrolled: false,
                    destination: String::new(),
                    pending_destination: String::new(),
                    pending_from: 0,
                    factors: Vec::new(),
                    recovery_codes_left: 0,
                    failures: 0,
                    locked_until: 0,
                    awaiting_approval: false,
                    trusted: Vec::new(),
                    recent: Vec::new(),
                });
            }
            Err(e) => return Err(LoginError::from(e)),
        };
        let pending = r.pending_phone.as_ref().filter(|p| p.from > now);
        Ok(AccountStatus {
            user: user.to_string(),
            enrolled: true,
            destination: r.phone_at(now).masked(),
            pending_destination: pending.map(|p| p.phone.masked()).unwrap_or_default(),
            pending_from: pending.map_or(0, |p| p.from),
            factors: self.factors_of(&r),
            recovery_codes_left: recovery_left(&r),
            failures: r.failures,
            locked_until: if r.locked_until > now { r.locked_until } else { 0 },
            awaiting_approval: r.awaiting_approval,
            trusted: self.trust_rows(&r),
            recent: r.history.iter().map(history_row).collect(),
        })
    }

    /// Sends a code to the new number the caller typed; ConfirmNumber
    /// with that code proves it.
    pub async fn change_number(self: &Arc<Self>, caller: &Caller, typed: &str) -> Result<String, LoginError> {
        self.self_service_on(self.cfg.self_service.change_number, "change_number")?;
        let user = caller.user().clone();
        let record = self.own_record(&user)?;
        let phone = crate::enroll::normalize(typed).map_err(LoginError::InvalidArgument)?;
        self.check_new_number(&phone)?;
        if let Some(why) = self.line_type_refusal(&phone).await? {
            return Err(LoginError::InvalidArgument(format!("that number cannot be used: {why}")));
        }
        if phone == *record.phone_at(self.clock.unix_now()) {
            return Err(LoginError::InvalidArgument("that is already your number".into()));
        }
        let code = if self.provider.makes_codes() {
            None
        } else {
            Some(challenge::new_code(self.cfg.codes.length).map_err(|e| LoginError::Internal(e.to_string()))?)
        };
        {
            let mut state = self.lock();
            if !self.take_send_budget(&mut state, user.as_str()) {
                audit::event(Event::RateLimited).field("user", user.as_str()).field("service", "smsotp").log();
                return Err(LoginError::RateLimited);
            }
        }
        self.record_send(user.as_str());
        let ctx = LoginContext { service: "smsotp".into(), ..LoginContext::default() };
        let code_text = code.as_deref().map(String::as_str);
        let reference = self
            .deliver_via(&self.provider, user.as_str(), &phone, code_text, &ctx, Event::NumberCheckSent, Channel::Sms)
            .await
            .map_err(|(e, _)| e)?;
        let secret = match code {
            Some(c) => NumberSecret::Local(c),
            None => NumberSecret::Remote(reference),
        };
        let masked = phone.masked();
        let proof = Proof {
            kind: ProofKind::Number { phone, secret },
            expires: self.clock.tick().saturating_add(self.cfg.codes.expiry),
            attempts_left: self.cfg.codes.attempts,
        };
        self.put_proof(&user, NUMBER, proof);
        Ok(masked)
    }

    /// Numbers users give must pass the same lists as enrollment at login.
    fn check_new_number(&self, phone: &PhoneNumber) -> Result<(), LoginError> {
        let enrollment = self.cfg.enrollment.as_ref().map(|e| &e.countries);
        let listed = match (enrollment, &self.cfg.destinations) {
            (None, None) => {
                return Err(LoginError::PermissionDenied(
                    "no list of allowed countries is configured (enrollment.countries or destinations.countries); ask your administrator".into(),
                ));
            }
            (Some(e), _) => crate::limits::allowed(phone, e),
            (None, Some(_)) => true,
        };
        if listed && self.destination_allowed(phone) {
            Ok(())
        } else {
            Err(LoginError::InvalidArgument("numbers from that country cannot be used here".into()))
        }
    }

    fn put_proof(&self, user: &UserName, kind: &'static str, proof: Proof) {
        let mut state = self.lock();
        let now = self.clock.tick();
        if state.proofs.len() >= VOLATILE_CAP {
            state.proofs.retain(|_, p| p.expires > now);
        }
        state.proofs.insert((user.to_string(), kind), proof);
    }

    /// Takes a try of the caller's proof of `kind`: Err(status) when it is
    /// gone or expired.
    fn take_try(&self, user: &UserName, kind: &'static str) -> Result<(), (Status, u32)> {
        let mut state = self.lock();
        let key = (user.to_string(), kind);
        let now = self.clock.tick();
        match state.proofs.get_mut(&key) {
            None => Err((Status::Expired, 0)),
            Some(p) if p.expires <= now => {
                state.proofs.remove(&key);
                Err((Status::Expired, 0))
            }
            Some(p) => {
                p.attempts_left = p.attempts_left.saturating_sub(1);
                Ok(())
            }
        }
    }

    /// After a wrong code: tries left, or the proof ends.
    fn wrong_proof(&self, user: &UserName, kind: &'static str) -> (Status, u32) {
        let mut state = self.lock();
        let key = (user.to_string(), kind);
        let left = state.proofs.get(&key).map_or(0, |p| p.attempts_left);
        if left == 0 {
            state.proofs.remove(&key);
            (Status::TooManyTries, 0)
        } else {
            (Status::Wrong, left)
        }
    }

    /// The code sent to the new number. Right: the number takes over after
    /// the cool-down, the old number is told, trust records are revoked.
    /// Returns (status, tries left, when the new number takes over).
    pub async fn confirm_number(
        self: &Arc<Self>,
        caller: &Caller,
        code: &str,
    ) -> Result<(Status, u32, u64), LoginError> {
        self.self_service_on(self.cfg.self_service.change_number, "change_number")?;
        let user = caller.user().clone();
        self.own_record(&user)?;
        if let Err((status, left)) = self.take_try(&user, NUMBER) {
            return Ok((status, left, 0));
        }
        let checking = {
            let state = self.lock();
            match state.proofs.get(&(user.to_string(), NUMBER)).map(|p| &p.kind) {
                Some(ProofKind::Number { secret: NumberSecret::Local(c), phone }) => {
                    let ok = challenge::is_code_shaped(code, c.len()..=c.len())
                        && codes_equal(c.as_bytes(), code.as_bytes());
                    Ok((ok, phone.clone()))
                }
                Some(ProofKind::Number { secret: NumberSecret::Remote(reference), phone }) => {
                    Err((reference.clone(), phone.clone()))
                }
                _ => return Ok((Status::Expired, 0, 0)),
            }
        };
        let (right, phone) = match checking {
            Ok(done) => done,
            Err((reference, phone)) => {
                if !challenge::is_code_shaped(code, 4..=10) {
                    (false, phone)
                } else {
                    match self.provider.check(&reference, code, self.deadline()).await {
                        Ok(RemoteVerdict::Approved) => (true, phone),
                        Ok(RemoteVerdict::Wrong) => (false, phone),
                        Ok(RemoteVerdict::Gone) => {
                            self.lock().proofs.remove(&(user.to_string(), NUMBER));
                            return Ok((Status::Expired, 0, 0));
                        }
                        Err(e) => return Err(LoginError::CheckFailed(e.to_string())),
                    }
                }
            }
        };
        if !right {
            let (status, left) = self.wrong_proof(&user, NUMBER);
            return Ok((status, left, 0));
        }
        self.lock().proofs.remove(&(user.to_string(), NUMBER));
        let now = self.clock.unix_now();
        let from = now.saturating_add(self.cfg.self_service.cooldown.as_secs());
        let (old, revoked) = self
            .change_own(&user, |r| {
                let old = r.phone_at(now).clone();
                let revoked = r.trust.len();
                r.trust.clear();
                if from <= now {
                    r.phone = phone.clone();
                    r.pending_phone = None;
                } else {
                    r.pending_phone = Some(crate::store::PendingPhone { phone: phone.clone(), from });
                }
                Ok((old, revoked))
            })
            .await?;
        audit::event(Event::NumberChanged)
            .field("user", user.as_str())
            .field("uid", &caller.uid().to_string())
            .field("from_number", &old.masked())
            .field("to", &phone.masked())
            .field("effective", &crate::clock::format_utc(from))
            .field("trust_revoked", &revoked.to_string())
            .log();
        let body = if from <= now {
            format!(
                "The number for SMS login codes of {user} on {} was changed to {} at {}. If this was not you, tell your administrator now.",
                self.hostname,
                phone.masked(),
                crate::clock::format_utc(now)
            )
        } else {
            format!(
                "The number for SMS login codes of {user} on {} will change to {} at {} (asked at {}). Until then codes still come here. If this was not you, tell your administrator now.",
                self.hostname,
                phone.masked(),
                crate::clock::format_utc(from),
                crate::clock::format_utc(now)
            )
        };
        self.notify_old_number(&user, old, body);
        Ok((Status::Accepted, 0, from))
    }

    /// A new app secret for the caller to scan; ConfirmApp with its first
    /// code adds it. Returns (base32 secret, otpauth URI).
    pub fn add_app(&self, caller: &Caller) -> Result<(Zeroizing<String>, Zeroizing<String>), LoginError> {
        self.self_service_on(self.cfg.self_service.totp, "totp")?;
        let user = caller.user().clone();
        self.own_record(&user)?;
        let mut secret = Zeroizing::new(vec![0u8; totp::SECRET_BYTES]);
        crate::random::fill_random(&mut secret).map_err(|e| LoginError::Internal(e.to_string()))?;
        let b32 = Zeroizing::new(totp::base32(&secret));
        let uri = Zeroizing::new(totp::uri(&b32, user.as_str(), &self.hostname));
        let proof = Proof {
            kind: ProofKind::App { secret },
            expires: self.clock.tick().saturating_add(APP_PROOF_LIFE),
            attempts_left: self.cfg.codes.attempts,
        };
        self.put_proof(&user, APP, proof);
        Ok((b32, uri))
    }

    /// The app's first code: right, and the app is the caller's factor
    /// (and the one asked first).
    pub async fn confirm_app(&self, caller: &Caller, code: &str) -> Result<(Status, u32), LoginError> {
        self.self_service_on(self.cfg.self_service.totp, "totp")?;
        let user = caller.user().clone();
        self.own_record(&user)?;
        if let Err(ended) = self.take_try(&user, APP) {
            return Ok(ended);
        }
        let now = self.clock.unix_now();
        let step = {
            let state = self.lock();
            match state.proofs.get(&(user.to_string(), APP)).map(|p| &p.kind) {
                Some(ProofKind::App { secret }) => {
                    totp::verify(secret, code, now, 0).map(|s| (s, totp::base32(secret)))
                }
                _ => return Ok((Status::Expired, 0)),
            }
        };
        let Some((step, b32)) = step else {
            return Ok(self.wrong_proof(&user, APP));
        };
        self.lock().proofs.remove(&(user.to_string(), APP));
        self.change_own(&user, |r| {
            r.totp = Some(TotpFactor { secret: b32, last_step: step, created: now });
            r.default_factor = Some(Factor::Totp);
            Ok(())
        })
        .await?;
        audit::event(Event::AppAdded).field("user", user.as_str()).field("uid", &caller.uid().to_string()).log();
        Ok((Status::Accepted, 0))
    }

    /// Ten new recovery codes, shown once; the old set stops working.
    pub async fn new_recovery_codes(&self, caller: &Caller) -> Result<Vec<Zeroizing<String>>, LoginError> {
        self.self_service_on(self.cfg.self_service.recovery_codes, "recovery_codes")?;
        let user = caller.user().clone();
        self.own_record(&user)?;
        {
            let mut state = self.lock();
            let tick = self.clock.tick();
            let made = &mut state.volatile.recovery_made;
            if made.get(user.as_str()).is_some_and(|t| t.saturating_add(RECOVERY_INTERVAL) > tick) {
                return Err(LoginError::RateLimited);
            }
            if made.len() >= VOLATILE_CAP {
                made.retain(|_, t| t.saturating_add(RECOVERY_INTERVAL) > tick);
            }
            made.insert(user.to_string(), tick);
        }
        let now = self.clock.unix_now();
        // Ten Argon2id hashes: off the event loop.
        let (codes, set) = tokio::task::spawn_blocking(move || recovery::generate(now))
            .await
            .map_err(|e| LoginError::Internal(e.to_string()))?
            .map_err(|e| LoginError::Internal(e.to_string()))?;
        let replaced = self
            .change_own(&user, |r| {
                let replaced = r.recovery.replace(set).is_some();
                Ok(replaced)
            })
            .await?;
        audit::event(Event::RecoveryCodesIssued)
            .field("user", user.as_str())
            .field("uid", &caller.uid().to_string())
            .field("replaced", if replaced { "yes" } else { "no" })
            .log();
        Ok(codes)
    }

    pub async fn set_default_factor(&self, caller: &Caller, factor: Factor) -> Result<(), LoginError> {
        let user = caller.user().clone();
        self.change_own(&user, |r| {
            match factor {
                Factor::Sms => {}
                Factor::Voice if self.cfg.voice.is_some() => {}
                Factor::Voice => {
                    return Err(LoginError::InvalidArgument(
                        "this server places no calls (no [voice] in its configuration)".into(),
                    ));
                }
                Factor::Totp if r.totp.is_some() => {}
                Factor::Totp => {
                    return Err(LoginError::InvalidArgument(
                        "you have no authenticator app yet; add one with: smsotp totp".into(),
                    ));
                }
                Factor::Recovery => {
                    return Err(LoginError::InvalidArgument(
                        "recovery codes are for when nothing else works; they cannot be the default".into(),
                    ));
                }
            }
            r.default_factor = Some(factor);
            Ok(())
        })
        .await?;
        audit::event(Event::DefaultFactorSet).field("user", user.as_str()).field("factor", factor.wire()).log();
        Ok(())
    }

    pub fn my_trust(&self, caller: &Caller) -> Result<Vec<TrustRow>, LoginError> {
        self.self_service_on(self.cfg.self_service.trust, "trust")?;
        let r = self.own_record(caller.user())?;
        Ok(self.trust_rows(&r))
    }

    /// Revokes one of the caller's machines (its id) or, with "", all.
    pub async fn revoke_my_trust(&self, caller: &Caller, machine: &str) -> Result<u32, LoginError> {
        self.self_service_on(self.cfg.self_service.trust, "trust")?;
        let user = caller.user().clone();
        let _turn = self.user_turn(user.as_str()).await;
        self.revoke_trust_of(&user, machine)
    }
}

pub(crate) fn recovery_left(r: &UserRecord) -> u32 {
    r.recovery.as_ref().map_or(0, |s| u32::try_from(s.hashes.len()).unwrap_or(u32::MAX))
}
