//! The configuration parser, on strings (no files) except where files matter.

use super::*;
use crate::policy::Action;

const SID: &str = "AC0123456789abcdef0123456789abcdef";
const TOKEN: &str = "f00dfeedf00dfeedf00dfeedf00dfeed";

fn messaging(extra: &str) -> String {
    format!(
        "version = 1\nprovider = \"twilio-messaging\"\n{extra}\n[twilio]\naccount_sid = \"{SID}\"\nauth_token = \"{TOKEN}\"\nfrom = \"+14155550100\"\n"
    )
}

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, "/etc/smsotpd/smsotpd.toml", &ExternalCredentials::default())
}

fn parse_err(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

#[test]
fn defaults_are_the_documented_ones() {
    let c = parse(&messaging("")).unwrap();
    assert_eq!(c.codes.length, 6);
    assert_eq!(c.codes.expiry, Duration::from_secs(300));
    assert_eq!(c.codes.attempts, 3);
    assert_eq!(c.codes.resend_interval, Duration::from_secs(30));
    assert_eq!(c.codes.resends, 3);
    assert_eq!(c.codes.max_pending, 10_000);
    assert_eq!(c.lockout.failures, 10);
    assert_eq!(c.lockout.duration, Duration::from_secs(15 * 60));
    assert_eq!(c.unenrolled, Unenrolled::Deny);
    assert_eq!(c.state_directory, PathBuf::from("/var/lib/smsotpd"));
    assert!(c.codes.deadline < Duration::from_secs(PAM_DEFAULT_TIMEOUT_SECONDS));
}

#[test]
fn unknown_key_names_file_key_and_choices() {
    let e = parse_err(&messaging("[codes]\nlenght = 8"));
    assert!(e.starts_with("/etc/smsotpd/smsotpd.toml: "), "{e}");
    assert!(e.contains("lenght"), "{e}");
    assert!(e.contains("length"), "names the right key: {e}");
}

#[test]
fn out_of_range_values_say_the_range() {
    let e = parse_err(&messaging("[codes]\nlength = 4"));
    assert!(e.contains("codes.length = 4 is out of range: use 6 to 10"), "{e}");
    let e = parse_err(&messaging("[codes]\nexpiry_seconds = 900"));
    assert!(e.contains("codes.expiry_seconds = 900"), "{e}");
    let e = parse_err(&messaging("[lockout]\nfailures = 1000"));
    assert!(e.contains("at most 100"), "{e}");
    let e = parse_err(&messaging("[codes]\ndeadline_seconds = 40"));
    assert!(e.contains("below pam_sms's default timeout"), "{e}");
}

#[test]
fn wrong_type_is_an_error() {
    let e = parse_err(&messaging("[codes]\nlength = \"six\""));
    assert!(e.contains("length"), "{e}");
}

#[test]
fn provider_must_be_chosen() {
    let e = parse_err("version = 1\n");
    assert!(e.contains("choose a provider explicitly"), "{e}");
    let e = parse_err("version = 1\nprovider = \"carrier-pigeon\"\n");
    assert!(e.contains("carrier-pigeon") && e.contains("twilio-messaging"), "{e}");
}

#[test]
fn version_is_checked() {
    let e = parse_err(&messaging("").replace("version = 1", "version = 2"));
    assert!(e.contains("write version = 1"), "{e}");
}

#[test]
fn twilio_fields_are_checked() {
    let bad_sid = messaging("").replace(SID, "AC123");
    assert!(parse_err(&bad_sid).contains("twilio.account_sid"));
    let no_from = messaging("").replace("from = \"+14155550100\"\n", "");
    assert!(parse_err(&no_from).contains("twilio.from"));
    let both = messaging("").replace(
        "from = \"+14155550100\"",
        "from = \"+14155550100\"\nmessaging_service_sid = \"MG0123456789abcdef0123456789abcdef\"",
    );
    assert!(parse_err(&both).contains("not both"));
    let plain_http = messaging("").replace("[twilio]", "[twilio]\napi_base = \"http://api.twilio.com\"");
    assert!(parse_err(&plain_http).contains("must use https://"));
    let loopback = messaging("").replace("[twilio]", "[twilio]\napi_base = \"http://127.0.0.1:8080/\"");
    match parse(&loopback).unwrap().provider {
        Provider::TwilioMessaging(t) => assert_eq!(t.api_base, "http://127.0.0.1:8080"),
        other => panic!("{other:?}"),
    }
    let no_creds = messaging("").replace(&format!("auth_token = \"{TOKEN}\"\n"), "");
    let placeholder = messaging("").replace(TOKEN, "your-auth-token");
    assert!(parse_err(&placeholder).contains("32-hex-digit Auth Token"));
    assert!(parse_err(&no_creds).contains("no Twilio credentials"));
}

#[test]
fn verify_needs_a_service() {
    let v = messaging("").replace("twilio-messaging", "twilio-verify");
    assert!(parse_err(&v).contains("verify_service_sid"));
    let ok = v.replace("[twilio]", "[twilio]\nverify_service_sid = \"VA0123456789abcdef0123456789abcdef\"");
    assert!(matches!(parse(&ok).unwrap().provider, Provider::TwilioVerify(_)));
}

#[test]
fn credentials_can_come_from_systemd() {
    let text = messaging("").replace(&format!("auth_token = \"{TOKEN}\"\n"), "");
    let creds = ExternalCredentials {
        auth_token: Some(Secret::new("fedcba9876543210fedcba9876543210".into())),
        api_key_secret: None,
        ..ExternalCredentials::default()
    };
    let c = Config::parse(&text, "x", &creds).unwrap();
    match c.provider {
        Provider::TwilioMessaging(Twilio { auth: TwilioAuth::AuthToken(t), .. }) => {
            assert_eq!(t.expose(), "fedcba9876543210fedcba9876543210")
        }
        other => panic!("{other:?}"),
    }
    let e = Config::parse(&messaging(""), "x", &creds).unwrap_err().to_string();
    assert!(e.contains("both in the file and as the twilio-auth-token credential"), "{e}");
}

#[test]
fn credentials_directory_files() {
    let dir = tempfile::tempdir().unwrap();
    assert!(read_credentials(dir.path()).unwrap().auth_token.is_none());
    std::fs::write(dir.path().join(CREDENTIAL_AUTH_TOKEN), format!("{TOKEN}\n")).unwrap();
    std::fs::write(dir.path().join(CREDENTIAL_API_KEY_SECRET), "").unwrap();
    let e = read_credentials(dir.path()).unwrap_err().to_string();
    assert!(e.contains("twilio-api-key-secret: the credential is empty"), "{e}");
    std::fs::remove_file(dir.path().join(CREDENTIAL_API_KEY_SECRET)).unwrap();
    let creds = read_credentials(dir.path()).unwrap();
    assert_eq!(creds.auth_token.unwrap().expose(), TOKEN, "trailing newline trimmed");
}

#[test]
fn policy_and_rules() {
    let c = parse(&messaging(
        "[policy]\nmode = \"trust\"\ntrust_days = 14\n\n[[rule]]\nname = \"office\"\nfrom = [\"10.0.0.0/8\", \"2001:db8::/32\"]\naction = \"trust\"\n\n[[rule]]\nservice = [\"sudo\"]\naction = \"always\"\n\n[[rule]]\ngroup = [\"svc\"]\naction = \"skip\"",
    ))
    .unwrap();
    assert_eq!(c.policy.default, Action::Trust { days: 14 });
    assert_eq!(c.policy.rules.len(), 3);
    assert_eq!(c.policy.rules[0].label, "rule 1 (office)");
    assert_eq!(c.policy.rules[0].action, Action::Trust { days: 14 }, "a trust rule defaults to policy.trust_days");
    assert_eq!(c.policy.rules[1].label, "rule 2");
    assert_eq!(parse(&messaging("")).unwrap().policy.default, Action::Always);
}

#[test]
fn bad_rules_are_named() {
    let cases = [
        (
            "[[rule]]\nname = \"office\"\nfrom = [\"10.0.0.0/33\"]\naction = \"trust\"",
            "[[rule]] number 1 (office): from: \"10.0.0.0/33\"",
        ),
        ("[[rule]]\nfrom = [\"vpn.example.com\"]\naction = \"skip\"", "never resolved"),
        ("[[rule]]\naction = \"allow\"", "[[rule]] number 1 : action = \"allow\""),
        ("[[rule]]\nfrom = []\naction = \"skip\"", "matches nothing"),
        ("[[rule]]\nservce = [\"sshd\"]\naction = \"skip\"", "unknown field `servce`"),
        ("[[rule]]\naction = \"skip\"\ntrust_days = 3", "trust_days only goes with action = \"trust\""),
        ("[[rule]]\naction = \"trust\"\ntrust_days = 0", "trust_days = 0 is out of range"),
        ("[[rule]]\nservice = [\"sshd\"]", "missing field `action`"),
        ("[[rule]]\nfrom = [\"10.0.0.0/8\"]\nlocal = true\naction = \"skip\"", "can never both hold"),
        ("[policy]\nmode = \"sometimes\"", "policy.mode = \"sometimes\""),
    ];
    for (text, want) in cases {
        let e = parse_err(&messaging(text));
        assert!(e.contains(want), "{text}\n=> {e}");
    }
    let e = parse_err(&messaging("[[rule]]\naction = \"skip\"\n[[rule]]\nname = \"second\"\naction = \"nope\""));
    assert!(e.contains("number 2 (second)"), "{e}");
}

#[test]
fn toml_errors_show_the_line_a_caret_plain_types_and_the_likely_key() {
    let e = parse_err(&messaging("[codes]\nlength = \"eight\""));
    let lines: Vec<&str> = e.lines().collect();
    assert!(lines.len() >= 4, "several lines, as toml lays them out: {e}");
    let at = lines.iter().position(|l| l.contains("length = \"eight\"")).expect("the bad line is shown");
    let caret = lines[at + 1];
    let col = lines[at].find("\"eight\"").unwrap();
    assert_eq!(caret.find('^'), Some(col), "the caret is under the value:\n{e}");
    assert!(e.contains("expected a whole number") && !e.contains("u32"), "{e}");
    let e = parse_err(&messaging("[codes]\nlenght = 8"));
    assert!(e.contains("unknown field `lenght`") && e.ends_with("did you mean `length`?"), "{e}");
    let e = parse_err(&messaging("[[rule]]\nservices = [\"sshd\"]\naction = \"skip\""));
    assert!(e.ends_with("did you mean `service`?"), "{e}");
    let e = parse_err(&messaging("[codes]\nzzzzzzzz = 8"));
    assert!(!e.contains("did you mean"), "no wild guesses: {e}");
    assert_eq!(edit_distance("lenght", "length"), 2);
    assert_eq!(edit_distance("", "abc"), 3);
}

#[test]
fn enrollment_at_login_needs_a_list_of_calling_codes() {
    let e = parse_err(&format!("unenrolled = \"enroll\"\n{}", messaging("")));
    assert!(e.contains("needs an [enrollment] table with countries"), "{e}");
    let enroll = |table: &str| format!("unenrolled = \"enroll\"\n{}\n[enrollment]\n{table}", messaging(""));
    assert!(parse_err(&enroll("countries = []")).contains("enrollment.countries is empty"));
    assert!(parse_err(&enroll("countries = [\"44\"]")).contains("\"44\" is not a calling code"));
    assert!(parse_err(&enroll("countries = [\"+1\"]\ntemplate = \"no code\"")).contains("enrollment.template"));
    let c = parse(&enroll("countries = [\"+1\", \"+44\"]")).unwrap();
    assert_eq!(c.unenrolled, Unenrolled::Enroll);
    assert_eq!(c.enrollment.unwrap().countries, ["+1", "+44"]);
    // Prepared while another mode runs: checked, then unused.
    let c = parse(&format!("{}\n[enrollment]\ncountries = [\"+1\"]", messaging(""))).unwrap();
    assert_eq!(c.unenrolled, Unenrolled::Deny);
    assert!(parse_err(&format!("{}\n[enrollment]\ncountries = [\"1\"]", messaging(""))).contains("calling code"));
}

#[test]
fn the_command_provider_needs_an_absolute_program_and_a_sane_time_limit() {
    let base = "version = 1\nprovider = \"command\"\n";
    assert!(parse_err(base).contains("needs a [command] table"));
    assert!(parse_err(&format!("{base}[command]\npath = \"send-sms\"")).contains("absolute path"));
    let e = parse_err(&format!("{base}[command]\npath = \"/usr/local/bin/send\"\ntimeout_seconds = 0"));
    assert!(e.contains("command.timeout_seconds = 0 is out of range"), "{e}");
    let c = parse(&format!("{base}[command]\npath = \"/usr/local/bin/send\"")).unwrap();
    assert!(matches!(c.provider, Provider::Command { timeout, .. } if timeout == Duration::from_secs(8)));
}

#[test]
fn destinations_are_calling_codes_and_never_an_empty_list() {
    let c = parse(&format!("{}\n[destinations]\ncountries = [\"+1\", \"+44\"]", messaging(""))).unwrap();
    assert_eq!(c.destinations.unwrap(), ["+1", "+44"]);
    assert!(parse(&messaging("")).unwrap().destinations.is_none(), "no table: anywhere");
    let e = parse_err(&format!("{}\n[destinations]\ncountries = []", messaging("")));
    assert!(e.contains("destinations.countries is empty"), "{e}");
    let e = parse_err(&format!("{}\n[destinations]\ncountries = [\"+0\"]", messaging("")));
    assert!(e.contains("\"+0\" is not a calling code"), "{e}");
}

#[test]
fn secrets_never_print() {
    let c = parse(&messaging("")).unwrap();
    let dbg = format!("{c:?}");
    assert!(!dbg.contains(TOKEN), "{dbg}");
    assert!(dbg.contains("[redacted]"));
}

#[test]
fn outbox_must_be_explicit_and_absolute() {
    let e = parse_err("version = 1\nprovider = \"outbox\"\n");
    assert!(e.contains("[outbox]"), "{e}");
    let e = parse_err("version = 1\nprovider = \"outbox\"\n[outbox]\npath = \"outbox\"\n");
    assert!(e.contains("absolute"), "{e}");
    let c = parse("version = 1\nprovider = \"outbox\"\n[outbox]\npath = \"/tmp/o\"\n").unwrap();
    assert!(matches!(c.provider, Provider::Outbox { .. }));
}

#[test]
fn template_errors_are_reported_with_key() {
    let e = parse_err(&messaging("[message]\ntemplate = \"no code here\""));
    assert!(e.contains("message.template"), "{e}");
}

#[test]
fn every_shipped_example_parses() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../etc");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let text = std::fs::read_to_string(&path).unwrap();
            // As shipped, the placeholders must be refused with a clear message...
            let e = Config::parse(&text, "x", &ExternalCredentials::default()).unwrap_err().to_string();
            assert!(e.contains("twilio.account_sid must be your Account SID"), "{e}");
            // ...and once filled in, the rest of the file must be valid.
            let text = text
                .replace("ACxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", SID)
                .replace("your-32-hex-digit-auth-token-here", TOKEN)
                .replace("+1XXXXXXXXXX", "+14155550100");
            Config::parse(&text, &path.display().to_string(), &ExternalCredentials::default())
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            // Every commented-out key is a real key with a valid value.
            let uncommented: String = text
                .lines()
                .map(|l| match l.strip_prefix("# ") {
                    Some(table) if table.starts_with('[') => table,
                    Some(rest)
                        if rest
                            .split_once(" = ")
                            .is_some_and(|(k, _)| k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
                            && !rest.starts_with("api_key")
                            && !rest.starts_with("messaging_service") =>
                    {
                        rest
                    }
                    _ => l,
                })
                .collect::<Vec<_>>()
                .join("\n");
            // With Programmable Messaging, failover and [voice] included
            // (Verify's rate limits are Verify's alone; store.service is
            // the alternative to store.connection).
            let uncommented: String =
                uncommented.lines().filter(|l| !l.starts_with("service = ")).collect::<Vec<_>>().join("\n");
            let messaging: String =
                uncommented.lines().filter(|l| !l.starts_with("verify_rate_limits = ")).collect::<Vec<_>>().join("\n");
            Config::parse(&messaging, "uncommented", &ExternalCredentials::default())
                .unwrap_or_else(|e| panic!("{} with every option uncommented: {e}", path.display()));
            // With Verify (verify_service_sid), which has no failover.
            let uncommented =
                uncommented.replace("\nprovider = \"twilio-messaging\"", "\nprovider = \"twilio-verify\"");
            let uncommented: String =
                uncommented.lines().filter(|l| !l.starts_with("failover = ")).collect::<Vec<_>>().join("\n");
            let uncommented =
                uncommented.replace("VAxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "VA0123456789abcdef0123456789abcdef");
            Config::parse(&uncommented, "uncommented", &ExternalCredentials::default())
                .unwrap_or_else(|e| panic!("{} with every option uncommented: {e}", path.display()));
            seen += 1;
        }
    }
    assert!(seen >= 1, "no example configs found in {}", dir.display());
}

