//! The SPICE vdagent front end (`com.redhat.spice.0`), the system half of what
//! spice-vdagentd did; the desktop half is `guestlink-session`.
//!
//! - [`link`]: the port, its write queue and the greeting to each new host;
//! - [`clipboard`]: selection owners, grab serials, pastes waiting for the host;
//! - [`transfer`]: file transfer key files, statuses, ids;
//! - [`mouse`]: MOUSE_STATE to pointer events through the display layout.
//!
//! Images: PNG is announced whenever the other side has any image format. The
//! conversion itself is the session agent's (`guestlink-session`), so guestlinkd
//! carries no image decoders: a host request for PNG of a guest BMP asks the session for
//! PNG, and a guest paste of PNG from a host with BMP only is answered with the BMP,
//! labelled as such, for the session to convert.
//!
//! Everything the host asks goes through the core's dispatch and policy gate as a
//! command of the shared vocabulary: a host grab is `clipboard-offer`, a host request
//! `clipboard-get`, a guest paste of host data arrives as a `GUEST_REQUEST` for
//! `clipboard-fetch`, a file is `transfer-start` / `transfer-write` /
//! `transfer-cancel`, a layout `display-set`. Only pointer injection is done here, on
//! the [`Pointer`] given at start.

pub mod clipboard;
mod link;
pub mod mouse;
mod outputs;
pub mod transfer;

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Mutex;

use futures_util::stream::{FuturesUnordered, StreamExt};
use guestlink_core::{Agent, Bulk, Call, CallContext, Connection, DispatchError, EventRecord};
use guestlink_platform::pointer::Pointer;
use guestlink_proto_vdagent::messages::{caps, MonitorsConfig};
use guestlink_proto_vdagent::{
    encode, AgentMessage, Capabilities, Decoder, Limits, MessageError, Negotiated, Port,
};
use guestlink_vocabulary::commands::{
    GuestlinkClipboardFetch, GuestlinkClipboardGet, GuestlinkClipboardOffer,
    GuestlinkClipboardTypes, GuestlinkDisplaySet, GuestlinkGuestReply, GuestlinkReplyRaw,
    GuestlinkTransferStart, GuestlinkTransferWrite,
};
use guestlink_vocabulary::events::{
    ClipboardChangedEvent, GuestRequestEvent, SessionActiveEvent, SessionAgentEvent,
};
use guestlink_vocabulary::types::{
    ClipboardData, ClipboardGetArgs, ClipboardOfferArgs, ClipboardSelection, ClipboardTypes,
    ClipboardTypesArgs, Display, DisplaySetArgs, GuestRequest, TransferStartArgs,
    TransferWriteArgs,
};
use guestlink_vocabulary::{Command, Event};
use tokio::io::{AsyncRead, AsyncWrite};

use self::clipboard::{kind, Fetch, Verdict};
use self::link::Out;
use self::mouse::{Layout, Mouse};
use self::transfer::status;

/// Displays of a layout taken into account (spice-gtk's slots).
const MAX_DISPLAYS: usize = 16;
/// Bytes read from the port at once.
const READ_CHUNK: usize = 64 << 10;
/// The largest message accepted: the largest clipboard and its headers.
const MESSAGE_LIMIT: usize = guestlink_core::limits::CLIPBOARD_SIZE + 64;

/// What the desktop channels share, made once at start: the pointer (vdagent) and
/// the report settings (oVirt).
#[derive(Debug, Default)]
pub struct Desktop {
    /// Where MOUSE_STATE goes; `None`: the mouse capability is not announced.
    pub pointer: Option<Mutex<Box<dyn Pointer>>>,
    /// What the oVirt channel reports, and how often.
    pub ovirt: crate::frontend::ovirt::Options,
    /// Where sysfs is (`/sys`; a test's tree under `GUESTLINK_SYSFS`): GRAPHICS_DEVICE_INFO
    /// finds the guest's outputs there.
    pub sysfs: std::path::PathBuf,
}

