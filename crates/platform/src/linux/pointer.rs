//! The absolute pointer a host drives (SPICE's MOUSE_STATE): a uinput tablet made with
//! the evdev crate, or a recorder that writes every event as a `type code value` line,
//! for machines without `/dev/uinput` and for tests.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use evdev::uinput::VirtualDevice;
use evdev::{AbsInfo, AbsoluteAxisCode, AttributeSet, KeyCode, RelativeAxisCode, UinputAbsSetup};

/// One input event, as the kernel's `struct input_event` has it (without the time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputEvent {
    /// `EV_*`.
    pub kind: u16,
    /// Code within the type (`ABS_X`, `BTN_LEFT`, ...).
    pub code: u16,
    /// Value.
    pub value: i32,
}

/// Event types and codes used.
pub mod codes {
    /// Synchronisation.
    pub const EV_SYN: u16 = 0;
    /// Keys and buttons.
    pub const EV_KEY: u16 = 1;
    /// Relative axes.
    pub const EV_REL: u16 = 2;
    /// Absolute axes.
    pub const EV_ABS: u16 = 3;
    /// End of a batch.
    pub const SYN_REPORT: u16 = 0;
    /// Horizontal position.
    pub const ABS_X: u16 = 0;
    /// Vertical position.
    pub const ABS_Y: u16 = 1;
    /// Wheel.
    pub const REL_WHEEL: u16 = 8;
    /// Left button.
    pub const BTN_LEFT: u16 = 0x110;
    /// Right button.
    pub const BTN_RIGHT: u16 = 0x111;
    /// Middle button.
    pub const BTN_MIDDLE: u16 = 0x112;
    /// Side button.
    pub const BTN_SIDE: u16 = 0x113;
    /// Extra button.
    pub const BTN_EXTRA: u16 = 0x114;
}

/// Where pointer events go.
pub trait Pointer: Send + std::fmt::Debug {
    /// The area positions are in changed: `width` × `height` pixels.
    fn resize(&mut self, width: u32, height: u32) -> io::Result<()>;
    /// Injects a batch of events ending with `SYN_REPORT`.
    fn emit(&mut self, events: &[InputEvent]) -> io::Result<()>;
}

/// Writes events to a file, one `type code value` line each.
#[derive(Debug)]
pub struct Recorder {
    file: File,
}

impl Recorder {
    /// Appends to `path` (created if needed).
    pub fn open(path: &Path) -> io::Result<Recorder> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(Recorder { file })
    }
}

impl Pointer for Recorder {
    fn resize(&mut self, _width: u32, _height: u32) -> io::Result<()> {
        Ok(())
    }

    fn emit(&mut self, events: &[InputEvent]) -> io::Result<()> {
        let mut text = String::new();
        for e in events {
            text.push_str(&format!("{} {} {}\n", e.kind, e.code, e.value));
        }
        self.file.write_all(text.as_bytes())
    }
}

/// A uinput absolute tablet ("guestlink tablet").
pub struct Uinput {
    device: VirtualDevice,
    size: (u32, u32),
}

impl std::fmt::Debug for Uinput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Uinput").field("size", &self.size).finish()
    }
}

fn tablet(width: u32, height: u32) -> io::Result<VirtualDevice> {
    let axis = |code, max: u32| {
        UinputAbsSetup::new(
            code,
            AbsInfo::new(0, 0, max.saturating_sub(1) as i32, 0, 0, 0),
        )
    };
    let mut keys = AttributeSet::<KeyCode>::new();
    for k in [
        KeyCode::BTN_LEFT,
        KeyCode::BTN_RIGHT,
        KeyCode::BTN_MIDDLE,
        KeyCode::BTN_SIDE,
        KeyCode::BTN_EXTRA,
    ] {
        keys.insert(k);
    }
    let mut rel = AttributeSet::<RelativeAxisCode>::new();
    rel.insert(RelativeAxisCode::REL_WHEEL);
    VirtualDevice::builder()?
        .name("guestlink tablet")
        .with_absolute_axis(&axis(AbsoluteAxisCode::ABS_X, width))?
        .with_absolute_axis(&axis(AbsoluteAxisCode::ABS_Y, height))?
        .with_keys(&keys)?
        .with_relative_axes(&rel)?
        .build()
}

impl Uinput {
    /// Creates the device through `/dev/uinput`, `width` × `height` pixels.
    pub fn open(width: u32, height: u32) -> io::Result<Uinput> {
        Ok(Uinput {
            device: tablet(width, height)?,
            size: (width, height),
        })
    }
}

impl Pointer for Uinput {
    fn resize(&mut self, width: u32, height: u32) -> io::Result<()> {
        if (width, height) != self.size && width > 0 && height > 0 {
            // The axis range is fixed when a device is made: make a new one.
            self.device = tablet(width, height)?;
            self.size = (width, height);
        }
        Ok(())
    }

    fn emit(&mut self, events: &[InputEvent]) -> io::Result<()> {
        let batch: Vec<evdev::InputEvent> = events
            .iter()
            .filter(|e| e.kind != codes::EV_SYN)
            .map(|e| evdev::InputEvent::new(e.kind, e.code, e.value))
            .collect();
        // `emit` ends the batch with SYN_REPORT itself.
        self.device.emit(&batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recorder_writes_lines() {
        let path = std::env::temp_dir().join(format!("gl-pointer-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let mut r = Recorder::open(&path).unwrap();
        r.emit(&[
            InputEvent {
                kind: codes::EV_ABS,
                code: codes::ABS_X,
                value: 99,
            },
            InputEvent {
                kind: codes::EV_SYN,
                code: codes::SYN_REPORT,
                value: 0,
            },
        ])
        .unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "3 0 99\n0 0 0\n");
        std::fs::remove_file(&path).unwrap();
    }
}
