//! `guestlink grow guest:PATH`: the partition under a guest file system grown to the
//! end of its disk, then the file system (after the host made the disk larger), as
//! growpart and resize2fs do in cloud images.

use std::process::ExitCode;

use guestlink_client::Client;
use guestlink_vocabulary::commands as cmd;
use guestlink_vocabulary::types::{GuestlinkGrowArgs, GuestlinkGrown};

use crate::guestfs::guest_path;

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
}

fn describe(g: &GuestlinkGrown) -> String {
    let part = if g.partition_grown {
        format!("grown from {} to {}", mib(g.old_size), mib(g.new_size))
    } else {
        format!("unchanged ({})", mib(g.new_size))
    };
    let fs = if g.filesystem_grown {
        "grown to fill it"
    } else {
        "already filled it"
    };
    format!(
        "{} on {}: device {part}; the {} file system {fs}\n",
        g.mountpoint, g.device, g.fstype
    )
}

/// Runs `guestlink grow`.
pub async fn run(c: &mut Client, path: &str, json: bool) -> anyhow::Result<ExitCode> {
    let args = GuestlinkGrowArgs {
        path: guest_path(path).to_string(),
    };
    let g = c.call::<cmd::GuestlinkGrow>(&args).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&g)?);
    } else {
        print!("{}", describe(&g));
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grown_and_unchanged_read_plainly() {
        let mut g = GuestlinkGrown {
            mountpoint: "/data".into(),
            device: "/dev/vdb1".into(),
            fstype: "ext4".into(),
            old_size: 64 << 20,
            new_size: 159 << 20,
            partition_grown: true,
            filesystem_grown: true,
        };
        assert_eq!(
            describe(&g),
            "/data on /dev/vdb1: device grown from 64.0 MiB to 159.0 MiB; the ext4 file system grown to fill it\n"
        );
        g.partition_grown = false;
        g.filesystem_grown = false;
        assert!(describe(&g).contains("unchanged (159.0 MiB)"));
        assert!(describe(&g).contains("already filled it"));
    }
}
