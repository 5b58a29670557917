//! A real ssh login into a Debian 12 container with the smsotp .deb
//! installed (tests/container/demo.sh runs this). Prints what the user sees
//! at each step and the SMS the fake Twilio "delivered".
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // demo tool
#![allow(clippy::print_stdout)] // a demo prints

use smsotp_tests::container::{Answer, Container, Login, SshSetup, USER, readme_sshd_block};

fn show(title: &str, login: &Login, ct: &Container, sms_before: usize) {
    println!("\n== {title}");
    println!("$ ssh {USER}@{} id -un", ct.address);
    for p in &login.prompts {
        println!("  shown: {p:?}");
    }
    for sms in &ct.sms()[sms_before..] {
        println!("  SMS (fake Twilio): {}", sms.replace('\t', "  "));
    }
    print!("{}", login.stdout.lines().map(|l| format!("  output: {l}\n")).collect::<String>());
    print!("{}", login.stderr.lines().map(|l| format!("  ssh: {l}\n")).collect::<String>());
    println!("  exit status: {:?}", login.status);
}

fn main() {
    let fake_twilio = std::env::current_exe().unwrap().with_file_name("fake-twilio");
    println!("== starting a Debian 12 container, installing the .deb with dpkg");
    let ct = Container::start(fake_twilio.to_str().unwrap(), SshSetup::KeyAndSms, "", "[policy]\nmode = \"trust\"\n");
    println!("sshd in the container at {} uses the README's block:\n{}", ct.address, readme_sshd_block());
    println!("{}", ct.sh_ok("dpkg-query -W smsotp; smsotpctl list"));

    let n = ct.sms().len();
    let login = ct.ssh("id -un", Answer::Right);
    show("public key + SMS code (the code typed right)", &login, &ct, n);
    let n = ct.sms().len();
    let login = ct.ssh("id -un", Answer::None);
    show("the same machine again: trusted for 30 days, no SMS", &login, &ct, n);
    ct.sh_ok(&format!("smsotpctl trust revoke {USER} --all"));
    let n = ct.sms().len();
    let login = ct.ssh("id -un", Answer::Wrong);
    show("trust revoked, and a wrong code typed three times", &login, &ct, n);
    println!(
        "\n== smsotpd's audit log (no codes, no full numbers)\n{}",
        ct.syslog.text().lines().filter(|l| l.contains("smsotpd[")).collect::<Vec<_>>().join("\n")
    );
}
