//! The core's own system calls on Windows.
//!
//! There are no signals and no process groups to kill at once: a child is killed on
//! its own (tokio's `kill_on_drop`, `TerminateProcess`). Trust in an executable of a
//! drop-in directory comes from the directory's ACL (under `%ProgramData%`, writable by
//! administrators only), which the installer sets.

use std::io;
use std::path::Path;
use std::process::ExitStatus;

/// No process ends by a signal on Windows.
pub fn exit_signal(_status: &ExitStatus) -> Option<i32> {
    None
}

/// `CREATE_NEW_PROCESS_GROUP`: Ctrl+C in the agent's console does not reach the child.
const CREATE_NEW_PROCESS_GROUP: u32 = 0x0000_0200;
/// `CREATE_NO_WINDOW`: a console child gets no window of its own.
const CREATE_NO_WINDOW: u32 = 0x0800_0000;

/// Starts the child in a process group of its own, without a console window.
pub fn own_group(cmd: &mut tokio::process::Command) {
    cmd.creation_flags(CREATE_NEW_PROCESS_GROUP | CREATE_NO_WINDOW);
}

/// No signal is reported for a killed process.
pub const KILLED: Option<i32> = None;

/// Terminates the process `pid` (`TerminateProcess`, exit code 1 as `taskkill /F`
/// gives). Windows has no process group to end with it: programs it started stay.
pub fn kill_group(pid: u32) {
    let _ = terminate(pid);
}

/// Terminates the process `pid`; an error when it cannot be opened or ended.
fn terminate(pid: u32) -> Result<(), String> {
    use windows_sys::Win32::Foundation::CloseHandle;
    use windows_sys::Win32::System::Threading::{OpenProcess, TerminateProcess, PROCESS_TERMINATE};
    // SAFETY: plain values; the handle is closed below.
    let h = unsafe { OpenProcess(PROCESS_TERMINATE, 0, pid) };
    if h.is_null() {
        return Err(io::Error::last_os_error().to_string());
    }
    // SAFETY: the handle was opened with PROCESS_TERMINATE.
    let ok = unsafe { TerminateProcess(h, 1) } != 0;
    let e = io::Error::last_os_error();
    // SAFETY: opened above, closed once.
    unsafe { CloseHandle(h) };
    if ok {
        Ok(())
    } else {
        Err(e.to_string())
    }
}

/// Why a file found in a drop-in directory must not run: Windows starts programs by
/// their extension, so only `.exe`, `.com`, `.bat` and `.cmd` files are actions.
pub fn untrusted_executable(path: &Path, _meta: &std::fs::Metadata) -> Option<String> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let runnable = ["exe", "com", "bat", "cmd"];
    if runnable.iter().any(|r| ext.eq_ignore_ascii_case(r)) {
        None
    } else {
        Some("disabled (not an .exe, .com, .bat or .cmd file)".into())
    }
}

/// Whether `path` exists as a file the agent could start.
pub fn check_executable(path: &Path) -> io::Result<()> {
    let meta = std::fs::metadata(path)?;
    if meta.is_file() {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(5)) // ERROR_ACCESS_DENIED
    }
}

/// Windows has no signals: the ones that end a program (SIGHUP, SIGINT, SIGKILL,
/// SIGTERM) terminate it; the others do not exist.
pub fn signal_group(pgid: i32, signal: i32) -> Result<(), String> {
    match signal {
        1 | 2 | 9 | 15 if pgid > 0 => terminate(pgid as u32),
        1 | 2 | 9 | 15 => Ok(()),
        other => Err(format!("signal {other} does not exist on Windows")),
    }
}

/// Windows cannot hang a program up: it is terminated after the grace period
/// (`kill_group`), unless it ended by then.
pub fn hang_up_group(_pgid: i32) {}

