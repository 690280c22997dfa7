//! The host's display layout applied to the desktop: through Mutter's DisplayConfig
//! D-Bus API (GNOME, on Wayland or X11) when the session bus has it, through
//! wlr-output-management on a wlroots compositor (sway), through KDE's output
//! management on KWin (Plasma on Wayland), else through XRandR when there is an X
//! server. Either way a display that names its output (SPICE's GRAPHICS_DEVICE_INFO)
//! goes there, and the others (the enabled ones, by id) take the outputs left in
//! order, at the host's position or side by side; outputs beyond the layout are
//! switched off.

mod dispatch;
pub mod kde;
pub mod mutter;
pub mod wlr;
pub mod xrandr;

use guestlink_vocabulary::types::Display;

/// Which API takes the layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Displays {
    /// org.gnome.Mutter.DisplayConfig on the session bus.
    Mutter,
    /// wlr-output-management on the compositor in `WAYLAND_DISPLAY`.
    Wlr,
    /// KDE's output management on the compositor in `WAYLAND_DISPLAY` (KWin).
    Kde,
    /// XRandR on the X server in `DISPLAY`.
    Xrandr,
}

/// The API this session has, if any: Mutter first (on GNOME it owns the layout, also
/// under Xwayland), then wlr-output-management, then KDE's, then XRandR when `x11` (an X server is
/// the desktop).
pub async fn detect(x11: bool) -> Option<Displays> {
    if mutter::available().await {
        return Some(Displays::Mutter);
    }
    let wlr = std::env::var_os("WAYLAND_DISPLAY").is_some()
        && tokio::task::spawn_blocking(wlr::available)
            .await
            .unwrap_or(false);
    if wlr {
        return Some(Displays::Wlr);
    }
    let kde = std::env::var_os("WAYLAND_DISPLAY").is_some()
        && tokio::task::spawn_blocking(kde::available)
            .await
            .unwrap_or(false);
    if kde {
        return Some(Displays::Kde);
    }
    let xrandr = x11
        && std::env::var_os("DISPLAY").is_some()
        && tokio::task::spawn_blocking(xrandr::available)
            .await
            .unwrap_or(false);
    xrandr.then_some(Displays::Xrandr)
}

/// Applies `layout` through `which`.
pub async fn apply(which: Displays, layout: Vec<Display>) -> Result<(), String> {
    match which {
        Displays::Mutter => mutter::apply(&layout).await,
        Displays::Wlr => tokio::task::spawn_blocking(move || wlr::apply(&layout))
            .await
            .map_err(|e| e.to_string())?,
        Displays::Kde => tokio::task::spawn_blocking(move || kde::apply(&layout))
            .await
            .map_err(|e| e.to_string())?,
        Displays::Xrandr => tokio::task::spawn_blocking(move || xrandr::apply(&layout))
            .await
            .map_err(|e| e.to_string())?,
    }
}

/// Where each enabled display goes: (width, height, x, y), in layout order.
pub fn placed(layout: &[Display]) -> Vec<(u16, u16, i16, i16)> {
    let mut next_x: i64 = 0;
    let mut out = Vec::new();
    let mut sorted: Vec<&Display> = layout.iter().collect();
    sorted.sort_by_key(|d| d.id);
    for d in sorted {
        if d.width <= 0 || d.height <= 0 {
            continue;
        }
        let clamp16 = |v: i64| v.clamp(0, i64::from(u16::MAX)) as u16;
        let clampi = |v: i64| v.clamp(0, i64::from(i16::MAX)) as i16;
        let (x, y) = match (d.x, d.y) {
            (Some(x), Some(y)) => (x, y),
            _ => (next_x, 0),
        };
        next_x = next_x.max(x + d.width);
        out.push((clamp16(d.width), clamp16(d.height), clampi(x), clampi(y)));
    }
    out
}

/// Where one display of the layout goes: its rank among the layout's enabled displays
/// (0 is the primary one), its size and position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    /// 0 for the first enabled display (by id), 1 for the next, ...
    pub rank: usize,
    /// Width in pixels.
    pub width: u16,
    /// Height in pixels.
    pub height: u16,
    /// Left edge.
    pub x: i16,
    /// Top edge.
    pub y: i16,
}

