//! The conformance suite (crates/conformance) against guestlinkd and, side by side,
//! Debian's qemu-ga: guestlinkd passes every case; qemu-ga 7.2 fails exactly the cases
//! that need a newer qemu-ga. The SSH cases run against both with a throwaway account.

mod common;

use std::collections::BTreeMap;

use common::{peer_available, GUESTLINKD, QEMU_GA};
use guestlink_conformance::cases::observed::argument_sweep;
use guestlink_conformance::runner::Options;
use guestlink_conformance::{run, Launcher, Outcome, Target};

/// Cases Debian's qemu-ga 7.2 cannot pass, and why.
const QEMU_7_2_GAPS: &[(&str, &str)] = &[
    ("T08", "guest-get-load appeared in QEMU 10.0"),
    (
        "T23",
        "capture-output modes appeared in QEMU 8.0 (7.2 takes a boolean)",
    ),
    (
        "T24",
        "capture-output modes appeared in QEMU 8.0 (7.2 takes a boolean)",
    ),
    ("T20", "--allow-rpcs appeared in QEMU 8.1"),
    ("X22", "--allow-rpcs appeared in QEMU 8.1"),
];

fn outcomes(agent: &str, opts: &Options) -> BTreeMap<&'static str, Outcome> {
    let report = run(&Target::Launch(Launcher::new(agent)), opts);
    println!("{agent}:\n{}", report.render());
    report
        .results
        .into_iter()
        .map(|(id, _, o)| (id, o))
        .collect()
}

#[test]
fn guestlinkd_passes_every_case_and_qemu_ga_only_misses_newer_features() {
    let ours = outcomes(GUESTLINKD, &Options::default());
    for (id, o) in &ours {
        match o {
            Outcome::Pass => {}
            Outcome::NotApplicable(_) if id.starts_with('S') => {}
            other => panic!("guestlinkd {id}: {other:?}"),
        }
    }
    assert!(ours.len() >= 59, "every case ran: {}", ours.len());
    if !peer_available(QEMU_GA) {
        return;
    }
    let theirs = outcomes(QEMU_GA, &Options::default());
    for (id, o) in &theirs {
        let gap = QEMU_7_2_GAPS.iter().find(|g| g.0 == *id);
        match (o, gap) {
            (Outcome::Fail(_), Some(_)) => {}
            (Outcome::Fail(why), None) => {
                panic!("qemu-ga fails {id}, which guestlinkd passes: {why}")
            }
            (Outcome::Pass, Some((_, reason))) => {
                panic!("qemu-ga passes {id}, listed as a gap ({reason}): update the list")
            }
            (o, _) => assert_eq!(o, &ours[id], "{id}"),
        }
    }
}

/// A throwaway account with its home in a scratch directory, for the SSH cases.
fn throwaway_user() -> Option<String> {
    let name = "glconformance";
    if nix::unistd::User::from_name(name).ok().flatten().is_some() {
        return Some(name.into());
    }
    if !nix::unistd::getuid().is_root() {
        let required = std::env::var_os("CI").is_some();
        assert!(!required, "CI runs as root and must run the SSH cases");
        eprintln!("SKIPPED: the SSH cases need root to create a throwaway account");
        return None;
    }
    let home = std::env::temp_dir().join("glconformance-home");
    let st = std::process::Command::new("useradd")
        .args(["--create-home", "--home-dir"])
        .arg(&home)
        .arg(name)
        .status()
        .expect("useradd");
    assert!(st.success(), "useradd failed");
    Some(name.into())
}

#[test]
fn ssh_cases_against_both_agents() {
    let Some(user) = throwaway_user() else { return };
    let opts = Options {
        guest_changes: true,
        ssh_user: Some(user),
        only: ["S1", "S2", "S3", "S4", "S5", "S6"]
            .map(String::from)
            .to_vec(),
    };
    let mut agents = vec![GUESTLINKD];
    if peer_available(QEMU_GA) {
        agents.push(QEMU_GA);
    }
    for agent in agents {
        let results = outcomes(agent, &opts);
        assert_eq!(results.len(), 6);
        for (id, o) in results {
            assert_eq!(o, Outcome::Pass, "{agent} {id}");
        }
    }
}

#[test]
fn argument_errors_match_qemu_ga_for_every_shared_command() {
    if !peer_available(QEMU_GA) {
        return;
    }
    let sweep = |agent: &str| {
        let instance = Launcher::new(agent).start(&[], None).unwrap();
        let mut c = instance.connect().unwrap();
        let r: BTreeMap<String, String> = argument_sweep(&mut c).unwrap().into_iter().collect();
        drop(c);
        // Killed, not asked to stop: how an agent ends is not this test's matter (a
        // loaded CI machine once saw the reference qemu-ga take over 10 s on SIGTERM).
        drop(instance);
        r
    };
    let (ours, theirs) = (sweep(GUESTLINKD), sweep(QEMU_GA));
    let mut compared = 0;
    for (name, err) in &theirs {
        if let Some(mine) = ours.get(name) {
            assert_eq!(mine, err, "{name}");
            compared += 1;
        }
    }
    assert!(compared >= 30, "only {compared} commands compared");
}
