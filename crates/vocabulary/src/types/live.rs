//! The live channel: streams turned on for a connection, streamed programs, shells and
//! forwarded connections.

qapi_struct! {
    /// What `__org.guestlink_stream-enable` reports: the framing's parameters.
    pub struct StreamInfo as "__org.guestlink_StreamInfo" {
        /// Version of the stream framing (1).
        version: i64 = "version",
        /// The largest payload of one frame.
        max_payload: i64 = "max-payload",
        /// Credit each direction of a new stream starts with.
        window: i64 = "window",
        /// Streams one connection may have open at once.
        max_streams: i64 = "max-streams",
    }
}

qapi_struct! {
    /// A terminal for the program: it runs on a pseudo-terminal of this size.
    pub struct TerminalArgs as "__org.guestlink_Terminal" {
        /// Rows (24 when absent).
        rows: Option<i64> = "rows",
        /// Columns (80 when absent).
        cols: Option<i64> = "cols",
        /// The TERM of the program (the host's; `xterm-256color` when absent).
        term: Option<String> = "term",
    }
}

qapi_struct! {
    /// Arguments of `__org.guestlink_stream-exec`.
    pub struct StreamExecArgs as "q_obj___org.guestlink_stream-exec-arg" {
        /// Program to run; looked up in PATH when it has no slash.
        path: String = "path",
        /// Arguments (argv[1..]).
        arg: Option<Vec<String>> = "arg",
        /// NAME=VALUE entries added to the environment.
        env: Option<Vec<String>> = "env",
        /// The working directory (the user's home when absent).
        cwd: Option<String> = "cwd",
        /// The user to run as (root when absent).
        user: Option<String> = "user",
        /// Seconds before the program is terminated (none when absent).
        timeout: Option<i64> = "timeout",
        /// Run on a pseudo-terminal instead of pipes.
        terminal: Option<TerminalArgs> = "terminal",
    }
}

qapi_struct! {
    /// Arguments of `__org.guestlink_shell`.
    pub struct ShellArgs as "q_obj___org.guestlink_shell-arg" {
        /// The user whose login shell runs (root when absent).
        user: Option<String> = "user",
        /// A command for the shell to run (`shell -c`) instead of an interactive session.
        command: Option<String> = "command",
        /// NAME=VALUE entries added to the environment.
        env: Option<Vec<String>> = "env",
        /// The terminal; without it the shell runs on pipes (a host without a terminal).
        terminal: Option<TerminalArgs> = "terminal",
    }
}

qapi_struct! {
    /// A stream just opened for a program.
    pub struct StreamProcess as "__org.guestlink_StreamProcess" {
        /// The stream carrying its input and output.
        stream: i64 = "stream",
        /// Its process id in the guest.
        pid: i64 = "pid",
    }
}

qapi_struct! {
    /// Where a forward goes or listens inside the guest: a TCP address or a unix socket.
    pub struct ForwardAddress as "q_obj___org.guestlink_forward-arg" {
        /// Host name or address (`localhost` when absent); for listening, the address
        /// to bind.
        host: Option<String> = "host",
        /// TCP port (0 to listen on any free port).
        port: Option<i64> = "port",
        /// A unix socket path instead of host and port.
        path: Option<String> = "path",
    }
}

qapi_struct! {
    /// A stream carrying one forwarded connection.
    pub struct ForwardStream as "__org.guestlink_ForwardStream" {
        /// The stream.
        stream: i64 = "stream",
    }
}

qapi_struct! {
    /// A listening stream: each connection arriving becomes a new stream, announced by
    /// an accept frame.
    pub struct ForwardListener as "__org.guestlink_ForwardListener" {
        /// The listening stream (reset it to stop listening).
        stream: i64 = "stream",
        /// The bound port (for a TCP listener; the chosen one when 0 was asked).
        port: Option<i64> = "port",
    }
}

qapi_struct! {
    /// `SHELL_OPENED`: a shell started in the guest for the host.
    pub struct ShellOpened as "__org.guestlink_ShellOpened" {
        /// The user it runs as.
        user: String = "user",
        /// The channel it was asked on.
        channel: String = "channel",
        /// Its process id.
        pid: i64 = "pid",
        /// Whether it has a terminal.
        terminal: bool = "terminal",
    }
}

qapi_struct! {
    /// `SHELL_CLOSED`: a shell ended.
    pub struct ShellClosed as "__org.guestlink_ShellClosed" {
        /// The user it ran as.
        user: String = "user",
        /// The channel it was asked on.
        channel: String = "channel",
        /// Its process id.
        pid: i64 = "pid",
        /// How long it ran, in seconds.
        seconds: f64 = "seconds",
        /// Its exit code, when it exited.
        exitcode: Option<i64> = "exitcode",
        /// The signal that ended it, when one did.
        signal: Option<i64> = "signal",
    }
}
