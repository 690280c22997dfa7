//! Typed message data, with the size rules spice-vdagentd and spice-common enforce.
//!
//! Clipboard messages carry a 4-byte selection prefix only when the peer announced
//! `CLIPBOARD_SELECTION`, and a grab carries a serial only when both sides announced
//! `CLIPBOARD_GRAB_SERIAL`: [`Negotiated`] says which, for both parsing and encoding.
//! MONITORS_CONFIG accepts the trailing physical-size array that spice-gtk always sends
//! (spice-vdagentd 0.22.1 wrongly rejects it). Lengths inside a message are checked
//! against its size before anything is allocated.

use crate::types::{Capabilities, MessageType};

/// Capability bits that change the encoding.
pub mod caps {
    /// Absolute mouse through the agent.
    pub const MOUSE_STATE: u32 = 0;
    /// MONITORS_CONFIG handled.
    pub const MONITORS_CONFIG: u32 = 1;
    /// REPLY understood.
    pub const REPLY: u32 = 2;
    /// The grab / request / clipboard / release model.
    pub const CLIPBOARD_BY_DEMAND: u32 = 5;
    /// Clipboard messages start with the selection prefix.
    pub const CLIPBOARD_SELECTION: u32 = 6;
    /// Monitor arrays indexed by display id, 0x0 for disabled ones.
    pub const SPARSE_MONITORS_CONFIG: u32 = 7;
    /// The guest's text uses `\n`.
    pub const GUEST_LINEEND_LF: u32 = 8;
    /// MAX_CLIPBOARD honoured.
    pub const MAX_CLIPBOARD: u32 = 10;
    /// Detailed file-transfer errors understood.
    pub const FILE_XFER_DETAILED_ERRORS: u32 = 14;
    /// GRAPHICS_DEVICE_INFO wanted (spice-server sends it only then).
    pub const GRAPHICS_DEVICE_INFO: u32 = 15;
    /// File transfer is switched off (a client then offers none).
    pub const FILE_XFER_DISABLED: u32 = 13;
    /// No RELEASE right before a new GRAB of the same selection.
    pub const CLIPBOARD_NO_RELEASE_ON_REGRAB: u32 = 16;
    /// Grabs carry a serial.
    pub const CLIPBOARD_GRAB_SERIAL: u32 = 17;
}

/// What the two sides agreed on that changes message layouts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Negotiated {
    /// The peer announced `CLIPBOARD_SELECTION`.
    pub selection: bool,
    /// Both announced `CLIPBOARD_GRAB_SERIAL`.
    pub grab_serial: bool,
}

impl Negotiated {
    /// From our capabilities and the peer's.
    pub fn of(ours: &Capabilities, peer: &Capabilities) -> Negotiated {
        Negotiated {
            selection: peer.has(caps::CLIPBOARD_SELECTION),
            grab_serial: ours.has(caps::CLIPBOARD_GRAB_SERIAL)
                && peer.has(caps::CLIPBOARD_GRAB_SERIAL),
        }
    }
}

/// One monitor of MONITORS_CONFIG (`VDAgentMonConfig`: height comes first).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Monitor {
    /// Height in pixels.
    pub height: u32,
    /// Width in pixels.
    pub width: u32,
    /// Bits per pixel.
    pub depth: u32,
    /// Left edge.
    pub x: i32,
    /// Top edge.
    pub y: i32,
}

/// MONITORS_CONFIG.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MonitorsConfig {
    /// `USE_POS = 1`, `PHYSICAL_SIZE = 2`.
    pub flags: u32,
    /// Monitors, indexed by display id.
    pub monitors: Vec<Monitor>,
    /// Physical sizes in millimetres (height, width), when the flag says so.
    pub physical: Option<Vec<(u16, u16)>>,
}

/// `MONITORS_CONFIG` flag: honour x and y.
pub const USE_POS: u32 = 1;
/// `MONITORS_CONFIG` flag: the millimetre array follows.
pub const PHYSICAL_SIZE: u32 = 2;

