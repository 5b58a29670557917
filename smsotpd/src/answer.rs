//! Checking an answer: a right code, a wrong one, an expired challenge, a
//! user locked out meanwhile. Anything but the right digits counts as wrong.

use std::time::Duration;

use smsotp_proto::{Factor, Happening, Status, WireEnum};

use crate::audit::{self, Event};
use crate::authz::Root;
use crate::challenge::{self, AfterWrong, ChallengeId, Secret};
use crate::daemon::Offer;
use crate::daemon::VOLATILE_CAP;
use crate::daemon::{Answer, Daemon, State};
use crate::error::LoginError;
use crate::names::UserName;
use crate::pace::WRONG_FLOOR;
use crate::provider::{Provider, RemoteVerdict};
use crate::store::HistoryEntry;
use crate::turn::Turn;

/// A code the provider checks (Verify).
enum Remote {
    Ask(String),
    /// A decoy's: wrong, after as long as a recent real check took.
    Pretend(Duration),
}

impl<P: Provider> Daemon<P> {
    /// Checks an answer. Anything but the right digits counts as wrong.
    pub async fn check_code(&self, _root: &Root, id: &str, code: &str) -> Result<Answer, LoginError> {
        let id = Self::parse_id(id)?;
        if code.len() == crate::bypass::LENGTH {
            let began = self.clock.tick();
            let bypass = self.try_bypass(&id, code).await.transpose();
            if let Some(answer) = bypass {
                return self.pace_unless_accepted(began, WRONG_FLOOR, answer, Answer::is_accepted).await;
            }
        }
        // From here: an enrolled user's wrong code reaches the disk before
        // it is answered, a decoy's does not (pace.rs).
        let ready = self.delivered(&id).await?;
        let answer = async {
            let mut turn = self.turn(&id).await?;
            let answer = self.check_in_turn(&id, code, &mut turn).await;
            self.end_turn(turn, &id)?;
            answer
        }
        .await;
        self.pace_unless_accepted(ready, WRONG_FLOOR, answer, Answer::is_accepted).await
    }

    async fn check_in_turn(&self, id: &ChallengeId, code: &str, turn: &mut Turn) -> Result<Answer, LoginError> {
        let factor = self.lock().challenges.get_mut(id).map(|c| c.factor);
        match factor {
            None => return Err(LoginError::UnknownChallenge),
            Some(Factor::Totp) => return self.check_app(id, code, turn),
            Some(Factor::Recovery) => return self.check_recovery(id, code, turn).await,
            Some(Factor::Sms | Factor::Voice) => {}
        }
        let remote = {
            let mut state = self.lock();
            let Some(c) = state.challenges.get_mut(id) else {
                return Err(LoginError::UnknownChallenge);
            };
            if c.in_flight {
                return Err(LoginError::Busy);
            }
            if let Some(done) = self.expired_or_locked(&mut state, id, turn)? {
                return Ok(done);
            }
            let Some(c) = state.challenges.get_mut(id) else {
                return Err(LoginError::UnknownChallenge);
            };
            let shaped = challenge::is_code_shaped(code, 4..=10);
            match &c.secret {
                Secret::Remote { reference } if shaped => {
                    c.in_flight = true;
                    Remote::Ask(reference.clone())
                }
                // Where the provider checks codes, a decoy's takes as long.
                Secret::Decoy if shaped && self.provider.makes_codes() => {
                    c.in_flight = true;
                    Remote::Pretend(state.volatile.check_times.sample())
                }
                _ => {
                    let ok = c.local_code_len().is_some_and(|n| challenge::is_code_shaped(code, n..=n))
                        && c.matches_local(code);
                    return if ok { self.accept(&mut state, id, turn) } else { self.wrong(&mut state, id, turn) };
                }
            }
        };
        let verdict = match remote {
            Remote::Ask(reference) => {
                let began = self.clock.tick();
                let verdict = self.provider.check(&reference, code, self.deadline()).await;
                if verdict.is_ok() {
                    self.lock().volatile.check_times.note(began.until(self.clock.tick()));
                }
                verdict
            }
            Remote::Pretend(took) => {
                self.clock.sleep_until(self.clock.tick().saturating_add(took)).await;
                Ok(RemoteVerdict::Wrong)
            }
        };
        let mut state = self.lock();
        let Some(c) = state.challenges.get_mut(id) else {
            return Err(LoginError::UnknownChallenge);
        };
        c.in_flight = false;
        match verdict {
            Ok(RemoteVerdict::Approved) => self.accept(&mut state, id, turn),
            Ok(RemoteVerdict::Wrong) => self.wrong(&mut state, id, turn),
            Ok(RemoteVerdict::Gone) => {
                if let Some(c) = state.challenges.remove(id) {
                    audit::event(Event::Expired)
                        .field("user", &c.user)
                        .field("service", &c.service)
                        .field("rhost", &c.rhost)
                        .log();
                }
                Ok(Answer { status: Status::Expired, attempts_left: 0 })
            }
            Err(e) => {
                if let Some(c) = state.challenges.remove(id) {
                    audit::event(Event::ProviderFailure)
                        .field("user", &c.user)
                        .field("service", &c.service)
                        .field("rhost", &c.rhost)
                        .field("to", &c.destination)
                        .log();
                }
                tracing::warn!("{}: checking a code failed: {e}", self.provider.name());
                Err(LoginError::CheckFailed(e.to_string()))
            }
        }
    }

