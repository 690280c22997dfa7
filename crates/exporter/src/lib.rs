//! Prometheus metrics for every VM whose agent socket is in a directory (libvirt's
//! per-domain channel directory by default): the library behind `guestlink exporter`.
//!
//! The scanner (`discover.rs`) looks at the directory every `--scan-interval`; each
//! socket found gets a poller task (`poller.rs`) holding one connection to its agent,
//! and a socket that disappears has its task stopped and its VM reported down until
//! `--forget-after` has passed. The figures live in one registry that the HTTP side
//! (`http.rs`) renders (`metrics.rs`) on each scrape; scrapes never wait for an agent.
//!
//! QEMU serves one client per chardev socket, and libvirt holds each domain's agent
//! channel: a domain given guestlinkd's exporter channel (`org.guestlink.exporter.0`,
//! README) is watched there, others on `org.qemu.guest_agent.0`.

mod discover;
mod http;
mod metrics;
mod poller;
pub mod procfs;
#[cfg(feature = "sim")]
pub mod sim;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;

use metrics::VmMetrics;
use poller::{Registry, Settings};

/// Options of `guestlink exporter`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The directory of agent sockets (searched one level deep).
    #[arg(long, default_value = discover::LIBVIRT_CHANNEL_DIR)]
    pub dir: PathBuf,
    /// A channel's socket name (repeatable), the preferred first: a VM is watched on the
    /// first it has. By default guestlinkd's exporter channel, then the agent's own.
    #[arg(
        long = "channel",
        value_name = "NAME",
        default_values_t = [discover::EXPORTER_CHANNEL.to_string(), discover::QGA_CHANNEL.to_string()]
    )]
    pub channels: Vec<String>,
    /// Where to serve the metrics (HTTP, /metrics).
    #[arg(long, default_value = "127.0.0.1:9778", value_name = "ADDR:PORT")]
    pub listen: String,
    /// Between two guest-pings of a VM (e.g. 15s, 500ms, 1m).
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub ping_interval: Duration,
    /// Between two readings of memory, filesystems, users and load.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub stats_interval: Duration,
    /// Between two looks at the directory.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub scan_interval: Duration,
    /// How long a VM whose socket went away stays reported, down.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub forget_after: Duration,
}

/// Parses `500ms`, `15s`, `2m`, `1h`, or a number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a duration (e.g. 500ms, 15s, 2m)"))?;
    let scale = match unit {
        "ms" => 0.001,
        "" | "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return Err(format!("'{unit}' is not a unit: use ms, s, m or h")),
    };
    let d = Duration::try_from_secs_f64(n * scale).map_err(|e| e.to_string())?;
    if d.is_zero() {
        return Err("a duration must be more than zero".into());
    }
    Ok(d)
}

/// Runs the exporter until SIGINT or SIGTERM.
pub async fn run(args: &Args, timeout: Duration) -> anyhow::Result<ExitCode> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("GUESTLINK_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let registry: Registry = Arc::new(Mutex::new(Default::default()));
    tracing::info!(
        dir = %args.dir.display(),
        listen = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
        "serving metrics"
    );
    let server = tokio::spawn(http::serve(listener, registry.clone()));
    let settings = Arc::new(Settings {
        ping_interval: args.ping_interval,
        stats_interval: args.stats_interval,
        timeout,
    });
    let pattern = discover::Pattern {
        channels: args.channels.clone(),
    };
    let mut pollers: HashMap<PathBuf, tokio::task::JoinHandle<()>> = HashMap::new();
    let mut gone: HashMap<PathBuf, Instant> = HashMap::new();
    let mut scan = tokio::time::interval(args.scan_interval);
    scan.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut warned_missing = false;
    loop {
        tokio::select! {
            _ = scan.tick() => {}
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
        }
        if server.is_finished() {
            anyhow::bail!("the metrics server stopped");
        }
        if !args.dir.is_dir() && !warned_missing {
            tracing::warn!(dir = %args.dir.display(), "the socket directory does not exist (yet)");
        }
        warned_missing = !args.dir.is_dir();
        let dir = args.dir.clone();
        let pattern = pattern.clone();
        let found = tokio::task::spawn_blocking(move || discover::scan(&dir, &pattern))
            .await
            .unwrap_or_default();
        reconcile(&found, &mut pollers, &mut gone, &registry, &settings);
        let now = Instant::now();
        gone.retain(|path, since| {
            let keep = now.duration_since(*since) < args.forget_after;
            if !keep {
                registry
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(path);
            }
            keep
        });
    }
    for (_, task) in pollers {
        task.abort();
    }
    server.abort();
    Ok(ExitCode::SUCCESS)
}

/// Starts pollers for new sockets and stops those of sockets that went away.
fn reconcile(
    found: &std::collections::BTreeMap<PathBuf, String>,
    pollers: &mut HashMap<PathBuf, tokio::task::JoinHandle<()>>,
    gone: &mut HashMap<PathBuf, Instant>,
    registry: &Registry,
    settings: &Arc<Settings>,
) {
    let mut map = registry.lock().unwrap_or_else(|e| e.into_inner());
    let before = pollers.len();
    pollers.retain(|path, task| {
        if found.contains_key(path) {
            return true;
        }
        tracing::debug!(path = %path.display(), "agent socket went away");
        task.abort();
        if let Some(vm) = map.get_mut(path) {
            vm.mark_down();
            vm.gone = true;
        }
        gone.insert(path.clone(), Instant::now());
        false
    });
    let kept = pollers.len();
    let mut added = 0usize;
    for (path, name) in found {
        if pollers.contains_key(path) {
            continue;
        }
        tracing::debug!(path = %path.display(), vm = %name, "agent socket found");
        gone.remove(path);
        let vm = map
            .entry(path.clone())
            .or_insert_with(|| VmMetrics::new(name.clone()));
        vm.gone = false;
        vm.vm = name.clone();
        let task = tokio::spawn(poller::watch(
            path.clone(),
            registry.clone(),
            settings.clone(),
        ));
        pollers.insert(path.clone(), task);
        added += 1;
    }
    let removed = before - kept;
    if added > 0 || removed > 0 {
        tracing::info!(
            added,
            removed,
            watching = pollers.len(),
            "agent sockets changed"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("-1s").is_err());
    }
}
