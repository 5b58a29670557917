//! Who needs a code when: a default mode and ordered rules, first match wins.
//!
//! Pure: the daemon gathers the facts (user, service, where from, groups)
//! and this decides. Addresses are matched numerically only; a host name in
//! PAM_RHOST never matches a network (names are never resolved, so DNS
//! cannot grant an exemption, cf. CVE-2024-10963).

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

/// What a login needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// A code at every login.
    Always,
    /// After a correct code, the same user on the same machine skips the
    /// code for this many days.
    Trust { days: u32 },
    /// No code (logged every time).
    Skip,
    /// No login.
    Deny,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Always => f.write_str("always"),
            Action::Trust { days } => write!(f, "trust for {days} days"),
            Action::Skip => f.write_str("skip"),
            Action::Deny => f.write_str("deny"),
        }
    }
}

/// An IPv4 or IPv6 network. IPv4-mapped IPv6 addresses are treated as the
/// IPv4 address they carry, on both sides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr(IpNet);

impl Cidr {
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| {
            format!("{s:?} is not an address or CIDR (e.g. \"10.0.0.0/8\", \"2001:db8::/32\"); rules match numeric addresses only, names are never resolved")
        })?;
        let addr = addr.to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => {
                let p: u8 = p.parse().map_err(|_| format!("{s:?}: the prefix length {p:?} is not a number"))?;
                // "::ffff:10.0.0.0/104" is the IPv4 network 10.0.0.0/8.
                let p = if s.contains(':') && addr.is_ipv4() {
                    p.checked_sub(96).ok_or(format!("{s:?}: an IPv4-mapped prefix must be at least 96"))?
                } else {
                    p
                };
                if p > max {
                    return Err(format!("{s:?}: the prefix length {p} is longer than {max}"));
                }
                p
            }
        };
        IpNet::new(addr, prefix).map(Cidr).map_err(|e| format!("{s:?}: {e}"))
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(&ip.to_canonical())
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Reads PAM_RHOST: empty means a local login; a numeric address (an IPv6
/// zone is dropped, IPv4-mapped is unwrapped); anything else is a name.
pub fn parse_rhost(rhost: &str) -> Origin {
    let r = rhost.trim();
    if r.is_empty() {
        return Origin::Local;
    }
    let bare = r.trim_start_matches('[').trim_end_matches(']');
    let bare = bare.split('%').next().unwrap_or(bare);
    match bare.parse::<IpAddr>() {
        Ok(ip) => Origin::Address(ip.to_canonical()),
        Err(_) => Origin::Name(r.to_ascii_lowercase()),
    }
}

/// Where a login comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// No remote host: console, su, sudo.
    Local,
    Address(IpAddr),
    /// PAM_RHOST held a host name (sshd with UseDNS yes).
    Name(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// "rule 3" or "rule 3 (office)", for logs and `smsotpctl explain`.
    pub label: String,
    pub from: Vec<Cidr>,
    pub services: Vec<String>,
    pub users: Vec<String>,
    pub groups: Vec<String>,
    /// Some(true): only logins without a remote host; Some(false): only remote.
    pub local: Option<bool>,
    pub action: Action,
    /// Users without a number, for logins this rule matches (else the
    /// top-level `unenrolled`).
    pub unenrolled: Option<crate::config::Unenrolled>,
}

/// What the policy is asked about.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    pub user: &'a str,
    pub service: &'a str,
    pub origin: &'a Origin,
    /// The user's primary and supplementary group names.
    pub groups: &'a [String],
}