/// What an open file is, by the system's account (`GetFinalPathNameByHandleW`): the
/// path with every link resolved, without the `\\?\` prefix.
pub fn opened_path(file: &std::fs::File) -> io::Result<std::path::PathBuf> {
    use std::os::windows::ffi::OsStringExt;
    use std::os::windows::io::AsRawHandle;
    use windows_sys::Win32::Storage::FileSystem::GetFinalPathNameByHandleW;
    let mut buf = vec![0u16; 512];
    loop {
        // SAFETY: the handle is open while `file` lives; the buffer's length is given.
        let n = unsafe {
            GetFinalPathNameByHandleW(file.as_raw_handle(), buf.as_mut_ptr(), buf.len() as u32, 0)
        } as usize;
        if n == 0 {
            return Err(io::Error::last_os_error());
        }
        if n < buf.len() {
            buf.truncate(n);
            break;
        }
        buf.resize(n + 1, 0);
    }
    let path = std::ffi::OsString::from_wide(&buf);
    let text = path.to_string_lossy();
    Ok(match text.strip_prefix(r"\\?\UNC\") {
        Some(rest) => format!(r"\\{rest}").into(),
        None => text
            .strip_prefix(r"\\?\")
            .map(Into::into)
            .unwrap_or(path.into()),
    })
}

/// Windows files do not block on open; nothing to set.
pub fn nonblocking(_opts: &mut std::fs::OpenOptions) {}

/// Modes do not exist on Windows: files get their directory's ACL.
pub fn create_mode(_opts: &mut std::fs::OpenOptions, _mode: u32) {}

/// Modes do not exist on Windows: only the write bits matter (read-only attribute).
pub fn set_mode(file: &std::fs::File, mode: u32) -> io::Result<()> {
    let mut perm = file.metadata()?.permissions();
    perm.set_readonly(mode & 0o222 == 0);
    file.set_permissions(perm)
}

/// Windows has no user ids: the agent's account (LocalSystem) stands as 0.
pub fn effective_uid() -> u32 {
    0
}

/// A directory, by its path (Windows does not open a name relative to a handle
/// through the standard library).
pub type OpenDir = std::path::PathBuf;

/// Removes `name` from the directory `dir`.
pub fn remove_in(dir: &OpenDir, name: &str) {
    let _ = std::fs::remove_file(dir.join(name));
}

/// A folder Windows names in the environment (`ProgramData`, `ProgramFiles`), with the
/// usual place when the variable is missing (a service's environment always has it).
pub fn known_folder(variable: &str, usual: &str) -> std::path::PathBuf {
    std::env::var_os(variable)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(usual))
}

/// `%ProgramData%\guestlink` and `%ProgramFiles%\guestlink`'s `sub` directories, the
/// installer's first: where policies and actions are looked for.
pub fn drop_in_dirs(sub: &str) -> Vec<std::path::PathBuf> {
    vec![
        known_folder("ProgramFiles", r"C:\Program Files")
            .join("guestlink")
            .join(sub),
        known_folder("ProgramData", r"C:\ProgramData")
            .join("guestlink")
            .join(sub),
    ]
}

/// What `stat` says beyond the portable metadata: Windows has no mode bits, owners by
/// id or link counts here; the mode is derived from the read-only attribute.
pub fn stat_fields(meta: &std::fs::Metadata) -> (u32, u32, u32, u64, i64, i64) {
    let ns = |t: io::Result<std::time::SystemTime>| {
        t.ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos() as i64)
    };
    let mode = if meta.permissions().readonly() {
        0o555
    } else {
        0o777
    };
    (mode, 0, 0, 1, ns(meta.modified()), ns(meta.accessed()))
}

/// Windows has no FIFOs, sockets or devices in its file systems' listings.
pub fn special_kind(_meta: &std::fs::Metadata) -> Option<&'static str> {
    None
}

fn unsupported(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!("{what} is not supported on Windows"),
    )
}

/// Only the write bits matter on Windows (the read-only attribute).
pub fn chmod(path: &Path, mode: u32) -> io::Result<()> {
    let mut perm = std::fs::metadata(path)?.permissions();
    perm.set_readonly(mode & 0o222 == 0);
    std::fs::set_permissions(path, perm)
}

/// Owners are ACLs on Windows, not ids.
pub fn chown(_path: &Path, _uid: Option<u32>, _gid: Option<u32>) -> io::Result<()> {
    Err(unsupported("changing the owner by id"))
}

/// Symbolic links need a privilege on Windows and a file or directory kind.
pub fn symlink(_target: &str, _path: &Path) -> io::Result<()> {
    Err(unsupported("creating symbolic links"))
}

/// Creates a directory; modes do not exist on Windows.
pub fn mkdir(path: &Path, _mode: u32, parents: bool) -> io::Result<()> {
    std::fs::DirBuilder::new().recursive(parents).create(path)
}

/// Sets a path's times through an open handle.
pub fn set_times(path: &Path, mtime_ns: Option<i64>, atime_ns: Option<i64>) -> io::Result<()> {
    let at = |ns: i64| std::time::UNIX_EPOCH + std::time::Duration::from_nanos(ns.max(0) as u64);
    let mut times = std::fs::FileTimes::new();
    if let Some(ns) = mtime_ns {
        times = times.set_modified(at(ns));
    }
    if let Some(ns) = atime_ns {
        times = times.set_accessed(at(ns));
    }
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)?
        .set_times(times)
}
