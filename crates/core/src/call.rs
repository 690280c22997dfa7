//! What a call is, before any handler: the protocol and channel it came through, who
//! made it, and the raw bytes that came with it. Front ends build these; the policy,
//! the state and the dispatcher read them. Nothing here knows the agent.

use std::fmt;
use std::sync::{Arc, Mutex};

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
    /// Every protocol: the one list that channel specs, policy files and `--explain`
    /// read names from.
    pub const ALL: [Protocol; 4] = [
        Protocol::Qga,
        Protocol::Vdagent,
        Protocol::Ovirt,
        Protocol::GuestSocket,
    ];

    /// The protocol named `name` (`qga`, `vdagent`, `ovirt`, `guest-socket`).
    pub fn parse(name: &str) -> Option<Protocol> {
        Protocol::ALL.into_iter().find(|p| p.as_str() == name)
    }

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
    /// A guest caller's logind session, read when it connected: its pid may belong to
    /// another process by the time it calls.
    pub session: Option<Arc<str>>,
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
            session: None,
        }
    }
}

/// The raw bytes of one call on a connection that turned bulk transfer on: what came
/// after the request, and what is to follow the reply.
#[derive(Debug, Default)]
pub struct Bulk {
    input: Mutex<Option<Vec<u8>>>,
    output: Mutex<Option<Vec<u8>>>,
}

impl Bulk {
    /// A call whose request brought `input` (or nothing).
    pub fn new(input: Option<Vec<u8>>) -> Bulk {
        Bulk {
            input: Mutex::new(input),
            output: Mutex::new(None),
        }
    }

    /// The bytes that followed the request (once).
    pub fn take_input(&self) -> Option<Vec<u8>> {
        self.input.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Sets the bytes that follow the reply.
    pub fn set_output(&self, data: Vec<u8>) {
        *self.output.lock().unwrap_or_else(|e| e.into_inner()) = Some(data);
    }

    /// The bytes that follow the reply, if the handler set any.
    pub fn take_output(&self) -> Option<Vec<u8>> {
        self.output.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}
