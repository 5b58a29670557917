//! The one place where internal errors become D-Bus errors.
//!
//! Every variant is documented in etc/dbus-1/org.smsotp.SmsOtp1.xml; the
//! names are part of the interface contract.

use zbus::DBusError;

use crate::login::LoginError;

#[derive(Debug, DBusError)]
#[zbus(prefix = "org.smsotp.SmsOtp1.Error")]
pub enum SmsOtpError {
    #[zbus(error)]
    ZBus(zbus::Error),
    /// The caller is not allowed to call this method.
    PermissionDenied(String),
    /// An argument is malformed (user name, number, context).
    InvalidArgument(String),
    /// The challenge does not exist, has ended, or belongs to another connection.
    UnknownChallenge(String),
    /// Too many logins are pending.
    Busy(String),
    /// Too many codes went to this account recently.
    RateLimited(String),
    /// The provider could not deliver or check the code.
    DeliveryFailed(String),
    /// The user's record cannot be read or written.
    StorageFailed(String),
    /// The user is not enrolled.
    NotEnrolled(String),
    /// A daemon bug or an exhausted resource.
    Internal(String),
}

impl From<LoginError> for SmsOtpError {
    fn from(e: LoginError) -> Self {
        let text = e.to_string();
        match e {
            LoginError::PermissionDenied(_) => SmsOtpError::PermissionDenied(text),
            LoginError::InvalidArgument(_) => SmsOtpError::InvalidArgument(text),
            LoginError::UnknownChallenge => SmsOtpError::UnknownChallenge(text),
            LoginError::Busy => SmsOtpError::Busy(text),
            LoginError::RateLimited => SmsOtpError::RateLimited(text),
            LoginError::DeliveryFailed(_) => SmsOtpError::DeliveryFailed(text),
            LoginError::Storage(_) => SmsOtpError::StorageFailed(text),
            LoginError::NotEnrolled(_) => SmsOtpError::NotEnrolled(text),
            LoginError::Internal(_) => SmsOtpError::Internal(text),
        }
    }
}

/// The error names, for the interface test to compare with the XML.
pub const ERROR_NAMES: &[&str] = &[
    "PermissionDenied",
    "InvalidArgument",
    "UnknownChallenge",
    "Busy",
    "RateLimited",
    "DeliveryFailed",
    "StorageFailed",
    "NotEnrolled",
    "Internal",
];
