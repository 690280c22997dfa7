//! The guest's file system as `cp`, `ls`, `rm` and `mkdir` see it: guestlinkd's
//! `__org.guestlink_path-*` commands behind small functions, and whether the agent
//! has them (a stock qemu-ga only opens, reads and writes files by handle).

use guestlink_client::Client;
use guestlink_vocabulary::commands as cmd;
use guestlink_vocabulary::types::{
    GuestlinkPathArgs, GuestlinkPathInfo, GuestlinkPathKind, GuestlinkPathListArgs,
    GuestlinkPathMkdirArgs, GuestlinkPathRemoveArgs, GuestlinkPathRenameArgs,
    GuestlinkPathSetAttributesArgs, GuestlinkPathStatArgs, GuestlinkPathSymlinkArgs,
};

/// The command whose presence says the agent manages paths.
pub const PATH_COMMANDS: &str = "__org.guestlink_path-stat";

/// Whether the agent offers `command`.
pub async fn offers(c: &mut Client, command: &str) -> anyhow::Result<bool> {
    let info = c
        .call::<cmd::GuestInfo>(&guestlink_vocabulary::types::Empty {})
        .await?;
    Ok(info
        .supported_commands
        .iter()
        .any(|s| s.name == command && s.enabled))
}

/// The guest path of a `guest:/path` argument, or the argument itself.
pub fn guest_path(arg: &str) -> &str {
    arg.strip_prefix("guest:").unwrap_or(arg)
}

/// Whether a guest path is spelled the Windows way: a drive (`C:\x`) or a share
/// (`\\server\share`). Windows takes `/` as a separator too.
fn windows_spelling(path: &str) -> bool {
    let b = path.as_bytes();
    (b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':') || path.starts_with("\\\\")
}

/// Whether `c` separates components in `path`'s spelling.
fn separates(path: &str, c: char) -> bool {
    c == '/' || (c == '\\' && windows_spelling(path))
}

/// `path` split at its last separator: the directory (a root keeps its separator:
/// `/`, `C:\`) and the name; no directory for a bare name.
pub fn split(path: &str) -> (Option<&str>, &str) {
    match path.rfind(|c| separates(path, c)) {
        None => (None, path),
        Some(i) => {
            let dir = &path[..i];
            let root = dir.is_empty() || (windows_spelling(path) && dir.len() == 2);
            (Some(if root { &path[..=i] } else { dir }), &path[i + 1..])
        }
    }
}

