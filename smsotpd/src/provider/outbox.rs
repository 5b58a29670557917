//! The outbox: "sends" by appending the SMS to a root-only file.
//!
//! For trying smsotp without a Twilio account. It is chosen only by an
//! explicit `provider = "outbox"` and the daemon warns at every start,
//! because whoever reads the file can log in as anybody enrolled.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{Outgoing, Provider, ProviderError, RemoteVerdict};
use crate::clock::{Clock, Tick, format_utc};

pub struct Outbox {
    path: PathBuf,
    clock: Arc<dyn Clock>,
    sent: AtomicU64,
}

impl Outbox {
    pub fn new(path: PathBuf, clock: Arc<dyn Clock>) -> Self {
        Outbox { path, clock, sent: AtomicU64::new(0) }
    }

    fn append(&self, line: &str) -> Result<(), String> {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits() | nix::fcntl::OFlag::O_NONBLOCK.bits())
            .open(&self.path)
            .map_err(|e| format!("cannot open the outbox {}: {e}", self.path.display()))?;
        let meta = f.metadata().map_err(|e| format!("cannot stat the outbox: {e}"))?;
        let me = nix::unistd::geteuid().as_raw();
        if !meta.is_file() || (meta.uid() != 0 && meta.uid() != me) || meta.mode() & 0o077 != 0 {
            return Err(format!(
                "the outbox {} must be a regular file owned by root with mode 0600; fix with: chown root: FILE && chmod 600 FILE",
                self.path.display()
            ));
        }
        f.write_all(line.as_bytes()).map_err(|e| format!("cannot write the outbox: {e}"))?;
        f.sync_data().map_err(|e| format!("cannot fsync the outbox: {e}"))
    }
}

impl Provider for Outbox {
    fn name(&self) -> &'static str {
        "outbox"
    }

    fn makes_codes(&self) -> bool {
        false
    }

    async fn send(&self, msg: &Outgoing<'_>, _deadline: Tick) -> Result<String, ProviderError> {
        let n = self.sent.fetch_add(1, Ordering::Relaxed) + 1;
        let body = msg.body.replace(['\n', '\r'], " ");
        // A call is written as what it would say.
        let kind = match msg.channel {
            super::Channel::Sms => "body",
            super::Channel::Voice => "call",
        };
        let line = zeroize::Zeroizing::new(format!(
            "{}  to={}  {kind}={}\n",
            format_utc(self.clock.unix_now()),
            msg.to.e164(),
            body
        ));
        self.append(&line).map_err(|detail| ProviderError::Local { detail })?;
        Ok(format!("outbox-{n}"))
    }

    async fn check(&self, _reference: &str, _code: &str, _deadline: Tick) -> Result<RemoteVerdict, ProviderError> {
        Err(ProviderError::Local { detail: "the outbox does not check codes".into() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::names::PhoneNumber;
    use std::time::Duration;

    #[tokio::test]
    async fn appends_private_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outbox");
        let o = Outbox::new(path.clone(), Arc::new(ManualClock::new(0)));
        let to = PhoneNumber::parse("+14155550123").unwrap();
        let msg = Outgoing {
            to: &to,
            body: "123456 is\nyour code",
            validity: Duration::from_secs(300),
            channel: crate::provider::Channel::Sms,
            user: "alice",
        };
        let deadline = Tick::from_duration(Duration::from_secs(10));
        assert_eq!(o.send(&msg, deadline).await.unwrap(), "outbox-1");
        assert_eq!(o.send(&msg, deadline).await.unwrap(), "outbox-2");
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, "1970-01-01 00:00:00 UTC  to=+14155550123  body=123456 is your code\n".repeat(2));
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
    }

    #[tokio::test]
    async fn refuses_a_readable_or_linked_outbox() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outbox");
        std::fs::write(&path, "").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let o = Outbox::new(path.clone(), Arc::new(ManualClock::new(0)));
        let to = PhoneNumber::parse("+14155550123").unwrap();
        let msg = Outgoing {
            to: &to,
            body: "1",
            validity: Duration::from_secs(1),
            channel: crate::provider::Channel::Sms,
            user: "alice",
        };
        let e = o.send(&msg, Tick::from_duration(Duration::ZERO)).await.unwrap_err();
        assert!(e.to_string().contains("mode 0600"), "{e}");
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", &path).unwrap();
        assert!(o.send(&msg, Tick::from_duration(Duration::ZERO)).await.is_err());
    }
}
