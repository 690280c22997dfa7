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
    GuestlinkPathList, GuestlinkPathMkdir, GuestlinkPathRemove, GuestlinkPathRename,
    GuestlinkPathSetAttributes, GuestlinkPathSha256, GuestlinkPathStat, GuestlinkPathSymlink,
};
use guestlink_vocabulary::types::{
    Empty, GuestlinkPathArgs, GuestlinkPathInfo as PathStat, GuestlinkPathKind,
    GuestlinkPathListArgs, GuestlinkPathMkdirArgs, GuestlinkPathPage as PathList,
    GuestlinkPathRemoveArgs, GuestlinkPathRenameArgs, GuestlinkPathSetAttributesArgs,
    GuestlinkPathStatArgs, GuestlinkPathSymlinkArgs,
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

/// One path operation, done on the blocking pool. One type for all of them keeps one
/// blocking task in the binary rather than one per command.
enum Op {
    Stat {
        follow: bool,
    },
    List {
        offset: u64,
        limit: u64,
    },
    Sha256,
    Mkdir {
        mode: u32,
        parents: bool,
    },
    Remove {
        recursive: bool,
    },
    Rename {
        to: PathBuf,
    },
    SetAttributes {
        mode: Option<u32>,
        owner: Option<String>,
        group: Option<String>,
        mtime: Option<i64>,
        atime: Option<i64>,
    },
    Symlink(String),
}

/// What an operation gives back.
enum Done {
    Stat(PathStat),
    Page(PathList),
    Text(String),
    Nothing,
}

impl Op {
    /// How the error of a failed operation begins: `failed to VERB 'PATH'`.
    fn verb(&self) -> &'static str {
        match self {
            Op::Stat { .. } => "stat",
            Op::List { .. } => "list",
            Op::Sha256 => "read",
            Op::Mkdir { .. } => "create the directory",
            Op::Remove { .. } => "remove",
            Op::Rename { .. } => "rename",
            Op::SetAttributes { .. } => "set the attributes of",
            Op::Symlink(_) => "create the link",
        }
    }

    /// What the scope is asked: reading or writing, the entry or its target.
    fn gate(&self) -> (Access, Check) {
        match self {
            Op::Stat { follow: true } | Op::List { .. } | Op::Sha256 => (READ, Check::Target),
            Op::Stat { follow: false } => (READ, Check::Entry),
            Op::Remove { .. } | Op::Rename { .. } | Op::Symlink(_) => (WRITE, Check::Entry),
            Op::Mkdir { .. } | Op::SetAttributes { .. } => (WRITE, Check::Target),
        }
    }

    fn run(self, p: &Path) -> io::Result<Done> {
        Ok(match self {
            Op::Stat { follow } => {
                let meta = if follow {
                    std::fs::metadata(p)?
                } else {
                    std::fs::symlink_metadata(p)?
                };
                Done::Stat(describe(name_of(p), p, &meta))
            }
            Op::List { offset, limit } => Done::Page(list(p, offset, limit)?),
            Op::Sha256 => Done::Text(sha256(p)?),
            Op::Mkdir { mode, parents } => {
                crate::os::mkdir(p, mode, parents)?;
                Done::Nothing
            }
            Op::Remove { recursive } => {
                remove(p, recursive)?;
                Done::Nothing
            }
            Op::Rename { to } => {
                std::fs::rename(p, to)?;
                Done::Nothing
            }
            Op::SetAttributes {
                mode,
                owner,
                group,
                mtime,
                atime,
            } => {
                if owner.is_some() || group.is_some() {
                    let (uid, gid) = owner_ids(owner.as_deref(), group.as_deref())?;
                    crate::os::chown(p, uid, gid)?;
                }
                if let Some(mode) = mode {
                    crate::os::chmod(p, mode)?;
                }
                if mtime.is_some() || atime.is_some() {
                    crate::os::set_times(p, mtime, atime)?;
                }
                Done::Nothing
            }
            Op::Symlink(target) => {
                crate::os::symlink(&target, p)?;
                Done::Nothing
            }
        })
    }
}

/// Runs `op` on the checked `path` on the blocking pool, wording its failure as
/// `failed to VERB 'PATH': strerror`.
async fn perform(ctx: &Context<'_>, path: &str, op: Op) -> Result<Done, CommandError> {
    let (access, check) = op.gate();
    let p = allowed(ctx.agent.file_scope().as_ref(), path, access, check)?;
    let failed = format!("failed to {} '{path}'", op.verb());
    off_thread(move || op.run(&p).map_err(|e| worded(failed, &e))).await?
}

