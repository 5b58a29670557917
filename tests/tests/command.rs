//! provider = "command" through the real module: the daemon runs the
//! administrator's program with the message as JSON on stdin, and the code
//! it carried logs the user in.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use smsotp_tests::pam::Code;
use smsotp_tests::world::{USER, World};

#[test]
fn a_login_through_the_administrators_program() {
    let dir = smsotp_tests::tools::private_tempdir();
    let program = dir.path().join("send-sms");
    let sent = dir.path().join("sent.jsonl");
    std::fs::write(&program, format!("#!/bin/sh\ncat >> {0}\necho >> {0}\necho gw-7\n", sent.display())).unwrap();
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = format!(
        "version = 1\nprovider = \"command\"\nstate_directory = \"@STATE@\"\n[command]\npath = \"{}\"\ntimeout_seconds = 5\n",
        program.display()
    );
    let w = World::with_config(&config);
    let code = || {
        let mut text = String::new();
        smsotp_tests::tools::wait_for("the program to get the message", Duration::from_secs(10), || {
            text = std::fs::read_to_string(&sent).unwrap_or_default();
            !text.trim().is_empty()
        });
        let doc: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(doc["to"], smsotp_tests::world::NUMBER);
        assert_eq!(doc["channel"], "sms");
        doc["text"].as_str().unwrap().split_whitespace().next().unwrap().to_owned()
    };
    let run = w.pam(USER).run(vec![Box::new(code)]);
    assert_eq!(run.code, Code::Success, "{}", run.output);
    let log = w.daemon.log_text();
    assert!(log.contains("provider=command ref=gw-7"), "the program's reference is logged: {log}");
    assert!(w.twilio.messages().is_empty(), "nothing went to Twilio");
}
