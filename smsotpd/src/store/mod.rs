//! Where the daemon keeps what it knows. Two kinds of state:
//! - what a fleet shares (users' records, reset marks, the fleet's SMS
//!   budget, the trail of administrators' changes): a [`RecordStore`],
//!   files by default (files.rs) or PostgreSQL (postgres.rs);
//! - what stays on this host whatever the store (break-glass codes, the
//!   host's secret keys, the host's SMS ledger): always files.
//!
//! [`Store`] puts the two together, so the rest of the daemon does not know
//! which record store it has.

use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::names::UserName;
pub use crate::record::{HISTORY, HistoryEntry, PendingPhone, TotpFactor, UserRecord, parse_record};

pub mod files;
pub mod postgres;
pub mod schema;
pub mod transfer;

pub use files::FileStore;

#[derive(Debug)]
pub enum StoreError {
    /// The record exists but cannot be used: the user must not log in.
    Corrupt {
        user: String,
        reason: String,
    },
    Io {
        what: String,
        source: std::io::Error,
    },
    /// The shared store cannot answer now (down, too slow).
    Unavailable(String),
    /// The database's schema is not the one this smsotpd knows.
    Schema(String),
    /// Another host changed the record since this call read it; the call
    /// fails rather than overwrite that change (a counted failure, a used
    /// code).
    Conflict {
        user: String,
    },
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Corrupt { user, reason } => {
                write!(f, "the record of {user} is unusable: {reason}")
            }
            StoreError::Io { what, source } => write!(f, "{what}: {source}"),
            StoreError::Unavailable(why) => write!(f, "the database is unavailable: {why}"),
            StoreError::Schema(why) => f.write_str(why),
            StoreError::Conflict { user } => {
                write!(f, "the record of {user} was changed by another host meanwhile; nothing was written")
            }
        }
    }
}

impl std::error::Error for StoreError {}

/// The fleet-wide SMS budget a shared store enforces (files: none beyond
/// the host's own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FleetBudget {
    pub per_user_per_hour: u32,
    pub per_user_per_day: u32,
    pub per_fleet_per_day: u32,
}

/// What a fleet shares. Implementations: [`FileStore`] (one host) and
/// [`postgres::PgStore`].
pub trait RecordStore: Send + Sync + fmt::Debug {
    /// `Ok(None)`: not enrolled. `Err(Corrupt)`: enrolled but unusable.
    fn load(&self, user: &UserName) -> Result<Option<UserRecord>, StoreError>;
    /// Atomic and durable. A shared store writes only over the revision the
    /// record was read at ([`StoreError::Conflict`] otherwise).
    fn save(&self, user: &UserName, record: &UserRecord) -> Result<(), StoreError>;
    /// True if there was a record.
    fn remove(&self, user: &UserName) -> Result<bool, StoreError>;
    /// Every enrolled user name, sorted.
    fn users(&self) -> Result<Vec<UserName>, StoreError>;
    fn save_reset(&self, user: &UserName, now: u64) -> Result<(), StoreError>;
    /// An unreadable mark is no mark.
    fn is_reset(&self, user: &UserName) -> bool;
    fn remove_reset(&self, user: &UserName) -> Result<bool, StoreError>;
    /// Takes one SMS from the fleet's budget; false when it is spent. One
    /// host's store has no fleet: always true.
    fn take_fleet_budget(&self, user: &str, unix: u64, budget: &FleetBudget) -> Result<bool, StoreError>;
    /// Writes down an administrator's change (the daemon also logs it).
    fn note_admin_change(&self, unix: u64, action: &str, user: &str) -> Result<(), StoreError>;
    /// Whether records are shared with other hosts.
    fn shared(&self) -> bool;
}

/// The daemon's store: shared records plus this host's files.
pub struct Store {
    local: FileStore,
    records: Option<Box<dyn RecordStore>>,
    /// Keep a local copy of users' trust (`store.offline = "local-trust"`),
    /// and what was last written, so that an unchanged list is not.
    trust_copies: Option<std::sync::Mutex<std::collections::HashMap<String, Vec<crate::trust::TrustRecord>>>>,
    /// Records read so far (tests hold each call to one read).
    reads: AtomicU64,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.records {
            Some(r) => write!(f, "Store({:?}, {r:?})", self.local),
            None => write!(f, "Store({:?})", self.local),
        }
    }
}

impl Store {
    /// Files only: everything in the state directory `root` (created 0700).
    pub fn open(root: &Path) -> Result<Store, StoreError> {
        Ok(Store { local: FileStore::open(root)?, records: None, trust_copies: None, reads: AtomicU64::new(0) })
    }

