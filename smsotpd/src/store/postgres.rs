//! Records shared by a fleet, in PostgreSQL (`[store] kind = "postgresql"`).
//!
//! The daemon's calls are synchronous; the database client lives on a few
//! threads of its own ("connections"), and a call waits for its answer at
//! most connect + statement timeout. A failed or silent database opens a
//! circuit breaker: for `retry_seconds` calls fail at once, so a dead
//! database costs one timeout, not one per login.
//!
//! A record is its file's text plus the columns every host changes
//! (failures, lockout) and a revision. A write names the revision it read:
//! a record another host changed meanwhile is never overwritten, the call
//! fails (closed) instead, so a wrong code on host A and one on host B are
//! both counted or neither is answered.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use postgres::Client;

use super::{FleetBudget, RecordStore, StoreError, UserRecord};
use crate::clock::{SharedClock, Tick};
use crate::config::fleet::{Connection, Postgresql, check_connection, service_connection};
use crate::names::UserName;

/// The schema this smsotpd reads and writes.
pub const SCHEMA_VERSION: i32 = 1;

/// Each step takes the schema from the version before it to its own.
const MIGRATIONS: &[(i32, &str)] = &[(
    1,
    "CREATE TABLE smsotp_users (
        name text PRIMARY KEY,
        doc text NOT NULL,
        failures integer NOT NULL DEFAULT 0,
        locked_until bigint NOT NULL DEFAULT 0,
        revision bigint NOT NULL DEFAULT 1,
        updated_by text NOT NULL,
        updated_at bigint NOT NULL
    );
    CREATE TABLE smsotp_resets (name text PRIMARY KEY, at bigint NOT NULL, host text NOT NULL);
    CREATE TABLE smsotp_sends (id bigserial PRIMARY KEY, at bigint NOT NULL, name text NOT NULL, host text NOT NULL);
    CREATE INDEX smsotp_sends_at ON smsotp_sends (at);
    CREATE INDEX smsotp_sends_name_at ON smsotp_sends (name, at);
    CREATE TABLE smsotp_changes (
        id bigserial PRIMARY KEY,
        at bigint NOT NULL,
        host text NOT NULL,
        action text NOT NULL,
        name text NOT NULL
    );",
)];

/// Serialises the fleet budget's check-and-take (pg_advisory_xact_lock).
const BUDGET_LOCK: i64 = 0x736d_736f_7470;

type Job = Box<dyn FnOnce(&mut Option<Client>) + Send>;

/// Opens a connection as `cfg` says (TLS with the CA file when given) and
/// checks nothing else.
pub fn connect(cfg: &Postgresql) -> Result<Client, String> {
    let has_ca = cfg.ca_file.is_some();
    let mut pg = match &cfg.connection {
        Connection::String(s) => check_connection(s, "store.connection", has_ca)?,
        Connection::Service { name, file } => {
            let text =
                std::fs::read_to_string(file).map_err(|e| format!("store.service_file {}: {e}", file.display()))?;
            let what = format!("service {name} in {}", file.display());
            let s = service_connection(&text, name).map_err(|e| format!("{}: {e}", file.display()))?;
            check_connection(&s, &what, has_ca)?
        }
    };
    if let Some(p) = &cfg.password {
        pg.password(p.expose());
    }
    pg.connect_timeout(cfg.connect_timeout);
    pg.application_name("smsotpd");
    pg.options(&format!(
        "-c statement_timeout={} -c lock_timeout={}",
        cfg.statement_timeout.as_millis(),
        cfg.statement_timeout.as_millis()
    ));
    match &cfg.ca_file {
        Some(ca) => {
            pg.ssl_mode(postgres::config::SslMode::Require);
            let tls = tls_config(ca, cfg.client_cert.as_ref(), "store.ca_file")?;
            pg.connect(tokio_postgres_rustls::MakeRustlsConnect::new(tls)).map_err(|e| describe(&e))
        }
        None => pg.connect(postgres::NoTls).map_err(|e| describe(&e)),
    }
}

