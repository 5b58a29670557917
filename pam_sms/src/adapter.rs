//! The only code that touches PAM's C interface.
//!
//! Everything else is safe Rust over the `flow` traits; pam-bindings'
//! `pam_hooks!` catches panics at the boundary and turns them into
//! PAM_ABORT, so none crosses into sshd or login.

use std::ffi::{CStr, c_char};

use pam::constants::{
    PAM_ERROR_MSG, PAM_PROMPT_ECHO_OFF, PAM_PROMPT_ECHO_ON, PAM_SILENT, PAM_TEXT_INFO, PamFlag, PamResultCode,
};
use pam::conv::Conv;
use pam::items::{RHost, Service, Tty, User};
use pam::module::{PamHandle, PamHooks};
use zeroize::Zeroizing;

use crate::client::DbusDaemon;
use crate::flow::{self, ConvError, Flow, Items, Prompter};
use crate::log::ModuleLog;
use crate::options::Options;

pub struct PamSms;

#[allow(unsafe_code)] // the exported pam_sm_* entry points
mod hooks {
    use super::PamSms;
    pam::pam_hooks!(PamSms);
}

#[allow(unsafe_code)]
unsafe extern "C" {
    fn pam_getenv(pamh: *mut PamHandle, name: *const c_char) -> *const c_char;
}

/// The module-side PAM environment variable `name` (e.g. SSH_AUTH_INFO_0,
/// which sshd puts there with ExposeAuthInfo yes). Never the process
/// environment.
#[allow(unsafe_code)]
fn pam_env(pamh: &mut PamHandle, name: &CStr) -> Option<String> {
    // SAFETY: pamh is the live handle PAM gave this call; pam_getenv returns
    // NULL or a NUL-terminated string owned by PAM, copied before returning.
    let ptr = unsafe { pam_getenv(std::ptr::from_mut(pamh), name.as_ptr()) };
    if ptr.is_null() {
        return None;
    }
    // SAFETY: non-null, NUL-terminated, valid until the handle changes.
    let s = unsafe { CStr::from_ptr(ptr) };
    Some(String::from_utf8_lossy(s.to_bytes()).into_owned())
}

fn cstr_item(c: &CStr) -> String {
    String::from_utf8_lossy(c.to_bytes()).into_owned()
}

fn read_items(pamh: &mut PamHandle) -> Result<Items, PamResultCode> {
    // PAM_USER as set by the application; only prompt if there is none.
    let user = match pamh.get_item::<User>() {
        Ok(Some(u)) => cstr_item(&u),
        _ => pamh.get_user(None)?,
    };
    let service = pamh.get_item::<Service>().ok().flatten().map(|s| cstr_item(&s)).unwrap_or_default();
    let rhost = pamh.get_item::<RHost>().ok().flatten().map(|s| cstr_item(&s)).unwrap_or_default();
    let tty = pamh.get_item::<Tty>().ok().flatten().map(|s| cstr_item(&s)).unwrap_or_default();
    let auth_info = pam_env(pamh, c"SSH_AUTH_INFO_0").unwrap_or_default();
    // The daemon treats longer names as unknown users; never send more.
    let user = smsotp_proto::truncate_bytes(&user, smsotp_proto::limits::USER + 1).to_owned();
    Ok(Items { user, context: smsotp_proto::LoginContext { service, rhost, tty, auth_info } })
}

/// The application's conversation function as a [`Prompter`].
struct ConvPrompter<'a>(Conv<'a>);

impl Prompter for ConvPrompter<'_> {
    fn info(&mut self, text: &str) -> Result<(), ConvError> {
        self.0.send(PAM_TEXT_INFO, text).map(drop).map_err(|_| ConvError)
    }

    fn error(&mut self, text: &str) -> Result<(), ConvError> {
        self.0.send(PAM_ERROR_MSG, text).map(drop).map_err(|_| ConvError)
    }

    fn prompt_secret(&mut self, text: &str) -> Result<Option<Zeroizing<Vec<u8>>>, ConvError> {
        let reply = self.0.send(PAM_PROMPT_ECHO_OFF, text).map_err(|_| ConvError)?;
        Ok(reply.map(|secret| Zeroizing::new(secret.as_bytes().to_vec())))
    }

    fn prompt_visible(&mut self, text: &str) -> Result<Option<String>, ConvError> {
        let reply = self.0.send(PAM_PROMPT_ECHO_ON, text).map_err(|_| ConvError)?;
        Ok(reply.map(|r| String::from_utf8_lossy(r.as_bytes()).into_owned()))
    }
}

/// Never lets an error path become success or "ignore".
fn failure(code: PamResultCode) -> PamResultCode {
    match code {
        PamResultCode::PAM_SUCCESS | PamResultCode::PAM_IGNORE => PamResultCode::PAM_SERVICE_ERR,
        other => other,
    }
}

impl PamHooks for PamSms {
    fn sm_authenticate(pamh: &mut PamHandle, args: Vec<&CStr>, flags: PamFlag) -> PamResultCode {
        let service = pamh.get_item::<Service>().ok().flatten().map(|s| cstr_item(&s)).unwrap_or_default();
        let mut log = ModuleLog::open(&service);
        let options = match Options::parse(&args) {
            Ok(o) => o,
            Err(e) => {
                log.error(&format!("bad module arguments: {e}"));
                return PamResultCode::PAM_SERVICE_ERR;
            }
        };
        log.debug = options.debug;
        let items = match read_items(pamh) {
            Ok(i) => i,
            Err(code) => {
                log.error(&format!("cannot read the user name ({code:?})"));
                return failure(code);
            }
        };
        let mut daemon = match DbusDaemon::new(&options) {
            Ok(d) => d,
            Err(e) => {
                log.error(&e);
                return PamResultCode::PAM_SERVICE_ERR;
            }
        };
        let conv = match pamh.get_item::<Conv>() {
            Ok(Some(c)) => c,
            _ => {
                log.error("the application gave no conversation function");
                return PamResultCode::PAM_CONV_ERR;
            }
        };
        let mut prompter = ConvPrompter(conv);
        let outcome = Flow {
            prompter: &mut prompter,
            daemon: &mut daemon,
            log: &mut log,
            options: &options,
            silent: flags & PAM_SILENT != 0,
            final_message: options.final_message_for(&items.context.service),
        }
        .run(&items);
        drop(daemon);
        let code = flow::pam_code(&outcome, options.fail_mode);
        if options.debug {
            log.info(&format!("user {:?}: {outcome:?} -> {code:?}", items.user.chars().take(32).collect::<String>()));
        }
        code
    }

    fn sm_setcred(_pamh: &mut PamHandle, _args: Vec<&CStr>, _flags: PamFlag) -> PamResultCode {
        // A second factor sets no credentials, and says so with SUCCESS:
        // sshd calls pam_setcred after authentication, and when pam_sms is
        // the only auth module (public key + SMS) a lone IGNORE makes libpam
        // answer PERM_DENIED and sshd drops the session (found by
        // tests/tests/container.rs). This grants nothing: setcred runs only
        // after pam_authenticate has succeeded. pam_google_authenticator and
        // pam_duo do the same.
        PamResultCode::PAM_SUCCESS
    }
}
