//! `guestlink cp`: copy files and directory trees to or from the guest (`guest:/path`
//! names the guest side) with cp/scp habits: a directory as the destination, `-r`,
//! `-` for standard input or output, modes kept as scp keeps them, times too with
//! `-p`.
//!
//! Data moves in chunks, raw when the agent offers bulk transfer, base64 otherwise.
//! Each file is written under a temporary name beside its destination (in the guest
//! inside a new private directory `.guestlink-PID-N.d`, here as `.NAME.guestlink-PID`
//! created 0600), checked (SHA-256, computed in the guest by guestlinkd, or read back
//! from a stock qemu-ga), and only then renamed into place: a copy that fails (a full
//! disk, a refusal) or is interrupted with Ctrl-C removes its temporary file and never
//! leaves a partial file under the destination's name. A stock qemu-ga
//! can do single-file copies only (written in place); the rest says it needs
//! guestlinkd.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use guestlink_client::Client;
use guestlink_vocabulary::commands as cmd;
use guestlink_vocabulary::types::{
    GuestFileHandleArgs, GuestFileOpenArgs, GuestlinkPathInfo, GuestlinkPathKind,
};
use sha2::{Digest, Sha256};

use crate::guestfs::{self, base_name, join, split};
use crate::render::bytes;
use crate::transfer::Transfer;

/// The largest read qemu-ga allows.
const MAX_CHUNK: usize = 48 << 20;

/// How to copy.
#[derive(Debug, Clone)]
pub struct Options {
    /// Bytes per request.
    pub chunk: usize,
    /// Check each copy's SHA-256 against the source.
    pub verify: bool,
    /// Print the summary as JSON.
    pub json: bool,
    /// Use raw bulk transfer when the agent offers it.
    pub allow_raw: bool,
    /// Copy directories and what is in them.
    pub recursive: bool,
    /// Keep modification and access times (modes are always kept).
    pub preserve: bool,
}

/// A progress bar on standard error, for files above 8 MiB on a terminal.
struct Progress {
    total: Option<u64>,
    done: u64,
    start: Instant,
    shown: bool,
}

impl Progress {
    fn new(total: Option<u64>) -> Progress {
        let shown = std::io::stderr().is_terminal() && total.is_none_or(|t| t > 8 << 20);
        Progress {
            total,
            done: 0,
            start: Instant::now(),
            shown,
        }
    }

    fn add(&mut self, n: usize) {
        self.done += n as u64;
        if !self.shown {
            return;
        }
        let rate = self.done as f64 / self.start.elapsed().as_secs_f64().max(1e-6);
        let of = self
            .total
            .map(|t| {
                let pct = (self.done * 100 / t.max(1)).min(100);
                let filled = (pct / 5) as usize;
                let eta = (t.saturating_sub(self.done) as f64 / rate.max(1.0)) as u64;
                format!(
                    " [{}{}] {pct:3}% of {}  ETA {}:{:02}",
                    "#".repeat(filled),
                    ".".repeat(20 - filled),
                    bytes(t),
                    eta / 60,
                    eta % 60
                )
            })
            .unwrap_or_default();
        eprint!("\r  {}{of}  {}/s   ", bytes(self.done), bytes(rate as u64));
    }

    fn finish(&self) {
        if self.shown {
            eprintln!();
        }
    }
}

/// One side of a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Endpoint {
    /// Standard input or output (`-`).
    Stdio,
    /// A local path.
    Local(PathBuf),
    /// A guest path.
    Guest(String),
}

impl Endpoint {
    fn parse(arg: &str) -> Endpoint {
        match arg.strip_prefix("guest:") {
            Some(p) => Endpoint::Guest(p.to_string()),
            None if arg == "-" => Endpoint::Stdio,
            None => Endpoint::Local(PathBuf::from(arg)),
        }
    }
}

/// What was copied.
#[derive(Debug, Default)]
struct Totals {
    files: u64,
    dirs: u64,
    links: u64,
    bytes: u64,
    /// The SHA-256 of the last file copied.
    digest: String,
    /// Whether every file was checked.
    verified: bool,
}

