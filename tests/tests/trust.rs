//! "Trust this machine" and policy rules through the real pam_sms.so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use smsotp_tests::pam::{Code, typed};
use smsotp_tests::world::{USER, World};

const DAY: i64 = 86_400;
// Two different ed25519 public keys (as in authorized_keys).
const KEY_A: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHknDtnueouadjwt27gXFJy+CfKFVaAcSTN2WnWa/gVF";
const KEY_B: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";

fn trusting(extra: &str) -> World {
    World::messaging("", &format!("[policy]\nmode = \"trust\"\ntrust_days = 30\n{extra}"))
}

/// Logs in from `addr` with the code of SMS number `n`; asserts success.
fn login_with_code(w: &World, addr: &str, n: usize) {
    let run = w.pam(USER).from(addr).run(vec![w.code_of(n)]);
    assert_eq!(run.code, Code::Success, "{}", run.output);
}

#[test]
fn a_trusted_machine_skips_the_sms_until_the_trust_expires() {
    let w = trusting("");
    login_with_code(&w, "192.0.2.7", 1);
    let run = w.pam(USER).from("192.0.2.7").run(vec![]);
    assert_eq!(run.code, Code::Success, "{}", run.output);
    assert_eq!(run.prompts, 0);
    assert_eq!(run.shown(), "", "nothing shown, no SMS");
    assert_eq!(w.twilio.messages().len(), 1);
    assert!(
        w.daemon
            .log_text()
            .contains("event=trusted-machine user=root service=smsotp-test rhost=192.0.2.7 machine=addr:192.0.2.7")
    );
    // 29 days 23 hours later: still trusted. 30 days: asked again.
    w.daemon.set_time_offset(30 * DAY - 3600);
    assert_eq!(w.pam(USER).from("192.0.2.7").run(vec![]).code, Code::Success);
    w.daemon.set_time_offset(30 * DAY + 1);
    let run = w.pam(USER).from("192.0.2.7").run(vec![w.code_of(2)]);
    assert_eq!(run.code, Code::Success);
    assert_eq!(run.prompts, 1, "expired trust asks again: {}", run.output);
    w.assert_clean();
}

#[test]
fn another_user_or_a_local_login_is_asked() {
    let w = trusting("");
    w.daemon.ctl_ok(&["enroll", "daemon", "+14155550177"]);
    login_with_code(&w, "192.0.2.7", 1);
    let run = w.pam("daemon").from("192.0.2.7").run(vec![w.code_of(2)]);
    assert_eq!((run.code, run.prompts), (Code::Success, 1), "another user from the same machine: {}", run.output);
    let run = w.pam(USER).run(vec![w.code_of(3)]);
    assert_eq!((run.code, run.prompts), (Code::Success, 1), "a local login after remote trust: {}", run.output);
    let run = w.pam(USER).from("192.0.2.8").run(vec![w.code_of(4)]);
    assert_eq!(run.prompts, 1, "a neighbour address is another machine");
}

#[test]
fn trust_survives_a_restart_and_revoke_ends_it() {
    let mut w = trusting("");
    login_with_code(&w, "192.0.2.7", 1);
    login_with_code(&w, "2001:db8::7", 2);
    w.daemon.restart();
    assert_eq!(w.pam(USER).from("192.0.2.7").run(vec![]).prompts, 0, "records kept across the restart");
    let list = w.daemon.ctl_ok(&["trust", "list", USER]);
    assert!(list.contains("addr:192.0.2.7  remote smsotp-test  until"), "{list}");
    assert!(list.contains("addr:2001:db8::7"), "{list}");
    assert_eq!(
        w.daemon.ctl_ok(&["trust", "revoke", USER, "--machine", "addr:192.0.2.7"]),
        "revoked 1 trust record(s) of root\n"
    );
    assert_eq!(w.pam(USER).from("192.0.2.7").run(vec![w.code_of(3)]).prompts, 1);
    assert_eq!(w.pam(USER).from("2001:db8::7").run(vec![]).prompts, 0);
    assert_eq!(w.daemon.ctl_ok(&["trust", "revoke", USER, "--all"]), "revoked 2 trust record(s) of root\n");
    assert_eq!(w.pam(USER).from("2001:db8::7").run(vec![w.code_of(4)]).prompts, 1);
    let out = w.daemon.ctl(&["trust", "revoke", USER]);
    assert_eq!(out.status.code(), Some(2), "neither --machine nor --all");
}

