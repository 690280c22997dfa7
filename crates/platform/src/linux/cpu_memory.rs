//! CPUs and memory blocks in sysfs, CPU time in /proc/stat, the load average, memory
//! figures from /proc/meminfo and paging counters from /proc/vmstat.

use std::fs;
use std::io;
use std::path::Path;

use guestlink_vocabulary::types::{
    GuestCpuStats, GuestCpuStatsType, GuestLoadAverage, GuestLogicalProcessor, GuestMemoryBlock,
    GuestMemoryBlockResponseType, GuestlinkMemoryStats,
};

const CPU_DIR: &str = "/sys/devices/system/cpu";
const MEMORY_DIR: &str = "/sys/devices/system/memory";

/// Numbered entries `prefixN` of a directory, sorted by N.
fn numbered(dir: &str, prefix: &str) -> io::Result<Vec<u64>> {
    let mut ids: Vec<u64> = fs::read_dir(dir)?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.strip_prefix(prefix)?.parse().ok())
        .collect();
    ids.sort_unstable();
    Ok(ids)
}

/// The CPUs of a kernel CPU list (`0-3,5,7-8`); `None` when it is not one.
fn parse_cpu_list(text: &str) -> Option<Vec<u64>> {
    let mut out = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let (a, b): (u64, u64) = match part.split_once('-') {
            Some((a, b)) => (a.parse().ok()?, b.parse().ok()?),
            None => {
                let n = part.parse().ok()?;
                (n, n)
            }
        };
        // Bounded: no kernel has more CPUs than this.
        if b < a || b - a > 1 << 16 {
            return None;
        }
        out.extend(a..=b);
    }
    Some(out)
}

/// `guest-get-vcpus`: CPUs without an `online` file (usually cpu0) are online and
/// cannot be taken offline.
pub fn vcpus() -> io::Result<Vec<GuestLogicalProcessor>> {
    // The kernel's list of present CPUs (one small file) rather than a listing of its
    // directory; the listing where there is no such file.
    let ids = match crate::linux::sysfs::attr(format!("{CPU_DIR}/present")) {
        Ok(text) => parse_cpu_list(&text).map_or_else(|| numbered(CPU_DIR, "cpu"), Ok)?,
        Err(_) => numbered(CPU_DIR, "cpu")?,
    };
    Ok(ids
        .into_iter()
        .map(|id| {
            let online = crate::linux::sysfs::attr(format!("{CPU_DIR}/cpu{id}/online")).ok();
            GuestLogicalProcessor {
                logical_id: id as i64,
                online: online.as_deref().is_none_or(|s| s.trim() == "1"),
                can_offline: Some(online.is_some()),
            }
        })
        .collect())
}

use guestlink_core::error::strerror as errno_desc;

/// Brings a CPU online or offline, with qemu-ga's error texts.
pub fn set_vcpu(id: i64, online: bool) -> Result<(), String> {
    let dir = format!("{CPU_DIR}/cpu{id}/");
    if let Err(e) = fs::metadata(&dir) {
        return Err(format!("open(\"{dir}\"): {}", errno_desc(&e)));
    }
    let file = format!("{dir}online");
    match fs::read_to_string(&file) {
        Err(_) if online => Ok(()),
        Err(_) => Err(format!("logical processor #{id} can't be offlined")),
        Ok(cur) if (cur.trim() == "1") == online => Ok(()),
        Ok(_) => fs::write(&file, if online { "1" } else { "0" }).map_err(|e| {
            format!(
                "failed to set logical processor #{id} online state: {}",
                errno_desc(&e)
            )
        }),
    }
}

/// `guest-get-memory-blocks`.
pub fn memory_blocks() -> io::Result<Vec<GuestMemoryBlock>> {
    Ok(numbered(MEMORY_DIR, "memory")?
        .into_iter()
        .map(|n| {
            let dir = format!("{MEMORY_DIR}/memory{n}");
            let state = crate::linux::sysfs::attr(format!("{dir}/state")).unwrap_or_default();
            let removable = crate::linux::sysfs::attr(format!("{dir}/removable")).ok();
            GuestMemoryBlock {
                phys_index: n,
                online: state.starts_with("online"),
                can_offline: removable.map(|r| r.trim() == "1"),
            }
        })
        .collect())
}

