//! The D-Bus face of the daemon: `org.smsotp.SmsOtp1`.
//!
//! Thin on purpose: establish who is calling (from the bus, never from the
//! arguments), hand over to [`crate::login::Daemon`], convert the answer.
//! The contract is etc/dbus-1/org.smsotp.SmsOtp1.xml.

use std::collections::HashMap;
use std::sync::Arc;

use zbus::message::Header;
use zbus::{Connection, interface};

use crate::error::SmsOtpError;
use crate::login::{Caller, Daemon, LoginContext, UserInfo};
use crate::provider::AnyProvider;

pub const BUS_NAME: &str = "org.smsotp.SmsOtp1";
pub const OBJECT_PATH: &str = "/org/smsotp/SmsOtp1";
pub const SYSTEM_BUS_ADDRESS: &str = "unix:path=/run/dbus/system_bus_socket";

pub struct SmsOtp {
    daemon: Arc<Daemon<AnyProvider>>,
}

impl SmsOtp {
    pub fn new(daemon: Arc<Daemon<AnyProvider>>) -> Self {
        SmsOtp { daemon }
    }
}

/// The caller's uid as the bus (or, peer to peer, the kernel) reports it.
/// Any failure to find out is a refusal, never a default (CVE-2021-3560).
pub async fn identify(header: &Header<'_>, conn: &Connection) -> Result<Caller, SmsOtpError> {
    let denied = |why: String| {
        log::warn!("refused a call: {why}");
        SmsOtpError::PermissionDenied("cannot establish the caller's identity".into())
    };
    match header.sender() {
        Some(sender) => {
            let dbus = zbus::fdo::DBusProxy::builder(conn)
                .cache_properties(zbus::proxy::CacheProperties::No)
                .build()
                .await
                .map_err(|e| denied(e.to_string()))?;
            let uid = dbus
                .get_connection_unix_user(sender.clone().into())
                .await
                .map_err(|e| denied(format!("{sender}: {e}")))?;
            Ok(Caller { uid, connection: sender.to_string() })
        }
        None => {
            let creds = conn.peer_creds().await.map_err(|e| denied(e.to_string()))?;
            let uid = creds.unix_user_id().ok_or_else(|| denied("peer without credentials".into()))?;
            Ok(Caller { uid, connection: format!("p2p:{}", conn.server_guid()) })
        }
    }
}

type UserRow = (String, String, u32, u64, String, u32);

fn row(u: UserInfo) -> UserRow {
    (u.user, u.destination, u.failures, u.locked_until, u.state, u.trusted_machines)
}

#[interface(name = "org.smsotp.SmsOtp1")]
impl SmsOtp {
    /// The daemon's version.
    #[zbus(property)]
    fn version(&self) -> String {
        env!("CARGO_PKG_VERSION").to_owned()
    }

    #[zbus(out_args("action", "challenge", "destination"))]
    async fn start_login(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        user: String,
        context: HashMap<String, String>,
    ) -> Result<(String, String, String), SmsOtpError> {
        let caller = identify(&header, conn).await?;
        caller.require_root("StartLogin")?;
        let ctx = LoginContext::from_wire(&context)?;
        let s = self.daemon.start_login(&caller, &user, &ctx).await?;
        Ok((s.action.wire().to_owned(), s.challenge, s.destination))
    }

    #[zbus(out_args("status", "detail"))]
    async fn check_code(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        challenge: String,
        code: String,
    ) -> Result<(String, u32), SmsOtpError> {
        let caller = identify(&header, conn).await?;
        let code = zeroize::Zeroizing::new(code);
        let a = self.daemon.check_code(&caller, &challenge, &code).await?;
        Ok((a.status.wire().to_owned(), a.attempts_left))
    }

    #[zbus(out_args("status", "detail"))]
    async fn resend(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        challenge: String,
    ) -> Result<(String, u32), SmsOtpError> {
        let caller = identify(&header, conn).await?;
        let a = self.daemon.resend(&caller, &challenge).await?;
        Ok((a.status.wire().to_owned(), a.attempts_left))
    }

