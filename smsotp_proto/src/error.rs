//! The interface's errors: `org.smsotp.SmsOtp1.Error.<Name>`, each with a
//! human-readable text. The XML documents when each is raised.

use zbus::DBusError;

#[derive(Debug, DBusError)]
#[zbus(prefix = "org.smsotp.SmsOtp1.Error")]
pub enum Error {
    /// Any other D-Bus error (the bus refused, the peer vanished, ...).
    #[zbus(error)]
    ZBus(zbus::Error),
    /// The caller is not root, or its identity could not be established.
    PermissionDenied(String),
    /// A user name, number or context entry is malformed.
    InvalidArgument(String),
    /// No such challenge (ended, expired, never existed).
    UnknownChallenge(String),
    /// Too many logins are pending, or a check is already under way.
    Busy(String),
    /// Too many codes went to this account in the last hour.
    RateLimited(String),
    /// The provider could not send the code.
    DeliveryFailed(String),
    /// The provider could not check a typed code (Verify).
    CheckFailed(String),
    /// The user's record cannot be read or written.
    StorageFailed(String),
    /// The shared store (PostgreSQL) cannot answer now; every login fails
    /// closed until it does.
    StoreUnavailable(String),
    /// The user has no enrolled number (admin methods only).
    NotEnrolled(String),
    /// A daemon bug or an exhausted resource.
    Internal(String),
}

impl Error {
    /// The part after `org.smsotp.SmsOtp1.Error.`, or None for transport
    /// errors. Exhaustive on purpose: a new variant must be named here.
    pub fn short_name(&self) -> Option<&'static str> {
        Some(match self {
            Error::ZBus(_) => return None,
            Error::PermissionDenied(_) => "PermissionDenied",
            Error::InvalidArgument(_) => "InvalidArgument",
            Error::UnknownChallenge(_) => "UnknownChallenge",
            Error::Busy(_) => "Busy",
            Error::RateLimited(_) => "RateLimited",
            Error::DeliveryFailed(_) => "DeliveryFailed",
            Error::CheckFailed(_) => "CheckFailed",
            Error::StorageFailed(_) => "StorageFailed",
            Error::StoreUnavailable(_) => "StoreUnavailable",
            Error::NotEnrolled(_) => "NotEnrolled",
            Error::Internal(_) => "Internal",
        })
    }

    /// One value of every named variant, for contract tests.
    pub fn every_named() -> Vec<Error> {
        let t = String::new;
        vec![
            Error::PermissionDenied(t()),
            Error::InvalidArgument(t()),
            Error::UnknownChallenge(t()),
            Error::Busy(t()),
            Error::RateLimited(t()),
            Error::DeliveryFailed(t()),
            Error::CheckFailed(t()),
            Error::StorageFailed(t()),
            Error::StoreUnavailable(t()),
            Error::NotEnrolled(t()),
            Error::Internal(t()),
        ]
    }

    /// The text that came with a named error ("" for transport errors).
    pub fn text(&self) -> &str {
        match self {
            Error::ZBus(_) => "",
            Error::PermissionDenied(t)
            | Error::InvalidArgument(t)
            | Error::UnknownChallenge(t)
            | Error::Busy(t)
            | Error::RateLimited(t)
            | Error::DeliveryFailed(t)
            | Error::CheckFailed(t)
            | Error::StorageFailed(t)
            | Error::StoreUnavailable(t)
            | Error::NotEnrolled(t)
            | Error::Internal(t) => t,
        }
    }

    /// The bus itself refused the call (its policy, not the daemon).
    pub fn is_bus_access_denied(&self) -> bool {
        matches!(self, Error::ZBus(zbus::Error::MethodError(name, _, _))
            if name.as_str() == "org.freedesktop.DBus.Error.AccessDenied")
    }

    /// Nobody owns the daemon's name (smsotpd is not running).
    pub fn is_no_daemon(&self) -> bool {
        matches!(self, Error::ZBus(zbus::Error::MethodError(name, _, _))
            if matches!(name.as_str(), "org.freedesktop.DBus.Error.ServiceUnknown"
                | "org.freedesktop.DBus.Error.NameHasNoOwner"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_interface_prefix() {
        for e in Error::every_named() {
            let short = e.short_name().unwrap_or_default();
            assert_eq!(e.name().as_str(), format!("org.smsotp.SmsOtp1.Error.{short}"));
        }
    }
}
