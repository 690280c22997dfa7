//! The core's own system calls on Unix.

use std::io;
use std::path::Path;
use std::process::ExitStatus;

/// The signal that ended a process, if one did.
pub fn exit_signal(status: &ExitStatus) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    status.signal()
}

/// Starts the child in a process group of its own, so that [`kill_group`] reaches its
/// children too.
pub fn own_group(cmd: &mut tokio::process::Command) {
    cmd.process_group(0);
}

/// The signal [`kill_group`] sends, as an outcome reports it.
pub const KILLED: Option<i32> = Some(libc::SIGKILL);

/// Kills the process group `pid` leads (see [`own_group`]).
pub fn kill_group(pid: u32) {
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
}

/// Why an executable found in a drop-in directory must not run: not executable, or
/// writable by someone other than root (or the agent's own user).
pub fn untrusted_executable(_path: &Path, meta: &std::fs::Metadata) -> Option<String> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    if meta.permissions().mode() & 0o111 == 0 {
        return Some("disabled (not executable)".into());
    }
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != 0 && meta.uid() != me {
        return Some(format!("owned by uid {}, not root", meta.uid()));
    }
    if meta.permissions().mode() & 0o022 != 0 {
        return Some("writable by its group or by others".into());
    }
    None
}

/// Whether the agent may execute `path` (`access(X_OK)`).
pub fn check_executable(path: &Path) -> io::Result<()> {
    nix::unistd::access(path, nix::unistd::AccessFlags::X_OK).map_err(io::Error::from)
}

/// Sends signal number `signal` to the process group `pgid`; a group that is gone
/// already is not an error, a signal number that does not exist is.
pub fn signal_group(pgid: i32, signal: i32) -> Result<(), String> {
    let sig = nix::sys::signal::Signal::try_from(signal)
        .map_err(|_| format!("signal {signal} does not exist"))?;
    if pgid <= 1 {
        return Ok(());
    }
    match nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), sig) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
        Err(e) => Err(e.desc().to_string()),
    }
}

/// Hangs up what the process group `pgid` still holds (SIGHUP, then SIGCONT so that a
/// stopped job sees it).
pub fn hang_up_group(pgid: i32) {
    let _ = signal_group(pgid, libc::SIGHUP);
    let _ = signal_group(pgid, libc::SIGCONT);
}

/// What an open file is, by the kernel's account (`/proc/self/fd`): the path with
/// every link resolved at the time it was opened.
pub fn opened_path(file: &std::fs::File) -> io::Result<std::path::PathBuf> {
    use std::os::fd::AsRawFd;
    std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))
}

/// Opens without blocking on a FIFO or a device (`O_NONBLOCK`), as qemu-ga does.
pub fn nonblocking(opts: &mut std::fs::OpenOptions) {
    use std::os::unix::fs::OpenOptionsExt;
    opts.custom_flags(libc::O_NONBLOCK);
}

/// The mode a file is created with (before the umask).
pub fn create_mode(opts: &mut std::fs::OpenOptions, mode: u32) {
    use std::os::unix::fs::OpenOptionsExt;
    opts.mode(mode);
}

/// Sets a file's mode bits.
pub fn set_mode(file: &std::fs::File, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(std::fs::Permissions::from_mode(mode))
}

/// The agent's effective user id.
pub fn effective_uid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// A directory held open, so that a name in it is found again whatever happens to
/// its path.
pub type OpenDir = std::os::fd::OwnedFd;

/// Removes `name` from the directory `dir` (`unlinkat`).
pub fn remove_in(dir: &OpenDir, name: &str) {
    use std::os::fd::AsRawFd;
    if let Ok(c) = std::ffi::CString::new(name) {
        // SAFETY: `dir` is an open directory and `c` a NUL-terminated name.
        unsafe { libc::unlinkat(dir.as_raw_fd(), c.as_ptr(), 0) };
    }
}

/// `/usr/lib/guestlink` and `/etc/guestlink`'s `sub` directories, the vendor's first:
/// where policies and actions are looked for.
pub fn drop_in_dirs(sub: &str) -> Vec<std::path::PathBuf> {
    ["/usr/lib/guestlink", "/etc/guestlink"]
        .iter()
        .map(|d| Path::new(d).join(sub))
        .collect()
}

/// What `stat` says beyond the portable metadata: (mode bits 07777, uid, gid, links,
/// mtime and atime in nanoseconds since the epoch).
pub fn stat_fields(meta: &std::fs::Metadata) -> (u32, u32, u32, u64, i64, i64) {
    use std::os::unix::fs::MetadataExt;
    let ns = |s: i64, n: i64| s.saturating_mul(1_000_000_000).saturating_add(n);
    (
        meta.mode() & 0o7777,
        meta.uid(),
        meta.gid(),
        meta.nlink(),
        ns(meta.mtime(), meta.mtime_nsec()),
        ns(meta.atime(), meta.atime_nsec()),
    )
}

/// Whether the metadata is of a FIFO, a socket, a character or a block device.
pub fn special_kind(meta: &std::fs::Metadata) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    [
        (t.is_fifo(), "fifo"),
        (t.is_socket(), "socket"),
        (t.is_char_device(), "char-device"),
        (t.is_block_device(), "block-device"),
    ]
    .into_iter()
    .find_map(|(is, name)| is.then_some(name))
}

/// Sets a path's mode bits (a link is followed).
pub fn chmod(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// Sets a path's owner and group; `None` leaves one as it is (a link is followed).
pub fn chown(path: &Path, uid: Option<u32>, gid: Option<u32>) -> io::Result<()> {
    std::os::unix::fs::chown(path, uid, gid)
}

/// Creates the symbolic link `path` pointing at `target`.
pub fn symlink(target: &str, path: &Path) -> io::Result<()> {
    std::os::unix::fs::symlink(target, path)
}

/// Creates a directory with `mode` (before the umask).
pub fn mkdir(path: &Path, mode: u32, parents: bool) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(parents)
        .mode(mode)
        .create(path)
}

/// Sets a path's modification and access times in nanoseconds since the epoch; `None`
/// leaves one as it is (a link is followed).
pub fn set_times(path: &Path, mtime_ns: Option<i64>, atime_ns: Option<i64>) -> io::Result<()> {
    use nix::sys::stat::{utimensat, UtimensatFlags};
    use nix::sys::time::TimeSpec;
    let spec = |ns: Option<i64>| match ns {
        Some(ns) => TimeSpec::new(ns.div_euclid(1_000_000_000), ns.rem_euclid(1_000_000_000)),
        None => TimeSpec::UTIME_OMIT,
    };
    utimensat(
        None,
        path,
        &spec(atime_ns),
        &spec(mtime_ns),
        UtimensatFlags::FollowSymlink,
    )
    .map_err(io::Error::from)
}
