//! Switching factor at the prompt ('s', 't', 'r'): answers then go to the
//! factor asked for. The challenge, its tries and the user's failure count
//! go on unchanged, so switching gives no extra guesses.

use std::sync::Arc;

use smsotp_proto::{Factor, LoginContext, Status, WireEnum};

use crate::audit::{self, Event};
use crate::authz::Root;
use crate::challenge::{self, ChallengeId, Delivery, Secret};
use crate::clock::Tick;
use crate::daemon::{Answer, Daemon};
use crate::delivery::SendJob;
use crate::error::LoginError;
use crate::pace::WRONG_FLOOR;
use crate::provider::{Channel, Provider};

impl<P: Provider> Daemon<P> {
    /// Returns the answer (`Switched`, tries left) and, for SMS, the masked
    /// number the code went to. The first switch to SMS of a login that
    /// asked for the app first sends the code (within the SMS budgets).
    pub async fn use_factor(
        self: &Arc<Self>,
        _root: &Root,
        id: &str,
        factor: Factor,
    ) -> Result<(Answer, String), LoginError> {
        let id = Self::parse_id(id)?;
        // A refused call counts as a wrong answer: paced like one (pace.rs).
        let ready = self.delivered(&id).await?;
        let answer = self.switch_factor(id, factor, ready).await;
        self.pace(ready, WRONG_FLOOR).await;
        answer
    }

    async fn switch_factor(
        self: &Arc<Self>,
        id: ChallengeId,
        factor: Factor,
        since: Tick,
    ) -> Result<(Answer, String), LoginError> {
        let mut turn = self.turn(&id).await?;
        let code_sent = self
            .lock()
            .challenges
            .get_mut(&id)
            .is_some_and(|c| !matches!(c.secret, Secret::NotSent) && c.factors.contains(&factor));
        if factor == Factor::Voice && code_sent {
            // A call with a new code: a resend, by the resend rules.
            let result = self.resend_in_turn(&id, &mut turn, true, since);
            let user = turn.user.clone();
            self.end_turn(turn, &id)?;
            let (answer, job) = result?;
            if answer.status != Status::ResentByCall {
                return Ok((answer, String::new()));
            }
            let destination = self.lock().challenges.get_mut(&id).map(|c| c.destination.clone()).unwrap_or_default();
            // A decoy's call counts in the budgets like a real one.
            self.record_send(&user);
            if let Some(job) = job {
                self.send_in_background(id, job);
            }
            audit::event(Event::FactorSwitched).field("user", &user).field("factor", factor.wire()).log();
            return Ok((Answer { status: Status::Switched, ..answer }, destination));
        }
        let mut job = None;
        let result = (|| {
            let mut state = self.lock();
            if let Some(done) = self.expired_or_locked(&mut state, &id, &mut turn)? {
                return Ok((done, String::new()));
            }
            let Some(c) = state.challenges.get_mut(&id) else {
                return Err(LoginError::UnknownChallenge);
            };
            if c.in_flight {
                return Err(LoginError::Busy);
            }
            if !c.factors.contains(&factor) {
                return Err(LoginError::InvalidArgument(format!(
                    "this login cannot be answered with {}",
                    factor.wire()
                )));
            }
            let (user, service, rhost) = (c.user.clone(), c.service.clone(), c.rhost.clone());
            c.factor = factor;
            let by_phone = matches!(factor, Factor::Sms | Factor::Voice);
            let destination = if by_phone { c.destination.clone() } else { String::new() };
            let first_sms = by_phone && matches!(c.secret, Secret::NotSent);
            let left = c.attempts_left();
            audit::event(Event::FactorSwitched)
                .field("user", &user)
                .field("service", &service)
                .field("rhost", &rhost)
                .field("factor", factor.wire())
                .log();
            if first_sms {
                if !self.take_send_budget(&mut state, &user) {
                    return Err(LoginError::RateLimited);
                }
                let phone = match &turn.record {
                    Ok(Some(r)) => r.phone_at(self.clock.unix_now()).clone(),
                    _ => return Err(LoginError::UnknownChallenge),
                };
                let code = if self.provider.makes_codes() {
                    None
                } else {
                    Some(challenge::new_code(self.cfg.codes.length).map_err(|e| LoginError::Internal(e.to_string()))?)
                };
                let Some(c) = state.challenges.get_mut(&id) else {
                    return Err(LoginError::UnknownChallenge);
                };
                c.secret = match &code {
                    Some(code) => Secret::Local(code.clone()),
                    None => Secret::Remote { reference: String::new() },
                };
                c.delivery = Delivery::Pending;
                let ctx = LoginContext { service, rhost, ..LoginContext::default() };
                let channel = if factor == Factor::Voice { Channel::Voice } else { Channel::Sms };
                job = Some(SendJob { user, phone, code, ctx, event: Event::CodeSent, round: None, channel, since });
            }
            Ok((Answer { status: Status::Switched, attempts_left: left }, destination))
        })();
        let user = turn.user.clone();
        self.end_turn(turn, &id)?;
        if let Some(job) = job {
            self.record_send(&user);
            self.send_in_background(id, job);
        }
        result
    }
}
