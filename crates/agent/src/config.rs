//! qemu-ga's configuration: the `[general]` group of a GLib key file, merged with the
//! command line (options override keys, lists accumulate), and printed back by `-D`.

use std::path::{Path, PathBuf};

use crate::cli::{split_list, Cli};

/// Default configuration file: qemu-ga's (`/etc/qemu/qemu-ga.conf`); on Windows
/// beside the policy, where the installer keeps it (`%ProgramData%\guestlink`).
pub fn default_config() -> PathBuf {
    #[cfg(windows)]
    return guestlink_core::os::known_folder("ProgramData", r"C:\ProgramData")
        .join("guestlink")
        .join("qemu-ga.conf");
    #[cfg(not(windows))]
    PathBuf::from("/etc/qemu/qemu-ga.conf")
}

/// Default state directory: qemu-ga's (`/var/run`; on Windows `%ProgramData%\qemu-ga`).
pub fn default_statedir() -> PathBuf {
    #[cfg(windows)]
    return guestlink_core::os::known_folder("ProgramData", r"C:\ProgramData").join("qemu-ga");
    #[cfg(not(windows))]
    PathBuf::from("/var/run")
}

/// Default PID file: qemu-ga's (`/var/run/qemu-ga.pid`; on Windows in the state
/// directory).
pub fn default_pidfile() -> PathBuf {
    default_statedir().join("qemu-ga.pid")
}

/// The effective configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Config {
    /// `-d` / `daemon`.
    pub daemon: bool,
    /// `-m` / `method`.
    pub method: Option<String>,
    /// `-p` / `path`.
    pub path: Option<String>,
    /// `-l` / `logfile`.
    pub logfile: Option<PathBuf>,
    /// `-f` / `pidfile`.
    pub pidfile: PathBuf,
    /// `-F` / `fsfreeze-hook`.
    pub fsfreeze_hook: Option<PathBuf>,
    /// `--fsfreeze-timeout` / `fsfreeze-timeout`, in seconds.
    pub fsfreeze_timeout: Option<u64>,
    /// `-t` / `statedir`.
    pub statedir: PathBuf,
    /// `-v` / `verbose`.
    pub verbose: bool,
    /// `-r` / `retry-path`.
    pub retry_path: bool,
    /// `-b` / `block-rpcs`.
    pub block_rpcs: Vec<String>,
    /// `-a` / `allow-rpcs`; `None` when no allow list was given.
    pub allow_rpcs: Option<Vec<String>>,
    /// `--channel` specs.
    pub channels: Vec<String>,
    /// `--guest-socket` / `guest-socket`: a path or `none`; the default when absent.
    pub guest_socket: Option<String>,
    /// `--sessions` / `sessions`: `logind`, `none` or `file:PATH`.
    pub sessions: Option<String>,
    /// `--pointer` / `pointer`: `uinput`, `record:PATH` or `none`.
    pub pointer: Option<String>,
    /// `--transfer-dir` / `transfer-dir`.
    pub transfer_dir: Option<String>,
    /// `--update-key` / `update-key`.
    pub update_key: Option<PathBuf>,
    /// `--update-trial` / `update-trial`, in seconds.
    pub update_trial: Option<u64>,
    /// `--actions-dir` / `actions-dirs`: action directories in override order; the
    /// default pair when absent.
    pub actions_dirs: Option<Vec<PathBuf>>,
    /// `--policy-dir` / `policy-dirs`: policy directories in override order.
    pub policy_dirs: Option<Vec<PathBuf>>,
    /// `--ovirt-heartbeat` / `ovirt-heartbeat`, in seconds.
    pub ovirt_heartbeat: Option<u64>,
    /// `--ovirt-applications` / `ovirt-applications`.
    pub ovirt_applications: Option<Vec<String>>,
    /// `--session-user` / `session-users`: names or uids.
    pub session_users: Option<Vec<String>>,
    /// `--hotplug` / `hotplug`: `online`, `report` or `off`.
    pub hotplug: Option<String>,
    /// `--grow-on-resize` / `grow-on-resize`.
    pub grow_on_resize: bool,
}

