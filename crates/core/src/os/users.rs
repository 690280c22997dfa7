//! The user database as the guest's NSS sees it, for every lookup the agent makes
//! (exec as a user, SSH keys, file drops, policy rules naming users, sessions).
//!
//! A dynamically linked build asks the C library (getpwnam(3), getgrouplist(3)), which
//! loads the guest's NSS modules: LDAP and SSSD users resolve as they do for `id`. A
//! static build cannot load them safely (glibc's NSS modules must come from the libc
//! it was linked with), so it asks the guest's own `getent`, which is dynamic and uses
//! the guest's NSS, and reads /etc/passwd and /etc/group itself only where there is no
//! `getent`. [`Source`] names the three ways; the functions pick one by how the binary
//! was linked.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// One account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserEntry {
    /// Login name.
    pub name: String,
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Home directory.
    pub home: PathBuf,
    /// Login shell (empty when the database gives none).
    pub shell: PathBuf,
}

/// Where accounts are looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The C library's NSS (dynamic builds).
    Libc,
    /// The `getent` program at this path, with the files as a fallback when it cannot
    /// be run (static builds).
    Getent(PathBuf),
    /// The passwd and group files alone.
    Files {
        /// /etc/passwd.
        passwd: PathBuf,
        /// /etc/group.
        group: PathBuf,
    },
}

impl Source {
    /// The source for this build: the C library, or `getent` when statically linked.
    pub fn native() -> Self {
        if cfg!(target_feature = "crt-static") {
            Source::Getent(PathBuf::from("getent"))
        } else {
            Source::Libc
        }
    }

    fn files() -> Self {
        Source::Files {
            passwd: PathBuf::from("/etc/passwd"),
            group: PathBuf::from("/etc/group"),
        }
    }
}

/// A key to look up: a name or a uid.
enum Key<'a> {
    Name(&'a str),
    Uid(u32),
}

/// The account named `name`; `Ok(None)` when there is none, `Err(errno)` when the
/// database cannot be read.
pub fn by_name(name: &str) -> Result<Option<UserEntry>, i32> {
    lookup(&Source::native(), Key::Name(name))
}

/// The account with uid `uid`.
pub fn by_uid(uid: u32) -> Result<Option<UserEntry>, i32> {
    lookup(&Source::native(), Key::Uid(uid))
}

/// The groups of account `name` whose primary group is `gid` (that one first).
pub fn groups(name: &str, gid: u32) -> Vec<u32> {
    groups_from(&Source::native(), name, gid)
}

/// The id of the group named `name`; `Ok(None)` when there is none.
pub fn group_id(name: &str) -> Result<Option<u32>, i32> {
    group_id_from(&Source::native(), name)
}

/// [`group_id`] from a given source.
pub fn group_id_from(source: &Source, name: &str) -> Result<Option<u32>, i32> {
    if name.is_empty() || name.contains([':', '\n', '\0']) || name.starts_with('-') {
        return Ok(None);
    }
    // `name:password:gid:members`
    let gid_of = |text: &str| {
        text.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 3 && f[0] == name)
                .then(|| f[2].parse().ok())
                .flatten()
        })
    };
    match source {
        Source::Libc => nix::unistd::Group::from_name(name)
            .map(|g| g.map(|g| g.gid.as_raw()))
            .map_err(|e| e as i32),
        Source::Getent(getent) => match run(getent, &["group", name]) {
            Some(Ok(out)) => Ok(gid_of(&out)),
            Some(Err(code)) => Err(code),
            None => group_id_from(&Source::files(), name),
        },
        Source::Files { group, .. } => Ok(gid_of(&read(group)?)),
    }
}

/// [`by_name`] from a given source.
pub fn by_name_from(source: &Source, name: &str) -> Result<Option<UserEntry>, i32> {
    lookup(source, Key::Name(name))
}

/// [`by_uid`] from a given source.
pub fn by_uid_from(source: &Source, uid: u32) -> Result<Option<UserEntry>, i32> {
    lookup(source, Key::Uid(uid))
}

