//! Starting the programs of live streams: as a user (their groups, home and shell), in
//! a process group of their own, on pipes or on a new pseudo-terminal that becomes
//! their controlling terminal (so Ctrl-C and Ctrl-Z reach the foreground job).

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use guestlink_core::live::{BoxRead, BoxWrite, LiveChild, LiveCommand, Processes, Terminal};
use guestlink_core::os::users;
use guestlink_fdio::{EofMeaning, FdStream};
use nix::errno::Errno;
use nix::unistd::{Gid, Uid};

/// The system's processes.
#[derive(Debug, Default, Clone, Copy)]
pub struct LinuxProcesses;

const ROOT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const USER_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// A pty master, resized through its own descriptor.
struct Pty(OwnedFd);

impl Terminal for Pty {
    fn resize(&self, rows: u16, cols: u16) -> std::io::Result<()> {
        let ws = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads one winsize from the pointer, which outlives the call;
        // the descriptor is owned by self.
        let r = unsafe { libc::ioctl(self.0.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
        if r == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }
}

fn errno(what: &str, e: nix::errno::Errno) -> String {
    format!("{what}: {}", e.desc())
}

/// Who the program runs as.
struct Identity {
    uid: Uid,
    gid: Gid,
    groups: Vec<Gid>,
    home: PathBuf,
    shell: PathBuf,
    name: String,
}

fn identity(name: &str) -> Result<Identity, String> {
    let user = match users::by_name(name) {
        Ok(Some(u)) => u,
        Ok(None) => return Err(format!("user '{name}' does not exist")),
        Err(e) => {
            return Err(errno(
                &format!("cannot look up user '{name}'"),
                Errno::from_raw(e),
            ))
        }
    };
    let groups = users::groups(&user.name, user.gid)
        .into_iter()
        .map(Gid::from_raw)
        .collect();
    let shell = if user.shell.as_os_str().is_empty() {
        PathBuf::from("/bin/sh")
    } else {
        user.shell
    };
    Ok(Identity {
        uid: Uid::from_raw(user.uid),
        gid: Gid::from_raw(user.gid),
        groups,
        home: user.home,
        shell,
        name: user.name,
    })
}

impl Processes for LinuxProcesses {
    fn spawn(&self, cmd: &LiveCommand) -> Result<LiveChild, String> {
        let who = identity(&cmd.user)?;
        let me = Uid::current();
        let switch = who.uid != me;
        if switch && !me.is_root() {
            return Err(format!(
                "cannot run as '{}': guestlinkd does not run as root",
                cmd.user
            ));
        }
        let program = cmd
            .program
            .clone()
            .unwrap_or_else(|| who.shell.to_string_lossy().into_owned());
        let mut c = tokio::process::Command::new(&program);
        if cmd.program.is_none() && cmd.login && cmd.args.is_empty() {
            let base = Path::new(&program)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "sh".into());
            c.arg0(format!("-{base}"));
        }
        c.args(&cmd.args).env_clear();
        c.env("HOME", &who.home)
            .env("USER", &who.name)
            .env("LOGNAME", &who.name)
            .env("SHELL", &who.shell)
            .env(
                "PATH",
                if who.uid.is_root() {
                    ROOT_PATH
                } else {
                    USER_PATH
                },
            );
        if let Ok(lang) = std::env::var("LANG") {
            c.env("LANG", lang);
        }
        if let Some(t) = &cmd.terminal {
            c.env("TERM", &t.term);
        }
        c.envs(cmd.env.iter().map(|(k, v)| (k, v)));
        let cwd = match &cmd.cwd {
            Some(d) => d.clone(),
            None if who.home.is_dir() => who.home.clone(),
            None => PathBuf::from("/"),
        };
        c.current_dir(&cwd);
        let mut pty = None;
        match &cmd.terminal {
            Some(t) => {
                let size = nix::pty::Winsize {
                    ws_row: t.rows,
                    ws_col: t.cols,
                    ws_xpixel: 0,
                    ws_ypixel: 0,
                };
                let p = nix::pty::openpty(Some(&size), None)
                    .map_err(|e| errno("cannot open a pseudo-terminal", e))?;
                let slave = |fd: &OwnedFd| {
                    fd.try_clone()
                        .map(Stdio::from)
                        .map_err(|e| format!("cannot open a pseudo-terminal: {e}"))
                };
                c.stdin(slave(&p.slave)?)
                    .stdout(slave(&p.slave)?)
                    .stderr(slave(&p.slave)?);
                pty = Some(p.master);
            }
            None => {
                c.stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped());
            }
        }
        let terminal = pty.is_some();
        let (uid, gid, groups) = (who.uid, who.gid, who.groups.clone());
        // SAFETY: the closure runs in the child between fork and exec and calls only
        // async-signal-safe system calls (setsid, ioctl, setgroups, setgid, setuid) on
        // data prepared before the fork; it allocates nothing.
        unsafe {
            c.pre_exec(move || {
                nix::unistd::setsid()?;
                if terminal && libc::ioctl(0, libc::TIOCSCTTY, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if switch {
                    nix::unistd::setgroups(&groups)?;
                    nix::unistd::setgid(gid)?;
                    nix::unistd::setuid(uid)?;
                }
                Ok(())
            });
        }
        let mut child = c.spawn().map_err(|e| {
            let reason = guestlink_core::error::strerror(&e);
            format!("Failed to execute child process \u{201C}{program}\u{201D} ({reason})")
        })?;
        // Only the child keeps the slave open now: its end is the terminal's end.
        drop(c);
        let pid = child.id().map_or(0, |p| p as i32);
        let (input, output, errors, terminal): (Option<BoxWrite>, BoxRead, Option<BoxRead>, _) =
            match pty {
                Some(master) => {
                    let resize = master
                        .try_clone()
                        .map_err(|e| format!("cannot use the pseudo-terminal: {e}"))?;
                    nix::fcntl::fcntl(
                        master.as_raw_fd(),
                        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
                    )
                    .map_err(|e| errno("cannot use the pseudo-terminal", e))?;
                    let stream = FdStream::new(master, EofMeaning::End)
                        .map_err(|e| format!("cannot use the pseudo-terminal: {e}"))?;
                    let (r, w) = tokio::io::split(stream);
                    (
                        Some(Box::new(w)),
                        Box::new(r),
                        None,
                        Some(Box::new(Pty(resize)) as Box<dyn Terminal>),
                    )
                }
                None => {
                    let input = child.stdin.take().map(|w| Box::new(w) as BoxWrite);
                    if let Some(out) = child.stdout.as_ref() {
                        // A deeper pipe: the program runs ahead while the agent writes.
                        let _ = nix::fcntl::fcntl(
                            out.as_raw_fd(),
                            nix::fcntl::FcntlArg::F_SETPIPE_SZ(1 << 20),
                        );
                    }
                    let output = child
                        .stdout
                        .take()
                        .map(|r| Box::new(r) as BoxRead)
                        .ok_or("the program has no standard output")?;
                    let errors = child.stderr.take().map(|r| Box::new(r) as BoxRead);
                    (input, output, errors, None)
                }
            };
        Ok(LiveChild {
            pid,
            input,
            output,
            errors,
            terminal,
            exit: Box::pin(async move { child.wait().await }),
        })
    }
}
