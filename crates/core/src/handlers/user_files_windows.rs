//! Files for transfers from the host (Windows): created in the configured directory
//! with the agent's own identity, the directory's ACL deciding who may read them.
//! Windows has no user ids to switch to, so only an explicit directory is accepted.

use std::fs::File;
use std::io;
use std::path::PathBuf;

use super::download_dir::{variant, NAME_ATTEMPTS};
use super::off_thread;
use crate::error::CommandError;
use crate::state::transfers::TransferDir;

/// Creates `name` (or a numbered variant) in the configured directory: the
/// directory, the same again as the transfer's handle on it, the name used, the file.
pub(crate) async fn create_for(
    _uid: u32,
    config: TransferDir,
    name: String,
    _size: u64,
) -> Result<(PathBuf, crate::os::OpenDir, String, File), CommandError> {
    let TransferDir::Path(dir) = config else {
        return Err(CommandError::new(
            "transfers on Windows need an explicit transfer directory",
        ));
    };
    off_thread(move || {
        std::fs::create_dir_all(&dir)
            .map_err(|e| CommandError::new(format!("cannot create {}: {e}", dir.display())))?;
        for n in 0..NAME_ATTEMPTS {
            let candidate = variant(&name, n);
            match File::options()
                .write(true)
                .create_new(true)
                .open(dir.join(&candidate))
            {
                Ok(file) => return Ok((dir.clone(), dir, candidate, file)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(CommandError::new(format!(
                        "cannot create {}: {e}",
                        dir.join(&candidate).display()
                    )))
                }
            }
        }
        Err(CommandError::new(format!(
            "{name} and {} numbered variants already exist in {}",
            NAME_ATTEMPTS - 1,
            dir.display()
        )))
    })
    .await?
}
