//! The D-Bus face of the daemon: `org.smsotp.SmsOtp1`.
//!
//! Thin on purpose: establish who is calling (authz.rs, from the bus, never
//! from the arguments), hand over to [`Daemon`], let `?` convert the answer
//! (error.rs is the one place internal errors become wire errors).
//! The contract is etc/dbus-1/org.smsotp.SmsOtp1.xml.

use std::collections::HashMap;
use std::sync::Arc;

use zbus::message::Header;
use zbus::{Connection, interface};

use smsotp_proto::context_key as key;
use smsotp_proto::limits;
use smsotp_proto::{
    Action, Error as SmsOtpError, ExplainLine, Factor, FactorsRow, LoginContext, Status, TrustRow, UserRow,
};

use crate::authz::identify;
use crate::daemon::Daemon;
use crate::error::LoginError;
use crate::provider::AnyProvider;

pub struct SmsOtp {
    current: Current,
}

impl SmsOtp {
    pub fn new(current: Current) -> Self {
        SmsOtp { current }
    }

    fn daemon(&self) -> Arc<Daemon<AnyProvider>> {
        self.current.get()
    }
}

/// The daemon the interface serves now; a reload puts in a new one
/// (server.rs) while calls already running finish on the old.
#[derive(Clone)]
pub struct Current(Arc<std::sync::RwLock<Arc<Daemon<AnyProvider>>>>);

impl Current {
    pub fn new(daemon: Arc<Daemon<AnyProvider>>) -> Self {
        Current(Arc::new(std::sync::RwLock::new(daemon)))
    }

