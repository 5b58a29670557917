//! The usual set-up: a bus with the shipped policy, a fake Twilio, smsotpd
//! with an enrolled user, and a syslog capture for the module.

use crate::bus::{Bus, Policy};
use crate::daemon::{Daemon, messaging_config};
use crate::fake_twilio::FakeTwilio;
use crate::pam::Pam;
use crate::syslog::SyslogCapture;

/// Enrolled in every world: root exists on every machine the tests run on.
pub const USER: &str = "root";
pub const NUMBER: &str = "+14155550123";

pub struct World {
    pub twilio: FakeTwilio,
    pub daemon: Daemon,
    pub syslog: SyslogCapture,
    pub bus: Bus,
}

/// Verify with `[voice]`: root enrolled, one login that asks for a call
/// with 'v' once a resend is allowed, answered with the call's code. The
/// fake (for its requests) and the run; the daemon's log when it failed.
pub fn verify_login_by_call() -> (FakeTwilio, crate::pam::Run, String) {
    let bus = Bus::start(Policy::Shipped);
    let twilio = FakeTwilio::start();
    let daemon = Daemon::start(&bus, &crate::daemon::verify_config(&twilio.url(), "[voice]"));
    daemon.ctl_ok(&["enroll", USER, NUMBER]);
    let run = Pam::new(&bus.address(), USER).run(vec![
        Box::new(|| {
            daemon.set_time_offset_after("event=code-sent", 31);
            "v".to_owned()
        }),
        Box::new(|| twilio.wait_message(2).code()),
    ]);
    let log = daemon.log_text();
    (twilio, run, log)
}

impl World {
    /// Programmable Messaging with `extra` lines in the config's top level
    /// and `tables` appended (e.g. "[codes]\nlength = 8").
    pub fn messaging(extra: &str, tables: &str) -> World {
        let bus = Bus::start(Policy::Shipped);
        let twilio = FakeTwilio::start();
        let daemon = Daemon::start(&bus, &messaging_config(&twilio.url(), extra, tables));
        daemon.ctl_ok(&["enroll", USER, NUMBER]);
        World { twilio, daemon, syslog: SyslogCapture::start(), bus }
    }

    pub fn with_config(config: &str) -> World {
        let bus = Bus::start(Policy::Shipped);
        let twilio = FakeTwilio::start();
        let daemon = Daemon::start(&bus, &config.replace("@TWILIO@", &twilio.url()));
        daemon.ctl_ok(&["enroll", USER, NUMBER]);
        World { twilio, daemon, syslog: SyslogCapture::start(), bus }
    }

    /// pam_sms for `user` on this world's bus, logging to the capture.
    pub fn pam(&self, user: &str) -> Pam {
        let mut p = Pam::new(&self.bus.address(), user);
        p.syslog = Some(self.syslog.path.clone());
        p
    }

    /// The code in SMS number `n` (1-based), waiting for it to arrive.
    pub fn code(&self, n: usize) -> String {
        self.twilio.wait_message(n).code()
    }

    /// The answer "whatever code SMS number n carries".
    pub fn code_of(&self, n: usize) -> crate::pam::Answer<'_> {
        Box::new(move || self.code(n))
    }

    /// Moves the daemon's clock once its sends are done: they run in the
    /// background, the prompt comes before them, and a clock that jumps
    /// mid-send makes a sent code look unanswered. Every caller has started
    /// at least one send; all that reached the fake Twilio must be recorded.
    pub fn set_time_offset(&self, seconds: i64) {
        let recorded = || {
            let log = self.daemon.log_text();
            log.matches("event=code-sent ").count()
                + log.matches("event=code-resent ").count()
                + log.matches("event=provider-failure ").count()
        };
        crate::tools::wait_for("the daemon to record its sends", std::time::Duration::from_secs(20), || {
            let done = recorded();
            done >= 1 && done >= self.twilio.messages().len()
        });
        self.daemon.set_time_offset(seconds);
    }

    /// Fails if the fake Twilio saw anything malformed, or if the daemon's
    /// or the module's logs hold a code or the full number.
    pub fn assert_clean(&self) {
        assert_eq!(self.twilio.violations(), Vec::<String>::new(), "malformed requests reached the fake Twilio");
        let logs = format!("{}\n{}", self.daemon.log_text(), self.syslog.text());
        for sms in self.twilio.messages() {
            // Notices (a number changed, a reset) carry no code.
            if sms.body.starts_with("The number for SMS login codes of ") || sms.body.starts_with("SMS login for ") {
                assert!(!logs.contains(&sms.to[1..]), "a full number reached a log:\n{logs}");
                continue;
            }
            let code = sms.code();
            assert!(!logs.contains(&code), "a code ({code}) reached a log:\n{logs}");
            assert!(!logs.contains(&sms.to[1..]), "a full number reached a log:\n{logs}");
        }
        assert!(!logs.contains(crate::fake_twilio::AUTH_TOKEN), "the auth token reached a log");
    }
}
