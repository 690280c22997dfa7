//! Opening character devices: virtio-serial ports and serial lines.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;
use nix::sys::termios::{self, BaudRate, SetArg};

use super::fd::{EofMeaning, FdStream};

fn open_device(path: &Path) -> io::Result<OwnedFd> {
    let flags = OFlag::O_RDWR | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    let raw = open(path, flags, Mode::empty()).map_err(io::Error::from)?;
    // SAFETY: `open` just returned this descriptor and nothing else owns it.
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) })
}

fn make_raw(fd: &OwnedFd, speed: Option<BaudRate>) -> io::Result<()> {
    let mut t = termios::tcgetattr(fd.as_fd()).map_err(io::Error::from)?;
    termios::cfmakeraw(&mut t);
    if let Some(speed) = speed {
        termios::cfsetspeed(&mut t, speed).map_err(io::Error::from)?;
    }
    termios::tcsetattr(fd.as_fd(), SetArg::TCSANOW, &t).map_err(io::Error::from)?;
    termios::tcflush(fd.as_fd(), termios::FlushArg::TCIFLUSH).map_err(io::Error::from)
}

/// Opens a virtio-serial port. Any character device is accepted; a terminal (a pty in
/// tests) is put in raw mode so that bytes pass unchanged.
pub fn open_virtio_serial(path: &Path) -> io::Result<FdStream> {
    let fd = open_device(path)?;
    if nix::unistd::isatty(std::os::fd::AsRawFd::as_raw_fd(&fd)).unwrap_or(false) {
        make_raw(&fd, None)?;
    }
    FdStream::new(fd, EofMeaning::Detached)
}

/// Opens a serial line in raw mode at 38400 baud with pending input discarded, as
/// qemu-ga does.
pub fn open_isa_serial(path: &Path) -> io::Result<FdStream> {
    let fd = open_device(path)?;
    make_raw(&fd, Some(BaudRate::B38400))?;
    FdStream::new(fd, EofMeaning::Detached)
}
