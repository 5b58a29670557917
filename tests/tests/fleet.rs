//! A fleet: two smsotpd daemons ("web1" and "web2", each on its own private
//! bus) sharing one real PostgreSQL cluster that the test creates with
//! initdb; logins go through the real pam_sms.so on each host.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::os::unix::fs::PermissionsExt;

use smsotp_tests::bus::{Bus, Policy};
use smsotp_tests::daemon::{Daemon, messaging_config};
use smsotp_tests::fake_twilio::FakeTwilio;
use smsotp_tests::pam::{Code, Pam, typed};
use smsotp_tests::postgres::Postgres;
use smsotp_tests::tools::built;
use smsotp_tests::world::{NUMBER, USER};

struct Host {
    bus: Bus,
    daemon: Daemon,
}

impl Host {
    fn pam(&self) -> Pam {
        Pam::new(&self.bus.address(), USER)
    }
}

struct Fleet {
    pg: Postgres,
    twilio: FakeTwilio,
    web1: Host,
    web2: Host,
}

fn config(twilio: &FakeTwilio, pg: &Postgres, host: &str, tables: &str, store_extra: &str) -> String {
    messaging_config(
        &twilio.url(),
        "",
        &format!("[message]\nhostname = \"{host}\"\n{tables}\n{}", pg.store_table(store_extra)),
    )
}

/// Runs `smsotpctl ARGS --config CONFIG` (daemon-free commands).
fn ctl_with_config(config: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(&built().smsotpctl).args(args).arg("--config").arg(config).output().unwrap()
}

/// smsotpd with `config` on `bus`, to its end (one that refuses to start).
fn run_smsotpd(config: &std::path::Path, bus: &Bus) -> std::process::Output {
    std::process::Command::new(&built().smsotpd)
        .arg("--config")
        .arg(config)
        .arg("--bus")
        .arg(bus.address())
        .args(["--log", "stderr"])
        .output()
        .unwrap()
}

