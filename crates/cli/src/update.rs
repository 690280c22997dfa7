//! `guestlink update`: sends a new guestlinkd to the running agent through its own
//! channel (bulk transfer), has it checked and swapped in, then waits for the agent to
//! come back and reports the old and new versions, or the rollback and its reason.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use guestlink_vocabulary::commands::{
    GuestlinkUpdateCommit, GuestlinkUpdateStart, GuestlinkUpdateStatus, GuestlinkUpdateWrite,
};
use guestlink_vocabulary::types::{
    base64_encode, Empty, TransferHandleArgs, TransferWriteArgs, UpdateStartArgs, UpdateStatus,
};
use sha2::{Digest, Sha256};

use crate::{connect, Cli};

/// Bytes per write.
const CHUNK: usize = 4 << 20;

/// What to send.
#[derive(Debug)]
pub struct Options {
    /// The new guestlinkd (default: the one beside this program).
    pub binary: Option<PathBuf>,
    /// Its ed25519 signature: 64 bytes, raw or in base64.
    pub signature: Option<PathBuf>,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn signature(path: &PathBuf) -> anyhow::Result<String> {
    let raw = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if raw.len() == 64 {
        return Ok(base64_encode(&raw));
    }
    let text = String::from_utf8_lossy(&raw).trim().to_owned();
    match guestlink_vocabulary::types::base64_decode(text.as_bytes()) {
        Ok(b) if b.len() == 64 => Ok(text),
        _ => bail!(
            "{}: not an ed25519 signature (64 bytes, raw or base64)",
            path.display()
        ),
    }
}

/// The guestlinkd version in a `-V` line ("QEMU Guest Agent X (guestlinkd V)").
fn short(line: &str) -> &str {
    line.rsplit_once("(guestlinkd ")
        .and_then(|(_, v)| v.strip_suffix(')'))
        .unwrap_or(line)
}

/// Sends the update and reports what became of it.
pub async fn run(cli: &Cli, opts: &Options) -> anyhow::Result<ExitCode> {
    let binary = match &opts.binary {
        Some(b) => b.clone(),
        None => std::env::current_exe()?.with_file_name("guestlinkd"),
    };
    let data = std::fs::read(&binary).with_context(|| format!("reading {}", binary.display()))?;
    let sha256 = hex(&Sha256::digest(&data));
    let signature = opts.signature.as_ref().map(signature).transpose()?;

    let mut c =
        connect::guestlinkd_client(cli, "guestlink update", "__org.guestlink_update-start").await?;
    let started = c
        .call::<GuestlinkUpdateStart>(&UpdateStartArgs {
            size: data.len() as i64,
            sha256: sha256.clone(),
            signature,
        })
        .await?;
    for chunk in data.chunks(CHUNK) {
        let args = TransferWriteArgs {
            handle: started.handle,
            count: chunk.len() as i64,
        };
        c.call_with_payload::<GuestlinkUpdateWrite>(&args, chunk)
            .await?;
    }
    let done = c
        .call::<GuestlinkUpdateCommit>(&TransferHandleArgs {
            handle: started.handle,
        })
        .await?;
    drop(c);
    if !cli.json {
        eprintln!(
            "sent {} ({} bytes, sha256 {sha256}); the agent restarts ({}), {} s to come up",
            binary.display(),
            data.len(),
            done.restart,
            done.trial_seconds
        );
    }
    let status = wait(cli, Duration::from_secs(done.trial_seconds as u64 + 30)).await?;
    let rolled_back = status.state == "rolled-back";
    if cli.json {
        println!(
            "{}",
            serde_json::json!({
                "result": if rolled_back { "rolled-back" } else { "updated" },
                "old-version": short(&done.old_version),
                "new-version": short(&done.new_version),
                "running-version": short(&status.running_version),
                "restart": done.restart,
                "reason": status.reason,
            })
        );
    } else if rolled_back {
        println!(
            "rolled back: guestlinkd {} runs again ({})",
            short(&status.running_version),
            status.reason.as_deref().unwrap_or("no reason given")
        );
    } else {
        println!(
            "updated guestlinkd {} -> {}",
            short(&done.old_version),
            short(&status.running_version)
        );
    }
    Ok(if rolled_back {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Polls the agent until the update is confirmed or rolled back.
async fn wait(cli: &Cli, within: Duration) -> anyhow::Result<UpdateStatus> {
    let deadline = Instant::now() + within;
    let mut last = String::from("no answer");
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let status = async {
            let mut c = connect::client(cli).await?;
            anyhow::Ok(c.call::<GuestlinkUpdateStatus>(&Empty {}).await?)
        };
        match tokio::time::timeout(Duration::from_secs(5), status).await {
            Ok(Ok(s)) if s.state == "confirmed" || s.state == "rolled-back" => return Ok(s),
            Ok(Ok(s)) => last = format!("the update is {}", s.state),
            Ok(Err(e)) => last = format!("{e:#}"),
            Err(_) => last = "no answer within 5 s".into(),
        }
    }
    bail!(
        "the agent did not report the update's outcome within {} s ({last})",
        within.as_secs()
    )
}
