//! The Wayland clipboard back end, through the compositor's data-control protocol
//! (ext-data-control or wlr-data-control; GNOME's mutter has neither, wlroots
//! compositors and KDE have one).
//!
//! A watcher thread follows selection changes and reports the new owner's MIME types
//! (the contents are read only when asked). Reading connects, receives the chosen type
//! through a pipe and returns. Setting starts a source that a thread serves until
//! another application takes the selection; the change that our own source causes is
//! recognised and not reported. The host's offers (types without data) are lazy
//! sources of wlr-data-control ([`super::wayland_offer`]) when the compositor has it.

use std::collections::HashMap;
use std::io::Read;
use std::sync::{Arc, Mutex};

use guestlink_vocabulary::types::ClipboardSelection;
use wl_clipboard_rs::{copy, paste, watch};

use super::mime::{is_text, types_of_targets, TEXT};
use super::{channels, wayland_offer, Change, Clipboard, Ends, Fetch, Selections};

/// Sources we started and whose selection change is still to come, per selection.
type OwnChanges = Arc<Mutex<HashMap<ClipboardSelection, u32>>>;

fn paste_type(s: ClipboardSelection) -> paste::ClipboardType {
    match s {
        ClipboardSelection::Clipboard => paste::ClipboardType::Regular,
        ClipboardSelection::Primary => paste::ClipboardType::Primary,
    }
}

fn selection_of(c: paste::ClipboardType) -> ClipboardSelection {
    match c {
        paste::ClipboardType::Regular => ClipboardSelection::Clipboard,
        paste::ClipboardType::Primary => ClipboardSelection::Primary,
    }
}

/// Starts the back end; fails when there is no compositor or it lacks data-control.
pub fn start() -> anyhow::Result<Clipboard> {
    let watcher = match watch::Watcher::new(watch::ClipboardType::Both, paste::Seat::Unspecified) {
        Ok(w) => w,
        Err(paste::Error::PrimarySelectionUnsupported) => {
            watch::Watcher::new(watch::ClipboardType::Regular, paste::Seat::Unspecified)?
        }
        Err(e) => return Err(anyhow::anyhow!("no Wayland clipboard: {e}")),
    };
    let lazy = wayland_offer::supported(false);
    let (handle, ends) = channels(lazy);
    let own: OwnChanges = Arc::default();
    let changes = ends.changes.clone();
    let own_w = own.clone();
    std::thread::Builder::new()
        .name("wayland-watch".into())
        .spawn(move || watch_loop(watcher, own_w, changes))?;
    std::thread::Builder::new()
        .name("wayland-clipboard".into())
        .spawn(move || serve(ends, own, lazy))?;
    Ok(handle)
}

fn watch_loop(
    mut watcher: watch::Watcher,
    own: OwnChanges,
    changes: tokio::sync::mpsc::Sender<Change>,
) {
    loop {
        let change = match watcher.next_event() {
            Ok(Some(watch::ClipboardEvent::Changed {
                clipboard,
                mime_types,
                ..
            })) => Change {
                selection: selection_of(clipboard),
                types: types_of_targets(mime_types.iter().map(String::as_str)),
            },
            Ok(Some(watch::ClipboardEvent::Cleared { clipboard })) => Change {
                selection: selection_of(clipboard),
                types: Vec::new(),
            },
            Ok(None) => return,
            Err(e) => {
                tracing::error!("Wayland clipboard watch stopped: {e}");
                return;
            }
        };
        {
            let mut own = own.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(n) = own.get_mut(&change.selection).filter(|n| **n > 0) {
                *n -= 1;
                continue;
            }
        }
        if changes.blocking_send(change).is_err() {
            return;
        }
    }
}

