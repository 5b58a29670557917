//! An empty answer: a new code if the limits allow it, otherwise a wrong
//! answer. A resend never resets the failure count. And Cancel.

use std::time::Duration;

use smsotp_proto::{LoginContext, Status};
use zeroize::Zeroizing;

use crate::audit::{self, Event};
use crate::authz::Root;
use crate::challenge::{self, ResendRefused, Secret};
use crate::daemon::{Answer, Daemon};
use crate::error::LoginError;
use crate::names::{UserName, sanitize_for_log};
use crate::provider::Provider;

/// What a resend will do once the lock is released.
enum Resend {
    Decoy { attempts_left: u32, wait: Duration },
    Local(Zeroizing<String>),
    Remote,
}

impl<P: Provider> Daemon<P> {
    /// An empty answer: a new code if allowed, otherwise a wrong answer.
    pub async fn resend(&self, _root: &Root, id: &str) -> Result<Answer, LoginError> {
        let id = Self::parse_id(id)?;
        let (user, ctx, plan) = {
            let mut state = self.lock();
            if let Some(done) = self.expired_or_locked(&mut state, &id)? {
                return Ok(done);
            }
            let now = self.clock.tick();
            let Some(c) = state.challenges.get_mut(&id) else {
                return Err(LoginError::UnknownChallenge);
            };
            if c.in_flight {
                return Err(LoginError::Busy);
            }
            let user = c.user.clone();
            if let Err(why) = c.resend_allowed(now) {
                if let ResendRefused::TooSoon(d) = why {
                    tracing::info!("resend for {} refused: next one in {} s", sanitize_for_log(&user), d.as_secs());
                }
                return self.wrong_as(&mut state, &id, Status::ResendRefused);
            }
            if !self.take_send_budget(&mut state, &user) {
                return self.wrong_as(&mut state, &id, Status::ResendRefused);
            }
            let Some(c) = state.challenges.get_mut(&id) else {
                return Err(LoginError::UnknownChallenge);
            };
            let ctx = LoginContext { service: c.service.clone(), rhost: c.rhost.clone(), ..LoginContext::default() };
            match &c.secret {
                Secret::Decoy => {
                    c.resent(Secret::Decoy, now);
                    (user, ctx, Resend::Decoy { attempts_left: c.attempts_left(), wait: state.send_latency })
                }
                Secret::Local(_) => {
                    // The old code dies now, before anything is sent.
                    let code =
                        challenge::new_code(self.cfg.codes.length).map_err(|e| LoginError::Internal(e.to_string()))?;
                    c.resent(Secret::Local(code.clone()), now);
                    c.in_flight = true;
                    (user, ctx, Resend::Local(code))
                }
                Secret::Remote { reference } => {
                    let reference = reference.clone();
                    c.resent(Secret::Remote { reference }, now);
                    c.in_flight = true;
                    (user, ctx, Resend::Remote)
                }
            }
        };
        let (new_code, remote) = match plan {
            Resend::Decoy { attempts_left, wait } => {
                self.clock.sleep(wait).await;
                return Ok(Answer { status: Status::Resent, attempts_left });
            }
            Resend::Local(code) => (Some(code), false),
            Resend::Remote => (None, true),
        };
        let phone = match UserName::parse(&user).ok().and_then(|n| self.store.load(&n).ok().flatten()) {
            Some(r) => r.phone,
            None => {
                self.lock().challenges.remove(&id);
                return Err(LoginError::UnknownChallenge);
            }
        };
        let sent = self
            .deliver(&user, &phone, new_code.as_deref().map(String::as_str), &ctx, Event::CodeResent)
            .await
            .map_err(|(e, _)| e);
        let mut state = self.lock();
        match sent {
            Ok(reference) => {
                let Some(c) = state.challenges.get_mut(&id) else {
                    return Err(LoginError::UnknownChallenge);
                };
                c.in_flight = false;
                if remote {
                    c.secret = Secret::Remote { reference };
                }
                Ok(Answer { status: Status::Resent, attempts_left: c.attempts_left() })
            }
            Err(e) => {
                state.challenges.remove(&id);
                Err(e)
            }
        }
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
