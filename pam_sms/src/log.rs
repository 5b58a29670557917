//! The module's log: syslog (facility authpriv) only. Never stdout or
//! stderr: inside sshd or login those reach the user's terminal.

use crate::flow::Log;

type Syslog = syslog::Logger<syslog::LoggerBackend, syslog::Formatter3164>;

/// Opened per PAM call and dropped with it; nothing global.
pub struct ModuleLog {
    syslog: Option<Syslog>,
    prefix: String,
    pub debug: bool,
}

impl ModuleLog {
    pub fn open(service: &str) -> Self {
        let formatter = syslog::Formatter3164 {
            facility: syslog::Facility::LOG_AUTHPRIV,
            hostname: None,
            process: "pam_sms".into(),
            pid: std::process::id(),
        };
        // No syslog socket means no log lines, never output elsewhere.
        let syslog = syslog::unix(formatter).ok();
        let service: String = service.chars().filter(|c| !c.is_control()).take(32).collect();
        ModuleLog { syslog, prefix: format!("pam_sms({service}:auth): "), debug: false }
    }

    pub fn error(&mut self, text: &str) {
        let line = format!("{}{text}", self.prefix);
        if let Some(s) = &mut self.syslog {
            let _ = s.err(line);
        }
    }

    pub fn info(&mut self, text: &str) {
        let line = format!("{}{text}", self.prefix);
        if let Some(s) = &mut self.syslog {
            let _ = s.info(line);
        }
    }
}

impl Log for ModuleLog {
    fn warn(&mut self, text: &str) {
        let line = format!("{}{text}", self.prefix);
        if let Some(s) = &mut self.syslog {
            let _ = s.warning(line);
        }
    }

    fn debug(&mut self, text: &str) {
        if self.debug {
            let line = format!("{}{text}", self.prefix);
            if let Some(s) = &mut self.syslog {
                let _ = s.debug(line);
            }
        }
    }
}
