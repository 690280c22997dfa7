//! Installed packages, for `__org.guestlink_get-packages` and oVirt's `applications`
//! report: dpkg's status database read directly, and rpm's through `rpm -q`, where rpm
//! is the package manager.

use std::io;
use std::path::Path;
use std::process::Command;

use guestlink_vocabulary::types::GuestlinkPackage;

/// Where dpkg keeps what is installed.
pub const DPKG_STATUS: &str = "/var/lib/dpkg/status";

/// Calls `f` with each installed package of a dpkg status file, in its order (the
/// `Status` ends in `installed`; half-installed and config-files stanzas are not), read a
/// line at a time:
/// the database is about 1 MB on a desktop, and the agent reads it at every oVirt
/// inventory, so it is never held whole (a buffer that size would stay in the
/// allocator's arena of the thread that read it).
pub fn each_dpkg_package(
    mut r: impl io::BufRead,
    mut f: impl FnMut(GuestlinkPackage),
) -> io::Result<()> {
    let (mut name, mut version, mut arch) = (String::new(), String::new(), String::new());
    let mut installed = false;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = r.read_until(b'\n', &mut line)?;
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\n', '\r']);
        if n == 0 || text.is_empty() {
            // The end of a stanza: the next one starts empty.
            let p = GuestlinkPackage {
                name: std::mem::take(&mut name),
                version: std::mem::take(&mut version),
                arch: std::mem::take(&mut arch),
            };
            if std::mem::take(&mut installed) && !p.name.is_empty() && !p.version.is_empty() {
                f(p);
            }
            if n == 0 {
                return Ok(());
            }
            continue;
        }
        // Continuation lines (a description's) start with white space.
        let Some((key, value)) = text.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key {
            "Package" => name = value.to_string(),
            "Version" => version = value.to_string(),
            "Architecture" => arch = value.to_string(),
            "Status" => installed = value.ends_with(" installed"),
            _ => {}
        }
    }
}

/// The installed packages of dpkg's database, read a line at a time.
fn dpkg_database(f: impl FnMut(GuestlinkPackage)) -> io::Result<()> {
    let file = std::fs::File::open(DPKG_STATUS)?;
    each_dpkg_package(io::BufReader::new(file), f)
}

/// The installed packages among some names, as `name-version`, in the order of the
/// names.
struct Found<'a> {
    names: &'a [String],
    found: Vec<(usize, String)>,
}

impl<'a> Found<'a> {
    fn new(names: &'a [String]) -> Self {
        Found {
            names,
            found: Vec::new(),
        }
    }

    fn add(&mut self, p: GuestlinkPackage) {
        if let Some(i) = self.names.iter().position(|n| *n == p.name) {
            self.found.push((i, format!("{}-{}", p.name, p.version)));
        }
    }

    fn into_list(mut self) -> Vec<String> {
        self.found.sort();
        self.found.dedup();
        self.found.into_iter().map(|(_, s)| s).collect()
    }
}

/// rpm's query format for [`rpm_packages`]: name, `[epoch:]version-release`, arch.
const RPM_FORMAT: &str = "%{NAME}\\t%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\\t%{ARCH}\\n";

/// The packages of `rpm -qa --qf RPM_FORMAT` output.
pub fn rpm_packages(text: &str) -> Vec<GuestlinkPackage> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split('\t');
            let (name, version, arch) = (f.next()?, f.next()?, f.next()?);
            Some(GuestlinkPackage {
                name: name.to_string(),
                version: version.to_string(),
                // rpm prints "(none)" for gpg-pubkey pseudo-packages.
                arch: if arch == "(none)" {
                    String::new()
                } else {
                    arch.to_string()
                },
            })
        })
        .collect()
}

/// Every installed package, sorted by name (then architecture): dpkg's database when
/// there is one, else rpm's.
pub fn all() -> io::Result<Vec<GuestlinkPackage>> {
    let mut list = if Path::new(DPKG_STATUS).exists() {
        let mut list = Vec::new();
        dpkg_database(|p| list.push(p))?;
        list
    } else {
        let out = Command::new("rpm")
            .args(["-qa", "--qf", RPM_FORMAT])
            .output()?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "rpm -qa failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        rpm_packages(&String::from_utf8_lossy(&out.stdout))
    };
    list.sort_by(|a, b| (&a.name, &a.arch).cmp(&(&b.name, &b.arch)));
    Ok(list)
}