#[test]
fn with_a_key_the_machine_is_the_key_on_its_network() {
    let w = World::messaging("", "[policy]\nmode = \"trust\"");
    let run = w.pam(USER).service("sshd").from("192.0.2.7").with_key(KEY_A).run(vec![w.code_of(1)]);
    assert_eq!(run.code, Code::Success, "{}", run.output);
    let list = w.daemon.ctl_ok(&["trust", "list", USER]);
    assert!(
        list.starts_with("key:SHA256:nenFoTNAbHqh+IVJ0roflndEnXerEyWss+9re6xstkk@192.0.2.0/24  remote sshd"),
        "{list}"
    );
    // Same key, another address in the same /24 (DHCP): trusted.
    assert_eq!(w.pam(USER).service("sshd").from("192.0.2.99").with_key(KEY_A).run(vec![]).prompts, 0);
    // Another key behind the same address (a colleague behind the NAT): asked.
    assert_eq!(w.pam(USER).service("sshd").from("192.0.2.7").with_key(KEY_B).run(vec![w.code_of(2)]).prompts, 1);
    // The same key from another network: asked.
    assert_eq!(w.pam(USER).service("sshd").from("198.51.100.7").with_key(KEY_A).run(vec![w.code_of(3)]).prompts, 1);
}

#[test]
fn asking_the_user() {
    let w = trusting("ask_user = true");
    let run = w.pam(USER).from("192.0.2.7").run(vec![w.code_of(1), typed("n")]);
    assert_eq!(run.code, Code::Success);
    assert_eq!(
        run.shown(),
        "A login code is on its way by SMS to ******0123.\nSMS code: Trust this machine for 30 days? [y/N] \
         SMS is the weakest way to sign in. Add an authenticator app with the command: smsotp totp\n",
        "the trust question, then (first login of the week, SMS alone) the word about SMS: {}",
        run.output
    );
    let run = w.pam(USER).from("192.0.2.7").run(vec![w.code_of(2), typed("y")]);
    assert_eq!(run.code, Code::Success);
    assert!(run.shown().ends_with("[y/N] This machine is trusted for 30 days.\n"), "{}", run.output);
    let run = w.pam(USER).from("192.0.2.7").run(vec![]);
    assert_eq!((run.code, run.prompts), (Code::Success, 0), "{}", run.output);
}

#[test]
fn rules_skip_deny_and_explain() {
    let w = World::messaging(
        "",
        "[policy]\nmode = \"always\"\n\n[[rule]]\nname = \"lab\"\nfrom = [\"198.51.100.0/24\"]\naction = \"skip\"\n\n\
         [[rule]]\nname = \"office\"\nfrom = [\"10.0.0.0/8\"]\naction = \"trust\"\ntrust_days = 7\n\n\
         [[rule]]\nname = \"no sudo\"\nservice = [\"sudo\"]\naction = \"deny\"\n",
    );
    let run = w.pam(USER).from("198.51.100.4").run(vec![]);
    assert_eq!((run.code, run.prompts), (Code::Success, 0));
    assert!(
        w.daemon
            .log_text()
            .contains("event=policy-skip user=root service=smsotp-test rhost=198.51.100.4 rule=\"rule 1 (lab)\"")
    );
    let run = w.pam(USER).service("sudo").run(vec![]);
    assert_eq!(run.code, Code::PermDenied, "{}", run.output);
    assert_eq!(run.shown(), "SMS login is not allowed for this login.\n");
    let run = w.pam(USER).from("::ffff:10.1.2.3").run(vec![w.code_of(1)]);
    assert_eq!(run.code, Code::Success);
    let explained = w.daemon.ctl_ok(&["explain", "--user", USER, "--rhost", "10.1.2.3", "--service", "smsotp-test"]);
    assert!(explained.contains("decision: trust for 7 days\nrule:     rule 2 (office)"), "{explained}");
    assert!(explained.contains("machine:  addr:10.1.2.3 (remote)"), "{explained}");
    assert!(explained.contains("outcome:  allowed without a code: trusted until"), "{explained}");
    let explained = w.daemon.ctl_ok(&["explain", "--user", USER, "--rhost", "203.0.113.1"]);
    assert!(
        explained.contains("decision: always\nrule:     default mode")
            && explained.contains("outcome:  a code is sent"),
        "{explained}"
    );
    assert_eq!(w.twilio.messages().len(), 1, "explain sends nothing");
}

#[test]
fn a_bad_rule_stops_the_daemon_with_its_name() {
    let dir = smsotp_tests::tools::private_tempdir();
    let path = dir.path().join("smsotpd.toml");
    let text = smsotp_tests::daemon::messaging_config(
        "https://api.twilio.com",
        "",
        "[[rule]]\nname = \"vpn\"\nfrom = [\"vpn.example.com\"]\naction = \"skip\"",
    )
    .replace("@STATE@", &dir.path().join("s").display().to_string());
    std::fs::write(&path, text).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = std::process::Command::new(&smsotp_tests::tools::built().smsotpd)
        .args(["--log", "stderr", "--bus", "unix:path=/nonexistent", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("[[rule]] number 1 (vpn): from: \"vpn.example.com\" is not an address or CIDR"), "{e}");
}
