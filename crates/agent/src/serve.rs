//! Running the channels: open each transport, hand connections to the protocol's front
//! end, retry devices with `-r`, and stop on SIGTERM/SIGINT (but never while
//! filesystems are frozen). Beside them run the guest-side socket and the session
//! source, and the agent announces its start and its end as events.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context as _};
use guestlink_core::{Agent, Audience, CallContext, EventRecord, Protocol};
use guestlink_vocabulary::events::{AgentStartedEvent, AgentStoppingEvent};
use guestlink_vocabulary::types::{AgentStarted, Empty};
use tokio::signal::unix::{signal, SignalKind};
use tokio::task::JoinSet;

use crate::channel::{ChannelSpec, Method};
use guestlink_core::limits::LISTEN_CLIENTS;

use crate::frontend::limits::{Budget, Charge};
use crate::frontend::vdagent::{self, Desktop};
use crate::frontend::{guest_socket, ovirt, qga};
use crate::sessions::{self, SessionSource};
use crate::transport::device::{open_isa_serial, open_virtio_serial};
use crate::transport::listen::{BoxStream, Listener};

/// How long subscribers get to receive `AGENT_STOPPING` before the agent exits.
const STOP_GRACE: Duration = Duration::from_millis(200);

/// Wait between attempts to (re)open a device with `-r`.
pub const RETRY_DELAY: Duration = Duration::from_secs(1);

/// Serves one connection; on a device (`device`), for the device's whole life. A
/// client of a listening socket is charged for its partial messages (`charge`).
async fn serve_stream(
    agent: &Agent,
    spec: &ChannelSpec,
    stream: BoxStream,
    desktop: &Desktop,
    device: bool,
    charge: Option<Charge>,
) -> std::io::Result<()> {
    let call = CallContext::host(spec.protocol, spec.name());
    match spec.protocol {
        Protocol::Qga => qga::serve(agent, &call, stream, charge, device).await,
        Protocol::Vdagent => vdagent::serve(agent, &call, stream, desktop, device).await,
        Protocol::Ovirt => ovirt::serve(agent, &call, stream, &desktop.ovirt).await,
        other => unreachable!("channel {other} was filtered out before serving"),
    }
}

async fn serve_device(
    agent: Arc<Agent>,
    spec: ChannelSpec,
    retry: bool,
    desktop: Arc<Desktop>,
) -> anyhow::Result<()> {
    let (path, isa) = match &spec.method {
        Method::VirtioSerial(p) => (p.clone(), false),
        Method::IsaSerial(p) => (p.clone(), true),
        _ => unreachable!("not a device"),
    };
    let mut warned = false;
    loop {
        let opened = if isa {
            open_isa_serial(Path::new(&path))
        } else {
            // vdagent greets every new host, and QGA ends the departed host's streams,
            // so both must see one leave.
            open_virtio_serial(
                Path::new(&path),
                matches!(spec.protocol, Protocol::Vdagent | Protocol::Qga),
            )
        };
        match opened {
            Ok(stream) => {
                tracing::info!(channel = %path, protocol = %spec.protocol, "channel opened");
                warned = false;
                match serve_stream(&agent, &spec, Box::new(stream), &desktop, true, None).await {
                    Ok(()) => tracing::info!(channel = %path, "channel closed"),
                    Err(e) if retry => {
                        tracing::warn!(channel = %path, "channel failed: {e}; reopening")
                    }
                    Err(e) => return Err(anyhow!("channel '{path}' failed: {e}")),
                }
            }
            Err(e) if retry => {
                if !warned {
                    tracing::warn!(channel = %path, "cannot open channel: {}; retrying", open_error(&e));
                    warned = true;
                }
            }
            Err(e) => {
                return Err(anyhow!(
                    "error opening channel '{path}': {}",
                    open_error(&e)
                ))
            }
        }
        tokio::time::sleep(RETRY_DELAY).await;
    }
}

/// Why a port did not open, with the usual cause of EBUSY: a virtio port has one
/// opener, and the distribution's qemu-ga or spice-vdagentd may hold it.
fn open_error(e: &std::io::Error) -> String {
    if e.raw_os_error() == Some(libc::EBUSY) {
        format!("{e}: another program holds the port (qemu-ga or spice-vdagentd? stop and mask its units)")
    } else {
        e.to_string()
    }
}