#[test]
fn permission_rules() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("c.toml");
    std::fs::write(&p, messaging("")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = Config::load(&p, None).unwrap_err().to_string();
    assert!(e.contains("readable by group or others (mode 0644)") && e.contains("chmod 600"), "{e}");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    Config::load(&p, None).unwrap();
    // Without secrets, a world-readable file is fine, a world-writable one is not.
    std::fs::write(&p, "version = 1\nprovider = \"outbox\"\n[outbox]\npath = \"/tmp/o\"\n").unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    Config::load(&p, None).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o666)).unwrap();
    assert!(Config::load(&p, None).unwrap_err().to_string().contains("writable"));
    let e = Config::load(&dir.path().join("missing.toml"), None).unwrap_err().to_string();
    assert!(e.contains("--config"), "{e}");
}

#[test]
fn a_rule_can_say_what_users_without_a_number_meet() {
    let rule = "[[rule]]\nname = \"office\"\nfrom = [\"10.0.0.0/8\"]\naction = \"always\"\nunenrolled = \"enroll\"";
    let e = parse_err(&messaging(rule));
    assert!(e.contains("rule 1 (office) has unenrolled = \"enroll\"") && e.contains("[enrollment]"), "{e}");
    let c = parse(&messaging(&format!("{rule}\n[enrollment]\ncountries = [\"+1\"]"))).unwrap();
    assert_eq!(c.unenrolled, Unenrolled::Deny, "the top level stays");
    assert_eq!(c.policy.rules[0].unenrolled, Some(Unenrolled::Enroll));
    let e = parse_err(&messaging("[[rule]]\naction = \"always\"\nunenrolled = \"maybe\""));
    assert!(e.contains("unenrolled") && e.contains("maybe"), "{e}");
}