/// The installed packages among `names`: dpkg's database when there is one, else rpm.
pub fn installed(names: &[String]) -> io::Result<Vec<String>> {
    let names: Vec<String> = names
        .iter()
        .filter(|n| !n.is_empty() && !n.starts_with('-') && !n.contains(char::is_whitespace))
        .cloned()
        .collect();
    if names.is_empty() {
        return Ok(Vec::new());
    }
    if Path::new(DPKG_STATUS).exists() {
        let mut found = Found::new(&names);
        dpkg_database(|p| found.add(p))?;
        return Ok(found.into_list());
    }
    let out = Command::new("rpm")
        .args(["-q", "--qf", "%{NAME}-%{VERSION}-%{RELEASE}\\n"])
        .args(&names)
        .output()?;
    // rpm exits non-zero when some package is missing; its lines say so.
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.contains(" is not installed"))
        .map(String::from)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dpkg_packages(text: &str) -> Vec<GuestlinkPackage> {
        let mut out = Vec::new();
        each_dpkg_package(text.as_bytes(), |p| out.push(p)).unwrap();
        out
    }

    fn from_dpkg_status(text: &str, names: &[String]) -> Vec<String> {
        let mut found = Found::new(names);
        each_dpkg_package(text.as_bytes(), |p| found.add(p)).unwrap();
        found.into_list()
    }

    #[test]
    fn dpkg_status() {
        let text = "Package: bash\nStatus: install ok installed\nVersion: 5.2.15-2+b2\n\n\
                    Package: gone\nStatus: deinstall ok config-files\nVersion: 1\n\n\
                    Package: qemu-guest-agent\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1:7.2+dfsg-7\n";
        let names: Vec<String> = ["qemu-guest-agent", "gone", "bash", "absent"]
            .map(String::from)
            .into();
        assert_eq!(
            from_dpkg_status(text, &names),
            ["qemu-guest-agent-1:7.2+dfsg-7", "bash-5.2.15-2+b2"]
        );
    }

    #[test]
    fn stanzas_read_a_line_at_a_time() {
        // A description's continuation line that looks like a field, bytes that are not
        // UTF-8, several blank lines, and a last stanza without a final newline.
        let text = b"Package: vim\nStatus: install ok installed\nVersion: 9.0\nDescription: x\n Package: fake\n Version: 0\n\n\n\
                     Package: caf\xe9\nStatus: install ok installed\nVersion: 1\n\n\
                     Package: last\nVersion: 2\nStatus: install ok installed";
        let mut got = Vec::new();
        each_dpkg_package(&text[..], |p| got.push((p.name, p.version))).unwrap();
        assert_eq!(
            got,
            [
                ("vim".to_string(), "9.0".to_string()),
                ("caf\u{fffd}".to_string(), "1".to_string()),
                ("last".to_string(), "2".to_string())
            ]
        );
    }

    #[test]
    fn every_package() {
        let text = "Package: bash\nStatus: install ok installed\nArchitecture: amd64\nVersion: 5.2\n\n\
                    Package: gone\nStatus: deinstall ok config-files\nVersion: 1\n\n\
                    Package: libc6\nStatus: install ok installed\nArchitecture: i386\nMulti-Arch: same\nVersion: 2.36\n";
        let got = dpkg_packages(text);
        assert_eq!(got.len(), 2);
        assert_eq!(
            (
                got[1].name.as_str(),
                got[1].version.as_str(),
                got[1].arch.as_str()
            ),
            ("libc6", "2.36", "i386")
        );
        let rpm = rpm_packages("bash\t5.2.15-3.el9\tx86_64\nkernel\t1:6.1-1\tx86_64\ngpg-pubkey\tabc-def\t(none)\nbroken\n");
        assert_eq!(rpm.len(), 3);
        assert_eq!(rpm[1].version, "1:6.1-1");
        assert_eq!(rpm[2].arch, "");
    }

    #[test]
    fn this_machine_has_dpkg() {
        if Path::new(DPKG_STATUS).exists() {
            let got = installed(&["dpkg".to_string(), "no-such-package-x".to_string()]).unwrap();
            assert_eq!(got.len(), 1);
            assert!(got[0].starts_with("dpkg-"), "{got:?}");
        }
    }
}
