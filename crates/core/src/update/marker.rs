//! `<statedir>/guestlinkd.update.json`: the update in flight and the last one's outcome. The old
//! agent writes it before restarting (`pending`), the new agent confirms it once it
//! serves (`confirmed`), or the guard rolls back (`rolled-back`, with the reason).
//! Each read-modify-write holds `<statedir>/guestlinkd.update.lock` (flock), so a confirmation and
//! a rollback at the deadline cannot both happen.

use std::io;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

/// The state of an update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    /// `pending`, `confirmed` or `rolled-back`.
    pub state: String,
    /// `-V` of the old executable.
    pub old_version: String,
    /// `-V` of the new one.
    pub new_version: String,
    /// The executable's path.
    pub exe: PathBuf,
    /// The old executable, kept until the new one is confirmed.
    pub backup: PathBuf,
    /// `systemd` or `exec`.
    pub restart: String,
    /// The systemd unit, with `systemd`.
    pub unit: Option<String>,
    /// The agent's arguments (a rollback without systemd starts the old one with them).
    pub argv: Vec<String>,
    /// The agent's pid when it restarted.
    pub pid: u32,
    /// Seconds the new agent has to confirm.
    pub trial_seconds: u64,
    /// Why it was rolled back.
    pub reason: Option<String>,
}

impl Marker {
    /// As JSON (by hand: a derived serializer costs the agent's size budget more).
    pub fn to_json(&self) -> Value {
        json!({
            "state": self.state,
            "old-version": self.old_version,
            "new-version": self.new_version,
            "exe": self.exe.to_string_lossy(),
            "backup": self.backup.to_string_lossy(),
            "restart": self.restart,
            "unit": self.unit,
            "argv": self.argv,
            "pid": self.pid,
            "trial-seconds": self.trial_seconds,
            "reason": self.reason,
        })
    }

    /// From JSON; `None` when a field is missing or of the wrong type.
    pub fn from_json(v: &Value) -> Option<Marker> {
        let text = |k: &str| v.get(k)?.as_str().map(str::to_owned);
        let opt = |k: &str| match v.get(k) {
            Some(Value::Null) | None => Some(None),
            Some(Value::String(s)) => Some(Some(s.clone())),
            Some(_) => None,
        };
        Some(Marker {
            state: text("state")?,
            old_version: text("old-version")?,
            new_version: text("new-version")?,
            exe: text("exe")?.into(),
            backup: text("backup")?.into(),
            restart: text("restart")?,
            unit: opt("unit")?,
            argv: v
                .get("argv")?
                .as_array()?
                .iter()
                .map(|a| a.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()?,
            pid: u32::try_from(v.get("pid")?.as_u64()?).ok()?,
            trial_seconds: v.get("trial-seconds")?.as_u64()?,
            reason: opt("reason")?,
        })
    }
}

/// The marker's path.
pub fn path(statedir: &Path) -> PathBuf {
    statedir.join("guestlinkd.update.json")
}

/// The marker, when there is one that parses.
pub fn read(statedir: &Path) -> Option<Marker> {
    let text = std::fs::read(path(statedir)).ok()?;
    Marker::from_json(&serde_json::from_slice(&text).ok()?)
}

/// Runs `f` on the marker under the lock; writes what it returns (atomically).
pub fn update<T>(
    statedir: &Path,
    f: impl FnOnce(Option<Marker>) -> (Option<Marker>, T),
) -> io::Result<T> {
    std::fs::create_dir_all(statedir)?;
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(statedir.join("guestlinkd.update.lock"))?;
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: `lock` is an open file for the duration of the call.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    let (next, out) = f(read(statedir));
    if let Some(m) = next {
        let tmp = statedir.join("guestlinkd.update.json.tmp");
        std::fs::write(
            &tmp,
            serde_json::to_vec_pretty(&m.to_json()).map_err(io::Error::other)?,
        )?;
        std::fs::rename(&tmp, path(statedir))?;
    }
    drop(lock);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_under_the_lock_and_read_back() {
        let dir = std::env::temp_dir().join(format!("guestlink-marker-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(read(&dir), None);
        let m = Marker {
            state: "pending".into(),
            old_version: "a".into(),
            new_version: "b".into(),
            exe: "/usr/sbin/guestlinkd".into(),
            backup: "/usr/sbin/guestlinkd.old".into(),
            restart: "exec".into(),
            unit: None,
            argv: vec!["guestlinkd".into()],
            pid: 1,
            trial_seconds: 30,
            reason: None,
        };
        update(&dir, |old| (Some(m.clone()), old.is_none())).unwrap();
        let confirmed = update(&dir, |old| {
            let mut m = old.unwrap();
            m.state = "confirmed".into();
            (Some(m), true)
        })
        .unwrap();
        assert!(confirmed);
        assert_eq!(read(&dir).unwrap().state, "confirmed");
        let text = std::fs::read_to_string(path(&dir)).unwrap();
        assert!(text.contains("\"new-version\": \"b\""), "{text}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
