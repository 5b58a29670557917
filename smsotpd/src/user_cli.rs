//! smsotp: the users' own command, a client of org.smsotp.User1. It runs as
//! the user and acts on the user's own account only: the daemon takes the
//! account from the bus, never from this program.
//!
//! The command line is declared once, here (clap): `--help`, usage errors
//! (exit 2, before any bus connection), smsotp(1) and the README's list are
//! checked against these definitions (tests/docs.rs).

use std::io::{BufRead, Write};

use clap::{Parser, Subcommand};
use serde::Serialize;
use smsotp_proto::{AccountStatus, Error as WireError, Factor, SYSTEM_BUS_ADDRESS, Status, User1Proxy, WireEnum};

use crate::clock::{format_rfc3339, format_utc};
use crate::ctl::{Failure, Json, fail, json, say};

pub const EXIT_CODES: &str = "exit codes: 0 done, 1 refused or failed, 2 usage, 3 daemon unreachable, 4 not enrolled";

#[derive(Debug, Parser)]
#[command(name = "smsotp", version, about = "Your own SMS login: status, number, authenticator app, recovery codes, trusted machines", after_help = EXIT_CODES)]
pub struct Cli {
    /// D-Bus address of the bus smsotpd is on
    #[arg(long, value_name = "ADDRESS", default_value = SYSTEM_BUS_ADDRESS)]
    pub bus: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Your factors, masked number, trusted machines, recent sign-ins and failures
    Status(Json),
    /// Move your login codes to a new number (a code sent there proves it)
    ChangeNumber {
        /// the new number with + and the country code, e.g. +14155550123
        number: String,
    },
    /// Add an authenticator app (shows a QR code; its first code confirms it)
    Totp,
    /// Make 10 new single-use recovery codes (the old ones stop working)
    RecoveryCodes,
    /// Choose what a login asks for first
    Default {
        /// sms, voice (a call reads the code; where the server places calls) or totp
        #[arg(value_parser = ["sms", "voice", "totp"])]
        factor: String,
    },
    /// Machines you are trusted on, and revoking that trust
    #[command(subcommand)]
    Trust(TrustCommand),
}

#[derive(Debug, Subcommand)]
pub enum TrustCommand {
    /// Machines you are trusted on
    List(Json),
    /// Revoke trust for one machine or for all of them
    Revoke {
        /// a machine id from `smsotp trust list`
        #[arg(long, value_name = "ID", required_unless_present = "all", conflicts_with = "all")]
        machine: Option<String>,
        /// every machine
        #[arg(long)]
        all: bool,
    },
}

fn from_daemon(e: WireError, bus: &str) -> Failure {
    match &e {
        WireError::NotEnrolled(text) => fail(4, format!("SMS login is not set up for you yet: {text}")),
        _ if e.is_no_daemon() => fail(3, format!("smsotpd is not running on {bus}; ask your administrator")),
        _ if e.is_bus_access_denied() => fail(
            1,
            "the D-Bus policy does not let you call smsotpd (is /usr/share/dbus-1/system.d/org.smsotp.SmsOtp1.conf installed?)",
        ),
        WireError::ZBus(z) => fail(1, z.to_string()),
        other => fail(1, other.text().to_owned()),
    }
}

/// Reads one answer; None at the end of input.
fn ask(input: &mut dyn BufRead, out: &mut dyn Write, prompt: &str) -> Result<Option<String>, Failure> {
    write!(out, "{prompt}").and_then(|()| out.flush()).map_err(|e| fail(1, e.to_string()))?;
    let mut line = String::new();
    match input.read_line(&mut line) {
        Ok(0) => Ok(None),
        Ok(_) => Ok(Some(line.trim().to_owned())),
        Err(e) => Err(fail(1, e.to_string())),
    }
}

#[derive(Serialize)]
struct StatusJson<'a> {
    user: &'a str,
    enrolled: bool,
    number: &'a str,
    pending_number: Option<&'a str>,
    pending_from: Option<String>,
    factors: Vec<&'static str>,
    recovery_codes_left: u32,
    failures: u32,
    locked_until: Option<String>,
    awaiting_approval: bool,
    trusted_machines: Vec<String>,
    recent: Vec<(String, &'static str, &'a str, &'a str)>,
}

fn factor_words(f: Factor) -> &'static str {
    match f {
        Factor::Sms => "SMS",
        Factor::Voice => "voice call",
        Factor::Totp => "authenticator app",
        Factor::Recovery => "recovery codes",
    }
}