#[test]
fn plivo_is_checked_and_its_token_can_come_from_systemd() {
    let plivo = |extra: &str| {
        format!(
            "version = 1\nprovider = \"plivo\"\n[plivo]\nauth_id = \"MAFAKEPLIVO000000001\"\nsrc = \"+14155550100\"\n{extra}"
        )
    };
    let e = parse_err(&plivo(""));
    assert!(e.contains("plivo-auth-token"), "{e}");
    let creds = ExternalCredentials {
        plivo_auth_token: Some(Secret::new("fakeplivotoken0123456789abcdef0123456789".into())),
        ..ExternalCredentials::default()
    };
    let c = Config::parse(&plivo(""), "x", &creds).unwrap();
    assert!(matches!(c.provider, Provider::Plivo(_)));
    let e = parse_err(&plivo("auth_token = \"fakeplivotoken0123456789abcdef0123456789\"\npowerpack_uuid = \"x\""));
    assert!(e.contains("not both"), "{e}");
    let e = parse_err(&(plivo("auth_token = \"fakeplivotoken0123456789abcdef0123456789\"") + "\n[voice]\n"));
    assert!(e.contains("needs plivo.answer_url"), "calls through Plivo need the waiting page: {e}");
    let c = Config::parse(
        &(plivo("auth_token = \"fakeplivotoken0123456789abcdef0123456789\"\nanswer_url = \"https://static.example.org/wait.xml\"")
            + "\n[voice]\n"),
        "x",
        &ExternalCredentials::default(),
    )
    .unwrap();
    assert!(c.voice.is_some());
    let e = parse_err(&plivo(
        "auth_token = \"fakeplivotoken0123456789abcdef0123456789\"\nanswer_url = \"http://static.example.org/wait.xml\"",
    ));
    assert!(e.contains("plivo.answer_url"), "plain http is refused: {e}");
}

