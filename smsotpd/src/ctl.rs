//! smsotpctl: the administrator's command line, a client of the daemon.
//!
//! The command line is declared once, here (clap): `--help`, per-command
//! help, usage errors (exit 2, before any bus connection) and the README's
//! command list all come from these definitions.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};
use serde::Serialize;
use smsotp_proto::{
    Error as WireError, ExplainLine, LoginContext, SYSTEM_BUS_ADDRESS, SmsOtp1Proxy, UserRow, UserState,
};

use crate::clock::{format_rfc3339, format_utc};
use crate::config::{self, Config, Provider};

/// Exit codes, shown by `--help` and documented in smsotpctl(8) and the README.
pub const EXIT_CODES: &str = "exit codes: 0 done, 1 refused or failed, 2 usage, 3 daemon unreachable, \
4 not enrolled, 5 invalid configuration, 6 doctor found problems";

#[derive(Debug, Parser)]
#[command(name = "smsotpctl", version, about = "Administer smsotpd: enrollments, lockouts, trusted machines", after_help = EXIT_CODES)]
pub struct Cli {
    /// D-Bus address of the bus smsotpd is on
    #[arg(long, value_name = "ADDRESS", default_value = SYSTEM_BUS_ADDRESS)]
    pub bus: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Send USER's codes to NUMBER (E.164, e.g. +14155550123)
    Enroll {
        /// the login name (it must exist on this system)
        user: String,
        /// the phone number in E.164 form: "+" and 8 to 15 digits
        number: String,
    },
    /// Forget USER's number, counters and trust records
    Unenroll { user: String },
    /// Enrolled users, masked numbers, lock state
    List(Json),
    /// One user's state
    Show {
        user: String,
        #[command(flatten)]
        json: Json,
    },
    /// Lift USER's lockout and clear the failure count
    Unlock { user: String },
    /// Forget USER's number, app and recovery codes; they enroll again at their next login
    Reset { user: String },
    /// Users whose number, proven at login, waits for approval (enrollment.approval)
    Pending,
    /// Let USER's number, proven at login, sign in
    Approve { user: String },
    /// Issue a one-time break-glass code that USER types instead of an SMS code
    Bypass {
        /// the login name (it must exist on this system; it need not be enrolled)
        user: String,
        /// how long the code stays valid, 1 to 1440
        #[arg(long, default_value_t = 60, value_name = "N")]
        minutes: u32,
    },
    /// Send a test SMS (no code) through the provider
    TestSend {
        /// an enrolled user, or a number in E.164 form
        #[arg(value_name = "USER|+NUMBER")]
        target: String,
    },
    /// Machines a user is trusted on, and revoking that trust
    #[command(subcommand)]
    Trust(TrustCommand),
    /// What a login would meet (policy rule, trust), sending nothing
    Explain {
        #[arg(long)]
        user: String,
        /// the remote address, as sshd gives it
        #[arg(long, value_name = "ADDR")]
        rhost: Option<String>,
        /// the PAM service
        #[arg(long, value_name = "NAME", default_value = "sshd")]
        service: String,
        /// sshd's SSH_AUTH_INFO_0 (with ExposeAuthInfo yes)
        #[arg(long, value_name = "TEXT")]
        auth_info: Option<String>,
        #[arg(long)]
        tty: Option<String>,
        #[command(flatten)]
        json: Json,
    },
    /// Validate the configuration without the daemon
    CheckConfig(ConfigPath),
    /// Check sshd, the PAM stacks, the daemon, the config and the provider credentials (sends no SMS)
    Doctor(ConfigPath),
    /// Local accounts that can log in and have no number, root and administrators first
    Rollout,
}

#[derive(Debug, Subcommand)]
pub enum TrustCommand {
    /// Machines USER is trusted on
    List {
        user: String,
        #[command(flatten)]
        json: Json,
    },
    /// Revoke trust for one machine or for all of them
    Revoke {
        user: String,
        /// a machine id from `smsotpctl trust list`
        #[arg(long, value_name = "ID", required_unless_present = "all", conflicts_with = "all")]
        machine: Option<String>,
        /// every machine of USER
        #[arg(long)]
        all: bool,
    },
}

#[derive(Debug, Args)]
pub struct Json {
    /// print JSON (timestamps in RFC 3339) instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ConfigPath {
    /// the configuration file
    #[arg(long, value_name = "PATH", default_value = config::DEFAULT_PATH)]
    pub config: PathBuf,
}

