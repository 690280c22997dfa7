//! The live channel's figures, for agents that offer it, each against a local
//! baseline measured in the same run: forward throughput against a plain
//! socket-to-socket relay, the time to a streamed program's first output against
//! spawning `sh -c` here, and the keystroke echo round trip of a shell on a terminal.

use std::path::Path;
use std::time::{Duration, Instant};

use guestlink_client::{Client, Endpoint, Live, StreamEvent};
use guestlink_vocabulary::commands as cmd;
use guestlink_vocabulary::types::{ForwardAddress, ShellArgs, StreamExecArgs, TerminalArgs};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::median;

/// Bytes moved through the forward and the relay.
const VOLUME: u64 = 256 << 20;
/// Keystrokes timed.
const KEYS: usize = 500;

/// The figures of one agent.
#[derive(Debug, Clone, Default)]
pub struct LiveFigures {
    /// Forward throughput, MiB/s.
    pub forward_mib_s: f64,
    /// A plain relay's, MiB/s.
    pub relay_mib_s: f64,
    /// Median time to a streamed program's first output, ms.
    pub exec_first_ms: f64,
    /// The same for `sh -c` spawned here, ms.
    pub local_first_ms: f64,
    /// Keystroke echo round trip: p50 and p99, ms.
    pub echo_p50_ms: f64,
    /// p99.
    pub echo_p99_ms: f64,
}

/// A server that sends [`VOLUME`] bytes to each connection and closes it.
async fn source() -> anyhow::Result<u16> {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = l.local_addr()?.port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let buf = vec![0x5Au8; 256 << 10];
                let mut sent = 0;
                while sent < VOLUME {
                    if s.write_all(&buf).await.is_err() {
                        return;
                    }
                    sent += buf.len() as u64;
                }
            });
        }
    });
    Ok(port)
}

/// MiB/s reading everything from a plain relay (accept, connect, copy both ways).
async fn relay(port: u16) -> anyhow::Result<f64> {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let relay_port = l.local_addr()?.port();
    tokio::spawn(async move {
        if let Ok((mut a, _)) = l.accept().await {
            if let Ok(mut b) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
                let _ = tokio::io::copy_bidirectional(&mut a, &mut b).await;
            }
        }
    });
    let t = Instant::now();
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", relay_port)).await?;
    let mut buf = vec![0u8; 256 << 10];
    let mut got = 0u64;
    while got < VOLUME {
        let n = s.read(&mut buf).await?;
        anyhow::ensure!(n > 0, "the relay ended early");
        got += n as u64;
    }
    Ok(VOLUME as f64 / (1 << 20) as f64 / t.elapsed().as_secs_f64())
}

async fn forward(live: &Live, port: u16) -> anyhow::Result<f64> {
    let t = Instant::now();
    let addr = ForwardAddress {
        host: Some("127.0.0.1".into()),
        port: Some(i64::from(port)),
        path: None,
    };
    let (mut s, _) = live.open::<cmd::GuestlinkForwardConnect>(&addr).await?;
    let mut got = 0u64;
    while got < VOLUME {
        match s.recv().await {
            Some(StreamEvent::Data(d)) => got += d.len() as u64,
            other => anyhow::bail!("the forward ended early, after {got} bytes: {other:?}"),
        }
    }
    let mib_s = VOLUME as f64 / (1 << 20) as f64 / t.elapsed().as_secs_f64();
    s.writer().reset("done");
    Ok(mib_s)
}

async fn exec_first(live: &Live) -> anyhow::Result<f64> {
    let mut times = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let args = StreamExecArgs {
            path: "/bin/sh".into(),
            arg: Some(vec!["-c".into(), "echo hi".into()]),
            env: None,
            cwd: None,
            user: None,
            timeout: None,
            terminal: None,
        };
        let (mut s, _) = live.open::<cmd::GuestlinkStreamExec>(&args).await?;
        loop {
            match s.recv().await {
                Some(StreamEvent::Data(_)) => break,
                Some(StreamEvent::Exit(_)) | None => anyhow::bail!("no output"),
                _ => {}
            }
        }
        times.push(t.elapsed().as_secs_f64() * 1e3);
        while !matches!(s.recv().await, Some(StreamEvent::Exit(_)) | None) {}
    }
    Ok(median(times))
}

