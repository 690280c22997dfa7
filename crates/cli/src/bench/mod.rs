//! `guestlink bench`: measures agents side by side in one run.
//!
//! With `--agent CMD` (repeatable) the benchmark starts each agent itself on a private
//! unix socket (`CMD -m unix-listen -p SOCK -t DIR`), so it knows the pid and can read
//! CPU time and memory from /proc; with `--socket` it measures an agent already
//! running (add `--pid` for the /proc figures). For two agents it prints the ratio of
//! the second to the first. The client's own CPU time is measured too, so the report
//! says how far the client itself could go (its ceiling).
//!
//! All agents are started before any is measured: idle memory is read before any work,
//! and the agent CPU time per information command comes from rounds that alternate
//! between the agents (the machine's drift weighs on each alike); the other figures
//! are taken one agent after the other.
//!
//! In an agent command, `{pty}` stands for a port with a host on it (a pty pair whose
//! host end the benchmark holds) and `{dir}` for the agent's scratch directory: the
//! idle figures of guestlinkd with every channel of its default configuration open
//! come from `guestlinkd --channel vdagent=virtio-serial:{pty} --channel
//! ovirt=virtio-serial:{pty}` (the guest socket is always open).

mod live;

use guestlink_exporter::procfs;

/// An agent's CPU time: the scheduler's nanosecond figure where there is one, else clock
/// ticks.
fn cpu(pid: u32) -> Option<f64> {
    procfs::cpu_seconds_fine(pid).or_else(|| procfs::cpu_seconds(pid))
}
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use guestlink_client::{Client, Endpoint};
use guestlink_vocabulary::commands as cmd;
use guestlink_vocabulary::types::{
    Empty, GuestExecArgs, GuestExecStatusArgs, GuestFileHandleArgs, GuestFileOpenArgs,
    GuestFileWriteArgs,
};
use sha2::{Digest, Sha256};

use crate::transfer::Transfer;

/// Benchmark settings.
#[derive(Debug, Clone)]
pub struct Options {
    /// Agent commands to start, in order.
    pub agents: Vec<String>,
    /// An agent already listening here.
    pub socket: Option<PathBuf>,
    /// Its pid, for CPU and memory figures.
    pub pid: Option<u32>,
    /// Ping round trips to time.
    pub pings: usize,
    /// Size of the file moved in each direction.
    pub file_bytes: usize,
    /// Print JSON.
    pub json: bool,
}

