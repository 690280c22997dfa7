//! Async byte streams over raw descriptors, shared by the agent (virtio-serial ports,
//! serial lines, vsock connections) and the host client (ptys, vsock).
//!
//! - [`stream`]: [`FdStream`], a non-blocking descriptor as a tokio stream, with the
//!   choice of what end-of-file means ([`EofMeaning`]).
//! - [`credit`]: [`Credit`], the flow control of a live stream's direction.
//! - [`tty`]: opening character devices and putting terminals in raw mode.

pub mod credit;
pub mod stream;
pub mod tty;

pub use credit::Credit;
pub use stream::{register, EofMeaning, FdStream, DETACHED_POLL};
pub use tty::{make_raw, open_char_device};
