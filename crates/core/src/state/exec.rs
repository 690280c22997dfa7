//! Processes started by `guest-exec`: one record per pid until its exit was reported.
//!
//! A task per child (see the exec handler) drains the child's pipes while other
//! commands run and waits for it, so children never linger as zombies; it stores the
//! outcome here. `guest-exec-status` reads the record and removes it once it reported
//! the exit.
//!
//! Captured output is bounded twice: 16 MiB per stream, as qemu-ga, and
//! [`EXEC_OUTPUT_TOTAL`] for all children not yet collected together, so 256 chatty
//! children cannot hold gigabytes. What does not fit is dropped and reported as
//! truncated; the budget is given back when `guest-exec-status` collects the output.

use crate::limits::EXEC_OUTPUT_TOTAL;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// What is left of the captured-output budget.
#[derive(Debug)]
pub struct OutputBudget {
    left: AtomicUsize,
}

impl OutputBudget {
    /// A budget of `bytes`.
    pub fn new(bytes: usize) -> OutputBudget {
        OutputBudget {
            left: AtomicUsize::new(bytes),
        }
    }

    /// Takes up to `want` bytes; returns how many were granted.
    pub fn take(&self, want: usize) -> usize {
        let mut granted = 0;
        let _ = self
            .left
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| {
                granted = want.min(left);
                Some(left - granted)
            });
        granted
    }

    /// Gives `bytes` back.
    pub fn give_back(&self, bytes: usize) {
        self.left.fetch_add(bytes, Ordering::AcqRel);
    }

    /// Bytes still available.
    pub fn left(&self) -> usize {
        self.left.load(Ordering::Acquire)
    }
}

impl Default for OutputBudget {
    fn default() -> Self {
        OutputBudget::new(EXEC_OUTPUT_TOTAL)
    }
}

/// Captured output of one stream.
#[derive(Debug, Default, Clone)]
pub struct Captured {
    /// The bytes, up to the cap.
    pub data: Vec<u8>,
    /// Whether more arrived than the cap allowed.
    pub truncated: bool,
}

/// How a child ended.
#[derive(Debug, Clone, Default)]
pub struct ExecOutcome {
    /// Exit status when it exited.
    pub exitcode: Option<i64>,
    /// Signal number when a signal killed it.
    pub signal: Option<i64>,
    /// Captured standard output (or both streams, merged).
    pub stdout: Option<Captured>,
    /// Captured standard error.
    pub stderr: Option<Captured>,
}

/// One child's record: empty until it exited and its pipes closed.
#[derive(Debug, Default)]
pub struct ExecRecord {
    outcome: Mutex<Option<ExecOutcome>>,
}

impl ExecRecord {
    /// Stores how the child ended.
    pub fn finish(&self, outcome: ExecOutcome) {
        *self.outcome.lock().unwrap_or_else(|e| e.into_inner()) = Some(outcome);
    }
}

/// All children not yet reported as exited.
#[derive(Debug, Default)]
pub struct ExecTable {
    records: Mutex<HashMap<i64, Arc<ExecRecord>>>,
    budget: Arc<OutputBudget>,
}

/// What `guest-exec-status` finds.
#[derive(Debug)]
pub enum ExecLookup {
    /// No such pid (never started here, or already reported).
    Unknown,
    /// Still running, or its pipes are still open.
    Running,
    /// Finished; the record is gone now.
    Exited(ExecOutcome),
}

impl ExecTable {
    /// Registers a new child.
    pub fn insert(&self, pid: i64) -> Arc<ExecRecord> {
        let record = Arc::new(ExecRecord::default());
        self.records
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(pid, record.clone());
        record
    }

    /// The captured-output budget the children's readers draw from.
    pub fn budget(&self) -> Arc<OutputBudget> {
        self.budget.clone()
    }

    /// Looks `pid` up; a finished record is removed as it is returned, and its output
    /// given back to the budget.
    pub fn poll(&self, pid: i64) -> ExecLookup {
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        let Some(record) = records.get(&pid) else {
            return ExecLookup::Unknown;
        };
        let outcome = record
            .outcome
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        match outcome {
            Some(o) => {
                records.remove(&pid);
                let held = |c: &Option<Captured>| c.as_ref().map_or(0, |c| c.data.len());
                self.budget.give_back(held(&o.stdout) + held(&o.stderr));
                ExecLookup::Exited(o)
            }
            None => ExecLookup::Running,
        }
    }

    /// Number of children not yet reported.
    pub fn len(&self) -> usize {
        self.records.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
