//! `__org.guestlink_path-*`: files and directories managed by path, for `guestlink ls`,
//! `stat`, `mkdir`, `rm` and the recursive, atomic `cp`.
//!
//! Paths must be absolute. Reading commands are gated as `guest-file-read`, changing
//! ones as `guest-file-write`, and both stay inside the policy's file scope when one
//! is set: an entry acted on itself (lstat, remove, rename, a new link) is checked with
//! its directory's links resolved and its own name not followed. Failures are worded
//! as qemu-ga words its own: `failed to remove '/x': Permission denied`.

use std::io;
use std::path::{Path, PathBuf};

use guestlink_vocabulary::commands::{
    GuestlinkPathChmod, GuestlinkPathChown, GuestlinkPathList, GuestlinkPathMkdir,
    GuestlinkPathReadlink, GuestlinkPathRemove, GuestlinkPathRename, GuestlinkPathSetTimes,
    GuestlinkPathSha256, GuestlinkPathStat, GuestlinkPathSymlink,
};
use guestlink_vocabulary::types::{
    Empty, GuestlinkPathArgs, GuestlinkPathChmodArgs, GuestlinkPathChownArgs,
    GuestlinkPathInfo as PathStat, GuestlinkPathKind, GuestlinkPathListArgs,
    GuestlinkPathMkdirArgs, GuestlinkPathPage as PathList, GuestlinkPathRemoveArgs,
    GuestlinkPathRenameArgs, GuestlinkPathSetTimesArgs, GuestlinkPathStatArgs,
    GuestlinkPathSymlinkArgs,
};

use super::file::with_errno;
use super::off_thread;
use crate::context::Context;
use crate::dispatch::Handler;
use crate::error::CommandError;
use crate::limits::{PATH_LIST_DEFAULT, PATH_LIST_MAX};
use crate::policy::paths::{Access, FileScope};

const READ: Access = Access {
    read: true,
    write: false,
};
const WRITE: Access = Access {
    read: false,
    write: true,
};

/// How the scope is asked about a path.
#[derive(Clone, Copy)]
enum Check {
    /// What the path resolves to, links followed.
    Target,
    /// The entry itself.
    Entry,
}

/// The path as given, once it is known to be absolute and allowed by the scope.
fn allowed(
    scope: Option<&FileScope>,
    path: &str,
    access: Access,
    check: Check,
) -> Result<PathBuf, CommandError> {
    let p = Path::new(path);
    if !p.is_absolute() {
        return Err(CommandError::new(format!("path '{path}' is not absolute")));
    }
    if let Some(scope) = scope {
        let verdict = match check {
            Check::Target => scope.check(p, access),
            Check::Entry => scope.check_entry(p, access),
        };
        verdict.map_err(|why| {
            tracing::warn!(path, "path command refused: {why}");
            CommandError::new(format!("access to '{path}' denied: {why}"))
        })?;
    }
    Ok(p.to_path_buf())
}

/// Runs `f` on the blocking pool with the checked path, wording its failure as
/// `failed to VERB 'PATH': strerror`.
async fn on_path<T: Send + 'static>(
    ctx: &Context<'_>,
    path: &str,
    access: Access,
    check: Check,
    verb: &'static str,
    f: impl FnOnce(&Path) -> io::Result<T> + Send + 'static,
) -> Result<T, CommandError> {
    let p = allowed(ctx.agent.file_scope().as_ref(), path, access, check)?;
    let shown = path.to_string();
    off_thread(move || f(&p).map_err(|e| with_errno(format!("failed to {verb} '{shown}'"), &e)))
        .await?
}

/// The stat of `path` named `name` from already read metadata.
fn describe(name: String, path: &Path, meta: &std::fs::Metadata) -> PathStat {
    let t = meta.file_type();
    let kind = if t.is_symlink() {
        GuestlinkPathKind::Symlink
    } else if t.is_dir() {
        GuestlinkPathKind::Directory
    } else if t.is_file() {
        GuestlinkPathKind::File
    } else {
        crate::os::special_kind(meta)
            .and_then(GuestlinkPathKind::from_wire)
            .unwrap_or(GuestlinkPathKind::Other)
    };
    let (mode, uid, gid, nlink, mtime_ns, atime_ns) = crate::os::stat_fields(meta);
    let target = t
        .is_symlink()
        .then(|| std::fs::read_link(path).ok())
        .flatten()
        .map(|l| l.to_string_lossy().into_owned());
    PathStat {
        name,
        kind,
        size: meta.len(),
        mode: mode.into(),
        uid: uid.into(),
        gid: gid.into(),
        nlink,
        mtime_ns,
        atime_ns,
        target,
    }
}

