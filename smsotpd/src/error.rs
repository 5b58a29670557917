//! Internal failures, and the one place where they become D-Bus errors.
//!
//! Every D-Bus error name is part of the contract (smsotp_proto::Error,
//! documented in etc/dbus-1/org.smsotp.SmsOtp1.xml).

use smsotp_proto::Error as WireError;

/// Internal failures; `error.rs` turns them into D-Bus errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginError {
    PermissionDenied(String),
    InvalidArgument(String),
    UnknownChallenge,
    Busy,
    RateLimited,
    DeliveryFailed(String),
    /// The provider could not check a typed code (Verify).
    CheckFailed(String),
    /// The user's record cannot be read or written: no login for them.
    Storage(String),
    /// The shared store cannot answer now: no login for anyone.
    StoreUnavailable(String),
    NotEnrolled(String),
    Internal(String),
}

impl std::fmt::Display for LoginError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoginError::PermissionDenied(s) => write!(f, "permission denied: {s}"),
            LoginError::InvalidArgument(s) => write!(f, "invalid argument: {s}"),
            LoginError::UnknownChallenge => f.write_str("no such challenge (it ended, expired or never existed)"),
            LoginError::Busy => f.write_str("too many logins are pending; try again shortly"),
            LoginError::RateLimited => f.write_str("too many codes were sent to this account recently"),
            LoginError::DeliveryFailed(s) => write!(f, "the code could not be sent: {s}"),
            LoginError::CheckFailed(s) => write!(f, "the code could not be checked: {s}"),
            LoginError::Storage(s) => write!(f, "state storage failed: {s}"),
            LoginError::StoreUnavailable(s) => write!(f, "{s}"),
            LoginError::NotEnrolled(u) => write!(f, "{u} is not enrolled"),
            LoginError::Internal(s) => write!(f, "internal error: {s}"),
        }
    }
}

/// A database that cannot answer is everyone's problem (no login until it
/// is back); anything else concerns the one record.
impl From<crate::store::StoreError> for LoginError {
    fn from(e: crate::store::StoreError) -> Self {
        use crate::store::StoreError as S;
        match e {
            S::Unavailable(_) | S::Schema(_) | S::Conflict { .. } => LoginError::StoreUnavailable(e.to_string()),
            S::Corrupt { .. } | S::Io { .. } => LoginError::Storage(e.to_string()),
        }
    }
}

impl From<LoginError> for WireError {
    fn from(e: LoginError) -> Self {
        let text = e.to_string();
        match e {
            LoginError::PermissionDenied(_) => WireError::PermissionDenied(text),
            LoginError::InvalidArgument(_) => WireError::InvalidArgument(text),
            LoginError::UnknownChallenge => WireError::UnknownChallenge(text),
            LoginError::Busy => WireError::Busy(text),
            LoginError::RateLimited => WireError::RateLimited(text),
            LoginError::DeliveryFailed(_) => WireError::DeliveryFailed(text),
            LoginError::CheckFailed(_) => WireError::CheckFailed(text),
            LoginError::Storage(_) => WireError::StorageFailed(text),
            LoginError::StoreUnavailable(_) => WireError::StoreUnavailable(text),
            LoginError::NotEnrolled(_) => WireError::NotEnrolled(text),
            LoginError::Internal(_) => WireError::Internal(text),
        }
    }
}
