//! System services through Windows' service control manager, in the words systemd's
//! back end uses (`rules.rs` maps states and start types): `EnumServicesStatusExW` for
//! the list; `QueryServiceStatusEx` and `QueryServiceConfigW` for one service;
//! `StartServiceW` and `ControlService(STOP)`, then the state polled until the service
//! has left its pending state (as `net start` and `net stop` wait); `ChangeServiceConfigW`
//! with an automatic (enable) or manual (disable) start. The calls block, so each runs on
//! tokio's blocking pool.

use std::io;
use std::time::{Duration, Instant};

use guestlink_core::platform::{BoxFuture, Services};
use guestlink_vocabulary::types::{GuestlinkService, GuestlinkServiceAction};
use windows_sys::Win32::Foundation::{
    GetLastError, ERROR_INSUFFICIENT_BUFFER, ERROR_MORE_DATA, ERROR_SERVICE_ALREADY_RUNNING,
    ERROR_SERVICE_NOT_ACTIVE,
};
use windows_sys::Win32::System::Services::{
    ChangeServiceConfigW, CloseServiceHandle, ControlService, EnumServicesStatusExW,
    GetServiceKeyNameW, OpenSCManagerW, OpenServiceW, QueryServiceConfigW, QueryServiceStatusEx,
    StartServiceW, ENUM_SERVICE_STATUS_PROCESSW, QUERY_SERVICE_CONFIGW, SC_ENUM_PROCESS_INFO,
    SC_HANDLE, SC_MANAGER_CONNECT, SC_MANAGER_ENUMERATE_SERVICE, SC_STATUS_PROCESS_INFO,
    SERVICE_AUTO_START, SERVICE_CHANGE_CONFIG, SERVICE_CONTROL_STOP, SERVICE_DEMAND_START,
    SERVICE_NO_CHANGE, SERVICE_QUERY_CONFIG, SERVICE_QUERY_STATUS, SERVICE_RUNNING, SERVICE_START,
    SERVICE_START_PENDING, SERVICE_STATE_ALL, SERVICE_STATUS, SERVICE_STATUS_PROCESS, SERVICE_STOP,
    SERVICE_STOPPED, SERVICE_STOP_PENDING, SERVICE_WIN32,
};

use super::rules::{service_name, service_state, start_type_state};
use super::wide::{from_ptr, from_wide, wide};

/// How long a start or stop is waited for (systemd's back end waits as long).
const JOB_WAIT: Duration = Duration::from_secs(300);

/// Windows' service control manager.
#[derive(Debug, Default, Clone, Copy)]
pub struct WindowsServices;

/// A service control manager handle, closed when dropped.
struct Sc(SC_HANDLE);

impl Drop for Sc {
    fn drop(&mut self) {
        // SAFETY: the handle came from OpenSCManagerW or OpenServiceW and is closed once.
        unsafe { CloseServiceHandle(self.0) };
    }
}

fn manager() -> io::Result<Sc> {
    // SAFETY: null machine and database names mean the local, active database.
    let h = unsafe {
        OpenSCManagerW(
            std::ptr::null(),
            std::ptr::null(),
            SC_MANAGER_CONNECT | SC_MANAGER_ENUMERATE_SERVICE,
        )
    };
    if h.is_null() {
        return Err(io::Error::last_os_error());
    }
    Ok(Sc(h))
}

fn open(mgr: &Sc, name: &str, access: u32) -> io::Result<Sc> {
    let w = wide(name);
    // SAFETY: `w` is NUL-terminated and outlives the call.
    let h = unsafe { OpenServiceW(mgr.0, w.as_ptr(), access) };
    if h.is_null() {
        return Err(io::Error::last_os_error());
    }
    Ok(Sc(h))
}