/// Accepts the host's clients of a listening channel: at most [`LISTEN_CLIENTS`] at
/// once, each charged to the shared `budget` for what it has not finished sending.
async fn serve_listener(
    agent: Arc<Agent>,
    spec: ChannelSpec,
    listener: Listener,
    desktop: Arc<Desktop>,
    budget: Arc<Budget>,
) -> anyhow::Result<()> {
    let spec = Arc::new(spec);
    let slots = Arc::new(tokio::sync::Semaphore::new(LISTEN_CLIENTS));
    loop {
        let stream = listener
            .accept()
            .await
            .with_context(|| format!("accepting on '{}'", spec.name()))?;
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            let why = format!("too many clients (limit listen-clients: {LISTEN_CLIENTS})");
            tracing::warn!(channel = %spec.name(), "client refused: {why}");
            if spec.protocol == Protocol::Qga {
                qga::refuse(stream, why);
            }
            continue;
        };
        let (agent, spec, desktop) = (agent.clone(), spec.clone(), desktop.clone());
        let charge = budget.charge(None);
        tokio::spawn(async move {
            if let Err(e) = serve_stream(&agent, &spec, stream, &desktop, false, Some(charge)).await
            {
                tracing::debug!(channel = %spec.name(), "connection ended: {e}");
            }
            drop(slot);
        });
    }
}

async fn serve_channel(
    agent: Arc<Agent>,
    spec: ChannelSpec,
    retry: bool,
    desktop: Arc<Desktop>,
    budget: Arc<Budget>,
) -> anyhow::Result<()> {
    match spec.method.clone() {
        Method::VirtioSerial(_) | Method::IsaSerial(_) => {
            serve_device(agent, spec, retry, desktop).await
        }
        Method::UnixListen(path) => {
            let l = Listener::unix(Path::new(&path))
                .with_context(|| format!("error opening channel '{path}'"))?;
            serve_listener(agent, spec, l, desktop, budget).await
        }
        Method::VsockListen { cid, port } => {
            let l = Listener::vsock(cid, port)
                .with_context(|| format!("error opening channel '{}'", spec.name()))?;
            serve_listener(agent, spec, l, desktop, budget).await
        }
        Method::Activated => {
            let fd = crate::activation::take_channel()?
                .ok_or_else(|| anyhow!("no socket passed by systemd"))?;
            let l = Listener::from_passed(fd)?;
            serve_listener(agent, spec, l, desktop, budget).await
        }
    }
}

/// Builds the policy again from the configuration (SIGHUP).
pub type Reload = Box<dyn Fn() -> anyhow::Result<guestlink_core::Policy> + Send>;

/// What runs beside the channels.
pub struct Extras {
    /// Builds the policy again from the configuration (SIGHUP).
    pub reload: Reload,
    /// Thaw automatically this long after a freeze.
    pub freeze_timeout: Option<Duration>,
    /// The guest-side socket, if any.
    pub guest_socket: Option<PathBuf>,
    /// Where user sessions come from.
    pub sessions: SessionSource,
    /// The pointer for vdagent channels.
    pub desktop: Arc<Desktop>,
    /// What to do about hot-added CPUs and memory and resized disks; nothing when
    /// `None`.
    pub hotplug: Option<guestlink_core::hotplug::Options>,
}

/// Binds the guest socket; a socket that cannot be bound is logged, not fatal (the
/// host channels matter more).
fn start_guest_socket(agent: &Arc<Agent>, path: PathBuf, budget: Arc<Budget>) -> Option<PathBuf> {
    // Socket activation: systemd made the socket and keeps it; it is served as is
    // and not removed at exit.
    let (listener, ours) = match crate::activation::take_guest() {
        Some(fd) => (guest_socket::from_passed(fd), false),
        None => (guest_socket::bind(&path), true),
    };
    match listener {
        Ok(listener) => {
            tracing::info!(socket = %path.display(), activated = !ours, "guest socket listening");
            let (agent, p) = (agent.clone(), path.clone());
            tokio::spawn(async move {
                if let Err(e) = guest_socket::serve(agent, p.clone(), listener, budget).await {
                    tracing::error!(socket = %p.display(), "guest socket failed: {e}");
                }
            });
            ours.then_some(path)
        }
        Err(e) => {
            tracing::warn!(socket = %path.display(), "guest socket not available: {e}");
            None
        }
    }
}

