//! `guestlink cp -r/-p/-`, `ls`, `stat`, `rm`, `mkdir` and `packages` against
//! guestlinkd, and what a stock qemu-ga answers to them. Every path removed here lies
//! in a scratch directory; the root guard is only tried without `recursive`, where a
//! failed guard could not remove anything.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{guestlinkd, have_qemu_ga, Agent, QEMU_GA};

/// What a tree holds, path by path: kind, mode, content or link target.
fn tree(root: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let what = if m.file_type().is_symlink() {
                format!("link {}", std::fs::read_link(&p).unwrap().display())
            } else if m.is_dir() {
                stack.push(p.clone());
                format!("dir {:o}", m.mode() & 0o7777)
            } else {
                let data = std::fs::read(&p).unwrap();
                format!(
                    "file {:o} {} {}",
                    m.mode() & 0o7777,
                    data.len(),
                    data.iter().map(|b| *b as u64).sum::<u64>()
                )
            };
            out.push((rel, what));
        }
    }
    out.sort();
    out
}

fn mtime(p: &Path) -> i64 {
    let m = std::fs::symlink_metadata(p).unwrap();
    m.mtime() * 1_000_000_000 + m.mtime_nsec()
}

/// Names in a tree that look like a copy's temporary file.
fn leftovers(root: &Path) -> Vec<String> {
    tree(root)
        .into_iter()
        .map(|(p, _)| p)
        .filter(|p| p.contains(".guestlink-"))
        .collect()
}

