//! The host's display layout applied through Mutter's `org.gnome.Mutter.DisplayConfig`
//! (GNOME on Wayland or X11), as spice-vdagent 0.23 does: `GetCurrentState` lists the
//! monitors and their modes, `ApplyMonitorsConfig` (temporary, so no `monitors.xml` is
//! written) makes one logical monitor per display of the layout, at its position,
//! with the monitor's mode of that size, or its preferred mode when it has none of
//! that size (a VM's monitor takes the host's size as its preferred mode). Monitors
//! beyond the layout are left out, which switches them off.

use std::collections::HashMap;

use guestlink_vocabulary::types::Display;
use zbus::{OwnedVariant as OwnedValue, Variant as Value};

use super::{assign, placed, primary};

const NAME: &str = "org.gnome.Mutter.DisplayConfig";
const PATH: &str = "/org/gnome/Mutter/DisplayConfig";

/// A monitor's id: connector, vendor, product, serial.
type MonitorSpec = (String, String, String, String);
/// A mode: id, width, height, refresh rate, preferred scale, supported scales, properties.
type Mode = (
    String,
    i32,
    i32,
    f64,
    f64,
    Vec<f64>,
    HashMap<String, OwnedValue>,
);
/// A monitor: its id, its modes, its properties.
type Monitor = (MonitorSpec, Vec<Mode>, HashMap<String, OwnedValue>);
/// A logical monitor as GetCurrentState reports it.
type Logical = (
    i32,
    i32,
    f64,
    u32,
    bool,
    Vec<MonitorSpec>,
    HashMap<String, OwnedValue>,
);
/// GetCurrentState's reply.
type State = (u32, Vec<Monitor>, Vec<Logical>, HashMap<String, OwnedValue>);
/// A logical monitor to apply: x, y, scale, transform, primary, (connector, mode id, {}).
type NewLogical<'a> = (
    i32,
    i32,
    f64,
    u32,
    bool,
    Vec<(&'a str, &'a str, HashMap<&'a str, Value<'a>>)>,
);

/// `ApplyMonitorsConfig`'s method: applied now, not stored.
const TEMPORARY: u32 = 1;

/// Whether the session bus has Mutter's DisplayConfig.
pub async fn available() -> bool {
    match zbus::Connection::session().await {
        Ok(bus) => current(&bus).await.is_ok(),
        Err(_) => false,
    }
}

async fn current(bus: &zbus::Connection) -> zbus::Result<State> {
    bus.call_method(Some(NAME), PATH, Some(NAME), "GetCurrentState", &())
        .await?
        .body()
        .deserialize()
}

/// Which mode of `modes` shows `w`×`h`: that size (the current one first, then the
/// highest refresh), else the preferred mode.
fn mode_for(modes: &[Mode], w: u16, h: u16) -> Option<&Mode> {
    let flag = |m: &Mode, key: &str| {
        m.6.get(key)
            .and_then(|v| bool::try_from(v).ok())
            .unwrap_or(false)
    };
    let same = modes
        .iter()
        .filter(|m| m.1 == i32::from(w) && m.2 == i32::from(h));
    same.max_by(|a, b| {
        (flag(a, "is-current"), a.3)
            .partial_cmp(&(flag(b, "is-current"), b.3))
            .unwrap_or(std::cmp::Ordering::Equal)
    })
    .or_else(|| modes.iter().find(|m| flag(m, "is-preferred")))
}

/// The logical monitors that show `layout` on `monitors`.
fn plan<'a>(layout: &[Display], monitors: &'a [Monitor]) -> Result<Vec<NewLogical<'a>>, String> {
    let wanted = placed(layout);
    if wanted.is_empty() {
        return Err("the layout has no display switched on".into());
    }
    if monitors.is_empty() {
        return Err("Mutter has no monitor".into());
    }
    let connectors: Vec<&str> = monitors.iter().map(|m| m.0 .0.as_str()).collect();
    let plan = assign(layout, &connectors);
    let first = primary(&plan);
    let mut out = Vec::new();
    for ((spec, modes, _), place) in monitors.iter().zip(plan) {
        let Some(p) = place else { continue };
        let (w, h, x, y) = (p.width, p.height, p.x, p.y);
        let mode = mode_for(modes, w, h)
            .ok_or_else(|| format!("monitor {} has no mode to use", spec.0))?;
        if (mode.1, mode.2) != (i32::from(w), i32::from(h)) {
            tracing::info!(
                connector = %spec.0,
                "no {w}x{h} mode: using the preferred {}x{}",
                mode.1,
                mode.2
            );
        }
        out.push((
            i32::from(x),
            i32::from(y),
            1.0,
            0,
            Some(p.rank) == first,
            vec![(spec.0.as_str(), mode.0.as_str(), HashMap::new())],
        ));
    }
    Ok(out)
}