/// The keys serde accepts in `table`, from its own "expected one of" list.
fn keys_of(table: &str) -> Vec<String> {
    let text = format!("version = 1\nprovider = \"outbox\"\n[{table}]\nnot_a_key_at_all = 1\n");
    let e = parse_err(&text);
    let list = e.split("expected one of ").nth(1).unwrap_or_else(|| panic!("{e}"));
    list.lines().next().unwrap().split('`').skip(1).step_by(2).map(str::to_owned).collect()
}

#[test]
fn every_store_and_ldap_key_is_in_the_man_page_and_the_example() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let man = std::fs::read_to_string(format!("{root}/packaging/man/smsotpd.toml.5")).unwrap();
    let example = std::fs::read_to_string(format!("{root}/etc/smsotpd.toml")).unwrap();
    for table in ["store", "ldap"] {
        let keys = keys_of(table);
        assert!(keys.len() >= 10, "{table}: {keys:?}");
        for key in keys {
            let bold = man.lines().any(|l| l.starts_with(".B") && l.split([' ', '"']).any(|w| w == key));
            assert!(bold, "smsotpd.toml(5) lacks {table}.{key}");
            assert!(example.contains(&format!("# {key} = ")), "etc/smsotpd.toml lacks {table}.{key}");
        }
    }
    assert!(man.contains(".B phone_source\n") && example.contains("phone_source = \"ldap\""));
}

