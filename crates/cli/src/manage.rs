//! Subcommands for the rest of the QGA command set, named as `virsh` and `qm guest`
//! users know them: accounts (`passwd`, `ssh-keys`), CPUs and memory (`vcpus`,
//! `memory-blocks`), storage (`disks`, `diskstats`, `fstrim`), the system (`load`,
//! `cpustats`, `timezone`, `routes`), a program's status (`exec-status`) and
//! `suspend`. Each works with guestlinkd and with a stock qemu-ga; `--json` prints the
//! agent's result as it came.

use std::io::Read;
use std::process::ExitCode;

use anyhow::Context as _;
use base64::Engine as _;
use guestlink_client::Client;
use serde_json::{json, Value};

use crate::exit::Usage;
use crate::render;

/// The subcommands of this module (flattened into guestlink's own).
#[derive(Debug, clap::Subcommand)]
pub enum Manage {
    /// Set a user's password (guest-set-user-password). The password is read from
    /// standard input (one line), never from the command line.
    Passwd {
        /// The user.
        user: String,
        /// The input is already crypted (as `crypt(3)` makes it).
        #[arg(long)]
        crypted: bool,
    },
    /// A user's SSH authorized keys (guest-ssh-*-authorized-keys).
    SshKeys {
        /// List, add or remove.
        #[command(subcommand)]
        action: SshKeys,
    },
    /// The guest's vCPUs, or take some online or offline (guest-get/set-vcpus).
    Vcpus {
        /// CPU=online or CPU=offline (repeatable); lists the vCPUs when absent.
        #[arg(value_name = "CPU=STATE")]
        set: Vec<String>,
    },
    /// The guest's memory blocks, or take some online or offline
    /// (guest-get/set-memory-blocks, guest-get-memory-block-info).
    MemoryBlocks {
        /// BLOCK=online or BLOCK=offline (repeatable); lists the blocks when absent.
        #[arg(value_name = "BLOCK=STATE")]
        set: Vec<String>,
    },
    /// The guest's disks, their buses and partitions (guest-get-disks).
    Disks,
    /// Disk I/O counters (guest-get-diskstats).
    Diskstats,
    /// CPU time counters (guest-get-cpustats).
    Cpustats,
    /// Load averages (guest-get-load).
    Load,
    /// The guest's time zone (guest-get-timezone).
    Timezone,
    /// The guest's routing table (guest-network-get-route).
    Routes,
    /// Discard unused blocks of the mounted filesystems (guest-fstrim).
    Fstrim {
        /// Only ranges at least this many bytes long.
        #[arg(long, value_name = "BYTES")]
        minimum: Option<u64>,
    },
    /// The status and output of a program started with guest-exec (guest-exec-status).
    /// The agent forgets a program once it has reported it ended.
    ExecStatus {
        /// Its pid, as guest-exec returned it.
        pid: i64,
    },
    /// Suspend the guest to disk, to RAM, or both (guest-suspend-*).
    Suspend {
        /// disk, ram or hybrid.
        #[arg(value_parser = ["disk", "ram", "hybrid"])]
        mode: String,
    },
}

/// What `ssh-keys` does.
#[derive(Debug, clap::Subcommand)]
pub enum SshKeys {
    /// The user's authorized keys.
    List {
        /// The user.
        user: String,
    },
    /// Add keys (given, or one per line from standard input with `-`).
    Add {
        /// The user.
        user: String,
        /// Keys, as in authorized_keys; `-` reads them from standard input.
        #[arg(required = true)]
        keys: Vec<String>,
        /// Replace every key the user has with these.
        #[arg(long)]
        reset: bool,
    },
    /// Remove keys (given, or one per line from standard input with `-`).
    Remove {
        /// The user.
        user: String,
        /// Keys, as in authorized_keys; `-` reads them from standard input.
        #[arg(required = true)]
        keys: Vec<String>,
    },
}