    pub fn get(&self) -> Arc<Daemon<AnyProvider>> {
        match self.0.read() {
            Ok(d) => d.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn replace(&self, daemon: Arc<Daemon<AnyProvider>>) {
        match self.0.write() {
            Ok(mut d) => *d = daemon,
            Err(poisoned) => *poisoned.into_inner() = daemon,
        }
    }
}

/// Reads the `a{ss}` the module sends. Unknown keys are ignored so a
/// newer module works with an older daemon; sizes are capped.
fn login_context(map: &HashMap<String, String>) -> Result<LoginContext, LoginError> {
    if map.len() > limits::CONTEXT_ENTRIES {
        return Err(LoginError::InvalidArgument("too many context entries".into()));
    }
    let get = |key: &str, max: usize| -> Result<String, LoginError> {
        match map.get(key) {
            Some(v) if v.len() > max => {
                Err(LoginError::InvalidArgument(format!("context {key} is longer than {max} bytes")))
            }
            Some(v) => Ok(v.clone()),
            None => Ok(String::new()),
        }
    };
    Ok(LoginContext {
        service: get(key::SERVICE, limits::SERVICE)?,
        rhost: get(key::RHOST, limits::RHOST)?,
        tty: get(key::TTY, limits::TTY)?,
        auth_info: get(key::AUTH_INFO, limits::AUTH_INFO)?,
    })
}

/// A user name as the daemon keeps it: no valid name is longer than
/// [`limits::USER`] bytes, so a longer one is an unknown user, kept as a
/// short stand-in (never valid, stable per name) so that it costs no more
/// memory than any other and gets the same answers.
fn bounded_user(user: &str) -> String {
    if user.len() <= limits::USER {
        return user.to_owned();
    }
    use sha2::Digest;
    let digest = sha2::Sha256::digest(user.as_bytes());
    format!("too-long:{}", hex::encode(&digest[..16]))
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
    ) -> Result<(Action, String, String), SmsOtpError> {
        let root = identify(&header, conn).await?;
        let ctx = login_context(&context)?;
        let s = self.daemon().start_login(&root, &bounded_user(&user), &ctx).await?;
        Ok((s.action, s.challenge, s.destination))
    }

    #[zbus(out_args("action", "challenge", "destination", "factors", "remind"))]
    async fn start_sign_in(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        user: String,
        context: HashMap<String, String>,
    ) -> Result<(Action, String, String, Vec<Factor>, bool), SmsOtpError> {
        let root = identify(&header, conn).await?;
        let ctx = login_context(&context)?;
        let s = self.daemon().start_sign_in(&root, &bounded_user(&user), &ctx).await?;
        Ok((s.action, s.challenge, s.destination, s.factors, s.remind))
    }

    #[zbus(out_args("status", "detail", "destination"))]
    async fn use_factor(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        challenge: String,
        factor: Factor,
    ) -> Result<(Status, u32, String), SmsOtpError> {
        let root = identify(&header, conn).await?;
        let (a, destination) = self.daemon().use_factor(&root, &challenge, factor).await?;
        Ok((a.status, a.attempts_left, destination))
    }

    #[zbus(out_args("status", "detail"))]
    async fn check_code(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        challenge: String,
        code: String,
    ) -> Result<(Status, u32), SmsOtpError> {
        let root = identify(&header, conn).await?;
        let code = zeroize::Zeroizing::new(code);
        let a = self.daemon().check_code(&root, &challenge, &code).await?;
        Ok((a.status, a.attempts_left))
    }

    #[zbus(out_args("status", "detail"))]
    async fn resend(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        challenge: String,
    ) -> Result<(Status, u32), SmsOtpError> {
        let root = identify(&header, conn).await?;
        let a = self.daemon().resend(&root, &challenge).await?;
        Ok((a.status, a.attempts_left))
    }

    async fn cancel(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        challenge: String,
    ) -> Result<(), SmsOtpError> {
        let root = identify(&header, conn).await?;
        Ok(self.daemon().cancel(&root, &challenge)?)
    }

    #[zbus(out_args("destination"))]
    async fn enroll(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        user: String,
        number: String,
    ) -> Result<String, SmsOtpError> {
        let root = identify(&header, conn).await?;
        Ok(self.daemon().enroll(&root, &user, &number).await?)
    }

    async fn unenroll(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        user: String,
    ) -> Result<(), SmsOtpError> {
        let root = identify(&header, conn).await?;
        Ok(self.daemon().unenroll(&root, &user)?)
    }

    #[zbus(out_args("users"))]
    async fn list_users(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<Vec<UserRow>, SmsOtpError> {
        let root = identify(&header, conn).await?;
        Ok(self.daemon().list(&root)?)
    }

    #[zbus(out_args("user_info"))]
    async fn show_user(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        user: String,
    ) -> Result<UserRow, SmsOtpError> {
        let root = identify(&header, conn).await?;
        Ok(self.daemon().show(&root, &user)?)
    }

    async fn unlock(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        user: String,
    ) -> Result<(), SmsOtpError> {
        let root = identify(&header, conn).await?;
        Ok(self.daemon().unlock(&root, &user)?)
    }

    #[zbus(out_args("destination"))]
    async fn enroll_number(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        challenge: String,
        number: String,
    ) -> Result<String, SmsOtpError> {
        let root = identify(&header, conn).await?;
        // A number is at most 15 digits; a few spaces and brackets more.
        let number = smsotp_proto::truncate_bytes(&number, 64);
        Ok(self.daemon().enroll_number(&root, &challenge, number).await?)
    }

    #[zbus(out_args("code", "until"))]
    async fn issue_bypass(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        user: String,
        minutes: u32,
    ) -> Result<(String, u64), SmsOtpError> {
        let root = identify(&header, conn).await?;
        let (code, until) = self.daemon().issue_bypass(&root, &bounded_user(&user), minutes)?;
        Ok((code.to_string(), until))
    }

    async fn trust_machine(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        challenge: String,
    ) -> Result<(), SmsOtpError> {
        let root = identify(&header, conn).await?;
        Ok(self.daemon().trust_machine(&root, &challenge).await?)
    }

    #[zbus(out_args("records"))]
    async fn list_trust(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        user: String,
    ) -> Result<Vec<TrustRow>, SmsOtpError> {
        let root = identify(&header, conn).await?;
        Ok(self.daemon().list_trust(&root, &user)?)
    }

    #[zbus(out_args("revoked"))]
    async fn revoke_trust(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        user: String,
        machine: String,
    ) -> Result<u32, SmsOtpError> {
        let root = identify(&header, conn).await?;
        Ok(self.daemon().revoke_trust(&root, &user, &machine).await?)
    }

    #[zbus(out_args("explanation"))]
    async fn explain(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        user: String,
        context: HashMap<String, String>,
    ) -> Result<Vec<ExplainLine>, SmsOtpError> {
        let root = identify(&header, conn).await?;
        let ctx = login_context(&context)?;
        Ok(self.daemon().explain(&root, &bounded_user(&user), &ctx)?)
    }

    #[zbus(out_args("factors"))]
    async fn show_factors(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        user: String,
    ) -> Result<FactorsRow, SmsOtpError> {
        let root = identify(&header, conn).await?;
        Ok(self.daemon().show_factors(&root, &user)?)
    }

    async fn reset_user(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        user: String,
    ) -> Result<(), SmsOtpError> {
        let root = identify(&header, conn).await?;
        Ok(self.daemon().reset_user(&root, &user).await?)
    }

    async fn approve(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        user: String,
    ) -> Result<(), SmsOtpError> {
        let root = identify(&header, conn).await?;
        Ok(self.daemon().approve(&root, &user).await?)
    }

    #[zbus(out_args("destination"))]
    async fn test_send(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        target: String,
    ) -> Result<String, SmsOtpError> {
        let root = identify(&header, conn).await?;
        Ok(self.daemon().test_send(&root, &target).await?)
    }
}