/// Serves `channels` until a termination signal (exit status 0) or a channel fails
/// for good (an error).
pub async fn run(
    agent: Arc<Agent>,
    channels: Vec<ChannelSpec>,
    retry: bool,
    extras: Extras,
) -> anyhow::Result<()> {
    // What partly received messages may hold, on every listening socket together.
    let budget = Arc::new(Budget::default());
    let bound = extras
        .guest_socket
        .and_then(|p| start_guest_socket(&agent, p, budget.clone()));
    tokio::spawn(sessions::run(agent.clone(), extras.sessions));
    #[cfg(target_os = "linux")]
    if let Some(opts) = extras.hotplug {
        tokio::spawn(crate::hotplug::run(agent.clone(), opts));
    }
    agent.publish(
        EventRecord::new::<AgentStartedEvent>(&AgentStarted {
            version: env!("CARGO_PKG_VERSION").to_string(),
            pid: i64::from(std::process::id()),
        }),
        Audience::Everyone,
    );
    let result = serve_until_signal(
        agent.clone(),
        channels,
        retry,
        extras.freeze_timeout,
        extras.desktop,
        extras.reload,
        budget,
    )
    .await;
    let told = agent.events().publish(
        EventRecord::new::<AgentStoppingEvent>(&Empty {}),
        Audience::Everyone,
    );
    // Give subscribers' writers a moment to pass the news on (none: stop at once).
    if told > 0 {
        tokio::time::sleep(STOP_GRACE).await;
    }
    if let Some(p) = bound {
        let _ = std::fs::remove_file(p);
    }
    result
}

async fn serve_until_signal(
    agent: Arc<Agent>,
    channels: Vec<ChannelSpec>,
    retry: bool,
    freeze_timeout: Option<Duration>,
    desktop: Arc<Desktop>,
    reload: Reload,
    budget: Arc<Budget>,
) -> anyhow::Result<()> {
    if let Some(timeout) = freeze_timeout {
        tokio::spawn(guestlink_core::handlers::freeze::run_watchdog(
            agent.clone(),
            timeout,
        ));
    }
    let mut tasks = JoinSet::new();
    for spec in channels {
        tasks.spawn(serve_channel(
            agent.clone(),
            spec,
            retry,
            desktop.clone(),
            budget.clone(),
        ));
    }
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let notifier = Arc::new(crate::notify::Notifier::from_env());
    notifier.send("READY=1");
    crate::update::confirm(agent.state().statedir());
    if let Some(every) = notifier.watchdog_interval() {
        let n = notifier.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                n.send("WATCHDOG=1");
            }
        });
    }
    loop {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
            _ = hup.recv() => {
                // Connections stay: only the gate's rules change.
                notifier.reloading();
                let result = reload();
                notifier.send("READY=1");
                match result {
                    Ok(policy) => {
                        tracing::info!(rules = policy.rules().len(), "SIGHUP: policy reloaded");
                        agent.set_policy(policy);
                    }
                    Err(e) => tracing::error!("SIGHUP: configuration not reloaded, the previous policy stays: {e:#}"),
                }
                continue;
            }
            _ = agent.restart_requested() => {
                // The update's reply goes out first.
                tokio::time::sleep(Duration::from_millis(300)).await;
                crate::update::restart(&agent);
                continue;
            }
            Some(done) = tasks.join_next() => {
                match done {
                    Ok(Err(e)) => return Err(e),
                    Ok(Ok(())) => continue,
                    Err(e) => return Err(anyhow!("channel task failed: {e}")),
                }
            }
        }
        if agent.state().frozen() {
            tracing::warn!("refusing to exit while filesystems are frozen; thaw them first");
            continue;
        }
        tracing::info!("terminating on signal");
        notifier.send("STOPPING=1");
        return Ok(());
    }
}
