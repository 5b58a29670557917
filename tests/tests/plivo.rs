//! provider = "plivo" through the real module and daemon against a fake
//! Plivo that checks each request against Plivo's Message API reference
//! (JSON body, dst/text, exactly one of src/powerpack_uuid, known keys only),
//! and failover between Plivo and Twilio.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use smsotp_tests::daemon::messaging_config;
use smsotp_tests::fake_twilio::{FROM, PLIVO_AUTH_ID, PLIVO_AUTH_TOKEN};
use smsotp_tests::pam::Code;
use smsotp_tests::world::{NUMBER, USER, World};

fn plivo_table() -> String {
    format!(
        "[plivo]\nauth_id = \"{PLIVO_AUTH_ID}\"\nauth_token = \"{PLIVO_AUTH_TOKEN}\"\nsrc = \"{FROM}\"\napi_base = \"@TWILIO@\"\nrequest_timeout_seconds = 1\n"
    )
}

#[test]
fn a_login_through_plivo() {
    let config = format!("version = 1\nprovider = \"plivo\"\nstate_directory = \"@STATE@\"\n{}", plivo_table());
    let w = World::with_config(&config);
    let run = w.pam(USER).run(vec![w.code_of(1)]);
    assert_eq!(run.code, Code::Success, "{}", run.output);
    let req = w.twilio.requests().into_iter().find(|r| r.method == "POST").unwrap();
    assert_eq!(req.path, format!("/v1/Account/{PLIVO_AUTH_ID}/Message/"));
    let doc: serde_json::Value = serde_json::from_str(&req.body).unwrap();
    assert_eq!(
        (doc["dst"].as_str(), doc["src"].as_str(), doc["type"].as_str()),
        (Some(NUMBER), Some(FROM), Some("sms"))
    );
    assert_eq!(w.twilio.violations(), Vec::<String>::new());
    let log = w.daemon.log_text();
    assert!(log.contains("event=code-sent user=root") && log.contains("provider=plivo ref="), "{log}");
    w.assert_clean();
}

#[test]
fn plivo_failing_hands_the_code_to_twilio() {
    let config = messaging_config("@TWILIO@", "", "")
        .replace("provider = \"twilio-messaging\"", "provider = \"plivo\"\nfailover = [\"twilio-messaging\"]")
        + "\n"
        + &plivo_table();
    // [plivo] comes after [twilio]: the keys above stay in [twilio].
    let w = World::with_config(&config);
    w.twilio.fail_path("/Message/", 500);
    let run = w.pam(USER).run(vec![w.code_of(1)]);
    assert_eq!(run.code, Code::Success, "{}", run.output);
    let reqs = w.twilio.requests();
    let to_plivo = reqs.iter().filter(|r| r.path.ends_with("/Message/")).count();
    let to_twilio = reqs.iter().filter(|r| r.path.ends_with("/Messages.json")).count();
    assert!((2..=4).contains(&to_plivo), "Plivo's 500s are retried within the deadline: {to_plivo}");
    assert_eq!(to_twilio, 1, "then one SMS through Twilio");
    let log = w.daemon.log_text();
    assert!(log.contains("event=provider-failure user=root") && log.contains("provider=plivo"), "{log}");
    assert!(log.contains("event=failover user=root") && log.contains("provider=twilio-messaging"), "{log}");
}

#[test]
fn doctor_checks_every_failover_routes_credentials_without_sending() {
    let config = messaging_config("@TWILIO@", "", "")
        .replace("provider = \"twilio-messaging\"", "provider = \"twilio-messaging\"\nfailover = [\"plivo\"]")
        + "\n"
        + &plivo_table().replace(PLIVO_AUTH_TOKEN, "wrongtoken0123456789wrongtoken0123456789");
    let w = World::with_config(&config);
    let config_path = w.daemon.config.display().to_string();
    let out = w.daemon.ctl(&["doctor", "--config", &config_path]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("provider: Twilio account"), "{text}");
    assert!(text.contains("failover route 1 (plivo, sms): the provider rejected our credentials"), "{text}");
    assert_eq!(out.status.code(), Some(6), "a route that cannot send is a problem: {text}");
    assert!(w.twilio.messages().is_empty(), "doctor sent nothing");
}

