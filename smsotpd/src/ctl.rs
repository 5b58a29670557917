//! smsotpctl: the administrator's command line, a client of the daemon.
//!
//! Exit codes: 0 done; 1 the daemon refused or failed; 2 bad usage;
//! 3 the daemon cannot be reached; 4 the user is not enrolled;
//! 5 the configuration is invalid (check-config).

use std::io::Write;
use std::path::PathBuf;

use serde::Serialize;
use zbus::proxy;

use crate::config::{self, Config, Provider};
use crate::dbus::SYSTEM_BUS_ADDRESS;

pub const USAGE: &str = "usage: smsotpctl [--bus ADDRESS] COMMAND

commands:
  enroll USER +NUMBER       send USER's codes to NUMBER (E.164, e.g. +14155550123)
  unenroll USER             forget USER's number and counters
  list [--json]             enrolled users, masked numbers, lock state
  show USER [--json]        one user
  unlock USER               lift USER's lockout and clear the failure count
  test-send USER|+NUMBER    send a test SMS (no code) through the provider
  trust list USER [--json]  machines USER is trusted on
  trust revoke USER --machine ID | --all
                            revoke trust for one machine or all of them
  explain --user USER [--rhost ADDR] [--service NAME] [--auth-info TEXT] [--tty TTY]
                            what a login would meet (policy rule, trust), sending nothing
  check-config [--config PATH]
                            validate the configuration without the daemon
  doctor [--config PATH]    check sshd, the PAM stacks, the daemon, the config
                            and the provider credentials (sends no SMS)

exit codes: 0 done, 1 refused or failed, 2 usage, 3 daemon unreachable,
4 not enrolled, 5 invalid configuration, 6 doctor found problems";

#[proxy(interface = "org.smsotp.SmsOtp1", default_service = "org.smsotp.SmsOtp1", default_path = "/org/smsotp/SmsOtp1")]
pub trait SmsOtp1 {
    fn enroll(&self, user: &str, number: &str) -> zbus::Result<String>;
    fn unenroll(&self, user: &str) -> zbus::Result<()>;
    fn list_users(&self) -> zbus::Result<Vec<(String, String, u32, u64, String, u32)>>;
    fn show_user(&self, user: &str) -> zbus::Result<(String, String, u32, u64, String, u32)>;
    fn unlock(&self, user: &str) -> zbus::Result<()>;
    fn test_send(&self, target: &str) -> zbus::Result<String>;
    fn list_trust(&self, user: &str) -> zbus::Result<Vec<(String, String, String, u64, u64)>>;
    fn revoke_trust(&self, user: &str, machine: &str) -> zbus::Result<u32>;
    fn explain(
        &self,
        user: &str,
        context: std::collections::HashMap<&str, &str>,
    ) -> zbus::Result<Vec<(String, String)>>;
}

#[derive(Debug, Serialize)]
struct UserJson {
    user: String,
    number: String,
    failures: u32,
    locked_until: Option<String>,
    state: String,
    trusted_machines: u32,
}

fn user_json(r: (String, String, u32, u64, String, u32)) -> UserJson {
    UserJson {
        user: r.0,
        number: r.1,
        failures: r.2,
        locked_until: (r.4 == "locked").then(|| crate::clock::format_utc(r.3)),
        state: r.4,
        trusted_machines: r.5,
    }
}

#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

fn fail(code: u8, message: impl Into<String>) -> Failure {
    Failure { code, message: message.into() }
}

fn from_dbus(e: zbus::Error, bus: &str) -> Failure {
    match &e {
        zbus::Error::MethodError(name, text, _) => {
            let name = name.as_str();
            let text = text.clone().unwrap_or_default();
            if name.ends_with(".NotEnrolled") {
                fail(4, text)
            } else if name == "org.freedesktop.DBus.Error.ServiceUnknown"
                || name == "org.freedesktop.DBus.Error.NameHasNoOwner"
            {
                fail(3, format!("smsotpd is not running on {bus}; start it with: systemctl start smsotpd"))
            } else if name == "org.freedesktop.DBus.Error.AccessDenied" || name.ends_with(".PermissionDenied") {
                fail(1, format!("{text} (run smsotpctl as root)"))
            } else {
                fail(1, text)
            }
        }
        zbus::Error::InputOutput(_) | zbus::Error::Address(_) | zbus::Error::Handshake(_) => {
            fail(3, format!("cannot reach the D-Bus system bus at {bus}: {e}"))
        }
        _ => fail(1, e.to_string()),
    }
}

struct Args {
    bus: String,
    json: bool,
    all: bool,
    config: PathBuf,
    /// `--user`, `--rhost`, `--service`, `--auth-info`, `--tty`, `--machine`.
    values: std::collections::HashMap<String, String>,
    words: Vec<String>,
}

