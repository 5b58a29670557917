//! smsotpctl's checks that need no daemon: `doctor` (sshd, the PAM
//! stacks, the daemon, the config and every provider's credentials, sending
//! nothing) and `check-config`. ctl.rs holds the commands that talk to it.

use std::io::Write;
use std::path::Path;

use crate::config::{self, Config, Provider};
use crate::ctl::{Failure, fail, local_accounts};
use smsotp_proto::SmsOtp1Proxy;

/// Whether any number in the world may be texted (toll fraud).
fn destinations_finding(c: &Config) -> crate::doctor::Finding {
    use crate::doctor::{Finding, Level};
    match &c.destinations {
        Some(list) => Finding {
            level: Level::Ok,
            what: format!("destinations: SMS go only to {}", list.join(", ")),
            fix: String::new(),
        },
        None => Finding {
            level: Level::Warn,
            what: "destinations: no [destinations] countries: any number in the world may be texted, premium ranges included".into(),
            fix: "list the calling codes your users have, e.g. [destinations] countries = [\"+1\"] (README: destinations.countries)".into(),
        },
    }
}

/// How much of codes.sms_per_host_per_day the last 24 hours used.
fn daily_budget_finding(c: &Config) -> crate::doctor::Finding {
    use crate::clock::Clock;
    use crate::doctor::{Finding, Level};
    let text = std::fs::read_to_string(crate::limits::ledger_path(&c.state_directory)).unwrap_or_default();
    let used = crate::limits::sends_in_last_day(&text, crate::clock::SystemClock.unix_now());
    let cap = c.codes.sms_per_host_per_day as usize;
    let what = format!("budget: {used} of {cap} SMS (codes.sms_per_host_per_day) in the last 24 hours");
    let fix = "look for abuse in the audit log (event=code-sent, event=unknown-user), then raise codes.sms_per_host_per_day if the traffic is real".to_owned();
    if used >= cap {
        Finding {
            level: Level::Fail,
            what: format!("{what}: no SMS goes out; only trusted machines and skip rules get in"),
            fix,
        }
    } else if used * 5 >= cap * 4 {
        Finding { level: Level::Warn, what, fix }
    } else {
        Finding { level: Level::Ok, what, fix: String::new() }
    }
}

pub(crate) async fn doctor(bus: &str, config: &Path, out: &mut dyn Write) -> Result<(), Failure> {
    use crate::doctor::{Finding, Level};
    let io = |e: std::io::Error| fail(1, e.to_string());
    let mut findings: Vec<Finding> = Vec::new();
    let loaded = config::credentials::for_tools(config::credentials::UNIT_DIRS)
        .and_then(|(creds, _)| Config::load_with(config, &creds));
    let cfg = match loaded {
        Ok(c) => {
            findings.push(Finding {
                level: Level::Ok,
                what: format!("config: {} is valid and private", config.display()),
                fix: String::new(),
            });
            Some(c)
        }
        Err(e) => {
            findings.push(Finding {
                level: Level::Fail,
                what: format!("config: {e}"),
                fix: "see smsotpd.toml(5); check with smsotpctl check-config".into(),
            });
            None
        }
    };
    let trust_mode = cfg.as_ref().is_some_and(|c| {
        !matches!(c.policy.default, crate::policy::Action::Always)
            || c.policy.rules.iter().any(|r| matches!(r.action, crate::policy::Action::Trust { .. }))
    });
    findings.extend(crate::doctor::check_system(std::path::Path::new("/etc/pam.d"), trust_mode));
    let reach = async {
        let conn = zbus::connection::Builder::address(bus)?.build().await?;
        let proxy = SmsOtp1Proxy::new(&conn).await?;
        proxy.list_users().await.map_err(|e| zbus::Error::Failure(e.to_string()))
    };
    if let Some(c) = &cfg {
        findings.push(daily_budget_finding(c));
        findings.push(destinations_finding(c));
        if let Some(f) = crate::ctl_store::database_finding(c) {
            findings.push(f);
        }
    }
    let reached = reach.await;
    if let (Ok(users), Some(c)) = (&reached, &cfg)
        && c.unenrolled == config::Unenrolled::Deny
    {
        let enrolled = users.iter().map(|u| u.user.clone()).collect();
        let stacks = crate::doctor::services_asking_pam_sms(std::path::Path::new("/etc/pam.d"));
        let console = crate::policy::parse_rhost("");
        let facts = crate::policy::Facts { user: "root", service: "login", origin: &console, groups: &[] };
        let skipped = c.policy.decide(&facts).action == crate::policy::Action::Skip;
        match local_accounts() {
            Ok(accounts) => findings.push(crate::rollout::lockout_finding(&accounts, &enrolled, &stacks, skipped)),
            Err(e) => findings.push(Finding { level: Level::Warn, what: format!("rollout: {e}"), fix: String::new() }),
        }
    }
    findings.push(match reached {
        Ok(users) => Finding {
            level: Level::Ok,
            what: format!("daemon: smsotpd answers on {} ({} enrolled)", bus, users.len()),
            fix: String::new(),
        },
        Err(e) => Finding {
            level: Level::Fail,
            what: format!("daemon: smsotpd does not answer on {}: {e}", bus),
            fix: "systemctl enable --now smsotpd; journalctl -u smsotpd".into(),
        },
    });
    if let Some(cfg) = &cfg {
        let clock: crate::clock::SharedClock = std::sync::Arc::new(crate::clock::SystemClock);
        let mut providers = vec![("provider".to_owned(), crate::server::provider(cfg, clock.clone()))];
        // Every failover route's credentials too: a route that cannot send
        // is found now, not on the day it is needed.
        match crate::server::failover(cfg, clock) {
            Ok(routes) => {
                for (i, (p, channel)) in routes.into_iter().enumerate() {
                    let name = crate::provider::Provider::name(&p);
                    providers.push((format!("failover route {} ({name}, {})", i + 1, channel.name()), Ok(p)));
                }
            }
            Err(e) => providers.push(("failover".to_owned(), Err(e))),
        }
        for (label, built) in providers {
            provider_finding(&label, built, &mut findings).await;
        }
    }
    let failed = crate::doctor::print(&findings, out).map_err(io)?;
    if failed { Err(fail(6, "problems found; see the FAIL lines above")) } else { Ok(()) }
}

