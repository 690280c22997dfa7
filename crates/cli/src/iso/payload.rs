//! What goes on an image: a list of files with their modes, and the `SHA256SUMS` that
//! seals them. The agent image takes its units, rules, policy and installer from the
//! source tree's `dist/` (built into this program), and its executables from the
//! directories given with `--from`, one per architecture.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use sha2::{Digest, Sha256};

use super::elf;

/// One file on the image.
#[derive(Debug, Clone)]
pub struct File {
    /// Its path on the image, `/`-separated, without a leading `/`.
    pub path: String,
    /// Its contents.
    pub data: Vec<u8>,
    /// Its permission bits (Rock Ridge keeps them).
    pub mode: u32,
}

/// The files of an image.
#[derive(Debug, Default)]
pub struct Payload {
    /// In the order they were added.
    pub files: Vec<File>,
}

impl Payload {
    /// Adds a file.
    pub fn add(&mut self, path: impl Into<String>, data: impl Into<Vec<u8>>, mode: u32) {
        self.files.push(File {
            path: path.into(),
            data: data.into(),
            mode,
        });
    }

    /// The `sha256sum` lines of every file, sorted by path.
    pub fn sha256sums(&self) -> String {
        let mut lines: Vec<String> = self
            .files
            .iter()
            .map(|f| format!("{}  {}\n", hex(&Sha256::digest(&f.data)), f.path))
            .collect();
        lines.sort_by(|a, b| a[66..].cmp(&b[66..]));
        lines.concat()
    }

    /// Adds `SHA256SUMS` for the files added so far.
    pub fn seal(&mut self) {
        let sums = self.sha256sums();
        self.add("SHA256SUMS", sums, 0o644);
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The files from `dist/` every agent image carries: (path, contents, mode).
const DIST: &[(&str, &str, u32)] = &[
    (
        "install.sh",
        include_str!("../../../../dist/iso/install.sh"),
        0o755,
    ),
    (
        "systemd/guestlinkd.service",
        include_str!("../../../../dist/systemd/guestlinkd.service"),
        0o644,
    ),
    (
        "systemd/guestlinkd.socket",
        include_str!("../../../../dist/systemd/guestlinkd.socket"),
        0o644,
    ),
    (
        "systemd/guestlink-session.service",
        include_str!("../../../../dist/systemd/guestlink-session.service"),
        0o644,
    ),
    (
        "udev/60-guestlinkd.rules",
        include_str!("../../../../dist/udev/60-guestlinkd.rules"),
        0o644,
    ),
    (
        "policy.d/50-default.toml",
        include_str!("../../../../dist/policy.d/50-default.toml"),
        0o644,
    ),
    (
        "default/guestlinkd",
        include_str!("../../../../dist/default/guestlinkd"),
        0o644,
    ),
];

const README: &str = include_str!("../../../../dist/iso/README.txt");

/// Where the agent image's executables and MSI come from.
#[derive(Debug, Default)]
pub struct Sources {
    /// Directories with guestlinkd and guestlink-session (and guestlink) for one
    /// architecture each.
    pub dirs: Vec<PathBuf>,
    /// The Windows MSI, when given or found.
    pub msi: Option<PathBuf>,
    /// Take executables that need a dynamic loader.
    pub allow_dynamic: bool,
}

/// The executables of one directory, in the order the image lists them; guestlink is
/// optional (a guest program's CLI), the other two are not.
const BINARIES: &[(&str, bool)] = &[
    ("guestlinkd", true),
    ("guestlink-session", true),
    ("guestlink", false),
];

/// The agent image's files, sealed.
pub fn agent(sources: &Sources) -> anyhow::Result<Payload> {
    let mut p = Payload::default();
    let readme = README.replace("@VERSION@", env!("CARGO_PKG_VERSION"));
    p.add("README.txt", readme, 0o644);
    for (path, text, mode) in DIST {
        p.add(*path, *text, *mode);
    }
    if sources.dirs.is_empty() {
        bail!("no executables: give --from DIR, a directory with static builds of guestlinkd and guestlink-session (scripts/static-build.sh writes them)");
    }
    let mut archs: Vec<&str> = Vec::new();
    for dir in &sources.dirs {
        let arch = add_binaries(&mut p, dir, sources.allow_dynamic)?;
        if archs.contains(&arch) {
            bail!(
                "two directories hold {arch} executables ({})",
                dir.display()
            );
        }
        archs.push(arch);
    }
    if let Some(msi) = &sources.msi {
        let name = msi
            .file_name()
            .and_then(|n| n.to_str())
            .context("the MSI's file name is not UTF-8")?;
        let data = std::fs::read(msi).with_context(|| format!("reading {}", msi.display()))?;
        if data.get(..8) != Some(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1".as_slice()) {
            bail!("{} is not an MSI (no compound file header)", msi.display());
        }
        p.add(format!("windows/{name}"), data, 0o644);
    }
    p.seal();
    Ok(p)
}

fn add_binaries(p: &mut Payload, dir: &Path, allow_dynamic: bool) -> anyhow::Result<&'static str> {
    let mut arch = None;
    let mut found = Vec::new();
    for (name, required) in BINARIES {
        let path = dir.join(name);
        let data = match std::fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => continue,
            Err(e) => {
                return Err(e).with_context(|| {
                    format!(
                    "reading {}: --from needs static builds of guestlinkd and guestlink-session",
                    path.display()
                )
                })
            }
        };
        let e = elf::inspect(&data).with_context(|| path.display().to_string())?;
        if e.dynamic && !allow_dynamic {
            bail!(
                "{} needs a dynamic loader and the guest's C library; build it static (scripts/static-build.sh) or pass --allow-dynamic",
                path.display()
            );
        }
        match arch {
            None => arch = Some(e.arch),
            Some(a) if a != e.arch => bail!(
                "{}: {} for {}, beside executables for {a}",
                dir.display(),
                name,
                e.arch
            ),
            Some(_) => {}
        }
        found.push((*name, data));
    }
    let arch = arch.context("no executables")?;
    for (name, data) in found {
        p.add(format!("{arch}/{name}"), data, 0o755);
    }
    Ok(arch)
}

