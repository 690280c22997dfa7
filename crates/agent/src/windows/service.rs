//! guestlinkd as a Windows service: `-s install` registers it with the service control
//! manager (automatic start, the command line it was given, with `-d`; restarted 5 s
//! after a failure), `-s uninstall`
//! removes it, and `-d` runs under the SCM: the service reports itself running,
//! accepts stop and shutdown, and ends the agent's work when either comes.

use std::sync::{Mutex, OnceLock};

use anyhow::{anyhow, Context as _};
use tokio::sync::watch;
use windows_sys::Win32::Foundation::{GetLastError, ERROR_SERVICE_DOES_NOT_EXIST, NO_ERROR};
use windows_sys::Win32::Storage::FileSystem::DELETE;
use windows_sys::Win32::System::Services::{
    ChangeServiceConfig2W, CloseServiceHandle, CreateServiceW, DeleteService, OpenSCManagerW,
    OpenServiceW, RegisterServiceCtrlHandlerExW, SetServiceStatus, StartServiceCtrlDispatcherW,
    SC_ACTION, SC_ACTION_RESTART, SC_HANDLE, SC_MANAGER_CREATE_SERVICE, SERVICE_ACCEPT_SHUTDOWN,
    SERVICE_ACCEPT_STOP, SERVICE_ALL_ACCESS, SERVICE_AUTO_START, SERVICE_CONFIG_DESCRIPTION,
    SERVICE_CONFIG_FAILURE_ACTIONS, SERVICE_CONTROL_INTERROGATE, SERVICE_CONTROL_SHUTDOWN,
    SERVICE_CONTROL_STOP, SERVICE_DESCRIPTIONW, SERVICE_ERROR_NORMAL, SERVICE_FAILURE_ACTIONSW,
    SERVICE_RUNNING, SERVICE_STATUS, SERVICE_STATUS_HANDLE, SERVICE_STOPPED, SERVICE_STOP_PENDING,
    SERVICE_TABLE_ENTRYW, SERVICE_WIN32_OWN_PROCESS,
};

/// The service's name.
pub const SERVICE_NAME: &str = "guestlinkd";
/// What the Services console shows.
pub const DISPLAY_NAME: &str = "guestlink Guest Agent";
/// The service's description.
pub const DESCRIPTION: &str = "Enables integration with QEMU machine emulator and virtualizer: \
the QEMU Guest Agent protocol on the virtio-serial port org.qemu.guest_agent.0 (guestlink).";

/// `ERROR_CALL_NOT_IMPLEMENTED`: a control the service does not handle.
const ERROR_CALL_NOT_IMPLEMENTED: u32 = 120;

fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(std::iter::once(0)).collect()
}

/// A service control manager handle, closed when dropped.
struct Sc(SC_HANDLE);

impl Drop for Sc {
    fn drop(&mut self) {
        // SAFETY: the handle was opened by OpenSCManagerW/OpenServiceW/CreateServiceW.
        unsafe { CloseServiceHandle(self.0) };
    }
}

fn manager(access: u32) -> anyhow::Result<Sc> {
    // SAFETY: null machine and database names mean the local, active database.
    let h = unsafe { OpenSCManagerW(std::ptr::null(), std::ptr::null(), access) };
    if h.is_null() {
        return Err(std::io::Error::last_os_error())
            .context("cannot open the service control manager");
    }
    Ok(Sc(h))
}

/// Quotes one argument for a Windows command line.
fn quote(arg: &str) -> String {
    if !arg.is_empty() && !arg.contains([' ', '\t', '"']) {
        return arg.to_string();
    }
    format!("\"{}\"", arg.replace('"', "\\\""))
}

