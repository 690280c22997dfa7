//! `guestlink iso`: the agent on an image the host attaches, for guests without
//! networking or a package (QEMU's "deployability via ISO"). `-o FILE` writes the agent
//! image, label `GUESTLINK`: static executables per architecture, the systemd units,
//! udev rules and default policy, install.sh, the Windows MSI when there is one, a
//! README and `SHA256SUMS`. `--cloud-init` writes a NoCloud seed (label `cidata`)
//! whose user-data installs the agent from that image at the guest's first boot.
//!
//! [`payload`] decides what goes on an image, [`image`] writes ISO 9660, [`seed`] is
//! the cloud-init side, [`elf`] reads executables' architectures.

mod elf;
mod image;
mod payload;
mod seed;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

/// `guestlink iso`'s options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The image to write (default: guestlink.iso, or seed.iso with --cloud-init).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// A directory with static builds of guestlinkd and guestlink-session (and
    /// guestlink) for one architecture; repeat for more architectures. Default: the
    /// directory of this program.
    #[arg(long = "from", value_name = "DIR")]
    pub from: Vec<PathBuf>,
    /// The Windows MSI to add (default: guestlink-*-x86_64.msi found beside the
    /// executables or in target/windows).
    #[arg(long, value_name = "FILE", conflicts_with = "no_msi")]
    pub msi: Option<PathBuf>,
    /// Leave the Windows MSI out even when one is found.
    #[arg(long)]
    pub no_msi: bool,
    /// Take executables that need the guest's shared C library (only for guests whose
    /// glibc is as new as the build machine's).
    #[arg(long)]
    pub allow_dynamic: bool,
    /// Write a cloud-init NoCloud seed (label cidata) that installs the agent from the
    /// agent image at first boot, instead of the agent image.
    #[arg(long)]
    pub cloud_init: bool,
    /// The seed's instance id (cloud-init runs first-boot steps once per id).
    #[arg(long, value_name = "ID", requires = "cloud_init")]
    pub instance_id: Option<String>,
    /// The seed's host name for the guest.
    #[arg(long, value_name = "NAME", requires = "cloud_init")]
    pub hostname: Option<String>,
}

/// Writes the image and says what is on it.
pub fn run(args: &Args, json: bool) -> anyhow::Result<ExitCode> {
    let (label, payload, default_name) = if args.cloud_init {
        let instance_id = args.instance_id.clone().unwrap_or_else(|| {
            let secs = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            format!("iid-guestlink-{secs}")
        });
        let s = seed::Seed {
            instance_id,
            hostname: args.hostname.clone(),
        };
        (seed::LABEL, seed::payload(&s), "seed.iso")
    } else {
        let dirs = if args.from.is_empty() {
            let exe = std::env::current_exe().context("finding this program")?;
            vec![exe
                .parent()
                .context("this program's directory")?
                .to_path_buf()]
        } else {
            args.from.clone()
        };
        let msi = match (&args.msi, args.no_msi) {
            (_, true) => None,
            (Some(m), false) => Some(m.clone()),
            (None, false) => payload::find_msi(&dirs),
        };
        let sources = payload::Sources {
            dirs,
            msi,
            allow_dynamic: args.allow_dynamic,
        };
        ("GUESTLINK", payload::agent(&sources)?, "guestlink.iso")
    };
    let out = args
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from(default_name));
    let size = image::write(&out, label, &payload)?;
    if json {
        let files: Vec<_> = payload
            .files
            .iter()
            .map(|f| serde_json::json!({"path": f.path, "bytes": f.data.len(), "mode": format!("{:o}", f.mode)}))
            .collect();
        println!(
            "{}",
            serde_json::json!({"image": out, "label": label, "bytes": size, "files": files})
        );
    } else {
        println!("{} (label {label}, {} bytes)", out.display(), size);
        for f in &payload.files {
            println!("  {:>10}  {:o}  {}", f.data.len(), f.mode, f.path);
        }
    }
    Ok(ExitCode::SUCCESS)
}
