//! Types of the `guest-file-*` commands.

use serde::{Deserialize, Serialize};

use super::Base64Data;
use crate::args::{ArgError, FromArg, Path};
use crate::schema::{Schema, TypeDesc};

qapi_struct! {
    /// Arguments of `guest-file-open`.
    pub struct GuestFileOpenArgs as "q_obj_guest-file-open-arg" {
        /// Path of the file in the guest; relative paths resolve against the agent's
        /// working directory.
        path: String = "path",
        /// fopen(3) mode: r, w, a, with optional b and +; default r.
        mode: Option<String> = "mode",
    }
}

qapi_struct! {
    /// Arguments of `guest-file-close` and `guest-file-flush`.
    pub struct GuestFileHandleArgs as "q_obj_guest-file-close-arg" {
        /// A handle returned by `guest-file-open`.
        handle: i64 = "handle",
    }
}

qapi_struct! {
    /// Arguments of `guest-file-read`.
    pub struct GuestFileReadArgs as "q_obj_guest-file-read-arg" {
        /// A handle returned by `guest-file-open`.
        handle: i64 = "handle",
        /// Bytes to read, at most 48 MiB; default 4096.
        count: Option<i64> = "count",
    }
}

qapi_struct! {
    /// The result of `guest-file-read`.
    pub struct GuestFileRead as "GuestFileRead" {
        /// Bytes read.
        count: i64 = "count",
        /// The bytes, base64-encoded.
        buf_b64: Base64Data = "buf-b64",
        /// Whether the read reached the end of the file.
        eof: bool = "eof",
    }
}

qapi_struct! {
    /// Arguments of `guest-file-write`.
    pub struct GuestFileWriteArgs as "q_obj_guest-file-write-arg" {
        /// A handle returned by `guest-file-open`.
        handle: i64 = "handle",
        /// The bytes to write, base64-encoded.
        buf_b64: String = "buf-b64",
        /// Bytes to write, at most the decoded length; default all of it.
        count: Option<i64> = "count",
    }
}

qapi_struct! {
    /// The result of `guest-file-write`.
    pub struct GuestFileWrite as "GuestFileWrite" {
        /// Bytes written.
        count: i64 = "count",
        /// Whether the file position is at its end.
        eof: bool = "eof",
    }
}

qapi_struct! {
    /// What `__org.guestlink_bulk-enable` reports.
    pub struct GuestlinkBulkInfo as "__org.guestlink_BulkInfo" {
        /// Version of the bulk framing (1).
        version: i64 = "version",
        /// The largest `count` one raw read or write accepts.
        max_count: i64 = "max-count",
    }
}

qapi_struct! {
    /// The JSON part of a `__org.guestlink_file-read-raw` reply; `count` raw bytes
    /// follow it.
    pub struct GuestlinkFileReadRaw as "__org.guestlink_FileReadRaw" {
        /// Bytes that follow the reply line.
        count: i64 = "count",
        /// Whether the read reached the end of the file.
        eof: bool = "eof",
    }
}

qapi_struct! {
    /// Arguments of `__org.guestlink_file-write-raw`; `count` raw bytes follow the
    /// request.
    pub struct GuestlinkFileWriteRawArgs as "q_obj___org.guestlink_file-write-raw-arg" {
        /// A handle returned by `guest-file-open`.
        handle: i64 = "handle",
        /// Bytes that follow the request, at most `max-count`.
        count: i64 = "count",
    }
}

qapi_enum! {
    /// Symbolic seek origins.
    pub enum QGASeek as "QGASeek" {
        /// From the start of the file.
        Set = "set",
        /// From the current position.
        Cur = "cur",
        /// From the end of the file.
        End = "end",
    }
}

/// A seek origin: an integer (0, 1, 2 as in SEEK_SET, SEEK_CUR, SEEK_END) or a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum GuestFileWhence {
    /// SEEK_* value as an integer.
    Value(i64),
    /// SEEK_* value by name.
    Name(QGASeek),
}

impl Default for GuestFileWhence {
    fn default() -> Self {
        Self::Value(0)
    }
}

impl Schema for GuestFileWhence {
    fn schema() -> TypeDesc {
        TypeDesc::Alternate {
            name: "GuestFileWhence",
            branches: vec![TypeDesc::Int, QGASeek::schema()],
        }
    }
}

impl FromArg for GuestFileWhence {
    fn from_arg(value: serde_json::Value, path: &Path<'_>) -> Result<Self, ArgError> {
        match value {
            serde_json::Value::String(_) => QGASeek::from_arg(value, path).map(Self::Name),
            serde_json::Value::Number(_) => i64::from_arg(value, path).map(Self::Value),
            _ => Err(ArgError::invalid_type(path, "GuestFileWhence")),
        }
    }
}

qapi_struct! {
    /// Arguments of `guest-file-seek`.
    pub struct GuestFileSeekArgs as "q_obj_guest-file-seek-arg" {
        /// A handle returned by `guest-file-open`.
        handle: i64 = "handle",
        /// Offset in bytes from `whence`.
        offset: i64 = "offset",
        /// Where the offset counts from.
        whence: GuestFileWhence = "whence",
    }
}

qapi_struct! {
    /// The result of `guest-file-seek`.
    pub struct GuestFileSeek as "GuestFileSeek" {
        /// The new position.
        position: i64 = "position",
        /// Whether the position is at the end of the file.
        eof: bool = "eof",
    }
}
