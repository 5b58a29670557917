//! The benchmark still runs and every module's logins in it succeed: tiny
//! sizes, one round. It checks what the bench printed, never how fast.

use std::process::Command;

#[test]
fn the_benchmark_runs_every_module_without_a_failed_login() {
    smsotp_tests::tools::require("dbus-daemon", "dbus-daemon");
    assert!(
        std::path::Path::new("/usr/lib/x86_64-linux-gnu/security/pam_google_authenticator.so").is_file(),
        "pam_google_authenticator is missing; install it with: apt-get install libpam-google-authenticator"
    );
    let root = smsotp_tests::tools::workspace_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // Two builds: with --bin, cargo would build only that binary of each package.
    for args in [
        &["build", "--quiet", "-p", "smsotpd", "-p", "pam_sms"][..],
        &["build", "--quiet", "-p", "smsotp-tests", "--bin", "smsotp-bench"],
    ] {
        let status = Command::new(&cargo).args(args).current_dir(&root).status().unwrap();
        assert!(status.success(), "cargo {args:?}");
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map(std::path::PathBuf::from).unwrap_or(root.join("target"));
    let out = Command::new(target.join("debug/smsotp-bench"))
        .args(["--rounds", "1", "--logins", "5", "--at-once", "40", "--cold", "2", "--rss-users", "300"])
        .args(["--pending", "50"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "smsotp-bench failed:\n{text}\n{err}");
    for label in [
        "pam_permit",
        "g-a (cheapest)",
        "g-a (recommended)",
        "pam_sms (outbox)",
        "pam_sms (twilio, fake)",
        "pam_sms (postgresql)",
    ] {
        let row = text
            .lines()
            .find(|l| l.starts_with(label) && l.contains(" of "))
            .unwrap_or_else(|| panic!("no row for {label}:\n{text}"));
        let cells: Vec<&str> = row[label.len()..].split_whitespace().collect();
        // p50 p90 p99 rate1 rate4 "F of N" at-once-p50 at-once-p99 cold other
        assert_eq!(cells.len(), 12, "{row}");
        assert_eq!(&cells[5..8], ["0", "of", "40"], "logins at once failed for {label}: {row}\n{err}");
        assert_eq!(cells[11], "0", "logins failed for {label}: {row}\n{err}");
        assert!(cells.iter().all(|c| *c != "-"), "a figure is missing for {label}: {row}");
    }
    assert!(text.contains("ratio to g-a (recommended)"), "{text}");
    let memory = text.lines().find(|l| l.starts_with("smsotpd resident memory")).expect("memory line");
    assert!(memory.contains("300 users enrolled") && memory.contains("50 logins at the code prompt"), "{memory}");
    assert!(!memory.contains(" - MiB"), "{memory}");
}
