//! Files from the host into the active user's download directory
//! (`__org.guestlink_transfer-*`, what a SPICE client's drag and drop becomes).
//!
//! The file is created with the user's own filesystem identity (`setfsuid`,
//! `setfsgid` and the user's own supplementary groups, on the thread that creates it;
//! the agent's groups are dropped), so the kernel checks every path component as that
//! user: a
//! download directory that is a link into `/etc` is refused as it would be for the
//! user, and the file belongs to the user from the start. Names are one path component;
//! a name already taken becomes `name (1).ext`, `name (2).ext`, ... up to 63.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use guestlink_vocabulary::commands::{
    GuestlinkDisplaySet, GuestlinkTransferCancel, GuestlinkTransferStart, GuestlinkTransferWrite,
};
use guestlink_vocabulary::types::{
    DisplaySetArgs, Empty, Transfer, TransferHandleArgs, TransferProgress, TransferStartArgs,
    TransferWriteArgs,
};
use guestlink_vocabulary::Command;

use super::off_thread;
use super::sessions::{ask_agent, target_of};
use crate::context::Context;
use crate::dispatch::Handler;
use crate::error::{Cause, CommandError};
use crate::state::transfers::{Incoming, TransferDir};

/// Names tried for one file: the name itself and 63 numbered variants.
const NAME_ATTEMPTS: u32 = 64;
/// The longest name accepted, in bytes (a Linux file name).
const NAME_MAX: usize = 255;

/// Checks a name from the host: one path component.
pub fn check_name(name: &str) -> Result<(), CommandError> {
    let bad = name.is_empty()
        || name == "."
        || name == ".."
        || name.contains('/')
        || name.contains('\0')
        || name.len() > NAME_MAX;
    if bad {
        return Err(CommandError::with_cause(
            Cause::InvalidName,
            format!(
                "invalid file name '{}': a transfer names one file, not a path",
                name.escape_debug()
            ),
        ));
    }
    Ok(())
}

/// `name`, or its `n`th variant: `report (2).pdf`.
pub fn variant(name: &str, n: u32) -> String {
    if n == 0 {
        return name.to_string();
    }
    match name.rfind('.') {
        Some(dot) if dot > 0 => format!("{} ({n}){}", &name[..dot], &name[dot..]),
        _ => format!("{name} ({n})"),
    }
}

