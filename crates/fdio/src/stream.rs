//! A non-blocking file descriptor as a tokio byte stream.

use std::future::Future;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// How long to wait before reading again after a device reported no host (qemu-ga's
/// interval).
pub const DETACHED_POLL: Duration = Duration::from_millis(100);

/// Registers an owned descriptor with the runtime.
pub fn register(fd: OwnedFd) -> io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: the AsyncFd takes ownership of the descriptor, so it stays open for as long
    // as it is registered and is closed only after deregistration.
    unsafe { AsyncFd::register(fd) }.map_err(|e| e.into())
}

/// What end-of-file means on this descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EofMeaning {
    /// The peer closed the connection: report EOF.
    End,
    /// No host is attached to the device right now: wait and read again.
    Detached,
    /// No host is attached (EOF or, on a pty, EIO): report EOF each time, and wait a
    /// little before the next read, so that a protocol that must greet every new host
    /// (vdagent) learns when one left.
    Hangup,
}

/// An async stream over a non-blocking descriptor.
#[derive(Debug)]
pub struct FdStream {
    fd: AsyncFd<OwnedFd>,
    eof: EofMeaning,
    backoff: Option<Pin<Box<Sleep>>>,
}

impl FdStream {
    /// Wraps `fd`, which must be non-blocking and pollable.
    pub fn new(fd: OwnedFd, eof: EofMeaning) -> io::Result<FdStream> {
        Ok(FdStream {
            fd: register(fd)?,
            eof,
            backoff: None,
        })
    }

    fn detached(&self, e: &io::Error) -> bool {
        // A pty whose master side is closed reports EIO: also "no host".
        self.eof != EofMeaning::End && e.raw_os_error() == Some(libc::EIO)
    }
}

impl AsyncRead for FdStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            if let Some(sleep) = self.backoff.as_mut() {
                ready!(sleep.as_mut().poll(cx));
                self.backoff = None;
            }
            let raw = self.fd.get_ref().as_raw_fd();
            let unfilled = buf.initialize_unfilled();
            // SAFETY: `unfilled` is valid writable memory of the given length.
            let n = unsafe { libc::read(raw, unfilled.as_mut_ptr().cast(), unfilled.len()) };
            if n > 0 {
                buf.advance(n as usize);
                return Poll::Ready(Ok(()));
            }
            let err = if n == 0 {
                None
            } else {
                Some(io::Error::last_os_error())
            };
            match err {
                None if self.eof == EofMeaning::End || unfilled_is_empty(buf) => {
                    return Poll::Ready(Ok(()))
                }
                None if self.eof == EofMeaning::Hangup => {
                    self.backoff = Some(Box::pin(tokio::time::sleep(DETACHED_POLL)));
                    return Poll::Ready(Ok(()));
                }
                None => self.backoff = Some(Box::pin(tokio::time::sleep(DETACHED_POLL))),
                Some(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let mut guard = ready!(self.fd.poll_read_ready(cx))?;
                    guard.clear_ready();
                }
                Some(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Some(e) if self.detached(&e) => {
                    self.backoff = Some(Box::pin(tokio::time::sleep(DETACHED_POLL)));
                    if self.eof == EofMeaning::Hangup {
                        return Poll::Ready(Ok(()));
                    }
                }
                Some(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

fn unfilled_is_empty(buf: &ReadBuf<'_>) -> bool {
    buf.remaining() == 0
}

impl AsyncWrite for FdStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            let raw = self.fd.get_ref().as_raw_fd();
            // SAFETY: `data` is valid readable memory of the given length.
            let n = unsafe { libc::write(raw, data.as_ptr().cast(), data.len()) };
            if n >= 0 {
                return Poll::Ready(Ok(n as usize));
            }
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::WouldBlock => {
                    let mut guard = ready!(self.fd.poll_write_ready(cx))?;
                    guard.clear_ready();
                }
                io::ErrorKind::Interrupted => {}
                // Nobody is attached to receive it: the reply is lost, as it would be on
                // a virtio port whose host went away.
                _ if self.detached(&e) => return Poll::Ready(Ok(data.len())),
                _ => return Poll::Ready(Err(e)),
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
