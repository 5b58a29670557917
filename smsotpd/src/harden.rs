//! Process hardening at start-up: no core dumps (they would hold codes and
//! tokens), private file modes by default.

use nix::sys::resource::{Resource, setrlimit};
use nix::sys::stat::{Mode, umask};

pub fn apply() -> Result<(), String> {
    nix::sys::prctl::set_dumpable(false).map_err(|e| format!("prctl(PR_SET_DUMPABLE, 0) failed: {e}"))?;
    setrlimit(Resource::RLIMIT_CORE, 0, 0).map_err(|e| format!("setrlimit(RLIMIT_CORE, 0) failed: {e}"))?;
    umask(Mode::from_bits_truncate(0o077));
    Ok(())
}