/// The value of `key` in an XDG `user-dirs.dirs` file, with `$HOME` expanded.
pub fn xdg_user_dir(text: &str, key: &str, home: &Path) -> Option<PathBuf> {
    text.lines().find_map(|line| {
        let value = line.trim().strip_prefix(key)?.strip_prefix('=')?;
        let value = value.trim().trim_matches('"');
        match value.strip_prefix("$HOME") {
            Some(rest) => Some(home.join(rest.trim_start_matches('/'))),
            None if value.starts_with('/') => Some(PathBuf::from(value)),
            None => None,
        }
    })
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

/// The supplementary groups of account `name` with primary group `gid`.
pub(crate) fn groups_of(name: &str, gid: u32) -> Vec<u32> {
    let Ok(c) = CString::new(name) else {
        return vec![gid];
    };
    nix::unistd::getgrouplist(&c, nix::unistd::Gid::from_raw(gid))
        .map(|g| g.iter().map(|g| g.as_raw()).collect())
        .unwrap_or_else(|_| vec![gid])
}

fn errno_error(what: impl std::fmt::Display, e: &io::Error) -> CommandError {
    CommandError::new(format!("{what}: {}", crate::error::strerror(e)))
}

/// The directory files for `uid` go to.
fn directory(config: &TransferDir, home: &Path) -> PathBuf {
    let (key, default) = match config {
        TransferDir::Path(p) => return p.clone(),
        TransferDir::XdgDownload => ("XDG_DOWNLOAD_DIR", "Downloads"),
        TransferDir::XdgDesktop => ("XDG_DESKTOP_DIR", "Desktop"),
    };
    std::fs::read_to_string(home.join(".config/user-dirs.dirs"))
        .ok()
        .and_then(|t| xdg_user_dir(&t, key, home))
        .unwrap_or_else(|| home.join(default))
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

impl Handler for GuestlinkTransferStart {
    async fn handle(ctx: Context<'_>, args: TransferStartArgs) -> Result<Transfer, CommandError> {
        check_name(&args.name)?;
        let size = u64::try_from(args.size)
            .map_err(|_| CommandError::new("Parameter 'size' expects a size in bytes"))?;
        let config = ctx.agent.transfer_dir().clone();
        // The active session's user; with no session known, an explicit directory
        // still takes files, as guestlinkd's own user.
        let uid = match ctx.agent.state().sessions.host_user()? {
            Some((session, _, true)) => {
                return Err(CommandError::with_cause(
                    Cause::SessionLocked,
                    format!("session '{session}' is locked"),
                ))
            }
            Some((_, uid, false)) => uid,
            None if matches!(config, TransferDir::Path(_)) => nix::unistd::geteuid().as_raw(),
            None => {
                return Err(CommandError::with_cause(
                    Cause::NoSessionAgent,
                    "no user session is known to receive the file",
                ))
            }
        };
        let state = ctx.agent.state();
        state.transfers.check_room()?;
        let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
            .ok()
            .flatten();
        let gid = user.as_ref().map_or(uid, |u| u.gid.as_raw());
        let groups = user
            .as_ref()
            .map_or_else(|| vec![gid], |u| groups_of(&u.name, gid));
        let home = user.map(|u| u.dir);
        let name = args.name.clone();
        let (dir, dirfd, used, file) = off_thread(move || {
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
        .await??;
        let path = dir.join(&used);
        tracing::info!(path = %path.display(), size, uid, "receiving a file");
        let handle = state.transfers.insert(Incoming {
            conn: ctx.conn.map(|c| c.id),
            dir: dirfd,
            name: used,
            path: path.clone(),
            file,
            size,
            received: 0,
        })?;
        Ok(Transfer {
            handle,
            path: path.display().to_string(),
            uid: i64::from(uid),
        })
    }
}

impl Handler for GuestlinkTransferWrite {
    async fn handle(
        ctx: Context<'_>,
        args: TransferWriteArgs,
    ) -> Result<TransferProgress, CommandError> {
        let data = ctx.bulk.and_then(|b| b.take_input()).unwrap_or_default();
        if data.len() as i64 != args.count {
            return Err(CommandError::new(format!(
                "Parameter 'count' says {} bytes but {} came",
                args.count,
                data.len()
            )));
        }
        let w = ctx.agent.state().transfers.write(args.handle, &data)?;
        Ok(TransferProgress {
            received: w.received as i64,
            complete: w.complete,
        })
    }
}

impl Handler for GuestlinkTransferCancel {
    async fn handle(ctx: Context<'_>, args: TransferHandleArgs) -> Result<Empty, CommandError> {
        ctx.agent.state().transfers.cancel(args.handle)?;
        Ok(Empty {})
    }
}

impl Handler for GuestlinkDisplaySet {
    async fn handle(ctx: Context<'_>, args: DisplaySetArgs) -> Result<Empty, CommandError> {
        if args.displays.len() > 16 {
            return Err(CommandError::new(
                "at most 16 displays (limit displays: 16)",
            ));
        }
        let target = target_of(&ctx)?;
        if !target.agent.capabilities.iter().any(|c| c == "displays") {
            return Err(CommandError::new(format!(
                "the session agent of session '{}' does not set displays",
                target.session
            )));
        }
        let arguments = serde_json::to_value(&args)
            .map_err(|e| CommandError::new(format!("cannot forward the layout: {e}")))?;
        ask_agent(&ctx, &target, Self::NAME, arguments).await?;
        Ok(Empty {})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_variants() {
        for bad in ["", ".", "..", "../x", "/etc/passwd", "a/b", "a\0b"] {
            assert_eq!(
                check_name(bad).unwrap_err().cause,
                Some(Cause::InvalidName),
                "{bad:?}"
            );
        }
        check_name("..hidden").unwrap();
        check_name("résumé 2.pdf").unwrap();
        assert_eq!(variant("a.tar.gz", 2), "a.tar (2).gz");
        assert_eq!(variant("README", 1), "README (1)");
        assert_eq!(variant(".bashrc", 3), ".bashrc (3)");
    }

    #[test]
    fn xdg_dirs() {
        let text = "# comment\nXDG_DESKTOP_DIR=\"$HOME/Desk\"\nXDG_DOWNLOAD_DIR=\"$HOME/Téléchargements\"\n";
        let home = Path::new("/home/a");
        assert_eq!(
            xdg_user_dir(text, "XDG_DOWNLOAD_DIR", home).unwrap(),
            Path::new("/home/a/Téléchargements")
        );
        assert_eq!(xdg_user_dir(text, "XDG_MUSIC_DIR", home), None);
        assert_eq!(
            xdg_user_dir("XDG_DOWNLOAD_DIR=\"/data/dl\"", "XDG_DOWNLOAD_DIR", home).unwrap(),
            Path::new("/data/dl")
        );
    }
}

#[cfg(test)]
mod identity_tests {
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
