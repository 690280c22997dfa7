//! Which channels to serve: `--channel PROTOCOL=METHOD:PATH`, qemu-ga's `-m`/`-p`, or
//! discovery of the known virtio-serial ports.

#[cfg(unix)]
use std::path::Path;

use guestlink_core::Protocol;

/// Directory where udev links virtio-serial ports by name.
#[cfg(unix)]
pub const VIRTIO_PORTS_DIR: &str = "/dev/virtio-ports";

/// Known port names and their protocols. For oVirt the legacy name comes first: the
/// Linux oVirt agent preferred it when both exist. `org.guestlink.0` is guestlink's own
/// QGA port, for the host's `guestlink` when libvirt or Proxmox hold the first one;
/// `org.guestlink.exporter.0` another, for the host's `guestlink exporter`.
#[cfg(unix)]
pub const KNOWN_PORTS: &[(&str, Protocol)] = &[
    ("org.qemu.guest_agent.0", Protocol::Qga),
    ("org.guestlink.0", Protocol::Qga),
    ("org.guestlink.exporter.0", Protocol::Qga),
    ("com.redhat.spice.0", Protocol::Vdagent),
    ("com.redhat.rhevm.vdsm", Protocol::Ovirt),
    ("ovirt-guest-agent.0", Protocol::Ovirt),
];

/// How a channel is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    /// A virtio-serial port (any character device).
    VirtioSerial(String),
    /// A serial line, put in raw mode.
    IsaSerial(String),
    /// A unix socket to listen on.
    UnixListen(String),
    /// A vsock address to listen on.
    VsockListen { cid: u32, port: u32 },
    /// A listening socket handed over by systemd.
    #[cfg(unix)]
    Activated,
}

/// One channel to serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelSpec {
    /// Protocol spoken.
    pub protocol: Protocol,
    /// Transport.
    pub method: Method,
}

impl ChannelSpec {
    /// A name for logs.
    pub fn name(&self) -> String {
        match &self.method {
            Method::VirtioSerial(p) | Method::IsaSerial(p) | Method::UnixListen(p) => p.clone(),
            Method::VsockListen { cid, port } => format!("vsock:{}:{port}", *cid as i32),
            #[cfg(unix)]
            Method::Activated => "systemd-socket".into(),
        }
    }
}

/// A channel description that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// Unknown `-m` method (qemu-ga's text).
    #[error("unsupported channel method/type: {0}")]
    Method(String),
    /// A listening method without a path (qemu-ga's text).
    #[error("must specify a path for this channel")]
    MissingPath,
    /// A protocol name that is not qga, vdagent or ovirt.
    #[error("unknown channel protocol '{0}' (expected qga, vdagent or ovirt)")]
    Protocol(String),
    /// A `--channel` value without `=` or `:`.
    #[error("invalid channel '{0}': expected PROTOCOL=METHOD:PATH")]
    Syntax(String),
    /// A vsock address that is not `CID:PORT`.
    #[error("invalid vsock address '{0}': expected CID:PORT")]
    Vsock(String),
}

/// Parses the name of a protocol a host channel can speak.
pub fn parse_protocol(s: &str) -> Result<Protocol, SpecError> {
    Protocol::parse(s)
        .filter(|p| crate::frontend::has_front_end(*p))
        .ok_or_else(|| SpecError::Protocol(s.into()))
}

fn parse_vsock(s: &str) -> Result<Method, SpecError> {
    let err = || SpecError::Vsock(s.into());
    let (cid, port) = s.split_once(':').ok_or_else(err)?;
    let cid = match cid.parse::<i64>().map_err(|_| err())? {
        -1 => u32::MAX,
        c => u32::try_from(c).map_err(|_| err())?,
    };
    let port = port.parse::<u32>().map_err(|_| err())?;
    Ok(Method::VsockListen { cid, port })
}

/// The serial line `-m isa-serial` opens without `-p`.
#[cfg(not(windows))]
pub const ISA_SERIAL_DEFAULT: &str = "/dev/ttyS0";
/// The serial line `-m isa-serial` opens without `-p`.
#[cfg(windows)]
pub const ISA_SERIAL_DEFAULT: &str = "COM1";

