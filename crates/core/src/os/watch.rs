//! Watching a path with inotify, for `__org.guestlink_path-watch`: a [`Watcher`] is set
//! up on the caller's thread (so that a missing path fails the command) and then runs
//! on a thread of its own until its stop flag is set, its path goes away, or the
//! function it reports to says nobody listens any more.

use std::collections::HashMap;
use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use guestlink_vocabulary::types::GuestlinkPathChange;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};

/// One change seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The path that changed.
    pub path: PathBuf,
    /// What happened.
    pub change: GuestlinkPathChange,
    /// Whether it is a directory.
    pub directory: bool,
    /// Pairs the two halves of a rename.
    pub cookie: u32,
}

/// A path under watch.
pub struct Watcher {
    inotify: Inotify,
    dirs: HashMap<WatchDescriptor, PathBuf>,
    root: PathBuf,
    recursive: bool,
    limit: usize,
}

fn mask() -> AddWatchFlags {
    AddWatchFlags::IN_CREATE
        | AddWatchFlags::IN_CLOSE_WRITE
        | AddWatchFlags::IN_DELETE
        | AddWatchFlags::IN_MOVED_FROM
        | AddWatchFlags::IN_MOVED_TO
        | AddWatchFlags::IN_ATTRIB
        | AddWatchFlags::IN_DELETE_SELF
        | AddWatchFlags::IN_MOVE_SELF
        | AddWatchFlags::IN_DONT_FOLLOW
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher")
            .field("root", &self.root)
            .field("dirs", &self.dirs.len())
            .field("recursive", &self.recursive)
            .finish()
    }
}

impl Watcher {
    /// Watches `root` (and, with `recursive`, every directory below it, at most
    /// `limit` in all).
    pub fn new(root: &Path, recursive: bool, limit: usize) -> io::Result<Watcher> {
        let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)?;
        let mut w = Watcher {
            inotify,
            dirs: HashMap::new(),
            root: root.to_path_buf(),
            recursive,
            limit,
        };
        w.add(root)?;
        if recursive && root.is_dir() {
            w.add_below(root)?;
        }
        Ok(w)
    }

    fn add(&mut self, path: &Path) -> io::Result<()> {
        if self.dirs.len() >= self.limit {
            return Err(io::Error::other(format!(
                "more than {} directories to watch",
                self.limit
            )));
        }
        let wd = self.inotify.add_watch(path, mask())?;
        self.dirs.insert(wd, path.to_path_buf());
        Ok(())
    }

    fn add_below(&mut self, dir: &Path) -> io::Result<()> {
        for e in std::fs::read_dir(dir)? {
            let e = e?;
            if e.file_type()?.is_dir() {
                let p = e.path();
                self.add(&p)?;
                self.add_below(&p)?;
            }
        }
        Ok(())
    }

    /// Reports changes to `emit` until `stop` is set, `emit` returns false, or the
    /// watched path is gone; `idle` is asked every half second whether to go on.
    pub fn run(
        mut self,
        stop: &AtomicBool,
        mut idle: impl FnMut() -> bool,
        mut emit: impl FnMut(Change) -> bool,
    ) {
        loop {
            if stop.load(Ordering::SeqCst) || !idle() {
                return;
            }
            let ready = {
                let mut fds = [PollFd::new(self.inotify.as_fd(), PollFlags::POLLIN)];
                poll(&mut fds, PollTimeout::from(500u16)).unwrap_or(0)
            };
            if ready == 0 {
                continue;
            }
            let events = match self.inotify.read_events() {
                Ok(e) => e,
                Err(nix::errno::Errno::EAGAIN) => continue,
                Err(e) => {
                    tracing::warn!("inotify read failed: {e}");
                    return;
                }
            };
            for ev in events {
                let m = ev.mask;
                if m.contains(AddWatchFlags::IN_Q_OVERFLOW) {
                    if !emit(Change {
                        path: self.root.clone(),
                        change: GuestlinkPathChange::Overflow,
                        directory: true,
                        cookie: 0,
                    }) {
                        return;
                    }
                    continue;
                }
                let Some(dir) = self.dirs.get(&ev.wd).cloned() else {
                    continue;
                };
                if m.contains(AddWatchFlags::IN_IGNORED) {
                    self.dirs.remove(&ev.wd);
                    if dir == self.root || self.dirs.is_empty() {
                        let _ = emit(Change {
                            path: self.root.clone(),
                            change: GuestlinkPathChange::Ended,
                            directory: false,
                            cookie: 0,
                        });
                        return;
                    }
                    continue;
                }
                let path = match &ev.name {
                    Some(n) => dir.join(n),
                    None => dir.clone(),
                };
                let directory = m.contains(AddWatchFlags::IN_ISDIR);
                let change = if m.contains(AddWatchFlags::IN_CREATE) {
                    GuestlinkPathChange::Created
                } else if m.contains(AddWatchFlags::IN_CLOSE_WRITE) {
                    GuestlinkPathChange::Modified
                } else if m.intersects(AddWatchFlags::IN_DELETE | AddWatchFlags::IN_DELETE_SELF) {
                    GuestlinkPathChange::Deleted
                } else if m.contains(AddWatchFlags::IN_MOVED_FROM) {
                    GuestlinkPathChange::MovedFrom
                } else if m.contains(AddWatchFlags::IN_MOVED_TO) {
                    GuestlinkPathChange::MovedTo
                } else if m.contains(AddWatchFlags::IN_ATTRIB) {
                    GuestlinkPathChange::Attributes
                } else {
                    continue;
                };
                // A directory's own deletion is reported by its parent too, and a
                // moved directory by both ends: report the parent's view only, and the
                // watched root's own.
                if ev.name.is_none()
                    && dir != self.root
                    && m.intersects(AddWatchFlags::IN_DELETE_SELF | AddWatchFlags::IN_MOVE_SELF)
                {
                    continue;
                }
                if m.contains(AddWatchFlags::IN_MOVE_SELF) && dir == self.root {
                    let _ = emit(Change {
                        path: self.root.clone(),
                        change: GuestlinkPathChange::Ended,
                        directory: true,
                        cookie: 0,
                    });
                    return;
                }
                let new_dir = directory
                    && self.recursive
                    && matches!(
                        change,
                        GuestlinkPathChange::Created | GuestlinkPathChange::MovedTo
                    );
                if new_dir {
                    if let Err(e) = self.add(&path).and_then(|()| self.add_below(&path)) {
                        tracing::warn!(path = %path.display(), "cannot watch a new directory: {e}");
                    }
                }
                if !emit(Change {
                    path,
                    change,
                    directory,
                    cookie: ev.cookie,
                }) {
                    return;
                }
            }
        }
    }
}
