//! A lazy Wayland selection for the host: a wlr-data-control source that offers the
//! host's MIME types and fetches the data from the host only when a program pastes
//! (wl-clipboard-rs's sources need their data up front).
//!
//! Each offer runs on a thread of its own with its own connection, until another
//! program takes the selection (the source is cancelled) or the agent takes it again.
//! A paste's `send` is answered on a thread of its own, so that a paste that waits for
//! the host does not hold up the others or the cancellation (at most
//! [`PASTES_AT_ONCE`] at a time); what the host sent is kept per type, so a second
//! paste asks the host nothing.

use std::collections::HashMap;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};

use guestlink_vocabulary::types::ClipboardSelection;
use tokio::sync::mpsc;
use wayland_client::globals::{registry_queue_init, GlobalListContents};
use wayland_client::protocol::{wl_registry, wl_seat};
use wayland_client::{event_created_child, Connection, Dispatch, Proxy, QueueHandle};
use wayland_protocols_wlr::data_control::v1::client::{
    zwlr_data_control_device_v1::{self, ZwlrDataControlDeviceV1},
    zwlr_data_control_manager_v1::ZwlrDataControlManagerV1,
    zwlr_data_control_offer_v1::ZwlrDataControlOfferV1,
    zwlr_data_control_source_v1::{self, ZwlrDataControlSourceV1},
};

use super::mime::{is_text, targets_of_type, TEXT};
use super::{fetch_blocking, Fetch, PasteSlot, PASTES_AT_ONCE};

/// What the host sent so far, per MIME type.
type Fetched = Arc<Mutex<HashMap<String, Vec<u8>>>>;

/// The state of one offer's connection.
struct Offer {
    selection: ClipboardSelection,
    fetches: mpsc::Sender<Fetch>,
    fetched: Fetched,
    cancelled: bool,
}

/// Whether the compositor has wlr-data-control (with primary selections when
/// `primary`): the offer works there.
pub fn supported(primary: bool) -> bool {
    let Ok(conn) = Connection::connect_to_env() else {
        return false;
    };
    let Ok((globals, _)) = registry_queue_init::<Offer>(&conn) else {
        return false;
    };
    globals.contents().with_list(|list| {
        list.iter().any(|g| {
            g.interface == ZwlrDataControlManagerV1::interface().name
                && (!primary || g.version >= 2)
        })
    })
}