impl Rule {
    /// Every criterion the rule has must hold; within a list, any entry.
    pub fn matches(&self, f: &Facts<'_>) -> bool {
        let is_local = *f.origin == Origin::Local;
        if let Some(want_local) = self.local
            && want_local != is_local
        {
            return false;
        }
        if !self.from.is_empty() {
            let Origin::Address(ip) = f.origin else {
                return false;
            };
            if !self.from.iter().any(|c| c.contains(*ip)) {
                return false;
            }
        }
        if !self.services.is_empty() && !self.services.iter().any(|s| s == f.service) {
            return false;
        }
        if !self.users.is_empty() && !self.users.iter().any(|u| u == f.user) {
            return false;
        }
        if !self.groups.is_empty() && !self.groups.iter().any(|g| f.groups.contains(g)) {
            return false;
        }
        true
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// `mode`: Always or Trust.
    pub default: Action,
    pub rules: Vec<Rule>,
    /// Ask the user before recording trust.
    pub ask_user: bool,
    /// Trust records kept per user; the oldest go first.
    pub max_trusted: usize,
}

impl Default for Policy {
    fn default() -> Self {
        Policy { default: Action::Always, rules: Vec::new(), ask_user: false, max_trusted: 20 }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub action: Action,
    /// The rule that decided, or None for the default mode.
    pub rule: Option<String>,
    /// The deciding rule's `unenrolled`, if it has one.
    pub unenrolled: Option<crate::config::Unenrolled>,
}

impl Decision {
    pub fn source(&self) -> &str {
        self.rule.as_deref().unwrap_or("default mode")
    }
}

impl Policy {
    /// Whether any rule matches on groups: only then are a user's groups
    /// worth an NSS lookup on every login.
    pub fn uses_groups(&self) -> bool {
        self.rules.iter().any(|r| !r.groups.is_empty())
    }

