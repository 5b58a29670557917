//! `smsotpctl doctor`: the mistakes administrators make, each with its fix.
//!
//! The checks of sshd's settings and of PAM stacks are pure functions over
//! text (tested with the shapes that go wrong); `run` gathers the text.

use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub level: Level,
    pub what: String,
    pub fix: String,
}

fn ok(what: impl Into<String>) -> Finding {
    Finding { level: Level::Ok, what: what.into(), fix: String::new() }
}
fn warn(what: impl Into<String>, fix: impl Into<String>) -> Finding {
    Finding { level: Level::Warn, what: what.into(), fix: fix.into() }
}
fn fail(what: impl Into<String>, fix: impl Into<String>) -> Finding {
    Finding { level: Level::Fail, what: what.into(), fix: fix.into() }
}

/// Checks `sshd -T` output (lower-case keys, one setting per line).
pub fn check_sshd(effective: &str, trust_mode: bool) -> Vec<Finding> {
    let get = |key: &str| {
        effective.lines().find_map(|l| l.split_once(' ').filter(|(k, _)| *k == key).map(|(_, v)| v.trim().to_owned()))
    };
    let mut out = Vec::new();
    let reload = "in /etc/ssh/sshd_config, then: systemctl reload ssh";
    match get("usepam").as_deref() {
        Some("yes") => out.push(ok("sshd: UsePAM yes")),
        other => out.push(fail(
            format!("sshd: UsePAM is {}: sshd never runs pam_sms", other.unwrap_or("unset")),
            format!("set \"UsePAM yes\" {reload}"),
        )),
    }
    let kbd = get("kbdinteractiveauthentication").or_else(|| get("challengeresponseauthentication"));
    match kbd.as_deref() {
        Some("yes") => out.push(ok("sshd: KbdInteractiveAuthentication yes")),
        other => out.push(fail(
            format!(
                "sshd: KbdInteractiveAuthentication is {}: nobody can be asked for a code",
                other.unwrap_or("unset")
            ),
            format!("set \"KbdInteractiveAuthentication yes\" {reload}"),
        )),
    }
    let methods = get("authenticationmethods").unwrap_or_else(|| "any".into());
    let lists: Vec<&str> = methods.split_whitespace().collect();
    if methods == "any" {
        out.push(fail(
            "sshd: AuthenticationMethods any: a public key (or a password) alone logs in, without a code".to_string(),
            format!("set \"AuthenticationMethods publickey,keyboard-interactive\" {reload}"),
        ));
    } else if let Some(bad) = lists.iter().find(|l| !l.split(',').any(|m| m.starts_with("keyboard-interactive"))) {
        out.push(fail(
            format!("sshd: AuthenticationMethods allows \"{bad}\", which never reaches keyboard-interactive"),
            format!("make every list end in keyboard-interactive, e.g. \"AuthenticationMethods publickey,keyboard-interactive\" {reload}"),
        ));
    } else {
        out.push(ok(format!("sshd: AuthenticationMethods {methods}")));
    }
    if trust_mode && get("exposeauthinfo").as_deref() != Some("yes") {
        out.push(warn(
            "sshd: ExposeAuthInfo is off: trusted machines are identified by address only (everyone behind the same NAT shares it)",
            format!("set \"ExposeAuthInfo yes\" {reload} to bind trust to the SSH key"),
        ));
    }
    out
}

/// One `auth` line of a PAM stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthLine {
    pub control: String,
    pub module: String,
    pub args: Vec<String>,
    pub origin: String,
    /// 0 for the service's own stack; each `substack` gets its own number.
    /// A `sufficient` success or a jump inside a substack ends or moves
    /// within that substack only, never past the lines after it.
    pub scope: usize,
}

