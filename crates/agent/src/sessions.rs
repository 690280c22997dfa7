//! Where guestlinkd learns about user sessions: logind over D-Bus, a JSON file (for
//! tests and systems without logind), or nowhere. Each source feeds snapshots to the
//! core, which turns changes into `SESSION_*` events.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use guestlink_core::state::sessions::LoginSession;
use guestlink_core::Agent;
use serde::Deserialize;

/// Wait before watching logind again after the bus failed.
const LOGIND_RETRY: Duration = Duration::from_secs(10);

/// How often the file source looks at its file.
const FILE_POLL: Duration = Duration::from_millis(200);

/// A session source, as `--sessions` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionSource {
    /// systemd-logind on the system bus.
    Logind,
    /// A JSON file: `[{"id": "2", "uid": 1000, "user": "alice", "seat": "seat0",
    /// "active": true, "locked": false}, ...]`.
    File(PathBuf),
    /// No sessions.
    None,
}

impl SessionSource {
    /// Parses `logind`, `none` or `file:PATH`; absent means logind when systemd and the
    /// system bus run.
    pub fn parse(s: Option<&str>) -> Result<SessionSource, String> {
        let logind_runs = || {
            Path::new("/run/systemd/seats").is_dir()
                && Path::new("/run/dbus/system_bus_socket").exists()
        };
        match s {
            None if logind_runs() => Ok(SessionSource::Logind),
            None | Some("none") => Ok(SessionSource::None),
            Some("logind") => Ok(SessionSource::Logind),
            Some(other) => match other.strip_prefix("file:") {
                Some(p) if !p.is_empty() => Ok(SessionSource::File(p.into())),
                _ => Err(format!(
                    "unknown session source '{other}' (expected logind, none or file:PATH)"
                )),
            },
        }
    }
}

#[derive(Debug, Deserialize)]
struct FileSession {
    id: String,
    uid: u32,
    #[serde(default)]
    user: String,
    #[serde(default)]
    seat: Option<String>,
    #[serde(default)]
    active: bool,
    #[serde(default)]
    locked: bool,
}

fn read_file(path: &Path) -> Result<Vec<LoginSession>, String> {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.to_string()),
    };
    let list: Vec<FileSession> = serde_json::from_slice(&text).map_err(|e| e.to_string())?;
    Ok(list
        .into_iter()
        .map(|s| LoginSession {
            id: s.id,
            uid: s.uid,
            user: s.user,
            seat: s.seat,
            active: s.active,
            locked: s.locked,
        })
        .collect())
}

async fn watch_file(agent: Arc<Agent>, path: PathBuf) {
    let mut last: Option<Vec<LoginSession>> = None;
    loop {
        match read_file(&path) {
            Ok(now) if last.as_ref() != Some(&now) => {
                agent.update_sessions(now.clone());
                last = Some(now);
            }
            Ok(_) => {}
            // A file caught half-written is read again on the next round.
            Err(e) => tracing::debug!(file = %path.display(), "cannot read sessions: {e}"),
        }
        tokio::time::sleep(FILE_POLL).await;
    }
}

/// Runs the source for the life of the agent.
pub async fn run(agent: Arc<Agent>, source: SessionSource) {
    match source {
        SessionSource::None => {}
        SessionSource::File(path) => watch_file(agent, path).await,
        SessionSource::Logind => loop {
            let feed = agent.clone();
            let result =
                guestlink_platform::logind::watch(move |snapshot| feed.update_sessions(snapshot))
                    .await;
            match result {
                Ok(()) => tracing::warn!("logind went away; watching again"),
                Err(e) => tracing::warn!("cannot watch logind: {e}; trying again"),
            }
            tokio::time::sleep(LOGIND_RETRY).await;
        },
    }
}
