//! `guestlink ls`, `stat`, `rm` and `mkdir`: the guest's files and directories by path
//! (guestlinkd's `__org.guestlink_path-*` commands), with ls(1)'s and rm(1)'s habits.

use std::process::ExitCode;

use guestlink_client::Client;
use guestlink_vocabulary::types::{GuestlinkPathInfo, GuestlinkPathKind};

use crate::guestfs::{self, guest_path};
use crate::render::{table, utc};

/// `ls -l`'s type letter and permission string: `drwxr-xr-x`.
pub fn mode_string(kind: GuestlinkPathKind, mode: i64) -> String {
    let t = match kind {
        GuestlinkPathKind::Directory => 'd',
        GuestlinkPathKind::Symlink => 'l',
        GuestlinkPathKind::Fifo => 'p',
        GuestlinkPathKind::Socket => 's',
        GuestlinkPathKind::CharDevice => 'c',
        GuestlinkPathKind::BlockDevice => 'b',
        _ => '-',
    };
    let m = mode as u32;
    let bit = |b: u32, c: char| if m & b != 0 { c } else { '-' };
    let special = |x: u32, s: u32, set: char, plain: char| match (m & x != 0, m & s != 0) {
        (true, true) => set,
        (false, true) => plain.to_ascii_uppercase(),
        (true, false) => 'x',
        (false, false) => '-',
    };
    [
        t,
        bit(0o400, 'r'),
        bit(0o200, 'w'),
        special(0o100, 0o4000, 's', 's'),
        bit(0o040, 'r'),
        bit(0o020, 'w'),
        special(0o010, 0o2000, 's', 's'),
        bit(0o004, 'r'),
        bit(0o002, 'w'),
        special(0o001, 0o1000, 't', 't'),
    ]
    .into_iter()
    .collect()
}

fn shown_name(e: &GuestlinkPathInfo) -> String {
    match &e.target {
        Some(t) => format!("{} -> {t}", e.name),
        None => e.name.clone(),
    }
}

/// `guestlink ls [-l] [-a] guest:PATH`.
pub async fn ls(
    c: &mut Client,
    path: &str,
    long: bool,
    all: bool,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let path = guest_path(path);
    let info = guestfs::stat(c, path).await?.ok_or_else(|| {
        anyhow::anyhow!("cannot access 'guest:{path}': No such file or directory")
    })?;
    let mut entries = if info.kind == GuestlinkPathKind::Directory {
        guestfs::list(c, path).await?
    } else {
        vec![GuestlinkPathInfo {
            name: path.to_string(),
            ..info
        }]
    };
    if !all {
        entries.retain(|e| !e.name.starts_with('.'));
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&entries)?);
    } else if long {
        let rows: Vec<Vec<String>> = entries
            .iter()
            .map(|e| {
                vec![
                    mode_string(e.kind, e.mode),
                    e.nlink.to_string(),
                    e.uid.to_string(),
                    e.gid.to_string(),
                    e.size.to_string(),
                    utc(e.mtime_ns)[..16].to_string(),
                    shown_name(e),
                ]
            })
            .collect();
        print!(
            "{}",
            table(
                &[
                    "MODE",
                    "LINKS",
                    "UID",
                    "GID",
                    "SIZE",
                    "MODIFIED (UTC)",
                    "NAME"
                ],
                &rows
            )
        );
    } else {
        for e in &entries {
            let slash = if e.kind == GuestlinkPathKind::Directory {
                "/"
            } else {
                ""
            };
            println!("{}{slash}", e.name);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `guestlink stat [-L] guest:PATH`.
pub async fn stat(
    c: &mut Client,
    path: &str,
    follow: bool,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let path = guest_path(path);
    let info = if follow {
        guestfs::stat(c, path).await?
    } else {
        guestfs::lstat(c, path).await?
    }
    .ok_or_else(|| anyhow::anyhow!("cannot stat 'guest:{path}': No such file or directory"))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&info)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("  path: {path}");
    println!("  type: {}", info.kind.as_str());
    if let Some(t) = &info.target {
        println!("target: {t}");
    }
    println!("  size: {}", info.size);
    println!(
        "  mode: {:04o} ({})",
        info.mode,
        mode_string(info.kind, info.mode)
    );
    println!(" owner: uid {} gid {}", info.uid, info.gid);
    println!(" links: {}", info.nlink);
    println!("modify: {}", utc(info.mtime_ns));
    println!("access: {}", utc(info.atime_ns));
    Ok(ExitCode::SUCCESS)
}

/// `guestlink rm [-r] [-f] guest:PATH...`.
pub async fn rm(
    c: &mut Client,
    paths: &[String],
    recursive: bool,
    force: bool,
) -> anyhow::Result<ExitCode> {
    for p in paths {
        let path = guest_path(p);
        if force && guestfs::lstat(c, path).await?.is_none() {
            continue;
        }
        if !recursive
            && guestfs::lstat(c, path)
                .await?
                .is_some_and(|i| i.kind == GuestlinkPathKind::Directory)
        {
            anyhow::bail!("cannot remove 'guest:{path}': Is a directory (use -r)");
        }
        guestfs::remove(c, path, recursive).await?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `guestlink mkdir [-p] [-m MODE] guest:PATH...`.
pub async fn mkdir(
    c: &mut Client,
    paths: &[String],
    parents: bool,
    mode: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let mode = mode
        .map(|m| {
            u32::from_str_radix(m, 8)
                .ok()
                .filter(|m| *m <= 0o7777)
                .ok_or_else(|| {
                    crate::exit::Usage(format!("invalid mode '{m}': give octal digits, e.g. 755"))
                })
        })
        .transpose()?;
    for p in paths {
        guestfs::mkdir(c, guest_path(p), parents, mode).await?;
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_read_as_ls_writes_them() {
        assert_eq!(
            mode_string(GuestlinkPathKind::Directory, 0o755),
            "drwxr-xr-x"
        );
        assert_eq!(mode_string(GuestlinkPathKind::File, 0o4755), "-rwsr-xr-x");
        assert_eq!(
            mode_string(GuestlinkPathKind::Directory, 0o1777),
            "drwxrwxrwt"
        );
        assert_eq!(mode_string(GuestlinkPathKind::File, 0o2644), "-rw-r-Sr--");
        assert_eq!(mode_string(GuestlinkPathKind::Symlink, 0o777), "lrwxrwxrwx");
    }
}
