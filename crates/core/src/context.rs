//! Who is calling, through which channel, and what a handler can reach.

use std::fmt;
use std::sync::Arc;

use crate::agent::Agent;

/// The wire protocol of a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// QEMU Guest Agent JSON.
    Qga,
    /// SPICE vdagent binary protocol.
    Vdagent,
    /// oVirt guest agent JSON lines.
    Ovirt,
    /// The guest-side local socket.
    GuestSocket,
}

impl Protocol {
    /// The name users type (`--channel qga=...`).
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Qga => "qga",
            Protocol::Vdagent => "vdagent",
            Protocol::Ovirt => "ovirt",
            Protocol::GuestSocket => "guest-socket",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One channel of the agent: its protocol and a name for logs (usually the path).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChannelId {
    /// Protocol spoken on the channel.
    pub protocol: Protocol,
    /// Path or port name.
    pub name: Arc<str>,
}

/// Who sent a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// The hypervisor host, through a host channel.
    Host,
    /// A program inside the guest, identified by its peer credentials.
    Guest {
        /// User id.
        uid: u32,
        /// Process id.
        pid: i32,
    },
}

/// Where a call comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallContext {
    /// The channel.
    pub channel: ChannelId,
    /// The caller.
    pub caller: Caller,
}

impl CallContext {
    /// A call from the host on `channel`.
    pub fn host(protocol: Protocol, name: impl Into<Arc<str>>) -> CallContext {
        CallContext {
            channel: ChannelId {
                protocol,
                name: name.into(),
            },
            caller: Caller::Host,
        }
    }
}

/// What a handler receives besides its arguments.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The agent: state, platform, command table.
    pub agent: &'a Agent,
    /// Where the call comes from.
    pub call: &'a CallContext,
}
