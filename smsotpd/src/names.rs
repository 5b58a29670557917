//! Validated names: login names and phone numbers.
//!
//! Both come from outside (PAM_USER, an admin's command line) and end up in
//! file names, logs and provider requests, so they are checked once here and
//! carried as types afterwards.

use std::fmt;

/// A login name that is safe to use as a file name and to log.
///
/// POSIX portable user names plus the common extensions (upper case, `.`,
/// a trailing `$` for Samba machine accounts). No leading `-` or `.`, at most
/// 32 bytes. PAM_USER values like `" alice"` or `"../root"` are not names of
/// anybody: they never alias an enrolled user (Duo PSA-2015-003).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserName(String);

impl UserName {
    pub const MAX_LEN: usize = 32;

    pub fn parse(s: &str) -> Result<Self, NameError> {
        if s.is_empty() {
            return Err(NameError::Empty);
        }
        if s.len() > Self::MAX_LEN {
            return Err(NameError::TooLong);
        }
        let bytes = s.as_bytes();
        let body = match bytes.split_last() {
            Some((b'$', rest)) if !rest.is_empty() => rest,
            _ => bytes,
        };
        let ok_char = |c: &u8| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.');
        if !body.iter().all(ok_char) || matches!(bytes[0], b'-' | b'.') {
            return Err(NameError::BadCharacters);
        }
        Ok(UserName(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserName({})", self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameError {
    Empty,
    TooLong,
    BadCharacters,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameError::Empty => "the user name is empty",
            NameError::TooLong => "the user name is longer than 32 characters",
            NameError::BadCharacters => {
                "the user name may only hold letters, digits, '_', '-', '.' (not first) and a final '$'"
            }
        })
    }
}

/// An E.164 phone number: '+' and 8 to 15 digits, first digit not 0.
///
/// Its `Debug` and `Display` show only the masked form, so a number cannot
/// reach a log by accident; [`PhoneNumber::e164`] is for the provider.
#[derive(Clone, PartialEq, Eq)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    pub fn parse(s: &str) -> Result<Self, PhoneError> {
        let digits = s.strip_prefix('+').ok_or(PhoneError::NoPlus)?;
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PhoneError::NotDigits);
        }
        if !(8..=15).contains(&digits.len()) {
            return Err(PhoneError::Length(digits.len()));
        }
        if digits.starts_with('0') {
            return Err(PhoneError::LeadingZero);
        }
        Ok(PhoneNumber(s.to_owned()))
    }

    /// The full number, for the provider request and the root-only store.
    pub fn e164(&self) -> &str {
        &self.0
    }

    /// `******1234`: what users and logs see.
    pub fn masked(&self) -> String {
        mask_last_digits(&self.0)
    }
}

/// Masks all but the last four characters of `number` with six stars, so the
/// mask does not reveal the number's length either.
pub fn mask_last_digits(number: &str) -> String {
    let tail: String = number.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect();
    format!("******{tail}")
}

impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhoneNumber({})", self.masked())
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhoneError {
    NoPlus,
    NotDigits,
    Length(usize),
    LeadingZero,
}

impl fmt::Display for PhoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PhoneError::NoPlus => f.write_str(
                "the phone number must be in E.164 form: '+', the country code, then the number, e.g. +14155550123",
            ),
            PhoneError::NotDigits => f.write_str(
                "the phone number may only hold digits after the '+' (no spaces, dashes or brackets), e.g. +14155550123",
            ),
            PhoneError::Length(n) => write!(
                f,
                "the phone number has {n} digits; E.164 numbers have 8 to 15 digits after the '+'"
            ),
            PhoneError::LeadingZero => f.write_str(
                "the phone number starts with 0 after the '+'; country codes never do (drop the trunk prefix)",
            ),
        }
    }
}

/// Makes text from outside safe for a one-line log entry: control
/// characters (ESC, BEL, newlines), other line breaks (U+2028, U+2029),
/// invisible format characters and bidirectional overrides (U+202E can make
/// a log line read backwards) become `\x..` / `\u{....}` escapes, and the
/// length is capped (128 characters: a whole machine id,
/// `key:SHA256:<43>@<IPv6 /64>`, fits, so an admin can read the network).
pub fn sanitize_for_log(s: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i >= 128 {
            out.push('…');
            break;
        }
        let code = u32::from(c);
        if code < 0x100 && (c.is_control() || code == 0xAD || code == 0xA0) {
            let _ = write!(out, "\\x{code:02x}");
        } else if needs_escape(c) {
            let _ = write!(out, "\\u{{{code:04x}}}");
        } else {
            out.push(c);
        }
    }
    out
}

