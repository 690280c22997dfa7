//! The clipboard on GNOME on Wayland, through Mutter's remote desktop clipboard
//! (`org.gnome.Mutter.RemoteDesktop.Session`), the API gnome-remote-desktop uses: Mutter
//! has no data-control protocol, so a Wayland client without keyboard focus can neither
//! read nor take the selection.
//!
//! The back end creates a remote desktop session of its own and never starts it (no
//! input devices, no screen sharing, no "remote desktop" indicator in GNOME Shell), then
//! enables its clipboard:
//! - another program's copy arrives as `SelectionOwnerChanged` with its MIME types (our
//!   own source's is recognised by `session-is-owner` and not reported);
//! - reading is `SelectionRead(type)`, whose pipe Mutter fills from the owner;
//! - taking the selection is `SetSelection` with our types; each paste then arrives as
//!   `SelectionTransfer(type, serial)`, answered by writing into the pipe of
//!   `SelectionWrite(serial)` and confirming with `SelectionWriteDone`. A host offer is
//!   lazy this way too: its data is fetched from the host when the transfer comes.
//!
//! Mutter's API covers the clipboard only, not the primary selection; it cancels a
//! transfer left unanswered for 15 seconds.

use std::collections::HashMap;
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use guestlink_vocabulary::types::ClipboardSelection;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::pipe;
use tokio::sync::mpsc;
use zbus::{OwnedObjectPath, OwnedVariant, Proxy, Variant};

use super::mime::{is_text, targets_of_type, types_of_targets, TEXT, TEXT_TARGETS};
use super::{
    channels, fetch_blocking, Change, Clipboard, Ends, Fetch, PasteSlot, Request, PASTES_AT_ONCE,
    READ_LIMIT,
};

const NAME: &str = "org.gnome.Mutter.RemoteDesktop";
const PATH: &str = "/org/gnome/Mutter/RemoteDesktop";
const SESSION: &str = "org.gnome.Mutter.RemoteDesktop.Session";

/// How long Mutter has to answer at start-up before the back end gives up.
const START_WAIT: Duration = Duration::from_secs(5);
/// How long the current owner has to hand its contents over.
const READ_WAIT: Duration = Duration::from_secs(10);

/// What the selection holds while it is ours: the host's data, or the host's offer
/// and what was fetched of it so far.
#[derive(Debug, Clone)]
enum Own {
    /// Contents of one type (every text type when it is text).
    Data { mime: String, data: Arc<Vec<u8>> },
    /// Types offered by the host; the data is fetched per type on the first paste.
    Offer {
        fetched: Arc<Mutex<HashMap<String, Arc<Vec<u8>>>>>,
    },
}

/// The back end's state, owned by its thread.
struct Mutter {
    session: Proxy<'static>,
    /// Ours while we own the selection.
    own: Option<Own>,
    /// The MIME types of the current owner when it is another program.
    types: Vec<String>,
    changes: mpsc::Sender<Change>,
    fetches: mpsc::Sender<Fetch>,
}

/// Starts the back end; fails when the session bus has no Mutter remote desktop.
pub fn start() -> anyhow::Result<Clipboard> {
    let (handle, ends) = channels(true);
    let (ready_tx, ready_rx) = std_mpsc::channel();
    std::thread::Builder::new()
        .name("mutter-clipboard".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(e.to_string()));
                    return;
                }
            };
            rt.block_on(run(ends, ready_tx));
        })?;
    match ready_rx.recv_timeout(START_WAIT) {
        Ok(Ok(())) => Ok(handle),
        Ok(Err(e)) => Err(anyhow::anyhow!("no Mutter remote desktop clipboard: {e}")),
        Err(_) => Err(anyhow::anyhow!(
            "no Mutter remote desktop clipboard: Mutter did not answer"
        )),
    }
}

/// Creates the session, enables its clipboard and serves until the agent stops.
async fn run(ends: Ends, ready: std_mpsc::Sender<Result<(), String>>) {
    let Ends {
        requests,
        changes,
        fetches,
    } = ends;
    let (session, mut owners, mut transfers) = match connect().await {
        Ok(v) => v,
        Err(e) => {
            let _ = ready.send(Err(e.to_string()));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    // The agent's requests come on a std channel: a thread hands them over.
    let (rtx, mut rrx) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        while let Ok(r) = requests.recv() {
            if rtx.send(r).is_err() {
                return;
            }
        }
    });
    let mut m = Mutter {
        session,
        own: None,
        types: Vec::new(),
        changes,
        fetches,
    };
    loop {
        tokio::select! {
            r = rrx.recv() => match r {
                Some(r) => m.answer(r).await,
                None => break,
            },
            s = owners.next() => match s {
                Some(msg) => m.owner_changed(&msg).await,
                None => break,
            },
            s = transfers.next() => match s {
                Some(msg) => m.transfer(&msg),
                None => break,
            },
        }
    }
    tracing::info!("Mutter's remote desktop clipboard stopped");
}

