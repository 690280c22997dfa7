//! The host's display layout applied through KDE's output management (KWin, Plasma on
//! Wayland), the protocols kscreen uses: every output is a `kde_output_device_v2` global
//! that describes itself (name, position, modes, whether it is on); a
//! `kde_output_configuration_v2` enables output `i` (by name: Virtual-0, Virtual-1, ...)
//! for display `i` (or the output the display names) with its mode of that size, or its preferred mode when it has none
//! (there are no custom modes), at the display's position, makes the first one primary,
//! and disables the outputs beyond the layout; KWin applies it or says it failed.

use guestlink_vocabulary::types::Display;
use wayland_client::backend::ObjectId;
use wayland_client::globals::{registry_queue_init, GlobalListContents};
use wayland_client::protocol::wl_registry;
use wayland_client::{event_created_child, Connection, Dispatch, Proxy, QueueHandle};
use wayland_protocols_plasma::output_device::v2::client::{
    kde_output_device_mode_v2::{self, KdeOutputDeviceModeV2},
    kde_output_device_v2::{self, KdeOutputDeviceV2},
};
use wayland_protocols_plasma::output_management::v2::client::{
    kde_output_configuration_v2::{self, KdeOutputConfigurationV2},
    kde_output_management_v2::KdeOutputManagementV2,
};

use super::dispatch::{self, ANSWER_WAIT};
use super::{assign, placed, primary};
use guestlink_vocabulary::types::output_order;

/// A mode an output offers.
#[derive(Debug)]
struct Mode {
    proxy: KdeOutputDeviceModeV2,
    width: i32,
    height: i32,
    refresh: i32,
    preferred: bool,
}

/// An output.
#[derive(Debug)]
struct Output {
    proxy: KdeOutputDeviceV2,
    name: String,
    modes: Vec<Mode>,
    /// Whether its description is complete (`done`).
    done: bool,
}

/// What KWin said.
#[derive(Debug, Default)]
struct Outputs {
    outputs: Vec<Output>,
    /// How the configuration ended: applied, or why not.
    outcome: Option<Result<(), String>>,
}

impl Outputs {
    fn output(&mut self, id: &ObjectId) -> Option<&mut Output> {
        self.outputs.iter_mut().find(|o| o.proxy.id() == *id)
    }

    fn mode(&mut self, id: &ObjectId) -> Option<&mut Mode> {
        self.outputs
            .iter_mut()
            .flat_map(|o| o.modes.iter_mut())
            .find(|m| m.proxy.id() == *id)
    }
}

