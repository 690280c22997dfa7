//! `guestlink exporter-sim`: hundreds of simulated VMs in one process, each a QGA
//! agent on a unix socket laid out as libvirt lays them out
//! (`DIR/domain-N-vmI/org.qemu.guest_agent.0`), for testing and measuring the exporter
//! without hundreds of guests.
//!
//! Every VM answers with figures of its own, a function of its number, and writes them
//! to `--truth` so a test can check the exporter against what was served. VM `i`
//! plays guestlinkd when `i % 2 == 0` (memory statistics, load, events), and qemu-ga
//! otherwise: 9.1 with `guest-get-load` when `i % 4 == 1`, 7.2 without it when
//! `i % 4 == 3`; both report memory as online memory blocks.
//!
//! Lines on standard input change the VMs while they run:
//! `users I N` (guestlinkd VMs push `SESSION_NEW`), `freeze I` (push `FSFREEZE`),
//! `stall I` (stop answering), `remove I` (delete the socket, close its connections),
//! `hostile I` (answer as a hostile guest, from a new connection), `flood I N` (push N
//! `SESSION_NEW` events at once).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Options of `guestlink exporter-sim`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to make the sockets.
    #[arg(long)]
    pub dir: PathBuf,
    /// How many VMs.
    #[arg(long, default_value_t = 500)]
    pub vms: usize,
    /// Write the figures each VM serves to this JSON file.
    #[arg(long)]
    pub truth: Option<PathBuf>,
}

const MIB: u64 = 1 << 20;
const BLOCK: u64 = 128 * MIB;

/// One simulated VM.
#[derive(Debug, Default)]
struct Vm {
    index: u64,
    users: u64,
    frozen: bool,
    stalled: bool,
    /// Answers as a hostile guest would: a version full of quotes and newlines, ten
    /// thousand odd mount points, a users reply larger than the exporter takes.
    hostile: bool,
    /// Senders of the connections that subscribed to events.
    subscribers: Vec<mpsc::UnboundedSender<Vec<u8>>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Vm {
    fn guestlinkd(&self) -> bool {
        self.index.is_multiple_of(2)
    }
    fn has_load(&self) -> bool {
        self.index % 4 != 3
    }
    fn version(&self) -> &'static str {
        match self.index % 4 {
            0 | 2 => "0.1.0",
            1 => "9.1.0",
            _ => "7.2.0",
        }
    }
    fn name(&self) -> String {
        format!("vm{}", self.index)
    }
    fn memory(&self) -> (u64, Option<u64>, Option<u64>) {
        let i = self.index;
        if self.guestlinkd() {
            (
                (1024 + i) * MIB,
                Some((100 + i) * MIB),
                Some((200 + i) * MIB),
            )
        } else {
            (self.online_blocks() * BLOCK, None, None)
        }
    }
    fn online_blocks(&self) -> u64 {
        8 + self.index % 16
    }
    fn filesystems(&self) -> Vec<(&'static str, &'static str, u64, u64)> {
        let i = self.index;
        vec![
            (
                "/",
                "ext4",
                10 * 1024 * MIB + i * MIB,
                1024 * MIB + i * 4096,
            ),
            ("/srv", "xfs", 100 * 1024 * MIB, i * MIB),
        ]
    }
    fn load(&self) -> [f64; 3] {
        let i = self.index as f64;
        [i / 100.0, i / 200.0, i / 400.0]
    }

    /// What the exporter should report for this VM.
    fn truth(&self) -> Value {
        let (total, free, available) = self.memory();
        json!({
            "vm": self.name(),
            "agent": if self.guestlinkd() { "guestlinkd" } else { "qemu-ga" },
            "version": self.version(),
            "memory_total": total,
            "memory_free": free,
            "memory_available": available,
            "filesystems": self.filesystems().iter().map(|(m, t, s, u)| json!({
                "mountpoint": m, "fstype": t, "size": s, "used": u,
            })).collect::<Vec<_>>(),
            "users": self.users,
            "load": self.has_load().then(|| self.load().to_vec()),
        })
    }

