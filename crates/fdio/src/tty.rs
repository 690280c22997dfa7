//! Opening character devices and raw terminal mode.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;
use nix::sys::termios::{self, BaudRate, SetArg};

/// Opens a character device read-write, non-blocking, without making it the
/// controlling terminal.
pub fn open_char_device(path: &Path) -> io::Result<OwnedFd> {
    let flags = OFlag::O_RDWR | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    let raw = open(path, flags, Mode::empty()).map_err(io::Error::from)?;
    // SAFETY: `open` just returned this descriptor and nothing else owns it.
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) })
}

/// Puts a terminal in raw mode (optionally at a line speed) and discards pending input,
/// so that bytes pass unchanged.
pub fn make_raw(fd: &OwnedFd, speed: Option<BaudRate>) -> io::Result<()> {
    let mut t = termios::tcgetattr(fd.as_fd()).map_err(io::Error::from)?;
    termios::cfmakeraw(&mut t);
    if let Some(speed) = speed {
        // The speed bits set directly, as cfsetspeed(3) does: libc binds cfsetspeed to
        // a versioned glibc symbol that a static build (guestlinkd for initramfs)
        // cannot resolve.
        let mut raw: libc::termios = t.into();
        raw.c_cflag = (raw.c_cflag & !libc::CBAUD) | speed as libc::tcflag_t;
        raw.c_ispeed = speed as libc::speed_t;
        raw.c_ospeed = speed as libc::speed_t;
        t = raw.into();
    }
    termios::tcsetattr(fd.as_fd(), SetArg::TCSANOW, &t).map_err(io::Error::from)?;
    termios::tcflush(fd.as_fd(), termios::FlushArg::TCIFLUSH).map_err(io::Error::from)
}

#[cfg(test)]
mod speed_tests {
    use super::*;

    #[test]
    fn raw_mode_sets_the_line_speed() {
        let pty = nix::pty::openpty(None, None).unwrap();
        make_raw(&pty.slave, Some(BaudRate::B38400)).unwrap();
        let t: libc::termios = termios::tcgetattr(pty.slave.as_fd()).unwrap().into();
        assert_eq!(t.c_cflag & libc::CBAUD, libc::B38400);
        assert_eq!(t.c_lflag & libc::ICANON, 0, "not raw");
    }
}
