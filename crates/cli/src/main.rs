//! guestlink: the host-side CLI for guest agents (guestlinkd or a stock qemu-ga).
//!
//! `guestlink --socket PATH <command>` talks to the host end of an agent channel (the
//! unix socket QEMU or libvirt exposes, or a pty); `--vsock CID:PORT` reaches an agent
//! listening on vsock. Results are tables by default and JSON with `--json`.
//! `guestlink demo` starts a private guestlinkd on a temporary socket, shows what it
//! answers, and stops it; `guestlink bench` measures agents side by side.

#[cfg(feature = "tools")]
mod bench;
mod clipboard;
mod connect;
mod cp;
mod demo;
mod domain;
mod events;
mod exec;
mod exit;
mod files;
mod grow;
mod guestfs;
mod iso;
mod live;
mod manage;
mod power;
mod render;
mod service;
mod show;
mod sync;
mod transfer;
mod update;
mod watch;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, Parser, Subcommand};

/// Drive a guest agent (guestlinkd or qemu-ga) from the host.
#[derive(Debug, Parser)]
#[command(name = "guestlink", version)]
pub struct Cli {
    /// Host end of the agent channel: a unix socket, or a character device such as a pty.
    #[arg(
        long,
        short = 's',
        global = true,
        env = "GUESTLINK_SOCKET",
        conflicts_with = "vsock"
    )]
    pub socket: Option<PathBuf>,
    /// An agent listening on vsock, as CID:PORT.
    #[arg(long, global = true, value_name = "CID:PORT")]
    pub vsock: Option<String>,
    /// Seconds to wait for each reply (10 by default). For `exec`: how long the
    /// program may run.
    #[arg(long, global = true, value_name = "SECS")]
    pub timeout: Option<f64>,
    /// A libvirt domain: its `org.guestlink.0` channel is found with `virsh dumpxml`.
    #[arg(long, global = true, value_name = "NAME", conflicts_with_all = ["socket", "vsock"])]
    pub domain: Option<String>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// Say more about what happens (how `exec` runs, the shell's pid).
    #[arg(long, short = 'v', global = true)]
    pub verbose: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Cmd,
}