/// What a finished core call leads to.
enum Done {
    /// What the guest clipboard offers now; with the session whose program just took
    /// it, after a CLIPBOARD_CHANGED.
    GuestTypes(
        ClipboardSelection,
        Result<ClipboardTypes, DispatchError>,
        Option<String>,
    ),
    /// Data for a host request.
    Data(
        ClipboardSelection,
        u32,
        Result<ClipboardData, DispatchError>,
    ),
    /// A call whose result is only logged.
    Logged(&'static str, Result<(), DispatchError>),
}

type Pending<'a> = FuturesUnordered<Pin<Box<dyn Future<Output = Done> + Send + 'a>>>;

/// One host connection's state.
struct Front<'a> {
    agent: &'a Agent,
    conn: &'a Connection,
    desktop: &'a Desktop,
    out: link::Sender,
    ours: Capabilities,
    peer: Option<Capabilities>,
    clip: clipboard::State,
    transfers: transfer::Table,
    mouse: Mouse,
    layout: Layout,
    /// The host's last display layout, given again to a session agent that comes later.
    displays: Option<Vec<Display>>,
    /// The guest output of each host display id (GRAPHICS_DEVICE_INFO).
    outputs: std::collections::BTreeMap<u32, String>,
    /// The host said something since the greeting.
    heard: bool,
}

/// Answers a guest program's paste (a `clipboard-fetch`) with what `answer` gives.
async fn answer_paste(
    agent: &Agent,
    conn: &Connection,
    tag: i64,
    answer: impl Future<Output = Result<ClipboardData, String>>,
) -> Done {
    // Through the command table, like a host's call (no second copy of the handler
    // here): the bytes as they are, beside the type, so no base64 on the way to the
    // session; or the reason there are none.
    let mut args = serde_json::Map::new();
    args.insert("tag".into(), tag.into());
    let (name, bulk) = match answer.await {
        Ok(data) => {
            args.insert("count".into(), data.data.0.len().into());
            let ret = serde_json::json!({ "mime-type": data.mime_type });
            args.insert("return".into(), ret);
            (GuestlinkReplyRaw::NAME, Some(Bulk::new(Some(data.data.0))))
        }
        Err(desc) => {
            let error = serde_json::json!({ "desc": desc });
            args.insert("error".into(), error);
            (GuestlinkGuestReply::NAME, None)
        }
    };
    let r = agent
        .execute(Call::on(conn, name, args).with_bulk(bulk.as_ref()))
        .await;
    Done::Logged(name, r.map(drop))
}

/// Our capabilities: what works, and what the policy lets the host use (a clipboard,
/// file transfer or layout the gate refuses is not offered, as spice-server does).
fn our_caps(agent: &Agent, call: &CallContext, mouse: bool) -> Capabilities {
    let status = agent.command_status(call);
    let allowed = |name: &str| status.iter().any(|s| s.info.name == name && s.enabled);
    let mut c = Capabilities::default();
    if mouse {
        c.set(caps::MOUSE_STATE);
    }
    for bit in [
        caps::REPLY,
        caps::GUEST_LINEEND_LF,
        caps::FILE_XFER_DETAILED_ERRORS,
    ] {
        c.set(bit);
    }
    if allowed(GuestlinkDisplaySet::NAME) {
        c.set(caps::MONITORS_CONFIG);
        c.set(caps::SPARSE_MONITORS_CONFIG);
        c.set(caps::GRAPHICS_DEVICE_INFO);
    }
    if allowed(GuestlinkClipboardOffer::NAME) || allowed(GuestlinkClipboardGet::NAME) {
        for bit in [
            caps::CLIPBOARD_BY_DEMAND,
            caps::CLIPBOARD_SELECTION,
            caps::MAX_CLIPBOARD,
            caps::CLIPBOARD_NO_RELEASE_ON_REGRAB,
            caps::CLIPBOARD_GRAB_SERIAL,
        ] {
            c.set(bit);
        }
    }
    if !allowed(GuestlinkTransferStart::NAME) {
        c.set(caps::FILE_XFER_DISABLED);
    }
    c
}

