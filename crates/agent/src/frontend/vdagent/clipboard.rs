//! The vdagent clipboard, protocol side: who owns each selection (the host, the guest,
//! nobody), the grab serials, the guest's pastes waiting for the host's data, and the
//! mapping between vdagent clipboard types and MIME types. No I/O: the front end turns
//! what these functions decide into messages and core calls.

use std::time::{Duration, Instant};

use guestlink_vocabulary::types::ClipboardSelection;

/// vdagent clipboard types.
pub mod kind {
    /// Nothing (a refusal).
    pub const NONE: u32 = 0;
    /// UTF-8 text.
    pub const UTF8_TEXT: u32 = 1;
    /// PNG.
    pub const IMAGE_PNG: u32 = 2;
    /// BMP.
    pub const IMAGE_BMP: u32 = 3;
    /// TIFF.
    pub const IMAGE_TIFF: u32 = 4;
    /// JPEG.
    pub const IMAGE_JPG: u32 = 5;
}

/// The MIME type the guest is offered for a vdagent type.
pub fn mime_of(k: u32) -> Option<&'static str> {
    Some(match k {
        kind::UTF8_TEXT => "text/plain;charset=utf-8",
        kind::IMAGE_PNG => "image/png",
        kind::IMAGE_BMP => "image/bmp",
        kind::IMAGE_TIFF => "image/tiff",
        kind::IMAGE_JPG => "image/jpeg",
        _ => return None,
    })
}

/// The vdagent type of a MIME type (or X11 target) a guest program offers.
pub fn kind_of(mime: &str) -> Option<u32> {
    let base = mime.split(';').next().unwrap_or(mime).trim();
    Some(match base {
        "text/plain" | "UTF8_STRING" | "STRING" | "TEXT" | "COMPOUND_TEXT" => kind::UTF8_TEXT,
        "image/png" => kind::IMAGE_PNG,
        "image/bmp" | "image/x-bmp" | "image/x-MS-bmp" | "image/x-win-bitmap" => kind::IMAGE_BMP,
        "image/tiff" => kind::IMAGE_TIFF,
        "image/jpeg" => kind::IMAGE_JPG,
        _ => return None,
    })
}

/// Whether a vdagent type is an image other than PNG (convertible to PNG).
pub fn is_other_image(k: u32) -> bool {
    matches!(k, kind::IMAGE_BMP | kind::IMAGE_TIFF | kind::IMAGE_JPG)
}

/// `kinds` with PNG added when they hold another image format but no PNG (it is
/// converted on request): PNG is what every image-capable peer takes.
pub fn with_png(mut kinds: Vec<u32>) -> Vec<u32> {
    if !kinds.contains(&kind::IMAGE_PNG) && kinds.iter().any(|k| is_other_image(*k)) {
        kinds.push(kind::IMAGE_PNG);
    }
    kinds
}

/// The vdagent types for what the guest offers, each once, in the guest's order (and
/// PNG, see [`with_png`]).
pub fn kinds_of(mimes: &[String]) -> Vec<u32> {
    let mut out = Vec::new();
    for k in mimes.iter().filter_map(|m| kind_of(m)) {
        if !out.contains(&k) {
            out.push(k);
        }
    }
    with_png(out)
}

/// What to read from the guest to answer a host request for `k`: the MIME type, and
/// whether it must be converted to PNG.
pub fn source_for(offer: &[String], k: u32) -> Option<(String, bool)> {
    if let Some(m) = mime_for(offer, k) {
        return Some((m, false));
    }
    if k != kind::IMAGE_PNG {
        return None;
    }
    offer
        .iter()
        .find(|m| kind_of(m).is_some_and(is_other_image))
        .map(|m| (m.clone(), true))
}

/// The guest's MIME type that answers a host request for `k`.
pub fn mime_for(offer: &[String], k: u32) -> Option<String> {
    offer.iter().find(|m| kind_of(m) == Some(k)).cloned()
}

/// A vdagent selection number as a guest selection (SECONDARY is not served).
pub fn selection_of(sel: u8) -> Option<ClipboardSelection> {
    match sel {
        0 => Some(ClipboardSelection::Clipboard),
        1 => Some(ClipboardSelection::Primary),
        _ => None,
    }
}

