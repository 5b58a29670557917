//! destinations.countries through the real module: no request reaches the
//! provider for a number outside the list, and the user is told the code
//! could not be sent.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::time::Duration;

use smsotp_tests::pam::{Code, typed};
use smsotp_tests::world::{USER, World};

#[test]
fn a_number_outside_the_destination_list_gets_no_request() {
    // Enrolled (+1) while +1 was allowed; then the list shrinks to +44.
    let w = World::messaging("", "[destinations]\ncountries = [\"+1\"]");
    let config = std::fs::read_to_string(&w.daemon.config).unwrap();
    std::fs::write(&w.daemon.config, config.replace("countries = [\"+1\"]", "countries = [\"+44\"]")).unwrap();
    let pid = nix::unistd::Pid::from_raw(w.daemon.pid() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
    smsotp_tests::tools::wait_for("the reload", Duration::from_secs(10), || {
        w.daemon.log_text().contains("configuration reloaded")
    });
    let run = w.pam(USER).run(vec![typed("123456")]);
    assert_eq!(run.code, Code::AuthinfoUnavail, "{}", run.output);
    assert!(run.shown().contains("The login code could not be sent. Try again later."), "{}", run.output);
    assert!(w.twilio.requests().is_empty(), "a request reached the provider: {:?}", w.twilio.requests().len());
    assert!(w.daemon.log_text().contains("event=destination-refused user=root"), "{}", w.daemon.log_text());
    let doctor = w.daemon.ctl(&["doctor", "--config", w.daemon.config.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&doctor.stdout).into_owned();
    assert!(text.contains("ok    destinations: SMS go only to +44"), "{text}");
    let out = w.daemon.ctl(&["enroll", "daemon", "+14155550100"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("outside destinations.countries"));
}
