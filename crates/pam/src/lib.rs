//! `pam_guestlink.so`: single sign-on for display managers, the greeter side of
//! guestlinkd's credentials hand-off (oVirt's `login`, `__org.guestlink_credentials-handoff`).
//!
//! The host sends a user's name and password; guestlinkd keeps them in memory for 5 s,
//! announces a token on the system bus (`org.ovirt.vdsm.Credentials.UserAuthenticated`)
//! and gives them, once, to a root process that presents the token on its credentials
//! socket. A greeter that saw the token starts its PAM conversation for the SSO
//! service and answers this module's prompt with it; the module collects the
//! credentials, sets `PAM_USER` and `PAM_AUTHTOK`, wipes its copies and lets the rest
//! of the stack (`pam_unix.so use_first_pass`, say) check them. As oVirt's
//! `pam_ovirt_cred`:
//!
//! ```text
//! auth requisite pam_guestlink.so [socket=/run/guestlink/sso/credentials.sock]
//! auth required  pam_unix.so use_first_pass
//! ```
//!
//! The exchange itself ([`collect`], [`parse_credentials`]) is plain Rust; [`pam`] is
//! the C entry points around it.

pub mod pam;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where guestlinkd listens during a hand-off.
pub const DEFAULT_SOCKET: &str = "/run/guestlink/sso/credentials.sock";
/// How long the module waits for guestlinkd.
pub const WAIT: Duration = Duration::from_secs(5);
/// The longest credentials blob accepted.
const BLOB_MAX: usize = 64 << 10;

/// The module's arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// guestlinkd's credentials socket.
    pub socket: PathBuf,
}

impl Options {
    /// Parses `socket=PATH`; other words are ignored (PAM modules do not fail on
    /// options they do not know, so that a stack keeps working across versions).
    pub fn parse<'a>(args: impl IntoIterator<Item = &'a str>) -> Options {
        let mut o = Options {
            socket: PathBuf::from(DEFAULT_SOCKET),
        };
        for a in args {
            if let Some(p) = a.strip_prefix("socket=") {
                o.socket = PathBuf::from(p);
            }
        }
        o
    }
}

/// A user's credentials; both are wiped when dropped.
pub struct Credentials {
    /// The user name (may be `user@domain`).
    pub user: Vec<u8>,
    /// The password.
    pub password: Vec<u8>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &String::from_utf8_lossy(&self.user))
            .field("password", &"<hidden>")
            .finish()
    }
}

impl Drop for Credentials {
    fn drop(&mut self) {
        wipe(&mut self.user);
        wipe(&mut self.password);
    }
}

/// Overwrites `buf` with zeros in a way the optimiser keeps.
pub fn wipe(buf: &mut [u8]) {
    for b in buf.iter_mut() {
        // SAFETY: `b` is a valid, aligned, exclusive reference into `buf`.
        unsafe { std::ptr::write_volatile(b, 0) };
    }
    std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
}

/// Why no credentials came.
#[derive(Debug, PartialEq, Eq)]
pub enum Failure {
    /// guestlinkd is not handing any off (no socket, or it refused the connection).
    Unavailable(String),
    /// It answered nothing: the token was wrong, or the hand-off was over.
    Refused,
    /// The answer was not a credentials blob.
    Malformed(&'static str),
}

/// Reads guestlinkd's blob: the user's length (4 bytes, big endian), the user, the
/// password and a NUL.
pub fn parse_credentials(mut blob: Vec<u8>) -> Result<Credentials, Failure> {
    let result = (|| {
        if blob.is_empty() {
            return Err(Failure::Refused);
        }
        if blob.len() < 5 || blob.last() != Some(&0) {
            return Err(Failure::Malformed("too short or not NUL-terminated"));
        }
        let len = u32::from_be_bytes([blob[0], blob[1], blob[2], blob[3]]) as usize;
        let body = &blob[4..blob.len() - 1];
        if len == 0 || len > body.len() {
            return Err(Failure::Malformed("the user's length is out of range"));
        }
        let (user, password) = body.split_at(len);
        if user.contains(&0) || password.contains(&0) {
            return Err(Failure::Malformed("a NUL inside the credentials"));
        }
        Ok(Credentials {
            user: user.to_vec(),
            password: password.to_vec(),
        })
    })();
    wipe(&mut blob);
    result
}

/// Presents `token` on `socket` and returns what guestlinkd hands over.
pub fn collect(socket: &Path, token: &[u8]) -> Result<Credentials, Failure> {
    let mut s = UnixStream::connect(socket)
        .map_err(|e| Failure::Unavailable(format!("{}: {e}", socket.display())))?;
    let _ = s.set_read_timeout(Some(WAIT));
    let _ = s.set_write_timeout(Some(WAIT));
    s.write_all(token)
        .map_err(|e| Failure::Unavailable(e.to_string()))?;
    let mut blob = Vec::new();
    let read = Read::by_ref(&mut s)
        .take(BLOB_MAX as u64 + 1)
        .read_to_end(&mut blob);
    if read.is_err() || blob.len() > BLOB_MAX {
        wipe(&mut blob);
        return Err(Failure::Malformed("no complete answer"));
    }
    parse_credentials(blob)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(user: &[u8], password: &[u8]) -> Vec<u8> {
        let mut b = (user.len() as u32).to_be_bytes().to_vec();
        b.extend_from_slice(user);
        b.extend_from_slice(password);
        b.push(0);
        b
    }

    #[test]
    fn blobs() {
        let c = parse_credentials(blob(b"alice@example.org", b"pw word")).unwrap();
        assert_eq!(c.user, b"alice@example.org");
        assert_eq!(c.password, b"pw word");
        assert!(!format!("{c:?}").contains("pw word"));
        let empty_pw = parse_credentials(blob(b"bob", b"")).unwrap();
        assert_eq!(
            (empty_pw.user.as_slice(), empty_pw.password.len()),
            (&b"bob"[..], 0)
        );
        assert_eq!(parse_credentials(Vec::new()).unwrap_err(), Failure::Refused);
        let mut unterminated = blob(b"a", b"b");
        unterminated.pop();
        assert!(matches!(
            parse_credentials(unterminated),
            Err(Failure::Malformed(_))
        ));
        let mut long = blob(b"a", b"b");
        long[3] = 9;
        assert!(matches!(
            parse_credentials(long),
            Err(Failure::Malformed(_))
        ));
        assert!(matches!(
            parse_credentials(blob(b"", b"pw")),
            Err(Failure::Malformed(_))
        ));
        assert!(matches!(
            parse_credentials(blob(b"a\0b", b"pw")),
            Err(Failure::Malformed(_))
        ));
    }

    #[test]
    fn options() {
        assert_eq!(Options::parse([]).socket, Path::new(DEFAULT_SOCKET));
        assert_eq!(
            Options::parse(["debug", "socket=/tmp/x.sock"]).socket,
            Path::new("/tmp/x.sock")
        );
    }

    #[test]
    fn no_agent_is_unavailable() {
        let e = collect(Path::new("/nonexistent/guestlink.sock"), b"t").unwrap_err();
        assert!(matches!(e, Failure::Unavailable(_)), "{e:?}");
    }

    #[test]
    fn wipe_zeroes() {
        let mut b = b"secret".to_vec();
        wipe(&mut b);
        assert_eq!(b, [0; 6]);
    }
}
