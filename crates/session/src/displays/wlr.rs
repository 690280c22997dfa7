//! The host's display layout applied through wlr-output-management (sway and the other
//! wlroots compositors): the compositor lists its outputs ("heads") and their modes;
//! a configuration enables head `i` (by name: Virtual-1, Virtual-2, ...) for display `i` with its mode of that size, or a
//! custom mode when it has none (virtual outputs take any size), at the display's
//! position, and disables the heads beyond the layout; the compositor applies it or
//! says why not.

use guestlink_vocabulary::types::Display;
use wayland_client::backend::ObjectId;
use wayland_client::globals::{registry_queue_init, GlobalListContents};
use wayland_client::protocol::wl_registry;
use wayland_client::{event_created_child, Connection, Dispatch, Proxy, QueueHandle};
use wayland_protocols_wlr::output_management::v1::client::{
    zwlr_output_configuration_head_v1::ZwlrOutputConfigurationHeadV1,
    zwlr_output_configuration_v1::{self, ZwlrOutputConfigurationV1},
    zwlr_output_head_v1::{self, ZwlrOutputHeadV1},
    zwlr_output_manager_v1::{self, ZwlrOutputManagerV1},
    zwlr_output_mode_v1::{self, ZwlrOutputModeV1},
};

use super::dispatch::{self, ANSWER_WAIT};
use super::{assign, placed};
use guestlink_vocabulary::types::output_order;

/// A mode a head offers.
#[derive(Debug)]
struct Mode {
    proxy: ZwlrOutputModeV1,
    width: i32,
    height: i32,
    refresh: i32,
}

/// An output.
#[derive(Debug)]
struct Head {
    proxy: ZwlrOutputHeadV1,
    name: String,
    modes: Vec<Mode>,
}

/// What the compositor said.
#[derive(Debug, Default)]
struct Outputs {
    heads: Vec<Head>,
    /// The serial of the last complete description.
    serial: Option<u32>,
    /// How the configuration ended: applied, or why not.
    outcome: Option<Result<(), String>>,
}

impl Outputs {
    fn head(&mut self, id: &ObjectId) -> Option<&mut Head> {
        self.heads.iter_mut().find(|h| h.proxy.id() == *id)
    }

    fn mode(&mut self, id: &ObjectId) -> Option<&mut Mode> {
        self.heads
            .iter_mut()
            .flat_map(|h| h.modes.iter_mut())
            .find(|m| m.proxy.id() == *id)
    }
}

/// Whether the Wayland compositor in `WAYLAND_DISPLAY` has wlr-output-management.
pub fn available() -> bool {
    let Ok(conn) = Connection::connect_to_env() else {
        return false;
    };
    let Ok((globals, _)) = registry_queue_init::<Outputs>(&conn) else {
        return false;
    };
    globals.contents().with_list(|list| {
        list.iter()
            .any(|g| g.interface == ZwlrOutputManagerV1::interface().name)
    })
}

/// Applies `layout` to the compositor in `WAYLAND_DISPLAY`.
pub fn apply(layout: &[Display]) -> Result<(), String> {
    let wanted = placed(layout);
    if wanted.is_empty() {
        return Err("the layout has no display switched on".into());
    }
    let fail = |e: &dyn std::fmt::Display| format!("cannot apply the display layout: {e}");
    let conn = Connection::connect_to_env().map_err(|e| fail(&e))?;
    let (globals, mut queue) = registry_queue_init::<Outputs>(&conn).map_err(|e| fail(&e))?;
    let qh = queue.handle();
    let manager: ZwlrOutputManagerV1 = globals
        .bind(&qh, 1..=1, ())
        .map_err(|e| fail(&format!("no wlr-output-management: {e}")))?;
    let mut state = Outputs::default();
    dispatch::until(&conn, &mut queue, &mut state, ANSWER_WAIT, |s| {
        s.serial.is_some()
    })
    .map_err(|e| fail(&e))?;
    if state.heads.is_empty() {
        return Err(fail(&"the compositor has no output"));
    }
    // The compositor announces heads in no useful order: by name, numbers as numbers
    // (Virtual-2 before Virtual-10), as the connectors were made.
    state.heads.sort_by_key(|h| output_order(&h.name));
    let serial = state.serial.unwrap_or_default();
    let names: Vec<&str> = state.heads.iter().map(|h| h.name.as_str()).collect();
    let plan = assign(layout, &names);
    let config = manager.create_configuration(serial, &qh, ());
    for (head, place) in state.heads.iter().zip(plan) {
        let Some(p) = place else {
            config.disable_head(&head.proxy);
            continue;
        };
        let (w, h, x, y) = (p.width, p.height, p.x, p.y);
        let ch = config.enable_head(&head.proxy, &qh, ());
        let same = head
            .modes
            .iter()
            .filter(|m| (m.width, m.height) == (i32::from(w), i32::from(h)))
            .max_by_key(|m| m.refresh);
        match same {
            Some(m) => ch.set_mode(&m.proxy),
            None => ch.set_custom_mode(i32::from(w), i32::from(h), 0),
        }
        ch.set_position(i32::from(x), i32::from(y));
        tracing::debug!(output = %head.name, "{w}x{h}+{x}+{y}");
    }
    config.apply();
    dispatch::until(&conn, &mut queue, &mut state, ANSWER_WAIT, |s| {
        s.outcome.is_some()
    })
    .map_err(|e| fail(&e))?;
    config.destroy();
    manager.stop();
    let _ = conn.flush();
    state.outcome.unwrap_or(Ok(())).map_err(|e| fail(&e))
}

