//! Fake platform back ends for tests: fixed answers, no access to the machine.

use std::io;
use std::sync::{Arc, Mutex};

use crate::platform::{Clock, LoginRecord, Platform, SystemInfo, Timezone, Uname};

/// System facts held in memory.
#[derive(Debug, Default)]
pub struct FakeSystem {
    /// Returned by `uname`.
    pub uname: Uname,
    /// Returned by `os_release`.
    pub os_release: Option<String>,
    /// Returned by `hostname`; `None` makes it fail.
    pub hostname: Option<String>,
    /// Returned by `timezone`.
    pub timezone: Timezone,
    /// Returned by `logins`.
    pub logins: Mutex<Vec<LoginRecord>>,
}

impl SystemInfo for FakeSystem {
    fn uname(&self) -> Uname {
        self.uname.clone()
    }
    fn os_release(&self) -> Option<String> {
        self.os_release.clone()
    }
    fn hostname(&self) -> io::Result<String> {
        self.hostname
            .clone()
            .ok_or_else(|| io::Error::other("no host name"))
    }
    fn timezone(&self) -> Timezone {
        self.timezone.clone()
    }
    fn logins(&self) -> io::Result<Vec<LoginRecord>> {
        Ok(self
            .logins
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone())
    }
}

/// A clock that always says the same time.
#[derive(Debug)]
pub struct FixedClock(pub i64);

impl Clock for FixedClock {
    fn now_micros(&self) -> i64 {
        self.0
    }
}

/// A platform made of the given fake system and a fixed clock.
pub fn fake_platform(system: FakeSystem, now_micros: i64) -> Platform {
    Platform {
        system: Arc::new(system),
        clock: Arc::new(FixedClock(now_micros)),
    }
}