const SELECTIONS: [ClipboardSelection; 2] =
    [ClipboardSelection::Clipboard, ClipboardSelection::Primary];

/// Serves one host connection. On a device (`reconnects`), a host that goes away is
/// waited for and greeted again when it comes back; otherwise its leaving ends it.
pub async fn serve<S: AsyncRead + AsyncWrite + Unpin + Send>(
    agent: &Agent,
    call: &CallContext,
    io: S,
    desktop: &Desktop,
    reconnects: bool,
) -> io::Result<()> {
    let (conn, mut events) = agent.connect(call.clone());
    conn.events.add(&[
        ClipboardChangedEvent::NAME,
        SessionActiveEvent::NAME,
        SessionAgentEvent::NAME,
    ]);
    let (mut rd, wr) = tokio::io::split(io);
    let (sender, rx, queued) = link::queue();
    let mut front = Front {
        agent,
        conn: &conn,
        desktop,
        out: sender,
        ours: our_caps(agent, call, desktop.pointer.is_some()),
        peer: None,
        clip: clipboard::State::default(),
        transfers: transfer::Table::default(),
        mouse: Mouse::default(),
        layout: Layout::default(),
        displays: None,
        outputs: Default::default(),
        heard: false,
    };
    let mut bad = super::noise::Noise::default();
    let mut decoder = Decoder::new(Limits {
        max_message: MESSAGE_LIMIT,
    });
    let mut pending: Pending<'_> = FuturesUnordered::new();
    front.greet(&mut pending);
    let writer = link::write_all(wr, rx, queued);
    tokio::pin!(writer);
    let mut buf = super::read_buffer::ReadBuffer::new(READ_CHUNK);
    let result = loop {
        tokio::select! {
            r = &mut writer => break r,
            Some(done) = pending.next(), if !pending.is_empty() => front.finished(done, &mut pending),
            event = events.next() => front.event(&event, &mut pending),
            n = buf.read_from(&mut rd) => {
                let n = match n {
                    Ok(n) => n,
                    Err(e) => break Err(e),
                };
                if n == 0 {
                    if !reconnects {
                        break Ok(());
                    }
                    if front.heard {
                        tracing::info!(channel = %call.channel.name, "the host went away; waiting for it to come back");
                        decoder.reset();
                        front.greet(&mut pending);
                    }
                    continue;
                }
                front.heard = true;
                decoder.feed(&buf[..n]);
                while let Some(m) = decoder.next_message() {
                    match m {
                        Ok(m) => {
                            let port = m.port;
                            match AgentMessage::parse(m.kind, &m.data, front.negotiated()) {
                                // (The decoder dropped a half-received client message
                                // itself when CLIENT_DISCONNECTED came.)
                                Ok(msg) => front.message(msg, port, &mut pending).await,
                                Err(MessageError::UnknownType(t)) => {
                                    tracing::debug!(kind = t, "unknown vdagent message ignored")
                                }
                                Err(e) => {
                                    if let Some(n) = bad.report() {
                                        tracing::warn!(channel = %call.channel.name, bad_input = n, "vdagent message refused: {e}");
                                    }
                                }
                            }
                        }
                        Err(e) => {
                            if let Some(n) = bad.report() {
                                tracing::warn!(channel = %call.channel.name, bad_input = n, "vdagent framing: {e}");
                            }
                        }
                    }
                }
            }
        }
    };
    front.new_client(&mut pending);
    drop(pending);
    agent.disconnect(&conn);
    result
}

impl<'a> Front<'a> {
    fn negotiated(&self) -> Negotiated {
        match &self.peer {
            Some(p) => Negotiated::of(&self.ours, p),
            None => Negotiated::default(),
        }
    }

    fn peer_has(&self, cap: u32) -> bool {
        self.peer.as_ref().is_some_and(|p| p.has(cap))
    }

