//! The session agent's conversation with guestlinkd: register the session, answer
//! `SESSION_REQUEST`s with the clipboard back end, report clipboard changes; connect
//! again whenever guestlinkd goes away.
//!
//! A selection the host offered (`clipboard-offer`) is remembered here: a paste of it,
//! whether through guestlinkd (`clipboard-get`) or from a desktop program (a back end
//! [`Fetch`]), is answered with the host's data, fetched with `clipboard-fetch`. On
//! back ends that cannot own a selection without its data (Wayland) the data is
//! fetched at once instead.

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use guestlink_client::{Client, Endpoint};
use std::collections::HashMap;

use guestlink_vocabulary::commands::{
    GuestlinkClipboardClear, GuestlinkClipboardFetch, GuestlinkClipboardGet,
    GuestlinkClipboardGrab, GuestlinkClipboardOffer, GuestlinkClipboardSet, GuestlinkDisplaySet,
    GuestlinkSessionRegister, GuestlinkSessionReply,
};
use guestlink_vocabulary::types::{
    base64_decode, ClipboardData, ClipboardGrabArgs, ClipboardSelection, ClipboardSelectionArgs,
    DisplaySetArgs, ReplyArgs, ReplyError, SessionRegisterArgs,
};
use guestlink_vocabulary::Command;
use serde_json::Value;

use crate::clipboard::convert;
use crate::clipboard::mime::is_text;
use crate::clipboard::{Clipboard, Fetch};
use crate::displays::Displays;

/// Wait between attempts to reach guestlinkd.
const RECONNECT: Duration = Duration::from_secs(1);

/// Serves the session until the clipboard back end stops; `displays` is the API that
/// takes the host's display layout, if the desktop has one.
pub async fn serve(
    socket: &Path,
    session: Option<String>,
    mut clipboard: Clipboard,
    displays: Option<Displays>,
) -> anyhow::Result<()> {
    let ep = Endpoint::path(socket);
    let mut warned = false;
    loop {
        match Client::connect(&ep, Duration::from_secs(10)).await {
            Ok(mut client) => {
                warned = false;
                match converse(&mut client, session.clone(), &mut clipboard, displays).await {
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
    displays: Option<Displays>,
) -> anyhow::Result<()> {
    let mut capabilities = vec!["clipboard".to_string()];
    if displays.is_some() {
        capabilities.push("displays".into());
    }
    let reg = client
        .call::<GuestlinkSessionRegister>(&SessionRegisterArgs {
            session,
            capabilities: Some(capabilities),
        })
        .await
        .context("cannot register the session")?;
    tracing::info!(session = %reg.session, "serving the session");
    // Selections the host owns, with the types it offered.
    let mut offered: HashMap<ClipboardSelection, Vec<String>> = HashMap::new();
    loop {
        tokio::select! {
            event = client.next_event() => {
                let event = event?;
                if event.name != "SESSION_REQUEST" {
                    continue;
                }
                let tag = event.data["tag"].as_i64().unwrap_or(-1);
                let command = event.data["command"].as_str().unwrap_or_default().to_string();
                let answer = act(client, clipboard, displays, &mut offered, &command, &event.data["arguments"]).await;
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
                // Another program took the selection: the host's offer is gone.
                offered.remove(&change.selection);
                client
                    .call::<GuestlinkClipboardGrab>(&ClipboardGrabArgs {
                        selection: Some(change.selection),
                        types: change.types,
                    })
                    .await?;
            }
            fetch = clipboard.fetches.recv() => {
                let Some(Fetch { selection, mime, reply }) = fetch else {
                    return Err(Stopped.into());
                };
                let answer = fetch_from_host(client, &offered, selection, Some(mime)).await;
                let _ = reply.send(answer);
            }
        }
    }
}

/// The host's data for a paste of `selection` it offered.
async fn fetch_from_host(
    client: &mut Client,
    offered: &HashMap<ClipboardSelection, Vec<String>>,
    selection: ClipboardSelection,
    mime: Option<String>,
) -> Result<(String, Vec<u8>), String> {
    let types = offered
        .get(&selection)
        .ok_or("the host no longer offers this selection")?;
    let want = mime.unwrap_or_else(|| crate::clipboard::mime::TEXT.to_string());
    let pick = types
        .iter()
        .find(|t| **t == want || (is_text(t) && is_text(&want)))
        .cloned()
        .ok_or_else(|| format!("the host offers {}, not {want}", types.join(", ")))?;
    let data = client
        .call::<GuestlinkClipboardFetch>(&ClipboardSelectionArgs {
            selection: Some(selection),
            mime_type: Some(pick),
        })
        .await
        .map_err(|e| e.to_string())?;
    // A host with another image format than the PNG wanted: converted here.
    convert::as_wanted(Some(&want), (data.mime_type, data.data.0)).await
}

fn selection_of(args: &Value) -> ClipboardSelection {
    args["selection"]
        .as_str()
        .and_then(ClipboardSelection::from_wire)
        .unwrap_or(ClipboardSelection::Clipboard)
}

/// Runs one request from guestlinkd on the desktop.
async fn act(
    client: &mut Client,
    clipboard: &Clipboard,
    displays: Option<Displays>,
    offered: &mut HashMap<ClipboardSelection, Vec<String>>,
    command: &str,
    args: &Value,
) -> Result<Value, String> {
    let selection = selection_of(args);
    match command {
        c if c == GuestlinkClipboardGet::NAME => {
            let mime = args["mime-type"].as_str().map(String::from);
            let (mime_type, data) = if offered.contains_key(&selection) {
                fetch_from_host(client, offered, selection, mime).await?
            } else {
                convert::get(clipboard, selection, mime).await?
            };
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
            offered.remove(&selection);
            clipboard.set(selection, mime.to_string(), data).await?;
            Ok(Value::Object(Default::default()))
        }
        c if c == GuestlinkClipboardOffer::NAME => {
            let types: Vec<String> = args["types"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|t| t.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            if types.is_empty() {
                // The host let go: if what it offered is still ours, empty it.
                if offered.remove(&selection).is_some() {
                    clipboard.clear(selection).await?;
                }
                return Ok(Value::Object(Default::default()));
            }
            offered.insert(selection, types.clone());
            if clipboard.lazy {
                clipboard.offer(selection, types).await?;
            } else {
                // Wayland: the source needs its data now.
                let (mime, data) =
                    fetch_from_host(client, offered, selection, types.first().cloned()).await?;
                clipboard.set(selection, mime, data).await?;
            }
            Ok(Value::Object(Default::default()))
        }
        c if c == GuestlinkDisplaySet::NAME => {
            let layout: DisplaySetArgs =
                serde_json::from_value(args.clone()).map_err(|e| e.to_string())?;
            let Some(which) = displays else {
                return Err("this session cannot take a display layout".into());
            };
            crate::displays::apply(which, layout.displays).await?;
            Ok(Value::Object(Default::default()))
        }
        c if c == GuestlinkClipboardClear::NAME => {
            offered.remove(&selection);
            clipboard.clear(selection).await?;
            Ok(Value::Object(Default::default()))
        }
        other => Err(format!("this session agent does not do '{other}'")),
    }
}
