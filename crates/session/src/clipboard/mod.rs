//! Clipboard back ends of the session agent, chosen at run time: Wayland (the
//! compositor's data-control protocol), X11 (through the X server's selections, with
//! XFIXES telling who owns them) and headless (in memory, for tests and for sessions
//! without a display). Each runs on its own threads and is driven through a
//! [`Clipboard`] handle: requests in, ownership changes out.

pub mod headless;
pub mod mime;
pub mod wayland;
pub mod x11;

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
}

/// A handle and the ends its back end thread uses.
pub fn channels() -> (Clipboard, Ends) {
    let (rtx, rrx) = std_mpsc::channel();
    let (ctx, crx) = mpsc::channel(64);
    (
        Clipboard {
            requests: rtx,
            changes: crx,
        },
        Ends {
            requests: rrx,
            changes: ctx,
        },
    )
}

/// Which back end to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// Wayland when `WAYLAND_DISPLAY` is set and the compositor has data-control, else
    /// X11 when `DISPLAY` is set (Xwayland included), else headless.
    Auto,
    /// The Wayland compositor in `WAYLAND_DISPLAY`.
    Wayland,
    /// The X server in `DISPLAY`.
    X11,
    /// In memory.
    Headless,
}

/// Starts the chosen back end.
pub fn start(backend: Backend) -> anyhow::Result<Clipboard> {
    match backend {
        Backend::Wayland => wayland::start(),
        Backend::X11 => x11::start(),
        Backend::Headless => Ok(headless::start()),
        Backend::Auto => {
            if std::env::var_os("WAYLAND_DISPLAY").is_some() {
                match wayland::start() {
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
