//! `guestlink sync SRC DST`: make a directory on one side hold what a directory on the
//! other holds (as `rsync -a SRC/ DST/`), sending only what differs.
//!
//! Both trees are read first (the guest's through `__org.guestlink_path-list`), then
//! compared entry by entry: a file is sent when it is missing, of another type, or of
//! another size or modification time (whole seconds, as rsync compares them), or with
//! `--checksum` when its SHA-256 differs (the guest computes its own). Files are sent
//! as `guestlink cp -p` sends them (temporary name, checked, renamed, times kept), so
//! the next sync finds them equal. `--delete` removes what the source does not have;
//! `--dry-run` only says what would be done.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use guestlink_client::Client;
use guestlink_vocabulary::types::{GuestlinkPathInfo, GuestlinkPathKind};
use sha2::{Digest, Sha256};

use crate::cp::{self, Copier};
use crate::guestfs::{self, join};
use crate::render::bytes;

/// How to sync.
#[derive(Debug, Clone)]
pub struct Options {
    /// Compare content by SHA-256 instead of size and time.
    pub checksum: bool,
    /// Remove what the source does not have.
    pub delete: bool,
    /// Say what would be done, do nothing.
    pub dry_run: bool,
    /// Print the summary as JSON.
    pub json: bool,
    /// Bytes per request.
    pub chunk: usize,
}

/// One entry of a tree, relative to its root.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    kind: GuestlinkPathKind,
    size: u64,
    mtime_s: i64,
    mode: u32,
    target: Option<String>,
}

impl From<&GuestlinkPathInfo> for Entry {
    fn from(i: &GuestlinkPathInfo) -> Entry {
        Entry {
            kind: i.kind,
            size: i.size,
            mtime_s: i.mtime_ns.div_euclid(1_000_000_000),
            mode: i.mode as u32,
            target: i.target.clone(),
        }
    }
}

type Tree = BTreeMap<String, Entry>;

/// What to do to one entry of the destination.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Action {
    Mkdir(String, u32),
    Send(String),
    Link(String, String),
    Delete(String, bool),
}

fn local_tree(root: &Path) -> anyhow::Result<Tree> {
    let mut tree = Tree::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = root.join(&rel);
        let entries = std::fs::read_dir(&dir)
            .map_err(|e| anyhow::anyhow!("cannot read directory '{}': {e}", dir.display()))?;
        for e in entries {
            let e = e?;
            let r = rel.join(e.file_name());
            let m = std::fs::symlink_metadata(e.path())?;
            let kind = if m.file_type().is_symlink() {
                GuestlinkPathKind::Symlink
            } else if m.is_dir() {
                stack.push(r.clone());
                GuestlinkPathKind::Directory
            } else if m.is_file() {
                GuestlinkPathKind::File
            } else {
                GuestlinkPathKind::Other
            };
            let target = (kind == GuestlinkPathKind::Symlink)
                .then(|| std::fs::read_link(e.path()).ok())
                .flatten()
                .map(|t| t.to_string_lossy().into_owned());
            tree.insert(
                r.to_string_lossy().into_owned(),
                Entry {
                    kind,
                    size: m.len(),
                    mtime_s: cp::nanos(m.modified()).div_euclid(1_000_000_000),
                    mode: cp::local_mode(&m).unwrap_or(0o644),
                    target,
                },
            );
        }
    }
    Ok(tree)
}

async fn guest_tree(c: &mut Client, root: &str) -> anyhow::Result<Tree> {
    let mut tree = Tree::new();
    let mut stack = vec![String::new()];
    while let Some(rel) = stack.pop() {
        let dir = if rel.is_empty() {
            root.to_string()
        } else {
            join(root, &rel)
        };
        for e in guestfs::list(c, &dir).await? {
            let r = if rel.is_empty() {
                e.name.clone()
            } else {
                format!("{rel}/{}", e.name)
            };
            if e.kind == GuestlinkPathKind::Directory {
                stack.push(r.clone());
            }
            tree.insert(r, Entry::from(&e));
        }
    }
    Ok(tree)
}

