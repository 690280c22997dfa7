//! Serving on Linux: the channels found or given, systemd's sockets, daemonizing with
//! a locked pid file, and the single-threaded runtime that runs every channel.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, Context as _};
use guestlink_core::{Policy, Protocol};

use crate::channel::{
    discover, parse_channel, parse_method, ChannelSpec, Method, VIRTIO_PORTS_DIR,
};
use crate::cli::Cli;
use crate::config::Config;
use crate::{activation, desktop, frontend, logging, policy, serve, sessions};

/// Default QGA port.
pub const QGA_DEFAULT_PATH: &str = "/dev/virtio-ports/org.qemu.guest_agent.0";

/// Where and how self-updates happen (re-executing, or restarting the systemd unit).
pub fn update_config(config: &Config) -> guestlink_core::update::UpdateConfig {
    crate::update::config(config)
}

/// `-s`: the service commands exist on Windows only.
pub fn service_command(cmd: &str, _cli: &Cli) -> anyhow::Result<()> {
    Err(anyhow!(
        "service command '{cmd}' is only available on Windows"
    ))
}

/// Opens the log, daemonizes if asked, builds the agent and serves every channel
/// until a signal stops it.
pub fn serve(cli: Cli, config: Config, policy: Policy) -> anyhow::Result<()> {
    let channels = resolve_channels(&config)?;
    logging::init(config.logfile.as_deref(), config.verbose)
        .with_context(|| "cannot open log file".to_string())?;
    if config.daemon {
        daemonize(&config.pidfile)?;
    }
    let users = resolve_users(config.session_users.as_deref().unwrap_or_default())?;
    let agent = crate::new_agent(&config, policy, users, guestlink_platform::linux())?;
    let probe = agent.clone();
    logging::pause_while(move || probe.state().frozen());
    if agent.state().frozen() {
        tracing::warn!("filesystems were left frozen by a previous instance: only the safe commands are enabled until guest-fsfreeze-thaw");
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let reload_cli = cli.clone();
    let extras = serve::Extras {
        reload: Box::new(move || {
            let config = Config::load(&reload_cli)?;
            Ok(policy::build(&config)?)
        }),
        freeze_timeout: config.fsfreeze_timeout.map(std::time::Duration::from_secs),
        guest_socket: match config.guest_socket.as_deref() {
            Some("none") | Some("") => None,
            Some(p) => Some(p.into()),
            None => Some(frontend::guest_socket::DEFAULT_PATH.into()),
        },
        sessions: sessions::SessionSource::parse(config.sessions.as_deref())
            .map_err(|e| anyhow!(e))?,
        hotplug: hotplug_options(&config)?,
        desktop: Arc::new(desktop::open(
            config.pointer.as_deref(),
            &channels,
            frontend::ovirt::Options {
                heartbeat: std::time::Duration::from_secs(
                    config.ovirt_heartbeat.unwrap_or(5).max(1),
                ),
                applications: config.ovirt_applications.clone().unwrap_or_else(|| {
                    frontend::ovirt::DEFAULT_APPLICATIONS
                        .iter()
                        .map(|s| s.to_string())
                        .collect()
                }),
            },
        )?),
    };
    let result = runtime.block_on(serve::run(agent, channels, config.retry_path, extras));
    // A file system call stuck on a dead mount holds a blocking thread; it must not
    // hold the exit too.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    result
}

/// `--hotplug` and `--grow-on-resize`: device events are read on Linux only.
fn hotplug_options(config: &Config) -> anyhow::Result<Option<guestlink_core::hotplug::Options>> {
    #[cfg(target_os = "linux")]
    return crate::hotplug::options(config.hotplug.as_deref(), config.grow_on_resize)
        .map_err(|e| anyhow!(e));
    #[cfg(not(target_os = "linux"))]
    {
        let _ = config;
        Ok(None)
    }
}

/// The uids of `--session-user` names (a number is a uid).
fn resolve_users(names: &[String]) -> anyhow::Result<Vec<u32>> {
    names
        .iter()
        .map(|n| match n.parse::<u32>() {
            Ok(uid) => Ok(uid),
            Err(_) => guestlink_core::os::users::by_name(n)
                .ok()
                .flatten()
                .map(|u| u.uid)
                .ok_or_else(|| anyhow!("--session-user: no user '{n}'")),
        })
        .collect()
}

/// The channels to serve: `--channel` entries, plus `-m`/`-p` as the QGA channel; with
/// neither, a socket from systemd, else the known ports present, else the default QGA
/// port (which may appear later with `-r`).
fn resolve_channels(config: &Config) -> anyhow::Result<Vec<ChannelSpec>> {
    let mut channels = Vec::new();
    for spec in &config.channels {
        let c = parse_channel(spec)?;
        if !frontend::has_front_end(c.protocol) {
            return Err(anyhow!(
                "the {} front end is not available in this version",
                c.protocol
            ));
        }
        channels.push(c);
    }
    if config.method.is_some() || config.path.is_some() {
        let method = config.method.as_deref().unwrap_or("virtio-serial");
        channels.push(ChannelSpec {
            protocol: Protocol::Qga,
            method: parse_method(method, config.path.as_deref(), QGA_DEFAULT_PATH)?,
        });
    }
    if !channels.is_empty() {
        return Ok(channels);
    }
    if activation::has_channel() {
        return Ok(vec![ChannelSpec {
            protocol: Protocol::Qga,
            method: Method::Activated,
        }]);
    }
    let found = discover(Path::new(VIRTIO_PORTS_DIR));
    if found.is_empty() {
        return Ok(vec![ChannelSpec {
            protocol: Protocol::Qga,
            method: Method::VirtioSerial(QGA_DEFAULT_PATH.into()),
        }]);
    }
    let mut served = Vec::new();
    for c in found {
        if frontend::has_front_end(c.protocol) {
            served.push(c);
        } else {
            eprintln!(
                "guestlinkd: port {} ({}) skipped: no front end for this protocol yet",
                c.name(),
                c.protocol
            );
        }
    }
    Ok(served)
}

fn daemonize(pidfile: &Path) -> anyhow::Result<()> {
    use std::os::fd::AsRawFd;
    let open = || {
        std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(pidfile)
            .with_context(|| format!("cannot open pid file {}", pidfile.display()))
    };
    let locked = |file: &std::fs::File, how| {
        // SAFETY: the descriptor is open for the duration of the call.
        (unsafe { libc::lockf(file.as_raw_fd(), how, 0) } != 0).then(|| {
            anyhow!(
                "pid file {} is locked: is another agent running?",
                pidfile.display()
            )
        })
    };
    // Checked before detaching too, so that whoever started us sees the refusal (the
    // lock itself is not inherited, so the detached process takes it again).
    if let Some(e) = locked(&open()?, libc::F_TEST) {
        return Err(e);
    }
    nix::unistd::daemon(false, false).context("cannot daemonize")?;
    let file = open()?;
    if let Some(e) = locked(&file, libc::F_TLOCK) {
        return Err(e);
    }
    file.set_len(0)?;
    (&file).write_all(format!("{}\n", std::process::id()).as_bytes())?;
    // The lock lives as long as the process.
    std::mem::forget(file);
    Ok(())
}
