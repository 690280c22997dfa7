//! The guest-side socket: programs inside the guest (the session agent, scripts, any
//! user's program) speak QGA's JSON to guestlinkd on a local unix socket.
//!
//! Unlike a host channel it serves many persistent clients at once. Each is identified
//! by its peer credentials (`SO_PEERCRED`), reaches only the guest-scope commands of the
//! vocabulary, and may subscribe to events. Requests that wait for another party (the
//! host answering `__org.guestlink_host-request`, a session agent answering a clipboard
//! request) run alongside the client's other requests, so their replies may come out of
//! order: clients match replies by `id`.
//!
//! A client that stops reading only hurts itself: its events queue up to the bus limit
//! and are then dropped and counted; a write that stays blocked for
//! [`WRITE_TIMEOUT`] ends the connection.
//!
//! Any user may connect, so no user may take what others need (see [`super::limits`]):
//! connections are counted per user with places kept for root and session agents,
//! messages are small until the client registers as a session agent, what a client
//! holds in a message not yet complete is charged to its user and to a budget shared
//! by all, and an idle client that neither subscribed nor registered is closed. A
//! client that goes away frees everything at once: its requests still waiting for the
//! host are withdrawn.
//!
//! A registered session agent may turn bulk transfer on (`__org.guestlink_bulk-enable`,
//! until its next sync): a clipboard's bytes then cross raw, after the JSON of
//! `__org.guestlink_reply-raw` and of `__org.guestlink_session-data`'s reply,
//! instead of in base64.

use guestlink_core::Call;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use guestlink_core::{Agent, Bulk, CallContext, Caller, Connection, Protocol, Subscription};
use guestlink_proto_qga::{encode_error, Decoder, ErrorClass, Limits, Request};
use guestlink_vocabulary::commands::{
    GuestSync, GuestSyncDelimited, GuestlinkBulkEnable, GuestlinkClipboardGet,
    GuestlinkClipboardSet, GuestlinkClipboardTypes, GuestlinkHostRequest,
};
use guestlink_vocabulary::Command;
use tokio::io::AsyncWriteExt;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;

use guestlink_core::limits::{GUEST_MESSAGE_BYTES, SESSION_AGENT_MESSAGE_BYTES};

use super::limits::{guest_idle_timeout, Admission, Budget, Charge};
use super::qga::{
    encode_event_line, encode_outcome, payload_length, read_payload, request_of, write_after, After,
};

/// The default path of the socket.
pub const DEFAULT_PATH: &str = "/run/guestlink/agent.sock";
/// Requests of one client that may wait for another party at once.
pub const WAITING_LIMIT: usize = 16;
/// Replies queued for one client's writer.
const REPLY_QUEUE: usize = 32;
/// How long one write to a client may stay blocked before the client is dropped.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
const READ_CHUNK: usize = 64 << 10;
/// How long a client being closed gets to receive the error that says why.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Commands that wait for another party; they run alongside the client's others.
const WAITING: &[&str] = &[
    GuestlinkHostRequest::NAME,
    GuestlinkClipboardGet::NAME,
    GuestlinkClipboardSet::NAME,
    GuestlinkClipboardTypes::NAME,
];

/// Binds the socket at `path`: creates its directory, replaces a stale socket (but not
/// one another agent still listens on), and lets every user connect (what each may do
/// is the gate's decision, by peer credentials).
pub fn bind(path: &Path) -> io::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        if !dir.exists() {
            std::fs::create_dir_all(dir)?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
        }
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("another agent listens on {}", path.display()),
            ));
        }
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
    Ok(listener)
}

/// Serves a listening socket systemd passed (`guestlinkd.socket`).
pub fn from_passed(fd: std::os::fd::OwnedFd) -> io::Result<UnixListener> {
    let std = std::os::unix::net::UnixListener::from(fd);
    std.set_nonblocking(true)?;
    UnixListener::from_std(std)
}

/// Accepts clients until the listener fails. `budget` is shared with the other
/// listening sockets.
pub async fn serve(
    agent: Arc<Agent>,
    path: PathBuf,
    listener: UnixListener,
    budget: Arc<Budget>,
) -> io::Result<()> {
    let name: Arc<str> = path.display().to_string().into();
    let admission = Arc::new(Admission::default());
    loop {
        let (stream, _) = listener.accept().await?;
        let cred = match stream.peer_cred() {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(socket = %name, "cannot read a client's credentials: {e}");
                continue;
            }
        };
        let uid = cred.uid();
        let has_session =
            agent.state().sessions.has_session(uid) || agent.session_users().contains(&uid);
        let slot = match admission.admit(uid, has_session) {
            Ok(slot) => slot,
            Err(why) => {
                tracing::warn!(socket = %name, uid, "guest client refused: {why}");
                super::qga::refuse(stream, why);
                continue;
            }
        };
        let pid = cred.pid().unwrap_or(0);
        let call = CallContext {
            caller: Caller::Guest { uid, pid },
            // Now, while the pid is surely the client's.
            session: agent.platform().system.session_of_pid(pid).map(Arc::from),
            ..CallContext::host(Protocol::GuestSocket, name.clone())
        };
        let agent = agent.clone();
        let charge = budget.charge(Some(uid));
        tokio::spawn(async move {
            tracing::debug!(caller = ?call.caller, "guest client connected");
            serve_client(&agent, stream, call, charge).await;
            drop(slot);
        });
    }
}

