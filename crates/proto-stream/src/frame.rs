//! The frame types.

/// A stream's number on its connection, chosen by the guest (never 0).
pub type StreamId = u32;

/// The kind byte of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// Bytes of the stream (a program's stdin or stdout, a connection's data).
    Data = 1,
    /// Bytes a program wrote to its standard error (guest to host only).
    Stderr = 2,
    /// The reader consumed bytes: the sender may send this many more.
    Credit = 3,
    /// The sender will send no more data on the stream (half-close; stdin's end).
    Eof = 4,
    /// The stream is gone, with a reason; no frame for it follows.
    Reset = 5,
    /// The program of the stream ended (guest to host, after its last output).
    Exit = 6,
    /// The terminal of the stream has a new size (host to guest).
    Resize = 7,
    /// Send a signal to the stream's program (host to guest).
    Signal = 8,
    /// A connection arrived at a listening stream: this new stream carries it (guest to
    /// host).
    Accept = 9,
}

impl Kind {
    /// The kind of byte `b`.
    pub fn from_u8(b: u8) -> Option<Kind> {
        Some(match b {
            1 => Kind::Data,
            2 => Kind::Stderr,
            3 => Kind::Credit,
            4 => Kind::Eof,
            5 => Kind::Reset,
            6 => Kind::Exit,
            7 => Kind::Resize,
            8 => Kind::Signal,
            9 => Kind::Accept,
            _ => return None,
        })
    }

    /// The payload size of a fixed-size kind.
    pub fn fixed_len(self) -> Option<usize> {
        match self {
            Kind::Credit | Kind::Resize | Kind::Signal => Some(4),
            Kind::Eof => Some(0),
            Kind::Exit => Some(5),
            Kind::Data | Kind::Stderr | Kind::Reset | Kind::Accept => None,
        }
    }
}

/// How a stream's program ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// It exited with this code.
    Code(i32),
    /// A signal ended it.
    Signal(i32),
}

impl ExitStatus {
    /// The status a shell reports: the code, or 128 + the signal.
    pub fn shell_status(self) -> i32 {
        match self {
            ExitStatus::Code(c) => c,
            ExitStatus::Signal(s) => 128 + s,
        }
    }
}

/// One frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// Stream bytes.
    Data {
        /// The stream.
        stream: StreamId,
        /// The bytes (at most [`crate::MAX_PAYLOAD`]).
        data: Vec<u8>,
    },
    /// Standard error bytes.
    Stderr {
        /// The stream.
        stream: StreamId,
        /// The bytes.
        data: Vec<u8>,
    },
    /// More credit for the peer's data on the stream.
    Credit {
        /// The stream.
        stream: StreamId,
        /// Bytes the peer may send in addition.
        bytes: u32,
    },
    /// No more data from the sender.
    Eof {
        /// The stream.
        stream: StreamId,
    },
    /// The stream is gone.
    Reset {
        /// The stream.
        stream: StreamId,
        /// Why, for people.
        reason: String,
    },
    /// The program ended.
    Exit {
        /// The stream.
        stream: StreamId,
        /// How.
        status: ExitStatus,
    },
    /// New terminal size.
    Resize {
        /// The stream.
        stream: StreamId,
        /// Rows.
        rows: u16,
        /// Columns.
        cols: u16,
    },
    /// A signal for the program.
    Signal {
        /// The stream.
        stream: StreamId,
        /// Signal number (Linux numbering).
        signal: u32,
    },
    /// A new connection on a listening stream.
    Accept {
        /// The new stream.
        stream: StreamId,
        /// The listening stream it arrived at.
        listener: StreamId,
        /// The peer's address, for logs.
        peer: String,
    },
}

impl Frame {
    /// The stream the frame is about.
    pub fn stream(&self) -> StreamId {
        match self {
            Frame::Data { stream, .. }
            | Frame::Stderr { stream, .. }
            | Frame::Credit { stream, .. }
            | Frame::Eof { stream }
            | Frame::Reset { stream, .. }
            | Frame::Exit { stream, .. }
            | Frame::Resize { stream, .. }
            | Frame::Signal { stream, .. }
            | Frame::Accept { stream, .. } => *stream,
        }
    }

    /// Its kind.
    pub fn kind(&self) -> Kind {
        match self {
            Frame::Data { .. } => Kind::Data,
            Frame::Stderr { .. } => Kind::Stderr,
            Frame::Credit { .. } => Kind::Credit,
            Frame::Eof { .. } => Kind::Eof,
            Frame::Reset { .. } => Kind::Reset,
            Frame::Exit { .. } => Kind::Exit,
            Frame::Resize { .. } => Kind::Resize,
            Frame::Signal { .. } => Kind::Signal,
            Frame::Accept { .. } => Kind::Accept,
        }
    }
}
