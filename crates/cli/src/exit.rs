//! guestlink's exit codes, and its errors as scripts read them with `--json`.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | done |
//! | 1 | the agent answered with an error (the command failed or was refused) |
//! | 2 | usage error (clap's, and ours: no agent given) |
//! | 3 | no agent reached: no socket, nobody listening, no answer in time |
//! | 4 | the agent is not guestlinkd and the subcommand needs it |
//!
//! `exec` and `shell` exit with the program's status instead.

use guestlink_client::ClientError;

/// The agent answered with an error, or something else failed.
pub const FAILED: u8 = 1;
/// A usage error (what clap uses too).
pub const USAGE: u8 = 2;
/// No agent reached.
pub const UNREACHABLE: u8 = 3;
/// The subcommand needs guestlinkd.
pub const NEEDS_GUESTLINKD: u8 = 4;

/// A subcommand that needs guestlinkd met another agent.
#[derive(Debug)]
pub struct NeedsGuestlinkd {
    /// What needs it (`guestlink events`).
    pub what: String,
    /// The agent found, as guest-info describes it.
    pub agent: String,
}

impl std::fmt::Display for NeedsGuestlinkd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} needs guestlinkd in the guest; the agent there is {}",
            self.what, self.agent
        )
    }
}

impl std::error::Error for NeedsGuestlinkd {}

/// A mistake in how guestlink was called, found after parsing.
#[derive(Debug)]
pub struct Usage(pub String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// The exit code and the error class of an error.
pub fn classify(e: &anyhow::Error) -> (u8, String) {
    if e.downcast_ref::<NeedsGuestlinkd>().is_some() {
        return (NEEDS_GUESTLINKD, "NeedsGuestlinkd".into());
    }
    if e.downcast_ref::<Usage>().is_some() {
        return (USAGE, "Usage".into());
    }
    match e.downcast_ref::<ClientError>() {
        Some(ClientError::Agent { class, .. }) => (FAILED, class.clone()),
        Some(ClientError::Connect { .. }) => (UNREACHABLE, "Unreachable".into()),
        Some(ClientError::Timeout(_)) => (UNREACHABLE, "Timeout".into()),
        Some(ClientError::Closed) => (UNREACHABLE, "Closed".into()),
        _ => (FAILED, "GenericError".into()),
    }
}

/// The error as one JSON line: `{"error": {"class", "desc", "hint", "exit"}}`.
pub fn json(e: &anyhow::Error, desc: &str, hint: Option<&str>) -> serde_json::Value {
    let (code, class) = classify(e);
    let mut err = serde_json::json!({"class": class, "desc": desc, "exit": code});
    if let Some(h) = hint {
        err["hint"] = h.into();
    }
    serde_json::json!({ "error": err })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_error_has_its_code() {
        let agent = anyhow::Error::from(ClientError::Agent {
            class: "CommandNotFound".into(),
            desc: "x".into(),
        });
        assert_eq!(classify(&agent), (FAILED, "CommandNotFound".into()));
        let t = anyhow::Error::from(ClientError::Timeout(std::time::Duration::from_secs(1)));
        assert_eq!(classify(&t).0, UNREACHABLE);
        let n = anyhow::Error::from(NeedsGuestlinkd {
            what: "guestlink events".into(),
            agent: "qemu-ga 7.2.22".into(),
        });
        assert_eq!(classify(&n).0, NEEDS_GUESTLINKD);
        assert_eq!(
            n.to_string(),
            "guestlink events needs guestlinkd in the guest; the agent there is qemu-ga 7.2.22"
        );
        assert_eq!(classify(&anyhow::Error::from(Usage("u".into()))).0, USAGE);
        let v = json(&agent, "x", Some("h"));
        assert_eq!(v["error"]["exit"], 1);
        assert_eq!(v["error"]["hint"], "h");
    }
}
