//! Partition tables grown by `partition::plan`, checked by util-linux's sfdisk and
//! gdisk's sgdisk: disk images partitioned by sfdisk (GPT and MBR), made larger as a
//! host's block_resize makes a disk larger, the plan's writes applied, then read back
//! by both tools (CRCs, the backup header at the new end, sizes).
#![cfg(target_os = "linux")]

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use guestlink_platform::partition::{plan, HEAD};
use guestlink_testkit::{peer_available, Scratch};

const MIB: u64 = 1 << 20;

fn sfdisk(img: &Path, script: &str) {
    use std::io::Write;
    let mut c = Command::new("sfdisk")
        .args(["-q", img.to_str().unwrap()])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    assert!(c.wait().unwrap().success());
}

/// (start, size) of each partition in sectors, as sfdisk reads the table.
fn partitions(img: &Path) -> Vec<(u64, u64)> {
    let out = Command::new("sfdisk")
        .args(["-J", img.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["partitiontable"]["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["start"].as_u64().unwrap(), p["size"].as_u64().unwrap()))
        .collect()
}

/// Grows the image to `size` and the partition starting at sector `start`; returns
/// the plan's sizes.
fn grow(img: &Path, size: u64, start: u64) -> (u64, u64) {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(img)
        .unwrap();
    f.set_len(size).unwrap();
    let mut head = vec![0u8; HEAD];
    f.read_exact_at(&mut head, 0).unwrap();
    let p = plan(&head, 512, size, start * 512).unwrap();
    for w in &p.writes {
        f.write_all_at(&w.data, w.offset).unwrap();
    }
    (p.old_size, p.new_size)
}

/// A disk image of `size` bytes partitioned by sfdisk's `script`.
fn image(tag: &str, size: u64, script: &str) -> (Scratch, PathBuf) {
    let dir = Scratch::new(tag);
    let img = dir.path().join("disk.img");
    std::fs::File::create(&img).unwrap().set_len(size).unwrap();
    sfdisk(&img, script);
    (dir, img)
}

/// Whether `program ARG img` succeeds, and what it printed.
fn check(program: &str, arg: &str, img: &Path) -> (bool, String) {
    let out = Command::new(program)
        .args([arg, img.to_str().unwrap()])
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// sgdisk finds nothing wrong (CRCs, headers, the backup at the end) and sfdisk
/// verifies the table.
fn tables_are_sound(img: &Path, gpt: bool) {
    if gpt {
        let (_, text) = check("sgdisk", "-v", img);
        assert!(text.contains("No problems found"), "{text}");
    }
    let (ok, text) = check("sfdisk", "--verify", img);
    assert!(ok, "{text}");
}

#[test]
fn a_gpt_partition_grows_and_both_tools_read_the_table() {
    if !peer_available("/usr/sbin/sfdisk") || !peer_available("/usr/sbin/sgdisk") {
        return;
    }
    let script = "label: gpt\nstart=2048, size=32768\nstart=40960, size=16384\n";
    let (_dir, img) = image("gpt", 64 * MIB, script);
    assert_eq!(partitions(&img), [(2048, 32768), (40960, 16384)]);

    // The disk doubles: the last partition takes everything up to the backup table
    // (33 sectors at the end: 32 of entries and the header).
    let (old, new) = grow(&img, 128 * MIB, 40960);
    let sectors = 128 * MIB / 512;
    assert_eq!(old, 16384 * 512);
    assert_eq!(new, (sectors - 34 - 40960 + 1) * 512);
    assert_eq!(partitions(&img), [(2048, 32768), (40960, new / 512)]);
    tables_are_sound(&img, true);

    // The first partition grows only up to the second; a second run changes nothing.
    let (_, new1) = grow(&img, 128 * MIB, 2048);
    assert_eq!(new1, (40960 - 2048) * 512);
    let (old2, new2) = grow(&img, 128 * MIB, 40960);
    assert_eq!(old2, new2);
    tables_are_sound(&img, true);
}

#[test]
fn an_mbr_partition_grows_and_sfdisk_reads_the_table() {
    if !peer_available("/usr/sbin/sfdisk") {
        return;
    }
    let (_dir, img) = image(
        "mbr",
        32 * MIB,
        "label: dos\nstart=2048, size=20480, type=83\n",
    );
    let (old, new) = grow(&img, 96 * MIB, 2048);
    assert_eq!((old, new), (20480 * 512, 96 * MIB - 2048 * 512));
    assert_eq!(partitions(&img), [(2048, 96 * MIB / 512 - 2048)]);
    tables_are_sound(&img, false);
}
