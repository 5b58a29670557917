//! smsotpd: the privileged daemon behind pam_sms.so.

use std::process::ExitCode;

use clap::Parser;
use smsotpd::cli::Cli;
use smsotpd::{harden, logging, server};

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