/// A copy in progress: the connection, how data moves, and what the agent can do.
pub(crate) struct Copier<'a> {
    pub(crate) c: &'a mut Client,
    how: Transfer,
    opts: &'a Options,
    chunk: usize,
    /// The agent has the path commands (guestlinkd): temporary names, modes, trees.
    paths: bool,
    interrupted: Arc<AtomicBool>,
    /// Sets `interrupted` on Ctrl-C; stopped when the copier goes.
    watcher: tokio::task::JoinHandle<()>,
    totals: Totals,
}

impl Drop for Copier<'_> {
    fn drop(&mut self) {
        self.watcher.abort();
    }
}

/// The temporary name a file is written under before it is renamed to `name` in the
/// same directory.
fn temporary(dir_and_name: &str) -> String {
    let (dir, name) = split(dir_and_name);
    let tmp = format!(".{name}.guestlink-{}", std::process::id());
    match dir {
        Some(dir) => join(dir, &tmp),
        None => tmp,
    }
}

/// A new private directory beside the guest path `target`, for writing it.
fn private_dir(target: &str) -> String {
    let dir = split(target).0.unwrap_or("/");
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    join(dir, &format!(".guestlink-{}-{nanos}.d", std::process::id()))
}

pub(crate) fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn nanos(t: std::io::Result<SystemTime>) -> i64 {
    t.ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i64)
}

fn time_of(ns: i64) -> SystemTime {
    UNIX_EPOCH + std::time::Duration::from_nanos(ns.max(0) as u64)
}

#[cfg(unix)]
pub(crate) fn local_mode(meta: &std::fs::Metadata) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    Some(meta.permissions().mode() & 0o7777)
}

#[cfg(not(unix))]
pub(crate) fn local_mode(_meta: &std::fs::Metadata) -> Option<u32> {
    None
}

#[cfg(unix)]
pub(crate) fn set_local_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
pub(crate) fn set_local_mode(_path: &Path, _mode: u32) -> std::io::Result<()> {
    Ok(())
}

/// Copies `paths[..n-1]` to `paths[n-1]`; the guest side is written `guest:/path`.
pub async fn run(c: &mut Client, paths: &[String], opts: &Options) -> anyhow::Result<ExitCode> {
    let Some((dst, srcs)) = paths.split_last().filter(|(_, s)| !s.is_empty()) else {
        return Err(crate::exit::Usage("give a source and a destination".into()).into());
    };
    let dst = Endpoint::parse(dst);
    let srcs: Vec<Endpoint> = srcs.iter().map(|s| Endpoint::parse(s)).collect();
    let to_guest = matches!(dst, Endpoint::Guest(_));
    let from_guest = srcs.iter().all(|s| matches!(s, Endpoint::Guest(_)));
    let any_guest_src = srcs.iter().any(|s| matches!(s, Endpoint::Guest(_)));
    if to_guest == from_guest || (to_guest && any_guest_src) {
        anyhow::bail!(
            "name the guest side of the copy as guest:/path: every source, or the destination"
        );
    }
    let paths_ok = guestfs::offers(c, guestfs::PATH_COMMANDS).await?;
    if !paths_ok && (opts.recursive || opts.preserve || srcs.len() > 1) {
        crate::connect::require_guestlinkd(
            c,
            "guestlink cp -r, -p or several sources",
            guestfs::PATH_COMMANDS,
        )
        .await?;
    }
    let mut copier = Copier::new(c, opts, paths_ok).await?;
    let start = Instant::now();
    let result = if to_guest {
        copier.upload(&srcs, &dst).await
    } else {
        copier.download(&srcs, &dst).await
    };
    result?;
    copier.report(start, to_guest, dst == Endpoint::Stdio);
    Ok(ExitCode::SUCCESS)
}

