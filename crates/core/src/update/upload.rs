//! The staged executable while its bytes arrive: one update at a time, written to a
//! hidden file in the running executable's directory (so the swap is one rename on
//! one file system), hashed as it is written, removed when cancelled, replaced, or
//! when the connection that sends it ends before the commit.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::error::CommandError;

/// One upload.
#[derive(Debug)]
pub struct Upload {
    /// Its handle.
    pub handle: i64,
    /// The connection sending it.
    pub conn: Option<u64>,
    /// The staged file.
    pub path: PathBuf,
    file: Option<File>,
    /// Bytes announced.
    pub size: u64,
    /// Bytes received.
    pub received: u64,
    /// The SHA-256 announced.
    pub sha256: [u8; 32],
    /// The signature sent with it.
    pub signature: Option<Vec<u8>>,
    hasher: Sha256,
}

impl Upload {
    /// The SHA-256 of what arrived.
    pub fn digest(&self) -> [u8; 32] {
        self.hasher.clone().finalize().into()
    }

    fn discard(mut self) {
        self.file.take();
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The upload slot.
#[derive(Debug, Default)]
pub struct Uploads {
    slot: Mutex<Option<Upload>>,
    next: std::sync::atomic::AtomicI64,
}

fn unknown(handle: i64) -> CommandError {
    CommandError::new(format!("no update has handle {handle}"))
}

/// The staged file's name for executable `exe`: `.NAME.update` beside it.
pub fn staged_path(exe: &Path) -> PathBuf {
    let name = exe
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "guestlinkd".into());
    exe.with_file_name(format!(".{name}.update"))
}

impl Uploads {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Upload>> {
        self.slot.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts an upload to `path` (an earlier one is abandoned); its handle.
    pub fn start(
        &self,
        conn: Option<u64>,
        path: PathBuf,
        size: u64,
        sha256: [u8; 32],
        signature: Option<Vec<u8>>,
    ) -> Result<i64, CommandError> {
        let mut slot = self.lock();
        if let Some(old) = slot.take() {
            tracing::info!(handle = old.handle, "an unfinished update is abandoned");
            old.discard();
        }
        let _ = std::fs::remove_file(&path);
        let file = {
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o700);
            options.open(&path).map_err(|e| {
                CommandError::new(format!(
                    "cannot create {}: {}",
                    path.display(),
                    crate::error::strerror(&e)
                ))
            })?
        };
        let handle = 1 + self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        *slot = Some(Upload {
            handle,
            conn,
            path,
            file: Some(file),
            size,
            received: 0,
            sha256,
            signature,
            hasher: Sha256::new(),
        });
        Ok(handle)
    }

    /// Appends `data`; bytes received in all. More than announced, or a failed write,
    /// abandons the upload.
    pub fn write(&self, handle: i64, data: &[u8]) -> Result<u64, CommandError> {
        let mut slot = self.lock();
        let u = match slot.as_mut() {
            Some(u) if u.handle == handle => u,
            _ => return Err(unknown(handle)),
        };
        let received = u.received + data.len() as u64;
        let failure = if received > u.size {
            Some(format!(
                "{received} bytes is more than the {} announced for the update",
                u.size
            ))
        } else {
            match u.file.as_mut().map(|f| f.write_all(data)) {
                Some(Err(e)) => Some(format!(
                    "cannot write to {}: {}",
                    u.path.display(),
                    crate::error::strerror(&e)
                )),
                _ => None,
            }
        };
        if let Some(desc) = failure {
            if let Some(u) = slot.take() {
                u.discard();
            }
            return Err(CommandError::new(desc));
        }
        u.hasher.update(data);
        u.received = received;
        Ok(received)
    }

    /// Takes the upload `handle` out for its commit (the file closed and synced).
    pub fn take(&self, handle: i64) -> Result<Upload, CommandError> {
        let mut slot = self.lock();
        match slot.as_ref() {
            Some(u) if u.handle == handle => {}
            _ => return Err(unknown(handle)),
        }
        let mut u = slot.take().ok_or_else(|| unknown(handle))?;
        if let Some(f) = u.file.take() {
            let _ = f.sync_all();
        }
        Ok(u)
    }

    /// Removes a taken upload's file (a commit that failed its checks).
    pub fn discard(u: Upload) {
        u.discard();
    }

    /// Abandons the upload of connection `conn`; whether there was one.
    pub fn cancel_connection(&self, conn: u64) -> bool {
        let mut slot = self.lock();
        if slot.as_ref().is_some_and(|u| u.conn == Some(conn)) {
            if let Some(u) = slot.take() {
                u.discard();
            }
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_hashed_bounded_and_removed_with_their_connection() {
        let dir = std::env::temp_dir().join(format!("guestlink-upload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let exe = dir.join("guestlinkd");
        let staged = staged_path(&exe);
        assert_eq!(staged, dir.join(".guestlinkd.update"));
        let ups = Uploads::default();
        let h = ups
            .start(Some(7), staged.clone(), 6, [0; 32], None)
            .unwrap();
        assert_eq!(ups.write(h, b"abc").unwrap(), 3);
        assert!(ups.write(h + 1, b"x").is_err());
        assert!(!ups.cancel_connection(8));
        assert!(ups.cancel_connection(7));
        assert!(!staged.exists());
        // Too many bytes end the upload.
        let h = ups.start(None, staged.clone(), 2, [0; 32], None).unwrap();
        assert!(ups.write(h, b"abc").is_err());
        assert!(!staged.exists());
        assert!(ups.take(h).is_err());
        // A complete one: its digest, its file synced and kept for the commit.
        let h = ups.start(None, staged.clone(), 3, [0; 32], None).unwrap();
        ups.write(h, b"abc").unwrap();
        let u = ups.take(h).unwrap();
        assert_eq!(
            u.digest()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(std::fs::read(&staged).unwrap(), b"abc");
        Uploads::discard(u);
        assert!(!staged.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
