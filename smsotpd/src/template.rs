//! The SMS text: `{code}`, `{host}`, `{service}`, `{minutes}` placeholders,
//! checked when the config is read so a typo cannot send an SMS without a code.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Code,
    Host,
    Service,
    Minutes,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template(Vec<Piece>);

/// Values for one message. `code` is borrowed from zeroizing memory; the
/// rendered text must be kept in zeroizing memory by the caller too.
pub struct Fields<'a> {
    pub code: &'a str,
    pub host: &'a str,
    pub service: &'a str,
    pub minutes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateError {
    Unknown(String),
    Unclosed,
    NoCode,
    TooLong(usize),
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TemplateError::Unknown(name) => write!(
                f,
                "unknown placeholder {{{name}}}; the placeholders are {{code}}, {{host}}, {{service}} and {{minutes}}"
            ),
            TemplateError::Unclosed => {
                f.write_str("a '{' is not closed by '}'; braces are only used around placeholders")
            }
            TemplateError::NoCode => f.write_str("the template must contain {code}"),
            TemplateError::TooLong(n) => write!(
                f,
                "the template is {n} characters long; keep it under 300 so the SMS stays short (Twilio bills per 160-character segment)"
            ),
        }
    }
}

impl Template {
    pub fn parse(s: &str) -> Result<Template, TemplateError> {
        let n = s.chars().count();
        if n > 300 {
            return Err(TemplateError::TooLong(n));
        }
        let mut pieces = Vec::new();
        let mut rest = s;
        while let Some(open) = rest.find(['{', '}']) {
            if rest[open..].starts_with('}') {
                return Err(TemplateError::Unclosed);
            }
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_owned()));
            }
            let after = &rest[open + 1..];
            let close = after.find('}').ok_or(TemplateError::Unclosed)?;
            let name = &after[..close];
            pieces.push(match name {
                "code" => Piece::Code,
                "host" => Piece::Host,
                "service" => Piece::Service,
                "minutes" => Piece::Minutes,
                other if other.contains('{') => return Err(TemplateError::Unclosed),
                other => return Err(TemplateError::Unknown(other.to_owned())),
            });
            rest = &after[close + 1..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_owned()));
        }
        if !pieces.contains(&Piece::Code) {
            return Err(TemplateError::NoCode);
        }
        Ok(Template(pieces))
    }

    pub fn render(&self, f: &Fields<'_>) -> zeroize::Zeroizing<String> {
        let mut out = zeroize::Zeroizing::new(String::with_capacity(160));
        for p in &self.0 {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Code => out.push_str(f.code),
                Piece::Host => out.push_str(f.host),
                Piece::Service => out.push_str(f.service),
                Piece::Minutes => out.push_str(&f.minutes.to_string()),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> Fields<'static> {
        Fields { code: "123456", host: "web1", service: "sshd", minutes: 5 }
    }

    #[test]
    fn renders_every_placeholder() {
        let t = Template::parse("{code} for {host} ({service}), {minutes} min").unwrap();
        assert_eq!(t.render(&fields()).as_str(), "123456 for web1 (sshd), 5 min");
        let t = Template::parse("{code}").unwrap();
        assert_eq!(t.render(&fields()).as_str(), "123456");
    }

    #[test]
    fn rejects_mistakes() {
        assert_eq!(Template::parse("no code"), Err(TemplateError::NoCode));
        assert_eq!(Template::parse("{cod}"), Err(TemplateError::Unknown("cod".into())));
        assert_eq!(Template::parse("{code"), Err(TemplateError::Unclosed));
        assert_eq!(Template::parse("{code} }"), Err(TemplateError::Unclosed));
        assert_eq!(Template::parse("{{code}}"), Err(TemplateError::Unclosed));
        assert!(matches!(Template::parse(&format!("{{code}}{}", "x".repeat(400))), Err(TemplateError::TooLong(_))));
        assert!(TemplateError::Unknown("x".into()).to_string().contains("{code}, {host}"));
    }

    #[test]
    fn default_template_is_valid() {
        Template::parse(crate::config::DEFAULT_TEMPLATE).unwrap();
    }
}
