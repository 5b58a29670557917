//! Failover: when the provider cannot send a login's code, or a sent SMS
//! turns out undelivered within the code's life, the same code goes by the
//! next route of `failover` (another provider, or a call), once per login,
//! logged. Later messages of that login take the route that worked. A route
//! to a call makes the login's factor "voice": the next empty answer says
//! so ("A call with a new code ...").

use smsotp_proto::Factor;

use crate::audit::{self, Event};
use crate::challenge::{ChallengeId, Delivery};
use crate::daemon::Daemon;
use crate::delivery::SendJob;
use crate::error::LoginError;
use crate::provider::{Channel, DeliveryStatus, Provider};

/// A carrier that has not said "delivered" or "undelivered" after this many
/// polls will not say it in time to help.
const POLLS: usize = 12;

impl<P: Provider> Daemon<P> {
    /// Route `n`: 0 is the provider by SMS, then the failover entries.
    pub(crate) fn route(&self, n: usize) -> Option<(&P, Channel)> {
        match n {
            0 => Some((&self.provider, Channel::Sms)),
            n => self.failover.get(n - 1).map(|(p, c)| (p, *c)),
        }
    }

    /// Whether this login's code may still fail over: a login code we made
    /// (not an enrollment's, not Verify's), routes left, not failed over yet.
    pub(crate) fn may_fail_over(&self, id: &ChallengeId, job: &SendJob) -> bool {
        if self.failover.is_empty() || job.code.is_none() || !matches!(job.event, Event::CodeSent | Event::CodeResent) {
            return false;
        }
        self.lock().challenges.get_mut(id).is_some_and(|c| !c.failed_over && c.route < self.failover.len())
    }

    /// Tries the routes after the login's one, in order, with the same code.
    pub(crate) async fn fail_over(
        &self,
        id: &ChallengeId,
        job: &SendJob,
        reason: &str,
    ) -> Result<String, (LoginError, bool)> {
        let first = {
            let mut state = self.lock();
            let Some(c) = state.challenges.get_mut(id) else {
                return Err((LoginError::UnknownChallenge, false));
            };
            c.failed_over = true;
            c.route + 1
        };
        let code = job.code.as_deref().map(String::as_str);
        let mut last = Err((LoginError::DeliveryFailed(reason.to_owned()), false));
        for n in first..=self.failover.len() {
            let Some((provider, channel)) = self.route(n) else { break };
            audit::event(Event::Failover)
                .field("user", &job.user)
                .field("service", &job.ctx.service)
                .field("rhost", &job.ctx.rhost)
                .field("to", &job.phone.masked())
                .field("provider", provider.name())
                .field("channel", channel.name())
                .field("reason", reason)
                .log();
            last = self.deliver_via(provider, &job.user, &job.phone, code, &job.ctx, job.event, channel).await;
            // Sent, or sent without an answer (it may arrive; never a
            // second message for it): this route is the login's from now.
            if matches!(&last, Ok(_) | Err((_, true))) {
                if let Some(c) = self.lock().challenges.get_mut(id) {
                    c.route = n;
                    if channel == Channel::Voice {
                        c.factor = Factor::Voice;
                    }
                }
                return last;
            }
        }
        last
    }

    /// Asks the provider how a sent SMS fared, every `failover_poll`, while
    /// the code lives and at most [`POLLS`] times; an undelivered one fails
    /// over.
    pub(crate) async fn watch_delivery(&self, id: &ChallengeId, reference: String, job: SendJob) {
        // A call's fate is not watched: only what went by SMS, on an SMS route.
        if job.channel != Channel::Sms {
            return;
        }
        let Some((provider, Channel::Sms)) = self
            .lock()
            .challenges
            .get_mut(id)
            .and_then(|c| (!c.failed_over).then_some(c.route))
            .and_then(|n| self.route(n))
        else {
            return;
        };
        for _ in 0..POLLS {
            self.clock.sleep(self.cfg.failover_poll).await;
            let pending =
                self.lock().challenges.get_mut(id).is_some_and(|c| {
                    !c.failed_over && c.delivery == Delivery::Sent && !c.is_expired(self.clock.tick())
                });
            if !pending {
                return;
            }
            match provider.status(&reference, self.deadline()).await {
                Ok(DeliveryStatus::Delivered) | Ok(DeliveryStatus::Unknown) => return,
                Ok(DeliveryStatus::Pending) => {}
                Ok(DeliveryStatus::Undelivered) => {
                    let reason = "the provider reports the SMS undelivered";
                    if let Err((e, _)) = self.fail_over(id, &job, reason).await {
                        tracing::warn!("failover after an undelivered SMS failed: {e}");
                    }
                    return;
                }
                Err(e) => tracing::info!("{}: cannot learn how a message fared: {e}", provider.name()),
            }
        }
    }
}
