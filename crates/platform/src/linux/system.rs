//! System facts read from the running Linux system.

use std::ffi::CStr;
use std::io;
use std::sync::Mutex;

use guestlink_core::platform::{LoginRecord, SystemInfo, Timezone, Uname};

extern "C" {
    /// POSIX `tzset(3)`, which the libc crate does not bind.
    fn tzset();
}

/// The running Linux system.
#[derive(Debug, Default, Clone, Copy)]
pub struct LinuxSystem;

/// The utmpx iteration functions keep global state; one reader at a time.
static UTMP_LOCK: Mutex<()> = Mutex::new(());

/// Where os-release is looked for, in order, after `$QGA_OS_RELEASE`.
const OS_RELEASE_PATHS: &[&str] = &["/etc/os-release", "/usr/lib/os-release"];

impl SystemInfo for LinuxSystem {
    fn uname(&self) -> Uname {
        match nix::sys::utsname::uname() {
            Ok(u) => Uname {
                release: u.release().to_string_lossy().into_owned(),
                version: u.version().to_string_lossy().into_owned(),
                machine: u.machine().to_string_lossy().into_owned(),
            },
            Err(_) => Uname::default(),
        }
    }

    fn os_release(&self) -> Option<String> {
        if let Some(path) = std::env::var_os("QGA_OS_RELEASE") {
            return std::fs::read_to_string(path).ok();
        }
        OS_RELEASE_PATHS
            .iter()
            .find_map(|p| std::fs::read_to_string(p).ok())
    }

    fn hostname(&self) -> io::Result<String> {
        let name = nix::unistd::gethostname().map_err(io::Error::from)?;
        Ok(name.to_string_lossy().into_owned())
    }

    fn timezone(&self) -> Timezone {
        // SAFETY: tzset has no preconditions; it reads TZ and /etc/localtime.
        unsafe { tzset() };
        // SAFETY: passing a null pointer asks time() only to return the time.
        let now = unsafe { libc::time(std::ptr::null_mut()) };
        // SAFETY: libc::tm is plain data for which all-zero is a valid value.
        let mut tm: libc::tm = unsafe { std::mem::zeroed() };
        // SAFETY: both pointers are valid for the duration of the call.
        if unsafe { libc::localtime_r(&now, &mut tm) }.is_null() {
            return Timezone::default();
        }
        let abbreviation = if tm.tm_zone.is_null() {
            None
        } else {
            // SAFETY: tm_zone points to a NUL-terminated string owned by libc that stays
            // valid until the next tzset, and we copy it at once.
            Some(
                unsafe { CStr::from_ptr(tm.tm_zone) }
                    .to_string_lossy()
                    .into_owned(),
            )
        };
        Timezone {
            abbreviation,
            offset: tm.tm_gmtoff,
        }
    }

    fn session_of_pid(&self, pid: i32) -> Option<String> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
        session_of_cgroup(&text)
    }

    fn seat_users(&self) -> Vec<String> {
        let mut users = Vec::new();
        for_each_login(|e| {
            let user = c_field(&e.ut_user);
            if on_local_seat(&c_field(&e.ut_line), &c_field(&e.ut_host)) && !users.contains(&user) {
                users.push(user);
            }
        });
        users
    }

    fn logins(&self) -> io::Result<Vec<LoginRecord>> {
        let mut out = Vec::new();
        for_each_login(|e| {
            out.push(LoginRecord {
                user: c_field(&e.ut_user),
                time: e.ut_tv.tv_sec as f64 + e.ut_tv.tv_usec as f64 / 1e6,
                domain: None,
            })
        });
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_running_system() {
        let s = LinuxSystem;
        assert!(!s.uname().release.is_empty());
        assert!(!s.hostname().unwrap().is_empty());
        let tz = s.timezone();
        assert!(tz.offset.abs() <= 14 * 3600);
        assert!(s.logins().is_ok());
    }
}

/// A C character array up to its NUL, as text.
fn c_field(field: &[libc::c_char]) -> String {
    let bytes: Vec<u8> = field
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Calls `f` with each utmp `USER_PROCESS` record.
fn for_each_login(mut f: impl FnMut(&libc::utmpx)) {
    let _guard = UTMP_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY: the utmpx functions are only called under UTMP_LOCK, each returned
    // record is read before the next call, and endutxent closes the file.
    unsafe {
        libc::setutxent();
        loop {
            let entry = libc::getutxent();
            if entry.is_null() {
                break;
            }
            let e = &*entry;
            if e.ut_type == libc::USER_PROCESS {
                f(e);
            }
        }
        libc::endutxent();
    }
}

/// Whether a login record is on the machine's own seat: a virtual console (`tty1`,
/// not a pseudo-terminal) or an X display (`:0`), not a remote login.
fn on_local_seat(line: &str, host: &str) -> bool {
    let console = line
        .strip_prefix("tty")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    console || (line.starts_with(':') && host.is_empty()) || host.starts_with(':')
}

/// The logind session in a `/proc/PID/cgroup` text: systemd puts a session's processes
/// in `.../session-ID.scope`.
fn session_of_cgroup(text: &str) -> Option<String> {
    text.lines()
        .flat_map(|l| l.rsplit(':').next())
        .flat_map(|path| path.split('/'))
        .find_map(|part| part.strip_prefix("session-")?.strip_suffix(".scope"))
        .map(String::from)
}

#[cfg(test)]
mod session_tests {
    use super::session_of_cgroup;

    #[test]
    fn local_seats() {
        use super::on_local_seat;
        assert!(on_local_seat("tty1", ""));
        assert!(on_local_seat(":0", ""));
        assert!(on_local_seat("tty7", ":0"));
        assert!(!on_local_seat("pts/0", "10.0.0.5"));
        assert!(!on_local_seat("ttyS0", ""));
        assert!(!on_local_seat("tty", ""));
    }

    #[test]
    fn session_scopes() {
        assert_eq!(
            session_of_cgroup("0::/user.slice/user-1000.slice/session-3.scope\n").as_deref(),
            Some("3")
        );
        assert_eq!(
            session_of_cgroup(
                "0::/user.slice/user-1000.slice/user@1000.service/app.slice/x.scope\n"
            ),
            None
        );
        assert_eq!(
            session_of_cgroup("0::/system.slice/guestlinkd.service\n"),
            None
        );
    }
}
