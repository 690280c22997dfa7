//! The X11 clipboard back end.
//!
//! A hidden window takes part in the selection protocol (ICCCM): it watches who owns
//! CLIPBOARD and PRIMARY through XFIXES, asks a new owner for its TARGETS only (so a
//! large copy costs nothing until someone pastes) and reports them as MIME types, reads
//! contents on request with `ConvertSelection` (including the INCR protocol owners use
//! for large data), and owns a selection when the host sets it, answering other
//! clients' `SelectionRequest`s from memory. A selection the host offered without its
//! data is owned the same way; the first paste fetches the data from the host through
//! the agent (the thread waits for it) and keeps it for the next.
//!
//! One thread owns the X connection; it polls the request queue and the X event queue
//! in turn.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use guestlink_vocabulary::types::ClipboardSelection;
use tokio::sync::mpsc;
use x11rb::connection::{Connection, RequestConnection};
use x11rb::protocol::xfixes::{self, ConnectionExt as _};
use x11rb::protocol::xproto::{
    Atom, AtomEnum, ConnectionExt as _, CreateWindowAux, EventMask, PropMode, Property,
    SelectionNotifyEvent, SelectionRequestEvent, Window, WindowClass, SELECTION_NOTIFY_EVENT,
};
use x11rb::protocol::Event;
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;
use x11rb::{CURRENT_TIME, NONE};

use super::mime::{is_text, targets_of_type, types_of_targets, TEXT, TEXT_TARGETS};
use super::{channels, fetch_blocking, Change, Clipboard, Ends, Fetch, Selections, READ_LIMIT};

/// How long another client has to answer a conversion.
const CONVERT_TIMEOUT: Duration = Duration::from_secs(3);
/// Pause between polls of the two queues.
const POLL: Duration = Duration::from_millis(10);

type XResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

struct Owned {
    mime: String,
    /// `None` until fetched, for a selection the host offered.
    data: Option<Vec<u8>>,
    targets: Vec<Atom>,
}

struct X11 {
    conn: RustConnection,
    win: Window,
    atoms: HashMap<String, Atom>,
    clipboard: Atom,
    targets: Atom,
    incr: Atom,
    prop: Atom,
    owned: HashMap<ClipboardSelection, Owned>,
    /// Events that arrived while waiting for a conversion, handled afterwards.
    deferred: VecDeque<Event>,
    changes: mpsc::Sender<Change>,
    fetches: mpsc::Sender<Fetch>,
}

impl Selections for X11 {
    fn get(
        &mut self,
        selection: ClipboardSelection,
        mime: Option<String>,
    ) -> Result<(String, Vec<u8>), String> {
        self.read(selection, mime)
    }

    fn set(
        &mut self,
        selection: ClipboardSelection,
        mime: String,
        data: Vec<u8>,
    ) -> Result<(), String> {
        self.own(selection, mime, Some(data))
            .map_err(|e| e.to_string())
    }

    fn offer(&mut self, selection: ClipboardSelection, types: Vec<String>) -> Result<(), String> {
        let first = types.first().cloned().ok_or("nothing offered")?;
        let mut extra = Vec::new();
        for t in &types[1..] {
            for name in targets_of_type(t) {
                extra.push(self.atom(name).map_err(|e| e.to_string())?);
            }
        }
        self.own(selection, first, None)
            .map_err(|e| e.to_string())?;
        if let Some(o) = self.owned.get_mut(&selection) {
            for a in extra {
                if !o.targets.contains(&a) {
                    o.targets.push(a);
                }
            }
        }
        Ok(())
    }