/// Whether the Wayland compositor in `WAYLAND_DISPLAY` has KDE's output management.
pub fn available() -> bool {
    let Ok(conn) = Connection::connect_to_env() else {
        return false;
    };
    let Ok((globals, _)) = registry_queue_init::<Outputs>(&conn) else {
        return false;
    };
    globals.contents().with_list(|list| {
        list.iter()
            .any(|g| g.interface == KdeOutputManagementV2::interface().name)
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
    let manager: KdeOutputManagementV2 = globals
        .bind(&qh, 1..=2, ())
        .map_err(|e| fail(&format!("no KDE output management: {e}")))?;
    let mut state = Outputs::default();
    // One global per output.
    let device = KdeOutputDeviceV2::interface().name;
    for g in globals.contents().clone_list() {
        if g.interface == device {
            let proxy: KdeOutputDeviceV2 =
                globals.registry().bind(g.name, g.version.min(2), &qh, ());
            state.outputs.push(Output {
                proxy,
                name: String::new(),
                modes: Vec::new(),
                done: false,
            });
        }
    }
    if state.outputs.is_empty() {
        return Err(fail(&"the compositor has no output"));
    }
    dispatch::until(&conn, &mut queue, &mut state, ANSWER_WAIT, |s| {
        s.outputs.iter().all(|o| o.done)
    })
    .map_err(|e| fail(&e))?;
    state.outputs.sort_by_key(|o| output_order(&o.name));
    let names: Vec<&str> = state.outputs.iter().map(|o| o.name.as_str()).collect();
    let plan = assign(layout, &names);
    let first = primary(&plan);
    let config = manager.create_configuration(&qh, ());
    for (out, place) in state.outputs.iter().zip(plan) {
        let Some(p) = place else {
            config.enable(&out.proxy, 0);
            continue;
        };
        let (w, h, x, y) = (p.width, p.height, p.x, p.y);
        config.enable(&out.proxy, 1);
        let size = (i32::from(w), i32::from(h));
        let mode = out
            .modes
            .iter()
            .filter(|m| (m.width, m.height) == size)
            .max_by_key(|m| m.refresh)
            .or_else(|| out.modes.iter().find(|m| m.preferred));
        if let Some(m) = mode {
            config.mode(&out.proxy, &m.proxy);
        }
        config.position(&out.proxy, i32::from(x), i32::from(y));
        if Some(p.rank) == first && manager.version() >= 2 {
            config.set_primary_output(&out.proxy);
        }
        tracing::debug!(output = %out.name, "{w}x{h}+{x}+{y}");
    }
    config.apply();
    dispatch::until(&conn, &mut queue, &mut state, ANSWER_WAIT, |s| {
        s.outcome.is_some()
    })
    .map_err(|e| fail(&e))?;
    config.destroy();
    let _ = conn.flush();
    state.outcome.unwrap_or(Ok(())).map_err(|e| fail(&e))
}

impl Dispatch<KdeOutputDeviceV2, ()> for Outputs {
    fn event(
        state: &mut Self,
        proxy: &KdeOutputDeviceV2,
        event: kde_output_device_v2::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        let id = proxy.id();
        let Some(out) = state.output(&id) else {
            return;
        };
        match event {
            kde_output_device_v2::Event::Name { name } => out.name = name,
            kde_output_device_v2::Event::Mode { mode } => out.modes.push(Mode {
                proxy: mode,
                width: 0,
                height: 0,
                refresh: 0,
                preferred: false,
            }),
            kde_output_device_v2::Event::Done => out.done = true,
            _ => {}
        }
    }

    event_created_child!(Outputs, KdeOutputDeviceV2, [
        kde_output_device_v2::EVT_MODE_OPCODE => (KdeOutputDeviceModeV2, ()),
    ]);
}

impl Dispatch<KdeOutputDeviceModeV2, ()> for Outputs {
    fn event(
        state: &mut Self,
        proxy: &KdeOutputDeviceModeV2,
        event: kde_output_device_mode_v2::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        let id = proxy.id();
        match event {
            kde_output_device_mode_v2::Event::Size { width, height } => {
                if let Some(m) = state.mode(&id) {
                    (m.width, m.height) = (width, height);
                }
            }
            kde_output_device_mode_v2::Event::Refresh { refresh } => {
                if let Some(m) = state.mode(&id) {
                    m.refresh = refresh;
                }
            }
            kde_output_device_mode_v2::Event::Preferred => {
                if let Some(m) = state.mode(&id) {
                    m.preferred = true;
                }
            }
            kde_output_device_mode_v2::Event::Removed => {
                for o in &mut state.outputs {
                    o.modes.retain(|m| m.proxy.id() != id);
                }
            }
            _ => {}
        }
    }
}

impl Dispatch<KdeOutputConfigurationV2, ()> for Outputs {
    fn event(
        state: &mut Self,
        _: &KdeOutputConfigurationV2,
        event: kde_output_configuration_v2::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        state.outcome = match event {
            kde_output_configuration_v2::Event::Applied => Some(Ok(())),
            kde_output_configuration_v2::Event::Failed => {
                Some(Err("the compositor refused it".into()))
            }
            _ => return,
        };
    }
}

impl Dispatch<KdeOutputManagementV2, ()> for Outputs {
    fn event(
        _: &mut Self,
        _: &KdeOutputManagementV2,
        _: <KdeOutputManagementV2 as Proxy>::Event,
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