fn print_status(s: &AccountStatus, out: &mut dyn Write) -> Result<(), Failure> {
    if !s.enrolled {
        return say(out, format!("{}: SMS login is not set up yet; you set it up at your next login", s.user));
    }
    say(out, format!("user:        {}", s.user))?;
    if s.awaiting_approval {
        say(out, "state:       waiting for an administrator to approve your number")?;
    }
    say(out, format!("number:      {}", s.destination))?;
    if !s.pending_destination.is_empty() {
        say(out, format!("new number:  {} from {}", s.pending_destination, format_utc(s.pending_from)))?;
    }
    let factors: Vec<&str> = s.factors.iter().map(|f| factor_words(*f)).collect();
    say(out, format!("factors:     {} (asked first: {})", factors.join(", "), factors.first().unwrap_or(&"SMS")))?;
    if s.factors.contains(&Factor::Recovery) || s.recovery_codes_left > 0 {
        say(out, format!("recovery:    {} codes left", s.recovery_codes_left))?;
    }
    if s.factors == [Factor::Sms] {
        say(
            out,
            "advice:      SMS is the weakest factor; add an app (smsotp totp) and recovery codes (smsotp recovery-codes)",
        )?;
    }
    if s.locked_until > 0 {
        say(out, format!("locked:      until {}", format_utc(s.locked_until)))?;
    } else if s.failures > 0 {
        say(out, format!("failures:    {} wrong answers since your last sign-in", s.failures))?;
    }
    say(out, format!("trusted:     {} machine(s)", s.trusted.len()))?;
    for t in &s.trusted {
        say(out, format!("  {} ({}) until {}", t.machine, t.service, format_utc(t.expires)))?;
    }
    say(out, "recent:")?;
    if s.recent.is_empty() {
        say(out, "  nothing yet")?;
    }
    for h in &s.recent {
        let from = if h.rhost.is_empty() { "this machine" } else { &h.rhost };
        say(out, format!("  {}  {:<8} {} from {}", format_utc(h.at), h.what.wire(), h.service, from))?;
    }
    Ok(())
}

/// Draws `text` as a QR code with half-block characters, dark on light.
fn qr(text: &str) -> Result<String, Failure> {
    let code = qrcode::QrCode::new(text.as_bytes()).map_err(|e| fail(1, format!("cannot draw the QR code: {e}")))?;
    Ok(code
        .render::<qrcode::render::unicode::Dense1x2>()
        .dark_color(qrcode::render::unicode::Dense1x2::Light)
        .light_color(qrcode::render::unicode::Dense1x2::Dark)
        .build())
}

/// Asks for codes until the daemon says right, too many, or expired.
async fn confirm<F, Fut>(
    input: &mut dyn BufRead,
    out: &mut dyn Write,
    prompt: &str,
    mut check: F,
) -> Result<(), Failure>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = Result<(Status, u32), Failure>>,
{
    loop {
        let Some(code) = ask(input, out, prompt)? else {
            return Err(fail(1, "no code given; nothing changed"));
        };
        match check(code).await? {
            (Status::Accepted, _) => return Ok(()),
            (Status::Wrong, left) => say(out, format!("Wrong code. {left} tries left."))?,
            (Status::TooManyTries, _) => return Err(fail(1, "too many wrong codes; nothing changed. Start again.")),
            (Status::Expired, _) => return Err(fail(1, "the code expired; nothing changed. Start again.")),
            (other, _) => return Err(fail(1, format!("unexpected answer {other}"))),
        }
    }
}