/// The vdagent number of a guest selection.
pub fn number_of(sel: ClipboardSelection) -> u8 {
    match sel {
        ClipboardSelection::Clipboard => 0,
        ClipboardSelection::Primary => 1,
    }
}

fn slot(sel: ClipboardSelection) -> usize {
    number_of(sel) as usize
}

/// Who owns a selection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Owner {
    /// Nobody (as far as the host was told).
    #[default]
    Nobody,
    /// The host, offering these vdagent types.
    Host(Vec<u32>),
    /// A guest program, offering these MIME types (announced to the host as a grab).
    Guest(Vec<String>),
}

/// A guest program's paste waiting for the host's CLIPBOARD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetch {
    /// The core's tag to answer.
    pub tag: i64,
    /// Selection.
    pub selection: ClipboardSelection,
    /// vdagent type asked for.
    pub kind: u32,
    /// The MIME type to answer with.
    pub mime: String,
    /// The host's data (of `kind`) is converted to PNG first.
    pub convert: bool,
    /// When the paste was asked for.
    pub at: Instant,
}

/// How long a paste waits for the host: the core's own wait (its waiter is gone after
/// that, so an entry this old is dropped, and a new paste asks the host again).
pub const FETCH_EXPIRY: Duration = guestlink_core::limits::CLIPBOARD_FETCH_TIMEOUT;
/// Pastes that may wait for the host at once (the `vdagent-pastes` limit).
pub const FETCH_LIMIT: usize = 64;

/// What the host wants done about a guest selection after one of its messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Ignore the message.
    Drop,
    /// Accepted.
    Accept,
}

/// The clipboard state of one host connection.
#[derive(Debug, Default)]
pub struct State {
    owners: [Owner; 2],
    serials: [u32; 2],
    fetches: Vec<Fetch>,
    /// The largest data the host takes (`MAX_CLIPBOARD`; negative: no limit).
    pub max: Option<i32>,
}

impl State {
    /// Who owns `sel`.
    pub fn owner(&self, sel: ClipboardSelection) -> &Owner {
        &self.owners[slot(sel)]
    }

    /// A new client (or host): serials start again, what the host owned is gone, and
    /// every paste waiting for it fails. Returns those pastes and the selections the
    /// host owned.
    pub fn new_peer(&mut self) -> (Vec<Fetch>, Vec<ClipboardSelection>) {
        self.serials = [0; 2];
        self.max = None;
        let mut released = Vec::new();
        for sel in [ClipboardSelection::Clipboard, ClipboardSelection::Primary] {
            let o = &mut self.owners[slot(sel)];
            match o {
                Owner::Host(_) => {
                    *o = Owner::Nobody;
                    released.push(sel);
                }
                // The guest still owns it, but the new peer has not been told.
                Owner::Guest(_) => {}
                Owner::Nobody => {}
            }
        }
        (std::mem::take(&mut self.fetches), released)
    }

    /// Forgets what the host was told about the guest's selections (a new host hears
    /// it again).
    pub fn forget_guest(&mut self) {
        for o in &mut self.owners {
            if matches!(o, Owner::Guest(_)) {
                *o = Owner::Nobody;
            }
        }
    }

    /// The host grabbed `sel` with `serial` (when serials are in use): spice-vdagentd's
    /// rule, equal to ours (then count on) or one less (a simultaneous grab: the
    /// client wins).
    pub fn host_grab(
        &mut self,
        sel: ClipboardSelection,
        serial: Option<u32>,
        kinds: Vec<u32>,
    ) -> (Verdict, Vec<Fetch>) {
        let s = slot(sel);
        if let Some(serial) = serial {
            let ours = self.serials[s];
            if serial == ours {
                self.serials[s] = ours.wrapping_add(1);
            } else if serial != ours.wrapping_sub(1) {
                return (Verdict::Drop, Vec::new());
            }
        }
        self.owners[s] = Owner::Host(kinds);
        (Verdict::Accept, self.take_fetches(sel))
    }

    /// The host let `sel` go; whether it had owned it, and the pastes that now fail.
    pub fn host_release(&mut self, sel: ClipboardSelection) -> (bool, Vec<Fetch>) {
        let s = slot(sel);
        if matches!(self.owners[s], Owner::Host(_)) {
            self.owners[s] = Owner::Nobody;
            (true, self.take_fetches(sel))
        } else {
            (false, Vec::new())
        }
    }