    async fn cancel(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        challenge: String,
    ) -> Result<(), SmsOtpError> {
        let caller = identify(&header, conn).await?;
        Ok(self.daemon.cancel(&caller, &challenge)?)
    }

    #[zbus(out_args("destination"))]
    async fn enroll(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        user: String,
        number: String,
    ) -> Result<String, SmsOtpError> {
        let caller = identify(&header, conn).await?;
        Ok(self.daemon.enroll(&caller, &user, &number)?)
    }

    async fn unenroll(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        user: String,
    ) -> Result<(), SmsOtpError> {
        let caller = identify(&header, conn).await?;
        Ok(self.daemon.unenroll(&caller, &user)?)
    }

    #[zbus(out_args("users"))]
    async fn list_users(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<Vec<UserRow>, SmsOtpError> {
        let caller = identify(&header, conn).await?;
        Ok(self.daemon.list(&caller)?.into_iter().map(row).collect())
    }

    #[zbus(out_args("user_info"))]
    async fn show_user(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        user: String,
    ) -> Result<UserRow, SmsOtpError> {
        let caller = identify(&header, conn).await?;
        Ok(row(self.daemon.show(&caller, &user)?))
    }

    async fn unlock(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        user: String,
    ) -> Result<(), SmsOtpError> {
        let caller = identify(&header, conn).await?;
        Ok(self.daemon.unlock(&caller, &user)?)
    }

    async fn trust_machine(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        challenge: String,
    ) -> Result<(), SmsOtpError> {
        let caller = identify(&header, conn).await?;
        Ok(self.daemon.trust_machine(&caller, &challenge)?)
    }

    #[zbus(out_args("records"))]
    async fn list_trust(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        user: String,
    ) -> Result<Vec<(String, String, String, u64, u64)>, SmsOtpError> {
        let caller = identify(&header, conn).await?;
        Ok(self
            .daemon
            .list_trust(&caller, &user)?
            .into_iter()
            .map(|t| (t.machine, t.class, t.service, t.created, t.expires))
            .collect())
    }

    #[zbus(out_args("revoked"))]
    async fn revoke_trust(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        user: String,
        machine: String,
    ) -> Result<u32, SmsOtpError> {
        let caller = identify(&header, conn).await?;
        Ok(self.daemon.revoke_trust(&caller, &user, &machine)?)
    }

    #[zbus(out_args("explanation"))]
    async fn explain(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        user: String,
        context: HashMap<String, String>,
    ) -> Result<Vec<(String, String)>, SmsOtpError> {
        let caller = identify(&header, conn).await?;
        let ctx = LoginContext::from_wire(&context)?;
        Ok(self.daemon.explain(&caller, &user, &ctx)?)
    }

    #[zbus(out_args("destination"))]
    async fn test_send(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        target: String,
    ) -> Result<String, SmsOtpError> {
        let caller = identify(&header, conn).await?;
        Ok(self.daemon.test_send(&caller, &target).await?)
    }
}

/// Drops the pending logins of connections that leave the bus (sshd kills
/// its PAM child when the client goes away).
pub async fn watch_departures(conn: Connection, daemon: Arc<Daemon<AnyProvider>>) {
    use futures_lite::StreamExt;
    let Ok(dbus) = zbus::fdo::DBusProxy::new(&conn).await else {
        log::warn!("cannot watch for departing connections; pending logins will expire instead");
        return;
    };
    let Ok(mut changes) = dbus.receive_name_owner_changed().await else {
        log::warn!("cannot watch for departing connections; pending logins will expire instead");
        return;
    };
    while let Some(signal) = changes.next().await {
        let Ok(args) = signal.args() else { continue };
        if args.new_owner().is_none() && args.name().starts_with(':') {
            let n = daemon.connection_closed(args.name());
            if n > 0 {
                log::info!("{} left with {n} pending login(s); dropped", args.name());
            }
        }
    }
}