impl<'a> Copier<'a> {
    /// A copier on `c`; `paths` says whether the agent has the path commands.
    pub(crate) async fn new(
        c: &'a mut Client,
        opts: &'a Options,
        paths: bool,
    ) -> anyhow::Result<Copier<'a>> {
        let interrupted = Arc::new(AtomicBool::new(false));
        let flag = interrupted.clone();
        let watcher = tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                flag.store(true, Ordering::SeqCst);
            }
        });
        Ok(Copier {
            how: Transfer::choose(c, opts.allow_raw).await?,
            c,
            opts,
            chunk: opts.chunk.clamp(1, MAX_CHUNK),
            paths,
            interrupted,
            watcher,
            totals: Totals {
                verified: opts.verify,
                ..Totals::default()
            },
        })
    }

    pub(crate) fn check_interrupted(&self) -> anyhow::Result<()> {
        if self.interrupted.load(Ordering::SeqCst) {
            anyhow::bail!("interrupted");
        }
        Ok(())
    }

    fn report(&self, start: Instant, to_guest: bool, data_on_stdout: bool) {
        let t = &self.totals;
        let secs = start.elapsed().as_secs_f64();
        let direction = if to_guest { "to" } else { "from" };
        let text = if self.opts.json {
            serde_json::json!({
                "bytes": t.bytes, "files": t.files, "directories": t.dirs, "links": t.links,
                "sha256": (t.files == 1).then_some(&t.digest), "verified": t.verified,
                "seconds": secs, "transfer": self.how.name(),
            })
            .to_string()
        } else {
            let what = if t.files == 1 && t.dirs == 0 && t.links == 0 {
                bytes(t.bytes)
            } else {
                format!(
                    "{} files, {} directories, {} links ({})",
                    t.files,
                    t.dirs,
                    t.links,
                    bytes(t.bytes)
                )
            };
            let digest = if t.files == 1 {
                format!(", sha256 {}", t.digest)
            } else {
                String::new()
            };
            format!(
                "copied {what} {direction} the guest in {secs:.2} s ({}/s, {}){digest}{}",
                bytes((t.bytes as f64 / secs.max(1e-6)) as u64),
                self.how.name(),
                if t.verified && t.files > 0 {
                    " (verified)"
                } else {
                    ""
                }
            )
        };
        if data_on_stdout {
            eprintln!("{text}");
        } else {
            println!("{text}");
        }
    }

    // ---- to the guest ----

    async fn upload(&mut self, srcs: &[Endpoint], dst: &Endpoint) -> anyhow::Result<()> {
        let Endpoint::Guest(dst) = dst else {
            unreachable!("checked by run")
        };
        let into_dir = if self.paths {
            guestfs::is_dir(self.c, dst).await?
        } else {
            dst.ends_with('/')
        };
        if srcs.len() > 1 && !into_dir {
            anyhow::bail!("target 'guest:{dst}' is not a directory");
        }
        for src in srcs {
            match src {
                Endpoint::Stdio => {
                    if into_dir {
                        anyhow::bail!("copying standard input needs a file name as destination, not the directory 'guest:{dst}'");
                    }
                    self.upload_file(&mut std::io::stdin().lock(), None, dst, None)
                        .await?;
                }
                Endpoint::Local(src) => {
                    let meta = std::fs::metadata(src)
                        .map_err(|e| anyhow::anyhow!("cannot stat '{}': {e}", src.display()))?;
                    let name = base_name(&src.to_string_lossy()).to_string();
                    let target = if into_dir {
                        join(dst, &name)
                    } else {
                        dst.clone()
                    };
                    if meta.is_dir() {
                        if !self.opts.recursive {
                            anyhow::bail!(
                                "-r not specified; omitting directory '{}'",
                                src.display()
                            );
                        }
                        Box::pin(self.upload_tree(src, &target, &meta)).await?;
                    } else {
                        let mut file = std::fs::File::open(src)
                            .map_err(|e| anyhow::anyhow!("cannot open '{}': {e}", src.display()))?;
                        self.upload_file(&mut file, Some(&meta), &target, Some(meta.len()))
                            .await?;
                    }
                }
                Endpoint::Guest(_) => unreachable!("checked by run"),
            }
        }
        Ok(())
    }

    async fn upload_tree(
        &mut self,
        src: &Path,
        target: &str,
        meta: &std::fs::Metadata,
    ) -> anyhow::Result<()> {
        match guestfs::lstat(self.c, target).await? {
            Some(s) if s.kind == GuestlinkPathKind::Directory => {}
            Some(_) => {
                anyhow::bail!("cannot overwrite non-directory 'guest:{target}' with a directory")
            }
            None => guestfs::mkdir(self.c, target, false, Some(0o700)).await?,
        }
        self.totals.dirs += 1;
        let mut entries: Vec<_> = std::fs::read_dir(src)
            .and_then(|d| d.collect::<std::io::Result<Vec<_>>>())
            .map_err(|e| anyhow::anyhow!("cannot read directory '{}': {e}", src.display()))?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            self.check_interrupted()?;
            let path = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            let to = join(target, &name);
            let m = std::fs::symlink_metadata(&path)
                .map_err(|err| anyhow::anyhow!("cannot stat '{}': {err}", path.display()))?;
            if m.file_type().is_symlink() {
                let link = std::fs::read_link(&path)?;
                if guestfs::lstat(self.c, &to).await?.is_some() {
                    guestfs::remove(self.c, &to, false).await?;
                }
                guestfs::symlink(self.c, &to, &link.to_string_lossy()).await?;
                self.totals.links += 1;
            } else if m.is_dir() {
                Box::pin(self.upload_tree(&path, &to, &m)).await?;
            } else if m.is_file() {
                let mut file = std::fs::File::open(&path)
                    .map_err(|err| anyhow::anyhow!("cannot open '{}': {err}", path.display()))?;
                self.upload_file(&mut file, Some(&m), &to, Some(m.len()))
                    .await?;
            } else {
                eprintln!(
                    "guestlink: skipping '{}': not a file, directory or link",
                    path.display()
                );
            }
        }
        // The directory's own mode and times last: its entries changed its mtime.
        let times = self
            .opts
            .preserve
            .then(|| (nanos(meta.modified()), nanos(meta.accessed())));
        guestfs::set_attributes(self.c, target, local_mode(meta), times).await
    }

    /// Writes `reader` to the guest file `target`. With guestlinkd: into a private
    /// directory made beside the destination (mode 0700, new, so that nobody else can
    /// open the file while it is written), then given its mode (and times), checked,
    /// and renamed into place; the directory goes in every case. With a stock qemu-ga:
    /// in place.
    pub(crate) async fn upload_file(
        &mut self,
        reader: &mut dyn Read,
        meta: Option<&std::fs::Metadata>,
        target: &str,
        size: Option<u64>,
    ) -> anyhow::Result<()> {
        if !self.paths {
            let digest = self.write_guest(target, reader, size).await?;
            if self.opts.verify {
                let back = hex(&self.guest_sha256(target).await?);
                if back != digest {
                    anyhow::bail!(
                        "sha256 mismatch: copied {digest} but 'guest:{target}' reads back as {back}"
                    );
                }
            }
            self.totals.files += 1;
            self.totals.digest = digest;
            return Ok(());
        }
        let private = private_dir(target);
        guestfs::mkdir(self.c, &private, false, Some(0o700)).await?;
        let written = join(&private, base_name(target));
        let result = self
            .upload_privately(reader, meta, target, &written, size)
            .await;
        let cleaned = guestfs::remove(self.c, &private, result.is_err()).await;
        result?;
        cleaned
    }

    async fn upload_privately(
        &mut self,
        reader: &mut dyn Read,
        meta: Option<&std::fs::Metadata>,
        target: &str,
        written: &str,
        size: Option<u64>,
    ) -> anyhow::Result<()> {
        let digest = self.write_guest(written, reader, size).await?;
        // A file from standard input gets what cp gives a new file under umask 022.
        let mode = meta.and_then(local_mode).unwrap_or(0o644);
        let times = meta
            .filter(|_| self.opts.preserve)
            .map(|m| (nanos(m.modified()), nanos(m.accessed())));
        guestfs::set_attributes(self.c, written, Some(mode), times).await?;
        if self.opts.verify {
            let back = guestfs::sha256(self.c, written).await?;
            if back != digest {
                anyhow::bail!(
                    "sha256 mismatch: copied {digest} but 'guest:{target}' reads back as {back}"
                );
            }
        }
        guestfs::rename(self.c, written, target).await?;
        self.totals.files += 1;
        self.totals.digest = digest;
        Ok(())
    }

    /// Writes the whole of `reader` to a new guest file; returns its SHA-256.
    async fn write_guest(
        &mut self,
        path: &str,
        reader: &mut dyn Read,
        size: Option<u64>,
    ) -> anyhow::Result<String> {
        let h = open(self.c, path, "w").await?;
        let mut progress = Progress::new(size);
        let result = async {
            let mut sha = Sha256::new();
            let mut buf = vec![0u8; self.chunk];
            loop {
                self.check_interrupted()?;
                let n = read_full(reader, &mut buf)?;
                if n == 0 {
                    break;
                }
                sha.update(&buf[..n]);
                let took = self.how.write(self.c, h, &buf[..n]).await?;
                if took != n {
                    anyhow::bail!("the guest took {took} of {n} bytes (disk full?)");
                }
                self.totals.bytes += n as u64;
                progress.add(n);
            }
            anyhow::Ok(hex(&sha.finalize()))
        }
        .await;
        progress.finish();
        let closed = close(self.c, h).await;
        let digest = result?;
        // A close can report what the writes did not: a full disk found at the flush.
        closed?;
        Ok(digest)
    }

    async fn guest_sha256(&mut self, path: &str) -> anyhow::Result<[u8; 32]> {
        let mut h = Sha256::new();
        read_guest(self.c, self.how, path, self.chunk, |d| {
            h.update(&d);
            Ok(())
        })
        .await?;
        Ok(h.finalize().into())
    }

    // ---- from the guest ----

    async fn download(&mut self, srcs: &[Endpoint], dst: &Endpoint) -> anyhow::Result<()> {
        let into_dir = match dst {
            Endpoint::Local(p) => p.is_dir() || p.to_string_lossy().ends_with('/'),
            _ => false,
        };
        if srcs.len() > 1 && !into_dir {
            anyhow::bail!("target '{}' is not a directory", shown(dst));
        }
        for src in srcs {
            let Endpoint::Guest(src) = src else {
                unreachable!("checked by run")
            };
            let info = if self.paths {
                Some(guestfs::stat(self.c, src).await?.ok_or_else(|| {
                    anyhow::anyhow!("cannot stat 'guest:{src}': No such file or directory")
                })?)
            } else {
                None
            };
            let is_dir = info
                .as_ref()
                .is_some_and(|i| i.kind == GuestlinkPathKind::Directory);
            let target = match dst {
                Endpoint::Stdio if is_dir => {
                    anyhow::bail!("cannot write the directory 'guest:{src}' to standard output")
                }
                Endpoint::Stdio => None,
                Endpoint::Local(p) if into_dir => Some(p.join(base_name(src))),
                Endpoint::Local(p) => Some(p.clone()),
                Endpoint::Guest(_) => unreachable!("checked by run"),
            };
            match (is_dir, target) {
                (true, Some(t)) => {
                    if !self.opts.recursive {
                        anyhow::bail!("-r not specified; omitting directory 'guest:{src}'");
                    }
                    let info = info.expect("a directory was stat'ed");
                    Box::pin(self.download_tree(src, &t, &info)).await?;
                }
                (_, target) => {
                    self.download_file(src, target.as_deref(), info.as_ref())
                        .await?
                }
            }
        }
        Ok(())
    }

    async fn download_tree(
        &mut self,
        src: &str,
        target: &Path,
        info: &GuestlinkPathInfo,
    ) -> anyhow::Result<()> {
        match std::fs::symlink_metadata(target) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => anyhow::bail!(
                "cannot overwrite non-directory '{}' with a directory",
                target.display()
            ),
            Err(_) => std::fs::create_dir(target).map_err(|e| {
                anyhow::anyhow!("cannot create directory '{}': {e}", target.display())
            })?,
        }
        self.totals.dirs += 1;
        for e in guestfs::list(self.c, src).await? {
            self.check_interrupted()?;
            let from = join(src, &e.name);
            let to = target.join(&e.name);
            match e.kind {
                GuestlinkPathKind::Directory => {
                    Box::pin(self.download_tree(&from, &to, &e)).await?
                }
                GuestlinkPathKind::File => self.download_file(&from, Some(&to), Some(&e)).await?,
                GuestlinkPathKind::Symlink => {
                    let link = e.target.clone().unwrap_or_default();
                    if std::fs::symlink_metadata(&to).is_ok() {
                        std::fs::remove_file(&to)?;
                    }
                    make_local_link(&link, &to)?;
                    self.totals.links += 1;
                }
                _ => eprintln!("guestlink: skipping 'guest:{from}': not a file, directory or link"),
            }
        }
        set_local_mode(target, info.mode as u32)?;
        if self.opts.preserve {
            set_local_times(target, info)?;
        }
        Ok(())
    }

    /// Reads the guest file `src` into `target` (standard output when `None`): under a
    /// temporary name, checked, then renamed.
    pub(crate) async fn download_file(
        &mut self,
        src: &str,
        target: Option<&Path>,
        info: Option<&GuestlinkPathInfo>,
    ) -> anyhow::Result<()> {
        let Some(target) = target else {
            let mut out = std::io::stdout().lock();
            let digest = self.read_into(src, &mut out, None).await?;
            out.flush()?;
            return self.check_download(src, digest).await;
        };
        let tmp = PathBuf::from(temporary(&target.to_string_lossy()));
        let result = async {
            let mut file = create_private(&tmp)
                .map_err(|e| anyhow::anyhow!("cannot create '{}': {e}", tmp.display()))?;
            let digest = self.read_into(src, &mut file, info.map(|i| i.size)).await?;
            file.sync_all()?;
            drop(file);
            if let Some(i) = info {
                set_local_mode(&tmp, i.mode as u32)?;
                if self.opts.preserve {
                    set_local_times(&tmp, i)?;
                }
            }
            self.check_download(src, digest).await?;
            std::fs::rename(&tmp, target)
                .map_err(|e| anyhow::anyhow!("cannot rename to '{}': {e}", target.display()))
        }
        .await;
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    async fn read_into(
        &mut self,
        src: &str,
        out: &mut dyn Write,
        size: Option<u64>,
    ) -> anyhow::Result<[u8; 32]> {
        let mut progress = Progress::new(size);
        let mut sha = Sha256::new();
        let flag = self.interrupted.clone();
        let total = read_guest(self.c, self.how, src, self.chunk, |d| {
            if flag.load(Ordering::SeqCst) {
                anyhow::bail!("interrupted");
            }
            sha.update(&d);
            progress.add(d.len());
            Ok(out.write_all(&d)?)
        })
        .await;
        progress.finish();
        self.totals.bytes += total?;
        Ok(sha.finalize().into())
    }

    async fn check_download(&mut self, src: &str, digest: [u8; 32]) -> anyhow::Result<()> {
        let digest = hex(&digest);
        if self.opts.verify {
            let back = if self.paths {
                guestfs::sha256(self.c, src).await?
            } else {
                hex(&self.guest_sha256(src).await?)
            };
            if back != digest {
                anyhow::bail!(
                    "sha256 mismatch: received {digest} but 'guest:{src}' reads as {back} (did it change during the copy?)"
                );
            }
        }
        self.totals.files += 1;
        self.totals.digest = digest;
        Ok(())
    }
}

