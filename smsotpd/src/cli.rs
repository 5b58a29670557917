//! smsotpd's command line, declared once: `--help`, `--version`, usage
//! errors and the OPTIONS of smsotpd(8) (checked by tests/docs.rs).

use std::path::PathBuf;

use clap::Parser;

use crate::{config, logging};

#[derive(Debug, Parser)]
#[command(name = "smsotpd", version, about = "SMS one-time codes for Linux logins: the daemon pam_sms.so asks")]
pub struct Cli {
    /// configuration file
    #[arg(long, value_name = "PATH", default_value = config::DEFAULT_PATH)]
    pub config: PathBuf,
    /// D-Bus address of the bus to serve on
    #[arg(long, value_name = "ADDRESS", default_value = smsotp_proto::SYSTEM_BUS_ADDRESS)]
    pub bus: String,
    /// where log lines go: auto (syslog when /dev/log exists), syslog or stderr
    #[arg(long, value_name = "TARGET", default_value = "auto", value_parser = logging::Target::parse)]
    pub log: logging::Target,
    /// log more, including the D-Bus and HTTP libraries' diagnostics
    #[arg(long)]
    pub debug: bool,
}
