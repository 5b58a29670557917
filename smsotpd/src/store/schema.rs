//! The shared database's schema (versioned migrations, `smsotpctl db
//! migrate`) and how a connection is made (TLS with the configured CA).

use std::sync::Arc;

use postgres::Client;

use crate::config::fleet::{Connection, Postgresql, check_connection, service_connection};

/// The schema this smsotpd reads and writes.
pub const SCHEMA_VERSION: i32 = 2;

/// Each step takes the schema from the version before it to its own.
pub(crate) const MIGRATIONS: &[(i32, &str)] = &[
    (
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
    ),
    (
        2,
        // The fleet's SMS budget in one round trip: the lock, then the
        // counts (a fresh snapshot: each statement of a function gets one
        // under READ COMMITTED), then the row. 0 taken, 1 the user's
        // budget is spent, 2 the fleet's. Runs as the caller (its grants).
        "CREATE FUNCTION smsotp_take_sms(p_at bigint, p_name text, p_host text,
                                         p_user_hour integer, p_user_day integer, p_fleet_day integer)
         RETURNS integer LANGUAGE plpgsql AS $$
         DECLARE
             fleet_day bigint;
             user_day bigint;
             user_hour bigint;
         BEGIN
             PERFORM pg_advisory_xact_lock(126913925313648);
             SELECT count(*), count(*) FILTER (WHERE name = p_name),
                    count(*) FILTER (WHERE name = p_name AND at > p_at - 3600)
               INTO fleet_day, user_day, user_hour
               FROM smsotp_sends WHERE at > p_at - 86400 AND at <= p_at;
             IF fleet_day >= p_fleet_day THEN RETURN 2; END IF;
             IF user_day >= p_user_day OR user_hour >= p_user_hour THEN RETURN 1; END IF;
             INSERT INTO smsotp_sends (at, name, host) VALUES (p_at, p_name, p_host);
             DELETE FROM smsotp_sends WHERE at <= p_at - 2 * 86400;
             RETURN 0;
         END $$;",
    ),
];

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
            let tls = tls_config("store", ca, cfg.client_cert.as_ref())?;
            pg.connect(tokio_postgres_rustls::MakeRustlsConnect::new(tls)).map_err(|e| describe(&e))
        }
        None => pg.connect(postgres::NoTls).map_err(|e| describe(&e)),
    }
}

/// TLS that trusts only the CA in `ca`, with a client certificate when
/// given; errors name the keys of the config's `section` they come from.
pub(crate) fn tls_config(
    section: &str,
    ca: &std::path::Path,
    client: Option<&(std::path::PathBuf, std::path::PathBuf)>,
) -> Result<rustls::ClientConfig, String> {
    let key = format!("{section}.ca_file");
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
                .map_err(|e| format!("{section}.client_cert {}: {e}", cert.display()))?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| format!("{section}.client_key {}: {e}", key.display()))?;
            builder.with_client_auth_cert(chain, key).map_err(|e| format!("{section}.client_cert: {e}"))
        }
    }
}

/// The database's own words, which name the cause (no such role, refused).
pub(crate) fn describe(e: &postgres::Error) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_problems_say_what_to_run() {
        assert_eq!(schema_problem(SCHEMA_VERSION), None);
        assert!(schema_problem(0).unwrap().contains("run: smsotpctl db migrate"));
        assert!(schema_problem(SCHEMA_VERSION + 1).unwrap().contains("upgrade smsotp"));
        assert_eq!(MIGRATIONS.last().map(|(v, _)| *v), Some(SCHEMA_VERSION), "a migration for each version");
    }
}
