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
use crate::config::fleet::Postgresql;
use crate::store::schema::describe;
pub use crate::store::schema::{SCHEMA_VERSION, connect, migrate, schema_problem, schema_version};

type Job = Box<dyn FnOnce(&mut Option<Client>) + Send>;
use crate::names::UserName;

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

    fn take_fleet_budget(&self, user: &str, unix: u64, budget: &FleetBudget) -> Result<bool, StoreError> {
        let (name, host, now, budget) = (user.to_owned(), self.host.clone(), to_i64(unix), *budget);
        let limit = |n: u32| i32::try_from(n).unwrap_or(i32::MAX);
        let (user_hour, user_day, fleet_day) =
            (limit(budget.per_user_per_hour), limit(budget.per_user_per_day), limit(budget.per_fleet_per_day));
        self.call(move |c| {
            let row = c
                .query_one(
                    "SELECT smsotp_take_sms($1, $2, $3, $4, $5, $6)",
                    &[&now, &name, &host, &user_hour, &user_day, &fleet_day],
                )
                .map_err(db)?;
            match row.get::<_, i32>(0) {
                0 => Ok(true),
                2 => {
                    tracing::error!(
                        "store.sms_per_fleet_per_day ({fleet_day}) is reached: no SMS goes out on any host of the fleet until older ones are 24 hours old"
                    );
                    Ok(false)
                }
                _ => Ok(false),
            }
        })
    }

    fn note_admin_change(&self, unix: u64, action: &str, user: &str) -> Result<(), StoreError> {
        let (host, at, action, name) = (self.host.clone(), to_i64(unix), action.to_owned(), user.to_owned());
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::config::fleet::Connection;

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
}
