//! User sessions from systemd-logind over D-Bus.
//!
//! [`watch`] reads every session (`ListSessions`, then each session's `Active`,
//! `LockedHint` and `Seat`) and hands the snapshot on; it does so again whenever logind
//! signals anything (a session new or removed, a property change, `Lock`/`Unlock`).
//! `Lock` is a request to the session's screen locker; a session is reported locked
//! from that request (or `LockedHint`) until `Unlock` (or the hint going down).
//!
//! [`Logind`] acts on sessions for the host (`LockSession`, `TerminateSession`) and
//! hands credentials to greeter plugins ([`crate::linux::credentials`]).
//!
//! The bus is the system bus, or the one in `GUESTLINK_SYSTEM_BUS` (a D-Bus address),
//! which the tests use to put a stand-in logind on a private bus; [`crate::linux::dbus`]
//! speaks to it.

use std::collections::HashSet;
use std::time::Duration;

use guestlink_core::platform::{BoxFuture, SessionManager};
use guestlink_core::state::sessions::LoginSession;

use crate::linux::dbus::{Arg, Bus, BusError, Value};

/// logind's bus name.
pub const LOGIND: &str = "org.freedesktop.login1";
const MANAGER_PATH: &str = "/org/freedesktop/login1";
const MANAGER: &str = "org.freedesktop.login1.Manager";
const SESSION: &str = "org.freedesktop.login1.Session";

/// One entry of `ListSessions`: id, uid, user name, seat, object path.
fn session_entry(v: &Value) -> Option<(String, u32, String, String, String)> {
    let Value::Struct(m) = v else { return None };
    let s = |i: usize| m.get(i).and_then(Value::as_str).map(String::from);
    let uid = u32::try_from(m.get(1)?.as_u64()?).ok()?;
    Some((s(0)?, uid, s(2)?, s(3)?, s(4)?))
}

async fn snapshot(
    bus: &mut Bus,
    lock_requested: &HashSet<String>,
) -> Result<Vec<LoginSession>, BusError> {
    let body = bus
        .call(LOGIND, MANAGER_PATH, MANAGER, "ListSessions", &[])
        .await?;
    let Some(Value::Array(list)) = body.first() else {
        return Err(BusError::Reply("ListSessions"));
    };
    let mut out = Vec::new();
    for (id, uid, user, seat, path) in list.iter().filter_map(session_entry) {
        // A session that ends between the list and this read is simply left out.
        let (Ok(active), Ok(hint)) = (
            bus.property(LOGIND, &path, SESSION, "Active").await,
            bus.property(LOGIND, &path, SESSION, "LockedHint").await,
        ) else {
            continue;
        };
        out.push(LoginSession {
            locked: hint.as_bool().unwrap_or(false) || lock_requested.contains(&id),
            id,
            uid,
            user,
            seat: (!seat.is_empty()).then_some(seat),
            active: active.as_bool().unwrap_or(false),
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
pub async fn watch(mut update: impl FnMut(Vec<LoginSession>)) -> Result<(), BusError> {
    let mut bus = Bus::system().await?;
    bus.add_match(&format!("type='signal',sender='{LOGIND}'"))
        .await?;
    let mut lock_requested = HashSet::new();
    update(snapshot(&mut bus, &lock_requested).await?);
    loop {
        let msg = bus.next_signal().await?;
        let id = msg.path.as_deref().and_then(session_id_of_path);
        match (msg.member.as_deref(), id) {
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
        update(snapshot(&mut bus, &lock_requested).await?);
    }
}

/// The session manager: logind on the system bus.
#[derive(Debug, Default, Clone, Copy)]
pub struct Logind;

/// Calls a manager method with one session id.
async fn on_session(method: &str, session: &str, what: &str) -> Result<(), String> {
    let mut bus = Bus::system()
        .await
        .map_err(|e| e.in_words("cannot reach logind"))?;
    bus.call(LOGIND, MANAGER_PATH, MANAGER, method, &[Arg::Str(session)])
        .await
        .map(drop)
        .map_err(|e| e.in_words(what))
}

impl SessionManager for Logind {
    fn lock(&self, session: String) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(
            async move { on_session("LockSession", &session, "failed to lock the session").await },
        )
    }

    fn terminate(&self, session: String) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            on_session("TerminateSession", &session, "failed to end the session").await
        })
    }

    fn hand_off_credentials(
        &self,
        blob: Vec<u8>,
        wait: Duration,
    ) -> BoxFuture<'_, Result<bool, String>> {
        Box::pin(async move {
            let token = crate::linux::credentials::token()?;
            crate::linux::credentials::hand_off(token, blob, wait).await
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