    fn encode(&self, msg: &AgentMessage) -> Vec<u8> {
        let mut buf = Vec::new();
        encode(msg.kind() as u32, &msg.to_data(self.negotiated()), &mut buf);
        buf
    }

    fn send(&self, msg: AgentMessage) {
        self.out.send(Out::Message(self.encode(&msg)));
    }

    /// Whether messages about `sel` can be sent (only CLIPBOARD without the selection
    /// capability).
    fn speaks(&self, sel: ClipboardSelection) -> bool {
        sel == ClipboardSelection::Clipboard || self.negotiated().selection
    }

    /// Greets a new host: our capabilities with request = 1, after forgetting the
    /// previous host.
    fn greet(&mut self, pending: &mut Pending<'a>) {
        self.new_client(pending);
        // What the previous host was told is moot; the new one learns it again once
        // it answered.
        self.peer = None;
        self.ours = our_caps(self.agent, &self.conn.call, self.desktop.pointer.is_some());
        self.heard = false;
        let msg = AgentMessage::AnnounceCapabilities {
            request: true,
            caps: self.ours.clone(),
        };
        self.out.send(Out::Greeting(self.encode(&msg)));
    }

    /// A new client (or none): what it owned and started is gone.
    fn new_client(&mut self, pending: &mut Pending<'a>) {
        let (fetches, released) = self.clip.new_peer();
        self.fail_fetches(fetches, "the SPICE client went away", pending);
        for sel in released {
            self.offer(sel, Vec::new(), pending);
        }
        for h in self.transfers.drain() {
            let _ = self.agent.state().transfers.cancel(h);
        }
        self.inject_release();
    }

    fn inject_release(&mut self) {
        let events = self.mouse.release_all();
        self.inject(&events);
    }

    fn inject(&self, events: &[guestlink_platform::pointer::InputEvent]) {
        if events.is_empty() {
            return;
        }
        if let Some(p) = &self.desktop.pointer {
            let mut p = p.lock().unwrap_or_else(|e| e.into_inner());
            if let Err(e) = p.emit(events) {
                tracing::warn!("cannot inject pointer events: {e}");
            }
        }
    }

    /// Asks what the guest clipboard offers now (after which the host hears of it).
    fn ask_guest_types(
        &self,
        sel: ClipboardSelection,
        changed: Option<String>,
        pending: &mut Pending<'a>,
    ) {
        let (agent, conn) = (self.agent, self.conn);
        pending.push(Box::pin(async move {
            let args = ClipboardTypesArgs {
                selection: Some(sel),
            };
            let r = agent
                .call::<GuestlinkClipboardTypes>(conn, args, None)
                .await;
            Done::GuestTypes(sel, r, changed)
        }));
    }

    fn offer(&self, sel: ClipboardSelection, kinds: Vec<u32>, pending: &mut Pending<'a>) {
        let (agent, conn) = (self.agent, self.conn);
        let types = clipboard::with_png(kinds)
            .iter()
            .filter_map(|k| clipboard::mime_of(*k))
            .map(String::from)
            .collect();
        pending.push(Box::pin(async move {
            let args = ClipboardOfferArgs {
                selection: Some(sel),
                types,
            };
            let r = agent
                .call::<GuestlinkClipboardOffer>(conn, args, None)
                .await;
            Done::Logged(GuestlinkClipboardOffer::NAME, r.map(|_| ()))
        }));
    }

    fn reply(&self, tag: i64, answer: Result<ClipboardData, String>, pending: &mut Pending<'a>) {
        let (agent, conn) = (self.agent, self.conn);
        pending.push(Box::pin(answer_paste(agent, conn, tag, async { answer })));
    }

    fn fail_fetches(&self, fetches: Vec<Fetch>, why: &str, pending: &mut Pending<'a>) {
        for f in fetches {
            self.reply(f.tag, Err(why.to_string()), pending);
        }
    }