fn name_of(path: &Path) -> String {
    path.file_name()
        .map_or_else(|| "/".into(), |n| n.to_string_lossy().into_owned())
}

impl Handler for GuestlinkPathStat {
    async fn handle(
        ctx: Context<'_>,
        args: GuestlinkPathStatArgs,
    ) -> Result<PathStat, CommandError> {
        let follow = args.follow.unwrap_or(false);
        let check = if follow { Check::Target } else { Check::Entry };
        on_path(&ctx, &args.path, READ, check, "stat", move |p| {
            let meta = if follow {
                std::fs::metadata(p)?
            } else {
                std::fs::symlink_metadata(p)?
            };
            Ok(describe(name_of(p), p, &meta))
        })
        .await
    }
}

impl Handler for GuestlinkPathList {
    async fn handle(
        ctx: Context<'_>,
        args: GuestlinkPathListArgs,
    ) -> Result<PathList, CommandError> {
        let limit = args.limit.unwrap_or(PATH_LIST_DEFAULT);
        if !(1..=PATH_LIST_MAX).contains(&limit) {
            return Err(CommandError::new(format!(
                "Parameter 'limit' expects a value between 1 and {PATH_LIST_MAX}"
            )));
        }
        let offset = args.offset.unwrap_or(0);
        on_path(&ctx, &args.path, READ, Check::Target, "list", move |dir| {
            list(dir, offset, limit)
        })
        .await
    }
}

/// One page of `dir`'s entries in byte order of their names. The names are read whole
/// and sorted, so pages stay in one order while the directory is read page by page;
/// only the page's entries are stat'ed.
fn list(dir: &Path, offset: u64, limit: u64) -> io::Result<PathList> {
    let mut names: Vec<std::ffi::OsString> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<_>>()?;
    names.sort_unstable_by(|a, b| a.as_encoded_bytes().cmp(b.as_encoded_bytes()));
    let total = names.len() as u64;
    let start = offset.min(total) as usize;
    let end = (offset.saturating_add(limit)).min(total) as usize;
    let mut entries = Vec::with_capacity(end - start);
    for name in &names[start..end] {
        let path = dir.join(name);
        // An entry removed between the read and its stat is left out.
        match std::fs::symlink_metadata(&path) {
            Ok(meta) => entries.push(describe(name.to_string_lossy().into_owned(), &path, &meta)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(PathList {
        entries,
        total,
        next: ((end as u64) < total).then_some(end as u64),
    })
}

impl Handler for GuestlinkPathReadlink {
    async fn handle(ctx: Context<'_>, args: GuestlinkPathArgs) -> Result<String, CommandError> {
        on_path(&ctx, &args.path, READ, Check::Entry, "read the link", |p| {
            Ok(std::fs::read_link(p)?.to_string_lossy().into_owned())
        })
        .await
    }
}

impl Handler for GuestlinkPathSha256 {
    async fn handle(ctx: Context<'_>, args: GuestlinkPathArgs) -> Result<String, CommandError> {
        on_path(&ctx, &args.path, READ, Check::Target, "read", |p| {
            use sha2::Digest;
            let mut file = std::fs::File::open(p)?;
            let mut sha = sha2::Sha256::new();
            let mut buf = vec![0u8; 1 << 16];
            loop {
                match io::Read::read(&mut file, &mut buf)? {
                    0 => break,
                    n => sha.update(&buf[..n]),
                }
            }
            Ok(sha.finalize().iter().map(|b| format!("{b:02x}")).collect())
        })
        .await
    }
}

/// A mode argument: permission bits and the set-id and sticky bits, nothing else.
fn mode_arg(mode: i64) -> Result<u32, CommandError> {
    u32::try_from(mode)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| {
            CommandError::new("Parameter 'mode' expects a value between 0 and 4095 (07777)")
        })
}

impl Handler for GuestlinkPathMkdir {
    async fn handle(ctx: Context<'_>, args: GuestlinkPathMkdirArgs) -> Result<Empty, CommandError> {
        let mode = mode_arg(args.mode.unwrap_or(0o777))?;
        let parents = args.parents.unwrap_or(false);
        on_path(
            &ctx,
            &args.path,
            WRITE,
            Check::Target,
            "create the directory",
            move |p| crate::os::mkdir(p, mode, parents),
        )
        .await?;
        Ok(Empty {})
    }
}

impl Handler for GuestlinkPathRemove {
    async fn handle(
        ctx: Context<'_>,
        args: GuestlinkPathRemoveArgs,
    ) -> Result<Empty, CommandError> {
        let recursive = args.recursive.unwrap_or(false);
        on_path(&ctx, &args.path, WRITE, Check::Entry, "remove", move |p| {
            // What is removed is the entry the path names, spelt without links in its
            // directories and without `.` or `..`: a path that ends in either (`/tmp/..`),
            // or that comes to `/` however it is spelt, is refused before anything is
            // touched.
            let entry = crate::policy::paths::resolve_entry(p)?;
            if entry.parent().is_none() || entry.file_name().is_none() {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    "it is the root directory",
                ));
            }
            let meta = std::fs::symlink_metadata(&entry)?;
            match (meta.is_dir(), recursive) {
                (true, true) => std::fs::remove_dir_all(&entry),
                (true, false) => std::fs::remove_dir(&entry),
                (false, _) => std::fs::remove_file(&entry),
            }
        })
        .await?;
        tracing::info!(path = %args.path, recursive, "removed");
        Ok(Empty {})
    }
}

