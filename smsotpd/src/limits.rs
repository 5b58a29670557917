//! Per-user budgets that need not survive a restart: SMS per hour, and the
//! failure counts of names that have no record (decoys).

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use crate::clock::Tick;
use crate::daemon::{Daemon, State};
use crate::provider::Provider;

/// Per-user bookkeeping that need not survive a restart.
#[derive(Debug, Default)]
pub(crate) struct Volatile {
    /// When each SMS went out in the last hour, per user name.
    pub(crate) sends: HashMap<String, VecDeque<Tick>>,
    /// Consecutive failures of names without a record (decoys), so that
    /// they lock out exactly like enrolled users do.
    pub(crate) decoy_failures: HashMap<String, (u32, u64)>,
}

pub(crate) const VOLATILE_CAP: usize = 50_000;

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