type Signals = zbus::proxy::SignalStream<'static>;

/// A remote desktop session with its clipboard enabled, and its two signals.
async fn connect() -> zbus::Result<(Proxy<'static>, Signals, Signals)> {
    let bus = zbus::Connection::session().await?;
    let desktop = Proxy::new(&bus, NAME, PATH, NAME).await?;
    let path: OwnedObjectPath = desktop.call("CreateSession", &()).await?;
    let session = Proxy::new_owned(bus, NAME, path, SESSION).await?;
    // Subscribed first: enabling reports the current owner at once.
    let owners = session.receive_signal("SelectionOwnerChanged").await?;
    let transfers = session.receive_signal("SelectionTransfer").await?;
    session
        .call::<_, _, ()>("EnableClipboard", &(HashMap::<&str, Variant>::new(),))
        .await?;
    Ok((session, owners, transfers))
}

/// Every string in a value (Mutter sends the types as `(as)`).
fn strings(v: &Variant<'_>, out: &mut Vec<String>) {
    match v {
        Variant::Str(s) => out.push(s.to_string()),
        Variant::Array(a) => a.inner().iter().for_each(|v| strings(v, out)),
        Variant::Structure(s) => s.fields().iter().for_each(|v| strings(v, out)),
        Variant::Variant(v) => strings(v, out),
        _ => {}
    }
}

/// The owner's types and whether the owner is us, from `SelectionOwnerChanged`.
fn owner_of(options: &HashMap<String, OwnedVariant>) -> (Vec<String>, bool) {
    let mut types = Vec::new();
    if let Some(v) = options.get("mime-types") {
        strings(v, &mut types);
    }
    let ours = options
        .get("session-is-owner")
        .and_then(|v| bool::try_from(v).ok())
        .unwrap_or(false);
    (types, ours)
}

/// The type to read for `want` (text when `None`) among the owner's `types`.
fn choose(types: &[String], want: Option<&str>) -> Result<String, String> {
    if types.is_empty() {
        return Err("the selection is empty".into());
    }
    let want = want.unwrap_or(TEXT);
    let found = if is_text(want) {
        std::iter::once(TEXT)
            .chain(TEXT_TARGETS.iter().copied())
            .find(|t| types.iter().any(|have| have == t))
    } else {
        types.iter().map(String::as_str).find(|t| *t == want)
    };
    found
        .map(str::to_string)
        .ok_or_else(|| format!("the selection offers no {want}"))
}

/// What our own selection holds in `mime`, if we have it without asking the host.
fn own_data(own: &Own, mime: &str) -> Option<(String, Arc<Vec<u8>>)> {
    match own {
        Own::Data { mime: have, data } => {
            let text = is_text(have) && (is_text(mime) || TEXT_TARGETS.contains(&mime));
            (have == mime || text).then(|| (have.clone(), data.clone()))
        }
        Own::Offer { fetched } => {
            let fetched = fetched.lock().unwrap_or_else(|e| e.into_inner());
            fetched.get(mime).map(|d| (mime.to_string(), d.clone()))
        }
    }
}

impl Mutter {
    async fn answer(&mut self, r: Request) {
        match r {
            Request::Get {
                selection,
                mime,
                reply,
            } => {
                let _ = reply.send(self.get(selection, mime).await);
            }
            Request::Set {
                selection,
                mime,
                data,
                reply,
            } => {
                let types = targets_of_type(&mime)
                    .into_iter()
                    .map(str::to_string)
                    .collect();
                let own = Own::Data {
                    mime,
                    data: Arc::new(data),
                };
                let _ = reply.send(self.take(selection, types, own).await);
            }
            Request::Offer {
                selection,
                types,
                reply,
            } => {
                let own = Own::Offer {
                    fetched: Arc::default(),
                };
                let types = types
                    .iter()
                    .flat_map(|t| targets_of_type(t))
                    .map(str::to_string)
                    .collect();
                let _ = reply.send(self.take(selection, types, own).await);
            }
            Request::Clear { selection, reply } => {
                let _ = reply.send(self.clear(selection).await);
            }
        }
    }