fn migrate(config: &std::path::Path) -> String {
    let out = ctl_with_config(config, &["db", "migrate"]);
    assert!(out.status.success(), "db migrate: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

impl Fleet {
    fn start(tables: &str, store_extra: &str) -> Fleet {
        let pg = Postgres::start();
        let twilio = FakeTwilio::start();
        // The first daemon starts on an empty database only after the schema
        // is there: migrate with web1's config file first.
        let dir = smsotp_tests::tools::private_tempdir();
        let cfg = dir.path().join("smsotpd.toml");
        std::fs::write(&cfg, config(&twilio, &pg, "web1", tables, store_extra).replace("@STATE@", "/nonexistent"))
            .unwrap();
        std::fs::set_permissions(&cfg, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        assert_eq!(migrate(&cfg), "the schema went from version 0 to 2\n");
        assert_eq!(migrate(&cfg), "the schema is at version 2; nothing to do\n", "migrate is idempotent");
        let host = |name: &str| {
            let bus = Bus::start(Policy::Shipped);
            let daemon = Daemon::start(&bus, &config(&twilio, &pg, name, tables, store_extra));
            Host { bus, daemon }
        };
        let (web1, web2) = (host("web1"), host("web2"));
        Fleet { pg, twilio, web1, web2 }
    }
}

#[test]
fn enrolled_once_logs_in_on_both_hosts() {
    let f = Fleet::start("", "");
    f.web1.daemon.ctl_ok(&["enroll", USER, NUMBER]);
    assert!(f.web2.daemon.ctl_ok(&["list"]).contains("root"), "web2 sees web1's enrollment");
    let run = f.web2.pam().run(vec![Box::new(|| f.twilio.wait_message(1).code())]);
    assert_eq!(run.code, Code::Success, "{}\n{}", run.output, f.web2.daemon.log_text());
    let run = f.web1.pam().run(vec![Box::new(|| f.twilio.wait_message(2).code())]);
    assert_eq!(run.code, Code::Success, "{}", run.output);
    assert_eq!(f.twilio.messages().len(), 2);
    // The record is in the database, not in either host's files.
    assert_eq!(f.pg.psql("SELECT name, updated_by FROM smsotp_users"), "root|web1\n");
    for h in [&f.web1, &f.web2] {
        assert!(!h.daemon.state_dir().join("users/root").exists());
    }
    // The trail of administrators' changes names the host.
    assert_eq!(f.pg.psql("SELECT host, action, name FROM smsotp_changes"), "web1|enroll|root\n");
    // doctor and db status report the database and its schema.
    let out = ctl_with_config(&f.web2.daemon.config, &["doctor"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let expected = format!("database: {} answers; schema version 2", f.pg.connection());
    assert!(text.contains(&expected), "{text}");
    let out = ctl_with_config(&f.web2.daemon.config, &["db", "status"]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("database: {} answers; schema version 2\n", f.pg.connection())
    );
    // No number in the daemons' logs.
    for h in [&f.web1, &f.web2] {
        assert!(!h.daemon.log_text().contains(&NUMBER[1..]));
    }
}

#[test]
fn wrong_codes_on_two_hosts_add_up_to_one_lockout() {
    let f = Fleet::start("[lockout]\nfailures = 4\nminutes = 15", "");
    f.web1.daemon.ctl_ok(&["enroll", USER, NUMBER]);
    let run = f.web1.pam().run(vec![typed("000000"), typed("000001")]);
    assert_ne!(run.code, Code::Success, "{}", run.output);
    assert_eq!(f.pg.psql("SELECT failures FROM smsotp_users WHERE name = 'root'"), "2\n");
    // web2 gets the last two guesses of the four, not four of its own.
    let run = f.web2.pam().run(vec![typed("000002"), typed("000003"), typed("000004")]);
    assert_eq!(run.code, Code::MaxTries, "{}", run.output);
    assert!(
        run.shown().ends_with(
            "Too many failed attempts: SMS login is locked for this account. Try again later or ask an administrator.\n"
        ),
        "{}",
        run.output
    );
    assert_eq!(run.shown().matches("SMS code: ").count(), 2, "locked after the second guess: {}", run.output);
    // web1 now refuses too, without sending an SMS.
    let sent = f.twilio.messages().len();
    let run = f.web1.pam().run(vec![]);
    assert_eq!(run.code, Code::MaxTries, "{}", run.output);
    assert_eq!(f.twilio.messages().len(), sent);
    // An administrator on web2 lifts it for the fleet.
    f.web2.daemon.ctl_ok(&["unlock", USER]);
    let run = f.web1.pam().run(vec![Box::new(|| f.twilio.wait_message(sent + 1).code())]);
    assert_eq!(run.code, Code::Success, "{}", run.output);
}

#[test]
fn the_fleets_sms_budget_is_shared() {
    let f = Fleet::start("[codes]\nresend_interval_seconds = 30", "sms_per_fleet_per_day = 2");
    f.web1.daemon.ctl_ok(&["enroll", USER, NUMBER]);
    let run = f.web1.pam().run(vec![Box::new(|| f.twilio.wait_message(1).code())]);
    assert_eq!(run.code, Code::Success, "{}", run.output);
    let run = f.web2.pam().run(vec![Box::new(|| f.twilio.wait_message(2).code())]);
    assert_eq!(run.code, Code::Success, "{}", run.output);
    // Two SMS in the fleet today: web1's third login gets none, though
    // web1 itself sent only one.
    let run = f.web1.pam().run(vec![]);
    assert_ne!(run.code, Code::Success, "{}", run.output);
    assert_eq!(f.twilio.messages().len(), 2);
    assert!(
        f.web1.daemon.log_text().contains("store.sms_per_fleet_per_day (2) is reached"),
        "{}",
        f.web1.daemon.log_text()
    );
    assert_eq!(f.pg.psql("SELECT host FROM smsotp_sends ORDER BY id"), "web1\nweb2\n");
}

#[test]
fn a_database_that_goes_down_fails_logins_closed_in_bounded_time_and_recovers() {
    let f = Fleet::start("", "connect_timeout_seconds = 2\nretry_seconds = 20");
    f.web1.daemon.ctl_ok(&["enroll", USER, NUMBER]);
    // Down mid-login: the code went out, then the database died.
    let run = f.web1.pam().arg("timeout=10").run(vec![Box::new(|| {
        let code = f.twilio.wait_message(1).code();
        f.pg.kill_server();
        code
    })]);
    assert_eq!(run.code, Code::AuthinfoUnavail, "the right code, but nothing can be recorded: {}", run.output);
    assert_eq!(
        run.shown(),
        "A login code is on its way by SMS to ******0123.\nSMS code: The SMS login service is not available.\n"
    );
    // While it is down: refused, at once (the breaker), no SMS.
    for _ in 0..3 {
        let run = f.web1.pam().arg("timeout=10").run(vec![]);
        assert_eq!(run.code, Code::AuthinfoUnavail, "{}", run.output);
    }
    assert_eq!(f.twilio.messages().len(), 1);
    let log = f.web1.daemon.log_text();
    assert_eq!(log.matches("logins fail closed").count(), 1, "one error line, not one per login: {log}");
    assert!(log.contains("event=store-unavailable user=root"), "{log}");
    // Back: the next login after the retry period works.
    f.pg.start_server();
    f.web1.daemon.set_time_offset(21);
    let run = f.web1.pam().run(vec![Box::new(|| f.twilio.wait_message(2).code())]);
    assert_eq!(run.code, Code::Success, "{}\n{}", run.output, f.web1.daemon.log_text());
}

#[test]
fn a_daemon_refuses_to_start_on_a_schema_it_does_not_know() {
    let pg = Postgres::start();
    let twilio = FakeTwilio::start();
    pg.psql("CREATE TABLE smsotp_schema (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now()); INSERT INTO smsotp_schema (version) VALUES (99);");
    let dir = smsotp_tests::tools::private_tempdir();
    let cfg = dir.path().join("smsotpd.toml");
    std::fs::write(
        &cfg,
        config(&twilio, &pg, "web1", "", "").replace("@STATE@", &dir.path().join("state").display().to_string()),
    )
    .unwrap();
    std::fs::set_permissions(&cfg, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let bus = Bus::start(Policy::Shipped);
    let out = run_smsotpd(&cfg, &bus);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the database's schema is version 99, newer than this smsotpd knows (2)"), "{err}");
    let out = ctl_with_config(&cfg, &["db", "migrate"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("newer than this smsotpctl knows"));
}

#[test]
fn an_older_schema_is_refused_until_db_migrate_upgrades_it() {
    let pg = Postgres::start();
    let twilio = FakeTwilio::start();
    let dir = smsotp_tests::tools::private_tempdir();
    let cfg = dir.path().join("smsotpd.toml");
    let text = config(&twilio, &pg, "web1", "", "");
    std::fs::write(&cfg, text.replace("@STATE@", &dir.path().join("state").display().to_string())).unwrap();
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o600)).unwrap();
    migrate(&cfg);
    // Back to version 1, as a database made by an older smsotpctl.
    pg.psql("DROP FUNCTION smsotp_take_sms; DELETE FROM smsotp_schema WHERE version = 2;");
    let bus = Bus::start(Policy::Shipped);
    let out = run_smsotpd(&cfg, &bus);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the database's schema is version 1, this smsotpd needs 2; run: smsotpctl db migrate"),
        "{err}"
    );
    let out = ctl_with_config(&cfg, &["db", "status"]);
    assert_eq!(out.status.code(), Some(6), "db status says the schema is old");
    assert_eq!(migrate(&cfg), "the schema went from version 1 to 2\n");
    let daemon = Daemon::start(&bus, &text);
    daemon.ctl_ok(&["enroll", USER, NUMBER]);
    let run = Pam::new(&bus.address(), USER).run(vec![Box::new(|| twilio.wait_message(1).code())]);
    assert_eq!(run.code, Code::Success, "{}", run.output);
}

#[test]
fn trust_opens_its_own_host_unless_the_fleet_shares_it() {
    let policy = "[policy]\nmode = \"trust\"\ntrust_days = 30";
    let f = Fleet::start(policy, "");
    f.web1.daemon.ctl_ok(&["enroll", USER, NUMBER]);
    let run = f.web1.pam().from("192.0.2.7").run(vec![Box::new(|| f.twilio.wait_message(1).code())]);
    assert_eq!(run.code, Code::Success, "{}", run.output);
    assert_eq!(f.web1.pam().from("192.0.2.7").run(vec![]).code, Code::Success, "trusted on web1");
    // web2 asks for a code: trust earned on web1 opens web1.
    let run = f.web2.pam().from("192.0.2.7").run(vec![Box::new(|| f.twilio.wait_message(2).code())]);
    assert_eq!(run.code, Code::Success, "{}", run.output);
    assert_eq!(f.twilio.messages().len(), 2);
    assert!(f.web1.daemon.ctl_ok(&["trust", "list", USER]).contains("addr:192.0.2.7"));

    let f = Fleet::start(policy, "trust_scope = \"fleet\"");
    f.web1.daemon.ctl_ok(&["enroll", USER, NUMBER]);
    let run = f.web1.pam().from("192.0.2.7").run(vec![Box::new(|| f.twilio.wait_message(1).code())]);
    assert_eq!(run.code, Code::Success, "{}", run.output);
    assert_eq!(f.web2.pam().from("192.0.2.7").run(vec![]).code, Code::Success, "trust_scope = fleet");
    assert_eq!(f.twilio.messages().len(), 1);
    assert!(f.web2.daemon.log_text().contains("event=trusted-machine user=root"));
}

#[test]
fn with_offline_local_trust_only_trusted_machines_get_in_while_the_database_is_down() {
    let f = Fleet::start("[policy]\nmode = \"trust\"\ntrust_days = 30", "offline = \"local-trust\"");
    f.web1.daemon.ctl_ok(&["enroll", USER, NUMBER]);
    let run = f.web1.pam().from("192.0.2.7").run(vec![Box::new(|| f.twilio.wait_message(1).code())]);
    assert_eq!(run.code, Code::Success, "{}", run.output);
    f.pg.kill_server();
    let run = f.web1.pam().from("192.0.2.7").run(vec![]);
    assert_eq!(run.code, Code::Success, "trusted here before: {}", run.output);
    let log = f.web1.daemon.log_text();
    assert!(
        log.contains("event=trusted-offline user=root service=smsotp-test rhost=192.0.2.7 machine=addr:192.0.2.7"),
        "{log}"
    );
    // Another machine, or web2 that never saw this trust: closed.
    let run = f.web1.pam().from("192.0.2.8").run(vec![]);
    assert_eq!(run.code, Code::AuthinfoUnavail, "{}", run.output);
    let run = f.web2.pam().from("192.0.2.7").run(vec![]);
    assert_eq!(run.code, Code::AuthinfoUnavail, "{}", run.output);
    assert_eq!(f.twilio.messages().len(), 1);
}

#[test]
fn a_hosts_files_move_into_the_database() {
    let pg = Postgres::start();
    let twilio = FakeTwilio::start();
    // A host that ran on files: root enrolled, trusted from 192.0.2.7.
    let bus = Bus::start(Policy::Shipped);
    let files = Daemon::start(
        &bus,
        &messaging_config(
            &twilio.url(),
            "",
            "[message]\nhostname = \"web1\"\n[policy]\nmode = \"trust\"\ntrust_days = 30",
        ),
    );
    files.ctl_ok(&["enroll", USER, NUMBER]);
    let run = Pam::new(&bus.address(), USER).from("192.0.2.7").run(vec![Box::new(|| twilio.wait_message(1).code())]);
    assert_eq!(run.code, Code::Success, "{}", run.output);
    let export = files.path("export.json");
    let out = ctl_with_config(&files.config, &["store", "export", export.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("1 users written to {} (mode 0600; delete it once imported)\n", export.display())
    );
    assert_eq!(std::fs::metadata(&export).unwrap().permissions().mode() & 0o777, 0o600);
    let again = ctl_with_config(&files.config, &["store", "export", export.to_str().unwrap()]);
    assert!(!again.status.success(), "never over an existing file");
    // The same host, now on PostgreSQL.
    let config = config(&twilio, &pg, "web1", "[policy]\nmode = \"trust\"\ntrust_days = 30", "");
    let text = config.replace("@STATE@", &files.state_dir().display().to_string());
    let cfg = files.path("fleet.toml");
    std::fs::write(&cfg, text).unwrap();
    std::fs::set_permissions(&cfg, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    migrate(&cfg);
    let out = ctl_with_config(&cfg, &["store", "import", export.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "1 users added: root\n");
    let out = ctl_with_config(&cfg, &["store", "import", export.to_str().unwrap()]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "0 users added: \n1 already in the store, left as they are: root\n"
    );
    assert_eq!(
        pg.psql("SELECT doc LIKE '%host = \"web1\"%' FROM smsotp_users"),
        "t\n",
        "trust from files opens web1 only"
    );
    // web2 on the database: root is enrolled there, and 192.0.2.7 is not
    // trusted on web2.
    let bus2 = Bus::start(Policy::Shipped);
    let web2 = Daemon::start(&bus2, &config.replace("hostname = \"web1\"", "hostname = \"web2\""));
    let run = Pam::new(&bus2.address(), USER).from("192.0.2.7").run(vec![Box::new(|| twilio.wait_message(2).code())]);
    assert_eq!(run.code, Code::Success, "{}", run.output);
    assert_eq!(twilio.messages()[1].to, NUMBER);
    drop(web2);
}

/// The GRANT statements of README's "Running a fleet", for `role`.
fn readme_grants(role: &str) -> String {
    let readme = std::fs::read_to_string(smsotp_tests::tools::workspace_root().join("README.md")).unwrap();
    let grants: Vec<&str> =
        readme.lines().map(str::trim).filter(|l| l.starts_with("GRANT ") && l.contains(" TO smsotp_web1;")).collect();
    assert!(grants.len() >= 4, "README's grants: {grants:?}");
    grants.join("\n").replace("smsotp_web1", role)
}

/// A host role `role` with README's grants and a password, and the
/// credentials directory that holds it (postgresql-password).
fn role_with_password(f: &Fleet, role: &str) -> tempfile::TempDir {
    f.pg.psql_superuser(&format!("CREATE ROLE {role} LOGIN PASSWORD 'pw-of-{role}';\n{}", readme_grants(role)));
    let creds = smsotp_tests::tools::private_tempdir();
    std::fs::write(creds.path().join("postgresql-password"), format!("pw-of-{role}\n")).unwrap();
    creds
}

/// A config for host `host` whose store is reached over TCP as `role`, TLS
/// checked against `ca`; `store_extra` ends the [store] table.
fn over_tcp(f: &Fleet, host: &str, role: &str, ca: &std::path::Path, store_extra: &str) -> String {
    // [twilio] comes last in messaging_config: [store] after it is its own table.
    messaging_config(&f.twilio.url(), "", &format!("[message]\nhostname = \"{host}\"\n"))
        + &format!(
            "[store]\nkind = \"postgresql\"\nconnection = \"{}\"\nca_file = \"{}\"\n{store_extra}",
            f.pg.tls_connection(role),
            ca.display()
        )
}

#[test]
fn a_host_role_with_the_readmes_grants_is_enough_and_sees_no_trail() {
    let f = Fleet::start("", "");
    let creds = role_with_password(&f, "web3");
    let bus = Bus::start(Policy::Shipped);
    let config = config(&f.twilio, &f.pg, "web3", "[lockout]\nfailures = 2\nminutes = 15", "")
        .replace("user=smsotp", "user=web3");
    let web3 = Daemon::start_with_credentials(&bus, &config, creds.path());
    // Everything a host does: enroll, log in, a wrong code, unlock, reset.
    web3.ctl_ok(&["enroll", USER, NUMBER]);
    let run = Pam::new(&bus.address(), USER).run(vec![Box::new(|| f.twilio.wait_message(1).code())]);
    assert_eq!(run.code, Code::Success, "{}\n{}", run.output, web3.log_text());
    let run = Pam::new(&bus.address(), USER).run(vec![typed("000000"), typed("000001")]);
    assert_eq!(run.code, Code::MaxTries, "{}\n{}", run.output, web3.log_text());
    web3.ctl_ok(&["unlock", USER]);
    web3.ctl_ok(&["trust", "revoke", USER, "--all"]);
    assert!(web3.ctl_ok(&["list"]).contains("root"));
    assert!(!web3.log_text().contains("permission denied"), "{}", web3.log_text());
    // The trail is written, and the host's role cannot read it back.
    assert_eq!(
        f.pg.psql("SELECT host || ' ' || action FROM smsotp_changes ORDER BY id"),
        "web3 enroll\nweb3 unlock\nweb3 revoke-trust\n"
    );
    let denied = std::process::Command::new("psql")
        .env("PGPASSWORD", "pw-of-web3")
        .arg("-h")
        .arg(f.pg.socket_dir())
        .args([
            "-p",
            &f.pg.port.to_string(),
            "-U",
            "web3",
            "-d",
            "smsotp",
            "-X",
            "-A",
            "-t",
            "-c",
            "SELECT count(*) FROM smsotp_changes",
        ])
        .output()
        .unwrap();
    assert!(!denied.status.success());
    assert!(String::from_utf8_lossy(&denied.stderr).contains("permission denied for table smsotp_changes"));
    // Nor change the schema.
    let denied = std::process::Command::new("psql")
        .env("PGPASSWORD", "pw-of-web3")
        .arg("-h")
        .arg(f.pg.socket_dir())
        .args(["-p", &f.pg.port.to_string(), "-U", "web3", "-d", "smsotp", "-X", "-c", "DROP TABLE smsotp_users"])
        .output()
        .unwrap();
    assert!(!denied.status.success());
}

#[test]
fn a_directory_number_change_is_told_once_in_the_fleet() {
    let slapd = smsotp_tests::slapd::Slapd::start(&[(USER, Some("+14155550123"))]);
    let pg = Postgres::start();
    let twilio = FakeTwilio::start();
    let host = |name: &str| {
        let tables =
            format!("[message]\nhostname = \"{name}\"\n{}\n{}", slapd.config("cache_seconds = 0"), pg.store_table(""));
        messaging_config(&twilio.url(), "phone_source = \"ldap\"", &tables)
    };
    let dir = smsotp_tests::tools::private_tempdir();
    let cfg = dir.path().join("smsotpd.toml");
    std::fs::write(&cfg, host("web1").replace("@STATE@", "/nonexistent")).unwrap();
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o600)).unwrap();
    migrate(&cfg);
    let (bus1, bus2) = (Bus::start(Policy::Shipped), Bus::start(Policy::Shipped));
    let web1 = Daemon::start(&bus1, &host("web1"));
    let web2 = Daemon::start(&bus2, &host("web2"));
    let run = Pam::new(&bus1.address(), USER).run(vec![Box::new(|| twilio.wait_message(1).code())]);
    assert_eq!(run.code, Code::Success, "{}\n{}", run.output, web1.log_text());
    assert_eq!(
        pg.psql("SELECT name, updated_by FROM smsotp_users"),
        "root|web1\n",
        "enrolled from the directory, in the database"
    );
    slapd.set_mobile(USER, Some("+14155550199"));
    let run = Pam::new(&bus2.address(), USER).run(vec![Box::new(|| {
        // The code and the notice, in either order.
        twilio.wait_message(3);
        twilio.messages()[1..].iter().find(|m| !m.body.starts_with("The number")).unwrap().code()
    })]);
    assert_eq!(run.code, Code::Success, "{}\n{}", run.output, web2.log_text());
    let run = Pam::new(&bus1.address(), USER).run(vec![Box::new(|| twilio.wait_message(4).code())]);
    assert_eq!(run.code, Code::Success, "{}\n{}", run.output, web1.log_text());
    let sms = twilio.messages();
    let notices: Vec<_> = sms.iter().filter(|m| m.body.contains("was changed in the directory")).collect();
    assert_eq!(notices.len(), 1, "web2 saw the change first; web1 finds the record already changed: {sms:?}");
    assert_eq!(notices[0].to, NUMBER);
    assert!(notices[0].body.contains(" on web2 "), "{}", notices[0].body);
    assert_eq!(sms.last().unwrap().to, "+14155550199");
    assert!(web2.log_text().contains("event=directory-number-changed user=root"));
    assert!(!web1.log_text().contains("event=directory-number-changed"));
}

#[test]
fn over_tcp_the_database_is_reached_by_tls_with_the_password_from_a_credential() {
    let f = Fleet::start("", "");
    let creds = role_with_password(&f, "web4");
    let tcp = |ca: &std::path::Path| over_tcp(&f, "web4", "web4", ca, "");
    let bus = Bus::start(Policy::Shipped);
    let web4 = Daemon::start_with_credentials(&bus, &tcp(&f.pg.ca_file()), creds.path());
    web4.ctl_ok(&["enroll", USER, NUMBER]);
    let run = Pam::new(&bus.address(), USER).run(vec![Box::new(|| f.twilio.wait_message(1).code())]);
    assert_eq!(run.code, Code::Success, "{}\n{}", run.output, web4.log_text());
    assert_eq!(f.pg.psql("SELECT updated_by FROM smsotp_users"), "web4\n");
    // smsotpctl finds the same credential.
    let out = std::process::Command::new(&built().smsotpctl)
        .args(["db", "status", "--config"])
        .arg(&web4.config)
        .env("CREDENTIALS_DIRECTORY", creds.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Without the password, or trusting another CA: closed, and the log says why.
    let out = ctl_with_config(&web4.config, &["db", "status"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("password"), "{}", String::from_utf8_lossy(&out.stderr));
    let other = smsotp_tests::tools::private_tempdir();
    smsotp_tests::tools::make_certificates(other.path());
    let bus5 = Bus::start(Policy::Shipped);
    let wrong_ca = Daemon::start_with_credentials(&bus5, &tcp(&other.path().join("ca.pem")), creds.path());
    let run = Pam::new(&bus5.address(), USER).run(vec![]);
    assert_eq!(run.code, Code::AuthinfoUnavail, "{}", run.output);
    let log = wrong_ca.log_text();
    assert!(log.to_lowercase().contains("certificate"), "{log}");
    assert_eq!(f.twilio.messages().len(), 1);
}

#[test]
fn a_host_can_log_in_to_the_database_by_a_client_certificate() {
    use smsotp_tests::postgres::CERT_ROLE;
    let f = Fleet::start("", "");
    f.pg.psql_superuser(&format!("CREATE ROLE {CERT_ROLE} LOGIN;\n{}", readme_grants(CERT_ROLE)));
    let (cert, key) = f.pg.client_certificate(CERT_ROLE);
    let tcp = |client: &str| over_tcp(&f, "web6", CERT_ROLE, &f.pg.ca_file(), client);
    // No password anywhere: the certificate is the role's login.
    let bus = Bus::start(Policy::Shipped);
    let web6 = Daemon::start(
        &bus,
        &tcp(&format!("client_cert = \"{}\"\nclient_key = \"{}\"\n", cert.display(), key.display())),
    );
    web6.ctl_ok(&["enroll", USER, NUMBER]);
    let run = Pam::new(&bus.address(), USER).run(vec![Box::new(|| f.twilio.wait_message(1).code())]);
    assert_eq!(run.code, Code::Success, "{}\n{}", run.output, web6.log_text());
    assert_eq!(f.pg.psql("SELECT updated_by FROM smsotp_users"), "web6\n");
    // Without the certificate the server refuses the role: closed, and why.
    let bus2 = Bus::start(Policy::Shipped);
    let without = Daemon::start(&bus2, &tcp(""));
    let run = Pam::new(&bus2.address(), USER).run(vec![]);
    assert_eq!(run.code, Code::AuthinfoUnavail, "{}", run.output);
    let log = without.log_text();
    assert!(log.contains("event=store-unavailable") && log.contains("certificate"), "{log}");
    assert_eq!(f.twilio.messages().len(), 1);
}

#[test]
fn the_database_can_be_named_by_a_service_file() {
    let f = Fleet::start("", "");
    let dir = smsotp_tests::tools::private_tempdir();
    let services = dir.path().join("pg_service.conf");
    std::fs::write(
        &services,
        format!(
            "# libpq's format\n[other]\nhost=/nonexistent\n\n[smsotp]\nhost={}\nport={}\ndbname=smsotp\nuser=smsotp\n",
            f.pg.socket_dir().display(),
            f.pg.port
        ),
    )
    .unwrap();
    let config = messaging_config(&f.twilio.url(), "", "[message]\nhostname = \"web5\"\n")
        + &format!("[store]\nkind = \"postgresql\"\nservice = \"smsotp\"\nservice_file = \"{}\"\n", services.display());
    let bus = Bus::start(Policy::Shipped);
    let web5 = Daemon::start(&bus, &config);
    web5.ctl_ok(&["enroll", USER, NUMBER]);
    assert!(f.web1.daemon.ctl_ok(&["list"]).contains("root"), "the same database as web1's");
    let out = ctl_with_config(&web5.config, &["db", "status"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("database: service=smsotp ({}) answers; schema version 2\n", services.display())
    );
    // A service with a password in it is refused like a connection string with one.
    std::fs::write(&services, format!("[smsotp]\nhost={}\nuser=smsotp\npassword=x\n", f.pg.socket_dir().display()))
        .unwrap();
    let out = ctl_with_config(&web5.config, &["db", "status"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("holds a password"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn an_administrator_changes_a_number_or_mends_an_unusable_record_from_any_host() {
    let f = Fleet::start("", "");
    f.web1.daemon.ctl_ok(&["enroll", USER, NUMBER]);
    // A new number from web2: written over web1's record, the old number told.
    assert_eq!(f.web2.daemon.ctl_ok(&["enroll", USER, "+14155550199"]), "root enrolled: codes go to ******0199\n");
    let notice = f.twilio.wait_message(1);
    assert_eq!(notice.to, NUMBER);
    assert!(notice.body.contains("was changed to ******0199"), "{}", notice.body);
    let run = f.web1.pam().run(vec![Box::new(|| f.twilio.wait_message(2).code())]);
    assert_eq!(run.code, Code::Success, "{}", run.output);
    assert_eq!(f.twilio.messages()[1].to, "+14155550199");
    // An unusable record: that user cannot log in until an administrator
    // enrolls them again, which works on a shared store too.
    f.pg.psql("UPDATE smsotp_users SET doc = 'not a record' WHERE name = 'root'");
    let run = f.web1.pam().run(vec![]);
    assert_eq!(run.code, Code::AuthinfoUnavail, "{}", run.output);
    assert_eq!(run.shown(), "SMS login is unavailable for this account. Contact your administrator.\n");
    f.web2.daemon.ctl_ok(&["enroll", USER, NUMBER]);
    let n = f.twilio.messages().len();
    let run = f.web1.pam().run(vec![Box::new(|| f.twilio.wait_message(n + 1).code())]);
    assert_eq!(run.code, Code::Success, "{}", run.output);
}
