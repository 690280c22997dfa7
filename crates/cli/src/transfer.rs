//! How file data moves: raw bulk transfer when the agent offers it (guestlinkd), base64
//! inside JSON otherwise (any qemu-ga).

use guestlink_client::Client;
use guestlink_vocabulary::commands as cmd;
use guestlink_vocabulary::types::{base64_encode, GuestFileReadArgs, GuestFileWriteArgs};

/// The way file data travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transfer {
    /// `guest-file-read`/`guest-file-write`, base64 in JSON.
    Base64,
    /// `__org.guestlink_file-read-raw`/`-write-raw`, raw bytes after the JSON.
    Raw,
}

impl Transfer {
    /// Raw when `allow_raw` and the agent offers it, base64 otherwise.
    pub async fn choose(c: &mut Client, allow_raw: bool) -> anyhow::Result<Transfer> {
        Ok(if allow_raw && c.offers_bulk().await? {
            Transfer::Raw
        } else {
            Transfer::Base64
        })
    }

    /// The name shown to users.
    pub fn name(self) -> &'static str {
        match self {
            Transfer::Base64 => "base64",
            Transfer::Raw => "raw",
        }
    }

    /// Reads up to `count` bytes; returns them and the end-of-file flag.
    pub async fn read(
        self,
        c: &mut Client,
        handle: i64,
        count: usize,
    ) -> anyhow::Result<(Vec<u8>, bool)> {
        Ok(match self {
            Transfer::Raw => c.file_read_raw(handle, count).await?,
            Transfer::Base64 => {
                let r = c
                    .call::<cmd::GuestFileRead>(&GuestFileReadArgs {
                        handle,
                        count: Some(count as i64),
                    })
                    .await?;
                (r.buf_b64.0, r.eof)
            }
        })
    }

    /// Writes `data`; returns how many bytes the guest took.
    pub async fn write(self, c: &mut Client, handle: i64, data: &[u8]) -> anyhow::Result<usize> {
        let w = match self {
            Transfer::Raw => c.file_write_raw(handle, data).await?,
            Transfer::Base64 => {
                c.call::<cmd::GuestFileWrite>(&GuestFileWriteArgs {
                    handle,
                    buf_b64: base64_encode(data),
                    count: None,
                })
                .await?
            }
        };
        Ok(usize::try_from(w.count).unwrap_or(0))
    }
}
