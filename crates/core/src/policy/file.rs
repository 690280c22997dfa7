//! Policy files: TOML, one `[[rule]]` table per rule, read from drop-in directories
//! (`/usr/lib/guestlink/policy.d` then `/etc/guestlink/policy.d` by default; a file in
//! `/etc` replaces the vendor's file of the same name, a link to `/dev/null` masks it;
//! files are applied in name order, so a later one overrides an earlier one).
//!
//! ```toml
//! [[rule]]
//! deny = ["guest-exec", "guest-file-*"]   # or allow = [...]; `*` globs; action:NAME
//! except = ["guest-file-close"]           # optional
//! channels = ["vdagent", "ovirt"]         # protocols or channel names (optional)
//! users = [1000, "alice"]                 # guest-socket callers (optional)
//! sessions = ["active"]                   # the caller's session: "active" or ids
//! when = ["no-active-session"]            # active-session, session-locked
//! reason = "no-exec-from-desktop"         # logged when it denies; FILE:LINE if absent
//!
//! [files]                                 # optional: where guest-file-open reaches
//! read = ["/var/log"]                     # (see `paths`); a later file's list
//! write = ["/var/lib/guestlink/inbox"]    # replaces an earlier one's
//! ```
//!
//! A file is checked whole before any of it is used; an error names the file and line.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use super::paths::FileScope;
use super::{Effect, Pattern, Rule, SessionMatch, State};
use crate::call::Protocol;

/// A policy file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct PolicyError {
    /// The file.
    pub file: String,
    /// The line (1-based; 0 when the whole file is meant).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct LiveToml {
    users: Option<Vec<String>>,
    forward_to: Option<Vec<String>>,
    forward_listen: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ServicesToml {
    units: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FilesToml {
    read: Option<Vec<String>>,
    write: Option<Vec<String>>,
}

/// What the policy files say: the rules in order, and the file scope if one is set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyFiles {
    /// The rules, in order.
    pub rules: Vec<Rule>,
    /// Where `guest-file-open` may reach; everywhere when `None`.
    pub files: Option<FileScope>,
    /// The `[live]` table: users and forward destinations.
    pub live: crate::policy::live::LiveScope,
    /// The `[services]` table: the units that may be acted on.
    pub services: crate::policy::services::ServiceScope,
}

/// Absolute paths, without `..`.
fn scope_paths(list: Vec<String>) -> Result<Vec<PathBuf>, String> {
    list.into_iter()
        .map(|p| {
            let path = PathBuf::from(&p);
            let dotdot = path
                .components()
                .any(|c| c == std::path::Component::ParentDir);
            if path.is_absolute() && !dotdot {
                Ok(path)
            } else {
                Err(format!(
                    "'{p}' in [files] is not an absolute path without '..'"
                ))
            }
        })
        .collect()
}

#[derive(Deserialize)]
#[serde(untagged)]
enum UserRef {
    Id(u32),
    Name(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleToml {
    allow: Option<Vec<String>>,
    deny: Option<Vec<String>>,
    #[serde(default)]
    except: Vec<String>,
    channels: Option<Vec<String>>,
    users: Option<Vec<UserRef>>,
    sessions: Option<Vec<String>>,
    when: Option<Vec<String>>,
    reason: Option<String>,
}

/// The default directories, vendor first: `/usr/lib/guestlink/policy.d` and
/// `/etc/guestlink/policy.d`; on Windows `%ProgramFiles%\guestlink\policy.d` and
/// `%ProgramData%\guestlink\policy.d`.
pub fn default_dirs() -> Vec<std::path::PathBuf> {
    crate::os::drop_in_dirs("policy.d")
}

/// How names in a file are checked.
pub struct Names<'a> {
    /// Every command there is.
    pub commands: &'a [&'a str],
    /// A user name to its uid.
    pub user: &'a dyn Fn(&str) -> Option<u32>,
}

impl std::fmt::Debug for Names<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Names")
            .field("commands", &self.commands.len())
            .finish_non_exhaustive()
    }
}

/// Whether `p` is a pattern the file may use: one that matches a command, or an
/// action (`action:NAME`, globs allowed).
fn check_pattern(p: &str, names: &Names<'_>) -> Result<Pattern, String> {
    if let Some(action) = p.strip_prefix("action:") {
        let ok = !action.is_empty()
            && action
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.*".contains(&b));
        return if ok {
            Ok(Pattern::new(p))
        } else {
            Err(format!("'{p}' is not an action name"))
        };
    }
    let pattern = Pattern::new(p);
    if names.commands.iter().any(|c| pattern.matches(c)) {
        Ok(pattern)
    } else {
        Err(format!("'{p}' matches no command"))
    }
}

fn check_channel(c: &str) -> Result<String, String> {
    if Protocol::parse(c).is_some() || c.contains('/') || c.contains('.') {
        Ok(c.to_string())
    } else {
        Err(format!(
            "unknown channel '{c}' (expected qga, vdagent, ovirt, guest-socket, or a channel's port name or path)"
        ))
    }
}

