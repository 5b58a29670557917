//! The D-Bus client for smsotpd.
//!
//! Each call connects, makes the call and disconnects: nothing is held while
//! the person types, so a thousand people at the code prompt hold no bus
//! connection (the system bus allows 256 per uid, and every sshd pre-auth
//! child is root). The daemon finds the login by its challenge id. The first
//! call of a login checks who owns the daemon's name and goes to that
//! verified unique name; later calls go to the same unique name without
//! asking again (the bus never gives a unique name to another connection,
//! so a restarted or replaced daemon is simply not there: the call fails).
//!
//! A current-thread tokio runtime lives exactly as long as one PAM call, so
//! no thread or task outlives the login (sshd forks PAM children; login
//! execs a shell). The bus address is fixed or from the `bus=` argument,
//! never from the environment. Before trusting any answer, the owner of the
//! daemon's name must be uid 0 (or `daemon_user`).

use std::future::Future;
use std::time::Duration;

use smsotp_proto::{BUS_NAME, Error as DaemonError, Factor, LoginContext, SmsOtp1Proxy};
use zbus::names::{BusName, OwnedUniqueName};

use crate::flow::{Answer, ClientError, Daemon, Start};
use crate::options::Options;

pub struct DbusDaemon {
    runtime: Option<tokio::runtime::Runtime>,
    bus: String,
    timeout: Duration,
    allowed_uids: Vec<u32>,
    /// The daemon's unique name once a call of this login verified its uid.
    verified: Option<OwnedUniqueName>,
}

/// Where the daemon is and whom to believe, for one connection.
#[derive(Clone)]
struct Target {
    bus: String,
    timeout: Duration,
    allowed_uids: Vec<u32>,
    verified: Option<OwnedUniqueName>,
}

impl DbusDaemon {
    pub fn new(options: &Options) -> Result<Self, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start an event loop: {e}"))?;
        let mut allowed_uids = vec![0];
        if let Some(name) = &options.daemon_user {
            match nix::unistd::User::from_name(name) {
                Ok(Some(u)) => allowed_uids.push(u.uid.as_raw()),
                _ => return Err(format!("daemon_user={name}: no such user")),
            }
        }
        Ok(DbusDaemon {
            runtime: Some(runtime),
            bus: options.bus.clone(),
            timeout: options.timeout,
            allowed_uids,
            verified: None,
        })
    }

    /// Runs `f` to completion with the timeout. Inside an application that
    /// already runs tokio on this thread, a scoped thread keeps the two apart.
    fn block<T: Send>(&self, f: impl Future<Output = Result<T, ClientError>> + Send) -> Result<T, ClientError> {
        let Some(rt) = &self.runtime else {
            return Err(ClientError::Lost("the event loop is gone".into()));
        };
        let timeout = self.timeout;
        let run = move || {
            rt.block_on(async move {
                match tokio::time::timeout(timeout, f).await {
                    Ok(r) => r,
                    Err(_) => Err(ClientError::Lost(format!("no answer within timeout={}", timeout.as_secs()))),
                }
            })
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            std::thread::scope(|s| s.spawn(run).join())
                .unwrap_or_else(|_| Err(ClientError::Lost("the client thread failed".into())))
        } else {
            run()
        }
    }

    fn target(&self) -> Target {
        Target {
            bus: self.bus.clone(),
            timeout: self.timeout,
            allowed_uids: self.allowed_uids.clone(),
            verified: self.verified.clone(),
        }
    }

    /// One call on its own connection. A daemon that cannot be reached is
    /// `Unreachable` at the start of a login and `Lost` later (then no fail
    /// mode lets the login through).
    fn call<T: Send, F>(
        &mut self,
        method: &'static str,
        starting: bool,
        f: impl FnOnce(SmsOtp1Proxy<'static>) -> F + Send,
    ) -> Result<T, ClientError>
    where
        F: Future<Output = Result<T, DaemonError>> + Send,
    {
        let target = self.target();
        let (owner, result) = self.block(async move {
            let (conn, proxy, owner) = connect(&target).await.map_err(|e| match e {
                ClientError::Unreachable(why) if !starting => ClientError::Lost(why),
                other => other,
            })?;
            let result = f(proxy).await.map_err(|e| classify(method, e));
            drop(conn);
            Ok((owner, result))
        })?;
        self.verified = Some(owner);
        result
    }
}

