//! Reading a host port with a deadline, for the harnesses of the binary and line
//! protocols (`vdagent`, `ovirt`).

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt};

/// Reads what the agent sent next into `buf`, before `deadline`: the byte count, or
/// `TimedOut`, or `UnexpectedEof` when the port closed.
pub(crate) async fn read_before<S: AsyncRead + Unpin>(
    io: &mut S,
    buf: &mut [u8],
    deadline: tokio::time::Instant,
) -> io::Result<usize> {
    match tokio::time::timeout_at(deadline, io.read(buf)).await {
        Ok(Ok(0)) => Err(io::ErrorKind::UnexpectedEof.into()),
        Ok(r) => r,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the agent sent nothing in time",
        )),
    }
}
