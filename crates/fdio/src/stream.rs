//! A non-blocking file descriptor as a tokio byte stream.

use std::future::Future;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::pin::Pin;
use std::task::{ready, Context, Poll, Waker};
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
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

/// Registers an owned descriptor for readability alone, or for both directions.
fn register_for(fd: OwnedFd, writes_wait: bool) -> io::Result<AsyncFd<OwnedFd>> {
    let interest = if writes_wait {
        Interest::READABLE | Interest::WRITABLE
    } else {
        Interest::READABLE
    };
    // SAFETY: as in `register`.
    unsafe { AsyncFd::register_with_interest(fd, interest) }.map_err(|e| e.into())
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
///
/// On a device whose peer comes and goes (not [`EofMeaning::End`]), the descriptor may
/// be registered anew with the runtime (see `stale_hangup`).
///
/// The descriptor is watched for readability only until a write first would block:
/// most streams never fill their peer's buffer, and watching writability as well
/// costs a wake-up each time the peer reads what was written (once per request on a
/// request/reply channel). The first blocked write registers it anew for both.
///
/// A new registration knows nothing of who waited on the old one, so the stream keeps
/// the last waker of each direction and wakes both when it registers anew: the halves
/// of a split stream may wait in different tasks.
#[derive(Debug)]
pub struct FdStream {
    fd: AsyncFd<OwnedFd>,
    /// Whether the registration watches writability too.
    writes_wait: bool,
    /// Who waits to read, and to write, on the current registration.
    read_waker: Option<Waker>,
    write_waker: Option<Waker>,
    eof: EofMeaning,
    backoff: Option<Pin<Box<Sleep>>>,
    /// The same for writes: a split stream's halves wait apart.
    write_backoff: Option<Pin<Box<Sleep>>>,
    /// Waits so far for a host to be there to take a write.
    hangup_waits: u8,
}

/// How many [`DETACHED_POLL`]s a write waits for a host before what it holds is
/// dropped: a virtio-serial port can deliver a new host's request before it says the
/// host is there, and the reply must not be lost to that race.
const HANGUP_WRITE_WAITS: u8 = 10;

impl FdStream {
    /// Wraps `fd`, which must be non-blocking and pollable.
    pub fn new(fd: OwnedFd, eof: EofMeaning) -> io::Result<FdStream> {
        Ok(FdStream {
            fd: register_for(fd, false)?,
            writes_wait: false,
            read_waker: None,
            write_waker: None,
            eof,
            backoff: None,
            write_backoff: None,
            hangup_waits: 0,
        })
    }

    fn detached(&self, e: &io::Error) -> bool {
        // A pty whose master side is closed reports EIO: also "no host".
        self.eof != EofMeaning::End && e.raw_os_error() == Some(libc::EIO)
    }

    /// Whether the peer is gone right now, as poll(2) sees it.
    fn hung_up_now(&self) -> bool {
        let mut p = libc::pollfd {
            fd: self.fd.get_ref().as_raw_fd(),
            events: libc::POLLOUT,
            revents: 0,
        };
        // SAFETY: one valid pollfd, no waiting.
        let n = unsafe { libc::poll(&mut p, 1, 0) };
        n > 0 && p.revents & libc::POLLHUP != 0
    }

    /// Handles a would-block whose readiness says "closed". The runtime keeps a hang-up
    /// it once saw as final, but a device's peer comes back (a virtio-serial port's
    /// host reconnects, a pty is opened again): the descriptor is registered anew (as
    /// a duplicate) so that waiting waits again instead of spinning. Once per call; a
    /// second time, a short sleep (in `backoff`, the reading or the writing one) stands
    /// in for the wait.
    fn stale_hangup(&mut self, refreshed: &mut bool, writing: bool) -> io::Result<()> {
        if *refreshed {
            let sleep = Some(Box::pin(tokio::time::sleep(DETACHED_POLL)));
            if writing {
                self.write_backoff = sleep;
            } else {
                self.backoff = sleep;
            }
            return Ok(());
        }
        *refreshed = true;
        self.reregister()
    }

    /// Registers the descriptor anew (as a duplicate, the old registration going with
    /// the old descriptor), watching writability if `writes_wait` says so.
    fn reregister(&mut self) -> io::Result<()> {
        self.fd = register_for(self.fd.get_ref().try_clone()?, self.writes_wait)?;
        // Whoever waited on the old registration tries again on the new one.
        for waker in [self.read_waker.take(), self.write_waker.take()]
            .into_iter()
            .flatten()
        {
            waker.wake();
        }
        Ok(())
    }
}

impl AsyncRead for FdStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let mut refreshed = false;
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
                    let this = &mut *self;
                    let mut guard = match this.fd.poll_read_ready(cx) {
                        Poll::Ready(guard) => guard?,
                        Poll::Pending => {
                            remember(&mut this.read_waker, cx);
                            return Poll::Pending;
                        }
                    };
                    if guard.ready().is_read_closed() && this.eof != EofMeaning::End {
                        // The read said "nothing yet", so the peer is there: the
                        // hang-up is an old one.
                        drop(guard);
                        self.stale_hangup(&mut refreshed, false)?;
                    } else {
                        guard.clear_ready();
                    }
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

/// Keeps `cx`'s waker in `slot` (no clone when the same task waits again).
fn remember(slot: &mut Option<Waker>, cx: &Context<'_>) {
    if !slot.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
        *slot = Some(cx.waker().clone());
    }
}

