//! The session agent's conversation with guestlinkd: register the session, answer
//! `SESSION_REQUEST`s with the clipboard back end, report clipboard changes; connect
//! again whenever guestlinkd goes away.

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use guestlink_client::{Client, Endpoint};
use guestlink_vocabulary::commands::{
    GuestlinkClipboardGet, GuestlinkClipboardGrab, GuestlinkClipboardSet, GuestlinkSessionRegister,
    GuestlinkSessionReply,
};
use guestlink_vocabulary::types::{
    base64_decode, ClipboardData, ClipboardGrabArgs, ClipboardSelection, ReplyArgs, ReplyError,
    SessionRegisterArgs,
};
use guestlink_vocabulary::Command;
use serde_json::Value;

use crate::clipboard::Clipboard;

/// Wait between attempts to reach guestlinkd.
const RECONNECT: Duration = Duration::from_secs(1);

/// Serves the session until the clipboard back end stops.
pub async fn serve(
    socket: &Path,
    session: Option<String>,
    mut clipboard: Clipboard,
) -> anyhow::Result<()> {
    let ep = Endpoint::path(socket);
    let mut warned = false;
    loop {
        match Client::connect(&ep, Duration::from_secs(10)).await {
            Ok(mut client) => {
                warned = false;
                match converse(&mut client, session.clone(), &mut clipboard).await {
                    Err(e) if e.is::<Stopped>() => return Err(e),
                    Err(e) => tracing::warn!("lost guestlinkd: {e:#}"),
                    Ok(()) => {}
                }
            }
            Err(e) if !warned => {
                tracing::warn!("cannot reach guestlinkd at {}: {e}", socket.display());
                warned = true;
            }
            Err(_) => {}
        }
        tokio::time::sleep(RECONNECT).await;
    }
}

/// The clipboard back end ended: nothing left to serve.
#[derive(Debug)]
struct Stopped;

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the clipboard back end stopped")
    }
}

impl std::error::Error for Stopped {}

async fn converse(
    client: &mut Client,
    session: Option<String>,
    clipboard: &mut Clipboard,
) -> anyhow::Result<()> {
    let reg = client
        .call::<GuestlinkSessionRegister>(&SessionRegisterArgs {
            session,
            capabilities: Some(vec!["clipboard".into()]),
        })
        .await
        .context("cannot register the session")?;
    tracing::info!(session = %reg.session, "serving the session");
    loop {
        tokio::select! {
            event = client.next_event() => {
                let event = event?;
                if event.name != "SESSION_REQUEST" {
                    continue;
                }
                let tag = event.data["tag"].as_i64().unwrap_or(-1);
                let command = event.data["command"].as_str().unwrap_or_default().to_string();
                let answer = act(clipboard, &command, &event.data["arguments"]).await;
                if let Err(e) = &answer {
                    tracing::info!(command = %command, "request failed: {e}");
                }
                let (ret, error) = match answer {
                    Ok(v) => (Some(v), None),
                    Err(desc) => (None, Some(ReplyError { class: None, desc })),
                };
                client.call::<GuestlinkSessionReply>(&ReplyArgs { tag, ret, error }).await?;
            }
            change = clipboard.changes.recv() => {
                let Some(change) = change else {
                    return Err(Stopped.into());
                };
                client
                    .call::<GuestlinkClipboardGrab>(&ClipboardGrabArgs {
                        selection: Some(change.selection),
                        types: change.types,
                    })
                    .await?;
            }
        }
    }
}

fn selection_of(args: &Value) -> ClipboardSelection {
    args["selection"]
        .as_str()
        .and_then(ClipboardSelection::from_wire)
        .unwrap_or(ClipboardSelection::Clipboard)
}

/// Runs one request from guestlinkd on the desktop.
async fn act(clipboard: &Clipboard, command: &str, args: &Value) -> Result<Value, String> {
    let selection = selection_of(args);
    match command {
        c if c == GuestlinkClipboardGet::NAME => {
            let mime = args["mime-type"].as_str().map(String::from);
            let (mime_type, data) = clipboard.get(selection, mime).await?;
            serde_json::to_value(ClipboardData {
                mime_type,
                data: data.into(),
            })
            .map_err(|e| e.to_string())
        }
        c if c == GuestlinkClipboardSet::NAME => {
            let mime = args["mime-type"]
                .as_str()
                .unwrap_or("text/plain;charset=utf-8");
            let data = base64_decode(args["data"].as_str().unwrap_or_default().as_bytes())
                .map_err(|e| e.to_string())?;
            clipboard.set(selection, mime.to_string(), data).await?;
            Ok(Value::Object(Default::default()))
        }
        other => Err(format!("this session agent does not do '{other}'")),
    }
}