#[derive(Debug, Serialize)]
struct UserJson {
    user: String,
    number: String,
    failures: u32,
    locked_until: Option<String>,
    state: UserState,
    trusted_machines: u32,
}

fn user_json(r: UserRow) -> UserJson {
    UserJson {
        locked_until: (r.state == UserState::Locked).then(|| format_rfc3339(r.locked_until)),
        user: r.user,
        number: r.destination,
        failures: r.failures,
        state: r.state,
        trusted_machines: r.trusted_machines,
    }
}

#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

pub(crate) fn fail(code: u8, message: impl Into<String>) -> Failure {
    Failure { code, message: message.into() }
}

fn from_daemon(e: WireError, bus: &str) -> Failure {
    match &e {
        WireError::NotEnrolled(text) => fail(4, text.clone()),
        _ if e.is_no_daemon() => {
            fail(3, format!("smsotpd is not running on {bus}; start it with: systemctl start smsotpd"))
        }
        WireError::PermissionDenied(text) => fail(1, format!("{text} (run smsotpctl as root)")),
        _ if e.is_bus_access_denied() => fail(1, format!("{} (run smsotpctl as root)", zbus_text(&e))),
        WireError::ZBus(z) => from_bus(z, bus),
        other => fail(1, other.text().to_owned()),
    }
}

fn zbus_text(e: &WireError) -> String {
    match e {
        WireError::ZBus(zbus::Error::MethodError(_, Some(text), _)) => text.clone(),
        other => other.to_string(),
    }
}

fn from_bus(e: &zbus::Error, bus: &str) -> Failure {
    match e {
        zbus::Error::InputOutput(_) | zbus::Error::Address(_) | zbus::Error::Handshake(_) => {
            fail(3, format!("cannot reach the D-Bus system bus at {bus}: {e}"))
        }
        _ => fail(1, e.to_string()),
    }
}

pub(crate) fn say(out: &mut dyn Write, s: impl std::fmt::Display) -> Result<(), Failure> {
    writeln!(out, "{s}").map_err(|e| fail(1, e.to_string()))
}

pub(crate) fn json(out: &mut dyn Write, v: &impl Serialize) -> Result<(), Failure> {
    say(out, serde_json::to_string_pretty(v).map_err(|e| fail(1, e.to_string()))?)
}