    /// An authenticator app's code, against the record read for this turn.
    fn check_app(&self, id: &ChallengeId, code: &str, turn: &mut Turn) -> Result<Answer, LoginError> {
        let mut state = self.lock();
        if let Some(done) = self.expired_or_locked(&mut state, id, turn)? {
            return Ok(done);
        }
        let now = self.clock.unix_now();
        let step = match &turn.record {
            Ok(Some(r)) => r.totp.as_ref().and_then(|t| {
                let secret = crate::totp::from_base32(&t.secret)?;
                crate::totp::verify(&secret, code, now, t.last_step)
            }),
            _ => None,
        };
        match (step, &mut turn.record) {
            (Some(step), Ok(Some(r))) => {
                if let Some(t) = &mut r.totp {
                    t.last_step = step;
                }
                // Replay protection holds only once the step is on disk.
                turn.must_persist = true;
                self.accept(&mut state, id, turn)
            }
            _ => self.wrong(&mut state, id, turn),
        }
    }

    /// A recovery code: one Argon2id, off the event loop and outside the
    /// lock; the user's turn keeps the record as read.
    async fn check_recovery(&self, id: &ChallengeId, code: &str, turn: &mut Turn) -> Result<Answer, LoginError> {
        {
            let mut state = self.lock();
            if let Some(done) = self.expired_or_locked(&mut state, id, turn)? {
                return Ok(done);
            }
        }
        let set = match &turn.record {
            Ok(Some(r)) => r.recovery.clone(),
            _ => None,
        };
        let typed = zeroize::Zeroizing::new(code.to_owned());
        let found = match set {
            Some(set) => tokio::task::spawn_blocking(move || crate::recovery::find(&set, &typed))
                .await
                .map_err(|e| LoginError::Internal(e.to_string()))?,
            None => None,
        };
        let mut state = self.lock();
        match (found, &mut turn.record) {
            (Some(i), Ok(Some(r))) => {
                if let Some(set) = &mut r.recovery {
                    set.hashes.remove(i);
                }
                // Single use holds only once the removal is on disk.
                turn.must_persist = true;
                self.accept(&mut state, id, turn)
            }
            _ => self.wrong(&mut state, id, turn),
        }
    }

    /// A break-glass code at the prompt, accepted whatever became of the SMS
    /// (that is what it is for). It records no trust for the machine. None:
    /// not the user's bypass code; the normal check counts it as wrong.
    async fn try_bypass(&self, id: &ChallengeId, code: &str) -> Result<Option<Answer>, LoginError> {
        let mut turn = self.turn(id).await?;
        {
            let mut state = self.lock();
            let Some(c) = state.challenges.get_mut(id) else {
                return Err(LoginError::UnknownChallenge);
            };
            if c.in_flight {
                return Err(LoginError::Busy);
            }
            if let Some(done) = self.expired_or_locked(&mut state, id, &mut turn)? {
                return Ok(Some(done));
            }
        }
        // Disk, outside the lock.
        if !self.take_bypass(&turn.user, code) {
            return Ok(None);
        }
        let answer = {
            let mut state = self.lock();
            if let Some(c) = state.challenges.get_mut(id) {
                c.on_success = None;
            }
            // Nor does it prove a number being enrolled.
            turn.enroll = None;
            self.accept(&mut state, id, &mut turn)
        };
        self.end_turn(turn, id)?;
        answer.map(Some)
    }

    /// Ends a challenge that expired or whose user got locked out meanwhile.
    pub(crate) fn expired_or_locked(
        &self,
        state: &mut State,
        id: &ChallengeId,
        turn: &mut Turn,
    ) -> Result<Option<Answer>, LoginError> {
        let now = self.clock.tick();
        let Some(c) = state.challenges.get_mut(id) else {
            return Err(LoginError::UnknownChallenge);
        };
        if c.is_expired(now) {
            if let Some(c) = state.challenges.remove(id) {
                audit::event(Event::Expired)
                    .field("user", &c.user)
                    .field("service", &c.service)
                    .field("rhost", &c.rhost)
                    .log();
            }
            return Ok(Some(Answer { status: Status::Expired, attempts_left: 0 }));
        }
        let user = c.user.clone();
        let locked = match &turn.name {
            None => state.volatile.decoy_failures.get(&user).is_some_and(|&(_, until)| until > self.clock.unix_now()),
            Some(_) => turn.pending(state, id)?.locked_until > self.clock.unix_now(),
        };
        if locked {
            state.challenges.remove(id);
            return Ok(Some(Answer { status: Status::LockedOut, attempts_left: 0 }));
        }
        Ok(None)
    }

