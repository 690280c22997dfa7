//! The PAM entry points (`pam_sm_authenticate`, `pam_sm_setcred`) and the few
//! libpam calls they make. The module links to no libpam of its own: the application
//! that loads it (a display manager, pamtester) has libpam loaded already.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::ptr;

use crate::{collect, wipe, Failure, Options};

/// Linux-PAM's return codes and item types used here (`security/_pam_types.h`).
const PAM_SUCCESS: c_int = 0;
const PAM_SERVICE_ERR: c_int = 3;
const PAM_AUTH_ERR: c_int = 7;
const PAM_AUTHINFO_UNAVAIL: c_int = 9;
const PAM_CONV_ERR: c_int = 19;
const PAM_USER: c_int = 2;
const PAM_CONV: c_int = 5;
const PAM_AUTHTOK: c_int = 6;
const PAM_PROMPT_ECHO_OFF: c_int = 1;

/// The prompt the greeter answers with the token (as `pam_ovirt_cred`'s).
const PROMPT: &CStr = c"Token?";

/// libpam's opaque handle.
#[repr(C)]
#[derive(Debug)]
pub struct PamHandle {
    _opaque: [u8; 0],
}

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

type ConvFn = unsafe extern "C" fn(
    c_int,
    *mut *const PamMessage,
    *mut *mut PamResponse,
    *mut c_void,
) -> c_int;

#[repr(C)]
struct PamConv {
    conv: Option<ConvFn>,
    appdata_ptr: *mut c_void,
}

extern "C" {
    fn pam_get_item(pamh: *const PamHandle, item_type: c_int, item: *mut *const c_void) -> c_int;
    fn pam_set_item(pamh: *mut PamHandle, item_type: c_int, item: *const c_void) -> c_int;
}

/// Asks the application for the token through its conversation function.
///
/// # Safety
/// `pamh` is the handle libpam passed to the module.
unsafe fn ask_token(pamh: *mut PamHandle) -> Result<Vec<u8>, c_int> {
    let mut item: *const c_void = ptr::null();
    // SAFETY: the handle is libpam's; `item` receives a pointer owned by libpam.
    let rc = unsafe { pam_get_item(pamh, PAM_CONV, &mut item) };
    if rc != PAM_SUCCESS || item.is_null() {
        return Err(PAM_CONV_ERR);
    }
    // SAFETY: the PAM_CONV item is a `struct pam_conv` that lives as long as the handle.
    let conv = unsafe { &*(item as *const PamConv) };
    let Some(f) = conv.conv else {
        return Err(PAM_CONV_ERR);
    };
    let msg = PamMessage {
        msg_style: PAM_PROMPT_ECHO_OFF,
        msg: PROMPT.as_ptr(),
    };
    let mut msgs: [*const PamMessage; 1] = [&msg];
    let mut resp: *mut PamResponse = ptr::null_mut();
    // SAFETY: one message, a place for the response array, the application's data.
    let rc = unsafe { f(1, msgs.as_mut_ptr(), &mut resp, conv.appdata_ptr) };
    if rc != PAM_SUCCESS || resp.is_null() {
        return Err(PAM_CONV_ERR);
    }
    // SAFETY: the application allocated one response with malloc; we own and free it.
    let text = unsafe { (*resp).resp };
    let token = if text.is_null() {
        Vec::new()
    } else {
        // SAFETY: `resp` is a NUL-terminated string the application allocated.
        let bytes = unsafe { CStr::from_ptr(text) }.to_bytes().to_vec();
        // SAFETY: the string is ours to overwrite and free.
        unsafe {
            wipe(std::slice::from_raw_parts_mut(
                text.cast::<u8>(),
                bytes.len(),
            ));
            libc::free(text.cast());
        }
        bytes
    };
    // SAFETY: the array was allocated with malloc by the application.
    unsafe { libc::free(resp.cast()) };
    Ok(token)
}

/// Sets a string item; `value` is wiped afterwards (libpam keeps its own copy).
///
/// # Safety
/// `pamh` is the handle libpam passed to the module.
unsafe fn set_item(pamh: *mut PamHandle, item: c_int, value: &[u8]) -> c_int {
    let Ok(c) = CString::new(value) else {
        return PAM_AUTH_ERR;
    };
    // SAFETY: a NUL-terminated string that outlives the call; libpam copies it.
    let rc = unsafe { pam_set_item(pamh, item, c.as_ptr().cast()) };
    let mut bytes = c.into_bytes_with_nul();
    wipe(&mut bytes);
    rc
}

/// The module's arguments as text.
///
/// # Safety
/// `argv` holds `argc` NUL-terminated strings (libpam's).
unsafe fn args<'a>(argc: c_int, argv: *const *const c_char) -> Vec<&'a str> {
    if argv.is_null() {
        return Vec::new();
    }
    (0..argc.max(0) as usize)
        .filter_map(|i| {
            // SAFETY: `i < argc`, each entry a C string that lives as long as the handle.
            let p = unsafe { *argv.add(i) };
            // SAFETY: as above.
            (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_str().ok())?
        })
        .collect()
}

/// Authenticates with the credentials guestlinkd hands off for the token the
/// application gives: sets `PAM_USER` and `PAM_AUTHTOK` for the modules after this one.
///
/// # Safety
/// Called by libpam with its handle and the module's arguments.
#[no_mangle]
pub unsafe extern "C" fn pam_sm_authenticate(
    pamh: *mut PamHandle,
    _flags: c_int,
    argc: c_int,
    argv: *const *const c_char,
) -> c_int {
    let outcome = std::panic::catch_unwind(|| {
        // SAFETY: libpam's arguments.
        let options = Options::parse(unsafe { args(argc, argv) });
        // SAFETY: libpam's handle.
        let mut token = match unsafe { ask_token(pamh) } {
            Ok(t) if !t.is_empty() => t,
            Ok(_) => return PAM_AUTH_ERR,
            Err(rc) => return rc,
        };
        let got = collect(&options.socket, &token);
        wipe(&mut token);
        let creds = match got {
            Ok(c) => c,
            Err(Failure::Unavailable(_)) => return PAM_AUTHINFO_UNAVAIL,
            Err(Failure::Refused) | Err(Failure::Malformed(_)) => return PAM_AUTH_ERR,
        };
        // SAFETY: libpam's handle.
        let rc = unsafe { set_item(pamh, PAM_USER, &creds.user) };
        if rc != PAM_SUCCESS {
            return rc;
        }
        // SAFETY: libpam's handle.
        unsafe { set_item(pamh, PAM_AUTHTOK, &creds.password) }
    });
    outcome.unwrap_or(PAM_SERVICE_ERR)
}

/// Nothing to set: the credentials are the other modules' business.
///
/// # Safety
/// Called by libpam.
#[no_mangle]
pub unsafe extern "C" fn pam_sm_setcred(
    _pamh: *mut PamHandle,
    _flags: c_int,
    _argc: c_int,
    _argv: *const *const c_char,
) -> c_int {
    PAM_SUCCESS
}
