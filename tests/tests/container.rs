//! Real OpenSSH logins into a Debian 12 container with our .deb installed
//! (see tests/src/container.rs): the host's ssh client against the
//! container's sshd, pam_sms.so from the package, smsotpd started with the
//! unit's command line, a fake Twilio on the container's loopback.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use smsotp_tests::container::{Answer, Container, Login, NUMBER, SshSetup, USER, packages};
use std::process::Command;

const FAKE_TWILIO: &str = env!("CARGO_BIN_EXE_fake-twilio");
const SENT: &str = "A login code is on its way by SMS to ******0100.";

fn start(setup: SshSetup, tables: &str) -> Container {
    Container::start(FAKE_TWILIO, setup, "", tables)
}

fn assert_in(login: &Login, ct: &Container) {
    assert!(
        login.succeeded(),
        "login failed ({:?}): {}\nprompts: {:?}\n{}",
        login.status,
        login.stderr,
        login.prompts,
        ct.diagnostics()
    );
    assert_eq!(login.stdout, format!("{USER}\n"));
}

fn assert_out(login: &Login, ct: &Container) {
    assert_eq!(login.status, Some(255), "ssh should have been refused: {login:?}\n{}", ct.diagnostics());
    assert!(login.stderr.contains("Permission denied"), "{}", login.stderr);
    assert_eq!(login.stdout, "");
}

/// The weekly word to users with SMS alone, after their first successful
/// login of the week: inside a last prompt over ssh (OpenSSH drops a PAM
/// message after the last prompt), a message on the console.
const REMIND: &str = "SMS is the weakest way to sign in. Add an authenticator app with the command: smsotp totp";

fn remind_prompt() -> String {
    format!("{REMIND} (press Enter) ")
}

/// The prompts without ssh's "(alice@10.213.x.2) " prefix.
fn shown(login: &Login) -> Vec<String> {
    login.prompts.iter().map(|p| p.split_once(") ").map_or(p.as_str(), |(_, rest)| rest).to_owned()).collect()
}

#[test]
fn password_and_sms_over_ssh() {
    let ct = start(SshSetup::PasswordAndSms, "");
    let login = ct.ssh("id -un", Answer::Right);
    assert_in(&login, &ct);
    assert_eq!(shown(&login), ["Password: ", SENT, "SMS code: ", &remind_prompt()]);
    let sms = ct.sms();
    assert_eq!(sms.len(), 1, "{sms:?}");
    assert!(sms[0].starts_with(&format!("{NUMBER}\t")), "{sms:?}");

    // A wrong code: refused, and only the one new SMS was sent. The ssh
    // user sees why: OpenSSH drops a PAM message after the last prompt, so
    // pam_sms puts it in one last prompt.
    let login = ct.ssh("id -un", Answer::Wrong);
    assert_out(&login, &ct);
    assert!(shown(&login).iter().any(|p| p == "SMS code: "), "{login:?}");
    assert_eq!(shown(&login).last().map(String::as_str), Some("Too many wrong codes. (press Enter) "), "{login:?}");
    assert_eq!(ct.sms().len(), 2);

    // The daemon stopped: refused without a code prompt, and the module
    // says why in syslog.
    ct.stop_daemon();
    let login = ct.ssh("id -un", Answer::Right);
    assert_out(&login, &ct);
    assert!(!shown(&login).iter().any(|p| p == "SMS code: "), "{login:?}");
    assert_eq!(ct.sms().len(), 2);
    let syslog = ct.syslog.text();
    assert!(syslog.contains("smsotpd is unreachable"), "{syslog}");
    assert_clean(&ct);
}

#[test]
fn publickey_and_sms_over_ssh() {
    let ct = start(SshSetup::KeyAndSms, "");
    let login = ct.ssh("id -un", Answer::Right);
    assert_in(&login, &ct);
    // The key replaced the password: the code is the only question (and,
    // the first time this week, the word about SMS).
    assert_eq!(shown(&login), [SENT, "SMS code: ", &remind_prompt()]);
    assert_eq!(ct.sms().len(), 1);
    let login = ct.ssh("id -un", Answer::Right);
    assert_in(&login, &ct);
    assert_eq!(shown(&login), [SENT, "SMS code: "], "once a week");

    let login = ct.ssh("id -un", Answer::Wrong);
    assert_out(&login, &ct);
    assert_clean(&ct);
}

