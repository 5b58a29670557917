//! The fake Twilio as a program, for the container tests: listens on the
//! address given and appends every SMS it "delivers" to a file, one line
//! per SMS: `<to>\t<body>`.
//!   fake-twilio 127.0.0.1:8443 /var/lib/fake-twilio/sms.log
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test tool

use smsotp_tests::fake_twilio::FakeTwilio;
use std::io::Write;
use std::time::Duration;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, addr, log] = args.as_slice() else {
        eprintln!("usage: fake-twilio ADDRESS:PORT SMS-LOG-FILE");
        std::process::exit(2);
    };
    let twilio = FakeTwilio::start_on(addr);
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(log).expect("cannot open the SMS log");
    eprintln!("fake-twilio listening on {}", twilio.url());
    // After every request: new SMS to the file, and malformed requests to
    // stderr (the container's log), which the tests check is free of them.
    let (mut answered, mut written, mut reported) = (0, 0, 0);
    loop {
        if !twilio.wait_requests(answered + 1, Duration::from_secs(3600)) {
            continue;
        }
        answered = twilio.answered();
        let messages = twilio.messages_from(written);
        for sms in &messages {
            writeln!(file, "{}\t{}", sms.to, sms.body.replace('\n', " ")).unwrap();
        }
        file.sync_all().unwrap();
        written += messages.len();
        let violations = twilio.violations();
        for v in &violations[reported..] {
            eprintln!("violation: {v}");
        }
        reported = violations.len();
    }
}