/// The MSI next to the executables, or in `target/windows` beside `target/release`.
pub fn find_msi(dirs: &[PathBuf]) -> Option<PathBuf> {
    let mut places: Vec<PathBuf> = dirs.to_vec();
    for d in dirs {
        if let Some(parent) = d.parent() {
            places.push(parent.join("windows"));
        }
    }
    if let Some(exe_dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        if let Some(target) = exe_dir.parent() {
            places.push(target.join("windows"));
        }
    }
    for place in places {
        let Ok(entries) = std::fs::read_dir(&place) else {
            continue;
        };
        let mut msis: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("guestlink-") && n.ends_with("-x86_64.msi"))
            })
            .collect();
        msis.sort();
        if let Some(last) = msis.pop() {
            return Some(last);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_are_sorted_sha256sum_lines() {
        let mut p = Payload::default();
        p.add("b", "two", 0o644);
        p.add("a/x", "one", 0o755);
        p.seal();
        let sums = String::from_utf8(p.files.last().unwrap().data.clone()).unwrap();
        assert_eq!(
            sums,
            "7692c3ad3540bb803c020b3aee66cd8887123234ea0c6e7143c0add73ff431ed  a/x\n\
             3fc4ccfe745870e2c0d99f71f30ff0656c8dedd41cc1d7d3d376b0dbe685e2f3  b\n"
        );
        assert_eq!(p.files.last().unwrap().path, "SHA256SUMS");
    }

    #[test]
    fn refuses_missing_and_dynamic_executables() {
        let dir = std::env::temp_dir().join(format!("guestlink-iso-src-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let none = agent(&Sources {
            dirs: vec![],
            ..Default::default()
        })
        .unwrap_err();
        assert!(none.to_string().contains("--from"), "{none}");
        let missing = agent(&Sources {
            dirs: vec![dir.clone()],
            ..Default::default()
        })
        .unwrap_err();
        assert!(format!("{missing:#}").contains("guestlinkd"), "{missing:#}");
        // This test binary is dynamic: refused unless allowed.
        let me = std::env::current_exe().unwrap();
        for name in ["guestlinkd", "guestlink-session"] {
            std::fs::copy(&me, dir.join(name)).unwrap();
        }
        let dynamic = agent(&Sources {
            dirs: vec![dir.clone()],
            ..Default::default()
        })
        .unwrap_err();
        assert!(dynamic.to_string().contains("dynamic loader"), "{dynamic}");
        let ok = agent(&Sources {
            dirs: vec![dir.clone()],
            allow_dynamic: true,
            msi: None,
        })
        .unwrap();
        let arch = std::env::consts::ARCH;
        assert!(ok
            .files
            .iter()
            .any(|f| f.path == format!("{arch}/guestlinkd") && f.mode == 0o755));
        assert!(!ok.files.iter().any(|f| f.path.ends_with("/guestlink")));
        // The same architecture twice.
        let twice = agent(&Sources {
            dirs: vec![dir.clone(), dir.clone()],
            allow_dynamic: true,
            msi: None,
        })
        .unwrap_err();
        assert!(twice.to_string().contains("two directories"), "{twice}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