fn parse_args(argv: Vec<String>) -> Result<Args, Failure> {
    let mut a = Args {
        all: false,
        values: std::collections::HashMap::new(),
        bus: SYSTEM_BUS_ADDRESS.into(),
        json: false,
        config: PathBuf::from(config::DEFAULT_PATH),
        words: Vec::new(),
    };
    let mut it = argv.into_iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--bus" => a.bus = it.next().ok_or_else(|| fail(2, "--bus needs an address"))?,
            "--config" => a.config = it.next().ok_or_else(|| fail(2, "--config needs a path"))?.into(),
            "--json" => a.json = true,
            "--all" => a.all = true,
            "--user" | "--rhost" | "--service" | "--auth-info" | "--tty" | "--machine" => {
                let v = it.next().ok_or_else(|| fail(2, format!("{arg} needs a value")))?;
                a.values.insert(arg.trim_start_matches("--").to_owned(), v);
            }
            "--help" | "-h" => a.words = vec!["help".into()],
            s if s.starts_with("--") => {
                return Err(fail(2, format!("unknown option {s}\n{USAGE}")));
            }
            _ => a.words.push(arg),
        }
    }
    Ok(a)
}

/// Runs one command, writing its output to `out`.
pub async fn run(argv: Vec<String>, out: &mut dyn Write) -> Result<(), Failure> {
    let a = parse_args(argv)?;
    let words: Vec<&str> = a.words.iter().map(String::as_str).collect();
    let say = |out: &mut dyn Write, s: String| writeln!(out, "{s}").map_err(|e| fail(1, e.to_string()));
    match words.as_slice() {
        ["help"] => return say(out, USAGE.to_owned()),
        ["check-config"] => return check_config(&a.config, out),
        ["doctor"] => return doctor(&a, out).await,
        [] => return Err(fail(2, USAGE)),
        _ => {}
    }
    let conn = zbus::connection::Builder::address(a.bus.as_str())
        .map_err(|e| fail(2, format!("bad --bus address: {e}")))?
        .build()
        .await
        .map_err(|e| fail(3, format!("cannot reach the D-Bus system bus at {}: {e}", a.bus)))?;
    let proxy = SmsOtp1Proxy::new(&conn).await.map_err(|e| from_dbus(e, &a.bus))?;
    let bus = a.bus.as_str();
    match words.as_slice() {
        ["enroll", user, number] => {
            let masked = proxy.enroll(user, number).await.map_err(|e| from_dbus(e, bus))?;
            say(out, format!("{user} enrolled: codes go to {masked}"))
        }
        ["unenroll", user] => {
            proxy.unenroll(user).await.map_err(|e| from_dbus(e, bus))?;
            say(out, format!("{user} unenrolled"))
        }
        ["list"] => {
            let users: Vec<UserJson> =
                proxy.list_users().await.map_err(|e| from_dbus(e, bus))?.into_iter().map(user_json).collect();
            if a.json {
                say(out, serde_json::to_string_pretty(&users).map_err(|e| fail(1, e.to_string()))?)
            } else if users.is_empty() {
                say(out, "no users are enrolled".into())
            } else {
                say(out, format!("{:<20} {:<12} {:<9} {}", "USER", "NUMBER", "STATE", "FAILURES"))?;
                for u in users {
                    say(out, format!("{:<20} {:<12} {:<9} {}", u.user, u.number, u.state, u.failures))?;
                }
                Ok(())
            }
        }
        ["show", user] => {
            let u = user_json(proxy.show_user(user).await.map_err(|e| from_dbus(e, bus))?);
            if a.json {
                say(out, serde_json::to_string_pretty(&u).map_err(|e| fail(1, e.to_string()))?)
            } else {
                say(
                    out,
                    format!(
                        "user:       {}\nnumber:     {}\nstate:      {}{}\nfailures:   {}\ntrusted:    {} machine(s)",
                        u.user,
                        u.number,
                        u.state,
                        u.locked_until.map(|t| format!(" until {t}")).unwrap_or_default(),
                        u.failures,
                        u.trusted_machines
                    ),
                )
            }
        }
        ["unlock", user] => {
            proxy.unlock(user).await.map_err(|e| from_dbus(e, bus))?;
            say(out, format!("{user} unlocked"))
        }
        ["trust", "list", user] => {
            let records = proxy.list_trust(user).await.map_err(|e| from_dbus(e, bus))?;
            if a.json {
                let rows: Vec<serde_json::Value> = records
                    .iter()
                    .map(|(m, c, s, created, expires)| {
                        serde_json::json!({"machine": m, "class": c, "service": s,
                            "created": crate::clock::format_utc(*created), "expires": crate::clock::format_utc(*expires)})
                    })
                    .collect();
                say(out, serde_json::to_string_pretty(&rows).map_err(|e| fail(1, e.to_string()))?)
            } else if records.is_empty() {
                say(out, format!("{user} has no trusted machines"))
            } else {
                for (m, c, s, _, expires) in records {
                    say(out, format!("{m}  {c} {s}  until {}", crate::clock::format_utc(expires)))?;
                }
                Ok(())
            }
        }
        ["trust", "revoke", user] => {
            let machine = match (a.values.get("machine"), a.all) {
                (Some(m), false) => m.as_str(),
                (None, true) => "",
                _ => return Err(fail(2, "trust revoke needs --machine ID (from smsotpctl trust list) or --all")),
            };
            let n = proxy.revoke_trust(user, machine).await.map_err(|e| from_dbus(e, bus))?;
            say(out, format!("revoked {n} trust record(s) of {user}"))
        }
        ["explain"] => {
            let user = a.values.get("user").ok_or_else(|| fail(2, "explain needs --user USER"))?;
            let mut ctx = std::collections::HashMap::new();
            for (key, wire) in [("rhost", "rhost"), ("service", "service"), ("auth-info", "auth_info"), ("tty", "tty")]
            {
                if let Some(v) = a.values.get(key) {
                    ctx.insert(wire, v.as_str());
                }
            }
            if !ctx.contains_key("service") {
                ctx.insert("service", "sshd");
            }
            let lines = proxy.explain(user, ctx).await.map_err(|e| from_dbus(e, bus))?;
            for (k, v) in lines {
                say(out, format!("{:<9} {v}", format!("{k}:")))?;
            }
            Ok(())
        }
        ["test-send", target] => {
            let masked = proxy.test_send(target).await.map_err(|e| from_dbus(e, bus))?;
            say(out, format!("test message sent to {masked}"))
        }
        _ => Err(fail(2, format!("unknown command or wrong number of arguments: {}\n{USAGE}", words.join(" ")))),
    }
}

