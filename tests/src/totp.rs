//! An authenticator app, written apart from the daemon's so that a test
//! checks the daemon against RFC 6238 rather than against itself.

use hmac::{Hmac, Mac};

/// RFC 6238 TOTP, 30 s steps, 6 digits, HMAC-SHA1.
pub fn code_at(key: &[u8], unix_seconds: u64) -> String {
    let counter = (unix_seconds / 30).to_be_bytes();
    let mut mac = <Hmac<sha1::Sha1> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(&counter);
    let h = mac.finalize().into_bytes();
    let offset = (h[19] & 0x0f) as usize;
    let value = u32::from_be_bytes([h[offset] & 0x7f, h[offset + 1], h[offset + 2], h[offset + 3]]);
    format!("{:06}", value % 1_000_000)
}

/// The key an app is given as RFC 4648 base32 (no padding).
pub fn key_from_base32(text: &str) -> Vec<u8> {
    let (mut out, mut buffer, mut bits) = (Vec::new(), 0u64, 0);
    for c in text.trim().bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            other => panic!("{:?} is not base32", other as char),
        };
        buffer = (buffer << 5) | u64::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_rfc_6238_sha1_vectors() {
        // RFC 6238 appendix B (8 digits there; the last 6 here).
        let key = b"12345678901234567890";
        assert_eq!(code_at(key, 59), "287082");
        assert_eq!(code_at(key, 1_111_111_109), "081804");
        assert_eq!(code_at(key, 2_000_000_000), "279037");
        assert_eq!(key_from_base32("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"), key);
    }
}
