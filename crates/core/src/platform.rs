//! What handlers need from the operating system, behind traits.
//!
//! `guestlink-platform` implements them for Linux; `guestlink_core::testing` (the `testing` feature) has fakes that
//! return fixed data, so that handlers are tested without touching the machine.
//!
//! Three handlers still make file system calls themselves, because the call must run
//! on a descriptor they hold or under the caller's identity on the thread that makes
//! it: `handlers/file.rs` (the host's `guest-file-*`, on descriptors kept in the handle
//! table), `handlers/transfer.rs` (a file created as the user: `setfsuid`, `setfsgid`
//! and the user's groups on one blocking thread) and `handlers/accounts.rs`
//! (`~/.ssh/authorized_keys` through the directory's descriptor, never following a
//! link). Everything else goes through these traits.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use guestlink_vocabulary::types::{
    GuestCpuStats, GuestDiskInfo, GuestDiskStatsInfo, GuestFilesystemInfo, GuestLoadAverage,
    GuestLogicalProcessor, GuestMemoryBlock, GuestMemoryBlockResponseType, GuestNetworkInterface,
    GuestNetworkRoute, GuestlinkGrown, GuestlinkMemoryStats, GuestlinkService,
    GuestlinkServiceAction,
};

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
    /// Logon domain (Windows).
    pub domain: Option<String>,
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
    /// The logind session a process belongs to, when it can be told.
    fn session_of_pid(&self, _pid: i32) -> Option<String> {
        None
    }
    /// Users logged in on a local seat (utmp records on a virtual console or an X
    /// display), by name: who owns the desktop when no session manager says so.
    fn seat_users(&self) -> Vec<String> {
        Vec::new()
    }
}

/// The wall clock.
pub trait Clock: Send + Sync {
    /// Microseconds since the epoch.
    fn now_micros(&self) -> i64;
}

/// Hardware and kernel inventory: storage, network, CPUs, memory, load. Read-only.
pub trait Inventory: Send + Sync {
    /// Mounted filesystems with sizes and the disks under them.
    fn filesystems(&self) -> io::Result<Vec<GuestFilesystemInfo>>;
    /// The same without waiting for anything outside the kernel; `None` when that
    /// cannot be done (a FUSE mount, a disk not asked yet), and the caller asks
    /// [`Inventory::filesystems`] off the async thread.
    fn filesystems_now(&self) -> Option<io::Result<Vec<GuestFilesystemInfo>>> {
        None
    }
    /// Block devices.
    fn disks(&self) -> io::Result<Vec<GuestDiskInfo>>;
    /// The same without waiting for a device; `None` when that cannot be done.
    fn disks_now(&self) -> Option<io::Result<Vec<GuestDiskInfo>>> {
        None
    }
    /// Block device counters.
    fn disk_stats(&self) -> io::Result<Vec<GuestDiskStatsInfo>>;
    /// Network interfaces.
    fn interfaces(&self) -> io::Result<Vec<GuestNetworkInterface>>;
    /// Routing tables.
    fn routes(&self) -> io::Result<Vec<GuestNetworkRoute>>;
    /// Per-CPU time counters.
    fn cpu_stats(&self) -> io::Result<Vec<GuestCpuStats>>;
    /// Load averages.
    fn load(&self) -> io::Result<GuestLoadAverage>;
    /// Virtual CPUs.
    fn vcpus(&self) -> io::Result<Vec<GuestLogicalProcessor>>;
    /// Memory blocks.
    fn memory_blocks(&self) -> io::Result<Vec<GuestMemoryBlock>>;
    /// Size of one memory block in bytes.
    fn memory_block_size(&self) -> io::Result<u64>;
    /// Memory figures and paging counters.
    fn memory_stats(&self) -> io::Result<GuestlinkMemoryStats> {
        Err(io::ErrorKind::Unsupported.into())
    }
    /// PCI devices and their drivers (Windows' `guest-get-devices`).
    fn devices(&self) -> io::Result<Vec<guestlink_vocabulary::types::GuestDeviceInfo>> {
        Err(io::ErrorKind::Unsupported.into())
    }
    /// The installed packages among `names`, as `name-version[-release]`.
    fn applications(&self, _names: &[String]) -> io::Result<Vec<String>> {
        Err(io::ErrorKind::Unsupported.into())
    }
    /// Every installed package, sorted by name.
    fn packages(&self) -> io::Result<Vec<guestlink_vocabulary::types::GuestlinkPackage>> {
        Err(io::ErrorKind::Unsupported.into())
    }
}