/// The service's command line: this executable with `-d` and the options it was given,
/// less `-s`.
fn service_command_line() -> anyhow::Result<String> {
    let exe = std::env::current_exe().context("cannot tell where guestlinkd.exe is")?;
    let mut line = format!("{} -d", quote(&exe.to_string_lossy()));
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "-s" || a == "--service" {
            args.next();
            continue;
        }
        if a.starts_with("--service=") || (a.starts_with("-s") && a.len() > 2) || a == "-d" {
            continue;
        }
        line.push(' ');
        line.push_str(&quote(&a));
    }
    Ok(line)
}

/// `-s install`.
pub fn install() -> anyhow::Result<()> {
    let scm = manager(SC_MANAGER_CREATE_SERVICE)?;
    let name = wide(SERVICE_NAME);
    let display = wide(DISPLAY_NAME);
    let command = service_command_line()?;
    let binary = wide(&command);
    // SAFETY: every string is NUL-terminated and lives across the call; null pointers
    // for the optional ones (LocalSystem, no group, no dependencies).
    let h = unsafe {
        CreateServiceW(
            scm.0,
            name.as_ptr(),
            display.as_ptr(),
            SERVICE_ALL_ACCESS,
            SERVICE_WIN32_OWN_PROCESS,
            SERVICE_AUTO_START,
            SERVICE_ERROR_NORMAL,
            binary.as_ptr(),
            std::ptr::null(),
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    if h.is_null() {
        return Err(std::io::Error::last_os_error()).context("failed to install service");
    }
    let service = Sc(h);
    let mut text = wide(DESCRIPTION);
    let description = SERVICE_DESCRIPTIONW {
        lpDescription: text.as_mut_ptr(),
    };
    // SAFETY: the service handle is open; `description` points at live text.
    unsafe {
        ChangeServiceConfig2W(
            service.0,
            SERVICE_CONFIG_DESCRIPTION,
            std::ptr::from_ref(&description).cast(),
        )
    };
    // Restarted 5 s after a failure, for ever (the count is reset after a day).
    let mut actions = [SC_ACTION {
        Type: SC_ACTION_RESTART,
        Delay: 5000,
    }; 3];
    let failure = SERVICE_FAILURE_ACTIONSW {
        dwResetPeriod: 86_400,
        lpRebootMsg: std::ptr::null_mut(),
        lpCommand: std::ptr::null_mut(),
        cActions: actions.len() as u32,
        lpsaActions: actions.as_mut_ptr(),
    };
    // SAFETY: the service handle is open; `failure` points at live actions.
    unsafe {
        ChangeServiceConfig2W(
            service.0,
            SERVICE_CONFIG_FAILURE_ACTIONS,
            std::ptr::from_ref(&failure).cast(),
        )
    };
    println!("Service was installed successfully: {command}");
    Ok(())
}

/// `-s uninstall`.
pub fn uninstall() -> anyhow::Result<()> {
    let scm = manager(SC_MANAGER_CREATE_SERVICE)?;
    let name = wide(SERVICE_NAME);
    // SAFETY: the manager is open and `name` NUL-terminated.
    let h = unsafe { OpenServiceW(scm.0, name.as_ptr(), DELETE) };
    if h.is_null() {
        // SAFETY: no arguments.
        if unsafe { GetLastError() } == ERROR_SERVICE_DOES_NOT_EXIST {
            return Err(anyhow!("service '{SERVICE_NAME}' is not installed"));
        }
        return Err(std::io::Error::last_os_error()).context("failed to open the service");
    }
    let service = Sc(h);
    // SAFETY: the service handle is open with DELETE access.
    if unsafe { DeleteService(service.0) } == 0 {
        return Err(std::io::Error::last_os_error()).context("failed to delete service");
    }
    println!("Service was deleted successfully.");
    Ok(())
}

/// The work the service does, until the receiver turns true.
type Work = Box<dyn FnOnce(watch::Receiver<bool>) -> anyhow::Result<()> + Send>;

static WORK: Mutex<Option<Work>> = Mutex::new(None);
static OUTCOME: Mutex<Option<anyhow::Result<()>>> = Mutex::new(None);
static STOP: OnceLock<watch::Sender<bool>> = OnceLock::new();
/// The status handle, as an address (the handle is a pointer).
static STATUS: OnceLock<usize> = OnceLock::new();

fn report(state: u32, exit_code: u32) {
    let Some(&handle) = STATUS.get() else {
        return;
    };
    let status = SERVICE_STATUS {
        dwServiceType: SERVICE_WIN32_OWN_PROCESS,
        dwCurrentState: state,
        dwControlsAccepted: if state == SERVICE_RUNNING {
            SERVICE_ACCEPT_STOP | SERVICE_ACCEPT_SHUTDOWN
        } else {
            0
        },
        dwWin32ExitCode: exit_code,
        dwServiceSpecificExitCode: 0,
        dwCheckPoint: 0,
        dwWaitHint: if state == SERVICE_STOP_PENDING {
            3000
        } else {
            0
        },
    };
    // SAFETY: the handle came from RegisterServiceCtrlHandlerExW; `status` lives.
    unsafe { SetServiceStatus(handle as SERVICE_STATUS_HANDLE, &status) };
}

unsafe extern "system" fn control(
    ctrl: u32,
    _event: u32,
    _data: *mut core::ffi::c_void,
    _context: *mut core::ffi::c_void,
) -> u32 {
    match ctrl {
        SERVICE_CONTROL_STOP | SERVICE_CONTROL_SHUTDOWN => {
            report(SERVICE_STOP_PENDING, NO_ERROR);
            if let Some(stop) = STOP.get() {
                let _ = stop.send(true);
            }
            NO_ERROR
        }
        SERVICE_CONTROL_INTERROGATE => NO_ERROR,
        _ => ERROR_CALL_NOT_IMPLEMENTED,
    }
}

unsafe extern "system" fn service_main(_argc: u32, _argv: *mut windows_sys::core::PWSTR) {
    let name = wide(SERVICE_NAME);
    // SAFETY: `name` is NUL-terminated; `control` has the handler's signature.
    let handle =
        unsafe { RegisterServiceCtrlHandlerExW(name.as_ptr(), Some(control), std::ptr::null()) };
    if handle.is_null() {
        return;
    }
    let _ = STATUS.set(handle as usize);
    let (tx, rx) = watch::channel(false);
    let _ = STOP.set(tx);
    report(SERVICE_RUNNING, NO_ERROR);
    let work = WORK.lock().unwrap_or_else(|e| e.into_inner()).take();
    let outcome = match work {
        Some(work) => work(rx),
        None => Ok(()),
    };
    let code = if outcome.is_ok() { NO_ERROR } else { 1 };
    if let Err(e) = &outcome {
        tracing::error!("{e:#}");
    }
    *OUTCOME.lock().unwrap_or_else(|e| e.into_inner()) = Some(outcome);
    report(SERVICE_STOPPED, code);
}

/// Runs `work` as the service the SCM started; returns when it has stopped.
pub fn run(
    work: impl FnOnce(watch::Receiver<bool>) -> anyhow::Result<()> + Send + 'static,
) -> anyhow::Result<()> {
    *WORK.lock().unwrap_or_else(|e| e.into_inner()) = Some(Box::new(work));
    let mut name = wide(SERVICE_NAME);
    let table = [
        SERVICE_TABLE_ENTRYW {
            lpServiceName: name.as_mut_ptr(),
            lpServiceProc: Some(service_main),
        },
        SERVICE_TABLE_ENTRYW {
            lpServiceName: std::ptr::null_mut(),
            lpServiceProc: None,
        },
    ];
    // SAFETY: the table ends with a null entry and lives until the dispatcher returns.
    if unsafe { StartServiceCtrlDispatcherW(table.as_ptr()) } == 0 {
        return Err(std::io::Error::last_os_error()).context(
            "cannot start as a service (-d is for the service control manager; run without -d in a console)",
        );
    }
    OUTCOME
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
        .unwrap_or(Ok(()))
}
