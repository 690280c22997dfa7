//! A virtio-serial port (`\\.\Global\org.qemu.guest_agent.0`, vioserial's device) or
//! a COM port as an async byte stream, as qemu-ga for Windows opens them: overlapped
//! I/O, so that a read waiting for the host never holds up a write; a COM port raw at
//! 38400 baud, 8N1, no flow control, its input purged at open, and a read returning as
//! soon as bytes have come (an interval time-out of 1 ms).
//!
//! Windows has no readiness to wait on for these handles, so two threads do the
//! blocking: one reads into a channel, one writes from another. [`PortStream`] is
//! their async face for the front end. A read of zero bytes on a virtio-serial port
//! means no host is attached (vioserial's answer): the stream reports end-of-file
//! once, as the Linux port does on a hang-up, and reads on after a pause.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;
use tokio_util::sync::PollSender;
use windows_sys::Win32::Devices::Communication::{
    GetCommState, PurgeComm, SetCommState, SetCommTimeouts, COMMTIMEOUTS, DCB, NOPARITY,
    ONESTOPBIT, PURGE_RXCLEAR,
};
use windows_sys::Win32::Foundation::{
    CloseHandle, GetLastError, ERROR_IO_PENDING, ERROR_OPERATION_ABORTED, ERROR_TIMEOUT,
    GENERIC_READ, GENERIC_WRITE, HANDLE, INVALID_HANDLE_VALUE,
};
use windows_sys::Win32::Storage::FileSystem::{
    CreateFileW, ReadFile, WriteFile, FILE_FLAG_OVERLAPPED, OPEN_EXISTING,
};
use windows_sys::Win32::System::Threading::CreateEventW;
use windows_sys::Win32::System::IO::{CancelIoEx, GetOverlappedResult, OVERLAPPED};

/// Bytes one read asks for.
const READ_CHUNK: usize = 64 << 10;
/// Pieces written and not yet on the port.
const WRITE_QUEUE: usize = 16;
/// The pause after a virtio-serial read found no host.
const DETACHED_POLL: Duration = Duration::from_millis(100);

/// An open handle shared by the two threads.
#[derive(Debug)]
struct Handle(HANDLE);

// SAFETY: a file handle may be used from any thread; overlapped operations on it are
// independent, each with its own OVERLAPPED and event.
unsafe impl Send for Handle {}
// SAFETY: as above.
unsafe impl Sync for Handle {}

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: the handle was opened by `open` and is closed once, here.
        unsafe { CloseHandle(self.0) };
    }
}

/// What the reading thread passes on.
#[derive(Debug)]
enum Read {
    Data(Vec<u8>),
    /// A virtio-serial port with no host.
    Detached,
    Failed(io::Error),
}

/// What kind of port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// vioserial: a read of zero bytes means no host.
    VirtioSerial,
    /// A COM port: raw, 38400 baud.
    Serial,
}

/// The port as an async stream. Dropping it ends both threads (a pending read is
/// cancelled), so the port closes and can be opened again (`-r`).
#[derive(Debug)]
pub struct PortStream {
    handle: Arc<Handle>,
    reads: mpsc::Receiver<Read>,
    pending: Vec<u8>,
    offset: usize,
    writes: PollSender<Vec<u8>>,
}

fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(std::iter::once(0)).collect()
}

