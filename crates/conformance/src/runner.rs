//! Running the cases against a target and collecting outcomes.

use std::path::PathBuf;
use std::time::Duration;

use crate::cases::{Case, Ctx, Kind, ALL};
use crate::conn::Conn;
use crate::launcher::{Instance, Launcher};
use crate::Failure;

/// What the suite runs against.
#[derive(Debug, Clone)]
pub enum Target {
    /// An agent binary the suite starts (every case applies).
    Launch(Launcher),
    /// An agent already listening on this socket (shared-connection cases only).
    Socket(PathBuf),
}

/// The result of one case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It passed.
    Pass,
    /// It failed, with the reason.
    Fail(String),
    /// It cannot run against this target, with the reason.
    NotApplicable(String),
}

/// Every case's outcome, in execution order.
#[derive(Debug, Default)]
pub struct Report {
    /// `(id, name, outcome)`.
    pub results: Vec<(&'static str, &'static str, Outcome)>,
}

impl Report {
    /// Ids of the failed cases.
    pub fn failed(&self) -> Vec<&'static str> {
        self.results
            .iter()
            .filter(|r| matches!(r.2, Outcome::Fail(_)))
            .map(|r| r.0)
            .collect()
    }

    /// Counts of passed, failed and not applicable cases.
    pub fn counts(&self) -> (usize, usize, usize) {
        let mut c = (0, 0, 0);
        for r in &self.results {
            match r.2 {
                Outcome::Pass => c.0 += 1,
                Outcome::Fail(_) => c.1 += 1,
                Outcome::NotApplicable(_) => c.2 += 1,
            }
        }
        c
    }

    /// A TAP-like listing.
    pub fn render(&self) -> String {
        let mut s = String::new();
        for (id, name, outcome) in &self.results {
            match outcome {
                Outcome::Pass => s.push_str(&format!("ok      {id} {name}\n")),
                Outcome::Fail(why) => s.push_str(&format!("FAIL    {id} {name}: {why}\n")),
                Outcome::NotApplicable(why) => s.push_str(&format!("n/a     {id} {name}: {why}\n")),
            }
        }
        let (p, f, n) = self.counts();
        s.push_str(&format!("{p} passed, {f} failed, {n} not applicable\n"));
        s
    }
}

/// Options of a run.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Run the cases that change the guest (SSH keys of the agent's user).
    pub guest_changes: bool,
    /// The user whose SSH keys those cases change.
    pub ssh_user: Option<String>,
    /// Only these case ids (all when empty).
    pub only: Vec<String>,
}

fn selected(case: &Case, opts: &Options) -> bool {
    opts.only.is_empty() || opts.only.iter().any(|o| o == case.id)
}

/// Runs the suite: the shared-connection cases in order on one connection (on an
/// instance started for them, whose exit status 0 on SIGTERM is checked at the end),
/// then the cases that need their own instance.
pub fn run(target: &Target, opts: &Options) -> Report {
    let mut report = Report::default();
    let cases: Vec<&Case> = ALL.iter().filter(|c| selected(c, opts)).collect();
    let launcher = match target {
        Target::Launch(l) => Some(l),
        Target::Socket(_) => None,
    };
    let shared: Result<(Option<Instance>, Conn), Failure> = match target {
        Target::Launch(l) => l.start(&[], None).and_then(|i| {
            let c = i.connect()?;
            Ok((Some(i), c))
        }),
        Target::Socket(p) => Conn::connect(p, Duration::from_secs(10)).map(|c| (None, c)),
    };
    let (instance, mut conn) = match shared {
        Ok(x) => x,
        Err(e) => {
            for case in cases {
                let why = format!("no agent: {e}");
                report
                    .results
                    .push((case.id, case.name, Outcome::Fail(why)));
            }
            return report;
        }
    };
    let workdir = instance.as_ref().map(|i| i.dir.clone());
    let windows = conn
        .call(r#"{"execute":"guest-get-osinfo"}"#)
        .is_ok_and(|v| v["return"]["id"] == "mswindows");
    for case in cases
        .iter()
        .filter(|c| matches!(c.kind, Kind::Shared | Kind::Guest))
    {
        let outcome = if case.kind == Kind::Guest && !opts.guest_changes {
            Outcome::NotApplicable(
                "changes the guest; run with --guest-changes on a disposable guest".into(),
            )
        } else {
            let mut ctx = Ctx {
                conn: Some(&mut conn),
                launcher,
                workdir: workdir.as_deref(),
                ssh_user: opts.ssh_user.as_deref(),
                windows,
            };
            outcome_of((case.run)(&mut ctx))
        };
        report.results.push((case.id, case.name, outcome));
    }
    drop(conn);
    let mut instance = instance;
    for case in cases.iter().filter(|c| c.kind == Kind::Exit) {
        let outcome = match instance.take() {
            None => Outcome::NotApplicable("the suite did not start this agent".into()),
            Some(i) => match i.terminate() {
                Ok(st) if st.code() == Some(0) => Outcome::Pass,
                Ok(st) => Outcome::Fail(format!("SIGTERM ended the agent with {st}")),
                Err(e) => Outcome::Fail(e.0),
            },
        };
        report.results.push((case.id, case.name, outcome));
    }
    for case in cases.iter().filter(|c| c.kind == Kind::Own) {
        let outcome = match launcher {
            None => Outcome::NotApplicable("needs its own agent instance; run with --agent".into()),
            Some(l) => {
                let mut ctx = Ctx {
                    conn: None,
                    launcher: Some(l),
                    workdir: None,
                    ssh_user: None,
                    windows: false,
                };
                outcome_of((case.run)(&mut ctx))
            }
        };
        report.results.push((case.id, case.name, outcome));
    }
    report
}

fn outcome_of(r: Result<(), Failure>) -> Outcome {
    match r {
        Ok(()) => Outcome::Pass,
        Err(e) => Outcome::Fail(e.0),
    }
}