/// One record of GRAPHICS_DEVICE_INFO.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceDisplay {
    /// SPICE channel id.
    pub channel_id: u32,
    /// Monitor id within the channel.
    pub monitor_id: u32,
    /// The device's own output number.
    pub device_display_id: u32,
    /// Device address, e.g. `pci/0000/02.0`.
    pub address: String,
}

/// A message's data, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentMessage {
    /// Pointer position and buttons.
    MouseState {
        /// X.
        x: u32,
        /// Y.
        y: u32,
        /// Button mask.
        buttons: u32,
        /// Display.
        display_id: u8,
    },
    /// The client's monitor layout.
    MonitorsConfig(MonitorsConfig),
    /// The answer to a MONITORS_CONFIG or DISPLAY_CONFIG.
    Reply {
        /// Type answered.
        kind: u32,
        /// 1 success, 2 error.
        error: u32,
    },
    /// Clipboard data.
    Clipboard {
        /// Selection.
        selection: u8,
        /// Clipboard type (1 text, 2 PNG, ...).
        kind: u32,
        /// The data.
        data: Vec<u8>,
    },
    /// Windows display settings.
    DisplayConfig {
        /// Flags.
        flags: u32,
        /// Colour depth.
        depth: u32,
    },
    /// Capabilities; `request` asks the peer to announce its own.
    AnnounceCapabilities {
        /// Asks for the peer's.
        request: bool,
        /// The bitmap.
        caps: Capabilities,
    },
    /// A new clipboard owner offers these types.
    ClipboardGrab {
        /// Selection.
        selection: u8,
        /// Serial, when negotiated.
        serial: Option<u32>,
        /// Clipboard types offered.
        types: Vec<u32>,
    },
    /// Asks the owner for the data in one type.
    ClipboardRequest {
        /// Selection.
        selection: u8,
        /// Clipboard type.
        kind: u32,
    },
    /// The owner gives the selection up.
    ClipboardRelease {
        /// Selection.
        selection: u8,
    },
    /// A file transfer begins: a GLib key file (NUL removed).
    FileXferStart {
        /// Transfer id.
        id: u32,
        /// `[vdagent-file-xfer]` key file text.
        keyfile: Vec<u8>,
    },
    /// Transfer status.
    FileXferStatus {
        /// Transfer id.
        id: u32,
        /// Result code.
        result: u32,
        /// Detail, with detailed errors.
        detail: Vec<u8>,
    },
    /// A piece of a file.
    FileXferData {
        /// Transfer id.
        id: u32,
        /// The bytes.
        data: Vec<u8>,
    },
    /// The client went away.
    ClientDisconnected,
    /// The largest clipboard the client takes (-1: no limit).
    MaxClipboard(i32),
    /// Volume and mute.
    AudioVolumeSync {
        /// Playback (else record).
        playback: bool,
        /// Muted.
        mute: bool,
        /// Per-channel volume.
        volume: Vec<u16>,
    },
    /// Which device output each display is.
    GraphicsDeviceInfo(Vec<DeviceDisplay>),
}

/// Data that does not fit its message type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// A type this protocol version does not define (ignore it).
    #[error("unknown message type {0}")]
    UnknownType(u32),
    /// The data has the wrong size.
    #[error("invalid message size {size} for {kind:?} (expected {expected})")]
    Size {
        /// The type.
        kind: MessageType,
        /// Its size.
        size: usize,
        /// What it should be.
        expected: &'static str,
    },
}

/// Reads little-endian fields off the front of a slice.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn u8(&mut self) -> u8 {
        let v = self.0[0];
        self.0 = &self.0[1..];
        v
    }
    fn u16(&mut self) -> u16 {
        let v = u16::from_le_bytes([self.0[0], self.0[1]]);
        self.0 = &self.0[2..];
        v
    }
    fn u32(&mut self) -> u32 {
        let v = u32::from_le_bytes([self.0[0], self.0[1], self.0[2], self.0[3]]);
        self.0 = &self.0[4..];
        v
    }
    fn u64(&mut self) -> u64 {
        u64::from(self.u32()) | (u64::from(self.u32()) << 32)
    }
    fn u32s(&mut self) -> Vec<u32> {
        let n = self.0.len() / 4;
        (0..n).map(|_| self.u32()).collect()
    }
}