fn lookup(source: &Source, key: Key<'_>) -> Result<Option<UserEntry>, i32> {
    if let Key::Name(n) = key {
        // Not a name any database holds, and not something to pass to a program.
        if n.is_empty() || n.contains([':', '\n', '\0']) || n.starts_with('-') {
            return Ok(None);
        }
    }
    match source {
        Source::Libc => {
            let found = match key {
                Key::Name(n) => nix::unistd::User::from_name(n),
                Key::Uid(u) => nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(u)),
            };
            found
                .map(|u| {
                    u.map(|u| UserEntry {
                        name: u.name,
                        uid: u.uid.as_raw(),
                        gid: u.gid.as_raw(),
                        home: u.dir,
                        shell: u.shell,
                    })
                })
                .map_err(|e| e as i32)
        }
        Source::Getent(getent) => {
            let arg = match key {
                Key::Name(n) => n.to_owned(),
                Key::Uid(u) => u.to_string(),
            };
            match run(getent, &["passwd", &arg]) {
                Some(Ok(out)) => Ok(out.lines().find_map(parse_passwd)),
                Some(Err(code)) => Err(code),
                None => lookup(&Source::files(), key),
            }
        }
        Source::Files { passwd, .. } => {
            let text = read(passwd)?;
            Ok(text.lines().filter_map(parse_passwd).find(|u| match key {
                Key::Name(n) => u.name == n,
                Key::Uid(id) => u.uid == id,
            }))
        }
    }
}

fn groups_from(source: &Source, name: &str, gid: u32) -> Vec<u32> {
    let mut all = vec![gid];
    let more: Vec<u32> = match source {
        Source::Libc => std::ffi::CString::new(name)
            .ok()
            .and_then(|c| nix::unistd::getgrouplist(&c, nix::unistd::Gid::from_raw(gid)).ok())
            .map(|g| g.iter().map(|g| g.as_raw()).collect())
            .unwrap_or_default(),
        Source::Getent(getent) => match run(getent, &["initgroups", name]) {
            // "name  gid gid ..."
            Some(Ok(out)) => out
                .split_whitespace()
                .skip(1)
                .filter_map(|g| g.parse().ok())
                .collect(),
            Some(Err(_)) => Vec::new(),
            None => return groups_from(&Source::files(), name, gid),
        },
        Source::Files { group, .. } => read(group)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                let members = f.get(3)?;
                members
                    .split(',')
                    .any(|m| m == name)
                    .then(|| f.get(2)?.parse().ok())
                    .flatten()
            })
            .collect(),
    };
    for g in more {
        if !all.contains(&g) {
            all.push(g);
        }
    }
    all
}

/// Runs `getent`: its output (empty when the key is unknown, exit 2), `Err(errno)` for
/// another failure, `None` when it cannot be run at all.
fn run(getent: &Path, args: &[&str]) -> Option<Result<String, i32>> {
    let out = Command::new(getent)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    match out.status.code() {
        Some(0) => Some(Ok(String::from_utf8_lossy(&out.stdout).into_owned())),
        Some(2) => Some(Ok(String::new())),
        _ => Some(Err(libc::EIO)),
    }
}

fn read(path: &Path) -> Result<String, i32> {
    std::fs::read_to_string(path).map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))
}