/// A configuration file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("failed to read configuration file '{path}': {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A line that is not a group, comment or key.
    #[error("{path}:{line}: {reason}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// Line number, from 1.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

/// Key/value pairs of the `[general]` group, in file order.
fn parse_general(path: &Path, text: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let mut group: Option<String> = None;
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let syntax = |reason: &str| ConfigError::Syntax {
            path: path.to_path_buf(),
            line: i + 1,
            reason: reason.to_string(),
        };
        if let Some(name) = line.strip_prefix('[') {
            let name = name
                .strip_suffix(']')
                .ok_or_else(|| syntax("unterminated group name"))?;
            group = Some(name.to_string());
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| syntax("expected KEY=VALUE"))?;
        match group.as_deref() {
            None => return Err(syntax("key outside of any group")),
            Some("general") => out.push((key.trim().to_string(), value.trim().to_string())),
            Some(_) => {}
        }
    }
    Ok(out)
}

fn parse_bool(path: &Path, key: &str, value: &str) -> Result<bool, ConfigError> {
    match value {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(ConfigError::Syntax {
            path: path.to_path_buf(),
            line: 0,
            reason: format!("key '{key}' has value '{value}', which is not a boolean"),
        }),
    }
}

impl Config {
    /// The configuration from the file (`-c`, else `$QGA_CONF`, else the default, which
    /// may be missing) overridden by the command line.
    pub fn load(cli: &Cli) -> Result<Config, ConfigError> {
        let (path, required) = match (&cli.config, std::env::var_os("QGA_CONF")) {
            (Some(p), _) => (p.clone(), true),
            (None, Some(env)) => (PathBuf::from(env), false),
            (None, None) => (default_config(), false),
        };
        let mut c = Config {
            pidfile: default_pidfile(),
            statedir: default_statedir(),
            ..Config::default()
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => c.apply_file(&path, &text)?,
            Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(ConfigError::Read { path, source }),
        }
        c.apply_cli(cli);
        Ok(c)
    }

    fn apply_file(&mut self, path: &Path, text: &str) -> Result<(), ConfigError> {
        for (key, value) in parse_general(path, text)? {
            match key.as_str() {
                "daemon" => self.daemon = parse_bool(path, &key, &value)?,
                "method" => self.method = Some(value),
                "path" => self.path = Some(value),
                "logfile" => self.logfile = Some(value.into()),
                "pidfile" => self.pidfile = value.into(),
                "fsfreeze-hook" => self.fsfreeze_hook = Some(value.into()),
                "fsfreeze-timeout" => {
                    self.fsfreeze_timeout =
                        Some(value.parse().map_err(|_| ConfigError::Syntax {
                            path: path.to_path_buf(),
                            line: 0,
                            reason: format!(
                                "key '{key}' has value '{value}', which is not a number of seconds"
                            ),
                        })?)
                }
                "statedir" => self.statedir = value.into(),
                "verbose" => self.verbose = parse_bool(path, &key, &value)?,
                "retry-path" => self.retry_path = parse_bool(path, &key, &value)?,
                "block-rpcs" => self.block_rpcs.extend(split_list(&[value])),
                "allow-rpcs" => self
                    .allow_rpcs
                    .get_or_insert_with(Vec::new)
                    .extend(split_list(&[value])),
                "channel" => self.channels.extend(split_list(&[value])),
                "guest-socket" => self.guest_socket = Some(value),
                "sessions" => self.sessions = Some(value),
                "pointer" => self.pointer = Some(value),
                "transfer-dir" => self.transfer_dir = Some(value),
                "update-key" => self.update_key = Some(value.into()),
                "update-trial" => {
                    self.update_trial = Some(value.parse().map_err(|_| ConfigError::Syntax {
                        path: path.to_path_buf(),
                        line: 0,
                        reason: format!(
                            "key '{key}' has value '{value}', which is not a number of seconds"
                        ),
                    })?)
                }
                "actions-dirs" => self
                    .actions_dirs
                    .get_or_insert_with(Vec::new)
                    .extend(split_list(&[value]).into_iter().map(PathBuf::from)),
                "policy-dirs" => self
                    .policy_dirs
                    .get_or_insert_with(Vec::new)
                    .extend(split_list(&[value]).into_iter().map(PathBuf::from)),
                "ovirt-heartbeat" => {
                    self.ovirt_heartbeat =
                        Some(value.trim().parse().map_err(|_| ConfigError::Syntax {
                            path: path.to_path_buf(),
                            line: 0,
                            reason: format!(
                                "key '{key}' has value '{value}', which is not a number of seconds"
                            ),
                        })?)
                }
                "ovirt-applications" => self
                    .ovirt_applications
                    .get_or_insert_with(Vec::new)
                    .extend(split_list(&[value])),
                "session-users" => self
                    .session_users
                    .get_or_insert_with(Vec::new)
                    .extend(split_list(&[value])),
                "hotplug" => self.hotplug = Some(value),
                "grow-on-resize" => self.grow_on_resize = parse_bool(path, &key, &value)?,
                _ => tracing::warn!("{}: unknown key '{key}' ignored", path.display()),
            }
        }
        Ok(())
    }