    pub fn decide(&self, f: &Facts<'_>) -> Decision {
        for r in &self.rules {
            if r.matches(f) {
                return Decision { action: r.action, rule: Some(r.label.clone()), unenrolled: r.unenrolled };
            }
        }
        Decision { action: self.default, rule: None, unenrolled: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(label: &str, action: Action) -> Rule {
        Rule {
            label: label.into(),
            from: vec![],
            services: vec![],
            users: vec![],
            groups: vec![],
            local: None,
            action,
            unenrolled: None,
        }
    }

    #[test]
    fn cidrs() {
        let c = |s: &str| Cidr::parse(s).unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(c("10.0.0.0/8").contains(ip("10.255.1.2")));
        assert!(!c("10.0.0.0/8").contains(ip("11.0.0.1")));
        assert!(c("10.0.0.0/8").contains(ip("::ffff:10.1.2.3")), "IPv4-mapped is the IPv4 address");
        assert!(c("::ffff:10.0.0.0/104").contains(ip("10.9.9.9")));
        assert!(c("2001:db8::/32").contains(ip("2001:db8:1::5")));
        assert!(!c("2001:db8::/32").contains(ip("2001:db9::5")));
        assert!(!c("2001:db8::/32").contains(ip("10.0.0.1")));
        assert!(c("0.0.0.0/0").contains(ip("203.0.113.9")));
        assert!(!c("0.0.0.0/0").contains(ip("2001:db8::1")));
        assert!(c("::/0").contains(ip("2001:db8::1")));
        assert!(c("192.0.2.7").contains(ip("192.0.2.7")));
        assert!(!c("192.0.2.7").contains(ip("192.0.2.8")));
        for bad in
            ["10.0.0.0/33", "2001:db8::/129", "office.example.com", "10.0.0/8", "10.0.0.0/x", "::ffff:10.0.0.0/8", ""]
        {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
        assert!(Cidr::parse("office.example.com").unwrap_err().contains("never resolved"));
    }

    #[test]
    fn rhosts() {
        assert_eq!(parse_rhost(""), Origin::Local);
        assert_eq!(parse_rhost("192.0.2.1"), Origin::Address("192.0.2.1".parse().unwrap()));
        assert_eq!(parse_rhost("::ffff:192.0.2.1"), Origin::Address("192.0.2.1".parse().unwrap()));
        assert_eq!(parse_rhost("fe80::1%eth0"), Origin::Address("fe80::1".parse().unwrap()));
        assert_eq!(parse_rhost("[2001:db8::1]"), Origin::Address("2001:db8::1".parse().unwrap()));
        assert_eq!(parse_rhost("Laptop.Example.COM"), Origin::Name("laptop.example.com".into()));
    }

    #[test]
    fn groups_are_looked_up_only_for_group_rules() {
        let mut p = Policy::default();
        assert!(!p.uses_groups());
        p.rules.push(Rule {
            label: "a".into(),
            from: vec![],
            services: vec![],
            users: vec![],
            groups: vec![],
            local: None,
            action: Action::Skip,
            unenrolled: None,
        });
        assert!(!p.uses_groups());
        p.rules[0].groups = vec!["wheel".into()];
        assert!(p.uses_groups());
    }

    #[test]
    fn table() {
        let mut office = rule("rule 1 (office)", Action::Trust { days: 30 });
        office.from = vec![Cidr::parse("10.0.0.0/8").unwrap(), Cidr::parse("2001:db8::/32").unwrap()];
        let mut sudo = rule("rule 2 (sudo)", Action::Always);
        sudo.services = vec!["sudo".into()];
        let mut robots = rule("rule 3 (robots)", Action::Skip);
        robots.groups = vec!["svc-backup".into()];
        let mut banned = rule("rule 4", Action::Deny);
        banned.users = vec!["mallory".into()];
        let mut console = rule("rule 5 (console)", Action::Trust { days: 7 });
        console.local = Some(true);
        let policy =
            Policy { default: Action::Always, rules: vec![office, sudo, robots, banned, console], ..Policy::default() };
        let addr = |s: &str| Origin::Address(s.parse().unwrap());
        let none: Vec<String> = vec![];
        let backup = vec!["users".to_string(), "svc-backup".to_string()];
        type Case<'a> = (&'a str, &'a str, Origin, &'a [String], Action, Option<&'a str>);
        let cases: Vec<Case<'_>> = vec![
            ("alice", "sshd", addr("10.1.2.3"), &none, Action::Trust { days: 30 }, Some("rule 1 (office)")),
            ("alice", "sshd", addr("::ffff:10.1.2.3"), &none, Action::Trust { days: 30 }, Some("rule 1 (office)")),
            ("alice", "sshd", addr("2001:db8::7"), &none, Action::Trust { days: 30 }, Some("rule 1 (office)")),
            ("alice", "sshd", addr("203.0.113.5"), &none, Action::Always, None),
            ("alice", "sshd", Origin::Name("host.office.example".into()), &none, Action::Always, None),
            // Order: the office rule comes before the sudo rule.
            ("alice", "sudo", addr("10.1.2.3"), &none, Action::Trust { days: 30 }, Some("rule 1 (office)")),
            ("alice", "sudo", Origin::Local, &none, Action::Always, Some("rule 2 (sudo)")),
            ("backup", "sshd", addr("203.0.113.5"), &backup, Action::Skip, Some("rule 3 (robots)")),
            ("mallory", "sshd", addr("203.0.113.5"), &none, Action::Deny, Some("rule 4")),
            ("alice", "login", Origin::Local, &none, Action::Trust { days: 7 }, Some("rule 5 (console)")),
        ];
        for (user, service, origin, groups, action, rule) in cases {
            let d = policy.decide(&Facts { user, service, origin: &origin, groups });
            assert_eq!((d.action, d.rule.as_deref()), (action, rule), "{user} {service} {origin:?}");
        }
    }

    #[test]
    fn remote_only_and_empty_rules() {
        let mut remote = rule("r", Action::Skip);
        remote.local = Some(false);
        let p = Policy { rules: vec![remote], ..Policy::default() };
        let f = |o: &Origin| p.decide(&Facts { user: "a", service: "s", origin: o, groups: &[] }).action;
        assert_eq!(f(&Origin::Local), Action::Always);
        assert_eq!(f(&Origin::Name("x".into())), Action::Skip);
        let catch_all = Policy { rules: vec![rule("all", Action::Deny)], ..Policy::default() };
        assert_eq!(
            catch_all.decide(&Facts { user: "a", service: "s", origin: &Origin::Local, groups: &[] }).action,
            Action::Deny
        );
    }
}
