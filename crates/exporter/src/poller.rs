//! One VM's connection: connect, learn what the agent can answer, then ping and read
//! its figures at the configured intervals. With guestlinkd the poller also subscribes
//! to session and freeze events, so logins and freezes show without waiting for the
//! next poll, and an agent that says it is stopping is reported down at once.
//!
//! A connection that fails (no answer within the timeout, closed, garbage) marks the
//! VM down and is made again after a pause that grows to the ping interval.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use guestlink_client::{Client, ClientError, Endpoint};
use serde_json::Value;
use tokio::time::MissedTickBehavior;

use super::metrics::{AgentInfo, Filesystem, Memory, VmMetrics};

/// Every VM's figures, by socket path.
pub type Registry = Arc<Mutex<BTreeMap<PathBuf, VmMetrics>>>;

/// How often and how patiently to ask.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Between two `guest-ping`s.
    pub ping_interval: Duration,
    /// Between two readings of memory, filesystems, users and load.
    pub stats_interval: Duration,
    /// For each reply.
    pub timeout: Duration,
}

/// The events a guestlinkd connection subscribes to.
const EVENTS: &[&str] = &[
    "AGENT_STOPPING",
    "SESSION_NEW",
    "SESSION_REMOVED",
    "FSFREEZE",
    "FSTHAW",
];

/// Bytes of read buffer per connection: replies here are small, and there are many
/// connections.
const READ_BUFFER: usize = 16 << 10;

/// The longest reply taken from a guest. Guests are not trusted: hundreds of them
/// sending the client's usual 96 MiB at once would exhaust the host.
const MAX_REPLY: usize = 4 << 20;

/// Filesystems kept per VM (the rest are dropped, so a guest cannot flood the series).
pub const MAX_FILESYSTEMS: usize = 256;

/// Longest label value taken from a guest (mount points, types, versions), in bytes.
pub const MAX_LABEL: usize = 256;

/// Session events read the users again at most this often; more within the window
/// are folded into one reading at its end.
const USERS_REFRESH: Duration = Duration::from_secs(1);