/// TLS that trusts only the CA in `ca` (`key` names it in errors), with a
/// client certificate when given.
pub(crate) fn tls_config(
    ca: &std::path::Path,
    client: Option<&(std::path::PathBuf, std::path::PathBuf)>,
    key: &str,
) -> Result<rustls::ClientConfig, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).map_err(|e| format!("{key} {}: {e}", ca.display()))? {
        let cert = cert.map_err(|e| format!("{key} {}: {e}", ca.display()))?;
        roots.add(cert).map_err(|e| format!("{key} {}: {e}", ca.display()))?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    match client {
        None => Ok(builder.with_no_client_auth()),
        Some((cert, key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .and_then(|i| i.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("store.client_cert {}: {e}", cert.display()))?;
            let key =
                PrivateKeyDer::from_pem_file(key).map_err(|e| format!("store.client_key {}: {e}", key.display()))?;
            builder.with_client_auth_cert(chain, key).map_err(|e| format!("store.client_cert: {e}"))
        }
    }
}

/// The database's own words, which name the cause (no such role, refused).
fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => match std::error::Error::source(e) {
            Some(inner) => format!("{e}: {inner}"),
            None => e.to_string(),
        },
    }
}

/// The schema version the database holds; 0 when it has none.
pub fn schema_version(client: &mut Client) -> Result<i32, String> {
    let exists: bool =
        client.query_one("SELECT to_regclass('smsotp_schema') IS NOT NULL", &[]).map_err(|e| describe(&e))?.get(0);
    if !exists {
        return Ok(0);
    }
    let row = client.query_opt("SELECT max(version) FROM smsotp_schema", &[]).map_err(|e| describe(&e))?;
    Ok(row.and_then(|r| r.get::<_, Option<i32>>(0)).unwrap_or(0))
}

/// Brings the schema to [`SCHEMA_VERSION`], each step in its own
/// transaction; running it again does nothing. Returns (before, after).
pub fn migrate(client: &mut Client) -> Result<(i32, i32), String> {
    client
        .batch_execute("CREATE TABLE IF NOT EXISTS smsotp_schema (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())")
        .map_err(|e| describe(&e))?;
    let before = schema_version(client)?;
    if before > SCHEMA_VERSION {
        return Err(format!(
            "the database's schema is version {before}, newer than this smsotpctl knows ({SCHEMA_VERSION}); upgrade smsotp"
        ));
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > before) {
        let mut tx = client.transaction().map_err(|e| describe(&e))?;
        tx.batch_execute(sql).map_err(|e| format!("migration to version {version}: {}", describe(&e)))?;
        tx.execute("INSERT INTO smsotp_schema (version) VALUES ($1)", &[version]).map_err(|e| describe(&e))?;
        tx.commit().map_err(|e| describe(&e))?;
    }
    Ok((before, schema_version(client)?))
}

/// Why a schema cannot be used, in words that say what to run.
pub fn schema_problem(version: i32) -> Option<String> {
    match version {
        v if v == SCHEMA_VERSION => None,
        0 => Some("the database has no smsotp schema yet; run: smsotpctl db migrate".into()),
        v if v < SCHEMA_VERSION => Some(format!(
            "the database's schema is version {v}, this smsotpd needs {SCHEMA_VERSION}; run: smsotpctl db migrate"
        )),
        v => Some(format!(
            "the database's schema is version {v}, newer than this smsotpd knows ({SCHEMA_VERSION}); upgrade smsotp on this host"
        )),
    }
}

#[derive(Debug, Default)]
struct Breaker {
    /// Calls fail at once until then.
    open_until: Option<Tick>,
    why: String,
}

pub struct PgStore {
    jobs: mpsc::Sender<(Tick, Job)>,
    cfg: Postgresql,
    host: String,
    clock: SharedClock,
    breaker: Mutex<Breaker>,
    /// Calls that reached the database (the breaker's tests count them).
    tried: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PgStore({})", self.target())
    }
}

impl PgStore {
    /// Starts the connection threads; nothing is connected yet. `host`
    /// names this host in the rows it writes.
    pub fn start(cfg: Postgresql, host: String, clock: SharedClock) -> Result<PgStore, StoreError> {
        let (tx, rx) = mpsc::channel::<(Tick, Job)>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..cfg.connections {
            let rx = rx.clone();
            let clock = clock.clone();
            std::thread::Builder::new()
                .name(format!("smsotpd-db{i}"))
                .spawn(move || {
                    let mut client: Option<Client> = None;
                    loop {
                        let next = match rx.lock() {
                            Ok(r) => r.recv(),
                            Err(p) => p.into_inner().recv(),
                        };
                        let Ok((deadline, job)) = next else { return };
                        // Its caller gave up: a late write would surprise it.
                        if clock.tick() <= deadline {
                            job(&mut client);
                        }
                    }
                })
                .map_err(|e| StoreError::Io { what: "cannot start a database thread".into(), source: e })?;
        }
        Ok(PgStore { jobs: tx, cfg, host, clock, breaker: Mutex::new(Breaker::default()), tried: Default::default() })
    }

