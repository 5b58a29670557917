//! How a client reaches the daemon's bus: pam_sms and smsotpctl connect the
//! same way. The bus turns connections away when too many arrive at once
//! (its stock limits: 64 not yet authenticated, 256 per uid, and every sshd
//! pre-auth child is root); nothing has been sent then, so asking again is
//! safe. The caller bounds the waiting (its own timeout). Any other error,
//! such as no bus at that path, ends it at once.

use std::time::Duration;

/// A connection to `address`, asked for again (1 ms doubling to 100 ms,
/// jittered) while the bus turns it away for load.
pub async fn connect_patiently(address: &str, method_timeout: Option<Duration>) -> zbus::Result<zbus::Connection> {
    let mut pause = Duration::from_millis(1);
    loop {
        let mut builder = zbus::connection::Builder::address(address)?;
        if let Some(t) = method_timeout {
            builder = builder.method_timeout(t);
        }
        match builder.build().await {
            Err(e) if turned_away(&e) => {
                // Spread the retries of clients turned away together.
                let jitter = std::hash::BuildHasher::hash_one(&std::collections::hash_map::RandomState::new(), 0u8);
                back_off(pause + pause.mul_f64((jitter % 1000) as f64 / 1000.0)).await;
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            other => return other,
        }
    }
}

/// Whether the bus refused or dropped a connection for load, not because
/// nothing listens there.
pub fn turned_away(e: &zbus::Error) -> bool {
    use std::io::ErrorKind as K;
    match e {
        zbus::Error::MethodError(name, _, _) => name.as_str() == "org.freedesktop.DBus.Error.LimitsExceeded",
        zbus::Error::FDO(e) => matches!(**e, zbus::fdo::Error::LimitsExceeded(_)),
        zbus::Error::InputOutput(io) => matches!(
            io.kind(),
            K::WouldBlock | K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe | K::UnexpectedEof
        ),
        zbus::Error::Handshake(_) => true,
        _ => false,
    }
}

#[allow(clippy::disallowed_methods)] // the clients' edge: a pause between attempts
async fn back_off(pause: Duration) {
    tokio::time::sleep(pause).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn load_is_told_from_absence() {
        let io = |k: std::io::ErrorKind| zbus::Error::InputOutput(Arc::new(std::io::Error::from(k)));
        let limits = zbus::Error::FDO(Box::new(zbus::fdo::Error::LimitsExceeded("256 per uid".into())));
        assert!(turned_away(&limits));
        assert!(turned_away(&io(std::io::ErrorKind::ConnectionReset)));
        assert!(turned_away(&io(std::io::ErrorKind::WouldBlock)), "a full listen queue");
        assert!(!turned_away(&io(std::io::ErrorKind::NotFound)), "no bus at that path");
        assert!(!turned_away(&io(std::io::ErrorKind::PermissionDenied)));
        let denied = zbus::Error::FDO(Box::new(zbus::fdo::Error::AccessDenied("policy".into())));
        assert!(!turned_away(&denied));
    }
}
