//! `guest-file-*`: files opened by the host, read and written in base64, and the
//! `__org.guestlink_file-{read,write}-raw` pair that moves the same bytes raw.
//!
//! Semantics follow qemu-ga's stdio-based implementation: fopen(3) modes, new files
//! created 0666 whatever the umask, non-blocking descriptors, an `eof` flag that a
//! read sets when it reaches the end and a seek clears. Reads fill one buffer of
//! exactly the bytes read, which the reply then encodes in pieces; writes decode the
//! base64 text a piece at a time straight into the file.
//!
//! Every call that touches the file system (open, read, write, seek, flush) runs on
//! the blocking pool (`off_thread`), holding only its own handle's lock: an open of
//! a path on a dead NFS or FUSE mount, or a read from a handle on one, stalls that
//! call alone, while every channel, the heartbeats and the watchdog go on.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

use guestlink_vocabulary::commands::{
    GuestFileClose, GuestFileFlush, GuestFileOpen, GuestFileRead, GuestFileSeek, GuestFileWrite,
    GuestlinkFileReadRaw, GuestlinkFileWriteRaw,
};
use guestlink_vocabulary::types::{
    self as t, base64_decoded_len, base64_validate, Base64Data, Empty, GuestFileHandleArgs,
    GuestFileOpenArgs, GuestFileReadArgs, GuestFileSeekArgs, GuestFileWhence, GuestFileWriteArgs,
    GuestlinkFileWriteRawArgs, QGASeek, StreamDecoder,
};

use super::off_thread;
use crate::context::Context;
use crate::dispatch::{Handler, Lazy};
use crate::error::CommandError;
use crate::limits::{FILE_HANDLES, FILE_READ_MAX};
use crate::policy::paths::{Access, FileScope};
use crate::state::OpenFile;

/// Bytes `guest-file-read` reads when no count is given.
pub const READ_COUNT_DEFAULT: i64 = 4096;

/// Access flags of an fopen(3) mode: (read, write, create, truncate, append).
fn parse_mode(mode: &str) -> Option<(bool, bool, bool, bool, bool)> {
    Some(match mode {
        "r" | "rb" => (true, false, false, false, false),
        "w" | "wb" => (false, true, true, true, false),
        "a" | "ab" => (false, true, true, false, true),
        "r+" | "rb+" | "r+b" => (true, true, false, false, false),
        "w+" | "wb+" | "w+b" => (true, true, true, true, false),
        "a+" | "ab+" | "a+b" => (true, true, true, false, true),
        _ => return None,
    })
}

/// `what: strerror(errno)`, as QEMU's `error_setg_errno` words it.
pub(crate) fn with_errno(what: impl std::fmt::Display, e: &io::Error) -> CommandError {
    CommandError::new(format!("{what}: {}", crate::error::strerror(e)))
}

/// Opens `path` as fopen(3) would with `mode`, within the policy's file scope if one
/// is set: checked before the open (nothing is created outside it) and on the opened
/// descriptor (a link swapped in meanwhile is caught).
fn open(path: &str, mode: &str, scope: Option<&FileScope>) -> Result<File, CommandError> {
    let (read, write, create, truncate, append) = parse_mode(mode)
        .ok_or_else(|| CommandError::new(format!("invalid file open mode '{mode}'")))?;
    let Some(scope) = scope else {
        return open_mode(path, mode);
    };
    let refused = |why: String| {
        tracing::warn!(path, mode, "guest-file-open refused: {why}");
        CommandError::new(format!(
            "failed to open file '{path}' (mode: '{mode}'): {why}"
        ))
    };
    let access = Access {
        read,
        write: write || create || truncate || append,
    };
    scope.check(Path::new(path), access).map_err(refused)?;
    let file = open_mode(path, mode)?;
    let opened = crate::os::opened_path(&file)
        .map_err(|e| refused(format!("cannot tell what was opened: {e}")))?;
    scope.check_resolved(&opened, access).map_err(refused)?;
    Ok(file)
}

