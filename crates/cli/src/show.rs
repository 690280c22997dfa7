//! The read-only subcommands: ping, info, osinfo, hostname, users, interfaces, fsinfo,
//! time, and raw `call`.

use std::process::ExitCode;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use guestlink_client::Client;
use guestlink_vocabulary::commands as cmd;
use guestlink_vocabulary::types::Empty;
use serde::Serialize;

use crate::{render, Cmd};

fn print_json<T: Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// Runs one of the read-only subcommands.
pub async fn run(c: &mut Client, which: &Cmd, json: bool) -> anyhow::Result<ExitCode> {
    match which {
        Cmd::Ping => {
            let start = Instant::now();
            c.call::<cmd::GuestPing>(&Empty {}).await?;
            let ms = start.elapsed().as_secs_f64() * 1e3;
            if json {
                println!("{{\"round-trip-ms\": {ms:.3}}}");
            } else {
                println!("agent answered in {ms:.3} ms");
            }
        }
        Cmd::Info => {
            let info = c.call::<cmd::GuestInfo>(&Empty {}).await?;
            if json {
                print_json(&info)?;
            } else {
                print!("{}", render::info(&info));
            }
        }
        Cmd::Osinfo => {
            let os = c.call::<cmd::GuestGetOsinfo>(&Empty {}).await?;
            if json {
                print_json(&os)?;
            } else {
                print!("{}", render::osinfo(&os));
            }
        }
        Cmd::Hostname => {
            let h = c.call::<cmd::GuestGetHostName>(&Empty {}).await?;
            if json {
                print_json(&h)?;
            } else {
                println!("{}", h.host_name);
            }
        }
        Cmd::Users => {
            let users = c.call::<cmd::GuestGetUsers>(&Empty {}).await?;
            if json {
                print_json(&users)?;
            } else {
                print!("{}", render::user_table(&users));
            }
        }
        Cmd::Interfaces => {
            let nics = c.call::<cmd::GuestNetworkGetInterfaces>(&Empty {}).await?;
            if json {
                print_json(&nics)?;
            } else {
                print!("{}", render::interface_table(&nics));
            }
        }
        Cmd::Fsinfo => {
            let fs = c.call::<cmd::GuestGetFsinfo>(&Empty {}).await?;
            if json {
                print_json(&fs)?;
            } else {
                print!("{}", render::filesystem_table(&fs));
            }
        }
        Cmd::Time => {
            let ns = c.call::<cmd::GuestGetTime>(&Empty {}).await?;
            let host = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos() as i64)
                .unwrap_or(0);
            let skew_ms = (ns - host) as f64 / 1e6;
            if json {
                println!("{{\"guest-ns\": {ns}, \"host-ns\": {host}, \"skew-ms\": {skew_ms:.3}}}");
            } else {
                println!(
                    "guest clock {} ({skew_ms:+.3} ms from the host)",
                    render::utc(ns)
                );
            }
        }
        other => anyhow::bail!("not a read-only subcommand: {other:?}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// `call`: one raw request; exit status 2 when the agent answers with an error.
pub async fn call(c: &mut Client, request: &str, json: bool) -> anyhow::Result<ExitCode> {
    let req: serde_json::Value = serde_json::from_str(request)
        .map_err(|e| anyhow::anyhow!("the request is not valid JSON: {e}"))?;
    let reply = c.call_raw(&req).await?;
    println!(
        "{}",
        if json {
            reply.to_string()
        } else {
            serde_json::to_string_pretty(&reply)?
        }
    );
    Ok(if reply.get("error").is_some() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}
