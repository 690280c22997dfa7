//! Installed packages, for oVirt's `applications` report: dpkg's status database read
//! directly, and `rpm -q` where rpm is the package manager.

use std::io;
use std::path::Path;
use std::process::Command;

/// Where dpkg keeps what is installed.
pub const DPKG_STATUS: &str = "/var/lib/dpkg/status";

/// The installed packages among `names` in a dpkg status file, as `name-version`, in
/// the order of `names`.
pub fn from_dpkg_status(text: &str, names: &[String]) -> Vec<String> {
    let mut found: Vec<(usize, String)> = Vec::new();
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
        if let Some(i) = names.iter().position(|n| n == name) {
            found.push((i, format!("{name}-{version}")));
        }
    }
    found.sort();
    found.dedup();
    found.into_iter().map(|(_, s)| s).collect()
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
    fn this_machine_has_dpkg() {
        if Path::new(DPKG_STATUS).exists() {
            let got = installed(&["dpkg".to_string(), "no-such-package-x".to_string()]).unwrap();
            assert_eq!(got.len(), 1);
            assert!(got[0].starts_with("dpkg-"), "{got:?}");
        }
    }
}