#[test]
fn trust_this_machine_then_again_after_31_days() {
    let ct = start(SshSetup::KeyAndSms, "[policy]\nmode = \"trust\"\ntrust_days = 30\n");
    assert_in(&ct.ssh("id -un", Answer::Right), &ct);
    assert_eq!(ct.sms().len(), 1);

    // Same key, same network: no SMS and no question.
    let login = ct.ssh("id -un", Answer::None);
    assert_in(&login, &ct);
    assert_eq!(login.prompts, Vec::<String>::new());
    assert_eq!(ct.sms().len(), 1);

    // 31 days later (the daemon's clock moved by libfaketime): a code again.
    ct.stop_daemon();
    ct.start_daemon(Some("+31d"));
    let login = ct.ssh("id -un", Answer::Right);
    assert_in(&login, &ct);
    assert_eq!(shown(&login), [SENT, "SMS code: ", &remind_prompt()], "a month later: a week since the word");
    assert_eq!(ct.sms().len(), 2);
    // The audit line names the whole machine: key fingerprint and network.
    let network = format!("@{}.0/24", ct.address.rsplit_once('.').unwrap().0);
    assert!(
        ct.syslog
            .text()
            .lines()
            .any(|l| l.contains("event=trust-recorded") && l.contains(&format!("{network} days=30"))),
        "{}",
        ct.syslog.text()
    );
    assert_clean(&ct);
}

#[test]
fn console_login_with_su_on_a_pty() {
    let ct = start(SshSetup::PasswordAndSms, "");
    let login = ct.su_on_pty("id -un", Answer::Right);
    assert_eq!(login.status, Some(0), "{login:?}\n{}", ct.diagnostics());
    let screen = login.stdout.replace('\r', "");
    assert!(screen.contains("Password: \n"), "{screen}");
    assert!(screen.contains(&format!("{SENT}\nSMS code: \n{REMIND}\n{USER}\n")), "{screen}");
    assert_eq!(ct.sms().len(), 1);
    assert_clean(&ct);
}

#[test]
fn upgrade_keeps_enrollments_and_trust_remove_keeps_purge_deletes() {
    let ct = start(SshSetup::KeyAndSms, "[policy]\nmode = \"trust\"\n");
    assert_in(&ct.ssh("id -un", Answer::Right), &ct);
    let config = std::fs::read_to_string(ct.path("/etc/smsotpd/smsotpd.toml")).unwrap();

    // The next version of the package: same files, version 0.1.0-2.
    let dir = tempfile::tempdir().unwrap();
    let (deb, _) = packages();
    let tree = dir.path().join("tree");
    run(Command::new("dpkg-deb").arg("-R").arg(deb).arg(&tree));
    let control = tree.join("DEBIAN/control");
    let text = std::fs::read_to_string(&control).unwrap();
    std::fs::write(&control, text.replace("Version: 0.1.0-1", "Version: 0.1.0-2")).unwrap();
    run(Command::new("dpkg-deb").args(["--root-owner-group", "-b"]).arg(&tree).arg(ct.path("/tmp/smsotp-2.deb")));

    ct.stop_daemon();
    let out = ct.install("/tmp/smsotp-2.deb");
    assert!(out.contains("Unpacking smsotp (0.1.0-2) over (0.1.0-1)"), "{out}");
    assert_eq!(ct.sh_ok("dpkg-query -W -f='${Version}' smsotp"), "0.1.0-2");
    assert_eq!(std::fs::read_to_string(ct.path("/etc/smsotpd/smsotpd.toml")).unwrap(), config, "the conffile changed");
    assert_eq!(ct.sh_ok("stat -c %a /var/lib/smsotpd /etc/smsotpd/smsotpd.toml"), "700\n600\n");
    ct.start_daemon(None);
    assert!(ct.sh_ok("smsotpctl list").contains(USER));
    assert!(ct.sh_ok(&format!("smsotpctl trust list {USER}")).contains("sshd"));
    // Still trusted: no SMS.
    let login = ct.ssh("id -un", Answer::None);
    assert_in(&login, &ct);
    assert_eq!(ct.sms().len(), 1);

    ct.stop_daemon();
    ct.sh_ok("dpkg -r smsotp");
    assert!(!ct.path("/usr/sbin/smsotpd").exists());
    assert!(
        ct.sh("ls /var/lib/smsotpd").status.success() && !ct.sh_ok("ls /var/lib/smsotpd").is_empty(),
        "remove deleted the state"
    );
    ct.sh_ok("dpkg -P smsotp");
    assert!(!ct.path("/var/lib/smsotpd").exists(), "purge kept the state");
}