fn shown(e: &Endpoint) -> String {
    match e {
        Endpoint::Stdio => "-".into(),
        Endpoint::Local(p) => p.display().to_string(),
        Endpoint::Guest(g) => format!("guest:{g}"),
    }
}

pub(crate) fn set_local_times(path: &Path, info: &GuestlinkPathInfo) -> anyhow::Result<()> {
    let times = std::fs::FileTimes::new()
        .set_modified(time_of(info.mtime_ns))
        .set_accessed(time_of(info.atime_ns));
    std::fs::File::options()
        .read(true)
        .open(path)
        .and_then(|f| f.set_times(times))
        .map_err(|e| anyhow::anyhow!("cannot set the times of '{}': {e}", path.display()))
}

/// A new file only its owner can open (0600 until its final mode is set).
fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut opts = std::fs::File::options();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(path)
}

#[cfg(unix)]
pub(crate) fn make_local_link(target: &str, path: &Path) -> anyhow::Result<()> {
    std::os::unix::fs::symlink(target, path)
        .map_err(|e| anyhow::anyhow!("cannot create the link '{}': {e}", path.display()))
}

#[cfg(not(unix))]
pub(crate) fn make_local_link(_target: &str, path: &Path) -> anyhow::Result<()> {
    anyhow::bail!("cannot create the link '{}' here", path.display())
}