/// The actions that make `dst` hold what `src` holds; `differs` decides for two
/// regular files of equal size and time whether content must still be compared.
fn plan(src: &Tree, dst: &Tree, delete: bool, by_checksum: bool) -> (Vec<Action>, Vec<String>) {
    let mut actions = Vec::new();
    let mut compare = Vec::new();
    for (rel, s) in src {
        let d = dst.get(rel);
        let same_kind = d.is_some_and(|d| d.kind == s.kind);
        if d.is_some() && !same_kind {
            actions.push(Action::Delete(
                rel.clone(),
                d.is_some_and(|d| d.kind == GuestlinkPathKind::Directory),
            ));
        }
        match s.kind {
            GuestlinkPathKind::Directory if !same_kind => {
                actions.push(Action::Mkdir(rel.clone(), s.mode))
            }
            GuestlinkPathKind::Directory => {}
            GuestlinkPathKind::File => match d {
                Some(d) if same_kind && by_checksum && d.size == s.size => {
                    compare.push(rel.clone())
                }
                Some(d)
                    if same_kind && !by_checksum && d.size == s.size && d.mtime_s == s.mtime_s => {}
                _ => actions.push(Action::Send(rel.clone())),
            },
            GuestlinkPathKind::Symlink
                if !same_kind || d.and_then(|d| d.target.as_ref()) != s.target.as_ref() =>
            {
                if same_kind {
                    actions.push(Action::Delete(rel.clone(), false));
                }
                actions.push(Action::Link(
                    rel.clone(),
                    s.target.clone().unwrap_or_default(),
                ));
            }
            _ => {}
        }
    }
    if delete {
        // Deepest first, and nothing inside a directory already going.
        let mut gone: Vec<&String> = dst.keys().filter(|k| !src.contains_key(*k)).collect();
        // A directory that goes, or that a file or link replaces, goes with all in it.
        let goes_whole = |p: &String| {
            dst[p].kind == GuestlinkPathKind::Directory
                && src
                    .get(p)
                    .is_none_or(|s| s.kind != GuestlinkPathKind::Directory)
        };
        gone.retain(|k| {
            !dst.keys()
                .any(|p| goes_whole(p) && k.starts_with(&format!("{p}/")))
        });
        for rel in gone.into_iter().rev() {
            let is_dir = dst[rel].kind == GuestlinkPathKind::Directory;
            actions.push(Action::Delete(rel.clone(), is_dir));
        }
    }
    (actions, compare)
}

fn local_sha256(path: &Path) -> anyhow::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h)?;
    Ok(cp::hex(&h.finalize()))
}

