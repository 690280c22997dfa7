//! The client's typed errors.

use std::time::Duration;

/// What can go wrong talking to an agent.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The channel could not be reached.
    #[error("cannot connect to {path}: {source}")]
    Connect {
        /// The endpoint, as given.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Reading or writing failed.
    #[error("agent channel I/O failed: {0}")]
    Io(#[from] std::io::Error),
    /// No reply in time.
    #[error("the agent did not answer within {0:?}")]
    Timeout(Duration),
    /// The agent closed the connection.
    #[error("the agent closed the connection")]
    Closed,
    /// A bulk write broke off in the middle of its payload; the connection is unusable.
    #[error("the connection broke off in the middle of a bulk write; connect again")]
    Broken,
    /// A bulk read or write larger than the agent takes at once.
    #[error("{len} bytes is more than the agent moves at once ({max})")]
    TooLarge {
        /// Bytes asked for.
        len: usize,
        /// The agent's `max-count`.
        max: usize,
    },
    /// A reply that is not JSON or not a reply.
    #[error("malformed reply from the agent: {0}")]
    Protocol(String),
    /// The agent answered with an error.
    #[error("{class}: {desc}")]
    Agent {
        /// Error class (`GenericError`, `CommandNotFound`).
        class: String,
        /// Description.
        desc: String,
    },
}

impl ClientError {
    /// Whether the agent said the command is unknown or disabled.
    pub fn is_command_not_found(&self) -> bool {
        matches!(self, ClientError::Agent { class, .. } if class == "CommandNotFound")
    }

    /// Whether the agent said the command exists but is disabled.
    pub fn is_disabled(&self) -> bool {
        matches!(self, ClientError::Agent { desc, .. } if desc.contains("has been disabled"))
    }
}
