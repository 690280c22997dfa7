//! `guestlink service list|status|start|stop|restart|enable|disable UNIT`: the guest's
//! systemd units (a Windows guest's services) through guestlinkd's service commands. Acting on a unit needs the
//! guest's policy to list it (`[services] units`); listing and status do not.

use std::process::ExitCode;

use clap::Subcommand;
use guestlink_client::Client;
use guestlink_vocabulary::commands as cmd;
use guestlink_vocabulary::types::{
    Empty, GuestlinkService, GuestlinkServiceAction, GuestlinkServiceArgs,
    GuestlinkServiceControlArgs,
};

use crate::render;

/// What `service` does.
#[derive(Debug, Subcommand)]
pub enum ServiceCmd {
    /// The units systemd has loaded, or a Windows guest's services (name, load, active
    /// and sub state, description).
    List,
    /// One unit's states, its unit file's state and its main process.
    Status {
        /// The unit (`.service` is added when no type is given; on Windows the
        /// service's name, such as `Spooler`).
        unit: String,
    },
    /// Start a unit and wait for it to have started.
    Start {
        /// The unit.
        unit: String,
    },
    /// Stop a unit and wait for it to have stopped.
    Stop {
        /// The unit.
        unit: String,
    },
    /// Restart a unit (start it when it is not running).
    Restart {
        /// The unit.
        unit: String,
    },
    /// Enable a unit (its install links) and reload systemd; on Windows, start the
    /// service automatically.
    Enable {
        /// The unit.
        unit: String,
    },
    /// Disable a unit and reload systemd; on Windows, start the service only
    /// when asked.
    Disable {
        /// The unit.
        unit: String,
    },
}

/// The first command the agent must have.
pub const NEEDED: &str = "__org.guestlink_service-list";

fn status_text(s: &GuestlinkService) -> String {
    let mut out = format!("{} - {}\n", s.unit, s.description);
    let file = s
        .unit_file_state
        .as_deref()
        .map(|f| format!(" ({f})"))
        .unwrap_or_default();
    out.push_str(&format!("    Loaded: {}{file}\n", s.load_state));
    out.push_str(&format!(
        "    Active: {} ({})\n",
        s.active_state, s.sub_state
    ));
    if let Some(pid) = s.main_pid {
        out.push_str(&format!("  Main PID: {pid}\n"));
    }
    out
}

fn print(s: &GuestlinkService, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(s)?);
    } else {
        print!("{}", status_text(s));
    }
    Ok(())
}

/// Runs `guestlink service`.
pub async fn run(c: &mut Client, which: &ServiceCmd, json: bool) -> anyhow::Result<ExitCode> {
    use GuestlinkServiceAction as A;
    let (unit, action) = match which {
        ServiceCmd::List => {
            let list = c.call::<cmd::GuestlinkServiceList>(&Empty {}).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                print!("{}", render::service_table(&list));
            }
            return Ok(ExitCode::SUCCESS);
        }
        ServiceCmd::Status { unit } => {
            let args = GuestlinkServiceArgs { unit: unit.clone() };
            let s = c.call::<cmd::GuestlinkServiceStatus>(&args).await?;
            print(&s, json)?;
            return Ok(ExitCode::SUCCESS);
        }
        ServiceCmd::Start { unit } => (unit, A::Start),
        ServiceCmd::Stop { unit } => (unit, A::Stop),
        ServiceCmd::Restart { unit } => (unit, A::Restart),
        ServiceCmd::Enable { unit } => (unit, A::Enable),
        ServiceCmd::Disable { unit } => (unit, A::Disable),
    };
    let args = GuestlinkServiceControlArgs {
        unit: unit.clone(),
        action,
    };
    let s = c.call::<cmd::GuestlinkServiceControl>(&args).await?;
    print(&s, json)?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_reads_as_systemctl_status_begins() {
        let s = GuestlinkService {
            unit: "ssh.service".into(),
            description: "OpenBSD Secure Shell server".into(),
            load_state: "loaded".into(),
            active_state: "active".into(),
            sub_state: "running".into(),
            unit_file_state: Some("enabled".into()),
            main_pid: Some(321),
        };
        assert_eq!(
            status_text(&s),
            "ssh.service - OpenBSD Secure Shell server\n    Loaded: loaded (enabled)\n    Active: active (running)\n  Main PID: 321\n"
        );
        let table = render::service_table(&[s]);
        assert!(table.starts_with("UNIT"), "{table}");
        assert!(
            table.contains("ssh.service  loaded  active  running  OpenBSD"),
            "{table}"
        );
    }
}
