//! Time as a parameter.
//!
//! Everything that expires, locks or backs off takes a [`Clock`], so tests
//! drive time with [`ManualClock`] and never sleep. [`SystemClock`] is the one
//! place that reads the real clocks.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

/// Seconds since the Unix epoch, for records that outlive the process
/// (lockouts, trust). Wall time can step backwards; callers must cope.
pub type UnixSeconds = u64;

/// A point on a clock that never steps backwards and keeps counting while the
/// machine is suspended (CLOCK_BOOTTIME): a challenge must expire during a
/// 20 minute suspend, which CLOCK_MONOTONIC would not count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Tick(Duration);

impl Tick {
    pub fn from_duration(d: Duration) -> Self {
        Tick(d)
    }

    pub fn as_duration(self) -> Duration {
        self.0
    }

    pub fn saturating_add(self, d: Duration) -> Self {
        Tick(self.0.saturating_add(d))
    }

    /// Time from `self` until `later`, zero when `later` is already past.
    pub fn until(self, later: Tick) -> Duration {
        later.0.saturating_sub(self.0)
    }
}

pub type SleepFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

pub trait Clock: Send + Sync + 'static {
    /// Wall clock, for persisted records.
    fn unix_now(&self) -> UnixSeconds;
    /// Suspend-aware monotonic clock, for short-lived deadlines.
    fn tick(&self) -> Tick;
    /// Wait; fake clocks advance instead of waiting.
    fn sleep(&self, d: Duration) -> SleepFuture;
    /// Wait until `at` on [`Self::tick`]'s clock, to the microsecond where
    /// that matters (pace.rs).
    fn sleep_until(&self, at: Tick) -> SleepFuture {
        self.sleep(self.tick().until(at))
    }
}

pub type SharedClock = Arc<dyn Clock>;

/// The real clocks. This is the edge of the program allowed to read them.
#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one edge that reads the wall clock
    fn unix_now(&self) -> UnixSeconds {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
    }

    fn tick(&self) -> Tick {
        boottime()
    }

    #[allow(clippy::disallowed_methods)] // the one edge that really waits
    fn sleep(&self, d: Duration) -> SleepFuture {
        Box::pin(tokio::time::sleep(d))
    }

    /// On the alarm thread (alarm.rs): tokio's timer would end the wait
    /// whole milliseconds after its worker parked, not at `at`. tokio's
    /// timer stays as a backstop, a little later: a wait always ends.
    fn sleep_until(&self, at: Tick) -> SleepFuture {
        let backstop = self.sleep(boottime().until(at).saturating_add(Duration::from_millis(20)));
        match crate::alarm::Alarm::shared(boottime) {
            Some(alarm) => {
                let woken = alarm.until(at);
                Box::pin(futures_lite::future::or(
                    async move {
                        let _ = woken.await;
                    },
                    backstop,
                ))
            }
            None => self.sleep(boottime().until(at)),
        }
    }
}

fn boottime() -> Tick {
    use nix::time::{ClockId, clock_gettime};
    // CLOCK_BOOTTIME cannot fail on Linux >= 2.6.39. Were it to, a
    // far-future reading makes every pending deadline already past.
    let ts = clock_gettime(ClockId::CLOCK_BOOTTIME).unwrap_or_else(|_| nix::sys::time::TimeSpec::new(i64::MAX / 4, 0));
    let secs = u64::try_from(ts.tv_sec()).unwrap_or(0);
    let nanos = u32::try_from(ts.tv_nsec()).unwrap_or(0);
    Tick(Duration::new(secs, nanos))
}

/// A clock that only moves when told to (or when someone sleeps on it).
#[derive(Debug, Clone)]
pub struct ManualClock {
    inner: Arc<Mutex<ManualState>>,
}

#[derive(Debug)]
struct ManualState {
    unix: UnixSeconds,
    tick: Duration,
    slept: Vec<Duration>,
}

impl ManualClock {
    pub fn new(unix: UnixSeconds) -> Self {
        ManualClock {
            inner: Arc::new(Mutex::new(ManualState { unix, tick: Duration::from_secs(1_000), slept: Vec::new() })),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut ManualState) -> T) -> T {
        let mut guard = match self.inner.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard)
    }

    /// Moves both clocks forward.
    pub fn advance(&self, d: Duration) {
        self.with(|s| {
            s.unix = s.unix.saturating_add(d.as_secs());
            s.tick = s.tick.saturating_add(d);
        });
    }

    /// Steps only the wall clock, as an administrator or NTP would.
    pub fn set_unix(&self, unix: UnixSeconds) {
        self.with(|s| s.unix = unix);
    }

    /// Every sleep requested so far, in order.
    pub fn slept(&self) -> Vec<Duration> {
        self.with(|s| s.slept.clone())
    }
}

impl Clock for ManualClock {
    fn unix_now(&self) -> UnixSeconds {
        self.with(|s| s.unix)
    }

    fn tick(&self) -> Tick {
        self.with(|s| Tick(s.tick))
    }

    fn sleep(&self, d: Duration) -> SleepFuture {
        self.with(|s| s.slept.push(d));
        self.advance(d);
        Box::pin(std::future::ready(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(1_000);
        let t0 = c.tick();
        assert_eq!(c.unix_now(), 1_000);
        c.advance(Duration::from_secs(90));
        assert_eq!(c.unix_now(), 1_090);
        assert_eq!(t0.until(c.tick()), Duration::from_secs(90));
        c.set_unix(10);
        assert_eq!(c.unix_now(), 10, "wall clock can step back");
        assert_eq!(t0.until(c.tick()), Duration::from_secs(90), "ticks never do");
    }

    #[tokio::test]
    async fn manual_sleep_advances_instead_of_waiting() {
        let c = ManualClock::new(0);
        c.sleep(Duration::from_secs(3600)).await;
        assert_eq!(c.unix_now(), 3600);
        assert_eq!(c.slept(), vec![Duration::from_secs(3600)]);
    }

    #[test]
    fn tick_until_saturates() {
        let a = Tick::from_duration(Duration::from_secs(5));
        let b = Tick::from_duration(Duration::from_secs(2));
        assert_eq!(a.until(b), Duration::ZERO);
        assert_eq!(b.until(a), Duration::from_secs(3));
        let far = Tick::from_duration(Duration::MAX).saturating_add(Duration::from_secs(1));
        assert_eq!(far, Tick::from_duration(Duration::MAX));
    }
}

fn utc(unix: UnixSeconds) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::from_unix_timestamp(i64::try_from(unix).ok()?).ok()
}

/// `2026-11-22 22:41:07 UTC`, for people (logs, smsotpctl's tables).
pub fn format_utc(unix: UnixSeconds) -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'_>] =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    utc(unix).and_then(|t| t.format(FORMAT).ok()).unwrap_or_else(|| format!("@{unix}"))
}

/// `2026-11-22T22:41:07Z` (RFC 3339), for programs (smsotpctl --json).
pub fn format_rfc3339(unix: UnixSeconds) -> String {
    utc(unix)
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| format!("@{unix}"))
}

#[cfg(test)]
mod format_tests {
    use super::format_utc;

    #[test]
    fn utc_dates() {
        assert_eq!(format_utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(format_utc(1_795_394_467), "2026-11-23 00:41:07 UTC");
        assert_eq!(format_utc(4_102_444_799), "2099-12-31 23:59:59 UTC");
        assert_eq!(super::format_rfc3339(1_795_394_467), "2026-11-23T00:41:07Z");
        assert_eq!(format_utc(u64::MAX), format!("@{}", u64::MAX), "out of range is shown, not invented");
    }
}