async fn doctor(a: &Args, out: &mut dyn Write) -> Result<(), Failure> {
    use crate::doctor::{Finding, Level};
    let io = |e: std::io::Error| fail(1, e.to_string());
    let creds = std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from);
    let mut findings: Vec<Finding> = Vec::new();
    let cfg = match Config::load(&a.config, creds.as_deref()) {
        Ok(c) => {
            findings.push(Finding {
                level: Level::Ok,
                what: format!("config: {} is valid and private", a.config.display()),
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
        let conn = zbus::connection::Builder::address(a.bus.as_str())?.build().await?;
        let proxy = SmsOtp1Proxy::new(&conn).await?;
        proxy.list_users().await
    };
    findings.push(match reach.await {
        Ok(users) => Finding {
            level: Level::Ok,
            what: format!("daemon: smsotpd answers on {} ({} enrolled)", a.bus, users.len()),
            fix: String::new(),
        },
        Err(e) => Finding {
            level: Level::Fail,
            what: format!("daemon: smsotpd does not answer on {}: {e}", a.bus),
            fix: "systemctl enable --now smsotpd; journalctl -u smsotpd".into(),
        },
    });
    if let Some(cfg) = &cfg {
        let clock: crate::clock::SharedClock = std::sync::Arc::new(crate::clock::SystemClock);
        let check = match crate::server::provider(cfg, clock) {
            Ok(crate::provider::AnyProvider::Twilio(t)) => Some(t.check_credentials().await.map_err(|e| e.to_string())),
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
                findings.push(Finding { level: Level::Ok, what: format!("provider: {msg}"), fix: String::new() })
            }
            Some(Err(e)) => findings.push(Finding {
                level: Level::Fail,
                what: format!("provider: {e}"),
                fix: "check twilio.account_sid and the token or API key; smsotpctl test-send USER".into(),
            }),
            None => {}
        }
    }
    let failed = crate::doctor::print(&findings, out).map_err(io)?;
    if failed { Err(fail(6, "problems found; see the FAIL lines above")) } else { Ok(()) }
}

fn check_config(path: &std::path::Path, out: &mut dyn Write) -> Result<(), Failure> {
    let creds = std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from);
    let cfg = Config::load(path, creds.as_deref()).map_err(|e| fail(5, e.to_string()))?;
    let provider = match &cfg.provider {
        Provider::TwilioMessaging(_) => "twilio-messaging".to_owned(),
        Provider::TwilioVerify(_) => "twilio-verify".to_owned(),
        Provider::Outbox { path } => {
            format!("outbox ({}; codes are NOT sent by SMS)", path.display())
        }
    };
    writeln!(
        out,
        "{}: OK\nprovider:   {provider}\nunenrolled: {:?}\ncodes:      {} digits, valid {} s, {} attempts, {} resends\nlockout:    after {} failures for {} min\nstate:      {}",
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
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "smsotpctl: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout();
    match runtime.block_on(run(argv, &mut stdout)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(f) => {
            let _ = writeln!(std::io::stderr(), "smsotpctl: {}", f.message);
            std::process::ExitCode::from(f.code)
        }
    }
}
