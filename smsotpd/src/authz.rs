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

/// The caller's uid as the bus (or, peer to peer, the kernel) reports it,
/// never from the arguments. Any failure to find out is a refusal, never a
/// default (CVE-2021-3560).
pub async fn identify(header: &Header<'_>, conn: &Connection) -> Result<Root, LoginError> {
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
            let uid = dbus
                .get_connection_unix_user(sender.clone().into())
                .await
                .map_err(|e| unknown(format!("{sender}: {e}")))?;
            Root::verified(uid, sender.to_string())
        }
        None => {
            let creds = conn.peer_creds().await.map_err(|e| unknown(e.to_string()))?;
            let uid = creds.unix_user_id().ok_or_else(|| unknown("peer without credentials".into()))?;
            Root::verified(uid, format!("p2p:{}", conn.server_guid()))
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