/// Runs one parsed command, writing its output to `out`.
pub async fn run(cli: Cli, out: &mut dyn Write) -> Result<(), Failure> {
    let bus = cli.bus.as_str();
    match &cli.command {
        Command::CheckConfig(c) => return check_config(&c.config, out),
        Command::Doctor(c) => return doctor(bus, &c.config, out).await,
        _ => {}
    }
    zbus::Address::try_from(bus).map_err(|e| fail(2, format!("bad --bus address: {e}")))?;
    // Turned away for load, it asks again, for half a minute at most.
    let conn = tokio::time::timeout(std::time::Duration::from_secs(30), smsotp_proto::connect_patiently(bus, None))
        .await
        .map_err(|_| fail(3, format!("the D-Bus system bus at {bus} turned us away for 30 s; it is overloaded")))?
        .map_err(|e| fail(3, format!("cannot reach the D-Bus system bus at {bus}: {e}")))?;
    let proxy = SmsOtp1Proxy::new(&conn).await.map_err(|e| from_bus(&e, bus))?;
    let daemon = |e: WireError| from_daemon(e, bus);
    match cli.command {
        Command::Enroll { user, number } => {
            let masked = proxy.enroll(&user, &number).await.map_err(daemon)?;
            say(out, format!("{user} enrolled: codes go to {masked}"))
        }
        Command::Unenroll { user } => {
            proxy.unenroll(&user).await.map_err(daemon)?;
            say(out, format!("{user} unenrolled"))
        }
        Command::Rollout => {
            let enrolled: std::collections::BTreeSet<String> =
                proxy.list_users().await.map_err(daemon)?.into_iter().map(|u| u.user).collect();
            let accounts = local_accounts().map_err(|e| fail(1, e))?;
            let left = crate::rollout::unenrolled(&accounts, &enrolled);
            if left.is_empty() {
                return say(
                    out,
                    format!("every local account that can log in has a number ({} enrolled)", enrolled.len()),
                );
            }
            say(
                out,
                "Local accounts that can log in and have no number; with unenrolled = \"deny\" they could not log in once pam_sms is on:",
            )?;
            for a in &left {
                say(out, format!("  {:<20} {}", a.name, a.admin.as_deref().unwrap_or("")))?;
            }
            say(
                out,
                format!(
                    "{} of {} without a number; enroll them with: smsotpctl enroll USER +NUMBER",
                    left.len(),
                    accounts.len()
                ),
            )
        }
        Command::List(Json { json: as_json }) => {
            let users: Vec<UserJson> = proxy.list_users().await.map_err(daemon)?.into_iter().map(user_json).collect();
            if as_json {
                json(out, &users)
            } else if users.is_empty() {
                say(out, "no users are enrolled")
            } else {
                say(out, format!("{:<20} {:<12} {:<9} {}", "USER", "NUMBER", "STATE", "FAILURES"))?;
                for u in users {
                    say(out, format!("{:<20} {:<12} {:<9} {}", u.user, u.number, u.state, u.failures))?;
                }
                Ok(())
            }
        }
        Command::Show { user, json: Json { json: as_json } } => {
            let row = proxy.show_user(&user).await.map_err(daemon)?;
            let factors = proxy.show_factors(&user).await.map_err(daemon)?;
            let until = (row.state == UserState::Locked).then(|| format_utc(row.locked_until));
            let u = user_json(row);
            let names: Vec<&str> = factors.factors.iter().map(|f| smsotp_proto::WireEnum::wire(*f)).collect();
            if as_json {
                let mut v = serde_json::to_value(&u).map_err(|e| fail(1, e.to_string()))?;
                v["factors"] = serde_json::json!(names);
                v["recovery_codes_left"] = serde_json::json!(factors.recovery_codes_left);
                if !factors.pending_destination.is_empty() {
                    v["pending_number"] = serde_json::json!(factors.pending_destination);
                    v["pending_from"] = serde_json::json!(format_rfc3339(factors.pending_from));
                }
                return json(out, &v);
            }
            let pending = if factors.pending_destination.is_empty() {
                String::new()
            } else {
                format!("\nnew number: {} from {}", factors.pending_destination, format_utc(factors.pending_from))
            };
            say(
                out,
                format!(
                    "user:       {}\nnumber:     {}{pending}\nstate:      {}{}\nfactors:    {} (asked first: {})\nrecovery:   {} codes left\nfailures:   {}\ntrusted:    {} machine(s)",
                    u.user,
                    u.number,
                    u.state,
                    until.map(|t| format!(" until {t}")).unwrap_or_default(),
                    names.join(", "),
                    names.first().unwrap_or(&"sms"),
                    factors.recovery_codes_left,
                    u.failures,
                    u.trusted_machines
                ),
            )
        }
        Command::Reset { user } => {
            proxy.reset_user(&user).await.map_err(daemon)?;
            say(
                out,
                format!("{user} reset: factors forgotten, the old number told; {user} enrolls again at the next login"),
            )
        }
        Command::Pending => {
            let waiting: Vec<UserRow> = proxy
                .list_users()
                .await
                .map_err(daemon)?
                .into_iter()
                .filter(|u| u.state == UserState::AwaitingApproval)
                .collect();
            if waiting.is_empty() {
                return say(out, "no number waits for approval");
            }
            for u in waiting {
                say(out, format!("{:<20} {}", u.user, u.destination))?;
            }
            say(out, "approve one with: smsotpctl approve USER (or remove it: smsotpctl unenroll USER)")
        }
        Command::Approve { user } => {
            proxy.approve(&user).await.map_err(daemon)?;
            say(out, format!("{user} approved: their number now signs them in"))
        }
        Command::Unlock { user } => {
            proxy.unlock(&user).await.map_err(daemon)?;
            say(out, format!("{user} unlocked"))
        }
        Command::Bypass { user, minutes } => {
            let (code, until) = proxy.issue_bypass(&user, minutes).await.map_err(daemon)?;
            let code = zeroize::Zeroizing::new(code);
            say(
                out,
                format!(
                    "Bypass code for {user}: {}\nIt replaces an SMS code once, at the \"SMS code:\" prompt, until {} \
                     (shown only now; a new one replaces it).",
                    code.as_str(),
                    crate::clock::format_utc(until)
                ),
            )
        }
        Command::Trust(TrustCommand::List { user, json: Json { json: as_json } }) => {
            let records = proxy.list_trust(&user).await.map_err(daemon)?;
            if as_json {
                let rows: Vec<serde_json::Value> = records
                    .iter()
                    .map(|t| {
                        serde_json::json!({"machine": t.machine, "class": t.class, "service": t.service,
                            "created": format_rfc3339(t.created), "expires": format_rfc3339(t.expires)})
                    })
                    .collect();
                json(out, &rows)
            } else if records.is_empty() {
                say(out, format!("{user} has no trusted machines"))
            } else {
                for t in records {
                    say(out, format!("{}  {} {}  until {}", t.machine, t.class, t.service, format_utc(t.expires)))?;
                }
                Ok(())
            }
        }
        Command::Trust(TrustCommand::Revoke { user, machine, all }) => {
            // clap guarantees exactly one of --machine and --all.
            let machine = if all { String::new() } else { machine.unwrap_or_default() };
            let n = proxy.revoke_trust(&user, &machine).await.map_err(daemon)?;
            say(out, format!("revoked {n} trust record(s) of {user}"))
        }
        Command::Explain { user, rhost, service, auth_info, tty, json: Json { json: as_json } } => {
            let ctx = LoginContext {
                service,
                rhost: rhost.unwrap_or_default(),
                tty: tty.unwrap_or_default(),
                auth_info: auth_info.unwrap_or_default(),
            };
            let lines: Vec<ExplainLine> = proxy.explain(&user, ctx.to_wire()).await.map_err(daemon)?;
            if as_json {
                let map: serde_json::Map<String, serde_json::Value> =
                    lines.into_iter().map(|l| (l.key.to_string(), serde_json::Value::String(l.text))).collect();
                return json(out, &map);
            }
            for l in lines {
                say(out, format!("{:<9} {}", format!("{}:", l.key), l.text))?;
            }
            Ok(())
        }
        Command::TestSend { target } => {
            let masked = proxy.test_send(&target).await.map_err(daemon)?;
            say(out, format!("test message sent to {masked}"))
        }
        Command::CheckConfig(_) | Command::Doctor(_) => Ok(()),
    }
}

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

