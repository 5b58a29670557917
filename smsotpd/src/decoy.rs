//! Unknown and unenrolled users: with `unenrolled = "deny"` they meet the
//! same prompts as anyone else, with a stable made-up number, a wait as long
//! as a real send (delivery.rs, pace.rs), and a code nobody has.

use std::sync::Arc;

use smsotp_proto::Action;

use crate::audit::{self, Event};
use crate::challenge::{ChallengeId, Enrolling, Secret};
use crate::clock::Tick;
use crate::config::Unenrolled;
use crate::daemon::{Daemon, Start};
use crate::delivery::pretend_sent;
use crate::error::LoginError;
use crate::names::mask_last_digits;
use crate::nss;
use crate::provider::Provider;
use smsotp_proto::LoginContext;

impl<P: Provider> Daemon<P> {
    /// Same masked digits for the same unknown name every time, and
    /// unpredictable without the daemon's key.
    pub(crate) fn decoy_destination(&self, user: &str) -> String {
        #[allow(deprecated)] // SipHash-2-4 is a keyed PRF, which is all this needs
        let mut h = std::hash::SipHasher::new_with_keys(
            u64::from_le_bytes(self.decoy_key[..8].try_into().unwrap_or_default()),
            u64::from_le_bytes(self.decoy_key[8..16].try_into().unwrap_or_default()),
        );
        std::hash::Hasher::write(&mut h, user.as_bytes());
        let n = std::hash::Hasher::finish(&h) % 10_000;
        mask_last_digits(&format!("{n:04}"))
    }

    pub(crate) async fn start_unenrolled(
        self: &Arc<Self>,
        user: &str,
        valid_name: bool,
        ctx: &LoginContext,
        unenrolled: Unenrolled,
        since: Tick,
    ) -> Result<Start, LoginError> {
        if valid_name {
            // Whether the system knows the name is for the audit line only.
            // Asking NSS (files, then perhaps systemd-userdb or LDAP) costs
            // time an enrolled user's start does not spend, which would tell
            // the two apart (tests/tests/timing.rs): it happens after the
            // answer, off the event loop.
            let (user, service, rhost) = (user.to_owned(), ctx.service.clone(), ctx.rhost.clone());
            tokio::task::spawn_blocking(move || {
                let event = if nss::user_exists(&user) { Event::NotEnrolled } else { Event::UnknownUser };
                audit::event(event).field("user", &user).field("service", &service).field("rhost", &rhost).log();
            });
        }
        // Reset by an administrator: enroll again, whatever `unenrolled` says.
        let reset = valid_name
            && self.cfg.enrollment.is_some()
            && crate::names::UserName::parse(user).is_ok_and(|n| self.store.is_reset(&n));
        if unenrolled == Unenrolled::Allow && !reset {
            audit::event(Event::UnenrolledAllowed)
                .field("user", user)
                .field("service", &ctx.service)
                .field("rhost", &ctx.rhost)
                .log();
            return Ok(Start::without_code(Action::Ignore));
        }
        // Deny: the same prompts as a real login, with a code nobody has.
        // Enroll: a number first, for real and unknown names alike.
        let enroll = unenrolled == Unenrolled::Enroll || reset;
        let round = Self::round_key(user, ctx);
        let (id, destination) = {
            let mut state = self.lock();
            if let Some(repeat) = self.repeat_round(&mut state, &round, user, ctx) {
                return repeat;
            }
            let now = self.clock.unix_now();
            if state.volatile.decoy_failures.get(user).is_some_and(|&(_, until)| until > now) {
                return Ok(Start::without_code(Action::LockedOut));
            }
            if !self.take_send_budget(&mut state, user) {
                return Err(LoginError::RateLimited);
            }
            let id = ChallengeId::new().map_err(|e| LoginError::Internal(e.to_string()))?;
            let destination = self.decoy_destination(user);
            let mut c = self.challenge(user, Secret::Decoy, destination.clone(), ctx);
            c.round = round;
            if enroll {
                // The number comes next (enroll.rs); unknown names are
                // asked too, and their enrollment never succeeds.
                c.enrolling = Enrolling::AwaitingNumber;
                c.destination = String::new();
            }
            state.challenges.insert(id.clone(), c).map_err(|_| LoginError::Busy)?;
            if !enroll {
                // A real login answers before its SMS goes out (delivery.rs);
                // so does a decoy, whose next call waits as long.
                pretend_sent(&mut state, &id, since);
            }
            (id, destination)
        };
        // Budgets count decoys like real sends, across restarts too.
        self.record_send(user);
        if enroll {
            return Ok(Start::asking(Action::Enroll, &id, String::new()));
        }
        Ok(Start::asking(Action::Code, &id, destination))
    }
}
