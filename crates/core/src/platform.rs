//! What handlers need from the operating system, behind traits.
//!
//! `guestlink-platform` implements them for Linux; [`crate::testing`] has fakes that
//! return fixed data, so that handlers are tested without touching the machine.

use std::fmt;
use std::io;
use std::sync::Arc;

/// `uname(2)` fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Uname {
    /// Kernel release (`uname -r`).
    pub release: String,
    /// Kernel version (`uname -v`).
    pub version: String,
    /// Hardware name (`uname -m`).
    pub machine: String,
}

/// The local time zone right now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Timezone {
    /// Abbreviation, e.g. `UTC`.
    pub abbreviation: Option<String>,
    /// Seconds east of UTC.
    pub offset: i64,
}

/// One login record (a utmp `USER_PROCESS` entry).
#[derive(Debug, Clone, PartialEq)]
pub struct LoginRecord {
    /// User name.
    pub user: String,
    /// Login time, seconds since the epoch with microseconds.
    pub time: f64,
}

/// Read-only facts about the system.
pub trait SystemInfo: Send + Sync {
    /// Kernel identification.
    fn uname(&self) -> Uname;
    /// The contents of the os-release file, if one can be read.
    fn os_release(&self) -> Option<String>;
    /// The current host name.
    fn hostname(&self) -> io::Result<String>;
    /// The local time zone.
    fn timezone(&self) -> Timezone;
    /// Active login sessions.
    fn logins(&self) -> io::Result<Vec<LoginRecord>>;
}

/// The wall clock.
pub trait Clock: Send + Sync {
    /// Microseconds since the epoch.
    fn now_micros(&self) -> i64;
}

/// All platform back ends the handlers use.
#[derive(Clone)]
pub struct Platform {
    /// System facts.
    pub system: Arc<dyn SystemInfo>,
    /// Wall clock.
    pub clock: Arc<dyn Clock>,
}

impl fmt::Debug for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Platform").finish_non_exhaustive()
    }
}
