//! Listening transports: a unix socket path, a vsock address, or a socket passed by
//! systemd (`LISTEN_FDS`). Each accepted connection is an independent byte stream.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use nix::sys::socket::{
    accept4, bind, getsockname, listen, socket, AddressFamily, Backlog, SockFlag, SockType,
    SockaddrLike, SockaddrStorage, VsockAddr,
};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite};

use guestlink_fdio::{register, EofMeaning, FdStream};

/// Any bidirectional byte stream.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// A boxed connection.
pub type BoxStream = Box<dyn Stream>;

/// A listening socket, unix or vsock: each accepted connection is an [`FdStream`], which
/// watches writability only once a write has had to wait.
#[derive(Debug)]
pub struct Listener(AsyncFd<OwnedFd>);

impl Listener {
    /// Listens on a unix socket path, replacing a stale socket file.
    pub fn unix(path: &Path) -> io::Result<Listener> {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let std = std::os::unix::net::UnixListener::bind(path)?;
        std.set_nonblocking(true)?;
        Ok(Listener(register(OwnedFd::from(std))?))
    }

    /// Listens on vsock `cid:port` (`u32::MAX` is any CID).
    pub fn vsock(cid: u32, port: u32) -> io::Result<Listener> {
        let fd = socket(
            AddressFamily::Vsock,
            SockType::Stream,
            SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
            None,
        )
        .map_err(io::Error::from)?;
        bind(fd.as_raw_fd(), &VsockAddr::new(cid, port)).map_err(io::Error::from)?;
        listen(&fd, Backlog::new(16).map_err(io::Error::from)?).map_err(io::Error::from)?;
        Ok(Listener(register(fd)?))
    }

    /// Listens on a socket systemd passed (socket activation), unix or vsock.
    pub fn from_passed(fd: OwnedFd) -> io::Result<Listener> {
        let addr: SockaddrStorage = getsockname(fd.as_raw_fd()).map_err(io::Error::from)?;
        match addr.family() {
            Some(AddressFamily::Unix | AddressFamily::Vsock) => {
                nix::fcntl::fcntl(
                    fd.as_raw_fd(),
                    nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
                )
                .map_err(io::Error::from)?;
                Ok(Listener(register(fd)?))
            }
            other => Err(io::Error::other(format!(
                "socket from systemd has unsupported family {other:?}"
            ))),
        }
    }

    /// Waits for the next connection.
    pub async fn accept(&self) -> io::Result<BoxStream> {
        loop {
            let mut guard = self.0.readable().await?;
            match guard.try_io(|inner| {
                accept4(
                    inner.get_ref().as_raw_fd(),
                    SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
                )
                .map_err(io::Error::from)
            }) {
                Ok(Ok(raw)) => {
                    // SAFETY: accept4 returned a new descriptor that nothing else owns.
                    let owned = unsafe { OwnedFd::from_raw_fd(raw) };
                    return Ok(Box::new(FdStream::new(owned, EofMeaning::End)?));
                }
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
    }
}
