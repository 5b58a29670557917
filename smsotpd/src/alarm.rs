//! Waking at a deadline to the microsecond, for answers paced to leave at
//! one (pace.rs).
//!
//! tokio's timer counts whole milliseconds, and a worker that parks waits
//! whole milliseconds from the moment it parks: a sleep until "began +
//! 10 ms" ends 10 ms after the work before it ended, not after it began,
//! which would hand the work's length straight to the caller
//! (tests/tests/timing.rs measured 0.3 ms between enrolled users and
//! unknown names that way). One thread here waits on the suspend-aware
//! clock with no timer slack and wakes each sleeper at its deadline.
//! It waits in ppoll(2), whose timeout is relative and in nanoseconds: a
//! futex's absolute deadline on CLOCK_MONOTONIC (std's Condvar) would
//! never come under libfaketime, which the tests run the daemon with.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use nix::poll::{PollFd, PollFlags, ppoll};

use crate::clock::Tick;

struct Sleeper {
    at: Tick,
    seq: u64,
    wake: tokio::sync::oneshot::Sender<()>,
}

impl PartialEq for Sleeper {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Sleeper {}
impl PartialOrd for Sleeper {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Sleeper {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

#[derive(Default)]
struct Queue {
    sleepers: BinaryHeap<Reverse<Sleeper>>,
    seq: u64,
}

pub(crate) struct Alarm {
    queue: Mutex<Queue>,
    /// A byte here: a sleeper earlier than all others came.
    changed: UnixStream,
    now: fn() -> Tick,
}

impl Alarm {
    /// The process's alarm thread, started on first use; None if no thread
    /// could be started (callers then sleep on tokio's timer).
    pub(crate) fn shared(now: fn() -> Tick) -> Option<&'static Alarm> {
        static ALARM: OnceLock<Option<&'static Alarm>> = OnceLock::new();
        *ALARM.get_or_init(|| {
            let (changed, listen) = UnixStream::pair().ok()?;
            changed.set_nonblocking(true).ok()?;
            listen.set_nonblocking(true).ok()?;
            let alarm: &'static Alarm =
                Box::leak(Box::new(Alarm { queue: Mutex::new(Queue::default()), changed, now }));
            let started = std::thread::Builder::new().name("smsotpd-alarm".into()).spawn(move || alarm.run(listen));
            started.ok().map(|_| alarm)
        })
    }

    /// Resolves at `at` (at once if that is past, or if the alarm is gone).
    pub(crate) fn until(&self, at: Tick) -> tokio::sync::oneshot::Receiver<()> {
        let (wake, woken) = tokio::sync::oneshot::channel();
        let mut q = self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        q.seq = q.seq.wrapping_add(1);
        let seq = q.seq;
        let earliest = q.sleepers.peek().is_none_or(|Reverse(s)| at < s.at);
        q.sleepers.push(Reverse(Sleeper { at, seq, wake }));
        drop(q);
        if earliest {
            // Full means a wake-up is already waiting to be read.
            let _ = (&self.changed).write(&[1]);
        }
        woken
    }

    fn run(&self, mut listen: UnixStream) {
        // Linux rounds a thread's sleeps up by its timer slack (50 us by
        // default); this thread's sleeps are the deadlines themselves.
        let _ = nix::sys::prctl::set_timerslack(1);
        loop {
            let next = {
                let mut q = self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                let now = (self.now)();
                while q.sleepers.peek().is_some_and(|Reverse(s)| s.at <= now) {
                    if let Some(Reverse(s)) = q.sleepers.pop() {
                        // A sleeper that went away (its call was dropped) is fine.
                        let _ = s.wake.send(());
                    }
                }
                q.sleepers.peek().map(|Reverse(s)| now.until(s.at))
            };
            let timeout = next.map(|d| nix::sys::time::TimeSpec::from_duration(d.max(Duration::from_nanos(1))));
            let mut fds = [PollFd::new(listen.as_fd(), PollFlags::POLLIN)];
            // Interrupted or not, the loop looks at the clock again.
            if let Ok(n) = ppoll(&mut fds, timeout, None)
                && n > 0
            {
                let mut drain = [0u8; 64];
                while matches!(listen.read(&mut drain), Ok(n) if n > 0) {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::clock::{Clock, SystemClock};
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sleepers_wake_at_their_deadlines_in_any_order() {
        let clock = SystemClock;
        let now = clock.tick();
        let later = now.saturating_add(Duration::from_millis(30));
        let sooner = now.saturating_add(Duration::from_millis(10));
        let ((), b) = tokio::join!(clock.sleep_until(later), async {
            tokio::task::yield_now().await;
            clock.sleep_until(sooner).await;
            clock.tick()
        });
        assert!(b >= sooner && b < later, "{:?}", b.as_duration());
        assert!(clock.tick() >= later);
        clock.sleep_until(now).await; // past: at once
    }
}