/// Opens `path` and starts its two threads.
pub fn open(path: &str, kind: Kind) -> io::Result<PortStream> {
    let name = wide(path);
    // SAFETY: `name` is NUL-terminated; the other arguments are plain values.
    let h = unsafe {
        CreateFileW(
            name.as_ptr(),
            GENERIC_READ | GENERIC_WRITE,
            0,
            std::ptr::null(),
            OPEN_EXISTING,
            FILE_FLAG_OVERLAPPED,
            std::ptr::null_mut(),
        )
    };
    if h == INVALID_HANDLE_VALUE {
        return Err(io::Error::last_os_error());
    }
    let handle = Arc::new(Handle(h));
    if kind == Kind::Serial {
        configure_serial(&handle)?;
    }
    let (read_tx, reads) = mpsc::channel(WRITE_QUEUE);
    let (writes, write_rx) = mpsc::channel::<Vec<u8>>(WRITE_QUEUE);
    let h = handle.clone();
    std::thread::Builder::new()
        .name("port-read".into())
        .spawn(move || read_loop(&h, kind, &read_tx))?;
    let h = handle.clone();
    std::thread::Builder::new()
        .name("port-write".into())
        .spawn(move || write_loop(&h, write_rx))?;
    Ok(PortStream {
        handle,
        reads,
        pending: Vec::new(),
        offset: 0,
        writes: PollSender::new(writes),
    })
}

/// Raw 38400 8N1 without flow control; reads return once bytes came; input purged.
fn configure_serial(h: &Handle) -> io::Result<()> {
    // SAFETY: DCB is plain data; GetCommState fills it.
    let mut dcb: DCB = unsafe { std::mem::zeroed() };
    dcb.DCBlength = std::mem::size_of::<DCB>() as u32;
    // SAFETY: the handle is open and `dcb` a valid DCB.
    if unsafe { GetCommState(h.0, &mut dcb) } == 0 {
        return Err(io::Error::last_os_error());
    }
    dcb.BaudRate = 38400;
    dcb.ByteSize = 8;
    dcb.Parity = NOPARITY;
    dcb.StopBits = ONESTOPBIT;
    // fBinary only: no parity check, no CTS/DSR/DTR/RTS flow control, no XON/XOFF.
    dcb._bitfield = 1;
    // SAFETY: as above.
    if unsafe { SetCommState(h.0, &dcb) } == 0 {
        return Err(io::Error::last_os_error());
    }
    let timeouts = COMMTIMEOUTS {
        ReadIntervalTimeout: 1,
        ReadTotalTimeoutMultiplier: 0,
        ReadTotalTimeoutConstant: 0,
        WriteTotalTimeoutMultiplier: 0,
        WriteTotalTimeoutConstant: 0,
    };
    // SAFETY: the handle is open; `timeouts` lives across the call.
    if unsafe { SetCommTimeouts(h.0, &timeouts) } == 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the handle is open.
    unsafe { PurgeComm(h.0, PURGE_RXCLEAR) };
    Ok(())
}

/// One overlapped operation with its own event, waited for to the end.
struct Overlapped {
    ov: OVERLAPPED,
}

impl Overlapped {
    fn new() -> io::Result<Overlapped> {
        // SAFETY: OVERLAPPED is plain data.
        let mut ov: OVERLAPPED = unsafe { std::mem::zeroed() };
        // SAFETY: an unnamed manual-reset event, no security attributes.
        ov.hEvent = unsafe { CreateEventW(std::ptr::null(), 1, 0, std::ptr::null()) };
        if ov.hEvent.is_null() {
            return Err(io::Error::last_os_error());
        }
        Ok(Overlapped { ov })
    }

    /// Waits for the operation `started` (ReadFile or WriteFile's result) to finish.
    fn finish(&mut self, h: &Handle, started: i32, done: u32) -> io::Result<usize> {
        if started != 0 {
            return Ok(done as usize);
        }
        // SAFETY: no arguments.
        let e = unsafe { GetLastError() };
        if e != ERROR_IO_PENDING {
            return Err(io::Error::from_raw_os_error(e as i32));
        }
        let mut n = 0u32;
        // SAFETY: the operation was started with this OVERLAPPED, which stays put.
        if unsafe { GetOverlappedResult(h.0, &self.ov, &mut n, 1) } == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n as usize)
    }
}

impl Drop for Overlapped {
    fn drop(&mut self) {
        // SAFETY: the event was created in `new` and is closed once.
        unsafe { CloseHandle(self.ov.hEvent) };
    }
}