fn query(svc: &Sc) -> io::Result<SERVICE_STATUS_PROCESS> {
    let mut status = SERVICE_STATUS_PROCESS::default();
    let mut needed = 0u32;
    // SAFETY: the buffer is a SERVICE_STATUS_PROCESS of the size given.
    let ok = unsafe {
        QueryServiceStatusEx(
            svc.0,
            SC_STATUS_PROCESS_INFO,
            (&mut status as *mut SERVICE_STATUS_PROCESS).cast(),
            std::mem::size_of::<SERVICE_STATUS_PROCESS>() as u32,
            &mut needed,
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(status)
}

/// A buffer of at least `bytes`, aligned for the structures the SCM writes into it.
fn aligned(bytes: u32) -> Vec<u64> {
    vec![0u64; (bytes as usize).div_ceil(8).max(1)]
}

/// The display name and start type.
fn config(svc: &Sc) -> io::Result<(String, u32)> {
    let mut size = 1024u32;
    loop {
        let mut buf = aligned(size);
        let mut needed = 0u32;
        // SAFETY: `buf` holds `size` bytes, aligned for QUERY_SERVICE_CONFIGW.
        let ok = unsafe {
            QueryServiceConfigW(
                svc.0,
                buf.as_mut_ptr().cast::<QUERY_SERVICE_CONFIGW>(),
                size,
                &mut needed,
            )
        };
        if ok == 0 {
            // SAFETY: no call in between.
            if unsafe { GetLastError() } == ERROR_INSUFFICIENT_BUFFER && needed > size {
                size = needed;
                continue;
            }
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the call filled the structure at the start of `buf`, and its string
        // pointers point into `buf`.
        let c = unsafe { &*buf.as_ptr().cast::<QUERY_SERVICE_CONFIGW>() };
        // SAFETY: as above.
        let display = unsafe { from_ptr(c.lpDisplayName) };
        return Ok((display, c.dwStartType));
    }
}

/// The service's own spelling of its name (names are not case-sensitive).
fn key_name(mgr: &Sc, display: &str) -> Option<String> {
    let d = wide(display);
    let mut buf = vec![0u16; 257];
    let mut len = buf.len() as u32;
    // SAFETY: `d` is NUL-terminated; `buf` holds `len` characters.
    let ok = unsafe { GetServiceKeyNameW(mgr.0, d.as_ptr(), buf.as_mut_ptr(), &mut len) };
    (ok != 0).then(|| from_wide(&buf)).filter(|n| !n.is_empty())
}

fn described(
    unit: String,
    description: String,
    status: &SERVICE_STATUS_PROCESS,
) -> GuestlinkService {
    let (active, sub) = service_state(status.dwCurrentState, status.dwWin32ExitCode);
    GuestlinkService {
        unit,
        description,
        load_state: "loaded".into(),
        active_state: active.into(),
        sub_state: sub.into(),
        unit_file_state: None,
        main_pid: None,
    }
}

fn list() -> io::Result<Vec<GuestlinkService>> {
    let mgr = manager()?;
    let mut out = Vec::new();
    let mut resume = 0u32;
    let mut size = 64u32 << 10;
    loop {
        let mut buf = aligned(size);
        let (mut needed, mut returned) = (0u32, 0u32);
        // SAFETY: `buf` holds `size` bytes, aligned for ENUM_SERVICE_STATUS_PROCESSW.
        let ok = unsafe {
            EnumServicesStatusExW(
                mgr.0,
                SC_ENUM_PROCESS_INFO,
                SERVICE_WIN32,
                SERVICE_STATE_ALL,
                buf.as_mut_ptr().cast(),
                size,
                &mut needed,
                &mut returned,
                &mut resume,
                std::ptr::null(),
            )
        };
        // SAFETY: no call in between.
        let more = ok == 0 && unsafe { GetLastError() } == ERROR_MORE_DATA;
        if ok == 0 && !more {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the call wrote `returned` entries at the start of `buf`, whose string
        // pointers point into `buf`.
        let entries = unsafe {
            std::slice::from_raw_parts(
                buf.as_ptr().cast::<ENUM_SERVICE_STATUS_PROCESSW>(),
                returned as usize,
            )
        };
        for e in entries {
            // SAFETY: as above.
            let (name, display) = unsafe { (from_ptr(e.lpServiceName), from_ptr(e.lpDisplayName)) };
            out.push(described(name, display, &e.ServiceStatusProcess));
        }
        if !more {
            break;
        }
        if returned == 0 {
            size = needed.max(size.saturating_mul(2));
        }
    }
    out.sort_by_key(|s| s.unit.to_lowercase());
    Ok(out)
}

fn status(name: &str) -> io::Result<GuestlinkService> {
    let mgr = manager()?;
    let svc = open(&mgr, name, SERVICE_QUERY_STATUS | SERVICE_QUERY_CONFIG)?;
    let st = query(&svc)?;
    let (display, start_type) = config(&svc)?;
    let unit = key_name(&mgr, &display).unwrap_or_else(|| name.to_string());
    let mut s = described(unit, display, &st);
    s.unit_file_state = Some(start_type_state(start_type).into());
    s.main_pid = (st.dwCurrentState == SERVICE_RUNNING && st.dwProcessId != 0)
        .then_some(i64::from(st.dwProcessId));
    Ok(s)
}

/// Waits while the service is in `pending`; its state after.
fn settle(svc: &Sc, pending: u32) -> io::Result<SERVICE_STATUS_PROCESS> {
    let deadline = Instant::now() + JOB_WAIT;
    loop {
        let st = query(svc)?;
        if st.dwCurrentState != pending {
            return Ok(st);
        }
        if Instant::now() > deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("still pending after {} s", JOB_WAIT.as_secs()),
            ));
        }
        // A tenth of the service's wait hint, as Microsoft's sample waits, but from
        // 50 ms (not 1 s): a quick service stays quick.
        let hint = Duration::from_millis(u64::from(st.dwWaitHint / 10));
        std::thread::sleep(hint.clamp(Duration::from_millis(50), Duration::from_secs(2)));
    }
}

/// Why a service that was started is not running.
fn not_running(st: &SERVICE_STATUS_PROCESS) -> io::Error {
    let (active, sub) = service_state(st.dwCurrentState, st.dwWin32ExitCode);
    match st.dwWin32ExitCode {
        0 => io::Error::other(format!("the service is {active} ({sub})")),
        // ERROR_SERVICE_SPECIFIC_ERROR: the service's own code.
        1066 => io::Error::other(format!(
            "the service stopped with its error code {}",
            st.dwServiceSpecificExitCode
        )),
        code => io::Error::from_raw_os_error(code as i32),
    }
}

fn start(mgr: &Sc, name: &str) -> io::Result<()> {
    let svc = open(mgr, name, SERVICE_START | SERVICE_QUERY_STATUS)?;
    // SAFETY: no arguments are passed.
    if unsafe { StartServiceW(svc.0, 0, std::ptr::null()) } == 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(ERROR_SERVICE_ALREADY_RUNNING as i32) {
            return Err(e);
        }
    }
    let st = settle(&svc, SERVICE_START_PENDING)?;
    if st.dwCurrentState != SERVICE_RUNNING {
        return Err(not_running(&st));
    }
    Ok(())
}

