//! Writes a payload as an ISO 9660 image with Joliet (Windows reads the names) and Rock
//! Ridge (Linux keeps the modes: install.sh and the executables stay executable), with
//! hadris-iso. Every file and directory belongs to root. The image is dated from
//! `SOURCE_DATE_EPOCH` when it is set, so the same inputs give the same bytes.

use std::path::Path;

use anyhow::Context as _;
use hadris_fs::{Content, DateTime, Node, Owner, Permissions, SetAttr, Tree};
use hadris_iso::{IsoId, IsoOptions};

use super::payload::Payload;

fn attrs(mode: u32) -> SetAttr {
    SetAttr::new()
        .with_permissions(Permissions::new(mode))
        .with_owner(Owner::new(0, 0))
}

fn date() -> anyhow::Result<DateTime> {
    let secs = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) => v
            .trim()
            .parse::<i64>()
            .context("SOURCE_DATE_EPOCH is not a number of seconds")?,
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0),
    };
    DateTime::from_unix_seconds(secs).map_err(|e| anyhow::anyhow!("image date: {e:?}"))
}

/// Writes `payload` to `out` (through a temporary file renamed at the end) with the
/// volume label `label`; returns the image's size.
pub fn write(out: &Path, label: &str, payload: &Payload) -> anyhow::Result<u64> {
    let mut tree = Tree::new();
    for f in &payload.files {
        // Parent directories first, each once.
        let mut at = 0;
        while let Some(i) = f.path[at..].find('/') {
            let dir = &f.path[..at + i];
            if tree.get(dir).is_none() {
                tree.insert(dir, Node::dir().with_attrs(attrs(0o755)))
                    .map_err(|e| anyhow::anyhow!("{dir}: {e}"))?;
            }
            at += i + 1;
        }
        let node = Node::file(Content::bytes(f.data.clone())).with_attrs(attrs(f.mode));
        tree.insert(f.path.as_str(), node)
            .map_err(|e| anyhow::anyhow!("{}: {e}", f.path))?;
    }
    let options = IsoOptions::default()
        .with_id(IsoId::Volume, label)
        .with_id(IsoId::Publisher, "guestlink")
        .with_id(
            IsoId::Application,
            concat!("GUESTLINK ", env!("CARGO_PKG_VERSION")),
        )
        .with_joliet()
        .with_rock_ridge()
        .with_time(date()?);
    let tmp = out.with_extension("iso.partial");
    let file = std::fs::File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    let written = (|| -> anyhow::Result<u64> {
        let device = hadris_storage::host::FileDevice::new(file)?;
        let report = hadris_iso::sync::write(device, &tree, &options)
            .map_err(|e| anyhow::anyhow!("writing the image: {e}"))?;
        if let Some(w) = report.warnings().iter().next() {
            anyhow::bail!("writing the image: {w}");
        }
        Ok(report.size())
    })();
    match written {
        Ok(size) => {
            std::fs::rename(&tmp, out).with_context(|| format!("renaming to {}", out.display()))?;
            Ok(size)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}