fn get(selection: ClipboardSelection, mime: Option<String>) -> Result<(String, Vec<u8>), String> {
    let want = mime.unwrap_or_else(|| TEXT.to_string());
    let kind = if is_text(&want) {
        paste::MimeType::Text
    } else {
        paste::MimeType::Specific(&want)
    };
    let (mut pipe, got) =
        paste::get_contents(paste_type(selection), paste::Seat::Unspecified, kind).map_err(
            |e| match e {
                paste::Error::ClipboardEmpty | paste::Error::NoSeats => {
                    "the selection is empty".to_string()
                }
                paste::Error::NoMimeType => format!("the selection offers no {want}"),
                other => other.to_string(),
            },
        )?;
    let mut data = Vec::new();
    pipe.read_to_end(&mut data).map_err(|e| e.to_string())?;
    let mime = if is_text(&want) {
        TEXT.to_string()
    } else {
        got
    };
    Ok((mime, data))
}

fn set(
    selection: ClipboardSelection,
    mime: String,
    data: Vec<u8>,
    own: &OwnChanges,
) -> Result<(), String> {
    let mut options = copy::Options::new();
    options.foreground(true).clipboard(match selection {
        ClipboardSelection::Clipboard => copy::ClipboardType::Regular,
        ClipboardSelection::Primary => copy::ClipboardType::Primary,
    });
    let kind = if is_text(&mime) {
        copy::MimeType::Text
    } else {
        copy::MimeType::Specific(mime)
    };
    // Counted before the source exists: the watcher may see its change at once.
    count(own, selection, 1);
    let prepared = options
        .prepare_copy(copy::Source::Bytes(data.into_boxed_slice()), kind)
        .map_err(|e| {
            count(own, selection, -1);
            e.to_string()
        })?;
    // Serves paste requests until another application takes the selection.
    std::thread::spawn(move || {
        if let Err(e) = prepared.serve() {
            tracing::warn!("serving the Wayland clipboard failed: {e}");
        }
    });
    Ok(())
}

/// Counts (or uncounts) a change of `selection` that our own source causes.
fn count(own: &OwnChanges, selection: ClipboardSelection, delta: i32) {
    let mut own = own.lock().unwrap_or_else(|e| e.into_inner());
    let n = own.entry(selection).or_default();
    *n = n.saturating_add_signed(delta);
}

/// The compositor's selections, and the sources we serve.
struct Compositor {
    own: OwnChanges,
    /// Where lazy offers send pastes; `None` when the compositor cannot take them.
    fetches: Option<tokio::sync::mpsc::Sender<Fetch>>,
}

impl Selections for Compositor {
    fn get(
        &mut self,
        selection: ClipboardSelection,
        mime: Option<String>,
    ) -> Result<(String, Vec<u8>), String> {
        get(selection, mime)
    }

    fn set(
        &mut self,
        selection: ClipboardSelection,
        mime: String,
        data: Vec<u8>,
    ) -> Result<(), String> {
        set(selection, mime, data, &self.own)
    }

    fn offer(&mut self, selection: ClipboardSelection, types: Vec<String>) -> Result<(), String> {
        let Some(fetches) = &self.fetches else {
            return Err("this compositor's sources need their data up front".into());
        };
        if types.is_empty() {
            return Err("nothing offered".into());
        }
        count(&self.own, selection, 1);
        wayland_offer::start(selection, &types, fetches.clone()).inspect_err(|_| {
            count(&self.own, selection, -1);
        })
    }

    fn clear(&mut self, selection: ClipboardSelection) -> Result<(), String> {
        copy::clear(
            match selection {
                ClipboardSelection::Clipboard => copy::ClipboardType::Regular,
                ClipboardSelection::Primary => copy::ClipboardType::Primary,
            },
            copy::Seat::All,
        )
        .map_err(|e| e.to_string())
    }
}

fn serve(ends: Ends, own: OwnChanges, lazy: bool) {
    let Ends {
        requests,
        changes: _changes,
        fetches,
    } = ends;
    let mut compositor = Compositor {
        own,
        fetches: lazy.then_some(fetches),
    };
    while let Ok(r) = requests.recv() {
        r.answer(&mut compositor);
    }
}