#[test]
fn store_and_ldap_are_checked_with_the_fix_in_the_message() {
    let top = "version = 1\nprovider = \"outbox\"\n[outbox]\npath = \"/tmp/x\"\n";
    let e = parse_err(&format!(
        "{top}[store]\nkind = \"postgresql\"\nconnection = \"host=db.example.org user=a password=p\"\n"
    ));
    assert!(e.contains("holds a password") && e.contains("postgresql-password"), "{e}");
    let e = parse_err(&format!("{top}[store]\nkind = \"postgresql\"\nconnection = \"host=db.example.org user=a\"\n"));
    assert!(e.contains("over TCP: set store.ca_file"), "{e}");
    let e = parse_err(&format!("{top}[store]\nkind = \"postgresql\"\nconnection = \"host=/run/postgresql\"\n"));
    assert!(e.contains("names no user"), "{e}");
    let e = parse_err(&format!("{top}[store]\nkind = \"mysql\"\n"));
    assert!(e.contains("use \"files\""), "{e}");
    let c = parse(&format!("{top}[store]\nkind = \"postgresql\"\nconnection = \"host=/run/postgresql user=web1\"\ntrust_scope = \"fleet\"\n")).unwrap();
    assert!(
        matches!(&c.store, crate::config::fleet::StoreKind::Postgresql(p) if p.fleet_trust && !p.offline_local_trust)
    );
    let ldap = |extra: &str| format!("phone_source = \"ldap\"\n{top}[ldap]\nbase = \"dc=x\"\n{extra}");
    let e = parse_err(&ldap("url = \"ldap://ldap.example.org\"\n"));
    assert!(e.contains("is plain text") && e.contains("starttls = true"), "{e}");
    let e = parse_err(&ldap("url = \"ldaps://ldap.example.org\"\nbind_dn = \"cn=x\"\n"));
    assert!(e.contains("ldap-bind-password"), "{e}");
    let e = parse_err(&ldap("url = \"ldaps://ldap.example.org\"\nfilter = \"(uid=root)\"\n"));
    assert!(e.contains("must contain {user}"), "{e}");
    let e = parse_err(&format!("phone_source = \"ldap\"\n{top}"));
    assert!(e.contains("needs an [ldap] table"), "{e}");
    assert!(parse(&ldap("url = \"ldaps://ldap.example.org\"\n")).unwrap().ldap.is_some());
}

