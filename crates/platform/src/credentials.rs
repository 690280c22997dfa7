//! Single sign-on: handing a user's credentials to the greeter, as oVirt's greeter
//! plugins (`pam_ovirt_cred`, the GDM and KDM extensions) expect it.
//!
//! The agent listens on the abstract socket `@/tmp/ovirt-cred-channel`, then announces a
//! token with the signal `org.ovirt.vdsm.Credentials.UserAuthenticated(s)` on the system
//! bus (object `/org/ovirt/vdsm/Credentials`). A plugin connects and writes the token;
//! the agent answers with the credentials only when the peer runs as root (checked with
//! `SO_PEERCRED`) and the token matches. Others are turned away and the wait goes on,
//! so a local user cannot block a sign-on by connecting first. Nothing here is logged
//! but the peer's pid and uid.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener as StdListener};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::time::{timeout_at, Instant};

/// The abstract socket name (without the leading NUL).
pub const CHANNEL: &[u8] = b"/tmp/ovirt-cred-channel";
/// The object the signal comes from.
pub const OBJECT: &str = "/org/ovirt/vdsm/Credentials";
/// The signal's interface.
pub const INTERFACE: &str = "org.ovirt.vdsm.Credentials";
/// The signal.
pub const SIGNAL: &str = "UserAuthenticated";

/// The longest token a peer may write.
const TOKEN_MAX: usize = 1024;

/// Offers `blob` to the first root peer that presents `token` within `wait`.
pub async fn hand_off(token: String, blob: Vec<u8>, wait: Duration) -> Result<bool, String> {
    let deadline = Instant::now() + wait;
    let addr =
        SocketAddr::from_abstract_name(CHANNEL).map_err(|e| format!("credentials channel: {e}"))?;
    let listener = StdListener::bind_addr(&addr)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .and_then(UnixListener::from_std)
        .map_err(|e| format!("cannot open the credentials channel: {e}"))?;
    announce(&token).await?;
    let mut blob = blob;
    let result = serve(&listener, &token, &blob, deadline).await;
    blob.fill(0);
    Ok(result)
}

async fn announce(token: &str) -> Result<(), String> {
    let bus = crate::logind::system_bus()
        .await
        .map_err(|e| format!("cannot reach the system bus: {e}"))?;
    bus.emit_signal(None::<&str>, OBJECT, INTERFACE, SIGNAL, &(token,))
        .await
        .map_err(|e| format!("cannot announce the credentials: {e}"))
}

/// Accepts peers until one collects, or the deadline.
async fn serve(listener: &UnixListener, token: &str, blob: &[u8], deadline: Instant) -> bool {
    loop {
        let Ok(accepted) = timeout_at(deadline, listener.accept()).await else {
            tracing::info!("no greeter collected the credentials");
            return false;
        };
        let Ok((peer, _)) = accepted else {
            continue;
        };
        match collect(peer, token, blob, deadline).await {
            Ok(()) => return true,
            Err(why) => tracing::warn!("credentials refused: {why}"),
        }
    }
}

async fn collect(
    mut peer: UnixStream,
    token: &str,
    blob: &[u8],
    deadline: Instant,
) -> Result<(), String> {
    let cred = peer.peer_cred().map_err(|e| e.to_string())?;
    let who = format!("pid {:?}, uid {}", cred.pid(), cred.uid());
    if cred.uid() != 0 {
        return Err(format!("{who} is not root"));
    }
    let mut got = vec![0u8; TOKEN_MAX];
    let n = match timeout_at(deadline, peer.read(&mut got)).await {
        Ok(Ok(n)) => n,
        _ => return Err(format!("{who} sent no token")),
    };
    if !same(&got[..n], token.as_bytes()) {
        return Err(format!("{who} sent the wrong token"));
    }
    peer.write_all(blob)
        .await
        .map_err(|e| format!("{who}: {e}"))?;
    tracing::info!("credentials collected by {who}");
    Ok(())
}

/// Compares without stopping at the first difference.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
