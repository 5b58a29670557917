//! Failover through the real module and daemon: Twilio answering 500 hands
//! the code to the next provider (the administrator's program) or to a call;
//! an SMS that Twilio reports undelivered does the same. One code per login,
//! and the request counts are what they should be.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use smsotp_tests::pam::Code;
use smsotp_tests::world::{NUMBER, USER, World};

const VOICE: &str = "[voice]\nlanguage = \"en-US\"";
const PROMPT: &str = "SMS code (or 'v' for a voice call): ";

/// A `[command]` program that appends each message to a file; the file.
fn program(dir: &std::path::Path) -> (String, std::path::PathBuf) {
    let program = dir.join("send-sms");
    let sent = dir.join("sent.jsonl");
    std::fs::write(&program, format!("#!/bin/sh\ncat >> {0}\necho >> {0}\necho gw-1\n", sent.display())).unwrap();
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    (format!("[command]\npath = \"{}\"\ntimeout_seconds = 5", program.display()), sent)
}

fn command_code(sent: &std::path::Path) -> String {
    let mut text = String::new();
    smsotp_tests::tools::wait_for("the program to get the message", Duration::from_secs(10), || {
        text = std::fs::read_to_string(sent).unwrap_or_default();
        !text.trim().is_empty()
    });
    let doc: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!((doc["to"].as_str(), doc["channel"].as_str()), (Some(NUMBER), Some("sms")));
    doc["text"].as_str().unwrap().split_whitespace().next().unwrap().to_owned()
}

#[test]
fn twilio_failing_hands_the_code_to_the_next_provider() {
    let dir = smsotp_tests::tools::private_tempdir();
    let (table, sent) = program(dir.path());
    let w = World::messaging("failover = [\"command\", \"voice\"]", &format!("{table}\n{VOICE}"));
    w.twilio.fail_path("/Messages.json", 500);
    let run = w.pam(USER).run(vec![Box::new(|| command_code(&sent))]);
    assert_eq!(run.code, Code::Success, "{}", run.output);
    // What the user saw is an ordinary login.
    assert_eq!(
        run.shown(),
        format!(
            "A login code is on its way by SMS to ******0123.\n{PROMPT}SMS is the weakest way to sign in. Add an authenticator app with the command: smsotp totp\n"
        )
    );
    let to_twilio = w.twilio.requests().iter().filter(|r| r.path.ends_with("/Messages.json")).count();
    assert!((2..=4).contains(&to_twilio), "retried within the deadline, then given up: {to_twilio}");
    assert!(!w.twilio.requests().iter().any(|r| r.path.ends_with("/Calls.json")), "the program worked: no call");
    let log = w.daemon.log_text();
    assert!(log.contains("event=failover user=root") && log.contains("provider=command channel=sms"), "{log}");
    assert!(log.contains("provider=command ref=gw-1"), "{log}");
}

#[test]
fn twilio_failing_falls_to_a_call_and_an_empty_answer_says_so() {
    let w = World::messaging("failover = [\"voice\"]", VOICE);
    w.twilio.fail_path("/Messages.json", 503);
    let run = w.pam(USER).run(vec![
        Box::new(|| {
            // The call came instead of the SMS; the user asks again after 31 s.
            w.daemon.set_time_offset_after("event=code-sent", 31);
            String::new()
        }),
        Box::new(|| w.code(2)),
    ]);
    assert_eq!(run.code, Code::Success, "{}", run.output);
    let shown = run.shown();
    assert!(
        shown.contains(&format!(
            "{PROMPT}A call with a new code is on its way to ******0123.\nCode from the call (or 's' for SMS): "
        )),
        "{shown}"
    );
    let calls: Vec<_> = w.twilio.messages().into_iter().filter(|m| m.channel == "voice").collect();
    assert_eq!(calls.len(), 2, "the failover call and the asked-for one");
    assert!(w.twilio.messages().iter().all(|m| m.channel == "voice"), "no SMS got through");
}

#[test]
fn an_undelivered_sms_is_followed_by_a_call_with_the_same_code() {
    let w = World::messaging("failover = [\"voice\"]\nfailover_poll_seconds = 1", VOICE);
    w.twilio.undeliverable(NUMBER);
    let run = w.pam(USER).run(vec![Box::new(|| {
        let sms = w.twilio.wait_message(1);
        let call = w.twilio.wait_message(2);
        assert_eq!((sms.channel, call.channel), ("sms", "voice"));
        assert_eq!(sms.code(), call.code(), "one code per login");
        call.code()
    })]);
    assert_eq!(run.code, Code::Success, "{}", run.output);
    let polls = w.twilio.requests().iter().filter(|r| r.method == "GET" && r.path.contains("/Messages/SM")).count();
    assert_eq!(polls, 1, "asked once, answered undelivered");
    let log = w.daemon.log_text();
    assert!(
        log.contains("event=failover") && log.contains("reason=\"the provider reports the SMS undelivered\""),
        "{log}"
    );
    // A delivered SMS is asked about and left alone (the user answers after
    // the question).
    let ok = World::messaging("failover = [\"voice\"]\nfailover_poll_seconds = 1", VOICE);
    let run = ok.pam(USER).run(vec![Box::new(|| {
        smsotp_tests::tools::wait_for("the status question", Duration::from_secs(10), || {
            ok.twilio.requests().iter().any(|r| r.method == "GET")
        });
        ok.code(1)
    })]);
    assert_eq!(run.code, Code::Success, "{}", run.output);
    assert_eq!(ok.twilio.messages().len(), 1, "no call after a delivered SMS");
    assert_eq!(ok.twilio.violations(), Vec::<String>::new());
}

#[test]
fn an_undelivered_sms_goes_to_the_next_provider_with_the_same_code() {
    let dir = smsotp_tests::tools::private_tempdir();
    let (table, sent) = program(dir.path());
    let w = World::messaging("failover = [\"command\"]\nfailover_poll_seconds = 1", &table);
    w.twilio.undeliverable(NUMBER);
    let run = w.pam(USER).run(vec![Box::new(|| {
        let by_twilio = w.twilio.wait_message(1).code();
        let by_program = command_code(&sent);
        assert_eq!(by_twilio, by_program, "one code per login");
        by_program
    })]);
    assert_eq!(run.code, Code::Success, "{}", run.output);
    let kinds: Vec<String> =
        w.twilio.requests().iter().map(|r| format!("{} {}", r.method, r.path.rsplit('/').next().unwrap())).collect();
    assert_eq!(kinds.len(), 2, "one SMS, one status question: {kinds:?}");
    assert!(w.daemon.log_text().contains("provider=command ref=gw-1"), "{}", w.daemon.log_text());
}
