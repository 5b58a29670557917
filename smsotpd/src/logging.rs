//! Where the daemon's log lines go: syslog (facility authpriv, so audit
//! lines land with sshd's), or stderr for tests and foreground runs.

use std::io::Write;
use std::sync::Mutex;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// syslog if /dev/log exists, stderr otherwise.
    Auto,
    Syslog,
    Stderr,
}

impl Target {
    pub fn parse(s: &str) -> Result<Target, String> {
        match s {
            "auto" => Ok(Target::Auto),
            "syslog" => Ok(Target::Syslog),
            "stderr" => Ok(Target::Stderr),
            _ => Err(format!("{s:?} is not a log target; use auto, syslog or stderr")),
        }
    }
}

type Syslog = syslog::Logger<syslog::LoggerBackend, syslog::Formatter3164>;

/// Writes each event as one line to syslog or stderr. The daemon logs
/// through `tracing`, as zbus does; `log` records (reqwest, rustls) reach
/// the same place through tracing-log.
struct Sink {
    syslog: Option<Mutex<Syslog>>,
}

/// An event's text: its message, then any other fields as `key=value`.
#[derive(Default)]
pub struct Text(pub String);

impl Visit for Text {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.add(field, format_args!("{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.add(field, format_args!("{value:?}"));
    }
}

impl Text {
    fn add(&mut self, field: &Field, value: std::fmt::Arguments<'_>) {
        use std::fmt::Write as _;
        if field.name() == "message" {
            let _ = write!(self.0, "{value}");
        } else if !field.name().starts_with("log.") {
            let _ = write!(self.0, " {}={value}", field.name());
        }
    }
}

impl<S: Subscriber> Layer<S> for Sink {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let mut text = Text::default();
        event.record(&mut text);
        let level = *event.metadata().level();
        let msg = text.0;
        match &self.syslog {
            Some(s) => {
                let mut s = match s.lock() {
                    Ok(g) => g,
                    Err(p) => p.into_inner(),
                };
                let _ = match level {
                    Level::ERROR => s.err(&msg),
                    Level::WARN => s.warning(&msg),
                    Level::INFO => s.info(&msg),
                    _ => s.debug(&msg),
                };
            }
            None => {
                // sd-daemon priority prefixes: journald keeps the level.
                let prio = match level {
                    Level::ERROR => 3,
                    Level::WARN => 4,
                    Level::INFO => 6,
                    _ => 7,
                };
                let _ = writeln!(std::io::stderr().lock(), "<{prio}>{msg}");
            }
        }
    }
}

/// Our lines (and the audit trail) at info; the libraries' (zbus, hyper,
/// reqwest, rustls) only when they warn, or everything with --debug.
pub fn filter(debug: bool) -> Targets {
    if debug {
        Targets::new().with_target("audit", LevelFilter::INFO).with_default(LevelFilter::DEBUG)
    } else {
        Targets::new()
            .with_target("smsotpd", LevelFilter::INFO)
            .with_target("audit", LevelFilter::INFO)
            .with_default(LevelFilter::WARN)
    }
}

/// Installs the subscriber; call once, first thing in main.
pub fn init(target: Target, debug: bool) -> Result<(), String> {
    let use_syslog = match target {
        Target::Syslog => true,
        Target::Stderr => false,
        Target::Auto => std::path::Path::new("/dev/log").exists(),
    };
    let syslog = if use_syslog {
        let formatter = syslog::Formatter3164 {
            facility: syslog::Facility::LOG_AUTHPRIV,
            hostname: None,
            process: "smsotpd".into(),
            pid: std::process::id(),
        };
        Some(Mutex::new(syslog::unix(formatter).map_err(|e| format!("cannot connect to syslog: {e}"))?))
    } else {
        None
    };
    tracing_subscriber::registry()
        .with(Sink { syslog }.with_filter(filter(debug)))
        .try_init()
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use tracing::Level;

    use super::filter;

    #[test]
    fn libraries_speak_up_only_with_debug() {
        let quiet = filter(false);
        assert!(quiet.would_enable("smsotpd::login", &Level::INFO));
        assert!(quiet.would_enable("audit", &Level::INFO));
        assert!(!quiet.would_enable("smsotpd::login", &Level::DEBUG));
        assert!(quiet.would_enable("zbus::connection", &Level::WARN));
        assert!(!quiet.would_enable("zbus::object_server", &Level::DEBUG));
        assert!(!quiet.would_enable("hyper_util::client", &Level::INFO));
        let debug = filter(true);
        assert!(debug.would_enable("zbus::object_server", &Level::DEBUG));
        assert!(debug.would_enable("reqwest::connect", &Level::DEBUG));
        assert!(debug.would_enable("smsotpd::login", &Level::DEBUG));
        // Trace is where libraries print whole messages: never.
        assert!(!debug.would_enable("zbus::connection", &Level::TRACE));
    }
}