    fn apply_cli(&mut self, cli: &Cli) {
        self.daemon |= cli.daemonize;
        self.verbose |= cli.verbose;
        self.retry_path |= cli.retry_path;
        if cli.method.is_some() {
            self.method = cli.method.clone();
        }
        if cli.path.is_some() {
            self.path = cli.path.clone();
        }
        if cli.logfile.is_some() {
            self.logfile = cli.logfile.clone();
        }
        if let Some(p) = &cli.pidfile {
            self.pidfile = p.clone();
        }
        if cli.fsfreeze_hook.is_some() {
            self.fsfreeze_hook = cli.fsfreeze_hook.clone();
        }
        if cli.fsfreeze_timeout.is_some() {
            self.fsfreeze_timeout = cli.fsfreeze_timeout;
        }
        if let Some(t) = &cli.statedir {
            self.statedir = t.clone();
        }
        self.block_rpcs.extend(split_list(&cli.block_rpcs));
        if !cli.allow_rpcs.is_empty() {
            self.allow_rpcs
                .get_or_insert_with(Vec::new)
                .extend(split_list(&cli.allow_rpcs));
        }
        self.channels.extend(cli.channel.iter().cloned());
        if cli.guest_socket.is_some() {
            self.guest_socket = cli.guest_socket.clone();
        }
        if cli.sessions.is_some() {
            self.sessions = cli.sessions.clone();
        }
        if cli.pointer.is_some() {
            self.pointer = cli.pointer.clone();
        }
        if cli.transfer_dir.is_some() {
            self.transfer_dir = cli.transfer_dir.clone();
        }
        if cli.update_key.is_some() {
            self.update_key = cli.update_key.clone();
        }
        if cli.update_trial.is_some() {
            self.update_trial = cli.update_trial;
        }
        if !cli.actions_dirs.is_empty() {
            self.actions_dirs = Some(cli.actions_dirs.clone());
        }
        if !cli.policy_dirs.is_empty() {
            self.policy_dirs = Some(cli.policy_dirs.clone());
        }
        if cli.ovirt_heartbeat.is_some() {
            self.ovirt_heartbeat = cli.ovirt_heartbeat;
        }
        if !cli.ovirt_applications.is_empty() {
            self.ovirt_applications = Some(split_list(&cli.ovirt_applications));
        }
        if !cli.session_users.is_empty() {
            self.session_users = Some(split_list(&cli.session_users));
        }
        if cli.hotplug.is_some() {
            self.hotplug = cli.hotplug.clone();
        }
        self.grow_on_resize |= cli.grow_on_resize;
    }

