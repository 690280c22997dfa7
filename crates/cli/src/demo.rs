//! `guestlink demo`: the whole path without a VM. Starts guestlinkd listening on a
//! temporary unix socket, connects as a host would (0xFF + guest-sync-delimited), asks
//! it the everyday questions, prints the answers, and stops it with SIGTERM.

use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _};
use guestlink_client::Client;
use guestlink_vocabulary::commands::*;
use guestlink_vocabulary::types::Empty;

use crate::render;

fn find_agent(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(p) = given {
        return Ok(p);
    }
    let exe = std::env::current_exe()?;
    let beside = exe.with_file_name("guestlinkd");
    if beside.exists() {
        return Ok(beside);
    }
    std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|d| d.join("guestlinkd")).find(|p| p.exists()))
        .ok_or_else(|| anyhow!("guestlinkd not found next to guestlink or on PATH; build it with `cargo build --release`"))
}

async fn wait_for_socket(path: &Path, child: &mut tokio::process::Child) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !path.exists() {
        if let Some(status) = child.try_wait()? {
            return Err(anyhow!("guestlinkd exited early with {status}"));
        }
        if Instant::now() > deadline {
            return Err(anyhow!(
                "guestlinkd did not create {} within 10 s",
                path.display()
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Writes a file in the guest, reads it back, and checks the bytes.
async fn file_round_trip(c: &mut Client, dir: &Path) -> anyhow::Result<()> {
    use guestlink_vocabulary::types::{
        base64_encode, GuestFileHandleArgs, GuestFileOpenArgs, GuestFileReadArgs,
        GuestFileWriteArgs,
    };
    let path = dir.join("demo.txt").to_string_lossy().into_owned();
    let data = b"written by the host, read back through the agent\n";
    let open = |mode: &str| GuestFileOpenArgs {
        path: path.clone(),
        mode: Some(mode.into()),
    };
    let h = c.call::<GuestFileOpen>(&open("w")).await?;
    let w = c
        .call::<GuestFileWrite>(&GuestFileWriteArgs {
            handle: h,
            buf_b64: base64_encode(data),
            count: None,
        })
        .await?;
    c.call::<GuestFileClose>(&GuestFileHandleArgs { handle: h })
        .await?;
    let h = c.call::<GuestFileOpen>(&open("r")).await?;
    let r = c
        .call::<GuestFileRead>(&GuestFileReadArgs {
            handle: h,
            count: None,
        })
        .await?;
    c.call::<GuestFileClose>(&GuestFileHandleArgs { handle: h })
        .await?;
    if r.buf_b64.0 != data {
        return Err(anyhow!("file read back differs from what was written"));
    }
    println!(
        "  file           wrote {} bytes, read {} back identical (handle {h})",
        w.count, r.count
    );
    Ok(())
}

/// Runs `uname -sr` in the guest and collects its output.
async fn exec_round_trip(c: &mut Client) -> anyhow::Result<()> {
    use guestlink_vocabulary::types::{GuestExecArgs, GuestExecCaptureOutput, GuestExecStatusArgs};
    let pid = c
        .call::<GuestExec>(&GuestExecArgs {
            path: "uname".into(),
            arg: Some(vec!["-sr".into()]),
            capture_output: Some(GuestExecCaptureOutput::Flag(true)),
            ..Default::default()
        })
        .await?
        .pid;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let st = c
            .call::<GuestExecStatus>(&GuestExecStatusArgs { pid })
            .await?;
        if st.exited {
            let out = st.out_data.map(|d| d.0).unwrap_or_default();
            println!(
                "  exec           uname -sr (pid {pid}) exited {} with {:?}",
                st.exitcode.unwrap_or(-1),
                String::from_utf8_lossy(&out).trim_end()
            );
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(anyhow!("uname did not finish within 10 s"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn run(agent: Option<PathBuf>, timeout: Duration) -> anyhow::Result<ExitCode> {
    let agent = find_agent(agent)?;
    let dir = std::env::temp_dir().join(format!("guestlink-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let sock = dir.join("qga.sock");
    println!("starting {} on {}", agent.display(), sock.display());
    let started = Instant::now();
    let mut child = tokio::process::Command::new(&agent)
        .args(["-m", "unix-listen", "-p"])
        .arg(&sock)
        .arg("-t")
        .arg(&dir)
        .env("GUESTLINK_GUEST_SOCKET", dir.join("guest.sock"))
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {}", agent.display()))?;
    let result = async {
        wait_for_socket(&sock, &mut child).await?;
        let mut c = Client::connect_unix(&sock, timeout).await?;
        c.call::<GuestPing>(&Empty {}).await?;
        println!(
            "  ping           answered {:.1} ms after start",
            started.elapsed().as_secs_f64() * 1e3
        );
        let info = c.call::<GuestInfo>(&Empty {}).await?;
        let enabled = info.supported_commands.iter().filter(|c| c.enabled).count();
        println!(
            "  agent          QGA {} with {} commands ({} enabled)",
            info.version,
            info.supported_commands.len(),
            enabled
        );
        let os = c.call::<GuestGetOsinfo>(&Empty {}).await?;
        println!("  os             {}", render::os(&os));
        let host = c.call::<GuestGetHostName>(&Empty {}).await?;
        println!("  host name      {}", host.host_name);
        let tz = c.call::<GuestGetTimezone>(&Empty {}).await?;
        println!(
            "  time zone      {} (UTC{:+})",
            tz.zone.as_deref().unwrap_or("?"),
            tz.offset / 3600
        );
        let ns = c.call::<GuestGetTime>(&Empty {}).await?;
        println!("  guest clock    {} ns since the epoch", ns);
        let users = c.call::<GuestGetUsers>(&Empty {}).await?;
        println!("  users          {}", render::users(&users));
        let cpus = c.call::<GuestGetVcpus>(&Empty {}).await?;
        let online = cpus.iter().filter(|c| c.online).count();
        println!("  vcpus          {} ({} online)", cpus.len(), online);
        for fs in c.call::<GuestGetFsinfo>(&Empty {}).await? {
            println!("  filesystem     {}", render::filesystem(&fs));
        }
        for nic in c.call::<GuestNetworkGetInterfaces>(&Empty {}).await? {
            println!("  interface      {}", render::interface(&nic));
        }
        file_round_trip(&mut c, &dir).await?;
        exec_round_trip(&mut c).await?;
        let bogus = c.execute("guest-no-such-command", None).await.unwrap_err();
        println!("  unknown cmd    {bogus}");
        anyhow::Ok(())
    }
    .await;
    if let Some(pid) = child.id() {
        // SAFETY: kill(2) with a pid we spawned and SIGTERM has no memory effects.
        unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    }
    let status = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
    let _ = std::fs::remove_dir_all(&dir);
    result?;
    match status {
        Ok(Ok(s)) if s.success() => {
            println!("guestlinkd stopped cleanly (SIGTERM, exit status 0)");
            Ok(ExitCode::SUCCESS)
        }
        Ok(Ok(s)) => Err(anyhow!("guestlinkd exited with {s}")),
        Ok(Err(e)) => Err(e.into()),
        Err(_) => Err(anyhow!("guestlinkd did not stop within 5 s of SIGTERM")),
    }
}