/// `Ok` when `ok`, else the size error for `kind`.
fn size_check(
    ok: bool,
    kind: MessageType,
    size: usize,
    expected: &'static str,
) -> Result<(), MessageError> {
    if ok {
        Ok(())
    } else {
        Err(MessageError::Size {
            kind,
            size,
            expected,
        })
    }
}

fn exact(
    kind: MessageType,
    size: usize,
    want: usize,
    expected: &'static str,
) -> Result<(), MessageError> {
    size_check(size == want, kind, size, expected)
}

fn at_least(
    kind: MessageType,
    size: usize,
    min: usize,
    expected: &'static str,
) -> Result<(), MessageError> {
    size_check(size >= min, kind, size, expected)
}

impl AgentMessage {
    /// Its type.
    pub fn kind(&self) -> MessageType {
        use AgentMessage as M;
        match self {
            M::MouseState { .. } => MessageType::MouseState,
            M::MonitorsConfig(_) => MessageType::MonitorsConfig,
            M::Reply { .. } => MessageType::Reply,
            M::Clipboard { .. } => MessageType::Clipboard,
            M::DisplayConfig { .. } => MessageType::DisplayConfig,
            M::AnnounceCapabilities { .. } => MessageType::AnnounceCapabilities,
            M::ClipboardGrab { .. } => MessageType::ClipboardGrab,
            M::ClipboardRequest { .. } => MessageType::ClipboardRequest,
            M::ClipboardRelease { .. } => MessageType::ClipboardRelease,
            M::FileXferStart { .. } => MessageType::FileXferStart,
            M::FileXferStatus { .. } => MessageType::FileXferStatus,
            M::FileXferData { .. } => MessageType::FileXferData,
            M::ClientDisconnected => MessageType::ClientDisconnected,
            M::MaxClipboard(_) => MessageType::MaxClipboard,
            M::AudioVolumeSync { .. } => MessageType::AudioVolumeSync,
            M::GraphicsDeviceInfo(_) => MessageType::GraphicsDeviceInfo,
        }
    }

