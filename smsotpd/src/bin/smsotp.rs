//! smsotp: your own SMS login (see `smsotp --help`).

fn main() -> std::process::ExitCode {
    smsotpd::user_cli::main()
}