fn sample_tree(at: &Path) {
    std::fs::create_dir_all(at.join("sub/deeper")).unwrap();
    std::fs::write(at.join("script.sh"), b"#!/bin/sh\necho hi\n").unwrap();
    std::fs::set_permissions(at.join("script.sh"), PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::write(at.join("secret"), b"only me").unwrap();
    std::fs::set_permissions(at.join("secret"), PermissionsExt::from_mode(0o600)).unwrap();
    let big: Vec<u8> = (0..1_500_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(at.join("sub/big.bin"), big).unwrap();
    std::fs::write(at.join("sub/deeper/.hidden"), b"").unwrap();
    std::os::unix::fs::symlink("../script.sh", at.join("sub/link")).unwrap();
    std::fs::set_permissions(at.join("sub"), PermissionsExt::from_mode(0o750)).unwrap();
    // Old times, so that -p has something to keep.
    for p in ["script.sh", "secret", "sub/big.bin"] {
        let f = std::fs::File::options()
            .write(true)
            .open(at.join(p))
            .unwrap();
        f.set_modified(std::time::UNIX_EPOCH + Duration::from_secs(1_500_000_000))
            .unwrap();
    }
}

#[test]
fn trees_modes_times_and_stdio() {
    let agent = Agent::start(&guestlinkd(), "files", &[]);
    let host = agent.dir.join("host");
    let guest = agent.dir.join("guest");
    std::fs::create_dir_all(&guest).unwrap();
    sample_tree(&host.join("tree"));
    let g = |p: &Path| format!("guest:{}", p.display());

    // Without -r a directory is left out, as cp does.
    let out = agent.run(&["cp", host.join("tree").to_str().unwrap(), &g(&guest)]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("-r not specified"),
        "{out:?}"
    );

    // Into an existing directory: it lands as guest/tree, modes and links kept.
    let up = agent.ok(&["cp", "-r", host.join("tree").to_str().unwrap(), &g(&guest)]);
    assert!(up.contains("4 files, 3 directories, 1 links"), "{up}");
    assert!(up.contains("(verified)"), "{up}");
    assert_eq!(tree(&guest.join("tree")), tree(&host.join("tree")));
    // Without -p the times are the copy's own.
    assert_ne!(
        mtime(&guest.join("tree/secret")),
        mtime(&host.join("tree/secret"))
    );
    assert!(leftovers(&guest).is_empty(), "{:?}", leftovers(&guest));

    // -p keeps modification times; a destination that does not exist becomes the copy.
    agent.ok(&[
        "cp",
        "-r",
        "-p",
        host.join("tree").to_str().unwrap(),
        &g(&guest.join("kept")),
    ]);
    assert_eq!(tree(&guest.join("kept")), tree(&host.join("tree")));
    for p in ["secret", "sub/big.bin", "script.sh"] {
        assert_eq!(
            mtime(&guest.join("kept").join(p)),
            mtime(&host.join("tree").join(p)),
            "{p}"
        );
    }

    // And back, from the guest, with -p.
    let back = agent.dir.join("back");
    let down = agent.ok(&["cp", "-rp", &g(&guest.join("kept")), back.to_str().unwrap()]);
    assert!(down.contains("from the guest"), "{down}");
    assert_eq!(tree(&back), tree(&host.join("tree")));
    assert_eq!(
        mtime(&back.join("sub/big.bin")),
        mtime(&host.join("tree/sub/big.bin"))
    );
    assert!(leftovers(&back).is_empty());

    // Several sources into a directory; a file's mode is kept without -p too.
    let many = guest.join("many");
    agent.ok(&["mkdir", &g(&many)]);
    agent.ok(&[
        "cp",
        host.join("tree/script.sh").to_str().unwrap(),
        host.join("tree/secret").to_str().unwrap(),
        &g(&many),
    ]);
    assert_eq!(
        std::fs::metadata(many.join("script.sh")).unwrap().mode() & 0o777,
        0o755
    );
    assert_eq!(
        std::fs::metadata(many.join("secret")).unwrap().mode() & 0o777,
        0o600
    );
    let out = agent.run(&[
        "cp",
        host.join("tree/script.sh").to_str().unwrap(),
        host.join("tree/secret").to_str().unwrap(),
        &g(&many.join("script.sh")),
    ]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is not a directory"),
        "{out:?}"
    );

    // `-` is standard input, and standard output (the summary goes to stderr then).
    let out = agent.run_with_stdin(&["cp", "-", &g(&guest.join("from-stdin"))], b"piped in\n");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        std::fs::read(guest.join("from-stdin")).unwrap(),
        b"piped in\n"
    );
    assert_eq!(
        std::fs::metadata(guest.join("from-stdin")).unwrap().mode() & 0o777,
        0o644
    );
    let out = agent.run(&["cp", &g(&guest.join("from-stdin")), "-"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(out.stdout, b"piped in\n");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("copied"),
        "{out:?}"
    );

    // ls, ls -l, stat.
    let ls = agent.ok(&["ls", &g(&guest.join("tree/sub"))]);
    assert_eq!(ls, "big.bin\ndeeper/\nlink\n");
    let ls = agent.ok(&["ls", "-la", &g(&guest.join("tree/sub/deeper"))]);
    assert!(ls.contains(".hidden"), "{ls}");
    let ls = agent.ok(&["ls", "-l", &g(&guest.join("tree"))]);
    assert!(
        ls.contains("-rwxr-xr-x") && ls.contains("script.sh"),
        "{ls}"
    );
    assert!(ls.contains("drwxr-x---"), "{ls}");
    let ls = agent.ok(&["ls", "-l", &g(&guest.join("tree/sub"))]);
    assert!(
        ls.contains("1500000  ") && ls.contains("link -> ../script.sh"),
        "{ls}"
    );
    let st = agent.ok(&["stat", &g(&guest.join("tree/sub/link"))]);
    assert!(
        st.contains("type: symlink") && st.contains("target: ../script.sh"),
        "{st}"
    );
    let st: serde_json::Value = serde_json::from_str(&agent.ok(&[
        "--json",
        "stat",
        "-L",
        &g(&guest.join("tree/sub/link")),
    ]))
    .unwrap();
    assert_eq!(st["type"], "file", "{st}");
    assert_eq!(st["mode"], 0o755, "{st}");

    // A listing comes in pages.
    let page: serde_json::Value = serde_json::from_str(&agent.ok(&[
        "call",
        "__org.guestlink_path-list",
        "-a",
        &format!(r#"{{"path":"{}","limit":2}}"#, guest.join("tree").display()),
    ]))
    .unwrap();
    assert_eq!(page["return"]["total"], 3, "{page}");
    assert_eq!(page["return"]["next"], 2, "{page}");
    assert_eq!(page["return"]["entries"][0]["name"], "script.sh", "{page}");

    // Owner and group by name (as the guest's user database has them) or number.
    let secret = guest.join("tree/secret");
    let set =
        |json: String| agent.run(&["call", "__org.guestlink_path-set-attributes", "-a", &json]);
    let out = set(format!(
        r#"{{"path":"{}","owner":"root","group":"0","mode":416}}"#,
        secret.display()
    ));
    assert!(out.status.success(), "{out:?}");
    assert_eq!(std::fs::metadata(&secret).unwrap().mode() & 0o7777, 0o640);
    let out = set(format!(
        r#"{{"path":"{}","owner":"no-such-user-gl"}}"#,
        secret.display()
    ));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("user 'no-such-user-gl' does not exist"),
        "{text}"
    );

    // mkdir -p -m, rm, rm -r, rm -f.
    let deep = guest.join("made/a/b");
    agent.ok(&["mkdir", "-p", "-m", "700", &g(&deep)]);
    assert_eq!(std::fs::metadata(&deep).unwrap().mode() & 0o777, 0o700);
    agent.ok(&["mkdir", "-p", &g(&deep)]);
    let out = agent.run(&["mkdir", &g(&deep)]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("File exists"),
        "{out:?}"
    );
    let out = agent.run(&["rm", &g(&guest.join("made"))]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    agent.ok(&["rm", "-r", &g(&guest.join("made"))]);
    assert!(!guest.join("made").exists());
    let out = agent.run(&["rm", &g(&guest.join("made"))]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("No such file or directory"),
        "{out:?}"
    );
    agent.ok(&["rm", "-f", &g(&guest.join("made"))]);
    // A link is removed, not what it points to.
    agent.ok(&["rm", &g(&guest.join("tree/sub/link"))]);
    assert!(guest.join("tree/script.sh").exists());

    // The root guard, and paths ending in . or .. (which would name a parent).
    for p in ["/", "//", "/.", "/tmp/.."] {
        let out = agent.run(&[
            "call",
            "__org.guestlink_path-remove",
            "-a",
            &format!(r#"{{"path":"{p}"}}"#),
        ]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{p}: {text}");
        assert!(
            text.contains("it is the root directory") || text.contains("the path ends in . or .."),
            "{p}: {text}"
        );
    }
    let inner = guest.join("tree/sub/deeper");
    for p in [
        inner.join(".."),
        inner.join("."),
        PathBuf::from(format!("{}/./", inner.display())),
    ] {
        let out = agent.run(&[
            "call",
            "__org.guestlink_path-remove",
            "-a",
            &format!(r#"{{"path":"{}","recursive":true}}"#, p.display()),
        ]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("the path ends in . or .."),
            "{}: {text}",
            p.display()
        );
    }
    assert!(inner.join(".hidden").exists());
}

/// A copy that cannot finish, whatever stops it, leaves nothing under the
/// destination's name, and no temporary file either.
#[test]
fn failed_and_interrupted_copies_leave_nothing() {
    let agent = Agent::start(&guestlinkd(), "files-fail", &[]);
    let small = agent.dir.join("small");
    std::fs::create_dir(&small).unwrap();
    // A 1 MiB file system: the root of the build machine's tests, as in CI.
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(&small)
        .status()
        .unwrap();
    assert!(mounted.success(), "this test mounts a tmpfs and needs root");
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(small.clone());
    let src = agent.dir.join("three-mib");
    std::fs::write(&src, vec![7u8; 3 << 20]).unwrap();
    let dst = small.join("full.bin");
    let out = agent.run(&[
        "cp",
        src.to_str().unwrap(),
        &format!("guest:{}", dst.display()),
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("No space left on device") || err.contains("disk full"),
        "{err}"
    );
    assert!(!dst.exists());
    assert_eq!(
        std::fs::read_dir(&small).unwrap().count(),
        0,
        "a temporary file was left"
    );

    // Ctrl-C halfway through: a slow copy (small chunks, base64) is interrupted once
    // its temporary file exists.
    let big = agent.dir.join("big");
    std::fs::write(&big, vec![1u8; 64 << 20]).unwrap();
    let target = agent.dir.join("landing");
    std::fs::create_dir(&target).unwrap();
    let child = agent
        .cli()
        .args(["cp", "--base64", "--chunk", "65536", big.to_str().unwrap()])
        .arg(format!("guest:{}/big", target.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::read_dir(&target).unwrap().count() == 0 {
        assert!(Instant::now() < deadline, "the copy never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Written where nobody else can open it meanwhile: a new directory only root enters.
    let private = std::fs::read_dir(&target).unwrap().next().unwrap().unwrap();
    assert!(
        private
            .file_name()
            .to_string_lossy()
            .starts_with(".guestlink-"),
        "{private:?}"
    );
    assert_eq!(private.metadata().unwrap().mode() & 0o7777, 0o700);
    std::thread::sleep(Duration::from_millis(200));
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        !out.status.success(),
        "the copy finished before the interruption"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("interrupted"),
        "{out:?}"
    );
    assert_eq!(
        std::fs::read_dir(&target).unwrap().count(),
        0,
        "something was left behind"
    );
    // The agent goes on serving.
    agent.ok(&["ping"]);
}

#[test]
fn packages_are_what_dpkg_says() {
    let agent = Agent::start(&guestlinkd(), "packages", &[]);
    let ours: Vec<serde_json::Value> =
        serde_json::from_str(&agent.ok(&["--json", "packages"])).unwrap();
    let dpkg = Command::new("dpkg-query")
        .args([
            "-W",
            "-f",
            "${db:Status-Abbrev}\t${Package}\t${Version}\t${Architecture}\n",
        ])
        .output()
        .unwrap();
    let mut theirs: Vec<(String, String, String)> = String::from_utf8(dpkg.stdout)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("ii"))
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[1].to_string(), f[2].to_string(), f[3].to_string())
        })
        .collect();
    theirs.sort();
    let mut ours: Vec<(String, String, String)> = ours
        .iter()
        .map(|p| {
            let s = |k: &str| p[k].as_str().unwrap().to_string();
            (s("name"), s("version"), s("arch"))
        })
        .collect();
    ours.sort();
    assert!(theirs.len() > 50, "{}", theirs.len());
    assert_eq!(ours, theirs);
    let table = agent.ok(&["packages"]);
    assert!(table.lines().any(|l| l.starts_with("dpkg ")), "{table}");
}

#[test]
fn qemu_ga_copies_single_files_and_says_what_needs_guestlinkd() {
    if !have_qemu_ga() {
        return;
    }
    let theirs = Agent::start(Path::new(QEMU_GA), "files-qga", &[]);
    let src = theirs.dir.join("one");
    std::fs::write(&src, b"one file").unwrap();
    std::fs::create_dir(theirs.dir.join("into")).unwrap();
    // A destination ending in / is a directory without asking the agent.
    let up = theirs.ok(&[
        "cp",
        src.to_str().unwrap(),
        &format!("guest:{}/into/", theirs.dir.display()),
    ]);
    assert!(up.contains("(verified)"), "{up}");
    assert_eq!(
        std::fs::read(theirs.dir.join("into/one")).unwrap(),
        b"one file"
    );
    for args in [
        vec!["cp", "-r", theirs.dir.to_str().unwrap(), "guest:/tmp/x"],
        vec!["ls", "guest:/"],
        vec!["rm", "guest:/tmp/x"],
        vec!["packages"],
        vec!["sync", theirs.dir.to_str().unwrap(), "guest:/tmp/x"],
        vec!["watch", "guest:/tmp"],
    ] {
        let out = theirs.run(&args);
        assert_eq!(out.status.code(), Some(4), "{args:?} {out:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr)
                .contains("needs guestlinkd in the guest; the agent there is qemu-ga"),
            "{out:?}"
        );
    }
}

#[test]
fn sync_sends_only_what_differs() {
    let agent = Agent::start(&guestlinkd(), "sync", &[]);
    let src = agent.dir.join("src");
    sample_tree(&src);
    let mirror = agent.dir.join("mirror");
    let g = format!("guest:{}", mirror.display());
    let json = |args: &[&str]| -> serde_json::Value {
        let mut all = vec!["--json", "sync"];
        all.extend_from_slice(args);
        serde_json::from_str(agent.ok(&all).lines().last().unwrap()).unwrap()
    };
    let first = json(&[src.to_str().unwrap(), &g]);
    assert_eq!(first["sent"], 4, "{first}");
    assert_eq!(tree(&mirror), tree(&src));
    assert_eq!(
        mtime(&mirror.join("sub/big.bin")),
        mtime(&src.join("sub/big.bin"))
    );
    let again = json(&[src.to_str().unwrap(), &g]);
    assert_eq!(
        (again["sent"].as_u64(), again["unchanged"].as_u64()),
        (Some(0), Some(4)),
        "{again}"
    );

    // A changed file goes; an extra one in the guest stays without --delete.
    std::fs::write(src.join("secret"), b"changed!").unwrap();
    std::fs::write(mirror.join("extra"), b"x").unwrap();
    let dry = agent.ok(&["sync", "--dry-run", "--delete", src.to_str().unwrap(), &g]);
    assert!(
        dry.contains("send   secret") && dry.contains("delete extra"),
        "{dry}"
    );
    assert_eq!(
        std::fs::read(mirror.join("secret")).unwrap(),
        b"only me",
        "a dry run changed something"
    );
    let plain = json(&[src.to_str().unwrap(), &g]);
    assert_eq!(
        (plain["sent"].as_u64(), plain["deleted"].as_u64()),
        (Some(1), Some(0)),
        "{plain}"
    );
    assert!(mirror.join("extra").exists());
    json(&["--delete", src.to_str().unwrap(), &g]);
    assert!(!mirror.join("extra").exists());
    assert_eq!(tree(&mirror), tree(&src));

    // Same size and time, other content: only --checksum sees it.
    let f = mirror.join("sub/big.bin");
    let before = std::fs::metadata(&f).unwrap().modified().unwrap();
    let mut data = std::fs::read(&f).unwrap();
    data[1000] ^= 0xff;
    std::fs::write(&f, &data).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&f)
        .unwrap()
        .set_modified(before)
        .unwrap();
    assert_eq!(json(&[src.to_str().unwrap(), &g])["sent"], 0);
    assert_eq!(json(&["--checksum", src.to_str().unwrap(), &g])["sent"], 1);
    assert_eq!(
        std::fs::read(&f).unwrap(),
        std::fs::read(src.join("sub/big.bin")).unwrap()
    );

    // And from the guest into a directory that does not exist yet.
    let back = agent.dir.join("back");
    let down = json(&[&g, back.to_str().unwrap()]);
    assert_eq!(down["sent"], 4, "{down}");
    assert_eq!(tree(&back), tree(&src));
    assert_eq!(json(&[&g, back.to_str().unwrap()])["sent"], 0);
}

#[test]
fn watch_reports_changes_until_the_path_goes() {
    use std::io::{BufRead, BufReader};
    let agent = Agent::start(&guestlinkd(), "watch", &[]);
    let dir = agent.dir.join("watched");
    std::fs::create_dir(&dir).unwrap();
    let mut child = agent
        .cli()
        .args(["--json", "watch", "-r"])
        .arg(format!("guest:{}", dir.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert!(line.starts_with("watching guest:"), "{line}");
    std::fs::create_dir(dir.join("sub")).unwrap();
    // The new directory is watched too (recursive), once its creation is seen.
    std::thread::sleep(Duration::from_millis(300));
    std::fs::write(dir.join("sub/file"), b"x").unwrap();
    std::fs::rename(dir.join("sub/file"), dir.join("moved")).unwrap();
    std::fs::remove_file(dir.join("moved")).unwrap();
    std::fs::remove_dir(dir.join("sub")).unwrap();
    std::fs::remove_dir(&dir).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let seen: Vec<(String, String)> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let rel = v["path"]
                .as_str()
                .unwrap()
                .trim_start_matches(dir.to_str().unwrap())
                .to_string();
            (v["change"].as_str().unwrap().to_string(), rel)
        })
        .collect();
    let want: Vec<(String, String)> = [
        ("created", "/sub"),
        ("created", "/sub/file"),
        ("modified", "/sub/file"),
        ("moved-from", "/sub/file"),
        ("moved-to", "/moved"),
        ("deleted", "/moved"),
        ("deleted", "/sub"),
        ("deleted", ""),
        ("ended", ""),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(seen, want);
    // Without a subscription there is nothing to report to.
    let out = agent.run(&[
        "call",
        "__org.guestlink_path-watch",
        "-a",
        r#"{"path":"/tmp"}"#,
    ]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("subscribe to PATH_CHANGED"),
        "{out:?}"
    );
}
