//! Files created with a user's own identity, for transfers from the host (Unix).
//!
//! The file is created with the user's filesystem identity (`setfsuid`, `setfsgid` and
//! the user's own supplementary groups, on the blocking thread that creates it; the
//! agent's groups are dropped), so the kernel checks every path component as that
//! user, and the file belongs to the user from the start.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use super::download_dir::{directory, variant, NAME_ATTEMPTS};
use super::off_thread;
use crate::error::{Cause, CommandError};
use crate::state::transfers::TransferDir;

/// Creates `name` (or a numbered variant) of `size` bytes for `uid` in the directory
/// `config` gives: the directory, its open descriptor, the name used, the file.
pub(crate) async fn create_for(
    uid: u32,
    config: TransferDir,
    name: String,
    size: u64,
) -> Result<(PathBuf, crate::os::OpenDir, String, File), CommandError> {
    let user = crate::os::users::by_uid(uid).ok().flatten();
    let gid = user.as_ref().map_or(uid, |u| u.gid);
    let groups = user
        .as_ref()
        .map_or_else(|| vec![gid], |u| crate::os::users::groups(&u.name, gid));
    let home = user.map(|u| u.home);
    off_thread(move || {
        as_user(uid, gid, &groups, || {
            let dir = match (&config, home) {
                (TransferDir::Path(p), _) => p.clone(),
                (_, Some(home)) => directory(&config, &home),
                (_, None) => {
                    return Err(CommandError::new(format!(
                        "user {uid} has no home directory to receive files in"
                    )))
                }
            };
            let (fd, used, file) = create(&dir, &name, size)?;
            Ok((dir, fd, used, file))
        })
    })
    .await?
}

fn errno_error(what: impl std::fmt::Display, e: &io::Error) -> CommandError {
    CommandError::new(format!("{what}: {}", crate::error::strerror(e)))
}

/// Sets the calling thread's supplementary groups. The raw system call, not glibc's
/// `setgroups`, which changes every thread of the process.
fn set_thread_groups(groups: &[libc::gid_t]) -> io::Result<()> {
    // SAFETY: the pointer and length describe a live slice of gids.
    let r = unsafe { libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Runs `f` with the calling thread's filesystem identity set to `uid`/`gid` and its
/// supplementary groups to `groups` (the user's own), all restored afterwards. As
/// root, groups that cannot be switched refuse the call rather than create the file
/// with the agent's groups; another agent user cannot switch and keeps its own.
pub(crate) fn as_user<T>(
    uid: u32,
    gid: u32,
    groups: &[u32],
    f: impl FnOnce() -> Result<T, CommandError>,
) -> Result<T, CommandError> {
    let saved =
        nix::unistd::getgroups().map_err(|e| errno_error("cannot read the groups", &e.into()))?;
    let saved: Vec<libc::gid_t> = saved.iter().map(|g| g.as_raw()).collect();
    let root = nix::unistd::geteuid().is_root();
    if root {
        set_thread_groups(groups)
            .map_err(|e| errno_error(format!("cannot take the groups of uid {uid}"), &e))?;
    }
    // SAFETY: setfsuid/setfsgid change only this thread's filesystem credentials and
    // are restored before returning.
    let (old_uid, old_gid) = unsafe { (libc::setfsuid(uid), libc::setfsgid(gid)) };
    let result = f();
    // SAFETY: as above.
    unsafe {
        libc::setfsgid(old_gid as libc::gid_t);
        libc::setfsuid(old_uid as libc::uid_t);
    }
    if root {
        if let Err(e) = set_thread_groups(&saved) {
            // The blocking thread would go on with the user's groups: better to stop.
            tracing::error!("cannot restore the agent's groups: {e}");
            std::process::abort();
        }
    }
    result
}

/// Creates the file (as the user): the open directory, the name used, the file.
fn create(dir: &Path, name: &str, size: u64) -> Result<(OwnedFd, String, File), CommandError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| errno_error(format!("cannot create {}", dir.display()), &e))?;
    let c = CString::new(dir.as_os_str().as_encoded_bytes())
        .map_err(|_| CommandError::new("invalid directory name"))?;
    // SAFETY: `c` is NUL-terminated; the descriptor returned is owned below.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_DIRECTORY | libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(errno_error(
            format!("cannot open {}", dir.display()),
            &io::Error::last_os_error(),
        ));
    }
    // SAFETY: `fd` was just opened and nothing else owns it.
    let dirfd = unsafe { OwnedFd::from_raw_fd(fd) };
    let vfs = nix::sys::statvfs::fstatvfs(&dirfd).map_err(|e| {
        errno_error(
            format!("cannot read the free space of {}", dir.display()),
            &e.into(),
        )
    })?;
    let free = (vfs.blocks_available() as u64).saturating_mul(vfs.fragment_size() as u64);
    if size > free {
        return Err(CommandError::with_cause(
            Cause::NoSpace(free),
            format!(
                "{} has {free} bytes free, not the {size} the file needs",
                dir.display()
            ),
        ));
    }
    for n in 0..NAME_ATTEMPTS {
        let candidate = variant(name, n);
        let c = CString::new(candidate.as_bytes())
            .map_err(|_| CommandError::new("invalid file name"))?;
        // SAFETY: as above; O_NOFOLLOW and O_EXCL never open an existing entry.
        let fd = unsafe {
            libc::openat(
                dirfd.as_raw_fd(),
                c.as_ptr(),
                libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                0o644,
            )
        };
        if fd >= 0 {
            // SAFETY: a descriptor just opened, owned by the File from now on.
            let file = unsafe { File::from_raw_fd(fd) };
            return Ok((dirfd, candidate, file));
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EEXIST) {
            return Err(errno_error(
                format!("cannot create {}", dir.join(&candidate).display()),
                &e,
            ));
        }
    }
    Err(CommandError::new(format!(
        "{} and {} numbered variants already exist in {}",
        name,
        NAME_ATTEMPTS - 1,
        dir.display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A line of this thread's status, e.g. `Groups:`.
    fn status(key: &str) -> String {
        std::fs::read_to_string("/proc/thread-self/status")
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_string()))
            .unwrap()
    }

    #[test]
    fn files_are_made_with_the_users_groups_only() {
        if !nix::unistd::geteuid().is_root() {
            // The switch needs root; CI runs as root, so there it must be exercised.
            assert!(
                std::env::var_os("CI").is_none(),
                "this test needs root in CI"
            );
            eprintln!("skipped: not root");
            return;
        }
        // A thread of our own, so that no other test sees the agent's groups change.
        std::thread::spawn(|| {
            set_thread_groups(&[0, 4, 27]).unwrap();
            let inside = as_user(1234, 1234, &[1234, 100], || {
                Ok((status("Groups:"), status("Uid:"), status("Gid:")))
            })
            .unwrap();
            assert_eq!(inside.0, "100 1234");
            assert!(inside.1.ends_with("1234"), "fsuid: {}", inside.1);
            assert!(inside.2.ends_with("1234"), "fsgid: {}", inside.2);
            assert_eq!(status("Groups:"), "0 4 27", "groups restored");
            assert!(!status("Uid:").ends_with("1234"), "fsuid restored");
        })
        .join()
        .unwrap();
    }
}
