//! Serving on Windows, as qemu-ga for Windows does: one QGA channel, the vioserial
//! port `\\.\Global\org.qemu.guest_agent.0` by default or a COM port
//! (`-m isa-serial -p COM1`); `-d` runs as the service the service control manager
//! started (`-s install` registers it), logging to the Event Log; without `-d` the
//! agent runs in the console until Ctrl+C, for debugging.
//!
//! - `port.rs`: the port as an async stream (overlapped I/O on two threads).
//! - `service.rs`: install, uninstall, and the service's life under the SCM.
//! - `eventlog.rs`: log lines to the Application log.

mod eventlog;
mod port;
mod service;

use std::sync::Arc;
use std::time::Duration;

use anyhow::anyhow;
use guestlink_core::{Agent, CallContext, Policy, Protocol};
use tokio::sync::watch;

use crate::channel::{parse_channel, parse_method, ChannelSpec, Method};
use crate::cli::Cli;
use crate::config::Config;
use crate::frontend::qga;
use crate::logging;

/// The vioserial port of the QEMU Guest Agent channel.
pub const QGA_DEFAULT_PATH: &str = r"\\.\Global\org.qemu.guest_agent.0";
/// Wait between attempts to open the port with `-r` (qemu-ga waits 5 s).
const RETRY_DELAY: Duration = Duration::from_secs(5);

/// Self-update is not offered on Windows (its commands are Linux-only).
pub fn update_config(_config: &Config) -> guestlink_core::update::UpdateConfig {
    guestlink_core::update::UpdateConfig::default()
}

/// `-s install|uninstall`.
pub fn service_command(cmd: &str, _cli: &Cli) -> anyhow::Result<()> {
    match cmd {
        "install" => service::install(),
        "uninstall" => service::uninstall(),
        "vss-install" | "vss-uninstall" => Err(anyhow!(
            "guestlinkd has no VSS provider to register: freezing uses the system's own provider"
        )),
        other => Err(anyhow!("unknown service command '{other}'")),
    }
}

/// Serves the QGA channel: as a service with `-d`, else in the console.
pub fn serve(_cli: Cli, config: Config, policy: Policy) -> anyhow::Result<()> {
    // One QGA channel: `--channel qga=METHOD:PATH`, else -m/-p as qemu-ga has them.
    let method = match &config.channels[..] {
        [] => parse_method(
            config.method.as_deref().unwrap_or("virtio-serial"),
            config.path.as_deref(),
            QGA_DEFAULT_PATH,
        )?,
        [one] => parse_channel(one)?.method,
        _ => return Err(anyhow!("guestlinkd for Windows serves one channel")),
    };
    let (path, kind) = match method {
        Method::VirtioSerial(p) => (p, port::Kind::VirtioSerial),
        Method::IsaSerial(p) => (p, port::Kind::Serial),
        _ => {
            let m = config.method.clone().unwrap_or_default();
            return Err(anyhow!("unsupported channel method/type: {m}"));
        }
    };
    let channel = Channel {
        path,
        kind,
        retry: config.retry_path,
    };
    if config.daemon {
        // The service logs to the Event Log unless -l names a file.
        service::run(move |stop| {
            logging::init_to(
                config.logfile.as_deref(),
                config.verbose,
                Some(eventlog::sink()),
            )?;
            run(&config, policy, channel, stop)
        })
    } else {
        logging::init(config.logfile.as_deref(), config.verbose)?;
        let (tx, stop) = watch::channel(false);
        let console = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(tokio::signal::ctrl_c()).ok()?;
            tx.send(true).ok()
        });
        let result = run(&config, policy, channel, stop);
        drop(console);
        result
    }
}

/// The port to serve.
#[derive(Debug, Clone)]
struct Channel {
    path: String,
    kind: port::Kind,
    retry: bool,
}

/// Builds the agent and serves `channel` until `stop` turns true.
fn run(
    config: &Config,
    policy: Policy,
    channel: Channel,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let agent = crate::new_agent(config, policy, Vec::new(), guestlink_platform::windows())?;
    let probe = agent.clone();
    logging::pause_while(move || probe.state().frozen());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(async {
        tokio::select! {
            r = serve_port(agent.clone(), channel) => r,
            _ = stop.wait_for(|s| *s) => {
                tracing::info!("stopping");
                Ok(())
            }
        }
    });
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}

/// Opens the port (again and again with `-r`) and serves QGA on it.
async fn serve_port(agent: Arc<Agent>, channel: Channel) -> anyhow::Result<()> {
    let spec = ChannelSpec {
        protocol: Protocol::Qga,
        method: match channel.kind {
            port::Kind::VirtioSerial => Method::VirtioSerial(channel.path.clone()),
            port::Kind::Serial => Method::IsaSerial(channel.path.clone()),
        },
    };
    let call = CallContext::host(Protocol::Qga, spec.name());
    let mut warned = false;
    loop {
        match port::open(&channel.path, channel.kind) {
            Ok(stream) => {
                tracing::info!(channel = %channel.path, "channel opened");
                warned = false;
                match qga::serve(&agent, &call, stream, None, true).await {
                    Ok(()) => tracing::info!(channel = %channel.path, "channel closed"),
                    Err(e) if channel.retry => {
                        tracing::warn!(channel = %channel.path, "channel failed: {e}; reopening")
                    }
                    Err(e) => return Err(anyhow!("channel '{}' failed: {e}", channel.path)),
                }
            }
            Err(e) if channel.retry => {
                if !warned {
                    tracing::warn!(channel = %channel.path, "cannot open channel: {e}; retrying");
                    warned = true;
                }
            }
            Err(e) => return Err(anyhow!("error opening channel '{}': {e}", channel.path)),
        }
        tokio::time::sleep(RETRY_DELAY).await;
    }
}