/// A method and optional path as qemu-ga's `-m` and `-p` give them.
pub fn parse_method(
    method: &str,
    path: Option<&str>,
    default_path: &str,
) -> Result<Method, SpecError> {
    match method {
        "virtio-serial" => Ok(Method::VirtioSerial(path.unwrap_or(default_path).into())),
        "isa-serial" => Ok(Method::IsaSerial(path.unwrap_or(ISA_SERIAL_DEFAULT).into())),
        "unix-listen" => Ok(Method::UnixListen(
            path.ok_or(SpecError::MissingPath)?.into(),
        )),
        "vsock-listen" => parse_vsock(path.ok_or(SpecError::MissingPath)?),
        other => Err(SpecError::Method(other.into())),
    }
}

/// Parses `PROTOCOL=METHOD:PATH`.
pub fn parse_channel(spec: &str) -> Result<ChannelSpec, SpecError> {
    let (proto, rest) = spec
        .split_once('=')
        .ok_or_else(|| SpecError::Syntax(spec.into()))?;
    let (method, path) = rest
        .split_once(':')
        .ok_or_else(|| SpecError::Syntax(spec.into()))?;
    let protocol = parse_protocol(proto)?;
    Ok(ChannelSpec {
        protocol,
        method: parse_method(method, Some(path), path)?,
    })
}

/// The known ports present under `dir`, one per protocol.
#[cfg(unix)]
pub fn discover(dir: &Path) -> Vec<ChannelSpec> {
    let mut found: Vec<ChannelSpec> = Vec::new();
    for (name, protocol) in KNOWN_PORTS {
        let path = dir.join(name);
        // oVirt's two names are one channel: serve the first present. Every other
        // known port is served.
        let alias_served =
            *protocol == Protocol::Ovirt && found.iter().any(|c| c.protocol == *protocol);
        if path.exists() && !alias_served {
            found.push(ChannelSpec {
                protocol: *protocol,
                method: Method::VirtioSerial(path.display().to_string()),
            });
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_specs() {
        assert_eq!(
            parse_channel("qga=unix-listen:/run/a.sock").unwrap(),
            ChannelSpec {
                protocol: Protocol::Qga,
                method: Method::UnixListen("/run/a.sock".into())
            }
        );
        assert_eq!(
            parse_channel("vdagent=virtio-serial:/dev/pts/3")
                .unwrap()
                .method,
            Method::VirtioSerial("/dev/pts/3".into())
        );
        assert_eq!(
            parse_channel("qga=vsock-listen:-1:1234").unwrap().method,
            Method::VsockListen {
                cid: u32::MAX,
                port: 1234
            }
        );
        assert_eq!(
            parse_channel("spice=unix-listen:/x")
                .unwrap_err()
                .to_string(),
            "unknown channel protocol 'spice' (expected qga, vdagent or ovirt)"
        );
        assert_eq!(
            parse_method("tcp", None, "").unwrap_err().to_string(),
            "unsupported channel method/type: tcp"
        );
        assert_eq!(
            parse_method("unix-listen", None, "").unwrap_err(),
            SpecError::MissingPath
        );
    }

    #[test]
    fn discovery_prefers_the_legacy_ovirt_name() {
        let dir = std::env::temp_dir().join(format!("gl-ports-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for n in [
            "org.qemu.guest_agent.0",
            "ovirt-guest-agent.0",
            "com.redhat.rhevm.vdsm",
            "org.guestlink.exporter.0",
            "org.guestlink.0",
        ] {
            std::fs::write(dir.join(n), b"").unwrap();
        }
        let found = discover(&dir);
        // The three QGA ports (qemu-ga's, guestlink's, the exporter's), one oVirt port.
        assert_eq!(found.len(), 4);
        assert_eq!(found[1].protocol, Protocol::Qga);
        assert!(found[1].name().ends_with("org.guestlink.0"));
        assert_eq!(found[2].protocol, Protocol::Qga);
        assert_eq!(
            found[3].method,
            Method::VirtioSerial(dir.join("com.redhat.rhevm.vdsm").display().to_string())
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
