//! Authenticator apps: RFC 6238 TOTP as every app reads it (HMAC-SHA1, 6
//! digits, 30 s steps, a base32 secret in an otpauth:// URI). The secret is
//! the daemon's, kept in the user's record, never in the user's home.

use hmac::{Hmac, Mac};
use sha1::Sha1;
use zeroize::Zeroizing;

use crate::challenge::codes_equal;

pub const DIGITS: usize = 6;
pub const STEP_SECONDS: u64 = 30;
/// Steps accepted either side of now: one, for a phone clock up to ~30 s off.
pub const SKEW_STEPS: u64 = 1;
/// 160 bits, RFC 4226's recommendation and what apps expect.
pub const SECRET_BYTES: usize = 20;

/// The code for one time step (RFC 4226 dynamic truncation).
pub fn code_at(secret: &[u8], step: u64) -> Zeroizing<String> {
    // HMAC takes a key of any length; this cannot fail.
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret) else {
        return Zeroizing::new(String::new());
    };
    mac.update(&step.to_be_bytes());
    let mut digest = [0u8; 20];
    digest.copy_from_slice(&mac.finalize().into_bytes());
    let digest = Zeroizing::new(digest);
    let offset = usize::from(digest[19] & 0x0f);
    let bin = (u32::from(digest[offset] & 0x7f) << 24)
        | (u32::from(digest[offset + 1]) << 16)
        | (u32::from(digest[offset + 2]) << 8)
        | u32::from(digest[offset + 3]);
    Zeroizing::new(format!("{:06}", bin % 1_000_000))
}

/// The step a typed code matches: within [`SKEW_STEPS`] of `now`, and
/// later than `last_used` (a code is good once: a replayed step is
/// refused). Every candidate is compared, so timing says nothing.
pub fn verify(secret: &[u8], typed: &str, now_unix: u64, last_used: u64) -> Option<u64> {
    if typed.len() != DIGITS || !typed.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = now_unix / STEP_SECONDS;
    let mut found = None;
    for step in now.saturating_sub(SKEW_STEPS)..=now.saturating_add(SKEW_STEPS) {
        let matches = codes_equal(code_at(secret, step).as_bytes(), typed.as_bytes());
        if matches && step > last_used && found.is_none() {
            found = Some(step);
        }
    }
    found
}

const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 base32 without padding, as otpauth:// URIs carry secrets.
pub fn base32(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// The inverse of [`base32`]; None on any character outside the alphabet.
pub fn from_base32(text: &str) -> Option<Zeroizing<Vec<u8>>> {
    let mut out = Zeroizing::new(Vec::with_capacity(text.len() * 5 / 8));
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let v = ALPHABET.iter().position(|&a| a == c.to_ascii_uppercase())?;
        buffer = (buffer << 5) | v as u32;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// What an app scans: `otpauth://totp/ISSUER:USER@HOST?secret=...`.
pub fn uri(secret_b32: &str, user: &str, host: &str) -> String {
    let label = format!("{user}@{host}");
    format!(
        "otpauth://totp/smsotp:{}?secret={secret_b32}&issuer=smsotp&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
        percent_encode(&label)
    )
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'@' => char::from(b).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 rows (8 digits there; 6 are the last 6).
    #[test]
    fn rfc_6238_vectors() {
        let secret = b"12345678901234567890";
        for (t, eight) in [
            (59u64, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(code_at(secret, t / STEP_SECONDS).as_str(), &eight[2..], "T = {t}");
        }
    }

    #[test]
    fn a_step_is_good_once_and_skew_is_bounded() {
        let secret = b"12345678901234567890";
        let now = 1_111_111_111;
        let step = now / STEP_SECONDS;
        let code = code_at(secret, step);
        assert_eq!(verify(secret, &code, now, 0), Some(step));
        assert_eq!(verify(secret, &code, now, step), None, "replayed");
        let behind = code_at(secret, step - 1);
        assert_eq!(verify(secret, &behind, now, 0), Some(step - 1), "30 s slow phone");
        let ahead = code_at(secret, step + 1);
        assert_eq!(verify(secret, &ahead, now, 0), Some(step + 1), "30 s fast phone");
        assert_eq!(verify(secret, &code_at(secret, step - 2), now, 0), None, "60 s off");
        assert_eq!(verify(secret, &code_at(secret, step + 2), now, 0), None, "60 s off");
        assert_eq!(verify(secret, "12345", now, 0), None);
        assert_eq!(verify(secret, "١٢٣٤٥٦", now, 0), None, "other scripts' digits");
    }

    #[test]
    fn base32_round_trips_and_matches_rfc_4648() {
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32(b"12345678901234567890"), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert_eq!(from_base32("mzxw6ytboi").unwrap().as_slice(), b"foobar");
        assert!(from_base32("MZXW1").is_none(), "1 is not base32");
    }

    #[test]
    fn the_uri_is_what_apps_read() {
        let u = uri("GEZDGNBV", "alice", "web 1");
        assert_eq!(
            u,
            "otpauth://totp/smsotp:alice@web%201?secret=GEZDGNBV&issuer=smsotp&algorithm=SHA1&digits=6&period=30"
        );
    }
}