    /// Parses message `kind`'s `data` under `n`.
    pub fn parse(kind: u32, data: &[u8], n: Negotiated) -> Result<AgentMessage, MessageError> {
        use AgentMessage as M;
        let t = MessageType::from_u32(kind).ok_or(MessageError::UnknownType(kind))?;
        let size = data.len();
        let sel = if n.selection { 4 } else { 0 };
        let mut r = Reader(data);
        let selection = |r: &mut Reader<'_>| -> u8 {
            if n.selection {
                let s = r.u8();
                r.0 = &r.0[3..];
                s
            } else {
                0
            }
        };
        Ok(match t {
            MessageType::MouseState => {
                exact(t, size, 13, "13")?;
                M::MouseState {
                    x: r.u32(),
                    y: r.u32(),
                    buttons: r.u32(),
                    display_id: r.u8(),
                }
            }
            MessageType::MonitorsConfig => {
                at_least(t, size, 8, "at least 8")?;
                let count = r.u32() as usize;
                let flags = r.u32();
                let need = count.checked_mul(20).and_then(|m| m.checked_add(8));
                let with_mm = flags & PHYSICAL_SIZE != 0;
                let need_mm = need.and_then(|m| m.checked_add(count * 4));
                let ok = match (with_mm, need, need_mm) {
                    (false, Some(need), _) => size >= need,
                    (true, _, Some(need_mm)) => size >= need_mm,
                    _ => false,
                };
                size_check(
                    ok,
                    t,
                    size,
                    "8 + 20 per monitor (+ 4 per monitor with PHYSICAL_SIZE)",
                )?;
                let monitors = (0..count)
                    .map(|_| Monitor {
                        height: r.u32(),
                        width: r.u32(),
                        depth: r.u32(),
                        x: r.u32() as i32,
                        y: r.u32() as i32,
                    })
                    .collect();
                let physical = with_mm.then(|| (0..count).map(|_| (r.u16(), r.u16())).collect());
                M::MonitorsConfig(MonitorsConfig {
                    flags: flags & (USE_POS | PHYSICAL_SIZE),
                    monitors,
                    physical,
                })
            }
            MessageType::Reply => {
                exact(t, size, 8, "8")?;
                M::Reply {
                    kind: r.u32(),
                    error: r.u32(),
                }
            }
            MessageType::Clipboard => {
                at_least(t, size, 4 + sel, "at least 4 (+4 with selection)")?;
                let selection = selection(&mut r);
                let kind = r.u32();
                M::Clipboard {
                    selection,
                    kind,
                    data: r.0.to_vec(),
                }
            }
            MessageType::DisplayConfig => {
                exact(t, size, 8, "8")?;
                M::DisplayConfig {
                    flags: r.u32(),
                    depth: r.u32(),
                }
            }
            MessageType::AnnounceCapabilities => {
                at_least(t, size, 4, "at least 4")?;
                let request = r.u32() != 0;
                M::AnnounceCapabilities {
                    request,
                    caps: Capabilities(r.u32s()),
                }
            }
            MessageType::ClipboardGrab => {
                let serial_len = if n.grab_serial { 4 } else { 0 };
                at_least(t, size, sel + serial_len, "the selection and serial fields")?;
                let selection = selection(&mut r);
                let serial = n.grab_serial.then(|| r.u32());
                M::ClipboardGrab {
                    selection,
                    serial,
                    types: r.u32s(),
                }
            }
            MessageType::ClipboardRequest => {
                exact(t, size, 4 + sel, "4 (+4 with selection)")?;
                M::ClipboardRequest {
                    selection: selection(&mut r),
                    kind: r.u32(),
                }
            }
            MessageType::ClipboardRelease => {
                exact(t, size, sel, "0 (+4 with selection)")?;
                M::ClipboardRelease {
                    selection: selection(&mut r),
                }
            }
            MessageType::FileXferStart => {
                at_least(t, size, 4, "at least 4")?;
                let id = r.u32();
                let text = r.0.split(|b| *b == 0).next().unwrap_or_default();
                M::FileXferStart {
                    id,
                    keyfile: text.to_vec(),
                }
            }
            MessageType::FileXferStatus => {
                at_least(t, size, 8, "at least 8")?;
                M::FileXferStatus {
                    id: r.u32(),
                    result: r.u32(),
                    detail: r.0.to_vec(),
                }
            }
            MessageType::FileXferData => {
                at_least(t, size, 12, "at least 12")?;
                let id = r.u32();
                let len = r.u64();
                size_check(len == (size - 12) as u64, t, size, "12 + the size field")?;
                M::FileXferData {
                    id,
                    data: r.0.to_vec(),
                }
            }
            MessageType::ClientDisconnected => {
                exact(t, size, 0, "0")?;
                M::ClientDisconnected
            }
            MessageType::MaxClipboard => {
                exact(t, size, 4, "4")?;
                M::MaxClipboard(r.u32() as i32)
            }
            MessageType::AudioVolumeSync => {
                at_least(t, size, 3, "at least 3")?;
                let playback = r.u8() != 0;
                let mute = r.u8() != 0;
                let channels = r.u8() as usize;
                exact(t, size, 3 + 2 * channels, "3 + 2 per channel")?;
                M::AudioVolumeSync {
                    playback,
                    mute,
                    volume: (0..channels).map(|_| r.u16()).collect(),
                }
            }
            MessageType::GraphicsDeviceInfo => {
                at_least(t, size, 4, "at least 4")?;
                let count = r.u32();
                let mut out = Vec::new();
                for _ in 0..count {
                    let bad = MessageError::Size {
                        kind: t,
                        size,
                        expected: "the records it announces",
                    };
                    if r.0.len() < 16 {
                        return Err(bad);
                    }
                    let (channel_id, monitor_id, device_display_id) = (r.u32(), r.u32(), r.u32());
                    let len = r.u32() as usize;
                    if r.0.len() < len {
                        return Err(bad);
                    }
                    let raw = &r.0[..len];
                    r.0 = &r.0[len..];
                    let text = raw.split(|b| *b == 0).next().unwrap_or_default();
                    out.push(DeviceDisplay {
                        channel_id,
                        monitor_id,
                        device_display_id,
                        address: String::from_utf8_lossy(text).into_owned(),
                    });
                }
                M::GraphicsDeviceInfo(out)
            }
        })
    }

    /// The message's data under `n`.
    pub fn to_data(&self, n: Negotiated) -> Vec<u8> {
        use AgentMessage as M;
        let mut out = Vec::new();
        let put = |out: &mut Vec<u8>, v: u32| out.extend_from_slice(&v.to_le_bytes());
        let sel = |out: &mut Vec<u8>, s: u8| {
            if n.selection {
                out.extend_from_slice(&[s, 0, 0, 0]);
            }
        };
        match self {
            M::MouseState {
                x,
                y,
                buttons,
                display_id,
            } => {
                for v in [*x, *y, *buttons] {
                    put(&mut out, v);
                }
                out.push(*display_id);
            }
            M::MonitorsConfig(c) => {
                put(&mut out, c.monitors.len() as u32);
                put(&mut out, c.flags);
                for m in &c.monitors {
                    for v in [m.height, m.width, m.depth, m.x as u32, m.y as u32] {
                        put(&mut out, v);
                    }
                }
                for (h, w) in c.physical.iter().flatten() {
                    out.extend_from_slice(&h.to_le_bytes());
                    out.extend_from_slice(&w.to_le_bytes());
                }
            }
            M::Reply { kind, error } => {
                put(&mut out, *kind);
                put(&mut out, *error);
            }
            M::Clipboard {
                selection,
                kind,
                data,
            } => {
                sel(&mut out, *selection);
                put(&mut out, *kind);
                out.extend_from_slice(data);
            }
            M::DisplayConfig { flags, depth } => {
                put(&mut out, *flags);
                put(&mut out, *depth);
            }
            M::AnnounceCapabilities { request, caps } => {
                put(&mut out, u32::from(*request));
                for w in &caps.0 {
                    put(&mut out, *w);
                }
            }
            M::ClipboardGrab {
                selection,
                serial,
                types,
            } => {
                sel(&mut out, *selection);
                if n.grab_serial {
                    put(&mut out, serial.unwrap_or(0));
                }
                for t in types {
                    put(&mut out, *t);
                }
            }
            M::ClipboardRequest { selection, kind } => {
                sel(&mut out, *selection);
                put(&mut out, *kind);
            }
            M::ClipboardRelease { selection } => sel(&mut out, *selection),
            M::FileXferStart { id, keyfile } => {
                put(&mut out, *id);
                out.extend_from_slice(keyfile);
                out.push(0);
            }
            M::FileXferStatus { id, result, detail } => {
                put(&mut out, *id);
                put(&mut out, *result);
                out.extend_from_slice(detail);
            }
            M::FileXferData { id, data } => {
                put(&mut out, *id);
                out.extend_from_slice(&(data.len() as u64).to_le_bytes());
                out.extend_from_slice(data);
            }
            M::ClientDisconnected => {}
            M::MaxClipboard(max) => put(&mut out, *max as u32),
            M::AudioVolumeSync {
                playback,
                mute,
                volume,
            } => {
                out.extend_from_slice(&[u8::from(*playback), u8::from(*mute), volume.len() as u8]);
                for v in volume {
                    out.extend_from_slice(&v.to_le_bytes());
                }
            }
            M::GraphicsDeviceInfo(records) => {
                put(&mut out, records.len() as u32);
                for d in records {
                    for v in [d.channel_id, d.monitor_id, d.device_display_id] {
                        put(&mut out, v);
                    }
                    put(&mut out, d.address.len() as u32 + 1);
                    out.extend_from_slice(d.address.as_bytes());
                    out.push(0);
                }
            }
        }
        out
    }
}