/// A filesystem that can be frozen: a mount with a device path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FreezableMount {
    /// Mount point.
    pub dir: PathBuf,
    /// Filesystem type.
    pub fstype: String,
}

/// Freezing, thawing and trimming filesystems (FIFREEZE, FITHAW, FITRIM).
pub trait Filesystems: Send + Sync {
    /// Mounts that can be frozen or trimmed, in mount order, without duplicates.
    fn mounts(&self) -> io::Result<Vec<FreezableMount>>;
    /// Freezes one filesystem.
    fn freeze(&self, dir: &std::path::Path) -> io::Result<()>;
    /// Thaws one filesystem; `Ok(false)` if it was not frozen.
    fn thaw(&self, dir: &std::path::Path) -> io::Result<bool>;
    /// Discards unused blocks; returns the bytes trimmed.
    fn trim(&self, dir: &std::path::Path, minimum: u64) -> Result<u64, TrimError>;
    /// Grows the partition under the file system mounted at (or holding) `path` to
    /// the end of its disk, then the file system to its device.
    fn grow(&self, _path: &std::path::Path) -> Result<GuestlinkGrown, String> {
        Err("growing file systems is not supported on this platform".into())
    }
    /// The mount points of file systems on disk `disk` (a kernel name: `vdb`), on
    /// the whole disk or a partition of it.
    fn mounts_on_disk(&self, _disk: &str) -> Vec<PathBuf> {
        Vec::new()
    }
}

/// Why a filesystem was not trimmed.
#[derive(Debug)]
pub enum TrimError {
    /// The mount point could not be opened.
    Open(io::Error),
    /// FITRIM failed.
    Trim(io::Error),
}

/// How to stop the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownMode {
    /// Power off.
    Powerdown,
    /// Halt without powering off.
    Halt,
    /// Restart.
    Reboot,
}

/// Which sleep state to enter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SuspendMode {
    /// Suspend to disk (hibernate).
    Disk,
    /// Suspend to RAM.
    Ram,
    /// Both.
    Hybrid,
}

/// Actions that change the machine: power, clock, CPUs and memory, accounts.
/// Errors are texts in qemu-ga's words.
pub trait Machine: Send + Sync {
    /// Shuts down, halts or reboots.
    fn shutdown(&self, mode: ShutdownMode) -> Result<(), String>;
    /// Suspends.
    fn suspend(&self, mode: SuspendMode) -> Result<(), String>;
    /// Sets the system clock.
    fn set_clock(&self, secs: i64, micros: i64) -> Result<(), String>;
    /// Copies the system clock to the RTC (`to_rtc`) or the RTC to the system clock.
    fn sync_rtc(&self, to_rtc: bool) -> Result<(), String>;
    /// Brings a CPU online or offline.
    fn set_vcpu(&self, logical_id: i64, online: bool) -> Result<(), String>;
    /// Brings a memory block online or offline; returns the outcome and an errno.
    fn set_memory_block(
        &self,
        phys_index: u64,
        online: bool,
    ) -> (GuestMemoryBlockResponseType, Option<i64>);
    /// Sets an account's password (`chpasswd`).
    fn set_password(&self, user: &str, password: &[u8], crypted: bool) -> Result<(), String>;
    /// Shuts down, halts or reboots in `minutes` (0: now), after `message` was
    /// broadcast to logged-in users. Returns once it is scheduled.
    fn schedule_shutdown(
        &self,
        mode: ShutdownMode,
        minutes: u32,
        message: &str,
    ) -> Result<(), String>;
}

