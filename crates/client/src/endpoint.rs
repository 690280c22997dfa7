//! Where the host end of an agent channel is: a unix socket, a character device (a pty
//! QEMU created with `-chardev pty`), or a vsock address.

use std::fmt;
use std::io;
use std::os::fd::OwnedFd;
use std::path::PathBuf;

use guestlink_fdio::{make_raw, open_char_device, EofMeaning, FdStream};
use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType, VsockAddr};
use tokio::io::{AsyncRead, AsyncWrite};

/// Any bidirectional byte stream.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// A boxed connection.
pub type BoxStream = Box<dyn Stream>;

/// The host end of a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A unix stream socket.
    Unix(PathBuf),
    /// A character device, e.g. a pty.
    Device(PathBuf),
    /// A vsock address.
    Vsock {
        /// Context id of the guest.
        cid: u32,
        /// Port.
        port: u32,
    },
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Unix(p) | Endpoint::Device(p) => write!(f, "{}", p.display()),
            Endpoint::Vsock { cid, port } => write!(f, "vsock:{cid}:{port}"),
        }
    }
}

impl Endpoint {
    /// A path: a character device if it is one, a unix socket otherwise.
    pub fn path(path: impl Into<PathBuf>) -> Endpoint {
        use std::os::unix::fs::FileTypeExt;
        let path = path.into();
        match std::fs::metadata(&path) {
            Ok(m) if m.file_type().is_char_device() => Endpoint::Device(path),
            _ => Endpoint::Unix(path),
        }
    }

    /// Parses `CID:PORT`.
    pub fn vsock(spec: &str) -> Result<Endpoint, String> {
        let (cid, port) = spec
            .split_once(':')
            .ok_or_else(|| format!("'{spec}' is not CID:PORT"))?;
        let num = |s: &str| {
            s.parse::<u32>()
                .map_err(|_| format!("'{s}' in '{spec}' is not a number"))
        };
        Ok(Endpoint::Vsock {
            cid: num(cid)?,
            port: num(port)?,
        })
    }

    /// Opens a connection.
    pub async fn open(&self) -> io::Result<BoxStream> {
        match self {
            Endpoint::Unix(p) => Ok(Box::new(tokio::net::UnixStream::connect(p).await?)),
            Endpoint::Device(p) => {
                let fd = open_char_device(p)?;
                if nix::unistd::isatty(std::os::fd::AsRawFd::as_raw_fd(&fd)).unwrap_or(false) {
                    make_raw(&fd, None)?;
                }
                Ok(Box::new(FdStream::new(fd, EofMeaning::End)?))
            }
            Endpoint::Vsock { cid, port } => {
                let fd = socket(
                    AddressFamily::Vsock,
                    SockType::Stream,
                    SockFlag::SOCK_CLOEXEC,
                    None,
                )
                .map_err(io::Error::from)?;
                let (cid, port) = (*cid, *port);
                // A blocking connect on its own thread, then non-blocking I/O.
                let fd = tokio::task::spawn_blocking(move || {
                    connect(
                        std::os::fd::AsRawFd::as_raw_fd(&fd),
                        &VsockAddr::new(cid, port),
                    )
                    .map_err(io::Error::from)?;
                    nix::fcntl::fcntl(
                        std::os::fd::AsRawFd::as_raw_fd(&fd),
                        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
                    )
                    .map_err(io::Error::from)?;
                    Ok::<OwnedFd, io::Error>(fd)
                })
                .await
                .map_err(io::Error::other)??;
                Ok(Box::new(FdStream::new(fd, EofMeaning::End)?))
            }
        }
    }
}
