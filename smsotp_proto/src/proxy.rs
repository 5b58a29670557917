//! The client side of the interface, used by pam_sms and smsotpctl.
//! Method by method it matches smsotpd's `#[interface]` (the contract test
//! compares both with the XML).

use std::collections::HashMap;

use zbus::proxy;

use crate::{AccountStatus, Action, Error, ExplainLine, Factor, FactorsRow, Status, TrustRow, UserRow};

#[proxy(
    interface = "org.smsotp.SmsOtp1",
    default_service = "org.smsotp.SmsOtp1",
    default_path = "/org/smsotp/SmsOtp1",
    gen_blocking = false
)]
pub trait SmsOtp1 {
    /// The daemon's version.
    #[zbus(property)]
    fn version(&self) -> zbus::Result<String>;

    /// Returns (action, challenge, destination, factors, remind).
    fn start_sign_in(
        &self,
        user: &str,
        context: HashMap<&str, &str>,
    ) -> Result<(Action, String, String, Vec<Factor>, bool), Error>;
    /// Returns (status, detail, destination).
    fn use_factor(&self, challenge: &str, factor: Factor) -> Result<(Status, u32, String), Error>;
    /// Returns (action, challenge, destination).
    fn start_login(&self, user: &str, context: HashMap<&str, &str>) -> Result<(Action, String, String), Error>;
    /// Returns (status, detail).
    fn check_code(&self, challenge: &str, code: &str) -> Result<(Status, u32), Error>;
    /// Returns the masked number the enrollment code went to.
    fn enroll_number(&self, challenge: &str, number: &str) -> Result<String, Error>;
    /// Returns (status, detail).
    fn resend(&self, challenge: &str) -> Result<(Status, u32), Error>;
    fn cancel(&self, challenge: &str) -> Result<(), Error>;
    fn trust_machine(&self, challenge: &str) -> Result<(), Error>;
    /// Returns the masked number.
    fn enroll(&self, user: &str, number: &str) -> Result<String, Error>;
    fn unenroll(&self, user: &str) -> Result<(), Error>;
    fn list_users(&self) -> Result<Vec<UserRow>, Error>;
    fn show_user(&self, user: &str) -> Result<UserRow, Error>;
    fn unlock(&self, user: &str) -> Result<(), Error>;
    /// Returns the code (shown once) and its expiry in Unix seconds.
    fn issue_bypass(&self, user: &str, minutes: u32) -> Result<(String, u64), Error>;
    fn list_trust(&self, user: &str) -> Result<Vec<TrustRow>, Error>;
    fn revoke_trust(&self, user: &str, machine: &str) -> Result<u32, Error>;
    fn explain(&self, user: &str, context: HashMap<&str, &str>) -> Result<Vec<ExplainLine>, Error>;
    /// Returns the masked number.
    fn test_send(&self, target: &str) -> Result<String, Error>;
    fn show_factors(&self, user: &str) -> Result<FactorsRow, Error>;
    fn reset_user(&self, user: &str) -> Result<(), Error>;
    fn approve(&self, user: &str) -> Result<(), Error>;
}

/// The caller's own account: `smsotp`, the users' command.
#[proxy(
    interface = "org.smsotp.User1",
    default_service = "org.smsotp.SmsOtp1",
    default_path = "/org/smsotp/SmsOtp1",
    gen_blocking = false
)]
pub trait User1 {
    fn status(&self) -> Result<AccountStatus, Error>;
    /// Returns the masked number the code went to.
    fn change_number(&self, number: &str) -> Result<String, Error>;
    /// Returns (status, detail, from).
    fn confirm_number(&self, code: &str) -> Result<(Status, u32, u64), Error>;
    /// Returns (secret, uri).
    fn add_app(&self) -> Result<(String, String), Error>;
    /// Returns (status, detail).
    fn confirm_app(&self, code: &str) -> Result<(Status, u32), Error>;
    fn new_recovery_codes(&self) -> Result<Vec<String>, Error>;
    fn set_default_factor(&self, factor: Factor) -> Result<(), Error>;
    fn list_trust(&self) -> Result<Vec<TrustRow>, Error>;
    fn revoke_trust(&self, machine: &str) -> Result<u32, Error>;
}
