//! Fake platform back ends for tests: fixed answers, no access to the machine.
//!
//! Everything that would change the machine is recorded in an [`ActionLog`] instead,
//! so tests check the exact action a command asked for.

use crate::dispatch::Call;
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use guestlink_vocabulary::types::{
    GuestCpuStats, GuestDiskInfo, GuestDiskStatsInfo, GuestFilesystemInfo, GuestLoadAverage,
    GuestLogicalProcessor, GuestMemoryBlock, GuestMemoryBlockResponseType, GuestNetworkInterface,
    GuestNetworkRoute, GuestlinkGrown, GuestlinkMemoryStats, GuestlinkService,
    GuestlinkServiceAction,
};

use crate::platform::{
    Account, Accounts, BoxFuture, Clock, Filesystems, FreezableMount, Inventory, LoginRecord,
    Machine, Platform, Services, SessionManager, ShutdownMode, SuspendMode, SystemInfo, Timezone,
    TrimError, Uname,
};

/// An action a fake back end was asked to perform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `shutdown(mode)`.
    Shutdown(ShutdownMode),
    /// `suspend(mode)`.
    Suspend(SuspendMode),
    /// `set_clock(secs, micros)`.
    SetClock(i64, i64),
    /// `sync_rtc(to_rtc)`.
    SyncRtc(bool),
    /// `set_vcpu(id, online)`.
    SetVcpu(i64, bool),
    /// `set_memory_block(index, online)`.
    SetMemoryBlock(u64, bool),
    /// `set_password(user, password, crypted)`.
    SetPassword(String, Vec<u8>, bool),
    /// `freeze(dir)`.
    Freeze(PathBuf),
    /// `thaw(dir)`.
    Thaw(PathBuf),
    /// `trim(dir, minimum)`.
    Trim(PathBuf, u64),
    /// `schedule_shutdown(mode, minutes, message)`.
    ScheduleShutdown(ShutdownMode, u32, String),
    /// `lock(session)`.
    LockSession(String),
    /// `terminate(session)`.
    TerminateSession(String),
    /// `hand_off_credentials(blob)`.
    HandOff(Vec<u8>),
    /// `control(unit, action)`.
    Service(String, GuestlinkServiceAction),
    /// `grow(path)`.
    Grow(PathBuf),
}

/// The actions performed, in order.
#[derive(Debug, Default)]
pub struct ActionLog(Mutex<Vec<Action>>);

impl ActionLog {
    fn push(&self, a: Action) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(a);
    }

    /// Takes the actions recorded so far.
    pub fn take(&self) -> Vec<Action> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// A machine that records what it is asked to do. Failures can be injected.
#[derive(Debug, Default)]
pub struct FakeMachine {
    /// Where actions are recorded.
    pub log: Arc<ActionLog>,
    /// Makes every action fail with this text.
    pub fail: Mutex<Option<String>>,
    /// CPUs that exist (others fail as a missing sysfs directory would).
    pub cpus: Vec<i64>,
}

impl FakeMachine {
    fn outcome(&self, a: Action) -> Result<(), String> {
        if let Some(text) = self.fail.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            return Err(text);
        }
        self.log.push(a);
        Ok(())
    }
}

