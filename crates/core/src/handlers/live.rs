//! The live channel's commands: turning streams on, streamed programs, shells and
//! forwards. Each opens a stream through the connection's [`StreamSlot`] and returns
//! its number; the front end carries its bytes from then on.
//!
//! The checks come before anything is started, so a refused call has no side effect:
//! streams on and a place free, the user allowed by the policy's `[live] users`, a
//! destination by `forward-to` or `forward-listen`.
//!
//! [`StreamSlot`]: crate::live::StreamSlot

use std::path::PathBuf;
use std::time::{Duration, Instant};

use guestlink_vocabulary::commands::{
    GuestlinkForwardConnect, GuestlinkForwardListen, GuestlinkShell, GuestlinkStreamEnable,
    GuestlinkStreamExec,
};
use guestlink_vocabulary::events::{ShellClosedEvent, ShellOpenedEvent};
use guestlink_vocabulary::types::{
    Empty, ForwardAddress, ForwardListener, ForwardStream, ShellArgs, ShellClosed, ShellOpened,
    StreamExecArgs, StreamInfo, StreamProcess, TerminalArgs,
};
use guestlink_vocabulary::Command;

use crate::context::Context;
use crate::dispatch::Handler;
use crate::error::CommandError;
use crate::events::{Audience, EventRecord};
use crate::limits::{STREAMS, STREAM_WINDOW};
#[cfg(unix)]
use crate::live::UnlinkOnDrop;
use crate::live::{Endpoint, LiveCommand, LiveListener, Process, StreamSlot, TerminalSize};
use crate::policy::live::destination;

/// How long a forward's connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The connection's slot, ready for one more stream.
fn slot<'a>(ctx: &Context<'a>, command: &str) -> Result<&'a StreamSlot, CommandError> {
    let conn = ctx.conn.ok_or_else(|| {
        CommandError::new(format!("{command} needs a connection that carries streams"))
    })?;
    conn.streams
        .check()
        .map_err(|e| CommandError::new(format!("{command} {e}")))?;
    Ok(&conn.streams)
}

/// Hands a stream to the front end.
fn open(slot: &StreamSlot, endpoint: Endpoint, command: &str) -> Result<u32, CommandError> {
    slot.open(endpoint)
        .map_err(|e| CommandError::new(format!("{command} {e}")))
}

/// Starts `cmd` through the platform.
fn spawn(ctx: &Context<'_>, cmd: &LiveCommand) -> Result<crate::live::LiveChild, CommandError> {
    ctx.agent
        .platform()
        .processes
        .spawn(cmd)
        .map_err(CommandError::new)
}

fn env_pairs(env: Option<Vec<String>>) -> Result<Vec<(String, String)>, CommandError> {
    env.unwrap_or_default()
        .into_iter()
        .map(|e| match e.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(CommandError::new(format!(
                "environment entry '{e}' is not NAME=VALUE"
            ))),
        })
        .collect()
}

fn terminal(t: Option<TerminalArgs>) -> Result<Option<TerminalSize>, CommandError> {
    let Some(t) = t else { return Ok(None) };
    let dim = |v: Option<i64>, default: u16, what: &str| match v {
        None => Ok(default),
        Some(n) if (1..=u16::MAX as i64).contains(&n) => Ok(n as u16),
        Some(n) => Err(CommandError::new(format!(
            "terminal {what} {n} is out of range (1 to 65535)"
        ))),
    };
    Ok(Some(TerminalSize {
        rows: dim(t.rows, 24, "rows")?,
        cols: dim(t.cols, 80, "cols")?,
        term: t.term.unwrap_or_else(|| "xterm-256color".into()),
    }))
}

fn user_allowed(ctx: &Context<'_>, user: &str) -> Result<(), CommandError> {
    ctx.agent
        .live_scope()
        .check_user(user)
        .map_err(CommandError::new)
}

impl Handler for GuestlinkStreamEnable {
    async fn handle(_ctx: Context<'_>, _args: Empty) -> Result<StreamInfo, CommandError> {
        // The front end turns the mode on when this succeeds: only it can carry frames.
        Ok(StreamInfo {
            version: 1,
            max_payload: guestlink_proto_stream::MAX_PAYLOAD as i64,
            window: i64::from(STREAM_WINDOW),
            max_streams: STREAMS as i64,
        })
    }
}