/// Runs one parsed command; answers are read from `input`.
pub async fn run(cli: Cli, input: &mut dyn BufRead, out: &mut dyn Write) -> Result<(), Failure> {
    let bus = cli.bus.as_str();
    let conn = crate::ctl::connect(bus).await?;
    let proxy = User1Proxy::new(&conn).await.map_err(|e| fail(1, e.to_string()))?;
    let daemon = |e: WireError| from_daemon(e, bus);
    match cli.command {
        Command::Status(Json { json: as_json }) => {
            let s = proxy.status().await.map_err(daemon)?;
            if !as_json {
                return print_status(&s, out);
            }
            json(
                out,
                &StatusJson {
                    user: &s.user,
                    enrolled: s.enrolled,
                    number: &s.destination,
                    pending_number: (!s.pending_destination.is_empty()).then_some(s.pending_destination.as_str()),
                    pending_from: (s.pending_from > 0).then(|| format_rfc3339(s.pending_from)),
                    factors: s.factors.iter().map(|f| f.wire()).collect(),
                    recovery_codes_left: s.recovery_codes_left,
                    failures: s.failures,
                    locked_until: (s.locked_until > 0).then(|| format_rfc3339(s.locked_until)),
                    awaiting_approval: s.awaiting_approval,
                    trusted_machines: s.trusted.iter().map(|t| t.machine.clone()).collect(),
                    recent: s
                        .recent
                        .iter()
                        .map(|h| (format_rfc3339(h.at), h.what.wire(), h.service.as_str(), h.rhost.as_str()))
                        .collect(),
                },
            )
        }
        Command::ChangeNumber { number } => {
            let to = proxy.change_number(&number).await.map_err(daemon)?;
            say(out, format!("A code is on its way by SMS to {to}."))?;
            let from = std::cell::Cell::new(0);
            confirm(input, out, "Code from that SMS: ", |code| {
                let (proxy, from) = (&proxy, &from);
                async move {
                    let (status, left, at) = proxy.confirm_number(&code).await.map_err(daemon)?;
                    from.set(at);
                    Ok((status, left))
                }
            })
            .await?;
            let from = from.get();
            say(out, format!("Your new number {to} is confirmed. Machines you trusted must be trusted again."))?;
            say(
                out,
                format!(
                    "Login codes go to it from {}; until then they go to your old number, which was told of the change.",
                    format_utc(from)
                ),
            )
        }
        Command::Totp => {
            let (secret, uri) = proxy.add_app().await.map_err(daemon)?;
            say(out, "Scan this QR code with your authenticator app:")?;
            say(out, qr(&uri)?)?;
            say(out, format!("Or type this key into the app (time-based, 6 digits, 30 s): {secret}"))?;
            confirm(input, out, "Code the app shows now: ", |code| {
                let proxy = &proxy;
                async move { proxy.confirm_app(&code).await.map_err(daemon) }
            })
            .await?;
            say(out, "Your authenticator app is added and is asked first at login (smsotp default sms changes that).")?;
            say(out, "Make recovery codes too, for the day the phone is gone: smsotp recovery-codes")
        }
        Command::RecoveryCodes => {
            let codes = proxy.new_recovery_codes().await.map_err(|e| match e {
                WireError::RateLimited(_) => fail(1, "new recovery codes can be made once a minute; try again shortly"),
                other => daemon(other),
            })?;
            say(out, "Your recovery codes (each works once; earlier ones no longer work):")?;
            for c in &codes {
                say(out, format!("  {c}"))?;
            }
            say(out, "Keep them somewhere safe, away from your phone. They are shown only now.")
        }
        Command::Default { factor } => {
            let f = Factor::from_wire(&factor).ok_or_else(|| fail(2, format!("unknown factor {factor}")))?;
            proxy.set_default_factor(f).await.map_err(daemon)?;
            say(out, format!("Logins now ask for your {} first.", factor_words(f)))
        }
        Command::Trust(TrustCommand::List(Json { json: as_json })) => {
            let rows = proxy.list_trust().await.map_err(daemon)?;
            if as_json {
                let v: Vec<_> = rows
                    .iter()
                    .map(|t| {
                        serde_json::json!({
                            "machine": t.machine, "class": t.class.wire(), "service": t.service,
                            "created": format_rfc3339(t.created), "expires": format_rfc3339(t.expires),
                        })
                    })
                    .collect();
                return json(out, &v);
            }
            if rows.is_empty() {
                return say(out, "you are not trusted on any machine");
            }
            for t in rows {
                say(out, format!("{}  {}  until {}", t.machine, t.service, format_utc(t.expires)))?;
            }
            Ok(())
        }
        Command::Trust(TrustCommand::Revoke { machine, all: _ }) => {
            let n = proxy.revoke_trust(machine.as_deref().unwrap_or("")).await.map_err(daemon)?;
            say(out, format!("revoked trust for {n} machine(s)"))
        }
    }
}

/// Entry point of the smsotp binary.
pub fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let mut stdout = std::io::stdout();
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    crate::ctl::exit_with("smsotp", run(cli, &mut input, &mut stdout))
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
            &["smsotp", "frobnicate"][..],
            &["smsotp", "change-number"],
            &["smsotp", "default", "recovery"],
            &["smsotp", "trust", "revoke"],
            &["smsotp", "status", "root"],
        ] {
            let e = Cli::try_parse_from(bad).expect_err(&bad.join(" "));
            assert_eq!(e.exit_code(), 2, "{}", bad.join(" "));
        }
    }

    #[test]
    fn the_qr_code_is_drawn_in_blocks() {
        let drawn = qr("otpauth://totp/smsotp:alice@web1?secret=GEZDGNBV").unwrap();
        assert!(drawn.lines().count() > 10 && drawn.contains('█'), "{drawn}");
    }
}