impl Cli {
    /// How long to wait for each reply.
    pub fn reply_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.timeout.unwrap_or(10.0))
    }
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Check that the agent answers, and how fast.
    Ping,
    /// Agent version and its commands.
    Info,
    /// Guest operating system and kernel.
    Osinfo,
    /// Guest host name.
    Hostname,
    /// Logged-in users.
    Users,
    /// Network interfaces and addresses.
    Interfaces,
    /// Mounted filesystems, sizes and disks.
    Fsinfo,
    /// Installed packages (dpkg or rpm): name, version, architecture (guestlinkd).
    Packages,
    /// Grow the partition under a guest file system to the end of its disk, then the
    /// file system (ext4, xfs, btrfs), after the host made the disk larger (guestlinkd).
    Grow {
        /// A mount point or any path on the file system, as guest:/path or /path.
        path: String,
    },
    /// The guest's systemd units or Windows services: list, status, start, stop,
    /// restart, enable, disable (guestlinkd; acting on a unit needs the guest's policy
    /// to list it).
    Service {
        /// What to do.
        #[command(subcommand)]
        action: service::ServiceCmd,
    },
    /// Guest clock, and its difference from the host's.
    Time {
        /// Set the guest's clock.
        #[command(subcommand)]
        action: Option<TimeCmd>,
    },
    /// Run a program in the guest: its output as it writes it, our input forwarded, its
    /// status as ours (128 + signal). Ctrl-C and SIGTERM reach it. With a stock qemu-ga
    /// it runs through guest-exec and prints at the end.
    Exec {
        /// Environment for the program as NAME=VALUE (added; with qemu-ga it replaces
        /// the agent's).
        #[arg(long = "env", short = 'e', value_name = "NAME=VALUE")]
        env: Vec<String>,
        /// Do not pass our standard input to the program.
        #[arg(long)]
        no_stdin: bool,
        /// The user to run as (root by default; on Windows the agent's own account).
        #[arg(long, short = 'u')]
        user: Option<String>,
        /// The working directory (the user's home by default).
        #[arg(long)]
        cwd: Option<String>,
        /// Program and arguments.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        argv: Vec<String>,
    },
    /// An interactive shell in the guest (a user's login shell on a terminal), or a
    /// command run by it; its status is ours. Works without a terminal too.
    Shell {
        /// The user (root by default; on Windows the agent's own account).
        #[arg(long, short = 'u')]
        user: Option<String>,
        /// A command for the shell instead of an interactive session.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// Forward a port or socket as ssh -L does: listen here, connect from inside the
    /// guest. With --reverse as ssh -R: listen in the guest, connect from here.
    Forward {
        /// Listen in the guest and connect on the host.
        #[arg(long, short = 'R')]
        reverse: bool,
        /// Where to listen and where to connect, as ssh writes it; unix socket paths
        /// may replace either side.
        #[arg(value_name = "[BIND:]PORT:HOST:HOSTPORT")]
        spec: String,
    },
    /// Copy files and directories to or from the guest, as cp and scp do; guest paths
    /// are written guest:/path, `-` is standard input or output. Modes are kept, and
    /// times with -p; each file lands under its name only once complete and checked.
    Cp {
        /// Sources, then the destination (an existing directory takes several).
        #[arg(required = true, num_args = 2.., value_name = "SRC... DST")]
        paths: Vec<String>,
        /// Copy directories and everything in them.
        #[arg(long, short = 'r', visible_short_alias = 'R')]
        recursive: bool,
        /// Keep modification and access times too.
        #[arg(long, short = 'p')]
        preserve: bool,
        /// Bytes per request (at most 48 MiB).
        #[arg(long, default_value_t = 4 << 20)]
        chunk: usize,
        /// Skip the sha256 check of each copy.
        #[arg(long)]
        no_verify: bool,
        /// Send the data as base64 even when the agent offers raw bulk transfer.
        #[arg(long)]
        base64: bool,
    },
    /// Make a directory on one side hold what one on the other holds, sending only
    /// files that differ (size and time, or SHA-256 with --checksum) (guestlinkd).
    Sync {
        /// The source directory (a local path or guest:/path).
        src: String,
        /// The destination directory (the other side); created when missing.
        dst: String,
        /// Compare content by SHA-256 (computed on each side) instead of size and time.
        #[arg(long, short = 'c')]
        checksum: bool,
        /// Remove what the source does not have.
        #[arg(long)]
        delete: bool,
        /// Say what would be sent and removed; change nothing.
        #[arg(long, short = 'n')]
        dry_run: bool,
        /// Bytes per request (at most 48 MiB).
        #[arg(long, default_value_t = 4 << 20)]
        chunk: usize,
    },
    /// Print what changes under a guest path as it happens (inotify in the guest),
    /// until Ctrl-C or the path goes away (guestlinkd).
    Watch {
        /// The file or directory, as guest:/path or /path.
        path: String,
        /// The directories below it too.
        #[arg(short = 'r', long)]
        recursive: bool,
        /// Exit after this many changes.
        #[arg(long, value_name = "N")]
        count: Option<usize>,
    },
    /// List a guest directory (guestlinkd).
    Ls {
        /// The directory or file, as guest:/path or /path.
        path: String,
        /// Mode, links, owner, size and time of each entry.
        #[arg(short = 'l')]
        long: bool,
        /// Include names that begin with a dot.
        #[arg(short = 'a', long)]
        all: bool,
    },
    /// What a guest path is: type, size, mode, owner, times (guestlinkd).
    Stat {
        /// The path, as guest:/path or /path.
        path: String,
        /// Follow a link at the end of the path.
        #[arg(short = 'L', long)]
        dereference: bool,
    },
    /// Remove guest files, links and directories (guestlinkd).
    Rm {
        /// The paths, as guest:/path or /path.
        #[arg(required = true)]
        paths: Vec<String>,
        /// Remove directories and everything in them (never `/`).
        #[arg(short = 'r', visible_short_alias = 'R', long)]
        recursive: bool,
        /// No error for a path that does not exist.
        #[arg(short = 'f', long)]
        force: bool,
    },
    /// Create guest directories (guestlinkd).
    Mkdir {
        /// The paths, as guest:/path or /path.
        #[arg(required = true)]
        paths: Vec<String>,
        /// Create missing parents; no error when it exists.
        #[arg(short = 'p', long)]
        parents: bool,
        /// Permission bits in octal (before the guest's umask).
        #[arg(short = 'm', long)]
        mode: Option<String>,
    },
    /// Freeze the guest's filesystems (all, or the given mount points).
    #[command(args_conflicts_with_subcommands = true)]
    Fsfreeze {
        /// Mount points to freeze.
        #[arg(long = "mountpoint", short = 'm')]
        mountpoints: Vec<String>,
        /// `status`: whether the agent holds the filesystems frozen.
        #[command(subcommand)]
        action: Option<FsfreezeCmd>,
    },
    /// Thaw the guest's filesystems.
    Thaw,
    /// The rest of the QGA command set (accounts, CPUs, memory, disks, load…).
    #[command(flatten)]
    Manage(manage::Manage),
    /// Power the guest down, halt or reboot it.
    Shutdown {
        /// powerdown, halt or reboot.
        #[arg(long, default_value = "powerdown")]
        mode: String,
    },
    /// Send one raw request, e.g. '{"execute":"guest-get-time"}', and print the reply.
    Call {
        /// A command name (`guest-get-time`), or a whole request object
        /// (`{"execute":"guest-get-time"}`).
        request: String,
        /// The command's arguments, as a JSON object (with a command name).
        #[arg(short = 'a', long = "arguments", value_name = "JSON")]
        arguments: Option<String>,
    },
    /// Start a private guestlinkd on a temporary socket, talk to it, and stop it.
    Demo {
        /// The guestlinkd binary (default: next to this one, else on PATH).
        #[arg(long)]
        agent: Option<PathBuf>,
    },
    /// Measure agents side by side: start each --agent command, or use --socket.
    #[cfg(feature = "tools")]
    Bench {
        /// An agent command to start (repeatable), e.g. '/usr/sbin/qemu-ga'; `{pty}` in it
        /// is a port with a host on it (a pty pair), `{dir}` the agent's scratch directory.
        #[arg(long = "agent")]
        agents: Vec<String>,
        /// With --socket: the agent's pid, for CPU and memory figures.
        #[arg(long)]
        pid: Option<u32>,
        /// guest-ping round trips to time.
        #[arg(long, default_value_t = 20000)]
        pings: usize,
        /// MiB moved by each file test.
        #[arg(long, default_value_t = 64)]
        file_mib: usize,
    },
    /// Print events as they happen, one JSON line each (guestlinkd only).
    Events {
        /// Only these events (repeatable); all when absent.
        #[arg(long = "event", short = 'e', value_name = "NAME")]
        events: Vec<String>,
        /// Ask for a HEARTBEAT event every this many seconds.
        #[arg(long, value_name = "SECONDS")]
        heartbeat: Option<u64>,
        /// Exit after this many events.
        #[arg(long, value_name = "N")]
        count: Option<usize>,
    },
    /// The clipboard of the guest's active session (guestlinkd with guestlink-session).
    Clipboard {
        /// Get, set or watch.
        #[command(subcommand)]
        action: ClipboardCmd,
    },
    /// Replace the running guestlinkd with a new executable, sent through its own
    /// channel; it restarts on it, and rolls back if the new one does not come up.
    Update {
        /// The new guestlinkd (default: the one beside this program).
        #[arg(long, value_name = "PATH")]
        binary: Option<PathBuf>,
        /// Its ed25519 signature (64 bytes, raw or base64), for a guest with an update
        /// key.
        #[arg(long, value_name = "FILE")]
        signature: Option<PathBuf>,
    },
    /// Write the agent image a host attaches to install guestlinkd without guest
    /// networking (label GUESTLINK), or with --cloud-init the NoCloud seed that installs
    /// it at first boot.
    Iso(iso::Args),
    /// Serve Prometheus metrics for every VM whose agent socket is in a directory.
    Exporter(guestlink_exporter::Args),
    /// Simulated VMs for testing and measuring the exporter.
    #[cfg(feature = "tools")]
    #[command(hide = true)]
    ExporterSim(guestlink_exporter::sim::Args),
    /// Print the JSON schema of guestlinkd's command vocabulary (every command, event
    /// and type, with guestlink's extensions), or with --markdown its reference.
    Schema {
        /// The Markdown reference (docs/protocol.md) instead of the JSON schema.
        #[arg(long)]
        markdown: bool,
    },
    /// Print a shell completion script.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

/// What to do with the guest clipboard.
#[derive(Debug, Subcommand)]
pub enum ClipboardCmd {
    /// Print the clipboard's contents (text unless --type says otherwise).
    Get {
        /// The primary selection instead of the clipboard.
        #[arg(long)]
        primary: bool,
        /// The MIME type wanted.
        #[arg(long = "type", short = 't', value_name = "MIME")]
        mime: Option<String>,
        /// Write to this file instead of standard output.
        #[arg(long, short = 'o')]
        output: Option<PathBuf>,
    },
    /// Set the clipboard from TEXT, --file, or standard input.
    Set {
        /// The primary selection instead of the clipboard.
        #[arg(long)]
        primary: bool,
        /// The MIME type (default: text, or guessed from the file name).
        #[arg(long = "type", short = 't', value_name = "MIME")]
        mime: Option<String>,
        /// Read the contents from this file.
        #[arg(long, short = 'f', conflicts_with = "text")]
        file: Option<PathBuf>,
        /// The text.
        text: Option<String>,
    },
    /// Print what the clipboard offers whenever it changes.
    Watch {
        /// The primary selection instead of the clipboard.
        #[arg(long)]
        primary: bool,
        /// Also print the text on each change.
        #[arg(long)]
        fetch: bool,
        /// Exit after this many changes.
        #[arg(long, value_name = "N")]
        count: Option<usize>,
    },
}

fn main() -> ExitCode {
    // The manual page and completion scripts, from the same definitions as --help.
    if let Some(code) = guestlink_clidocs::handle(Cli::command, "1") {
        return code;
    }
    let cli = Cli::parse();
    if let Cmd::Completions { shell } = cli.command {
        clap_complete::generate(
            shell,
            &mut Cli::command(),
            "guestlink",
            &mut std::io::stdout(),
        );
        return ExitCode::SUCCESS;
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("guestlink: {e}");
            return ExitCode::from(1);
        }
    };
    let result = rt.block_on(run(&cli));
    // A read of our standard input may still be blocked in a thread (a shell or an
    // exec that ended before its input did): do not wait for it.
    rt.shutdown_background();
    match result {
        Ok(code) => code,
        Err(e) => {
            let (text, hint) = connect::explain(&e);
            if cli.json {
                println!("{}", exit::json(&e, &text, hint));
            } else {
                match hint {
                    Some(h) => eprintln!("guestlink: {text} ({h})"),
                    None => eprintln!("guestlink: {text}"),
                }
            }
            ExitCode::from(exit::classify(&e).0)
        }
    }
}