impl Machine for FakeMachine {
    fn shutdown(&self, mode: ShutdownMode) -> Result<(), String> {
        self.outcome(Action::Shutdown(mode))
    }
    fn suspend(&self, mode: SuspendMode) -> Result<(), String> {
        self.outcome(Action::Suspend(mode))
    }
    fn set_clock(&self, secs: i64, micros: i64) -> Result<(), String> {
        self.outcome(Action::SetClock(secs, micros))
    }
    fn sync_rtc(&self, to_rtc: bool) -> Result<(), String> {
        self.outcome(Action::SyncRtc(to_rtc))
    }
    fn set_vcpu(&self, logical_id: i64, online: bool) -> Result<(), String> {
        if !self.cpus.contains(&logical_id) {
            return Err(format!(
                "open(\"/sys/devices/system/cpu/cpu{logical_id}/\"): No such file or directory"
            ));
        }
        self.outcome(Action::SetVcpu(logical_id, online))
    }
    fn set_memory_block(
        &self,
        index: u64,
        online: bool,
    ) -> (GuestMemoryBlockResponseType, Option<i64>) {
        match self.outcome(Action::SetMemoryBlock(index, online)) {
            Ok(()) => (GuestMemoryBlockResponseType::Success, None),
            Err(_) => (
                GuestMemoryBlockResponseType::OperationFailed,
                Some(i64::from(libc::EIO)),
            ),
        }
    }
    fn set_password(&self, user: &str, password: &[u8], crypted: bool) -> Result<(), String> {
        self.outcome(Action::SetPassword(user.into(), password.into(), crypted))
    }
    fn schedule_shutdown(
        &self,
        mode: ShutdownMode,
        minutes: u32,
        message: &str,
    ) -> Result<(), String> {
        self.outcome(Action::ScheduleShutdown(mode, minutes, message.into()))
    }
}

/// A session manager that records what it is asked to do. Sessions named in
/// `missing` fail as logind does for an unknown session; hand-offs are collected
/// unless `uncollected` is set.
#[derive(Debug, Default)]
pub struct FakeSessionManager {
    /// Where actions are recorded.
    pub log: Arc<ActionLog>,
    /// Sessions that do not exist.
    pub missing: Vec<String>,
    /// Whether no greeter collects credentials.
    pub uncollected: bool,
    /// How long a hand-off takes.
    pub handoff_time: std::time::Duration,
}

impl FakeSessionManager {
    fn act(&self, session: String, a: Action) -> Result<(), String> {
        if self.missing.contains(&session) {
            return Err(format!("No session '{session}' known"));
        }
        self.log.push(a);
        Ok(())
    }
}

impl SessionManager for FakeSessionManager {
    fn lock(&self, session: String) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move { self.act(session.clone(), Action::LockSession(session)) })
    }
    fn terminate(&self, session: String) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move { self.act(session.clone(), Action::TerminateSession(session)) })
    }
    fn hand_off_credentials(
        &self,
        blob: Vec<u8>,
        _wait: std::time::Duration,
    ) -> BoxFuture<'_, Result<bool, String>> {
        Box::pin(async move {
            tokio::time::sleep(self.handoff_time).await;
            self.log.push(Action::HandOff(blob));
            Ok(!self.uncollected)
        })
    }
}

/// A service manager with these units: actions are recorded and change the unit's
/// states as systemd would; an unknown unit fails as systemd's does.
#[derive(Debug, Default)]
pub struct FakeServices {
    /// Where actions are recorded.
    pub log: Arc<ActionLog>,
    /// The units.
    pub units: Mutex<Vec<GuestlinkService>>,
}

impl FakeServices {
    /// A running, enabled service of this name.
    pub fn running(name: &str) -> GuestlinkService {
        GuestlinkService {
            unit: name.into(),
            description: format!("The {name} unit"),
            load_state: "loaded".into(),
            active_state: "active".into(),
            sub_state: "running".into(),
            unit_file_state: Some("enabled".into()),
            main_pid: Some(4242),
        }
    }

    fn with_unit<T>(
        &self,
        unit: &str,
        f: impl FnOnce(&mut GuestlinkService) -> T,
    ) -> Result<T, String> {
        let mut units = self.units.lock().unwrap_or_else(|e| e.into_inner());
        match units.iter_mut().find(|u| u.unit == unit) {
            Some(u) => Ok(f(u)),
            None => Err(format!("Unit {unit} not found.")),
        }
    }
}