    /// The guest clipboard now offers `mimes` (none: empty); `new_owner` when a program
    /// just took it (a copy is news even with the same types). What to tell the host:
    /// `Some(kinds)` a grab with the serial to send, `Some(empty)` a release, `None`
    /// nothing (no change, or a selection the host never heard of).
    pub fn guest_offer(
        &mut self,
        sel: ClipboardSelection,
        mimes: Vec<String>,
        new_owner: bool,
    ) -> Option<(Vec<u32>, u32)> {
        let s = slot(sel);
        let kinds = kinds_of(&mimes);
        match (&self.owners[s], kinds.is_empty()) {
            (Owner::Guest(old), false) if !new_owner && kinds_of(old) == kinds => {
                self.owners[s] = Owner::Guest(mimes);
                None
            }
            (_, false) => {
                self.owners[s] = Owner::Guest(mimes);
                let serial = self.serials[s];
                self.serials[s] = serial.wrapping_add(1);
                Some((kinds, serial))
            }
            (Owner::Guest(_), true) => {
                self.owners[s] = Owner::Nobody;
                Some((Vec::new(), 0))
            }
            (_, true) => None,
        }
    }

    /// The guest's offer for `sel`, when the guest owns it.
    pub fn guest_types(&self, sel: ClipboardSelection) -> Option<&[String]> {
        match &self.owners[slot(sel)] {
            Owner::Guest(m) => Some(m),
            _ => None,
        }
    }

    /// A guest program pastes what the host owns: the type to request, and whether a
    /// request for it is already on its way.
    pub fn fetch(&mut self, f: Fetch) -> Result<bool, String> {
        // A host that never answered must not hold every later paste back.
        self.fetches
            .retain(|p| f.at.saturating_duration_since(p.at) < FETCH_EXPIRY);
        if self.fetches.len() >= FETCH_LIMIT {
            return Err(format!(
                "too many pastes wait for the host (limit vdagent-pastes: {FETCH_LIMIT})"
            ));
        }
        match &self.owners[slot(f.selection)] {
            Owner::Host(kinds) if kinds.contains(&f.kind) => {
                let asked = self
                    .fetches
                    .iter()
                    .any(|p| p.selection == f.selection && p.kind == f.kind);
                self.fetches.push(f);
                Ok(asked)
            }
            Owner::Host(_) => Err("the host does not offer that type".into()),
            _ => Err("the host no longer owns the selection".into()),
        }
    }

    /// The host's CLIPBOARD for `sel` of type `k`: the pastes it answers.
    pub fn answered(&mut self, sel: ClipboardSelection, k: u32) -> Vec<Fetch> {
        let (done, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.fetches)
            .into_iter()
            .partition(|f| f.selection == sel && (f.kind == k || k == kind::NONE));
        self.fetches = rest;
        // A NONE answers the oldest request, whatever its type.
        if done.is_empty() && k == kind::NONE {
            if let Some(i) = self.fetches.iter().position(|f| f.selection == sel) {
                return vec![self.fetches.remove(i)];
            }
        }
        done
    }

    fn take_fetches(&mut self, sel: ClipboardSelection) -> Vec<Fetch> {
        let (gone, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.fetches)
            .into_iter()
            .partition(|f| f.selection == sel);
        self.fetches = rest;
        gone
    }

