//! Wiring: config -> provider, store, daemon -> bus name -> signals:
//! SIGHUP reloads the configuration (a bad one is refused and the running
//! one kept), SIGTERM and SIGINT stop.

use std::path::PathBuf;
use std::sync::Arc;

use crate::clock::{SharedClock, SystemClock};
use crate::config::{Config, Provider as ProviderConfig, Route};
use smsotp_proto::{BUS_NAME, OBJECT_PATH};

use crate::daemon::Daemon;
use crate::dbus::{Current, SmsOtp};
use crate::provider::twilio::{Api, Twilio};
use crate::provider::{AnyProvider, Channel, outbox::Outbox};
use crate::store::Store;

/// Builds the provider the config names.
pub fn provider(cfg: &Config, clock: SharedClock) -> Result<AnyProvider, String> {
    provider_of(&cfg.provider, cfg, clock)
}

/// The failover routes the config lists, in order: a call from the provider,
/// or another provider by SMS.
pub fn failover(cfg: &Config, clock: SharedClock) -> Result<Vec<(AnyProvider, Channel)>, String> {
    cfg.failover
        .iter()
        .map(|route| match route {
            Route::Voice => Ok((provider(cfg, clock.clone())?, Channel::Voice)),
            Route::Provider(p) => Ok((provider_of(p, cfg, clock.clone())?, Channel::Sms)),
        })
        .collect()
}

fn provider_of(which: &ProviderConfig, cfg: &Config, clock: SharedClock) -> Result<AnyProvider, String> {
    Ok(match which {
        ProviderConfig::TwilioMessaging(t) => AnyProvider::Twilio(Box::new(
            Twilio::new(Api::Messaging, t.clone(), cfg.voice.clone(), hostname(cfg), clock)
                .map_err(|e| e.to_string())?,
        )),
        ProviderConfig::TwilioVerify(t) => AnyProvider::Twilio(Box::new(
            Twilio::new(Api::Verify, t.clone(), cfg.voice.clone(), hostname(cfg), clock).map_err(|e| e.to_string())?,
        )),
        ProviderConfig::Outbox { path } => AnyProvider::Outbox(Outbox::new(path.clone(), clock)),
        ProviderConfig::Plivo(p) => AnyProvider::Plivo(
            crate::provider::plivo::Plivo::new(p.clone(), cfg.voice.clone(), clock).map_err(|e| e.to_string())?,
        ),
        ProviderConfig::Command { path, timeout } => {
            AnyProvider::Command(crate::provider::command::Command::new(path.clone(), *timeout, clock))
        }
    })
}

pub fn hostname(cfg: &Config) -> String {
    cfg.hostname.clone().unwrap_or_else(|| {
        nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_else(|| "this machine".into())
    })
}

pub fn daemon(cfg: Config, clock: SharedClock) -> Result<Daemon<AnyProvider>, String> {
    let (store, provider, host) = parts(&cfg, clock.clone())?;
    let routes = failover(&cfg, clock.clone())?;
    Ok(Daemon::new(cfg, host, store, provider, clock).map_err(|e| e.to_string())?.with_failover(routes))
}

/// The daemon a reload makes from the configuration file as it is now; the
/// error says why the running one stays.
pub fn reloaded(opts: &Options, previous: &Daemon<AnyProvider>) -> Result<Daemon<AnyProvider>, String> {
    let cfg = load(opts)?;
    let (store, provider, host) = parts(&cfg, previous.clock.clone())?;
    let routes = failover(&cfg, previous.clock.clone())?;
    Ok(Daemon::succeeding(previous, cfg, host, store, provider).map_err(|e| e.to_string())?.with_failover(routes))
}

/// The configuration file, with secrets systemd passed (LoadCredential=).
fn load(opts: &Options) -> Result<Config, String> {
    let credentials = std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from);
    Config::load(&opts.config, credentials.as_deref()).map_err(|e| e.to_string())
}

