//! smsotpctl: administer smsotpd (see `smsotpctl --help`).

fn main() -> std::process::ExitCode {
    smsotpd::ctl::main()
}