#[test]
fn client_certificates_go_over_tls_with_a_ca_and_sasl_external_over_tls_needs_one() {
    let top = "version = 1\nprovider = \"outbox\"\n[outbox]\npath = \"/tmp/x\"\n";
    let ldap = |extra: &str| format!("phone_source = \"ldap\"\n{top}[ldap]\nbase = \"dc=x\"\n{extra}");
    let pair = "client_cert = \"/etc/smsotpd/c.pem\"\nclient_key = \"/etc/smsotpd/c.key\"\n";
    let ca = "ca_file = \"/etc/smsotpd/ca.pem\"\n";
    let e = parse_err(&ldap("url = \"ldaps://ldap.example.org\"\nsasl_external = true\n"));
    assert!(e.contains("set ldap.client_cert and ldap.client_key"), "{e}");
    let e = parse_err(&ldap(&format!("url = \"ldaps://ldap.example.org\"\n{pair}")));
    assert!(e.contains("set ldap.ca_file"), "{e}");
    let e = parse_err(&ldap(&format!("url = \"ldaps://ldap.example.org\"\n{ca}client_cert = \"/etc/c.pem\"\n")));
    assert!(e.contains("go together"), "{e}");
    let e = parse_err(&ldap(&format!(
        "url = \"ldaps://ldap.example.org\"\n{ca}client_cert = \"c.pem\"\nclient_key = \"/k\"\n"
    )));
    assert!(e.contains("ldap.client_cert = \"c.pem\" must be an absolute path"), "{e}");
    let e = parse_err(&ldap(&format!("url = \"ldapi:///\"\nsasl_external = true\n{ca}{pair}")));
    assert!(e.contains("ldapi:// has none"), "{e}");
    let c = parse(&ldap(&format!("url = \"ldaps://ldap.example.org\"\nsasl_external = true\n{ca}{pair}"))).unwrap();
    assert!(c.ldap.is_some_and(|l| l.client_cert.is_some()));
    assert!(parse(&ldap("url = \"ldapi:///\"\nsasl_external = true\n")).unwrap().ldap.is_some());
    let store = |extra: &str| {
        format!("{top}[store]\nkind = \"postgresql\"\nconnection = \"host=/run/postgresql user=web1\"\n{extra}")
    };
    let e = parse_err(&store(pair));
    assert!(e.contains("set store.ca_file"), "{e}");
}

#[test]
fn a_service_file_section_becomes_one_connection_string() {
    use crate::config::fleet::service_connection;
    let text = "# comment\n[a]\nhost=/x\n\n[smsotp]\nhost = db.example.org\nport=5433\nuser=web1\napplication_name=it's\n[b]\nuser=no\n";
    assert_eq!(
        service_connection(text, "smsotp").unwrap(),
        "host='db.example.org' port='5433' user='web1' application_name='it\\'s'"
    );
    let parsed =
        crate::config::fleet::check_connection(&service_connection(text, "smsotp").unwrap(), "s", true).unwrap();
    assert_eq!(parsed.get_application_name(), Some("it's"));
    assert!(service_connection(text, "missing").unwrap_err().contains("no [missing]"));
    assert!(service_connection("[smsotp]\nnonsense\n", "smsotp").unwrap_err().contains("not key=value"));
    let e = crate::config::fleet::check_connection("host=db.example.org user=a", "service smsotp", false).unwrap_err();
    assert!(e.contains("service smsotp reaches the database over TCP"), "{e}");
}
