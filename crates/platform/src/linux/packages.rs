//! Installed packages, for `__org.guestlink_get-packages` and oVirt's `applications`
//! report: dpkg's status database read directly, and rpm's through `rpm -q`, where rpm
//! is the package manager.

use std::io;
use std::path::Path;
use std::process::Command;

use guestlink_vocabulary::types::GuestlinkPackage;

/// Where dpkg keeps what is installed.
pub const DPKG_STATUS: &str = "/var/lib/dpkg/status";

/// The installed packages of a dpkg status file, in its order (the `Status` ends in
/// `installed`; half-installed and config-files stanzas are not).
pub fn dpkg_packages(text: &str) -> Vec<GuestlinkPackage> {
    let mut out = Vec::new();
    for stanza in text.split("\n\n") {
        let field = |key: &str| {
            stanza
                .lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
                .map(str::trim)
        };
        let (Some(name), Some(version)) = (field("Package"), field("Version")) else {
            continue;
        };
        if !field("Status").is_some_and(|s| s.ends_with(" installed")) {
            continue;
        }
        out.push(GuestlinkPackage {
            name: name.to_string(),
            version: version.to_string(),
            arch: field("Architecture").unwrap_or_default().to_string(),
        });
    }
    out
}

/// The installed packages among `names` in a dpkg status file, as `name-version`, in
/// the order of `names`.
pub fn from_dpkg_status(text: &str, names: &[String]) -> Vec<String> {
    let mut found: Vec<(usize, String)> = dpkg_packages(text)
        .into_iter()
        .filter_map(|p| {
            let i = names.iter().position(|n| *n == p.name)?;
            Some((i, format!("{}-{}", p.name, p.version)))
        })
        .collect();
    found.sort();
    found.dedup();
    found.into_iter().map(|(_, s)| s).collect()
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
        dpkg_packages(&std::fs::read_to_string(DPKG_STATUS)?)
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
        return Ok(from_dpkg_status(
            &std::fs::read_to_string(DPKG_STATUS)?,
            &names,
        ));
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
