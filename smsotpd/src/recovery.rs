//! Recovery codes: ten single-use codes for the day the phone is gone.
//! Shown once; kept only as Argon2id hashes (OWASP's parameters), under one
//! random salt per set, so that checking a typed code costs one hash
//! whatever the set's size. A new set voids the old one.

use argon2::{Algorithm, Argon2, Params, Version};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::challenge::codes_equal;
use crate::random::fill_random;

pub const COUNT: usize = 10;
/// 12 symbols of 31: ~59 bits each, far beyond guessing within lockout.
const SYMBOLS: usize = 12;
/// No 0/o, 1/i/l: read off paper and typed back without doubt.
const ALPHABET: &[u8; 31] = b"23456789abcdefghjkmnpqrstuvwxyz";

/// A user's current set, as the record keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecoverySet {
    /// Hex, 16 bytes.
    pub salt: String,
    /// Hex Argon2id outputs of the codes not used yet.
    pub hashes: Vec<String>,
    /// Unix seconds.
    pub created: u64,
}

/// A new set: the codes to show once, and what to keep.
pub fn generate(now_unix: u64) -> std::io::Result<(Vec<Zeroizing<String>>, RecoverySet)> {
    let mut salt = [0u8; 16];
    fill_random(&mut salt)?;
    let mut codes = Vec::with_capacity(COUNT);
    let mut hashes = Vec::with_capacity(COUNT);
    for _ in 0..COUNT {
        let code = new_code()?;
        hashes.push(hex::encode(hash(&normalize(&code), &salt)?.as_slice()));
        codes.push(code);
    }
    Ok((codes, RecoverySet { salt: hex::encode(salt), hashes, created: now_unix }))
}

/// `xxxx-xxxx-xxxx`.
fn new_code() -> std::io::Result<Zeroizing<String>> {
    let mut code = Zeroizing::new(String::with_capacity(SYMBOLS + 2));
    let mut pool = Zeroizing::new([0u8; 32]);
    let mut taken = 0;
    while taken < SYMBOLS {
        fill_random(&mut pool[..])?;
        for &b in pool.iter() {
            // 248 = 8 * 31: no bias.
            if b < 248 && taken < SYMBOLS {
                if taken > 0 && taken % 4 == 0 {
                    code.push('-');
                }
                code.push(char::from(ALPHABET[usize::from(b % 31)]));
                taken += 1;
            }
        }
    }
    Ok(code)
}

/// Lower case, without the dashes and spaces people type or leave out.
pub fn normalize(typed: &str) -> Zeroizing<String> {
    Zeroizing::new(typed.chars().filter(|c| !matches!(c, '-' | ' ')).map(|c| c.to_ascii_lowercase()).collect())
}

/// Whether `typed` could be a recovery code at all (cheap, before hashing).
pub fn is_shaped(typed: &str) -> bool {
    let n = normalize(typed);
    n.len() == SYMBOLS && n.bytes().all(|b| ALPHABET.contains(&b))
}

fn hash(normalized: &str, salt: &[u8]) -> std::io::Result<Zeroizing<[u8; 32]>> {
    let params = Params::new(19 * 1024, 2, 1, Some(32)).map_err(|e| std::io::Error::other(e.to_string()))?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let mut out = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(normalized.as_bytes(), salt, &mut out[..])
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(out)
}

/// The index in `set.hashes` of the code typed, if it is one of them.
/// Slow on purpose (one Argon2id); run it off the event loop.
pub fn find(set: &RecoverySet, typed: &str) -> Option<usize> {
    if !is_shaped(typed) {
        return None;
    }
    let salt = hex::decode(&set.salt).ok()?;
    let mine = hash(&normalize(typed), &salt).ok()?;
    let mut found = None;
    for (i, stored) in set.hashes.iter().enumerate() {
        let stored = hex::decode(stored).unwrap_or_default();
        if codes_equal(&stored, mine.as_slice()) && found.is_none() {
            found = Some(i);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_code_works_once_and_only_in_its_set() {
        let (codes, mut set) = generate(1000).unwrap();
        assert_eq!(codes.len(), COUNT);
        assert_eq!(set.hashes.len(), COUNT);
        for c in &codes {
            assert_eq!(c.len(), 14, "{}", c.as_str());
            assert!(!set.hashes.iter().any(|h| h.contains(c.replace('-', "").as_str())), "never stored in clear");
        }
        let third = codes[2].clone();
        let i = find(&set, &third.to_uppercase().replace('-', " ")).unwrap();
        assert_eq!(i, 2, "typed in capitals with spaces");
        set.hashes.remove(i);
        assert_eq!(find(&set, &third), None, "used once");
        let (_, other) = generate(1000).unwrap();
        assert_eq!(find(&other, &codes[0]), None, "a new set voids the old codes");
        assert_ne!(other.salt, set.salt);
        assert_eq!(find(&set, "aaaa-aaaa-aaaa"), None);
        assert_eq!(find(&set, "123456"), None);
    }

    #[test]
    fn codes_use_the_unambiguous_alphabet() {
        let (codes, _) = generate(0).unwrap();
        for c in codes {
            assert!(c.bytes().all(|b| b == b'-' || ALPHABET.contains(&b)), "{}", c.as_str());
            assert!(is_shaped(&c));
        }
    }
}
