//! The host's display layout applied to the X server through XRandR, as spice-vdagent
//! does on X11: display `i` of the layout drives the `i`th connected output; each gets a mode
//! of the requested size (created when the server has none), its position (side by
//! side when the host gave none), and outputs beyond the layout are switched off. The
//! screen is grown before and shrunk after, within the server's limits.

use guestlink_vocabulary::types::Display;

use super::{assign, placed};
use x11rb::connection::Connection;
use x11rb::protocol::randr::{self, ConnectionExt as _, ModeFlag, ModeInfo, Rotation};
use x11rb::rust_connection::RustConnection;
use x11rb::CURRENT_TIME;

type XResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Whether the X server in `DISPLAY` has RandR 1.2 or later.
pub fn available() -> bool {
    let Ok((conn, _)) = x11rb::connect(None) else {
        return false;
    };
    conn.randr_query_version(1, 2)
        .ok()
        .and_then(|c| c.reply().ok())
        .is_some_and(|v| v.major_version > 1 || v.minor_version >= 2)
}

/// Applies `layout` to the X server in `DISPLAY`.
pub fn apply(layout: &[Display]) -> Result<(), String> {
    apply_x(layout).map_err(|e| format!("cannot apply the display layout: {e}"))
}

fn apply_x(layout: &[Display]) -> XResult<()> {
    let wanted = placed(layout);
    if wanted.is_empty() {
        return Err("the layout has no display switched on".into());
    }
    let (conn, screen) = x11rb::connect(None)?;
    let root = conn.setup().roots[screen].root;
    let res = conn.randr_get_screen_resources_current(root)?.reply()?;
    let range = conn.randr_get_screen_size_range(root)?.reply()?;
    let mut connected = Vec::new();
    for &output in &res.outputs {
        let info = conn
            .randr_get_output_info(output, res.config_timestamp)?
            .reply()?;
        if info.connection == randr::Connection::CONNECTED && !info.crtcs.is_empty() {
            connected.push((output, info));
        }
    }
    if connected.is_empty() {
        return Err("the X server has no connected output".into());
    }
    let width = wanted
        .iter()
        .map(|w| i32::from(w.2) + i32::from(w.0))
        .max()
        .unwrap_or(0);
    let height = wanted
        .iter()
        .map(|w| i32::from(w.3) + i32::from(w.1))
        .max()
        .unwrap_or(0);
    let width = (width.max(i32::from(range.min_width)) as u16).min(range.max_width);
    let height = (height.max(i32::from(range.min_height)) as u16).min(range.max_height);
    let setup_screen = &conn.setup().roots[screen];
    let (cur_w, cur_h) = (setup_screen.width_in_pixels, setup_screen.height_in_pixels);
    // Grow first, so every CRTC fits; shrink at the end.
    if width > cur_w || height > cur_h {
        set_screen_size(&conn, root, width.max(cur_w), height.max(cur_h))?;
    }
    let names: Vec<String> = connected
        .iter()
        .map(|(_, info)| String::from_utf8_lossy(&info.name).into_owned())
        .collect();
    let plan = assign(
        layout,
        &names.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let mut used_crtcs = Vec::new();
    for (i, ((output, info), place)) in connected.iter().zip(plan).enumerate() {
        let crtc = info
            .crtcs
            .iter()
            .copied()
            .find(|c| !used_crtcs.contains(c) && (info.crtc == 0 || *c == info.crtc))
            .or_else(|| info.crtcs.iter().copied().find(|c| !used_crtcs.contains(c)));
        let Some(crtc) = crtc else { continue };
        match place.map(|p| (p.width, p.height, p.x, p.y)) {
            Some((w, h, x, y)) => {
                let mode = mode_for(&conn, root, &res, *output, &info.modes, w, h)?;
                used_crtcs.push(crtc);
                let r = conn
                    .randr_set_crtc_config(
                        crtc,
                        CURRENT_TIME,
                        res.config_timestamp,
                        x,
                        y,
                        mode,
                        Rotation::ROTATE0,
                        &[*output],
                    )?
                    .reply()?;
                if r.status != randr::SetConfig::SUCCESS {
                    return Err(format!(
                        "output {i}: the X server refused {w}x{h}+{x}+{y} ({:?})",
                        r.status
                    )
                    .into());
                }
            }
            None if info.crtc != 0 => {
                conn.randr_set_crtc_config(
                    info.crtc,
                    CURRENT_TIME,
                    res.config_timestamp,
                    0,
                    0,
                    0,
                    Rotation::ROTATE0,
                    &[],
                )?
                .reply()?;
            }
            None => {}
        }
    }
    if (width, height) != (cur_w.max(width), cur_h.max(height)) || width < cur_w || height < cur_h {
        set_screen_size(&conn, root, width, height)?;
    }
    conn.flush()?;
    Ok(())
}

fn set_screen_size(conn: &RustConnection, root: u32, w: u16, h: u16) -> XResult<()> {
    // 96 DPI for the physical size.
    let mm = |px: u16| (u32::from(px) * 254 / 960).max(1);
    conn.randr_set_screen_size(root, w, h, mm(w), mm(h))?
        .check()?;
    Ok(())
}

/// A mode of `w`×`h` the output can use: one it has, one the server has, or a new one.
fn mode_for(
    conn: &RustConnection,
    root: u32,
    res: &randr::GetScreenResourcesCurrentReply,
    output: randr::Output,
    output_modes: &[randr::Mode],
    w: u16,
    h: u16,
) -> XResult<randr::Mode> {
    let same = |m: &&ModeInfo| m.width == w && m.height == h;
    if let Some(m) = res
        .modes
        .iter()
        .filter(|m| output_modes.contains(&m.id))
        .find(same)
    {
        return Ok(m.id);
    }
    let id = match res.modes.iter().find(same) {
        Some(m) => m.id,
        None => {
            let name = format!("{w}x{h}");
            let (htotal, vtotal) = (w.saturating_add(160), h.saturating_add(30));
            let info = ModeInfo {
                id: 0,
                width: w,
                height: h,
                dot_clock: u32::from(htotal) * u32::from(vtotal) * 60,
                hsync_start: w.saturating_add(48),
                hsync_end: w.saturating_add(80),
                htotal,
                hskew: 0,
                vsync_start: h.saturating_add(3),
                vsync_end: h.saturating_add(10),
                vtotal,
                name_len: name.len() as u16,
                mode_flags: ModeFlag::HSYNC_POSITIVE | ModeFlag::VSYNC_POSITIVE,
            };
            conn.randr_create_mode(root, info, name.as_bytes())?
                .reply()?
                .mode
        }
    };
    conn.randr_add_output_mode(output, id)?.check()?;
    Ok(id)
}