fn stop(mgr: &Sc, name: &str) -> io::Result<()> {
    let svc = open(mgr, name, SERVICE_STOP | SERVICE_QUERY_STATUS)?;
    let mut st = SERVICE_STATUS::default();
    // SAFETY: `st` receives the service's last status.
    if unsafe { ControlService(svc.0, SERVICE_CONTROL_STOP, &mut st) } == 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(ERROR_SERVICE_NOT_ACTIVE as i32) {
            return Ok(());
        }
        return Err(e);
    }
    let st = settle(&svc, SERVICE_STOP_PENDING)?;
    if st.dwCurrentState != SERVICE_STOPPED {
        let (active, sub) = service_state(st.dwCurrentState, 0);
        return Err(io::Error::other(format!("the service is {active} ({sub})")));
    }
    Ok(())
}

fn set_start(mgr: &Sc, name: &str, start_type: u32) -> io::Result<()> {
    let svc = open(mgr, name, SERVICE_CHANGE_CONFIG)?;
    let none = std::ptr::null();
    // SAFETY: null strings and SERVICE_NO_CHANGE leave everything but the start type.
    let ok = unsafe {
        ChangeServiceConfigW(
            svc.0,
            SERVICE_NO_CHANGE,
            start_type,
            SERVICE_NO_CHANGE,
            none,
            none,
            std::ptr::null_mut(),
            none,
            none,
            none,
            none,
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn control(name: &str, action: GuestlinkServiceAction) -> io::Result<()> {
    use GuestlinkServiceAction as A;
    let mgr = manager()?;
    match action {
        A::Start => start(&mgr, name),
        A::Stop => stop(&mgr, name),
        A::Restart => {
            stop(&mgr, name)?;
            start(&mgr, name)
        }
        A::Enable => set_start(&mgr, name, SERVICE_AUTO_START),
        A::Disable => set_start(&mgr, name, SERVICE_DEMAND_START),
    }
}

/// Runs `f` on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(format!("the service call failed: {e}")))
}

impl Services for WindowsServices {
    fn unit_name(&self, name: &str) -> Result<String, String> {
        service_name(name)
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<GuestlinkService>, String>> {
        Box::pin(blocking(|| {
            list().map_err(|e| format!("failed to list services: {e}"))
        }))
    }

    fn status(&self, unit: String) -> BoxFuture<'_, Result<GuestlinkService, String>> {
        Box::pin(blocking(move || {
            status(&unit).map_err(|e| format!("failed to read service '{unit}': {e}"))
        }))
    }

    fn control(
        &self,
        unit: String,
        action: GuestlinkServiceAction,
    ) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(blocking(move || {
            control(&unit, action)
                .map_err(|e| format!("failed to {} '{unit}': {e}", action.as_str()))
        }))
    }
}