fn unfilled_is_empty(buf: &ReadBuf<'_>) -> bool {
    buf.remaining() == 0
}

impl AsyncWrite for FdStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut refreshed = false;
        loop {
            if let Some(sleep) = self.write_backoff.as_mut() {
                ready!(sleep.as_mut().poll(cx));
                self.write_backoff = None;
            }
            let raw = self.fd.get_ref().as_raw_fd();
            // SAFETY: `data` is valid readable memory of the given length.
            let n = unsafe { libc::write(raw, data.as_ptr().cast(), data.len()) };
            if n >= 0 {
                self.hangup_waits = 0;
                return Poll::Ready(Ok(n as usize));
            }
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::WouldBlock if !self.writes_wait => {
                    // The first write that must wait: from now on writability is
                    // watched as well. Epoll reports the current state of a new
                    // registration, so a buffer that drained meanwhile is not missed.
                    self.writes_wait = true;
                    self.reregister()?;
                }
                io::ErrorKind::WouldBlock => {
                    let this = &mut *self;
                    let mut guard = match this.fd.poll_write_ready(cx) {
                        Poll::Ready(guard) => guard?,
                        Poll::Pending => {
                            remember(&mut this.write_waker, cx);
                            return Poll::Pending;
                        }
                    };
                    if guard.ready().is_write_closed() && this.eof != EofMeaning::End {
                        drop(guard);
                        if self.hung_up_now() {
                            if self.hangup_waits >= HANGUP_WRITE_WAITS {
                                // A virtio-serial port with no host takes nothing: what
                                // was to go is lost, as with a host that went away.
                                self.hangup_waits = 0;
                                return Poll::Ready(Ok(data.len()));
                            }
                            self.hangup_waits += 1;
                            self.write_backoff = Some(Box::pin(tokio::time::sleep(DETACHED_POLL)));
                            continue;
                        }
                        self.stale_hangup(&mut refreshed, true)?;
                    } else {
                        guard.clear_ready();
                    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use nix::fcntl::OFlag;
    use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
    use tokio::io::AsyncReadExt;

    /// CPU time this thread has used.
    fn thread_cpu() -> Duration {
        let mut t = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes into the timespec we own.
        let r = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
        assert_eq!(r, 0);
        Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
    }

    fn open_slave(name: &str) -> std::fs::File {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY)
            .open(name)
            .unwrap()
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// More than a socket pair's buffers hold: a write of it must wait.
    const BIG: usize = 8 << 20;

    /// A connected pair: our end (non-blocking, for an `FdStream`) and the peer's.
    fn socket_pair() -> (OwnedFd, std::os::unix::net::UnixStream) {
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        (OwnedFd::from(ours), theirs)
    }

    /// The peer reads `len` bytes, pausing `pause` after each read.
    fn read_all(peer: &mut std::os::unix::net::UnixStream, len: usize, pause: Duration) -> Vec<u8> {
        use std::io::Read;
        let mut got = Vec::with_capacity(len);
        let mut buf = vec![0u8; 64 << 10];
        while got.len() < len {
            let n = peer.read(&mut buf).unwrap();
            assert!(n > 0, "EOF after {} bytes", got.len());
            got.extend_from_slice(&buf[..n]);
            std::thread::sleep(pause);
        }
        got
    }

    /// A write that fills the peer's buffer waits for writability (registered only
    /// then), and reads go on working on the new registration.
    #[test]
    fn a_blocked_write_waits_for_the_peer_and_reads_go_on() {
        use std::io::Write;
        use tokio::io::AsyncWriteExt;
        let (ours, mut theirs) = socket_pair();
        let peer = std::thread::spawn(move || {
            // A slow reader: our side must wait for room more than once.
            let got = read_all(&mut theirs, BIG, Duration::from_micros(200));
            theirs.write_all(b"done").unwrap();
            got
        });
        runtime().block_on(async {
            let mut s = FdStream::new(ours, EofMeaning::End).unwrap();
            assert!(!s.writes_wait);
            let data: Vec<u8> = (0..BIG).map(|i| (i % 251) as u8).collect();
            tokio::time::timeout(Duration::from_secs(60), s.write_all(&data))
                .await
                .expect("the write never finished")
                .unwrap();
            assert!(s.writes_wait, "8 MiB went without ever waiting");
            let mut buf = [0u8; 4];
            tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut buf))
                .await
                .expect("the read after the upgrade never finished")
                .unwrap();
            assert_eq!(&buf, b"done");
            assert_eq!(peer.join().unwrap(), data);
        });
    }

    /// The halves of a split stream in two tasks: a write that blocks registers the
    /// descriptor anew, and the reader, which waited on the old registration, still
    /// hears of what arrives next.
    #[test]
    fn a_reader_in_another_task_survives_the_writer_registering_anew() {
        use std::io::Write;
        use tokio::io::AsyncWriteExt;
        let (ours, mut theirs) = socket_pair();
        runtime().block_on(async {
            let s = FdStream::new(ours, EofMeaning::End).unwrap();
            let (mut r, mut w) = tokio::io::split(s);
            let reader = tokio::spawn(async move {
                let mut buf = [0u8; 4];
                r.read_exact(&mut buf).await.map(|_| buf)
            });
            // The reader waits (on the first registration) before the writer blocks.
            tokio::time::sleep(Duration::from_millis(50)).await;
            let writer = tokio::spawn(async move { w.write_all(&vec![7u8; BIG]).await });
            tokio::time::sleep(Duration::from_millis(100)).await;
            assert!(!writer.is_finished(), "8 MiB went without ever waiting");
            // The peer speaks before it reads anything.
            theirs.write_all(b"ping").unwrap();
            let got = tokio::time::timeout(Duration::from_secs(5), reader)
                .await
                .expect("the reader never heard of the data")
                .unwrap()
                .unwrap();
            assert_eq!(&got, b"ping");
            let drain = std::thread::spawn(move || read_all(&mut theirs, BIG, Duration::ZERO));
            tokio::time::timeout(Duration::from_secs(30), writer)
                .await
                .expect("the write never finished")
                .unwrap()
                .unwrap();
            assert_eq!(drain.join().unwrap(), vec![7u8; BIG]);
        });
    }

    /// A peer that hangs up and comes back (a virtio-serial port's host, here a pty's
    /// other end): the hang-up the runtime saw must not make an idle read spin.
    #[test]
    fn an_idle_read_after_a_hangup_waits_without_spinning() {
        runtime().block_on(async {
            let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_NONBLOCK).unwrap();
            grantpt(&master).unwrap();
            unlockpt(&master).unwrap();
            let name = ptsname_r(&master).unwrap();
            let slave = open_slave(&name);
            // SAFETY: the descriptor is the pty master's, whose ownership moves here.
            let master = unsafe {
                <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(
                    std::os::fd::IntoRawFd::into_raw_fd(master),
                )
            };
            let mut s = FdStream::new(master, EofMeaning::Hangup).unwrap();
            // The peer goes: its end reads as EOF, and the runtime sees the hang-up.
            drop(slave);
            let mut buf = [0u8; 64];
            assert_eq!(s.read(&mut buf).await.unwrap(), 0);
            tokio::time::sleep(Duration::from_millis(150)).await;
            // It comes back, and says nothing for a while.
            let slave = open_slave(&name);
            let before = thread_cpu();
            let idle = tokio::time::timeout(Duration::from_millis(400), s.read(&mut buf)).await;
            let used = thread_cpu() - before;
            assert!(idle.is_err(), "read {idle:?} from a silent peer");
            assert!(
                used < Duration::from_millis(100),
                "an idle read used {used:?} of CPU in 400 ms"
            );
            // And what it then sends arrives.
            std::io::Write::write_all(&mut &slave, b"hi\n").unwrap();
            let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
                .await
                .unwrap()
                .unwrap();
            assert!(buf[..n].starts_with(b"hi"), "{:?}", &buf[..n]);
        });
    }
}
