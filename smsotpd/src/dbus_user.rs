//! The D-Bus face for users: `org.smsotp.User1`, on the same object as
//! org.smsotp.SmsOtp1. Any user may call it (the bus policy lets them); every
//! method acts on the caller's own account, which comes from the bus (the
//! caller's uid, named by the user database), never from an argument.

use zbus::message::Header;
use zbus::{Connection, interface};

use smsotp_proto::{AccountStatus, Error as SmsOtpError, Factor, Status, TrustRow};

use crate::authz::identify_user;
use crate::dbus::Current;

pub struct User {
    current: Current,
}

impl User {
    pub fn new(current: Current) -> Self {
        User { current }
    }
}

/// Numbers and codes are short; anything longer is cut, then refused.
fn short(s: &str) -> &str {
    smsotp_proto::truncate_bytes(s, 64)
}

#[interface(name = "org.smsotp.User1")]
impl User {
    #[zbus(out_args("status"))]
    async fn status(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<AccountStatus, SmsOtpError> {
        let caller = identify_user(&header, conn).await?;
        Ok(self.current.get().account_status(&caller)?)
    }

    #[zbus(out_args("destination"))]
    async fn change_number(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        number: String,
    ) -> Result<String, SmsOtpError> {
        let caller = identify_user(&header, conn).await?;
        Ok(self.current.get().change_number(&caller, short(&number)).await?)
    }

    #[zbus(out_args("status", "detail", "from"))]
    async fn confirm_number(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        code: String,
    ) -> Result<(Status, u32, u64), SmsOtpError> {
        let caller = identify_user(&header, conn).await?;
        let code = zeroize::Zeroizing::new(code);
        Ok(self.current.get().confirm_number(&caller, short(&code)).await?)
    }

    #[zbus(out_args("secret", "uri"))]
    async fn add_app(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(String, String), SmsOtpError> {
        let caller = identify_user(&header, conn).await?;
        let (secret, uri) = self.current.get().add_app(&caller)?;
        Ok((secret.to_string(), uri.to_string()))
    }

    #[zbus(out_args("status", "detail"))]
    async fn confirm_app(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        code: String,
    ) -> Result<(Status, u32), SmsOtpError> {
        let caller = identify_user(&header, conn).await?;
        let code = zeroize::Zeroizing::new(code);
        Ok(self.current.get().confirm_app(&caller, short(&code)).await?)
    }

    #[zbus(out_args("codes"))]
    async fn new_recovery_codes(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<Vec<String>, SmsOtpError> {
        let caller = identify_user(&header, conn).await?;
        let codes = self.current.get().new_recovery_codes(&caller).await?;
        Ok(codes.iter().map(|c| c.to_string()).collect())
    }

    async fn set_default_factor(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        factor: Factor,
    ) -> Result<(), SmsOtpError> {
        let caller = identify_user(&header, conn).await?;
        Ok(self.current.get().set_default_factor(&caller, factor).await?)
    }

    #[zbus(out_args("records"))]
    async fn list_trust(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<Vec<TrustRow>, SmsOtpError> {
        let caller = identify_user(&header, conn).await?;
        Ok(self.current.get().my_trust(&caller)?)
    }

    #[zbus(out_args("revoked"))]
    async fn revoke_trust(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        machine: String,
    ) -> Result<u32, SmsOtpError> {
        let caller = identify_user(&header, conn).await?;
        Ok(self.current.get().revoke_my_trust(&caller, &machine).await?)
    }
}