impl Handler for GuestlinkStreamExec {
    async fn handle(ctx: Context<'_>, args: StreamExecArgs) -> Result<StreamProcess, CommandError> {
        let slot = slot(&ctx, Self::NAME)?;
        let user = args
            .user
            .unwrap_or_else(|| crate::os::DEFAULT_LIVE_USER.into());
        user_allowed(&ctx, &user)?;
        let timeout = match args.timeout {
            None => None,
            Some(s) if s > 0 => Some(Duration::from_secs(s as u64)),
            Some(s) => {
                return Err(CommandError::new(format!(
                    "timeout {s} is not a positive number of seconds"
                )))
            }
        };
        let cmd = LiveCommand {
            program: Some(args.path.clone()),
            args: args.arg.unwrap_or_default(),
            env: env_pairs(args.env)?,
            cwd: args.cwd.map(PathBuf::from),
            user: user.clone(),
            terminal: terminal(args.terminal)?,
            login: false,
        };
        let child = spawn(&ctx, &cmd)?;
        let pid = child.pid;
        let channel = ctx.call.channel.name.clone();
        tracing::info!(path = %args.path, pid, %user, %channel, "stream-exec started");
        let process = Process::adopt(child, timeout, move |ended| {
            tracing::info!(pid, ?ended, "stream-exec ended");
        });
        let stream = open(slot, Endpoint::Process(process), Self::NAME)?;
        Ok(StreamProcess {
            stream: i64::from(stream),
            pid: i64::from(pid),
        })
    }
}

impl Handler for GuestlinkShell {
    async fn handle(ctx: Context<'_>, args: ShellArgs) -> Result<StreamProcess, CommandError> {
        let slot = slot(&ctx, Self::NAME)?;
        let user = args
            .user
            .unwrap_or_else(|| crate::os::DEFAULT_LIVE_USER.into());
        user_allowed(&ctx, &user)?;
        let term = terminal(args.terminal)?;
        let has_terminal = term.is_some();
        let cmd = LiveCommand {
            program: None,
            args: args
                .command
                .map(|c| vec![crate::os::SHELL_COMMAND_FLAG.into(), c])
                .unwrap_or_default(),
            env: env_pairs(args.env)?,
            cwd: None,
            user: user.clone(),
            login: true,
            terminal: term,
        };
        let child = spawn(&ctx, &cmd)?;
        let pid = child.pid;
        let channel = ctx.call.channel.name.to_string();
        tracing::info!(target: "audit", %user, %channel, pid, terminal = has_terminal, "shell opened");
        let bus = ctx.agent.events().clone();
        bus.publish(
            EventRecord::new::<ShellOpenedEvent>(&ShellOpened {
                user: user.clone(),
                channel: channel.clone(),
                pid: i64::from(pid),
                terminal: has_terminal,
            }),
            Audience::User(0),
        );
        let started = Instant::now();
        let process = Process::adopt(child, None, move |ended| {
            let seconds = started.elapsed().as_secs_f64();
            let (exitcode, signal) = match ended {
                Some(crate::live::Ended::Code(c)) => (Some(i64::from(c)), None),
                Some(crate::live::Ended::Signal(s)) => (None, Some(i64::from(s))),
                None => (None, None),
            };
            tracing::info!(target: "audit", %user, %channel, pid, seconds = format!("{seconds:.1}"), ?exitcode, ?signal, "shell closed");
            bus.publish(
                EventRecord::new::<ShellClosedEvent>(&ShellClosed {
                    user,
                    channel,
                    pid: i64::from(pid),
                    seconds,
                    exitcode,
                    signal,
                }),
                Audience::User(0),
            );
        });
        let stream = open(slot, Endpoint::Process(process), Self::NAME)?;
        Ok(StreamProcess {
            stream: i64::from(stream),
            pid: i64::from(pid),
        })
    }
}

/// Checks an address's members: a path, or a port in range.
fn address(args: &ForwardAddress, listen: bool) -> Result<(), CommandError> {
    match (&args.path, args.port) {
        (Some(p), None) if p.starts_with('/') && args.host.is_none() => Ok(()),
        (Some(p), None) if args.host.is_none() => Err(CommandError::new(format!(
            "socket path '{p}' is not absolute"
        ))),
        (None, Some(port)) if (i64::from(!listen)..=65535).contains(&port) => Ok(()),
        (None, Some(port)) => Err(CommandError::new(format!("port {port} is out of range"))),
        _ => Err(CommandError::new(
            "give either 'port' (with an optional 'host') or 'path'",
        )),
    }
}

