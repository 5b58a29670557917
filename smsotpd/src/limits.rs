//! Per-user budgets that need not survive a restart: SMS per hour, and the
//! failure counts of names that have no record (decoys).

use std::time::Duration;

use crate::daemon::{Daemon, State, VOLATILE_CAP};
use crate::provider::Provider;

impl<P: Provider> Daemon<P> {
    /// Records an SMS to `user` if the hourly budget allows it.
    pub(crate) fn take_send_budget(&self, state: &mut State, user: &str) -> bool {
        let now = self.clock.tick();
        let hour = Duration::from_secs(3600);
        if state.volatile.sends.len() >= VOLATILE_CAP {
            state.volatile.sends.retain(|_, q| q.back().is_some_and(|t| t.saturating_add(hour) > now));
        }
        let q = state.volatile.sends.entry(user.to_owned()).or_default();
        while q.front().is_some_and(|t| t.saturating_add(hour) <= now) {
            q.pop_front();
        }
        if q.len() >= self.cfg.codes.sms_per_user_per_hour as usize {
            return false;
        }
        q.push_back(now);
        true
    }
}