/// What `time` does besides showing the clock.
#[derive(Debug, Subcommand)]
pub enum TimeCmd {
    /// Set the guest's clock to NANOSECONDS since the epoch, or, without it, from the
    /// guest's hardware clock (guest-set-time).
    Set {
        /// Nanoseconds since 1970-01-01 UTC.
        #[arg(allow_negative_numbers = true)]
        nanoseconds: Option<i64>,
    },
    /// Set the guest's clock to the host's (after a resume or a migration).
    Sync,
}

/// What `fsfreeze` does besides freezing.
#[derive(Debug, Subcommand)]
pub enum FsfreezeCmd {
    /// Whether the agent holds the filesystems frozen (guest-fsfreeze-status).
    Status,
}

/// A client of guestlinkd with its path commands, for `what`.
async fn files_client(cli: &Cli, what: &str) -> anyhow::Result<guestlink_client::Client> {
    connect::guestlinkd_client(cli, what, guestfs::PATH_COMMANDS).await
}

async fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    let timeout = cli.reply_timeout();
    match &cli.command {
        Cmd::Demo { agent } => demo::run(agent.clone(), timeout).await,
        Cmd::Completions { .. } => Ok(ExitCode::SUCCESS),
        Cmd::Iso(args) => iso::run(args, cli.json),
        Cmd::Schema { markdown } => {
            if *markdown {
                print!("{}", guestlink_vocabulary::reference::markdown());
            } else {
                let doc =
                    guestlink_vocabulary::commands::schema_document(env!("CARGO_PKG_VERSION"));
                println!("{doc:#}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Update { binary, signature } => {
            let opts = update::Options {
                binary: binary.clone(),
                signature: signature.clone(),
            };
            update::run(cli, &opts).await
        }
        Cmd::Exporter(args) => guestlink_exporter::run(args, timeout).await,
        #[cfg(feature = "tools")]
        Cmd::ExporterSim(args) => guestlink_exporter::sim::run(args).await,
        #[cfg(feature = "tools")]
        Cmd::Bench {
            agents,
            pid,
            pings,
            file_mib,
        } => {
            if agents.is_empty() && cli.socket.is_none() {
                anyhow::bail!("give --agent CMD (repeatable) or --socket PATH");
            }
            bench::run(&bench::Options {
                agents: agents.clone(),
                socket: cli.socket.clone(),
                pid: *pid,
                pings: *pings,
                file_bytes: file_mib << 20,
                json: cli.json,
            })
            .await
        }
        Cmd::Exec {
            env,
            no_stdin,
            user,
            cwd,
            argv,
        } => {
            let opts = live::ExecOptions {
                env: env.clone(),
                stdin: !*no_stdin,
                timeout: cli.timeout.map(|t| t.ceil().max(1.0) as u64),
                user: user.clone(),
                cwd: cwd.clone(),
                verbose: cli.verbose,
                json: cli.json,
            };
            live::exec(connect::client(cli).await?, argv, &opts).await
        }
        Cmd::Shell { user, command } => {
            live::shell(
                connect::client(cli).await?,
                user.clone(),
                command,
                cli.verbose,
            )
            .await
        }
        Cmd::Forward { reverse, spec } => {
            live::forward(connect::client(cli).await?, spec, *reverse, cli.json).await
        }
        Cmd::Cp {
            paths,
            recursive,
            preserve,
            chunk,
            no_verify,
            base64,
        } => {
            let opts = cp::Options {
                chunk: *chunk,
                verify: !*no_verify,
                json: cli.json,
                allow_raw: !*base64,
                recursive: *recursive,
                preserve: *preserve,
            };
            cp::run(&mut connect::client(cli).await?, paths, &opts).await
        }
        Cmd::Sync {
            src,
            dst,
            checksum,
            delete,
            dry_run,
            chunk,
        } => {
            let opts = sync::Options {
                checksum: *checksum,
                delete: *delete,
                dry_run: *dry_run,
                json: cli.json,
                chunk: *chunk,
            };
            sync::run(&mut connect::client(cli).await?, src, dst, &opts).await
        }
        Cmd::Watch {
            path,
            recursive,
            count,
        } => {
            let mut c =
                connect::guestlinkd_client(cli, "guestlink watch", "__org.guestlink_path-watch")
                    .await?;
            watch::run(&mut c, path, *recursive, *count, cli.json).await
        }
        Cmd::Grow { path } => {
            let mut c =
                connect::guestlinkd_client(cli, "guestlink grow", "__org.guestlink_grow").await?;
            grow::run(&mut c, path, cli.json).await
        }
        Cmd::Service { action } => {
            let mut c =
                connect::guestlinkd_client(cli, "guestlink service", service::NEEDED).await?;
            service::run(&mut c, action, cli.json).await
        }
        Cmd::Ls { path, long, all } => {
            let mut c = files_client(cli, "guestlink ls").await?;
            files::ls(&mut c, path, *long, *all, cli.json).await
        }
        Cmd::Stat { path, dereference } => {
            let mut c = files_client(cli, "guestlink stat").await?;
            files::stat(&mut c, path, *dereference, cli.json).await
        }
        Cmd::Rm {
            paths,
            recursive,
            force,
        } => {
            let mut c = files_client(cli, "guestlink rm").await?;
            files::rm(&mut c, paths, *recursive, *force).await
        }
        Cmd::Mkdir {
            paths,
            parents,
            mode,
        } => {
            let mut c = files_client(cli, "guestlink mkdir").await?;
            files::mkdir(&mut c, paths, *parents, mode.as_deref()).await
        }
        Cmd::Fsfreeze {
            action: Some(FsfreezeCmd::Status),
            ..
        } => power::freeze_status(&mut connect::client(cli).await?, cli.json).await,
        Cmd::Fsfreeze { mountpoints, .. } => {
            power::freeze(&mut connect::client(cli).await?, mountpoints, cli.json).await
        }
        Cmd::Time {
            action: Some(action),
        } => power::set_time(&mut connect::client(cli).await?, action, cli.json).await,
        Cmd::Manage(m) => manage::run(&mut connect::client(cli).await?, m, cli.json).await,
        Cmd::Thaw => power::thaw(&mut connect::client(cli).await?, cli.json).await,
        Cmd::Shutdown { mode } => {
            power::shutdown(&mut connect::client(cli).await?, mode, cli.json).await
        }
        Cmd::Events {
            events,
            heartbeat,
            count,
        } => {
            let mut c = connect::guestlinkd_client(
                cli,
                "guestlink events",
                "__org.guestlink_events-subscribe",
            )
            .await?;
            events::run(&mut c, events, *heartbeat, *count).await
        }
        Cmd::Clipboard { action } => {
            let mut c = connect::guestlinkd_client(
                cli,
                "guestlink clipboard",
                "__org.guestlink_clipboard-get",
            )
            .await?;
            match action {
                ClipboardCmd::Get {
                    primary,
                    mime,
                    output,
                } => {
                    clipboard::get(
                        &mut c,
                        *primary,
                        mime.as_deref(),
                        output.as_deref(),
                        cli.json,
                    )
                    .await
                }
                ClipboardCmd::Set {
                    primary,
                    mime,
                    file,
                    text,
                } => {
                    clipboard::set(
                        &mut c,
                        *primary,
                        mime.as_deref(),
                        text.as_deref(),
                        file.as_ref(),
                        cli.json,
                    )
                    .await
                }
                ClipboardCmd::Watch {
                    primary,
                    fetch,
                    count,
                } => clipboard::watch(&mut c, *primary, *fetch, *count).await,
            }
        }
        Cmd::Call { request, arguments } => {
            let req = show::request_of(request, arguments.as_deref())?;
            show::call(&mut connect::client(cli).await?, &req, cli.json).await
        }
        other => show::run(&mut connect::client(cli).await?, other, cli.json).await,
    }
}
