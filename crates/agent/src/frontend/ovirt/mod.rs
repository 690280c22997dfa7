//! The oVirt guest agent front end (`ovirt-guest-agent.0`, or the legacy
//! `com.redhat.rhevm.vdsm`, which discovery prefers as the Linux agent did).
//!
//! It pushes what vdsm wants to know, on the Linux agent's timers: a heartbeat every
//! `--ovirt-heartbeat` seconds (5), the active user every 10 s (sent when it changes),
//! the number of CPUs every 60 s, applications, host name, OS and interfaces every
//! 120 s, disk usage every 300 s, and everything on `refresh`. Every figure comes from
//! a command of the shared vocabulary ([`reports`] shapes it), so what QGA reports and
//! what oVirt reports are the same. Session changes from logind become
//! `session-lock`, `-unlock`, `-logon` and `-logoff`, which the Linux agent never sent.
//!
//! API levels 0 to 3 are negotiated as vdsm does it: `refresh` with `apiVersion`, the
//! heartbeat's `apiVersion` (0 in the first, 3 after), `api-version`; a message above
//! the level is withheld, and so is a command above it. The commands that act on the
//! guest (lock, log off, shutdown, hibernate, lifecycle hooks, single sign-on) are in
//! [`actions`]; they run beside the timers, at most [`MAX_RUNNING`] at a time.

pub mod actions;
pub mod reports;

use guestlink_core::dispatch::Handler;
use std::io;
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt as _};
use guestlink_core::{Agent, CallContext, Connection, DispatchError, EventRecord};
use guestlink_proto_ovirt::{encode, Decoder, Message};
use guestlink_vocabulary::commands::{
    GuestGetFsinfo, GuestGetHostName, GuestGetOsinfo, GuestGetTimezone, GuestGetUsers,
    GuestGetVcpus, GuestNetworkGetInterfaces, GuestlinkGetApplications, GuestlinkGetMemoryStats,
};
use guestlink_vocabulary::events::{
    AgentStoppingEvent, SessionLockEvent, SessionNewEvent, SessionRemovedEvent, SessionUnlockEvent,
};
use guestlink_vocabulary::types::{Empty, GuestlinkApplicationsArgs};
use guestlink_vocabulary::Event;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::time::{interval, interval_at, Instant, MissedTickBehavior};

use self::reports::{clamp_api, min_api, Counters, MAX_API};

/// Bytes read at once.
const READ_CHUNK: usize = 16 << 10;

/// Host actions under way at once; more are refused.
pub const MAX_RUNNING: usize = 16;

/// What the front end reports, and how often.
#[derive(Debug, Clone)]
pub struct Options {
    /// Between heartbeats.
    pub heartbeat: Duration,
    /// Packages reported in `applications`.
    pub applications: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            heartbeat: Duration::from_secs(5),
            applications: DEFAULT_APPLICATIONS.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// Packages reported by default: the kernel, the agents and the SPICE guest drivers.
pub const DEFAULT_APPLICATIONS: &[&str] = &[
    "kernel",
    "linux-image-amd64",
    "guestlink",
    "qemu-guest-agent",
    "spice-vdagent",
    "xserver-xorg-video-qxl",
    "xorg-x11-drv-qxl",
];

/// The Linux agent's report intervals.
const USER_EVERY: Duration = Duration::from_secs(10);
const CPUS_EVERY: Duration = Duration::from_secs(60);
const APPS_EVERY: Duration = Duration::from_secs(120);
const DISKS_EVERY: Duration = Duration::from_secs(300);

/// One host connection's state.
struct Front<'a, W> {
    agent: &'a Agent,
    conn: &'a Connection,
    opts: &'a Options,
    out: W,
    /// The negotiated API level.
    api: u32,
    heartbeats: u64,
    counters: Option<Counters>,
    active_user: Option<String>,
    started: Instant,
}

/// Serves one host connection; on a device, for its whole life (a host that is not
/// there reads as nothing, and is waited for).
pub async fn serve<S: AsyncRead + AsyncWrite + Unpin + Send>(
    agent: &Agent,
    call: &CallContext,
    io: S,
    opts: &Options,
) -> io::Result<()> {
    let (conn, mut events) = agent.connect(call.clone());
    conn.events.add(&[
        SessionLockEvent::NAME,
        SessionUnlockEvent::NAME,
        SessionNewEvent::NAME,
        SessionRemovedEvent::NAME,
        AgentStoppingEvent::NAME,
    ]);
    let (mut rd, wr) = tokio::io::split(io);
    let mut front = Front {
        agent,
        conn: &conn,
        opts,
        out: wr,
        api: 0,
        heartbeats: 0,
        counters: None,
        active_user: None,
        started: Instant::now(),
    };
    let result = front.run(&mut rd, &mut events, call).await;
    agent.disconnect(&conn);
    result
}