/// One agent's figures; `None` where a figure could not be taken.
#[derive(Debug, Default, Clone)]
struct Figures {
    startup_ms: Option<f64>,
    idle_rss_kib: Option<u64>,
    ping_per_s: f64,
    agent_cpu_us_per_ping: Option<f64>,
    /// The same with the agent and the client on one CPU (see [`pinned_ping_cpu`]).
    agent_cpu_us_per_ping_one_cpu: Option<f64>,
    client_cpu_us_per_ping: f64,
    info_median_us: Vec<(&'static str, f64)>,
    /// The agent's CPU time per call of each information command (`None`: the agent
    /// does not have it).
    info_cpu_us: Vec<(&'static str, Option<f64>)>,
    read_mib_s: Vec<(usize, Option<f64>)>,
    write_mib_s: Vec<(usize, Option<f64>)>,
    /// Raw bulk transfer, for agents that offer it.
    raw_read_mib_s: Vec<(usize, Option<f64>)>,
    raw_write_mib_s: Vec<(usize, Option<f64>)>,
    peak_rss_kib: Option<u64>,
    peak_after_writes_kib: Option<u64>,
    exec_ms: f64,
}

struct Started {
    child: Child,
    dir: PathBuf,
    /// Host ends of the ports given as `{pty}` (held open: a host is there).
    _ports: Vec<std::os::fd::OwnedFd>,
}

/// An agent command's words with `{pty}` replaced by the far end of a new pty pair
/// (a stand-in for a virtio-serial port with a host on it, whose near end is kept),
/// and `{dir}` by the agent's scratch directory.
fn expand(
    words: Vec<&str>,
    dir: &Path,
    ports: &mut Vec<std::os::fd::OwnedFd>,
) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    for w in words {
        let mut w = w.replace("{dir}", &dir.to_string_lossy());
        while w.contains("{pty}") {
            let pty = nix::pty::openpty(None, None)?;
            let path = std::fs::read_link(format!("/proc/self/fd/{}", pty.slave.as_raw_fd()))?;
            w = w.replacen("{pty}", &path.to_string_lossy(), 1);
            ports.push(pty.master);
        }
        out.push(w);
    }
    Ok(out)
}

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn start(command: &str, n: usize) -> anyhow::Result<(Started, Client, f64)> {
    let mut words = command.split_whitespace();
    let program = words
        .next()
        .ok_or_else(|| anyhow::anyhow!("empty agent command"))?;
    let dir = std::env::temp_dir().join(format!("guestlink-bench-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let sock = dir.join("sock");
    // The agent runs in its scratch directory: resolve a relative path first.
    let program = if program.contains('/') {
        std::fs::canonicalize(program)?
            .to_string_lossy()
            .into_owned()
    } else {
        program.to_string()
    };
    let mut ports = Vec::new();
    let words = expand(words.collect(), &dir, &mut ports)?;
    // From here: the harness's own setup (its ptys) is not the agent's startup.
    let t0 = Instant::now();
    let child = Command::new(&program)
        .args(words)
        .args(["-m", "unix-listen", "-p"])
        .arg(&sock)
        .arg("-t")
        .arg(&dir)
        .env("GUESTLINK_GUEST_SOCKET", dir.join("guest.sock"))
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| anyhow::anyhow!("cannot start {program}: {e}"))?;
    let started = Started {
        child,
        dir,
        _ports: ports,
    };
    let ep = Endpoint::Unix(sock);
    let client = loop {
        match Client::connect(&ep, Duration::from_secs(10)).await {
            Ok(c) => break c,
            Err(_) if t0.elapsed() < Duration::from_secs(10) => {
                tokio::time::sleep(Duration::from_micros(500)).await
            }
            Err(e) => return Err(e.into()),
        }
    };
    let mut client = client;
    client.call::<cmd::GuestPing>(&Empty {}).await?;
    let ms = t0.elapsed().as_secs_f64() * 1e3;
    Ok((started, client, ms))
}

/// Starts per agent for the startup figure.
const STARTUP_ROUNDS: usize = 9;

/// Each agent's median startup to first ping over [`STARTUP_ROUNDS`] starts, the agents
/// taking turns (one start is at the mercy of whatever else the machine does).
async fn startup_rounds(agents: &[String]) -> anyhow::Result<Vec<f64>> {
    let mut times = vec![Vec::new(); agents.len()];
    for _ in 0..STARTUP_ROUNDS {
        for (n, agent) in agents.iter().enumerate() {
            let (started, client, ms) = start(agent, agents.len() + n).await?;
            drop(client);
            drop(started);
            times[n].push(ms);
        }
    }
    Ok(times.into_iter().map(median).collect())
}

pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// guest-get-memory-blocks comes last: reading a few thousand sysfs files leaves the
/// kernel work behind (freeing their dentries) that is charged to whichever process
/// runs next, and would inflate the figures of the cheap commands after it.
const INFO_COMMANDS: &[&str] = &[
    "guest-info",
    "guest-get-osinfo",
    "guest-get-host-name",
    "guest-get-timezone",
    "guest-get-users",
    "guest-get-fsinfo",
    "guest-network-get-interfaces",
    "guest-get-vcpus",
    "guest-get-disks",
    "guest-get-memory-block-info",
    "guest-get-devices",
    "guest-get-cpustats",
    "guest-get-diskstats",
    "guest-get-load",
    "guest-get-memory-blocks",
];

/// Calls of each information command timed for its agent CPU figure, in rounds that
/// alternate between the agents, so that the machine's drift (other tenants, clock
/// speed) weighs on each alike.
const INFO_CPU_ROUNDS: u32 = 8;
const INFO_CPU_CALLS_PER_ROUND: u32 = 25;

/// A connection to an agent, and its pid when known.
type Connected = (Client, Option<u32>);

/// The agent CPU time per call of each information command, for every agent at once:
/// `None` where the agent has no such command or no CPU figures.
async fn info_cpu(
    agents: &mut [Connected],
) -> anyhow::Result<Vec<Vec<(&'static str, Option<f64>)>>> {
    let mut out = vec![Vec::new(); agents.len()];
    for name in INFO_COMMANDS {
        let mut has = Vec::new();
        for (c, _) in agents.iter_mut() {
            has.push(c.execute(name, None).await.is_ok());
        }
        let mut used = vec![0.0f64; agents.len()];
        for _ in 0..INFO_CPU_ROUNDS {
            for (i, (c, pid)) in agents.iter_mut().enumerate() {
                let Some(pid) = pid.filter(|_| has[i]) else {
                    continue;
                };
                let before = cpu(pid);
                for _ in 0..INFO_CPU_CALLS_PER_ROUND {
                    c.execute(name, None).await?;
                }
                if let (Some(a), Some(b)) = (before, cpu(pid)) {
                    used[i] += b - a;
                }
            }
        }
        let calls = f64::from(INFO_CPU_ROUNDS * INFO_CPU_CALLS_PER_ROUND);
        for (i, (_, pid)) in agents.iter().enumerate() {
            let figure = (has[i] && pid.is_some()).then(|| used[i] * 1e6 / calls);
            out[i].push((*name, figure));
        }
    }
    // The kernel's deferred work after guest-get-memory-blocks dies down before the
    // next figures (guest-ping first) are taken.
    tokio::time::sleep(SETTLE).await;
    Ok(out)
}

/// How long that deferred work takes to die down, with margin (about a second here).
const SETTLE: Duration = Duration::from_secs(3);

async fn file_read(
    c: &mut Client,
    how: Transfer,
    path: &Path,
    chunk: usize,
    want: &[u8; 32],
) -> anyhow::Result<f64> {
    // The chunks are kept and hashed after the clock stops.
    let mut parts = Vec::new();
    let t0 = Instant::now();
    let total = crate::cp::read_guest(c, how, &path.to_string_lossy(), chunk, |d| {
        parts.push(d);
        Ok(())
    })
    .await?;
    let secs = t0.elapsed().as_secs_f64();
    let mut sha = Sha256::new();
    for p in &parts {
        sha.update(p);
    }
    anyhow::ensure!(
        <[u8; 32]>::from(sha.finalize()) == *want,
        "read data differs (sha256)"
    );
    Ok(total as f64 / (1 << 20) as f64 / secs)
}

async fn file_write(
    c: &mut Client,
    how: Transfer,
    path: &Path,
    data: &[u8],
    chunk: usize,
) -> anyhow::Result<Option<f64>> {
    let p = path.to_string_lossy().into_owned();
    let h = c
        .call::<cmd::GuestFileOpen>(&GuestFileOpenArgs {
            path: p,
            mode: Some("w".into()),
        })
        .await?;
    // Encoding is the client's work, done before the clock starts.
    let bodies: Vec<String> = match how {
        Transfer::Base64 => data
            .chunks(chunk)
            .map(guestlink_vocabulary::types::base64_encode)
            .collect(),
        Transfer::Raw => Vec::new(),
    };
    let mut bodies = bodies.into_iter();
    let t0 = Instant::now();
    for piece in data.chunks(chunk) {
        let r = match how {
            Transfer::Base64 => c
                .call::<cmd::GuestFileWrite>(&GuestFileWriteArgs {
                    handle: h,
                    buf_b64: bodies.next().unwrap_or_default(),
                    count: None,
                })
                .await
                .map(|w| w.count),
            Transfer::Raw => c.file_write_raw(h, piece).await.map(|w| w.count),
        };
        if let Err(e) = r {
            // qemu-ga refuses a request whose base64 string is 64 MiB or more.
            eprintln!("  write in {} MiB chunks failed: {e}", chunk >> 20);
            let _ = c
                .call::<cmd::GuestFileClose>(&GuestFileHandleArgs { handle: h })
                .await;
            return Ok(None);
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    c.call::<cmd::GuestFileClose>(&GuestFileHandleArgs { handle: h })
        .await?;
    let back = std::fs::read(path)?;
    anyhow::ensure!(
        Sha256::digest(&back) == Sha256::digest(data),
        "written data differs (sha256)"
    );
    Ok(Some(data.len() as f64 / (1 << 20) as f64 / secs))
}

async fn exec_round_trip(c: &mut Client) -> anyhow::Result<f64> {
    let t0 = Instant::now();
    let pid = c
        .call::<cmd::GuestExec>(&GuestExecArgs {
            path: "true".into(),
            ..Default::default()
        })
        .await?
        .pid;
    while !c
        .call::<cmd::GuestExecStatus>(&GuestExecStatusArgs { pid })
        .await?
        .exited
    {
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    Ok(t0.elapsed().as_secs_f64() * 1e3)
}

/// The agent's CPU per guest-ping with its main thread and the client on the same CPU.
/// On two CPUs (the figure above) each round trip wakes the agent's CPU from idle, and
/// in a VM that wake-up, a cost of the machine the same for any agent, is most of what
/// the agent is charged; on one CPU what is left is the agent's own work. `None` where
/// the affinity cannot be set.
async fn pinned_ping_cpu(c: &mut Client, pid: u32, pings: usize) -> anyhow::Result<Option<f64>> {
    let agent = pid as libc::pid_t;
    let (Some(mine), Some(theirs)) = (affinity(0), affinity(agent)) else {
        return Ok(None);
    };
    // SAFETY: sched_getcpu has no preconditions.
    let here = unsafe { libc::sched_getcpu() };
    if here < 0 || here as usize >= libc::CPU_SETSIZE as usize {
        return Ok(None);
    }
    // SAFETY: an all-zero cpu_set_t is the empty set.
    let mut one: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `here` is within the set's size (checked above).
    unsafe { libc::CPU_SET(here as usize, &mut one) };
    if !set_affinity(0, &one) || !set_affinity(agent, &one) {
        set_affinity(0, &mine);
        return Ok(None);
    }
    let pings = pings.max(1);
    let result = async {
        let before = cpu(pid);
        for _ in 0..pings {
            c.call::<cmd::GuestPing>(&Empty {}).await?;
        }
        anyhow::Ok(
            before
                .zip(cpu(pid))
                .map(|(a, b)| (b - a) * 1e6 / pings as f64),
        )
    }
    .await;
    set_affinity(0, &mine);
    set_affinity(agent, &theirs);
    result
}

/// The CPUs thread `tid` may run on (0: this thread).
fn affinity(tid: libc::pid_t) -> Option<libc::cpu_set_t> {
    // SAFETY: an all-zero cpu_set_t is valid.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: the kernel fills at most the size given.
    let r = unsafe { libc::sched_getaffinity(tid, std::mem::size_of_val(&set), &mut set) };
    (r == 0).then_some(set)
}

/// Restricts thread `tid` (0: this thread) to `set`; whether that worked.
fn set_affinity(tid: libc::pid_t, set: &libc::cpu_set_t) -> bool {
    // SAFETY: `set` is a valid cpu_set_t of the size given.
    unsafe { libc::sched_setaffinity(tid, std::mem::size_of_val(set), set) == 0 }
}

async fn measure(
    c: &mut Client,
    pid: Option<u32>,
    opts: &Options,
    scratch: &Path,
    data: &[u8],
) -> anyhow::Result<Figures> {
    let mut f = Figures::default();
    // Ping round trips.
    let (agent0, client0) = (pid.and_then(cpu), procfs::own_cpu_seconds());
    let t0 = Instant::now();
    for _ in 0..opts.pings {
        c.call::<cmd::GuestPing>(&Empty {}).await?;
    }
    let secs = t0.elapsed().as_secs_f64();
    f.ping_per_s = opts.pings as f64 / secs;
    f.client_cpu_us_per_ping = (procfs::own_cpu_seconds() - client0) * 1e6 / opts.pings as f64;
    f.agent_cpu_us_per_ping = match (agent0, pid.and_then(cpu)) {
        (Some(a), Some(b)) => Some((b - a) * 1e6 / opts.pings as f64),
        _ => None,
    };
    if let Some(pid) = pid {
        f.agent_cpu_us_per_ping_one_cpu = pinned_ping_cpu(c, pid, opts.pings / 4).await?;
    }
    // Information commands: the median round trip. A command the agent does not have
    // (or that fails here) has no figure.
    for name in INFO_COMMANDS {
        if c.execute(name, None).await.is_err() {
            f.info_median_us.push((name, f64::NAN));
            continue;
        }
        let mut lat = Vec::new();
        for _ in 0..50 {
            let t = Instant::now();
            c.execute(name, None).await?;
            lat.push(t.elapsed().as_secs_f64() * 1e6);
        }
        f.info_median_us.push((name, median(lat)));
    }
    // Files.
    let src = scratch.join("bench-src");
    std::fs::write(&src, data)?;
    let want: [u8; 32] = Sha256::digest(data).into();
    for chunk in [4 << 20, 48 << 20] {
        let r = file_read(c, Transfer::Base64, &src, chunk, &want).await?;
        f.read_mib_s.push((chunk, Some(r)));
    }
    // The memory measure: the peak during the base64 reads (a raw read holds its data).
    f.peak_rss_kib = pid.and_then(|p| procfs::status_kib(p, "VmHWM"));
    let raw = c.offers_bulk().await?;
    for chunk in [4 << 20, 48 << 20] {
        let r = match raw {
            true => Some(file_read(c, Transfer::Raw, &src, chunk, &want).await?),
            false => None,
        };
        f.raw_read_mib_s.push((chunk, r));
    }
    let dst = scratch.join("bench-dst");
    for chunk in [4 << 20, 45 << 20] {
        let w = file_write(c, Transfer::Base64, &dst, data, chunk).await?;
        f.write_mib_s.push((chunk, w));
    }
    for chunk in [4 << 20, 48 << 20] {
        let w = match raw {
            true => file_write(c, Transfer::Raw, &dst, data, chunk).await?,
            false => None,
        };
        f.raw_write_mib_s.push((chunk, w));
    }
    f.peak_after_writes_kib = pid.and_then(|p| procfs::status_kib(p, "VmHWM"));
    // Exec.
    let mut lat = Vec::new();
    for _ in 0..20 {
        lat.push(exec_round_trip(c).await?);
    }
    f.exec_ms = median(lat);
    Ok(f)
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Runs the benchmark and prints the report.
pub async fn run(opts: &Options) -> anyhow::Result<ExitCode> {
    let data = random_bytes(opts.file_bytes);
    let mut results: Vec<(String, Figures)> = Vec::new();
    if let Some(sock) = &opts.socket {
        let c = Client::connect(&Endpoint::path(sock), Duration::from_secs(30)).await?;
        let idle = opts.pid.and_then(|p| procfs::status_kib(p, "VmRSS"));
        let mut clients = vec![(c, opts.pid)];
        let info = info_cpu(&mut clients).await?;
        let Some((mut c, _)) = clients.pop() else {
            anyhow::bail!("lost the connection");
        };
        let scratch = std::env::temp_dir().join(format!("guestlink-bench-{}", std::process::id()));
        std::fs::create_dir_all(&scratch)?;
        let f = measure(&mut c, opts.pid, opts, &scratch, &data).await;
        let _ = std::fs::remove_dir_all(&scratch);
        let mut f = f?;
        f.idle_rss_kib = idle;
        f.info_cpu_us = info.into_iter().next().unwrap_or_default();
        results.push((sock.display().to_string(), f));
    }
    // Every agent is started first: their idle memory is taken before any work, and the
    // CPU per information command is measured in alternating rounds.
    let mut agents = Vec::new();
    for (n, agent) in opts.agents.iter().enumerate() {
        eprintln!("starting {agent} ...");
        agents.push(start(agent, n).await?);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let startups = startup_rounds(&opts.agents).await?;
    let idle: Vec<Option<u64>> = agents
        .iter()
        .map(|(s, _, _)| procfs::status_kib(s.child.id(), "VmRSS"))
        .collect();
    let (started, mut clients): (Vec<(Started, f64)>, Vec<Connected>) = agents
        .into_iter()
        .map(|(s, c, t)| {
            let pid = s.child.id();
            ((s, t), (c, Some(pid)))
        })
        .unzip();
    eprintln!("measuring information commands in alternating rounds ...");
    let info = info_cpu(&mut clients).await?;
    let mut lives = Vec::new();
    for (((agent, (started, startup)), (mut c, pid)), (idle, info)) in opts
        .agents
        .iter()
        .zip(started.into_iter().zip(startups).map(|((s, _), t)| (s, t)))
        .zip(clients)
        .zip(idle.into_iter().zip(info))
    {
        eprintln!("measuring {agent} ...");
        let mut f = measure(&mut c, pid, opts, &started.dir.clone(), &data).await?;
        f.startup_ms = Some(startup);
        f.idle_rss_kib = idle;
        f.info_cpu_us = info;
        drop(c);
        if let Some(l) = live::measure(&started.dir.join("sock")).await? {
            lives.push((agent.clone(), l));
        }
        results.push((agent.clone(), f));
    }
    let text = report(&results, opts);
    if opts.json {
        let mut v: serde_json::Value = serde_json::from_str(&text)?;
        v["live"] = lives
            .iter()
            .map(|(agent, l)| (agent.clone(), live::json(l)))
            .collect::<serde_json::Map<_, _>>()
            .into();
        println!("{v:#}");
    } else {
        print!("{text}");
        for (agent, l) in &lives {
            print!("{}", live::report(agent, l));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn report(results: &[(String, Figures)], opts: &Options) -> String {
    let mut rows: Vec<(String, Vec<Option<f64>>, &str)> = Vec::new();
    let col = |get: &dyn Fn(&Figures) -> Option<f64>| {
        results.iter().map(|(_, f)| get(f)).collect::<Vec<_>>()
    };
    rows.push((
        "startup to first ping (ms)".into(),
        col(&|f| f.startup_ms),
        "lower",
    ));
    rows.push((
        "idle RSS (MiB)".into(),
        col(&|f| f.idle_rss_kib.map(|k| k as f64 / 1024.0)),
        "lower",
    ));
    rows.push((
        format!("guest-ping round trips/s ({})", opts.pings),
        col(&|f| Some(f.ping_per_s)),
        "higher",
    ));
    rows.push((
        "agent CPU per guest-ping (us)".into(),
        col(&|f| f.agent_cpu_us_per_ping),
        "lower",
    ));
    rows.push((
        "agent CPU per guest-ping, agent and client on one CPU (us)".into(),
        col(&|f| f.agent_cpu_us_per_ping_one_cpu),
        "lower",
    ));
    for (i, (name, _)) in results[0].1.info_median_us.iter().enumerate() {
        rows.push((
            format!("{name} median (us)"),
            col(&|f| f.info_median_us.get(i).map(|x| x.1).filter(|x| !x.is_nan())),
            "lower",
        ));
    }
    for (i, (name, _)) in results[0].1.info_cpu_us.iter().enumerate() {
        rows.push((
            format!("agent CPU per {name} (us)"),
            col(&|f| f.info_cpu_us.get(i).and_then(|x| x.1)),
            "lower",
        ));
    }
    type Series = fn(&Figures) -> &[(usize, Option<f64>)];
    let series: [(&str, Series); 4] = [
        ("guest-file-read", |f| &f.read_mib_s),
        ("guest-file-write", |f| &f.write_mib_s),
        ("raw bulk read", |f| &f.raw_read_mib_s),
        ("raw bulk write", |f| &f.raw_write_mib_s),
    ];
    for (label, get) in series {
        for (i, (chunk, _)) in get(&results[0].1).iter().enumerate() {
            rows.push((
                format!("{label}, {} MiB chunks (MiB/s)", chunk >> 20),
                col(&|f| get(f).get(i).and_then(|x| x.1)),
                "higher",
            ));
        }
    }
    // The agent's best: raw where it offers it, base64 otherwise (the 10x).
    let best = |v: &[(usize, Option<f64>)], b: &[(usize, Option<f64>)]| {
        v.iter()
            .chain(b)
            .filter_map(|x| x.1)
            .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))))
    };
    rows.push((
        "file read, fastest way offered (MiB/s)".into(),
        col(&|f| best(&f.read_mib_s, &f.raw_read_mib_s)),
        "higher",
    ));
    rows.push((
        "file write, fastest way offered (MiB/s)".into(),
        col(&|f| best(&f.write_mib_s, &f.raw_write_mib_s)),
        "higher",
    ));
    rows.push((
        "peak RSS during the base64 reads (MiB)".into(),
        col(&|f| f.peak_rss_kib.map(|k| k as f64 / 1024.0)),
        "lower",
    ));
    rows.push((
        "peak RSS after the writes too (MiB)".into(),
        col(&|f| f.peak_after_writes_kib.map(|k| k as f64 / 1024.0)),
        "lower",
    ));
    rows.push((
        "guest-exec round trip, median (ms)".into(),
        col(&|f| Some(f.exec_ms)),
        "lower",
    ));
    if opts.json {
        let mut out = serde_json::Map::new();
        for (name, vals, better) in &rows {
            out.insert(
                name.clone(),
                serde_json::json!({"values": vals, "better": better}),
            );
        }
        let agents: Vec<&str> = results.iter().map(|r| r.0.as_str()).collect();
        return format!(
            "{}\n",
            serde_json::json!({"agents": agents, "results": out})
        );
    }
    let mut s = String::new();
    for (i, (name, _)) in results.iter().enumerate() {
        s.push_str(&format!("agent {}: {name}\n", (b'A' + i as u8) as char));
    }
    let mut header = vec!["measure".to_string()];
    header.extend((0..results.len()).map(|i| ((b'A' + i as u8) as char).to_string()));
    if results.len() == 2 {
        header.push("B/A".into());
    }
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|(name, vals, better)| {
            let mut r = vec![format!("{name} [{better}]")];
            r.extend(
                vals.iter()
                    .map(|v| v.map(|x| format!("{x:.2}")).unwrap_or_else(|| "n/a".into())),
            );
            if let [Some(a), Some(b)] = vals[..] {
                r.push(format!("{:.3}", b / a));
            } else if vals.len() == 2 {
                r.push("n/a".into());
            }
            r
        })
        .collect();
    let hdr: Vec<&str> = header.iter().map(String::as_str).collect();
    s.push_str(&crate::render::table(&hdr, &body));
    let ceiling = results
        .iter()
        .map(|r| r.1.client_cpu_us_per_ping)
        .fold(0.0, f64::max);
    s.push_str(&format!(
        "client ceiling: the client spent at most {ceiling:.1} us of CPU per guest-ping, so it could drive {:.0} round trips/s on its own\n",
        1e6 / ceiling.max(1e-3)
    ));
    s
}