/// Connects and returns a proxy bound to the daemon's unique name: the one
/// verified earlier in this login, or else the owner of the daemon's name
/// once its uid is checked, so a name that changes hands between the check
/// and the call cannot redirect it.
async fn connect(t: &Target) -> Result<(zbus::Connection, SmsOtp1Proxy<'static>, OwnedUniqueName), ClientError> {
    let bus = t.bus.as_str();
    let conn = smsotp_proto::connect_patiently(bus, Some(t.timeout))
        .await
        .map_err(|e| ClientError::Unreachable(format!("cannot connect to {bus}: {e}")))?;
    let owner = match &t.verified {
        Some(owner) => owner.clone(),
        None => verified_owner(&conn, t).await?,
    };
    let proxy = SmsOtp1Proxy::builder(&conn)
        .destination(owner.clone())
        .map_err(|e| ClientError::Unreachable(e.to_string()))?
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await
        .map_err(|e| ClientError::Unreachable(e.to_string()))?;
    Ok((conn, proxy, owner))
}

/// Who owns the daemon's name, if it is one of the uids we believe.
async fn verified_owner(conn: &zbus::Connection, t: &Target) -> Result<OwnedUniqueName, ClientError> {
    let dbus = zbus::fdo::DBusProxy::builder(conn)
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await
        .map_err(|e| ClientError::Unreachable(e.to_string()))?;
    let name = BusName::try_from(BUS_NAME).map_err(|e| ClientError::Unreachable(e.to_string()))?;
    let owner = dbus
        .get_name_owner(name)
        .await
        .map_err(|e| ClientError::Unreachable(format!("{BUS_NAME} has no owner: {e}")))?;
    let uid = dbus
        .get_connection_unix_user(owner.clone().into())
        .await
        .map_err(|e| ClientError::Unreachable(format!("cannot learn who owns {BUS_NAME}: {e}")))?;
    if !t.allowed_uids.contains(&uid) {
        return Err(ClientError::Impostor(format!("{BUS_NAME} is owned by {owner} with uid {uid}, not root")));
    }
    Ok(owner)
}

/// Sorts what went wrong: a named error of ours, the bus's own refusal, an
/// answer we cannot read (never a guess), or a lost connection.
fn classify(method: &str, e: DaemonError) -> ClientError {
    match e {
        DaemonError::ZBus(z) => match &z {
            zbus::Error::MethodError(name, text, _) if name.as_str() == "org.freedesktop.DBus.Error.AccessDenied" => {
                ClientError::Daemon(DaemonError::PermissionDenied(text.clone().unwrap_or_default()))
            }
            zbus::Error::Variant(_) | zbus::Error::InvalidReply | zbus::Error::InvalidField => {
                ClientError::Protocol(format!("unexpected {method} answer: {z}"))
            }
            _ => ClientError::Lost(format!("{method}: {z}")),
        },
        named => ClientError::Daemon(named),
    }
}

impl Daemon for DbusDaemon {
    fn start_login(&mut self, user: &str, context: &LoginContext) -> Result<Start, ClientError> {
        let (user, context) = (user.to_owned(), context.clone());
        let (action, challenge, destination, factors, remind) = self
            .call("StartSignIn", true, move |p| async move { p.start_sign_in(&user, context.to_wire()).await })
            .map_err(|e| match e {
                // The daemon went away between the owner check and the call.
                ClientError::Lost(why) => ClientError::Unreachable(why),
                other => other,
            })?;
        Ok(Start { action, challenge, destination, factors, remind })
    }

    fn check_code(&mut self, challenge: &str, code: &str) -> Result<Answer, ClientError> {
        let (challenge, code) = (challenge.to_owned(), zeroize::Zeroizing::new(code.to_owned()));
        let (status, detail) =
            self.call("CheckCode", false, move |p| async move { p.check_code(&challenge, &code).await })?;
        Ok(Answer { status, detail })
    }

    fn enroll_number(&mut self, challenge: &str, number: &str) -> Result<String, ClientError> {
        let (challenge, number) = (challenge.to_owned(), number.to_owned());
        self.call("EnrollNumber", false, move |p| async move { p.enroll_number(&challenge, &number).await })
    }

    fn resend(&mut self, challenge: &str) -> Result<Answer, ClientError> {
        let challenge = challenge.to_owned();
        let (status, detail) = self.call("Resend", false, move |p| async move { p.resend(&challenge).await })?;
        Ok(Answer { status, detail })
    }

    fn use_factor(&mut self, challenge: &str, factor: Factor) -> Result<(Answer, String), ClientError> {
        let challenge = challenge.to_owned();
        let (status, detail, destination) =
            self.call("UseFactor", false, move |p| async move { p.use_factor(&challenge, factor).await })?;
        Ok((Answer { status, detail }, destination))
    }

    fn cancel(&mut self, challenge: &str) {
        let challenge = challenge.to_owned();
        let _ = self.call("Cancel", false, move |p| async move { p.cancel(&challenge).await });
    }

    fn trust_machine(&mut self, challenge: &str) -> Result<(), ClientError> {
        let challenge = challenge.to_owned();
        self.call("TrustMachine", false, move |p| async move { p.trust_machine(&challenge).await })
    }
}

impl Drop for DbusDaemon {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_millis(100));
        }
    }
}