/// A guest's string cut to [`MAX_LABEL`] bytes on a character boundary.
fn bounded(s: &str) -> String {
    let mut end = s.len().min(MAX_LABEL);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// The commands of interest the agent has and allows.
#[derive(Debug, Default, Clone, Copy)]
struct Caps {
    memory_stats: bool,
    memory_blocks: bool,
    fsinfo: bool,
    users: bool,
    load: bool,
    freeze_status: bool,
    events: bool,
}

impl Caps {
    fn from_info(info: &Value) -> Caps {
        let enabled = |name: &str| {
            info.get("supported_commands")
                .and_then(Value::as_array)
                .is_some_and(|cmds| {
                    cmds.iter().any(|c| {
                        c.get("name").and_then(Value::as_str) == Some(name)
                            && c.get("enabled").and_then(Value::as_bool) != Some(false)
                    })
                })
        };
        Caps {
            memory_stats: enabled("__org.guestlink_get-memory-stats"),
            memory_blocks: enabled("guest-get-memory-blocks")
                && enabled("guest-get-memory-block-info"),
            fsinfo: enabled("guest-get-fsinfo"),
            users: enabled("guest-get-users"),
            load: enabled("guest-get-load"),
            freeze_status: enabled("guest-fsfreeze-status"),
            events: enabled("__org.guestlink_events-subscribe"),
        }
    }
}

/// Changes one VM's entry, if it is still known.
fn update(registry: &Registry, path: &Path, f: impl FnOnce(&mut VmMetrics)) {
    let mut map = registry.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(vm) = map.get_mut(path) {
        f(vm);
    }
}

fn now_epoch() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// A fraction of `period` fixed per path, so that hundreds of VMs connected at the
/// same moment do not all poll at the same moment.
fn phase(path: &Path, period: Duration) -> Duration {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    path.hash(&mut h);
    let millis = period.as_millis().max(1) as u64;
    Duration::from_millis(h.finish() % millis)
}

/// Watches one VM until the task is aborted.
pub async fn watch(path: PathBuf, registry: Registry, settings: Arc<Settings>) {
    let mut pause = Duration::from_millis(250);
    loop {
        let started = Instant::now();
        let err = session(&path, &registry, &settings).await;
        tracing::debug!(path = %path.display(), "agent connection ended: {err}");
        update(&registry, &path, |vm| {
            vm.mark_down();
            vm.failures += 1;
        });
        // A connection that served for a while is retried soon; one that keeps
        // failing is retried at most every ping interval.
        if started.elapsed() > settings.ping_interval {
            pause = Duration::from_millis(250);
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(settings.ping_interval.max(Duration::from_millis(250)));
    }
}

/// One connection, until it fails.
async fn session(path: &Path, registry: &Registry, settings: &Settings) -> ClientError {
    match serve(path, registry, settings).await {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

/// What a connection ends with: only errors.
enum Never {}

async fn serve(
    path: &Path,
    registry: &Registry,
    settings: &Settings,
) -> Result<Never, ClientError> {
    let endpoint = Endpoint::Unix(path.to_path_buf());
    let stream = tokio::time::timeout(settings.timeout, endpoint.open())
        .await
        .map_err(|_| ClientError::Timeout(settings.timeout))?
        .map_err(|source| ClientError::Connect {
            path: endpoint.to_string(),
            source,
        })?;
    let mut client = Client::over_with_buffer(stream, settings.timeout, READ_BUFFER).await?;
    client.set_max_reply(MAX_REPLY);
    let info = client.execute("guest-info", None).await?;
    let caps = Caps::from_info(&info);
    let agent = AgentInfo {
        kind: if caps.events { "guestlinkd" } else { "qemu-ga" },
        version: bounded(info.get("version").and_then(Value::as_str).unwrap_or("")),
    };
    update(registry, path, |vm| {
        vm.connects += 1;
        vm.agent = Some(agent);
    });
    // An agent that refuses the subscription (its policy) is polled like qemu-ga.
    let events = caps.events && optional(client.subscribe(Some(EVENTS), None).await)?.is_some();
    ping(&mut client, path, registry).await?;
    stats(&mut client, caps, path, registry).await?;

    let start = tokio::time::Instant::now();
    let mut ping_tick = tokio::time::interval_at(
        start + phase(path, settings.ping_interval),
        settings.ping_interval,
    );
    let mut stats_tick = tokio::time::interval_at(
        start + phase(path, settings.stats_interval),
        settings.stats_interval,
    );
    ping_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    stats_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    // Users to read again (a session event came), and no sooner than this.
    let mut users_due: Option<tokio::time::Instant> = None;
    let mut users_next = tokio::time::Instant::now();
    loop {
        let refresh_at = users_due.unwrap_or(start);
        tokio::select! {
            _ = ping_tick.tick() => ping(&mut client, path, registry).await?,
            _ = stats_tick.tick() => stats(&mut client, caps, path, registry).await?,
            _ = tokio::time::sleep_until(refresh_at), if users_due.is_some() => {
                users_due = None;
                users_next = tokio::time::Instant::now() + USERS_REFRESH;
                let users = optional(users(&mut client).await)?;
                update(registry, path, |vm| vm.users = users);
            }
            event = client.next_event(), if events => {
                let event = event?;
                update(registry, path, |vm| vm.events += 1);
                match event.name.as_str() {
                    "AGENT_STOPPING" => return Err(ClientError::Closed),
                    "SESSION_NEW" | "SESSION_REMOVED" => {
                        users_due.get_or_insert(users_next.max(tokio::time::Instant::now()));
                    }
                    "FSFREEZE" => update(registry, path, |vm| vm.frozen = Some(true)),
                    "FSTHAW" => update(registry, path, |vm| vm.frozen = Some(false)),
                    _ => {}
                }
            }
        }
    }
}

async fn ping(client: &mut Client, path: &Path, registry: &Registry) -> Result<(), ClientError> {
    let t = Instant::now();
    client.execute("guest-ping", None).await?;
    let rtt = t.elapsed().as_secs_f64();
    update(registry, path, |vm| {
        vm.up = true;
        vm.ping_seconds = Some(rtt);
        vm.last_seen = Some(now_epoch());
    });
    Ok(())
}

/// An answer the agent may refuse (a command it lacks, or refuses while frozen):
/// `None` then, and only a lost connection is an error.
fn optional<T>(r: Result<T, ClientError>) -> Result<Option<T>, ClientError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(ClientError::Agent { .. }) => Ok(None),
        Err(ClientError::Protocol(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

fn u64_of(v: &Value, key: &str) -> Option<u64> {
    v.get(key).and_then(Value::as_u64)
}

async fn stats(
    client: &mut Client,
    caps: Caps,
    path: &Path,
    registry: &Registry,
) -> Result<(), ClientError> {
    let memory = if caps.memory_stats {
        optional(memory_stats(client).await)?.flatten()
    } else if caps.memory_blocks {
        optional(memory_blocks(client).await)?.flatten()
    } else {
        None
    };
    let filesystems = if caps.fsinfo {
        optional(filesystems(client).await)?
    } else {
        None
    };
    let users = if caps.users {
        optional(users(client).await)?
    } else {
        None
    };
    let load = if caps.load {
        optional(load(client).await)?.flatten()
    } else {
        None
    };
    let frozen = if caps.freeze_status {
        optional(client.execute("guest-fsfreeze-status", None).await)?
            .and_then(|v| v.as_str().map(|s| s == "frozen"))
    } else {
        None
    };
    update(registry, path, |vm| {
        vm.up = true;
        vm.last_seen = Some(now_epoch());
        vm.memory = memory;
        vm.filesystems = filesystems;
        vm.users = users;
        vm.load = load;
        vm.frozen = frozen;
    });
    Ok(())
}

async fn memory_stats(client: &mut Client) -> Result<Option<Memory>, ClientError> {
    let v = client
        .execute("__org.guestlink_get-memory-stats", None)
        .await?;
    let kib = |k: &str| u64_of(&v, k).map(|x| x.saturating_mul(1024));
    Ok(kib("total").map(|total| Memory {
        total,
        free: kib("free"),
        available: kib("available"),
    }))
}

async fn memory_blocks(client: &mut Client) -> Result<Option<Memory>, ClientError> {
    let info = client.execute("guest-get-memory-block-info", None).await?;
    let Some(size) = u64_of(&info, "size") else {
        return Ok(None);
    };
    let blocks = client.execute("guest-get-memory-blocks", None).await?;
    let online = blocks
        .as_array()
        .map(|b| {
            b.iter()
                .filter(|m| m.get("online").and_then(Value::as_bool) == Some(true))
                .count() as u64
        })
        .unwrap_or(0);
    Ok((online > 0).then(|| Memory {
        total: online.saturating_mul(size),
        free: None,
        available: None,
    }))
}

async fn filesystems(client: &mut Client) -> Result<Vec<Filesystem>, ClientError> {
    let v = client.execute("guest-get-fsinfo", None).await?;
    let mut out: Vec<Filesystem> = v
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| {
            Some(Filesystem {
                mountpoint: bounded(f.get("mountpoint")?.as_str()?),
                fstype: bounded(f.get("type")?.as_str()?),
                size: u64_of(f, "total-bytes")?,
                used: u64_of(f, "used-bytes")?,
            })
        })
        .collect();
    // A mountpoint once (bind mounts and stacked mounts repeat it).
    out.sort_by(|a, b| a.mountpoint.cmp(&b.mountpoint));
    out.dedup_by(|a, b| a.mountpoint == b.mountpoint);
    out.truncate(MAX_FILESYSTEMS);
    Ok(out)
}

async fn users(client: &mut Client) -> Result<u64, ClientError> {
    let v = client.execute("guest-get-users", None).await?;
    Ok(v.as_array().map(|a| a.len() as u64).unwrap_or(0))
}

async fn load(client: &mut Client) -> Result<Option<[f64; 3]>, ClientError> {
    let v = client.execute("guest-get-load", None).await?;
    let f = |k: &str| v.get(k).and_then(Value::as_f64);
    Ok(match (f("load1m"), f("load5m"), f("load15m")) {
        (Some(a), Some(b), Some(c)) => Some([a, b, c]),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn capabilities_come_from_enabled_commands() {
        let info = json!({"version": "7.2.0", "supported_commands": [
            {"name": "guest-get-fsinfo", "enabled": true},
            {"name": "guest-get-users", "enabled": false},
            {"name": "guest-get-memory-blocks", "enabled": true},
            {"name": "guest-get-memory-block-info", "enabled": true},
        ]});
        let c = Caps::from_info(&info);
        assert!(c.fsinfo && c.memory_blocks);
        assert!(!c.users && !c.events && !c.load && !c.memory_stats);
        assert!(!Caps::from_info(&json!({})).fsinfo);
    }

    #[test]
    fn guest_strings_are_bounded_on_character_boundaries() {
        assert_eq!(bounded("ext4"), "ext4");
        let long = "é".repeat(MAX_LABEL);
        let cut = bounded(&long);
        assert!(cut.len() <= MAX_LABEL && cut.chars().all(|c| c == 'é'));
        assert_eq!(cut.len(), MAX_LABEL);
        let odd = format!("x{long}");
        assert_eq!(bounded(&odd).len(), MAX_LABEL - 1);
    }

    #[test]
    fn phases_stay_inside_the_period() {
        let p = Duration::from_secs(15);
        for i in 0..100 {
            assert!(phase(Path::new(&format!("/vm{i}")), p) < p);
        }
        assert_eq!(phase(Path::new("/x"), Duration::ZERO), Duration::ZERO);
    }
}
