//! Machine-changing actions on Linux: power (poweroff/halt/reboot, suspend), the
//! clock (settimeofday, hwclock), CPU and memory hotplug, and `chpasswd`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use guestlink_core::error::strerror;
use guestlink_core::platform::{Machine, ShutdownMode, SuspendMode};
use guestlink_vocabulary::types::GuestMemoryBlockResponseType;

use crate::linux::cpu_memory;

/// This machine.
#[derive(Debug, Default, Clone, Copy)]
pub struct LinuxMachine;

fn executable(p: &Path) -> bool {
    nix::unistd::access(p, nix::unistd::AccessFlags::X_OK).is_ok()
}

/// Finds `name` in PATH, then in the sbin directories.
pub(crate) fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(name))
        .find(|p| executable(p));
    found
}

fn run(mut cmd: Command, what: &str) -> Result<(), String> {
    let status = cmd
        .stdin(Stdio::null())
        .status()
        .map_err(|e| format!("failed to {what}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("child process has failed to {what}"))
    }
}

/// Broadcasts `message` to logged-in users with wall(1), when there is one.
fn wall(message: &str) {
    let Some(wall) = find_program("wall") else {
        return;
    };
    let child = Command::new(wall)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    if let Ok(mut child) = child {
        if let Some(mut stdin) = child.stdin.take() {
            let _ = writeln!(stdin, "{message}");
        }
        let _ = child.wait();
    }
}

/// systemctl, when systemd is the running init (`sd_booted(3)`).
fn systemd_systemctl() -> Option<PathBuf> {
    if Path::new("/run/systemd/system").is_dir() {
        find_program("systemctl")
    } else {
        None
    }
}

/// The program that takes the machine down now: `/sbin/poweroff` (halt, reboot) as
/// qemu-ga runs it; `systemctl poweroff` under systemd where that link is missing
/// (systemd-sysv not installed); `shutdown -h -P +0` otherwise.
fn shutdown_command(
    mode: ShutdownMode,
    executable: impl Fn(&Path) -> bool,
    systemctl: Option<PathBuf>,
) -> Command {
    let (tool, flag, verb) = match mode {
        ShutdownMode::Powerdown => ("/sbin/poweroff", "-P", "poweroff"),
        ShutdownMode::Halt => ("/sbin/halt", "-H", "halt"),
        ShutdownMode::Reboot => ("/sbin/reboot", "-r", "reboot"),
    };
    if executable(Path::new(tool)) {
        Command::new(tool)
    } else if let Some(systemctl) = systemctl {
        let mut c = Command::new(systemctl);
        c.arg(verb);
        c
    } else {
        let mut c = Command::new("/sbin/shutdown");
        c.args(["-h", flag, "+0", "hypervisor initiated shutdown"]);
        c
    }
}

fn power_state_supports(word: &str) -> bool {
    std::fs::read_to_string("/sys/power/state")
        .is_ok_and(|s| s.split_whitespace().any(|w| w == word))
}

impl Machine for LinuxMachine {
    fn shutdown(&self, mode: ShutdownMode) -> Result<(), String> {
        // SAFETY: sync(2) has no preconditions.
        unsafe { libc::sync() };
        run(
            shutdown_command(mode, executable, systemd_systemctl()),
            "shutdown",
        )
    }

    fn suspend(&self, mode: SuspendMode) -> Result<(), String> {
        let (systemd_verb, pm_tool, state) = match mode {
            SuspendMode::Disk => ("hibernate", "pm-hibernate", "disk"),
            SuspendMode::Ram => ("suspend", "pm-suspend", "mem"),
            SuspendMode::Hybrid => ("hybrid-sleep", "pm-suspend-hybrid", "disk"),
        };
        if !power_state_supports(state) {
            return Err("the requested suspend mode is not supported by the guest".into());
        }
        if let Some(systemctl) = systemd_systemctl() {
            let mut c = Command::new(systemctl);
            c.arg(systemd_verb);
            return run(c, "suspend");
        }
        if let Some(pm) = find_program(pm_tool) {
            return run(Command::new(pm), "suspend");
        }
        if mode == SuspendMode::Hybrid {
            std::fs::write("/sys/power/disk", "suspend")
                .map_err(|e| format!("failed to select hybrid suspend: {e}"))?;
        }
        std::fs::write("/sys/power/state", state).map_err(|e| format!("suspend failed: {e}"))
    }

    fn set_clock(&self, secs: i64, micros: i64) -> Result<(), String> {
        let tv = libc::timeval {
            tv_sec: secs as libc::time_t,
            tv_usec: micros as libc::suseconds_t,
        };
        // SAFETY: settimeofday reads the timeval we pass; a null timezone is allowed.
        if unsafe { libc::settimeofday(&tv, std::ptr::null()) } != 0 {
            return Err(strerror(&std::io::Error::last_os_error()));
        }
        Ok(())
    }

    fn sync_rtc(&self, to_rtc: bool) -> Result<(), String> {
        let hwclock = find_program("hwclock").ok_or("hwclock not found")?;
        let mut c = Command::new(hwclock);
        c.arg(if to_rtc { "-w" } else { "-s" });
        run(
            c,
            if to_rtc {
                "set hardware clock to system time"
            } else {
                "set system time from hardware clock"
            },
        )
    }

    fn set_vcpu(&self, logical_id: i64, online: bool) -> Result<(), String> {
        cpu_memory::set_vcpu(logical_id, online)
    }

    fn set_memory_block(
        &self,
        n: u64,
        online: bool,
    ) -> (GuestMemoryBlockResponseType, Option<i64>) {
        cpu_memory::set_memory_block(n, online)
    }

    fn schedule_shutdown(
        &self,
        mode: ShutdownMode,
        minutes: u32,
        message: &str,
    ) -> Result<(), String> {
        let flag = match mode {
            ShutdownMode::Powerdown => "-P",
            ShutdownMode::Halt => "-H",
            ShutdownMode::Reboot => "-r",
        };
        // systemd's (or sysvinit's) shutdown schedules, broadcasts and can be cancelled
        // with `shutdown -c`.
        if Path::new("/run/systemd/system").is_dir() || Path::new("/run/initctl").exists() {
            if let Some(shutdown) = find_program("shutdown") {
                let mut c = Command::new(shutdown);
                c.args([flag, &format!("+{minutes}"), message]);
                return run(c, "shutdown");
            }
        }
        // Elsewhere (busybox init): tell users with wall, then wait here.
        wall(message);
        if minutes == 0 {
            return self.shutdown(mode);
        }
        std::thread::Builder::new()
            .name("shutdown-timer".into())
            .spawn(move || {
                std::thread::sleep(std::time::Duration::from_secs(u64::from(minutes) * 60));
                if let Err(e) = LinuxMachine.shutdown(mode) {
                    tracing::error!("scheduled shutdown failed: {e}");
                }
            })
            .map(|_| ())
            .map_err(|e| format!("failed to schedule the shutdown: {e}"))
    }

    fn set_password(&self, user: &str, password: &[u8], crypted: bool) -> Result<(), String> {
        let chpasswd = find_program("chpasswd").ok_or("cannot find 'passwd' program in PATH")?;
        let mut cmd = Command::new(chpasswd);
        if crypted {
            cmd.arg("-e");
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("failed to run chpasswd: {e}"))?;
        let mut line = Vec::with_capacity(user.len() + password.len() + 2);
        line.extend_from_slice(user.as_bytes());
        line.push(b':');
        line.extend_from_slice(password);
        line.push(b'\n');
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(&line);
        }
        match child.wait() {
            Ok(s) if s.success() => Ok(()),
            _ => Err("child process has failed to set user password".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(c: &Command) -> Vec<String> {
        std::iter::once(c.get_program())
            .chain(c.get_args())
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn shutdown_runs_the_sysv_link_then_systemctl_then_shutdown() {
        let systemctl = Some(PathBuf::from("/usr/bin/systemctl"));
        let c = shutdown_command(ShutdownMode::Reboot, |_| true, systemctl.clone());
        assert_eq!(argv(&c), ["/sbin/reboot"]);
        let c = shutdown_command(ShutdownMode::Powerdown, |_| false, systemctl.clone());
        assert_eq!(argv(&c), ["/usr/bin/systemctl", "poweroff"]);
        let c = shutdown_command(ShutdownMode::Halt, |_| false, systemctl);
        assert_eq!(argv(&c), ["/usr/bin/systemctl", "halt"]);
        let c = shutdown_command(ShutdownMode::Powerdown, |_| false, None);
        assert_eq!(
            argv(&c),
            [
                "/sbin/shutdown",
                "-h",
                "-P",
                "+0",
                "hypervisor initiated shutdown"
            ]
        );
    }
}