    /// At start: a schema this smsotpd does not know is an error (the
    /// daemon refuses to start); a database that is down is not (logins
    /// fail closed until it is back).
    pub fn check_at_start(&self) -> Result<(), String> {
        match self.call(|_| Ok(())) {
            Err(StoreError::Schema(why)) => Err(why),
            Err(e) => {
                tracing::error!("{e}; logins fail closed until the database answers");
                Ok(())
            }
            Ok(()) => Ok(()),
        }
    }

    /// Where the database is, without secrets.
    pub fn target(&self) -> String {
        self.cfg.connection.to_string()
    }

    pub fn tried(&self) -> u64 {
        self.tried.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn breaker(&self) -> std::sync::MutexGuard<'_, Breaker> {
        match self.breaker.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    fn wait(&self) -> Duration {
        self.cfg.connect_timeout + self.cfg.statement_timeout + Duration::from_millis(500)
    }

    /// Runs `f` on a connection (made, and its schema checked, if needed).
    fn call<T: Send + 'static>(
        &self,
        f: impl Fn(&mut Client) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let now = self.clock.tick();
        {
            let b = self.breaker();
            if let Some(until) = b.open_until
                && now < until
            {
                return Err(StoreError::Unavailable(format!(
                    "{} (tried again in {} s)",
                    b.why,
                    now.until(until).as_secs().max(1)
                )));
            }
        }
        self.tried.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (tx, rx) = mpsc::sync_channel(1);
        let cfg = self.cfg.clone();
        let job: Job = Box::new(move |client: &mut Option<Client>| {
            let result = with_connection(client, &cfg, f);
            let _ = tx.send(result);
        });
        let wait = self.wait();
        if self.jobs.send((now.saturating_add(wait), job)).is_err() {
            return Err(self.trip("the database threads are gone".into()));
        }
        match rx.recv_timeout(wait) {
            Ok(Ok(v)) => {
                self.breaker().open_until = None;
                Ok(v)
            }
            Ok(Err(StoreError::Unavailable(why))) => Err(self.trip(why)),
            Ok(Err(StoreError::Schema(why))) => {
                self.trip(why.clone());
                Err(StoreError::Schema(why))
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(self.trip(format!("no answer within {} ms", wait.as_millis()))),
        }
    }

    fn trip(&self, why: String) -> StoreError {
        let mut b = self.breaker();
        if b.open_until.is_none() {
            tracing::error!("the database {} is unavailable: {why}; logins fail closed", self.target());
        }
        b.open_until = Some(self.clock.tick().saturating_add(self.cfg.retry));
        b.why = why.clone();
        StoreError::Unavailable(why)
    }
}

/// Runs `f` on `client`, connecting first when there is none; a
/// connection that broke is dropped so that the next call makes a new one.
/// A connection that was already there may have died with the server
/// meanwhile (a restart): then `f` runs once more on a new one.
fn with_connection<T>(
    client: &mut Option<Client>,
    cfg: &Postgresql,
    f: impl Fn(&mut Client) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let reused = client.as_ref().is_some_and(|c| !c.is_closed());
    match run_on(client, cfg, &f) {
        Err(StoreError::Unavailable(_)) if reused && client.is_none() => run_on(client, cfg, &f),
        other => other,
    }
}

fn run_on<T>(
    client: &mut Option<Client>,
    cfg: &Postgresql,
    f: &impl Fn(&mut Client) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    if client.as_ref().is_none_or(Client::is_closed) {
        let mut c = connect(cfg).map_err(StoreError::Unavailable)?;
        let version = schema_version(&mut c).map_err(StoreError::Unavailable)?;
        if let Some(problem) = schema_problem(version) {
            return Err(StoreError::Schema(problem));
        }
        *client = Some(c);
    }
    let Some(c) = client.as_mut() else {
        return Err(StoreError::Unavailable("no connection".into()));
    };
    let result = f(c);
    if matches!(result, Err(StoreError::Unavailable(_))) || c.is_closed() {
        *client = None;
    }
    result
}

fn db(e: postgres::Error) -> StoreError {
    StoreError::Unavailable(describe(&e))
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl RecordStore for PgStore {
    fn load(&self, user: &UserName) -> Result<Option<UserRecord>, StoreError> {
        let name = user.to_string();
        self.call(move |c| {
            let Some(row) = c
                .query_opt("SELECT doc, failures, locked_until, revision FROM smsotp_users WHERE name = $1", &[&name])
                .map_err(db)?
            else {
                return Ok(None);
            };
            let doc = zeroize::Zeroizing::new(row.get::<_, String>(0));
            let mut r =
                super::parse_record(&doc).map_err(|reason| StoreError::Corrupt { user: name.clone(), reason })?;
            r.failures = u32::try_from(row.get::<_, i32>(1)).unwrap_or(0);
            r.locked_until = to_u64(row.get(2));
            r.revision = to_u64(row.get(3));
            Ok(Some(r))
        })
    }

    fn save(&self, user: &UserName, record: &UserRecord) -> Result<(), StoreError> {
        let name = user.to_string();
        let doc = crate::record::render_record(record).map_err(|e| StoreError::Io {
            what: "cannot serialise a record".into(),
            source: std::io::Error::other(e),
        })?;
        let failures = i32::try_from(record.failures).unwrap_or(i32::MAX);
        let locked = to_i64(record.locked_until);
        let revision = to_i64(record.revision);
        let host = self.host.clone();
        let at = to_i64(self.clock.unix_now());
        self.call(move |c| {
            let doc: &str = &doc;
            let written = if revision == 0 {
                c.execute(
                    "INSERT INTO smsotp_users (name, doc, failures, locked_until, revision, updated_by, updated_at)
                     VALUES ($1, $2, $3, $4, 1, $5, $6) ON CONFLICT (name) DO NOTHING",
                    &[&name, &doc, &failures, &locked, &host, &at],
                )
            } else {
                c.execute(
                    "UPDATE smsotp_users SET doc = $2, failures = $3, locked_until = $4, revision = revision + 1,
                     updated_by = $5, updated_at = $6 WHERE name = $1 AND revision = $7",
                    &[&name, &doc, &failures, &locked, &host, &at, &revision],
                )
            }
            .map_err(db)?;
            if written == 1 { Ok(()) } else { Err(StoreError::Conflict { user: name.clone() }) }
        })
    }

    fn remove(&self, user: &UserName) -> Result<bool, StoreError> {
        let name = user.to_string();
        self.call(move |c| Ok(c.execute("DELETE FROM smsotp_users WHERE name = $1", &[&name]).map_err(db)? > 0))
    }

    fn users(&self) -> Result<Vec<UserName>, StoreError> {
        self.call(|c| {
            let rows = c.query("SELECT name FROM smsotp_users ORDER BY name", &[]).map_err(db)?;
            Ok(rows.iter().filter_map(|r| UserName::parse(r.get::<_, &str>(0)).ok()).collect())
        })
    }

    fn save_reset(&self, user: &UserName, now: u64) -> Result<(), StoreError> {
        let (name, host, at) = (user.to_string(), self.host.clone(), to_i64(now));
        self.call(move |c| {
            c.execute(
                "INSERT INTO smsotp_resets (name, at, host) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO UPDATE SET at = $2, host = $3",
                &[&name, &at, &host],
            )
            .map_err(db)?;
            Ok(())
        })
    }

    fn is_reset(&self, user: &UserName) -> bool {
        let name = user.to_string();
        self.call(move |c| {
            Ok(c.query_opt("SELECT 1 FROM smsotp_resets WHERE name = $1", &[&name]).map_err(db)?.is_some())
        })
        .unwrap_or(false)
    }

    fn remove_reset(&self, user: &UserName) -> Result<bool, StoreError> {
        let name = user.to_string();
        self.call(move |c| Ok(c.execute("DELETE FROM smsotp_resets WHERE name = $1", &[&name]).map_err(db)? > 0))
    }

    fn take_fleet_budget(&self, user: &str, host: &str, unix: u64, budget: &FleetBudget) -> Result<bool, StoreError> {
        let (name, host, now, budget) = (user.to_owned(), host.to_owned(), to_i64(unix), *budget);
        self.call(move |c| {
            let mut tx = c.transaction().map_err(db)?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&BUDGET_LOCK]).map_err(db)?;
            let row = tx
                .query_one(
                    "SELECT count(*),
                            count(*) FILTER (WHERE name = $2),
                            count(*) FILTER (WHERE name = $2 AND at > $1::bigint - 3600)
                     FROM smsotp_sends WHERE at > $1::bigint - 86400 AND at <= $1::bigint",
                    &[&now, &name],
                )
                .map_err(db)?;
            let (fleet_day, user_day, user_hour): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
            let spent = fleet_day >= i64::from(budget.per_fleet_per_day)
                || user_day >= i64::from(budget.per_user_per_day)
                || user_hour >= i64::from(budget.per_user_per_hour);
            if spent {
                if fleet_day >= i64::from(budget.per_fleet_per_day) {
                    tracing::error!(
                        "store.sms_per_fleet_per_day ({}) is reached: no SMS goes out on any host of the fleet until older ones are 24 hours old",
                        budget.per_fleet_per_day
                    );
                }
                return Ok(false);
            }
            tx.execute("INSERT INTO smsotp_sends (at, name, host) VALUES ($1, $2, $3)", &[&now, &name, &host])
                .map_err(db)?;
            tx.execute("DELETE FROM smsotp_sends WHERE at <= $1::bigint - 2 * 86400", &[&now]).map_err(db)?;
            tx.commit().map_err(db)?;
            Ok(true)
        })
    }

