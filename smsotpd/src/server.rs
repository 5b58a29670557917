//! Wiring: config -> provider, store, daemon -> bus name -> wait for a signal.

use std::path::PathBuf;
use std::sync::Arc;

use crate::clock::{SharedClock, SystemClock};
use crate::config::{Config, Provider as ProviderConfig};
use smsotp_proto::{BUS_NAME, OBJECT_PATH};

use crate::daemon::Daemon;
use crate::dbus::SmsOtp;
use crate::provider::twilio::{Api, Twilio};
use crate::provider::{AnyProvider, outbox::Outbox};
use crate::store::Store;

/// Builds the provider the config names.
pub fn provider(cfg: &Config, clock: SharedClock) -> Result<AnyProvider, String> {
    Ok(match &cfg.provider {
        ProviderConfig::TwilioMessaging(t) => {
            AnyProvider::Twilio(Box::new(Twilio::new(Api::Messaging, t.clone(), clock).map_err(|e| e.to_string())?))
        }
        ProviderConfig::TwilioVerify(t) => {
            AnyProvider::Twilio(Box::new(Twilio::new(Api::Verify, t.clone(), clock).map_err(|e| e.to_string())?))
        }
        ProviderConfig::Outbox { path } => AnyProvider::Outbox(Outbox::new(path.clone(), clock)),
    })
}

pub fn hostname(cfg: &Config) -> String {
    cfg.hostname.clone().unwrap_or_else(|| {
        nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_else(|| "this machine".into())
    })
}

pub fn daemon(cfg: Config, clock: SharedClock) -> Result<Daemon<AnyProvider>, String> {
    if let ProviderConfig::Outbox { path } = &cfg.provider {
        tracing::warn!(
            "provider \"outbox\": codes are written to {}, not sent by SMS. Anyone who can read that file can log in as any enrolled user; use it only to try smsotp out.",
            path.display()
        );
    }
    let store = Store::open(&cfg.state_directory).map_err(|e| e.to_string())?;
    let provider = provider(&cfg, clock.clone())?;
    let host = hostname(&cfg);
    Daemon::new(cfg, host, store, provider, clock).map_err(|e| e.to_string())
}

pub struct Options {
    pub config: PathBuf,
    pub bus: String,
}

pub async fn run(opts: Options) -> Result<(), String> {
    let credentials = std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from);
    let cfg = Config::load(&opts.config, credentials.as_deref()).map_err(|e| e.to_string())?;
    let clock: SharedClock = Arc::new(SystemClock);
    let daemon = Arc::new(daemon(cfg, clock)?);
    let conn = zbus::connection::Builder::address(opts.bus.as_str())
        .map_err(|e| format!("bad bus address {}: {e}", opts.bus))?
        .serve_at(OBJECT_PATH, SmsOtp::new(daemon.clone()))
        .map_err(|e| e.to_string())?
        .build()
        .await
        .map_err(|e| format!("cannot connect to the bus at {}: {e}", opts.bus))?;
    conn.request_name_with_flags(BUS_NAME, zbus::fdo::RequestNameFlags::DoNotQueue.into())
        .await
        .map_err(|e| format!("cannot own {BUS_NAME} on {} ({e}); is another smsotpd running, and does the D-Bus policy let this user own it?", opts.bus))
        .and_then(|reply| match reply {
            zbus::fdo::RequestNameReply::PrimaryOwner | zbus::fdo::RequestNameReply::AlreadyOwner => Ok(()),
            other => Err(format!("cannot own {BUS_NAME}: {other:?}; is another smsotpd running?")),
        })?;
    tracing::info!(
        "smsotpd {} ready on {BUS_NAME} (provider {})",
        env!("CARGO_PKG_VERSION"),
        crate::provider::Provider::name(daemon.provider())
    );
    wait_for_signal().await?;
    tracing::info!("smsotpd stopping; {} pending login(s) abandoned", daemon.pending());
    Ok(())
}

async fn wait_for_signal() -> Result<(), String> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}