/// This system's local accounts (/etc/passwd, /etc/group); directory users
/// (LDAP, SSSD) are not listed.
fn local_accounts() -> Result<Vec<crate::rollout::Account>, String> {
    let read = |p: &str| std::fs::read_to_string(p).map_err(|e| format!("cannot read {p}: {e}"));
    Ok(crate::rollout::login_accounts(&read("/etc/passwd")?, &read("/etc/group")?))
}

async fn doctor(bus: &str, config: &Path, out: &mut dyn Write) -> Result<(), Failure> {
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

fn check_config(path: &Path, out: &mut dyn Write) -> Result<(), Failure> {
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

/// Entry point of the smsotpctl binary.
pub fn main() -> std::process::ExitCode {
    // Usage errors, --help and --version end here, before any bus connection.
    let cli = Cli::parse();
    let mut stdout = std::io::stdout();
    exit_with("smsotpctl", run(cli, &mut stdout))
}

/// Runs a command line's work on a one-thread runtime; failures go to
/// stderr as "NAME: message" and become the exit code (smsotpctl, smsotp).
pub(crate) fn exit_with(
    name: &str,
    work: impl std::future::Future<Output = Result<(), Failure>>,
) -> std::process::ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "{name}: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(work) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(f) => {
            let _ = writeln!(std::io::stderr(), "{name}: {}", f.message);
            std::process::ExitCode::from(f.code)
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn usage_errors_are_found_before_any_connection() {
        for bad in [
            &["smsotpctl", "frobnicate"][..],
            &["smsotpctl", "enroll"],
            &["smsotpctl", "enroll", "--all", "alice", "+14155550123"],
            &["smsotpctl", "trust", "revoke", "alice"],
            &["smsotpctl", "trust", "revoke", "alice", "--all", "--machine", "x"],
            &["smsotpctl", "unlock", "alice", "--json"],
            &["smsotpctl", "check-config", "--json"],
        ] {
            let e = Cli::try_parse_from(bad).expect_err(&bad.join(" "));
            assert_eq!(e.exit_code(), 2, "{}", bad.join(" "));
        }
        let ok = Cli::try_parse_from(["smsotpctl", "explain", "--user", "alice", "--json"]);
        assert!(ok.is_ok(), "explain --json is documented");
    }
}
