//! What the agent logs: a refused command at the default level, once. And an agent
//! that starts with the frozen marker (a previous instance died while filesystems were
//! frozen) allows only the safe set, writes nothing to its log file until thawed,
//! refuses SIGTERM while frozen, and exits normally once thawed.

mod common;

use common::*;

#[test]
fn frozen_agent_keeps_quiet_and_refuses_to_stop_until_thawed() {
    let mut log = None;
    let agent = Agent::start_with(GUESTLINKD, &["-v"], |cmd| {
        let dir = cmd.get_current_dir().unwrap().to_path_buf();
        std::fs::write(dir.join("qga.state.isfrozen"), "").unwrap();
        let path = dir.join("agent.log");
        cmd.arg("-l").arg(&path);
        log = Some(path);
    });
    let log = log.unwrap();
    let mut c = agent.connect();
    let status = c.json(br#"{"execute":"guest-fsfreeze-status"}"#);
    assert_eq!(status["return"], "frozen");
    let denied = c.json(br#"{"execute":"guest-get-time"}"#);
    assert_eq!(
        denied["error"]["desc"],
        "Command guest-get-time has been disabled: the agent is in frozen state"
    );
    c.json(br#"{"execute":"guest-ping"}"#);
    let quiet = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        !quiet.contains("guest-ping"),
        "logged while frozen: {quiet}"
    );
    // SIGTERM is refused while frozen.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(agent.pid() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    c.json(br#"{"execute":"guest-ping"}"#);
    // Thawing (FITHAW on mounts that are not frozen does nothing) clears the state.
    let thawed = c.json(br#"{"execute":"guest-fsfreeze-thaw"}"#);
    assert!(thawed["return"].is_i64(), "{thawed}");
    assert!(!agent.dir.join("qga.state.isfrozen").exists());
    c.json(br#"{"execute":"guest-ping","id":"after"}"#);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("guest-ping called"),
        "nothing logged after thaw: {text}"
    );
    // A log file gets plain text: no terminal colours around the fields.
    assert!(
        !text.contains('\x1b'),
        "escape codes in the log file: {text}"
    );
    assert!(text.contains("command=\"guest-ping\""), "{text}");
    assert_eq!(agent.terminate().code(), Some(0));
}

/// A refused command is logged at the default level (no `-v`), once, with the rule
/// that refused it; the host asking again does not fill the log.
#[test]
fn a_refusal_is_logged_once_at_the_default_level() {
    let logs = scratch("refusal-log");
    let log = logs.join("agent.log");
    let agent = Agent::start_with(GUESTLINKD, &["-b", "guest-get-time"], |cmd| {
        cmd.arg("-l").arg(&log);
    });
    let mut c = agent.connect();
    for _ in 0..3 {
        let r = c.json(br#"{"execute":"guest-get-time"}"#);
        assert_eq!(r["error"]["class"], "CommandNotFound", "{r}");
    }
    c.json(br#"{"execute":"guest-ping"}"#);
    let text = std::fs::read_to_string(&log).unwrap();
    let refusals: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("refused by the policy"))
        .collect();
    assert_eq!(refusals.len(), 1, "{text}");
    assert!(refusals[0].contains("warning"), "{text}");
    assert!(refusals[0].contains("command=\"guest-get-time\""), "{text}");
    assert!(refusals[0].contains("reason=\"block-rpcs\""), "{text}");
    // Nothing else at the default level: pings are not logged without -v.
    assert!(!text.contains("guest-ping called"), "{text}");
    assert_eq!(agent.terminate().code(), Some(0));
}