const ANSWER_URL: &str = "https://static.example.org/smsotp-wait.xml";

/// provider = "plivo" with calls: `[plivo] answer_url` and `[voice]`.
fn plivo_with_voice(top: &str, voice: &str) -> String {
    format!(
        "version = 1\nprovider = \"plivo\"\nstate_directory = \"@STATE@\"\n{top}\n{}answer_url = \"{ANSWER_URL}\"\n[voice]\nlanguage = \"en-GB\"\n{voice}\n",
        plivo_table()
    )
}

#[test]
fn a_login_by_a_plivo_call_spoken_into_the_answered_call() {
    let w = World::with_config(&plivo_with_voice("", "first = true"));
    let run = w.pam(USER).run(vec![w.code_of(1)]);
    assert_eq!(run.code, Code::Success, "{}\n{}", run.output, w.daemon.log_text());
    let said = &w.twilio.messages()[0];
    assert_eq!((said.channel, said.to.as_str()), ("voice", NUMBER));
    let reqs = w.twilio.requests();
    let call = reqs.iter().find(|r| r.method == "POST" && r.path.ends_with("/Call/")).expect("a call placed");
    let doc: serde_json::Value = serde_json::from_str(&call.body).unwrap();
    assert_eq!(
        (doc["from"].as_str(), doc["to"].as_str(), doc["answer_url"].as_str(), doc["answer_method"].as_str()),
        (Some(FROM), Some(NUMBER), Some(ANSWER_URL), Some("GET"))
    );
    let code = said.code();
    assert!(!call.body.contains(&code), "the code is not in the call request");
    let speak = reqs.iter().find(|r| r.path.ends_with("/Speak/")).expect("the code spoken into the call");
    let doc: serde_json::Value = serde_json::from_str(&speak.body).unwrap();
    assert_eq!((doc["language"].as_str(), doc["loop"].as_u64()), (Some("en-GB"), Some(2)));
    assert!(reqs.iter().all(|r| !r.path.contains(&code)), "the code is in no URL");
    assert!(reqs.iter().any(|r| r.method == "GET" && r.path.ends_with("/Call/?status=live")));
    assert_eq!(w.twilio.violations(), Vec::<String>::new());
    let log = w.daemon.log_text();
    assert!(log.contains("provider=plivo ref=call:") && log.contains("channel=voice"), "{log}");
    assert!(log.contains("plivo: the code is spoken into call"), "{log}");
    w.assert_clean();
}

#[test]
fn plivo_sms_failing_hands_the_code_to_a_plivo_call() {
    let w = World::with_config(&plivo_with_voice("failover = [\"voice\"]", ""));
    w.twilio.fail_path("/Message/", 500);
    let run = w.pam(USER).run(vec![w.code_of(1)]);
    assert_eq!(run.code, Code::Success, "{}\n{}", run.output, w.daemon.log_text());
    let said = w.twilio.messages();
    assert_eq!(said.len(), 1, "{said:?}");
    assert_eq!(said[0].channel, "voice");
    let log = w.daemon.log_text();
    assert!(log.contains("event=failover user=root") && log.contains("channel=voice"), "{log}");
    assert_eq!(w.twilio.violations(), Vec::<String>::new());
}

#[test]
fn plivo_calls_need_an_answer_url() {
    let config = plivo_with_voice("", "").replace(&format!("answer_url = \"{ANSWER_URL}\"\n"), "");
    let dir = smsotp_tests::tools::private_tempdir();
    let path = dir.path().join("smsotpd.toml");
    std::fs::write(&path, config.replace("@STATE@", "/var/lib/smsotpd").replace("@TWILIO@", "https://api.plivo.com"))
        .unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let out = std::process::Command::new(&smsotp_tests::tools::built().smsotpctl)
        .args(["check-config", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("needs plivo.answer_url") && err.contains("<Response><Wait length=\"60\"/></Response>"),
        "{err}"
    );
}
