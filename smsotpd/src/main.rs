//! smsotpd: the privileged daemon behind pam_sms.so.

use std::path::PathBuf;
use std::process::ExitCode;

use smsotpd::{config, dbus, harden, logging, server};

const USAGE: &str = "usage: smsotpd [--config PATH] [--bus ADDRESS] [--log auto|syslog|stderr] [--debug]

  --config PATH   configuration file (default /etc/smsotpd/smsotpd.toml)
  --bus ADDRESS   D-Bus address (default unix:path=/run/dbus/system_bus_socket)
  --log TARGET    where log lines go (default auto: syslog when /dev/log exists)
  --debug         log more, including library messages";

fn main() -> ExitCode {
    let mut opts =
        server::Options { config: PathBuf::from(config::DEFAULT_PATH), bus: dbus::SYSTEM_BUS_ADDRESS.into() };
    let (mut target, mut debug) = (logging::Target::Auto, false);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = |args: &mut dyn Iterator<Item = String>| args.next().ok_or(format!("{arg} needs a value"));
        let parsed = match arg.as_str() {
            "--config" => value(&mut args).map(|v| opts.config = v.into()),
            "--bus" => value(&mut args).map(|v| opts.bus = v),
            "--log" => value(&mut args).and_then(|v| {
                logging::Target::parse(&v).map(|t| target = t).ok_or(format!("unknown --log target {v:?}"))
            }),
            "--debug" => {
                debug = true;
                Ok(())
            }
            "--version" => return println_ok(concat!("smsotpd ", env!("CARGO_PKG_VERSION"))),
            "--help" | "-h" => return println_ok(USAGE),
            other => Err(format!("unknown argument {other:?}")),
        };
        if let Err(e) = parsed {
            eprintln!("smsotpd: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    }
    if let Err(e) = logging::init(target, debug).and_then(|()| harden::apply()) {
        eprintln!("smsotpd: {e}");
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            log::error!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(server::run(opts)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn println_ok(text: &str) -> ExitCode {
    println!("{text}");
    ExitCode::SUCCESS
}