/// A future a back end returns from a trait object.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// The session manager (logind): acting on user sessions, and the greeter's
/// single sign-on.
pub trait SessionManager: Send + Sync {
    /// Asks the session's screen locker to lock it.
    fn lock(&self, session: String) -> BoxFuture<'_, Result<(), String>>;
    /// Ends the session.
    fn terminate(&self, session: String) -> BoxFuture<'_, Result<(), String>>;
    /// Announces a new random token to greeter plugins and gives `blob` to the first
    /// root-owned one that presents it within `wait`; `Ok(false)` when none did.
    fn hand_off_credentials(
        &self,
        blob: Vec<u8>,
        wait: std::time::Duration,
    ) -> BoxFuture<'_, Result<bool, String>>;
}

/// The service manager (systemd, or Windows' service control manager): units listed,
/// read and acted on. Errors are texts for the host.
pub trait Services: Send + Sync {
    /// The full name of the unit the host named, or why the name is refused: systemd's
    /// rules (`.service` added) unless the manager has its own.
    fn unit_name(&self, name: &str) -> Result<String, String> {
        crate::policy::services::unit_name(name)
    }
    /// The units loaded, running or wanted, sorted by name.
    fn list(&self) -> BoxFuture<'_, Result<Vec<GuestlinkService>, String>>;
    /// One unit's states (`unit` is a full unit name).
    fn status(&self, unit: String) -> BoxFuture<'_, Result<GuestlinkService, String>>;
    /// Starts, stops, restarts, enables or disables a unit; a start, stop or restart
    /// returns once its job has finished.
    fn control(
        &self,
        unit: String,
        action: GuestlinkServiceAction,
    ) -> BoxFuture<'_, Result<(), String>>;
}

/// No service manager: every call says so.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoServices;

impl Services for NoServices {
    fn list(&self) -> BoxFuture<'_, Result<Vec<GuestlinkService>, String>> {
        Box::pin(async { Err(NO_SERVICES.into()) })
    }
    fn status(&self, _unit: String) -> BoxFuture<'_, Result<GuestlinkService, String>> {
        Box::pin(async { Err(NO_SERVICES.into()) })
    }
    fn control(
        &self,
        _unit: String,
        _action: GuestlinkServiceAction,
    ) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async { Err(NO_SERVICES.into()) })
    }
}

const NO_SERVICES: &str = "no service manager is available";

/// An account, as `getpwnam` gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Home directory.
    pub home: PathBuf,
    /// A member of the Administrators group (Windows: OpenSSH reads such a user's
    /// keys from `administrators_authorized_keys`). Always false on Unix.
    pub admin: bool,
}

/// The user database.
pub trait Accounts: Send + Sync {
    /// Looks an account up by name.
    fn lookup(&self, name: &str) -> Result<Account, String>;
}

/// All platform back ends the handlers use.
#[derive(Clone)]
pub struct Platform {
    /// System facts.
    pub system: Arc<dyn SystemInfo>,
    /// Wall clock.
    pub clock: Arc<dyn Clock>,
    /// Hardware inventory.
    pub inventory: Arc<dyn Inventory>,
    /// Filesystem freeze and trim.
    pub filesystems: Arc<dyn Filesystems>,
    /// Machine-changing actions.
    pub machine: Arc<dyn Machine>,
    /// User database.
    pub accounts: Arc<dyn Accounts>,
    /// Acting on user sessions.
    pub session_manager: Arc<dyn SessionManager>,
    /// Starting the programs of live streams.
    pub processes: Arc<dyn crate::live::Processes>,
    /// System services.
    pub services: Arc<dyn Services>,
}

impl fmt::Debug for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Platform").finish_non_exhaustive()
    }
}
