//! A real OpenLDAP slapd for a test: a temporary slapd.conf and database,
//! a certificate from a CA made for the test (openssl) for StartTLS and
//! ldaps (client certificates from the same CA are asked for), ldapi on a
//! socket in its directory, a suffix dc=example,dc=org with ou=people.
//! Stopped when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::tools::{require, run_checked, wait_for};

pub const BASE: &str = "ou=people,dc=example,dc=org";
pub const ADMIN: &str = "cn=admin,dc=example,dc=org";
pub const ADMIN_PASSWORD: &str = "test-admin-password";

pub struct Slapd {
    dir: tempfile::TempDir,
    port: u16,
    ldaps_port: u16,
    child: Option<Child>,
}

/// Which of slapd's listeners a daemon's `[ldap]` uses.
#[derive(Clone, Copy, Debug)]
pub enum Listener {
    /// ldap:// with StartTLS.
    StartTls,
    Ldaps,
    /// The Unix socket (no TLS; SASL EXTERNAL is the caller's uid).
    Ldapi,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Slapd {
    /// A directory with one person per (uid, mobile); None: no mobile.
    pub fn start(people: &[(&str, Option<&str>)]) -> Slapd {
        Slapd::start_with_acl(people, "")
    }

    /// The same with slapd.conf `access` lines (default: all may read).
    pub fn start_with_acl(people: &[(&str, Option<&str>)], acl: &str) -> Slapd {
        let slapd = require("slapd", "slapd");
        require("ldapadd", "ldap-utils");
        let dir = crate::tools::private_tempdir();
        let d = dir.path();
        crate::tools::make_certificates(d);
        std::fs::create_dir(d.join("db")).unwrap();
        let conf = format!(
            "include /etc/ldap/schema/core.schema\ninclude /etc/ldap/schema/cosine.schema\n\
             include /etc/ldap/schema/nis.schema\ninclude /etc/ldap/schema/inetorgperson.schema\n\
             pidfile {d}/slapd.pid\nmodulepath /usr/lib/ldap\nmoduleload back_mdb\n\
             TLSCACertificateFile {d}/ca.pem\nTLSCertificateFile {d}/server.pem\nTLSCertificateKeyFile {d}/server.key\n\
             TLSVerifyClient try\n\
             database mdb\nsuffix \"dc=example,dc=org\"\nrootdn \"{ADMIN}\"\nrootpw {ADMIN_PASSWORD}\ndirectory {d}/db\n{acl}\n",
            d = d.display()
        );
        std::fs::write(d.join("slapd.conf"), conf).unwrap();
        let mut s = Slapd { port: free_port(), ldaps_port: free_port(), dir, child: None };
        s.spawn(&slapd);
        let mut ldif = format!(
            "dn: dc=example,dc=org\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n\n\
             dn: {BASE}\nobjectClass: organizationalUnit\nou: people\n\n"
        );
        for (uid, mobile) in people {
            ldif.push_str(&format!(
                "dn: uid={uid},{BASE}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\nsn: {uid}\n"
            ));
            if let Some(m) = mobile {
                ldif.push_str(&format!("mobile: {m}\n"));
            }
            ldif.push('\n');
        }
        s.modify("ldapadd", &ldif);
        s
    }

    fn spawn(&mut self, slapd: &Path) {
        let child = Command::new(slapd)
            .arg("-f")
            .arg(self.dir.path().join("slapd.conf"))
            .arg("-h")
            .arg(format!("ldap://127.0.0.1:{}/ ldaps://127.0.0.1:{}/ {}", self.port, self.ldaps_port, self.ldapi_url()))
            .args(["-d", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.dir.path().join("slapd.log")).unwrap())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let (port, ldaps_port, socket) = (self.port, self.ldaps_port, self.dir.path().join("ldapi"));
        wait_for("slapd to listen", Duration::from_secs(20), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
                && std::net::TcpStream::connect(("127.0.0.1", ldaps_port)).is_ok()
                && std::os::unix::net::UnixStream::connect(&socket).is_ok()
        });
    }

    /// ldapi:// with the socket's path percent-encoded, as LDAP URLs have it.
    fn ldapi_url(&self) -> String {
        let path = self.dir.path().join("ldapi").display().to_string();
        format!("ldapi://{}", path.replace('%', "%25").replace('/', "%2F"))
    }

    /// A client certificate with common name `cn` from slapd's CA; slapd
    /// takes "cn=`cn`" as the identity of a SASL EXTERNAL bind over TLS.
    pub fn client_certificate(&self, cn: &str) -> (PathBuf, PathBuf) {
        crate::tools::make_client_certificate(self.dir.path(), cn)
    }

    /// The CA file that signed slapd's certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// `[ldap]` for smsotpd.toml (anonymous bind, StartTLS checked against
    /// the test's CA); the top level needs `phone_source = "ldap"`.
    pub fn config(&self, extra: &str) -> String {
        self.config_on(Listener::StartTls, extra)
    }

    /// `[ldap]` through `listener` (TLS checked against the test's CA).
    pub fn config_on(&self, listener: Listener, extra: &str) -> String {
        let ca = format!("ca_file = \"{}\"\n", self.ca_file().display());
        let reach = match listener {
            Listener::StartTls => format!("url = \"ldap://localhost:{}\"\nstarttls = true\n{ca}", self.port),
            Listener::Ldaps => format!("url = \"ldaps://localhost:{}\"\n{ca}", self.ldaps_port),
            Listener::Ldapi => format!("url = \"{}\"\n", self.ldapi_url()),
        };
        format!("[ldap]\n{reach}base = \"{BASE}\"\nfilter = \"(uid={{user}})\"\n{extra}\n")
    }

    /// Runs ldapadd/ldapmodify as the directory's administrator.
    pub fn modify(&self, program: &str, ldif: &str) {
        let mut c = Command::new(require(program, "ldap-utils"));
        c.args(["-x", "-H", &format!("ldap://127.0.0.1:{}", self.port), "-D", ADMIN, "-w", ADMIN_PASSWORD]);
        run_checked(c, program, Some(ldif));
    }

    /// Sets (Some) or removes (None) `uid`'s mobile.
    pub fn set_mobile(&self, uid: &str, mobile: Option<&str>) {
        let change = match mobile {
            Some(m) => format!("replace: mobile\nmobile: {m}\n"),
            None => "delete: mobile\n".to_owned(),
        };
        self.modify("ldapmodify", &format!("dn: uid={uid},{BASE}\nchangetype: modify\n{change}"));
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}