/// One passwd line: `name:password:uid:gid:gecos:home:shell`.
fn parse_passwd(line: &str) -> Option<UserEntry> {
    let f: Vec<&str> = line.split(':').collect();
    if f.len() < 7 || f[0].is_empty() || f[0].starts_with(['+', '-', '#']) {
        return None;
    }
    Some(UserEntry {
        name: f[0].to_owned(),
        uid: f[2].parse().ok()?,
        gid: f[3].parse().ok()?,
        home: PathBuf::from(f[5]),
        shell: PathBuf::from(f[6]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> u32 {
        nix::unistd::getuid().as_raw()
    }

    #[test]
    fn getent_agrees_with_the_c_library() {
        let getent = Source::Getent(PathBuf::from("getent"));
        for uid in [0, me()] {
            let libc = by_uid_from(&Source::Libc, uid).unwrap().unwrap();
            assert_eq!(by_uid_from(&getent, uid).unwrap().as_ref(), Some(&libc));
            assert_eq!(
                by_name_from(&getent, &libc.name).unwrap().as_ref(),
                Some(&libc)
            );
            assert_eq!(
                groups_from(&getent, &libc.name, libc.gid),
                groups_from(&Source::Libc, &libc.name, libc.gid)
            );
        }
        let root_group = nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(0))
            .unwrap()
            .unwrap()
            .name;
        for source in [&getent, &Source::files(), &Source::Libc] {
            assert_eq!(group_id_from(source, &root_group).unwrap(), Some(0));
            assert_eq!(
                group_id_from(source, "no-such-group-guestlink").unwrap(),
                None
            );
        }
        assert_eq!(
            by_name_from(&getent, "no-such-user-guestlink").unwrap(),
            None
        );
        assert_eq!(by_uid_from(&getent, 3_999_999_999).unwrap(), None);
    }

    #[test]
    fn getent_answers_what_the_files_do_not_hold() {
        // A getent that knows a directory user (as with LDAP or SSSD).
        let dir = std::env::temp_dir().join(format!("guestlink-getent-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = dir.join("getent");
        let body = "#!/bin/sh\ncase \"$1 $2\" in\n\
             'passwd ldapuser'|'passwd 70001') echo 'ldapuser:*:70001:70000:LDAP:/home/ldapuser:/bin/bash' ;;\n\
             'initgroups ldapuser') echo 'ldapuser              70000 70002' ;;\n\
             *) exit 2 ;;\nesac\n";
        // Written by a child process: were this process to hold it open for writing,
        // another test's fork could inherit that until its exec, and running the
        // script would fail with ETXTBSY meanwhile.
        let mut sh = std::process::Command::new("sh")
            .args(["-c", "cat > \"$0\" && chmod 755 \"$0\""])
            .arg(&script)
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut sh.stdin.take().unwrap(), body.as_bytes()).unwrap();
        assert!(sh.wait().unwrap().success());
        let s = Source::Getent(script);
        let u = by_name_from(&s, "ldapuser").unwrap().unwrap();
        assert_eq!((u.uid, u.gid), (70001, 70000));
        assert_eq!(u.home, PathBuf::from("/home/ldapuser"));
        assert_eq!(u.shell, PathBuf::from("/bin/bash"));
        assert_eq!(by_uid_from(&s, 70001).unwrap().unwrap().name, "ldapuser");
        assert_eq!(groups_from(&s, "ldapuser", 70000), vec![70000, 70002]);
        assert_eq!(by_name_from(&s, "nobody-here").unwrap(), None);
        // Names that are not names never reach the program.
        for bad in ["", "-x", "a:b", "a\nb"] {
            assert_eq!(by_name_from(&s, bad).unwrap(), None, "{bad:?}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn without_getent_the_files_are_read() {
        let dir = std::env::temp_dir().join(format!("guestlink-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let passwd = dir.join("passwd");
        let group = dir.join("group");
        std::fs::write(
            &passwd,
            "root:x:0:0:root:/root:/bin/sh\n+nis\nbroken\nalice:x:1000:1000::/home/alice:\n",
        )
        .unwrap();
        std::fs::write(
            &group,
            "alice:x:1000:\nwheel:x:10:root,alice\nusers:x:100:bob\n",
        )
        .unwrap();
        let s = Source::Files { passwd, group };
        let a = by_name_from(&s, "alice").unwrap().unwrap();
        assert_eq!(
            (a.uid, a.gid, a.shell.as_os_str().is_empty()),
            (1000, 1000, true)
        );
        assert_eq!(by_uid_from(&s, 0).unwrap().unwrap().name, "root");
        assert_eq!(by_name_from(&s, "nis").unwrap(), None);
        assert_eq!(groups_from(&s, "alice", 1000), vec![1000, 10]);
        // A missing getent falls back to the system's files.
        let missing = Source::Getent(dir.join("no-getent"));
        assert_eq!(by_uid_from(&missing, 0).unwrap().unwrap().uid, 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
