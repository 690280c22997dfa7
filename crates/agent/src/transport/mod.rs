//! Transports: how a channel's bytes get in and out. They know nothing of protocols.
//!
//! - `guestlink-fdio` (a crate shared with the host client): a non-blocking descriptor
//!   as an async byte stream. On a device (virtio-serial, serial line, pty) end-of-file
//!   means "no host attached": the stream keeps the descriptor, backs off and reads
//!   again, and never reports EOF.
//! - [`device`]: opening virtio-serial ports and serial lines.
//! - [`listen`]: unix and vsock listening sockets, and systemd socket activation.

pub mod device;
pub mod listen;
