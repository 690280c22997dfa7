//! Files being received from the host (`__org.guestlink_transfer-*`): each holds its
//! open file and the directory it is in, so that an abandoned transfer removes exactly
//! the file it created, whatever happened to the path since.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;

use crate::error::{Cause, CommandError};
use crate::limits::TRANSFERS;

/// Where received files go.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TransferDir {
    /// The user's XDG download directory (`XDG_DOWNLOAD_DIR`, else `~/Downloads`).
    #[default]
    XdgDownload,
    /// The user's XDG desktop directory (`XDG_DESKTOP_DIR`, else `~/Desktop`).
    XdgDesktop,
    /// This directory, for every user.
    Path(PathBuf),
}

impl TransferDir {
    /// Parses `xdg-download`, `xdg-desktop` or an absolute path.
    pub fn parse(s: &str) -> Result<TransferDir, String> {
        match s {
            "xdg-download" => Ok(TransferDir::XdgDownload),
            "xdg-desktop" => Ok(TransferDir::XdgDesktop),
            p if p.starts_with('/') => Ok(TransferDir::Path(p.into())),
            other => Err(format!(
                "invalid transfer directory '{other}' (expected xdg-download, xdg-desktop or an absolute path)"
            )),
        }
    }
}

/// One file being received.
#[derive(Debug)]
pub struct Incoming {
    /// The connection that started it (its transfers end with it).
    pub conn: Option<u64>,
    /// The directory the file is in.
    pub dir: crate::os::OpenDir,
    /// The file's name in `dir`.
    pub name: String,
    /// The path, for messages.
    pub path: PathBuf,
    /// The file.
    pub file: File,
    /// Bytes announced.
    pub size: u64,
    /// Bytes written.
    pub received: u64,
}

impl Incoming {
    /// Closes and removes the partial file.
    pub fn discard(self) {
        let Incoming {
            dir, name, file, ..
        } = self;
        drop(file);
        crate::os::remove_in(&dir, &name);
    }
}

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// Bytes received in all.
    pub received: u64,
    /// The file is complete and closed.
    pub complete: bool,
}

/// The table of transfers.
#[derive(Debug)]
pub struct Transfers {
    next: AtomicI64,
    table: Mutex<HashMap<i64, Incoming>>,
}

impl Default for Transfers {
    fn default() -> Self {
        Transfers {
            next: AtomicI64::new(1),
            table: Mutex::new(HashMap::new()),
        }
    }
}

fn unknown(handle: i64) -> CommandError {
    CommandError::new(format!("no file transfer has handle {handle}"))
}

impl Transfers {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Incoming>> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether another transfer may start.
    pub fn check_room(&self) -> Result<(), CommandError> {
        if self.lock().len() >= TRANSFERS {
            return Err(CommandError::with_cause(
                Cause::TooMany,
                format!("too many file transfers at once (limit transfers: {TRANSFERS})"),
            ));
        }
        Ok(())
    }

    /// Adds a transfer; its handle.
    pub fn insert(&self, t: Incoming) -> Result<i64, CommandError> {
        let mut table = self.lock();
        if table.len() >= TRANSFERS {
            drop(table);
            t.discard();
            return Err(CommandError::with_cause(
                Cause::TooMany,
                format!("too many file transfers at once (limit transfers: {TRANSFERS})"),
            ));
        }
        let handle = self.next.fetch_add(1, Ordering::Relaxed);
        table.insert(handle, t);
        Ok(handle)
    }

    /// Appends `data` to transfer `handle`. More than announced, or a failed write,
    /// ends the transfer and removes its file.
    pub fn write(&self, handle: i64, data: &[u8]) -> Result<Written, CommandError> {
        let mut table = self.lock();
        let t = table.get_mut(&handle).ok_or_else(|| unknown(handle))?;
        let received = t.received + data.len() as u64;
        let failure = if received > t.size {
            Some(format!(
                "{} bytes is more than the {} announced for {}",
                received,
                t.size,
                t.path.display()
            ))
        } else {
            t.file.write_all(data).err().map(|e| {
                format!(
                    "cannot write to {}: {}",
                    t.path.display(),
                    crate::error::strerror(&e)
                )
            })
        };
        if let Some(desc) = failure {
            if let Some(t) = table.remove(&handle) {
                t.discard();
            }
            return Err(CommandError::new(desc));
        }
        t.received = received;
        let complete = received == t.size;
        if complete {
            table.remove(&handle);
        }
        Ok(Written { received, complete })
    }

    /// Abandons transfer `handle`, removing its file.
    pub fn cancel(&self, handle: i64) -> Result<(), CommandError> {
        let t = self.lock().remove(&handle).ok_or_else(|| unknown(handle))?;
        t.discard();
        Ok(())
    }

    /// Abandons every transfer of connection `conn`; how many there were.
    pub fn cancel_connection(&self, conn: u64) -> usize {
        let gone: Vec<Incoming> = {
            let mut table = self.lock();
            let handles: Vec<i64> = table
                .iter()
                .filter(|(_, t)| t.conn == Some(conn))
                .map(|(h, _)| *h)
                .collect();
            handles.iter().filter_map(|h| table.remove(h)).collect()
        };
        let n = gone.len();
        gone.into_iter().for_each(Incoming::discard);
        n
    }

    /// Transfers running.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether none runs.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
