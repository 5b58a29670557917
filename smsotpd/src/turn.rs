//! One call's turn with a user's record. A call that may change the record
//! (an answer, a resend) takes the user's turn, a per-user async lock, and
//! reads the record once, outside the global lock: no other call of that
//! user reads or writes it in between, and other users never wait on this
//! disk. Changes are written back after the global lock is released.

use std::sync::{Arc, Weak};

use tokio::sync::OwnedMutexGuard;

use crate::challenge::{ChallengeId, Enrolling, Secret};
use crate::daemon::{Daemon, State};
use crate::error::LoginError;
use crate::names::PhoneNumber;
use crate::names::UserName;
use crate::provider::Provider;
use crate::store::UserRecord;
use crate::trust::TrustPlan;

/// Per-user locks of calls in progress, dropped when no call holds them.
pub(crate) type Turns = std::collections::HashMap<String, Weak<tokio::sync::Mutex<()>>>;

pub(crate) struct Turn {
    _held: OwnedMutexGuard<()>,
    /// The challenge's user, as the login gave it.
    pub(crate) user: String,
    /// None for a decoy (unknown or unenrolled name): no record at all.
    pub(crate) name: Option<UserName>,
    /// Ok(None): unenrolled meanwhile. Err: unreadable, or the database
    /// is down (the error is logged).
    pub(crate) record: Result<Option<UserRecord>, LoginError>,
    pub(crate) changed: bool,
    /// A failed write must fail the call: an uncounted guess is a free one.
    pub(crate) must_persist: bool,
    /// Trust this call recorded (remote address, plan), audited once written.
    pub(crate) trust_recorded: Option<(String, TrustPlan)>,
    /// An enrollment at login whose code went to this number (enroll.rs).
    pub(crate) enroll: Option<(UserName, PhoneNumber)>,
    /// The right code came: enroll the number when the turn ends.
    pub(crate) enroll_accepted: bool,
}

impl Turn {
    /// The record of a pending login's user. Unenrolled meanwhile: nothing
    /// may succeed; unreadable: no login. Either way the challenge ends.
    pub(crate) fn pending(&mut self, state: &mut State, id: &ChallengeId) -> Result<&mut UserRecord, LoginError> {
        let name = self.name.as_ref().map(|n| n.to_string()).unwrap_or_default();
        match &mut self.record {
            Ok(Some(r)) => Ok(r),
            Ok(None) => {
                state.challenges.remove(id);
                Err(LoginError::UnknownChallenge)
            }
            Err(e @ LoginError::StoreUnavailable(_)) => {
                let e = e.clone();
                state.challenges.remove(id);
                Err(e)
            }
            Err(_) => {
                state.challenges.remove(id);
                Err(LoginError::Storage(format!("the record of {name} is unusable")))
            }
        }
    }
}

/// The lock of `user`'s turn, made when no call holds it.
fn turn_lock(state: &mut State, user: &str) -> Arc<tokio::sync::Mutex<()>> {
    if state.turns.len() >= 1024 {
        state.turns.retain(|_, w| w.strong_count() > 0);
    }
    match state.turns.get(user).and_then(Weak::upgrade) {
        Some(l) => l,
        None => {
            let l = Arc::new(tokio::sync::Mutex::new(()));
            state.turns.insert(user.to_owned(), Arc::downgrade(&l));
            l
        }
    }
}

impl<P: Provider> Daemon<P> {
    /// Waits for `user`'s turn, for a call that changes the record without
    /// a challenge (TrustMachine).
    pub(crate) async fn user_turn(&self, user: &str) -> OwnedMutexGuard<()> {
        let lock = turn_lock(&mut self.lock(), user);
        lock.lock_owned().await
    }

    /// Waits for `id`'s user's turn and reads the record once.
    pub(crate) async fn turn(&self, id: &ChallengeId) -> Result<Turn, LoginError> {
        let (user, decoy, enrolling, lock) = {
            let mut state = self.lock();
            let Some(c) = state.challenges.get_mut(id) else {
                return Err(LoginError::UnknownChallenge);
            };
            let (user, decoy) = (c.user.clone(), matches!(c.secret, Secret::Decoy));
            let enrolling = match &c.enrolling {
                Enrolling::Sent(p) => Some(p.clone()),
                _ => None,
            };
            let lock = turn_lock(&mut state, &user);
            (user, decoy, enrolling, lock)
        };
        let held = lock.lock_owned().await;
        // An enrolling user has no record yet: counted like a decoy until
        // the right code enrolls them.
        let name = if decoy || enrolling.is_some() { None } else { UserName::parse(&user).ok() };
        let enroll = if decoy { None } else { enrolling.and_then(|p| UserName::parse(&user).ok().map(|n| (n, p))) };
        let record = match &name {
            Some(n) => self.store.load(n).map_err(|e| {
                tracing::error!("{e}");
                LoginError::from(e)
            }),
            None => Ok(None),
        };
        Ok(Turn {
            _held: held,
            user,
            name,
            record,
            changed: false,
            must_persist: false,
            trust_recorded: None,
            enroll,
            enroll_accepted: false,
        })
    }

    /// Writes back what the call changed, outside the global lock. Err when
    /// a change that must last could not be written; the challenge ends.
    pub(crate) fn end_turn(&self, turn: Turn, id: &ChallengeId) -> Result<(), LoginError> {
        if let (true, Some((name, phone))) = (turn.enroll_accepted, &turn.enroll) {
            return self.enroll_at_login(name, phone);
        }
        let (Some(name), Ok(Some(record))) = (&turn.name, &turn.record) else {
            return Ok(());
        };
        if !turn.changed {
            return Ok(());
        }
        match self.store.save(name, record) {
            Ok(()) => {
                if let Some((rhost, plan)) = &turn.trust_recorded {
                    self.audit_trust_recorded(name, rhost, plan);
                }
                Ok(())
            }
            Err(e) if turn.must_persist => {
                self.lock().challenges.remove(id);
                tracing::error!("could not record a failed code for {name}: {e}");
                Err(LoginError::from(e))
            }
            // A higher failure count or a missing trust record are the safe
            // direction; the code was right.
            Err(e) => {
                tracing::error!("could not update the record of {name} after a right code: {e}");
                Ok(())
            }
        }
    }
}