async fn open(c: &mut Client, path: &str, mode: &str) -> anyhow::Result<i64> {
    Ok(c.call::<cmd::GuestFileOpen>(&GuestFileOpenArgs {
        path: path.to_string(),
        mode: Some(mode.into()),
    })
    .await?)
}

async fn close(c: &mut Client, handle: i64) -> anyhow::Result<()> {
    c.call::<cmd::GuestFileClose>(&GuestFileHandleArgs { handle })
        .await?;
    Ok(())
}

/// Reads a guest file to its end, handing each chunk to `sink`.
pub(crate) async fn read_guest(
    c: &mut Client,
    how: Transfer,
    path: &str,
    chunk: usize,
    mut sink: impl FnMut(Vec<u8>) -> anyhow::Result<()>,
) -> anyhow::Result<u64> {
    let h = open(c, path, "r").await?;
    let mut total = 0u64;
    let result = async {
        loop {
            let (data, eof) = how.read(c, h, chunk).await?;
            let n = data.len();
            total += n as u64;
            sink(data)?;
            if eof || n == 0 {
                return anyhow::Ok(total);
            }
        }
    }
    .await;
    let closed = close(c, h).await;
    let total = result?;
    closed?;
    Ok(total)
}

/// Fills `buf` as far as the reader allows.
fn read_full(f: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_directories_sit_beside_the_destination() {
        let pid = std::process::id();
        assert!(private_dir("/tmp/a.bin").starts_with(&format!("/tmp/.guestlink-{pid}-")));
        assert!(private_dir("/a").starts_with(&format!("/.guestlink-{pid}-")));
        assert!(private_dir("/a").ends_with(".d"));
    }

    #[test]
    fn temporary_names_sit_beside_the_destination() {
        let pid = std::process::id();
        assert_eq!(
            temporary("/tmp/a.bin"),
            format!("/tmp/.a.bin.guestlink-{pid}")
        );
        assert_eq!(temporary("/a"), format!("/.a.guestlink-{pid}"));
        assert_eq!(temporary("rel"), format!(".rel.guestlink-{pid}"));
        assert_eq!(temporary("d/rel"), format!("d/.rel.guestlink-{pid}"));
        assert_eq!(
            temporary(r"C:\guestlink\a.bin"),
            format!(r"C:\guestlink\.a.bin.guestlink-{pid}")
        );
        assert!(private_dir(r"C:\a.bin").starts_with(&format!(r"C:\.guestlink-{pid}-")));
    }

    #[test]
    fn endpoints() {
        assert_eq!(Endpoint::parse("-"), Endpoint::Stdio);
        assert_eq!(Endpoint::parse("guest:/x"), Endpoint::Guest("/x".into()));
        assert_eq!(Endpoint::parse("x"), Endpoint::Local("x".into()));
    }
}
