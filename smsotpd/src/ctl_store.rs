//! smsotpctl's store commands, which work without the daemon: the shared
//! database's schema (`db migrate`, `db status`) and moving a host's files
//! into it (`store export`, `store import`).

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Subcommand;

use crate::config::fleet::{Postgresql, StoreKind};
use crate::config::{self, Config};
use crate::ctl::{ConfigPath, Failure, fail, say};
use crate::store::postgres;

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Create or upgrade the database's schema (store.kind = "postgresql"); running it again does nothing
    Migrate(ConfigPath),
    /// Whether the database answers, and its schema version
    Status(ConfigPath),
}

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Write this host's records (the files in state_directory) to FILE, created 0600; it holds full numbers and app secrets
    Export {
        file: PathBuf,
        #[command(flatten)]
        config: ConfigPath,
    },
    /// Add the records of FILE (from `store export`) to the configured store; users it already has are kept
    Import {
        file: PathBuf,
        #[command(flatten)]
        config: ConfigPath,
    },
}

fn load(path: &Path) -> Result<Config, Failure> {
    let (creds, _) =
        config::credentials::for_tools(config::credentials::UNIT_DIRS).map_err(|e| fail(5, e.to_string()))?;
    Config::load_with(path, &creds).map_err(|e| fail(5, e.to_string()))
}

fn postgresql(cfg: &Config, path: &Path) -> Result<Postgresql, Failure> {
    match &cfg.store {
        StoreKind::Postgresql(pg) => Ok((**pg).clone()),
        StoreKind::Files => Err(fail(
            2,
            format!(
                "{} has store.kind = \"files\": there is no database; set [store] kind = \"postgresql\"",
                path.display()
            ),
        )),
    }
}

/// The blocking database client must not run on the command's runtime.
fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| match s.spawn(f).join() {
        Ok(v) => v,
        Err(p) => std::panic::resume_unwind(p),
    })
}

/// doctor's line on the shared database: reachable, and its schema.
pub(crate) fn database_finding(cfg: &Config) -> Option<crate::doctor::Finding> {
    use crate::doctor::{Finding, Level};
    let StoreKind::Postgresql(pg) = &cfg.store else { return None };
    let checked = off_runtime(|| {
        let mut client = postgres::connect(pg)?;
        postgres::schema_version(&mut client)
    });
    Some(match checked {
        Ok(v) => match postgres::schema_problem(v) {
            None => Finding {
                level: Level::Ok,
                what: format!("database: {} answers; schema version {v}", pg.connection),
                fix: String::new(),
            },
            Some(p) => {
                Finding { level: Level::Fail, what: format!("database: {p}"), fix: "smsotpctl db migrate".into() }
            }
        },
        Err(e) => Finding {
            level: Level::Fail,
            what: format!("database: {} does not answer: {e}; every login fails closed", pg.connection),
            fix: "check the server, store.connection, the role and the credential postgresql-password".into(),
        },
    })
}

pub(crate) fn db(command: &DbCommand, out: &mut dyn Write) -> Result<(), Failure> {
    match command {
        DbCommand::Migrate(c) => {
            let pg = postgresql(&load(&c.config)?, &c.config)?;
            let (before, after) = off_runtime(|| {
                let mut client =
                    postgres::connect(&pg).map_err(|e| fail(3, format!("cannot reach the database: {e}")))?;
                postgres::migrate(&mut client).map_err(|e| fail(1, e))
            })?;
            if before == after {
                say(out, format!("the schema is at version {after}; nothing to do"))
            } else {
                say(out, format!("the schema went from version {before} to {after}"))
            }
        }
        DbCommand::Status(c) => {
            let pg = postgresql(&load(&c.config)?, &c.config)?;
            let version = off_runtime(|| {
                let mut client =
                    postgres::connect(&pg).map_err(|e| fail(3, format!("cannot reach the database: {e}")))?;
                postgres::schema_version(&mut client).map_err(|e| fail(1, e))
            })?;
            say(out, format!("database: {} answers; schema version {version}", pg.connection))?;
            match postgres::schema_problem(version) {
                None => Ok(()),
                Some(p) => Err(fail(6, p)),
            }
        }
    }
}

pub(crate) fn store(command: &StoreCommand, out: &mut dyn Write) -> Result<(), Failure> {
    match command {
        StoreCommand::Export { file, config } => {
            let cfg = load(&config.config)?;
            let files = crate::store::FileStore::open(&cfg.state_directory).map_err(|e| fail(1, e.to_string()))?;
            let n = crate::store::transfer::export(&files, file).map_err(|e| fail(1, e))?;
            say(out, format!("{n} users written to {} (mode 0600; delete it once imported)", file.display()))
        }
        StoreCommand::Import { file, config } => {
            let cfg = load(&config.config)?;
            let host = crate::server::hostname(&cfg);
            let done = off_runtime(|| {
                let clock: crate::clock::SharedClock = std::sync::Arc::new(crate::clock::SystemClock);
                let store = crate::server::open_store(&cfg, clock).map_err(|e| fail(3, e))?;
                let into = store.records_for_tools();
                crate::store::transfer::import(file, into, &host).map_err(|e| fail(1, e))
            })?;
            say(out, format!("{} users added: {}", done.added.len(), done.added.join(", ")))?;
            if !done.kept.is_empty() {
                say(
                    out,
                    format!("{} already in the store, left as they are: {}", done.kept.len(), done.kept.join(", ")),
                )?;
            }
            Ok(())
        }
    }
}
