//! A small D-Bus client: enough for logind (method calls with string arguments,
//! properties, a match rule and the signals it brings), in place of a general D-Bus
//! library, so that the daemon stays small. [`wire`] is the message format; this
//! module is the connection: an address, EXTERNAL authentication, `Hello`, then calls
//! whose replies are matched by serial while signals that arrive meanwhile are queued.
//!
//! The bus is the system bus (`DBUS_SYSTEM_BUS_ADDRESS`, else
//! `/run/dbus/system_bus_socket`), or the one `GUESTLINK_SYSTEM_BUS` names (a test's
//! private bus). Nothing connects until a caller needs the bus.

pub mod wire;

use std::collections::VecDeque;
use std::io;

use thiserror::Error;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

pub use wire::{Arg, Kind, Message, Value};

const DBUS: &str = "org.freedesktop.DBus";
const DBUS_PATH: &str = "/org/freedesktop/DBus";
const PROPERTIES: &str = "org.freedesktop.DBus.Properties";

/// What went wrong on the bus.
#[derive(Debug, Error)]
pub enum BusError {
    /// The socket failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// An address that names no socket this client can reach.
    #[error("unsupported D-Bus address '{0}'")]
    Address(String),
    /// The bus refused us.
    #[error("D-Bus authentication failed: {0}")]
    Auth(String),
    /// The bus sent something malformed.
    #[error(transparent)]
    Wire(#[from] wire::WireError),
    /// The method failed: its error name and message.
    #[error("{name}: {message}")]
    Method {
        /// The D-Bus error name (`org.freedesktop.login1.NoSuchSession`).
        name: String,
        /// Its message.
        message: String,
    },
    /// A reply without the values expected.
    #[error("unexpected reply to {0}")]
    Reply(&'static str),
}

impl BusError {
    /// `what: message`, with the D-Bus error's name left out (the message of a method
    /// error is meant for people; its name is not).
    pub fn in_words(self, what: &str) -> String {
        match self {
            BusError::Method { message, .. } if !message.is_empty() => format!("{what}: {message}"),
            other => format!("{what}: {other}"),
        }
    }
}

/// The bus address to use: `GUESTLINK_SYSTEM_BUS`, `DBUS_SYSTEM_BUS_ADDRESS`, or the
/// standard system bus socket.
pub fn system_address() -> String {
    std::env::var("GUESTLINK_SYSTEM_BUS")
        .or_else(|_| std::env::var("DBUS_SYSTEM_BUS_ADDRESS"))
        .unwrap_or_else(|_| "unix:path=/run/dbus/system_bus_socket".into())
}

/// Opens the socket of one `unix:` address (`path=` or `abstract=`).
async fn open(address: &str) -> Result<UnixStream, BusError> {
    let unsupported = || BusError::Address(address.to_string());
    let params = address.strip_prefix("unix:").ok_or_else(unsupported)?;
    for kv in params.split(',') {
        match kv.split_once('=') {
            Some(("path", p)) => return Ok(UnixStream::connect(unescape(p)).await?),
            Some(("abstract", name)) => {
                use std::os::linux::net::SocketAddrExt;
                let addr = std::os::unix::net::SocketAddr::from_abstract_name(unescape(name))?;
                let s = std::os::unix::net::UnixStream::connect_addr(&addr)?;
                s.set_nonblocking(true)?;
                return Ok(UnixStream::from_std(s)?);
            }
            _ => {}
        }
    }
    Err(unsupported())
}

/// A D-Bus address value with its `%XX` escapes undone.
fn unescape(v: &str) -> String {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = (b[i] == b'%')
            .then(|| b.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
        match hex {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A connection to a bus.
#[derive(Debug)]
pub struct Bus {
    io: BufReader<UnixStream>,
    serial: u32,
    /// Signals read while waiting for a reply.
    signals: VecDeque<Message>,
}

impl Bus {
    /// Connects to the system bus (see [`system_address`]).
    pub async fn system() -> Result<Bus, BusError> {
        Bus::connect(&system_address()).await
    }

    /// Connects to the first address of `addresses` (`;`-separated) that answers.
    pub async fn connect(addresses: &str) -> Result<Bus, BusError> {
        let mut last = BusError::Address(addresses.to_string());
        for address in addresses.split(';').filter(|a| !a.is_empty()) {
            match open(address).await {
                Ok(stream) => return Bus::start(stream).await,
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    async fn start(stream: UnixStream) -> Result<Bus, BusError> {
        let mut io = BufReader::new(stream);
        let uid = nix::unistd::geteuid().as_raw().to_string();
        let hex: String = uid.bytes().map(|b| format!("{b:02x}")).collect();
        io.get_mut()
            .write_all(format!("\0AUTH EXTERNAL {hex}\r\n").as_bytes())
            .await?;
        let mut line = String::new();
        // A line of a few dozen bytes; a bus that sends more is not one.
        (&mut io).take(512).read_line(&mut line).await?;
        if !line.starts_with("OK ") {
            return Err(BusError::Auth(line.trim().to_string()));
        }
        io.get_mut().write_all(b"BEGIN\r\n").await?;
        let mut bus = Bus {
            io,
            serial: 0,
            signals: VecDeque::new(),
        };
        bus.call(DBUS, DBUS_PATH, DBUS, "Hello", &[]).await?;
        Ok(bus)
    }

    async fn read_message(&mut self) -> Result<Message, BusError> {
        let mut head = [0u8; 16];
        self.io.read_exact(&mut head).await?;
        let total = wire::message_len(&head)?.unwrap_or(16);
        let mut buf = head.to_vec();
        buf.resize(total, 0);
        self.io.read_exact(&mut buf[16..]).await?;
        Ok(wire::decode(&buf)?)
    }

    /// Calls `interface.member(args)` on `destination`'s `path`; the reply's values.
    pub async fn call(
        &mut self,
        destination: &str,
        path: &str,
        interface: &str,
        member: &str,
        args: &[Arg<'_>],
    ) -> Result<Vec<Value>, BusError> {
        self.serial = self.serial.wrapping_add(1).max(1);
        let serial = self.serial;
        let msg = wire::method_call(serial, destination, path, interface, member, args);
        self.io.get_mut().write_all(&msg).await?;
        loop {
            let m = self.read_message().await?;
            match m.kind {
                Kind::Signal => self.signals.push_back(m),
                Kind::Return if m.reply_serial == Some(serial) => return Ok(m.body),
                Kind::Error if m.reply_serial == Some(serial) => {
                    return Err(BusError::Method {
                        name: m.error_name.unwrap_or_default(),
                        message: m
                            .body
                            .first()
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string(),
                    })
                }
                _ => {}
            }
        }
    }

    /// A property of `destination`'s object at `path` (`org.freedesktop.DBus.Properties.Get`).
    pub async fn property(
        &mut self,
        destination: &str,
        path: &str,
        interface: &str,
        name: &str,
    ) -> Result<Value, BusError> {
        let args = [Arg::Str(interface), Arg::Str(name)];
        let mut body = self
            .call(destination, path, PROPERTIES, "Get", &args)
            .await?;
        match body.pop() {
            Some(Value::Variant(v)) => Ok(*v),
            _ => Err(BusError::Reply("Properties.Get")),
        }
    }

    /// Sends the signal `interface.member(args)` from `path` to whoever listens.
    pub async fn emit_signal(
        &mut self,
        path: &str,
        interface: &str,
        member: &str,
        args: &[Arg<'_>],
    ) -> Result<(), BusError> {
        self.serial = self.serial.wrapping_add(1).max(1);
        let msg = wire::signal(self.serial, path, interface, member, args);
        self.io.get_mut().write_all(&msg).await?;
        Ok(())
    }

    /// Asks the bus for the messages that `rule` matches (`AddMatch`).
    pub async fn add_match(&mut self, rule: &str) -> Result<(), BusError> {
        self.call(DBUS, DBUS_PATH, DBUS, "AddMatch", &[Arg::Str(rule)])
            .await
            .map(drop)
    }

    /// The next signal: one queued while a call waited, or the next to arrive.
    pub async fn next_signal(&mut self) -> Result<Message, BusError> {
        if let Some(m) = self.signals.pop_front() {
            return Ok(m);
        }
        loop {
            let m = self.read_message().await?;
            if m.kind == Kind::Signal {
                return Ok(m);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::unescape;

    #[test]
    fn addresses_are_unescaped() {
        assert_eq!(unescape("/tmp/dbus%2dx"), "/tmp/dbus-x");
        assert_eq!(unescape("/a%zz/b%4"), "/a%zz/b%4");
    }
}