/// The `auth` lines of a service, with `@include` and `auth include/substack`
/// expanded through `read(name)` (a file under /etc/pam.d). An included
/// file's lines join the stack as if written there; a substack stays one
/// line of its parent (jumps count it once) and its lines get a scope.
pub fn auth_stack(service: &str, read: &dyn Fn(&str) -> Option<String>) -> Result<Vec<AuthLine>, String> {
    fn walk(
        name: &str,
        read: &dyn Fn(&str) -> Option<String>,
        depth: usize,
        scope: usize,
        out: &mut Vec<AuthLine>,
    ) -> Result<(), String> {
        if depth > 8 {
            return Err(format!("includes nest too deep at {name}"));
        }
        let text = read(name).ok_or_else(|| format!("/etc/pam.d/{name} cannot be read"))?;
        let mut joined = String::new();
        for raw in text.lines() {
            let line = raw.split('#').next().unwrap_or("").trim_end();
            if let Some(cont) = line.strip_suffix('\\') {
                joined.push_str(cont);
                joined.push(' ');
                continue;
            }
            joined.push_str(line);
            let line = std::mem::take(&mut joined);
            let mut words = tokenize(&line).into_iter();
            let Some(first) = words.next() else { continue };
            if first == "@include" {
                if let Some(inc) = words.next() {
                    walk(&inc, read, depth + 1, scope, out)?;
                }
                continue;
            }
            let ty = first.trim_start_matches('-');
            if ty != "auth" {
                continue;
            }
            let Some(control) = words.next() else { continue };
            let Some(module) = words.next() else { continue };
            if control == "include" {
                walk(&module, read, depth + 1, scope, out)?;
                continue;
            }
            if control == "substack" {
                out.push(AuthLine {
                    control: control.clone(),
                    module: module.clone(),
                    args: Vec::new(),
                    origin: name.to_owned(),
                    scope,
                });
                let inner = 1 + out.iter().map(|l| l.scope).max().unwrap_or(0);
                walk(&module, read, depth + 1, inner, out)?;
                continue;
            }
            out.push(AuthLine { control, module, args: words.collect(), origin: name.to_owned(), scope });
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(service, read, 0, 0, &mut out)?;
    Ok(out)
}

/// Splits a PAM line, keeping `[...]` control blocks together.
fn tokenize(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut depth = 0;
    for c in line.chars() {
        match c {
            '[' => {
                depth += 1;
                cur.push(c);
            }
            ']' => {
                depth -= 1;
                cur.push(c);
            }
            c if c.is_whitespace() && depth == 0 => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn is_pam_sms(module: &str) -> bool {
    Path::new(module).file_name().is_some_and(|f| f == "pam_sms.so")
}

/// Where a success of line `i` may continue: None = the stack ends there.
fn success_jump(control: &str) -> Option<Option<usize>> {
    match control {
        "sufficient" => Some(None),
        c if c.starts_with('[') => {
            let inner = c.trim_start_matches('[').trim_end_matches(']');
            for kv in inner.split_whitespace() {
                if let Some(("success", action)) = kv.split_once('=') {
                    return match action {
                        "done" => Some(None),
                        n => n.parse::<usize>().ok().map(Some),
                    };
                }
            }
            None
        }
        _ => None,
    }
}

/// Modules that check a password. A wrong password must stop the stack
/// before pam_sms: otherwise anyone who knows a user name can text that
/// user and push them towards a lockout.
const PASSWORD_MODULES: &[&str] =
    &["pam_unix.so", "pam_sss.so", "pam_ldap.so", "pam_krb5.so", "pam_winbind.so", "pam_systemd_home.so"];

fn module_name(module: &str) -> String {
    Path::new(module).file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default()
}

fn is_password_module(module: &str) -> bool {
    PASSWORD_MODULES.contains(&module_name(module).as_str())
}

/// Runs the lines before pam_sms (in its scope) with every password module
/// failing, pam_deny failing and everything else succeeding, and says
/// whether the stack still gets to pam_sms. A substack holding a password
/// module fails as a whole and, like `required`, does not stop the stack.
fn wrong_password_reaches_pam_sms(lines: &[AuthLine], at: usize) -> bool {
    let scope = lines[at].scope;
    let own: Vec<usize> = (0..at).filter(|&i| lines[i].scope == scope).collect();
    let mut k = 0;
    while k < own.len() {
        let i = own[k];
        let l = &lines[i];
        let fails = if l.control == "substack" {
            lines[i + 1..at].iter().take_while(|m| m.scope > scope).any(|m| is_password_module(&m.module))
        } else {
            is_password_module(&l.module) || module_name(&l.module) == "pam_deny.so"
        };
        let action = match l.control.as_str() {
            "required" | "substack" | "optional" => "ignore".to_owned(),
            "requisite" => if fails { "die" } else { "ok" }.to_owned(),
            "sufficient" => if fails { "ignore" } else { "done" }.to_owned(),
            c if c.starts_with('[') => {
                let inner = c.trim_start_matches('[').trim_end_matches(']');
                let pairs: Vec<(&str, &str)> = inner.split_whitespace().filter_map(|kv| kv.split_once('=')).collect();
                let find = |key: &str| pairs.iter().find(|(k, _)| *k == key).map(|(_, v)| (*v).to_owned());
                let own_key = if fails { find("auth_err").or_else(|| find("default")) } else { find("success") };
                own_key.unwrap_or_else(|| "ignore".to_owned())
            }
            _ => "ignore".to_owned(),
        };
        match action.as_str() {
            "die" | "done" => return false,
            n => k += 1 + n.parse::<usize>().unwrap_or(0),
        }
    }
    true
}

/// Services run by a user to become another (su, sudo): the PAM caller is
/// that user, so pam_rootok's "the caller is root" means a root shell.
const ROOT_CALLER_SERVICES: &[&str] = &["su", "su-l", "sudo", "sudo-i", "runuser", "runuser-l"];

/// Checks one service's auth stack for pam_sms and for ways around it.
pub fn check_stack(service: &str, lines: &[AuthLine]) -> Vec<Finding> {
    let Some(at) = lines.iter().position(|l| is_pam_sms(&l.module)) else {
        return vec![fail(
            format!("pam: /etc/pam.d/{service} has no pam_sms.so in its auth stack"),
            format!(
                "add \"auth required pam_sms.so\" to /etc/pam.d/{service} (after @include common-auth), or run pam-auth-update and enable smsotp"
            ),
        )];
    };
    let mut out = Vec::new();
    let sms = &lines[at];
    let strict_brackets = sms.control.starts_with('[')
        && (sms.control.contains("default=die") || sms.control.contains("default=bad"))
        && !sms.control.contains("=done");
    match sms.control.as_str() {
        "required" | "requisite" => out.push(ok(format!("pam: {service}: pam_sms.so is {}", sms.control))),
        c if strict_brackets => out.push(ok(format!("pam: {service}: pam_sms.so is {c}"))),
        other => out.push(fail(
            format!("pam: {service}: pam_sms.so is \"{other}\": a wrong code does not stop the login"),
            format!("use \"auth required pam_sms.so\" in /etc/pam.d/{}", sms.origin),
        )),
    }
    if let Some(after) = lines[at + 1..].iter().find(|l| is_password_module(&l.module)) {
        out.push(fail(
            format!(
                "pam: {service}: pam_sms.so runs before the password check ({}, in {}): a wrong password still sends an SMS and counts toward the user's lockout",
                module_name(&after.module),
                after.origin
            ),
            format!("put pam_sms.so after the password check in /etc/pam.d/{} (after @include common-auth on Debian)", sms.origin),
        ));
    } else if lines[..at].iter().any(|l| is_password_module(&l.module)) && wrong_password_reaches_pam_sms(lines, at) {
        out.push(fail(
            format!("pam: {service}: a wrong password does not stop the stack before pam_sms.so: it still sends an SMS and counts toward the user's lockout"),
            "make the password check stop the stack on failure: Debian's common-auth does (pam_deny.so requisite); on Fedora/RHEL replace \"auth substack password-auth\" with \"auth requisite pam_unix.so nullok\" before pam_sms.so (see the README, PAM and sshd)".to_owned(),
        ));
    }
    for (i, l) in lines[..at].iter().enumerate() {
        let name = module_name(&l.module);
        if l.scope != sms.scope {
            // Inside a substack: its success or jumps end only the substack.
            continue;
        }
        match success_jump(&l.control) {
            // pam_rootok succeeds when the *calling process* is root. In su
            // and sudo that is a root shell, which can become anyone anyway
            // (Debian's /etc/pam.d/su starts with it). sshd and login call
            // PAM as root for everybody: there it lets everyone in.
            Some(_) if name == "pam_rootok.so" && ROOT_CALLER_SERVICES.contains(&service) => out.push(ok(format!(
                "pam: {service}: {name} ({}) lets root skip the code; root needs no code to become anyone",
                l.control
            ))),
            Some(_) if name == "pam_rootok.so" => out.push(fail(
                format!(
                    "pam: {service}: {name} ({}, in {}) comes before pam_sms.so: {service} calls PAM as root, so it lets everyone in without password or code",
                    l.control, l.origin
                ),
                format!("remove pam_rootok.so from /etc/pam.d/{} (it belongs in su and sudo only)", l.origin),
            )),
            Some(None) => out.push(fail(
                format!("pam: {service}: {name} ({}, in {}) comes before pam_sms.so and ends the stack on success: it skips the code", l.control, l.origin),
                format!("move pam_sms.so before {name}, or make {name} \"required\""),
            )),
            Some(Some(n)) if i + 1 + n > at - lines[i + 1..at].iter().filter(|m| m.scope != sms.scope).count() => out.push(fail(
                format!("pam: {service}: {name} ({}, in {}) jumps over pam_sms.so on success", l.control, l.origin),
                format!("put pam_sms.so before {name} or shorten the jump"),
            )),
            _ => {}
        }
        if name == "pam_env.so" && l.args.iter().any(|a| a == "user_readenv=1") {
            out.push(warn(
                format!("pam: {service}: pam_env.so reads users' own environment before pam_sms.so"),
                "drop user_readenv=1 from the auth phase: users could set SSH_AUTH_INFO_0 and pose as a trusted key"
                    .to_string(),
            ));
        }
    }
    out
}

/// Prints findings; returns whether any is a failure.
pub fn print(findings: &[Finding], out: &mut dyn std::io::Write) -> std::io::Result<bool> {
    for f in findings {
        let tag = match f.level {
            Level::Ok => "ok  ",
            Level::Warn => "WARN",
            Level::Fail => "FAIL",
        };
        writeln!(out, "{tag}  {}", f.what)?;
        if !f.fix.is_empty() {
            writeln!(out, "      fix: {}", f.fix)?;
        }
    }
    Ok(findings.iter().any(|f| f.level == Level::Fail))
}

/// The sshd and PAM checks on this machine.
pub fn check_system(pam_dir: &Path, trust_mode: bool) -> Vec<Finding> {
    let mut out = Vec::new();
    let sshd = ["/usr/sbin/sshd", "/usr/bin/sshd"].into_iter().find(|p| Path::new(p).exists());
    match sshd {
        None => out.push(warn("sshd: not installed here; SSH checks skipped", "")),
        Some(path) => match std::process::Command::new(path).arg("-T").output() {
            Ok(o) if o.status.success() => out.extend(check_sshd(&String::from_utf8_lossy(&o.stdout), trust_mode)),
            Ok(o) => out.push(fail(
                format!("sshd -T failed: {}", String::from_utf8_lossy(&o.stderr).trim()),
                "fix /etc/ssh/sshd_config until `sshd -T` succeeds",
            )),
            Err(e) => out.push(fail(format!("cannot run {path} -T: {e}"), "run smsotpctl doctor as root")),
        },
    }
    let read = pam_file_reader(pam_dir);
    for service in ["sshd", "login", "sudo", "su"] {
        if !pam_dir.join(service).exists() {
            continue;
        }
        match auth_stack(service, &read) {
            Ok(lines) if service != "sshd" && !lines.iter().any(|l| is_pam_sms(&l.module)) => {
                out.push(ok(format!("pam: {service} does not use pam_sms (no code asked there)")));
            }
            Ok(lines) => out.extend(check_stack(service, &lines)),
            Err(e) => out.push(fail(format!("pam: {service}: {e}"), "fix the PAM service file")),
        }
    }
    out
}

/// Reads a service file of `pam_dir` by name (never a path).
fn pam_file_reader(pam_dir: &Path) -> impl Fn(&str) -> Option<String> + '_ {
    move |name: &str| {
        if name.contains('/') {
            return None;
        }
        std::fs::read_to_string(pam_dir.join(name)).ok()
    }
}

/// Which of sshd, login, sudo and su ask pam_sms (includes followed).
pub fn services_asking_pam_sms(pam_dir: &Path) -> Vec<&'static str> {
    let read = pam_file_reader(pam_dir);
    ["sshd", "login", "sudo", "su"]
        .into_iter()
        .filter(|s| auth_stack(s, &read).is_ok_and(|lines| lines.iter().any(|l| is_pam_sms(&l.module))))
        .collect()
}

#[cfg(test)]
#[path = "doctor_tests.rs"]
mod tests;