/// Which display each of `outputs` (the compositor's outputs, in their order) shows:
/// a display that names its output (SPICE's GRAPHICS_DEVICE_INFO) goes there; the
/// others take the outputs left, in order; outputs that get none go off.
pub fn assign(layout: &[Display], outputs: &[&str]) -> Vec<Option<Place>> {
    let mut enabled: Vec<&Display> = layout
        .iter()
        .filter(|d| d.width > 0 && d.height > 0)
        .collect();
    enabled.sort_by_key(|d| d.id);
    let mut plan: Vec<Option<Place>> = vec![None; outputs.len()];
    let mut rest = Vec::new();
    for (rank, (d, (width, height, x, y))) in enabled.iter().zip(placed(layout)).enumerate() {
        let place = Place {
            rank,
            width,
            height,
            x,
            y,
        };
        let named = d
            .output
            .as_deref()
            .and_then(|n| outputs.iter().position(|o| *o == n));
        match named {
            Some(i) if plan[i].is_none() => plan[i] = Some(place),
            _ => rest.push(place),
        }
    }
    let free: Vec<usize> = (0..plan.len()).filter(|&i| plan[i].is_none()).collect();
    for (i, place) in free.into_iter().zip(rest) {
        plan[i] = Some(place);
    }
    plan
}

/// The rank of the display to make primary: the first of the layout that an output
/// shows (display 0 may have named an output the desktop does not have).
pub fn primary(plan: &[Option<Place>]) -> Option<usize> {
    plan.iter().flatten().map(|p| p.rank).min()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_displays_go_to_their_outputs() {
        let named = |id, w, output: &str| Display {
            output: Some(output.to_string()),
            ..d(id, w, 600, None)
        };
        let outputs = ["Virtual-1", "Virtual-2", "Virtual-3"];
        let sizes = |plan: Vec<Option<Place>>| {
            plan.iter()
                .map(|p| p.map(|p| (p.rank, p.width)))
                .collect::<Vec<_>>()
        };
        // Display 0 is shown by the second output, display 1 by the first.
        assert_eq!(
            sizes(assign(
                &[named(0, 800, "Virtual-2"), named(1, 1024, "Virtual-1")],
                &outputs
            )),
            [Some((1, 1024)), Some((0, 800)), None]
        );
        // Unnamed (or unknown) displays take the outputs left, in order.
        assert_eq!(
            sizes(assign(
                &[
                    d(0, 640, 480, None),
                    named(1, 800, "Virtual-1"),
                    named(2, 1024, "HDMI-9")
                ],
                &outputs
            )),
            [Some((1, 800)), Some((0, 640)), Some((2, 1024))]
        );
        // Display 0 named an output that is not there and the only output went to
        // display 1: display 1 is the primary one.
        let plan = assign(
            &[named(0, 640, "HDMI-9"), named(1, 800, "Virtual-1")],
            &outputs[..1],
        );
        assert_eq!(primary(&plan), Some(1));
        // Without names: display i on output i; more displays than outputs: dropped.
        assert_eq!(
            sizes(assign(
                &[d(0, 640, 480, None), d(1, 800, 600, None)],
                &outputs[..1]
            )),
            [Some((0, 640))]
        );
    }

    #[test]
    fn names_sort_with_their_numbers() {
        let mut v = ["Virtual-10", "Virtual-2", "HDMI-A-1", "Virtual-1", "eDP"];
        v.sort_by_key(|n| guestlink_vocabulary::types::output_order(n));
        assert_eq!(
            v,
            ["HDMI-A-1", "Virtual-1", "Virtual-2", "Virtual-10", "eDP"]
        );
    }

    fn d(id: i64, width: i64, height: i64, at: Option<(i64, i64)>) -> Display {
        Display {
            id,
            width,
            height,
            x: at.map(|a| a.0),
            y: at.map(|a| a.1),
            output: None,
        }
    }

    #[test]
    fn layouts() {
        assert_eq!(
            placed(&[d(1, 640, 480, None), d(0, 800, 600, None)]),
            [(800, 600, 0, 0), (640, 480, 800, 0)]
        );
        assert_eq!(
            placed(&[d(0, 0, 0, None), d(1, 800, 600, Some((10, 20)))]),
            [(800, 600, 10, 20)]
        );
        assert!(placed(&[d(0, 0, 0, None)]).is_empty());
    }
}
