//! Every kind of request smsotpd sends to Twilio, checked against Twilio's
//! official OpenAPI files (tests/.cache/twilio-oai, fetched from the npm
//! registry, pinned by version and sha256, by tests/fetch-twilio-oai.sh).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::path::PathBuf;
use std::process::Command;

use smsotp_tests::bus::{Bus, Policy};
use smsotp_tests::daemon::{Daemon, verify_config};
use smsotp_tests::fake_twilio::{FakeTwilio, Request};
use smsotp_tests::pam::{Code, Pam, typed};
use smsotp_tests::tools::workspace_root;
use smsotp_tests::world::{NUMBER, USER, World};

fn python() -> PathBuf {
    let p = std::env::var_os("SMSOTP_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("tests/.cache/venv/bin/python"));
    assert!(
        p.is_file(),
        "{} is missing; create it with: python3 -m venv tests/.cache/venv && tests/.cache/venv/bin/pip install openapi-core (tests/run.sh does this)",
        p.display()
    );
    p
}

fn spec_dir() -> PathBuf {
    let d = std::env::var_os("SMSOTP_TWILIO_OAI")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("tests/.cache/twilio-oai"));
    assert!(
        d.join("twilio_api_v2010.json").is_file(),
        "Twilio's OpenAPI files are not in {}: run bash tests/fetch-twilio-oai.sh (tests/run.sh does), or set SMSOTP_TWILIO_OAI",
        d.display()
    );
    d
}

fn to_json(reqs: &[Request]) -> serde_json::Value {
    serde_json::Value::Array(
        reqs.iter()
            .map(|r| {
                let headers: serde_json::Map<String, serde_json::Value> =
                    r.headers.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect();
                serde_json::json!({
                    "api": if r.path.starts_with("/v2/PhoneNumbers/") {
                        "lookups"
                    } else if r.path.starts_with("/v2/") {
                        "verify"
                    } else {
                        "api"
                    },
                    "method": r.method,
                    "path": r.path,
                    "headers": headers,
                    "body": r.body,
                })
            })
            .collect(),
    )
}

fn validate(reqs: &[Request]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("requests.json");
    std::fs::write(&file, serde_json::to_string_pretty(&to_json(reqs)).unwrap()).unwrap();
    let out = Command::new(python())
        .arg(workspace_root().join("tests/openapi/validate.py"))
        .arg(spec_dir())
        .arg(&file)
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[test]
fn requests_match_twilios_openapi() {
    // Programmable Messaging: a login and a test message.
    let w = World::messaging("", "");
    assert_eq!(w.pam(USER).run(vec![w.code_of(1)]).code, Code::Success);
    w.daemon.ctl_ok(&["test-send", USER]);
    let mut reqs = w.twilio.requests();
    // Programmable Voice: a code by call ('v', once a resend is allowed).
    let v = World::messaging("", "[voice]\nlanguage = \"de-DE\"");
    let run = v.pam(USER).run(vec![
        Box::new(|| {
            v.set_time_offset(31);
            "v".to_owned()
        }),
        Box::new(|| v.code(2)),
    ]);
    assert_eq!(run.code, Code::Success, "{}", run.output);
    reqs.extend(v.twilio.requests());
    // Failover: a Message's status asked, then a call.
    let f = World::messaging("failover = [\"voice\"]\nfailover_poll_seconds = 1", "[voice]");
    f.twilio.undeliverable(NUMBER);
    let run = f.pam(USER).run(vec![Box::new(|| f.code(2))]);
    assert_eq!(run.code, Code::Success, "{}", run.output);
    reqs.extend(f.twilio.requests());
    // Lookup v2 at enrollment.
    let l = World::with_config(
        &(smsotp_tests::daemon::messaging_config("@TWILIO@", "", "") + "lookup_refuse = [\"landline\"]\n"),
    );
    l.daemon.ctl_ok(&["enroll", "daemon", "+14155550177"]);
    reqs.extend(l.twilio.requests());
    // Verify: a wrong then a right code (Verifications + VerificationCheck).
    let bus = Bus::start(Policy::Shipped);
    let twilio = FakeTwilio::start();
    // (with Programmable Rate Limits)
    let config = verify_config(&twilio.url(), "") + "verify_rate_limits = { per_user = \"user\" }\n";
    let daemon = Daemon::start(&bus, &config);
    daemon.ctl_ok(&["enroll", USER, NUMBER]);
    let run = Pam::new(&bus.address(), USER).run(vec![typed("999999"), Box::new(|| twilio.wait_message(1).code())]);
    assert_eq!(run.code, Code::Success, "{}", run.output);
    reqs.extend(twilio.requests());
    // Verify's call channel.
    let (twilio, run, log) = smsotp_tests::world::verify_login_by_call();
    assert_eq!(run.code, Code::Success, "{}\n{log}", run.output);
    reqs.extend(twilio.requests());
    let kinds: std::collections::BTreeSet<String> = reqs
        .iter()
        .map(|r| match r.path.rsplit('/').next().unwrap() {
            sid if sid.starts_with("SM") => format!("{} Messages/{{Sid}}.json", r.method),
            _ if r.path.starts_with("/v2/PhoneNumbers/") => format!("{} PhoneNumbers/{{PhoneNumber}}", r.method),
            last => format!("{} {last}", r.method),
        })
        .collect();
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        [
            "GET Messages/{Sid}.json",
            "GET PhoneNumbers/{PhoneNumber}",
            "POST Calls.json",
            "POST Messages.json",
            "POST VerificationCheck",
            "POST Verifications"
        ]
    );
    let (ok, report) = validate(&reqs);
    println!("{report}");
    assert!(ok, "{report}");
    assert!(report.contains(&format!("checked {} requests of 6 kinds", reqs.len())), "{report}");
    assert!(reqs.iter().any(|r| r.form.contains_key("RateLimits")), "RateLimits were checked too");
}

#[test]
fn the_validator_rejects_a_bad_request() {
    let w = World::messaging("", "");
    assert_eq!(w.pam(USER).run(vec![w.code_of(1)]).code, Code::Success);
    let mut req = w.twilio.requests().remove(0);
    req.body = req.body.split('&').filter(|kv| !kv.starts_with("To=")).collect::<Vec<_>>().join("&");
    let (ok, report) = validate(&[req.clone()]);
    assert!(!ok, "a request without To passed: {report}");
    req.headers.retain(|(k, _)| k != "authorization");
    let (ok, _) = validate(&[req]);
    assert!(!ok);
}