    /// The answer to one request, or `None` for none.
    fn answer(&mut self, req: &Value, out: &mpsc::UnboundedSender<Vec<u8>>) -> Option<Vec<u8>> {
        let name = req.get("execute").and_then(Value::as_str).unwrap_or("");
        let id = req.pointer("/arguments/id").cloned().unwrap_or(Value::Null);
        let ret = match name {
            "guest-sync-delimited" => {
                let mut line = vec![0xFF];
                line.extend_from_slice(json!({ "return": id }).to_string().as_bytes());
                line.push(b'\n');
                return Some(line);
            }
            "guest-sync" => id,
            "guest-ping" => json!({}),
            "guest-info" if self.hostile => json!({
                "version": format!("1.0\"\n}} {}", "x".repeat(1000)),
                "supported_commands": [
                    {"name": "guest-get-fsinfo", "enabled": true},
                    {"name": "guest-get-users", "enabled": true},
                    {"name": "guest-ping", "enabled": true},
                ],
            }),
            "guest-get-fsinfo" if self.hostile => Value::Array(
                (0..10_000)
                    .map(|k| {
                        json!({
                            "name": "x", "mountpoint": format!("/m{k} \"q\"\n\\"), "type": "t\"",
                            "total-bytes": k, "used-bytes": k, "disk": [],
                        })
                    })
                    .collect(),
            ),
            "guest-get-users" if self.hostile => Value::Array(
                (0..200_000)
                    .map(|k| json!({"user": format!("user{k}"), "login-time": 1.7e9}))
                    .collect(),
            ),
            "guest-info" => {
                let mut cmds = vec![
                    "guest-ping",
                    "guest-info",
                    "guest-sync",
                    "guest-sync-delimited",
                    "guest-get-fsinfo",
                    "guest-get-users",
                    "guest-fsfreeze-status",
                ];
                if self.has_load() {
                    cmds.push("guest-get-load");
                }
                if self.guestlinkd() {
                    cmds.extend([
                        "__org.guestlink_get-memory-stats",
                        "__org.guestlink_events-subscribe",
                    ]);
                } else {
                    cmds.extend(["guest-get-memory-blocks", "guest-get-memory-block-info"]);
                }
                json!({
                    "version": self.version(),
                    "supported_commands": cmds.iter().map(|c| json!({
                        "name": c, "enabled": true, "success-response": true,
                    })).collect::<Vec<_>>(),
                })
            }
            "__org.guestlink_get-memory-stats" if self.guestlinkd() => {
                let (total, free, available) = self.memory();
                json!({
                    "total": total / 1024, "free": free.unwrap_or(0) / 1024,
                    "available": available.map(|a| a / 1024), "buffers": 0, "cached": 0,
                    "swap-total": 0, "swap-free": 0, "swap-in": 0, "swap-out": 0,
                    "page-faults": 0, "major-faults": 0,
                })
            }
            "guest-get-memory-block-info" if !self.guestlinkd() => json!({ "size": BLOCK }),
            "guest-get-memory-blocks" if !self.guestlinkd() => {
                let online = self.online_blocks();
                Value::Array(
                    (0..online + 2)
                        .map(
                            |k| json!({"phys-index": k, "online": k < online, "can-offline": true}),
                        )
                        .collect(),
                )
            }
            "guest-get-fsinfo" => Value::Array(
                self.filesystems()
                    .iter()
                    .map(|(m, t, s, u)| {
                        json!({
                            "name": "vda1", "mountpoint": m, "type": t,
                            "total-bytes": s, "used-bytes": u, "disk": [],
                        })
                    })
                    .collect(),
            ),
            "guest-get-users" => Value::Array(
                (0..self.users)
                    .map(|k| json!({"user": format!("user{k}"), "login-time": 1.7e9}))
                    .collect(),
            ),
            "guest-get-load" if self.has_load() => {
                let [a, b, c] = self.load();
                json!({"load1m": a, "load5m": b, "load15m": c})
            }
            "guest-fsfreeze-status" => json!(if self.frozen { "frozen" } else { "thawed" }),
            "__org.guestlink_events-subscribe" if self.guestlinkd() => {
                self.subscribers.push(out.clone());
                json!({"events": req.pointer("/arguments/events").cloned().unwrap_or(json!([]))})
            }
            other => {
                let desc = format!("The command {other} has not been found");
                return Some(line(
                    &json!({"error": {"class": "CommandNotFound", "desc": desc}}),
                ));
            }
        };
        Some(line(&json!({ "return": ret })))
    }

    /// Sends an event to every subscribed connection.
    fn push(&mut self, event: &str, data: Value) {
        let msg = line(&json!({
            "event": event, "data": data,
            "timestamp": {"seconds": 1_700_000_000, "microseconds": 0},
        }));
        self.subscribers.retain(|s| s.send(msg.clone()).is_ok());
    }
}

