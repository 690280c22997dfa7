//! Single sign-on: handing a user's credentials to the greeter, as oVirt's greeter
//! plugins (`pam_ovirt_cred`, the GDM and KDM extensions) expect it.
//!
//! The agent listens on the socket [`DEFAULT_PATH`] (or `$GUESTLINK_CREDENTIALS_SOCKET`),
//! in a directory only root may enter or write, then announces a token with the signal
//! `org.ovirt.vdsm.Credentials.UserAuthenticated(s)` on the system bus (object
//! `/org/ovirt/vdsm/Credentials`), keeping its bus connection open for the hand-off
//! (a greeter may ask the bus whose the signal was). A plugin connects and writes the
//! token; the agent answers with the credentials only when the peer runs as root
//! (checked with `SO_PEERCRED`) and the token matches. Others are turned away and the
//! wait goes on, so a local user cannot block a sign-on by connecting first. Nothing
//! here is logged but the peer's pid and uid.
//!
//! oVirt's own agent used the abstract socket `@/tmp/ovirt-cred-channel`, which has no
//! permissions: any local user who bound the name first made every sign-on fail. The
//! socket here lives in the file system, where no other user can take its name.

use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixListener as StdListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::time::{timeout_at, Instant};

/// Where greeter plugins find the credentials socket.
pub const DEFAULT_PATH: &str = "/run/guestlink/sso/credentials.sock";
/// The object the signal comes from.
pub const OBJECT: &str = "/org/ovirt/vdsm/Credentials";
/// The signal's interface.
pub const INTERFACE: &str = "org.ovirt.vdsm.Credentials";
/// The signal.
pub const SIGNAL: &str = "UserAuthenticated";

/// The longest token a peer may write.
const TOKEN_MAX: usize = 1024;

/// The socket's path: `$GUESTLINK_CREDENTIALS_SOCKET`, else [`DEFAULT_PATH`].
pub fn socket_path() -> PathBuf {
    std::env::var_os("GUESTLINK_CREDENTIALS_SOCKET")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_PATH))
}

/// Makes the socket's directory, or checks the one there: a real directory (not a
/// link), owned by this process's user, that no one else may enter or write.
fn private_dir(dir: &Path) -> Result<(), String> {
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(format!("cannot create {}: {e}", dir.display())),
    }
    let meta = std::fs::symlink_metadata(dir)
        .map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let uid = nix::unistd::geteuid().as_raw();
    if !meta.is_dir() || meta.uid() != uid || meta.permissions().mode() & 0o077 != 0 {
        return Err(format!(
            "refusing the credentials directory {}: it must be a directory of uid {uid} with mode 0700",
            dir.display()
        ));
    }
    Ok(())
}

/// Binds the socket at `path`, in a private directory, replacing a stale one.
fn bind(path: &Path) -> Result<UnixListener, String> {
    let dir = path
        .parent()
        .ok_or_else(|| format!("{} has no directory", path.display()))?;
    private_dir(dir)?;
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(format!("cannot replace {}: {e}", path.display()))
        }
        _ => {}
    }
    StdListener::bind(path)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .and_then(UnixListener::from_std)
        .map_err(|e| format!("cannot open the credentials channel: {e}"))
}

/// A token of 128 bits from the kernel's random source, in hex. There is no fallback:
/// without randomness there is no hand-off.
pub fn token() -> Result<String, String> {
    let mut bytes = [0u8; 16];
    let mut filled = 0;
    while filled < bytes.len() {
        let rest = &mut bytes[filled..];
        // SAFETY: getrandom writes at most `rest.len()` bytes into the buffer we own.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(format!("cannot make a token: {e}"));
        }
        filled += n as usize;
    }
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Offers `blob` to the first root peer that presents `token` within `wait`.
pub async fn hand_off(token: String, blob: Vec<u8>, wait: Duration) -> Result<bool, String> {
    let deadline = Instant::now() + wait;
    let path = socket_path();
    let listener = bind(&path)?;
    let mut blob = blob;
    let result = announce_and_serve(&listener, &token, &blob, deadline).await;
    blob.fill(0);
    drop(listener);
    let _ = std::fs::remove_file(&path);
    result
}

/// Announces `token`, then serves the hand-off with the bus connection still open (a
/// greeter may ask the bus whose the signal was).
async fn announce_and_serve(
    listener: &UnixListener,
    token: &str,
    blob: &[u8],
    deadline: Instant,
) -> Result<bool, String> {
    let mut bus = crate::linux::dbus::Bus::system()
        .await
        .map_err(|e| format!("cannot reach the system bus: {e}"))?;
    bus.emit_signal(
        OBJECT,
        INTERFACE,
        SIGNAL,
        &[crate::linux::dbus::Arg::Str(token)],
    )
    .await
    .map_err(|e| format!("cannot announce the credentials: {e}"))?;
    Ok(serve(listener, token, blob, deadline).await)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_128_random_bits() {
        let (a, b) = (token().unwrap(), token().unwrap());
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()), "{a}");
        assert_ne!(a, b);
    }

    #[tokio::test]
    async fn the_directory_must_be_private() {
        let base = std::env::temp_dir().join(format!("gl-sso-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(&base).unwrap();
        let fresh = base.join("fresh");
        private_dir(&fresh).unwrap();
        let mode = std::fs::metadata(&fresh).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        let open = base.join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o733)).unwrap();
        assert!(private_dir(&open).unwrap_err().contains("mode 0700"));
        let link = base.join("link");
        std::os::unix::fs::symlink(&fresh, &link).unwrap();
        assert!(private_dir(&link).is_err(), "a link is not followed");
        let l = bind(&fresh.join("c.sock")).unwrap();
        drop(l);
        assert!(
            bind(&fresh.join("c.sock")).is_ok(),
            "a stale socket is replaced"
        );
        std::fs::remove_dir_all(&base).unwrap();
    }
}