    /// The configuration as a key file, in qemu-ga's `-D` layout. Lists are joined with
    /// `;` so that a GLib string-list reader sees each name.
    pub fn dump(&self) -> String {
        let mut s = String::from("[general]\n");
        let mut line = |k: &str, v: &str| s.push_str(&format!("{k}={v}\n"));
        line("daemon", &self.daemon.to_string());
        line("method", self.method.as_deref().unwrap_or("virtio-serial"));
        if let Some(p) = &self.path {
            line("path", p);
        }
        if let Some(l) = &self.logfile {
            line("logfile", &l.display().to_string());
        }
        line("pidfile", &self.pidfile.display().to_string());
        if let Some(h) = &self.fsfreeze_hook {
            line("fsfreeze-hook", &h.display().to_string());
        }
        if let Some(t) = self.fsfreeze_timeout {
            line("fsfreeze-timeout", &t.to_string());
        }
        line("statedir", &self.statedir.display().to_string());
        line("verbose", &self.verbose.to_string());
        line("retry-path", &self.retry_path.to_string());
        if !self.block_rpcs.is_empty() {
            line("block-rpcs", &self.block_rpcs.join(";"));
        }
        if let Some(a) = &self.allow_rpcs {
            line("allow-rpcs", &a.join(";"));
        }
        if !self.channels.is_empty() {
            line("channel", &self.channels.join(";"));
        }
        if let Some(g) = &self.guest_socket {
            line("guest-socket", g);
        }
        if let Some(src) = &self.sessions {
            line("sessions", src);
        }
        if let Some(p) = &self.pointer {
            line("pointer", p);
        }
        if let Some(d) = &self.transfer_dir {
            line("transfer-dir", d);
        }
        if let Some(k) = &self.update_key {
            line("update-key", &k.display().to_string());
        }
        if let Some(t) = &self.update_trial {
            line("update-trial", &t.to_string());
        }
        if let Some(dirs) = &self.actions_dirs {
            let dirs: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
            line("actions-dirs", &dirs.join(";"));
        }
        if let Some(dirs) = &self.policy_dirs {
            let dirs: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
            line("policy-dirs", &dirs.join(";"));
        }
        if let Some(h) = self.ovirt_heartbeat {
            line("ovirt-heartbeat", &h.to_string());
        }
        if let Some(a) = &self.ovirt_applications {
            line("ovirt-applications", &a.join(";"));
        }
        if let Some(u) = &self.session_users {
            line("session-users", &u.join(";"));
        }
        if let Some(h) = &self.hotplug {
            line("hotplug", h);
        }
        if self.grow_on_resize {
            line("grow-on-resize", "true");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qemu_test_config_round_trips() {
        let text = "[general]\ndaemon=false\nmethod=virtio-serial\npath=/path/to/org.qemu.guest_agent.0\npidfile=/var/foo/qemu-ga.pid\nstatedir=/var/state\nverbose=true\nblock-rpcs=guest-ping;guest-get-time\n";
        let mut c = Config::default();
        c.apply_file(Path::new("t"), text).unwrap();
        assert_eq!(c.block_rpcs, ["guest-ping", "guest-get-time"]);
        assert!(c.verbose);
        let dump = c.dump();
        assert!(dump.contains("block-rpcs=guest-ping;guest-get-time\n"));
        assert!(dump.starts_with("[general]\ndaemon=false\nmethod=virtio-serial\n"));
    }

    #[test]
    fn errors_name_file_and_line() {
        let e = Config::default()
            .apply_file(Path::new("/etc/x.conf"), "[general]\nnonsense\n")
            .unwrap_err();
        assert_eq!(e.to_string(), "/etc/x.conf:2: expected KEY=VALUE");
    }
}