fn rule(r: RuleToml, origin: String, names: &Names<'_>) -> Result<Rule, String> {
    let (effect, commands) = match (r.allow, r.deny) {
        (Some(a), None) => (Effect::Allow, a),
        (None, Some(d)) => (Effect::Deny, d),
        _ => return Err("a rule needs exactly one of 'allow' and 'deny'".into()),
    };
    if commands.is_empty() {
        return Err("a rule needs at least one command".into());
    }
    let patterns = |list: &[String]| -> Result<Vec<Pattern>, String> {
        list.iter().map(|p| check_pattern(p, names)).collect()
    };
    let users = match r.users {
        None => None,
        Some(list) => Some(
            list.into_iter()
                .map(|u| match u {
                    UserRef::Id(id) => Ok(id),
                    UserRef::Name(n) => (names.user)(&n).ok_or(format!("no user '{n}'")),
                })
                .collect::<Result<Vec<u32>, String>>()?,
        ),
    };
    let sessions = r.sessions.map(|list| {
        list.into_iter()
            .map(|s| match s.as_str() {
                "active" => SessionMatch::Active,
                _ => SessionMatch::Id(s),
            })
            .collect()
    });
    let states = match r.when {
        None => None,
        Some(list) => Some(
            list.iter()
                .map(|s| {
                    State::parse(s).ok_or(format!(
                        "unknown state '{s}' (expected active-session, no-active-session or session-locked)"
                    ))
                })
                .collect::<Result<Vec<State>, String>>()?,
        ),
    };
    let channels = match r.channels {
        None => None,
        Some(list) => Some(
            list.iter()
                .map(|c| check_channel(c))
                .collect::<Result<_, _>>()?,
        ),
    };
    Ok(Rule {
        effect,
        commands: patterns(&commands)?,
        except: patterns(&r.except)?,
        channels,
        users,
        sessions,
        states,
        reason: Arc::from(r.reason.unwrap_or_else(|| origin.clone())),
        origin,
    })
}

/// The rules of one file's `text`; `file` names it in errors and origins.
pub fn parse(file: &str, text: &str, names: &Names<'_>) -> Result<Vec<Rule>, PolicyError> {
    let mut out = PolicyFiles::default();
    parse_into(&mut out, file, text, names)?;
    Ok(out.rules)
}

/// A table as `T`; an error's line is the key it names, else the table's.
fn from_table<T: serde::de::DeserializeOwned>(
    t: &super::toml::Table,
) -> Result<T, (usize, String)> {
    serde_json::from_value(t.object()).map_err(|e| {
        let message = e.to_string();
        let line = message
            .split('`')
            .nth(1)
            .filter(|_| message.starts_with("unknown field"))
            .map_or(t.line, |key| t.line_of(key));
        (line, message)
    })
}

/// Adds one file's rules to `out`, and its `[files]` lists in place of earlier ones.
fn parse_into(
    out: &mut PolicyFiles,
    file: &str,
    text: &str,
    names: &Names<'_>,
) -> Result<(), PolicyError> {
    let err = |line: usize, message: String| PolicyError {
        file: file.to_string(),
        line,
        message,
    };
    let tables = super::toml::parse(text).map_err(|e| err(e.line, e.message))?;
    let mut live = None;
    for t in &tables {
        match (t.name.as_str(), t.array) {
            ("", _) => {
                if let Some((key, line, _)) = t.keys.first() {
                    return Err(err(
                        *line,
                        format!(
                            "unknown field `{key}`, expected `rule`, `files`, `live` or `services`"
                        ),
                    ));
                }
            }
            ("rule", true) => {
                let origin = format!("{file}:{}", t.line);
                let r: RuleToml = from_table(t).map_err(|(l, m)| err(l, m))?;
                out.rules
                    .push(rule(r, origin, names).map_err(|m| err(t.line, m))?);
            }
            ("files", false) => {
                let files: FilesToml = from_table(t).map_err(|(l, m)| err(l, m))?;
                let scope = out.files.get_or_insert_with(FileScope::default);
                if let Some(read) = files.read {
                    scope.read = scope_paths(read).map_err(|m| err(t.line, m))?;
                }
                if let Some(write) = files.write {
                    scope.write = scope_paths(write).map_err(|m| err(t.line, m))?;
                }
            }
            ("live", false) => live = Some(from_table::<LiveToml>(t).map_err(|(l, m)| err(l, m))?),
            ("services", false) => {
                let services: ServicesToml = from_table(t).map_err(|(l, m)| err(l, m))?;
                if services.units.is_some() {
                    out.services.units = services.units;
                }
            }
            ("rule", false) => {
                return Err(err(
                    t.line,
                    "a rule is written [[rule]], one table per rule".into(),
                ))
            }
            (name, true) if ["files", "live", "services"].contains(&name) => {
                return Err(err(
                    t.line,
                    format!("[{name}] is one table, written [{name}]"),
                ))
            }
            (name, _) => {
                return Err(err(
                    t.line,
                    format!(
                        "unknown field `{name}`, expected `rule`, `files`, `live` or `services`"
                    ),
                ))
            }
        }
    }
    if let Some(live) = live {
        // Each list given replaces the one of an earlier file.
        if live.users.is_some() {
            out.live.users = live.users;
        }
        if live.forward_to.is_some() {
            out.live.forward_to = live.forward_to;
        }
        if live.forward_listen.is_some() {
            out.live.forward_listen = live.forward_listen;
        }
    }
    Ok(())
}

