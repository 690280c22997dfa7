//! The error a command handler returns.

/// A command that ran and failed. Front ends report the text as is (QGA:
/// `GenericError` with this `desc`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{desc}")]
pub struct CommandError {
    /// Human-readable description, in qemu-ga's words where qemu-ga has them.
    pub desc: String,
    /// What kind of failure it is, for front ends whose protocol has codes for it.
    pub cause: Option<Cause>,
}

/// Failures that some protocols report with a code of their own (vdagent's file
/// transfer statuses); the others report the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// Not enough room: this many bytes are free.
    NoSpace(u64),
    /// The user session the command acts on is locked.
    SessionLocked,
    /// No session agent serves the session the command acts on.
    NoSessionAgent,
    /// A limit on how many of something may exist at once was reached.
    TooMany,
    /// The name given is not acceptable (a path, `..`, ...).
    InvalidName,
}

impl CommandError {
    /// A failure described by `desc`.
    pub fn new(desc: impl Into<String>) -> CommandError {
        CommandError {
            desc: desc.into(),
            cause: None,
        }
    }

    /// A failure described by `desc`, of kind `cause`.
    pub fn with_cause(cause: Cause, desc: impl Into<String>) -> CommandError {
        CommandError {
            desc: desc.into(),
            cause: Some(cause),
        }
    }
}

/// The C library's text for an error (`strerror(3)`), as qemu-ga appends it: for an
/// OS error without Rust's " (os error N)" suffix.
pub fn strerror(e: &std::io::Error) -> String {
    let text = e.to_string();
    match (e.raw_os_error(), text.rfind(" (os error ")) {
        (Some(_), Some(at)) => text[..at].to_string(),
        _ => text,
    }
}

/// [`strerror`] of an errno value.
pub fn errno_text(code: i32) -> String {
    strerror(&std::io::Error::from_raw_os_error(code))
}
