//! The wall clock.

use std::time::{SystemTime, UNIX_EPOCH};

use guestlink_core::platform::Clock;

/// The system clock (`CLOCK_REALTIME`, `GetSystemTimePreciseAsFileTime`).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_micros(&self) -> i64 {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_micros()).unwrap_or(i64::MAX),
            Err(e) => -i64::try_from(e.duration().as_micros()).unwrap_or(i64::MAX),
        }
    }
}