/// The files in effect: `*.toml` of every directory, merged by name (see the module
/// documentation); masked files left out.
pub fn files(dirs: &[PathBuf]) -> Vec<PathBuf> {
    crate::dropins::merge(dirs, Path::new(""), |n| n.ends_with(".toml"))
        .into_values()
        .filter(|p| !crate::dropins::masked(p))
        .collect()
}

/// The rules of every file in effect, in order, and the file scope.
pub fn load(dirs: &[PathBuf], names: &Names<'_>) -> Result<PolicyFiles, PolicyError> {
    let mut out = PolicyFiles::default();
    for path in files(dirs) {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(&path).map_err(|e| PolicyError {
            file: shown.clone(),
            line: 0,
            message: e.to_string(),
        })?;
        parse_into(&mut out, &shown, &text, names)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMMANDS: &[&str] = &[
        "guest-ping",
        "guest-exec",
        "guest-exec-status",
        "guest-file-open",
    ];

    fn names() -> Names<'static> {
        Names {
            commands: COMMANDS,
            user: &|n| (n == "alice").then_some(1000),
        }
    }

    #[test]
    fn a_full_rule() {
        let text = r#"
# comment
[[rule]]
deny = ["guest-exec*", "action:flush-*"]
except = ["guest-exec-status"]
channels = ["vdagent", "org.qemu.guest_agent.0"]
users = [0, "alice"]
sessions = ["active", "c2"]
when = ["session-locked", "active-session"]
reason = "no-exec"

[[rule]]
allow = ["*"]
"#;
        let rules = parse("10-a.toml", text, &names()).unwrap();
        assert_eq!(rules.len(), 2);
        let r = &rules[0];
        assert_eq!(r.effect, Effect::Deny);
        assert_eq!(r.users.as_deref(), Some(&[0, 1000][..]));
        assert_eq!(r.origin, "10-a.toml:3");
        assert_eq!(&*r.reason, "no-exec");
        assert_eq!(
            r.sessions,
            Some(vec![SessionMatch::Active, SessionMatch::Id("c2".into())])
        );
        assert_eq!(&*rules[1].reason, "10-a.toml:12");
    }

    #[test]
    fn a_later_files_scope_replaces_an_earlier_ones_lists() {
        let mut out = PolicyFiles::default();
        parse_into(
            &mut out,
            "10.toml",
            "[files]\nread = [\"/var/log\"]\nwrite = [\"/srv\"]\n",
            &names(),
        )
        .unwrap();
        parse_into(&mut out, "20.toml", "[files]\nwrite = []\n", &names()).unwrap();
        let scope = out.files.unwrap();
        assert_eq!(scope.read, [PathBuf::from("/var/log")]);
        assert!(scope.write.is_empty());
    }

    #[test]
    fn errors_name_the_file_and_line() {
        for (text, line, message) in [
            (
                "[[rule]]\ndeny = [\"guest-exce\"]\n",
                1,
                "'guest-exce' matches no command",
            ),
            (
                "\n\n[[rule]]\nallow = [\"guest-ping\"]\ndeny = [\"guest-ping\"]\n",
                3,
                "a rule needs exactly one of 'allow' and 'deny'",
            ),
            (
                "[[rule]]\ndeny = [\"guest-ping\"]\nchannels = [\"spice\"]\n",
                1,
                "unknown channel 'spice'",
            ),
            (
                "[[rule]]\ndeny = [\"guest-ping\"]\nusers = [\"mallory\"]\n",
                1,
                "no user 'mallory'",
            ),
            (
                "[[rule]]\ndeny = [\"guest-ping\"]\nwhen = [\"locked\"]\n",
                1,
                "unknown state 'locked'",
            ),
            (
                "[[rule]]\ndeny = [\"guest-ping\"]\nbogus = 1\n",
                3,
                "unknown field `bogus`",
            ),
            ("[[rule]]\ndeny = \"guest-ping\n", 2, ""),
            ("[[rule]]\ndeny = []\n", 1, "at least one command"),
            (
                "[[rule]]\ndeny = [\"action:../x\"]\n",
                1,
                "is not an action name",
            ),
            (
                "\n[files]\nread = [\"var/log\"]\n",
                2,
                "not an absolute path",
            ),
            ("[files]\nwrite = [\"/srv/../etc\"]\n", 1, "without '..'"),
        ] {
            let e = parse("f.toml", text, &names()).unwrap_err();
            assert_eq!((e.file.as_str(), e.line), ("f.toml", line), "{text}: {e}");
            assert!(e.message.contains(message), "{text}: {e}");
        }
    }
}
