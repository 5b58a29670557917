//! Who may call: authorisation as a type.
//!
//! Every method of the interface is for root. A [`Root`] is the proof that
//! the transport established a uid-0 caller; only [`identify`] makes one
//! (tests aside), and every privileged operation of the daemon takes one,
//! so an operation that forgets the check does not compile. The bus policy
//! is the first gate; this is the second (fprintd: "the method handler
//! itself is required to check again").

use zbus::Connection;
use zbus::message::Header;

use crate::error::LoginError;

/// A caller the transport found to be uid 0, and the connection it used.
///
/// Nothing outside this module can make one:
/// ```compile_fail
/// let forged = smsotpd::authz::Root { connection: String::new() };
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    connection: String,
}

impl Root {
    /// The D-Bus unique name (or a p2p connection's stand-in) of the caller.
    pub fn connection(&self) -> &str {
        &self.connection
    }

    fn verified(uid: u32, connection: String) -> Result<Root, LoginError> {
        if uid == 0 {
            Ok(Root { connection })
        } else {
            tracing::warn!("refused a call from uid {uid} ({connection}): the interface is for root only");
            Err(LoginError::PermissionDenied("smsotpd answers root only".into()))
        }
    }

    /// A caller for unit tests of the operations.
    #[cfg(test)]
    pub(crate) fn for_tests(connection: &str) -> Root {
        Root { connection: connection.to_owned() }
    }
}

/// Any user, acting on their own account through `org.smsotp.User1`: the
/// account is the one the bus says the caller runs as, never an argument.
/// Only [`identify_user`] makes one (tests aside).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    uid: u32,
    user: crate::names::UserName,
}

impl Caller {
    pub fn uid(&self) -> u32 {
        self.uid
    }

    /// The caller's own login name, from the system's user database.
    pub fn user(&self) -> &crate::names::UserName {
        &self.user
    }

    fn from_uid(uid: u32) -> Result<Caller, LoginError> {
        let account = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)).ok().flatten();
        let Some(account) = account else {
            tracing::warn!("refused a call from uid {uid}: no such user in the user database");
            return Err(LoginError::PermissionDenied(format!("uid {uid} has no account on this system")));
        };
        let user = crate::names::UserName::parse(&account.name)
            .map_err(|e| LoginError::PermissionDenied(format!("the account name of uid {uid} cannot be used: {e}")))?;
        Ok(Caller { uid, user })
    }

    #[cfg(test)]
    pub(crate) fn for_tests(uid: u32, user: &str) -> Caller {
        Caller { uid, user: crate::names::UserName::parse(user).expect("a valid test name") }
    }
}

/// The calling user, as the bus reports its uid and the user database
/// names it. Any failure to find out is a refusal.
pub async fn identify_user(header: &Header<'_>, conn: &Connection) -> Result<Caller, LoginError> {
    let uid = caller_uid(header, conn).await?;
    tokio::task::spawn_blocking(move || Caller::from_uid(uid))
        .await
        .map_err(|e| LoginError::Internal(format!("looking up the caller: {e}")))?
}

/// The caller's uid as the bus (or, peer to peer, the kernel) reports it,
/// never from the arguments. Any failure to find out is a refusal, never a
/// default (CVE-2021-3560).
pub async fn identify(header: &Header<'_>, conn: &Connection) -> Result<Root, LoginError> {
    let connection = match header.sender() {
        Some(sender) => sender.to_string(),
        None => format!("p2p:{}", conn.server_guid()),
    };
    Root::verified(caller_uid(header, conn).await?, connection)
}

async fn caller_uid(header: &Header<'_>, conn: &Connection) -> Result<u32, LoginError> {
    let unknown = |why: String| {
        tracing::warn!("refused a call: {why}");
        LoginError::PermissionDenied("cannot establish the caller's identity".into())
    };
    match header.sender() {
        Some(sender) => {
            let dbus = zbus::fdo::DBusProxy::builder(conn)
                .cache_properties(zbus::proxy::CacheProperties::No)
                .build()
                .await
                .map_err(|e| unknown(e.to_string()))?;
            dbus.get_connection_unix_user(sender.clone().into()).await.map_err(|e| unknown(format!("{sender}: {e}")))
        }
        None => {
            let creds = conn.peer_creds().await.map_err(|e| unknown(e.to_string()))?;
            creds.unix_user_id().ok_or_else(|| unknown("peer without credentials".into()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_uid_0_is_root() {
        assert!(Root::verified(0, ":1.1".into()).is_ok());
        for uid in [1, 1000, 65534, u32::MAX] {
            assert!(matches!(Root::verified(uid, ":1.2".into()), Err(LoginError::PermissionDenied(_))), "{uid}");
        }
    }
}