    /// An event for this connection.
    fn event(&mut self, event: &EventRecord, pending: &mut Pending<'a>) {
        match event.name {
            n if n == ClipboardChangedEvent::NAME => {
                let sel = event.data["selection"]
                    .as_str()
                    .and_then(ClipboardSelection::from_wire)
                    .unwrap_or(ClipboardSelection::Clipboard);
                let session = event.data["session"].as_str().unwrap_or_default();
                self.ask_guest_types(sel, Some(session.to_string()), pending);
            }
            // Another desktop (or its first agent): it learns what the host owns, and the
            // host what it holds.
            n if n == SessionActiveEvent::NAME || n == SessionAgentEvent::NAME => {
                for sel in SELECTIONS {
                    match self.clip.owner(sel) {
                        clipboard::Owner::Host(kinds) => self.offer(sel, kinds.clone(), pending),
                        _ => self.ask_guest_types(sel, None, pending),
                    }
                }
                if let Some(displays) = self.displays.clone() {
                    self.set_displays(displays, pending);
                }
            }
            n if n == GuestRequestEvent::NAME => {
                let Ok(req) = serde_json::from_value::<GuestRequest>(event.data.clone()) else {
                    return;
                };
                if req.command != GuestlinkClipboardFetch::NAME {
                    // Requests for any host: a vdagent host has no way to answer them.
                    return;
                }
                self.guest_paste(req, pending);
            }
            _ => {}
        }
    }

