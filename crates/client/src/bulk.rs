//! Bulk transfer: file data as raw bytes instead of base64 inside JSON.
//!
//! guestlinkd offers it as an extension listed in `guest-info`
//! (`__org.guestlink_bulk-enable`, `__org.guestlink_file-read-raw`,
//! `__org.guestlink_file-write-raw`); it is off until the client asks, and every
//! resynchronisation turns it off again, on both sides. The methods here turn it back
//! on when needed. A stock qemu-ga has none of this: check [`Client::offers_bulk`] and
//! use `guest-file-read`/`guest-file-write` otherwise.

use guestlink_vocabulary::commands::{
    GuestInfo, GuestlinkBulkEnable, GuestlinkFileReadRaw, GuestlinkFileWriteRaw,
};
use guestlink_vocabulary::types::{
    Empty, GuestFileReadArgs, GuestFileWrite, GuestlinkBulkInfo, GuestlinkFileWriteRawArgs,
};
use guestlink_vocabulary::Command;

use crate::client::{reply_of, request_text};
use crate::{Client, ClientError};

impl Client {
    /// Whether the agent lists the bulk commands in `guest-info` and allows them.
    pub async fn offers_bulk(&mut self) -> Result<bool, ClientError> {
        let usable = self.usable_commands().await?;
        Ok([
            GuestlinkBulkEnable::NAME,
            GuestlinkFileReadRaw::NAME,
            GuestlinkFileWriteRaw::NAME,
        ]
        .iter()
        .all(|n| usable.iter().any(|u| u == n)))
    }

    /// Whether the agent has command `name` and its policy allows it.
    pub async fn offers(&mut self, name: &str) -> Result<bool, ClientError> {
        Ok(self.usable_commands().await?.iter().any(|u| u == name))
    }

    /// The commands the agent has and its policy allows.
    async fn usable_commands(&mut self) -> Result<Vec<String>, ClientError> {
        let info = self.call::<GuestInfo>(&Empty {}).await?;
        Ok(info
            .supported_commands
            .into_iter()
            .filter(|c| c.enabled)
            .map(|c| c.name)
            .collect())
    }

    /// Turns bulk transfer on for this conversation.
    pub async fn enable_bulk(&mut self) -> Result<GuestlinkBulkInfo, ClientError> {
        let info = self.call::<GuestlinkBulkEnable>(&Empty {}).await?;
        self.bulk = Some(usize::try_from(info.max_count).unwrap_or(0));
        Ok(info)
    }

    /// Turns bulk transfer on unless it is, and returns the largest payload.
    async fn ensure_bulk(&mut self) -> Result<usize, ClientError> {
        // A timed-out call leaves the client out of sync; the resync before the next
        // request would turn bulk mode off, so sync first and enable afterwards.
        match self.bulk {
            Some(max) if self.is_in_sync() => Ok(max),
            _ => {
                let info = self.enable_bulk().await?;
                Ok(usize::try_from(info.max_count).unwrap_or(0))
            }
        }
    }

    /// Reads up to `count` bytes from an open guest file. Returns the bytes and whether
    /// the read reached the end of the file.
    pub async fn file_read_raw(
        &mut self,
        handle: i64,
        count: usize,
    ) -> Result<(Vec<u8>, bool), ClientError> {
        let max = self.ensure_bulk().await?;
        if count > max {
            return Err(ClientError::TooLarge { len: count, max });
        }
        let args = GuestFileReadArgs {
            handle,
            count: Some(count as i64),
        };
        let (head, data) = self
            .call_with_reply_payload::<GuestlinkFileReadRaw>(&args, count, |r| r.count)
            .await?;
        Ok((data, head.eof))
    }

    /// Calls a command whose reply is followed by raw bytes (bulk transfer, turned on
    /// when it is not): `count_of` reads their number from the reply, which may be at
    /// most `limit`. Returns the reply and the bytes.
    pub async fn call_with_reply_payload<C: Command>(
        &mut self,
        args: &C::Args,
        limit: usize,
        count_of: impl FnOnce(&C::Returns) -> i64,
    ) -> Result<(C::Returns, Vec<u8>), ClientError> {
        self.ensure_bulk().await?;
        let mut text = request_text::<C>(args)?;
        text.push(b'\n');
        let line = self.exchange_with(&text, &[]).await?;
        let head = reply_of::<C>(&line)?;
        let count = count_of(&head);
        let Some(len) = usize::try_from(count).ok().filter(|&n| n <= limit) else {
            // Whatever follows is of unknown length: resynchronise before the next call.
            self.mark_out_of_sync();
            return Err(ClientError::Protocol(format!(
                "{}: {count} bytes announced where at most {limit} may come",
                C::NAME
            )));
        };
        let data = self.read_payload(len).await?;
        Ok((head, data))
    }

    /// Writes `data` to an open guest file; the agent reports how much it took.
    pub async fn file_write_raw(
        &mut self,
        handle: i64,
        data: &[u8],
    ) -> Result<GuestFileWrite, ClientError> {
        let args = GuestlinkFileWriteRawArgs {
            handle,
            count: data.len() as i64,
        };
        self.call_with_payload::<GuestlinkFileWriteRaw>(&args, data)
            .await
    }

    /// Calls a command whose raw payload `data` follows the request (bulk transfer,
    /// turned on when it is not); `args` must say `data.len()` where the command wants
    /// the count.
    pub async fn call_with_payload<C: Command>(
        &mut self,
        args: &C::Args,
        data: &[u8],
    ) -> Result<C::Returns, ClientError> {
        self.call_with_payload_up_to::<C>(args, data, None).await
    }

    /// [`Client::call_with_payload`] for a command whose payload may be larger than the
    /// agent's `max-count` (a file read's): up to `limit` (the clipboard commands take
    /// up to clipboard-size, 64 MiB).
    pub async fn call_with_payload_up_to<C: Command>(
        &mut self,
        args: &C::Args,
        data: &[u8],
        limit: Option<usize>,
    ) -> Result<C::Returns, ClientError> {
        let max = self.ensure_bulk().await?;
        let max = limit.unwrap_or(max);
        if data.len() > max {
            // The agent would not take the bytes as a payload but lex them as JSON.
            return Err(ClientError::TooLarge {
                len: data.len(),
                max,
            });
        }
        // The payload starts right after the closing brace: no newline.
        let text = request_text::<C>(args)?;
        let line = self.exchange_with(&text, data).await?;
        reply_of::<C>(&line)
    }
}
