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
