//! Growing one partition of a GPT or MBR partition table to the end of the free space
//! after it, as growpart does: pure code over the table's bytes, which returns the
//! writes to make. The caller reads the disk's start, writes what [`plan`] returns and
//! tells the kernel the partition's new size (BLKPG).
//!
//! GPT: the partition's last LBA moves up to the sector before the next partition or
//! to the last usable LBA, which (with the backup header and entries) moves to the
//! disk's new end; both headers and both entry arrays are rewritten with their CRCs.
//! MBR: a primary partition's sector count grows up to the next partition, the disk's
//! end or 2^32 sectors. Logical partitions are not grown.

/// One write: bytes at an offset of the disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    /// Where, in bytes from the disk's start.
    pub offset: u64,
    /// What.
    pub data: Vec<u8>,
}

/// What growing the partition takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The partition's size before, in bytes.
    pub old_size: u64,
    /// Its size after, in bytes (equal when it cannot grow).
    pub new_size: u64,
    /// The writes (none when it cannot grow).
    pub writes: Vec<Write>,
}

/// How many bytes of the disk's start [`plan`] needs: the MBR, the GPT header and the
/// entries of a table of 128 entries on 4096-byte sectors.
pub const HEAD: usize = 3 * 4096 + 128 * 128;

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// CRC-32 (IEEE 802.3, reflected), as GPT uses it.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (!(crc & 1)).wrapping_add(1));
        }
    }
    !crc
}

/// The plan to grow the partition that starts at byte `start` of a disk of
/// `disk_size` bytes with `sector`-byte logical sectors, whose first bytes are `head`
/// (at least [`HEAD`] of them, or the whole disk).
pub fn plan(head: &[u8], sector: u64, disk_size: u64, start: u64) -> Result<Plan, String> {
    if !(512..=4096).contains(&sector) || !sector.is_power_of_two() {
        return Err(format!("unsupported sector size {sector}"));
    }
    if head.len() < 512 || head[510..512] != [0x55, 0xAA] {
        return Err("the disk has no partition table".into());
    }
    let protective = (0..4).any(|i| head[446 + 16 * i + 4] == 0xEE);
    if protective {
        gpt(head, sector, disk_size, start)
    } else {
        mbr(head, sector, disk_size, start)
    }
}

fn mbr(head: &[u8], sector: u64, disk_size: u64, start: u64) -> Result<Plan, String> {
    let entry = |i: usize| {
        let at = 446 + 16 * i;
        (
            u64::from(u32_at(head, at + 8)),
            u64::from(u32_at(head, at + 12)),
            head[at + 4],
        )
    };
    let first = start / sector;
    let i = (0..4)
        .find(|&i| entry(i).0 == first && entry(i).1 != 0)
        .ok_or(
        "the partition is not a primary partition of the MBR (logical partitions are not grown)",
    )?;
    let (lba, count, kind) = entry(i);
    if matches!(kind, 0x05 | 0x0F | 0x85) {
        return Err("the partition is an extended partition".into());
    }
    let disk_sectors = disk_size / sector;
    let next = (0..4)
        .map(entry)
        .filter(|&(l, c, _)| c != 0 && l > lba)
        .map(|(l, _, _)| l)
        .min()
        .unwrap_or(disk_sectors);
    let end = next.min(disk_sectors).min(1 << 32);
    let new_count = end.saturating_sub(lba).min(u64::from(u32::MAX));
    let old_size = count * sector;
    if new_count <= count {
        return Ok(Plan {
            old_size,
            new_size: old_size,
            writes: Vec::new(),
        });
    }
    let mut sector0 = head[..512].to_vec();
    let at = 446 + 16 * i + 12;
    sector0[at..at + 4].copy_from_slice(&(new_count as u32).to_le_bytes());
    // The CHS end address of a grown partition: beyond what CHS can say.
    sector0[446 + 16 * i + 5..446 + 16 * i + 8].copy_from_slice(&[0xFE, 0xFF, 0xFF]);
    Ok(Plan {
        old_size,
        new_size: new_count * sector,
        writes: vec![Write {
            offset: 0,
            data: sector0,
        }],
    })
}