    fn note_admin_change(&self, host: &str, unix: u64, action: &str, user: &str) -> Result<(), StoreError> {
        let (host, at, action, name) = (host.to_owned(), to_i64(unix), action.to_owned(), user.to_owned());
        self.call(move |c| {
            c.execute(
                "INSERT INTO smsotp_changes (at, host, action, name) VALUES ($1, $2, $3, $4)",
                &[&at, &host, &action, &name],
            )
            .map_err(db)?;
            Ok(())
        })
    }

    fn shared(&self) -> bool {
        true
    }

    fn describe(&self) -> String {
        match self.call(|c| {
            let v = schema_version(c).map_err(StoreError::Unavailable)?;
            let users: i64 = c.query_one("SELECT count(*) FROM smsotp_users", &[]).map_err(db)?.get(0);
            Ok((v, users))
        }) {
            Ok((v, users)) => format!("postgresql ({}): reachable, schema version {v}, {users} users", self.target()),
            Err(e) => format!("postgresql ({}): {e}", self.target()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn unreachable() -> Postgresql {
        Postgresql {
            connection: Connection::String("host=/nonexistent/smsotp-test port=5432 dbname=x user=x".into()),
            password: None,
            ca_file: None,
            client_cert: None,
            connect_timeout: Duration::from_secs(1),
            statement_timeout: Duration::from_millis(500),
            retry: Duration::from_secs(15),
            offline_local_trust: false,
            fleet_trust: false,
            sms_per_fleet_per_day: 10,
            connections: 1,
        }
    }

    #[test]
    fn a_dead_database_costs_one_attempt_per_retry_period() {
        let clock = Arc::new(ManualClock::new(1_800_000_000));
        let store = PgStore::start(unreachable(), "web1".into(), clock.clone()).unwrap();
        let alice = UserName::parse("alice").unwrap();
        let first = store.load(&alice).unwrap_err();
        assert!(matches!(&first, StoreError::Unavailable(w) if w.contains("No such file")), "{first}");
        assert_eq!(store.tried(), 1);
        for _ in 0..100 {
            let e = store.load(&alice).unwrap_err();
            assert!(e.to_string().contains("tried again in"), "{e}");
        }
        assert_eq!(store.tried(), 1, "the breaker answered, not the database");
        clock.advance(Duration::from_secs(14));
        assert!(
            store.save(&alice, &UserRecord::new(crate::names::PhoneNumber::parse("+14155550123").unwrap())).is_err()
        );
        assert_eq!(store.tried(), 1);
        clock.advance(Duration::from_secs(1));
        assert!(!store.is_reset(&alice), "unreadable: no mark");
        assert_eq!(store.tried(), 2, "after retry_seconds one call tries again");
    }

    #[test]
    fn schema_problems_say_what_to_run() {
        assert_eq!(schema_problem(SCHEMA_VERSION), None);
        assert!(schema_problem(0).unwrap().contains("run: smsotpctl db migrate"));
        assert!(schema_problem(SCHEMA_VERSION + 1).unwrap().contains("upgrade smsotp"));
        assert_eq!(MIGRATIONS.last().map(|(v, _)| *v), Some(SCHEMA_VERSION), "a migration for each version");
    }
}