fn read_loop(h: &Handle, kind: Kind, out: &mpsc::Sender<Read>) {
    let mut ov = match Overlapped::new() {
        Ok(ov) => ov,
        Err(e) => {
            let _ = out.blocking_send(Read::Failed(e));
            return;
        }
    };
    let mut buf = vec![0u8; READ_CHUNK];
    let mut attached = true;
    loop {
        let mut done = 0u32;
        // SAFETY: `buf` and `ov` outlive the operation, which `finish` waits for.
        let started = unsafe {
            ReadFile(
                h.0,
                buf.as_mut_ptr(),
                buf.len() as u32,
                &mut done,
                &mut ov.ov,
            )
        };
        let msg = match ov.finish(h, started, done) {
            Ok(0) if kind == Kind::VirtioSerial => {
                if attached {
                    attached = false;
                    if out.blocking_send(Read::Detached).is_err() {
                        return;
                    }
                }
                std::thread::sleep(DETACHED_POLL);
                continue;
            }
            // A COM port's read that found nothing within its interval (Wine reports
            // ERROR_TIMEOUT where Windows waits): read again.
            Ok(0) => continue,
            Err(e) if kind == Kind::Serial && e.raw_os_error() == Some(ERROR_TIMEOUT as i32) => {
                continue
            }
            Ok(n) => {
                attached = true;
                Read::Data(buf[..n].to_vec())
            }
            // Cancelled: the stream was dropped.
            Err(e) if e.raw_os_error() == Some(ERROR_OPERATION_ABORTED as i32) => return,
            Err(e) => {
                let _ = out.blocking_send(Read::Failed(e));
                return;
            }
        };
        if out.blocking_send(msg).is_err() {
            return;
        }
    }
}

fn write_loop(h: &Handle, mut input: mpsc::Receiver<Vec<u8>>) {
    let Ok(mut ov) = Overlapped::new() else {
        return;
    };
    while let Some(data) = input.blocking_recv() {
        let mut rest = &data[..];
        while !rest.is_empty() {
            let mut done = 0u32;
            let len = rest.len().min(u32::MAX as usize) as u32;
            // SAFETY: `data` and `ov` outlive the operation, which `finish` waits for.
            let started = unsafe { WriteFile(h.0, rest.as_ptr(), len, &mut done, &mut ov.ov) };
            match ov.finish(h, started, done) {
                Ok(n) => rest = &rest[n..],
                // Cancelled: the stream was dropped.
                Err(e) if e.raw_os_error() == Some(ERROR_OPERATION_ABORTED as i32) => return,
                Err(e) => {
                    tracing::warn!("cannot write to the port: {e}");
                    return;
                }
            }
        }
    }
}

impl Drop for PortStream {
    fn drop(&mut self) {
        // The writing thread ends when its channel closes (now); the reading thread
        // when its read is cancelled, or its next message finds nobody.
        // SAFETY: the handle is open while any Arc of it lives; null cancels every
        // operation on it.
        unsafe { CancelIoEx(self.handle.0, std::ptr::null()) };
    }
}

impl AsyncRead for PortStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.offset >= this.pending.len() {
            match ready!(this.reads.poll_recv(cx)) {
                Some(Read::Data(data)) => {
                    this.pending = data;
                    this.offset = 0;
                }
                // End-of-file for this host; the next read waits for another.
                Some(Read::Detached) => return Poll::Ready(Ok(())),
                Some(Read::Failed(e)) => return Poll::Ready(Err(e)),
                None => return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
            }
        }
        let n = buf.remaining().min(this.pending.len() - this.offset);
        buf.put_slice(&this.pending[this.offset..this.offset + n]);
        this.offset += n;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for PortStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let closed = || io::Error::from(io::ErrorKind::BrokenPipe);
        ready!(self.writes.poll_reserve(cx)).map_err(|_| closed())?;
        self.writes.send_item(data.to_vec()).map_err(|_| closed())?;
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // The writing thread writes in order, as fast as the port takes it.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.writes.close();
        Poll::Ready(Ok(()))
    }
}
