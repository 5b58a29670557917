//! Sending in the background, so that no answer's timing tells anything.
//!
//! StartLogin and Resend answer as soon as the challenge exists, for
//! enrolled users and decoys alike; the provider call runs on its own task
//! and records its outcome on the challenge. The next call of the login
//! (CheckCode, Resend) waits for that outcome, so a failed send surfaces
//! there. A provider call always ends by the deadline (codes.deadline).

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures_lite::FutureExt;
use smsotp_proto::LoginContext;
use zeroize::Zeroizing;

use crate::audit::Event;
use crate::challenge::{ChallengeId, Delivery, Secret};
use crate::clock::Tick;
use crate::daemon::{Daemon, State};
use crate::error::LoginError;
use crate::names::PhoneNumber;
use crate::provider::{Channel, Provider};

/// One message to send for a challenge.
pub(crate) struct SendJob {
    pub(crate) user: String,
    pub(crate) phone: PhoneNumber,
    /// None when the provider makes the code (Verify).
    pub(crate) code: Option<Zeroizing<String>>,
    pub(crate) ctx: LoginContext,
    pub(crate) event: Event,
    /// The login's round (StartLogin only): a failure there spares the
    /// provider the next rounds for a while.
    pub(crate) round: Option<String>,
    pub(crate) channel: Channel,
    /// When the call that sends it came in: a send's time counts from
    /// there, work before the send included, and so does a decoy's
    /// (pace.rs).
    pub(crate) since: Tick,
}

impl SendJob {
    /// The same message again (a failover route carries the same code).
    pub(crate) fn again(&self) -> SendJob {
        SendJob {
            user: self.user.clone(),
            phone: self.phone.clone(),
            code: self.code.clone(),
            ctx: self.ctx.clone(),
            event: self.event,
            round: self.round.clone(),
            channel: self.channel,
            since: self.since,
        }
    }
}

/// A decoy's send (unknown names, unenrolled users refused) for
/// challenge `id`: nothing leaves, and the challenge counts as sent as long
/// after `since` (when the call came in) as a recent real send took after
/// its call came in, the work before it included. The next call of the
/// login is timed from then (pace.rs): on the clock, not from a timer's
/// wake-up, which would land on the timer's tick where a provider's answer
/// does not. Under the lock, in the same step that makes or resends the
/// challenge, so no call ever waits on it.
pub(crate) fn pretend_sent(state: &mut State, id: &ChallengeId, since: Tick) {
    let took = state.volatile.send_times.sample();
    if let Some(c) = state.challenges.get_mut(id) {
        c.delivery = Delivery::Sent;
        c.sent_at = since.saturating_add(took);
    }
}

impl<P: Provider> Daemon<P> {
    /// Starts sending for challenge `id`, whose delivery must be Pending.
    pub(crate) fn send_in_background(self: &Arc<Self>, id: ChallengeId, job: SendJob) {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let work = async {
                if let Some((reference, job)) = this.finish_send(&id, job).await {
                    this.watch_delivery(&id, reference, job).await;
                }
            };
            let done = AssertUnwindSafe(work).catch_unwind().await;
            if done.is_err() {
                tracing::error!("sending a code failed unexpectedly; the login is refused");
                if let Some(c) = this.lock().challenges.get_mut(&id) {
                    c.delivery = Delivery::Failed(LoginError::Internal("sending failed unexpectedly".into()));
                }
                this.deliveries.notify_waiters();
            }
        });
    }

    /// Sends by the login's route, failing over where configured; the
    /// reference and the job when the delivery is worth watching.
    async fn finish_send(&self, id: &ChallengeId, job: SendJob) -> Option<(String, SendJob)> {
        let route = self.lock().challenges.get_mut(id).map_or(0, |c| c.route);
        let code = job.code.as_deref().map(String::as_str);
        let mut sent = match self.route(route) {
            Some((provider, channel)) => {
                let channel = if job.channel == Channel::Voice { Channel::Voice } else { channel };
                self.deliver_via(provider, &job.user, &job.phone, code, &job.ctx, job.event, channel).await
            }
            None => Err((LoginError::Internal("no such route".into()), false)),
        };
        if let Err((e, false)) = &sent
            && self.may_fail_over(id, &job)
        {
            sent = self.fail_over(id, &job, &e.to_string()).await;
        }
        let watch = match &sent {
            Ok(reference) if self.may_fail_over(id, &job) => Some((reference.clone(), job.again())),
            _ => None,
        };
        {
            let mut state = self.lock();
            let now = self.clock.tick();
            if let (Err((_, false)), Some(round)) = (&sent, &job.round) {
                state.failed_rounds.insert(round.clone(), now);
            }
            let mut went_out = false;
            if let Some(c) = state.challenges.get_mut(id) {
                c.delivery = match sent {
                    Ok(reference) => {
                        if let Secret::Remote { reference: r } = &mut c.secret {
                            *r = reference;
                        }
                        Delivery::Sent
                    }
                    // Sent but not answered in time: the SMS may still come,
                    // and the code it carries is the one we hold.
                    Err((_, true)) if job.code.is_some() => Delivery::Sent,
                    Err((e, _)) => Delivery::Failed(e),
                };
                if c.delivery == Delivery::Sent {
                    c.sent_at = now;
                    went_out = true;
                }
            }
            if went_out {
                state.volatile.send_times.note(job.since.until(now));
            }
        }
        self.deliveries.notify_waiters();
        watch
    }

    /// Waits until the code of challenge `id` has gone out. A failed send
    /// ends the challenge and is returned as the error of this call.
    /// Returns when that was (or, for a decoy, will be), and never earlier
    /// than this call: what the call's answer is timed from (pace.rs).
    pub async fn delivered(&self, id: &ChallengeId) -> Result<Tick, LoginError> {
        let called = self.clock.tick();
        loop {
            let notified = self.deliveries.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            {
                let mut state = self.lock();
                let Some(c) = state.challenges.get_mut(id) else {
                    return Err(LoginError::UnknownChallenge);
                };
                match &c.delivery {
                    Delivery::Sent => return Ok(c.sent_at.max(called)),
                    Delivery::Failed(e) => {
                        let e = e.clone();
                        state.challenges.remove(id);
                        return Err(e);
                    }
                    Delivery::Pending => {}
                }
            }
            notified.await;
        }
    }
}
