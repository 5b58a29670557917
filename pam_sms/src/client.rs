//! The D-Bus client for smsotpd.
//!
//! A current-thread tokio runtime lives exactly as long as one PAM call, so
//! no thread or task outlives the login (sshd forks PAM children; login
//! execs a shell). The bus address is fixed or from the `bus=` argument,
//! never from the environment. Before trusting any answer, the owner of the
//! daemon's name must be uid 0 (or `daemon_user`), and every call goes to
//! that verified unique name, so a name that changes hands mid-login cannot
//! redirect us.

use std::future::Future;
use std::time::Duration;

use zbus::names::{BusName, OwnedUniqueName};

use crate::flow::{Answer, ClientError, Daemon, Start};
use crate::options::Options;

pub const BUS_NAME: &str = "org.smsotp.SmsOtp1";
pub const OBJECT_PATH: &str = "/org/smsotp/SmsOtp1";
pub const INTERFACE: &str = "org.smsotp.SmsOtp1";
const ERROR_PREFIX: &str = "org.smsotp.SmsOtp1.Error.";

pub struct DbusDaemon {
    runtime: Option<tokio::runtime::Runtime>,
    conn: Option<zbus::Connection>,
    peer: Option<OwnedUniqueName>,
    bus: String,
    timeout: Duration,
    allowed_uids: Vec<u32>,
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
            conn: None,
            peer: None,
            bus: options.bus.clone(),
            timeout: options.timeout,
            allowed_uids,
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

    fn connect(&mut self) -> Result<(), ClientError> {
        let (bus, timeout, allowed) = (self.bus.clone(), self.timeout, self.allowed_uids.clone());
        let (conn, peer) = self
            .block(async move {
                let unreachable = |e: zbus::Error| ClientError::Unreachable(format!("{bus}: {e}"));
                let conn = zbus::connection::Builder::address(bus.as_str())
                    .map_err(unreachable)?
                    .method_timeout(timeout)
                    .build()
                    .await
                    .map_err(|e| ClientError::Unreachable(format!("cannot connect to {bus}: {e}")))?;
                let dbus = zbus::fdo::DBusProxy::builder(&conn)
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
                if !allowed.contains(&uid) {
                    return Err(ClientError::Impostor(format!(
                        "{BUS_NAME} is owned by {owner} with uid {uid}, not root"
                    )));
                }
                Ok((conn, owner))
            })
            .map_err(|e| match e {
                ClientError::Lost(why) => ClientError::Unreachable(why),
                other => other,
            })?;
        self.conn = Some(conn);
        self.peer = Some(peer);
        Ok(())
    }

    fn call<B, R>(&self, method: &'static str, body: B) -> Result<R, ClientError>
    where
        B: serde::Serialize + zbus::zvariant::DynamicType + Send + Sync,
        R: for<'d> serde::Deserialize<'d> + zbus::zvariant::Type + Send,
    {
        let (Some(conn), Some(peer)) = (self.conn.clone(), self.peer.clone()) else {
            return Err(ClientError::Lost("not connected".into()));
        };
        self.block(async move {
            let reply =
                conn.call_method(Some(peer), OBJECT_PATH, Some(INTERFACE), method, &body).await.map_err(classify)?;
            reply.body().deserialize::<R>().map_err(|e| ClientError::Lost(format!("unexpected {method} answer: {e}")))
        })
    }
}

fn classify(e: zbus::Error) -> ClientError {
    match &e {
        zbus::Error::MethodError(name, text, _) => {
            let text = text.clone().unwrap_or_default();
            match name.as_str().strip_prefix(ERROR_PREFIX) {
                Some(short) => ClientError::Daemon { name: short.to_owned(), text },
                None if name.as_str() == "org.freedesktop.DBus.Error.AccessDenied" => {
                    ClientError::Daemon { name: "PermissionDenied".into(), text }
                }
                None => ClientError::Lost(format!("{name}: {text}")),
            }
        }
        _ => ClientError::Lost(e.to_string()),
    }
}

impl Daemon for DbusDaemon {
    fn start_login(&mut self, user: &str, context: &[(&str, &str)]) -> Result<Start, ClientError> {
        self.connect()?;
        let ctx: std::collections::HashMap<&str, &str> =
            context.iter().filter(|(_, v)| !v.is_empty()).copied().collect();
        let (action, challenge, destination): (String, String, String) =
            self.call("StartLogin", (user, ctx)).map_err(|e| match e {
                // The daemon went away between the owner check and the call.
                ClientError::Lost(why) => ClientError::Unreachable(why),
                other => other,
            })?;
        Ok(Start { action, challenge, destination })
    }

    fn check_code(&mut self, challenge: &str, code: &str) -> Result<Answer, ClientError> {
        let (status, attempts_left): (String, u32) = self.call("CheckCode", (challenge, code))?;
        Ok(Answer { status, attempts_left })
    }

    fn resend(&mut self, challenge: &str) -> Result<Answer, ClientError> {
        let (status, attempts_left): (String, u32) = self.call("Resend", (challenge,))?;
        Ok(Answer { status, attempts_left })
    }

    fn cancel(&mut self, challenge: &str) {
        let _ = self.call::<_, ()>("Cancel", (challenge,));
    }

    fn trust_machine(&mut self, challenge: &str) -> Result<(), ClientError> {
        self.call::<_, ()>("TrustMachine", (challenge,))
    }
}

impl Drop for DbusDaemon {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            {
                let _inside = rt.enter();
                self.conn.take();
            }
            rt.shutdown_timeout(Duration::from_millis(100));
        }
    }
}
