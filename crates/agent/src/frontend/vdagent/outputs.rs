//! SPICE's GRAPHICS_DEVICE_INFO: which guest output shows each of the host's displays,
//! found as spice-vdagent finds it. A record names a graphics device by its PCI path
//! (`pci/DOMAIN/SLOT.FN[/SLOT.FN...]`, through bridges) and one of the device's outputs
//! by index (`device_display_id`); the DRM card in sysfs whose device sits at that path
//! is the device, and its connector of that index (in the kernel's order: the
//! `connector_id` of newer kernels, else by name) is the output. The connector's name
//! without the card (`card0-Virtual-2` gives `Virtual-2`) is what compositors and X's
//! modesetting driver call it. The host's display id is `channel_id + monitor_id`.

use std::collections::BTreeMap;
use std::path::Path;

use guestlink_proto_vdagent::messages::DeviceDisplay;
use guestlink_vocabulary::types::output_order;

/// A PCI location: the domain and the (slot, function) of each device on the way.
type PciPath = (u32, Vec<(u32, u32)>);

/// The output of each display id the records name; records whose output is not found
/// are logged and left out.
pub fn outputs(sysfs: &Path, records: &[DeviceDisplay]) -> BTreeMap<u32, String> {
    let mut out = BTreeMap::new();
    for r in records {
        let address = r.address.trim_end_matches('\0');
        match connector(sysfs, address, r.device_display_id) {
            Ok(name) => {
                let id = r.channel_id.saturating_add(r.monitor_id);
                tracing::debug!(display = id, output = %name, "from GRAPHICS_DEVICE_INFO");
                out.insert(id, name);
            }
            Err(e) => tracing::info!(
                address,
                output = r.device_display_id,
                "GRAPHICS_DEVICE_INFO names no output here: {e}"
            ),
        }
    }
    out
}

/// The name of output `index` of the card at the SPICE address `address`.
fn connector(sysfs: &Path, address: &str, index: u32) -> Result<String, String> {
    let wanted = spice_address(address).ok_or("not a PCI address")?;
    let drm = sysfs.join("class/drm");
    let entries = std::fs::read_dir(&drm).map_err(|e| format!("{}: {e}", drm.display()))?;
    let mut names: Vec<String> = entries
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    let card = names
        .iter()
        .filter(|n| n.starts_with("card") && !n.contains('-'))
        .find(|n| {
            std::fs::canonicalize(drm.join(n))
                .ok()
                .and_then(|p| sysfs_address(&p.to_string_lossy()))
                .is_some_and(|a| a == wanted)
        })
        .ok_or("no DRM card at that address")?;
    let prefix = format!("{card}-");
    let mut connectors: Vec<(u64, (String, u64), &str)> = names
        .iter()
        .filter_map(|n| n.strip_prefix(&prefix))
        .map(|name| {
            let id = std::fs::read_to_string(drm.join(format!("{prefix}{name}/connector_id")))
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(u64::MAX);
            (id, output_order(name), name)
        })
        .collect();
    connectors.sort();
    connectors
        .get(index as usize)
        .map(|c| c.2.to_string())
        .ok_or_else(|| format!("{card} has {} outputs", connectors.len()))
}

/// `pci/0000/02.0/01.0`: the domain, then slot.function per device, in hex.
fn spice_address(s: &str) -> Option<PciPath> {
    let mut parts = s.strip_prefix("pci/")?.split('/');
    let domain = u32::from_str_radix(parts.next()?, 16).ok()?;
    let devices = parts
        .map(|p| {
            let (slot, func) = p.split_once('.')?;
            Some((
                u32::from_str_radix(slot, 16).ok()?,
                u32::from_str_radix(func, 16).ok()?,
            ))
        })
        .collect::<Option<Vec<_>>>()?;
    (!devices.is_empty()).then_some((domain, devices))
}

