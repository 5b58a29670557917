//! Many logins at once on a bus that turns connections away, as Debian's
//! system bus does past 64 unauthenticated connections or 256 per uid
//! (every sshd pre-auth child is root). Here the limits are tiny so a dozen
//! logins meet them; each login must still succeed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::time::Duration;

use smsotp_tests::bus::{Bus, Policy};
use smsotp_tests::daemon::{Daemon, messaging_config};
use smsotp_tests::fake_twilio::FakeTwilio;
use smsotp_tests::pam::{Code, Pam};

/// System users every Debian has, enrolled with their own numbers.
const USERS: [&str; 12] =
    ["daemon", "bin", "sys", "sync", "games", "man", "lp", "mail", "news", "uucp", "proxy", "backup"];

fn number(i: usize) -> String {
    format!("+1415555{i:04}")
}

#[test]
fn logins_at_once_past_the_bus_limits_all_succeed() {
    // The daemon holds one of root's connections; two more may exist at
    // any moment, and only one may be authenticating.
    let bus =
        Bus::start_limited(Policy::Shipped, &[("max_connections_per_user", 3), ("max_incomplete_connections", 1)]);
    let twilio = FakeTwilio::start();
    let daemon = Daemon::start(&bus, &messaging_config(&twilio.url(), "", ""));
    for (i, user) in USERS.iter().enumerate() {
        // smsotpctl's own connection is root's too: it may be turned away.
        smsotp_tests::tools::wait_for("an enrollment through the busy bus", Duration::from_secs(10), || {
            daemon.ctl(&["enroll", user, &number(i)]).status.success()
        });
    }
    let runs: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = USERS
            .iter()
            .enumerate()
            .map(|(i, user)| {
                let twilio = &twilio;
                let bus = &bus;
                s.spawn(move || {
                    let to = number(i);
                    let code = Box::new(move || {
                        let mut found = None;
                        smsotp_tests::tools::wait_for("this user's SMS", Duration::from_secs(20), || {
                            found = twilio.messages().into_iter().find(|m| m.to == to).map(|m| m.code());
                            found.is_some()
                        });
                        found.unwrap()
                    });
                    (user, Pam::new(&bus.address(), user).run(vec![code]))
                })
            })
            .collect();
        // An administrator's smsotpctl in the same storm is turned away
        // too, and asks again.
        let admins: Vec<_> = (0..6).map(|_| s.spawn(|| daemon.ctl(&["list"]))).collect();
        for a in admins {
            let out = a.join().unwrap();
            assert!(out.status.success(), "smsotpctl list: {}", String::from_utf8_lossy(&out.stderr));
        }
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (user, run) in &runs {
        assert_eq!(run.code, Code::Success, "{user}: {}", run.output);
    }
    assert_eq!(twilio.messages().len(), USERS.len());
}