/// Applies `layout` through Mutter.
pub async fn apply(layout: &[Display]) -> Result<(), String> {
    let bus = zbus::Connection::session()
        .await
        .map_err(|e| format!("cannot reach the session bus: {e}"))?;
    let (serial, monitors, _, _) = current(&bus)
        .await
        .map_err(|e| format!("cannot read Mutter's monitors: {e}"))?;
    let logical = plan(layout, &monitors)?;
    let properties: HashMap<&str, Value<'_>> = HashMap::new();
    bus.call_method(
        Some(NAME),
        PATH,
        Some(NAME),
        "ApplyMonitorsConfig",
        &(serial, TEMPORARY, logical, properties),
    )
    .await
    .map_err(|e| format!("Mutter refused the layout: {e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(id: &str, w: i32, h: i32, refresh: f64, flags: &[&str]) -> Mode {
        let props = flags
            .iter()
            .map(|f| (f.to_string(), OwnedValue::from(true)))
            .collect();
        (id.into(), w, h, refresh, 1.0, vec![1.0], props)
    }

    fn monitor(connector: &str, modes: Vec<Mode>) -> Monitor {
        (
            (connector.into(), "v".into(), "p".into(), "s".into()),
            modes,
            HashMap::new(),
        )
    }

    fn d(id: i64, w: i64, h: i64, at: Option<(i64, i64)>) -> Display {
        Display {
            id,
            width: w,
            height: h,
            x: at.map(|a| a.0),
            y: at.map(|a| a.1),
            output: None,
        }
    }

    #[test]
    fn modes_of_the_size_or_the_preferred() {
        let modes = vec![
            mode("a", 1024, 768, 60.0, &["is-preferred"]),
            mode("b", 800, 600, 60.0, &[]),
            mode("c", 800, 600, 75.0, &[]),
        ];
        assert_eq!(mode_for(&modes, 800, 600).unwrap().0, "c");
        assert_eq!(mode_for(&modes, 640, 480).unwrap().0, "a");
        let current = vec![
            mode("x", 800, 600, 75.0, &[]),
            mode("y", 800, 600, 60.0, &["is-current"]),
        ];
        assert_eq!(mode_for(&current, 800, 600).unwrap().0, "y");
        assert!(mode_for(&[mode("z", 1, 1, 60.0, &[])], 2, 2).is_none());
    }

    #[test]
    fn one_logical_monitor_per_display() {
        let monitors = vec![
            monitor(
                "Virtual-1",
                vec![mode("m1", 1024, 768, 60.0, &["is-preferred"])],
            ),
            monitor(
                "Virtual-2",
                vec![mode("m2", 800, 600, 60.0, &["is-preferred"])],
            ),
            monitor(
                "Virtual-3",
                vec![mode("m3", 640, 480, 60.0, &["is-preferred"])],
            ),
        ];
        let layout = [d(0, 1024, 768, None), d(1, 800, 600, None)];
        let p = plan(&layout, &monitors).unwrap();
        assert_eq!(p.len(), 2, "the third monitor is switched off");
        assert_eq!((p[0].0, p[0].1, p[0].4), (0, 0, true));
        assert_eq!((p[1].0, p[1].1, p[1].4), (1024, 0, false));
        assert_eq!((p[1].5[0].0, p[1].5[0].1), ("Virtual-2", "m2"));
        assert!(plan(&[d(0, 0, 0, None)], &monitors).is_err());
        assert!(plan(&layout, &[]).is_err());
    }
}
