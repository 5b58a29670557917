//! `smsotpctl store export|import`: a host's records moved into another
//! store (its files into PostgreSQL, when a fleet starts sharing). The
//! export holds full numbers and authenticator secrets: it is written 0600,
//! never over an existing file.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{RecordStore, StoreError};
use crate::names::UserName;

/// One user in an export: the record in its file format.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    user: String,
    record: String,
    #[serde(default)]
    reset: bool,
}

/// Writes every record of `from` to `to` (JSON, a user per line); the
/// count written.
pub fn export(from: &dyn RecordStore, to: &Path) -> Result<usize, String> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(to)
        .map_err(|e| format!("cannot create {} ({e}); the export is never written over a file", to.display()))?;
    let mut n = 0;
    for user in from.users().map_err(|e| e.to_string())? {
        let record = match from.load(&user) {
            Ok(Some(r)) => r,
            Ok(None) => continue,
            Err(e) => return Err(format!("{e}; fix or unenroll {user}, then export again")),
        };
        let text = crate::record::render_record(&record)?;
        let line = Line { user: user.to_string(), record: text.to_string(), reset: from.is_reset(&user) };
        let json = zeroize::Zeroizing::new(serde_json::to_string(&line).map_err(|e| e.to_string())?);
        writeln!(file, "{}", json.as_str()).map_err(|e| format!("cannot write {}: {e}", to.display()))?;
        n += 1;
    }
    file.sync_all().map_err(|e| format!("cannot write {}: {e}", to.display()))?;
    Ok(n)
}

/// What an import did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Imported {
    pub added: Vec<String>,
    /// Already in the store: left as they are there.
    pub kept: Vec<String>,
}

/// Adds the records of the export `from` to `into`. Users `into` already
/// has are kept as they are. Trust a host's files held opens that host
/// only: it is named `host` in the shared store.
pub fn import(from: &Path, into: &dyn RecordStore, host: &str) -> Result<Imported, String> {
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(from).map_err(|e| format!("cannot read {}: {e}", from.display()))?,
    );
    let mut lines = Vec::new();
    for (i, l) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let line: Line = serde_json::from_str(l)
            .map_err(|e| format!("{} line {}: {e}; nothing was imported", from.display(), i + 1))?;
        let user = UserName::parse(&line.user)
            .map_err(|e| format!("{} line {}: {e}; nothing was imported", from.display(), i + 1))?;
        let mut record = super::parse_record(&line.record)
            .map_err(|e| format!("{} line {} ({user}): {e}; nothing was imported", from.display(), i + 1))?;
        for t in record.trust.iter_mut().filter(|t| t.host.is_empty()) {
            t.host = host.to_owned();
        }
        lines.push((user, record, line.reset));
    }
    let mut done = Imported::default();
    for (user, record, reset) in lines {
        if into.load(&user).map_err(|e| e.to_string())?.is_some() {
            done.kept.push(user.to_string());
            continue;
        }
        match into.save(&user, &record) {
            Ok(()) => done.added.push(user.to_string()),
            Err(StoreError::Conflict { .. }) => {
                done.kept.push(user.to_string());
                continue;
            }
            Err(e) => return Err(format!("{e}; imported so far: {}", done.added.join(", "))),
        }
        if reset {
            into.save_reset(&user, 0).map_err(|e| e.to_string())?;
        }
    }
    Ok(done)
}