    async fn get(
        &mut self,
        selection: ClipboardSelection,
        mime: Option<String>,
    ) -> Result<(String, Vec<u8>), String> {
        only_clipboard(selection)?;
        if let Some(own) = &self.own {
            // Mutter refuses to read our own selection back: it is answered here.
            let want = mime.as_deref().unwrap_or(TEXT);
            return own_data(own, want)
                .map(|(m, d)| (m, d.to_vec()))
                .ok_or_else(|| format!("the selection holds the host's data, not {want}"));
        }
        let read = choose(&self.types, mime.as_deref())?;
        let fd: zbus::OwnedFd = self
            .session
            .call("SelectionRead", &(read.as_str(),))
            .await
            .map_err(|e| format!("Mutter refused the read: {e}"))?;
        let data = tokio::time::timeout(READ_WAIT, read_pipe(fd.into()))
            .await
            .map_err(|_| "the selection's owner did not send its contents in time".to_string())??;
        let mime = if is_text(&read) || TEXT_TARGETS.contains(&read.as_str()) {
            TEXT.to_string()
        } else {
            read
        };
        Ok((mime, data))
    }

    /// Takes the clipboard with `types`, answering pastes from `own`.
    async fn take(
        &mut self,
        selection: ClipboardSelection,
        types: Vec<String>,
        own: Own,
    ) -> Result<(), String> {
        only_clipboard(selection)?;
        if types.is_empty() {
            return Err("nothing offered".into());
        }
        let mut options = HashMap::new();
        options.insert("mime-types", Variant::from(types));
        // Ours before Mutter announces it: a paste may follow at once.
        self.own = Some(own);
        self.session
            .call::<_, _, ()>("SetSelection", &(options,))
            .await
            .map_err(|e| {
                self.own = None;
                format!("Mutter refused the selection: {e}")
            })
    }

    async fn clear(&mut self, selection: ClipboardSelection) -> Result<(), String> {
        only_clipboard(selection)?;
        if self.own.take().is_none() {
            // Mutter lets a session give up only its own selection.
            return Ok(());
        }
        self.session
            .call::<_, _, ()>("SetSelection", &(HashMap::<&str, Variant>::new(),))
            .await
            .map_err(|e| e.to_string())
    }

    async fn owner_changed(&mut self, msg: &zbus::Message) {
        let Ok((options,)) = msg.body().deserialize::<(HashMap<String, OwnedVariant>,)>() else {
            tracing::warn!("Mutter sent a SelectionOwnerChanged without its options");
            return;
        };
        let (types, ours) = owner_of(&options);
        if ours {
            return;
        }
        // Another program took the selection, or nobody holds it any more.
        self.own = None;
        let change = Change {
            selection: ClipboardSelection::Clipboard,
            types: types_of_targets(types.iter().map(String::as_str)),
        };
        self.types = types;
        let _ = self.changes.send(change).await;
    }

    /// A paste of our selection: answered on a task of its own, so that one waiting for
    /// the host holds up nothing else (at most [`PASTES_AT_ONCE`] at a time).
    fn transfer(&mut self, msg: &zbus::Message) {
        let Ok((mime, serial)) = msg.body().deserialize::<(String, u32)>() else {
            tracing::warn!("Mutter sent a SelectionTransfer without its type and serial");
            return;
        };
        let session = self.session.clone();
        let own = self.own.clone();
        let fetches = self.fetches.clone();
        let slot = PasteSlot::take();
        tokio::spawn(async move {
            let data = match (own, &slot) {
                (_, None) => Err(format!("{PASTES_AT_ONCE} pastes are being answered")),
                (None, _) => Err("the selection is no longer ours".to_string()),
                (Some(own), Some(_)) => contents(&own, &mime, fetches).await,
            };
            if let Err(e) = write_transfer(&session, serial, data).await {
                tracing::warn!("answering a paste of {mime}: {e}");
            }
        });
    }
}

/// What a paste of `mime` gets: our data, or the host's, fetched once per type.
async fn contents(
    own: &Own,
    mime: &str,
    fetches: mpsc::Sender<Fetch>,
) -> Result<Arc<Vec<u8>>, String> {
    if let Some((_, d)) = own_data(own, mime) {
        return Ok(d);
    }
    let Own::Offer { fetched } = own else {
        return Err(format!("the selection holds no {mime}"));
    };
    // The host is asked for the type it offered (text under one name).
    let ask = if TEXT_TARGETS.contains(&mime) || is_text(mime) {
        TEXT.to_string()
    } else {
        mime.to_string()
    };
    let (_, data) = tokio::task::spawn_blocking(move || {
        fetch_blocking(&fetches, ClipboardSelection::Clipboard, &ask)
    })
    .await
    .map_err(|e| e.to_string())??;
    let data = Arc::new(data);
    fetched
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(mime.to_string(), data.clone());
    Ok(data)
}

