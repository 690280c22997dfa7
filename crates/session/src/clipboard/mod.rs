//! Clipboard back ends of the session agent, chosen at run time: Wayland (the
//! compositor's data-control protocol), Mutter (GNOME's remote desktop clipboard, for
//! GNOME on Wayland, which has no data-control), X11 (through the X server's selections, with
//! XFIXES telling who owns them) and headless (in memory, for tests and for sessions
//! without a display). Each runs on its own threads and is driven through a
//! [`Clipboard`] handle: requests in, ownership changes out.
//!
//! When the host owns a selection without having sent it (a SPICE client's grab), a
//! lazy back end (X11, Wayland with wlr-data-control, Mutter, headless) takes the selection
//! with the types offered and asks for the data only when a program pastes: a [`Fetch`]
//! goes out to the agent, which gets it from the host. On a compositor without
//! wlr-data-control the agent fetches first and sets.

pub mod convert;
pub mod headless;
pub mod mime;
pub mod mutter;
pub mod wayland;
pub mod wayland_offer;
pub mod x11;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc as std_mpsc;

use guestlink_vocabulary::types::ClipboardSelection;
use tokio::sync::{mpsc, oneshot};

/// What a back end is asked to do.
#[derive(Debug)]
pub enum Request {
    /// The contents in `mime` (text when `None`): the type given and the bytes.
    Get {
        selection: ClipboardSelection,
        mime: Option<String>,
        reply: oneshot::Sender<Result<(String, Vec<u8>), String>>,
    },
    /// Own the selection with these contents.
    Set {
        selection: ClipboardSelection,
        mime: String,
        data: Vec<u8>,
        reply: oneshot::Sender<Result<(), String>>,
    },
    /// Own the selection for the host, offering `types`; the data is fetched when a
    /// program pastes.
    Offer {
        selection: ClipboardSelection,
        types: Vec<String>,
        reply: oneshot::Sender<Result<(), String>>,
    },
    /// Empty the selection (if we own it, let it go).
    Clear {
        selection: ClipboardSelection,
        reply: oneshot::Sender<Result<(), String>>,
    },
}

/// A lazy back end needs the host's data for a paste.
#[derive(Debug)]
pub struct Fetch {
    /// Which selection.
    pub selection: ClipboardSelection,
    /// The MIME type wanted.
    pub mime: String,
    /// Where the data goes.
    pub reply: std_mpsc::Sender<Result<(String, Vec<u8>), String>>,
}

/// What a back end does with the requests it is sent.
pub trait Selections {
    /// The contents of `selection` in `mime` (text when `None`).
    fn get(
        &mut self,
        selection: ClipboardSelection,
        mime: Option<String>,
    ) -> Result<(String, Vec<u8>), String>;
    /// Takes `selection` with `data` of type `mime`.
    fn set(
        &mut self,
        selection: ClipboardSelection,
        mime: String,
        data: Vec<u8>,
    ) -> Result<(), String>;
    /// Takes `selection` for the host, offering `types` without data yet.
    fn offer(&mut self, selection: ClipboardSelection, types: Vec<String>) -> Result<(), String>;
    /// Empties `selection`.
    fn clear(&mut self, selection: ClipboardSelection) -> Result<(), String>;
}

impl Request {
    /// Runs the request on `backend` and sends the answer back.
    pub fn answer(self, backend: &mut impl Selections) {
        match self {
            Request::Get {
                selection,
                mime,
                reply,
            } => {
                let _ = reply.send(backend.get(selection, mime));
            }
            Request::Set {
                selection,
                mime,
                data,
                reply,
            } => {
                let _ = reply.send(backend.set(selection, mime, data));
            }
            Request::Offer {
                selection,
                types,
                reply,
            } => {
                let _ = reply.send(backend.offer(selection, types));
            }
            Request::Clear { selection, reply } => {
                let _ = reply.send(backend.clear(selection));
            }
        }
    }
}

/// Another application took a selection (or let it go: no types).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Which selection.
    pub selection: ClipboardSelection,
    /// MIME types it offers now.
    pub types: Vec<String>,
}

/// A running back end.
#[derive(Debug)]
pub struct Clipboard {
    requests: std_mpsc::Sender<Request>,
    /// Ownership changes by other applications.
    pub changes: mpsc::Receiver<Change>,
    /// Pastes of what the host offered, needing its data.
    pub fetches: mpsc::Receiver<Fetch>,
    /// Whether the back end owns a selection for the host without its data.
    pub lazy: bool,
}

impl Clipboard {
    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, String>>) -> Request,
    ) -> Result<T, String> {
        let (tx, rx) = oneshot::channel();
        self.requests
            .send(make(tx))
            .map_err(|_| "the clipboard back end stopped".to_string())?;
        rx.await
            .map_err(|_| "the clipboard back end stopped".to_string())?
    }

    /// Reads a selection.
    pub async fn get(
        &self,
        selection: ClipboardSelection,
        mime: Option<String>,
    ) -> Result<(String, Vec<u8>), String> {
        self.ask(|reply| Request::Get {
            selection,
            mime,
            reply,
        })
        .await
    }

    /// Takes a selection for the host with `types` on offer.
    pub async fn offer(
        &self,
        selection: ClipboardSelection,
        types: Vec<String>,
    ) -> Result<(), String> {
        self.ask(|reply| Request::Offer {
            selection,
            types,
            reply,
        })
        .await
    }

    /// Empties a selection.
    pub async fn clear(&self, selection: ClipboardSelection) -> Result<(), String> {
        self.ask(|reply| Request::Clear { selection, reply }).await
    }

    /// Takes a selection with `data`.
    pub async fn set(
        &self,
        selection: ClipboardSelection,
        mime: String,
        data: Vec<u8>,
    ) -> Result<(), String> {
        self.ask(|reply| Request::Set {
            selection,
            mime,
            data,
            reply,
        })
        .await
    }
}

