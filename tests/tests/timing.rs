//! Finding 1 of the attack review (security review A9): no answer may tell
//! enrolled users from unknown names by how long it takes. Two moments:
//! - StartLogin: 200 round trips each on one connection;
//! - a wrong code typed the moment the prompt shows (the scripted attacker):
//!   100 CheckCode round trips each, each right after its own StartLogin.
//!   An enrolled user's waits for the provider and then for the failure
//!   count to reach the disk; an unknown name's must wait alike (pace.rs).
//!
//! The two kinds go in random order and 5 ms apart (the CPU work of a send,
//! which starts just after an enrolled user's answer, must not land on the
//! next call, always of the other kind, when calls are back to back), with
//! the provider's latency fixed and jittered, and a two-sample
//! Kolmogorov-Smirnov test at alpha = 0.001 compares the distributions.
//! It compares two samples of the same run; it claims nothing about speed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code
#![allow(clippy::disallowed_methods)] // it measures real round trips

use std::collections::HashMap;
use std::time::{Duration, Instant};

use smsotp_proto::{SmsOtp1Proxy, context_key};
use smsotp_tests::bus::{Bus, Policy};
use smsotp_tests::daemon::{Daemon, messaging_config};
use smsotp_tests::fake_twilio::{Canned, FakeTwilio};

/// Enrolled, each under the hourly SMS budget for its share of the samples.
const ENROLLED: [&str; 4] = ["root", "daemon", "bin", "sys"];

/// The two-sample Kolmogorov-Smirnov statistic: the largest distance
/// between the two empirical distribution functions.
fn ks_statistic(a: &[f64], b: &[f64]) -> f64 {
    let (mut a, mut b) = (a.to_vec(), b.to_vec());
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (mut i, mut j, mut d) = (0, 0, 0.0f64);
    while i < a.len() && j < b.len() {
        let x = a[i].min(b[j]);
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / a.len() as f64 - j as f64 / b.len() as f64).abs());
    }
    d
}

/// The statistic above which the two samples differ at `alpha`.
fn ks_critical(n: usize, m: usize, alpha: f64) -> f64 {
    let c = (-(alpha / 2.0).ln() / 2.0).sqrt();
    c * (((n + m) as f64) / ((n * m) as f64)).sqrt()
}

/// Which call of a login is timed.
#[derive(Clone, Copy, Debug)]
enum Moment {
    StartLogin,
    /// CheckCode with a wrong code, right after StartLogin answered.
    WrongCodeAtOnce,
}

impl Moment {
    fn samples(self) -> usize {
        match self {
            Moment::StartLogin => 200,
            Moment::WrongCodeAtOnce => 100,
        }
    }
}