/// Hands `data` to Mutter for the transfer `serial` (an empty, failed transfer when
/// there is none).
async fn write_transfer(
    session: &Proxy<'static>,
    serial: u32,
    data: Result<Arc<Vec<u8>>, String>,
) -> Result<(), String> {
    let fd: zbus::OwnedFd = session
        .call("SelectionWrite", &(serial,))
        .await
        .map_err(|e| e.to_string())?;
    let written = match &data {
        Ok(d) => write_pipe(fd.into(), d).await,
        Err(_) => Ok(()),
    };
    let ok = data.is_ok() && written.is_ok();
    session
        .call::<_, _, ()>("SelectionWriteDone", &(serial, ok))
        .await
        .map_err(|e| e.to_string())?;
    data.map(|_| ())?;
    written
}

async fn read_pipe(fd: std::os::fd::OwnedFd) -> Result<Vec<u8>, String> {
    let mut rx = pipe::Receiver::from_owned_fd(fd).map_err(|e| e.to_string())?;
    let mut data = Vec::new();
    let mut limited = (&mut rx).take(READ_LIMIT as u64 + 1);
    limited
        .read_to_end(&mut data)
        .await
        .map_err(|e| e.to_string())?;
    if data.len() > READ_LIMIT {
        return Err(format!("the selection is larger than {READ_LIMIT} bytes"));
    }
    Ok(data)
}

async fn write_pipe(fd: std::os::fd::OwnedFd, data: &[u8]) -> Result<(), String> {
    let mut tx = pipe::Sender::from_owned_fd(fd).map_err(|e| e.to_string())?;
    tx.write_all(data).await.map_err(|e| e.to_string())
}

fn only_clipboard(selection: ClipboardSelection) -> Result<(), String> {
    match selection {
        ClipboardSelection::Clipboard => Ok(()),
        ClipboardSelection::Primary => {
            Err("Mutter's remote desktop clipboard has no primary selection".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_read_in_its_best_type() {
        let types = |t: &[&str]| t.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            choose(&types(&["STRING", "UTF8_STRING", "image/png"]), None).unwrap(),
            "UTF8_STRING"
        );
        assert_eq!(
            choose(&types(&["text/plain", TEXT]), Some("text/plain")).unwrap(),
            TEXT
        );
        assert_eq!(
            choose(&types(&["image/png"]), Some("image/png")).unwrap(),
            "image/png"
        );
        assert_eq!(
            choose(&types(&["image/png"]), None).unwrap_err(),
            "the selection offers no text/plain;charset=utf-8"
        );
        assert_eq!(choose(&[], None).unwrap_err(), "the selection is empty");
    }

    #[test]
    fn own_text_answers_every_text_type() {
        let own = Own::Data {
            mime: TEXT.into(),
            data: Arc::new(b"hi".to_vec()),
        };
        for t in ["UTF8_STRING", "text/plain", TEXT, "STRING"] {
            assert_eq!(own_data(&own, t).unwrap().1.as_slice(), b"hi", "{t}");
        }
        assert!(own_data(&own, "image/png").is_none());
        let png = Own::Data {
            mime: "image/png".into(),
            data: Arc::new(vec![1]),
        };
        assert!(own_data(&png, TEXT).is_none());
        assert!(own_data(&png, "image/png").is_some());
    }

    #[test]
    fn owner_changes_are_read_from_either_shape() {
        let mut options = HashMap::new();
        let types = vec!["UTF8_STRING".to_string(), "image/png".to_string()];
        options.insert(
            "mime-types".to_string(),
            OwnedVariant::try_from(Variant::from((types.clone(),))).unwrap(),
        );
        options.insert("session-is-owner".to_string(), OwnedVariant::from(true));
        assert_eq!(owner_of(&options), (types.clone(), true));
        options.insert(
            "mime-types".to_string(),
            OwnedVariant::try_from(Variant::from(types.clone())).unwrap(),
        );
        options.remove("session-is-owner");
        assert_eq!(owner_of(&options), (types, false));
        assert_eq!(owner_of(&HashMap::new()), (vec![], false));
    }
}
