//! Limits against toll fraud: where SMS may go (destinations.countries),
//! and budgets: SMS per user and per host, per hour and per day (a spending cap
//! against toll fraud), and the failure counts of names that have no record
//! (decoys). The budgets survive a restart: every SMS the budget allowed is
//! appended to `sends.log` in the state directory ("UNIX-SECONDS USER"),
//! outside the global lock, and the last 24 hours of it are read back at
//! start (and the file rewritten with only those).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::time::Duration;

use crate::audit::{self, Event};
use crate::daemon::{Daemon, State, VOLATILE_CAP};
use crate::provider::Provider;

const LEDGER: &str = "sends.log";
const DAY: u64 = 24 * 3600;

/// SMS in `sends.log`'s text sent in the 24 hours before `unix`.
pub fn sends_in_last_day(ledger: &str, unix: u64) -> usize {
    ledger
        .lines()
        .filter_map(|l| l.split_once(' ')?.0.parse::<u64>().ok())
        .filter(|&t| t <= unix && t.saturating_add(DAY) > unix)
        .count()
}

/// Where `sends.log` is in a state directory.
pub fn ledger_path(state_directory: &std::path::Path) -> std::path::PathBuf {
    state_directory.join(LEDGER)
}

/// Whether `phone` starts with one of the calling codes `countries`.
pub fn allowed(phone: &crate::names::PhoneNumber, countries: &[String]) -> bool {
    countries.iter().any(|c| phone.e164().starts_with(c.as_str()))
}

impl<P: Provider> Daemon<P> {
    /// Whether `destinations.countries` lets an SMS go to `phone`; checked
    /// before every send and at every enrollment (toll fraud).
    pub(crate) fn destination_allowed(&self, phone: &crate::names::PhoneNumber) -> bool {
        self.cfg.destinations.as_ref().is_none_or(|c| allowed(phone, c))
    }

    /// Records an SMS to `user` if the hourly budget of the user and the
    /// daily one of the host allow it. The caller then writes it down with
    /// [`Daemon::record_send`], after the global lock.
    pub(crate) fn take_send_budget(&self, state: &mut State, user: &str) -> bool {
        let now = self.clock.tick();
        let unix = self.clock.unix_now();
        let hour = Duration::from_secs(3600);
        let day = &mut state.volatile.day;
        while day.front().is_some_and(|t| t.saturating_add(DAY) <= unix) {
            day.pop_front();
        }
        let host_hour = day.iter().rev().take_while(|t| t.saturating_add(3600) > unix).count();
        if host_hour >= self.cfg.codes.sms_per_host_per_hour as usize {
            tracing::warn!(
                "codes.sms_per_host_per_hour ({}) is reached: an SMS was refused",
                self.cfg.codes.sms_per_host_per_hour
            );
            return false;
        }
        if day.len() >= self.cfg.codes.sms_per_host_per_day as usize {
            if state.volatile.cap_reported.saturating_add(3600) <= unix {
                state.volatile.cap_reported = unix;
                tracing::error!(
                    "codes.sms_per_host_per_day ({}) is reached: no SMS goes out until older ones are 24 hours old; only trusted machines and skip rules get in",
                    self.cfg.codes.sms_per_host_per_day
                );
                audit::event(Event::DailyCapReached)
                    .field("cap", &self.cfg.codes.sms_per_host_per_day.to_string())
                    .log();
            }
            return false;
        }
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
        let user_day = &mut state.volatile.user_day;
        if user_day.len() >= VOLATILE_CAP {
            user_day.retain(|_, d| d.back().is_some_and(|t| t.saturating_add(DAY) > unix));
        }
        let d = user_day.entry(user.to_owned()).or_default();
        while d.front().is_some_and(|t| t.saturating_add(DAY) <= unix) {
            d.pop_front();
        }
        if d.len() >= self.cfg.codes.sms_per_user_per_day as usize {
            return false;
        }
        if !self.fleet_allows(user, unix) {
            return false;
        }
        let d = state.volatile.user_day.entry(user.to_owned()).or_default();
        d.push_back(unix);
        if let Some(q) = state.volatile.sends.get_mut(user) {
            q.push_back(now);
        }
        state.volatile.day.push_back(unix);
        true
    }

    /// With a shared store, the fleet's budgets too: the user's across
    /// every host, and `store.sms_per_fleet_per_day`. A database that
    /// cannot answer refuses the SMS (closed).
    fn fleet_allows(&self, user: &str, unix: u64) -> bool {
        let per_fleet_per_day = match &self.cfg.store {
            crate::config::fleet::StoreKind::Postgresql(pg) => pg.sms_per_fleet_per_day,
            crate::config::fleet::StoreKind::Files => return true,
        };
        let budget = crate::store::FleetBudget {
            per_user_per_hour: self.cfg.codes.sms_per_user_per_hour,
            per_user_per_day: self.cfg.codes.sms_per_user_per_day,
            per_fleet_per_day,
        };
        match self.store.take_fleet_budget(user, unix, &budget) {
            Ok(allowed) => allowed,
            Err(e) => {
                tracing::error!("the fleet's SMS budget cannot be checked, so no SMS goes out: {e}");
                false
            }
        }
    }

    /// Writes down an SMS the budget allowed (append, no fsync: a crash of
    /// the daemon loses nothing, a power loss at most the last lines).
    pub(crate) fn record_send(&self, user: &str) {
        let path = self.store.root().join(LEDGER);
        let line = format!("{} {}\n", self.clock.unix_now(), crate::names::sanitize_for_log(user));
        let written = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
            .open(&path)
            .and_then(|mut f| f.write_all(line.as_bytes()));
        if let Err(e) = written {
            tracing::warn!("cannot write {}: {e}; SMS budgets will not survive a restart", path.display());
        }
    }

    /// Reads the last 24 hours of sends back into the budgets, and keeps
    /// only those in the file (atomically).
    pub(crate) fn load_ledger(&self) {
        let path = self.store.root().join(LEDGER);
        let Ok(text) = std::fs::read_to_string(&path) else { return };
        let unix = self.clock.unix_now();
        let now = self.clock.tick();
        let mut kept = String::new();
        let mut state = self.lock();
        for line in text.lines() {
            let Some((t, user)) = line.split_once(' ') else { continue };
            let Ok(t) = t.parse::<u64>() else { continue };
            if t > unix || t.saturating_add(DAY) <= unix {
                continue;
            }
            kept.push_str(line);
            kept.push('\n');
            state.volatile.day.push_back(t);
            state.volatile.user_day.entry(user.to_owned()).or_default().push_back(t);
            let age = Duration::from_secs(unix - t);
            if age < Duration::from_secs(3600) {
                let at = crate::clock::Tick::from_duration(now.as_duration().saturating_sub(age));
                state.volatile.sends.entry(user.to_owned()).or_default().push_back(at);
            }
        }
        drop(state);
        let tmp = path.with_extension("log.tmp");
        let rewrite = std::fs::write(&tmp, &kept).and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(e) = rewrite {
            tracing::warn!("cannot compact {}: {e}", path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_day_counts_only_the_last_day() {
        let ledger = "100 root\n90000 alice\n90001 bob\nnonsense\n200000 future\n";
        assert_eq!(sends_in_last_day(ledger, 90002), 2, "100 is older than a day; 200000 is in the future");
        assert_eq!(sends_in_last_day(ledger, 86_499), 1, "only 100 is within a day and not ahead");
        assert_eq!(sends_in_last_day("", 1), 0);
    }
}