/// Characters that print as nothing, move the text, or break the line.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || (c.is_whitespace() && c != ' ')
        || matches!(u32::from(c),
            0x0600..=0x0605 | 0x061C | 0x06DD | 0x070F | 0x180E | 0x200B..=0x200F | 0x202A..=0x202E
            | 0x2060..=0x206F | 0xFEFF | 0xFFF9..=0xFFFB | 0x110BD | 0x110CD | 0x1D173..=0x1D17A
            | 0xE0001 | 0xE0020..=0xE007F)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_text_cannot_hide_or_reorder_itself() {
        assert_eq!(sanitize_for_log("bob\nevent=accepted"), "bob\\x0aevent=accepted");
        assert_eq!(sanitize_for_log("alice\u{202e}nimda"), "alice\\u{202e}nimda");
        assert_eq!(sanitize_for_log("a\u{2028}b\u{2029}c"), "a\\u{2028}b\\u{2029}c");
        assert_eq!(sanitize_for_log("zero\u{200b}width\u{feff}"), "zero\\u{200b}width\\u{feff}");
        assert_eq!(sanitize_for_log("iso\u{2066}late\u{2069}"), "iso\\u{2066}late\\u{2069}");
        assert_eq!(sanitize_for_log("nb\u{a0}sp\u{85}"), "nb\\xa0sp\\x85");
        assert_eq!(sanitize_for_log("tag\u{e0041}"), "tag\\u{e0041}");
        assert_eq!(sanitize_for_log("jörg 名前 ok"), "jörg 名前 ok", "printable text stays as it is");
    }

    #[test]
    fn user_names() {
        for ok in ["alice", "a", "bob.smith", "svc_backup-2", "HOST$", "_apt", "x".repeat(32).as_str()] {
            assert!(UserName::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            " alice",
            "alice ",
            "alice\n",
            "../root",
            "a/b",
            "-rf",
            ".hidden",
            "$",
            "al ice",
            "ålice",
            "x".repeat(33).as_str(),
            "a$b",
            "a\0b",
        ] {
            assert!(UserName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn phone_numbers() {
        assert_eq!(PhoneNumber::parse("+14155550123").unwrap().e164(), "+14155550123");
        assert!(PhoneNumber::parse("+12345678").is_ok());
        assert!(PhoneNumber::parse("+123456789012345").is_ok());
        assert_eq!(PhoneNumber::parse("14155550123"), Err(PhoneError::NoPlus));
        assert_eq!(PhoneNumber::parse("+1 415 555"), Err(PhoneError::NotDigits));
        assert_eq!(PhoneNumber::parse("+1234567"), Err(PhoneError::Length(7)));
        assert_eq!(PhoneNumber::parse("+1234567890123456"), Err(PhoneError::Length(16)));
        assert_eq!(PhoneNumber::parse("+04155550123"), Err(PhoneError::LeadingZero));
        assert_eq!(PhoneNumber::parse("+１２３４５６７８９"), Err(PhoneError::NotDigits));
    }

    #[test]
    fn numbers_only_print_masked() {
        let n = PhoneNumber::parse("+14155550123").unwrap();
        assert_eq!(n.masked(), "******0123");
        assert_eq!(format!("{n}"), "******0123");
        assert_eq!(format!("{n:?}"), "PhoneNumber(******0123)");
    }

    #[test]
    fn log_sanitizing() {
        assert_eq!(sanitize_for_log("bob\x1b[31m\x07\n"), "bob\\x1b[31m\\x07\\x0a");
        assert_eq!(sanitize_for_log(&"a".repeat(200)).chars().count(), 129);
        let machine = "key:SHA256:nenFoTNAbHqh+IVJ0roflndEnXerEyWss+9re6xstkk@2001:db8:aaaa:bbbb::/64";
        assert_eq!(sanitize_for_log(machine), machine, "a machine id is logged whole");
    }
}
