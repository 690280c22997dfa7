//! `guestlink cp`: copy a file to or from the guest (`guest:/path` names the guest
//! side) in chunks — raw bulk transfer when the agent offers it, `guest-file-write`/
//! `guest-file-read` otherwise — with a progress line for large files and a sha256
//! check that reads the copy back through the agent.

use std::io::{IsTerminal, Read, Write};
use std::process::ExitCode;
use std::time::Instant;

use guestlink_client::Client;
use guestlink_vocabulary::commands as cmd;
use guestlink_vocabulary::types::{GuestFileHandleArgs, GuestFileOpenArgs};
use sha2::{Digest, Sha256};

use crate::render::bytes;
use crate::transfer::Transfer;

/// The largest read qemu-ga allows.
const MAX_CHUNK: usize = 48 << 20;

/// How to copy.
#[derive(Debug, Clone)]
pub struct Options {
    /// Bytes per request.
    pub chunk: usize,
    /// Read the copy back and compare sha256.
    pub verify: bool,
    /// Print the summary as JSON.
    pub json: bool,
    /// Use raw bulk transfer when the agent offers it.
    pub allow_raw: bool,
}

/// A progress line on standard error, for files above 8 MiB on a terminal.
struct Progress {
    total: Option<u64>,
    done: u64,
    start: Instant,
    shown: bool,
}

impl Progress {
    fn new(total: Option<u64>) -> Progress {
        let shown = std::io::stderr().is_terminal() && total.is_none_or(|t| t > 8 << 20);
        Progress {
            total,
            done: 0,
            start: Instant::now(),
            shown,
        }
    }

    fn add(&mut self, n: usize) {
        self.done += n as u64;
        if !self.shown {
            return;
        }
        let rate = self.done as f64 / self.start.elapsed().as_secs_f64().max(1e-6);
        let of = self
            .total
            .map(|t| format!(" / {} {:3}%", bytes(t), self.done * 100 / t.max(1)))
            .unwrap_or_default();
        eprint!("\r  {}{of}  {}/s   ", bytes(self.done), bytes(rate as u64));
    }

    fn finish(&self) {
        if self.shown {
            eprintln!();
        }
    }
}

async fn open(c: &mut Client, path: &str, mode: &str) -> anyhow::Result<i64> {
    Ok(c.call::<cmd::GuestFileOpen>(&GuestFileOpenArgs {
        path: path.to_string(),
        mode: Some(mode.into()),
    })
    .await?)
}

async fn close(c: &mut Client, handle: i64) -> anyhow::Result<()> {
    c.call::<cmd::GuestFileClose>(&GuestFileHandleArgs { handle })
        .await?;
    Ok(())
}

/// Reads a guest file to its end, handing each chunk to `sink`.
pub(crate) async fn read_guest(
    c: &mut Client,
    how: Transfer,
    path: &str,
    chunk: usize,
    mut sink: impl FnMut(Vec<u8>) -> anyhow::Result<()>,
) -> anyhow::Result<u64> {
    let h = open(c, path, "r").await?;
    let mut total = 0u64;
    let result = async {
        loop {
            let (data, eof) = how.read(c, h, chunk).await?;
            let n = data.len();
            total += n as u64;
            sink(data)?;
            if eof || n == 0 {
                return anyhow::Ok(total);
            }
        }
    }
    .await;
    close(c, h).await?;
    result
}

async fn sha256_of_guest_file(
    c: &mut Client,
    how: Transfer,
    path: &str,
    chunk: usize,
) -> anyhow::Result<[u8; 32]> {
    let mut h = Sha256::new();
    read_guest(c, how, path, chunk, |d| {
        h.update(&d);
        Ok(())
    })
    .await?;
    Ok(h.finalize().into())
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// Copies `src` to `dst`; exactly one of them is `guest:/path`.
pub async fn run(c: &mut Client, src: &str, dst: &str, opts: &Options) -> anyhow::Result<ExitCode> {
    let chunk = opts.chunk.clamp(1, MAX_CHUNK);
    let how = Transfer::choose(c, opts.allow_raw).await?;
    let start = Instant::now();
    let (size, digest, direction) = match (src.strip_prefix("guest:"), dst.strip_prefix("guest:")) {
        (None, Some(guest)) => {
            let mut file =
                std::fs::File::open(src).map_err(|e| anyhow::anyhow!("cannot open {src}: {e}"))?;
            let mut progress = Progress::new(file.metadata().ok().map(|m| m.len()));
            let h = open(c, guest, "w").await?;
            let mut sha = Sha256::new();
            let mut buf = vec![0u8; chunk];
            let mut total = 0u64;
            loop {
                let n = read_full(&mut file, &mut buf)?;
                if n == 0 {
                    break;
                }
                sha.update(&buf[..n]);
                let took = how.write(c, h, &buf[..n]).await?;
                if took != n {
                    anyhow::bail!("the guest took {took} of {n} bytes (disk full?)");
                }
                total += n as u64;
                progress.add(n);
            }
            close(c, h).await?;
            progress.finish();
            (total, <[u8; 32]>::from(sha.finalize()), "to")
        }
        (Some(guest), None) => {
            let mut out = std::fs::File::create(dst)
                .map_err(|e| anyhow::anyhow!("cannot create {dst}: {e}"))?;
            let mut progress = Progress::new(None);
            let mut sha = Sha256::new();
            let total = read_guest(c, how, guest, chunk, |d| {
                sha.update(&d);
                progress.add(d.len());
                Ok(out.write_all(&d)?)
            })
            .await?;
            progress.finish();
            (total, <[u8; 32]>::from(sha.finalize()), "from")
        }
        _ => {
            anyhow::bail!("name the guest side of the copy as guest:/path (exactly one of the two)")
        }
    };
    let guest_path = src
        .strip_prefix("guest:")
        .or(dst.strip_prefix("guest:"))
        .unwrap_or_default();
    let verified = if opts.verify {
        let back = sha256_of_guest_file(c, how, guest_path, chunk).await?;
        if back != digest {
            anyhow::bail!(
                "sha256 mismatch: copied {} but the guest file reads back as {}",
                hex(&digest),
                hex(&back)
            );
        }
        true
    } else {
        false
    };
    let secs = start.elapsed().as_secs_f64();
    if opts.json {
        println!(
            "{}",
            serde_json::json!({"bytes": size, "sha256": hex(&digest), "verified": verified, "seconds": secs, "transfer": how.name()})
        );
    } else {
        println!(
            "copied {} {direction} the guest in {secs:.2} s ({}/s, {}), sha256 {}{}",
            bytes(size),
            bytes((size as f64 / secs.max(1e-6)) as u64),
            how.name(),
            hex(&digest),
            if verified { " (verified)" } else { "" }
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Fills `buf` as far as the file allows.
fn read_full(f: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}