/// `dir/name` in the guest's spelling (`dir\name` for a Windows path).
pub fn join(dir: &str, name: &str) -> String {
    if dir.ends_with(|c| separates(dir, c)) {
        format!("{dir}{name}")
    } else if windows_spelling(dir) {
        format!("{dir}\\{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// The last component of a guest or local path (`/a/b/` gives `b`, `C:\a\b` gives `b`).
pub fn base_name(path: &str) -> &str {
    let trimmed = path.trim_end_matches(|c| separates(path, c));
    trimmed
        .rsplit(|c| separates(path, c))
        .next()
        .filter(|n| !n.is_empty())
        .unwrap_or(path)
}

/// What `path` is, links not followed; `None` when there is nothing there.
pub async fn lstat(c: &mut Client, path: &str) -> anyhow::Result<Option<GuestlinkPathInfo>> {
    stat_with(c, path, false).await
}

/// What `path` is, a link at its end followed; `None` when there is nothing there.
pub async fn stat(c: &mut Client, path: &str) -> anyhow::Result<Option<GuestlinkPathInfo>> {
    stat_with(c, path, true).await
}

async fn stat_with(
    c: &mut Client,
    path: &str,
    follow: bool,
) -> anyhow::Result<Option<GuestlinkPathInfo>> {
    match c
        .call::<cmd::GuestlinkPathStat>(&GuestlinkPathStatArgs {
            path: path.to_string(),
            follow: Some(follow),
        })
        .await
    {
        Ok(info) => Ok(Some(info)),
        Err(e) if e.to_string().ends_with("No such file or directory") => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Whether `path` is a directory (links followed).
pub async fn is_dir(c: &mut Client, path: &str) -> anyhow::Result<bool> {
    Ok(stat(c, path)
        .await?
        .is_some_and(|s| s.kind == GuestlinkPathKind::Directory))
}

/// Every entry of a directory, page by page.
pub async fn list(c: &mut Client, path: &str) -> anyhow::Result<Vec<GuestlinkPathInfo>> {
    let mut all = Vec::new();
    let mut offset = 0;
    loop {
        let page = c
            .call::<cmd::GuestlinkPathList>(&GuestlinkPathListArgs {
                path: path.to_string(),
                offset: Some(offset),
                limit: None,
            })
            .await?;
        all.extend(page.entries);
        match page.next {
            Some(next) if next > offset => offset = next,
            _ => return Ok(all),
        }
    }
}

/// Creates a directory (with its parents when `parents`).
pub async fn mkdir(
    c: &mut Client,
    path: &str,
    parents: bool,
    mode: Option<u32>,
) -> anyhow::Result<()> {
    c.call::<cmd::GuestlinkPathMkdir>(&GuestlinkPathMkdirArgs {
        path: path.to_string(),
        parents: Some(parents),
        mode: mode.map(i64::from),
    })
    .await?;
    Ok(())
}

/// Removes a path (a directory tree with `recursive`).
pub async fn remove(c: &mut Client, path: &str, recursive: bool) -> anyhow::Result<()> {
    c.call::<cmd::GuestlinkPathRemove>(&GuestlinkPathRemoveArgs {
        path: path.to_string(),
        recursive: Some(recursive),
    })
    .await?;
    Ok(())
}

/// Renames `from` to `to`, replacing what is there.
pub async fn rename(c: &mut Client, from: &str, to: &str) -> anyhow::Result<()> {
    c.call::<cmd::GuestlinkPathRename>(&GuestlinkPathRenameArgs {
        path: from.to_string(),
        new_path: to.to_string(),
    })
    .await?;
    Ok(())
}

/// Sets the permission bits and, when given, the modification and access times
/// (nanoseconds since the epoch), in one call.
pub async fn set_attributes(
    c: &mut Client,
    path: &str,
    mode: Option<u32>,
    times: Option<(i64, i64)>,
) -> anyhow::Result<()> {
    c.call::<cmd::GuestlinkPathSetAttributes>(&GuestlinkPathSetAttributesArgs {
        path: path.to_string(),
        mode: mode.map(i64::from),
        mtime_ns: times.map(|t| t.0),
        atime_ns: times.map(|t| t.1),
        ..Default::default()
    })
    .await?;
    Ok(())
}

/// Creates a symbolic link.
pub async fn symlink(c: &mut Client, path: &str, target: &str) -> anyhow::Result<()> {
    c.call::<cmd::GuestlinkPathSymlink>(&GuestlinkPathSymlinkArgs {
        path: path.to_string(),
        target: target.to_string(),
    })
    .await?;
    Ok(())
}

/// The SHA-256 of a guest file, computed in the guest, in hex.
pub async fn sha256(c: &mut Client, path: &str) -> anyhow::Result<String> {
    Ok(c.call::<cmd::GuestlinkPathSha256>(&GuestlinkPathArgs {
        path: path.to_string(),
    })
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(base_name("/a/b/"), "b");
        assert_eq!(base_name("file"), "file");
        assert_eq!(base_name("/"), "/");
        assert_eq!(join("/", "x"), "/x");
        assert_eq!(join("/tmp", "x"), "/tmp/x");
        assert_eq!(guest_path("guest:/etc"), "/etc");
        // Windows guests: backslashes (and slashes) separate, a drive is a root.
        assert_eq!(base_name(r"C:\a\b\"), "b");
        assert_eq!(join(r"C:\", "x"), r"C:\x");
        assert_eq!(join(r"C:\tmp", "x"), r"C:\tmp\x");
        assert_eq!(split(r"C:\tmp\a.bin"), (Some(r"C:\tmp"), "a.bin"));
        assert_eq!(split(r"C:\a.bin"), (Some(r"C:\"), "a.bin"));
        assert_eq!(split("C:/tmp/a"), (Some("C:/tmp"), "a"));
        // On a POSIX path a backslash is part of a name.
        assert_eq!(base_name(r"/tmp/a\b"), r"a\b");
        assert_eq!(split("/a"), (Some("/"), "a"));
        assert_eq!(split("rel"), (None, "rel"));
    }
}