/// Takes `selection` for the host, offering `types`; returns once the compositor has
/// it, and serves pastes on a thread until another program takes it.
pub fn start(
    selection: ClipboardSelection,
    types: &[String],
    fetches: mpsc::Sender<Fetch>,
) -> Result<(), String> {
    let conn = Connection::connect_to_env().map_err(|e| e.to_string())?;
    let (globals, mut queue) = registry_queue_init::<Offer>(&conn).map_err(|e| e.to_string())?;
    let qh = queue.handle();
    let min = match selection {
        ClipboardSelection::Clipboard => 1,
        ClipboardSelection::Primary => 2,
    };
    let manager: ZwlrDataControlManagerV1 = globals
        .bind(&qh, min..=2, ())
        .map_err(|e| format!("the compositor has no data-control for this selection: {e}"))?;
    let seat: wl_seat::WlSeat = globals
        .bind(&qh, 1..=1, ())
        .map_err(|e| format!("the compositor has no seat: {e}"))?;
    let source = manager.create_data_source(&qh, ());
    let mut names: Vec<&str> = Vec::new();
    for t in types {
        for name in targets_of_type(t) {
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    for name in &names {
        source.offer(name.to_string());
    }
    let device = manager.get_data_device(&seat, &qh, ());
    match selection {
        ClipboardSelection::Clipboard => device.set_selection(Some(&source)),
        ClipboardSelection::Primary => device.set_primary_selection(Some(&source)),
    }
    let mut state = Offer {
        selection,
        fetches,
        fetched: Arc::default(),
        cancelled: false,
    };
    // The compositor has taken it once this round trip is back.
    queue.roundtrip(&mut state).map_err(|e| e.to_string())?;
    std::thread::Builder::new()
        .name("wayland-offer".into())
        .spawn(move || {
            while !state.cancelled {
                if let Err(e) = queue.blocking_dispatch(&mut state) {
                    tracing::warn!("the Wayland offer stopped: {e}");
                    break;
                }
            }
            source.destroy();
            device.destroy();
            let _ = conn.flush();
        })
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// Answers one paste of `mime` into `fd`, from what the host sent or by asking it.
fn answer(
    selection: ClipboardSelection,
    mime: String,
    fd: OwnedFd,
    fetches: mpsc::Sender<Fetch>,
    fetched: Fetched,
) {
    let want = if is_text(&mime) || targets_of_type(TEXT).contains(&mime.as_str()) {
        TEXT.to_string()
    } else {
        mime
    };
    let known = fetched
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&want)
        .cloned();
    let data = match known {
        Some(d) => d,
        None => match fetch_blocking(&fetches, selection, &want) {
            Ok((_, d)) => {
                fetched
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(want.clone(), d.clone());
                d
            }
            Err(e) => {
                // The paste gets nothing: the pipe closes empty.
                tracing::warn!("a paste of {want} got nothing from the host: {e}");
                return;
            }
        },
    };
    if let Err(e) = std::fs::File::from(fd).write_all(&data) {
        tracing::debug!("the pasting program stopped reading: {e}");
    }
}

impl Dispatch<ZwlrDataControlSourceV1, ()> for Offer {
    fn event(
        state: &mut Self,
        _: &ZwlrDataControlSourceV1,
        event: zwlr_data_control_source_v1::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        match event {
            zwlr_data_control_source_v1::Event::Send { mime_type, fd } => {
                let Some(slot) = PasteSlot::take() else {
                    // The pipe closes empty.
                    tracing::warn!("a paste of {mime_type} got nothing: {PASTES_AT_ONCE} pastes are being answered");
                    return;
                };
                let (sel, fetches, fetched) = (
                    state.selection,
                    state.fetches.clone(),
                    state.fetched.clone(),
                );
                let spawned = std::thread::Builder::new()
                    .name("wayland-paste".into())
                    .spawn(move || {
                        answer(sel, mime_type, fd, fetches, fetched);
                        drop(slot);
                    });
                if let Err(e) = spawned {
                    tracing::warn!("cannot answer a paste: {e}");
                }
            }
            zwlr_data_control_source_v1::Event::Cancelled => state.cancelled = true,
            _ => {}
        }
    }
}

impl Dispatch<ZwlrDataControlDeviceV1, ()> for Offer {
    fn event(
        state: &mut Self,
        _: &ZwlrDataControlDeviceV1,
        event: zwlr_data_control_device_v1::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        // The device going away ends the offer too.
        if let zwlr_data_control_device_v1::Event::Finished = event {
            state.cancelled = true;
        }
    }

    event_created_child!(Offer, ZwlrDataControlDeviceV1, [
        zwlr_data_control_device_v1::EVT_DATA_OFFER_OPCODE => (ZwlrDataControlOfferV1, ()),
    ]);
}

/// Objects whose events say nothing the offer needs.
macro_rules! ignore_events {
    ($($iface:ty, $udata:ty);* $(;)?) => {$(
        impl Dispatch<$iface, $udata> for Offer {
            fn event(
                _: &mut Self,
                _: &$iface,
                _: <$iface as Proxy>::Event,
                _: &$udata,
                _: &Connection,
                _: &QueueHandle<Self>,
            ) {
            }
        }
    )*};
}

ignore_events!(
    wl_registry::WlRegistry, GlobalListContents;
    wl_seat::WlSeat, ();
    ZwlrDataControlManagerV1, ();
    ZwlrDataControlOfferV1, ();
);
