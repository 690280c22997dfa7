//! Hostile bytes on every channel of one guestlinkd at once: QGA (a unix socket), the
//! SPICE agent and oVirt ports (ptys) and the guest socket each get 24 MiB of
//! generated input (random bytes, deep nesting, endless strings and lines, chunk and
//! message headers announcing huge sizes). The agent must keep serving every channel
//! and keep far less than it was sent: its peak memory may grow by at most an eighth
//! of the bytes fed (it grows by about 3 MiB for the 96 MiB).

mod common;

use std::time::Duration;

use common::*;
use guestlink_client::ovirt::Vdsm;
use guestlink_client::vdagent::{spice_gtk_caps, Host};
use guestlink_proto_ovirt::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PER_CHANNEL: usize = 24 << 20;
const PIECE: usize = 64 << 10;

/// A deterministic generator of hostile pieces.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn piece(&mut self) -> Vec<u8> {
        let mut b = Vec::with_capacity(PIECE);
        match self.next() % 6 {
            0 => {
                while b.len() < PIECE {
                    b.extend_from_slice(&self.next().to_le_bytes());
                }
            }
            1 => b.resize(PIECE, b'['),
            2 => {
                b.push(b'"');
                b.resize(PIECE, b'a');
            }
            3 => {
                // SPICE chunk + message headers announcing a huge message.
                while b.len() < PIECE {
                    b.extend_from_slice(&1u32.to_le_bytes());
                    b.extend_from_slice(&2048u32.to_le_bytes());
                    b.extend_from_slice(&1u32.to_le_bytes());
                    b.extend_from_slice(&4u32.to_le_bytes());
                    b.extend_from_slice(&0u64.to_le_bytes());
                    b.extend_from_slice(&u32::MAX.to_le_bytes());
                    b.resize(b.len() + 2048 - 20, 0x41);
                }
            }
            4 => {
                b.extend_from_slice(b"{\"__name__\": \"echo\", \"x\": \"");
                b.resize(PIECE, b'x');
            }
            _ => {
                while b.len() < PIECE {
                    b.extend_from_slice(
                        br#"{"execute":"guest-ping","arguments":{"a":[1,2,{"b":null}]}}"#,
                    );
                    b.push(self.next() as u8);
                }
            }
        }
        b.truncate(PIECE);
        b
    }
}

/// Writes `PER_CHANNEL` hostile bytes to `w` while draining what comes back from `r`.
async fn flood<W, R>(mut w: W, mut r: R, seed: u64) -> (W, R)
where
    W: tokio::io::AsyncWrite + Unpin + Send + 'static,
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
{
    let drain = tokio::spawn(async move {
        let mut buf = vec![0u8; 1 << 16];
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        // Until the writer is done and a second passes without output.
        loop {
            match tokio::time::timeout(Duration::from_secs(3), r.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => break,
            }
            if tokio::time::Instant::now() > deadline {
                break;
            }
        }
        r
    });
    let mut g = Gen(seed);
    let mut sent = 0;
    while sent < PER_CHANNEL {
        let p = g.piece();
        w.write_all(&p).await.expect("the agent stopped reading");
        sent += p.len();
    }
    // A newline and a NUL end any line or string left open.
    w.write_all(b"\"]]]]}\n").await.unwrap();
    (w, drain.await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_bytes_on_every_channel_leave_every_channel_serving_in_bounded_memory() {
    let (vd_stream, _vd_slave, vd_port) = host_pty();
    let (ov_stream, _ov_slave, ov_port) = host_pty();
    let vd = format!("vdagent=virtio-serial:{}", vd_port.display());
    let ov = format!("ovirt=virtio-serial:{}", ov_port.display());
    let agent = Agent::start(
        GUESTLINKD,
        &[
            "--channel",
            &vd,
            "--channel",
            &ov,
            "--sessions",
            "none",
            "--pointer",
            "none",
        ],
    );
    let pid = agent.pid();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, before) = memory(pid);

    let qga = tokio::net::UnixStream::connect(&agent.sock).await.unwrap();
    let guest = tokio::net::UnixStream::connect(agent.guest_socket())
        .await
        .unwrap();
    let (qr, qw) = qga.into_split();
    let (gr, gw) = guest.into_split();
    let (vr, vw) = tokio::io::split(vd_stream);
    let (or, ow) = tokio::io::split(ov_stream);
    let (a, b, c, d) = tokio::join!(
        flood(qw, qr, 1),
        flood(gw, gr, 2),
        flood(vw, vr, 3),
        flood(ow, or, 4)
    );
    let (peak, _) = memory(pid);
    let fed_kib = (4 * PER_CHANNEL as u64) >> 10;
    eprintln!("resident before: {before} KiB; peak after {fed_kib} KiB fed: {peak} KiB");
    assert!(
        peak < before + fed_kib / 8,
        "peak {peak} KiB from {before} KiB after {fed_kib} KiB of input: the agent keeps what it is sent"
    );

    // Every channel still serves.
    drop((a, b));
    let mut host = agent.connect();
    host.resync(7);
    assert_eq!(
        parse(&host.request(b"{\"execute\":\"guest-ping\"}")),
        serde_json::json!({"return": {}})
    );
    let mut g = agent.connect_guest();
    assert_eq!(
        parse(&g.request(b"{\"execute\":\"guest-ping\"}")),
        serde_json::json!({"return": {}})
    );
    let (mut vw, vr) = c;
    // A byte stream cannot tell where the garbage ended: the host finishes any chunk
    // left open and sends a header for port 0, which makes the decoder start afresh
    // (as a real host's reconnection does through the port's hang-up); the decoder drops
    // the rest of the read that broke the framing, so the greeting comes a moment later.
    vw.write_all(&[0u8; 2048 + 16]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut spice = Host::new(vr.unsplit(vw), spice_gtk_caps());
    spice
        .connect_client(Duration::from_secs(10))
        .await
        .expect("the SPICE channel answers a new client");
    let (ow, or) = d;
    let mut vdsm = Vdsm::new(or.unsplit(ow));
    vdsm.send(&Message::new("echo").arg("after", "flood"))
        .await
        .unwrap();
    let (echo, _) = vdsm
        .expect("echo", Duration::from_secs(10))
        .await
        .expect("the oVirt channel answers");
    assert_eq!(echo.args["after"], "flood");
    assert!(agent_alive(pid));
}

fn agent_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}
