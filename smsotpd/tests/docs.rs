//! The README, the man pages and `--help` say the same thing: every command
//! and option clap knows is documented, and nothing else is.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use clap::CommandFactory;

fn read(path: &str) -> String {
    let text = std::fs::read_to_string(format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    // roff escapes: "\-" is "-", font switches vanish.
    text.replace("\\-", "-").replace("\\fB", "").replace("\\fI", "").replace("\\fR", "")
}

fn readme_section(title: &str) -> String {
    let readme = read("README.md");
    let start = readme.find(&format!("## {title}\n")).unwrap();
    let rest = &readme[start + 3..];
    rest[..rest.find("\n## ").unwrap_or(rest.len())].to_owned()
}

/// Every (sub)command path with its long options, e.g. ("trust revoke", ["--machine", "--all"]).
fn commands(cmd: &clap::Command, prefix: &str, out: &mut Vec<(String, Vec<String>)>) {
    for sub in cmd.get_subcommands() {
        let name = if prefix.is_empty() { sub.get_name().to_owned() } else { format!("{prefix} {}", sub.get_name()) };
        if sub.has_subcommands() {
            commands(sub, &name, out);
        } else {
            let flags = sub.get_arguments().filter_map(|a| a.get_long()).map(|l| format!("--{l}")).collect();
            out.push((name, flags));
        }
    }
}

/// Every (sub)command of `cli` and each of its long options is in the
/// README section `readme` (on one line with `program NAME`) and in the man
/// page `man_path` (a .B line naming it); `at_least` commands.
fn assert_documented(cli: clap::Command, program: &str, man_path: &str, readme: &str, at_least: usize) {
    let mut all = Vec::new();
    commands(&cli, "", &mut all);
    assert!(all.len() >= at_least, "{all:?}");
    let man = read(man_path);
    let page = man_path.rsplit('/').next().unwrap_or(man_path);
    for (name, flags) in &all {
        assert!(readme.contains(&format!("{program} {name}")), "README's {program} section lacks {name:?}");
        let man_entry = man.lines().any(|l| l.starts_with(".B") && l.contains(name.as_str()));
        assert!(man_entry, "{page} lacks an entry for {name:?}");
        for flag in flags {
            let line = readme.lines().find(|l| l.contains(&format!("{program} {name}"))).unwrap();
            assert!(line.contains(flag.as_str()), "README: {name} lacks {flag}: {line}");
            assert!(man.contains(flag.as_str()), "{page}: {name} lacks {flag}");
        }
    }
}

#[test]
fn smsotpctl_commands_are_documented_in_the_readme_and_the_man_page() {
    let readme = readme_section("smsotpctl");
    assert_documented(smsotpd::ctl::Cli::command(), "smsotpctl", "packaging/man/smsotpctl.8", &readme, 11);
}

#[test]
fn exit_codes_are_stated_alike() {
    let codes = smsotpd::ctl::EXIT_CODES.trim_start_matches("exit codes: ");
    let man = read("packaging/man/smsotpctl.8").replace('\n', " ");
    let readme = readme_section("smsotpctl").replace('\n', " ");
    for part in codes.split(", ") {
        let (n, meaning) = part.split_once(' ').unwrap();
        let first = meaning.split_whitespace().next().unwrap();
        assert!(readme.contains(&format!("{n} {first}")), "README lacks exit code {n} ({meaning})");
        assert!(man.contains(&format!("{n} ")) && man.contains(first), "smsotpctl(8) lacks exit code {n} ({meaning})");
    }
}

#[test]
fn smsotpd_options_are_documented_in_its_man_page() {
    let man = read("packaging/man/smsotpd.8");
    for arg in smsotpd::cli::Cli::command().get_arguments() {
        if let Some(long) = arg.get_long().filter(|l| !matches!(*l, "help" | "version")) {
            assert!(
                man.contains(&format!(".BI --{long}"))
                    || man.contains(&format!(".BR --{long}"))
                    || man.contains(&format!(".B --{long}")),
                "smsotpd(8) lacks --{long}"
            );
        }
    }
}

#[test]
fn pam_sms_examples_agree_with_the_readme() {
    let man = read("packaging/man/pam_sms.8");
    let readme = readme_section("PAM and sshd");
    assert!(
        man.contains("/etc/ssh/sshd_config.d/smsotp.conf") && readme.contains("/etc/ssh/sshd_config.d/smsotp.conf")
    );
    assert!(man.contains("comment out @include common-auth"), "key + SMS needs common-auth commented out");
    let block = |text: &str| -> Vec<String> {
        let start = text.find("UsePAM yes").unwrap();
        text[start..].lines().take(4).map(str::to_owned).collect()
    };
    assert_eq!(block(&man), block(&readme));
    // Only pages that exist are referred to.
    for page in ["smsotpd (8)", "smsotpctl (8)", "smsotpd.toml (5)"] {
        let file = page.replace(" (", ".").replace(')', "");
        assert!(std::path::Path::new(&format!("{}/../packaging/man/{file}", env!("CARGO_MANIFEST_DIR"))).is_file());
    }
    assert!(!man.contains("smsotpctl doctor\" (8)"), "there is no smsotpctl-doctor(8)");
}

#[test]
fn smsotp_commands_are_documented_in_the_readme_and_the_man_page() {
    let readme = readme_section("Your own account: smsotp");
    assert_documented(smsotpd::user_cli::Cli::command(), "smsotp", "packaging/man/smsotp.1", &readme, 7);
    let man = read("packaging/man/smsotp.1");
    let codes = smsotpd::user_cli::EXIT_CODES.trim_start_matches("exit codes: ");
    let man = man.replace('\n', " ");
    let readme = readme.replace('\n', " ");
    for part in codes.split(", ") {
        let (n, meaning) = part.split_once(' ').unwrap();
        let first = meaning.split_whitespace().next().unwrap();
        assert!(readme.contains(&format!("{n} {first}")), "README lacks smsotp's exit code {n} ({meaning})");
        assert!(man.contains(&format!("{n} {first}")), "smsotp(1) lacks exit code {n} ({meaning})");
    }
}