fn ticker(every: Duration) -> tokio::time::Interval {
    let mut t = interval_at(Instant::now() + every, every);
    t.set_missed_tick_behavior(MissedTickBehavior::Delay);
    t
}

impl<'a, W: AsyncWrite + Unpin> Front<'a, W> {
    async fn run<R: AsyncRead + Unpin>(
        &mut self,
        rd: &mut R,
        events: &mut guestlink_core::Subscription,
        call: &CallContext,
    ) -> io::Result<()> {
        self.send(Message::new("session-startup")).await?;
        self.inventory(false).await?;
        let mut beat = interval(self.opts.heartbeat);
        beat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let (mut user, mut cpus, mut apps, mut disks) = (
            ticker(USER_EVERY),
            ticker(CPUS_EVERY),
            ticker(APPS_EVERY),
            ticker(DISKS_EVERY),
        );
        let mut decoder = Decoder::default();
        let mut buf = super::read_buffer::ReadBuffer::new(READ_CHUNK);
        let mut running = FuturesUnordered::new();
        let mut bad = super::noise::Noise::default();
        loop {
            tokio::select! {
                Some(done) = running.next(), if !running.is_empty() => {
                    if let Some(msg) = done {
                        self.send(msg).await?;
                    }
                }
                _ = beat.tick() => self.heartbeat().await?,
                _ = user.tick() => self.active_user(false).await?,
                _ = cpus.tick() => self.number_of_cpus().await?,
                _ = apps.tick() => {
                    self.applications().await?;
                    self.machine().await?;
                }
                _ = disks.tick() => self.disks().await?,
                event = events.next() => self.event(&event).await?,
                n = buf.read_from(rd) => {
                    let n = n?;
                    if n == 0 {
                        return Ok(());
                    }
                    decoder.feed(&buf[..n]);
                    while let Some(m) = decoder.next_message() {
                        match m {
                            Ok(m) => {
                                if let Some(action) = self.command(m, running.len()).await? {
                                    running.push(action);
                                }
                            }
                            Err(e) => {
                                if let Some(n) = bad.report() {
                                    tracing::warn!(channel = %call.channel.name, bad_input = n, "oVirt line refused: {e}");
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Writes `msg` if the negotiated level allows it.
    async fn send(&mut self, msg: Message) -> io::Result<()> {
        match min_api(&msg.name) {
            Some(level) if level <= self.api => {}
            Some(level) => {
                tracing::debug!(message = %msg.name, level, api = self.api, "withheld above the API level");
                return Ok(());
            }
            None => {
                tracing::error!(message = %msg.name, "not an oVirt message");
                return Ok(());
            }
        }
        let mut line = Vec::new();
        encode(&msg, &mut line);
        self.out.write_all(&line).await?;
        self.out.flush().await
    }

    async fn heartbeat(&mut self) -> io::Result<()> {
        // The first heartbeat says 0, the later ones our maximum: vdsm then offers
        // the common level with `api-version`.
        let level = if self.heartbeats == 0 { 0 } else { MAX_API };
        self.heartbeats += 1;
        let msg = match ask::<GuestlinkGetMemoryStats>(self.agent, self.conn, Empty {}).await {
            Some(m) => {
                let now = self.started.elapsed().as_secs_f64();
                let (msg, counters) = reports::heartbeat(&m, self.counters, now, level);
                self.counters = Some(counters);
                msg
            }
            None => reports::bare_heartbeat(level),
        };
        self.send(msg).await
    }

    /// Everything, as on `refresh` (`force`: the active user even if unchanged).
    async fn inventory(&mut self, force: bool) -> io::Result<()> {
        self.active_user(force).await?;
        self.applications().await?;
        self.machine().await?;
        self.disks().await?;
        self.number_of_cpus().await
    }

    /// Host name, FQDN, OS and its details, time zone, interfaces.
    async fn machine(&mut self) -> io::Result<()> {
        if let Some(h) = ask::<GuestGetHostName>(self.agent, self.conn, Empty {}).await {
            self.send(Message::new("host-name").arg("name", h.host_name.clone()))
                .await?;
            self.send(Message::new("fqdn").arg("fqdn", h.host_name))
                .await?;
        }
        if let Some(os) = ask::<GuestGetOsinfo>(self.agent, self.conn, Empty {}).await {
            self.send(reports::os_version(&os)).await?;
            self.send(reports::os_info(&os)).await?;
        }
        if let Some(tz) = ask::<GuestGetTimezone>(self.agent, self.conn, Empty {}).await {
            self.send(reports::timezone(&tz)).await?;
        }
        if let Some(list) = ask::<GuestNetworkGetInterfaces>(self.agent, self.conn, Empty {}).await
        {
            self.send(reports::network_interfaces(&list)).await?;
        }
        Ok(())
    }

    async fn applications(&mut self) -> io::Result<()> {
        let args = GuestlinkApplicationsArgs {
            names: self.opts.applications.clone(),
        };
        let list = ask::<GuestlinkGetApplications>(self.agent, self.conn, args)
            .await
            .unwrap_or_default();
        self.send(Message::new("applications").arg("applications", list))
            .await
    }

    async fn disks(&mut self) -> io::Result<()> {
        if let Some(list) = ask::<GuestGetFsinfo>(self.agent, self.conn, Empty {}).await {
            self.send(reports::disks_usage(&list)).await?;
        }
        Ok(())
    }

    async fn number_of_cpus(&mut self) -> io::Result<()> {
        let count = match ask::<GuestGetVcpus>(self.agent, self.conn, Empty {}).await {
            Some(v) => v.iter().filter(|c| c.online).count() as i64,
            None => -1,
        };
        self.send(Message::new("number-of-cpus").arg("count", count))
            .await
    }

    /// `active-user`, when it changed (or `force`).
    async fn active_user(&mut self, force: bool) -> io::Result<()> {
        let users = ask::<GuestGetUsers>(self.agent, self.conn, Empty {})
            .await
            .unwrap_or_default();
        let name = reports::active_user_name(&users);
        if force || self.active_user.as_deref() != Some(name.as_str()) {
            self.active_user = Some(name.clone());
            self.send(Message::new("active-user").arg("name", name))
                .await?;
        }
        Ok(())
    }

    async fn event(&mut self, event: &EventRecord) -> io::Result<()> {
        match event.name {
            n if n == SessionLockEvent::NAME => self.send(Message::new("session-lock")).await,
            n if n == SessionUnlockEvent::NAME => self.send(Message::new("session-unlock")).await,
            n if n == SessionNewEvent::NAME => {
                self.active_user(false).await?;
                self.send(Message::new("session-logon")).await
            }
            n if n == SessionRemovedEvent::NAME => {
                self.send(Message::new("session-logoff")).await?;
                self.active_user(false).await
            }
            n if n == AgentStoppingEvent::NAME => self.send(Message::new("session-shutdown")).await,
            _ => Ok(()),
        }
    }

    /// One command from the host; an action it starts is given back to be polled.
    async fn command(
        &mut self,
        m: Message,
        running: usize,
    ) -> io::Result<Option<actions::Running<'a>>> {
        tracing::info!(command = %m.name, "oVirt command");
        if let Some(level) = reports::command_min_api(&m.name) {
            if level > self.api {
                tracing::info!(command = %m.name, level, api = self.api, "command above the API level ignored");
                return Ok(None);
            }
        }
        match actions::start(self.agent, self.conn, &m) {
            Ok(action) if running >= MAX_RUNNING => {
                drop(action);
                tracing::warn!(command = %m.name, "refused: {MAX_RUNNING} host actions already running");
                self.refused(&m).await.map(|()| None)
            }
            Ok(action) => Ok(Some(action)),
            Err(actions::Refusal::Invalid(why)) => {
                tracing::warn!(command = %m.name, "refused: {why}");
                self.refused(&m).await.map(|()| None)
            }
            Err(actions::Refusal::Unknown) => self.reply(m).await.map(|()| None),
        }
    }

    /// A refused action still owes vdsm its `completion`, so it is not kept waiting.
    async fn refused(&mut self, m: &Message) -> io::Result<()> {
        match actions::completion(m) {
            Some(done) => self.send(done).await,
            None => Ok(()),
        }
    }

    /// The commands answered at once.
    async fn reply(&mut self, m: Message) -> io::Result<()> {
        match m.name.as_str() {
            "refresh" => {
                match m.args.get("apiVersion") {
                    Some(v) => self.api = clamp_api(v),
                    // An old vdsm: no versioning.
                    None if self.api > 0 => {
                        tracing::info!("refresh without apiVersion: API versioning off");
                        self.api = 0;
                    }
                    None => {}
                }
                self.send(Message::new("session-startup")).await?;
                self.inventory(true).await
            }
            "api-version" => {
                let level = m.args.get("apiVersion").map_or(0, clamp_api);
                if level != self.api {
                    self.api = level;
                    self.inventory(true).await?;
                }
                Ok(())
            }
            "echo" => {
                let mut reply = Message::new("echo");
                reply.args = m.args;
                self.send(reply).await
            }
            "set-number-of-cpus" => self.number_of_cpus().await,
            other => {
                tracing::warn!(command = other, "unknown external command");
                Ok(())
            }
        }
    }
}

/// Runs a vocabulary command for a report; a failure is logged and the report skipped.
async fn ask<C: Handler>(agent: &Agent, conn: &Connection, args: C::Args) -> Option<C::Returns> {
    match agent.call::<C>(conn, args, None).await {
        Ok(v) => Some(v),
        Err(e) => {
            log_failure(C::NAME, &e);
            None
        }
    }
}

fn log_failure(name: &str, e: &DispatchError) {
    tracing::debug!(command = name, "report skipped: {e}");
}

#[cfg(test)]
mod tests;