impl Handler for GuestlinkPathRename {
    async fn handle(
        ctx: Context<'_>,
        args: GuestlinkPathRenameArgs,
    ) -> Result<Empty, CommandError> {
        let to = allowed(
            ctx.agent.file_scope().as_ref(),
            &args.new_path,
            WRITE,
            Check::Entry,
        )?;
        on_path(
            &ctx,
            &args.path,
            WRITE,
            Check::Entry,
            "rename",
            move |from| std::fs::rename(from, &to),
        )
        .await?;
        Ok(Empty {})
    }
}

impl Handler for GuestlinkPathChmod {
    async fn handle(ctx: Context<'_>, args: GuestlinkPathChmodArgs) -> Result<Empty, CommandError> {
        let mode = mode_arg(args.mode)?;
        on_path(
            &ctx,
            &args.path,
            WRITE,
            Check::Target,
            "change the mode of",
            move |p| crate::os::chmod(p, mode),
        )
        .await?;
        Ok(Empty {})
    }
}

/// A user or group named by name or number, as the guest's databases resolve it.
#[cfg(unix)]
fn owner_id(
    what: &str,
    given: Option<&str>,
    lookup: impl Fn(&str) -> Result<Option<u32>, i32>,
) -> Result<Option<u32>, CommandError> {
    let Some(given) = given else {
        return Ok(None);
    };
    if let Ok(id) = given.parse::<u32>() {
        return Ok(Some(id));
    }
    match lookup(given) {
        Ok(Some(id)) => Ok(Some(id)),
        Ok(None) => Err(CommandError::new(format!(
            "{what} '{given}' does not exist"
        ))),
        Err(code) => Err(CommandError::new(format!(
            "cannot look up {what} '{given}': {}",
            crate::error::errno_text(code)
        ))),
    }
}

impl Handler for GuestlinkPathChown {
    async fn handle(ctx: Context<'_>, args: GuestlinkPathChownArgs) -> Result<Empty, CommandError> {
        #[cfg(unix)]
        let (uid, gid) = {
            use crate::os::users;
            let owner = args.owner.clone();
            let group = args.group.clone();
            off_thread(move || {
                Ok::<_, CommandError>((
                    owner_id("user", owner.as_deref(), |n| {
                        users::by_name(n).map(|u| u.map(|u| u.uid))
                    })?,
                    owner_id("group", group.as_deref(), users::group_id)?,
                ))
            })
            .await??
        };
        #[cfg(not(unix))]
        let (uid, gid) = (None, None);
        on_path(
            &ctx,
            &args.path,
            WRITE,
            Check::Target,
            "change the owner of",
            move |p| crate::os::chown(p, uid, gid),
        )
        .await?;
        Ok(Empty {})
    }
}

impl Handler for GuestlinkPathSymlink {
    async fn handle(
        ctx: Context<'_>,
        args: GuestlinkPathSymlinkArgs,
    ) -> Result<Empty, CommandError> {
        let target = args.target.clone();
        on_path(
            &ctx,
            &args.path,
            WRITE,
            Check::Entry,
            "create the link",
            move |p| crate::os::symlink(&target, p),
        )
        .await?;
        Ok(Empty {})
    }
}

impl Handler for GuestlinkPathSetTimes {
    async fn handle(
        ctx: Context<'_>,
        args: GuestlinkPathSetTimesArgs,
    ) -> Result<Empty, CommandError> {
        let (mtime, atime) = (args.mtime_ns, args.atime_ns);
        on_path(
            &ctx,
            &args.path,
            WRITE,
            Check::Target,
            "set the times of",
            move |p| crate::os::set_times(p, mtime, atime),
        )
        .await?;
        Ok(Empty {})
    }
}
