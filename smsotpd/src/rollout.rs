//! Who would be locked out: the local accounts that can log in and have no
//! number, root and the administrators first. `smsotpctl rollout` prints
//! it; `smsotpctl doctor` fails when pam_sms is in a login stack with
//! `unenrolled = "deny"` and root, or every administrator, has no number.
//! Parsing is pure (the files' text in, accounts out) so tests need no
//! system.

use std::collections::BTreeSet;

use crate::doctor::{Finding, Level};

/// Groups whose members may become root (Debian's, RHEL's, Ubuntu's old).
const ADMIN_GROUPS: [&str; 3] = ["sudo", "wheel", "admin"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    /// "root", or the administrators' group the account is in.
    pub admin: Option<String>,
}

/// Shells that refuse a login.
fn can_log_in(shell: &str) -> bool {
    let base = shell.rsplit('/').next().unwrap_or(shell);
    !shell.is_empty() && !matches!(base, "nologin" | "false" | "sync" | "shutdown" | "halt")
}

/// Accounts of `passwd` (the file's text) with a login shell, root first,
/// then administrators (by `group`'s text), then the rest, each by name.
pub fn login_accounts(passwd: &str, group: &str) -> Vec<Account> {
    let mut members: Vec<(String, String)> = Vec::new(); // (user, admin group)
    let mut admin_gids: Vec<(String, String)> = Vec::new(); // (gid, group)
    for line in group.lines() {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() >= 4 && ADMIN_GROUPS.contains(&f[0]) {
            admin_gids.push((f[2].to_owned(), f[0].to_owned()));
            for m in f[3].split(',').filter(|m| !m.is_empty()) {
                members.push((m.to_owned(), f[0].to_owned()));
            }
        }
    }
    let mut out: Vec<Account> = passwd
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() < 7 || f[0].is_empty() || f[0].starts_with('#') || !can_log_in(f[6]) {
                return None;
            }
            let admin = if f[2] == "0" {
                Some("root".to_owned())
            } else {
                members
                    .iter()
                    .find(|(u, _)| u == f[0])
                    .map(|(_, g)| g.clone())
                    .or_else(|| admin_gids.iter().find(|(gid, _)| gid == f[3]).map(|(_, g)| g.clone()))
            };
            Some(Account { name: f[0].to_owned(), admin })
        })
        .collect();
    out.sort_by_key(|a| (a.admin.as_deref() != Some("root"), a.admin.is_none(), a.name.clone()));
    out.dedup_by(|a, b| a.name == b.name);
    out
}

/// The accounts of `accounts` that have no number.
pub fn unenrolled<'a>(accounts: &'a [Account], enrolled: &BTreeSet<String>) -> Vec<&'a Account> {
    accounts.iter().filter(|a| !enrolled.contains(&a.name)).collect()
}

/// Doctor's verdict under `unenrolled = "deny"`. `stacks`: the services
/// whose stack asks pam_sms now; none means it is not on yet, and the
/// verdict is about turning it on everywhere (pam-auth-update's profile).
/// Root is locked out when its console (`login`) asks for a code it cannot
/// get, unless a policy rule skips it there (`root_console_skipped`); every
/// administrator, when none has a number.
pub fn lockout_finding(
    accounts: &[Account],
    enrolled: &BTreeSet<String>,
    stacks: &[&str],
    root_console_skipped: bool,
) -> Finding {
    let active = !stacks.is_empty();
    let left = unenrolled(accounts, enrolled);
    let console_asks = !active || stacks.contains(&"login");
    let root_out = console_asks && !root_console_skipped && left.iter().any(|a| a.admin.as_deref() == Some("root"));
    let admins: Vec<&Account> = accounts.iter().filter(|a| a.admin.as_deref().is_some_and(|g| g != "root")).collect();
    let admins_out = !admins.is_empty() && admins.iter().all(|a| !enrolled.contains(&a.name));
    if !root_out && !admins_out {
        return Finding {
            level: Level::Ok,
            what: format!(
                "rollout: neither root on the console nor every administrator is locked out ({} account(s) without a number)",
                left.len()
            ),
            fix: String::new(),
        };
    }
    let who = match (root_out, admins_out) {
        (true, true) => "root on the console and every administrator".to_owned(),
        (true, false) => "root on the console".to_owned(),
        _ => format!("every administrator ({})", admins.iter().map(|a| a.name.as_str()).collect::<Vec<_>>().join(", ")),
    };
    let (level, when) = if active {
        (Level::Fail, format!("pam_sms in {}", stacks.join(", ")))
    } else {
        (Level::Warn, "enabling pam_sms (pam-auth-update --enable smsotp)".to_owned())
    };
    Finding {
        level,
        what: format!("rollout: with unenrolled = \"deny\", {when} locks out {who}: no number enrolled"),
        fix: "enroll them first (smsotpctl rollout lists who), keep root's console out of SMS (README: Rolling out safely), or set unenrolled = \"allow\" while rolling out".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n\
        daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
        sync:x:4:65534:sync:/bin:/bin/sync\n\
        carol:x:1002:1002::/home/carol:/bin/bash\n\
        alice:x:1000:1000::/home/alice:/bin/bash\n\
        bob:x:1001:10::/home/bob:/bin/zsh\n\
        svc:x:999:999::/var/lib/svc:/bin/false\n";
    const GROUP: &str = "root:x:0:\nsudo:x:27:alice\nwheel:x:10:\nusers:x:100:carol\n";

    fn names(v: &[&Account]) -> Vec<String> {
        v.iter().map(|a| a.name.clone()).collect()
    }

    #[test]
    fn login_accounts_root_then_admins_then_others() {
        let a = login_accounts(PASSWD, GROUP);
        let got: Vec<(&str, Option<&str>)> = a.iter().map(|a| (a.name.as_str(), a.admin.as_deref())).collect();
        assert_eq!(
            got,
            [("root", Some("root")), ("alice", Some("sudo")), ("bob", Some("wheel")), ("carol", None)],
            "nologin, false and sync are no logins; bob is in wheel by his primary group"
        );
    }

    #[test]
    fn doctor_fails_only_when_root_or_every_admin_would_be_locked_out() {
        let a = login_accounts(PASSWD, GROUP);
        let set = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<BTreeSet<_>>();
        let all = ["sshd", "login", "sudo", "su"];
        let f = lockout_finding(&a, &set(&[]), &all, false);
        assert_eq!(f.level, Level::Fail);
        let want = "pam_sms in sshd, login, sudo, su locks out root on the console and every administrator";
        assert!(f.what.contains(want), "{}", f.what);
        let f = lockout_finding(&a, &set(&["root"]), &all, false);
        assert_eq!(f.level, Level::Fail);
        assert!(f.what.contains("every administrator (alice, bob)"), "{}", f.what);
        let f = lockout_finding(&a, &set(&["alice", "bob"]), &[], false);
        assert_eq!(f.level, Level::Warn, "not on yet: a warning about turning it on");
        assert!(f.what.ends_with("--enable smsotp) locks out root on the console: no number enrolled"), "{}", f.what);
        // Root's console is fine when only sshd asks, or a rule skips it.
        assert_eq!(lockout_finding(&a, &set(&["alice"]), &["sshd"], false).level, Level::Ok);
        assert_eq!(lockout_finding(&a, &set(&["alice"]), &all, true).level, Level::Ok);
        let f = lockout_finding(&a, &set(&["root", "bob"]), &all, false);
        assert_eq!(f.level, Level::Ok, "{}", f.what);
        assert_eq!(names(&unenrolled(&a, &set(&["root", "bob"]))), ["alice", "carol"]);
    }
}
