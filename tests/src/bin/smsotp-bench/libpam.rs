//! One login through the system's libpam, as sshd makes it: pam_start with
//! a private configuration directory, PAM_RHOST and PAM_TTY set,
//! pam_authenticate, pam_end. The conversation answers prompts from a
//! closure and ignores info and error lines. The only unsafe code of the
//! benchmark is here: the C side of libpam.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString, c_char, c_int, c_void};

use nix::libc;

#[repr(C)]
struct PamMessage {
    msg_style: c_int,
    msg: *const c_char,
}

#[repr(C)]
struct PamResponse {
    resp: *mut c_char,
    resp_retcode: c_int,
}

type ConvFn = extern "C" fn(c_int, *mut *const PamMessage, *mut *mut PamResponse, *mut c_void) -> c_int;

#[repr(C)]
struct PamConv {
    conv: ConvFn,
    appdata_ptr: *mut c_void,
}

#[link(name = "pam")]
unsafe extern "C" {
    fn pam_start_confdir(
        service: *const c_char,
        user: *const c_char,
        conv: *const PamConv,
        confdir: *const c_char,
        pamh: *mut *mut c_void,
    ) -> c_int;
    fn pam_set_item(pamh: *mut c_void, item_type: c_int, item: *const c_void) -> c_int;
    fn pam_authenticate(pamh: *mut c_void, flags: c_int) -> c_int;
    fn pam_end(pamh: *mut c_void, status: c_int) -> c_int;
}

const PAM_SUCCESS: c_int = 0;
const PAM_CONV_ERR: c_int = 19;
const PAM_TTY: c_int = 3;
const PAM_RHOST: c_int = 4;
const PAM_PROMPT_ECHO_OFF: c_int = 1;
const PAM_PROMPT_ECHO_ON: c_int = 2;

/// What the person types at a prompt; None gives up (PAM_CONV_ERR).
pub type Answerer<'a> = dyn FnMut(&str) -> Option<String> + 'a;

extern "C" fn conversation(
    n: c_int,
    msgs: *mut *const PamMessage,
    resp: *mut *mut PamResponse,
    data: *mut c_void,
) -> c_int {
    if n <= 0 || msgs.is_null() || resp.is_null() || data.is_null() {
        return PAM_CONV_ERR;
    }
    let n = n as usize;
    // SAFETY: data is the &mut &mut Answerer that login() passed in and
    // keeps alive for the whole pam_authenticate call.
    let answer = unsafe { &mut *(data as *mut &mut Answerer<'_>) };
    // SAFETY: libpam frees the array and each resp with free().
    let out = unsafe { libc::calloc(n, std::mem::size_of::<PamResponse>()) } as *mut PamResponse;
    if out.is_null() {
        return PAM_CONV_ERR;
    }
    for i in 0..n {
        // SAFETY: Linux-PAM passes an array of n message pointers.
        let m = unsafe { &**msgs.add(i) };
        if m.msg_style != PAM_PROMPT_ECHO_OFF && m.msg_style != PAM_PROMPT_ECHO_ON {
            continue;
        }
        // SAFETY: a prompt is a NUL-terminated string.
        let prompt = unsafe { CStr::from_ptr(m.msg) }.to_string_lossy();
        let typed = answer(&prompt).and_then(|s| CString::new(s).ok());
        match typed {
            // SAFETY: out has n entries; strdup's copy is freed by libpam.
            Some(s) => unsafe { (*out.add(i)).resp = libc::strdup(s.as_ptr()) },
            None => {
                for j in 0..i {
                    // SAFETY: entries before i were filled by strdup or are NULL.
                    unsafe { libc::free((*out.add(j)).resp as *mut c_void) };
                }
                // SAFETY: allocated above with calloc.
                unsafe { libc::free(out as *mut c_void) };
                return PAM_CONV_ERR;
            }
        }
    }
    // SAFETY: resp is libpam's out-pointer.
    unsafe { *resp = out };
    PAM_SUCCESS
}

/// One whole PAM transaction; the PAM return code of pam_authenticate
/// (or of pam_start when that failed).
pub fn login(confdir: &str, service: &str, user: &str, rhost: &str, answer: &mut Answerer<'_>) -> i32 {
    let (Ok(confdir), Ok(service), Ok(user), Ok(rhost), Ok(tty)) =
        (CString::new(confdir), CString::new(service), CString::new(user), CString::new(rhost), CString::new("ssh"))
    else {
        return PAM_CONV_ERR;
    };
    let mut answer: &mut Answerer<'_> = answer;
    let conv = PamConv { conv: conversation, appdata_ptr: &mut answer as *mut &mut Answerer<'_> as *mut c_void };
    let mut pamh: *mut c_void = std::ptr::null_mut();
    // SAFETY: all strings outlive the transaction; conv and answer too.
    unsafe {
        let rc = pam_start_confdir(service.as_ptr(), user.as_ptr(), &conv, confdir.as_ptr(), &mut pamh);
        if rc != PAM_SUCCESS {
            return rc;
        }
        pam_set_item(pamh, PAM_RHOST, rhost.as_ptr() as *const c_void);
        pam_set_item(pamh, PAM_TTY, tty.as_ptr() as *const c_void);
        let rc = pam_authenticate(pamh, 0);
        pam_end(pamh, rc);
        rc
    }
}
