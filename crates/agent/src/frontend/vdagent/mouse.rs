//! MOUSE_STATE to pointer events: positions mapped through the display layout the
//! host sent (MONITORS_CONFIG), buttons as key events on each change, the wheel as one
//! step per rising edge of its bit, as spice-vdagentd does.

use guestlink_platform::pointer::codes::*;
use guestlink_platform::pointer::InputEvent;
use guestlink_proto_vdagent::messages::{MonitorsConfig, USE_POS};

/// Pointer area when the host never sent a layout (QEMU's default console).
pub const DEFAULT_SIZE: (u32, u32) = (1024, 768);

/// SPICE button bits and the buttons they are.
const BUTTONS: [(u32, u16); 5] = [
    (0x02, BTN_LEFT),
    (0x04, BTN_MIDDLE),
    (0x08, BTN_RIGHT),
    (0x40, BTN_SIDE),
    (0x80, BTN_EXTRA),
];
const WHEEL_UP: u32 = 0x10;
const WHEEL_DOWN: u32 = 0x20;

/// Where each display is: its offset, by display id; `None` for a display that is off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    offsets: Vec<Option<(i32, i32)>>,
    /// The whole area.
    pub size: (u32, u32),
}

impl Default for Layout {
    fn default() -> Self {
        Layout {
            offsets: vec![Some((0, 0))],
            size: DEFAULT_SIZE,
        }
    }
}

impl Layout {
    /// The layout of a MONITORS_CONFIG: positions as given with `USE_POS`, else side
    /// by side from the left; 0×0 entries are displays that are off.
    pub fn of(config: &MonitorsConfig) -> Layout {
        let mut offsets = Vec::new();
        let (mut right, mut bottom, mut next_x) = (0i64, 0i64, 0i32);
        for m in &config.monitors {
            if m.width == 0 || m.height == 0 {
                offsets.push(None);
                continue;
            }
            let (x, y) = if config.flags & USE_POS != 0 {
                (m.x, m.y)
            } else {
                (next_x, 0)
            };
            next_x = next_x.saturating_add(m.width as i32);
            right = right.max(i64::from(x) + i64::from(m.width));
            bottom = bottom.max(i64::from(y) + i64::from(m.height));
            offsets.push(Some((x, y)));
        }
        if offsets.iter().all(Option::is_none) {
            return Layout::default();
        }
        let clamp = |v: i64| v.clamp(1, i64::from(i32::MAX)) as u32;
        Layout {
            offsets,
            size: (clamp(right), clamp(bottom)),
        }
    }

    fn offset(&self, display: u8) -> Option<(i32, i32)> {
        self.offsets.get(usize::from(display)).copied().flatten()
    }
}

/// The pointer as last injected.
#[derive(Debug, Default)]
pub struct Mouse {
    position: Option<(i32, i32)>,
    buttons: u32,
}

fn ev(kind: u16, code: u16, value: i32) -> InputEvent {
    InputEvent { kind, code, value }
}

impl Mouse {
    /// The events for one MOUSE_STATE; empty for a display not in the layout.
    pub fn state(
        &mut self,
        layout: &Layout,
        x: u32,
        y: u32,
        buttons: u32,
        display_id: u8,
    ) -> Vec<InputEvent> {
        let Some((dx, dy)) = layout.offset(display_id) else {
            tracing::debug!(display_id, "mouse event for an unknown display");
            return Vec::new();
        };
        let pos = (
            dx.saturating_add(x.min(i32::MAX as u32) as i32),
            dy.saturating_add(y.min(i32::MAX as u32) as i32),
        );
        let mut out = Vec::new();
        if self.position.map(|p| p.0) != Some(pos.0) {
            out.push(ev(EV_ABS, ABS_X, pos.0));
        }
        if self.position.map(|p| p.1) != Some(pos.1) {
            out.push(ev(EV_ABS, ABS_Y, pos.1));
        }
        self.position = Some(pos);
        out.extend(self.buttons_to(buttons));
        if !out.is_empty() {
            out.push(ev(EV_SYN, SYN_REPORT, 0));
        }
        out
    }