/// A failure as `failed to VERB 'PATH': strerror`; a path the system did not find is
/// worded as on Linux on every platform (Windows says `The system cannot find the file
/// specified.`), so that a client tells it from other failures the same way everywhere.
/// Our own errors (a user that does not exist) keep their words.
fn worded(failed: String, e: &io::Error) -> CommandError {
    if e.kind() == io::ErrorKind::NotFound && e.raw_os_error().is_some() {
        CommandError::new(format!("{failed}: No such file or directory"))
    } else {
        with_errno(failed, e)
    }
}

/// An answer of another kind than the operation gives: a bug, not the host's doing.
fn mismatch() -> CommandError {
    CommandError::new("internal error: the operation gave an unexpected answer")
}

async fn nothing(ctx: &Context<'_>, path: &str, op: Op) -> Result<Empty, CommandError> {
    match perform(ctx, path, op).await? {
        Done::Nothing => Ok(Empty {}),
        _ => Err(mismatch()),
    }
}

async fn text(ctx: &Context<'_>, path: &str, op: Op) -> Result<String, CommandError> {
    match perform(ctx, path, op).await? {
        Done::Text(t) => Ok(t),
        _ => Err(mismatch()),
    }
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
        match perform(&ctx, &args.path, Op::Stat { follow }).await? {
            Done::Stat(s) => Ok(s),
            _ => Err(mismatch()),
        }
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
        match perform(&ctx, &args.path, Op::List { offset, limit }).await? {
            Done::Page(p) => Ok(p),
            _ => Err(mismatch()),
        }
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

impl Handler for GuestlinkPathSha256 {
    async fn handle(ctx: Context<'_>, args: GuestlinkPathArgs) -> Result<String, CommandError> {
        text(&ctx, &args.path, Op::Sha256).await
    }
}

/// A file's SHA-256 in hex, read in pieces.
fn sha256(p: &Path) -> io::Result<String> {
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
        nothing(&ctx, &args.path, Op::Mkdir { mode, parents }).await
    }
}

/// Removes the entry `p` names, spelt without links in its directories and without
/// `.` or `..`: a path that ends in either (`/tmp/..`), or that comes to `/` however it
/// is spelt, is refused before anything is touched.
fn remove(p: &Path, recursive: bool) -> io::Result<()> {
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
}

impl Handler for GuestlinkPathRemove {
    async fn handle(
        ctx: Context<'_>,
        args: GuestlinkPathRemoveArgs,
    ) -> Result<Empty, CommandError> {
        let recursive = args.recursive.unwrap_or(false);
        nothing(&ctx, &args.path, Op::Remove { recursive }).await?;
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
        nothing(&ctx, &args.path, Op::Rename { to }).await
    }
}

/// The ids of an owner and a group named by name or number, as the guest's user
/// databases resolve them.
#[cfg(unix)]
fn owner_ids(owner: Option<&str>, group: Option<&str>) -> io::Result<(Option<u32>, Option<u32>)> {
    use crate::os::users;
    let resolve =
        |what: &str, given: Option<&str>, lookup: &dyn Fn(&str) -> Result<Option<u32>, i32>| {
            let Some(given) = given else {
                return Ok(None);
            };
            if let Ok(id) = given.parse::<u32>() {
                return Ok(Some(id));
            }
            match lookup(given) {
                Ok(Some(id)) => Ok(Some(id)),
                Ok(None) => Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{what} '{given}' does not exist"),
                )),
                Err(code) => Err(io::Error::from_raw_os_error(code)),
            }
        };
    Ok((
        resolve("user", owner, &|n| {
            users::by_name(n).map(|u| u.map(|u| u.uid))
        })?,
        resolve("group", group, &users::group_id)?,
    ))
}

#[cfg(not(unix))]
fn owner_ids(_owner: Option<&str>, _group: Option<&str>) -> io::Result<(Option<u32>, Option<u32>)> {
    Ok((None, None))
}

impl Handler for GuestlinkPathSetAttributes {
    async fn handle(
        ctx: Context<'_>,
        args: GuestlinkPathSetAttributesArgs,
    ) -> Result<Empty, CommandError> {
        let op = Op::SetAttributes {
            mode: args.mode.map(mode_arg).transpose()?,
            owner: args.owner,
            group: args.group,
            mtime: args.mtime_ns,
            atime: args.atime_ns,
        };
        nothing(&ctx, &args.path, op).await
    }
}

impl Handler for GuestlinkPathSymlink {
    async fn handle(
        ctx: Context<'_>,
        args: GuestlinkPathSymlinkArgs,
    ) -> Result<Empty, CommandError> {
        nothing(&ctx, &args.path, Op::Symlink(args.target)).await
    }
}