/// `guest-get-memory-block-info`.
pub fn memory_block_size() -> io::Result<u64> {
    // Fixed from boot on: read once.
    static SIZE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    if let Some(size) = SIZE.get() {
        return Ok(*size);
    }
    let text = crate::linux::sysfs::attr(format!("{MEMORY_DIR}/block_size_bytes"))?;
    let size = u64::from_str_radix(text.trim(), 16)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    Ok(*SIZE.get_or_init(|| size))
}

/// Brings one memory block online or offline.
pub fn set_memory_block(n: u64, online: bool) -> (GuestMemoryBlockResponseType, Option<i64>) {
    let dir = format!("{MEMORY_DIR}/memory{n}");
    if !Path::new(&dir).is_dir() {
        return (
            GuestMemoryBlockResponseType::NotFound,
            Some(i64::from(libc::ENOENT)),
        );
    }
    let state = fs::read_to_string(format!("{dir}/state")).unwrap_or_default();
    if state.starts_with("online") == online {
        return (GuestMemoryBlockResponseType::Success, None);
    }
    if !online && fs::read_to_string(format!("{dir}/removable")).is_ok_and(|r| r.trim() == "0") {
        return (GuestMemoryBlockResponseType::OperationNotSupported, None);
    }
    match fs::write(
        format!("{dir}/state"),
        if online { "online" } else { "offline" },
    ) {
        Ok(()) => (GuestMemoryBlockResponseType::Success, None),
        Err(e) => (
            GuestMemoryBlockResponseType::OperationFailed,
            e.raw_os_error().map(i64::from),
        ),
    }
}

/// Parses /proc/stat's per-CPU lines; `ms_per_tick` converts clock ticks.
pub fn parse_stat(text: &str, ms_per_tick: f64) -> Vec<GuestCpuStats> {
    // Bytes, not chars: the file is ASCII, and this runs on every guest-get-cpustats.
    let number = |w: &[u8]| -> Option<u64> {
        if w.is_empty() || w.len() > 20 {
            return None;
        }
        w.iter().try_fold(0u64, |n, b| {
            b.is_ascii_digit()
                .then(|| n.checked_mul(10)?.checked_add(u64::from(b - b'0')))
                .flatten()
        })
    };
    text.as_bytes()
        .split(|b| *b == b'\n')
        .filter(|line| line.starts_with(b"cpu") && line.get(3).is_some_and(u8::is_ascii_digit))
        .filter_map(|line| {
            let mut f = line
                .split(|b| *b == b' ' || *b == b'\t')
                .filter(|w| !w.is_empty());
            let cpu = i64::try_from(number(&f.next()?[3..])?).ok()?;
            let v: Vec<u64> = f
                .map(|x| number(x).map(|t| (t as f64 * ms_per_tick) as u64))
                .collect::<Option<_>>()?;
            if v.len() < 4 {
                return None;
            }
            let at = |i: usize| v.get(i).copied();
            Some(GuestCpuStats {
                type_: GuestCpuStatsType::Linux,
                cpu,
                user: v[0],
                nice: v[1],
                system: v[2],
                idle: v[3],
                iowait: at(4),
                irq: at(5),
                softirq: at(6),
                steal: at(7),
                guest: at(8),
                guestnice: at(9),
            })
        })
        .collect()
}

/// `guest-get-cpustats`.
pub fn cpu_stats() -> io::Result<Vec<GuestCpuStats>> {
    // Only the CPU lines, which come first: the interrupt counters after them are most
    // of the file on a machine with many interrupts.
    let text = crate::linux::sysfs::attr_until("/proc/stat", |t| {
        memchr::memmem::find(t, b"\nintr ").is_some()
    })?;
    // SAFETY: sysconf has no memory-safety preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1);
    Ok(parse_stat(&text, 1000.0 / hz as f64))
}

