//! When answers leave, so that their timing does not tell enrolled users
//! from unknown names (security review A9; OpenSSH CVE-2016-6210).
//!
//! Two paths that give the same answer do different work: an enrolled
//! user's start reads and parses a record, an unknown name's asks NSS for
//! the audit line; a wrong code for an enrolled user reaches the disk
//! (temp, fsync, rename, fsync dir) before it is answered, a decoy's does
//! not. Balancing that work by hand breaks with every change to either
//! path, so the answers a decoy can also give leave no sooner than a floor
//! after the work began. Work that overruns the floor waits for the next
//! doubling of it (OpenSSH's ensure_minimum_time_since), so an overrun
//! shows only as a coarse step. A right code is never held back: no decoy
//! ever gives that answer.
//!
//! What this cannot hide, decoy.rs and delivery.rs make alike instead: the
//! wait for the provider, which a decoy spends as long as recent real sends
//! took.

use std::collections::VecDeque;
use std::time::Duration;

use crate::clock::Tick;
use crate::daemon::Daemon;
use crate::provider::Provider;

/// StartLogin, StartSignIn, Resend, UseFactor, and a number given at
/// enrollment: reads (a record, NSS, a ledger line) and a spawned send,
/// tens of microseconds apart between the paths.
pub const ANSWER_FLOOR: Duration = Duration::from_millis(10);

/// A wrong code: an enrolled user's failure count is written durably
/// before the answer (milliseconds on a busy or rotating disk, a round
/// trip with PostgreSQL), a decoy's is not. Nobody waits for this but
/// someone who typed a wrong code.
pub const WRONG_FLOOR: Duration = Duration::from_millis(100);

/// How much longer to wait, `elapsed` after the work began, for the answer
/// to leave at `floor` or at the first doubling of it that is not past.
pub fn wait_for(elapsed: Duration, floor: Duration) -> Duration {
    let mut at = floor.max(Duration::from_millis(1));
    while at < elapsed {
        at = at.saturating_mul(2);
    }
    at.saturating_sub(elapsed)
}

/// How long recent real provider calls took (sends, or Verify's checks),
/// for a decoy to take as long: its delays come from the same distribution
/// as the ones it stands beside, whatever the provider and the network.
#[derive(Debug, Default)]
pub(crate) struct Latencies {
    recent: VecDeque<Duration>,
}

impl Latencies {
    /// Enough to follow a provider that gets slower, few enough to cost
    /// nothing.
    const KEEP: usize = 64;
    /// Before the first real call: a range a provider's API answers in.
    const BEFORE_ANY: (Duration, Duration) = (Duration::from_millis(300), Duration::from_millis(900));

    pub(crate) fn note(&mut self, took: Duration) {
        if self.recent.len() >= Self::KEEP {
            self.recent.pop_front();
        }
        self.recent.push_back(took);
    }

    /// One of the recent durations, at random; a random one in
    /// [`Self::BEFORE_ANY`] while there are none.
    pub(crate) fn sample(&self) -> Duration {
        let mut bytes = [0u8; 8];
        // Without randomness the first duration serves: still a real one.
        let r = crate::random::fill_random(&mut bytes).map_or(0, |()| u64::from_le_bytes(bytes));
        if self.recent.is_empty() {
            let (low, high) = Self::BEFORE_ANY;
            let span = u64::try_from((high - low).as_micros()).unwrap_or(1).max(1);
            return low + Duration::from_micros(r % span);
        }
        let i = usize::try_from(r % self.recent.len() as u64).unwrap_or(0);
        self.recent.get(i).copied().unwrap_or_default()
    }
}

impl<P: Provider> Daemon<P> {
    /// Waits (on the daemon's clock) until `floor` after `began`, which
    /// for a decoy's pretended send may still be ahead.
    pub(crate) async fn pace(&self, began: Tick, floor: Duration) {
        let now = self.clock.tick();
        let elapsed = began.until(now);
        let at = began.saturating_add(elapsed.saturating_add(wait_for(elapsed, floor)));
        if at > now {
            self.clock.sleep_until(at).await;
        }
    }

    /// [`Self::pace`] for `answer`, unless it is a right code.
    pub(crate) async fn pace_unless_accepted<T>(
        &self,
        began: Tick,
        floor: Duration,
        answer: Result<T, crate::error::LoginError>,
        accepted: impl FnOnce(&T) -> bool,
    ) -> Result<T, crate::error::LoginError> {
        if !answer.as_ref().is_ok_and(accepted) {
            self.pace(began, floor).await;
        }
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn work_within_the_floor_waits_for_the_rest_of_it() {
        assert_eq!(wait_for(MS(0), MS(10)), MS(10));
        assert_eq!(wait_for(MS(3), MS(10)), MS(7));
        assert_eq!(wait_for(MS(10), MS(10)), MS(0));
    }

    #[test]
    fn work_past_the_floor_waits_for_its_next_doubling() {
        assert_eq!(wait_for(MS(11), MS(10)), MS(9));
        assert_eq!(wait_for(MS(25), MS(10)), MS(15));
        assert_eq!(wait_for(MS(40), MS(10)), MS(0));
        assert_eq!(wait_for(MS(41), MS(10)), MS(39));
    }

    #[test]
    fn a_decoy_takes_one_of_the_recent_real_durations() {
        let mut l = Latencies::default();
        for _ in 0..20 {
            let d = l.sample();
            assert!((MS(300)..MS(900)).contains(&d), "{d:?} before any real call");
        }
        l.note(MS(210));
        l.note(MS(250));
        let seen: std::collections::HashSet<Duration> = (0..200).map(|_| l.sample()).collect();
        assert_eq!(seen, [MS(210), MS(250)].into(), "both recent ones, nothing else");
        for i in 0..100 {
            l.note(MS(1000 + i));
        }
        assert!((0..200).all(|_| l.sample() >= MS(1036)), "only the last 64 are kept");
    }

    #[test]
    fn a_zero_floor_still_ends() {
        assert_eq!(wait_for(MS(5), Duration::ZERO), MS(3));
        assert_eq!(wait_for(Duration::MAX, MS(10)), Duration::ZERO);
    }
}
