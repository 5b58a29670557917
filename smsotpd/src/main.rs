//! smsotpd: the privileged daemon behind pam_sms.so.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use smsotpd::{config, harden, logging, server};

#[derive(Debug, Parser)]
#[command(name = "smsotpd", version, about = "SMS one-time codes for Linux logins: the daemon pam_sms.so asks")]
struct Cli {
    /// configuration file
    #[arg(long, value_name = "PATH", default_value = config::DEFAULT_PATH)]
    config: PathBuf,
    /// D-Bus address of the bus to serve on
    #[arg(long, value_name = "ADDRESS", default_value = smsotp_proto::SYSTEM_BUS_ADDRESS)]
    bus: String,
    /// where log lines go: auto (syslog when /dev/log exists), syslog or stderr
    #[arg(long, value_name = "TARGET", default_value = "auto", value_parser = logging::Target::parse)]
    log: logging::Target,
    /// log more, including the D-Bus and HTTP libraries' diagnostics
    #[arg(long)]
    debug: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = logging::init(cli.log, cli.debug).and_then(|()| harden::apply()) {
        eprintln!("smsotpd: {e}");
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(server::run(server::Options { config: cli.config, bus: cli.bus })) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}
