//! Numbers from the directory (`phone_source = "ldap"`) against a real
//! OpenLDAP slapd the test starts (StartTLS, ldaps and ldapi, a CA made for
//! the test; anonymous, bind DN and SASL EXTERNAL binds), through the real
//! module and daemon.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use smsotp_tests::bus::{Bus, Policy};
use smsotp_tests::daemon::{Daemon, messaging_config};
use smsotp_tests::fake_twilio::FakeTwilio;
use smsotp_tests::pam::{Code, Pam};
use smsotp_tests::slapd::{Listener, Slapd};
use smsotp_tests::world::USER;

const CHANGE_NOTICE: &str =
    "The number for SMS login codes of root on web1 was changed in the directory to ******0199 at ";

fn start(slapd: &Slapd, ldap_extra: &str) -> (Bus, FakeTwilio, Daemon) {
    let bus = Bus::start(Policy::Shipped);
    let twilio = FakeTwilio::start();
    let tables = format!("[message]\nhostname = \"web1\"\n{}", slapd.config(ldap_extra));
    let daemon = Daemon::start(&bus, &messaging_config(&twilio.url(), "phone_source = \"ldap\"", &tables));
    (bus, twilio, daemon)
}

#[test]
fn the_directory_enrolls_and_a_changed_number_is_a_number_change() {
    let mut slapd = Slapd::start(&[(USER, Some("+1 415 555 0123")), ("nobody", None)]);
    let (bus, twilio, daemon) = start(&slapd, "cache_seconds = 300");
    let pam = || Pam::new(&bus.address(), USER);
    // Never enrolled here: the directory's number is used, and pinned.
    let run = pam().run(vec![Box::new(|| twilio.wait_message(1).code())]);
    assert_eq!(run.code, Code::Success, "{}\n{}", run.output, daemon.log_text());
    assert_eq!(twilio.messages()[0].to, "+14155550123", "normalised from \"+1 415 555 0123\"");
    assert!(daemon.log_text().contains("event=enrolled-from-directory user=root to=******0123"));
    assert!(daemon.ctl_ok(&["show", USER]).contains("******0123"));

    // Changed in the directory: within ldap.cache_seconds the cached number
    // is still used; after it, the change is a number change.
    slapd.set_mobile(USER, Some("+14155550199"));
    let run = pam().run(vec![Box::new(|| twilio.wait_message(2).code())]);
    assert_eq!(run.code, Code::Success, "{}", run.output);
    assert_eq!(twilio.messages()[1].to, "+14155550123", "cached for 300 s");
    daemon.set_time_offset(301);
    let run = pam().run(vec![Box::new(|| {
        // The code, and the notice to the old number (in the background):
        // in either order.
        twilio.wait_message(4);
        twilio.messages()[2..].iter().find(|m| !m.body.starts_with("The number")).unwrap().code()
    })]);
    assert_eq!(run.code, Code::Success, "{}\n{}", run.output, daemon.log_text());
    let sms = twilio.messages();
    let notice = sms.iter().find(|m| m.body.starts_with(CHANGE_NOTICE)).expect("a notice to the old number");
    assert_eq!(notice.to, "+14155550123");
    let code_sms = sms.iter().rfind(|m| !m.body.starts_with("The number")).unwrap();
    assert_eq!(code_sms.to, "+14155550199", "the code goes to the new number");
    let log = daemon.log_text();
    assert!(
        log.contains("event=directory-number-changed user=root from=******0123 to=******0199 approval=no"),
        "{log}"
    );

    // A number removed from the entry: no login (closed), nothing sent.
    slapd.set_mobile(USER, None);
    daemon.set_time_offset(602);
    let sent = twilio.messages().len();
    let run = pam().run(vec![]);
    assert_eq!(run.code, Code::AuthinfoUnavail, "{}", run.output);
    assert_eq!(run.shown(), "SMS login is unavailable for this account. Contact your administrator.\n");
    assert!(daemon.log_text().contains("event=directory-number-missing user=root"));

    // The directory down: closed, with the service's usual answer.
    slapd.stop();
    daemon.set_time_offset(903);
    let run = pam().run(vec![]);
    assert_eq!(run.code, Code::AuthinfoUnavail, "{}", run.output);
    assert_eq!(run.shown(), "The SMS login service is not available.\n");
    assert!(daemon.log_text().contains("event=directory-unavailable user=root"));
    assert_eq!(twilio.messages().len(), sent);
    assert!(!daemon.log_text().contains("4155550"), "no full number in the log");
}

