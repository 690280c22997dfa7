//! `guestlink watch guest:PATH [-r]`: what changes under a guest path, as it happens
//! (inotify in the guest, `PATH_CHANGED` events), one line each, until Ctrl-C,
//! `--count` changes, or the path goes away.

use std::io::Write;
use std::process::ExitCode;

use guestlink_client::Client;
use guestlink_vocabulary::commands::GuestlinkPathWatch;
use guestlink_vocabulary::types::{
    GuestlinkPathChange, GuestlinkPathChanged, GuestlinkPathWatchArgs,
};

use crate::guestfs::guest_path;

/// Prints the changes under `path`.
pub async fn run(
    c: &mut Client,
    path: &str,
    recursive: bool,
    count: Option<usize>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    c.subscribe(Some(&["PATH_CHANGED"]), None).await?;
    let id = c
        .call::<GuestlinkPathWatch>(&GuestlinkPathWatchArgs {
            path: guest_path(path).to_string(),
            recursive: Some(recursive),
        })
        .await?
        .watch;
    eprintln!("watching guest:{} (Ctrl-C to stop)", guest_path(path));
    let mut seen = 0;
    let mut out = std::io::stdout().lock();
    while count.is_none_or(|n| seen < n) {
        let e = tokio::select! {
            e = c.next_event() => e?,
            _ = tokio::signal::ctrl_c() => break,
        };
        let Ok(change) = serde_json::from_value::<GuestlinkPathChanged>(e.data.clone()) else {
            continue;
        };
        if change.watch != id {
            continue;
        }
        if json {
            writeln!(out, "{}", e.data)?;
        } else {
            let slash = if change.directory { "/" } else { "" };
            writeln!(out, "{:<11} {}{slash}", change.change.as_str(), change.path)?;
        }
        out.flush()?;
        seen += 1;
        if change.change == GuestlinkPathChange::Ended {
            break;
        }
    }
    Ok(ExitCode::SUCCESS)
}