fn gpt(head: &[u8], sector: u64, disk_size: u64, start: u64) -> Result<Plan, String> {
    let ss = sector as usize;
    let bad = |what: &str| format!("the GPT header is damaged ({what})");
    let hdr = head.get(ss..2 * ss).ok_or_else(|| bad("short"))?;
    if &hdr[0..8] != b"EFI PART" {
        return Err(bad("no signature"));
    }
    let hsize = u32_at(hdr, 12) as usize;
    if !(92..=ss).contains(&hsize) {
        return Err(bad("header size"));
    }
    let mut check = hdr[..hsize].to_vec();
    check[16..20].fill(0);
    if crc32(&check) != u32_at(hdr, 16) {
        return Err(bad("header CRC"));
    }
    let entries_lba = u64_at(hdr, 72);
    let count = u32_at(hdr, 80) as usize;
    let esize = u32_at(hdr, 84) as usize;
    if !(128..=4096).contains(&esize) || !(1..=4096).contains(&count) {
        return Err(bad("entry array"));
    }
    let table_len = count * esize;
    // The entries come after the header: never over the MBR or the header itself.
    let table_at = usize::try_from(entries_lba)
        .ok()
        .filter(|&l| l >= 2)
        .and_then(|l| l.checked_mul(ss))
        .ok_or_else(|| bad("entry array"))?;
    let table = head
        .get(table_at..table_at.saturating_add(table_len))
        .ok_or_else(|| bad("entry array beyond the disk's first sectors"))?;
    if crc32(table) != u32_at(hdr, 88) {
        return Err(bad("entry array CRC"));
    }
    let entry = |i: usize| (u64_at(table, i * esize + 32), u64_at(table, i * esize + 40));
    let used = |i: usize| table[i * esize..i * esize + 16].iter().any(|&b| b != 0);
    let first = start / sector;
    let i = (0..count)
        .find(|&i| used(i) && entry(i).0 == first)
        .ok_or("no GPT entry starts where the partition does")?;
    let (lba, last) = entry(i);
    if last < lba {
        return Err(bad("entry ends before it starts"));
    }
    let disk_sectors = disk_size / sector;
    let table_sectors = table_len.div_ceil(ss) as u64;
    let backup = disk_sectors
        .checked_sub(1)
        .ok_or_else(|| bad("disk size"))?;
    let last_usable = backup
        .checked_sub(table_sectors + 1)
        .ok_or_else(|| bad("disk size"))?;
    let next = (0..count)
        .filter(|&j| used(j) && entry(j).0 > lba)
        .map(|j| entry(j).0)
        .min();
    if last > last_usable {
        return Err("the partition reaches past the disk's end".into());
    }
    let new_last = next.map_or(last_usable, |n| (n - 1).min(last_usable));
    let old_size = (last + 1 - lba) * sector;
    let moved = backup != u64_at(hdr, 32);
    if new_last <= last && !moved {
        return Ok(Plan {
            old_size,
            new_size: old_size,
            writes: Vec::new(),
        });
    }
    let new_last = new_last.max(last);
    let mut entries = table.to_vec();
    entries[i * esize + 40..i * esize + 48].copy_from_slice(&new_last.to_le_bytes());
    let entries_crc = crc32(&entries);
    let header = |current: u64, other: u64, at: u64| {
        let mut h = hdr[..hsize].to_vec();
        h[24..32].copy_from_slice(&current.to_le_bytes());
        h[32..40].copy_from_slice(&other.to_le_bytes());
        h[48..56].copy_from_slice(&last_usable.to_le_bytes());
        h[72..80].copy_from_slice(&at.to_le_bytes());
        h[88..92].copy_from_slice(&entries_crc.to_le_bytes());
        h[16..20].fill(0);
        let crc = crc32(&h);
        h[16..20].copy_from_slice(&crc.to_le_bytes());
        h.resize(ss, 0);
        h
    };
    let backup_entries = backup - table_sectors;
    Ok(Plan {
        old_size,
        new_size: (new_last + 1 - lba) * sector,
        writes: vec![
            Write {
                offset: entries_lba * sector,
                data: entries.clone(),
            },
            Write {
                offset: sector,
                data: header(1, backup, entries_lba),
            },
            Write {
                offset: backup_entries * sector,
                data: entries,
            },
            Write {
                offset: backup * sector,
                data: header(backup, 1, backup_entries),
            },
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_is_ieee() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn an_mbr_partition_grows_to_the_next_one_or_the_end() {
        let mut d = vec![0u8; 512];
        d[510] = 0x55;
        d[511] = 0xAA;
        let put = |d: &mut Vec<u8>, i: usize, lba: u32, n: u32| {
            let at = 446 + 16 * i;
            d[at + 4] = 0x83;
            d[at + 8..at + 12].copy_from_slice(&lba.to_le_bytes());
            d[at + 12..at + 16].copy_from_slice(&n.to_le_bytes());
        };
        put(&mut d, 0, 2048, 2048);
        put(&mut d, 1, 10240, 2048);
        let p = plan(&d, 512, 100 << 20, 2048 * 512).unwrap();
        assert_eq!((p.old_size, p.new_size), (1 << 20, (10240 - 2048) * 512));
        let p = plan(&d, 512, 100 << 20, 10240 * 512).unwrap();
        assert_eq!(p.new_size, ((100 << 20) / 512 - 10240) * 512);
        assert_eq!(
            u32_at(&p.writes[0].data, 446 + 16 + 12) as u64 * 512,
            p.new_size
        );
        assert!(plan(&d, 512, 100 << 20, 4096 * 512).is_err());
        // A full disk: nothing to write.
        let p = plan(&d, 512, 12288 * 512, 10240 * 512).unwrap();
        assert!(p.writes.is_empty());
        d[510] = 0;
        assert!(plan(&d, 512, 1 << 30, 0)
            .unwrap_err()
            .contains("no partition table"));
    }

    #[test]
    fn damaged_gpt_headers_are_errors_not_panics() {
        let mut d = vec![0u8; HEAD];
        d[510] = 0x55;
        d[511] = 0xAA;
        d[446 + 4] = 0xEE;
        d[512..520].copy_from_slice(b"EFI PART");
        for hsize in [0u32, 91, 92, 600, u32::MAX] {
            d[524..528].copy_from_slice(&hsize.to_le_bytes());
            assert!(plan(&d, 512, 1 << 30, 1 << 20).is_err());
        }
        for (b, v) in [(0usize, 0u8), (100, 0xFF), (600, 0x7F)] {
            let mut e = d.clone();
            e[b] = v;
            let _ = plan(&e, 512, 1 << 30, 1 << 20);
        }
        assert!(plan(&d[..600], 512, 0, 0).is_err());
        // A valid header whose entry array is placed at the end of the address space,
        // or over the MBR: errors.
        for lba in [u64::MAX, u64::MAX / 512, 0, 1] {
            let mut e = d.clone();
            e[524..528].copy_from_slice(&92u32.to_le_bytes());
            e[584..592].copy_from_slice(&lba.to_le_bytes());
            e[592..596].copy_from_slice(&128u32.to_le_bytes());
            e[596..600].copy_from_slice(&128u32.to_le_bytes());
            let mut h = e[512..604].to_vec();
            h[16..20].fill(0);
            let crc = crc32(&h);
            e[528..532].copy_from_slice(&crc.to_le_bytes());
            let err = plan(&e, 512, 1 << 30, 1 << 20).unwrap_err();
            assert!(err.contains("entry array"), "{lba}: {err}");
        }
        assert!(plan(&d, 1000, 1 << 30, 0).is_err());
    }
}
