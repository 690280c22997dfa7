//! Files for transfers from the host, on Windows: the transfer commands are declared for
//! POSIX only (they need a session agent, which Windows does not have yet), so this is
//! never reached through the dispatch table; it exists so that the handler compiles.

use std::fs::File;
use std::path::PathBuf;

use crate::error::CommandError;
use crate::state::transfers::TransferDir;

/// Refuses: no transfers on Windows yet.
pub(crate) async fn create_for(
    _uid: u32,
    _config: TransferDir,
    _name: String,
    _size: u64,
) -> Result<(PathBuf, crate::os::OpenDir, String, File), CommandError> {
    Err(CommandError::new(
        "file transfers from the host are not available on Windows yet",
    ))
}