/// The channels a back end thread works with.
#[derive(Debug)]
pub struct Ends {
    /// Requests to serve.
    pub requests: std_mpsc::Receiver<Request>,
    /// Where changes go.
    pub changes: mpsc::Sender<Change>,
    /// Where fetches go.
    pub fetches: mpsc::Sender<Fetch>,
}

/// Pastes of a selection the host offered that are answered at once. Each is answered
/// on a thread or task of its own, which waits for the host for up to [`FETCH_WAIT`]
/// and then for the pasting program to read; a program pasting in a loop while the
/// host is slow would otherwise pile them up. A paste past the limit gets nothing.
pub const PASTES_AT_ONCE: usize = 8;

/// Pastes being answered now.
static PASTES: AtomicUsize = AtomicUsize::new(0);

/// One paste's place among [`PASTES_AT_ONCE`]; dropping it frees the place.
#[derive(Debug)]
pub struct PasteSlot(());

impl PasteSlot {
    /// A place for one more paste, if there is one.
    pub fn take() -> Option<PasteSlot> {
        PASTES
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < PASTES_AT_ONCE).then_some(n + 1)
            })
            .ok()
            .map(|_| PasteSlot(()))
    }
}

impl Drop for PasteSlot {
    fn drop(&mut self) {
        PASTES.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Gets the host's data for a paste of a selection it offered (blocking the back end's
/// thread until the agent has it).
pub fn fetch_blocking(
    fetches: &mpsc::Sender<Fetch>,
    selection: ClipboardSelection,
    mime: &str,
) -> Result<(String, Vec<u8>), String> {
    let (tx, rx) = std_mpsc::channel();
    fetches
        .blocking_send(Fetch {
            selection,
            mime: mime.to_string(),
            reply: tx,
        })
        .map_err(|_| "the agent stopped".to_string())?;
    rx.recv_timeout(FETCH_WAIT)
        .map_err(|_| "the host did not send the clipboard in time".to_string())?
}

/// The largest selection read from another program (the daemon's clipboard-size limit).
pub const READ_LIMIT: usize = guestlink_vocabulary::types::CLIPBOARD_SIZE;

/// How long a paste waits for the host's data (guestlinkd waits 30 s for the host).
pub const FETCH_WAIT: std::time::Duration = std::time::Duration::from_secs(35);

/// A handle and the ends its back end thread uses.
pub fn channels(lazy: bool) -> (Clipboard, Ends) {
    let (rtx, rrx) = std_mpsc::channel();
    let (ctx, crx) = mpsc::channel(64);
    let (ftx, frx) = mpsc::channel(16);
    (
        Clipboard {
            requests: rtx,
            changes: crx,
            fetches: frx,
            lazy,
        },
        Ends {
            requests: rrx,
            changes: ctx,
            fetches: ftx,
        },
    )
}

/// Which back end to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// Wayland when `WAYLAND_DISPLAY` is set and the compositor has data-control, else
    /// Mutter's remote desktop clipboard when it is on the session bus (GNOME on
    /// Wayland), else X11 when `DISPLAY` is set (Xwayland included), else headless.
    Auto,
    /// The Wayland compositor in `WAYLAND_DISPLAY`.
    Wayland,
    /// Mutter's remote desktop clipboard on the session bus (GNOME).
    Mutter,
    /// The X server in `DISPLAY`.
    X11,
    /// In memory.
    Headless,
}

/// Starts the chosen back end.
pub fn start(backend: Backend) -> anyhow::Result<Clipboard> {
    match backend {
        Backend::Wayland => wayland::start(),
        Backend::Mutter => mutter::start(),
        Backend::X11 => x11::start(),
        Backend::Headless => Ok(headless::start()),
        Backend::Auto => {
            if std::env::var_os("WAYLAND_DISPLAY").is_some() {
                match wayland::start() {
                    Ok(c) => return Ok(c),
                    Err(e) => tracing::info!("{e:#}; trying Mutter"),
                }
                match mutter::start() {
                    Ok(c) => return Ok(c),
                    Err(e) => tracing::warn!("{e:#}; trying X11"),
                }
            }
            if std::env::var_os("DISPLAY").is_some() {
                return x11::start();
            }
            tracing::info!("no display: the clipboard is held in memory");
            Ok(headless::start())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pastes_past_the_limit_get_no_place_until_one_ends() {
        let mut slots: Vec<PasteSlot> = (0..PASTES_AT_ONCE)
            .map(|_| PasteSlot::take().expect("a place"))
            .collect();
        assert!(PasteSlot::take().is_none());
        slots.pop();
        let again = PasteSlot::take();
        assert!(again.is_some());
        assert!(PasteSlot::take().is_none());
        drop(slots);
        drop(again);
        assert!(PasteSlot::take().is_some());
    }
}
