//! smsotpctl: the administrator's command line, a client of the daemon.
//!
//! The command line is declared once, here (clap): `--help`, per-command
//! help, usage errors (exit 2, before any bus connection) and the README's
//! command list all come from these definitions.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use serde::Serialize;
use smsotp_proto::{
    Error as WireError, ExplainLine, LoginContext, SYSTEM_BUS_ADDRESS, SmsOtp1Proxy, UserRow, UserState,
};

use crate::clock::{format_rfc3339, format_utc};
use crate::config;

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
    /// The shared database (store.kind = "postgresql"): its schema
    #[command(subcommand)]
    Db(crate::ctl_store::DbCommand),
    /// Move this host's records into the configured store
    #[command(subcommand)]
    Store(crate::ctl_store::StoreCommand),
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

/// The bus at `bus` (--bus), for smsotpctl and smsotp. Turned away for
/// load, it asks again, for half a minute at most.
pub(crate) async fn connect(bus: &str) -> Result<zbus::Connection, Failure> {
    zbus::Address::try_from(bus).map_err(|e| fail(2, format!("bad --bus address: {e}")))?;
    tokio::time::timeout(std::time::Duration::from_secs(30), smsotp_proto::connect_patiently(bus, None))
        .await
        .map_err(|_| fail(3, format!("the D-Bus system bus at {bus} turned us away for 30 s; it is overloaded")))?
        .map_err(|e| fail(3, format!("cannot reach the D-Bus system bus at {bus}: {e}")))
}

/// Runs one parsed command, writing its output to `out`.
pub async fn run(cli: Cli, out: &mut dyn Write) -> Result<(), Failure> {
    let bus = cli.bus.as_str();
    match &cli.command {
        Command::CheckConfig(c) => return crate::ctl_checks::check_config(&c.config, out),
        Command::Doctor(c) => return crate::ctl_checks::doctor(bus, &c.config, out).await,
        Command::Db(c) => return crate::ctl_store::db(c, out),
        Command::Store(c) => return crate::ctl_store::store(c, out),
        _ => {}
    }
    let conn = connect(bus).await?;
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
        Command::CheckConfig(_) | Command::Doctor(_) | Command::Db(_) | Command::Store(_) => Ok(()),
    }
}

/// This system's local accounts (/etc/passwd, /etc/group); directory users
/// (LDAP, SSSD) are not listed.
pub(crate) fn local_accounts() -> Result<Vec<crate::rollout::Account>, String> {
    let read = |p: &str| std::fs::read_to_string(p).map_err(|e| format!("cannot read {p}: {e}"));
    Ok(crate::rollout::login_accounts(&read("/etc/passwd")?, &read("/etc/group")?))
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