#[test]
fn a_changed_number_can_wait_for_an_administrator() {
    let slapd = Slapd::start(&[(USER, Some("+14155550123"))]);
    let (bus, twilio, daemon) = start(&slapd, "cache_seconds = 0\non_change = \"approve\"");
    let pam = || Pam::new(&bus.address(), USER);
    let run = pam().run(vec![Box::new(|| twilio.wait_message(1).code())]);
    assert_eq!(run.code, Code::Success, "{}", run.output);
    slapd.set_mobile(USER, Some("+14155550199"));
    let run = pam().run(vec![]);
    assert_eq!(run.code, Code::PermDenied, "{}\n{}", run.output, daemon.log_text());
    assert!(daemon.log_text().contains("approval=required"));
    assert!(daemon.ctl_ok(&["pending"]).contains(USER));
    daemon.ctl_ok(&["approve", USER]);
    let n = twilio.messages().len();
    let run = pam().run(vec![Box::new(|| twilio.wait_message(n + 1).code())]);
    assert_eq!(run.code, Code::Success, "{}", run.output);
    assert_eq!(twilio.messages().last().unwrap().to, "+14155550199");
}

#[test]
fn the_tls_certificate_is_checked() {
    let slapd = Slapd::start(&[(USER, Some("+14155550123"))]);
    // Another CA than the one that signed slapd's certificate.
    let other = tempfile::tempdir().unwrap();
    let other_ca = other.path().join("ca.pem");
    let out = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout"])
        .arg(other.path().join("k"))
        .arg("-out")
        .arg(&other_ca)
        .args(["-days", "1", "-subj", "/CN=someone else"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let bus = Bus::start(Policy::Shipped);
    let twilio = FakeTwilio::start();
    let tables = format!("[message]\nhostname = \"web1\"\n{}", slapd.config(""))
        .replace(&slapd.ca_file().display().to_string(), &other_ca.display().to_string());
    let daemon = Daemon::start(&bus, &messaging_config(&twilio.url(), "phone_source = \"ldap\"", &tables));
    let run = Pam::new(&bus.address(), USER).run(vec![]);
    assert_eq!(run.code, Code::AuthinfoUnavail, "{}", run.output);
    let log = daemon.log_text();
    assert!(log.contains("event=directory-unavailable user=root"), "{log}");
    assert!(log.to_lowercase().contains("certificate"), "the log says why: {log}");
    assert!(twilio.messages().is_empty());
}

#[test]
fn a_bind_dn_binds_with_the_password_from_a_credential() {
    use smsotp_tests::slapd::{ADMIN, ADMIN_PASSWORD};
    // Anonymous users cannot read numbers here: only a bound smsotpd can.
    let acl = "access to attrs=mobile by users read by * none\naccess to * by * read";
    let slapd = Slapd::start_with_acl(&[(USER, Some("+14155550123"))], acl);
    let creds = smsotp_tests::tools::private_tempdir();
    std::fs::write(creds.path().join("ldap-bind-password"), format!("{ADMIN_PASSWORD}\n")).unwrap();
    let bus = Bus::start(Policy::Shipped);
    let twilio = FakeTwilio::start();
    let tables = |extra: &str| format!("[message]\nhostname = \"web1\"\n{}", slapd.config(extra));
    let config = messaging_config(&twilio.url(), "phone_source = \"ldap\"", &tables(&format!("bind_dn = \"{ADMIN}\"")));
    let daemon = Daemon::start_with_credentials(&bus, &config, creds.path());
    let run = Pam::new(&bus.address(), USER).run(vec![Box::new(|| twilio.wait_message(1).code())]);
    assert_eq!(run.code, Code::Success, "{}\n{}", run.output, daemon.log_text());
    assert!(daemon.log_text().contains("event=enrolled-from-directory user=root"));
    // Anonymous: the entry shows no number, so nobody is enrolled from it.
    let bus2 = Bus::start(Policy::Shipped);
    let anonymous = Daemon::start(&bus2, &messaging_config(&twilio.url(), "phone_source = \"ldap\"", &tables("")));
    let run = Pam::new(&bus2.address(), USER).run(vec![]);
    assert_ne!(run.code, Code::Success, "{}", run.output);
    assert!(!anonymous.log_text().contains("enrolled-from-directory"));
    // A wrong password: closed, and the log says the directory refused it.
    std::fs::write(creds.path().join("ldap-bind-password"), "not-the-password\n").unwrap();
    let bus3 = Bus::start(Policy::Shipped);
    let wrong = Daemon::start_with_credentials(&bus3, &config, creds.path());
    let run = Pam::new(&bus3.address(), USER).run(vec![]);
    assert_eq!(run.code, Code::AuthinfoUnavail, "{}", run.output);
    let log = wrong.log_text();
    assert!(log.contains("event=directory-unavailable user=root") && log.contains("invalidCredentials"), "{log}");
    assert_eq!(twilio.messages().len(), 1);
}

/// slapd.conf access lines: numbers are for the daemon's SASL EXTERNAL
/// identities only (its certificate over TLS, root's uid over ldapi).
const NUMBERS_FOR_SMSOTPD_ONLY: &str = "access to attrs=mobile\n  by dn.exact=\"cn=smsotpd-web1\" read\n  \
     by dn.exact=\"gidNumber=0+uidNumber=0,cn=peercred,cn=external,cn=auth\" read\n  by * none\n\
     access to * by * read";

fn start_on(slapd: &Slapd, listener: Listener, ldap_extra: &str) -> (Bus, FakeTwilio, Daemon) {
    let bus = Bus::start(Policy::Shipped);
    let twilio = FakeTwilio::start();
    let tables = format!("[message]\nhostname = \"web1\"\n{}", slapd.config_on(listener, ldap_extra));
    let daemon = Daemon::start(&bus, &messaging_config(&twilio.url(), "phone_source = \"ldap\"", &tables));
    (bus, twilio, daemon)
}

/// `[ldap]` lines for SASL EXTERNAL as the certificate in `cert`, `key`.
fn as_certificate((cert, key): (std::path::PathBuf, std::path::PathBuf)) -> String {
    format!("sasl_external = true\nclient_cert = \"{}\"\nclient_key = \"{}\"", cert.display(), key.display())
}

/// Through `listener`, a daemon binding as `[ldap]` lines `external` say
/// enrolls root from the directory and logs in; an anonymous one sees no
/// number, sends nothing, and enrolls nobody.
fn only_the_external_bind_reads_numbers(slapd: &Slapd, listener: Listener, external: &str) {
    let (bus, twilio, daemon) = start_on(slapd, listener, external);
    let run = Pam::new(&bus.address(), USER).run(vec![Box::new(|| twilio.wait_message(1).code())]);
    assert_eq!(run.code, Code::Success, "{listener:?}: {}\n{}", run.output, daemon.log_text());
    assert!(daemon.log_text().contains("event=enrolled-from-directory user=root to=******0123"));
    let (bus, twilio, anonymous) = start_on(slapd, listener, "");
    let run = Pam::new(&bus.address(), USER).run(vec![]);
    assert_ne!(run.code, Code::Success, "{listener:?}: {}", run.output);
    assert!(!anonymous.log_text().contains("enrolled-from-directory"), "{}", anonymous.log_text());
    assert!(twilio.messages().is_empty());
}

#[test]
fn over_ldaps_sasl_external_binds_as_the_client_certificate() {
    let slapd = Slapd::start_with_acl(&[(USER, Some("+14155550123"))], NUMBERS_FOR_SMSOTPD_ONLY);
    only_the_external_bind_reads_numbers(
        &slapd,
        Listener::Ldaps,
        &as_certificate(slapd.client_certificate("smsotpd-web1")),
    );
    // A certificate from another CA: slapd ends the handshake; closed.
    let other = smsotp_tests::tools::private_tempdir();
    smsotp_tests::tools::make_certificates(other.path());
    let forged = as_certificate(smsotp_tests::tools::make_client_certificate(other.path(), "smsotpd-web1"));
    let (bus, twilio, refused) = start_on(&slapd, Listener::Ldaps, &forged);
    let run = Pam::new(&bus.address(), USER).run(vec![]);
    assert_eq!(run.code, Code::AuthinfoUnavail, "{}\n{}", run.output, refused.log_text());
    assert!(refused.log_text().contains("event=directory-unavailable user=root"), "{}", refused.log_text());
    assert!(twilio.messages().is_empty());
}

#[test]
fn over_ldapi_sasl_external_binds_as_the_daemons_uid() {
    let slapd = Slapd::start_with_acl(&[(USER, Some("+14155550123"))], NUMBERS_FOR_SMSOTPD_ONLY);
    only_the_external_bind_reads_numbers(&slapd, Listener::Ldapi, "sasl_external = true");
}