impl Services for FakeServices {
    fn list(&self) -> BoxFuture<'_, Result<Vec<GuestlinkService>, String>> {
        let mut all = self.units.lock().unwrap_or_else(|e| e.into_inner()).clone();
        all.sort_by(|a, b| a.unit.cmp(&b.unit));
        for u in &mut all {
            u.unit_file_state = None;
            u.main_pid = None;
        }
        Box::pin(async move { Ok(all) })
    }
    fn status(&self, unit: String) -> BoxFuture<'_, Result<GuestlinkService, String>> {
        Box::pin(async move { self.with_unit(&unit, |u| u.clone()) })
    }
    fn control(
        &self,
        unit: String,
        action: GuestlinkServiceAction,
    ) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            self.with_unit(&unit, |u| {
                use GuestlinkServiceAction as A;
                let (active, sub, pid) = match action {
                    A::Start | A::Restart => ("active", "running", Some(4243)),
                    A::Stop => ("inactive", "dead", None),
                    A::Enable => {
                        u.unit_file_state = Some("enabled".into());
                        return;
                    }
                    A::Disable => {
                        u.unit_file_state = Some("disabled".into());
                        return;
                    }
                };
                u.active_state = active.into();
                u.sub_state = sub.into();
                u.main_pid = pid;
            })?;
            self.log.push(Action::Service(unit, action));
            Ok(())
        })
    }
}

/// Filesystems that record freezes, thaws and trims.
#[derive(Debug, Default)]
pub struct FakeFilesystems {
    /// Where actions are recorded.
    pub log: Arc<ActionLog>,
    /// The mounts, in mount order.
    pub mounts: Vec<FreezableMount>,
    /// Freezing this mount fails with this errno.
    pub fail_freeze: Option<(PathBuf, i32)>,
    /// What is frozen now.
    pub frozen: Mutex<Vec<PathBuf>>,
    /// Mount points on each disk (by kernel name), for growing.
    pub disk_mounts: Vec<(String, PathBuf)>,
}

impl FakeFilesystems {
    /// Fake mounts at these directories.
    pub fn with_mounts(log: Arc<ActionLog>, dirs: &[&str]) -> FakeFilesystems {
        FakeFilesystems {
            log,
            mounts: dirs
                .iter()
                .map(|d| FreezableMount {
                    dir: d.into(),
                    fstype: "ext4".into(),
                })
                .collect(),
            ..Default::default()
        }
    }
}

impl Filesystems for FakeFilesystems {
    fn mounts(&self) -> io::Result<Vec<FreezableMount>> {
        Ok(self.mounts.clone())
    }
    fn freeze(&self, dir: &Path) -> io::Result<()> {
        if let Some((d, errno)) = &self.fail_freeze {
            if d == dir {
                return Err(io::Error::from_raw_os_error(*errno));
            }
        }
        self.log.push(Action::Freeze(dir.into()));
        self.frozen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(dir.into());
        Ok(())
    }
    fn thaw(&self, dir: &Path) -> io::Result<bool> {
        let mut frozen = self.frozen.lock().unwrap_or_else(|e| e.into_inner());
        let was = frozen
            .iter()
            .position(|d| d == dir)
            .map(|i| frozen.remove(i));
        self.log.push(Action::Thaw(dir.into()));
        Ok(was.is_some())
    }
    fn trim(&self, dir: &Path, minimum: u64) -> Result<u64, TrimError> {
        self.log.push(Action::Trim(dir.into(), minimum));
        Ok(4096)
    }
    fn grow(&self, path: &Path) -> Result<GuestlinkGrown, String> {
        self.log.push(Action::Grow(path.into()));
        if !self.disk_mounts.iter().any(|(_, m)| m == path) {
            return Err(format!("'{}' is not on a disk", path.display()));
        }
        Ok(GuestlinkGrown {
            mountpoint: path.display().to_string(),
            device: "/dev/vdb1".into(),
            fstype: "ext4".into(),
            old_size: 64 << 20,
            new_size: 128 << 20,
            partition_grown: true,
            filesystem_grown: true,
        })
    }
    fn mounts_on_disk(&self, disk: &str) -> Vec<PathBuf> {
        let on = self.disk_mounts.iter().filter(|(d, _)| d == disk);
        on.map(|(_, m)| m.clone()).collect()
    }
}