async fn serve_client(agent: &Arc<Agent>, stream: UnixStream, call: CallContext, charge: Charge) {
    let (conn, events) = agent.connect(call);
    let conn = Arc::new(conn);
    let (rd, wr) = stream.into_split();
    let (tx, rx) = mpsc::channel(REPLY_QUEUE);
    let writer = write_loop(wr, rx, events);
    tokio::pin!(writer);
    let result = tokio::select! {
        r = &mut writer => r,
        r = read_loop(agent, &conn, rd, tx, charge) => {
            // The client is done sending, or is being closed: let it have the replies
            // (or the error that closes it) still on the way.
            let wait = if r.is_ok() { WRITE_TIMEOUT } else { CLOSE_GRACE };
            let written = tokio::time::timeout(wait, writer)
                .await
                .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()));
            r.and(written)
        }
    };
    if let Err(e) = result {
        tracing::debug!(caller = ?conn.call.caller, "guest client dropped: {e}");
    }
    agent.disconnect(&conn);
}

/// Writes replies and events as they come; ends when the replies end (the reader is
/// done) or a write fails or stays blocked.
async fn write_loop(
    mut wr: OwnedWriteHalf,
    mut replies: mpsc::Receiver<(Vec<u8>, After)>,
    mut events: Subscription,
) -> io::Result<()> {
    let stalled = || io::Error::new(io::ErrorKind::TimedOut, "client stopped reading");
    loop {
        let (out, after) = tokio::select! {
            biased;
            r = replies.recv() => match r {
                Some(r) => r,
                None => return Ok(()),
            },
            event = events.next() => {
                let mut out = Vec::new();
                encode_event_line(&mut out, &event);
                (out, After::Nothing)
            }
        };
        tokio::time::timeout(WRITE_TIMEOUT, async {
            wr.write_all(&out).await?;
            write_after(&mut wr, after).await
        })
        .await
        .map_err(|_| stalled())??;
    }
}

/// Runs a request on a connection in bulk mode (`bulk`, with the payload that followed
/// it) or not (`None`); also says whether it succeeded.
async fn run_bulk(
    agent: &Agent,
    conn: &Connection,
    req: Request,
    bulk: Option<Bulk>,
) -> ((Vec<u8>, After), bool) {
    let name = req.execute;
    if name == GuestSync::NAME || name == GuestSyncDelimited::NAME {
        conn.events.clear();
    }
    let result = agent
        .execute(Call::on(conn, &name, req.arguments).with_bulk(bulk.as_ref()))
        .await;
    let ok = result.is_ok();
    let mut out = Vec::new();
    let after = encode_outcome(&name, req.id, result, &mut out);
    ((out, after), ok)
}

/// Whether a client with nothing running, no subscription and no session agent may be
/// closed for its silence.
fn idle(agent: &Agent, conn: &Connection, running: &mut JoinSet<()>) -> bool {
    // Requests that finished since the last message are not running any more.
    while running.try_join_next().is_some() {}
    running.is_empty() && !conn.events.is_active() && !agent.state().sessions.is_agent(conn.id)
}

/// Sends the error that ends a connection, logs it, and returns it as the I/O error.
async fn close_with(
    tx: &mpsc::Sender<(Vec<u8>, After)>,
    conn: &Connection,
    why: String,
) -> io::Error {
    tracing::warn!(caller = ?conn.call.caller, "guest client closed: {why}");
    let mut out = Vec::new();
    encode_error(&mut out, ErrorClass::GenericError, &why, None);
    let _ = tx.send((out, After::Nothing)).await;
    io::Error::other(why)
}

/// Resolves when the client closed its end for good (not merely its sending half):
/// nobody is left to read what its requests would answer.
async fn peer_gone(stream: &UnixStream) {
    loop {
        match stream.ready(tokio::io::Interest::WRITABLE).await {
            Ok(ready) if !ready.is_write_closed() => {
                // Wait for the next change of the socket's state.
                let _ = stream.try_io(tokio::io::Interest::WRITABLE, || {
                    Err::<(), _>(io::ErrorKind::WouldBlock.into())
                });
            }
            _ => return,
        }
    }
}