/// A card's sysfs path, `/sys/devices/pci0000:00/0000:00:03.0/0000:01:01.0/virtio2/drm/card0`:
/// its domain and the slot.function of each device on the way.
fn sysfs_address(path: &str) -> Option<PciPath> {
    let rest = &path[path.find("/devices/pci")? + "/devices/pci".len()..];
    let mut parts = rest.split('/');
    let (domain, _bus) = parts.next()?.split_once(':')?;
    let domain = u32::from_str_radix(domain, 16).ok()?;
    let mut devices = Vec::new();
    for p in parts {
        // dddd:bb:ss.f; the path goes on with the driver's directories.
        let Some((slot, func)) = p.splitn(3, ':').nth(2).and_then(|sf| sf.split_once('.')) else {
            break;
        };
        match (u32::from_str_radix(slot, 16), u32::from_str_radix(func, 16)) {
            (Ok(s), Ok(f)) => devices.push((s, f)),
            _ => break,
        }
    }
    (!devices.is_empty()).then_some((domain, devices))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse() {
        assert_eq!(spice_address("pci/0000/02.0"), Some((0, vec![(2, 0)])));
        assert_eq!(
            spice_address("pci/0001/1f.3/01.0"),
            Some((1, vec![(0x1f, 3), (1, 0)]))
        );
        assert_eq!(spice_address("pci/0000"), None);
        assert_eq!(spice_address("usb/1/2"), None);
        assert_eq!(spice_address("pci/zz/02.0"), None);
        assert_eq!(
            sysfs_address("/sys/devices/pci0000:00/0000:00:02.0/drm/card0"),
            Some((0, vec![(2, 0)]))
        );
        assert_eq!(
            sysfs_address("/sys/devices/pci0000:00/0000:00:03.0/0000:01:01.2/virtio2/drm/card1"),
            Some((0, vec![(3, 0), (1, 2)]))
        );
        assert_eq!(
            sysfs_address("/sys/devices/platform/simple-framebuffer.0/drm/card0"),
            None
        );
    }

    /// A sysfs with a QXL card at 00:02.0 (four outputs, no connector ids) and a
    /// virtio-gpu card behind a bridge at 00:03.0/01:01.0 (ids against name order).
    fn fake_sysfs() -> guestlink_testkit::Scratch {
        let root = guestlink_testkit::Scratch::new("sysfs");
        let sys = root.path();
        let card = |dev: &str, card: &str, outputs: &[(&str, Option<u32>)]| {
            let dir = sys.join("devices").join(dev).join("drm").join(card);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::create_dir_all(sys.join("class/drm")).unwrap();
            std::os::unix::fs::symlink(&dir, sys.join("class/drm").join(card)).unwrap();
            for (name, id) in outputs {
                let c = dir.join(format!("{card}-{name}"));
                std::fs::create_dir_all(&c).unwrap();
                if let Some(id) = id {
                    std::fs::write(c.join("connector_id"), format!("{id}\n")).unwrap();
                }
                std::os::unix::fs::symlink(
                    &c,
                    sys.join("class/drm").join(format!("{card}-{name}")),
                )
                .unwrap();
            }
        };
        card(
            "pci0000:00/0000:00:02.0",
            "card0",
            &[
                ("Virtual-10", None),
                ("Virtual-2", None),
                ("Virtual-1", None),
                ("Virtual-3", None),
            ],
        );
        card(
            "pci0000:00/0000:00:03.0/0000:01:01.0/virtio2",
            "card1",
            &[("Virtual-1", Some(40)), ("Virtual-2", Some(35))],
        );
        root
    }

    #[test]
    fn outputs_are_found_through_sysfs() {
        let sys = fake_sysfs();
        let rec = |channel_id, monitor_id, device_display_id, addr: &str| DeviceDisplay {
            channel_id,
            monitor_id,
            device_display_id,
            address: addr.to_string(),
        };
        let got = outputs(
            sys.path(),
            &[
                rec(0, 0, 0, "pci/0000/02.0"),
                rec(0, 1, 1, "pci/0000/02.0"),
                rec(0, 3, 3, "pci/0000/02.0"),
                // Behind the bridge: the kernel's order (connector ids) decides.
                rec(1, 3, 0, "pci/0000/03.0/01.0"),
                // Beyond the card's outputs, no such card, not PCI: left out.
                rec(0, 5, 4, "pci/0000/02.0"),
                rec(0, 6, 0, "pci/0000/09.0"),
                rec(0, 7, 0, "platform/0"),
            ],
        );
        assert_eq!(
            got.into_iter().collect::<Vec<_>>(),
            [
                (0, "Virtual-1".to_string()),
                (1, "Virtual-2".to_string()),
                (3, "Virtual-10".to_string()),
                (4, "Virtual-2".to_string()),
            ]
        );
        assert!(outputs(Path::new("/nonexistent"), &[rec(0, 0, 0, "pci/0000/02.0")]).is_empty());
    }
}
