//! The error a command handler returns.

/// A command that ran and failed. Front ends report the text as is (QGA:
/// `GenericError` with this `desc`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{desc}")]
pub struct CommandError {
    /// Human-readable description, in qemu-ga's words where qemu-ga has them.
    pub desc: String,
}

impl CommandError {
    /// A failure described by `desc`.
    pub fn new(desc: impl Into<String>) -> CommandError {
        CommandError { desc: desc.into() }
    }
}
