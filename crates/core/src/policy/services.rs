//! The services scope: which system units `__org.guestlink_service-control` may start,
//! stop, restart, enable or disable, from a policy file's `[services]` table.
//!
//! ```toml
//! [services]
//! units = ["nginx.service", "app-*.service", "backup.timer"]
//! ```
//!
//! Listing units and reading one's status need no entry. Without a `[services]` table
//! no unit may be acted on; `units = ["*"]` allows every unit. Patterns are globs
//! (`*` for any run of characters) compared with the unit's full name, `.service`
//! added as systemctl adds it. A later file's list replaces an earlier one.

use super::Pattern;

/// The units that may be acted on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceScope {
    /// Patterns of the units; none when `None`.
    pub units: Option<Vec<String>>,
}

impl ServiceScope {
    /// Whether `unit` (a full unit name) may be acted on.
    pub fn check(&self, unit: &str) -> Result<(), String> {
        match &self.units {
            Some(l) if l.iter().any(|p| Pattern::new(p).matches(unit)) => Ok(()),
            Some(l) => Err(format!(
                "unit '{unit}' is not allowed by the policy ([services] units = {l:?})"
            )),
            None => Err(format!(
                "unit '{unit}' is not allowed by the policy (no [services] units are listed)"
            )),
        }
    }
}

/// A unit name as systemctl takes it: `.service` added to a name without a unit type
/// suffix; names systemd would refuse are refused here.
pub fn unit_name(name: &str) -> Result<String, String> {
    const TYPES: [&str; 11] = [
        "service",
        "socket",
        "target",
        "timer",
        "mount",
        "automount",
        "swap",
        "path",
        "slice",
        "scope",
        "device",
    ];
    let valid = !name.is_empty()
        && name.len() <= 250
        && !name.starts_with(['.', '-'])
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b":-_.\\@".contains(&b));
    if !valid {
        return Err(format!("invalid unit name '{name}'"));
    }
    let typed = name
        .rsplit_once('.')
        .is_some_and(|(stem, t)| !stem.is_empty() && TYPES.contains(&t));
    Ok(if typed {
        name.to_string()
    } else {
        format!("{name}.service")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_get_a_type_and_bad_ones_are_refused() {
        assert_eq!(unit_name("ssh").unwrap(), "ssh.service");
        assert_eq!(unit_name("backup.timer").unwrap(), "backup.timer");
        assert_eq!(unit_name("getty@tty1").unwrap(), "getty@tty1.service");
        assert_eq!(unit_name("a.b").unwrap(), "a.b.service");
        for bad in ["", "../x", "a/b", "x y", "-x", ".service", "a\nb"] {
            let e = unit_name(bad).unwrap_err();
            assert!(e.starts_with("invalid unit name"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn only_listed_units_may_be_acted_on() {
        let none = ServiceScope::default();
        assert!(none
            .check("ssh.service")
            .unwrap_err()
            .contains("no [services]"));
        let some = ServiceScope {
            units: Some(vec!["nginx.service".into(), "app-*.service".into()]),
        };
        assert!(some.check("nginx.service").is_ok());
        assert!(some.check("app-web.service").is_ok());
        let e = some.check("ssh.service").unwrap_err();
        assert!(e.contains("'ssh.service' is not allowed"), "{e}");
        assert!(some.check("app-web.timer").is_err());
        let all = ServiceScope {
            units: Some(vec!["*".into()]),
        };
        assert!(all.check("anything.socket").is_ok());
    }
}