/// Inventory with fixed answers.
#[derive(Debug, Default, Clone)]
pub struct FakeInventory {
    /// `filesystems()`.
    pub filesystems: Vec<GuestFilesystemInfo>,
    /// `disks()`.
    pub disks: Vec<GuestDiskInfo>,
    /// `disk_stats()`.
    pub disk_stats: Vec<GuestDiskStatsInfo>,
    /// `interfaces()`.
    pub interfaces: Vec<GuestNetworkInterface>,
    /// `routes()`.
    pub routes: Vec<GuestNetworkRoute>,
    /// `cpu_stats()`.
    pub cpu_stats: Vec<GuestCpuStats>,
    /// `load()`.
    pub load: GuestLoadAverage,
    /// `vcpus()`.
    pub vcpus: Vec<GuestLogicalProcessor>,
    /// `memory_blocks()`.
    pub memory_blocks: Vec<GuestMemoryBlock>,
    /// `memory_block_size()`; `None` fails as a kernel without memory hotplug.
    pub memory_block_size: Option<u64>,
    /// `memory_stats()`; `None` fails as unsupported.
    pub memory_stats: Option<GuestlinkMemoryStats>,
    /// `filesystems_now()` and `disks_now()`: what they answer without waiting, or
    /// `None` (the default) when they cannot.
    pub now: Option<(Vec<GuestFilesystemInfo>, Vec<GuestDiskInfo>)>,
    /// `devices()` (Windows' SetupAPI list); `None` fails as unsupported.
    pub devices: Option<Vec<guestlink_vocabulary::types::GuestDeviceInfo>>,
}

impl Inventory for FakeInventory {
    fn filesystems(&self) -> io::Result<Vec<GuestFilesystemInfo>> {
        Ok(self.filesystems.clone())
    }
    fn filesystems_now(&self) -> Option<io::Result<Vec<GuestFilesystemInfo>>> {
        self.now.as_ref().map(|(f, _)| Ok(f.clone()))
    }
    fn disks(&self) -> io::Result<Vec<GuestDiskInfo>> {
        Ok(self.disks.clone())
    }
    fn disks_now(&self) -> Option<io::Result<Vec<GuestDiskInfo>>> {
        self.now.as_ref().map(|(_, d)| Ok(d.clone()))
    }
    fn disk_stats(&self) -> io::Result<Vec<GuestDiskStatsInfo>> {
        Ok(self.disk_stats.clone())
    }
    fn interfaces(&self) -> io::Result<Vec<GuestNetworkInterface>> {
        Ok(self.interfaces.clone())
    }
    fn routes(&self) -> io::Result<Vec<GuestNetworkRoute>> {
        Ok(self.routes.clone())
    }
    fn cpu_stats(&self) -> io::Result<Vec<GuestCpuStats>> {
        Ok(self.cpu_stats.clone())
    }
    fn load(&self) -> io::Result<GuestLoadAverage> {
        Ok(self.load.clone())
    }
    fn vcpus(&self) -> io::Result<Vec<GuestLogicalProcessor>> {
        Ok(self.vcpus.clone())
    }
    fn memory_blocks(&self) -> io::Result<Vec<GuestMemoryBlock>> {
        Ok(self.memory_blocks.clone())
    }
    fn memory_stats(&self) -> io::Result<GuestlinkMemoryStats> {
        self.memory_stats
            .clone()
            .ok_or_else(|| io::ErrorKind::Unsupported.into())
    }
    fn devices(&self) -> io::Result<Vec<guestlink_vocabulary::types::GuestDeviceInfo>> {
        self.devices
            .clone()
            .ok_or_else(|| io::ErrorKind::Unsupported.into())
    }
    fn memory_block_size(&self) -> io::Result<u64> {
        self.memory_block_size
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))
    }
}

