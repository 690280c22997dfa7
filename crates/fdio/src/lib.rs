//! Async byte streams over raw descriptors, shared by the agent (virtio-serial ports,
//! serial lines, vsock connections) and the host client (ptys, vsock).
//!
//! - [`stream`]: [`FdStream`], a non-blocking descriptor as a tokio stream, with the
//!   choice of what end-of-file means ([`EofMeaning`]).
//! - [`credit`]: [`Credit`], the flow control of a live stream's direction (the only
//!   part built for Windows).
//! - [`tty`]: opening character devices and putting terminals in raw mode.

pub mod credit;
#[cfg(unix)]
pub mod stream;
#[cfg(unix)]
pub mod tty;

pub use credit::Credit;
#[cfg(unix)]
pub use stream::{register, EofMeaning, FdStream, DETACHED_POLL};
#[cfg(unix)]
pub use tty::{make_raw, open_char_device};