    fn buttons_to(&mut self, buttons: u32) -> Vec<InputEvent> {
        let mut out = Vec::new();
        let old = self.buttons;
        for (bit, code) in BUTTONS {
            if (old ^ buttons) & bit != 0 {
                out.push(ev(EV_KEY, code, i32::from(buttons & bit != 0)));
            }
        }
        let rising = buttons & !old;
        if rising & WHEEL_UP != 0 {
            out.push(ev(EV_REL, REL_WHEEL, 1));
        }
        if rising & WHEEL_DOWN != 0 {
            out.push(ev(EV_REL, REL_WHEEL, -1));
        }
        self.buttons = buttons;
        out
    }

    /// Releases every button held (the client went away).
    pub fn release_all(&mut self) -> Vec<InputEvent> {
        let mut out = self.buttons_to(0);
        if !out.is_empty() {
            out.push(ev(EV_SYN, SYN_REPORT, 0));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use guestlink_proto_vdagent::messages::Monitor;

    fn mon(width: u32, height: u32, x: i32, y: i32) -> Monitor {
        Monitor {
            height,
            width,
            depth: 32,
            x,
            y,
        }
    }

    #[test]
    fn clicks_moves_and_the_wheel() {
        let mut m = Mouse::default();
        let l = Layout::default();
        assert_eq!(
            m.state(&l, 100, 200, 0x2, 0),
            vec![
                ev(3, 0, 100),
                ev(3, 1, 200),
                ev(1, BTN_LEFT, 1),
                ev(0, 0, 0)
            ]
        );
        assert_eq!(m.state(&l, 100, 200, 0x2, 0), vec![]);
        assert_eq!(
            m.state(&l, 100, 201, 0, 0),
            vec![ev(3, 1, 201), ev(1, BTN_LEFT, 0), ev(0, 0, 0)]
        );
        assert_eq!(
            m.state(&l, 100, 201, 0x10, 0),
            vec![ev(2, REL_WHEEL, 1), ev(0, 0, 0)]
        );
        assert_eq!(m.state(&l, 100, 201, 0, 0), vec![]);
        assert_eq!(
            m.state(&l, 100, 201, 0x20 | 0x8, 0),
            vec![ev(1, BTN_RIGHT, 1), ev(2, REL_WHEEL, -1), ev(0, 0, 0)]
        );
        assert_eq!(m.release_all(), vec![ev(1, BTN_RIGHT, 0), ev(0, 0, 0)]);
        assert_eq!(m.state(&l, 1, 1, 0, 1), vec![], "display 1 is unknown");
    }

    #[test]
    fn layouts_place_displays() {
        let side = MonitorsConfig {
            flags: 0,
            monitors: vec![mon(800, 600, 0, 0), mon(1024, 768, 0, 0)],
            physical: None,
        };
        let l = Layout::of(&side);
        assert_eq!(l.size, (1824, 768));
        let mut m = Mouse::default();
        assert_eq!(m.state(&l, 5, 6, 0, 1)[..2], [ev(3, 0, 805), ev(3, 1, 6)]);
        let placed = MonitorsConfig {
            flags: USE_POS,
            monitors: vec![mon(0, 0, 0, 0), mon(640, 480, 100, 50)],
            physical: None,
        };
        let l = Layout::of(&placed);
        assert_eq!(l.size, (740, 530));
        assert_eq!(m.state(&l, 0, 0, 0, 0), vec![]);
        assert_eq!(m.state(&l, 1, 1, 0, 1)[..2], [ev(3, 0, 101), ev(3, 1, 51)]);
        assert_eq!(Layout::of(&MonitorsConfig::default()), Layout::default());
    }
}