fn open_mode(path: &str, mode: &str) -> Result<File, CommandError> {
    let (read, write, create, truncate, append) = parse_mode(mode)
        .ok_or_else(|| CommandError::new(format!("invalid file open mode '{mode}'")))?;
    let failed =
        |e: &io::Error| with_errno(format!("failed to open file '{path}' (mode: '{mode}')"), e);
    let mut opts = OpenOptions::new();
    opts.read(read).write(write || append).append(append);
    crate::os::nonblocking(&mut opts);
    if create {
        // Create exclusively first so that only a file we made gets mode 0666.
        let mut excl = opts.clone();
        excl.create_new(true);
        crate::os::create_mode(&mut excl, 0o666);
        match excl.open(path) {
            Ok(file) => {
                crate::os::set_mode(&file, 0o666).map_err(|e| failed(&e))?;
                return Ok(file);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(failed(&e)),
        }
    }
    opts.truncate(truncate).open(path).map_err(|e| failed(&e))
}

fn handle_not_found(handle: i64) -> CommandError {
    CommandError::new(format!("handle '{handle}' has not been found"))
}

fn lookup(ctx: &Context<'_>, handle: i64) -> Result<Arc<Mutex<OpenFile>>, CommandError> {
    ctx.agent
        .state()
        .files
        .get(handle)
        .ok_or_else(|| handle_not_found(handle))
}

fn lock(f: &Mutex<OpenFile>) -> std::sync::MutexGuard<'_, OpenFile> {
    f.lock().unwrap_or_else(|e| e.into_inner())
}

impl Handler for GuestFileOpen {
    async fn handle(ctx: Context<'_>, args: GuestFileOpenArgs) -> Result<i64, CommandError> {
        let mode = args.mode.as_deref().unwrap_or("r");
        // Checked before the file is opened, so that a refused open creates nothing.
        if ctx.agent.state().files.len() >= FILE_HANDLES {
            return Err(CommandError::new(format!(
                "too many open files (limit file-handles: {FILE_HANDLES})"
            )));
        }
        let (path, owned_mode) = (args.path.clone(), mode.to_string());
        let scope = ctx.agent.file_scope();
        let file = off_thread(move || open(&path, &owned_mode, scope.as_ref())).await??;
        let handle = ctx
            .agent
            .state()
            .files
            .insert(file)
            .map_err(|_| CommandError::new("failed to commit persistent state to disk"))?;
        tracing::debug!(path = %args.path, mode, handle, "guest-file-open");
        Ok(handle)
    }
}

impl Handler for GuestFileClose {
    async fn handle(ctx: Context<'_>, args: GuestFileHandleArgs) -> Result<Empty, CommandError> {
        ctx.agent
            .state()
            .files
            .remove(args.handle)
            .ok_or_else(|| handle_not_found(args.handle))?;
        Ok(Empty {})
    }
}

