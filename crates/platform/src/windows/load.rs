//! `guest-get-load` on Windows, which has no load average: as qemu-ga 10 for Windows,
//! a sampler every 5 seconds feeds the three exponentially decaying averages Linux
//! keeps (1, 5 and 15 minutes). Its sample is the number of processors busy over the
//! last 5 seconds (`GetSystemTimes`), where qemu-ga samples the processor queue
//! length through PDH; both count runnable work, ours without a PDH query open.

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use windows_sys::Win32::Foundation::FILETIME;
use windows_sys::Win32::System::Threading::{GetActiveProcessorCount, GetSystemTimes};

use super::rules::{busy_fraction, decay_loads, CpuTimes, LOAD_PERIOD_SECS};

static LOADS: OnceLock<Mutex<[f64; 3]>> = OnceLock::new();

fn now() -> Option<CpuTimes> {
    let zero = FILETIME {
        dwLowDateTime: 0,
        dwHighDateTime: 0,
    };
    let (mut idle, mut kernel, mut user) = (zero, zero, zero);
    // SAFETY: three FILETIMEs to fill.
    if unsafe { GetSystemTimes(&mut idle, &mut kernel, &mut user) } == 0 {
        return None;
    }
    let v = |f: FILETIME| (u64::from(f.dwHighDateTime) << 32) | u64::from(f.dwLowDateTime);
    Some(CpuTimes {
        idle: v(idle),
        kernel: v(kernel),
        user: v(user),
    })
}

/// Starts the sampler (once).
pub fn start() {
    LOADS.get_or_init(|| {
        let _ = std::thread::Builder::new()
            .name("load-sampler".into())
            .spawn(|| {
                // SAFETY: no pointers.
                let cpus = f64::from(unsafe { GetActiveProcessorCount(0xffff) });
                let mut last = now();
                loop {
                    std::thread::sleep(Duration::from_secs(LOAD_PERIOD_SECS));
                    let current = now();
                    if let (Some(a), Some(b)) = (last, current) {
                        let sample = busy_fraction(a, b) * cpus;
                        if let Some(loads) = LOADS.get() {
                            let mut l = loads.lock().unwrap_or_else(|e| e.into_inner());
                            *l = decay_loads(*l, sample);
                        }
                    }
                    last = current;
                }
            });
        Mutex::new([0.0; 3])
    });
}

/// The averages now.
pub fn loads() -> [f64; 3] {
    start();
    LOADS
        .get()
        .map(|l| *l.lock().unwrap_or_else(|e| e.into_inner()))
        .unwrap_or_default()
}
