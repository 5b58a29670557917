//! The default store: one small file per user in the state directory.
//!
//! One file per user keeps a corrupt record from touching anybody else. All
//! access is relative to a directory descriptor opened once without following
//! links; files are opened with O_NOFOLLOW and O_NONBLOCK (a FIFO planted in
//! the directory cannot hang the daemon) and checked with fstat. Writes go to
//! a temp file that is fsynced, renamed over the old one, and followed by an
//! fsync of the directory, so after a crash a record is entirely old or new.

use std::fmt;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::StoreError;
use crate::names::UserName;
use crate::record::{UserRecord, parse_record};
use nix::fcntl::{OFlag, openat, renameat};
use nix::sys::stat::Mode;
use nix::unistd::{UnlinkatFlags, fsync, unlinkat};

fn io(what: impl Into<String>) -> impl FnOnce(nix::Error) -> StoreError {
    let what = what.into();
    move |e| StoreError::Io { what, source: std::io::Error::from(e) }
}

const MAX_RECORD: u64 = 64 * 1024;
const USERS: &str = "users";
/// Break-glass codes (bypass.rs), one small file per user: an expiry and an
/// HMAC, never the code.
const BYPASS: &str = "bypass";
const MAX_BYPASS: u64 = 1024;
/// Users an administrator reset (`smsotpctl reset`): they enroll again at
/// their next login, whatever `unenrolled` says. The file holds the time.
const RESET: &str = "reset";
/// With a shared store and `store.offline = "local-trust"`: a copy of each
/// user's trust records, for while the database is down.
const TRUST_COPY: &str = "trust-copy";
const MAX_TRUST_COPY: u64 = 16 * 1024;

pub struct FileStore {
    root: PathBuf,
    users: OwnedFd,
    bypass: OwnedFd,
    reset: OwnedFd,
    trust_copy: OwnedFd,
}

impl fmt::Debug for FileStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FileStore({})", self.root.display())
    }
}