/// Reads up to `count` bytes: stops at the end of the file (setting `eof`) or when a
/// non-blocking descriptor has nothing more now.
fn read_up_to(f: &mut OpenFile, count: usize) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    buf.try_reserve_exact(count)
        .map_err(|_| io::Error::from_raw_os_error(libc::ENOMEM))?;
    while buf.len() < count {
        let before = buf.len();
        match (&f.file)
            .take((count - before) as u64)
            .read_to_end(&mut buf)
        {
            Ok(_) if buf.len() == before => {
                f.eof = true;
                break;
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(buf)
}

/// Reads `args.count` bytes (4096 by default, at most 48 MiB) and the eof flag.
async fn read_file(
    ctx: &Context<'_>,
    args: &GuestFileReadArgs,
) -> Result<(Vec<u8>, bool), CommandError> {
    let file = lookup(ctx, args.handle)?;
    let count = args.count.unwrap_or(READ_COUNT_DEFAULT);
    if !(0..=FILE_READ_MAX).contains(&count) {
        return Err(CommandError::new(format!(
            "value '{count}' is invalid for argument count"
        )));
    }
    off_thread(move || {
        let mut f = lock(&file);
        let data = read_up_to(&mut f, count as usize)
            .map_err(|e| with_errno("failed to read file", &e))?;
        Ok((data, f.eof))
    })
    .await?
}

impl Handler for GuestFileRead {
    async fn handle(
        ctx: Context<'_>,
        args: GuestFileReadArgs,
    ) -> Result<t::GuestFileRead, CommandError> {
        let (data, eof) = read_file(&ctx, &args).await?;
        Ok(t::GuestFileRead {
            count: data.len() as i64,
            buf_b64: Base64Data(data),
            eof,
        })
    }

    fn reply_size_hint(reply: &t::GuestFileRead) -> usize {
        reply.buf_b64.0.len() / 3 * 4
    }

    fn streamed(ctx: &Context<'_>, args: &GuestFileReadArgs) -> Result<Option<Lazy>, CommandError> {
        let count = args.count.unwrap_or(READ_COUNT_DEFAULT);
        if !(STREAM_READ_OVER as i64..=FILE_READ_MAX).contains(&count) {
            return Ok(None);
        }
        let file = lookup(ctx, args.handle)?;
        // Regular files only: their reads do not fail halfway for want of data, and a
        // directory's EISDIR is still reported as an error by `handle`.
        let regular = lock(&file).file.metadata().is_ok_and(|m| m.is_file());
        if !regular {
            return Ok(None);
        }
        let count = count as usize;
        Ok(Some(Lazy {
            value: Box::new(StreamedRead { file, count }),
            size_hint: count / 3 * 4,
        }))
    }
}

/// `guest-file-read` counts from which a regular file is read while its reply is
/// encoded ([`Handler::streamed`]).
const STREAM_READ_OVER: usize = 1 << 20;
/// Bytes read per piece of such a reply: a multiple of 3, so that the base64 of the
/// pieces joins up (padding only ends the last).
const STREAM_READ_PIECE: usize = 3 << 16;

/// A `guest-file-read` result that reads the file as it is serialised:
/// `{"buf-b64": ..., "count": N, "eof": B}` (the count follows the data, as it is known
/// only once read). A read error halfway ends the data there: a short read, as a read
/// that meets the end of the file.
struct StreamedRead {
    file: Arc<Mutex<OpenFile>>,
    count: usize,
}

impl serde::Serialize for StreamedRead {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut f = lock(&self.file);
        let body = StreamedBody {
            file: std::cell::RefCell::new(&mut f),
            want: self.count,
            read: std::cell::Cell::new(0),
        };
        let mut map = serializer.serialize_map(Some(3))?;
        map.serialize_entry("buf-b64", &body)?;
        let read = body.read.get();
        map.serialize_entry("count", &(read as i64))?;
        map.serialize_entry("eof", &f.eof)?;
        map.end()
    }
}

/// The base64 text of up to `want` bytes read from `file`.
struct StreamedBody<'a, 'f> {
    file: std::cell::RefCell<&'a mut std::sync::MutexGuard<'f, OpenFile>>,
    want: usize,
    read: std::cell::Cell<usize>,
}

impl serde::Serialize for StreamedBody<'_, '_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl std::fmt::Display for StreamedBody<'_, '_> {
    fn fmt(&self, out: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut file = self.file.borrow_mut();
        let mut buf = vec![0u8; STREAM_READ_PIECE.min(self.want)];
        let mut text = String::with_capacity(buf.len() / 3 * 4 + 4);
        while self.read.get() < self.want {
            let n = buf.len().min(self.want - self.read.get());
            let got = match fill(&mut file, &mut buf[..n]) {
                Ok(got) => got,
                Err((got, e)) => {
                    tracing::warn!("guest-file-read stopped short: {e}");
                    got
                }
            };
            text.clear();
            t::base64_encode_into(&buf[..got], &mut text);
            out.write_str(&text)?;
            self.read.set(self.read.get() + got);
            if got < n {
                break;
            }
        }
        Ok(())
    }
}

/// Reads until `buf` is full, the end of the file (setting `eof`), or a non-blocking
/// descriptor has nothing more now. On an error, how much was read before it.
fn fill(f: &mut OpenFile, buf: &mut [u8]) -> Result<usize, (usize, io::Error)> {
    let mut got = 0;
    while got < buf.len() {
        match (&f.file).read(&mut buf[got..]) {
            Ok(0) => {
                f.eof = true;
                break;
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err((got, e)),
        }
    }
    Ok(got)
}

impl Handler for GuestlinkFileReadRaw {
    async fn handle(
        ctx: Context<'_>,
        args: GuestFileReadArgs,
    ) -> Result<t::GuestlinkFileReadRaw, CommandError> {
        let (data, eof) = read_file(&ctx, &args).await?;
        let count = data.len() as i64;
        // Dispatch refuses this command without bulk transfer, so `bulk` is set.
        if let Some(bulk) = ctx.bulk {
            bulk.set_output(data);
        }
        Ok(t::GuestlinkFileReadRaw { count, eof })
    }
}

/// Text decoded per write(2), a multiple of 4.
const WRITE_PIECE: usize = 256 << 10;

/// What a write decodes into the file: base64 text, or raw bytes.
enum WriteSource {
    Base64(String),
    Raw(Vec<u8>),
}

/// Writes up to `count` bytes of `source` to the file behind `handle`: as many as the
/// descriptor takes now, in pieces of at most [`WRITE_PIECE`].
async fn write_file(
    ctx: &Context<'_>,
    handle: i64,
    source: WriteSource,
    count: usize,
) -> Result<t::GuestFileWrite, CommandError> {
    let file = lookup(ctx, handle)?;
    off_thread(move || write_locked(&mut lock(&file), &source, count)).await?
}

fn write_locked(
    f: &mut OpenFile,
    source: &WriteSource,
    count: usize,
) -> Result<t::GuestFileWrite, CommandError> {
    // qemu-ga seeks in place when a write follows a read, as stdio requires, which
    // clears the end-of-file flag.
    f.eof = false;
    let mut decoder = StreamDecoder::default();
    let mut piece = Vec::new();
    let mut left = count;
    let mut written = 0usize;
    let input: &[u8] = match source {
        WriteSource::Base64(text) => text.as_bytes(),
        WriteSource::Raw(data) => data,
    };
    for chunk in input.chunks(WRITE_PIECE) {
        if left == 0 {
            break;
        }
        let bytes: &[u8] = match source {
            WriteSource::Base64(_) => {
                piece.clear();
                decoder.feed(chunk, &mut piece);
                &piece
            }
            WriteSource::Raw(_) => chunk,
        };
        let want = bytes.len().min(left);
        match write_all_nonblocking(&mut f.file, &bytes[..want]) {
            Ok(n) => {
                written += n;
                left -= n;
                if n < want {
                    break;
                }
            }
            Err(e) if written == 0 => return Err(with_errno("failed to write to file", &e)),
            Err(_) => break,
        }
    }
    Ok(t::GuestFileWrite {
        count: written as i64,
        eof: f.eof,
    })
}

fn invalid_count(count: i64) -> CommandError {
    CommandError::new(format!("value '{count}' is invalid for argument count"))
}

impl Handler for GuestFileWrite {
    async fn handle(
        ctx: Context<'_>,
        args: GuestFileWriteArgs,
    ) -> Result<t::GuestFileWrite, CommandError> {
        lookup(&ctx, args.handle)?;
        let text = args.buf_b64.as_bytes();
        base64_validate(text).map_err(|e| CommandError::new(e.to_string()))?;
        let available = base64_decoded_len(text) as i64;
        let count = args.count.unwrap_or(available);
        if !(0..=available).contains(&count) {
            return Err(invalid_count(count));
        }
        let source = WriteSource::Base64(args.buf_b64);
        write_file(&ctx, args.handle, source, count as usize).await
    }
}

impl Handler for GuestlinkFileWriteRaw {
    async fn handle(
        ctx: Context<'_>,
        args: GuestlinkFileWriteRawArgs,
    ) -> Result<t::GuestFileWrite, CommandError> {
        // The front end reads exactly `count` bytes after the request when `count` is
        // in range; anything else never had a payload.
        let data = ctx.bulk.and_then(|b| b.take_input()).unwrap_or_default();
        if !(0..=FILE_READ_MAX).contains(&args.count) || data.len() as i64 != args.count {
            return Err(invalid_count(args.count));
        }
        let count = data.len();
        write_file(&ctx, args.handle, WriteSource::Raw(data), count).await
    }
}

/// Writes as much of `data` as the descriptor takes now.
fn write_all_nonblocking(file: &mut File, mut data: &[u8]) -> io::Result<usize> {
    let total = data.len();
    while !data.is_empty() {
        match file.write(data) {
            Ok(0) => break,
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => return Err(e),
        }
    }
    Ok(total - data.len())
}

impl Handler for GuestFileSeek {
    async fn handle(
        ctx: Context<'_>,
        args: GuestFileSeekArgs,
    ) -> Result<t::GuestFileSeek, CommandError> {
        let file = lookup(&ctx, args.handle)?;
        let whence = match args.whence {
            GuestFileWhence::Name(n) => n,
            GuestFileWhence::Value(0) => QGASeek::Set,
            GuestFileWhence::Value(1) => QGASeek::Cur,
            GuestFileWhence::Value(2) => QGASeek::End,
            GuestFileWhence::Value(n) => {
                return Err(CommandError::new(format!("invalid whence code {n}")))
            }
        };
        let offset = args.offset;
        let pos = off_thread(move || {
            let mut f = lock(&file);
            // Like clearerr(3) after fseek(3): the end-of-file flag is reset either way.
            f.eof = false;
            match whence {
                QGASeek::Set if offset < 0 => Err(io::Error::from_raw_os_error(libc::EINVAL)),
                QGASeek::Set => f.file.seek(SeekFrom::Start(offset as u64)),
                QGASeek::Cur => f.file.seek(SeekFrom::Current(offset)),
                QGASeek::End => f.file.seek(SeekFrom::End(offset)),
            }
        })
        .await?;
        let position = pos.map_err(|e| with_errno("failed to seek file", &e))?;
        Ok(t::GuestFileSeek {
            position: position as i64,
            eof: false,
        })
    }
}

impl Handler for GuestFileFlush {
    async fn handle(ctx: Context<'_>, args: GuestFileHandleArgs) -> Result<Empty, CommandError> {
        let file = lookup(&ctx, args.handle)?;
        // Writes go straight to the descriptor; there is no user-space buffer to flush.
        off_thread(move || lock(&file).file.flush())
            .await?
            .map_err(|e| with_errno("failed to flush file", &e))?;
        Ok(Empty {})
    }
}
