//! A program of the administrator's, for every gateway smsotp does not
//! speak (SMPP, email-to-SMS, an in-house API). The daemon starts it once
//! per message, directly (no shell), with an empty environment and a JSON
//! document on stdin:
//!
//! `{"to": "+14155550123", "text": "...", "channel": "sms", "reference": "command-7"}`
//!
//! Exit 0: sent (the first line of stdout, if any, is the provider's
//! reference). Exit 75 (EX_TEMPFAIL): not now, try later. Any other exit,
//! or a signal: refused. A program still running at the time limit is
//! killed. Its output is never logged: it may echo the number or the code.
//! It runs as root, so it must be root's and writable by nobody else.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use zeroize::Zeroizing;

use super::{Outgoing, Provider, ProviderError, RemoteVerdict};
use crate::clock::{Clock, Tick};

/// sysexits.h EX_TEMPFAIL: "try again later".
pub const EXIT_TRY_LATER: i32 = 75;

pub struct Command {
    path: PathBuf,
    timeout: Duration,
    clock: Arc<dyn Clock>,
    sent: AtomicU64,
}

impl Command {
    pub fn new(path: PathBuf, timeout: Duration, clock: Arc<dyn Clock>) -> Self {
        Command { path, timeout, clock, sent: AtomicU64::new(0) }
    }

    /// The program must be a regular, executable file of root's that no one
    /// else can change: the daemon runs it as root.
    pub fn check_program(&self) -> Result<(), String> {
        let p = self.path.display();
        let meta = std::fs::symlink_metadata(&self.path).map_err(|e| format!("command.path {p}: {e}"))?;
        if !meta.is_file() {
            return Err(format!("command.path {p} must be a regular file (not a link or a directory)"));
        }
        if meta.uid() != 0 && meta.uid() != nix::unistd::geteuid().as_raw() {
            return Err(format!("command.path {p} is owned by uid {}; fix with: chown root: {p}", meta.uid()));
        }
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o022 != 0 {
            return Err(format!(
                "command.path {p} is writable by group or others (mode {mode:04o}); fix with: chmod 755 {p}"
            ));
        }
        if mode & 0o100 == 0 {
            return Err(format!("command.path {p} is not executable; fix with: chmod 755 {p}"));
        }
        // Whoever may write the directory may swap the program.
        let dir = self.path.parent().unwrap_or(std::path::Path::new("/"));
        let d = std::fs::metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        if d.uid() != 0 && d.uid() != nix::unistd::geteuid().as_raw() || d.permissions().mode() & 0o022 != 0 {
            return Err(format!(
                "the directory of command.path, {}, must be root's and writable by nobody else; fix with: chown root: {0} && chmod 755 {0}",
                dir.display()
            ));
        }
        Ok(())
    }
}