impl Dispatch<ZwlrOutputManagerV1, ()> for Outputs {
    fn event(
        state: &mut Self,
        _: &ZwlrOutputManagerV1,
        event: zwlr_output_manager_v1::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        match event {
            zwlr_output_manager_v1::Event::Head { head } => state.heads.push(Head {
                proxy: head,
                name: String::new(),
                modes: Vec::new(),
            }),
            zwlr_output_manager_v1::Event::Done { serial } => state.serial = Some(serial),
            _ => {}
        }
    }

    event_created_child!(Outputs, ZwlrOutputManagerV1, [
        zwlr_output_manager_v1::EVT_HEAD_OPCODE => (ZwlrOutputHeadV1, ()),
    ]);
}

impl Dispatch<ZwlrOutputHeadV1, ()> for Outputs {
    fn event(
        state: &mut Self,
        proxy: &ZwlrOutputHeadV1,
        event: zwlr_output_head_v1::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        let id = proxy.id();
        match event {
            zwlr_output_head_v1::Event::Name { name } => {
                if let Some(h) = state.head(&id) {
                    h.name = name;
                }
            }
            zwlr_output_head_v1::Event::Mode { mode } => {
                if let Some(h) = state.head(&id) {
                    h.modes.push(Mode {
                        proxy: mode,
                        width: 0,
                        height: 0,
                        refresh: 0,
                    });
                }
            }
            zwlr_output_head_v1::Event::Finished => state.heads.retain(|h| h.proxy.id() != id),
            _ => {}
        }
    }

    event_created_child!(Outputs, ZwlrOutputHeadV1, [
        zwlr_output_head_v1::EVT_MODE_OPCODE => (ZwlrOutputModeV1, ()),
    ]);
}

impl Dispatch<ZwlrOutputModeV1, ()> for Outputs {
    fn event(
        state: &mut Self,
        proxy: &ZwlrOutputModeV1,
        event: zwlr_output_mode_v1::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        let id = proxy.id();
        match event {
            zwlr_output_mode_v1::Event::Size { width, height } => {
                if let Some(m) = state.mode(&id) {
                    (m.width, m.height) = (width, height);
                }
            }
            zwlr_output_mode_v1::Event::Refresh { refresh } => {
                if let Some(m) = state.mode(&id) {
                    m.refresh = refresh;
                }
            }
            zwlr_output_mode_v1::Event::Finished => {
                for h in &mut state.heads {
                    h.modes.retain(|m| m.proxy.id() != id);
                }
            }
            _ => {}
        }
    }
}

impl Dispatch<ZwlrOutputConfigurationV1, ()> for Outputs {
    fn event(
        state: &mut Self,
        _: &ZwlrOutputConfigurationV1,
        event: zwlr_output_configuration_v1::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        state.outcome = match event {
            zwlr_output_configuration_v1::Event::Succeeded => Some(Ok(())),
            zwlr_output_configuration_v1::Event::Failed => {
                Some(Err("the compositor refused it".into()))
            }
            zwlr_output_configuration_v1::Event::Cancelled => {
                Some(Err("the outputs changed meanwhile; try again".into()))
            }
            _ => return,
        };
    }
}

impl Dispatch<ZwlrOutputConfigurationHeadV1, ()> for Outputs {
    fn event(
        _: &mut Self,
        _: &ZwlrOutputConfigurationHeadV1,
        _: <ZwlrOutputConfigurationHeadV1 as Proxy>::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
    }
}

impl Dispatch<wl_registry::WlRegistry, GlobalListContents> for Outputs {
    fn event(
        _: &mut Self,
        _: &wl_registry::WlRegistry,
        _: wl_registry::Event,
        _: &GlobalListContents,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
    }
}