#[test]
fn doctor_in_the_container() {
    let ct = start(SshSetup::KeyAndSms, "");
    let doctor = || {
        let out = ct.sh("smsotpctl doctor");
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
    };
    // The README's set-up passes, including the credentials, without an SMS.
    let (code, text) = doctor();
    assert_eq!(code, Some(0), "doctor found problems in the README's set-up:\n{text}");
    for line in [
        "ok    sshd: AuthenticationMethods publickey,keyboard-interactive",
        "ok    pam: sshd: pam_sms.so is required",
        "ok    provider: Twilio account AC0123456789abcdef0123456789abcdef accepts our credentials",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    assert_eq!(ct.sms().len(), 0, "doctor sent an SMS");

    // What admins get wrong, one at a time.
    let conf = "/etc/ssh/sshd_config.d/smsotp.conf";
    ct.sh_ok(&format!("sed -i 's/^KbdInteractiveAuthentication yes/KbdInteractiveAuthentication no/' {conf}"));
    let (code, text) = doctor();
    assert_ne!(code, Some(0));
    assert!(text.contains("FAIL  sshd -T failed: Disabled method \"keyboard-interactive\""), "{text}");
    ct.sh_ok(&format!("sed -i 's/^KbdInteractiveAuthentication no/KbdInteractiveAuthentication yes/' {conf}"));

    ct.sh_ok("sed -i '/^auth required pam_sms.so/i auth sufficient pam_permit.so' /etc/pam.d/sshd");
    let (code, text) = doctor();
    assert_ne!(code, Some(0));
    assert!(
        text.contains(
            "FAIL  pam: sshd: pam_permit.so (sufficient, in sshd) comes before pam_sms.so and ends the stack on success"
        ),
        "{text}"
    );
    ct.sh_ok("sed -i '/^auth sufficient pam_permit.so/d' /etc/pam.d/sshd");

    // The packaged pam-auth-update profile is off until enabled, then adds
    // the line to common-auth.
    assert!(!ct.sh_ok("cat /etc/pam.d/common-auth").contains("pam_sms.so"));
    ct.sh_ok("pam-auth-update --enable smsotp");
    assert!(ct.sh_ok("grep -E '^auth\\s+required\\s+pam_sms.so' /etc/pam.d/common-auth").contains("pam_sms.so"));
    // Now the console asks root for a code it cannot get (root has no
    // number; unenrolled = "deny"): doctor says so, and enrolling root ends it.
    let (code, text) = doctor();
    assert_ne!(code, Some(0));
    assert!(text.contains("FAIL  rollout: with unenrolled = \"deny\", pam_sms in "), "{text}");
    assert!(text.contains("locks out root on the console: no number enrolled"), "{text}");
    ct.sh_ok("smsotpctl enroll root +14155550100");
    let (_, text) = doctor();
    assert!(
        text.contains("ok    rollout: neither root on the console nor every administrator is locked out"),
        "{text}"
    );

    ct.stop_daemon();
    let (code, text) = doctor();
    assert_ne!(code, Some(0));
    assert!(text.contains("FAIL  daemon:"), "{text}");
}

/// Every request the fake Twilio got was well-formed, and neither the
/// daemon's log nor syslog holds a code or the full number.
fn assert_clean(ct: &Container) {
    assert!(!ct.log("fake-twilio").contains("violation"), "{}", ct.log("fake-twilio"));
    let logs = format!("{}\n{}", ct.log("smsotpd"), ct.syslog.text());
    for line in ct.sms() {
        let code: String = line.split('\t').nth(1).unwrap().chars().filter(char::is_ascii_digit).take(6).collect();
        assert!(!logs.contains(&code), "a code reached a log:\n{logs}");
    }
    assert!(!logs.contains(&NUMBER[1..]), "the full number reached a log:\n{logs}");
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_user_runs_smsotp_on_the_installed_system_bus() {
    let ct = start(SshSetup::KeyAndSms, "");
    // The package's binary, bus policy and daemon, as alice herself.
    let status = ct.sh_ok(&format!("su {USER} -c 'smsotp status'"));
    assert!(status.contains(&format!("user:        {USER}")) && status.contains("number:      ******0100"), "{status}");
    assert!(status.contains("advice:      SMS is the weakest factor"), "{status}");
    let trust = ct.sh_ok(&format!("su {USER} -c 'smsotp trust list'"));
    assert_eq!(trust, "you are not trusted on any machine\n");
    // The administrator's interface stays root's: the bus refuses alice.
    let out = ct.sh(&format!("su {USER} -c 'smsotpctl list'"));
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("AccessDenied") || text.contains("run smsotpctl as root"), "{text}");
    assert_eq!(ct.sms().len(), 0);
}
