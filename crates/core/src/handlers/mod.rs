//! Command handlers, grouped by what they touch. Each implements
//! [`Handler`](crate::dispatch::Handler) for a command type of the vocabulary.

mod osrelease;
mod protocol;
mod system;

pub use osrelease::parse_os_release;
