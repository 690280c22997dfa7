//! vdagent file transfer, protocol side: the START key file, the status codes and
//! their detail payloads, and which transfer id is which core transfer.

use std::collections::HashMap;

use guestlink_core::{Cause, DispatchError};

/// FILE_XFER_STATUS result codes.
pub mod status {
    /// Send the data.
    pub const CAN_SEND_DATA: u32 = 0;
    /// Cancelled.
    pub const CANCELLED: u32 = 1;
    /// Failed.
    pub const ERROR: u32 = 2;
    /// All received.
    pub const SUCCESS: u32 = 3;
    /// Not enough room (+ u64 free bytes).
    pub const NOT_ENOUGH_SPACE: u32 = 4;
    /// The session is locked.
    pub const SESSION_LOCKED: u32 = 5;
    /// No session agent.
    pub const NOT_CONNECTED: u32 = 6;
    /// Turned off by policy.
    pub const DISABLED: u32 = 7;
}

/// GIO error codes sent in ERROR details.
const G_IO_ERROR_INVALID_FILENAME: u32 = 10;
const G_IO_ERROR_TOO_MANY_OPEN_FILES: u32 = 31;

/// What START announces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announced {
    /// File name.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
}

/// Undoes GKeyFile escapes.
fn unescape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('s') => out.push(' '),
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('\\') => out.push('\\'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// Parses START's key file: `[vdagent-file-xfer]` with `name=` and `size=`.
pub fn parse_keyfile(bytes: &[u8]) -> Result<Announced, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "the key file is not UTF-8".to_string())?;
    let mut in_group = false;
    let (mut name, mut size) = (None, None);
    for line in text.lines() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(group) = line.strip_prefix('[') {
            in_group = group.trim_end().strip_suffix(']') == Some("vdagent-file-xfer");
            continue;
        }
        if !in_group {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            match k.trim() {
                "name" => name = Some(unescape(v)),
                "size" => {
                    size = Some(
                        v.trim()
                            .parse::<u64>()
                            .map_err(|_| format!("invalid size '{}'", v.trim()))?,
                    )
                }
                _ => {}
            }
        }
    }
    Ok(Announced {
        name: name.ok_or("the key file has no name")?,
        size: size.ok_or("the key file has no size")?,
    })
}

/// The status (code and detail) that reports a failed core call, for a peer that does
/// or does not understand detailed errors.
pub fn status_of(e: &DispatchError, detailed: bool) -> (u32, Vec<u8>) {
    let gio = |code: u32| {
        let mut d = vec![0u8];
        d.extend_from_slice(&code.to_le_bytes());
        d
    };
    let (code, detail) = match e {
        DispatchError::Disabled { .. } | DispatchError::NotFound(_) => {
            (status::DISABLED, Vec::new())
        }
        DispatchError::Command(c) => match c.cause {
            Some(Cause::NoSpace(free)) => (status::NOT_ENOUGH_SPACE, free.to_le_bytes().to_vec()),
            Some(Cause::SessionLocked) => (status::SESSION_LOCKED, Vec::new()),
            Some(Cause::NoSessionAgent) => (status::NOT_CONNECTED, Vec::new()),
            Some(Cause::TooMany) => (status::ERROR, gio(G_IO_ERROR_TOO_MANY_OPEN_FILES)),
            Some(Cause::InvalidName) => (status::ERROR, gio(G_IO_ERROR_INVALID_FILENAME)),
            None => (status::ERROR, Vec::new()),
        },
        DispatchError::Args(_) => (status::ERROR, Vec::new()),
    };
    if detailed {
        (code, detail)
    } else if code > status::SUCCESS {
        (status::ERROR, Vec::new())
    } else {
        (code, Vec::new())
    }
}

/// The transfers of one host connection: vdagent id to core handle.
#[derive(Debug, Default)]
pub struct Table {
    handles: HashMap<u32, i64>,
}

impl Table {
    /// Whether `id` is running.
    pub fn contains(&self, id: u32) -> bool {
        self.handles.contains_key(&id)
    }
    /// Records a started transfer.
    pub fn insert(&mut self, id: u32, handle: i64) {
        self.handles.insert(id, handle);
    }
    /// The handle of `id`.
    pub fn get(&self, id: u32) -> Option<i64> {
        self.handles.get(&id).copied()
    }
    /// Forgets `id`; its handle.
    pub fn remove(&mut self, id: u32) -> Option<i64> {
        self.handles.remove(&id)
    }
    /// Forgets all; their handles.
    pub fn drain(&mut self) -> Vec<i64> {
        self.handles.drain().map(|(_, h)| h).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use guestlink_core::CommandError;

    #[test]
    fn key_files() {
        let k = parse_keyfile(b"[vdagent-file-xfer]\nname=\\sa\\\\b.txt\nsize=12\n").unwrap();
        assert_eq!(
            k,
            Announced {
                name: " a\\b.txt".into(),
                size: 12
            }
        );
        let k = parse_keyfile(
            "[other]\nname=x\n[vdagent-file-xfer]\nname=résumé.pdf\nsize=0".as_bytes(),
        )
        .unwrap();
        assert_eq!(k.name, "résumé.pdf");
        assert!(parse_keyfile(b"[vdagent-file-xfer]\nsize=1\n").is_err());
        assert!(parse_keyfile(b"[vdagent-file-xfer]\nname=a\nsize=-1\n").is_err());
        assert!(parse_keyfile(b"\xff\xfe").is_err());
    }

    #[test]
    fn statuses_follow_the_peer() {
        let space = DispatchError::Command(CommandError::with_cause(Cause::NoSpace(7), "x"));
        assert_eq!(status_of(&space, true), (4, 7u64.to_le_bytes().to_vec()));
        assert_eq!(status_of(&space, false), (2, vec![]));
        let name = DispatchError::Command(CommandError::with_cause(Cause::InvalidName, "x"));
        assert_eq!(status_of(&name, true), (2, vec![0, 10, 0, 0, 0]));
        let plain = DispatchError::Command(CommandError::new("x"));
        assert_eq!(status_of(&plain, true), (2, vec![]));
    }
}
