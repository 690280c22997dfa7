//! What guestlink's tests share, written once:
//!
//! - [`Scratch`]: a fresh directory, removed when dropped, also when the test panics;
//! - [`Kill`]: a child process killed and reaped when dropped;
//! - [`sibling`], [`sibling_lib`]: another binary or shared library of the workspace,
//!   built if a test run has not;
//! - [`peer_available`]: a real peer program (qemu-ga, spice-vdagentd…), which CI must
//!   have: there its absence fails the test instead of skipping it;
//! - [`Agent`] (and [`Launch`]): an agent (guestlinkd or qemu-ga) on a unix socket in
//!   a scratch directory, started and waited for, killed when dropped;
//! - [`memory`]: a process's peak and current resident set;
//! - [`host_pty`]: a pty standing for a virtio-serial port, its host end a stream;
//! - [`SsoAgent`]: guestlinkd ready for a single sign-on hand-off.
//!
//! The conformance suite launches its agents through the same [`Launch`].

mod agent;
mod dir;
mod peers;
mod process;
mod pty;
mod sso;

pub use agent::{spawn_retrying, Agent, Launch};
pub use dir::Scratch;
pub use peers::peer_available;
pub use process::{memory, sibling, sibling_lib, Kill};
pub use pty::host_pty;
pub use sso::SsoAgent;