    /// A guest program pastes what the host owns: ask the host for it.
    fn guest_paste(&mut self, req: GuestRequest, pending: &mut Pending<'a>) {
        let sel = req.arguments["selection"]
            .as_str()
            .and_then(ClipboardSelection::from_wire)
            .unwrap_or(ClipboardSelection::Clipboard);
        let mime = req.arguments["mime-type"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let Some(k) = clipboard::kind_of(&mime) else {
            return self.reply(
                req.tag,
                Err(format!("no SPICE clipboard type for {mime}")),
                pending,
            );
        };
        // PNG from a host that has another image format: ask for that, convert.
        let (k, convert) = match self.clip.owner(sel) {
            clipboard::Owner::Host(kinds) if k == kind::IMAGE_PNG && !kinds.contains(&k) => {
                match kinds
                    .iter()
                    .copied()
                    .find(|x| clipboard::is_other_image(*x))
                {
                    Some(other) => (other, true),
                    None => (k, false),
                }
            }
            _ => (k, false),
        };
        let fetch = Fetch {
            tag: req.tag,
            selection: sel,
            kind: k,
            mime,
            convert,
            at: std::time::Instant::now(),
        };
        match self.clip.fetch(fetch) {
            Ok(true) => {}
            Ok(false) => self.send(AgentMessage::ClipboardRequest {
                selection: clipboard::number_of(sel),
                kind: k,
            }),
            Err(e) => self.reply(req.tag, Err(e), pending),
        }
    }

    /// A core call finished.
    fn finished(&mut self, done: Done, pending: &mut Pending<'a>) {
        match done {
            // A change in a session the host does not reach (not the active one).
            Done::GuestTypes(_, Ok(t), Some(changed)) if t.session != changed => {}
            Done::GuestTypes(sel, Ok(t), changed) => {
                self.guest_types(sel, t.types, changed.is_some())
            }
            // No session agent, no session: nothing the host can take.
            Done::GuestTypes(sel, Err(e), _) => {
                tracing::debug!("guest clipboard unknown: {e}");
                self.guest_types(sel, Vec::new(), false);
            }
            Done::Data(sel, k, r) => {
                let selection = clipboard::number_of(sel);
                let msg = match r {
                    Ok(d) if self.clip.too_large(d.data.0.len()) => {
                        tracing::info!(
                            bytes = d.data.0.len(),
                            "clipboard larger than the client's MAX_CLIPBOARD: sent empty"
                        );
                        AgentMessage::Clipboard {
                            selection,
                            kind: k,
                            data: Vec::new(),
                        }
                    }
                    Ok(d) => AgentMessage::Clipboard {
                        selection,
                        kind: k,
                        data: d.data.0,
                    },
                    Err(e) => {
                        tracing::info!("cannot read the guest clipboard: {e}");
                        AgentMessage::Clipboard {
                            selection,
                            kind: kind::NONE,
                            data: Vec::new(),
                        }
                    }
                };
                self.send(msg);
            }
            Done::Logged(what, Err(e)) => tracing::info!("{what} failed: {e}"),
            Done::Logged(..) => {}
        }
        let _ = pending;
    }

    /// The guest clipboard offers `types` (`new_owner`: a program just took it): grab
    /// or release on the host.
    fn guest_types(&mut self, sel: ClipboardSelection, types: Vec<String>, new_owner: bool) {
        if self.peer.is_none() || !self.speaks(sel) {
            return;
        }
        // The host's own offer, read back: nothing new.
        if !new_owner && matches!(self.clip.owner(sel), clipboard::Owner::Host(_)) {
            return;
        }
        let selection = clipboard::number_of(sel);
        match self.clip.guest_offer(sel, types, new_owner) {
            Some((kinds, _)) if kinds.is_empty() => {
                self.send(AgentMessage::ClipboardRelease { selection })
            }
            Some((types, serial)) => self.send(AgentMessage::ClipboardGrab {
                selection,
                serial: self.negotiated().grab_serial.then_some(serial),
                types,
            }),
            None => {}
        }
    }

    /// One message from the host.
    async fn message(&mut self, msg: AgentMessage, port: Port, pending: &mut Pending<'a>) {
        tracing::trace!(?port, kind = ?msg.kind(), "vdagent message");
        match msg {
            AgentMessage::AnnounceCapabilities { request, caps } => {
                tracing::info!(request, caps = ?caps.0, "host capabilities");
                if request {
                    // A new client: what the last one owned and started is gone.
                    self.new_client(pending);
                }
                self.peer = Some(caps);
                if request {
                    self.send(AgentMessage::AnnounceCapabilities {
                        request: false,
                        caps: self.ours.clone(),
                    });
                }
                // The host learns what the guest clipboard holds.
                self.clip.forget_guest();
                for sel in SELECTIONS {
                    self.ask_guest_types(sel, None, pending);
                }
            }
            AgentMessage::ClipboardGrab {
                selection,
                serial,
                types,
            } => {
                let Some(sel) = clipboard::selection_of(selection) else {
                    return;
                };
                let kinds: Vec<u32> = types
                    .into_iter()
                    .filter(|k| clipboard::mime_of(*k).is_some())
                    .collect();
                let serial = if self.negotiated().grab_serial {
                    serial
                } else {
                    None
                };
                let (verdict, failed) = self.clip.host_grab(sel, serial, kinds.clone());
                self.fail_fetches(failed, "the host's clipboard changed", pending);
                match verdict {
                    Verdict::Drop => {
                        tracing::info!(?serial, "host grab with an old serial dropped")
                    }
                    Verdict::Accept => self.offer(sel, kinds, pending),
                }
            }
            AgentMessage::ClipboardRelease { selection } => {
                let Some(sel) = clipboard::selection_of(selection) else {
                    return;
                };
                let (owned, failed) = self.clip.host_release(sel);
                self.fail_fetches(failed, "the host let the clipboard go", pending);
                if owned {
                    self.offer(sel, Vec::new(), pending);
                }
            }
            AgentMessage::ClipboardRequest { selection, kind: k } => {
                let Some(sel) = clipboard::selection_of(selection) else {
                    return self.send(AgentMessage::Clipboard {
                        selection,
                        kind: kind::NONE,
                        data: Vec::new(),
                    });
                };
                let source = self
                    .clip
                    .guest_types(sel)
                    .and_then(|t| clipboard::source_for(t, k));
                // A PNG for the host of another guest image: the session converts.
                let Some((mime, convert)) = source else {
                    return self.send(AgentMessage::Clipboard {
                        selection,
                        kind: kind::NONE,
                        data: Vec::new(),
                    });
                };
                let (agent, conn) = (self.agent, self.conn);
                pending.push(Box::pin(async move {
                    let args = ClipboardGetArgs {
                        selection: Some(sel),
                        mime_type: Some(match convert {
                            true => "image/png".to_string(),
                            false => mime,
                        }),
                    };
                    let r = agent.call::<GuestlinkClipboardGet>(conn, args, None).await;
                    Done::Data(sel, k, r)
                }));
            }
            AgentMessage::Clipboard {
                selection,
                kind: k,
                data,
            } => {
                let Some(sel) = clipboard::selection_of(selection) else {
                    return;
                };
                let answered = self.clip.answered(sel, k);
                if answered.is_empty() {
                    tracing::debug!("clipboard data nobody asked for");
                }
                for f in answered {
                    if k == kind::NONE {
                        self.reply(
                            f.tag,
                            Err("the host has no data of that type".into()),
                            pending,
                        );
                        continue;
                    }
                    let (agent, conn, data) = (self.agent, self.conn, data.clone());
                    // Another image format than the PNG asked for goes out as what it
                    // is: the session agent converts.
                    let mime_type = match f.convert {
                        true => clipboard::mime_of(k).map_or(f.mime, String::from),
                        false => f.mime,
                    };
                    pending.push(Box::pin(answer_paste(agent, conn, f.tag, async move {
                        Ok(ClipboardData {
                            mime_type,
                            data: data.into(),
                        })
                    })));
                }
            }
            AgentMessage::MaxClipboard(max) => self.clip.max = Some(max),
            AgentMessage::ClientDisconnected => {
                tracing::info!("the SPICE client disconnected");
                self.new_client(pending);
            }
            AgentMessage::MouseState {
                x,
                y,
                buttons,
                display_id,
            } => {
                let events = self.mouse.state(&self.layout, x, y, buttons, display_id);
                self.inject(&events);
            }
            AgentMessage::MonitorsConfig(config) => self.monitors(config, pending),
            AgentMessage::GraphicsDeviceInfo(mut records) => {
                // Each record is a look through sysfs: as many as a layout has displays.
                if records.len() > MAX_DISPLAYS {
                    tracing::warn!(
                        count = records.len(),
                        "GRAPHICS_DEVICE_INFO records beyond {MAX_DISPLAYS} ignored"
                    );
                    records.truncate(MAX_DISPLAYS);
                }
                self.outputs = outputs::outputs(&self.desktop.sysfs, &records);
                // A layout that came first is given again with its outputs.
                if let Some(mut displays) = self.displays.take() {
                    for d in &mut displays {
                        d.output = u32::try_from(d.id)
                            .ok()
                            .and_then(|id| self.outputs.get(&id).cloned());
                    }
                    self.displays = Some(displays.clone());
                    self.set_displays(displays, pending);
                }
            }
            AgentMessage::FileXferStart { id, keyfile } => self.transfer_start(id, &keyfile).await,
            AgentMessage::FileXferData { id, data } => self.transfer_data(id, data).await,
            AgentMessage::FileXferStatus { id, result, .. } => {
                if result != status::CAN_SEND_DATA {
                    if let Some(h) = self.transfers.remove(id) {
                        let how = if result == status::CANCELLED {
                            "cancelled"
                        } else {
                            "failed"
                        };
                        tracing::info!(id, result, "the client {how} a file transfer");
                        let _ = self.agent.state().transfers.cancel(h);
                    }
                }
            }
            other => tracing::debug!(kind = ?other.kind(), "vdagent message not acted on"),
        }
    }

    fn monitors(&mut self, mut config: MonitorsConfig, pending: &mut Pending<'a>) {
        // spice-gtk sends 16 slots at most; more is not a layout anyone has.
        if config.monitors.len() > MAX_DISPLAYS {
            tracing::warn!(
                count = config.monitors.len(),
                "monitors beyond {MAX_DISPLAYS} ignored"
            );
            config.monitors.truncate(MAX_DISPLAYS);
        }
        self.layout = Layout::of(&config);
        if let Some(p) = &self.desktop.pointer {
            let (w, h) = self.layout.size;
            if let Err(e) = p.lock().unwrap_or_else(|e| e.into_inner()).resize(w, h) {
                tracing::warn!("cannot resize the pointer area: {e}");
            }
        }
        // As spice-vdagentd: acknowledged at once; the session agent applies it.
        self.send(AgentMessage::Reply {
            kind: guestlink_proto_vdagent::MessageType::MonitorsConfig as u32,
            error: 1,
        });
        let use_pos = config.flags & guestlink_proto_vdagent::messages::USE_POS != 0;
        let displays = config
            .monitors
            .iter()
            .enumerate()
            .map(|(i, m)| Display {
                id: i as i64,
                width: i64::from(m.width),
                height: i64::from(m.height),
                x: use_pos.then_some(i64::from(m.x)),
                y: use_pos.then_some(i64::from(m.y)),
                output: u32::try_from(i)
                    .ok()
                    .and_then(|id| self.outputs.get(&id).cloned()),
            })
            .collect::<Vec<_>>();
        self.displays = Some(displays.clone());
        self.set_displays(displays, pending);
    }

    fn set_displays(&self, displays: Vec<Display>, pending: &mut Pending<'a>) {
        let (agent, conn) = (self.agent, self.conn);
        pending.push(Box::pin(async move {
            let args = DisplaySetArgs { displays };
            let r = agent.call::<GuestlinkDisplaySet>(conn, args, None).await;
            Done::Logged(GuestlinkDisplaySet::NAME, r.map(|_| ()))
        }));
    }

    fn status(&self, id: u32, result: u32, detail: Vec<u8>) {
        self.send(AgentMessage::FileXferStatus { id, result, detail });
    }

    async fn transfer_start(&mut self, id: u32, keyfile: &[u8]) {
        let detailed = self.peer_has(caps::FILE_XFER_DETAILED_ERRORS);
        if self.transfers.contains(id) {
            tracing::warn!(id, "file transfer id already in use");
            return self.status(id, status::ERROR, Vec::new());
        }
        let announced = match transfer::parse_keyfile(keyfile) {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(id, "file transfer refused: {e}");
                return self.status(id, status::ERROR, Vec::new());
            }
        };
        let args = TransferStartArgs {
            name: announced.name,
            size: i64::try_from(announced.size).unwrap_or(i64::MAX),
        };
        match self
            .agent
            .call::<GuestlinkTransferStart>(self.conn, args, None)
            .await
        {
            Ok(t) => {
                // An empty file too, as spice-vdagentd: spice-gtk waits for
                // CAN_SEND_DATA, sends one empty DATA, and then hears SUCCESS.
                self.transfers.insert(id, t.handle);
                self.status(id, status::CAN_SEND_DATA, Vec::new());
            }
            Err(e) => {
                tracing::info!(id, "file transfer refused: {e}");
                let (code, detail) = transfer::status_of(&e, detailed);
                self.status(id, code, detail);
            }
        }
    }

    async fn transfer_data(&mut self, id: u32, data: Vec<u8>) {
        let Some(handle) = self.transfers.get(id) else {
            tracing::debug!(id, "data for a file transfer that is not running");
            return;
        };
        let args = TransferWriteArgs {
            handle,
            count: data.len() as i64,
        };
        match self
            .agent
            .call::<GuestlinkTransferWrite>(self.conn, args, Some(data))
            .await
        {
            Ok(p) if p.complete => {
                self.transfers.remove(id);
                tracing::info!(id, bytes = p.received, "file received");
                self.status(id, status::SUCCESS, Vec::new());
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(id, "file transfer failed: {e}");
                self.transfers.remove(id);
                let _ = self.agent.state().transfers.cancel(handle);
                let (code, detail) =
                    transfer::status_of(&e, self.peer_has(caps::FILE_XFER_DETAILED_ERRORS));
                self.status(id, code, detail);
            }
        }
    }
}
