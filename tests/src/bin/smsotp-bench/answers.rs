//! What a person would type: the TOTP code of google-authenticator's secret,
//! or the code of the newest SMS to a number, read from the outbox or the
//! fake Twilio's log after the point where this login began.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::Duration;

/// google-authenticator's secret for every bench user, in the file's base32
/// and as bytes ("Hello!\xde\xad\xbe\xef", the RFC 4226-style example key).
pub const TOTP_SECRET_BASE32: &str = "JBSWY3DPEHPK3PXP";
const TOTP_SECRET: &[u8] = b"Hello!\xde\xad\xbe\xef";

/// RFC 6238 TOTP, 30 s steps, 6 digits, HMAC-SHA1 (google-authenticator's
/// defaults).
pub fn totp(unix_seconds: u64) -> String {
    smsotp_tests::totp::code_at(TOTP_SECRET, unix_seconds)
}

/// Bytes in the SMS file now: where this login's SMS will start.
pub fn sms_mark(file: &Path) -> u64 {
    std::fs::metadata(file).map(|m| m.len()).unwrap_or(0)
}

/// Waits for an SMS to `number` written after `mark` and returns its code.
#[allow(clippy::disallowed_methods)] // the benchmark waits on real delivery
pub fn sms_code(file: &Path, mark: u64, number: &str, limit: Duration) -> Option<String> {
    let start = std::time::Instant::now();
    // Only new bytes are read: a thousand workers waiting at once must not
    // eat the CPU the logins they measure need. The pause stays short: it
    // adds to every login measured.
    let (mut pos, mut carry) = (mark, String::new());
    loop {
        if let Some(code) = read_new(file, &mut pos, &mut carry, number) {
            return Some(code);
        }
        if start.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_micros(100));
    }
}

/// Reads what was appended since `pos`; complete lines are searched, a
/// partial last line is kept in `carry` for the next call.
fn read_new(file: &Path, pos: &mut u64, carry: &mut String, number: &str) -> Option<String> {
    let mut f = std::fs::File::open(file).ok()?;
    f.seek(SeekFrom::Start(*pos)).ok()?;
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes).ok()?;
    *pos += bytes.len() as u64;
    carry.push_str(&String::from_utf8_lossy(&bytes));
    let complete = carry.rfind('\n').map_or(0, |i| i + 1);
    let found = carry[..complete].lines().find_map(|line| code_in(line, number));
    carry.drain(..complete);
    found
}

/// The code in one line for `number`: the first run of six or more digits
/// after the number (outbox: `... to=N  body=CODE is ...`; fake Twilio's
/// log: `N<TAB>CODE is ...`).
pub fn code_in(line: &str, number: &str) -> Option<String> {
    let at = line.find(number)?;
    let rest = &line[at + number.len()..];
    if rest.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let digits: String = rest.chars().skip_while(|c| !c.is_ascii_digit()).take_while(|c| c.is_ascii_digit()).collect();
    (digits.len() >= 6).then_some(digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bench_secret_is_the_one_in_the_file() {
        assert_eq!(smsotp_tests::totp::key_from_base32(TOTP_SECRET_BASE32), TOTP_SECRET);
    }

    #[test]
    fn finds_the_code_after_the_number() {
        let outbox = "2026-11-23T17:00:00Z  to=+14150000001  body=123456 is your login code for h (sshd).";
        assert_eq!(code_in(outbox, "+14150000001").as_deref(), Some("123456"));
        assert_eq!(code_in(outbox, "+1415000000"), None);
        assert_eq!(code_in("+14150000002\t654321 is your", "+14150000002").as_deref(), Some("654321"));
        assert_eq!(code_in("+14150000002\t654321 is your", "+14150000001"), None);
    }
}
