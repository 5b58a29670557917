//! Module arguments from the PAM service file.
//!
//! Strict: an unknown, repeated or malformed argument is a configuration
//! error (PAM_SERVICE_ERR), never silently ignored, because a typo such as
//! `fail_mode=secur` must not quietly change how the module fails.

use std::ffi::CStr;
use std::time::Duration;

/// What to do when the daemon cannot be reached at the start of a login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailMode {
    /// PAM_AUTHINFO_UNAVAIL: nobody gets in without the daemon (default).
    Secure,
    /// PAM_IGNORE, logged every time: the rest of the stack decides.
    Safe,
}

/// How the message that ends a login (too many wrong codes, expired,
/// locked, could not be sent...) is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinalMessage {
    /// An error message, as any PAM application shows it.
    Message,
    /// Inside one last prompt whose answer is ignored: OpenSSH shows PAM
    /// messages only with the next prompt and drops one after the last.
    Prompt,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub debug: bool,
    /// Longest wait for one answer from the daemon.
    pub timeout: Duration,
    pub fail_mode: FailMode,
    /// D-Bus address; only for tests. Default: the system bus socket.
    pub bus: String,
    /// A non-root user allowed to own the daemon's bus name.
    pub daemon_user: Option<String>,
    /// None: `Prompt` for the service "sshd", `Message` for the others.
    pub final_message: Option<FinalMessage>,
}

impl Options {
    pub fn final_message_for(&self, service: &str) -> FinalMessage {
        self.final_message.unwrap_or(if service == "sshd" { FinalMessage::Prompt } else { FinalMessage::Message })
    }
}

/// The system bus socket, fixed: never taken from the environment, which
/// the user controls under sudo (CVE-2012-3524 class).
pub const SYSTEM_BUS: &str = "unix:path=/run/dbus/system_bus_socket";

/// Default `timeout=`: above the daemon's longest provider deadline (25 s),
/// so the daemon's own answer always arrives first.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
pub const MIN_TIMEOUT_SECONDS: u64 = 5;
pub const MAX_TIMEOUT_SECONDS: u64 = 300;

impl Default for Options {
    fn default() -> Self {
        Options {
            debug: false,
            timeout: DEFAULT_TIMEOUT,
            fail_mode: FailMode::Secure,
            bus: SYSTEM_BUS.to_owned(),
            daemon_user: None,
            final_message: None,
        }
    }
}

impl Options {
    /// Parses the arguments; the error names the bad argument and the fix.
    pub fn parse(args: &[&CStr]) -> Result<Options, String> {
        let mut o = Options::default();
        let mut seen: Vec<&str> = Vec::new();
        if args.len() > 16 {
            return Err(format!("{} arguments given; pam_sms takes at most 6", args.len()));
        }
        for raw in args {
            let arg = raw.to_str().map_err(|_| "an argument is not valid UTF-8".to_owned())?;
            let (key, value) = match arg.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (arg, None),
            };
            if seen.contains(&key) {
                return Err(format!("argument {key:?} is given twice; keep one"));
            }
            seen.push(key);
            match (key, value) {
                ("debug", None) => o.debug = true,
                ("timeout", Some(v)) => {
                    let secs: u64 = v
                        .parse()
                        .map_err(|_| format!("timeout={v:?} is not a whole number of seconds; e.g. timeout=30"))?;
                    if !(MIN_TIMEOUT_SECONDS..=MAX_TIMEOUT_SECONDS).contains(&secs) {
                        return Err(format!(
                            "timeout={secs} is out of range: use {MIN_TIMEOUT_SECONDS} to {MAX_TIMEOUT_SECONDS} seconds (default 30)"
                        ));
                    }
                    o.timeout = Duration::from_secs(secs);
                }
                ("fail_mode", Some("secure")) => o.fail_mode = FailMode::Secure,
                ("fail_mode", Some("safe")) => o.fail_mode = FailMode::Safe,
                ("fail_mode", Some(v)) => {
                    return Err(format!("fail_mode={v:?} is not a fail mode: use fail_mode=secure or fail_mode=safe"));
                }
                ("bus", Some(v)) => {
                    let path = v.strip_prefix("unix:path=").unwrap_or_default();
                    if !path.starts_with('/') || path.contains(',') || path.contains(';') {
                        return Err(format!("bus={v:?} must be unix:path=/absolute/socket (for tests only)"));
                    }
                    o.bus = v.to_owned();
                }
                ("daemon_user", Some(v))
                    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') =>
                {
                    o.daemon_user = Some(v.to_owned())
                }
                ("daemon_user", Some(v)) => {
                    return Err(format!("daemon_user={v:?} is not a user name"));
                }
                ("final_message", Some("prompt")) => o.final_message = Some(FinalMessage::Prompt),
                ("final_message", Some("message")) => o.final_message = Some(FinalMessage::Message),
                ("final_message", Some(v)) => {
                    return Err(format!(
                        "final_message={v:?} is not a choice: use final_message=prompt or final_message=message"
                    ));
                }
                ("debug", Some(_)) => {
                    return Err("debug takes no value; write just debug".to_owned());
                }
                ("timeout" | "fail_mode" | "bus" | "daemon_user" | "final_message", None) => {
                    return Err(format!("{key} needs a value, e.g. {}", example(key)));
                }
                _ => {
                    return Err(format!(
                        "unknown argument {:?}; pam_sms takes debug, timeout=SECONDS, fail_mode=secure|safe, daemon_user=NAME, final_message=prompt|message",
                        key.chars().take(40).collect::<String>()
                    ));
                }
            }
        }
        Ok(o)
    }
}