fn open_dir_at(parent: impl AsFd, name: &str, create: bool) -> Result<OwnedFd, StoreError> {
    if create {
        match nix::sys::stat::mkdirat(parent.as_fd(), name, Mode::from_bits_truncate(0o700)) {
            Ok(()) | Err(nix::Error::EEXIST) => {}
            Err(e) => return Err(io(format!("cannot create {name}"))(e)),
        }
    }
    let fd = openat(
        parent,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(io(format!("cannot open directory {name}")))?;
    check_private_dir(&fd, name)?;
    Ok(fd)
}

fn check_private_dir(fd: &OwnedFd, name: &str) -> Result<(), StoreError> {
    let st = nix::sys::stat::fstat(fd).map_err(io(format!("cannot stat {name}")))?;
    let me = nix::unistd::geteuid().as_raw();
    if st.st_uid != 0 && st.st_uid != me {
        return Err(StoreError::Io {
            what: format!("{name} is owned by uid {}; fix with: chown root: {name}", st.st_uid),
            source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        });
    }
    if st.st_mode & 0o022 != 0 {
        return Err(StoreError::Io {
            what: format!("{name} is writable by group or others; fix with: chmod 700 {name}"),
            source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        });
    }
    Ok(())
}

impl FileStore {
    /// Opens (creating if needed, mode 0700) the state directory.
    pub fn open(root: &Path) -> Result<FileStore, StoreError> {
        std::fs::create_dir_all(root).map_err(|e| StoreError::Io {
            what: format!("cannot create the state directory {}", root.display()),
            source: e,
        })?;
        let root_fd = nix::fcntl::open(
            root,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(io(format!("cannot open the state directory {}", root.display())))?;
        check_private_dir(&root_fd, &root.display().to_string())?;
        let users = open_dir_at(&root_fd, USERS, true)?;
        let bypass = open_dir_at(&root_fd, BYPASS, true)?;
        let reset = open_dir_at(&root_fd, RESET, true)?;
        let trust_copy = open_dir_at(&root_fd, TRUST_COPY, true)?;
        let store = FileStore { root: root.to_owned(), users, bypass, reset, trust_copy };
        store.remove_interrupted_writes();
        Ok(store)
    }

    /// A write cut short (kill -9, power loss) leaves its temp file behind,
    /// with a full phone number in it. Only this daemon writes here, and it
    /// is starting: every temp file is abandoned.
    fn remove_interrupted_writes(&self) -> usize {
        let dir = self.root.join(USERS);
        let Ok(entries) = std::fs::read_dir(&dir) else { return 0 };
        let mut removed = 0;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.starts_with('.') && name.ends_with(".tmp") {
                match unlinkat(&self.users, name, UnlinkatFlags::NoRemoveDir) {
                    Ok(()) => removed += 1,
                    Err(e) => tracing::warn!("cannot remove the interrupted write {}/{name}: {e}", dir.display()),
                }
            }
        }
        if removed > 0 {
            tracing::warn!("removed {removed} temp file(s) of interrupted writes from {}", dir.display());
        }
        removed
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `Ok(None)`: not enrolled. `Err(Corrupt)`: enrolled but unusable.
    pub fn load(&self, user: &UserName) -> Result<Option<UserRecord>, StoreError> {
        match read_private(&self.users, user, MAX_RECORD, "record")? {
            Some(text) => parse_record(&text).map(Some).map_err(|reason| corrupt(user, &reason)),
            None => Ok(None),
        }
    }

    /// Writes atomically and durably: temp, fsync, rename, fsync directory.
    pub fn save(&self, user: &UserName, record: &UserRecord) -> Result<(), StoreError> {
        let text = crate::record::render_record(record).map_err(|e| StoreError::Io {
            what: "cannot serialise a record".into(),
            source: std::io::Error::other(e),
        })?;
        write_atomically(&self.users, user, text.as_bytes(), "record")
    }

    /// A user's break-glass record (bypass.rs), replacing any earlier one.
    pub fn save_bypass(&self, user: &UserName, text: &str) -> Result<(), StoreError> {
        write_atomically(&self.bypass, user, text.as_bytes(), "bypass record")
    }

    /// `Ok(None)`: no bypass issued. A record that is not a private regular
    /// file of root's is an error, never a match.
    pub fn load_bypass(&self, user: &UserName) -> Result<Option<String>, StoreError> {
        read_private(&self.bypass, user, MAX_BYPASS, "bypass record")
    }

    /// Marks `user` to enroll again at the next login.
    pub fn save_reset(&self, user: &UserName, now: u64) -> Result<(), StoreError> {
        write_atomically(&self.reset, user, format!("{now}\n").as_bytes(), "reset mark")
    }

    /// Whether `user` was reset and has not enrolled since. An unreadable
    /// mark is no mark (the user then meets `unenrolled` as configured).
    pub fn is_reset(&self, user: &UserName) -> bool {
        matches!(read_private(&self.reset, user, 64, "reset mark"), Ok(Some(_)))
    }

    pub fn remove_reset(&self, user: &UserName) -> Result<bool, StoreError> {
        remove_durably(&self.reset, user, "reset mark")
    }

    /// This host's copy of `user`'s trust records (TOML), replacing any.
    pub fn save_trust_copy(&self, user: &UserName, text: &str) -> Result<(), StoreError> {
        write_atomically(&self.trust_copy, user, text.as_bytes(), "trust copy")
    }

    pub fn load_trust_copy(&self, user: &UserName) -> Result<Option<String>, StoreError> {
        read_private(&self.trust_copy, user, MAX_TRUST_COPY, "trust copy")
    }

    pub fn remove_trust_copy(&self, user: &UserName) -> Result<bool, StoreError> {
        remove_durably(&self.trust_copy, user, "trust copy")
    }

    /// Removes a user's bypass record, durably; true if there was one.
    pub fn remove_bypass(&self, user: &UserName) -> Result<bool, StoreError> {
        remove_durably(&self.bypass, user, "bypass record")
    }

    /// Removes a user's record; true if there was one.
    pub fn remove(&self, user: &UserName) -> Result<bool, StoreError> {
        remove_durably(&self.users, user, "record")
    }

    /// Every enrolled user name, sorted; entries that are not valid names
    /// (temp files, strays) are skipped.
    pub fn users(&self) -> Result<Vec<UserName>, StoreError> {
        let dir = nix::dir::Dir::openat(
            &self.users,
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(io("cannot list the users directory"))?;
        let mut names = Vec::new();
        for entry in dir {
            let entry = entry.map_err(io("cannot list the users directory"))?;
            if let Ok(name) = entry.file_name().to_str()
                && !name.starts_with('.')
                && let Ok(user) = UserName::parse(name)
            {
                names.push(user);
            }
        }
        names.sort();
        Ok(names)
    }

    /// Reads or creates a private random key (for decoy answers).
    pub fn secret_key(&self, name: &str) -> Result<[u8; 32], StoreError> {
        let path = self.root.join(name);
        match std::fs::read(&path) {
            Ok(bytes) if bytes.len() == 32 => {
                let mut key = [0u8; 32];
                key.copy_from_slice(&bytes);
                return Ok(key);
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(StoreError::Io { what: format!("cannot read {}", path.display()), source: e });
            }
        }
        let mut key = [0u8; 32];
        crate::random::fill_random(&mut key).map_err(|e| StoreError::Io { what: "no randomness".into(), source: e })?;
        let tmp = path.with_extension("tmp");
        let _ = std::fs::remove_file(&tmp);
        let write = || -> std::io::Result<()> {
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc_nofollow())
                .open(&tmp)?;
            f.write_all(&key)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            std::fs::File::open(&self.root)?.sync_all()
        };
        write().map_err(|e| StoreError::Io { what: format!("cannot write {}", path.display()), source: e })?;
        Ok(key)
    }
}

impl super::RecordStore for FileStore {
    fn load(&self, user: &UserName) -> Result<Option<UserRecord>, StoreError> {
        FileStore::load(self, user)
    }
    fn save(&self, user: &UserName, record: &UserRecord) -> Result<(), StoreError> {
        FileStore::save(self, user, record)
    }
    fn remove(&self, user: &UserName) -> Result<bool, StoreError> {
        FileStore::remove(self, user)
    }
    fn users(&self) -> Result<Vec<UserName>, StoreError> {
        FileStore::users(self)
    }
    fn save_reset(&self, user: &UserName, now: u64) -> Result<(), StoreError> {
        FileStore::save_reset(self, user, now)
    }
    fn is_reset(&self, user: &UserName) -> bool {
        FileStore::is_reset(self, user)
    }
    fn remove_reset(&self, user: &UserName) -> Result<bool, StoreError> {
        FileStore::remove_reset(self, user)
    }
    /// One host: its own budgets (limits.rs) are all there is.
    fn take_fleet_budget(&self, _: &str, _: u64, _: &super::FleetBudget) -> Result<bool, StoreError> {
        Ok(true)
    }
    /// One host: the audit log (audit.rs) is the trail.
    fn note_admin_change(&self, _: u64, _: &str, _: &str) -> Result<(), StoreError> {
        Ok(())
    }
    fn shared(&self) -> bool {
        false
    }
}

fn libc_nofollow() -> i32 {
    OFlag::O_NOFOLLOW.bits()
}

fn corrupt(user: &UserName, reason: &str) -> StoreError {
    StoreError::Corrupt { user: user.to_string(), reason: reason.to_owned() }
}

/// A user's file in `dir` (`what`: "record", "bypass record"): None when
/// there is none; an error unless it is a private regular file of root's of
/// at most `max` bytes (a link, a FIFO, a second hard link are refused).
fn read_private(dir: &OwnedFd, user: &UserName, max: u64, what: &str) -> Result<Option<String>, StoreError> {
    let fd = match openat(
        dir,
        user.as_str(),
        OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(nix::Error::ENOENT) => return Ok(None),
        Err(nix::Error::ELOOP) => return Err(corrupt(user, &format!("the {what} is a symbolic link"))),
        Err(e) => return Err(corrupt(user, &format!("cannot open the {what}: {e}"))),
    };
    let file = std::fs::File::from(fd);
    let meta = file.metadata().map_err(|e| corrupt(user, &format!("cannot stat the {what}: {e}")))?;
    if !meta.is_file() {
        return Err(corrupt(user, &format!("the {what} is not a regular file")));
    }
    if meta.nlink() != 1 {
        return Err(corrupt(user, &format!("the {what} has more than one hard link")));
    }
    if crate::config::check_owner_and_mode(&meta, true, what).is_err() {
        return Err(corrupt(
            user,
            &format!("owner uid {} / mode {:04o} are not root's 0600", meta.uid(), meta.mode() & 0o7777),
        ));
    }
    let mut text = String::new();
    file.take(max + 1).read_to_string(&mut text).map_err(|e| corrupt(user, &format!("cannot read the {what}: {e}")))?;
    if text.len() as u64 > max {
        return Err(corrupt(user, &format!("the {what} is larger than {max} bytes")));
    }
    Ok(Some(text))
}

/// Removes `user`'s file in `dir` and fsyncs the directory, so that the
/// removal survives a crash; true if there was one.
fn remove_durably(dir: &OwnedFd, user: &UserName, what: &str) -> Result<bool, StoreError> {
    match unlinkat(dir, user.as_str(), UnlinkatFlags::NoRemoveDir) {
        Ok(()) => {
            fsync(dir).map_err(io(format!("cannot fsync the directory of the {what} of {user}")))?;
            Ok(true)
        }
        Err(nix::Error::ENOENT) => Ok(false),
        Err(e) => Err(io(format!("cannot remove the {what} of {user}"))(e)),
    }
}

/// Writes `name` in `dir` atomically and durably: temp, fsync, rename,
/// fsync directory. After a crash the file is entirely old or new.
fn write_atomically(dir: &OwnedFd, user: &UserName, bytes: &[u8], what: &str) -> Result<(), StoreError> {
    let tmp = format!(".{}.{}.tmp", user.as_str(), random_suffix()?);
    let fd = openat(
        dir,
        tmp.as_str(),
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o600),
    )
    .map_err(io(format!("cannot create a temporary file for the {what} of {user}")))?;
    let result = (|| {
        let mut file = std::fs::File::from(fd);
        file.write_all(bytes)
            .map_err(|e| StoreError::Io { what: format!("cannot write the {what} of {user}"), source: e })?;
        // A failed fsync is never retried: the data may already be gone.
        fsync(&file).map_err(io(format!("cannot fsync the {what} of {user}")))?;
        drop(file);
        renameat(dir, tmp.as_str(), dir, user.as_str())
            .map_err(io(format!("cannot rename the {what} of {user} into place")))?;
        fsync(dir).map_err(io(format!("cannot fsync the directory of the {what} of {user}")))
    })();
    if result.is_err() {
        let _ = unlinkat(dir, tmp.as_str(), UnlinkatFlags::NoRemoveDir);
    }
    result
}

fn random_suffix() -> Result<String, StoreError> {
    let mut b = [0u8; 8];
    crate::random::fill_random(&mut b).map_err(|e| StoreError::Io { what: "no randomness".into(), source: e })?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::PhoneNumber;
    use crate::recovery::RecoverySet;
    use crate::store::{HISTORY, HistoryEntry, PendingPhone, Store, TotpFactor};
    use smsotp_proto::Factor;
    use std::os::unix::fs::PermissionsExt;

    fn alice() -> UserName {
        UserName::parse("alice").unwrap()
    }

    fn record() -> UserRecord {
        UserRecord::new(PhoneNumber::parse("+14155550123").unwrap())
    }

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let s = Store::open(dir.path()).unwrap();
        (dir, s)
    }

    #[test]
    fn round_trip_and_mode() {
        let (dir, s) = store();
        assert_eq!(s.load(&alice()).unwrap(), None);
        let mut r = record();
        r.failures = 3;
        r.locked_until = 99;
        s.save(&alice(), &r).unwrap();
        assert_eq!(s.load(&alice()).unwrap(), Some(r));
        let path = dir.path().join("users/alice");
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o7777, 0o600);
        assert_eq!(std::fs::metadata(dir.path().join("users")).unwrap().mode() & 0o7777, 0o700);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("users")).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temp files left behind");
        assert_eq!(s.users().unwrap(), vec![alice()]);
        assert!(s.remove(&alice()).unwrap());
        assert!(!s.remove(&alice()).unwrap());
        assert_eq!(s.load(&alice()).unwrap(), None);
    }

    #[test]
    fn factors_and_a_pending_number_round_trip() {
        let (dir, s) = store();
        let mut r = record();
        r.totp = Some(TotpFactor { secret: "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ".into(), last_step: 7, created: 5 });
        r.default_factor = Some(Factor::Totp);
        r.recovery = Some(RecoverySet { salt: "00".repeat(16), hashes: vec!["ab".repeat(32)], created: 9 });
        r.pending_phone = Some(PendingPhone { phone: PhoneNumber::parse("+447911123456").unwrap(), from: 100 });
        for at in 0..12 {
            r.remember(HistoryEntry { at, what: "sign-in".into(), service: "sshd".into(), rhost: String::new() });
        }
        assert_eq!(r.history.len(), HISTORY);
        assert_eq!(r.history[0].at, 2, "oldest dropped");
        s.save(&alice(), &r).unwrap();
        let back = s.load(&alice()).unwrap().unwrap();
        assert_eq!(back, r);
        assert_eq!(back.factors(), [Factor::Totp, Factor::Sms, Factor::Recovery]);
        assert!(!format!("{back:?}").contains("GEZDGNBV"), "Debug never shows the secret");
        assert_eq!(back.phone_at(99).e164(), "+14155550123");
        assert_eq!(back.phone_at(100).e164(), "+447911123456");
        let mut settled = back.clone();
        settled.settle(100);
        assert_eq!((settled.phone.e164(), settled.pending_phone.is_none()), ("+447911123456", true));
        // A plain record stays as small as before.
        s.save(&alice(), &record()).unwrap();
        let text = std::fs::read_to_string(dir.path().join("users/alice")).unwrap();
        assert_eq!(text, "version = 1\nphone = \"+14155550123\"\nfailures = 0\nlocked_until = 0\ntrust = []\n");
    }

    #[test]
    fn corrupt_records_never_read_as_not_enrolled() {
        let (dir, s) = store();
        let path = dir.path().join("users/alice");
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("empty", b"".to_vec()),
            ("garbage", vec![0xff, 0x00, 0x13]),
            ("truncated", b"version = 1\nphone = \"+1415".to_vec()),
            ("future version", b"version = 9\nphone = \"+14155550123\"\n".to_vec()),
            ("bad number", b"version = 1\nphone = \"12345\"\n".to_vec()),
            ("unknown key", b"version = 1\nphone = \"+14155550123\"\nadmin = true\n".to_vec()),
            (
                "app default without an app",
                b"version = 1\nphone = \"+14155550123\"\ndefault_factor = \"totp\"\n".to_vec(),
            ),
            ("bad app secret", b"version = 1\nphone = \"+14155550123\"\n[totp]\nsecret = \"not base32!\"\n".to_vec()),
        ];
        for (what, bytes) in cases {
            std::fs::write(&path, &bytes).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
            assert!(matches!(s.load(&alice()), Err(StoreError::Corrupt { .. })), "{what}");
        }
        // Another user's good record is unaffected.
        let bob = UserName::parse("bob").unwrap();
        s.save(&bob, &record()).unwrap();
        assert!(s.load(&bob).unwrap().is_some());
    }

    #[test]
    fn refuses_links_fifos_and_loose_modes() {
        let (dir, s) = store();
        let path = dir.path().join("users/alice");
        let target = dir.path().join("elsewhere");
        std::fs::write(&target, "version = 1\nphone = \"+14155550123\"\n").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::symlink(&target, &path).unwrap();
        assert!(matches!(s.load(&alice()), Err(StoreError::Corrupt { .. })), "symlink");
        std::fs::remove_file(&path).unwrap();
        std::fs::hard_link(&target, &path).unwrap();
        assert!(matches!(s.load(&alice()), Err(StoreError::Corrupt { .. })), "hard link");
        std::fs::remove_file(&path).unwrap();
        nix::unistd::mkfifo(&path, Mode::from_bits_truncate(0o600)).unwrap();
        assert!(matches!(s.load(&alice()), Err(StoreError::Corrupt { .. })), "fifo must not block");
        std::fs::remove_file(&path).unwrap();
        std::fs::copy(&target, &path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(s.load(&alice()), Err(StoreError::Corrupt { .. })), "world-readable");
        // Saving replaces the planted file rather than writing through it.
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink(&target, &path).unwrap();
        s.save(&alice(), &record()).unwrap();
        assert!(!std::fs::symlink_metadata(&path).unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "version = 1\nphone = \"+14155550123\"\n");
    }

    #[test]
    fn interrupted_writes_are_cleaned_up_at_start() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        let store = Store::open(dir.path()).unwrap();
        let alice = UserName::parse("alice").unwrap();
        store.save(&alice, &UserRecord::new(PhoneNumber::parse("+14155550123").unwrap())).unwrap();
        let users = dir.path().join(USERS);
        for stale in [".alice.3f9a.tmp", ".bob.00ff.tmp"] {
            std::fs::write(users.join(stale), "phone = \"+14155550123\"").unwrap();
        }
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        let mut left: Vec<String> =
            std::fs::read_dir(&users).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        left.sort();
        assert_eq!(left, ["alice"], "only the real record stays");
        assert!(store.load(&alice).unwrap().is_some());
    }

    #[test]
    fn refuses_a_shared_state_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = Store::open(dir.path()).unwrap_err().to_string();
        assert!(e.contains("chmod 700"), "{e}");
    }

    #[test]
    fn secret_key_is_stable() {
        let (_dir, s) = store();
        let a = s.secret_key("decoy.key").unwrap();
        let b = s.secret_key("decoy.key").unwrap();
        assert_eq!(a, b);
        assert_ne!(a, [0u8; 32]);
    }
}
