//! Opening character devices: virtio-serial ports and serial lines.

use std::io;
use std::path::Path;

use guestlink_fdio::{make_raw, open_char_device, EofMeaning, FdStream};
use nix::sys::termios::BaudRate;

/// Opens a virtio-serial port. Any character device is accepted; a terminal (a pty in
/// tests) is put in raw mode so that bytes pass unchanged. With `report_hangup`, a
/// host that goes away reads as end-of-file (and reading goes on); otherwise it is
/// waited for silently.
pub fn open_virtio_serial(path: &Path, report_hangup: bool) -> io::Result<FdStream> {
    let fd = open_char_device(path)?;
    if nix::unistd::isatty(std::os::fd::AsRawFd::as_raw_fd(&fd)).unwrap_or(false) {
        make_raw(&fd, None)?;
    }
    let eof = if report_hangup {
        EofMeaning::Hangup
    } else {
        EofMeaning::Detached
    };
    FdStream::new(fd, eof)
}

/// Opens a serial line in raw mode at 38400 baud with pending input discarded, as
/// qemu-ga does.
pub fn open_isa_serial(path: &Path) -> io::Result<FdStream> {
    let fd = open_char_device(path)?;
    make_raw(&fd, Some(BaudRate::B38400))?;
    FdStream::new(fd, EofMeaning::Detached)
}