async fn local_first() -> anyhow::Result<f64> {
    let mut times = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let mut child = tokio::process::Command::new("/bin/sh")
            .args(["-c", "echo hi"])
            .stdout(std::process::Stdio::piped())
            .spawn()?;
        let mut out = child
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
        let mut b = [0u8; 16];
        let _ = out.read(&mut b).await?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
        child.wait().await?;
    }
    Ok(median(times))
}

async fn echo(live: &Live) -> anyhow::Result<(f64, f64)> {
    let me = nix::unistd::User::from_uid(nix::unistd::getuid())?
        .map(|u| u.name)
        .unwrap_or_else(|| "root".into());
    let args = ShellArgs {
        user: Some(me),
        command: None,
        env: Some(vec!["PS1=$ ".into()]),
        terminal: Some(TerminalArgs {
            rows: Some(24),
            cols: Some(200),
            term: Some("dumb".into()),
        }),
    };
    let (mut s, _) = live.open::<cmd::GuestlinkShell>(&args).await?;
    let w = s.writer();
    // Wait for the shell to settle (its prompt), then type.
    let _ = tokio::time::timeout(Duration::from_secs(5), s.recv()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut times = Vec::new();
    for i in 0..KEYS {
        let key = if i % 100 == 99 {
            b'\x15'
        } else {
            b'a' + (i % 26) as u8
        };
        let t = Instant::now();
        w.write(&[key]).await;
        if key == b'\x15' {
            // Line killed: whatever the terminal shows, move on after it settles.
            let _ = tokio::time::timeout(Duration::from_millis(50), s.recv()).await;
            continue;
        }
        loop {
            match tokio::time::timeout(Duration::from_secs(2), s.recv()).await {
                Ok(Some(StreamEvent::Data(d))) if d.contains(&key) => break,
                Ok(Some(StreamEvent::Data(_))) => {}
                other => anyhow::bail!("no echo: {other:?}"),
            }
        }
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    w.reset("done");
    times.sort_by(f64::total_cmp);
    let at = |q: f64| times[((times.len() as f64 - 1.0) * q).round() as usize];
    Ok((at(0.5), at(0.99)))
}

/// Measures the agent behind `socket`, or `None` when it has no live streams.
pub async fn measure(socket: &Path) -> anyhow::Result<Option<LiveFigures>> {
    let mut c = Client::connect(&Endpoint::path(socket), Duration::from_secs(30)).await?;
    if !c.offers_streams().await? {
        return Ok(None);
    }
    let live = c.into_live().await?;
    let port = source().await?;
    let mut f = LiveFigures {
        relay_mib_s: relay(port).await?,
        forward_mib_s: forward(&live, port).await?,
        ..LiveFigures::default()
    };
    f.local_first_ms = local_first().await?;
    f.exec_first_ms = exec_first(&live).await?;
    (f.echo_p50_ms, f.echo_p99_ms) = echo(&live).await?;
    Ok(Some(f))
}

/// The figures as JSON.
pub fn json(f: &LiveFigures) -> serde_json::Value {
    serde_json::json!({
        "forward_mib_s": f.forward_mib_s,
        "relay_mib_s": f.relay_mib_s,
        "forward_ratio": f.forward_mib_s / f.relay_mib_s,
        "exec_first_output_ms": f.exec_first_ms,
        "local_first_output_ms": f.local_first_ms,
        "echo_p50_ms": f.echo_p50_ms,
        "echo_p99_ms": f.echo_p99_ms,
    })
}

/// The report's section.
pub fn report(name: &str, f: &LiveFigures) -> String {
    format!(
        "\nlive channel of {name} (over a unix-socket channel):\n\
         {:<44}{:>12.0}\n{:<44}{:>12.0}\n{:<44}{:>12.2}   goal >= 0.5\n\
         {:<44}{:>12.2}\n{:<44}{:>12.2}\n{:<44}{:>12.2}\n\
         {:<44}{:>12.3}\n{:<44}{:>12.3}   goal <= 1 ms\n",
        "forward throughput (MiB/s)",
        f.forward_mib_s,
        "plain socket-to-socket relay (MiB/s)",
        f.relay_mib_s,
        "  ratio forward / relay",
        f.forward_mib_s / f.relay_mib_s,
        "exec: time to first output (ms, median)",
        f.exec_first_ms,
        "local sh -c: time to first output (ms)",
        f.local_first_ms,
        "  ratio exec / local",
        f.exec_first_ms / f.local_first_ms,
        "shell keystroke echo p50 (ms)",
        f.echo_p50_ms,
        "shell keystroke echo p99 (ms)",
        f.echo_p99_ms,
    )
}