    /// A right answer. The record's changes are written by `end_turn`.
    pub(crate) fn accept(&self, state: &mut State, id: &ChallengeId, turn: &mut Turn) -> Result<Answer, LoginError> {
        let Some(c) = state.challenges.remove(id) else {
            return Err(LoginError::UnknownChallenge);
        };
        turn.enroll_accepted = turn.enroll.is_some();
        audit::event(Event::Accepted)
            .field("user", &c.user)
            .field("service", &c.service)
            .field("rhost", &c.rhost)
            .field("to", &c.destination)
            .field("factor", c.factor.wire())
            .log();
        let Ok(name) = UserName::parse(&c.user) else {
            return Err(LoginError::Internal("accepted a code for an invalid name".into()));
        };
        let mut answer = Answer { status: Status::Accepted, attempts_left: c.attempts_left() };
        if turn.enroll_accepted && self.cfg.enrollment.as_ref().is_some_and(|e| e.approval) {
            // Proven, not yet allowed: no trust, no login.
            return Ok(Answer { status: Status::AwaitingApproval, attempts_left: 0 });
        }
        let mut plan = c.on_success;
        if let Some(p) = plan.take_if(|_| self.cfg.policy.ask_user) {
            answer = Answer { status: Status::AcceptedOfferTrust, attempts_left: p.days };
            let now = self.clock.tick();
            state.offers.retain(|_, o| o.until > now);
            let until = now.saturating_add(Duration::from_secs(120));
            state.offers.insert(id.clone(), Offer { user: name.clone(), plan: p, until });
        }
        if let Ok(Some(r)) = &mut turn.record {
            let before = r.clone();
            r.failures = 0;
            r.locked_until = 0;
            let now = self.clock.unix_now();
            r.remember(HistoryEntry {
                at: now,
                what: Happening::SignIn.wire().into(),
                service: c.service.clone(),
                rhost: c.rhost.clone(),
            });
            if c.remind {
                r.reminded = now;
            }
            if let Some(p) = &plan {
                self.add_trust(&mut r.trust, p);
            }
            if *r != before {
                turn.changed = true;
                turn.trust_recorded = plan.map(|p| (c.rhost.clone(), p));
            }
        }
        Ok(answer)
    }

    /// Counts a wrong answer on the challenge and on the user.
    pub(crate) fn wrong(&self, state: &mut State, id: &ChallengeId, turn: &mut Turn) -> Result<Answer, LoginError> {
        self.wrong_as(state, id, Status::Wrong, turn)
    }

    /// Counts a wrong answer on the challenge and on the user; the count
    /// must reach the disk (`end_turn`) or the call fails.
    pub(crate) fn wrong_as(
        &self,
        state: &mut State,
        id: &ChallengeId,
        status: Status,
        turn: &mut Turn,
    ) -> Result<Answer, LoginError> {
        let now = self.clock.unix_now();
        let lock_for = self.cfg.lockout.duration.as_secs();
        let Some(c) = state.challenges.get_mut(id) else {
            return Err(LoginError::UnknownChallenge);
        };
        let after = c.wrong();
        let (user, service, rhost, decoy) =
            (c.user.clone(), c.service.clone(), c.rhost.clone(), matches!(c.secret, Secret::Decoy));
        let line = |e: Event| audit::event(e).field("user", &user).field("service", &service).field("rhost", &rhost);
        line(Event::Wrong).log();
        let locked = match &turn.name {
            Some(_) if !decoy => {
                let failures = self.cfg.lockout.failures;
                let noted = std::mem::replace(&mut c.failure_noted, true);
                let r = turn.pending(state, id)?;
                if !noted {
                    r.remember(HistoryEntry {
                        at: now,
                        what: Happening::Failure.wire().into(),
                        service: service.clone(),
                        rhost: rhost.clone(),
                    });
                }
                r.failures = r.failures.saturating_add(1);
                let locked = r.failures >= failures;
                if locked {
                    r.failures = 0;
                    r.locked_until = now.saturating_add(lock_for);
                }
                turn.changed = true;
                turn.must_persist = true;
                locked
            }
            _ => {
                let v = &mut state.volatile.decoy_failures;
                if v.len() >= VOLATILE_CAP {
                    v.retain(|_, &mut (_, until)| until > now);
                }
                let entry = v.entry(user.clone()).or_insert((0, 0));
                entry.0 = entry.0.saturating_add(1);
                let locked = entry.0 >= self.cfg.lockout.failures;
                if locked {
                    *entry = (0, now.saturating_add(lock_for));
                }
                locked
            }
        };
        if locked {
            state.challenges.remove(id);
            line(Event::LockedOut).field("minutes", &(lock_for / 60).to_string()).log();
            return Ok(Answer { status: Status::LockedOut, attempts_left: 0 });
        }
        match after {
            AfterWrong::TryAgain { attempts_left } => Ok(Answer { status, attempts_left }),
            AfterWrong::NoTriesLeft => {
                state.challenges.remove(id);
                line(Event::TooManyTries).log();
                Ok(Answer { status: Status::TooManyTries, attempts_left: 0 })
            }
        }
    }
}
