//! `guestlink events`: subscribe and print events as they come, one JSON line each
//! (the line the agent sent), until interrupted or `--count` events.

use std::io::Write;
use std::process::ExitCode;

use guestlink_client::Client;
use serde_json::json;

/// Prints events from `client`.
pub async fn run(
    client: &mut Client,
    names: &[String],
    heartbeat: Option<u64>,
    count: Option<usize>,
) -> anyhow::Result<ExitCode> {
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let chosen = (!names.is_empty()).then_some(names.as_slice());
    client.subscribe(chosen, heartbeat).await?;
    let mut seen = 0;
    let mut out = std::io::stdout().lock();
    while count.is_none_or(|c| seen < c) {
        let e = client.next_event().await?;
        let line = json!({
            "event": e.name,
            "data": e.data,
            "timestamp": {"seconds": e.seconds, "microseconds": e.microseconds},
        });
        writeln!(out, "{line}")?;
        out.flush()?;
        seen += 1;
    }
    Ok(ExitCode::SUCCESS)
}