    fn clear(&mut self, selection: ClipboardSelection) -> Result<(), String> {
        if self.owned.remove(&selection).is_some() {
            let sel = self.selection_atom(selection);
            self.conn
                .set_selection_owner(NONE, sel, CURRENT_TIME)
                .map_err(|e| e.to_string())?;
            self.conn.flush().map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

/// Connects to `DISPLAY` and starts the back end thread.
pub fn start() -> anyhow::Result<Clipboard> {
    let (conn, screen) = x11rb::connect(None).context("cannot connect to the X server")?;
    let (handle, ends) = channels(true);
    let mut x = X11::new(conn, screen, ends.changes.clone(), ends.fetches.clone())
        .map_err(|e| anyhow::anyhow!("cannot set up the X11 clipboard: {e}"))?;
    std::thread::Builder::new()
        .name("x11-clipboard".into())
        .spawn(move || {
            if let Err(e) = x.run(&ends) {
                tracing::error!("X11 clipboard stopped: {e}");
            }
        })?;
    Ok(handle)
}

impl X11 {
    fn new(
        conn: RustConnection,
        screen: usize,
        changes: mpsc::Sender<Change>,
        fetches: mpsc::Sender<Fetch>,
    ) -> XResult<X11> {
        let root = conn.setup().roots[screen].root;
        let win = conn.generate_id()?;
        conn.create_window(
            x11rb::COPY_DEPTH_FROM_PARENT,
            win,
            root,
            0,
            0,
            1,
            1,
            0,
            WindowClass::INPUT_OUTPUT,
            0,
            &CreateWindowAux::new().event_mask(EventMask::PROPERTY_CHANGE),
        )?;
        conn.xfixes_query_version(5, 0)?.reply()?;
        let mut x = X11 {
            conn,
            win,
            atoms: HashMap::new(),
            clipboard: NONE,
            targets: NONE,
            incr: NONE,
            prop: NONE,
            owned: HashMap::new(),
            deferred: VecDeque::new(),
            changes,
            fetches,
        };
        x.clipboard = x.atom("CLIPBOARD")?;
        x.targets = x.atom("TARGETS")?;
        x.incr = x.atom("INCR")?;
        x.prop = x.atom("GUESTLINK_SELECTION")?;
        let mask = xfixes::SelectionEventMask::SET_SELECTION_OWNER
            | xfixes::SelectionEventMask::SELECTION_WINDOW_DESTROY
            | xfixes::SelectionEventMask::SELECTION_CLIENT_CLOSE;
        for sel in [x.clipboard, AtomEnum::PRIMARY.into()] {
            x.conn.xfixes_select_selection_input(win, sel, mask)?;
        }
        x.conn.flush()?;
        Ok(x)
    }

    fn atom(&mut self, name: &str) -> XResult<Atom> {
        if let Some(a) = self.atoms.get(name) {
            return Ok(*a);
        }
        let a = self.conn.intern_atom(false, name.as_bytes())?.reply()?.atom;
        self.atoms.insert(name.to_string(), a);
        Ok(a)
    }

    fn atom_name(&self, atom: Atom) -> XResult<String> {
        let reply = self.conn.get_atom_name(atom)?.reply()?;
        Ok(String::from_utf8_lossy(&reply.name).into_owned())
    }

    fn selection_atom(&self, s: ClipboardSelection) -> Atom {
        match s {
            ClipboardSelection::Clipboard => self.clipboard,
            ClipboardSelection::Primary => AtomEnum::PRIMARY.into(),
        }
    }

    fn selection_of(&self, atom: Atom) -> Option<ClipboardSelection> {
        if atom == self.clipboard {
            Some(ClipboardSelection::Clipboard)
        } else if atom == Atom::from(AtomEnum::PRIMARY) {
            Some(ClipboardSelection::Primary)
        } else {
            None
        }
    }

    fn run(&mut self, ends: &Ends) -> XResult<()> {
        loop {
            loop {
                match ends.requests.try_recv() {
                    Ok(r) => r.answer(self),
                    Err(std::sync::mpsc::TryRecvError::Empty) => break,
                    Err(std::sync::mpsc::TryRecvError::Disconnected) => return Ok(()),
                }
            }
            while let Some(ev) = match self.deferred.pop_front() {
                Some(ev) => Some(ev),
                None => self.conn.poll_for_event()?,
            } {
                self.handle(ev)?;
            }
            std::thread::sleep(POLL);
        }
    }

    fn handle(&mut self, ev: Event) -> XResult<()> {
        match ev {
            Event::XfixesSelectionNotify(e) => {
                let Some(selection) = self.selection_of(e.selection) else {
                    return Ok(());
                };
                if e.owner == self.win {
                    return Ok(());
                }
                self.owned.remove(&selection);
                let types = if e.owner == NONE {
                    Vec::new()
                } else {
                    self.offered(e.selection).unwrap_or_else(|err| {
                        tracing::debug!("cannot read the new owner's targets: {err}");
                        Vec::new()
                    })
                };
                tracing::debug!(?selection, ?types, "selection changed hands");
                let _ = self.changes.blocking_send(Change { selection, types });
            }
            Event::SelectionRequest(e) => self.answer(&e)?,
            Event::SelectionClear(e) => {
                if let Some(s) = self.selection_of(e.selection) {
                    self.owned.remove(&s);
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The MIME types the owner of `selection` offers.
    fn offered(&mut self, selection: Atom) -> XResult<Vec<String>> {
        let Some((_, value)) = self.convert(selection, self.targets)? else {
            return Ok(Vec::new());
        };
        let mut names = Vec::new();
        for chunk in value.chunks_exact(4) {
            let atom = u32::from_ne_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            names.push(self.atom_name(atom)?);
        }
        Ok(types_of_targets(names.iter().map(String::as_str)))
    }

    /// Waits for an event that `want` accepts, keeping the others for later.
    fn wait_for(&mut self, deadline: Instant, want: impl Fn(&Event) -> bool) -> XResult<Event> {
        loop {
            if let Some(ev) = self.conn.poll_for_event()? {
                if want(&ev) {
                    return Ok(ev);
                }
                self.deferred.push_back(ev);
                continue;
            }
            if Instant::now() >= deadline {
                return Err("the selection owner did not answer".into());
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Asks the owner of `selection` for `target`: the property type and bytes, or
    /// `None` when it refuses.
    fn convert(&mut self, selection: Atom, target: Atom) -> XResult<Option<(Atom, Vec<u8>)>> {
        let (win, prop) = (self.win, self.prop);
        self.conn.delete_property(win, prop)?;
        self.conn
            .convert_selection(win, selection, target, prop, CURRENT_TIME)?;
        self.conn.flush()?;
        let deadline = Instant::now() + CONVERT_TIMEOUT;
        let ev = self.wait_for(deadline, |ev| {
            matches!(ev, Event::SelectionNotify(n) if n.requestor == win && n.selection == selection)
        })?;
        let Event::SelectionNotify(n) = ev else {
            unreachable!("wait_for returns only selection notifications");
        };
        if n.property == NONE {
            return Ok(None);
        }
        let reply = self
            .conn
            .get_property(true, win, prop, AtomEnum::ANY, 0, u32::MAX / 4)?
            .reply()?;
        if reply.type_ != self.incr {
            return Ok(Some((reply.type_, reply.value)));
        }
        // INCR: the owner sends pieces, each when we have deleted the previous one; an
        // empty piece ends it.
        self.conn.flush()?;
        let mut data = Vec::new();
        let mut ty = NONE;
        loop {
            let deadline = Instant::now() + CONVERT_TIMEOUT;
            self.wait_for(deadline, |ev| {
                matches!(ev, Event::PropertyNotify(p)
                    if p.window == win && p.atom == prop && p.state == Property::NEW_VALUE)
            })?;
            let piece = self
                .conn
                .get_property(true, win, prop, AtomEnum::ANY, 0, u32::MAX / 4)?
                .reply()?;
            self.conn.flush()?;
            if piece.value.is_empty() {
                return Ok(Some((ty, data)));
            }
            ty = piece.type_;
            if data.len() + piece.value.len() > READ_LIMIT {
                return Err(format!("the selection is larger than {READ_LIMIT} bytes").into());
            }
            data.extend_from_slice(&piece.value);
        }
    }

    fn read(
        &mut self,
        selection: ClipboardSelection,
        mime: Option<String>,
    ) -> Result<(String, Vec<u8>), String> {
        let want = mime.unwrap_or_else(|| TEXT.to_string());
        if let Some(o) = self.owned.get(&selection) {
            // Our own selection: converting it would wait for ourselves.
            return if o.mime == want || (is_text(&o.mime) && is_text(&want)) {
                o.data
                    .clone()
                    .map(|d| (o.mime.clone(), d))
                    .ok_or_else(|| "the host's data was not fetched yet".to_string())
            } else {
                Err(format!("the selection holds {}, not {want}", o.mime))
            };
        }
        let candidates: Vec<&str> = if is_text(&want) {
            TEXT_TARGETS.to_vec()
        } else {
            vec![want.as_str()]
        };
        let sel = self.selection_atom(selection);
        for name in candidates {
            let target = self.atom(name).map_err(|e| e.to_string())?;
            match self.convert(sel, target) {
                Ok(Some((_, data))) => {
                    let mime = if is_text(&want) {
                        TEXT.to_string()
                    } else {
                        want
                    };
                    return Ok((mime, data));
                }
                Ok(None) => continue,
                Err(e) => return Err(e.to_string()),
            }
        }
        Err(format!("the selection offers no {want}"))
    }

    fn own(
        &mut self,
        selection: ClipboardSelection,
        mime: String,
        data: Option<Vec<u8>>,
    ) -> XResult<()> {
        let mut targets = Vec::new();
        for name in targets_of_type(&mime) {
            targets.push(self.atom(name)?);
        }
        let sel = self.selection_atom(selection);
        self.conn.set_selection_owner(self.win, sel, CURRENT_TIME)?;
        let owner = self.conn.get_selection_owner(sel)?.reply()?.owner;
        if owner != self.win {
            return Err("the X server did not give us the selection".into());
        }
        self.owned.insert(
            selection,
            Owned {
                mime,
                data,
                targets,
            },
        );
        Ok(())
    }

    /// Fetches the host's data for a selection it offered, when `target` asks for it.
    fn fill(&mut self, selection: Option<ClipboardSelection>, target: Atom) -> XResult<()> {
        let Some(selection) = selection else {
            return Ok(());
        };
        let lazy = self
            .owned
            .get(&selection)
            .is_some_and(|o| o.data.is_none() && o.targets.contains(&target));
        if !lazy || target == self.targets {
            return Ok(());
        }
        let name = self.atom_name(target)?;
        let mime = types_of_targets([name.as_str()])
            .into_iter()
            .next()
            .unwrap_or(name);
        match fetch_blocking(&self.fetches, selection, &mime) {
            Ok((mime, data)) => {
                if let Some(o) = self.owned.get_mut(&selection) {
                    o.mime = mime;
                    o.data = Some(data);
                }
            }
            Err(e) => tracing::info!(?selection, "cannot get the host's clipboard: {e}"),
        }
        Ok(())
    }

    /// Answers another client's request for a selection we own.
    fn answer(&mut self, e: &SelectionRequestEvent) -> XResult<()> {
        // Obsolete clients give no property: use the target's name.
        let property = if e.property == NONE {
            e.target
        } else {
            e.property
        };
        let selection = self.selection_of(e.selection);
        self.fill(selection, e.target)?;
        let owned = selection.and_then(|s| self.owned.get(&s));
        let max = self.conn.maximum_request_bytes().saturating_sub(64);
        let ok = match owned {
            Some(o) if e.target == self.targets => {
                let mut list = o.targets.clone();
                list.push(self.targets);
                self.conn.change_property32(
                    PropMode::REPLACE,
                    e.requestor,
                    property,
                    AtomEnum::ATOM,
                    &list,
                )?;
                true
            }
            Some(Owned {
                data: Some(data),
                targets,
                ..
            }) if targets.contains(&e.target) && data.len() <= max => {
                self.conn.change_property8(
                    PropMode::REPLACE,
                    e.requestor,
                    property,
                    e.target,
                    data,
                )?;
                true
            }
            Some(Owned {
                data: Some(data),
                targets,
                ..
            }) if targets.contains(&e.target) => {
                tracing::warn!(
                    bytes = data.len(),
                    "clipboard too large to hand over in one piece; refused"
                );
                false
            }
            _ => false,
        };
        let notify = SelectionNotifyEvent {
            response_type: SELECTION_NOTIFY_EVENT,
            sequence: 0,
            time: e.time,
            requestor: e.requestor,
            selection: e.selection,
            target: e.target,
            property: if ok { property } else { NONE },
        };
        self.conn
            .send_event(false, e.requestor, EventMask::NO_EVENT, notify)?;
        self.conn.flush()?;
        Ok(())
    }
}
