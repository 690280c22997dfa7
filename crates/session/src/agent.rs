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
    GuestlinkClipboardClear, GuestlinkClipboardFetch, GuestlinkClipboardFetchRaw,
    GuestlinkClipboardGet, GuestlinkClipboardGrab, GuestlinkClipboardOffer, GuestlinkClipboardSet,
    GuestlinkDisplaySet, GuestlinkReplyRaw, GuestlinkSessionData, GuestlinkSessionRegister,
    GuestlinkSessionReply,
};
use guestlink_vocabulary::types::{
    base64_decode, ClipboardGrabArgs, ClipboardSelection, ClipboardSelectionArgs, DisplaySetArgs,
    RawReplyArgs, ReplyArgs, ReplyError, SessionDataArgs, SessionRegisterArgs,
};
use guestlink_vocabulary::Command;
use serde_json::Value;

use crate::clipboard::convert;
use crate::clipboard::mime::is_text;
use crate::clipboard::{Clipboard, Fetch, READ_LIMIT};
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
    // `binary`: clipboard bytes cross the socket raw (session-data, reply-raw).
    let mut capabilities = vec!["clipboard".to_string(), "binary".to_string()];
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
    let mut host = Host {
        // The host's data for a paste comes raw where guestlinkd has it.
        raw_fetch: client
            .offers(GuestlinkClipboardFetchRaw::NAME)
            .await
            .unwrap_or(false),
        offered: HashMap::new(),
    };
    loop {
        tokio::select! {
            event = client.next_event() => {
                let event = event?;
                if event.name != "SESSION_REQUEST" {
                    continue;
                }
                let tag = event.data["tag"].as_i64().unwrap_or(-1);
                let command = event.data["command"].as_str().unwrap_or_default().to_string();
                let request = Request { command: &command, tag, args: &event.data["arguments"] };
                let answer = act(client, clipboard, displays, &mut host, request).await;
                if let Err(e) = &answer {
                    tracing::info!(command = %command, "request failed: {e}");
                }
                let (ret, error) = match answer {
                    Ok(Done::Value(v)) => (Some(v), None),
                    Ok(Done::Clipboard(mime_type, data)) => {
                        // The bytes raw after the request, the type beside them.
                        let args = RawReplyArgs {
                            tag,
                            count: data.len() as i64,
                            ret: Some(serde_json::json!({ "mime-type": mime_type })),
                        };
                        client
                            .call_with_payload_up_to::<GuestlinkReplyRaw>(&args, &data, Some(READ_LIMIT))
                            .await?;
                        continue;
                    }
                    Err(desc) => (None, Some(ReplyError { class: None, desc })),
                };
                client.call::<GuestlinkSessionReply>(&ReplyArgs { tag, ret, error }).await?;
            }
            change = clipboard.changes.recv() => {
                let Some(change) = change else {
                    return Err(Stopped.into());
                };
                // Another program took the selection: the host's offer is gone.
                host.offered.remove(&change.selection);
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
                let answer = host.fetch(client, selection, Some(mime)).await;
                let _ = reply.send(answer);
            }
        }
    }
}

/// What the session knows of the host: the selections it owns, with the types it
/// offered, and whether their data can come raw.
struct Host {
    offered: HashMap<ClipboardSelection, Vec<String>>,
    raw_fetch: bool,
}

impl Host {
    /// The host's data for a paste of `selection` it offered.
    async fn fetch(
        &self,
        client: &mut Client,
        selection: ClipboardSelection,
        mime: Option<String>,
    ) -> Result<(String, Vec<u8>), String> {
        let types = self
            .offered
            .get(&selection)
            .ok_or("the host no longer offers this selection")?;
        let want = mime.unwrap_or_else(|| crate::clipboard::mime::TEXT.to_string());
        let pick = types
            .iter()
            .find(|t| **t == want || (is_text(t) && is_text(&want)))
            .cloned()
            .ok_or_else(|| format!("the host offers {}, not {want}", types.join(", ")))?;
        let args = ClipboardSelectionArgs {
            selection: Some(selection),
            mime_type: Some(pick),
        };
        let (mime_type, data) = if self.raw_fetch {
            let (head, data) = client
                .call_with_reply_payload::<GuestlinkClipboardFetchRaw>(&args, READ_LIMIT, |r| {
                    r.count
                })
                .await
                .map_err(|e| e.to_string())?;
            (head.mime_type, data)
        } else {
            let data = client
                .call::<GuestlinkClipboardFetch>(&args)
                .await
                .map_err(|e| e.to_string())?;
            (data.mime_type, data.data.0)
        };
        // A host with another image format than the PNG wanted: converted here.
        convert::as_wanted(Some(&want), (mime_type, data)).await
    }
}