impl Provider for Command {
    fn name(&self) -> &'static str {
        "command"
    }

    fn makes_codes(&self) -> bool {
        false
    }

    async fn send(&self, msg: &Outgoing<'_>, deadline: Tick) -> Result<String, ProviderError> {
        self.check_program().map_err(|detail| ProviderError::Local { detail })?;
        let n = self.sent.fetch_add(1, Ordering::Relaxed) + 1;
        let reference = format!("command-{n}");
        let doc = Zeroizing::new(
            serde_json::json!({"to": msg.to.e164(), "text": msg.body, "channel": msg.channel.name(), "reference": reference})
                .to_string(),
        );
        let p = self.path.display().to_string();
        let mut child = tokio::process::Command::new(&self.path)
            .env_clear()
            .current_dir("/")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| ProviderError::Local { detail: format!("cannot start {p}: {e}") })?;
        let limit = self.clock.tick().until(deadline).min(self.timeout);
        let run = async {
            if let Some(mut stdin) = child.stdin.take() {
                // A program that does not read its input still gets to answer.
                let _ = stdin.write_all(doc.as_bytes()).await;
            }
            child.wait_with_output().await
        };
        let out = match tokio::time::timeout(limit, run).await {
            Err(_) => return Err(ProviderError::NoAnswer),
            Ok(Err(e)) => return Err(ProviderError::Local { detail: format!("{p} failed: {e}") }),
            Ok(Ok(out)) => out,
        };
        match out.status.code() {
            Some(0) => {
                let first = String::from_utf8_lossy(&out.stdout).lines().next().unwrap_or_default().trim().to_owned();
                let safe = !first.is_empty() && first.len() <= 64 && first.bytes().all(|b| b.is_ascii_graphic());
                Ok(if safe { first } else { reference })
            }
            Some(EXIT_TRY_LATER) => {
                Err(ProviderError::Unavailable { detail: format!("{p} asked to try later (exit {EXIT_TRY_LATER})") })
            }
            Some(code) => Err(ProviderError::Local { detail: format!("{p} refused the message (exit {code})") }),
            None => Err(ProviderError::Unavailable { detail: format!("{p} was killed by a signal") }),
        }
    }

    async fn check(&self, _reference: &str, _code: &str, _deadline: Tick) -> Result<RemoteVerdict, ProviderError> {
        Err(ProviderError::Local { detail: "a command provider does not check codes".into() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::names::PhoneNumber;

    /// A program in a fresh directory, root's, mode 0755.
    fn program(body: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("send");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        (dir, path)
    }

    async fn send(path: &std::path::Path, timeout: Duration) -> Result<String, ProviderError> {
        let clock = ManualClock::new(1_800_000_000);
        let c = Command::new(path.to_owned(), timeout, Arc::new(clock.clone()));
        let to = PhoneNumber::parse("+14155550123").unwrap();
        let msg = Outgoing {
            to: &to,
            body: "123456 is your code",
            validity: Duration::from_secs(300),
            channel: super::super::Channel::Sms,
            user: "alice",
        };
        c.send(&msg, clock.tick().saturating_add(Duration::from_secs(10))).await
    }

    #[tokio::test]
    async fn the_program_gets_json_on_stdin_and_an_empty_environment() {
        let (dir, path) = program("cat > \"$(dirname \"$0\")/in\"; env > \"$(dirname \"$0\")/env\"; echo gw-42");
        assert_eq!(send(&path, Duration::from_secs(10)).await.unwrap(), "gw-42");
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join("in")).unwrap()).unwrap();
        assert_eq!(doc["to"], "+14155550123");
        assert_eq!(doc["text"], "123456 is your code");
        assert_eq!(doc["channel"], "sms");
        assert_eq!(doc["reference"], "command-1");
        let env = std::fs::read_to_string(dir.path().join("env")).unwrap();
        for var in ["HOME=", "USER=", "LD_PRELOAD=", "DBUS_", "CREDENTIALS_DIRECTORY="] {
            assert!(!env.contains(var), "{var} leaked into the program's environment:\n{env}");
        }
    }

    #[tokio::test]
    async fn exit_codes_map_to_sent_later_and_refused() {
        let (_d, path) = program("cat >/dev/null; exit 0");
        assert_eq!(send(&path, Duration::from_secs(10)).await.unwrap(), "command-1", "no reference printed: ours");
        let (_d, path) = program("exit 75");
        assert!(matches!(send(&path, Duration::from_secs(10)).await, Err(ProviderError::Unavailable { .. })));
        let (_d, path) = program("exit 3");
        let e = send(&path, Duration::from_secs(10)).await.unwrap_err();
        assert!(e.to_string().contains("refused the message (exit 3)"), "{e}");
        let (_d, path) = program("kill -9 $$");
        assert!(matches!(send(&path, Duration::from_secs(10)).await, Err(ProviderError::Unavailable { .. })));
    }

    #[tokio::test(start_paused = true)]
    async fn a_program_past_its_time_limit_is_killed_and_not_retried() {
        // Paused time: the limit passes without the test waiting for it.
        let (_d, path) = program("sleep 30");
        assert_eq!(send(&path, Duration::from_secs(2)).await, Err(ProviderError::NoAnswer));
    }

    #[tokio::test]
    async fn a_program_others_can_change_is_never_run() {
        let (dir, path) = program("touch \"$(dirname \"$0\")/ran\"");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = send(&path, Duration::from_secs(10)).await.unwrap_err();
        assert!(e.to_string().contains("writable by group or others"), "{e}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(send(&path, Duration::from_secs(10)).await.unwrap_err().to_string().contains("not executable"));
        assert!(!dir.path().join("ran").exists());
    }
}