/// Round trips (ms) of `moment` for enrolled users and for unknown names.
fn login_times(provider: Canned, moment: Moment) -> (Vec<f64>, Vec<f64>) {
    let bus = Bus::start(Policy::Shipped);
    let twilio = FakeTwilio::start();
    twilio.push(provider.forever());
    // Wrong codes must not lock the enrolled users out midway.
    let config = messaging_config(
        &twilio.url(),
        "",
        "[codes]\nsms_per_user_per_hour = 100\nsms_per_user_per_day = 1000\n[lockout]\nfailures = 100\n",
    );
    let daemon = Daemon::start(&bus, &config);
    for (i, user) in ENROLLED.iter().enumerate() {
        daemon.ctl_ok(&["enroll", user, &format!("+1415555010{i}")]);
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let times = rt.block_on(async {
        let conn = zbus::connection::Builder::address(bus.address().as_str()).unwrap().build().await.unwrap();
        let proxy = SmsOtp1Proxy::new(&conn).await.unwrap();
        let (mut known, mut unknown) = (Vec::new(), Vec::new());
        for k in 0..moment.samples() {
            // Each from its own address, so no login repeats a live round.
            let mut pair =
                [(ENROLLED[k % ENROLLED.len()].to_owned(), &mut known), (format!("nosuchuser{k}"), &mut unknown)];
            if std::hash::BuildHasher::hash_one(&std::collections::hash_map::RandomState::new(), k) % 2 == 1 {
                pair.reverse();
            }
            for (user, into) in pair {
                tokio::time::sleep(Duration::from_millis(5)).await;
                let rhost = format!("198.51.100.{}", k % 250);
                let ctx = HashMap::from([
                    (context_key::SERVICE, "sshd"),
                    (context_key::RHOST, rhost.as_str()),
                    (context_key::TTY, "ssh"),
                ]);
                let start = Instant::now();
                let answer = proxy.start_login(&user, ctx).await;
                let started = start.elapsed();
                let (action, challenge, destination) = answer.unwrap_or_else(|e| panic!("StartLogin {user}: {e}"));
                assert_eq!(action, smsotp_proto::Action::Code, "{user}");
                assert!(destination.ends_with(|c: char| c.is_ascii_digit()), "{destination}");
                let took = match moment {
                    Moment::StartLogin => started,
                    Moment::WrongCodeAtOnce => {
                        let start = Instant::now();
                        let answer = proxy.check_code(&challenge, "abcdef").await;
                        let took = start.elapsed();
                        let (status, _) = answer.unwrap_or_else(|e| panic!("CheckCode {user}: {e}"));
                        assert_eq!(status, smsotp_proto::Status::Wrong, "{user}");
                        took
                    }
                };
                into.push(took.as_secs_f64() * 1e3);
            }
        }
        (known, unknown)
    });
    drop(daemon);
    drop(twilio);
    times
}

fn assert_indistinguishable(provider: Canned, moment: Moment, what: &str) {
    let (known, unknown) = login_times(provider, moment);
    let d = ks_statistic(&known, &unknown);
    let critical = ks_critical(known.len(), unknown.len(), 0.001);
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let figures = format!(
        "{moment:?}, {what}: KS D = {d:.3} (limit {critical:.3}); median {:.3} ms enrolled, {:.3} ms unknown",
        median(&known),
        median(&unknown)
    );
    eprintln!("{figures}");
    if std::env::var_os("TIMING_DUMP").is_some() {
        let q = |v: &[f64]| {
            let mut v = v.to_vec();
            v.sort_by(f64::total_cmp);
            [5, 10, 25, 50, 75, 90, 95].map(|p| format!("{:.2}", v[v.len() * p / 100])).join(" ")
        };
        eprintln!("  enrolled {}\n  unknown  {}", q(&known), q(&unknown));
    }
    assert!(d <= critical, "enrolled users and unknown names told apart: {figures}");
}

#[test]
fn enrolled_and_unknown_users_start_alike_with_a_fixed_provider_latency() {
    assert_indistinguishable(Canned::slow(Duration::from_millis(200)), Moment::StartLogin, "fixed 200 ms");
}

#[test]
fn enrolled_and_unknown_users_start_alike_with_a_jittered_provider_latency() {
    assert_indistinguishable(
        Canned::jittered(Duration::from_millis(100), Duration::from_millis(200)),
        Moment::StartLogin,
        "jittered 100..300 ms",
    );
}

#[test]
fn a_wrong_code_at_once_takes_alike_with_a_fixed_provider_latency() {
    assert_indistinguishable(Canned::slow(Duration::from_millis(60)), Moment::WrongCodeAtOnce, "fixed 60 ms");
}

#[test]
fn a_wrong_code_at_once_takes_alike_with_a_jittered_provider_latency() {
    assert_indistinguishable(
        Canned::jittered(Duration::from_millis(20), Duration::from_millis(80)),
        Moment::WrongCodeAtOnce,
        "jittered 20..100 ms",
    );
}

#[test]
fn the_ks_statistic_tells_shifted_samples_apart_and_equal_ones_not() {
    let a: Vec<f64> = (0..200).map(|i| f64::from(i % 50)).collect();
    let shifted: Vec<f64> = a.iter().map(|x| x + 10.0).collect();
    let critical = ks_critical(200, 200, 0.001);
    assert!(ks_statistic(&a, &a) <= critical);
    assert!(ks_statistic(&a, &shifted) > critical, "{}", ks_statistic(&a, &shifted));
    assert!((ks_statistic(&[1.0, 2.0], &[3.0, 4.0]) - 1.0).abs() < 1e-9);
}