/// A user database of named accounts.
#[derive(Debug, Default)]
pub struct FakeAccounts(pub HashMap<String, Account>);

impl Accounts for FakeAccounts {
    fn lookup(&self, name: &str) -> Result<Account, String> {
        self.0
            .get(name)
            .cloned()
            .ok_or_else(|| "No such user".to_string())
    }
}

/// The fake back ends of a test platform, kept so the test can look at them.
#[derive(Debug, Default)]
pub struct Fakes {
    /// Actions of the machine and the filesystems.
    pub log: Arc<ActionLog>,
    /// Machine fake.
    pub machine: Arc<FakeMachine>,
    /// Filesystem fake.
    pub filesystems: Arc<FakeFilesystems>,
}

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
    /// Returned by `seat_users`.
    pub seat_users: Vec<String>,
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
    fn seat_users(&self) -> Vec<String> {
        self.seat_users.clone()
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

/// A platform made of the given fake system and a fixed clock; the rest is fake and
/// empty.
pub fn fake_platform(system: FakeSystem, now_micros: i64) -> Platform {
    Platform {
        system: Arc::new(system),
        clock: Arc::new(FixedClock(now_micros)),
        inventory: Arc::new(FakeInventory::default()),
        filesystems: Arc::new(FakeFilesystems::default()),
        machine: Arc::new(FakeMachine::default()),
        accounts: Arc::new(FakeAccounts::default()),
        session_manager: Arc::new(FakeSessionManager::default()),
        processes: Arc::new(FakeProcesses::default()),
        services: Arc::new(FakeServices::default()),
    }
}

/// Starts live programs as the agent's own user on pipes (never a terminal), and
/// records what it was asked to start.
#[derive(Debug, Default)]
pub struct FakeProcesses {
    /// The commands asked for, in order.
    pub started: Mutex<Vec<crate::live::LiveCommand>>,
}

impl crate::live::Processes for FakeProcesses {
    fn spawn(&self, cmd: &crate::live::LiveCommand) -> Result<crate::live::LiveChild, String> {
        self.started
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(cmd.clone());
        let program = cmd.program.clone().unwrap_or_else(|| "/bin/sh".into());
        let mut child = tokio::process::Command::new(&program)
            .args(&cmd.args)
            .envs(cmd.env.iter().map(|(k, v)| (k, v)))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .process_group(0)
            .spawn()
            .map_err(|e| e.to_string())?;
        let pid = child.id().map_or(0, |p| p as i32);
        let input = child
            .stdin
            .take()
            .map(|w| Box::new(w) as crate::live::BoxWrite);
        let output = child
            .stdout
            .take()
            .map(|r| Box::new(r) as crate::live::BoxRead)
            .ok_or("no stdout")?;
        let errors = child
            .stderr
            .take()
            .map(|r| Box::new(r) as crate::live::BoxRead);
        Ok(crate::live::LiveChild {
            pid,
            input,
            output,
            errors,
            terminal: None,
            exit: Box::pin(async move { child.wait().await }),
        })
    }
}

/// Runs command `name` with `args` (a JSON object) as a QGA host would: the result as
/// JSON, or the error's text.
pub async fn call_as_host(
    agent: &crate::Agent,
    name: &str,
    args: serde_json::Value,
) -> Result<serde_json::Value, String> {
    let serde_json::Value::Object(args) = args else {
        return Err("arguments must be an object".into());
    };
    let call = crate::CallContext::host(crate::Protocol::Qga, "test");
    agent
        .execute(Call::new(&call, name, args))
        .await
        .map(|r| r.to_json())
        .map_err(|e| e.to_string())
}