/// Runs one of this module's subcommands.
pub async fn run(c: &mut Client, which: &Manage, json: bool) -> anyhow::Result<ExitCode> {
    match which {
        Manage::Passwd { user, crypted } => {
            let password = read_password()?;
            let args = json!({
                "username": user,
                "password": base64::engine::general_purpose::STANDARD.encode(password),
                "crypted": crypted,
            });
            c.execute("guest-set-user-password", Some(args)).await?;
            done(json, &format!("password of {user} set"))
        }
        Manage::SshKeys { action } => ssh_keys(c, action, json).await,
        Manage::Vcpus { set } if !set.is_empty() => {
            let vcpus = changes(set, "logical-id")?;
            let n = c
                .execute("guest-set-vcpus", Some(json!({ "vcpus": vcpus })))
                .await?;
            done_value(
                json,
                &n,
                &format!("{n} of {} vCPU change(s) made", set.len()),
            )
        }
        Manage::MemoryBlocks { set } if set.is_empty() => {
            if json {
                let blocks = c.execute("guest-get-memory-blocks", None).await?;
                let info = c.execute("guest-get-memory-block-info", None).await?;
                println!("{}", json!({ "blocks": blocks, "info": info }));
                return Ok(ExitCode::SUCCESS);
            }
            let info = c.execute("guest-get-memory-block-info", None).await?;
            if let Some(size) = info.get("size").and_then(Value::as_u64) {
                println!("block size {}", render::bytes(size));
            }
            show(
                c,
                "guest-get-memory-blocks",
                None,
                false,
                &["phys-index", "online", "can-offline"],
            )
            .await
        }
        Manage::MemoryBlocks { set } => {
            let blocks = changes(set, "phys-index")?;
            let r = c
                .execute(
                    "guest-set-memory-blocks",
                    Some(json!({ "mem-blks": blocks })),
                )
                .await?;
            if json {
                println!("{r}");
            } else {
                print!(
                    "{}",
                    render::value_table(&r, &["phys-index", "response", "error-code"])
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Manage::Fstrim { minimum } => {
            let args = minimum.map(|m| json!({ "minimum": m }));
            show(
                c,
                "guest-fstrim",
                args,
                json,
                &["path", "trimmed", "minimum", "error"],
            )
            .await
        }
        Manage::ExecStatus { pid } => {
            let mut v = c
                .execute("guest-exec-status", Some(json!({ "pid": pid })))
                .await?;
            if json {
                println!("{v}");
                return Ok(ExitCode::SUCCESS);
            }
            // The output as text, not base64.
            for key in ["out-data", "err-data"] {
                if let Some(b) = v.get(key).and_then(Value::as_str) {
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(b)
                        .unwrap_or_default();
                    v[key] = String::from_utf8_lossy(&bytes).into_owned().into();
                }
            }
            print!(
                "{}",
                render::value_table(&v, &["exited", "exitcode", "signal"])
            );
            for (key, label) in [("out-data", "stdout"), ("err-data", "stderr")] {
                if let Some(t) = v.get(key).and_then(Value::as_str).filter(|t| !t.is_empty()) {
                    println!("--- {label}\n{}", t.trim_end_matches('\n'));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Manage::Suspend { mode } => {
            let name = format!("guest-suspend-{mode}");
            let record = json!({ "requested": name });
            crate::show::run_silent(c, &name, None, record, &format!("suspend to {mode}"), json)
                .await
        }
        other => match listing(other) {
            Some((name, columns)) => show(c, name, None, json, columns).await,
            None => anyhow::bail!("not a subcommand of this module: {other:?}"),
        },
    }
}

/// The subcommands that only show what a QGA command returns: the command, and the
/// columns shown first.
fn listing(m: &Manage) -> Option<(&'static str, &'static [&'static str])> {
    Some(match m {
        Manage::Vcpus { set } if set.is_empty() => {
            ("guest-get-vcpus", &["logical-id", "online", "can-offline"])
        }
        Manage::Disks => ("guest-get-disks", &["name", "partition", "alias"]),
        Manage::Diskstats => ("guest-get-diskstats", &["name", "major", "minor"]),
        Manage::Cpustats => (
            "guest-get-cpustats",
            &["type", "cpu", "user", "system", "idle"],
        ),
        Manage::Load => ("guest-get-load", &["load1m", "load5m", "load15m"]),
        Manage::Timezone => ("guest-get-timezone", &["zone", "offset"]),
        Manage::Routes => (
            "guest-network-get-route",
            &["iface", "destination", "gateway", "mask", "metric"],
        ),
        _ => return None,
    })
}

/// Calls `name` and prints its result: as it came with `--json`, else as a table of
/// `columns` (the first of them first, the rest of each row's scalars after).
async fn show(
    c: &mut Client,
    name: &str,
    args: Option<Value>,
    json: bool,
    columns: &[&str],
) -> anyhow::Result<ExitCode> {
    let v = c.execute(name, args).await?;
    if json {
        println!("{v}");
    } else {
        print!("{}", render::value_table(&v, columns));
    }
    Ok(ExitCode::SUCCESS)
}

fn done(json: bool, text: &str) -> anyhow::Result<ExitCode> {
    if json {
        println!("{}", json!({ "return": {} }));
    } else {
        println!("{text}");
    }
    Ok(ExitCode::SUCCESS)
}

fn done_value(json: bool, v: &Value, text: &str) -> anyhow::Result<ExitCode> {
    if json {
        println!("{}", json!({ "return": v }));
    } else {
        println!("{text}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `ID=online`/`ID=offline` (also `on`/`off`, `1`/`0`) into objects with `key`.
fn changes(set: &[String], key: &str) -> anyhow::Result<Vec<Value>> {
    set.iter()
        .map(|s| {
            let (id, state) = s
                .split_once('=')
                .ok_or_else(|| Usage(format!("'{s}' is not ID=online or ID=offline")))?;
            let id: u64 = id
                .parse()
                .map_err(|_| Usage(format!("'{id}' is not a number")))?;
            let online = match state {
                "online" | "on" | "1" => true,
                "offline" | "off" | "0" => false,
                _ => return Err(Usage(format!("'{state}' is not online or offline")).into()),
            };
            Ok(json!({ key: id, "online": online }))
        })
        .collect()
}

/// One line of standard input, without its line end.
fn read_password() -> anyhow::Result<String> {
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .context("reading the password from standard input")?;
    let line = s.lines().next().unwrap_or_default().to_string();
    if line.is_empty() {
        return Err(Usage("no password on standard input".into()).into());
    }
    Ok(line)
}

/// Keys given, with `-` standing for the lines of standard input.
fn keys_of(given: &[String]) -> anyhow::Result<Vec<String>> {
    let mut keys = Vec::new();
    for k in given {
        if k == "-" {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("reading keys from standard input")?;
            keys.extend(
                s.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(String::from),
            );
        } else {
            keys.push(k.clone());
        }
    }
    Ok(keys)
}

async fn ssh_keys(c: &mut Client, action: &SshKeys, json: bool) -> anyhow::Result<ExitCode> {
    match action {
        SshKeys::List { user } => {
            let v = c
                .execute(
                    "guest-ssh-get-authorized-keys",
                    Some(json!({ "username": user })),
                )
                .await?;
            if json {
                println!("{v}");
            } else {
                for k in v["keys"].as_array().into_iter().flatten() {
                    println!("{}", k.as_str().unwrap_or_default());
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        SshKeys::Add { user, keys, reset } => {
            let keys = keys_of(keys)?;
            let args = json!({ "username": user, "keys": keys, "reset": reset });
            c.execute("guest-ssh-add-authorized-keys", Some(args))
                .await?;
            done(json, &format!("{} key(s) added for {user}", keys.len()))
        }
        SshKeys::Remove { user, keys } => {
            let keys = keys_of(keys)?;
            let args = json!({ "username": user, "keys": keys });
            c.execute("guest-ssh-remove-authorized-keys", Some(args))
                .await?;
            done(json, &format!("{} key(s) removed for {user}", keys.len()))
        }
    }
}
