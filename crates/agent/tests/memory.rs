//! Peak memory of a 48 MiB `guest-file-read` (and, reported only, a 45 MiB
//! `guest-file-write`), guestlinkd side by side with Debian's qemu-ga, from each
//! process's VmHWM. The bar: at most a tenth of qemu-ga's peak for the read
//! (guestlinkd reads the file while it encodes the reply), and the reply's data is
//! the file's.

mod common;

use std::io::Write;

use common::*;
// The suite's own codec: the test must not trust the code it measures.
use guestlink_conformance::cases::base64_encode as base64;

const SIZE: usize = 48 << 20;
/// The largest write qemu-ga takes is just under 48 MiB: its lexer refuses a token
/// (the base64 string) of 64 MiB or more.
const WRITE_SIZE: usize = 45 << 20;

/// Peak resident set of a process, in KiB.
fn vm_hwm(pid: u32) -> u64 {
    memory(pid).0
}

/// (peak KiB after the read, peak KiB after the write) for one agent.
fn measure(bin: &str, file: &std::path::Path) -> (u64, u64) {
    let agent = Agent::start(bin, &[]);
    let mut c = agent.connect();
    let open = format!(
        "{{\"execute\":\"guest-file-open\",\"arguments\":{{\"path\":\"{}\"}}}}",
        file.display()
    );
    let h = c.json(open.as_bytes())["return"].as_i64().unwrap();
    let read = format!(
        "{{\"execute\":\"guest-file-read\",\"arguments\":{{\"handle\":{h},\"count\":{SIZE}}}}}"
    );
    let line = c.request(read.as_bytes());
    assert!(
        line.len() > SIZE * 4 / 3,
        "short reply: {} bytes",
        line.len()
    );
    assert!(
        line.starts_with(b"{\"return\": {"),
        "{:?}",
        String::from_utf8_lossy(&line[..80])
    );
    let after_read = vm_hwm(agent.pid());
    // The same reply as qemu-ga's, whatever the order of its members.
    let reply: serde_json::Value = serde_json::from_slice(&line).unwrap();
    assert_eq!(reply["return"]["count"], SIZE as u64);
    assert_eq!(reply["return"]["eof"], false);
    let data = std::fs::read(file).unwrap();
    assert!(
        reply["return"]["buf-b64"].as_str() == Some(base64(&data).as_str()),
        "the data read differs from the file"
    );
    drop((reply, data));
    let out = agent.dir.join("written");
    let open = format!(
        "{{\"execute\":\"guest-file-open\",\"arguments\":{{\"path\":\"{}\",\"mode\":\"w\"}}}}",
        out.display()
    );
    let w = c.json(open.as_bytes())["return"].as_i64().unwrap();
    let data = std::fs::read(file).unwrap()[..WRITE_SIZE].to_vec();
    let mut req =
        format!("{{\"execute\":\"guest-file-write\",\"arguments\":{{\"handle\":{w},\"buf-b64\":\"")
            .into_bytes();
    req.extend_from_slice(base64(&data).as_bytes());
    req.extend_from_slice(b"\"}}");
    let r = c.json(&req);
    assert_eq!(r["return"]["count"], WRITE_SIZE as u64, "{r}");
    let close = format!("{{\"execute\":\"guest-file-close\",\"arguments\":{{\"handle\":{w}}}}}");
    c.json(close.as_bytes());
    assert_eq!(std::fs::read(&out).unwrap(), data, "written file differs");
    let after_write = vm_hwm(agent.pid());
    (after_read, after_write)
}

#[test]
fn a_48_mib_read_needs_a_tenth_of_qemu_ga_memory() {
    if !peer_available(QEMU_GA) {
        return;
    }
    let dir = scratch("memory");
    let file = dir.join("big");
    let mut f = std::fs::File::create(&file).unwrap();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut block = vec![0u8; 1 << 20];
    for _ in 0..48 {
        for b in block.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        f.write_all(&block).unwrap();
    }
    drop(f);
    let t = std::time::Instant::now();
    let (q_read, q_write) = measure(QEMU_GA, &file);
    let t_q = t.elapsed();
    let (g_read, g_write) = measure(GUESTLINKD, &file);
    println!(
        "wall time (informative): qemu-ga {t_q:?}, guestlinkd {:?}",
        t.elapsed() - t_q
    );
    println!(
        "48 MiB guest-file-read peak RSS: qemu-ga {} MiB, guestlinkd {} MiB, ratio {:.2}",
        q_read / 1024,
        g_read / 1024,
        g_read as f64 / q_read as f64
    );
    println!(
        "45 MiB guest-file-write peak RSS: qemu-ga {} MiB, guestlinkd {} MiB, ratio {:.2}",
        q_write / 1024,
        g_write / 1024,
        g_write as f64 / q_write as f64
    );
    assert!(
        g_read * 10 <= q_read,
        "guestlinkd peaked at {g_read} KiB, qemu-ga at {q_read} KiB"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
