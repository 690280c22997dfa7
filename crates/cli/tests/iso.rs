//! `guestlink iso` end to end on the build machine: the image is read back with
//! hadris-iso's reader (label, Joliet and Rock Ridge trees, modes, SHA256SUMS), its
//! files are extracted, and its install.sh is run into a `--root` twice (the second run
//! changes nothing) and out again with `--uninstall` (nothing left behind). The seed's
//! label and files are read back the same way.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use hadris_fs::sync::Volume;
use hadris_fs::MountOptions;
use hadris_iso::sync::IsoFs;
use hadris_iso::{IsoId, Namespace};
use sha2::{Digest, Sha256};

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("guestlink-iso-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn guestlink(args: &[&str]) -> std::process::Output {
    let out = Command::new(env!("CARGO_BIN_EXE_guestlink"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "guestlink {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn mount(image: &Path, ns: Namespace) -> IsoFs<hadris_storage::host::FileDevice> {
    let dev = hadris_storage::host::FileDevice::open(image).unwrap();
    IsoFs::mount_namespace(dev, MountOptions::new(), ns).unwrap()
}

/// Every file of one tree: path -> (mode, contents).
fn files(image: &Path, ns: Namespace) -> BTreeMap<String, (u32, Vec<u8>)> {
    let dir = scratch(&format!("x-{ns:?}"));
    let vol = Volume::new(mount(image, ns));
    let tree = hadris_fs::sync::read_tree(&vol, "/").unwrap();
    hadris_fs::host::write_tree(&dir, &tree).unwrap();
    let mut all = BTreeMap::new();
    walk(&dir, &dir, &mut all);
    std::fs::remove_dir_all(&dir).unwrap();
    all
}

fn walk(base: &Path, dir: &Path, all: &mut BTreeMap<String, (u32, Vec<u8>)>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(base, &p, all);
        } else {
            let rel = p.strip_prefix(base).unwrap().to_string_lossy().into_owned();
            let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o7777;
            all.insert(rel, (mode, std::fs::read(&p).unwrap()));
        }
    }
}

/// A directory of stand-in executables: this machine's guestlink (dynamic, so
/// --allow-dynamic) under the names the image wants.
fn executables() -> PathBuf {
    let d = scratch("bin");
    for name in ["guestlinkd", "guestlink-session"] {
        std::fs::copy(env!("CARGO_BIN_EXE_guestlink"), d.join(name)).unwrap();
    }
    d
}