fn selection_of(args: &Value) -> ClipboardSelection {
    args["selection"]
        .as_str()
        .and_then(ClipboardSelection::from_wire)
        .unwrap_or(ClipboardSelection::Clipboard)
}

/// What a request came to: a value to answer with, or clipboard bytes (sent raw).
enum Done {
    Value(Value),
    Clipboard(String, Vec<u8>),
}

fn done() -> Result<Done, String> {
    Ok(Done::Value(Value::Object(Default::default())))
}

/// The bytes of request `tag`: raw from guestlinkd (`session-data`) when it announced
/// `count`, else in base64 in `data`.
async fn bytes_of(client: &mut Client, tag: i64, args: &Value) -> Result<Vec<u8>, String> {
    if args.get("count").is_some() {
        let (_, data) = client
            .call_with_reply_payload::<GuestlinkSessionData>(
                &SessionDataArgs { tag },
                READ_LIMIT,
                |r| r.count,
            )
            .await
            .map_err(|e| e.to_string())?;
        return Ok(data);
    }
    base64_decode(args["data"].as_str().unwrap_or_default().as_bytes()).map_err(|e| e.to_string())
}

/// One `SESSION_REQUEST` from guestlinkd.
struct Request<'a> {
    command: &'a str,
    tag: i64,
    args: &'a Value,
}

/// Runs one request from guestlinkd on the desktop.
async fn act(
    client: &mut Client,
    clipboard: &Clipboard,
    displays: Option<Displays>,
    host: &mut Host,
    request: Request<'_>,
) -> Result<Done, String> {
    let Request { command, tag, args } = request;
    let selection = selection_of(args);
    match command {
        c if c == GuestlinkClipboardGet::NAME => {
            let mime = args["mime-type"].as_str().map(String::from);
            let (mime_type, data) = if host.offered.contains_key(&selection) {
                host.fetch(client, selection, mime).await?
            } else {
                convert::get(clipboard, selection, mime).await?
            };
            Ok(Done::Clipboard(mime_type, data))
        }
        c if c == GuestlinkClipboardSet::NAME => {
            let mime = args["mime-type"]
                .as_str()
                .unwrap_or("text/plain;charset=utf-8");
            let data = bytes_of(client, tag, args).await?;
            host.offered.remove(&selection);
            clipboard.set(selection, mime.to_string(), data).await?;
            done()
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
                if host.offered.remove(&selection).is_some() {
                    clipboard.clear(selection).await?;
                }
                return done();
            }
            host.offered.insert(selection, types.clone());
            if clipboard.lazy {
                clipboard.offer(selection, types).await?;
            } else {
                // Wayland: the source needs its data now.
                let (mime, data) = host
                    .fetch(client, selection, types.first().cloned())
                    .await?;
                clipboard.set(selection, mime, data).await?;
            }
            done()
        }
        c if c == GuestlinkDisplaySet::NAME => {
            let layout: DisplaySetArgs =
                serde_json::from_value(args.clone()).map_err(|e| e.to_string())?;
            let Some(which) = displays else {
                return Err("this session cannot take a display layout".into());
            };
            crate::displays::apply(which, layout.displays).await?;
            done()
        }
        c if c == GuestlinkClipboardClear::NAME => {
            host.offered.remove(&selection);
            clipboard.clear(selection).await?;
            done()
        }
        other => Err(format!("this session agent does not do '{other}'")),
    }
}