/// Reads and runs requests until EOF; waits for the requests still running, unless
/// the client is gone altogether.
async fn read_loop(
    agent: &Arc<Agent>,
    conn: &Arc<Connection>,
    mut rd: OwnedReadHalf,
    tx: mpsc::Sender<(Vec<u8>, After)>,
    mut charge: Charge,
) -> io::Result<()> {
    let mut decoder = Decoder::new(Limits {
        max_message_bytes: GUEST_MESSAGE_BYTES,
        ..Limits::default()
    });
    let mut registered = false;
    // Bulk transfer (`__org.guestlink_bulk-enable`, session agents only: their
    // clipboards cross raw), until the next sync.
    let mut bulk = false;
    let mut buf = super::read_buffer::ReadBuffer::new(READ_CHUNK);
    let waiting = Arc::new(Semaphore::new(WAITING_LIMIT));
    let mut running = JoinSet::new();
    let idle_timeout = guest_idle_timeout();
    loop {
        let n = match tokio::time::timeout(idle_timeout, buf.read_from(&mut rd)).await {
            Ok(n) => n?,
            Err(_) if idle(agent, conn, &mut running) => {
                let why = format!(
                    "closing an idle connection (limit guest-idle-timeout: {} s)",
                    idle_timeout.as_secs()
                );
                return Err(close_with(&tx, conn, why).await);
            }
            Err(_) => continue,
        };
        if n == 0 {
            break;
        }
        if !registered && agent.state().sessions.is_agent(conn.id) {
            registered = true;
            decoder.set_max_message_bytes(SESSION_AGENT_MESSAGE_BYTES);
        }
        let mut pos = 0;
        while pos < n {
            pos += decoder.feed_frame(&buf[pos..n]);
            if let Err(why) = charge.set(decoder.buffered()) {
                return Err(close_with(&tx, conn, why).await);
            }
            let Some(frame) = decoder.next_frame() else {
                continue;
            };
            let mut out = Vec::new();
            let Some(req) = request_of(frame, &mut out) else {
                if tx.send((out, After::Nothing)).await.is_err() {
                    return Ok(());
                }
                continue;
            };
            let name = req.execute.as_str();
            if name == GuestSync::NAME || name == GuestSyncDelimited::NAME {
                bulk = false;
            }
            if name == GuestlinkBulkEnable::NAME && !agent.state().sessions.is_agent(conn.id) {
                let mut out = Vec::new();
                let why = "bulk transfer on the guest socket is for registered session agents";
                encode_error(&mut out, ErrorClass::GenericError, why, req.id.as_ref());
                if tx.send((out, After::Nothing)).await.is_err() {
                    return Ok(());
                }
                continue;
            }
            // On a connection in bulk mode the raw bytes after a request with a payload
            // are read before it runs (so a refused one still consumes them).
            let input = match payload_length(agent, bulk, &req) {
                Some(len) => {
                    // The payload is held whole before the request runs: charged first.
                    if let Err(why) = charge.set(decoder.buffered() + len) {
                        return Err(close_with(&tx, conn, why).await);
                    }
                    let (data, used) = read_payload(&mut rd, &buf[pos..n], len).await?;
                    pos += used;
                    // Complete now, and the request's: no longer charged (less, so Ok).
                    let _ = charge.set(decoder.buffered());
                    Some(data)
                }
                None => None,
            };
            let call_bulk = bulk.then(|| Bulk::new(input));
            if WAITING.contains(&name) {
                let permit = waiting.clone().acquire_owned().await.ok();
                let (agent, conn, tx) = (agent.clone(), conn.clone(), tx.clone());
                running.spawn(async move {
                    let (reply, _) = run_bulk(&agent, &conn, req, call_bulk).await;
                    let _ = tx.send(reply).await;
                    drop(permit);
                });
            } else {
                let enabling = name == GuestlinkBulkEnable::NAME;
                let (reply, ok) = run_bulk(agent, conn, req, call_bulk).await;
                bulk |= enabling && ok;
                if tx.send(reply).await.is_err() {
                    return Ok(());
                }
            }
            while running.try_join_next().is_some() {}
        }
    }
    drop(charge);
    tokio::select! {
        () = async { while running.join_next().await.is_some() {} } => {}
        () = peer_gone(rd.as_ref()) => {
            if !running.is_empty() {
                tracing::debug!(caller = ?conn.call.caller, requests = running.len(), "guest client gone: its waiting requests are withdrawn");
            }
            running.abort_all();
        }
    }
    Ok(())
}
