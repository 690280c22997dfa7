//! The one gate in front of every command.
//!
//! qemu-ga's rules, in order: everything is allowed by default; an allow list, when
//! given, denies everything not on it; the block list denies what it names (block wins
//! over allow); while filesystems are frozen only a small safe set is allowed,
//! overriding the lists. A denied command stays listed by `guest-info` as disabled.

use std::collections::BTreeSet;

/// Commands that stay enabled while filesystems are frozen.
pub const FROZEN_SAFE_SET: &[&str] = &[
    "guest-ping",
    "guest-info",
    "guest-sync",
    "guest-sync-delimited",
    "guest-fsfreeze-status",
    "guest-fsfreeze-thaw",
];

/// Why a command is denied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenyReason {
    /// Not on the allow list, or on the block list.
    NotAllowed,
    /// Filesystems are frozen and the command is not in the safe set.
    Frozen,
}

impl DenyReason {
    /// The reason as qemu-ga 9.1+ words it after "Command X has been disabled: ".
    pub fn qga_text(self) -> &'static str {
        // qemu-ga ≥ 9.1 gives the same reason whichever rule disabled the command.
        "the command is not allowed"
    }

    /// A stable name for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            DenyReason::NotAllowed => "policy",
            DenyReason::Frozen => "frozen",
        }
    }
}

/// The gate's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Run it.
    Allow,
    /// Refuse it.
    Deny(DenyReason),
}

/// Allow and block lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    allow: Option<BTreeSet<String>>,
    block: BTreeSet<String>,
}

impl Policy {
    /// A policy from qemu-ga's `-a`/`allow-rpcs` and `-b`/`block-rpcs` lists.
    pub fn from_lists<A, B>(allow: Option<A>, block: B) -> Policy
    where
        A: IntoIterator<Item = String>,
        B: IntoIterator<Item = String>,
    {
        Policy {
            allow: allow.map(|a| a.into_iter().collect()),
            block: block.into_iter().collect(),
        }
    }

    /// The decision for `command` when filesystems are (or are not) frozen.
    pub fn decide(&self, command: &str, frozen: bool) -> Decision {
        if frozen {
            return if FROZEN_SAFE_SET.contains(&command) {
                Decision::Allow
            } else {
                Decision::Deny(DenyReason::Frozen)
            };
        }
        if let Some(allow) = &self.allow {
            if !allow.contains(command) {
                return Decision::Deny(DenyReason::NotAllowed);
            }
        }
        if self.block.contains(command) {
            return Decision::Deny(DenyReason::NotAllowed);
        }
        Decision::Allow
    }

    /// Names on either list that are not in `known`, for a start-up warning.
    pub fn unknown_names<'a>(&'a self, known: &'a [&str]) -> impl Iterator<Item = &'a str> + 'a {
        self.allow
            .iter()
            .flatten()
            .chain(&self.block)
            .map(String::as_str)
            .filter(move |n| !known.contains(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lists(allow: Option<&[&str]>, block: &[&str]) -> Policy {
        Policy::from_lists(
            allow.map(|a| a.iter().map(|s| s.to_string()).collect::<Vec<_>>()),
            block.iter().map(|s| s.to_string()),
        )
    }

    #[test]
    fn block_wins_over_allow() {
        let p = lists(Some(&["guest-ping", "guest-get-time"]), &["guest-ping"]);
        assert_eq!(
            p.decide("guest-ping", false),
            Decision::Deny(DenyReason::NotAllowed)
        );
        assert_eq!(p.decide("guest-get-time", false), Decision::Allow);
        assert_eq!(
            p.decide("guest-sync", false),
            Decision::Deny(DenyReason::NotAllowed)
        );
    }

    #[test]
    fn frozen_overrides_lists() {
        let p = lists(None, &["guest-ping"]);
        assert_eq!(p.decide("guest-ping", true), Decision::Allow);
        assert_eq!(
            p.decide("guest-get-time", true),
            Decision::Deny(DenyReason::Frozen)
        );
        assert_eq!(
            Policy::default().decide("guest-get-time", false),
            Decision::Allow
        );
    }
}