fn line(v: &Value) -> Vec<u8> {
    let mut l = v.to_string().into_bytes();
    l.push(b'\n');
    l
}

type Shared = Arc<Mutex<Vm>>;

fn lock(vm: &Shared) -> std::sync::MutexGuard<'_, Vm> {
    vm.lock().unwrap_or_else(|e| e.into_inner())
}

fn socket_path(dir: &Path, i: u64) -> PathBuf {
    dir.join(format!("domain-{}-vm{i}", i + 1))
        .join("org.qemu.guest_agent.0")
}

/// Runs the simulated VMs until standard input ends.
pub async fn run(args: &Args) -> anyhow::Result<std::process::ExitCode> {
    let mut vms: HashMap<u64, Shared> = HashMap::new();
    let mut truth = Vec::new();
    for i in 0..args.vms as u64 {
        let path = socket_path(&args.dir, i);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        let _ = std::fs::remove_file(&path);
        let listener =
            UnixListener::bind(&path).with_context(|| format!("cannot bind {}", path.display()))?;
        let vm = Arc::new(Mutex::new(Vm {
            index: i,
            users: i % 5,
            ..Vm::default()
        }));
        truth.push(lock(&vm).truth());
        let task = tokio::spawn(accept(listener, vm.clone()));
        lock(&vm).tasks.push(task);
        vms.insert(i, vm);
    }
    if let Some(t) = &args.truth {
        std::fs::write(t, serde_json::to_vec_pretty(&truth)?)?;
    }
    println!("ready");
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    while let Some(cmd) = stdin.next_line().await? {
        let words: Vec<&str> = cmd.split_whitespace().collect();
        let num = |k: usize| words.get(k).and_then(|w| w.parse::<u64>().ok());
        let Some(vm) = num(1).and_then(|i| vms.get(&i)) else {
            eprintln!("exporter-sim: '{cmd}': no such VM");
            continue;
        };
        let mut vm = lock(vm);
        match (words.first().copied(), num(2)) {
            (Some("users"), Some(n)) => {
                vm.users = n;
                let id = format!("{n}");
                vm.push("SESSION_NEW", json!({"id": id, "uid": 1000, "user": "user", "seat": "seat0", "class": "user", "remote": false}));
            }
            (Some("freeze"), _) => {
                vm.frozen = true;
                vm.push("FSFREEZE", json!({"count": 1}));
            }
            (Some("stall"), _) => vm.stalled = true,
            (Some("hostile"), _) => {
                // Connections end, so the exporter meets the hostile guest-info.
                vm.hostile = true;
                vm.subscribers.clear();
                for t in vm.tasks.drain(1..) {
                    t.abort();
                }
            }
            (Some("flood"), Some(n)) => {
                for k in 0..n {
                    let id = format!("flood{k}");
                    vm.push("SESSION_NEW", json!({"id": id, "uid": 1000, "user": "user", "seat": "seat0", "class": "user", "remote": false}));
                }
            }
            (Some("remove"), _) => {
                let _ = std::fs::remove_file(socket_path(&args.dir, vm.index));
                vm.subscribers.clear();
                for t in vm.tasks.drain(..) {
                    t.abort();
                }
            }
            _ => eprintln!("exporter-sim: '{cmd}' is not users I N, freeze I, stall I, remove I, hostile I or flood I N"),
        }
        println!("ok");
    }
    Ok(std::process::ExitCode::SUCCESS)
}

async fn accept(listener: UnixListener, vm: Shared) {
    while let Ok((stream, _)) = listener.accept().await {
        let task = tokio::spawn(serve(stream, vm.clone()));
        lock(&vm).tasks.push(task);
    }
}

async fn serve(stream: UnixStream, vm: Shared) {
    let (read, mut write) = stream.into_split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let writer = tokio::spawn(async move {
        while let Some(msg) = rx.recv().await {
            if write.write_all(&msg).await.is_err() {
                break;
            }
        }
    });
    let mut lines = BufReader::new(read).split(b'\n');
    while let Ok(Some(mut l)) = lines.next_segment().await {
        while l.first() == Some(&0xFF) {
            l.remove(0);
        }
        let Ok(req) = serde_json::from_slice::<Value>(&l) else {
            continue;
        };
        let reply = {
            let mut vm = lock(&vm);
            if vm.stalled {
                continue;
            }
            vm.answer(&req, &tx)
        };
        if let Some(r) = reply {
            if tx.send(r).is_err() {
                break;
            }
        }
    }
    writer.abort();
}