fn example(key: &str) -> &'static str {
    match key {
        "timeout" => "timeout=30",
        "fail_mode" => "fail_mode=secure",
        "bus" => "bus=unix:path=/run/dbus/system_bus_socket",
        "final_message" => "final_message=prompt",
        _ => "daemon_user=smsotpd",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CString;

    fn parse(args: &[&str]) -> Result<Options, String> {
        let owned: Vec<CString> = args.iter().map(|a| CString::new(*a).unwrap()).collect();
        let refs: Vec<&CStr> = owned.iter().map(|c| c.as_c_str()).collect();
        Options::parse(&refs)
    }

    #[test]
    fn defaults() {
        let o = parse(&[]).unwrap();
        assert_eq!(o, Options::default());
        assert_eq!(o.bus, "unix:path=/run/dbus/system_bus_socket");
        assert_eq!(o.fail_mode, FailMode::Secure);
        assert_eq!(o.timeout, Duration::from_secs(30));
    }

    #[test]
    fn every_argument() {
        let o = parse(&[
            "debug",
            "timeout=10",
            "fail_mode=safe",
            "bus=unix:path=/tmp/x/bus",
            "daemon_user=smsotpd",
            "final_message=message",
        ])
        .unwrap();
        assert!(o.debug);
        assert_eq!(o.timeout, Duration::from_secs(10));
        assert_eq!(o.fail_mode, FailMode::Safe);
        assert_eq!(o.bus, "unix:path=/tmp/x/bus");
        assert_eq!(o.daemon_user.as_deref(), Some("smsotpd"));
        assert_eq!(o.final_message_for("sshd"), FinalMessage::Message);
        let o = parse(&["final_message=prompt"]).unwrap();
        assert_eq!(o.final_message_for("login"), FinalMessage::Prompt);
        // Unset: a last prompt for sshd only, which drops a closing message.
        let o = parse(&[]).unwrap();
        assert_eq!(o.final_message_for("sshd"), FinalMessage::Prompt);
        assert_eq!(o.final_message_for("sudo"), FinalMessage::Message);
    }

    #[test]
    fn bad_arguments_are_named() {
        let cases: &[(&[&str], &str)] = &[
            (&["nosuch"], "unknown argument \"nosuch\""),
            (&["debug", "debug"], "given twice"),
            (&["timeout=-1"], "not a whole number"),
            (&["timeout=99999999999999999999999"], "not a whole number"),
            (&["timeout=1"], "out of range"),
            (&["timeout="], "not a whole number"),
            (&["timeout"], "needs a value"),
            (&["fail_mode=secur"], "use fail_mode=secure or fail_mode=safe"),
            (&["bus=tcp:host=evil,port=1"], "unix:path="),
            (&["bus=unix:path=relative"], "unix:path="),
            (&["debug=1"], "takes no value"),
            (&["daemon_user=a b"], "not a user name"),
            (&["final_message=popup"], "use final_message=prompt or final_message=message"),
            (&["final_message"], "needs a value, e.g. final_message=prompt"),
        ];
        for (args, want) in cases {
            let e = parse(args).unwrap_err();
            assert!(e.contains(want), "{args:?}: {e}");
        }
        assert!(parse(&vec!["debug"; 1000]).unwrap_err().contains("1000 arguments"));
        let bad = [CString::new(vec![0xffu8, 0xfe]).unwrap()];
        let refs: Vec<&CStr> = bad.iter().map(|c| c.as_c_str()).collect();
        assert!(Options::parse(&refs).unwrap_err().contains("UTF-8"));
    }
}
