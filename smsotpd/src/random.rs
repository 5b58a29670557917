//! Randomness for codes, challenge ids, keys and jitter: the operating
//! system's CSPRNG, never a userspace generator that could be forked.

use rand::TryRng;

/// Fills `buf` from getrandom(2).
pub fn fill_random(buf: &mut [u8]) -> std::io::Result<()> {
    rand::rngs::SysRng.try_fill_bytes(buf).map_err(|e| std::io::Error::other(format!("getrandom failed: {e}")))
}
