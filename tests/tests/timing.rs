//! Finding 1 of the attack review: StartLogin must not tell enrolled users
//! from unknown names by how long it takes. The daemon answers before the
//! provider is called, for everyone alike; this checks the distributions of
//! 200 StartLogin round trips each on one connection, the two kinds in
//! random order and 5 ms apart (the CPU work of a send, which starts just
//! after an enrolled user's answer, must not land on the next call, always
//! of the other kind, when calls are back to back), with the provider's
//! latency fixed (200 ms) and jittered (100..300 ms), with a two-sample
//! Kolmogorov-Smirnov test at alpha = 0.001.
//! It compares two samples of the same run; it claims nothing about speed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code
#![allow(clippy::disallowed_methods)] // it measures real round trips

use std::collections::HashMap;
use std::time::{Duration, Instant};

use smsotp_proto::{SmsOtp1Proxy, context_key};
use smsotp_tests::bus::{Bus, Policy};
use smsotp_tests::daemon::{Daemon, messaging_config};
use smsotp_tests::fake_twilio::{Canned, FakeTwilio};

const SAMPLES: usize = 200;
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

/// StartLogin round trips (ms) for enrolled users and for unknown names.
fn start_login_times(provider: Canned) -> (Vec<f64>, Vec<f64>) {
    let bus = Bus::start(Policy::Shipped);
    let twilio = FakeTwilio::start();
    twilio.push(provider.forever());
    let config =
        messaging_config(&twilio.url(), "", "[codes]\nsms_per_user_per_hour = 100\nsms_per_user_per_day = 1000\n");
    let daemon = Daemon::start(&bus, &config);
    for (i, user) in ENROLLED.iter().enumerate() {
        daemon.ctl_ok(&["enroll", user, &format!("+1415555010{i}")]);
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let times = rt.block_on(async {
        let conn = zbus::connection::Builder::address(bus.address().as_str()).unwrap().build().await.unwrap();
        let proxy = SmsOtp1Proxy::new(&conn).await.unwrap();
        let (mut known, mut unknown) = (Vec::new(), Vec::new());
        for k in 0..SAMPLES {
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
                into.push(start.elapsed().as_secs_f64() * 1e3);
                let (action, _, destination) = answer.unwrap_or_else(|e| panic!("StartLogin {user}: {e}"));
                assert_eq!(action, smsotp_proto::Action::Code, "{user}");
                assert!(destination.ends_with(|c: char| c.is_ascii_digit()), "{destination}");
            }
        }
        (known, unknown)
    });
    drop(daemon);
    drop(twilio);
    times
}

fn assert_indistinguishable(provider: Canned, what: &str) {
    let (known, unknown) = start_login_times(provider);
    let d = ks_statistic(&known, &unknown);
    let critical = ks_critical(known.len(), unknown.len(), 0.001);
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    assert!(
        d <= critical,
        "{what}: StartLogin tells enrolled users from unknown names: KS D = {d:.3} > {critical:.3}; \
         median {:.3} ms enrolled, {:.3} ms unknown",
        median(&known),
        median(&unknown)
    );
}

#[test]
fn enrolled_and_unknown_users_take_alike_with_a_fixed_provider_latency() {
    assert_indistinguishable(Canned::slow(Duration::from_millis(200)), "fixed 200 ms");
}

#[test]
fn enrolled_and_unknown_users_take_alike_with_a_jittered_provider_latency() {
    assert_indistinguishable(
        Canned::jittered(Duration::from_millis(100), Duration::from_millis(200)),
        "jittered 100..300 ms",
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
