//! The read-only subcommands: ping, info, osinfo, hostname, users, interfaces, fsinfo,
//! packages,
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
        Cmd::Packages => {
            crate::connect::require_guestlinkd(
                c,
                "guestlink packages",
                "__org.guestlink_get-packages",
            )
            .await?;
            let list = c.call::<cmd::GuestlinkGetPackages>(&Empty {}).await?;
            if json {
                print_json(&list)?;
            } else {
                print!("{}", render::package_table(&list));
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
        Cmd::Time { action: None } => {
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

/// The request `call` sends: a whole request object, or a command name with its
/// arguments (`-a JSON`).
pub fn request_of(request: &str, arguments: Option<&str>) -> anyhow::Result<serde_json::Value> {
    use crate::exit::Usage;
    if request.trim_start().starts_with('{') {
        if arguments.is_some() {
            return Err(
                Usage("-a goes with a command name, not with a request object".into()).into(),
            );
        }
        return serde_json::from_str(request)
            .map_err(|e| Usage(format!("the request is not valid JSON: {e}")).into());
    }
    let mut req = serde_json::json!({ "execute": request.trim() });
    if let Some(a) = arguments {
        let args: serde_json::Value = serde_json::from_str(a)
            .map_err(|e| Usage(format!("the arguments are not valid JSON: {e}")))?;
        if !args.is_object() {
            return Err(Usage(format!("the arguments must be a JSON object, not {args}")).into());
        }
        req["arguments"] = args;
    }
    Ok(req)
}

/// `call`: one raw request and its reply; exit status 1 when the agent answers with an
/// error. A command that replies only when it fails (shutdown, suspend) succeeded if
/// no error comes within a few seconds.
pub async fn call(c: &mut Client, req: &serde_json::Value, json: bool) -> anyhow::Result<ExitCode> {
    let name = req["execute"].as_str().unwrap_or_default().to_string();
    let silent =
        guestlink_vocabulary::commands::find(&name).is_some_and(|i| !i.meta.success_response);
    let reply = if silent {
        match c.call_raw_silent(req).await? {
            Some(reply) => reply,
            None => {
                return Ok(requested(
                    serde_json::json!({ "requested": name }),
                    &name,
                    json,
                ))
            }
        }
    } else {
        c.call_raw(req).await?
    };
    println!(
        "{}",
        if json {
            reply.to_string()
        } else {
            serde_json::to_string_pretty(&reply)?
        }
    );
    Ok(if reply.get("error").is_some() {
        ExitCode::from(crate::exit::FAILED)
    } else {
        ExitCode::SUCCESS
    })
}

/// Says that a command the agent answers only on failure was sent and not refused:
/// `what` in words, `record` with `--json`.
pub fn requested(record: serde_json::Value, what: &str, json: bool) -> ExitCode {
    if json {
        println!("{record}");
    } else {
        println!("{what} requested; the agent does not reply when it succeeds");
    }
    ExitCode::SUCCESS
}

/// Runs `name`, a command the agent answers only when it fails (guest-shutdown,
/// guest-suspend-*): its error is the CLI's error, silence is success.
pub async fn run_silent(
    c: &mut Client,
    name: &str,
    arguments: Option<serde_json::Value>,
    record: serde_json::Value,
    what: &str,
    json: bool,
) -> anyhow::Result<ExitCode> {
    match c.execute_silent(name, arguments).await? {
        None => Ok(requested(record, what, json)),
        Some(v) => Err(anyhow::anyhow!("unexpected reply to {name}: {v}")),
    }
}