/// What a forward needs before it touches the network: a place for the stream, a
/// well-formed address, and the policy's consent; the address as the policy names it.
fn forward_prologue<'a>(
    ctx: &Context<'a>,
    command: &str,
    args: &ForwardAddress,
    listen: bool,
) -> Result<(&'a StreamSlot, String), CommandError> {
    let slot = slot(ctx, command)?;
    address(args, listen)?;
    let dest = destination(args.host.as_deref(), args.port, args.path.as_deref());
    let scope = ctx.agent.live_scope();
    let allowed = if listen {
        scope.check_listen(&dest)
    } else {
        scope.check_connect(&dest)
    };
    allowed.map_err(CommandError::new)?;
    Ok((slot, dest))
}

/// The error of a socket operation on `dest`.
fn socket_error(what: &str, dest: &str, e: &std::io::Error) -> CommandError {
    CommandError::new(format!(
        "cannot {what} {dest}: {}",
        crate::error::strerror(e)
    ))
}

fn socket_endpoint<R, W>(halves: (R, W), peer: &str) -> Endpoint
where
    R: tokio::io::AsyncRead + Send + Unpin + 'static,
    W: tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    Endpoint::Socket {
        read: Box::new(halves.0),
        write: Box::new(halves.1),
        peer: peer.to_string(),
    }
}

/// A forward to a unix socket on a system without them.
#[cfg(not(unix))]
fn no_unix_sockets(dest: &str) -> CommandError {
    CommandError::new(format!(
        "cannot use {dest}: unix sockets are not supported here"
    ))
}

impl Handler for GuestlinkForwardConnect {
    async fn handle(ctx: Context<'_>, args: ForwardAddress) -> Result<ForwardStream, CommandError> {
        let (slot, dest) = forward_prologue(&ctx, Self::NAME, &args, false)?;
        let failed = |e: std::io::Error| socket_error("connect to", &dest, &e);
        let connect = async {
            Ok::<_, CommandError>(match &args.path {
                #[cfg(unix)]
                Some(p) => {
                    let s = tokio::net::UnixStream::connect(p).await.map_err(failed)?;
                    socket_endpoint(s.into_split(), &dest)
                }
                #[cfg(not(unix))]
                Some(_) => return Err(no_unix_sockets(&dest)),
                None => {
                    let host = args.host.as_deref().unwrap_or("localhost");
                    let port = args.port.unwrap_or(0) as u16;
                    let s = tokio::net::TcpStream::connect((host, port))
                        .await
                        .map_err(failed)?;
                    let _ = s.set_nodelay(true);
                    socket_endpoint(s.into_split(), &dest)
                }
            })
        };
        let endpoint = tokio::time::timeout(CONNECT_TIMEOUT, connect)
            .await
            .map_err(|_| CommandError::new(format!("cannot connect to {dest}: timed out")))??;
        let stream = open(slot, endpoint, Self::NAME)?;
        tracing::debug!(%dest, stream, "forward connected");
        Ok(ForwardStream {
            stream: i64::from(stream),
        })
    }
}

impl Handler for GuestlinkForwardListen {
    async fn handle(
        ctx: Context<'_>,
        args: ForwardAddress,
    ) -> Result<ForwardListener, CommandError> {
        let (slot, dest) = forward_prologue(&ctx, Self::NAME, &args, true)?;
        let failed = |e: std::io::Error| socket_error("listen on", &dest, &e);
        let (listener, port) = match &args.path {
            #[cfg(unix)]
            Some(p) => {
                let l = tokio::net::UnixListener::bind(p).map_err(failed)?;
                (LiveListener::Unix(l, UnlinkOnDrop(PathBuf::from(p))), None)
            }
            #[cfg(not(unix))]
            Some(_) => return Err(no_unix_sockets(&dest)),
            None => {
                let host = args.host.as_deref().unwrap_or("localhost");
                let port = args.port.unwrap_or(0) as u16;
                let l = tokio::net::TcpListener::bind((host, port))
                    .await
                    .map_err(failed)?;
                let bound = l.local_addr().map(|a| i64::from(a.port())).ok();
                (LiveListener::Tcp(l), bound)
            }
        };
        let stream = open(slot, Endpoint::Listener(listener), Self::NAME)?;
        tracing::info!(%dest, stream, "reverse forward listening");
        Ok(ForwardListener {
            stream: i64::from(stream),
            port,
        })
    }
}