#[test]
fn the_agent_image_reads_back_and_installs_into_a_root_and_out() {
    let work = scratch("agent");
    let bin = executables();
    let image = work.join("guestlink.iso");
    let msi = work.join("guestlink-9.9.9-x86_64.msi");
    let mut fake_msi = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1".to_vec();
    fake_msi.extend([7u8; 3000]);
    std::fs::write(&msi, &fake_msi).unwrap();
    guestlink(&[
        "iso",
        "-o",
        image.to_str().unwrap(),
        "--from",
        bin.to_str().unwrap(),
        "--allow-dynamic",
        "--msi",
        msi.to_str().unwrap(),
    ]);
    assert!(!work.join("guestlink.iso.partial").exists());

    let iso = mount(&image, Namespace::Preferred);
    let ns = iso.namespaces();
    assert!(
        ns.contains(Namespace::RockRidge) && ns.contains(Namespace::Joliet),
        "{ns:?}"
    );
    let label = String::from_utf8_lossy(iso.info().id(IsoId::Volume))
        .trim_end()
        .to_owned();
    assert_eq!(label, "GUESTLINK");

    let rr = files(&image, Namespace::RockRidge);
    let arch = std::env::consts::ARCH;
    let names: Vec<&str> = rr.keys().map(String::as_str).collect();
    for want in [
        "README.txt",
        "SHA256SUMS",
        "install.sh",
        "systemd/guestlinkd.service",
        "systemd/guestlinkd.socket",
        "systemd/guestlink-session.service",
        "udev/60-guestlinkd.rules",
        "policy.d/50-default.toml",
        "default/guestlinkd",
        "windows/guestlink-9.9.9-x86_64.msi",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    assert!(
        names.contains(&format!("{arch}/guestlinkd").as_str()),
        "{names:?}"
    );
    // Rock Ridge keeps the modes: the installer and the executables run from the disc.
    assert_eq!(rr["install.sh"].0, 0o755);
    assert_eq!(rr[&format!("{arch}/guestlinkd")].0, 0o755);
    assert_eq!(rr["README.txt"].0, 0o644);
    assert_eq!(rr["windows/guestlink-9.9.9-x86_64.msi"].1, fake_msi);
    assert_eq!(
        rr[&format!("{arch}/guestlink-session")].1,
        std::fs::read(env!("CARGO_BIN_EXE_guestlink")).unwrap()
    );
    assert!(String::from_utf8_lossy(&rr["README.txt"].1).contains(env!("CARGO_PKG_VERSION")));
    // SHA256SUMS covers every other file, and each sum is right.
    let sums = String::from_utf8(rr["SHA256SUMS"].1.clone()).unwrap();
    let mut listed = 0;
    for line in sums.lines() {
        let (sum, path) = line.split_once("  ").unwrap();
        assert_eq!(sum, hex(&Sha256::digest(&rr[path].1)), "{path}");
        listed += 1;
    }
    assert_eq!(listed, rr.len() - 1);
    // Windows reads the Joliet tree: the same names, the same bytes.
    let joliet = files(&image, Namespace::Joliet);
    assert_eq!(
        joliet.keys().collect::<Vec<_>>(),
        rr.keys().collect::<Vec<_>>()
    );
    assert_eq!(joliet["windows/guestlink-9.9.9-x86_64.msi"].1, fake_msi);

    install_into_a_root_and_out(&work, &rr);
    std::fs::remove_dir_all(&work).unwrap();
    std::fs::remove_dir_all(&bin).unwrap();
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Every path under `root` with its kind and, for files and links, contents.
fn snapshot(root: &Path) -> BTreeMap<String, String> {
    fn go(base: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(base).unwrap().to_string_lossy().into_owned();
            let m = std::fs::symlink_metadata(&p).unwrap();
            if m.file_type().is_symlink() {
                out.insert(
                    rel,
                    format!("-> {}", std::fs::read_link(&p).unwrap().display()),
                );
            } else if m.is_dir() {
                out.insert(rel, "dir".into());
                go(base, &p, out);
            } else {
                let mode = m.permissions().mode() & 0o7777;
                out.insert(
                    rel,
                    format!(
                        "{mode:o} {}",
                        hex(&Sha256::digest(std::fs::read(&p).unwrap()))
                    ),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    go(root, root, &mut out);
    out
}

fn install(disc: &Path, root: &Path, extra: &[&str]) -> (bool, String) {
    let out = Command::new("sh")
        .arg(disc.join("install.sh"))
        .arg("--root")
        .arg(root)
        .arg("--arch")
        .arg(std::env::consts::ARCH)
        .args(extra)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn install_into_a_root_and_out(work: &Path, rr: &BTreeMap<String, (u32, Vec<u8>)>) {
    // The disc as the guest sees it (modes from Rock Ridge).
    let disc = work.join("disc");
    for (path, (mode, data)) in rr {
        let p = disc.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, data).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(*mode)).unwrap();
    }
    // A root with qemu-ga's unit (to be masked) and an administrator's file.
    let root = work.join("root");
    std::fs::create_dir_all(root.join("usr/lib/systemd/system")).unwrap();
    std::fs::write(
        root.join("usr/lib/systemd/system/qemu-guest-agent.service"),
        "[Unit]\n",
    )
    .unwrap();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/hostname"), "vm\n").unwrap();
    let before = snapshot(&root);

    let (ok, text) = install(&disc, &root, &[]);
    assert!(ok, "{text}");
    let after = snapshot(&root);
    for (path, kind) in [
        ("usr/sbin/guestlinkd", "755 "),
        ("usr/bin/guestlink-session", "755 "),
        ("usr/lib/systemd/system/guestlinkd.service", "644 "),
        ("usr/lib/systemd/system/guestlinkd.socket", "644 "),
        ("usr/lib/systemd/user/guestlink-session.service", "644 "),
        ("usr/lib/udev/rules.d/60-guestlinkd.rules", "644 "),
        ("usr/lib/guestlink/policy.d/50-default.toml", "644 "),
        ("etc/default/guestlinkd", "644 "),
        ("var/lib/guestlink/install-manifest", "644 "),
    ] {
        assert!(
            after.get(path).is_some_and(|k| k.starts_with(kind)),
            "{path}: {:?}",
            after.get(path)
        );
    }
    assert_eq!(
        after["etc/systemd/system/multi-user.target.wants/guestlinkd.service"],
        "-> /usr/lib/systemd/system/guestlinkd.service"
    );
    assert_eq!(
        after["etc/systemd/system/sockets.target.wants/guestlinkd.socket"],
        "-> /usr/lib/systemd/system/guestlinkd.socket"
    );
    assert_eq!(
        after["etc/systemd/system/qemu-guest-agent.service"],
        "-> /dev/null"
    );
    // spice-vdagentd is not in this root: nothing masks it.
    assert!(!after.contains_key("etc/systemd/system/spice-vdagentd.service"));
    assert!(text.contains("masked qemu-guest-agent.service"), "{text}");

    // Again: the same root, byte for byte.
    let (ok, text) = install(&disc, &root, &[]);
    assert!(ok, "{text}");
    assert_eq!(snapshot(&root), after, "a second install changed the root");

    // A file in the way that install.sh did not make is not overwritten.
    let other = work.join("other");
    std::fs::create_dir_all(other.join("usr/sbin")).unwrap();
    std::fs::write(other.join("usr/sbin/guestlinkd"), "mine").unwrap();
    let (ok, text) = install(&disc, &other, &[]);
    assert!(
        !ok && text.contains("was not installed by install.sh"),
        "{text}"
    );
    assert_eq!(
        std::fs::read(other.join("usr/sbin/guestlinkd")).unwrap(),
        b"mine"
    );

    // A damaged disc is refused before anything is written.
    let bad = work.join("bad-disc");
    copy_dir(&disc, &bad);
    std::fs::write(bad.join("policy.d/50-default.toml"), "changed").unwrap();
    let fresh = work.join("fresh");
    std::fs::create_dir_all(&fresh).unwrap();
    let (ok, text) = install(&bad, &fresh, &[]);
    assert!(!ok && text.contains("SHA256SUMS"), "{text}");
    assert!(snapshot(&fresh).is_empty());

    // Out again: exactly what was there before.
    let (ok, text) = install(&disc, &root, &["--uninstall"]);
    assert!(ok, "{text}");
    assert_eq!(snapshot(&root), before, "--uninstall left something behind");
    let (ok, text) = install(&disc, &root, &["--uninstall"]);
    assert!(ok && text.contains("nothing to remove"), "{text}");

    // A configuration file the administrator changed is kept, with what holds it.
    let (ok, text) = install(&disc, &root, &[]);
    assert!(ok, "{text}");
    std::fs::write(
        root.join("etc/default/guestlinkd"),
        "GUESTLINKD_ARGS=\"-v\"\n",
    )
    .unwrap();
    let (ok, text) = install(&disc, &root, &[]);
    assert!(ok, "{text}");
    assert_eq!(
        std::fs::read_to_string(root.join("etc/default/guestlinkd")).unwrap(),
        "GUESTLINKD_ARGS=\"-v\"\n",
        "an update overwrote a changed configuration"
    );
    let (ok, text) = install(&disc, &root, &["--uninstall"]);
    assert!(
        ok && text.contains("kept /etc/default/guestlinkd"),
        "{text}"
    );
    let left: Vec<String> = snapshot(&root)
        .into_keys()
        .filter(|k| !before.contains_key(k))
        .collect();
    assert_eq!(left, ["etc/default", "etc/default/guestlinkd"]);
}

fn copy_dir(from: &Path, to: &Path) {
    let out = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .output()
        .unwrap();
    assert!(out.status.success());
}

#[test]
fn the_seed_is_a_nocloud_image_that_installs_from_the_agent_image() {
    let work = scratch("seed");
    let image = work.join("seed.iso");
    guestlink(&[
        "iso",
        "--cloud-init",
        "-o",
        image.to_str().unwrap(),
        "--instance-id",
        "iid-test",
        "--hostname",
        "vm1",
    ]);
    let iso = mount(&image, Namespace::Preferred);
    let label = String::from_utf8_lossy(iso.info().id(IsoId::Volume))
        .trim_end()
        .to_owned();
    assert_eq!(label, "cidata");
    let all = files(&image, Namespace::RockRidge);
    assert_eq!(all.keys().collect::<Vec<_>>(), ["meta-data", "user-data"]);
    assert_eq!(
        String::from_utf8_lossy(&all["meta-data"].1),
        "instance-id: \"iid-test\"\nlocal-hostname: \"vm1\"\n"
    );
    let user = String::from_utf8_lossy(&all["user-data"].1).into_owned();
    assert!(
        user.starts_with("#cloud-config\n") && user.contains("runcmd:"),
        "{user}"
    );
    assert!(
        user.contains("by-label/GUESTLINK") && user.contains("install.sh"),
        "{user}"
    );
    // cloud-init's NoCloud source reads the Joliet or the plain tree too.
    let joliet = files(&image, Namespace::Joliet);
    assert_eq!(joliet["user-data"].1, all["user-data"].1);
    std::fs::remove_dir_all(&work).unwrap();
}
