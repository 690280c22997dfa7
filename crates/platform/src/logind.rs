//! User sessions from systemd-logind over D-Bus.
//!
//! [`watch`] reads every session (`ListSessions`, then each session's `Active`,
//! `LockedHint` and `Seat`) and hands the snapshot on; it does so again whenever logind
//! signals anything (a session new or removed, a property change, `Lock`/`Unlock`).
//! `Lock` is a request to the session's screen locker; a session is reported locked
//! from that request (or `LockedHint`) until `Unlock` (or the hint going down).
//!
//! [`Logind`] acts on sessions for the host (`LockSession`, `TerminateSession`) and
//! hands credentials to greeter plugins ([`crate::credentials`]).
//!
//! The bus is the system bus, or the one in `GUESTLINK_SYSTEM_BUS` (a D-Bus address),
//! which the tests use to put a stand-in logind on a private bus.

use crate::bus::system_bus;
use std::collections::HashSet;

use std::time::Duration;

use futures_util::StreamExt as _;
use guestlink_core::platform::{BoxFuture, SessionManager};
use guestlink_core::state::sessions::LoginSession;
use zbus::message::Type;
use zbus::OwnedObjectPath;
use zbus::{Connection, MatchRule, MessageStream};

/// logind's bus name.
pub const LOGIND: &str = "org.freedesktop.login1";

#[zbus::proxy(
    interface = "org.freedesktop.login1.Manager",
    default_service = "org.freedesktop.login1",
    default_path = "/org/freedesktop/login1"
)]
trait Manager {
    /// Sessions: id, uid, user name, seat, object path.
    fn list_sessions(&self) -> zbus::Result<Vec<(String, u32, String, String, OwnedObjectPath)>>;
    /// Asks the session's screen locker to lock it.
    fn lock_session(&self, id: &str) -> zbus::Result<()>;
    /// Ends a session.
    fn terminate_session(&self, id: &str) -> zbus::Result<()>;
}

#[zbus::proxy(
    interface = "org.freedesktop.login1.Session",
    default_service = "org.freedesktop.login1"
)]
trait Session {
    #[zbus(property)]
    fn active(&self) -> zbus::Result<bool>;
    #[zbus(property)]
    fn locked_hint(&self) -> zbus::Result<bool>;
}

async fn snapshot(
    conn: &Connection,
    lock_requested: &HashSet<String>,
) -> zbus::Result<Vec<LoginSession>> {
    let manager = ManagerProxy::new(conn).await?;
    let mut out = Vec::new();
    for (id, uid, user, seat, path) in manager.list_sessions().await? {
        let session = SessionProxy::builder(conn)
            .path(path)
            .cache_properties(zbus::proxy::CacheProperties::No)
            .build()
            .await?;
        // A session that ends between the list and this read is simply left out.
        let (Ok(active), Ok(hint)) = (session.active().await, session.locked_hint().await) else {
            continue;
        };
        out.push(LoginSession {
            locked: hint || lock_requested.contains(&id),
            id,
            uid,
            user,
            seat: (!seat.is_empty()).then_some(seat),
            active,
        });
    }
    Ok(out)
}

/// The session id in a session object path (`/org/freedesktop/login1/session/_32` is
/// session "2": logind escapes each byte that is not alphanumeric as `_XX`).
fn session_id_of_path(path: &str) -> Option<String> {
    let last = path.strip_prefix("/org/freedesktop/login1/session/")?;
    let bytes = last.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'_' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Watches logind and calls `update` with every snapshot, the first at once. Returns
/// only when the bus cannot be used.
pub async fn watch(mut update: impl FnMut(Vec<LoginSession>)) -> zbus::Result<()> {
    let conn = system_bus().await?;
    let rule = MatchRule::builder()
        .msg_type(Type::Signal)
        .sender(LOGIND)
        .build()?;
    let mut signals = MessageStream::for_match_rule(rule, &conn, None).await?;
    let mut lock_requested = HashSet::new();
    update(snapshot(&conn, &lock_requested).await?);
    while let Some(msg) = signals.next().await {
        let msg = msg?;
        let header = msg.header();
        let member = header.member().map(|m| m.as_str().to_string());
        let id = header.path().and_then(|p| session_id_of_path(p.as_str()));
        match (member.as_deref(), id) {
            (Some("Lock"), Some(id)) => {
                lock_requested.insert(id);
            }
            (Some("Unlock"), Some(id)) => {
                lock_requested.remove(&id);
            }
            (Some("PropertiesChanged"), Some(id)) => {
                // The locker reporting itself (or the hint going down) replaces the
                // request.
                lock_requested.remove(&id);
            }
            _ => {}
        }
        update(snapshot(&conn, &lock_requested).await?);
    }
    Ok(())
}

/// The session manager: logind on the system bus.
#[derive(Debug, Default, Clone, Copy)]
pub struct Logind;

/// logind's error, without zbus's decoration.
fn bus_error(what: &str, e: zbus::Error) -> String {
    match e {
        zbus::Error::MethodError(_, Some(detail), _) => format!("{what}: {detail}"),
        other => format!("{what}: {other}"),
    }
}

async fn manager() -> Result<ManagerProxy<'static>, String> {
    let conn = system_bus()
        .await
        .map_err(|e| bus_error("cannot reach logind", e))?;
    ManagerProxy::new(&conn)
        .await
        .map_err(|e| bus_error("cannot reach logind", e))
}

impl SessionManager for Logind {
    fn lock(&self, session: String) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            manager()
                .await?
                .lock_session(&session)
                .await
                .map_err(|e| bus_error("failed to lock the session", e))
        })
    }

    fn terminate(&self, session: String) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            manager()
                .await?
                .terminate_session(&session)
                .await
                .map_err(|e| bus_error("failed to end the session", e))
        })
    }

    fn hand_off_credentials(
        &self,
        blob: Vec<u8>,
        wait: Duration,
    ) -> BoxFuture<'_, Result<bool, String>> {
        Box::pin(async move {
            let token = crate::credentials::token()?;
            crate::credentials::hand_off(token, blob, wait).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::session_id_of_path;

    #[test]
    fn session_paths() {
        assert_eq!(
            session_id_of_path("/org/freedesktop/login1/session/_32").as_deref(),
            Some("2")
        );
        assert_eq!(
            session_id_of_path("/org/freedesktop/login1/session/c1").as_deref(),
            Some("c1")
        );
        assert_eq!(
            session_id_of_path("/org/freedesktop/login1/seat/seat0"),
            None
        );
    }
}
