//! An empty answer: a new code if the limits allow it, otherwise a wrong
//! answer. A resend never resets the failure count. And Cancel.

use std::sync::Arc;

use smsotp_proto::{Factor, LoginContext, Status};

use crate::audit::{self, Event};
use crate::authz::Root;
use crate::challenge::{self, ChallengeId, Delivery, ResendRefused, Secret};
use crate::clock::Tick;
use crate::daemon::{Answer, Daemon};
use crate::delivery::{SendJob, pretend_sent};
use crate::error::LoginError;
use crate::names::sanitize_for_log;
use crate::pace::WRONG_FLOOR;
use crate::provider::{Channel, Provider};
use crate::turn::Turn;

impl<P: Provider> Daemon<P> {
    /// An empty answer: a new code if allowed, otherwise a wrong answer.
    /// Like StartLogin it answers before the provider does (delivery.rs).
    pub async fn resend(self: &Arc<Self>, _root: &Root, id: &str) -> Result<Answer, LoginError> {
        let id = Self::parse_id(id)?;
        // A refused resend counts as a wrong answer, written durably for
        // enrolled users only: paced like one (pace.rs).
        let ready = self.delivered(&id).await?;
        let answer = async {
            let mut turn = self.turn(&id).await?;
            let result = self.resend_in_turn(&id, &mut turn, false, ready);
            let user = turn.user.clone();
            self.end_turn(turn, &id)?;
            let (answer, job) = result?;
            if matches!(answer.status, Status::Resent | Status::ResentByCall) {
                self.record_send(&user);
            }
            if let Some(job) = job {
                self.send_in_background(id.clone(), job);
            }
            Ok(answer)
        }
        .await;
        self.pace(ready, WRONG_FLOOR).await;
        answer
    }

    /// The answer, and the message to send once the turn is over. With
    /// `to_voice` (UseFactor "voice"), the new code comes by a call from now
    /// on; otherwise by the login's channel. `since`: when the call began.
    pub(crate) fn resend_in_turn(
        &self,
        id: &ChallengeId,
        turn: &mut Turn,
        to_voice: bool,
        since: Tick,
    ) -> Result<(Answer, Option<SendJob>), LoginError> {
        let id = id.clone();
        let mut state = self.lock();
        if let Some(done) = self.expired_or_locked(&mut state, &id, turn)? {
            return Ok((done, None));
        }
        let now = self.clock.tick();
        let Some(c) = state.challenges.get_mut(&id) else {
            return Err(LoginError::UnknownChallenge);
        };
        if c.in_flight || c.delivery != Delivery::Sent {
            return Err(LoginError::Busy);
        }
        let user = c.user.clone();
        // Answering with the app: no SMS to repeat (UseFactor sends one).
        let by_phone = matches!(c.factor, Factor::Sms | Factor::Voice) || to_voice;
        if matches!(c.secret, Secret::NotSent) || !by_phone {
            return self.wrong_as(&mut state, &id, Status::ResendRefused, turn).map(|a| (a, None));
        }
        if let Err(why) = c.resend_allowed(now) {
            if let ResendRefused::TooSoon(d) = why {
                tracing::info!("resend for {} refused: next one in {} s", sanitize_for_log(&user), d.as_secs());
            }
            return self.wrong_as(&mut state, &id, Status::ResendRefused, turn).map(|a| (a, None));
        }
        if !self.take_send_budget(&mut state, &user) {
            return self.wrong_as(&mut state, &id, Status::ResendRefused, turn).map(|a| (a, None));
        }
        let phone = match &state.challenges.get_mut(&id).map(|c| matches!(c.secret, Secret::Decoy)) {
            Some(true) => None,
            Some(false) => match (&turn.enroll, &turn.record) {
                (Some((_, phone)), _) => Some(phone.clone()),
                (None, Ok(Some(r))) => Some(r.phone_at(self.clock.unix_now()).clone()),
                _ => {
                    state.challenges.remove(&id);
                    return Err(LoginError::UnknownChallenge);
                }
            },
            None => return Err(LoginError::UnknownChallenge),
        };
        let Some(c) = state.challenges.get_mut(&id) else {
            return Err(LoginError::UnknownChallenge);
        };
        if to_voice {
            c.factor = Factor::Voice;
        }
        let (channel, status) = match c.factor {
            Factor::Voice => (Channel::Voice, Status::ResentByCall),
            _ => (Channel::Sms, Status::Resent),
        };
        let ctx = LoginContext { service: c.service.clone(), rhost: c.rhost.clone(), ..LoginContext::default() };
        let code = match &c.secret {
            Secret::Decoy => {
                c.resent(Secret::Decoy, now);
                let answer = Answer { status, attempts_left: c.attempts_left() };
                pretend_sent(&mut state, &id, since);
                return Ok((answer, None));
            }
            Secret::Local(_) => {
                // The old code dies now, before anything is sent.
                let code =
                    challenge::new_code(self.cfg.codes.length).map_err(|e| LoginError::Internal(e.to_string()))?;
                c.resent(Secret::Local(code.clone()), now);
                Some(code)
            }
            Secret::Remote { reference } => {
                let reference = reference.clone();
                c.resent(Secret::Remote { reference }, now);
                None
            }
            Secret::NotSent => return Err(LoginError::Internal("a resend of a code never sent".into())),
        };
        c.delivery = Delivery::Pending;
        let answer = Answer { status, attempts_left: c.attempts_left() };
        drop(state);
        let Some(phone) = phone else {
            return Err(LoginError::Internal("a resend without a number".into()));
        };
        let event = if turn.enroll.is_some() { Event::EnrollCodeSent } else { Event::CodeResent };
        let job = SendJob { user, phone, code, ctx, event, round: None, channel, since };
        Ok((answer, Some(job)))
    }

    pub fn cancel(&self, _root: &Root, id: &str) -> Result<(), LoginError> {
        let id = Self::parse_id(id)?;
        match self.lock().challenges.remove(&id) {
            Some(c) => {
                audit::event(Event::Cancelled)
                    .field("user", &c.user)
                    .field("service", &c.service)
                    .field("rhost", &c.rhost)
                    .log();
                Ok(())
            }
            None => Err(LoginError::UnknownChallenge),
        }
    }
}