    /// Whether data of `len` bytes is more than the host takes.
    pub fn too_large(&self, len: usize) -> bool {
        matches!(self.max, Some(m) if m >= 0 && len > m as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const C: ClipboardSelection = ClipboardSelection::Clipboard;

    #[test]
    fn serial_rules_as_spice_vdagentd() {
        let mut s = State::default();
        assert_eq!(s.host_grab(C, Some(0), vec![1]).0, Verdict::Accept);
        assert_eq!(s.host_grab(C, Some(1), vec![1]).0, Verdict::Accept);
        // One less than ours: the client wins without counting on.
        assert_eq!(s.host_grab(C, Some(1), vec![1]).0, Verdict::Accept);
        assert_eq!(s.host_grab(C, Some(5), vec![1]).0, Verdict::Drop);
        assert_eq!(s.host_grab(C, Some(0), vec![1]).0, Verdict::Drop);
        // Our grab takes the next serial.
        assert_eq!(
            s.guest_offer(C, vec!["text/plain".into()], true),
            Some((vec![1], 2))
        );
        // QEMU's next grab reuses our serial (one less than our counter).
        assert_eq!(s.host_grab(C, Some(2), vec![1]).0, Verdict::Accept);
        s.new_peer();
        assert_eq!(s.host_grab(C, Some(0), vec![1]).0, Verdict::Accept);
        assert_eq!(s.host_grab(C, None, vec![1]).0, Verdict::Accept);
    }

    #[test]
    fn guest_offers_grab_once_and_release_when_emptied() {
        let mut s = State::default();
        let text = vec!["UTF8_STRING".to_string(), "text/plain;charset=utf-8".into()];
        assert_eq!(s.guest_offer(C, text.clone(), false), Some((vec![1], 0)));
        assert_eq!(s.guest_offer(C, text.clone(), false), None);
        // Another copy of text is a new owner: a new grab.
        assert_eq!(s.guest_offer(C, text, true), Some((vec![1], 1)));
        assert_eq!(
            s.guest_offer(C, vec!["image/png".into(), "text/plain".into()], false),
            Some((vec![2, 1], 2))
        );
        assert_eq!(
            s.guest_offer(C, vec!["application/x-foo".into()], true),
            Some((vec![], 0))
        );
        assert_eq!(s.guest_offer(C, vec![], true), None);
        assert_eq!(s.owner(C), &Owner::Nobody);
    }

    #[test]
    fn pastes_wait_for_the_host_and_fail_when_it_lets_go() {
        let mut s = State::default();
        let at = Instant::now();
        let f = |tag, kind| Fetch {
            tag,
            selection: C,
            kind,
            mime: "text/plain".into(),
            convert: false,
            at,
        };
        assert!(s.fetch(f(1, 1)).is_err());
        s.host_grab(C, None, vec![1, 2]);
        assert_eq!(s.fetch(f(1, 1)), Ok(false));
        assert_eq!(s.fetch(f(2, 1)), Ok(true));
        assert_eq!(s.fetch(f(3, 2)), Ok(false));
        assert!(s.fetch(f(4, 5)).is_err());
        assert_eq!(s.answered(C, 1).len(), 2);
        assert_eq!(s.answered(C, kind::NONE), vec![f(3, 2)]);
        s.fetch(f(5, 1)).unwrap();
        let (_, failed) = s.host_grab(C, None, vec![1]);
        assert_eq!(failed, vec![f(5, 1)]);
        s.fetch(f(6, 1)).unwrap();
        assert_eq!(s.host_release(C), (true, vec![f(6, 1)]));
    }

    #[test]
    fn unanswered_pastes_expire_and_are_bounded() {
        let mut s = State::default();
        s.host_grab(C, None, vec![1]);
        let t0 = Instant::now();
        let f = |tag, at| Fetch {
            tag,
            selection: C,
            kind: 1,
            mime: "text/plain".into(),
            convert: false,
            at,
        };
        assert_eq!(s.fetch(f(1, t0)), Ok(false));
        assert_eq!(
            s.fetch(f(2, t0)),
            Ok(true),
            "the same request is on its way"
        );
        // The host never answered: after the wait a new paste asks again.
        let later = t0 + FETCH_EXPIRY;
        assert_eq!(s.fetch(f(3, later)), Ok(false));
        for tag in 4..(3 + FETCH_LIMIT as i64) {
            s.fetch(f(tag, later)).unwrap();
        }
        assert!(s
            .fetch(f(99, later))
            .unwrap_err()
            .contains("vdagent-pastes"));
    }

    #[test]
    fn limits_and_mapping() {
        let mut s = State::default();
        assert!(!s.too_large(1 << 30));
        s.max = Some(10);
        assert!(s.too_large(11) && !s.too_large(10));
        s.max = Some(-1);
        assert!(!s.too_large(1 << 30));
        assert_eq!(kind_of("text/plain;charset=utf-8"), Some(1));
        assert_eq!(kind_of("image/x-MS-bmp"), Some(3));
        assert_eq!(
            mime_for(&["STRING".into(), "image/png".into()], 2).unwrap(),
            "image/png"
        );
    }
}
