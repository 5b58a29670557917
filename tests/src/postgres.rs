//! A real PostgreSQL cluster for a test: initdb in a temporary directory,
//! run as the `postgres` user (Debian's postgresql package), listening on a
//! Unix socket there and on 127.0.0.1 with TLS only (a certificate from a CA
//! made for the test). The owner role `smsotp` gets in without a password;
//! the role [`CERT_ROLE`] by a client certificate over TLS; any other role
//! needs its password. Removed when dropped.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::tools::{require, run_checked};

/// The role pg_hba.conf lets in by a client certificate (no password).
pub const CERT_ROLE: &str = "web_cert";

pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
}

/// The newest server installed under /usr/lib/postgresql/VERSION/bin.
fn server_bin() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.filter_map(|e| e.ok()).map(|e| e.path().join("bin")).filter(|b| b.join("initdb").is_file()).collect()
        })
        .unwrap_or_default();
    versions.sort();
    versions.pop().unwrap_or_else(|| {
        panic!("PostgreSQL is not installed; install it with: apt-get install postgresql (or run tests/run.sh)")
    })
}

fn as_postgres(program: &Path) -> Command {
    let mut c = Command::new(require("runuser", "util-linux"));
    c.args(["-u", "postgres", "--"]).arg(program);
    c
}

impl Postgres {
    /// A new cluster with a database `smsotp` owned by the role `smsotp`.
    pub fn start() -> Postgres {
        let bin = server_bin();
        require("psql", "postgresql-client");
        let dir = tempfile::Builder::new().prefix("smsotp-pg.").tempdir().unwrap();
        let (uid, gid) = match nix::unistd::User::from_name("postgres").unwrap() {
            Some(u) => (u.uid, u.gid),
            None => panic!("there is no postgres user; install it with: apt-get install postgresql"),
        };
        nix::unistd::chown(dir.path(), Some(uid), Some(gid)).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let pg = Postgres { dir, bin, port };
        let mut init = as_postgres(&pg.bin.join("initdb"));
        init.args(["--auth=trust", "--no-sync", "--username=postgres", "-D"]).arg(pg.data());
        run_checked(init, "initdb", None);
        std::fs::write(
            pg.data().join("pg_hba.conf"),
            format!(
                "local all postgres,smsotp trust\nlocal all all scram-sha-256\n\
                 hostssl all postgres,smsotp 127.0.0.1/32 trust\nhostssl all {CERT_ROLE} 127.0.0.1/32 cert\n\
                 hostssl all all 127.0.0.1/32 scram-sha-256\n"
            ),
        )
        .unwrap();
        let tls = pg.dir.path().join("tls");
        std::fs::create_dir(&tls).unwrap();
        crate::tools::make_certificates(&tls);
        for name in ["", "server.key", "server.pem", "ca.pem"] {
            nix::unistd::chown(&tls.join(name), Some(uid), Some(gid)).unwrap();
        }
        pg.start_server();
        pg.psql_as("postgres", "postgres", "CREATE ROLE smsotp LOGIN");
        pg.psql_as("postgres", "postgres", "CREATE DATABASE smsotp OWNER smsotp");
        pg
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The socket's directory.
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    /// libpq-style, as `[store] connection` takes it.
    pub fn connection(&self) -> String {
        format!("host={} port={} dbname=smsotp user=smsotp", self.socket_dir().display(), self.port)
    }

    /// The same database over TCP (TLS required) as `user`.
    pub fn tls_connection(&self, user: &str) -> String {
        format!("host=localhost port={} dbname=smsotp user={user}", self.port)
    }

    /// The CA that signed the server's certificate (and that the server
    /// trusts for client certificates).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("tls/ca.pem")
    }

    /// A client certificate for `role` (its CN), signed by [`Self::ca_file`].
    pub fn client_certificate(&self, role: &str) -> (PathBuf, PathBuf) {
        crate::tools::make_client_certificate(&self.dir.path().join("tls"), role)
    }

    /// `[store]` for smsotpd.toml.
    pub fn store_table(&self, extra: &str) -> String {
        format!("[store]\nkind = \"postgresql\"\nconnection = \"{}\"\n{extra}\n", self.connection())
    }

    pub fn start_server(&self) {
        let mut c = as_postgres(&self.bin.join("pg_ctl"));
        c.arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.path().join("server.log"))
            .arg("-o")
            .arg(format!(
                "-k {dir} -c listen_addresses=127.0.0.1 -p {port} -c fsync=off -c ssl=on \
                 -c ssl_cert_file={dir}/tls/server.pem -c ssl_key_file={dir}/tls/server.key \
                 -c ssl_ca_file={dir}/tls/ca.pem",
                dir = self.socket_dir().display(),
                port = self.port
            ))
            .args(["-w", "start"]);
        run_checked(c, "pg_ctl start", None);
    }

    /// Stops the server at once, as a crash or a pulled cable would.
    pub fn kill_server(&self) {
        let mut c = as_postgres(&self.bin.join("pg_ctl"));
        c.arg("-D").arg(self.data()).args(["-m", "immediate", "-w", "stop"]);
        run_checked(c, "pg_ctl stop", None);
    }

    fn psql_as(&self, user: &str, db: &str, sql: &str) -> String {
        let mut c = Command::new(require("psql", "postgresql-client"));
        let port = self.port.to_string();
        c.arg("-h").arg(self.socket_dir()).args([
            "-p",
            &port,
            "-U",
            user,
            "-d",
            db,
            "-X",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ]);
        run_checked(c, &format!("psql -c {sql:?}"), None)
    }

    /// Runs `sql` in the smsotp database as the superuser (roles, grants).
    pub fn psql_superuser(&self, sql: &str) -> String {
        self.psql_as("postgres", "smsotp", sql)
    }

    /// Runs `sql` in the smsotp database as its owner; the rows, one per
    /// line, columns joined by '|'.
    pub fn psql(&self, sql: &str) -> String {
        self.psql_as("smsotp", "smsotp", sql)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let mut c = as_postgres(&self.bin.join("pg_ctl"));
        c.arg("-D").arg(self.data()).args(["-m", "immediate", "stop"]);
        let _ = c.output();
    }
}
