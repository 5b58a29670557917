//! Where the daemon's log lines go: syslog (facility authpriv, so audit
//! lines land with sshd's), or stderr for tests and foreground runs.

use std::io::Write;
use std::sync::Mutex;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// syslog if /dev/log exists, stderr otherwise.
    Auto,
    Syslog,
    Stderr,
}

impl Target {
    pub fn parse(s: &str) -> Option<Target> {
        match s {
            "auto" => Some(Target::Auto),
            "syslog" => Some(Target::Syslog),
            "stderr" => Some(Target::Stderr),
            _ => None,
        }
    }
}

type Syslog = syslog::Logger<syslog::LoggerBackend, syslog::Formatter3164>;

struct Logger {
    syslog: Option<Mutex<Syslog>>,
    level: log::LevelFilter,
}

impl log::Log for Logger {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= self.level
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        // Lines from libraries (hyper, zbus) are only wanted when debugging.
        let ours = record.target().starts_with("smsotpd") || record.target() == "audit";
        if !ours && record.level() > log::Level::Warn && self.level < log::LevelFilter::Debug {
            return;
        }
        let msg = record.args().to_string();
        match &self.syslog {
            Some(s) => {
                let mut s = match s.lock() {
                    Ok(g) => g,
                    Err(p) => p.into_inner(),
                };
                let _ = match record.level() {
                    log::Level::Error => s.err(&msg),
                    log::Level::Warn => s.warning(&msg),
                    log::Level::Info => s.info(&msg),
                    log::Level::Debug | log::Level::Trace => s.debug(&msg),
                };
            }
            None => {
                // sd-daemon priority prefixes: journald keeps the level.
                let prio = match record.level() {
                    log::Level::Error => 3,
                    log::Level::Warn => 4,
                    log::Level::Info => 6,
                    log::Level::Debug | log::Level::Trace => 7,
                };
                let _ = writeln!(std::io::stderr().lock(), "<{prio}>{msg}");
            }
        }
    }

    fn flush(&self) {}
}

/// Installs the logger; call once, first thing in main.
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
    let level = if debug { log::LevelFilter::Debug } else { log::LevelFilter::Info };
    log::set_boxed_logger(Box::new(Logger { syslog, level })).map_err(|e| e.to_string())?;
    log::set_max_level(level);
    Ok(())
}