/// What a daemon is built from besides the configuration.
fn parts(cfg: &Config, clock: SharedClock) -> Result<(Store, AnyProvider, String), String> {
    warn_about_outbox(cfg);
    let store = open_store(cfg, clock.clone())?;
    Ok((store, provider(cfg, clock)?, hostname(cfg)))
}

/// The store `[store]` names; this host's own files are in the state
/// directory either way.
pub fn open_store(cfg: &Config, clock: SharedClock) -> Result<Store, String> {
    match &cfg.store {
        crate::config::fleet::StoreKind::Files => Store::open(&cfg.state_directory).map_err(|e| e.to_string()),
        crate::config::fleet::StoreKind::Postgresql(pg) => {
            let records = crate::store::postgres::PgStore::start((**pg).clone(), hostname(cfg), clock)
                .map_err(|e| e.to_string())?;
            records.check_at_start()?;
            Store::with_records(&cfg.state_directory, Box::new(records), pg.offline_local_trust)
                .map_err(|e| e.to_string())
        }
    }
}

fn warn_about_outbox(cfg: &Config) {
    if let ProviderConfig::Outbox { path } = &cfg.provider {
        tracing::warn!(
            "provider \"outbox\": codes are written to {}, not sent by SMS. Anyone who can read that file can log in as any enrolled user; use it only to try smsotp out.",
            path.display()
        );
    }
}

pub struct Options {
    pub config: PathBuf,
    pub bus: String,
}

pub async fn run(opts: Options) -> Result<(), String> {
    let cfg = load(&opts)?;
    let clock: SharedClock = Arc::new(SystemClock);
    let daemon = Arc::new(daemon(cfg, clock)?);
    let current = Current::new(daemon.clone());
    // Signals are taken before the name is owned: a SIGHUP that comes as
    // soon as the daemon is up must reload, never end it.
    let mut signals = Signals::new()?;
    let conn = zbus::connection::Builder::address(opts.bus.as_str())
        .map_err(|e| format!("bad bus address {}: {e}", opts.bus))?
        .serve_at(OBJECT_PATH, SmsOtp::new(current.clone()))
        .map_err(|e| e.to_string())?
        .serve_at(OBJECT_PATH, crate::dbus_user::User::new(current.clone()))
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
    drop(daemon);
    while signals.next().await == Signal::Reload {
        let previous = current.get();
        match reloaded(&opts, &previous) {
            Ok(next) => {
                current.replace(Arc::new(next));
                crate::audit::event(crate::audit::Event::ConfigReloaded)
                    .field("config", &opts.config.display().to_string())
                    .log();
                tracing::info!(
                    "configuration reloaded from {} (provider {})",
                    opts.config.display(),
                    crate::provider::Provider::name(current.get().provider())
                );
            }
            Err(e) => tracing::error!(
                "reload refused, the running configuration stays: {e}; fix {} and send SIGHUP again (systemctl reload smsotpd)",
                opts.config.display()
            ),
        }
    }
    tracing::info!("smsotpd stopping; {} pending login(s) abandoned", current.get().pending());
    Ok(())
}

#[derive(Debug, PartialEq, Eq)]
enum Signal {
    Reload,
    Stop,
}

struct Signals {
    hup: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> Result<Self, String> {
        use tokio::signal::unix::{SignalKind, signal};
        let take = |kind: SignalKind| signal(kind).map_err(|e| format!("cannot handle a signal: {e}"));
        Ok(Signals {
            hup: take(SignalKind::hangup())?,
            term: take(SignalKind::terminate())?,
            int: take(SignalKind::interrupt())?,
        })
    }

    async fn next(&mut self) -> Signal {
        tokio::select! {
            _ = self.hup.recv() => Signal::Reload,
            _ = self.term.recv() => Signal::Stop,
            _ = self.int.recv() => Signal::Stop,
        }
    }
}