/// Checks one provider's credentials without sending anything.
async fn provider_finding(
    label: &str,
    built: Result<crate::provider::AnyProvider, String>,
    findings: &mut Vec<crate::doctor::Finding>,
) {
    use crate::doctor::{Finding, Level};
    {
        let check = match built {
            Ok(crate::provider::AnyProvider::Twilio(t)) => Some(t.check_credentials().await.map_err(|e| e.to_string())),
            Ok(crate::provider::AnyProvider::Plivo(p)) => Some(p.check_credentials().await.map_err(|e| e.to_string())),
            Ok(crate::provider::AnyProvider::Command(c)) => {
                Some(c.check_program().map(|()| "command: the program is root's and executable (not run)".to_owned()))
            }
            Ok(crate::provider::AnyProvider::Outbox(_)) => {
                findings.push(Finding {
                    level: Level::Warn,
                    what: "provider: outbox: codes are written to a file, not sent by SMS".into(),
                    fix: "set provider = \"twilio-messaging\" or \"twilio-verify\" for real use".into(),
                });
                None
            }
            Err(e) => Some(Err(e)),
        };
        match check {
            Some(Ok(msg)) => {
                findings.push(Finding { level: Level::Ok, what: format!("{label}: {msg}"), fix: String::new() })
            }
            Some(Err(e)) => findings.push(Finding {
                level: Level::Fail,
                what: format!("{label}: {e}"),
                fix: "check the account ID and the token or API key of that provider; smsotpctl test-send USER".into(),
            }),
            None => {}
        }
    }
}

pub(crate) fn check_config(path: &Path, out: &mut dyn Write) -> Result<(), Failure> {
    let (creds, credentials_from) =
        config::credentials::for_tools(config::credentials::UNIT_DIRS).map_err(|e| fail(5, e.to_string()))?;
    let cfg = Config::load_with(path, &creds).map_err(|e| fail(5, e.to_string()))?;
    let provider = match &cfg.provider {
        Provider::TwilioMessaging(_) => "twilio-messaging".to_owned(),
        Provider::TwilioVerify(_) => "twilio-verify".to_owned(),
        Provider::Outbox { path } => {
            format!("outbox ({}; codes are NOT sent by SMS)", path.display())
        }
        Provider::Command { path, timeout } => format!("command ({}, at most {} s)", path.display(), timeout.as_secs()),
        Provider::Plivo(p) => format!("plivo (Auth ID {})", p.auth_id),
    };
    writeln!(
        out,
        "{}: OK\nprovider:   {provider}\ncredentials: {credentials_from}\nunenrolled: {:?}\ncodes:      {} digits, valid {} s, {} attempts, {} resends\nlockout:    after {} failures for {} min\nstate:      {}",
        path.display(),
        cfg.unenrolled,
        cfg.codes.length,
        cfg.codes.expiry.as_secs(),
        cfg.codes.attempts,
        cfg.codes.resends,
        cfg.lockout.failures,
        cfg.lockout.duration.as_secs() / 60,
        cfg.state_directory.display()
    )
    .map_err(|e| fail(1, e.to_string()))
}
