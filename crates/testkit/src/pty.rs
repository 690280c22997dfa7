//! A pty pair standing for a virtio-serial port, the host's end held by the test.

use std::path::PathBuf;

/// A pty standing for a virtio port: the host's end as a stream (inside a tokio
/// runtime), the agent's end (keep it open, so that the host's end never reads EIO),
/// and the agent's end's path.
pub fn host_pty() -> (guestlink_fdio::FdStream, std::os::fd::OwnedFd, PathBuf) {
    let pty = nix::pty::openpty(None, None).unwrap();
    guestlink_fdio::make_raw(&pty.master, None).unwrap();
    let path = nix::unistd::ttyname(&pty.slave).unwrap();
    nix::fcntl::fcntl(
        std::os::fd::AsRawFd::as_raw_fd(&pty.master),
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    )
    .unwrap();
    let stream =
        guestlink_fdio::FdStream::new(pty.master, guestlink_fdio::EofMeaning::End).unwrap();
    (stream, pty.slave, path)
}
