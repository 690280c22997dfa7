//! Subcommands that change the guest's state: fsfreeze, thaw, shutdown.

use std::process::ExitCode;

use guestlink_client::Client;
use guestlink_vocabulary::commands as cmd;
use guestlink_vocabulary::types::{Empty, GuestFsfreezeFreezeListArgs};

/// Freezes all filesystems, or the given mount points.
pub async fn freeze(
    c: &mut Client,
    mountpoints: &[String],
    json: bool,
) -> anyhow::Result<ExitCode> {
    let n = if mountpoints.is_empty() {
        c.call::<cmd::GuestFsfreezeFreeze>(&Empty {}).await?
    } else {
        // The agent skips a path that is not mounted and freezes the rest: a typo in a
        // backup hook would take an unfrozen snapshot. Refuse before freezing anything,
        // as virsh domfsfreeze --mountpoint does.
        let mounted: Vec<String> = c
            .call::<cmd::GuestGetFsinfo>(&Empty {})
            .await?
            .into_iter()
            .map(|f| f.mountpoint)
            .collect();
        let missing: Vec<&str> = mountpoints
            .iter()
            .filter(|m| !mounted.iter().any(|x| x == *m))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            anyhow::bail!(
                "not a mount point in the guest: {} (nothing was frozen; mounted: {})",
                missing.join(", "),
                mounted.join(", ")
            );
        }
        c.call::<cmd::GuestFsfreezeFreezeList>(&GuestFsfreezeFreezeListArgs {
            mountpoints: Some(mountpoints.to_vec()),
        })
        .await?
    };
    if json {
        println!("{{\"frozen\": {n}}}");
    } else {
        println!("{n} filesystem(s) frozen; run `guestlink thaw` to release them");
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether the agent holds the filesystems frozen.
pub async fn freeze_status(c: &mut Client, json: bool) -> anyhow::Result<ExitCode> {
    let status = c.execute("guest-fsfreeze-status", None).await?;
    let status = status.as_str().unwrap_or_default().to_string();
    if json {
        println!("{}", serde_json::json!({ "status": status }));
    } else {
        println!("{status}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Sets the guest's clock: to a given time, from its hardware clock, or to the host's.
pub async fn set_time(
    c: &mut Client,
    action: &crate::TimeCmd,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let ns = match action {
        crate::TimeCmd::Set { nanoseconds } => *nanoseconds,
        crate::TimeCmd::Sync => Some(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_nanos() as i64,
        ),
    };
    let args = match ns {
        Some(t) => serde_json::json!({ "time": t }),
        None => serde_json::json!({}),
    };
    c.execute("guest-set-time", Some(args)).await?;
    if json {
        println!("{}", serde_json::json!({ "set": ns }));
    } else {
        match ns {
            Some(t) => println!("guest clock set to {}", crate::render::utc(t)),
            None => println!("guest clock set from its hardware clock"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Thaws.
pub async fn thaw(c: &mut Client, json: bool) -> anyhow::Result<ExitCode> {
    let n = c.call::<cmd::GuestFsfreezeThaw>(&Empty {}).await?;
    if json {
        println!("{{\"thawed\": {n}}}");
    } else {
        println!("{n} filesystem(s) thawed");
    }
    Ok(ExitCode::SUCCESS)
}

/// Shuts the guest down. The agent replies only when it fails, so silence (or the
/// connection closing as the guest goes down) means it is on its way.
pub async fn shutdown(c: &mut Client, mode: &str, json: bool) -> anyhow::Result<ExitCode> {
    let name = <cmd::GuestShutdown as guestlink_vocabulary::Command>::NAME;
    crate::show::run_silent(
        c,
        name,
        Some(serde_json::json!({ "mode": mode })),
        serde_json::json!({"requested": name, "mode": mode}),
        &format!("shutdown ({mode})"),
        json,
    )
    .await
}