/// Syncs `src` to `dst`; exactly one is `guest:/path`, both directories.
pub async fn run(c: &mut Client, src: &str, dst: &str, opts: &Options) -> anyhow::Result<ExitCode> {
    crate::connect::require_guestlinkd(c, "guestlink sync", guestfs::PATH_COMMANDS).await?;
    let (to_guest, local, guest) = match (src.strip_prefix("guest:"), dst.strip_prefix("guest:")) {
        (None, Some(g)) => (true, PathBuf::from(src), g.to_string()),
        (Some(g), None) => (false, PathBuf::from(dst), g.to_string()),
        _ => {
            anyhow::bail!("name the guest side of the sync as guest:/path (exactly one of the two)")
        }
    };
    let start = Instant::now();
    // The destination root is created when it is missing.
    let guest_exists = guestfs::is_dir(c, &guest).await?;
    let local_exists = local.is_dir();
    let (src_tree, dst_tree) = if to_guest {
        if !local_exists {
            anyhow::bail!("'{}' is not a directory", local.display());
        }
        let dst_tree = if guest_exists {
            guest_tree(c, &guest).await?
        } else {
            Tree::new()
        };
        (local_tree(&local)?, dst_tree)
    } else {
        if !guest_exists {
            anyhow::bail!("'guest:{guest}' is not a directory");
        }
        let dst_tree = if local_exists {
            local_tree(&local)?
        } else {
            Tree::new()
        };
        (guest_tree(c, &guest).await?, dst_tree)
    };
    let (mut actions, compare) = plan(&src_tree, &dst_tree, opts.delete, opts.checksum);
    for rel in compare {
        let local_sum = local_sha256(&local.join(&rel))?;
        let guest_sum = guestfs::sha256(c, &join(&guest, &rel)).await?;
        if local_sum != guest_sum {
            actions.push(Action::Send(rel));
        }
    }
    // Directories before what goes in them; deletions of replaced entries first.
    actions.sort_by_key(|a| match a {
        Action::Delete(r, _) if src_tree.contains_key(r) => (0, r.clone()),
        Action::Mkdir(r, _) => (1, r.clone()),
        Action::Send(r) | Action::Link(r, _) => (2, r.clone()),
        Action::Delete(r, _) => (3, r.clone()),
    });
    let sent_bytes: u64 = actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(r) => src_tree.get(r).map(|e| e.size),
            _ => None,
        })
        .sum();
    for a in &actions {
        if !opts.json {
            let (verb, rel) = match a {
                Action::Mkdir(r, _) => ("mkdir", r),
                Action::Send(r) => ("send", r),
                Action::Link(r, _) => ("link", r),
                Action::Delete(r, _) => ("delete", r),
            };
            println!("{verb:6} {rel}");
        }
    }
    if !opts.dry_run {
        let cp_opts = cp::Options {
            chunk: opts.chunk,
            verify: true,
            json: false,
            allow_raw: true,
            recursive: false,
            preserve: true,
        };
        if to_guest && !guest_exists {
            guestfs::mkdir(c, &guest, true, None).await?;
        }
        if !to_guest && !local_exists {
            std::fs::create_dir_all(&local)?;
        }
        let mut copier = Copier::new(c, &cp_opts, true).await?;
        for a in &actions {
            copier.check_interrupted()?;
            if to_guest {
                apply_to_guest(&mut copier, &local, &guest, a, &src_tree).await?;
            } else {
                apply_to_local(&mut copier, &local, &guest, a).await?;
            }
        }
        // Directory times last: what went into them changed them.
        for rel in src_tree
            .iter()
            .filter(|(_, e)| e.kind == GuestlinkPathKind::Directory)
            .map(|(r, _)| r)
        {
            if to_guest {
                let m = std::fs::metadata(local.join(rel))?;
                let times = (cp::nanos(m.modified()), cp::nanos(m.accessed()));
                guestfs::set_attributes(copier.c, &join(&guest, rel), None, Some(times)).await?;
            } else if let Some(info) = guestfs::stat(copier.c, &join(&guest, rel)).await? {
                cp::set_local_times(&local.join(rel), &info)?;
            }
        }
    }
    let count = |f: fn(&Action) -> bool| actions.iter().filter(|a| f(a)).count();
    let sent = count(|a| matches!(a, Action::Send(_)));
    let deleted = count(|a| matches!(a, Action::Delete(..)));
    let secs = start.elapsed().as_secs_f64();
    if opts.json {
        println!(
            "{}",
            serde_json::json!({
                "sent": sent, "bytes": sent_bytes, "deleted": deleted,
                "directories": count(|a| matches!(a, Action::Mkdir(..))),
                "links": count(|a| matches!(a, Action::Link(..))),
                "unchanged": src_tree.values().filter(|e| e.kind == GuestlinkPathKind::File).count().saturating_sub(sent),
                "dry-run": opts.dry_run, "seconds": secs,
            })
        );
    } else {
        println!(
            "{}{sent} files sent ({}), {deleted} deleted, {} unchanged in {secs:.2} s",
            if opts.dry_run { "dry run: " } else { "" },
            bytes(sent_bytes),
            src_tree
                .values()
                .filter(|e| e.kind == GuestlinkPathKind::File)
                .count()
                .saturating_sub(sent)
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn apply_to_guest(
    copier: &mut Copier<'_>,
    local: &Path,
    guest: &str,
    action: &Action,
    src: &Tree,
) -> anyhow::Result<()> {
    match action {
        Action::Mkdir(rel, mode) => {
            guestfs::mkdir(copier.c, &join(guest, rel), false, Some(*mode)).await?;
            guestfs::set_attributes(copier.c, &join(guest, rel), Some(*mode), None).await
        }
        Action::Send(rel) => {
            let path = local.join(rel);
            let meta = std::fs::metadata(&path)?;
            let mut f = std::fs::File::open(&path)?;
            let size = src.get(rel).map(|e| e.size);
            copier
                .upload_file(&mut f, Some(&meta), &join(guest, rel), size)
                .await
        }
        Action::Link(rel, target) => guestfs::symlink(copier.c, &join(guest, rel), target).await,
        Action::Delete(rel, is_dir) => guestfs::remove(copier.c, &join(guest, rel), *is_dir).await,
    }
}

async fn apply_to_local(
    copier: &mut Copier<'_>,
    local: &Path,
    guest: &str,
    action: &Action,
) -> anyhow::Result<()> {
    match action {
        Action::Mkdir(rel, mode) => {
            std::fs::create_dir(local.join(rel))?;
            Ok(cp::set_local_mode(&local.join(rel), *mode)?)
        }
        Action::Send(rel) => {
            let from = join(guest, rel);
            let info = guestfs::stat(copier.c, &from).await?;
            copier
                .download_file(&from, Some(&local.join(rel)), info.as_ref())
                .await
        }
        Action::Link(rel, target) => cp::make_local_link(target, &local.join(rel)),
        Action::Delete(rel, true) => Ok(std::fs::remove_dir_all(local.join(rel))?),
        Action::Delete(rel, false) => Ok(std::fs::remove_file(local.join(rel))?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(size: u64, mtime_s: i64) -> Entry {
        Entry {
            kind: GuestlinkPathKind::File,
            size,
            mtime_s,
            mode: 0o644,
            target: None,
        }
    }

    fn dir() -> Entry {
        Entry {
            kind: GuestlinkPathKind::Directory,
            size: 0,
            mtime_s: 0,
            mode: 0o755,
            target: None,
        }
    }

    #[test]
    fn only_what_differs_is_sent() {
        let src: Tree = [
            ("a".into(), file(1, 10)),
            ("b".into(), file(2, 10)),
            ("d".into(), dir()),
            ("d/c".into(), file(3, 10)),
        ]
        .into();
        let dst: Tree = [
            ("a".into(), file(1, 10)),
            ("b".into(), file(2, 11)),
            ("old".into(), dir()),
            ("old/x".into(), file(1, 1)),
            ("d".into(), file(5, 5)),
        ]
        .into();
        let (actions, compare) = plan(&src, &dst, true, false);
        assert!(compare.is_empty());
        assert_eq!(
            actions,
            [
                Action::Send("b".into()),
                Action::Delete("d".into(), false),
                Action::Mkdir("d".into(), 0o755),
                Action::Send("d/c".into()),
                Action::Delete("old".into(), true),
            ]
        );
        // Without --delete nothing goes; with --checksum same-size files are compared.
        let (actions, compare) = plan(&src, &dst, false, true);
        assert!(!actions
            .iter()
            .any(|a| matches!(a, Action::Delete(r, _) if r == "old")));
        assert_eq!(compare, ["a", "b"]);
    }
}