/// `guest-get-load`.
pub fn load() -> io::Result<GuestLoadAverage> {
    let mut l = [0f64; 3];
    // SAFETY: getloadavg writes at most 3 doubles into the array we pass.
    if unsafe { libc::getloadavg(l.as_mut_ptr(), 3) } != 3 {
        return Err(io::Error::other("getloadavg failed"));
    }
    Ok(GuestLoadAverage {
        load1m: l[0],
        load5m: l[1],
        load15m: l[2],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-1\n"), Some(vec![0, 1]));
        assert_eq!(parse_cpu_list("0,2-4,7"), Some(vec![0, 2, 3, 4, 7]));
        assert_eq!(parse_cpu_list("0"), Some(vec![0]));
        assert_eq!(parse_cpu_list("3-1"), None);
        assert_eq!(parse_cpu_list("x"), None);
        assert_eq!(parse_cpu_list("0-99999999"), None);
    }

    #[test]
    fn proc_stat_in_milliseconds() {
        let s = parse_stat(
            "cpu  1 2 3 4\ncpu0 100 0 50 1000 5 0 1 0 0 0\nintr 1 2\n",
            10.0,
        );
        assert_eq!(s.len(), 1);
        assert_eq!(
            (s[0].cpu, s[0].user, s[0].idle, s[0].iowait),
            (0, 1000, 10000, Some(50))
        );
    }
}

/// The value of `key` in `/proc/meminfo`-style (`Key: 123 kB`) or `/proc/vmstat`-style
/// (`key 123`) text.
fn field(text: &str, key: &str) -> Option<i64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(key)?;
        let rest = rest.strip_prefix(':').unwrap_or(rest);
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// Memory figures (KiB) and paging counters from the two files' text.
pub fn memory_stats_of(meminfo: &str, vmstat: &str) -> io::Result<GuestlinkMemoryStats> {
    let need = |k: &str| {
        field(meminfo, k).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("no {k} in /proc/meminfo"),
            )
        })
    };
    let count = |k: &str| field(vmstat, k).unwrap_or(0);
    Ok(GuestlinkMemoryStats {
        total: need("MemTotal")?,
        free: need("MemFree")?,
        available: field(meminfo, "MemAvailable"),
        buffers: field(meminfo, "Buffers").unwrap_or(0),
        cached: field(meminfo, "Cached").unwrap_or(0),
        swap_total: field(meminfo, "SwapTotal").unwrap_or(0),
        swap_free: field(meminfo, "SwapFree").unwrap_or(0),
        swap_in: count("pswpin"),
        swap_out: count("pswpout"),
        page_faults: count("pgfault"),
        major_faults: count("pgmajfault"),
    })
}

/// `__org.guestlink_get-memory-stats` for this machine.
pub fn memory_stats() -> io::Result<GuestlinkMemoryStats> {
    memory_stats_of(
        &fs::read_to_string("/proc/meminfo")?,
        &fs::read_to_string("/proc/vmstat").unwrap_or_default(),
    )
}

#[cfg(test)]
mod memory_tests {
    use super::*;

    #[test]
    fn meminfo_and_vmstat() {
        let m = memory_stats_of(
            "MemTotal:       16384 kB\nMemFree:  1000 kB\nMemAvailable: 9000 kB\nBuffers: 20 kB\nCached: 3000 kB\nSwapCached: 5 kB\nSwapTotal: 100 kB\nSwapFree: 40 kB\n",
            "pgfault 77\npgmajfault 3\npswpin 1\npswpout 2\n",
        )
        .unwrap();
        assert_eq!(
            (m.total, m.free, m.available, m.buffers, m.cached),
            (16384, 1000, Some(9000), 20, 3000)
        );
        assert_eq!(
            (
                m.swap_total,
                m.swap_free,
                m.swap_in,
                m.swap_out,
                m.page_faults,
                m.major_faults
            ),
            (100, 40, 1, 2, 77, 3)
        );
        assert!(memory_stats_of("nonsense", "").is_err());
        let here = memory_stats().unwrap();
        assert!(here.total > 0 && here.free <= here.total);
    }
}