    /// Records in `records`, this host's files in `root`; with
    /// `keep_trust_copy`, a copy of each user's trust stays here too.
    pub fn with_records(
        root: &Path,
        records: Box<dyn RecordStore>,
        keep_trust_copy: bool,
    ) -> Result<Store, StoreError> {
        Ok(Store {
            local: FileStore::open(root)?,
            records: Some(records),
            trust_copies: keep_trust_copy.then(Default::default),
            reads: AtomicU64::new(0),
        })
    }

    /// Brings this host's copy of `user`'s trust up to date (only when it
    /// changed); a failure costs only the copy.
    fn copy_trust(&self, user: &UserName, record: Option<&UserRecord>) {
        let Some(copies) = &self.trust_copies else { return };
        let mut copies = copies.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let trust = record.map(|r| r.trust.clone()).unwrap_or_default();
        if copies.get(user.as_str()) == Some(&trust) {
            return;
        }
        #[derive(serde::Serialize)]
        struct Copy<'a> {
            trust: &'a [crate::trust::TrustRecord],
        }
        let written = if trust.is_empty() {
            self.local.remove_trust_copy(user).map(|_| ())
        } else {
            toml::to_string(&Copy { trust: &trust })
                .map_err(|e| StoreError::Io { what: "cannot serialise trust".into(), source: std::io::Error::other(e) })
                .and_then(|text| self.local.save_trust_copy(user, &text))
        };
        match written {
            Ok(()) => {
                if copies.len() >= 4096 {
                    copies.clear();
                }
                copies.insert(user.to_string(), trust);
            }
            Err(e) => tracing::warn!("the local copy of {user}'s trust is not up to date: {e}"),
        }
    }

    /// This host's copy of `user`'s trust (empty without one).
    pub fn trust_copy(&self, user: &UserName) -> Vec<crate::trust::TrustRecord> {
        #[derive(serde::Deserialize)]
        struct Copy {
            trust: Vec<crate::trust::TrustRecord>,
        }
        match self.local.load_trust_copy(user) {
            Ok(Some(text)) => toml::from_str::<Copy>(&text).map(|c| c.trust).unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    fn records(&self) -> &dyn RecordStore {
        match &self.records {
            Some(r) => r.as_ref(),
            None => &self.local,
        }
    }

    /// The record store itself (smsotpctl store import).
    pub fn records_for_tools(&self) -> &dyn RecordStore {
        self.records()
    }

    pub fn root(&self) -> &Path {
        self.local.root()
    }

    /// Records read since the store was opened.
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    pub fn load(&self, user: &UserName) -> Result<Option<UserRecord>, StoreError> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        let loaded = self.records().load(user)?;
        self.copy_trust(user, loaded.as_ref());
        Ok(loaded)
    }

    pub fn save(&self, user: &UserName, record: &UserRecord) -> Result<(), StoreError> {
        self.records().save(user, record)?;
        self.copy_trust(user, Some(record));
        Ok(())
    }

    pub fn remove(&self, user: &UserName) -> Result<bool, StoreError> {
        self.records().remove(user)
    }

    pub fn users(&self) -> Result<Vec<UserName>, StoreError> {
        self.records().users()
    }

    pub fn save_reset(&self, user: &UserName, now: u64) -> Result<(), StoreError> {
        self.records().save_reset(user, now)
    }

    pub fn is_reset(&self, user: &UserName) -> bool {
        self.records().is_reset(user)
    }

    pub fn remove_reset(&self, user: &UserName) -> Result<bool, StoreError> {
        self.records().remove_reset(user)
    }

    pub fn take_fleet_budget(&self, user: &str, unix: u64, budget: &FleetBudget) -> Result<bool, StoreError> {
        self.records().take_fleet_budget(user, unix, budget)
    }

    pub fn note_admin_change(&self, unix: u64, action: &str, user: &str) -> Result<(), StoreError> {
        self.records().note_admin_change(unix, action, user)
    }

    pub fn shared(&self) -> bool {
        self.records().shared()
    }

    /// A break-glass code of this host (bypass.rs), replacing any earlier.
    pub fn save_bypass(&self, user: &UserName, text: &str) -> Result<(), StoreError> {
        self.local.save_bypass(user, text)
    }

    pub fn load_bypass(&self, user: &UserName) -> Result<Option<String>, StoreError> {
        self.local.load_bypass(user)
    }

    pub fn remove_bypass(&self, user: &UserName) -> Result<bool, StoreError> {
        self.local.remove_bypass(user)
    }

    /// A private random key of this host (decoy answers, bypass HMAC).
    pub fn secret_key(&self, name: &str) -> Result<[u8; 32], StoreError> {
        self.local.secret_key(name)
    }
}
